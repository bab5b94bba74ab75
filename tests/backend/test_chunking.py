"""Memory-safe chunking: results independent of the chunking, the memory model learned from the
chunks that ran, out-of-memory errors halving the chunk (forced on the CPU by a fake allocator
limit), and the record of what ran."""
import json
import sys

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from mlip_props import evaluate, load_potential
from mlip_props.backend import Potential, chunking
from mlip_props.backend.chunking import (MemoryMeter, MemoryModel, StructureMemoryError, is_out_of_memory,
                                         next_chunk_end, plan_chunks)
from mlip_props.backend.hessian_rows import evaluate_hessian_rows

evaluate_module = sys.modules["mlip_props.backend.evaluate"]  # the module (the package exports the function)
ALL = ("energy", "forces", "stress", "hessian")
CPU_OOM = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1073741824 bytes. Error code 12"


class FakeMemoryLimit(Potential):
    """A potential that runs ``inner`` but fails as an allocator would for a batch of more than
    ``max_atoms`` atoms (``error`` builds the exception); records the atoms of every call."""

    def __init__(self, inner, max_atoms, error=lambda: RuntimeError(CPU_OOM), bytes_per_edge=None):
        super().__init__(inner.cutoff, inner.elements)
        self.inner, self.max_atoms, self.error = inner, max_atoms, error
        self.edge_only, self.pairwise = inner.edge_only, inner.pairwise
        self.bytes_per_edge = inner.bytes_per_edge if bytes_per_edge is None else bytes_per_edge
        self.calls = []

    def forward(self, graph):
        self.calls.append(graph.n_atoms_total)
        if graph.n_atoms_total > self.max_atoms:
            raise self.error()
        return self.inner(graph)


def si_frames(n=8, seed=0):
    """Mixed silicon: rattled 8-atom cells, 2-atom primitive cells, a slab and a cluster."""
    frames = []
    for k in range(n):
        kind = k % 4
        if kind == 0:
            a = bulk("Si", "diamond", a=5.43, cubic=True)
        elif kind == 1:
            a = bulk("Si", "diamond", a=5.40)
        elif kind == 2:
            a = bulk("Si", "diamond", a=5.43, cubic=True)
            a.pbc = (True, True, False)
            a.center(vacuum=4.0, axis=2)
        else:
            a = Atoms("Si5", positions=[[0, 0, 0], [2.3, 0, 0], [1.1, 2.0, 0], [1.1, 0.7, 1.9], [1.2, 0.6, -1.9]])
        a.rattle(0.04, seed=seed + k)
        frames.append(a)
    return frames


def assert_same(a, b, atol=1e-12):
    np.testing.assert_allclose(a.energies_eV, b.energies_eV, rtol=0, atol=atol)
    for x, y in zip(a.forces_eV_A, b.forces_eV_A):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)
    if a.stress_eV_A3 is not None:
        np.testing.assert_allclose(a.stress_eV_A3, b.stress_eV_A3, rtol=0, atol=atol)
    if a.hessians_eV_A2 is not None:
        assert len(a.hessians_eV_A2) == len(b.hessians_eV_A2)
        for x, y in zip(a.hessians_eV_A2, b.hessians_eV_A2):
            np.testing.assert_allclose(x, y, rtol=0, atol=atol)


@pytest.fixture(scope="module")
def sw():
    return load_potential("sw")


@pytest.fixture(scope="module")
def reference(sw):
    """One chunk of everything (float64)."""
    frames = si_frames()
    res = evaluate(sw, frames, ALL, memory_budget=1 << 40)
    assert res.chunking.chunks == [len(frames)]
    return frames, res


