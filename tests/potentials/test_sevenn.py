"""SevenNet-0 as a batched torch potential of the backend (:mod:`mlip_props.potentials.sevenn`).

Checks, on structures of different bonding and symmetry (covalent diamond Si, ionic rocksalt
MgO, polar wurtzite GaN, metallic hcp Mg, a water molecule, a Cu(111) slab):

* energies, forces and stress equal SevenNet's own ASE calculator (an independent route: its
  own neighbour list, its own force/stress head) to float32 tolerances, in float32 and float64;
* forces are minus the central finite-difference gradient of the energy, stress is the
  finite-strain derivative of E per volume, the analytic Hessian (double backward) is symmetric,
  equals the finite-difference Jacobian of the forces and its crystal rows sum to zero;
* a structure gives the same answers alone and inside a batch of 50 mixed structures;
* unknown elements and untrusted checkpoint files are refused with clear errors;
* the memory the model's autograd saves per edge matches what the chunk planner assumes.

The checkpoint ships inside the sevenn wheel: nothing here touches the network.
"""
from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule

pytest.importorskip("sevenn")

import mlip_props  # noqa: E402
from mlip_props.backend.batch import Batch  # noqa: E402
from mlip_props.backend.evaluate import evaluate_batch  # noqa: E402
from mlip_props.backend.neighbors import build_neighbor_graph  # noqa: E402
from mlip_props.potentials.sevenn import SevenNetPotential  # noqa: E402

VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


@pytest.fixture(scope="module")
def pot():
    return mlip_props.load_potential("sevenn")


@pytest.fixture(scope="module")
def own_calculator():
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SevenNetCalculator("7net-0", device="cpu")


def _structures() -> dict[str, Atoms]:
    out = {
        "Si": bulk("Si", "diamond", a=5.43),
        "MgO": bulk("MgO", "rocksalt", a=4.21),
        "GaN": bulk("GaN", "wurtzite", a=3.19, c=5.19),
        "Mg": bulk("Mg", "hcp", a=3.21, c=5.21),
        "H2O": molecule("H2O"),
        "Cu111": fcc111("Cu", size=(2, 2, 3), vacuum=6.0, periodic=True),
    }
    for k, a in enumerate(out.values()):  # off equilibrium: real forces and stresses to compare
        a.rattle(0.02 if len(a) == 3 else 0.05, seed=k)
    return out


STRUCTURES = _structures()


def test_registry_builds_native_and_ase_routes(pot):
    assert isinstance(pot, SevenNetPotential)
    assert pot.cutoff == 5.0  # SevenNet-0's checkpoint cutoff
    assert {1, 8, 12, 14, 29, 31, 7}.issubset(pot.elements) and 84 not in pot.elements
    assert getattr(mlip_props.load_potential("sevenn-ase"), "is_oracle", False)


@pytest.fixture(scope="module")
def own_results(own_calculator):
    """SevenNet's ASE calculator on each structure: (energy eV, forces eV/A, stress eV/A^3 or NaN)."""
    out = {}
    for name, atoms in STRUCTURES.items():
        ref = atoms.copy()
        ref.calc = own_calculator
        stress = ref.get_stress(voigt=True) if ref.pbc.all() else np.full(6, np.nan)
        out[name] = (ref.get_potential_energy(), ref.get_forces(), stress)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_sevenn_ase_calculator(pot, own_results, dtype):
    names = list(STRUCTURES)
    res = mlip_props.evaluate(pot, [STRUCTURES[n] for n in names], ("energy", "forces", "stress"), dtype=dtype)
    for k, name in enumerate(names):
        energy, forces, stress = own_results[name]
        assert abs(res.energies_eV[k] - energy) / len(forces) < 1e-4, name
        np.testing.assert_allclose(res.forces_eV_A[k], forces, atol=1e-3, err_msg=name)
        np.testing.assert_allclose(res.stress_eV_A3[k], stress, atol=1e-4, equal_nan=True, err_msg=name)
    assert np.isnan(res.stress_eV_A3[names.index("H2O")]).all()  # a molecule has no stress
    assert np.abs(res.forces_eV_A[names.index("GaN")]).max() > 0.1  # the comparison is not of zeros
    assert np.abs(res.stress_eV_A3[names.index("Mg")]).max() > 1e-3
    e_si = res.energies_eV[names.index("Si")] / 2
    assert -6.5 < e_si < -4.5  # bound diamond Si (PBE cohesive ~4.6 eV/atom; total ~ -5.4 eV/atom)


