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


def smooth_switch_derivative(r: torch.Tensor, r_on: float, r_off: float) -> torch.Tensor:
    """ds/dr (1/Angstrom) of :func:`smooth_switch`: -30 x^2 (1 - x)^2 / (r_off - r_on), 0 outside."""
    if r_off <= r_on:
        return torch.zeros_like(r)
    w = r_off - r_on
    x = ((r - r_on) / w).clamp(0.0, 1.0)
    return (-30.0 / w) * (x * (1.0 - x)) ** 2


def _pair_energy_per_atom(e: torch.Tensor, i: torch.Tensor, j: torch.Tensor, n_atoms: int, half: bool) -> torch.Tensor:
    """Per-atom energies (N,) from pair energies ``e`` on edges i -> j: on a half list (each pair
    once) half of each pair to each atom, on a full list half to the centre of each of its two
    edges."""
    out = torch.zeros(n_atoms, dtype=e.dtype, device=e.device).index_add(0, i, 0.5 * e)
    return out.index_add(0, j, 0.5 * e) if half else out


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

    @property
    def closed_form_edge_gradients(self) -> bool:
        """Energies and dE/d(edge vector) in closed form (:meth:`edge_energies_and_gradients`),
        unless a subclass computes its energy in a ``forward`` of its own (the closed form would
        then bypass it, so such a subclass goes through autograd)."""
        return type(self).forward is PairPotential.forward

    def pair_energy(self, r: torch.Tensor, zi: torch.Tensor, zj: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def pair_energy_and_derivative(self, r: torch.Tensor, zi: torch.Tensor, zj: torch.Tensor):
        """``(phi, dphi/dr)`` (eV, eV/A) of distances ``r``; by autograd of :meth:`pair_energy`
        in r alone unless a subclass gives the derivative in closed form."""
        with torch.enable_grad():
            r_leaf = r.detach().requires_grad_(True)
            phi = self.pair_energy(r_leaf, zi, zj)
            (dphi,) = torch.autograd.grad(phi.sum(), r_leaf)
        return phi.detach(), dphi

    def edge_energies_and_gradients(self, graph: AtomicGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-atom energies (N,) eV and g_e = dE/dr_e (E, 3) eV/A for every edge of ``graph``.

        The fast route of the backend for energies, forces and stress (no autograd graph over
        the edges): with e(r) = phi(r) s(r), g_e = w e'(r_e) r_e / |r_e|, w = 1 on a half list
        (each pair once) and 1/2 on a full one. Edges beyond the cutoff contribute nothing.
        """
        r = graph.edge_lengths
        i, j = graph.edge_index
        keep = None
        if bool((r >= self.cutoff).any()):
            keep = torch.nonzero(r < self.cutoff).squeeze(1)
            r, i, j = r[keep], i[keep], j[keep]
        r_on = self.cutoff - self.switch_width
        phi, dphi = self.pair_energy_and_derivative(r, graph.numbers[i], graph.numbers[j])
        sw = smooth_switch(r, r_on, self.cutoff)
        e = phi * sw
        de = dphi * sw + phi * smooth_switch_derivative(r, r_on, self.cutoff)
        out = _pair_energy_per_atom(e, i, j, graph.n_atoms_total, graph.half)
        scale = (de / r) if graph.half else (0.5 * de / r)
        vec = graph.edge_vectors if keep is None else graph.edge_vectors[keep]
        g = scale[:, None] * vec
        if keep is not None:
            g = torch.zeros_like(graph.edge_vectors).index_add_(0, keep, g)
        return out, g

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        g = graph.within(self.cutoff)
        r = g.edge_lengths
        i, j = g.edge_index
        phi = self.pair_energy(r, g.numbers[i], g.numbers[j])
        phi = phi * smooth_switch(r, self.cutoff - self.switch_width, self.cutoff)
        return _pair_energy_per_atom(phi, i, j, g.n_atoms_total, g.half)


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
        self.closed_form_edge_gradients = all(getattr(t, "closed_form_edge_gradients", False) for t in terms)

    def edge_energies_and_gradients(self, graph: AtomicGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum of the terms' closed-form energies and edge gradients (see :class:`PairPotential`)."""
        energy, grad = None, None
        for t in self.terms:
            e, g = t.edge_energies_and_gradients(graph)
            energy, grad = (e, g) if energy is None else (energy + e, grad + g)
        return energy, grad

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