def test_many_chunks_equal_one_chunk(sw, reference, monkeypatch):
    frames, one = reference
    monkeypatch.setattr(chunking, "CPU_MEASURED_CHUNKS", 100)
    many = evaluate(sw, frames, ALL, memory_budget=20_000)
    assert len(many.chunking.chunks) == len(frames) and sum(many.chunking.chunks) == len(frames)
    assert_same(many, one)
    # energy+forces+stress alone: several structures per chunk, every chunk measured
    efs = evaluate(sw, frames, ALL[:3], memory_budget=1_000_000)
    assert 1 < len(efs.chunking.chunks) < len(frames)
    assert all(b is not None and b > 0 for b in efs.chunking.measured_bytes)
    assert_same(efs, one)


def test_memory_meter_counts_saved_storages_once():
    """x.exp() saves its result, sin saves x, the product saves both factors: three distinct
    1000-element float64 storages."""
    x = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    with MemoryMeter("cpu") as m:
        y = (x.exp() * x.sin()).sum()
    assert m.bytes == 3 * 8000 and m.lower_bound
    (g,) = torch.autograd.grad(y, x)  # the hooks change nothing that autograd computes
    np.testing.assert_allclose(g.numpy(), (x.exp() * (x.sin() + x.cos())).detach().numpy(),
                               rtol=1e-13, atol=1e-15)


def test_model_learns_per_atom_and_per_edge():
    m = MemoryModel(100.0, 10.0)
    m.observe(10, 40, 1000 * 10 + 300 * 40)
    assert m.predict(10, 40) == pytest.approx(22_000)  # one kind of chunk: the prior scaled to cover it
    m.observe(10, 100, 1000 * 10 + 300 * 100)  # another edges-per-atom ratio: both coefficients
    assert m.effective == pytest.approx((1000.0, 300.0), rel=1e-9)
    low = MemoryModel(2000.0, 500.0, lower_bound=True)  # a CPU measurement is a lower bound
    low.observe(10, 40, 1000 * 10 + 300 * 40)
    assert low.effective == (2000.0, 500.0)
    low.register_oom(low.predict(10, 40), budget=1e6)  # did not fit: estimate >= twice the budget
    assert low.predict(10, 40) == pytest.approx(2e6)


def test_next_chunk_end_groups_as_plan_chunks():
    costs = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    for budget in (1.0, 5.0, 9.0, 100.0):
        ends, start = [], 0
        while start < len(costs):
            start = next_chunk_end(costs, start, budget)
            ends.append(start)
        assert ends == [c[-1] + 1 for c in plan_chunks(costs.tolist(), budget)]
    assert next_chunk_end(costs, 0, 100.0, max_count=3) == 3


def test_later_chunks_are_sized_by_the_learned_memory(sw, monkeypatch):
    """A potential that claims 1 byte per edge: the first chunk (planned by that prior) holds far
    more than the budget; after measuring it the later chunks fit the budget."""
    monkeypatch.setattr(chunking, "CPU_MEASURED_CHUNKS", 1000)  # measure every chunk, to check each
    frames = [bulk("Si", "diamond", a=5.43, cubic=True) for _ in range(100)]
    for k, a in enumerate(frames):
        a.rattle(0.03, seed=k)
    liar = FakeMemoryLimit(sw, 10**9, bytes_per_edge=1)
    one = evaluate(liar, frames[:1], ALL[:3]).chunking.measured_bytes[0]
    budget = 3 * one
    res = evaluate(liar, frames, ALL[:3], memory_budget=budget)
    rec = res.chunking
    assert sum(rec.chunks) == len(frames) and rec.measure == "saved_tensors" and rec.retries == 0
    assert rec.measured_bytes[0] > 2 * budget  # the prior under-estimated the first chunk
    assert len(rec.chunks) > 10 and 2 <= max(rec.chunks[1:]) <= 3  # about budget / (one structure's memory)
    assert all(b <= 1.05 * budget for b in rec.measured_bytes[1:])  # learned: later chunks fit
    prior = (1 + 200, 1)  # bytes per atom (potential + backend), per edge
    assert rec.memory_per_atom_bytes > 5 * prior[0] and rec.memory_per_edge_bytes > 5 * prior[1]  # learned
    assert_same(res, evaluate(sw, frames, ALL[:3], memory_budget=1 << 40))
    monkeypatch.setattr(chunking, "CPU_MEASURED_CHUNKS", 2)  # the default: the first two, then new ratios
    again = evaluate(liar, frames, ALL[:3], memory_budget=budget).chunking
    assert again.chunks[:2] == rec.chunks[:2] and sum(again.chunks) == len(frames)
    assert all(b is None for b in again.measured_bytes[2:])
    assert_same(res, evaluate(liar, frames, ALL[:3], memory_budget=budget))


