"""Elastic tensor: EMT Cu against a direct ASE computation, symmetry, Cauchy, internal relaxation,
stability, consistency with the equation of state, batch identity."""
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from ase.units import GPa

from ase import Atoms

from mlip_props import load_potential
from mlip_props.properties.elastic import LAUE_CLASS, elastic_tensor
from mlip_props.properties.eos import equation_of_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def _cubic_ok(c, tol):
    d, o, s = np.diag(c)[:3], c[[0, 0, 1], [1, 2, 2]], np.diag(c)[3:]
    assert np.ptp(d) < tol * abs(d.mean())
    assert np.ptp(o) < tol * abs(o.mean())
    assert np.ptp(s) < tol * abs(s.mean())


@pytest.fixture(scope="module")
def emt():
    return load_potential("emt")


@pytest.fixture(scope="module")
def sw():
    return load_potential("sw")


@pytest.fixture(scope="module")
def cu(emt):
    return elastic_tensor(emt, bulk("Cu", "fcc", a=3.6))


@pytest.fixture(scope="module")
def si(sw):
    return elastic_tensor(sw, bulk("Si", "diamond", a=5.43))


def test_emt_cu_matches_direct_ase_finite_strains(cu):
    # independent route: relax the cubic cell with ASE, central differences of ASE stresses
    a = bulk("Cu", "fcc", a=3.6, cubic=True)
    a.calc = EMT()
    BFGS(FrechetCellFilter(a), logfile=None).run(fmax=1e-6)
    d = 0.005

    def stress(eps):
        b = a.copy()
        b.calc = EMT()
        b.set_cell(a.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
        return b.get_stress(voigt=True) / GPa

    e = np.zeros((3, 3))
    e[0, 0] = d
    c11 = (stress(e)[0] - stress(-e)[0]) / (2 * d)
    c12 = (stress(e)[1] - stress(-e)[1]) / (2 * d)
    e = np.zeros((3, 3))
    e[1, 2] = e[2, 1] = d / 2  # engineering shear strain d
    c44 = (stress(e)[3] - stress(-e)[3]) / (2 * d)
    c = cu.C_GPa
    assert c[0, 0] == pytest.approx(c11, rel=0.01)
    assert c[0, 1] == pytest.approx(c12, rel=0.01)
    assert c[3, 3] == pytest.approx(c44, rel=0.01)
    assert cu.born_stable and cu.converged and cu.laue_class == "m-3m"
    assert cu.bulk_modulus_voigt_GPa == pytest.approx((c11 + 2 * c12) / 3, rel=0.01)


def test_cubic_raw_tensors_are_cubic_before_symmetrisation(cu, si, sw):
    _cubic_ok(cu.C_raw_GPa, 0.005)
    _cubic_ok(si.C_raw_GPa, 0.005)
    _cubic_ok(si.C_clamped_ion_raw_GPa, 0.005)
    big = elastic_tensor(sw, bulk("Si", "diamond", a=5.43, cubic=True))
    _cubic_ok(big.C_raw_GPa, 0.005)
    assert np.allclose(big.C_GPa, si.C_GPa, rtol=0, atol=0.05)  # same crystal, 8- vs 2-atom cell
    assert si.asymmetry_relative < 1e-3
    for r in (cu, si):
        off = r.C_GPa.copy()
        off[:3, :3] = 0
        off[3:, 3:] -= np.diag(np.diag(r.C_GPa)[3:])
        assert np.abs(off).max() < 1e-8 * np.abs(r.C_GPa).max()


def test_lennard_jones_cauchy_relation():
    lj = load_potential("lj:epsilon=0.0104,sigma=3.4")
    r = elastic_tensor(lj, bulk("Ar", "fcc", a=5.3))
    assert r.residual_stress_GPa < 1e-3
    assert r.C_GPa[0, 1] == pytest.approx(r.C_GPa[3, 3], rel=0.01)


def test_diamond_internal_relaxation_lowers_c44(si):
    assert si.ions_relaxed and si.max_ion_displacement_A > 1e-3
    assert si.C_relaxed_ion_GPa[3, 3] < 0.8 * si.C_clamped_ion_GPa[3, 3]
    # normal strains of diamond leave every atom at an inversion-free but force-free site: C11, C12 unchanged
    assert si.C_relaxed_ion_GPa[0, 0] == pytest.approx(si.C_clamped_ion_GPa[0, 0], rel=1e-4)


def test_bulk_modulus_consistent_with_equation_of_state(cu, si, emt, sw):
    for pot, at, el in ((emt, bulk("Cu", "fcc", a=3.6), cu), (sw, bulk("Si", "diamond", a=5.43), si)):
        eos = equation_of_state(pot, at)
        b_el = (el.C_GPa[0, 0] + 2 * el.C_GPa[0, 1]) / 3
        assert eos.bulk_modulus_GPa == pytest.approx(b_el, rel=0.02)
        assert eos.bulk_modulus_from_pressure_GPa == pytest.approx(b_el, rel=0.02)
        assert el.bulk_modulus_hill_GPa == pytest.approx(b_el, rel=1e-6)  # cubic: K_V = K_R


def test_hcp_five_constants(emt):
    r = elastic_tensor(emt, bulk("Cu", "hcp", a=2.55, c=4.17))
    c, raw = r.C_GPa, r.C_raw_GPa
    assert r.laue_class == "6/mmm" and r.converged
    # before symmetrisation (relaxed ions): transverse isotropy holds within 1 %
    assert raw[0, 0] == pytest.approx(raw[1, 1], rel=0.01)
    assert raw[5, 5] == pytest.approx((raw[0, 0] - raw[0, 1]) / 2, rel=0.01)
    assert raw[3, 3] == pytest.approx(raw[4, 4], rel=0.01)
    assert raw[0, 2] == pytest.approx(raw[1, 2], rel=0.01)
    # after: exactly five independent constants
    assert c[5, 5] == pytest.approx((c[0, 0] - c[0, 1]) / 2, rel=1e-8)
    five = [c[0, 0], c[0, 1], c[0, 2], c[2, 2], c[3, 3]]
    assert min(np.abs(np.subtract.outer(five, five))[np.triu_indices(5, 1)]) > 1.0
    assert r.born_stable


def test_unstable_bcc_cu_is_reported(emt):
    # EMT bcc Cu: C11 < C12 (Bain-path shear instability) -> a negative eigenvalue C11 - C12
    r = elastic_tensor(emt, bulk("Cu", "bcc", a=2.87))
    assert not r.born_stable
    assert r.eigenvalues_GPa.min() == pytest.approx(r.C_GPa[0, 0] - r.C_GPa[0, 1], rel=1e-6)
    assert r.eigenvalues_GPa.min() < 0


def test_rotated_low_symmetry_frame():
    # hcp LJ in an arbitrarily rotated frame (no symmetry axis along x, y, z): C rotates as a tensor
    from scipy.spatial.transform import Rotation

    from mlip_props.properties.elastic import _full_to_voigt, _voigt_to_full

    lj = load_potential("lj:epsilon=0.0104,sigma=3.4")
    a = bulk("Ar", "hcp", a=3.75, c=6.12)
    ref = elastic_tensor(lj, a)
    rot = Rotation.from_euler("zyx", [17, 33, 61], degrees=True).as_matrix()
    b = a.copy()
    b.set_cell(a.cell[:] @ rot.T, scale_atoms=True)
    r = elastic_tensor(lj, b)
    expect = _full_to_voigt(np.einsum("ia,jb,kc,ld,abcd->ijkl", rot, rot, rot, rot, _voigt_to_full(ref.C_GPa)))
    assert r.laue_class == "6/mmm"
    assert np.abs(r.C_GPa - expect).max() < 0.005 * np.abs(expect).max()


def test_batch_of_50_identical_to_alone(sw):
    target = bulk("Si", "diamond", a=5.40)
    target.rattle(0.01, seed=1)
    others = []
    for k in range(49):
        a = bulk("Si", "diamond", a=5.38 + 0.002 * k, cubic=(k % 10 == 0))
        if k % 5 == 0:
            a.rattle(0.01, seed=k + 10)
        others.append(a)
    kw = dict(relaxation={"keep_symmetry": False}, strains=(-0.005, 0.005))
    alone = elastic_tensor(sw, target, **kw)
    together = elastic_tensor(sw, others[:30] + [target] + others[30:], **kw)[30]
    for f in ("C_GPa", "C_clamped_ion_GPa", "C_raw_GPa"):
        x, y = getattr(alone, f), getattr(together, f)
        assert np.abs(x - y).max() <= 1e-8 * np.abs(x).max(), f
    assert alone.converged and together.converged


def test_bad_input():
    from ase import Atoms

    with pytest.raises(ValueError, match="structure 1"):
        elastic_tensor(load_potential("sw"), [bulk("Si"), Atoms("Si2", positions=[[0, 0, 0], [2.3, 0, 0]])])
    with pytest.raises(ValueError, match="strains"):
        elastic_tensor(load_potential("sw"), bulk("Si"), strains=(0.01,))


def test_result_is_json_serialisable(si):
    import json

    d = json.loads(json.dumps(si.to_dict()))
    assert len(d["C_GPa"]) == 6 and d["born_stable"] is True and d["laue_class"] == "m-3m"


def test_triclinic_pair_potential_general_cauchy_relations():
    # any crystal system: a 3-atom triclinic LJ cell. At zero stress with every atom at an inversion
    # centre, central pair forces give the six generalised Cauchy relations (C23=C44, C13=C55,
    # C12=C66, C14=C56, C25=C46, C36=C45) and the fitted raw tensor is symmetric (Maxwell relation).
    from tests.backend.structures import triclinic_cell

    r = elastic_tensor(load_potential("lj:epsilon=0.0104,sigma=3.4"), triclinic_cell(3.8, "Ar"))
    c, raw = r.C_GPa, r.C_raw_GPa
    assert r.laue_class == "-1" and r.converged
    scale = np.abs(c).max()
    assert np.abs(raw - raw.T).max() < 2e-3 * scale
    for (i, j), (k, m) in [((1, 2), (3, 3)), ((0, 2), (4, 4)), ((0, 1), (5, 5)),
                           ((0, 3), (4, 5)), ((1, 4), (3, 5)), ((2, 5), (3, 4))]:
        assert abs(c[i, j] - c[k, m]) < 5e-3 * scale
    assert np.abs(c[:3, 3:]).max() > 0.05 * scale  # really triclinic: normal-shear couplings present


def test_residual_stress_of_an_unrelaxed_cell_is_flagged():
    """A compressed cell measured without relaxation reports its residual stress and is flagged."""
    from mlip_props import load_potential

    emt = load_potential("emt")
    squeezed = elastic_tensor(emt, bulk("Cu", "fcc", a=3.40), relaxation=False)
    assert squeezed.residual_stress_GPa > 10 and not squeezed.residual_stress_ok
    assert "pre-stressed" in squeezed.notes[0]
    relaxed = elastic_tensor(emt, bulk("Cu", "fcc", a=3.40))
    assert relaxed.residual_stress_ok and relaxed.notes == () and relaxed.residual_stress_GPa < 0.01


def test_symmetry_strain_patterns_by_crystal_system():
    from ase.spacegroup import crystal

    from mlip_props.properties.elastic import point_group_rotations, symmetry_strain_patterns

    rutile = crystal(["Ti", "O"], [(0, 0, 0), (0.305, 0.305, 0)], spacegroup=136, cellpar=[4.59, 4.59, 2.96, 90, 90, 90])
    corundum = crystal(["Al", "O"], [(0, 0, 0.352), (0.306, 0, 0.25)], spacegroup=167,
                       cellpar=[4.76, 4.76, 12.99, 90, 90, 120], primitive_cell=True)
    triclinic = Atoms("Ar2", cell=[[5.0, 0.2, 0.1], [0.3, 5.4, 0.2], [0.1, 0.4, 5.8]],
                      scaled_positions=[[0, 0, 0], [0.31, 0.47, 0.53]], pbc=True)
    cases = {"m-3m": (bulk("Cu"), [0, 3]), "6/mmm": (bulk("Mg", "hcp", a=3.2, c=5.2), [0, 2, 3]),
             "4/mmm": (rutile, [0, 2, 3, 5]), "-3m": (corundum, [0, 2, 3]), "-1": (triclinic, [0, 1, 2, 3, 4, 5])}
    for group, (atoms, expected) in cases.items():
        rots, pg, _ = point_group_rotations(atoms)
        assert LAUE_CLASS[pg] == group
        assert symmetry_strain_patterns(rots) == expected


def test_symmetry_reduced_patterns_reproduce_all_six(sw):
    # the stresses of the other strains follow by symmetry: same tensor from 2 (cubic) or 3 (hcp) patterns
    lj = load_potential("lj:epsilon=0.0104,sigma=3.4")
    for pot, atoms in ((lj, bulk("Ar", "hcp", a=3.75, c=6.12)), (sw, bulk("Si", "diamond", a=5.43))):
        kw = dict(relaxation={"fmax_eV_A": 1e-6}, ion_optimizer="newton")  # ions converged far below the effect
        full = elastic_tensor(pot, atoms, strain_patterns="all", **kw)
        red = elastic_tensor(pot, atoms, strain_patterns="symmetry", **kw)
        assert red.n_strained_cells < full.n_strained_cells == 24
        # equal up to what a finite strain adds: the slopes of +-0.5, +-1 % strains carry third-order
        # terms ~ C''' eps^2 (~0.1 GPa), which differ between the strains along x, y and their
        # symmetry images along 60/120 degrees (hcp)
        scale = np.abs(full.C_GPa).max()
        assert np.allclose(red.C_clamped_ion_GPa, full.C_clamped_ion_GPa, atol=2e-3 * scale)
        assert np.allclose(red.C_GPa, full.C_GPa, atol=2e-3 * scale)


def test_newton_ion_relaxation_equals_fire(sw, si):
    newton = elastic_tensor(sw, bulk("Si", "diamond", a=5.43), ion_optimizer="newton")
    assert si.ion_optimizer == "fire" and newton.ion_optimizer == "newton" and newton.converged
    assert newton.ion_residual_force_eV_A < 1e-4 and si.ion_residual_force_eV_A < 1e-4
    assert np.allclose(newton.C_GPa, si.C_GPa, atol=2e-3 * np.abs(si.C_GPa).max())
    assert newton.C_GPa[3, 3] < newton.C_clamped_ion_GPa[3, 3]  # internal relaxation (Kleinman)
    assert 5 * newton.ion_relax_steps < si.ion_relax_steps  # the point of it


def test_sevenn_float32_hexagonal_mg():
    pytest.importorskip("sevenn")
    import torch

    from mlip_props.properties.relax import shared_relaxations

    pot = load_potential("sevenn")
    mg = bulk("Mg", "hcp", a=3.21, c=5.21)
    with shared_relaxations():  # one starting relaxation for both
        full = elastic_tensor(pot, mg, strain_patterns="all", dtype=torch.float32)
        red = elastic_tensor(pot, mg, dtype=torch.float32)
    assert red.precision == full.precision == "float32"
    assert red.converged and full.converged and red.born_stable
    assert red.strain_patterns == (0, 2, 3) and red.ion_optimizer == full.ion_optimizer == "newton"
    assert red.ion_residual_force_eV_A < 1e-3
    raw = full.C_raw_GPa  # independent strains: C66 from xy, C11 - C12 from xx
    assert raw[5, 5] == pytest.approx(0.5 * (raw[0, 0] - raw[0, 1]), rel=0.05)
    assert np.allclose(red.C_GPa, full.C_GPa, atol=0.02 * np.abs(full.C_GPa).max())
    assert red.C_GPa[5, 5] == pytest.approx(0.5 * (red.C_GPa[0, 0] - red.C_GPa[0, 1]), rel=1e-6)


def test_newton_reference_hessian_by_forward_differences_equals_analytic(sw):
    import torch

    from mlip_props.properties.ion_newton import reference_hessians

    si = bulk("Si", "diamond", a=5.43)
    si.rattle(0.01, seed=2)
    analytic = reference_hessians(sw, [si], dtype=torch.float64, device=None, method="analytic")[0]
    fd = reference_hessians(sw, [si], dtype=torch.float64, device=None)[0]
    assert np.allclose(fd, analytic, atol=1e-3 * np.abs(analytic).max())  # O(h) of h = 0.01 A
    # translations cost nothing, up to the O(h) anharmonic term that symmetrising mixes in
    assert np.abs(fd.reshape(2, 3, 2, 3).sum(axis=2)).max() < 2e-4 * np.abs(fd).max()
