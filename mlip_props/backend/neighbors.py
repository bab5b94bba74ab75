"""Batched periodic neighbour graphs.

Each structure's full neighbour list (both i->j and j->i) within a cutoff comes from
`vesin <https://github.com/Luthaf/vesin>`_, a cell-list implementation that is linear in the
number of atoms and exact for small and triclinic cells (a cutoff longer than the cell gives
every periodic image). The per-structure lists are offset and concatenated into one graph.

Edge vectors are *not* stored: :func:`edge_vectors` recomputes them from the batch's (possibly
strained, autograd-tracked) positions and cells, ``r_ij = x_j - x_i + S_ij @ cell``, so forces,
stresses and Hessians flow through them.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .batch import COINCIDENT_ATOMS_A, Batch, PackedStructures
from .guards import check_neighbor_search


@dataclass(frozen=True)
class NeighborGraph:
    """Directed edges ``i -> j`` of a batch, with integer cell shifts.

    ``edge_index``: (2, E) global atom indices (centre ``i``, neighbour ``j``).
    ``shifts``: (E, 3) integer lattice translations (stored in the batch's float dtype).
    ``edge_structure``: (E,) structure each edge belongs to.
    ``cutoff``: the radius (Angstrom) the graph was built with.
    ``reference_positions``: positions at build time (to decide when a skin is exceeded).
    ``reference_cells``: cells at build time (optional); with them a graph without skin is
    reused for exactly the structures it was built for instead of being rebuilt.
    ``half``: each pair appears once (``i -> j`` but not ``j -> i``); only for potentials that
    declare ``pairwise``.
    """

    edge_index: torch.Tensor
    shifts: torch.Tensor
    edge_structure: torch.Tensor
    cutoff: float
    skin: float
    reference_positions: torch.Tensor
    reference_cells: torch.Tensor | None = None
    half: bool = False
    #: Edge vectors (E, 3) at the reference positions and cells, as the neighbour search found
    #: them (optional): reused by :func:`edge_vectors` when nothing needs their gradient.
    vectors: torch.Tensor | None = None

    @property
    def n_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def needs_rebuild(self, batch: Batch) -> bool:
        """True when an atom has moved more than half the skin since the graph was built
        (without a skin: unless positions and cells are exactly those it was built for)."""
        if batch.positions.shape != self.reference_positions.shape:
            return True
        if self.skin <= 0:
            return self.reference_cells is None or not (
                torch.equal(batch.positions.detach(), self.reference_positions)
                and torch.equal(batch.cells.detach(), self.reference_cells)
            )
        disp = (batch.positions.detach() - self.reference_positions).norm(dim=1)
        return bool(disp.max() > 0.5 * self.skin) if disp.numel() else False


def select_graph(graph: NeighborGraph, full: Batch, indices: list[int], sub: Batch) -> NeighborGraph:
    """The part of ``graph`` (built for batch ``full``) that belongs to structures ``indices``,
    renumbered for ``sub = full.select(indices)``; keeps the cutoff and skin."""
    ptr = full.ptr.cpu().numpy()
    new_of_old = np.full(full.n_total, -1, dtype=np.int64)
    new_struct = np.full(full.n_structures, -1, dtype=np.int64)
    start = 0
    for new, b in enumerate(indices):
        n = ptr[b + 1] - ptr[b]
        new_of_old[ptr[b] : ptr[b + 1]] = np.arange(start, start + n)
        new_struct[b] = new
        start += n
    es = graph.edge_structure.cpu().numpy()
    keep = new_struct[es] >= 0
    ei = graph.edge_index.cpu().numpy()[:, keep]
    dev = graph.edge_index.device
    keep_t = torch.as_tensor(keep, device=dev)
    return NeighborGraph(
        edge_index=torch.as_tensor(new_of_old[ei], device=dev),
        shifts=graph.shifts[keep_t],
        edge_structure=torch.as_tensor(new_struct[es[keep]], device=dev),
        cutoff=graph.cutoff,
        skin=graph.skin,
        reference_positions=sub.positions.detach().clone(),
        reference_cells=sub.cells.detach().clone(),
        half=graph.half,
        vectors=None,  # the search's vectors belong to the build-time positions, not to ``sub``'s
    )


def _box_for(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """A box vesin accepts: non-periodic directions get a vector orthogonal to the rest."""
    if pbc.all():
        return cell
    if not pbc.any():  # molecules: the loop below would give the identity; skip its cost
        return np.eye(3)
    box = cell.copy()
    for d in np.where(~pbc)[0]:
        box[d] = 0.0
    for d in np.where(~pbc)[0]:
        others = [box[k] for k in range(3) if k != d and np.linalg.norm(box[k]) > 0]
        if len(others) == 2:
            v = np.cross(others[0], others[1])
        elif len(others) == 1:
            helper = np.eye(3)[np.argmin(np.abs(others[0]))]
            v = np.cross(others[0], helper)
        else:
            v = np.eye(3)[d]
        box[d] = v / np.linalg.norm(v)
    return box


_local = threading.local()


def _vesin(cutoff: float, full: bool):
    """One vesin NeighborList per thread, cutoff and list type (it keeps its buffers between calls)."""
    from vesin import NeighborList

    cache = getattr(_local, "lists", None)
    if cache is None:
        cache = _local.lists = {}
    key = (cutoff, full)
    if key not in cache:
        cache[key] = NeighborList(cutoff=cutoff, full_list=full, n_threads=1)
    return cache[key]


def structure_neighbors(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float, half: bool = False, index: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour list of one structure: ``(i, j, shifts, distances, vectors)`` within ``cutoff``
    (Angstrom); ``vectors[e] = x_j - x_i + shifts[e] @ cell``.

    Full (both ``i -> j`` and ``j -> i``) unless ``half``, where each pair appears once.
    Raises :class:`~mlip_props.backend.guards.SizeLimitError` naming ``structure {index}``
    when the search would crash the library or exceed a size limit
    (:func:`~mlip_props.backend.guards.check_neighbor_search`).
    """
    pbc = np.asarray(pbc, dtype=bool)
    box = _box_for(np.asarray(cell, dtype=np.float64), pbc)
    # size guard: refuse a search that would crash vesin, exhaust memory or run for hours
    check_neighbor_search(positions, box, pbc, float(cutoff), index=index)
    i, j, s, d, v = _vesin(float(cutoff), not half).compute(
        points=np.ascontiguousarray(positions, dtype=np.float64),
        box=np.ascontiguousarray(box),
        periodic=[bool(p) for p in pbc],
        quantities="ijSdD",
    )
    return i.astype(np.int64), j.astype(np.int64), s.astype(np.int64), d, v


def neighbor_lists(
    positions: Sequence[np.ndarray],
    cells: Sequence[np.ndarray],
    pbcs: Sequence[np.ndarray],
    cutoff: float,
    half: bool = False,
    check_overlap: bool = True,
    structure_ids: Sequence[int] | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`structure_neighbors` of many structures.

    (Spreading the vesin calls over threads was measured: no gain on this machine, since the
    calls do not run concurrently, so they run in the calling thread.)

    Raises ``ValueError`` naming the structure when two atoms coincide (closer than
    ``COINCIDENT_ATOMS_A``), where no potential has a finite gradient. ``structure_ids``: the
    index each structure has in the caller's list (for the size guard's message; default
    ``0, 1, ...``).
    """
    ids = range(len(positions)) if structure_ids is None else structure_ids
    lists = [structure_neighbors(positions[b], cells[b], pbcs[b], cutoff, half, index=int(ids[b]))
             for b in range(len(positions))]
    if check_overlap:
        for b, (i, j, _, d, *_rest) in enumerate(lists):
            if len(d) and d.min() < COINCIDENT_ATOMS_A:
                k = int(np.argmin(d))
                raise ValueError(
                    f"structure {b}: atoms {int(i[k])} and {int(j[k])} coincide (distance {d[k]:.2e} A)"
                )
    return lists


#: Skin (Angstrom) of lists shared between structures of one cell (see :func:`shared_neighbor_lists`).
SHARED_LIST_SKIN_A = 0.5
#: At most this many reference structures (own lists) per cell before the rest get their own lists.
SHARED_LIST_MAX_REFERENCES = 16


def _assign_references(pos: np.ndarray, limit2: float, max_refs: int) -> np.ndarray:
    """For structures ``pos`` (G, n, 3) of one cell: the index of the reference each one shares a
    list with (itself for a reference). A structure shares with the first reference from which
    no atom has moved ``limit2 ** 0.5`` or more; up to ``max_refs`` references are chosen greedily
    (the first unassigned structure becomes the next one); the rest keep their own lists."""
    g = len(pos)
    owner = np.full(g, -1, dtype=np.int64)
    for _ in range(max_refs):
        free = np.flatnonzero(owner < 0)
        if not len(free):
            break
        ref = free[0]
        d = pos[free] - pos[ref]
        fits = np.einsum("gij,gij->gi", d, d).max(axis=1) < limit2
        owner[free[fits]] = ref  # includes ref itself (d = 0)
    left = owner < 0
    owner[left] = np.flatnonzero(left)
    return owner


def shared_neighbor_lists(
    packed: "PackedStructures", cutoff: float, half: bool = False, skin: float | None = None
) -> tuple[list, np.ndarray | None, float]:
    """Neighbour lists of packed structures, shared between structures that differ only by small
    displacements (a Verlet list across the batch).

    Structures with the same cell, periodicity and atomic numbers (rattled frames, MD
    snapshots, displaced phonon supercells ...) whose every atom lies within ``skin / 2`` of a
    reference structure of that cell reuse the reference's list, built within ``cutoff + skin``:
    by the triangle inequality it holds every pair closer than ``cutoff`` in them (up to
    ``SHARED_LIST_MAX_REFERENCES`` references per cell, chosen greedily in input order). Returns
    ``(lists, displacement, extra)``: per-structure ``(i, j, shifts, d, vectors)`` (for a
    sharing structure the reference's), the (N, 3) displacement of each atom from its list's
    reference (``None`` if nothing is shared) and the extra radius (``skin`` or 0) beyond
    ``cutoff`` of the lists; :func:`assemble_graph` corrects the vectors with the displacement
    and drops the pairs beyond ``cutoff``. ``skin`` defaults to the module's
    ``SHARED_LIST_SKIN_A``; 0 turns sharing off.
    """
    skin = SHARED_LIST_SKIN_A if skin is None else float(skin)
    nb = packed.n_structures
    owner = np.arange(nb)
    if skin > 0 and nb > 1:
        groups: dict[bytes, list[int]] = {}
        for b in range(nb):
            key = b"".join((packed.cells[b].tobytes(), packed.pbc[b].tobytes(),
                            packed.numbers[packed.ptr[b] : packed.ptr[b + 1]].tobytes()))
            groups.setdefault(key, []).append(b)
        for members in groups.values():
            if len(members) < 2:
                continue
            idx = np.asarray(members)
            n = int(packed.n_atoms[idx[0]])
            rows = packed.ptr[idx][:, None] + np.arange(n)[None, :]
            owner[idx] = idx[_assign_references(packed.positions[rows], (0.5 * skin) ** 2,
                                                SHARED_LIST_MAX_REFERENCES)]
    shared = owner != np.arange(nb)
    if not shared.any():
        lists = neighbor_lists([packed.positions_of(b) for b in range(nb)], packed.cells, packed.pbc, cutoff, half)
        return lists, None, 0.0
    own = np.nonzero(~shared)[0]
    built = neighbor_lists([packed.positions_of(b) for b in own], packed.cells[own], packed.pbc[own],
                           cutoff + skin, half, check_overlap=False, structure_ids=own.tolist())
    by_owner = dict(zip(own.tolist(), built))
    lists = [by_owner[int(owner[b])] for b in range(nb)]
    # each atom's reference atom: same local index in its structure's owner
    local = np.arange(len(packed.positions)) - np.repeat(packed.ptr[:-1], packed.n_atoms)
    ref_atoms = np.repeat(packed.ptr[owner], packed.n_atoms) + local
    displacement = packed.positions - packed.positions[ref_atoms]
    return lists, displacement, float(skin)


def build_neighbor_graph(
    batch: Batch, cutoff: float, skin: float = 0.0, check_overlap: bool = True, half: bool = False
) -> NeighborGraph:
    """Neighbour graph of every structure in ``batch`` within ``cutoff + skin`` (Angstrom).

    Work and memory are linear in the number of atoms. ``half``: each pair once (for
    ``pairwise`` potentials). Raises ``ValueError`` naming the structure when two atoms
    coincide (closer than ``COINCIDENT_ATOMS_A``).
    """
    pos = batch.positions.detach().cpu().numpy().astype(np.float64)
    cells = batch.cells.detach().cpu().numpy().astype(np.float64)
    pbc = batch.pbc.cpu().numpy()
    ptr = batch.ptr.cpu().numpy()
    rc = float(cutoff) + float(skin)
    lists = neighbor_lists([pos[ptr[b] : ptr[b + 1]] for b in range(batch.n_structures)], cells, pbc, rc,
                           half=half, check_overlap=check_overlap)
    return assemble_graph(batch, lists, cutoff, skin, half=half)


def assemble_graph(batch: Batch, lists: list, cutoff: float, skin: float = 0.0, half: bool = False,
                   displacement: np.ndarray | None = None) -> NeighborGraph:
    """Concatenate per-structure lists ``(i, j, shifts, ...)`` into one graph with global indices.

    ``displacement`` (N, 3): each atom's displacement from the structure its list was built for
    (:func:`shared_neighbor_lists`, lists built within ``cutoff`` plus a skin); the stored
    vectors are corrected by it, the edges now longer than ``cutoff`` are dropped (so the graph
    is exact, without skin, for the batch's positions), and coincident atoms are detected here
    (``ValueError`` naming the structure)."""
    ptr = batch.ptr.cpu().numpy()
    counts = np.array([len(nl[0]) for nl in lists], dtype=np.int64)
    offsets = np.repeat(ptr[:-1], counts)
    ei = np.stack([np.concatenate([nl[0] for nl in lists]), np.concatenate([nl[1] for nl in lists])])
    ei += offsets
    shifts = np.concatenate([nl[2] for nl in lists])
    edge_structure = np.repeat(np.arange(len(lists)), counts)
    dev = batch.device
    vectors = None
    if all(len(nl) > 4 for nl in lists):
        v = np.concatenate([nl[4] for nl in lists])
        if displacement is not None:
            # numpy on the host (take is ~2x faster than torch indexing there); torch on a GPU,
            # where the host would otherwise do the work and ship the skin's pairs too
            correct = _correct_and_trim_numpy if dev.type == "cpu" else _correct_and_trim_torch
            ei, v, shifts, edge_structure = correct(ei, v, shifts, edge_structure, displacement, cutoff,
                                                    ptr, batch.dtype, dev)
        vectors = torch.as_tensor(v, dtype=batch.dtype, device=dev)
    elif displacement is not None:
        raise ValueError("a displacement needs lists with edge vectors")
    return NeighborGraph(
        edge_index=torch.as_tensor(ei, device=dev),
        shifts=torch.as_tensor(shifts, dtype=batch.dtype, device=dev),
        edge_structure=torch.as_tensor(edge_structure, device=dev),
        cutoff=float(cutoff),
        skin=float(skin),
        reference_positions=batch.positions.detach().clone(),
        reference_cells=batch.cells.detach().clone(),
        half=half,
        vectors=vectors,
    )


def _coincident_error(d2_min: float, k: int, ei_k: tuple[int, int], ptr: np.ndarray) -> ValueError:
    b = int(np.searchsorted(ptr, ei_k[0], side="right") - 1)
    return ValueError(f"structure {b}: atoms {ei_k[0] - int(ptr[b])} and {ei_k[1] - int(ptr[b])} "
                      f"coincide (distance {np.sqrt(d2_min):.2e} A)")


def _correct_and_trim_numpy(ei, v, shifts, edge_structure, displacement, cutoff, ptr, dtype, dev):
    """Shared-list edges moved by the atoms' displacements, those now beyond ``cutoff`` dropped
    (numpy arrays in and out); ``ValueError`` naming the structure for coincident atoms."""
    d = displacement.take(ei[1], axis=0)
    d -= displacement.take(ei[0], axis=0)
    v += d
    d2 = np.einsum("ij,ij->i", v, v)
    if len(d2) and d2.min() < COINCIDENT_ATOMS_A**2:
        k = int(np.argmin(d2))
        raise _coincident_error(float(d2[k]), k, (int(ei[0, k]), int(ei[1, k])), ptr)
    keep = np.flatnonzero(d2 < float(cutoff) ** 2)
    if len(keep) < len(d2):  # the skin's pairs: no potential sees them
        ei, v = ei.take(keep, axis=1), v.take(keep, axis=0)
        shifts, edge_structure = shifts.take(keep, axis=0), edge_structure.take(keep)
    return ei, v, shifts, edge_structure


def _correct_and_trim_torch(ei, v, shifts, edge_structure, displacement, cutoff, ptr, dtype, dev):
    """:func:`_correct_and_trim_numpy` on ``dev`` with torch (tensors out, on ``dev``; vectors in
    float64 until trimmed, like the host route)."""
    ei = torch.as_tensor(ei, device=dev)
    v = torch.as_tensor(v, dtype=torch.float64, device=dev)
    disp = torch.as_tensor(displacement, dtype=torch.float64, device=dev)
    v += disp.index_select(0, ei[1]) - disp.index_select(0, ei[0])
    d2 = (v * v).sum(dim=1)
    if d2.numel():
        k = int(torch.argmin(d2))
        if float(d2[k]) < COINCIDENT_ATOMS_A**2:
            raise _coincident_error(float(d2[k]), k, (int(ei[0, k]), int(ei[1, k])), ptr)
    keep = torch.nonzero(d2 < float(cutoff) ** 2).squeeze(1)
    shifts = torch.as_tensor(shifts, device=dev)
    edge_structure = torch.as_tensor(edge_structure, device=dev)
    if keep.numel() < d2.numel():
        ei, v = ei[:, keep], v[keep]
        shifts, edge_structure = shifts[keep], edge_structure[keep]
    return ei, v.to(dtype), shifts, edge_structure


def edge_vectors(batch: Batch, graph: NeighborGraph) -> torch.Tensor:
    """Edge vectors r_ij = x_j - x_i + S_ij @ cell (E, 3), Angstrom, differentiable in positions and cells.

    When no gradient is needed and the batch is exactly the one the graph was built for, the
    neighbour search's own vectors are returned."""
    if (graph.vectors is not None and not (batch.positions.requires_grad or batch.cells.requires_grad)
            and graph.reference_cells is not None
            and graph.reference_positions.shape == batch.positions.shape
            and torch.equal(batch.positions, graph.reference_positions)
            and torch.equal(batch.cells, graph.reference_cells)):
        return graph.vectors.detach().to(batch.dtype)
    i, j = graph.edge_index
    if batch.n_structures == 1:  # one large structure: a plain matmul, no per-edge copy of the cell
        offsets = graph.shifts @ batch.cells[0]
    else:
        offsets = torch.einsum("ek,ekl->el", graph.shifts, batch.cells[graph.edge_structure])
    return batch.positions[j] - batch.positions[i] + offsets


def neighbor_pairs(center: torch.Tensor, n_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All unordered pairs (e1, e2), e1 != e2, of edges sharing a centre atom.

    ``center``: (E,) centre atom of each edge. Returns two (T,) index tensors into the edges.
    Pure tensor operations: edges are sorted by centre, and every edge is paired with the
    edges after it in its centre's group (T = sum_i n_i (n_i - 1) / 2).
    """
    dev = center.device
    if center.numel() == 0:
        z = torch.zeros(0, dtype=torch.long, device=dev)
        return z, z
    order = torch.argsort(center, stable=True)
    c = center[order]
    counts = torch.bincount(c, minlength=n_atoms)
    start = torch.cumsum(counts, 0) - counts
    pos = torch.arange(c.numel(), device=dev) - start[c]
    n_after = counts[c] - pos - 1
    e1 = torch.repeat_interleave(torch.arange(c.numel(), device=dev), n_after)
    group_start = torch.cumsum(n_after, 0) - n_after
    off = torch.arange(e1.numel(), device=dev) - torch.repeat_interleave(group_start, n_after) + 1
    e2 = e1 + off
    return order[e1], order[e2]
