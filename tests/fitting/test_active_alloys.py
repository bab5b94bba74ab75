"""Binary fcc alloy cells and the alloy explorer of active learning (mlip_props.fitting.active.alloys)."""
import numpy as np
import pytest

from mlip_props.fitting.active.alloys import (AlloyExplorer, cu_au_ordered_cells, fcc_solid_solution, ordered_fcc,
                                              vegard_lattice_constant)


def _on_fcc_sites(atoms, a: float, reps: int) -> bool:
    """Every position is an fcc lattice site of the cubic cell of side a*reps: integer coordinates
    (in units of a/2) whose sum is even."""
    q = atoms.get_scaled_positions() * 2 * reps
    return bool(np.allclose(q, np.round(q), atol=1e-9) and np.all(np.round(q).sum(1) % 2 == 0))


@pytest.mark.parametrize("x", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_solid_solution_composition_and_sites(x):
    at = fcc_solid_solution(("Cu", "Au"), x, reps=2, rng=3)
    assert len(at) == 32
    assert at.get_chemical_symbols().count("Cu") == round(32 * x)
    a = vegard_lattice_constant(("Cu", "Au"), x)
    assert np.allclose(at.cell.lengths(), 2 * a)
    assert _on_fcc_sites(at, a, 2)
    d = at.get_all_distances(mic=True)
    np.fill_diagonal(d, np.inf)
    assert np.isclose(d.min(), a / np.sqrt(2))  # nearest-neighbour distance of fcc
    assert np.all(np.isclose(d, a / np.sqrt(2)).sum(1) == 12)  # 12 nearest neighbours per site


def test_vegard_endpoints_from_reference_states():
    from ase.data import atomic_numbers, reference_states

    assert vegard_lattice_constant(("Cu", "Au"), 1.0) == reference_states[atomic_numbers["Cu"]]["a"]
    assert vegard_lattice_constant(("Cu", "Au"), 0.0) == reference_states[atomic_numbers["Au"]]["a"]


def test_solid_solution_seed_reproducible_and_random():
    a1 = fcc_solid_solution(("Cu", "Au"), 0.5, 2, rng=11)
    a2 = fcc_solid_solution(("Cu", "Au"), 0.5, 2, rng=11)
    a3 = fcc_solid_solution(("Cu", "Au"), 0.5, 2, rng=12)
    assert a1.get_chemical_symbols() == a2.get_chemical_symbols()
    assert np.allclose(a1.positions, a2.positions)
    assert a1.get_chemical_symbols() != a3.get_chemical_symbols()


def test_ordered_prototypes_neighbour_counts():
    cells = cu_au_ordered_cells(1)
    assert {k: (v.get_chemical_symbols().count("Cu"), v.get_chemical_symbols().count("Au"))
            for k, v in cells.items()} == {"Cu": (4, 0), "Au": (0, 4), "Cu3Au": (3, 1), "CuAu": (2, 2), "CuAu3": (1, 3)}
    big = ordered_fcc("L1_2", ("Cu", "Au"), reps=2, a=3.75)
    sym = np.array(big.get_chemical_symbols())
    d = big.get_all_distances(mic=True)
    nn = np.isclose(d, 3.75 / np.sqrt(2))
    # L1_2 Cu3Au: every Au has 12 Cu nearest neighbours; every Cu has 8 Cu and 4 Au
    assert np.all(nn[sym == "Au"][:, sym == "Cu"].sum(1) == 12)
    assert np.all(nn[sym == "Cu"][:, sym == "Au"].sum(1) == 4)
    l10 = ordered_fcc("L1_0", ("Cu", "Au"), reps=2, a=3.8)
    sym = np.array(l10.get_chemical_symbols())
    nn = np.isclose(l10.get_all_distances(mic=True), 3.8 / np.sqrt(2))
    # L1_0 CuAu: 4 like neighbours in the own (001) plane, 8 unlike ones in the planes above and below
    assert np.all(nn[sym == "Cu"][:, sym == "Cu"].sum(1) == 4)
    assert np.all(nn[sym == "Cu"][:, sym == "Au"].sum(1) == 8)


def test_alloy_explorer_proposal_reproducible():
    cells = list(cu_au_ordered_cells(1).values())
    ex = AlloyExplorer(("Cu", "Au"), (0.25, 0.5, 0.75), reps=2, ordered=cells, max_strain=0.03, rattle=0.05)
    p1 = ex.propose(None, 0, np.random.default_rng([0, 1]), (0.05, 1.0))
    p2 = ex.propose(None, 0, np.random.default_rng([0, 1]), (0.05, 1.0))
    assert len(p1.frames) == 3 + len(cells)
    assert [a.get_chemical_symbols().count("Cu") for a in p1.frames[:3]] == [8, 16, 24]
    for a, b in zip(p1.frames, p2.frames):
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        assert np.allclose(a.positions, b.positions) and np.allclose(a.cell, b.cell)
    # strained within the bound: volume ratio to the unstrained cell within (1 +- 1.5 * 0.03)^3
    v0 = 8 * vegard_lattice_constant(("Cu", "Au"), 0.5) ** 3
    assert abs(p1.frames[1].get_volume() / v0 - 1) < (1.045 ** 3 - 1)


def test_bad_input():
    with pytest.raises(ValueError, match="two different elements"):
        fcc_solid_solution(("Cu", "Cu"), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fcc_solid_solution(("Cu", "Au"), 1.5)
    with pytest.raises(ValueError, match="prototype"):
        ordered_fcc("B2", ("Cu", "Au"))
    with pytest.raises(ValueError, match="not fcc"):
        vegard_lattice_constant(("Cu", "Fe"), 0.5)
