"""Size guards (mlip_props/backend/guards.py): estimates made before the work, refusals that name
the structure, the estimate and the knob, and estimates checked against what they estimate."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111, make_supercell, molecule

from mlip_props import evaluate
from mlip_props.backend import guards
from mlip_props.backend.guards import (SizeLimitError, check_dense_hessians, check_neighbor_search,
                                       neighbor_search_estimate)
from mlip_props.backend.neighbors import _box_for, structure_neighbors
from mlip_props.potentials import load_potential
from mlip_props.properties.phonons import phonons
from mlip_props.properties.phonons.cells import check_supercell_size, choose_supercell
from mlip_props.structures import load_structure

LJ = "lj:epsilon=0.4,sigma=2.3"  # cutoff 6.9 A


@pytest.fixture(autouse=True)
def _default_limits(monkeypatch):
    for env in guards.LIMITS:
        monkeypatch.delenv(env, raising=False)


# --- dense Hessians ---------------------------------------------------------------------------
def test_dense_hessian_of_thousands_of_atoms_is_refused_with_estimate_and_knob():
    with pytest.raises(SizeLimitError, match=r"structure 2: the dense Hessian \(20,736 x 20,736\) of its 6,912 atoms"
                                             r".*GiB.*MLIP_PROPS_MAX_HESSIAN_GIB") as info:
        check_dense_hessians([8, 64, 6912], ("energy", "hessian"))
    # the estimate: the results of all structures plus one more copy of the largest (float64)
    expected = (2 * (3 * 6912) ** 2 + (3 * 64) ** 2 + (3 * 8) ** 2) * 8 / 2**30
    assert f"{expected:.2f} GiB" in str(info.value)
    with pytest.raises(SizeLimitError, match="2,048 atoms.*6,144 Hessian-vector products"):
        check_dense_hessians([2048])
    with pytest.raises(SizeLimitError, match="12,288 single points of the oracle"):
        check_dense_hessians([2048], oracle=True)


def test_dense_hessian_guard_passes_small_jobs_and_follows_its_knob(monkeypatch):
    check_dense_hessians([2048], ("energy", "forces"))  # no Hessian asked: nothing to guard
    check_dense_hessians([300] * 10)  # vibrations of ten 300-atom molecules: 0.06 GiB
    check_dense_hessians([2048], max_gib=1.0)  # 0.56 GiB
    check_dense_hessians([2048], dtype="torch.float32", max_gib=0.3)  # 4-byte numbers: 0.28 GiB
    monkeypatch.setenv("MLIP_PROPS_MAX_HESSIAN_GIB", "1")
    check_dense_hessians([2048])
    monkeypatch.setenv("MLIP_PROPS_MAX_HESSIAN_GIB", "0.001")
    with pytest.raises(SizeLimitError, match="above the limit of 0.001 GiB"):
        check_dense_hessians([100])
    monkeypatch.setenv("MLIP_PROPS_MAX_HESSIAN_GIB", "-1")
    with pytest.raises(ValueError, match="MLIP_PROPS_MAX_HESSIAN_GIB.*positive number"):
        check_dense_hessians([100])


def test_dense_hessian_guard_refuses_more_than_the_memory_available(monkeypatch):
    monkeypatch.setattr(guards, "available_memory_bytes", lambda device=None: 2**20)
    with pytest.raises(SizeLimitError, match=r"structure 0.*more than the 0.00 GiB of memory available"):
        check_dense_hessians([200], max_gib=100.0)


def test_dense_hessian_estimate_bounds_the_arrays_it_estimates():
    """The estimate counts the (3n)^2 numbers the backend hands back, twice for the largest."""
    atoms = [molecule("CH4"), molecule("H2O")]
    res = evaluate(load_potential(LJ), atoms, ("energy", "hessian"))
    held = sum(np.asarray(h).nbytes for h in res.hessians_eV_A2)
    est = sum((3.0 * len(a)) ** 2 * 8 for a in atoms) + (3.0 * 5) ** 2 * 8
    assert held == sum((3 * len(a)) ** 2 * 8 for a in atoms) and est > held
    check_dense_hessians([len(a) for a in atoms], max_gib=1.01 * est / 2**30)
    with pytest.raises(SizeLimitError):
        check_dense_hessians([len(a) for a in atoms], max_gib=0.99 * est / 2**30)


def test_evaluate_refuses_a_dense_hessian_above_the_limit(monkeypatch):
    monkeypatch.setenv("MLIP_PROPS_MAX_HESSIAN_GIB", "1e-6")
    t = time.perf_counter()
    with pytest.raises(SizeLimitError, match="structure 1: the dense Hessian"):
        evaluate(load_potential(LJ), [molecule("N2"), bulk("Cu", cubic=True)], ("energy", "hessian"))
    assert time.perf_counter() - t < 5.0


# --- neighbour lists --------------------------------------------------------------------------
def _thin(d: float, w: float) -> Atoms:
    return Atoms("Cu", cell=np.diag([d, w, w]), pbc=True)


@pytest.mark.parametrize("dims, cutoff, crashes", [((10.0, 3000.0, 3000.0), 8.0, True),
                                                   ((20.0, 3000.0, 3000.0), 8.0, False)])
def test_crash_prediction_agrees_with_vesin_itself(dims, cutoff, crashes):
    """The guard's copy of vesin's cell-list arithmetic predicts the floating-point exception that
    kills the process (here run in a child process on purpose) and the near case that does not."""
    est = neighbor_search_estimate(np.zeros((1, 3)), np.diag(dims), [True] * 3, cutoff)
    assert est.crashes is crashes
    if not crashes:  # safe in this process
        from vesin import NeighborList

        NeighborList(cutoff=cutoff, full_list=True).compute(points=np.zeros((1, 3)), box=np.diag(dims),
                                                            periodic=[True] * 3, quantities="ij")
        return
    code = ("import numpy as np; from vesin import NeighborList; "
            f"NeighborList(cutoff={cutoff}, full_list=True).compute(points=np.zeros((1, 3)), "
            f"box=np.diag({list(dims)}), periodic=[True] * 3, quantities='ij')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode != 0, proc.stderr[-300:]  # killed by SIGFPE (-8)


def test_thin_wide_cell_is_refused_instead_of_killing_the_process():
    # 10 A thick, 3000 A wide: vesin's cell list would get zero bins along the thin direction
    with pytest.raises(SizeLimitError, match=r"structure 1: neighbour list of 1 atoms within 6.9 A.*vesin.*repeat"):
        evaluate(load_potential(LJ), [bulk("Cu"), _thin(10.0, 3000.0)], ("energy", "forces"))


def test_thin_cell_with_very_many_images_is_refused_by_its_time_estimate():
    # 0.001 A thick: ~7,000 images each way along it, in 217 x 217 bins (vesin: minutes)
    t = time.perf_counter()
    with pytest.raises(SizeLimitError, match=r"structure 0: .*about \d.* s, above the limit of 120 s"
                                             r".*MLIP_PROPS_MAX_NEIGHBOR_S"):
        evaluate(load_potential(LJ), [_thin(0.001, 1500.0)], ("energy",))
    assert time.perf_counter() - t < 5.0


def test_huge_cutoff_is_refused_before_the_search():
    t = time.perf_counter()
    with pytest.raises(SizeLimitError, match=r"structure 0: neighbour list of 1 atoms within 1000 A.*pairs, "
                                             r"[\d.]+ GiB, above the limit of 8 GiB.*MLIP_PROPS_MAX_NEIGHBOR_GIB"):
        evaluate(load_potential("lj:epsilon=0.4,sigma=2.3,cutoff=1000"), bulk("Cu"), ("energy", "forces"))
    assert time.perf_counter() - t < 5.0


def test_neighbor_limit_follows_its_knob(monkeypatch):
    cu = bulk("Cu", cubic=True).repeat(3)
    monkeypatch.setenv("MLIP_PROPS_MAX_NEIGHBOR_GIB", "1e-4")  # 100 KiB: ~400 pairs
    with pytest.raises(SizeLimitError, match="above the limit of 0.0001 GiB"):
        evaluate(load_potential(LJ), [cu], ("energy",))
    monkeypatch.delenv("MLIP_PROPS_MAX_NEIGHBOR_GIB")
    assert np.isfinite(evaluate(load_potential(LJ), [cu], ("energy",)).energies_eV).all()


@pytest.mark.parametrize("name", ["fcc cubic 4x4x4", "fcc primitive", "diamond", "slab", "C60", "chain"])
def test_pair_estimate_agrees_with_the_neighbour_list(name):
    """Estimated pairs within a factor 3 of the pairs vesin finds (uniform density plus the
    atoms' own images), for bulk, a slab, a molecule and a periodic chain."""
    atoms = {
        "fcc cubic 4x4x4": lambda: bulk("Cu", cubic=True).repeat(4),
        "fcc primitive": lambda: bulk("Cu"),
        "diamond": lambda: bulk("Si"),
        "slab": lambda: fcc111("Cu", (3, 3, 4), vacuum=8.0),
        "C60": lambda: molecule("C60"),
        "chain": lambda: Atoms("Cu4", positions=[[0, 0, 2.5 * k] for k in range(4)], cell=[10, 10, 10],
                               pbc=[False, False, True]),
    }[name]()
    cutoff = 6.9
    est = neighbor_search_estimate(atoms.positions, _box_for(np.asarray(atoms.cell), atoms.pbc), atoms.pbc, cutoff)
    found = len(structure_neighbors(atoms.positions, np.asarray(atoms.cell), atoms.pbc, cutoff)[0])
    assert found / 3 <= est.pairs <= 3 * found, (est.pairs, found)
    assert est.bytes == pytest.approx(est.pairs * guards.BYTES_PER_PAIR)
    check_neighbor_search(atoms.positions, _box_for(np.asarray(atoms.cell), atoms.pbc), atoms.pbc, cutoff)


# --- structures built from names --------------------------------------------------------------
def test_huge_repeat_is_refused_before_it_is_built(monkeypatch):
    t = time.perf_counter()
    with pytest.raises(SizeLimitError, match=r"structure 'Cu:fcc:repeat=300x300x300' \(1 atom repeated "
                                             r"300x300x300\): 27,000,000 atoms.*GiB.*MLIP_PROPS_MAX_ATOMS"):
        load_structure("Cu:fcc:repeat=300x300x300")
    with pytest.raises(SizeLimitError, match="GaN-wurtzite.*4 atoms repeated.*108,000,000 atoms"):
        load_structure("GaN-wurtzite:repeat=300x300x300")
    assert time.perf_counter() - t < 2.0
    monkeypatch.setenv("MLIP_PROPS_MAX_ATOMS", "10")
    assert len(load_structure("Cu:fcc:repeat=2x2x2")) == 8
    with pytest.raises(SizeLimitError, match="27 atoms.*above the limit of 10 atoms"):
        load_structure("Cu:fcc:repeat=3x3x3")


# --- phonon supercells ------------------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    ({"supercell": 40}, r"supercell 40 \(64,000 cells.*at least 64,000 atoms"),
    ({"supercell": [[40, 0, 0], [0, 40, 0], [0, 0, 40]]}, "at least 64,000 atoms"),
    ({"min_length_A": 200.0}, r"structure 0 \(1 atom\): the phonon supercell .* for min_length_A=200 "
                              r"\(702,464 cells\): 702,464 atoms"),
])
def test_huge_phonon_supercell_is_refused_before_phonopy_builds_it(options, message):
    t = time.perf_counter()
    with pytest.raises(SizeLimitError, match=message + r".*above the limit of 5,000 atoms.*"
                                                       r"MLIP_PROPS_MAX_SUPERCELL_ATOMS"):
        phonons(load_potential(LJ), bulk("Cu"), relaxation=False, **options)
    assert time.perf_counter() - t < 5.0


def test_supercell_atom_count_agrees_with_the_built_supercell(monkeypatch):
    si = bulk("Si")  # 2 atoms, fcc lattice
    smat = np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]]) * 2  # phonopy's column convention
    n = check_supercell_size(si, smat, index=3)
    assert n == len(make_supercell(si, smat.T)) == 64
    chosen = choose_supercell(si, 10.0)
    assert check_supercell_size(si, chosen) == len(make_supercell(si, chosen.T))
    with pytest.raises(SizeLimitError, match=r"structure 3 \(2 atoms\): the phonon supercell .*64 atoms"):
        check_supercell_size(si, smat, index=3, max_atoms=63)
    monkeypatch.setenv("MLIP_PROPS_MAX_SUPERCELL_ATOMS", "63")
    with pytest.raises(SizeLimitError, match="above the limit of 63 atoms"):
        check_supercell_size(si, smat)
