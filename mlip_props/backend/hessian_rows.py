"""Selected rows of the Hessian d2E/dx dx' of many structures, by autograd.

Lattice dynamics needs only some rows of a supercell's Hessian: the rows of the atoms of one
primitive cell (phonopy's compact force constants; the other rows follow from the supercell's
lattice translations), 3 n_primitive Hessian-vector products instead of 3 N. This module computes
such rows for a list of structures, ``rows[b]`` naming the atoms of structure ``b``:

* energies and forces of a chunk of structures come from one pass of the backend's batch and
  neighbour-graph machinery, with the forces kept differentiable;
* the Hessian-vector products are batched over the structures of a chunk: product k selects
  direction k % 3 of row atom k // 3 of *every* structure at once, so 3 max(len(rows)) products
  answer the whole chunk (structures with the same number of rows share chunks, so no product is
  wasted on a structure that has fewer rows);
* committees (per-atom energies (N, M)) get the rows of every member (M times the products);
* an out-of-memory error halves the chunk (then, for one structure on an accelerator, the
  number of simultaneous products) and retries, as :func:`~mlip_props.backend.evaluate.evaluate`
  does; the chunks that ran are the result's ``chunking`` record.

Oracles (ASE calculators, outside autograd) get the full finite-difference Hessian of
:func:`~mlip_props.backend.evaluate.evaluate`, of which the rows are taken.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from ase import Atoms

from .batch import Batch, resolve_device
from .chunking import attempt_chunk, is_out_of_memory, too_large_error
from .evaluate import EvaluationResult, atomic_graph, evaluate, is_oracle, prepare_structures
from .neighbors import build_neighbor_graph
from .precision import compute_precision
from .results import ChunkRecord

#: Atoms per chunk of the row engine (forces with their autograd graph are kept for a chunk).
MAX_ATOMS_PER_CHUNK = 20000


def _chunks(sizes: Sequence[int], n_rows: Sequence[int], max_atoms: int) -> list[list[int]]:
    """Structure indices grouped into chunks of equal row count and at most ``max_atoms`` atoms."""
    order = sorted(range(len(sizes)), key=lambda k: (n_rows[k], k))
    chunks: list[list[int]] = []
    cur: list[int] = []
    n = 0
    for k in order:
        if cur and (n + sizes[k] > max_atoms or n_rows[k] != n_rows[cur[-1]]):
            chunks.append(cur)
            cur, n = [], 0
        cur.append(k)
        n += sizes[k]
    if cur:
        chunks.append(cur)
    return chunks


def _products(forces: torch.Tensor, pos: torch.Tensor, vecs: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """-d(forces . v)/dx for every unit vector v in ``vecs`` (n_vec, N, 3): Hessian rows (n_vec, N, 3);
    on accelerators ``block`` products at a time (all at once by default)."""
    hv = None
    if forces.device.type != "cpu" and len(vecs):  # vmapped products pay off on accelerators
        step = max(1, block or len(vecs))
        try:
            hv = torch.cat([torch.autograd.grad(forces, pos, grad_outputs=vecs[k : k + step], is_grads_batched=True,
                                                retain_graph=True)[0] for k in range(0, len(vecs), step)])
        except RuntimeError as exc:  # an op without a batching rule: one product at a time
            if is_out_of_memory(exc):
                raise
            hv = None
    if hv is None:  # on CPU one product at a time is ~2x faster than vmap (measured, Morse, 1 thread)
        hv = torch.stack([torch.autograd.grad(forces, pos, grad_outputs=v, retain_graph=True)[0] for v in vecs])
    return -hv.detach()


def evaluate_hessian_rows(
    potential: Any,
    structures: Sequence[Any],
    rows: Sequence[Sequence[int]],
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    max_atoms_per_chunk: int = MAX_ATOMS_PER_CHUNK,
) -> EvaluationResult:
    """Energies (eV), forces (eV/A) and selected Hessian rows (eV/A^2) of many structures.

    ``rows[b]``: atom indices of structure ``b``. ``hessians_eV_A2[b]`` has shape
    (3 len(rows[b]), 3 n_b): ``[3 r + a, 3 j + c] = d2E / dx_{rows[b][r], a} dx_{j, c}``
    (for a committee of M members (M, 3 len(rows[b]), 3 n_b), and forces (M, n_b, 3), energies
    (B, M), as :func:`~mlip_props.backend.evaluate.evaluate` lays them out). Raises
    ``ValueError`` naming the structure for a row index outside it.
    """
    atoms_list = prepare_structures(structures)
    if len(rows) != len(atoms_list):
        raise ValueError(f"{len(rows)} row lists for {len(atoms_list)} structures")
    rows = [np.asarray(r, dtype=int).reshape(-1) for r in rows]
    for k, (a, r) in enumerate(zip(atoms_list, rows)):
        if len(r) and (r.min() < 0 or r.max() >= len(a)):
            raise ValueError(f"structure {k}: Hessian row index outside its {len(a)} atoms")
    dtype = dtype or torch.float64
    if is_oracle(potential):
        return _oracle_rows(potential, atoms_list, rows, dtype, device)
    n_atoms = np.array([len(a) for a in atoms_list], dtype=int)
    energies: list[Any] = [None] * len(atoms_list)
    forces: list[Any] = [None] * len(atoms_list)
    hessians: list[Any] = [None] * len(atoms_list)
    dev = resolve_device(device)
    queue = _chunks(n_atoms.tolist(), [len(r) for r in rows], max_atoms_per_chunk)
    sizes: list[int] = []
    retries, block = 0, None
    while queue:
        chunk = queue.pop(0)
        done: dict[int, tuple] = {}
        error = attempt_chunk(lambda: done.update(_row_chunk(potential, atoms_list, rows, chunk, dtype, dev, block)),
                         None, dev)
        if error is None:
            for k, (e, f, h) in done.items():
                energies[k], forces[k], hessians[k] = e, f, h
            sizes.append(len(chunk))
            block = None
            continue
        retries += 1
        if len(chunk) > 1:  # halve the chunk
            queue[:0] = [chunk[: len(chunk) // 2], chunk[len(chunk) // 2 :]]
        elif dev.type != "cpu" and (block is None or block > 1):  # fewer simultaneous products
            block = max(1, (block or 3 * len(rows[chunk[0]])) // 2)
            queue.insert(0, chunk)
        else:
            raise too_large_error(chunk[0], int(n_atoms[chunk[0]]), None, dev, "Hessian rows", error)
    return EvaluationResult(energies_eV=np.array(energies, dtype=float), forces_eV_A=forces,
                            hessians_eV_A2=hessians, n_atoms=n_atoms,
                            precision=compute_precision(potential, dtype),
                            chunking=ChunkRecord(chunks=sizes, retries=retries))


def _row_chunk(potential: Any, atoms_list: list[Atoms], rows: list[np.ndarray], chunk: list[int],
               dtype: torch.dtype, device: torch.device, block: int | None) -> dict[int, tuple]:
    """``{structure: (energy, forces, Hessian rows)}`` of one chunk of structures with equal row counts."""
    batch = Batch.from_structures([atoms_list[k] for k in chunk], dtype=dtype, device=device, validate=False)
    pot = potential.to(batch.device)
    pot.check_elements(batch)
    # pair potentials take each pair once (half the edges, half the Hessian-vector work)
    graph = build_neighbor_graph(batch, pot.cutoff, half=bool(getattr(pot, "pairwise", False)))
    pos = batch.positions.detach().requires_grad_(True)
    per_atom = pot(atomic_graph(batch.with_positions(pos), graph))
    members = [per_atom] if per_atom.dim() == 1 else list(per_atom.unbind(-1))
    ptr = batch.ptr.cpu().numpy()
    nrow = len(rows[chunk[0]])
    vecs = torch.zeros(3 * nrow, batch.n_total, 3, dtype=pos.dtype, device=pos.device)
    for b, k in enumerate(chunk):
        for r, atom in enumerate(rows[k]):
            for c in range(3):
                vecs[3 * r + c, ptr[b] + int(atom), c] = 1.0
    e_m, f_m, h_m = [], [], []
    for e_atoms in members:
        f = -torch.autograd.grad(e_atoms.sum(), pos, create_graph=True, retain_graph=True)[0]
        h_m.append(_products(f, pos, vecs, block).cpu().numpy() if nrow else np.zeros((0, batch.n_total, 3)))
        f_m.append(f.detach().cpu().numpy())
        e_m.append(torch.zeros(batch.n_structures, dtype=pos.dtype, device=pos.device)
                   .index_add(0, batch.structure_index, e_atoms.detach()).cpu().numpy())
    committee = per_atom.dim() > 1
    out = {}
    for b, k in enumerate(chunk):
        n, nr = len(atoms_list[k]), len(rows[k])
        blocks = [hv[: 3 * nr, ptr[b] : ptr[b + 1]].reshape(3 * nr, 3 * n) for hv in h_m]
        fs = [f[ptr[b] : ptr[b + 1]] for f in f_m]
        es = [e[b] for e in e_m]
        out[k] = (np.array(es) if committee else es[0], np.stack(fs) if committee else fs[0],
                  np.stack(blocks) if committee else blocks[0])
    return out


def _oracle_rows(potential: Any, atoms_list: list[Atoms], rows: list[np.ndarray], dtype, device) -> EvaluationResult:
    """Rows of the oracle's full finite-difference Hessian."""
    res = evaluate(potential, atoms_list, ("energy", "forces", "hessian"), dtype=dtype, device=device)
    hessians = []
    for h, a, r in zip(res.hessians_eV_A2, atoms_list, rows):
        n = len(a)
        hessians.append(np.asarray(h).reshape(n, 3, 3 * n)[r].reshape(3 * len(r), 3 * n))
    return EvaluationResult(energies_eV=res.energies_eV, forces_eV_A=res.forces_eV_A, hessians_eV_A2=hessians,
                            n_atoms=res.n_atoms, precision=res.precision, chunking=res.chunking)