def test_forces_and_stress_are_energy_derivatives(pot):
    """Central differences in float64 (h = 2.5e-4 A, strain 1e-4). The O(h^2) truncation is
    measured: 5e-5, 1.3e-5, 3.2e-6, 8e-7 eV/A for the stiffest water component at h = 2, 1, 0.5,
    0.25 mA, so 1e-5 eV/A is a tolerance a wrong force would not pass."""
    h, eps = 2.5e-4, 1e-4
    cases = [("Si", STRUCTURES["Si"]), ("H2O", STRUCTURES["H2O"]), ("GaN", STRUCTURES["GaN"])]
    batch, index = [], []
    for name, a in cases[:2]:
        for k in range(3 * len(a)):
            for sign in (1.0, -1.0):
                b = a.copy()
                b.positions[k // 3, k % 3] += sign * h
                batch.append(b)
            index.append((name, k))
    gan = STRUCTURES["GaN"]
    for a_, b_ in VOIGT:
        for sign in (1.0, -1.0):
            e = np.zeros((3, 3))
            e[a_, b_] = e[b_, a_] = sign * eps
            b = gan.copy()
            b.set_cell(gan.cell[:] @ (np.eye(3) + e), scale_atoms=True)
            batch.append(b)
    base = mlip_props.evaluate(pot, [a for _, a in cases], ("energy", "forces", "stress"))
    e = mlip_props.evaluate(pot, batch, ("energy",)).energies_eV
    for n, (name, k) in enumerate(index):
        f = base.forces_eV_A[[c[0] for c in cases].index(name)]
        fd = -(e[2 * n] - e[2 * n + 1]) / (2 * h)
        assert f[k // 3, k % 3] == pytest.approx(fd, abs=1e-5), f"{name} F[{k // 3},{k % 3}]"
    off, vol = 2 * len(index), gan.get_volume()
    for v in range(6):
        fd = (e[off + 2 * v] - e[off + 2 * v + 1]) / (2 * eps) / vol / (1 if v < 3 else 2)
        assert base.stress_eV_A3[2, v] == pytest.approx(fd, abs=1e-6), f"GaN stress[{v}]"
    assert np.abs(base.stress_eV_A3[2]).max() > 1e-3


def _fd_force_jacobian(pot, atoms: Atoms, h: float, dtype) -> np.ndarray:
    displaced = []
    for k in range(3 * len(atoms)):
        for sign in (1.0, -1.0):
            b = atoms.copy()
            b.positions[k // 3, k % 3] += sign * h
            displaced.append(b)
    f = mlip_props.evaluate(pot, displaced, ("forces",), dtype=dtype).forces_eV_A
    return np.array([-(f[2 * k] - f[2 * k + 1]).reshape(-1) / (2 * h) for k in range(3 * len(atoms))])


@pytest.fixture(scope="module")
def hessians64(pot):
    """Analytic float64 Hessians (eV/A^2) of rattled Si and water."""
    res = mlip_props.evaluate(pot, [STRUCTURES["Si"], STRUCTURES["H2O"]], ("energy", "hessian"))
    return res.hessians_eV_A2


def test_analytic_hessian_float64(pot, hessians64):
    """Double backward through SevenNet: symmetric, = the central-difference Jacobian of the
    forces (h = 1e-3 A; O(h^2) truncation with force constants up to ~50 eV/A^2 in water) and
    the crystal's rows sum to zero (translation invariance; the molecule's too)."""
    for atoms, hess in zip((STRUCTURES["Si"], STRUCTURES["H2O"]), hessians64):
        n = len(atoms)
        assert hess.shape == (3 * n, 3 * n)
        scale = np.abs(hess).max()
        assert scale > 1.0
        assert np.abs(hess - hess.T).max() < 1e-10 * scale
        np.testing.assert_allclose(hess, _fd_force_jacobian(pot, atoms, 1e-3, torch.float64), atol=2e-3)
        row_sums = hess.reshape(3 * n, n, 3).sum(axis=1)  # sum over atoms j of d2E/dx_i dx_j
        assert np.abs(row_sums).max() < 1e-10 * scale


def test_analytic_hessian_float32(pot, hessians64):
    """The model's own precision: the float32 Hessian equals the float64 one to float32
    accuracy, and its asymmetry and acoustic-sum-rule violation stay at float32 noise
    (~1e-6 of the largest force constant, far below a physical 0.01 THz)."""
    res = mlip_props.evaluate(pot, [STRUCTURES["Si"], STRUCTURES["H2O"]], ("energy", "hessian"), dtype=torch.float32)
    for atoms, hess, ref in zip((STRUCTURES["Si"], STRUCTURES["H2O"]), res.hessians_eV_A2, hessians64):
        n, scale = len(atoms), np.abs(ref).max()
        np.testing.assert_allclose(hess, ref, atol=1e-4 * scale)
        assert np.abs(hess - hess.T).max() < 1e-5 * scale
        assert np.abs(hess.reshape(3 * n, n, 3).sum(axis=1)).max() < 1e-5 * scale


def test_alone_equals_inside_mixed_batch(pot):
    """50 mixed structures (crystals, a slab, molecules; 2-12 atoms) in one float32 call: each
    equals its own evaluation alone (to float32 summation-order noise; a leak between
    structures of the batch would show at the eV/A scale)."""
    rng = np.random.default_rng(0)
    pool = [STRUCTURES[n] for n in ("Si", "MgO", "GaN", "Mg", "H2O")] + [molecule("CH4"), molecule("NH3")]
    mixed = [STRUCTURES["Cu111"].copy()]
    for k in range(49):
        a = pool[k % len(pool)].copy()
        a.rattle(0.03, seed=int(rng.integers(1 << 30)))
        mixed.append(a)
    props = ("energy", "forces", "stress")
    together = mlip_props.evaluate(pot, mixed, props, dtype=torch.float32)
    picks = [0, 1, 5, 6, 49]  # the slab, Si, water, CH4, the last
    alone = [mlip_props.evaluate(pot, [mixed[k]], props, dtype=torch.float32) for k in picks]
    for k, one in zip(picks, alone):
        assert together.energies_eV[k] == pytest.approx(one.energies_eV[0], abs=2e-5)
        np.testing.assert_allclose(together.forces_eV_A[k], one.forces_eV_A[0], atol=2e-5)
        np.testing.assert_allclose(together.stress_eV_A3[k], one.stress_eV_A3[0], atol=1e-6, equal_nan=True)


def test_unknown_element_names_structure_and_element(pot):
    polonium = bulk("Po", "sc", a=3.35)
    with pytest.raises(ValueError, match=r"structure 1: .*Po"):
        mlip_props.evaluate(pot, [STRUCTURES["Si"], polonium], ("energy",))


def test_checkpoint_files_need_trust(tmp_path):
    import sevenn._const

    path = tmp_path / "my_checkpoint.pth"
    shutil.copy(sevenn._const.SEVENNET_0_11Jul2024, path)
    with pytest.raises(ValueError, match="trusted=True"):
        mlip_props.load_potential(f"sevenn:model={path}")
    with pytest.raises(ValueError, match="unknown SevenNet model"):
        mlip_props.load_potential("sevenn:model=7net-nonexistent")
    with pytest.raises(ValueError, match="dtype"):
        SevenNetPotential(dtype="float16")


def test_fixed_compute_precision_follows_gradients(pot):
    """dtype='float32' computes in float32 inside a float64 batch; results agree with the
    float64 network to float32 precision and stay energy derivatives."""
    p32 = SevenNetPotential(dtype="float32")
    si = STRUCTURES["Si"]
    a = mlip_props.evaluate(p32, [si], ("energy", "forces", "stress"))
    b = mlip_props.evaluate(pot, [si], ("energy", "forces", "stress"), dtype=torch.float64)
    assert a.energies_eV[0] == pytest.approx(b.energies_eV[0], abs=1e-4)
    np.testing.assert_allclose(a.forces_eV_A[0], b.forces_eV_A[0], atol=1e-4)
    np.testing.assert_allclose(a.stress_eV_A3[0], b.stress_eV_A3[0], atol=1e-5)
    assert a.energies_eV[0] != b.energies_eV[0]  # the float32 network did run


def test_bytes_per_edge_matches_saved_autograd_memory(pot):
    """The chunk planner's per-edge memory is what autograd really saves (float64 pass)."""
    si = bulk("Si", "diamond", a=5.43, cubic=True)
    si.rattle(0.05, seed=1)
    batch = Batch.from_structures([si], dtype=torch.float64)
    graph = build_neighbor_graph(batch, pot.cutoff)
    storages: dict[tuple[int, int], int] = {}

    def pack(t):
        s = t.untyped_storage()
        storages[(s.data_ptr(), s.nbytes())] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        evaluate_batch(pot, batch, ("energy", "forces", "stress"), graph=graph)
    per_edge = sum(storages.values()) / graph.n_edges
    assert 0.5 * pot.bytes_per_edge < per_edge < 2.0 * pot.bytes_per_edge
