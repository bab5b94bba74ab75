"""CHGNet 0.3.0 as a batched torch potential of the backend (:mod:`mlip_props.potentials.chgnet`).

Checks, on rattled diamond Si, rocksalt MgO, wurtzite GaN, a Cu(111) slab (periodic in two
directions) and a water molecule (isolated):

* energies, forces and stress equal CHGNet's own ASE calculator (an independent route: pymatgen
  neighbour search, CHGNet's own graph converter, bond/angle graphs and force/stress head) to
  float32 tolerances, in float32 and float64; the slab and the molecule against the calculator on
  the same atoms made periodic with more vacuum than the 6 A cutoff; CHGNet's raw stress (GPa)
  converts to the backend's eV/A^3 with the same sign;
* forces are minus the central finite-difference gradient of the energy, stress is the
  finite-strain derivative of E per volume (float64, :mod:`mlip_props.testing`);
* the analytic Hessian (double backward) is symmetric, equals the finite-difference Jacobian of
  the forces and its rows sum to zero;
* a structure gives the same answers alone and inside a mixed batch (crystals, slab, molecules,
  an isolated atom);
* an unknown element is a ``ValueError`` naming the structure; bad model names and dtypes too;
* the memory autograd saves per edge matches what the chunk planner assumes.

The weights ship inside the chgnet wheel: nothing here touches the network. One torch thread
(small tensors: threads only contend).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk, fcc111, molecule

pytest.importorskip("chgnet")

import mlip_props  # noqa: E402
from mlip_props import testing  # noqa: E402
from mlip_props.backend.batch import Batch  # noqa: E402
from mlip_props.backend.evaluate import evaluate_batch  # noqa: E402
from mlip_props.backend.neighbors import build_neighbor_graph  # noqa: E402
from mlip_props.potentials.chgnet import CHGNetPotential  # noqa: E402

VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
#: CHGNet's own stress head (the reference calculator) warns about its volume tensor
pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True")


@pytest.fixture(scope="module", autouse=True)
def _threads(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def pot():
    return mlip_props.load_potential("chgnet")


@pytest.fixture(scope="module")
def own_calculator():
    from chgnet.model.dynamics import CHGNetCalculator

    return CHGNetCalculator(use_device="cpu")


def _structures() -> dict[str, Atoms]:
    out = {
        "Si": bulk("Si", "diamond", a=5.43),
        "MgO": bulk("MgO", "rocksalt", a=4.21),
        "GaN": bulk("GaN", "wurtzite", a=3.19, c=5.19),
        "Cu111": fcc111("Cu", size=(2, 2, 2), vacuum=4.0),  # pbc (True, True, False), 8 A gap
        "H2O": molecule("H2O"),
    }
    for k, a in enumerate(out.values()):  # off equilibrium: real forces and stresses to compare
        a.rattle(0.02 if len(a) == 3 else 0.05, seed=k)
    return out


STRUCTURES = _structures()


def _as_periodic(atoms: Atoms) -> Atoms:
    """The same atoms in a fully periodic cell with no periodic image within CHGNet's 6 A."""
    a = atoms.copy()
    if not a.pbc.any():
        a.center(vacuum=6.0)
    a.pbc = True
    return a


def test_registry_builds_native_and_ase_routes(pot):
    assert isinstance(pot, CHGNetPotential)
    assert pot.cutoff == 6.0 and pot.bond_cutoff == 3.0  # CHGNet 0.3.0's atom and bond graphs
    assert pot.elements == frozenset(range(1, 95))
    assert getattr(mlip_props.load_potential("chgnet-ase"), "is_oracle", False)
    # weights_only checkpoints need no opt-in, and a global opt-in does not break the spec
    assert isinstance(mlip_props.load_potential("chgnet", trusted=True), CHGNetPotential)


