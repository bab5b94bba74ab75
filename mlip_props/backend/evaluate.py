"""Energies, forces, stresses and Hessians for many structures in one call.

Torch potentials are evaluated on whole batches; every derivative comes from autograd:

* forces  F = -dE/dx;
* stress  sigma = (1/V) dE/d(epsilon) at epsilon = 0, where the symmetric strain epsilon deforms
  positions and cell together (x -> x (1 + epsilon)); Voigt order xx, yy, zz, yz, xz, xy, ASE's
  sign convention (negative under compression, pressure P = -tr(sigma)/3);
* Hessian d2E/dx dx' (3N x 3N per structure) by double backward: Hessian-vector products with
  unit vectors, batched over all structures at once (vmapped with ``is_grads_batched``).

Large jobs are split into chunks by a memory budget so that 10,000 structures evaluate without
exhausting memory (:mod:`mlip_props.backend.chunking`: the model's memory is learned from the
chunks that ran, and an out-of-memory error halves the chunk); structures are never looped over
in Python for torch potentials.
Oracles (ASE calculators, see :mod:`mlip_props.backend.oracle`) go through the same functions.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .batch import Batch, pack_structures, resolve_device, to_atoms, validate_packed
from .chunking import (BACKEND_BYTES_PER_ATOM, MemoryMeter, MemoryModel, default_memory_budget, is_out_of_memory,
                       plan_chunks, run_chunks)
from .guards import check_dense_hessians
from .inputs import structure_list
from .neighbors import NeighborGraph, assemble_graph, build_neighbor_graph, edge_vectors, shared_neighbor_lists
from .potential import AtomicGraph, module_device
from .precision import compute_precision
from .results import ChunkRecord, EvaluationResult

__all__ = ["PROPERTIES", "CALL_COUNTS", "BatchOutput", "ChunkRecord", "EvaluationResult", "atomic_graph",
           "default_memory_budget", "evaluate", "evaluate_batch", "is_oracle", "plan_chunks", "prepare_structures"]

PROPERTIES = ("energy", "forces", "stress", "hessian")
#: Use a potential's closed-form edge gradients (``closed_form_edge_gradients``) for energies,
#: forces and stress; False sends every potential through autograd (to compare the two routes).
USE_CLOSED_FORM_EDGE_GRADIENTS = True
_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
#: How many times :func:`evaluate` (one call per set of structures) and :func:`evaluate_batch`
#: (one per packed batch: every optimiser step of a relaxation, every chunk of an evaluation) ran
#: in this process: what the campaign runner reports as its backend calls.
CALL_COUNTS: Counter = Counter()


def _check_properties(properties: Iterable[str]) -> tuple[str, ...]:
    props = tuple(properties)
    unknown = [p for p in props if p not in PROPERTIES]
    if unknown:
        raise ValueError(f"unknown properties {unknown}; choose from {list(PROPERTIES)}")
    return props


def is_oracle(potential: Any) -> bool:
    """True for ASE-calculator oracles (evaluated structure by structure, outside autograd)."""
    return bool(getattr(potential, "is_oracle", False))


# ---------------------------------------------------------------------------------------------
# one batch, tensors in and out
# ---------------------------------------------------------------------------------------------
@dataclass
class BatchOutput:
    """Results of :func:`evaluate_batch` as tensors on the batch's device.

    ``energies`` (B,) eV; ``forces`` (N, 3) eV/A; ``stress`` (B, 6) eV/A^3 (NaN for structures
    not periodic in all three directions); ``hessians`` one (3n, 3n) eV/A^2 per structure.
    For a committee of M members an extra member axis appears: energies (B, M), forces
    (M, N, 3), stress (B, M, 6).
    """

    energies: torch.Tensor
    per_atom_energies: torch.Tensor | None = None
    forces: torch.Tensor | None = None
    stress: torch.Tensor | None = None
    hessians: list[torch.Tensor] | None = None


def atomic_graph(batch: Batch, graph: NeighborGraph, vectors: torch.Tensor | None = None) -> AtomicGraph:
    """Bundle a batch and its neighbour graph into what a potential sees (edge vectors included;
    computed from the batch unless ``vectors`` is given)."""
    vec = edge_vectors(batch, graph) if vectors is None else vectors
    return AtomicGraph(
        numbers=batch.numbers,
        structure_index=batch.structure_index,
        n_structures=batch.n_structures,
        edge_index=graph.edge_index,
        edge_vectors=vec,
        edge_lengths=vec.norm(dim=-1),
        edge_structure=graph.edge_structure,
        positions=batch.positions,
        cells=batch.cells,
        pbc=batch.pbc,
        half=graph.half,
    )


def _sym(t: torch.Tensor) -> torch.Tensor:
    return 0.5 * (t + t.transpose(-1, -2))


def _to_voigt(t: torch.Tensor) -> torch.Tensor:
    return torch.stack([t[..., a, b] for a, b in _VOIGT], dim=-1)


def _grad_per_member(outputs: torch.Tensor, inputs: list[torch.Tensor], create_graph: bool):
    """Gradients of outputs (B,) or (B, M) summed over structures; member axis first if any."""
    if outputs.dim() == 1:
        return torch.autograd.grad(outputs.sum(), inputs, create_graph=create_graph)
    m = outputs.shape[1]
    eye = torch.eye(m, dtype=outputs.dtype, device=outputs.device)
    go = eye[:, None, :].expand(m, outputs.shape[0], m)
    return torch.autograd.grad(outputs, inputs, grad_outputs=go, is_grads_batched=True, create_graph=create_graph)


def _hessians(grad: torch.Tensor, positions: torch.Tensor, batch: Batch, block: int) -> list[torch.Tensor]:
    """Per-structure Hessians from the gradient (N, 3) by batched Hessian-vector products.

    Vector k selects degree of freedom k (atom k // 3, direction k % 3) of *every* structure at
    once, so 3 * max(n_atoms) products give all the (block-diagonal) Hessians of the batch.
    """
    n_atoms = batch.n_atoms
    ptr = batch.ptr
    nmax = int(n_atoms.max())
    ndof = 3 * nmax
    n = batch.n_total
    local = torch.arange(n, device=positions.device) - ptr[batch.structure_index]
    padded = torch.zeros(batch.n_structures, ndof, nmax, 3, dtype=grad.dtype, device=grad.device)
    for k0 in range(0, ndof, block):
        ks = torch.arange(k0, min(ndof, k0 + block), device=positions.device)
        vecs = torch.zeros(len(ks), n, 3, dtype=grad.dtype, device=grad.device)
        atom = ks // 3
        for kk in range(len(ks)):  # builds unit vectors only; the products below are one call
            has = n_atoms > atom[kk]
            vecs[kk, ptr[:-1][has] + atom[kk], ks[kk] % 3] = 1.0
        try:
            hv = torch.autograd.grad(grad, positions, grad_outputs=vecs, is_grads_batched=True, retain_graph=True)[0]
        except RuntimeError as exc:  # an op without a batching rule: fall back to one product at a time
            if is_out_of_memory(exc):  # out of memory: the chunk planner retries with fewer products
                raise
            hv = torch.stack([
                torch.autograd.grad(grad, positions, grad_outputs=v, retain_graph=True)[0] for v in vecs
            ])
        # hv[kk, atom, :] -> padded[structure, k, local atom, :]
        tmp = torch.zeros(batch.n_structures, len(ks), nmax, 3, dtype=grad.dtype, device=grad.device)
        tmp[batch.structure_index, :, local] = hv.permute(1, 0, 2)
        padded[:, k0 : k0 + len(ks)] = tmp
    out = []
    for b in range(batch.n_structures):
        d = 3 * int(n_atoms[b])
        out.append(padded[b, :d].reshape(d, 3 * nmax)[:, :d])
    return out


def evaluate_batch(
    potential: Any,
    batch: Batch,
    properties: Sequence[str] = ("energy", "forces"),
    graph: NeighborGraph | None = None,
    create_graph: bool = False,
    hessian_block: int | None = None,
) -> BatchOutput:
    """Evaluate one batch (no chunking) and return tensors; see :class:`BatchOutput`.

    ``graph`` may be passed to reuse a neighbour graph (built with a skin); ``create_graph``
    keeps the autograd graph of forces/stress (for training on them).
    """
    props = _check_properties(properties)
    CALL_COUNTS["evaluate_batch"] += 1
    return _evaluate_batch(potential, batch, props, graph, create_graph, hessian_block)


def _evaluate_batch(potential: Any, batch: Batch, props: tuple[str, ...], graph: NeighborGraph | None,
                    create_graph: bool, hessian_block: int | None, via_positions: bool = False) -> BatchOutput:
    """:func:`evaluate_batch` without the call count; ``via_positions`` takes forces and stress
    by autograd through positions and strain even for ``edge_only`` potentials (the route of
    Hessians: what the chunk planner's memory probe measures)."""
    if is_oracle(potential):
        return potential.evaluate_batch(batch, props)
    dev = module_device(potential)
    if dev is not None and dev != batch.device:  # as evaluate() does: the potential follows the batch
        potential.to(batch.device)
    potential.check_elements(batch)
    half = bool(getattr(potential, "pairwise", False))
    if (graph is None or graph.cutoff + graph.skin < potential.cutoff or (graph.half and not half)
            or graph.needs_rebuild(batch)):
        graph = build_neighbor_graph(batch, potential.cutoff, half=half)
    want_f = "forces" in props
    want_s = "stress" in props
    want_h = "hessian" in props
    if (want_f or want_s) and not want_h and not via_positions and getattr(potential, "edge_only", False):
        return _evaluate_edges(potential, batch, graph, want_f, want_s, create_graph)
    pos = batch.positions.detach().requires_grad_(want_f or want_h or create_graph)
    cells = batch.cells.detach()
    strain = None
    if want_s:
        strain = torch.zeros_like(cells, requires_grad=True)
        defo = torch.eye(3, dtype=cells.dtype, device=cells.device) + _sym(strain)
        pos_used = torch.einsum("ni,nij->nj", pos, defo[batch.structure_index])
        cells_used = torch.bmm(cells, defo)
    else:
        pos_used, cells_used = pos, cells
    strained = batch.with_positions(pos_used).with_cells(cells_used)
    graph_in = atomic_graph(strained, graph)
    if graph.cutoff + graph.skin > potential.cutoff:  # a graph with a skin: drop the far edges once
        graph_in = graph_in.within(potential.cutoff)
    per_atom = potential(graph_in)
    energies = _sum_per_structure(per_atom, batch)
    out = BatchOutput(energies=energies, per_atom_energies=per_atom)
    inputs = [t for t, w in ((pos, want_f or want_h), (strain, want_s)) if w]
    if not inputs:
        return out
    if want_h and energies.dim() > 1:
        raise NotImplementedError("Hessians of committees: evaluate each member separately")
    grads = list(_grad_per_member(energies, inputs, create_graph=create_graph or want_h))
    if want_f or want_h:
        g_pos = grads.pop(0)
        if want_f:
            out.forces = -g_pos
        if want_h:
            block = hessian_block or 3 * int(batch.n_atoms.max())
            out.hessians = _hessians(g_pos, pos, batch, block)
    if want_s:
        out.stress = _stress_from_strain_gradient(grads.pop(0), batch)
    return out


def _sum_per_structure(per_atom: torch.Tensor, batch: Batch) -> torch.Tensor:
    shape = (batch.n_structures,) + tuple(per_atom.shape[1:])
    return torch.zeros(shape, dtype=per_atom.dtype, device=per_atom.device).index_add(
        0, batch.structure_index, per_atom
    )


def _stress_from_strain_gradient(g_eps: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Voigt stress (B, 6) or (B, M, 6) from dE/d(strain) (B, 3, 3) or (M, B, 3, 3); NaN where
    a structure is not periodic in all three directions."""
    vol = torch.linalg.det(batch.cells.detach()).abs()
    periodic = batch.pbc.all(dim=1)
    vol = torch.where(periodic, vol, torch.ones_like(vol))
    if g_eps.dim() == 4:
        sigma = _to_voigt(_sym(g_eps)) / vol[None, :, None]
        sigma = sigma.permute(1, 0, 2)  # (B, M, 6)
        return torch.where(periodic[:, None, None], sigma, torch.full_like(sigma, float("nan")))
    sigma = _to_voigt(_sym(g_eps)) / vol[:, None]
    return torch.where(periodic[:, None], sigma, torch.full_like(sigma, float("nan")))


def _evaluate_edges(potential: Any, batch: Batch, graph: NeighborGraph, want_f: bool, want_s: bool,
                    create_graph: bool) -> BatchOutput:
    """Forces and stress of an ``edge_only`` potential from one gradient g_e = dE/dr_e.

    With r_e = x_j - x_i + S_e cell: F_i = sum_{e: i(e)=i} g_e - sum_{e: j(e)=i} g_e, and under a
    homogeneous strain r_e -> r_e (1 + eps), so dE/d(eps) = sum_e r_e (x) g_e (the virial).
    Mathematically identical to the position/strain route, without autograd through the
    per-edge cell products. A potential with ``closed_form_edge_gradients`` returns g_e itself
    (analytic pair potentials), unless ``create_graph`` asks for a differentiable result.
    """
    batch = batch.with_positions(batch.positions.detach()).with_cells(batch.cells.detach())
    with torch.no_grad():  # the edges the potential sees, as constants
        graph_in = atomic_graph(batch, graph, vectors=edge_vectors(batch, graph))
        if graph.cutoff + graph.skin > potential.cutoff:
            graph_in = graph_in.within(potential.cutoff)
    if (USE_CLOSED_FORM_EDGE_GRADIENTS and not create_graph
            and getattr(potential, "closed_form_edge_gradients", False)):
        with torch.no_grad():
            per_atom, g = potential.edge_energies_and_gradients(graph_in)
        energies = _sum_per_structure(per_atom, batch)
    else:  # the edge vectors become the leaves of autograd
        vec = graph_in.edge_vectors.detach().requires_grad_(True)
        graph_in = replace(graph_in, edge_vectors=vec, edge_lengths=vec.norm(dim=-1))
        per_atom = potential(graph_in)
        energies = _sum_per_structure(per_atom, batch)
        g = _grad_per_member(energies, [vec], create_graph=create_graph)[0]  # (E, 3) or (M, E, 3)
    out = BatchOutput(energies=energies, per_atom_energies=per_atom)
    i, j = graph_in.edge_index
    d = g.dim() - 2  # the edge axis
    if want_f:
        f = torch.zeros(g.shape[:-2] + (batch.n_total, 3), dtype=g.dtype, device=g.device)
        out.forces = f.index_add(d, i, g).index_add(d, j, -g)
    if want_s:
        out.stress = _stress_from_strain_gradient(
            _virial(graph_in.edge_vectors.detach(), g, graph_in.edge_structure, batch.n_structures), batch)
    return out


def _virial(r: torch.Tensor, g: torch.Tensor, edge_structure: torch.Tensor, n_structures: int) -> torch.Tensor:
    """sum over each structure's edges of r_e (x) g_e: (B, 3, 3), or (M, B, 3, 3) for g (M, E, 3).

    Row a of the virial is the scatter of r_e,a g_e onto the structures: three (E, 3) scatters
    instead of one (E, 9) outer-product array.
    """
    if n_structures == 1:
        return torch.einsum("ea,...eb->...ab", r, g)[..., None, :, :]
    d = g.dim() - 2
    out = torch.zeros(g.shape[:-2] + (n_structures, 3, 3), dtype=g.dtype, device=g.device)
    for a in range(3):
        out[..., a, :].index_add_(d, edge_structure, r[:, a : a + 1] * g)
    return out


# ---------------------------------------------------------------------------------------------
# any number of structures, numpy out
# ---------------------------------------------------------------------------------------------
def prepare_structures(structures: Iterable[Any]) -> list:
    """Convert to ASE ``Atoms`` and validate; raises ``ValueError`` naming the structure index."""
    return _prepare(structures)[0]


def _prepare(structures: Iterable[Any]):
    """``(atoms_list, packed arrays)`` of validated structures."""
    _, items = structure_list(structures)
    atoms_list = [to_atoms(s) for s in items]
    packed = pack_structures(atoms_list)
    validate_packed(packed, atoms_list)
    return atoms_list, packed


def evaluate(
    potential: Any,
    structures: Iterable[Any],
    properties: Sequence[str] = ("energy", "forces", "stress"),
    *,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    memory_budget: int | None = None,
    progress: bool = False,
) -> EvaluationResult:
    """Energies (eV), forces (eV/A), stress (eV/A^3, Voigt) and Hessians (eV/A^2) of many structures.

    ``structures``: ASE ``Atoms`` or pymatgen ``Structure``/``Molecule`` objects, periodic or
    not, of mixed sizes and elements. ``properties`` from ``("energy", "forces", "stress",
    "hessian")``. Torch potentials are evaluated in as few batches as ``memory_budget`` (bytes;
    see :func:`default_memory_budget`) allows, on ``device`` (CUDA when present by default);
    oracles structure by structure.

    Raises ``ValueError`` naming the structure index for empty input, an empty structure, NaN
    positions, a singular cell, coincident atoms or an element the potential does not know.
    """
    props = _check_properties(properties)
    CALL_COUNTS["evaluate"] += 1
    atoms_list, packed = _prepare(structures)
    n_atoms = packed.n_atoms.copy()
    check_dense_hessians(n_atoms, props, dtype=dtype, device=device, oracle=is_oracle(potential))
    if is_oracle(potential):
        res = potential.compute(atoms_list, props, progress=progress)
        return EvaluationResult(n_atoms=n_atoms, precision=compute_precision(potential), **res)

    dev = resolve_device(device)
    potential = potential.to(dev)
    _check_elements(potential, packed)
    if memory_budget is not None and not memory_budget > 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
    half = bool(getattr(potential, "pairwise", False))
    lists, displacement, _skin = shared_neighbor_lists(packed, potential.cutoff, half=half)
    budget = int(memory_budget or default_memory_budget(dev))
    want_h = "hessian" in props
    n_edges = np.fromiter((len(nl[0]) for nl in lists), dtype=np.float64, count=len(lists))
    model = _prior_memory_model(potential, dtype, half, lower_bound=MemoryMeter(dev).lower_bound)
    energies, forces, stresses, hessians = [], [], [], []

    def chunk_batch(b0: int, b1: int):
        batch = Batch.from_packed(packed.slice(b0, b1), dtype=dtype, device=dev)
        disp = None if displacement is None else displacement[packed.ptr[b0] : packed.ptr[b1]]
        # lists shared within cutoff + skin: assembled into the exact graph within the cutoff
        return batch, assemble_graph(batch, lists[b0:b1], potential.cutoff, half=half, displacement=disp)

    def run(b0: int, b1: int, block: int | None, meter: MemoryMeter | None) -> None:
        batch, graph = chunk_batch(b0, b1)
        if meter is not None:
            meter.count(batch, graph)
        out = evaluate_batch(potential, batch, props, graph=graph, hessian_block=block)
        if meter is not None:
            meter.count(out)
        e, f, st, h = _to_numpy(out, batch)  # then appended together: a failed chunk leaves nothing
        energies.append(e)
        forces.extend(f)
        stresses.extend(st)
        hessians.extend(h)

    def probe(b0: int, b1: int, meter: MemoryMeter) -> None:
        """One energy+forces(+stress) pass through positions: the workspace unit of the Hessians."""
        CALL_COUNTS["memory_probe"] += 1
        batch, graph = chunk_batch(b0, b1)
        meter.count(batch, graph)
        first = tuple(p for p in ("energy", "forces", "stress") if p != "stress" or p in props)
        meter.count(_evaluate_batch(potential, batch, first, graph, False, None, via_positions=True))

    record = run_chunks(run, n_atoms, n_edges, model, budget, dev, hessian=want_h, probe=probe, progress=progress)
    return EvaluationResult(
        energies_eV=np.concatenate(energies),
        forces_eV_A=forces if "forces" in props else None,
        stress_eV_A3=np.concatenate(stresses) if "stress" in props else None,
        hessians_eV_A2=hessians if want_h else None,
        n_atoms=n_atoms,
        precision=compute_precision(potential, dtype),
        chunking=record,
    )


def _prior_memory_model(potential: Any, dtype: torch.dtype, half: bool, lower_bound: bool) -> MemoryModel:
    """The static estimate: the potential's ``bytes_per_edge`` (x members, /2 below float64) per
    edge (x2 on a half list, which holds each pair once) and per atom, plus the backend's own
    bytes per atom; a pass over n atoms and e listed edges costs ``per_atom n + per_edge e``."""
    m = max(1, int(getattr(potential, "n_members", 1)))
    bpe = potential.bytes_per_edge * m * (1 if dtype == torch.float64 else 0.5)
    return MemoryModel(bpe + BACKEND_BYTES_PER_ATOM, bpe * (2 if half else 1), lower_bound=lower_bound)


def _to_numpy(out: BatchOutput, batch: Batch):
    """Energies (one array), forces (per structure), stress (one array in a list) and Hessians
    (per structure) of one chunk as numpy."""
    forces, stresses, hessians = [], [], []
    if out.forces is not None:
        f = out.forces.detach().cpu().numpy()
        ptr = batch.ptr.cpu().numpy()
        if f.ndim == 3:
            forces = [f[:, ptr[b] : ptr[b + 1]] for b in range(batch.n_structures)]
        else:
            forces = [f[ptr[b] : ptr[b + 1]] for b in range(batch.n_structures)]
    if out.stress is not None:
        stresses = [out.stress.detach().cpu().numpy()]
    if out.hessians is not None:
        hessians = [h.detach().cpu().numpy() for h in out.hessians]
    return out.energies.detach().cpu().numpy(), forces, stresses, hessians


def _sym_of(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(z)]


def _check_elements(potential: Any, packed) -> None:
    """``ValueError`` naming the first structure with an element the potential does not know."""
    elements = potential.elements
    if elements is None:
        return
    bad = ~np.isin(packed.numbers, np.array(sorted(elements), dtype=np.int64))
    if not bad.any():
        return
    k = int(np.searchsorted(packed.ptr, int(np.argmax(bad)), side="right") - 1)
    symbols = {_sym_of(z) for z in packed.numbers[packed.ptr[k] : packed.ptr[k + 1]]}
    unknown = symbols - {_sym_of(z) for z in elements}
    known = ", ".join(sorted(_sym_of(z) for z in elements))
    raise ValueError(
        f"structure {k}: element(s) {', '.join(sorted(unknown))} not supported by "
        f"{type(potential).__name__} (supported: {known})"
    )