@pytest.mark.parametrize("error", [lambda: RuntimeError(CPU_OOM),
                                   lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   lambda: RuntimeError("CUDA error: out of memory")])
def test_out_of_memory_halves_the_chunk(sw, reference, error):
    frames, one = reference
    limited = FakeMemoryLimit(sw, 20, error)
    res = evaluate(limited, frames, ALL[:3])
    assert res.chunking.retries >= 1 and sum(res.chunking.chunks) == len(frames)
    n = np.array([len(a) for a in frames])
    ends = np.cumsum(res.chunking.chunks)
    assert all(n[e - c : e].sum() <= 20 for c, e in zip(res.chunking.chunks, ends))
    assert_same(res, one)


def test_out_of_memory_in_hessians(sw, reference):
    frames, one = reference
    limited = FakeMemoryLimit(sw, 12)
    res = evaluate(limited, frames, ALL)
    assert res.chunking.retries >= 1
    assert_same(res, one)


def test_out_of_memory_halves_hessian_vector_products(sw, reference, monkeypatch):
    """One structure whose Hessian-vector products do not all fit at once: fewer at a time."""
    frames, one = reference
    real = evaluate_module._hessians
    blocks = []

    def limited(grad, positions, batch, block):
        blocks.append(block)
        if block > 6:
            raise RuntimeError(CPU_OOM)
        return real(grad, positions, batch, block)

    monkeypatch.setattr(evaluate_module, "_hessians", limited)
    res = evaluate(sw, frames[:1], ALL)
    assert blocks == [24, 12, 6] and res.chunking.retries == 2
    assert_same(res, one.select([0]))


def test_a_structure_that_does_not_fit_alone_is_named(sw):
    frames = [bulk("Si", "diamond", a=5.43), bulk("Si", "diamond", a=5.44), bulk("Si", "diamond", a=5.43, cubic=True)]
    with pytest.raises(StructureMemoryError) as info:
        evaluate(FakeMemoryLimit(sw, 4), frames, ALL[:3], memory_budget=10 << 20)
    msg = str(info.value)
    for part in ("structure 2", "8 atoms", "10.0 MiB", "memory_budget=", "MLIP_PROPS_MEMORY_BUDGET", "can't allocate"):
        assert part in msg
    with pytest.raises(StructureMemoryError, match="structure 0 .2 atoms."):
        evaluate(FakeMemoryLimit(sw, 1), frames, ALL)  # the Hessian's energy+forces probe


def test_other_errors_are_not_retried(sw):
    broken = FakeMemoryLimit(sw, 0, lambda: RuntimeError("a bug, not memory"))
    with pytest.raises(RuntimeError, match="a bug"):
        evaluate(broken, si_frames(4), ALL[:3])
    assert broken.calls == [sum(len(a) for a in si_frames(4))]
    assert not is_out_of_memory(StructureMemoryError("x")) and not is_out_of_memory(ValueError("out of memory"))


def test_hessian_rows_halve_on_out_of_memory(sw):
    frames = [a for a in si_frames(8) if len(a) == 8][:2] + [bulk("Si", "diamond", a=5.45, cubic=True)]
    rows = [[0, 3]] * 3
    ref = evaluate_hessian_rows(sw, frames, rows)
    assert ref.chunking.chunks == [3] and ref.chunking.retries == 0
    res = evaluate_hessian_rows(FakeMemoryLimit(sw, 10), frames, rows)
    assert res.chunking.chunks == [1, 1, 1] and res.chunking.retries == 2
    assert_same(res, ref)
    with pytest.raises(StructureMemoryError, match="structure 0 .8 atoms."):
        evaluate_hessian_rows(FakeMemoryLimit(sw, 4), frames, rows)


