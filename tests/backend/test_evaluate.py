import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from mlip_props import evaluate, evaluate_batch, load_potential
from mlip_props.backend import Batch, Potential
from mlip_props.potentials import LennardJones, Morse

from .structures import cluster, triclinic_cell


def test_emt_oracle_agrees_with_ase():
    emt = load_potential("emt")
    frames = []
    for k, sym in enumerate(["Cu", "Al", "Au"]):
        a = bulk(sym, "fcc", a={"Cu": 3.6, "Al": 4.05, "Au": 4.08}[sym], cubic=True).repeat((2, 1, 1))
        a.rattle(0.05, seed=k)
        frames.append(a)
    res = evaluate(emt, frames, ("energy", "forces", "stress"))
    for k, a in enumerate(frames):
        a.calc = EMT()
        assert res.energies_eV[k] == pytest.approx(a.get_potential_energy(), abs=1e-12)
        assert np.allclose(res.forces_eV_A[k], a.get_forces(), atol=1e-12)
        assert np.allclose(res.stress_eV_A3[k], a.get_stress(), atol=1e-12)


def test_emt_finite_difference_hessian_matches_its_forces():
    emt = load_potential("emt")
    a = bulk("Cu", "fcc", a=3.6, cubic=True)
    a.rattle(0.02, seed=3)
    h = evaluate(emt, [a], ("energy", "hessian")).hessians_eV_A2[0]
    assert np.allclose(h, h.T)
    assert np.abs(h.reshape(12, 4, 3).sum(axis=1)).max() < 1e-3  # sum rule to FD accuracy


def test_lj_stress_sign_matches_ase_convention():
    """Compressed crystal: positive pressure, negative (ASE) stress."""
    lj = LennardJones(0.4, 2.3)
    s = evaluate(lj, [bulk("Cu", "fcc", a=3.2)], ("energy", "stress")).stress_GPa[0]
    assert np.all(s[:3] < 0)


def test_molecule_stress_is_nan():
    s = evaluate(LennardJones(0.4, 2.3), [cluster(2.5)], ("energy", "stress")).stress_eV_A3[0]
    assert np.isnan(s).all()


def test_chunking_by_memory_budget_gives_identical_results():
    lj = LennardJones(0.4, 2.3)
    frames = [triclinic_cell(2.55, seed=k) for k in range(30)]
    big = evaluate(lj, frames, ("energy", "forces", "stress", "hessian"))
    tiny = evaluate(lj, frames, ("energy", "forces", "stress", "hessian"), memory_budget=50_000)
    assert np.allclose(big.energies_eV, tiny.energies_eV, rtol=1e-12)
    assert all(np.allclose(a, b, atol=1e-12) for a, b in zip(big.forces_eV_A, tiny.forces_eV_A))
    assert np.allclose(big.stress_eV_A3, tiny.stress_eV_A3, atol=1e-14)
    assert all(np.allclose(a, b, atol=1e-10) for a, b in zip(big.hessians_eV_A2, tiny.hessians_eV_A2))


def test_float32_on_request():
    lj = LennardJones(0.4, 2.3)
    a = triclinic_cell(2.55)
    r64 = evaluate(lj, [a], ("energy", "forces"))
    r32 = evaluate(lj, [a], ("energy", "forces"), dtype=torch.float32)
    assert r32.energies_eV.dtype == np.float32
    assert r32.energies_eV[0] == pytest.approx(r64.energies_eV[0], rel=1e-5)


def test_pymatgen_structures_are_accepted():
    from pymatgen.io.ase import AseAtomsAdaptor

    a = triclinic_cell(2.55)
    lj = LennardJones(0.4, 2.3)
    e_ase = evaluate(lj, [a], ("energy",)).energies_eV[0]
    e_pmg = evaluate(lj, [AseAtomsAdaptor.get_structure(a)], ("energy",)).energies_eV[0]
    assert e_pmg == pytest.approx(e_ase, rel=1e-12)


def test_energy_and_forces_continuous_at_cutoff():
    lj = LennardJones(0.4, 2.3)
    rc = lj.cutoff
    r = np.array([rc - 1e-3, rc - 1e-6, rc + 1e-6])
    res = evaluate(lj, [Atoms("Ar2", positions=[[0, 0, 0], [x, 0, 0]]) for x in r], ("energy", "forces"))
    assert abs(res.energies_eV[1]) < 1e-12 and res.energies_eV[2] == 0.0
    assert abs(res.energies_eV[0]) < 1e-8
    assert abs(res.forces_eV_A[1][0, 0]) < 1e-9