@pytest.fixture(scope="module")
def own_results(own_calculator):
    """CHGNet's ASE calculator: (energy eV, forces eV/A, stress eV/A^3 Voigt or NaN)."""
    out = {}
    for name, atoms in STRUCTURES.items():
        ref = _as_periodic(atoms)
        ref.calc = own_calculator
        stress = ref.get_stress(voigt=True) if atoms.pbc.all() else np.full(6, np.nan)
        out[name] = (ref.get_potential_energy(), ref.get_forces(), stress)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_chgnet_ase_calculator(pot, own_results, dtype):
    names = list(STRUCTURES)
    res = mlip_props.evaluate(pot, [STRUCTURES[n] for n in names], ("energy", "forces", "stress"), dtype=dtype)
    for k, name in enumerate(names):
        energy, forces, stress = own_results[name]
        assert abs(res.energies_eV[k] - energy) / len(forces) < 1e-4, name
        np.testing.assert_allclose(res.forces_eV_A[k], forces, atol=1e-3, err_msg=name)
        np.testing.assert_allclose(res.stress_eV_A3[k], stress, atol=1e-4, equal_nan=True, err_msg=name)
    assert np.isnan(res.stress_eV_A3[names.index("H2O")]).all()  # not periodic: no stress
    for name in ("GaN", "Cu111", "H2O"):  # the comparison is not of zeros
        assert np.abs(res.forces_eV_A[names.index(name)]).max() > 0.1, name
    assert np.abs(res.stress_eV_A3[names.index("GaN")]).max() > 1e-2
    e_si = res.energies_eV[names.index("Si")] / 2
    assert -6.5 < e_si < -4.5  # bound diamond Si (MPtrj PBE total ~ -5.4 eV/atom)


def test_raw_chgnet_stress_is_GPa_with_the_backend_sign(pot, own_calculator):
    """CHGNet's model returns stress in GPa as (1/V) dE/d(strain) (ASE's sign); its calculator
    multiplies by ``units.GPa``. The backend's eV/A^3 equals the raw GPa figure / 160.2."""
    from pymatgen.io.ase import AseAtomsAdaptor

    gan = STRUCTURES["GaN"]
    raw = own_calculator.model.predict_structure(AseAtomsAdaptor.get_structure(gan), task="efs")
    raw_voigt_GPa = np.array([raw["s"][a, b] for a, b in VOIGT])
    ours = mlip_props.evaluate(pot, [gan], ("energy", "stress"), dtype=torch.float32).stress_eV_A3[0]
    np.testing.assert_allclose(ours, raw_voigt_GPa * units.GPa, atol=1e-5)
    assert np.abs(raw_voigt_GPa).max() > 1.0  # GPa-sized, not eV/A^3-sized


def test_forces_and_stress_are_energy_derivatives(pot):
    """float64, central differences with h = 1e-5 A / strain 1e-5 (mlip_props.testing). The
    O(h^2) truncation is measured: relative 1.2e-6 / 1.1e-8 (Si forces), 3.1e-6 / 3.1e-8 (GaN
    stress) at h = 1e-4 / 1e-5, so 1e-6 relative is a bound a wrong derivative fails."""
    for name in ("Si", "MgO", "H2O"):
        assert testing.force_error(pot, STRUCTURES[name]) < 1e-6, name
    assert testing.stress_error(pot, STRUCTURES["GaN"]) < 1e-6


def test_analytic_hessian_float64(pot):
    """Double backward through CHGNet: symmetric, = the central-difference Jacobian of the
    forces (h = 1e-5 A) and its rows sum to zero (translation invariance).

    CHGNet's energy surface has large high-order derivatives: in rattled Si the FD Jacobian's
    error relative to the largest force constant is 0.17, 0.071, 8.8e-3, 8.0e-4, 8.9e-5, 8.9e-7
    at h = 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5 A (clean h^2; CHGNet's own calculator's forces give
    the same FD error), hence the small step."""
    for name in ("Si", "H2O"):
        atoms = STRUCTURES[name]
        asym, fd = testing.hessian_errors(pot, atoms, h=1e-5)
        assert asym < 1e-10, name
        assert fd < 1e-5, name
        assert testing.acoustic_sum_rule_violation(pot, atoms) < 1e-9, name
    hess = mlip_props.evaluate(pot, [STRUCTURES["Si"]], ("energy", "hessian")).hessians_eV_A2[0]
    assert np.abs(hess).max() > 1.0  # real force constants (eV/A^2)


