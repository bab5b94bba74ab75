"""The potential interface of the backend.

A torch potential is a :class:`Potential`: a ``torch.nn.Module`` that maps an
:class:`AtomicGraph` (a batch plus its neighbour graph, with differentiable edge vectors) to
per-atom energies in eV. It declares its ``cutoff`` (Angstrom) and the atomic numbers it
supports (``elements``; ``None`` = any). Committees return per-atom energies of shape
``(N, n_members)`` and set ``n_members``.

Everything else (forces, stress, Hessians, batching, chunking, devices) is done once, in
:mod:`mlip_props.backend.evaluate`, by automatic differentiation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from ase.data import chemical_symbols

from .batch import Batch


@dataclass(frozen=True)
class AtomicGraph:
    """What a potential sees: atoms, edges within its cutoff, and edge vectors (Angstrom).

    ``edge_vectors`` and ``edge_lengths`` depend differentiably on positions and cell (the
    backend's strain), so any energy built from them has correct forces and stress.
    """

    numbers: torch.Tensor  # (N,)
    structure_index: torch.Tensor  # (N,)
    n_structures: int
    edge_index: torch.Tensor  # (2, E): centre i, neighbour j
    edge_vectors: torch.Tensor  # (E, 3)
    edge_lengths: torch.Tensor  # (E,)
    edge_structure: torch.Tensor  # (E,)
    positions: torch.Tensor  # (N, 3), strained
    cells: torch.Tensor  # (B, 3, 3), strained
    pbc: torch.Tensor  # (B, 3)
    #: True when each pair appears once (i -> j only); given only to ``pairwise`` potentials.
    half: bool = False

    @property
    def n_atoms_total(self) -> int:
        return int(self.numbers.shape[0])

    def within(self, cutoff: float) -> "AtomicGraph":
        """The same graph keeping only edges shorter than ``cutoff`` (Angstrom)."""
        keep = self.edge_lengths < cutoff
        if bool(keep.all()):
            return self
        return AtomicGraph(
            numbers=self.numbers,
            structure_index=self.structure_index,
            n_structures=self.n_structures,
            edge_index=self.edge_index[:, keep],
            edge_vectors=self.edge_vectors[keep],
            edge_lengths=self.edge_lengths[keep],
            edge_structure=self.edge_structure[keep],
            positions=self.positions,
            cells=self.cells,
            pbc=self.pbc,
            half=self.half,
        )


def module_device(module: Any) -> torch.device | None:
    """The device of a module's first parameter or buffer (``None`` for a module without any,
    such as the analytic pair potentials, or for a non-module)."""
    if not isinstance(module, torch.nn.Module):
        return None
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return None


class Potential(torch.nn.Module):
    """Base class of every torch potential in mlip-props.

    Subclasses set ``cutoff`` (Angstrom), optionally ``elements`` (a set of atomic numbers),
    implement :meth:`forward` returning per-atom energies (eV), and implement
    :meth:`get_config` so the potential can be saved and rebuilt (see
    :func:`mlip_props.potentials.save_potential`).
    """

    #: Rough autograd memory per edge for one energy+forces+stress pass (bytes, float64);
    #: the chunker uses it to split large jobs by the memory budget.
    bytes_per_edge: ClassVar[int] = 600
    #: 1 for a single model; the committee size for committees.
    n_members: int = 1
    #: True when the energy depends on positions and cell ONLY through the graph's edge vectors
    #: (translation invariant, no direct use of ``graph.positions``). The backend then takes
    #: forces and stress from one gradient with respect to the edge vectors (forces by
    #: scattering it onto both atoms of each edge, stress as the virial sum r_ij (x) dE/dr_ij / V),
    #: which is cheaper than differentiating through positions and a strain.
    edge_only: bool = False
    #: True for a sum of symmetric pair terms: the potential accepts a half neighbour list
    #: (``graph.half``; each pair once), which halves the neighbour search and the edge work.
    pairwise: bool = False
    #: True when the potential implements ``edge_energies_and_gradients(graph) -> (per-atom
    #: energies (N,), dE/dr_e (E, 3))`` in closed form (analytic pair potentials): the backend
    #: then takes energies, forces and stress without building an autograd graph over the edges.
    #: Hessians and training (``create_graph``) always go through autograd.
    closed_form_edge_gradients: bool = False

    def __init__(self, cutoff: float, elements: set[int] | None = None):
        super().__init__()
        if not cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        self.cutoff = float(cutoff)
        self.elements = None if elements is None else frozenset(int(z) for z in elements)

    def forward(self, graph: AtomicGraph) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} cannot be saved (no get_config)")

    def check_elements(self, batch: Batch) -> None:
        """Raise ``ValueError`` naming the structure and element if the potential does not know it."""
        if self.elements is None:
            return
        z = batch.numbers.cpu()
        known = torch.tensor(sorted(self.elements), dtype=z.dtype)
        bad = ~torch.isin(z, known)
        if bool(bad.any()):
            k = int(torch.nonzero(bad)[0])
            s = int(batch.structure_index[k])
            sym = chemical_symbols[int(z[k])]
            allowed = ", ".join(chemical_symbols[e] for e in sorted(self.elements))
            raise ValueError(
                f"structure {s}: element {sym} is not supported by {type(self).__name__} (supported: {allowed})"
            )