class _ToyCommittee(Potential):
    """Two Morse members with different depths: per-atom energies (N, 2)."""

    n_members = 2

    def __init__(self):
        super().__init__(cutoff=8.0)
        self.members = torch.nn.ModuleList([Morse(0.30, 1.36, 2.87, cutoff=8.0), Morse(0.36, 1.36, 2.87, cutoff=8.0)])

    def forward(self, graph):
        return torch.stack([m(graph) for m in self.members], dim=-1)


def test_committee_member_axis_matches_members():
    com = _ToyCommittee()
    frames = [triclinic_cell(2.6), bulk("Cu", "fcc", a=3.61)]
    res = evaluate(com, frames, ("energy", "forces", "stress"))
    assert res.energies_eV.shape == (2, 2)
    assert res.stress_eV_A3.shape == (2, 2, 6)
    for m, member in enumerate(com.members):
        single = evaluate(member, frames, ("energy", "forces", "stress"))
        assert np.allclose(res.energies_eV[:, m], single.energies_eV, rtol=1e-12)
        assert np.allclose(res.forces_eV_A[0][m], single.forces_eV_A[0], atol=1e-12)
        assert np.allclose(res.stress_eV_A3[:, m], single.stress_eV_A3, atol=1e-14)


def test_evaluate_batch_returns_tensors_for_torch_and_oracle():
    frames = [bulk("Cu", "fcc", a=3.6), bulk("Cu", "fcc", a=3.7)]
    batch = Batch.from_structures(frames)
    for pot in (LennardJones(0.4, 2.3), load_potential("emt")):
        out = evaluate_batch(pot, batch, ("energy", "forces", "stress"))
        assert out.energies.shape == (2,) and out.forces.shape == (2, 3) and out.stress.shape == (2, 6)


def test_many_structures_in_chunks():
    """10,000 small structures run through the chunker without exhausting memory."""
    lj = LennardJones(0.4, 2.3)
    base = bulk("Cu", "fcc", a=3.6)
    frames = []
    for k in range(10_000):
        a = base.copy()
        a.set_cell(base.cell * (1 + 1e-4 * (k % 50)), scale_atoms=True)
        frames.append(a)
    res = evaluate(lj, frames, ("energy", "forces", "stress"), memory_budget=64 << 20)
    assert res.energies_eV.shape == (10_000,)
    assert np.all(np.isfinite(res.stress_eV_A3))
    assert res.energies_eV[0] == pytest.approx(res.energies_eV[50], rel=1e-12)


def _mixed_frames():
    from .structures import small_cell

    frames = [small_cell(2.5, seed=1), triclinic_cell(2.5), cluster(2.5)]
    slab = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 1))
    slab.pbc = (True, True, False)
    slab.rattle(0.05, seed=4)
    return frames + [slab]


