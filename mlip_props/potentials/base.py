"""Building blocks for analytic torch potentials: a smooth cutoff switch, pair potentials, sums."""
from __future__ import annotations

from typing import Any

import torch

from ..backend.potential import AtomicGraph, Potential


def smooth_switch(r: torch.Tensor, r_on: float, r_off: float) -> torch.Tensor:
    """C2-continuous switch: 1 for r <= r_on, 0 for r >= r_off, quintic smoothstep between.

    s(x) = 1 - 10 x^3 + 15 x^4 - 6 x^5 with x = (r - r_on) / (r_off - r_on); s' = s'' = 0 at both
    ends, so energies, forces and force constants are continuous at the cutoff.
    """
    if r_off <= r_on:
        return (r < r_off).to(r.dtype)
    x = ((r - r_on) / (r_off - r_on)).clamp(0.0, 1.0)
    return 1.0 - x**3 * (10.0 - 15.0 * x + 6.0 * x**2)


class PairPotential(Potential):
    """A central pair potential E = 1/2 sum_{i != j} phi(r_ij) s(r_ij), s a smooth cutoff switch.

    Subclasses implement :meth:`pair_energy` (eV) of distances and the two atomic numbers.
    """

    bytes_per_edge = 400
    edge_only = True
    pairwise = True

    def __init__(self, cutoff: float, switch_width: float, elements: set[int] | None = None):
        super().__init__(cutoff, elements)
        if not 0 <= switch_width < cutoff:
            raise ValueError(f"switch_width must be in [0, cutoff), got {switch_width}")
        self.switch_width = float(switch_width)

    def pair_energy(self, r: torch.Tensor, zi: torch.Tensor, zj: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        g = graph.within(self.cutoff)
        r = g.edge_lengths
        i, j = g.edge_index
        phi = self.pair_energy(r, g.numbers[i], g.numbers[j])
        phi = phi * smooth_switch(r, self.cutoff - self.switch_width, self.cutoff)
        out = torch.zeros(g.n_atoms_total, dtype=r.dtype, device=r.device)
        if g.half:  # each pair once: half of its energy to each atom
            return out.index_add(0, i, 0.5 * phi).index_add(0, j, 0.5 * phi)
        return out.index_add(0, i, 0.5 * phi)


class SumPotential(Potential):
    """Sum of potentials (e.g. Morse + ZBL): per-atom energies add; the cutoff is the largest."""

    def __init__(self, *terms: Potential):
        if not terms:
            raise ValueError("SumPotential needs at least one term")
        elements = None
        for t in terms:
            if t.elements is not None:
                elements = set(t.elements) if elements is None else elements & set(t.elements)
        super().__init__(max(t.cutoff for t in terms), elements)
        self.terms = torch.nn.ModuleList(terms)
        self.bytes_per_edge = sum(t.bytes_per_edge for t in terms)
        self.edge_only = all(t.edge_only for t in terms)
        self.pairwise = all(t.pairwise for t in terms)

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        total = None
        for t in self.terms:
            e = t(graph.within(t.cutoff))
            total = e if total is None else total + e
        return total

    def get_config(self) -> dict[str, Any]:
        from .serialization import potential_to_dict

        return {"terms": [potential_to_dict(t, with_state=True) for t in self.terms]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SumPotential":
        from .serialization import potential_from_dict

        return cls(*[potential_from_dict(t) for t in config["terms"]])
