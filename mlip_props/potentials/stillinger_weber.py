"""Stillinger-Weber three-body potential in torch (batched over triplets of the edge list).

E = sum_{i<j} phi2(r_ij) + sum_i sum_{j<k} phi3(r_ij, r_ik, theta_jik), with

    phi2(r) = A eps [B (sigma/r)^p - (sigma/r)^q] exp(sigma / (r - a sigma))
    phi3    = lambda eps (cos theta_jik + 1/3)^2 exp(gamma sigma / (r_ij - a sigma))
                                                 exp(gamma sigma / (r_ik - a sigma))

for r < a sigma (zero beyond). The exponential cut-offs vanish with all their derivatives at
r = a sigma, so energies, forces and force constants are smooth at the cutoff.

Default parameters are those of silicon (Stillinger and Weber, Phys. Rev. B 31, 5262 (1985)):
eps = 2.1683 eV, sigma = 2.0951 A, a = 1.80, lambda = 21.0, gamma = 1.20, A = 7.049556277,
B = 0.6022245584, p = 4, q = 0. They give diamond Si with a0 = 5.431 A and a cohesive energy of
2 eps = 4.3366 eV/atom.

Triplets (j, i, k) are the ordered pairs of distinct edges sharing the centre i, built from the
backend's neighbour graph with integer index arithmetic (no Python loop over atoms); energies
are per-atom, so forces, stress and Hessians come from the backend's autograd.
"""
from __future__ import annotations

from typing import Any

import torch

from ..backend.neighbors import neighbor_pairs
from ..backend.potential import AtomicGraph, Potential


def triplets(edge_index: torch.Tensor, n_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered pairs (e1, e2), e1 != e2, of directed edges with the same centre atom.

    ``edge_index``: (2, E) centre/neighbour indices. Returns two (T,) index tensors into the
    edges. Pairs of edges to two periodic images of the same atom are distinct triplets. Both
    orders of each unordered pair from :func:`mlip_props.backend.neighbors.neighbor_pairs`.
    """
    e1, e2 = neighbor_pairs(edge_index[0], n_atoms)
    return torch.cat([e1, e2]), torch.cat([e2, e1])


class StillingerWeber(Potential):
    """Stillinger-Weber potential for one element (default: silicon, PRB 31, 5262 (1985)).

    Energies in eV, lengths in Angstrom. ``cutoff`` is a * sigma (3.7712 A for Si).
    ``elements``: atomic numbers it applies to (default {14}); all atoms are treated alike.
    """

    bytes_per_edge = 3000  # triplets: ~ (neighbours) x more autograd memory than a pair term
    edge_only = True

    def __init__(
        self,
        epsilon: float = 2.1683,
        sigma: float = 2.0951,
        a: float = 1.80,
        lam: float = 21.0,
        gamma: float = 1.20,
        A: float = 7.049556277,
        B: float = 0.6022245584,
        p: float = 4.0,
        q: float = 0.0,
        elements: set[int] | None = frozenset({14}),
    ):
        super().__init__(a * sigma, elements)
        self.epsilon, self.sigma, self.a = float(epsilon), float(sigma), float(a)
        self.lam, self.gamma, self.A, self.B = float(lam), float(gamma), float(A), float(B)
        self.p, self.q = float(p), float(q)

    def _inv_gap(self, r: torch.Tensor) -> torch.Tensor:
        """sigma / (r - a sigma), kept finite and very negative at/after the cutoff."""
        gap = (r - self.a * self.sigma).clamp(max=-1e-8 * self.sigma)
        return self.sigma / gap

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        g = graph.within(self.cutoff)
        r = g.edge_lengths
        i = g.edge_index[0]
        n = g.n_atoms_total
        out = torch.zeros(n, dtype=r.dtype, device=r.device)
        inv = self._inv_gap(r)
        sr = self.sigma / r
        pair = self.A * self.epsilon * (self.B * sr**self.p - sr**self.q) * torch.exp(inv)
        out = out.index_add(0, i, 0.5 * pair)
        e1, e2 = triplets(g.edge_index, n)
        if e1.numel():
            v1, v2 = g.edge_vectors[e1], g.edge_vectors[e2]
            cos = (v1 * v2).sum(-1) / (r[e1] * r[e2])
            radial = torch.exp(self.gamma * inv)
            three = self.lam * self.epsilon * (cos + 1.0 / 3.0) ** 2 * radial[e1] * radial[e2]
            out = out.index_add(0, i[e1], 0.5 * three)  # ordered pairs count each j<k twice
        return out

    def get_config(self) -> dict[str, Any]:
        return dict(epsilon=self.epsilon, sigma=self.sigma, a=self.a, lam=self.lam, gamma=self.gamma,
                    A=self.A, B=self.B, p=self.p, q=self.q,
                    elements=None if self.elements is None else sorted(self.elements))


def _register() -> None:
    from .registry import register_potential
    from .serialization import register_model_class

    register_model_class(StillingerWeber)
    register_potential("sw", StillingerWeber)
    register_potential("stillinger-weber", StillingerWeber)


_register()
