"""Equation of state: EMT Cu against a direct ASE computation, fits, P(V) cross-check, batching, H(P)."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.eos import EquationOfState
from ase.units import GPa

from mlip_props import load_potential
from mlip_props.properties.eos import EOSResult, eos_energy, equation_of_state, fit_eos, transition_pressures

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def emt_cu():
    return equation_of_state(load_potential("emt"), bulk("Cu", "fcc", a=3.55))


def test_emt_cu_matches_direct_ase(emt_cu):
    # independent route: E(a) of the fcc cell with ASE's EMT, fitted by ase.eos
    vols, ens = [], []
    for a in np.linspace(3.50, 3.68, 13):
        at = bulk("Cu", "fcc", a=a)
        at.calc = EMT()
        vols.append(at.get_volume())
        ens.append(at.get_potential_energy())
    v0, _, b0 = EquationOfState(vols, ens, eos="birchmurnaghan").fit()
    assert (4 * emt_cu.v0_A3_per_atom) ** (1 / 3) == pytest.approx((4 * v0) ** (1 / 3), rel=1e-3)
    assert emt_cu.bulk_modulus_GPa == pytest.approx(b0 / GPa, rel=0.01)
    assert emt_cu.converged and emt_cu.v0_inside_range
    assert emt_cu.fit_residual_eV_per_atom < 1e-4


def test_pressure_derived_bulk_modulus_and_forms_agree(emt_cu):
    r = emt_cu
    assert r.bulk_modulus_from_pressure_GPa == pytest.approx(r.bulk_modulus_GPa, rel=0.02)
    # the backend pressure at the fitted V0 is ~0 and P = -dE/dV of the fit
    assert abs(np.interp(r.v0_A3_per_atom, r.volumes_A3_per_atom, r.pressures_GPa)) < 0.2
    for form in ("vinet", "murnaghan"):
        f = r.fits[form]
        assert f.success
        assert f.v0_A3_per_atom == pytest.approx(r.v0_A3_per_atom, rel=1e-3)
        assert f.bulk_modulus_GPa == pytest.approx(r.bulk_modulus_GPa, rel=0.02)
    assert len(r.volumes_A3_per_atom) == 11
    assert r.volumes_A3_per_atom.max() / r.volumes_A3_per_atom.min() == pytest.approx(1.06 / 0.94, rel=1e-6)


def test_fit_recovers_known_parameters():
    v = np.linspace(10.0, 13.0, 11)
    for form in ("birchmurnaghan", "vinet", "murnaghan"):
        e = eos_energy(form, v, -3.5, 11.6, 0.85, 4.7)
        f = fit_eos(v, e, form)
        assert f.v0_A3_per_atom == pytest.approx(11.6, rel=1e-8)
        assert f.bulk_modulus_GPa == pytest.approx(0.85 * 160.21766208, rel=1e-6)
        assert f.bulk_modulus_derivative == pytest.approx(4.7, rel=1e-5)


def test_internal_relaxation_and_batch_identity():
    sw = load_potential("sw")
    target = bulk("Si", "diamond", a=5.40)
    others = []
    for k in range(49):
        a = bulk("Si", "diamond", a=5.35 + 0.004 * k, cubic=(k % 3 == 0))
        if k % 2:
            a.rattle(0.02, seed=k)
        others.append(a)
    alone = equation_of_state(sw, target)
    batch = equation_of_state(sw, others[:20] + [target] + others[20:])
    together = batch[20]
    assert len(batch) == 50 and all(r.converged for r in batch)
    for f in ("v0_A3_per_atom", "e0_eV_per_atom", "bulk_modulus_GPa", "bulk_modulus_from_pressure_GPa"):
        assert getattr(together, f) == pytest.approx(getattr(alone, f), rel=1e-8), f
    # SW diamond Si: a0 = 5.431 A; B = (C11 + 2 C12)/3 = 101 GPa for SW (C11 151, C12 76)
    assert (8 * alone.v0_A3_per_atom) ** (1 / 3) == pytest.approx(5.431, abs=0.002)
    assert alone.bulk_modulus_GPa == pytest.approx(101.4, rel=0.02)
    assert alone.ions_relaxed


def _eos(form, e0, v0, b0_gpa, bp, label):
    v = np.linspace(0.9 * v0, 1.1 * v0, 5)
    return EOSResult(atoms=Atoms("Si", cell=np.eye(3) * v0 ** (1 / 3), pbc=True), eos=form, v0_A3_per_atom=v0,
                     e0_eV_per_atom=e0, bulk_modulus_GPa=b0_gpa, bulk_modulus_derivative=bp, fit_residual_eV_per_atom=0.0,
                     fits={}, volumes_A3_per_atom=v, energies_eV_per_atom=v * 0, pressures_GPa=v * 0,
                     bulk_modulus_from_pressure_GPa=b0_gpa, pressure_fit_residual_GPa=0.0, v0_inside_range=True,
                     ions_relaxed=False, relax_converged=True, converged=True, n_atoms=1, formula="Si")


def test_transition_pressure_against_brute_force_enthalpy():
    from scipy.optimize import minimize_scalar

    low = _eos("birchmurnaghan", -4.34, 20.0, 100.0, 4.0, "a")
    dense = _eos("birchmurnaghan", -4.10, 16.0, 120.0, 4.5, "b")
    res = transition_pressures([low, dense], ["diamond", "dense"], p_max_GPa=40)
    assert len(res.transitions) == 1
    t = res.transitions[0]
    assert (t.low, t.high) == ("diamond", "dense") and t.volume_change_A3_per_atom < 0

    def h(r, p):  # brute force: min over V of E(V) + P V
        f = lambda v: eos_energy(r.eos, v, r.e0_eV_per_atom, r.v0_A3_per_atom, r.bulk_modulus_GPa / 160.21766208,
                                 r.bulk_modulus_derivative) + p / 160.21766208 * v
        return minimize_scalar(f, bounds=(0.5 * r.v0_A3_per_atom, 1.5 * r.v0_A3_per_atom), method="bounded",
                               options={"xatol": 1e-10}).fun

    assert h(low, t.pressure_GPa) == pytest.approx(h(dense, t.pressure_GPa), abs=1e-7)
    assert h(low, t.pressure_GPa - 1) < h(dense, t.pressure_GPa - 1)
    assert h(low, t.pressure_GPa + 1) > h(dense, t.pressure_GPa + 1)
    assert res.stable_phase[0] == "diamond" and res.stable_phase[-1] == "dense"


def test_bad_input_names_structure():
    with pytest.raises(ValueError, match="structure 1"):
        equation_of_state(load_potential("sw"), [bulk("Si"), Atoms("Si2", positions=[[0, 0, 0], [2.3, 0, 0]])])
    with pytest.raises(ValueError, match="polymorphs"):
        transition_pressures([_eos("vinet", -1, 10, 50, 4, "x"), _eos("vinet", -1, 10, 50, 4, "y").__class__(
            **{**_eos("vinet", -1, 10, 50, 4, "y").__dict__, "formula": "Cu"})])


def test_result_is_json_serialisable(emt_cu):
    import json

    d = json.loads(json.dumps(emt_cu.to_dict()))
    assert d["fits"]["vinet"]["eos"] == "vinet" and len(d["pressures_GPa"]) == 11


def test_fit_eos_refuses_unphysical_data():
    """A maximum instead of a minimum, monotonic data and a minimum outside the sampled volumes are
    never reported as a successful fit; volumes without a range are an error."""
    v = np.linspace(10.0, 13.0, 9)
    good = eos_energy("birchmurnaghan", v, -3.5, 11.5, 0.8, 4.5)
    assert fit_eos(v, good).success
    assert not fit_eos(v, -good).success  # a maximum
    assert not fit_eos(v, -0.2 * v).success  # monotonic
    assert not fit_eos(v, eos_energy("birchmurnaghan", v, -3.5, 15.0, 0.8, 4.5)).success  # V0 outside the data
    with pytest.raises(ValueError, match="span a range"):
        fit_eos(np.full(9, 11.0), good)
    with pytest.raises(ValueError, match="finite"):
        fit_eos(v, np.where(v > 12, np.nan, good))


def test_newton_ion_relaxation_equals_fire_with_an_internal_parameter():
    # hexagonal diamond Si (P6_3mc, free u) under Stillinger-Weber: the ions move at every volume
    from ase.spacegroup import crystal

    sw = load_potential("sw")
    lonsdaleite = crystal(["Si", "Si"], [(1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, 0.37)], spacegroup=186,
                          cellpar=[3.84, 3.84, 6.34, 90, 90, 120], primitive_cell=True)
    rel = {"fmax_eV_A": 1e-6, "cell": False, "keep_symmetry": False}
    fire = equation_of_state(sw, lonsdaleite, relaxation=rel, ion_optimizer="fire")
    newton = equation_of_state(sw, lonsdaleite, relaxation=rel, ion_optimizer="newton")
    assert (fire.ion_optimizer, newton.ion_optimizer) == ("fire", "newton")
    assert fire.converged and newton.converged and newton.ion_residual_force_eV_A < 1e-6
    assert np.allclose(newton.energies_eV_per_atom, fire.energies_eV_per_atom, atol=1e-9)
    assert newton.bulk_modulus_GPa == pytest.approx(fire.bulk_modulus_GPa, rel=1e-5)
    clamped = equation_of_state(sw, lonsdaleite, relaxation={**rel, "ions": False})
    assert clamped.ion_optimizer == "none"
    assert np.all(newton.energies_eV_per_atom <= clamped.energies_eV_per_atom + 1e-9)  # relaxing lowers E
    # and the ions did move (u changes a little with volume: ~1e-6 eV/atom at the ends of +-6 %)
    assert (clamped.energies_eV_per_atom - newton.energies_eV_per_atom).max() > 1e-7
