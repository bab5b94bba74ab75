"""The memory protection of prebuilt batches (ChunkedBatchEvaluator, the relaxation's backend
call): chunks equal one pass, out-of-memory errors halve the chunk (forced on the CPU by the fake
allocator limit of test_chunking), a structure that does not fit alone is named by the caller's
index, and a relaxation under such a limit follows the same path as without it."""
import numpy as np
import pytest
from ase.build import bulk

from mlip_props import load_potential
from mlip_props.backend import Batch, build_neighbor_graph, evaluate_batch
from mlip_props.backend.batch_chunks import ChunkedBatchEvaluator
from mlip_props.backend.chunking import StructureMemoryError
from mlip_props.backend.evaluate import CALL_COUNTS
from mlip_props.properties.relax import relax

from .test_chunking import FakeMemoryLimit, si_frames
from .test_evaluate import _ToyCommittee

PROPS = ("energy", "forces", "stress")


@pytest.fixture(scope="module", autouse=True)
def _threads(one_torch_thread):  # small tensors: a second thread only contends
    yield


@pytest.fixture(scope="module")
def sw():
    return load_potential("sw")


def assert_same(a, b, atol=1e-12):
    for name in ("energies", "forces", "stress"):
        x, y = getattr(a, name), getattr(b, name)
        np.testing.assert_allclose(x.detach().numpy(), y.detach().numpy(), rtol=0, atol=atol, equal_nan=True,
                                   err_msg=name)


def test_one_pass_when_it_fits_and_chunks_equal_it(sw):
    frames = si_frames(8)
    batch = Batch.from_structures(frames)
    graph = build_neighbor_graph(batch, sw.cutoff, skin=0.5)
    whole = evaluate_batch(sw, batch, PROPS, graph=graph)
    ev = ChunkedBatchEvaluator(sw)  # the default CPU budget: 256 MiB, far above these 8 cells
    n = CALL_COUNTS["evaluate_batch"]
    assert_same(ev(batch, PROPS, graph=graph), whole, atol=0)
    assert CALL_COUNTS["evaluate_batch"] - n == 1 and ev.last_record.chunks == [8]
    small = ChunkedBatchEvaluator(sw, memory_budget=20_000)  # a few structures per chunk
    assert_same(small(batch, PROPS, graph=graph), whole)
    assert len(small.last_record.chunks) > 2 and sum(small.last_record.chunks) == 8
    assert_same(small(batch, PROPS), whole)  # without a graph: the evaluator builds it
    with pytest.raises(ValueError, match="hessian"):
        ev(batch, ("energy", "hessian"))
    with pytest.raises(ValueError, match="memory_budget"):
        ChunkedBatchEvaluator(sw, memory_budget=0)


def test_committee_outputs_concatenate_on_the_structure_and_atom_axes():
    com = _ToyCommittee()
    frames = [bulk("Cu", "fcc", a=3.61), bulk("Cu", "fcc", a=3.65, cubic=True), bulk("Cu", "fcc", a=3.58)]
    batch = Batch.from_structures(frames)
    whole = evaluate_batch(com, batch, PROPS)
    ev = ChunkedBatchEvaluator(com, memory_budget=1)  # one structure per chunk
    out = ev(batch, PROPS)
    assert ev.last_record.chunks == [1, 1, 1] and out.forces.shape == whole.forces.shape == (2, 6, 3)
    assert_same(out, whole)


def test_out_of_memory_halves_the_chunk(sw):
    frames = si_frames(8)  # 8, 2, 8, 5 atoms, twice
    batch = Batch.from_structures(frames)
    whole = evaluate_batch(sw, batch, PROPS)
    limited = FakeMemoryLimit(sw, 12)
    ev = ChunkedBatchEvaluator(limited)
    out = ev(batch, PROPS)
    rec = ev.last_record
    assert rec.retries >= 1 and ev.retries == rec.retries and sum(rec.chunks) == 8
    n = np.array([len(a) for a in frames])
    ends = np.cumsum(rec.chunks)
    assert all(n[e - c : e].sum() <= 12 for c, e in zip(rec.chunks, ends))
    assert max(limited.calls) > 12  # it did run out of memory, and recovered
    assert_same(out, whole)


def test_a_structure_that_does_not_fit_alone_is_named_by_the_callers_index(sw):
    batch = Batch.from_structures([bulk("Si", "diamond", a=5.43), bulk("Si", "diamond", a=5.43, cubic=True)])
    ev = ChunkedBatchEvaluator(FakeMemoryLimit(sw, 4))
    with pytest.raises(StructureMemoryError, match="structure 7 .8 atoms.*can't allocate"):
        ev(batch, PROPS, structure_ids=[3, 7])
    with pytest.raises(RuntimeError, match="a bug"):  # other errors are not retried
        ChunkedBatchEvaluator(FakeMemoryLimit(sw, 0, lambda: RuntimeError("a bug, not memory")))(batch, PROPS)


def _rattled_si(n, seed=0, cubic=True):
    out = []
    for k in range(n):
        a = bulk("Si", "diamond", a=5.43 + 0.02 * k, cubic=cubic)
        a.rattle(0.05, seed=seed + k)
        out.append(a)
    return out


@pytest.mark.parametrize("relax_cell", [False, True])
def test_relaxation_under_a_memory_limit_follows_the_same_path(sw, relax_cell):
    """Four rattled 8-atom Si cells (32 atoms) under a fake limit of 12 atoms: every step runs in
    chunks of one cell, and the relaxation (ions, or ions and cell) ends where the unlimited one
    does, in the same number of steps."""
    frames = _rattled_si(4)
    kw = dict(fmax=1e-3, relax_cell=relax_cell, smax_GPa=0.05, max_steps=400)
    free = relax(sw, frames, **kw)
    limited = FakeMemoryLimit(sw, 12)
    held = relax(limited, frames, **kw)
    assert max(limited.calls) > 12 and max(c for c in limited.calls if c <= 12) == 8  # ran out, then one cell
    for a, b in zip(free, held):
        assert a.converged and b.converged
        assert a.n_steps == b.n_steps
        assert b.energy_eV == pytest.approx(a.energy_eV, abs=1e-9)
        np.testing.assert_allclose(b.atoms.get_positions(), a.atoms.get_positions(), atol=1e-8)
        np.testing.assert_allclose(np.asarray(b.atoms.cell), np.asarray(a.atoms.cell), atol=1e-8)


def test_relaxation_names_the_structure_that_does_not_fit(sw):
    """A 2-atom cell fits under the limit, the 8-atom cell (structure 1) does not: named."""
    frames = [bulk("Si", "diamond", a=5.45), _rattled_si(1)[0]]
    with pytest.raises(StructureMemoryError, match="structure 1 .8 atoms"):
        relax(FakeMemoryLimit(sw, 4), frames, fmax=1e-3)