@pytest.mark.parametrize("make", [
    lambda: LennardJones(epsilon=0.4, sigma=2.3, cutoff=6.0, switch_width=1.0),
    lambda: load_potential("morse+zbl"),
    lambda: load_potential("sw"),
])
def test_edge_gradient_route_equals_position_strain_route(make):
    """Forces/stress from dE/dr_edges (edge_only potentials) equal those from dE/dx and dE/d(strain)."""
    pot = make()
    frames = _mixed_frames() if pot.elements is None or 29 in pot.elements else None
    if frames is None:
        frames = [bulk("Si", "diamond", a=5.43), triclinic_cell(2.3, "Si")]
        frames[0].rattle(0.05, seed=2)
    batch = Batch.from_structures(frames)
    fast = evaluate_batch(pot, batch, ("energy", "forces", "stress"))
    assert pot.edge_only
    pot.edge_only = False  # instance attribute: force the position/strain route
    slow = evaluate_batch(pot, batch, ("energy", "forces", "stress"))
    assert torch.allclose(fast.energies, slow.energies, rtol=1e-12, atol=1e-12)
    assert torch.allclose(fast.forces, slow.forces, rtol=1e-10, atol=1e-10)
    ok = ~torch.isnan(slow.stress)
    assert torch.equal(ok, ~torch.isnan(fast.stress))
    assert torch.allclose(fast.stress[ok], slow.stress[ok], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("half", [True, False])
@pytest.mark.parametrize("make", [
    lambda: LennardJones(epsilon=0.4, sigma=2.3, cutoff=6.0, switch_width=1.0),
    lambda: LennardJones(epsilon=0.4, sigma=2.3, cutoff=6.0, switch_width=0.0),
    lambda: Morse(D=0.34, a=1.36, r0=2.6, cutoff=7.0, switch_width=1.5),
    lambda: load_potential("morse+zbl"),
])
def test_closed_form_edge_gradients_equal_autograd(make, half):
    """Pair potentials' closed-form dE/dr_e give autograd's energies, forces and stress (the
    morse+zbl sum: ZBL's 2 A cutoff sees only part of the graph's edges)."""
    import importlib

    from mlip_props.backend import build_neighbor_graph

    ev = importlib.import_module("mlip_props.backend.evaluate")
    pot = make()
    assert pot.closed_form_edge_gradients
    frames = _mixed_frames()
    frames[0].positions[1] = frames[0].positions[0] + [0.4, 0.3, 0.2]  # inside ZBL's core
    batch = Batch.from_structures(frames)
    graph = build_neighbor_graph(batch, pot.cutoff, half=half)
    fast = evaluate_batch(pot, batch, ("energy", "forces", "stress"), graph=graph)
    ev.USE_CLOSED_FORM_EDGE_GRADIENTS = False
    try:
        ref = evaluate_batch(pot, batch, ("energy", "forces", "stress"), graph=graph)
    finally:
        ev.USE_CLOSED_FORM_EDGE_GRADIENTS = True
    fmax = float(ref.forces.abs().max())
    assert fmax > 1.0  # the close pair matters
    assert torch.allclose(fast.per_atom_energies, ref.per_atom_energies, rtol=1e-12, atol=1e-12)
    assert torch.allclose(fast.forces, ref.forces, rtol=1e-12, atol=1e-12 * fmax)
    ok = ~torch.isnan(ref.stress)
    assert torch.equal(ok, ~torch.isnan(fast.stress))
    assert torch.allclose(fast.stress[ok], ref.stress[ok], rtol=1e-12, atol=1e-13 * fmax)


def test_pair_potential_with_its_own_forward_is_not_bypassed():
    """A PairPotential subclass that adds to the energy in its own forward (here an edge-only
    term, so the edge route is taken) goes through autograd: the closed form would silently drop
    the extra term."""
    import importlib

    ev = importlib.import_module("mlip_props.backend.evaluate")

    class WithSprings(LennardJones):
        def forward(self, graph):
            g = graph.within(self.cutoff)
            springs = torch.zeros_like(g.numbers, dtype=g.edge_lengths.dtype).index_add(
                0, g.edge_index[0], 0.01 * (g.edge_lengths - 2.5) ** 2)
            return super().forward(graph) + springs

    a = bulk("Cu", "fcc", a=3.6, cubic=True)
    a.rattle(0.05, seed=3)
    plain = LennardJones(epsilon=0.4, sigma=2.3, cutoff=5.0, switch_width=1.0)
    pot = WithSprings(epsilon=0.4, sigma=2.3, cutoff=5.0, switch_width=1.0)
    assert plain.closed_form_edge_gradients and not pot.closed_form_edge_gradients and pot.edge_only
    res = evaluate(pot, [a], ("energy", "forces", "stress"))
    ev.USE_CLOSED_FORM_EDGE_GRADIENTS = False
    try:
        ref = evaluate(pot, [a], ("energy", "forces", "stress"))
    finally:
        ev.USE_CLOSED_FORM_EDGE_GRADIENTS = True
    assert np.allclose(res.forces_eV_A[0], ref.forces_eV_A[0], atol=1e-12)
    assert np.allclose(res.stress_eV_A3, ref.stress_eV_A3, atol=1e-14)
    lj = evaluate(plain, [a], ("energy", "forces"))
    assert abs(res.energies_eV[0] - lj.energies_eV[0]) > 1e-3  # the extra term is there
    assert np.abs(res.forces_eV_A[0] - lj.forces_eV_A[0]).max() > 1e-3


def test_half_neighbour_list_equals_full_list_for_pair_potentials():
    """A pairwise potential on a half list (each pair once) gives the full list's per-atom energies."""
    from mlip_props.backend import build_neighbor_graph

    pot = LennardJones(epsilon=0.4, sigma=2.3, cutoff=6.0, switch_width=1.0)
    assert pot.pairwise
    batch = Batch.from_structures(_mixed_frames())
    full = build_neighbor_graph(batch, pot.cutoff)
    half = build_neighbor_graph(batch, pot.cutoff, half=True)
    assert 2 * half.n_edges == full.n_edges
    a = evaluate_batch(pot, batch, ("energy", "forces", "stress", "hessian"), graph=full)
    b = evaluate_batch(pot, batch, ("energy", "forces", "stress", "hessian"), graph=half)
    assert torch.allclose(a.per_atom_energies, b.per_atom_energies, rtol=1e-12, atol=1e-14)
    assert torch.allclose(a.forces, b.forces, atol=1e-11)
    ok = ~torch.isnan(a.stress)
    assert torch.allclose(a.stress[ok], b.stress[ok], atol=1e-12)
    for ha, hb in zip(a.hessians, b.hessians):
        assert torch.allclose(ha, hb, atol=1e-10)
    # a many-body potential never receives a half list: it is rebuilt full
    sw = load_potential("sw")
    si = Batch.from_structures([bulk("Si", "diamond", a=5.43)])
    e_half = evaluate_batch(sw, si, ("energy",), graph=build_neighbor_graph(si, sw.cutoff, half=True)).energies
    e_full = evaluate_batch(sw, si, ("energy",)).energies
    assert torch.allclose(e_half, e_full, rtol=1e-12)


@pytest.mark.parametrize("spec", ["lj", "sw"])
def test_lists_shared_by_displaced_copies_give_exact_results(spec):
    """Copies of one cell within the skin reuse one neighbour list: results equal separate lists."""
    from mlip_props.backend.neighbors import SHARED_LIST_SKIN_A, shared_neighbor_lists
    from mlip_props.backend.batch import pack_structures

    if spec == "lj":
        pot = LennardJones(epsilon=0.4, sigma=2.3, cutoff=5.0, switch_width=1.0)
        base = bulk("Cu", "fcc", a=3.6, cubic=True)
    else:
        pot = load_potential("sw")
        base = bulk("Si", "diamond", a=5.43, cubic=True)
    frames = []
    for k, amp in enumerate([0.0, 0.05, 0.08, 0.6, 0.02]):  # 0.6 A: beyond the skin, its own list
        a = base.copy()
        a.rattle(amp, seed=k) if amp else None
        frames.append(a)
    other = base.copy()
    other.set_cell(base.cell * 1.01, scale_atoms=True)  # another cell: its own list
    frames.insert(2, other)
    lists, disp, extra = shared_neighbor_lists(pack_structures(frames), pot.cutoff, half=pot.pairwise)
    assert extra == SHARED_LIST_SKIN_A and disp is not None
    assert lists[1] is lists[0] and lists[3] is lists[0] and lists[5] is lists[0]
    assert lists[4] is not lists[0] and lists[2] is not lists[0]
    shared = evaluate(pot, frames)
    separate = [evaluate(pot, [a]) for a in frames]
    for k, r in enumerate(separate):
        assert shared.energies_eV[k] == pytest.approx(r.energies_eV[0], rel=1e-12, abs=1e-12)
        assert np.allclose(shared.forces_eV_A[k], r.forces_eV_A[0], atol=1e-11)
        assert np.allclose(shared.stress_eV_A3[k], r.stress_eV_A3[0], atol=1e-13)
    # a sharing copy in which two atoms (0.3 A apart in the reference) meet: still named
    close = base.copy()
    close.positions[1] = close.positions[0] + [0.3, 0.0, 0.0]
    meet = close.copy()
    meet.positions[0] += [0.15, 0.0, 0.0]
    meet.positions[1] -= [0.15, 0.0, 0.0]
    lists, _, _ = shared_neighbor_lists(pack_structures([close, meet]), pot.cutoff, half=pot.pairwise)
    assert lists[1] is lists[0]
    with pytest.raises(ValueError, match="structure 1: atoms 0 and 1 coincide"):
        evaluate(pot, [close, meet])


def test_edge_gradient_route_for_a_fitted_committee():
    """The shipped Cu committee (members on a member axis): both derivative routes agree."""
    from importlib.resources import files

    pot = load_potential(str(files("mlip_props") / "data" / "cu_committee.pt"))
    frames = []
    for k, reps in enumerate([(1, 1, 1), (2, 1, 1), (1, 1, 1)]):
        a = bulk("Cu", "fcc", a=3.6 + 0.03 * k, cubic=True).repeat(reps)
        a.rattle(0.05, seed=k)
        frames.append(a)
    batch = Batch.from_structures(frames)
    assert pot.edge_only and pot.n_members > 1
    fast = evaluate_batch(pot, batch, ("energy", "forces", "stress"))
    pot.edge_only = False
    slow = evaluate_batch(pot, batch, ("energy", "forces", "stress"))
    assert fast.forces.shape == slow.forces.shape == (pot.n_members, batch.n_total, 3)
    assert torch.allclose(fast.forces, slow.forces, atol=1e-10)
    assert torch.allclose(fast.stress, slow.stress, atol=1e-12)
