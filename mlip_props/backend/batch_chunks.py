"""One prebuilt batch evaluated with the memory protection of :func:`~mlip_props.backend.evaluate.evaluate`.

:func:`~mlip_props.backend.evaluate.evaluate_batch` runs a whole batch in one pass; loops that
build their own batches and graphs (the relaxation: one call per optimizer step over the
structures not yet converged) call it through a :class:`ChunkedBatchEvaluator` instead, which
splits the batch into consecutive chunks of structures exactly as ``evaluate`` does
(:func:`~mlip_props.backend.chunking.run_chunks`): sized to a memory budget by the potential's
static prior, relearned from measured chunks, and kept across calls (a relaxation learns from its
first steps); an out-of-memory error halves the chunk and retries; one structure that does not fit
alone raises :class:`~mlip_props.backend.chunking.StructureMemoryError` naming it (by the caller's
index, ``structure_ids``). A batch that fits the budget runs as one ``evaluate_batch`` call on the
batch and graph given, as without the evaluator. Oracles are passed through (they evaluate
structure by structure anyway).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from .batch import Batch
from .chunking import MemoryMeter, MemoryModel, default_memory_budget, run_chunks
from .evaluate import BatchOutput, _prior_memory_model, evaluate_batch, is_oracle
from .neighbors import NeighborGraph, build_neighbor_graph, select_graph
from .results import ChunkRecord

_CHUNKABLE = frozenset(("energy", "forces", "stress"))


class ChunkedBatchEvaluator:
    """``evaluate_batch(potential, batch, properties, graph)`` in memory-safe chunks (module
    docstring). ``memory_budget``: bytes per chunk (default :func:`default_memory_budget` of the
    first batch's device). After a call, ``last_record`` is the
    :class:`~mlip_props.backend.results.ChunkRecord` of what ran and ``retries`` counts the
    out-of-memory retries of all calls."""

    def __init__(self, potential: Any, memory_budget: int | None = None):
        if memory_budget is not None and not memory_budget > 0:
            raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
        self.potential = potential
        self.memory_budget = memory_budget
        self.model: MemoryModel | None = None
        self.budget: int | None = None
        self.last_record: ChunkRecord | None = None
        self.retries = 0

    def __call__(self, batch: Batch, properties: Sequence[str], graph: NeighborGraph | None = None,
                 structure_ids: Sequence[int] | None = None) -> BatchOutput:
        """Energies (eV), forces (eV/A) and stress (eV/A^3) of ``batch`` as one
        :class:`~mlip_props.backend.evaluate.BatchOutput` (the chunks' tensors concatenated in
        order, detached from the autograd graph). ``structure_ids``: how the caller names the
        batch's structures in errors (default 0..B-1)."""
        props = tuple(properties)
        pot = self.potential
        if is_oracle(pot):
            return evaluate_batch(pot, batch, props, graph=graph)
        unknown = set(props) - _CHUNKABLE
        if unknown:
            raise ValueError(f"ChunkedBatchEvaluator evaluates energy, forces and stress, not {sorted(unknown)} "
                             f"(Hessians: evaluate or evaluate_hessian_rows)")
        half = bool(getattr(pot, "pairwise", False))
        if self.model is None:
            self.model = _prior_memory_model(pot, batch.dtype, half, lower_bound=MemoryMeter(batch.device).lower_bound)
            self.budget = int(self.memory_budget or default_memory_budget(batch.device))
        if graph is None:  # what evaluate_batch would build, built once to count the edges
            graph = build_neighbor_graph(batch, pot.cutoff, half=half)
        B = batch.n_structures
        n_atoms = batch.n_atoms.cpu().numpy()
        n_edges = torch.bincount(graph.edge_structure, minlength=B).cpu().numpy()
        parts: list[BatchOutput] = []

        def run(b0: int, b1: int, block: int | None, meter: MemoryMeter | None) -> None:
            if b0 == 0 and b1 == B:
                sub, sub_graph = batch, graph
            else:
                idx = list(range(b0, b1))
                sub = batch.select(idx)
                sub_graph = select_graph(graph, batch, idx, sub)
            if meter is not None:
                meter.count(sub, sub_graph)
            out = evaluate_batch(pot, sub, props, graph=sub_graph)
            if meter is not None:
                meter.count(out)
            parts.append(_detached(out))

        record = run_chunks(run, n_atoms, n_edges, self.model, self.budget, batch.device,
                            names=None if structure_ids is None else [int(k) for k in structure_ids])
        self.last_record = record
        self.retries += record.retries
        return parts[0] if len(parts) == 1 else _concatenate(parts)


def _detached(out: BatchOutput) -> BatchOutput:
    d = lambda t: None if t is None else t.detach()  # noqa: E731
    return BatchOutput(energies=d(out.energies), per_atom_energies=d(out.per_atom_energies), forces=d(out.forces),
                       stress=d(out.stress))


def _concatenate(parts: list[BatchOutput]) -> BatchOutput:
    """Chunks in order: structures on the first axis of energies, per-atom energies and stress,
    atoms on the second-to-last axis of forces (committees carry a member axis first)."""
    def cat(name: str, dim: int):
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else torch.cat(values, dim=dim)

    return BatchOutput(energies=cat("energies", 0), per_atom_energies=cat("per_atom_energies", 0),
                       forces=cat("forces", -2), stress=cat("stress", 0))