def test_record_survives_views_and_serialises(sw, reference, monkeypatch):
    frames, one = reference
    assert one.select([2, 0]).chunking is one.chunking and one.member(0).chunking is one.chunking
    d = json.loads(json.dumps(one.to_dict()["chunking"]))
    assert d["chunks"] == [len(frames)] and d["memory_budget_bytes"] == 1 << 40
    monkeypatch.setenv("MLIP_PROPS_MEMORY_BUDGET", "0.01")  # MiB
    res = evaluate(sw, frames[:3], ALL[:3])
    assert res.chunking.memory_budget_bytes == int(0.01 * 2**20) and len(res.chunking.chunks) == 3
    monkeypatch.setenv("MLIP_PROPS_MEMORY_BUDGET", "-1")
    with pytest.raises(ValueError, match="MLIP_PROPS_MEMORY_BUDGET"):
        evaluate(sw, frames[:3], ALL[:3])
    with pytest.raises(ValueError, match="memory_budget"):
        evaluate(sw, frames[:3], ALL[:3], memory_budget=-5)


def test_first_plan_is_the_static_prior():
    """Lennard-Jones (closed-form gradients: nothing saved for backward) never measures above its
    static estimate on the CPU, so every chunk is the one plan_chunks gives for the prior cost
    (bytes_per_edge + 200) x atoms + 2 bytes_per_edge x (half-list) edges; 300 structures in
    chunks of a few."""
    from mlip_props.backend.evaluate import _prepare
    from mlip_props.backend.neighbors import shared_neighbor_lists
    from mlip_props.potentials import LennardJones

    lj = LennardJones(0.4, 2.3)
    frames = []
    for k in range(300):
        a = bulk("Cu", "fcc", a=3.6 + 0.001 * (k % 7)).repeat((1, 1, 1 + k % 3))
        a.rattle(0.02, seed=k)
        frames.append(a)
    _, packed = _prepare(frames)
    lists, _, _ = shared_neighbor_lists(packed, lj.cutoff, half=True)
    n = packed.n_atoms.astype(float)
    e = np.array([len(nl[0]) for nl in lists], float)
    costs = (lj.bytes_per_edge + 200) * n + 2 * lj.bytes_per_edge * e
    budget = int(4.5 * costs.mean())
    res = evaluate(lj, frames, ALL[:3], memory_budget=budget)
    assert res.chunking.chunks == [len(c) for c in plan_chunks(costs.tolist(), budget)]
    assert len(res.chunking.chunks) > 50 and res.chunking.memory_per_edge_bytes == 2 * lj.bytes_per_edge
    assert_same(res, evaluate(lj, frames, ALL[:3]))


def test_committee_mean_is_budgeted_like_the_whole_committee():
    """The committee mean evaluates every member: its static memory estimate is the committee's
    (members' bytes per edge x M), not one member's."""
    from mlip_props.backend.evaluate import _prior_memory_model
    from mlip_props.fitting import BehlerParrinelloPotential, preset
    from mlip_props.potentials.committee import CommitteeMean

    committee = BehlerParrinelloPotential(preset(["Cu"], cutoff=4.0, n_radial=3).to_dict(), hidden=(4,),
                                          n_members=4)
    mean = CommitteeMean(committee)
    for dtype in (torch.float64, torch.float32):
        a, b = _prior_memory_model(committee, dtype, True, False), _prior_memory_model(mean, dtype, True, False)
        assert (a.per_atom, a.per_edge) == (b.per_atom, b.per_edge)
    assert mean.bytes_per_edge == 4 * committee.bytes_per_edge