def test_alone_equals_inside_mixed_batch(pot):
    """Each structure alone = inside a float64 batch of 16 mixed structures (crystals, the slab,
    molecules, an isolated He atom without any edge); a leak between structures would show at
    the eV/A scale."""
    rng = np.random.default_rng(0)
    pool = list(STRUCTURES.values()) + [molecule("CH4"), Atoms("He", positions=[[0.0, 0.0, 0.0]])]
    others = []
    for k in range(15):
        a = pool[k % len(pool)].copy()
        a.rattle(0.03, seed=int(rng.integers(1 << 30)))
        others.append(a)
    for name, pos in (("GaN", 0), ("Cu111", 7), ("H2O", 15)):
        assert testing.batch_consistency_error(pot, STRUCTURES[name], others, position=pos) < 1e-9, name
    lone = mlip_props.evaluate(pot, [others[6]], ("energy", "forces"))  # the He atom: no edges
    assert np.isfinite(lone.energies_eV[0]) and np.abs(lone.forces_eV_A[0]).max() == 0.0


def test_unknown_element_names_structure_and_element(pot):
    americium = Atoms("Am2", positions=[[0, 0, 0], [1.8, 1.8, 1.8]], cell=[3.6, 3.6, 3.6], pbc=True)  # Z = 95
    with pytest.raises(ValueError, match=r"structure 1: .*Am"):
        mlip_props.evaluate(pot, [STRUCTURES["Si"], americium], ("energy",))


def test_bad_model_and_dtype_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown CHGNet model"):
        mlip_props.load_potential("chgnet:model=9.9.9")
    bad = tmp_path / "not_a_checkpoint.pth.tar"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable CHGNet checkpoint"):
        CHGNetPotential(model=str(bad))
    with pytest.raises(ValueError, match="dtype"):
        CHGNetPotential(dtype="float16")


def test_fixed_compute_precision_follows_gradients(pot):
    """dtype='float32' computes in float32 inside a float64 batch: equal to the float64 network
    to float32 precision; the float64 network's weights are the exact float32 ones."""
    p32 = CHGNetPotential(dtype="float32")
    si = STRUCTURES["Si"]
    a = mlip_props.evaluate(p32, [si], ("energy", "forces", "stress"))
    b = mlip_props.evaluate(pot, [si], ("energy", "forces", "stress"), dtype=torch.float64)
    assert a.energies_eV[0] == pytest.approx(b.energies_eV[0], abs=1e-4)
    np.testing.assert_allclose(a.forces_eV_A[0], b.forces_eV_A[0], atol=1e-4)
    np.testing.assert_allclose(a.stress_eV_A3[0], b.stress_eV_A3[0], atol=1e-5)
    assert a.energies_eV[0] != b.energies_eV[0]  # the float32 network did run


def test_bytes_per_edge_matches_saved_autograd_memory(pot):
    """The chunk planner's per-edge memory is what autograd really saves (float64 pass), for few
    angles per edge (diamond Si) and many (fcc Cu)."""
    for atoms in (bulk("Si", "diamond", a=5.43, cubic=True), bulk("Cu", "fcc", a=3.6, cubic=True)):
        atoms.rattle(0.05, seed=1)
        batch = Batch.from_structures([atoms], dtype=torch.float64)
        graph = build_neighbor_graph(batch, pot.cutoff)
        storages: dict[tuple[int, int], int] = {}

        def pack(t):
            s = t.untyped_storage()
            storages[(s.data_ptr(), s.nbytes())] = s.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            evaluate_batch(pot, batch, ("energy", "forces", "stress"), graph=graph)
        per_edge = sum(storages.values()) / graph.n_edges
        assert 0.5 * pot.bytes_per_edge < per_edge < 2.0 * pot.bytes_per_edge, atoms.get_chemical_formula()
