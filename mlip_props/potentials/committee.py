"""Committees in the core: the committee-mean potential and the questions every property asks.

A committee potential returns per-atom energies of shape (N, M) for its M members and declares
``n_members = M``. Its mean over members is a potential like any other: energies, forces, stress
and Hessians of the mean are the member means (all are linear in the per-atom energies). Every
property that relaxes, or otherwise needs one energy surface, uses :func:`mean_over_members`;
analyses read each member's column of one committee evaluation
(:meth:`mlip_props.backend.EvaluationResult.member`).
"""
from __future__ import annotations

from typing import Any

import torch

from ..backend.potential import AtomicGraph, Potential


def committee_size(potential: Any) -> int:
    """M for a committee (``n_members`` > 1), else 1."""
    try:
        return max(1, int(getattr(potential, "n_members", 1) or 1))
    except (TypeError, ValueError):
        return 1


def is_committee(potential: Any) -> bool:
    """Whether ``potential`` is a committee: it declares ``n_members`` > 1 (per-atom energies (N, M))."""
    return committee_size(potential) > 1


class CommitteeMean(Potential):
    """The committee mean as a potential: per-atom energies (N,) averaged over the member axis.

    The members stay reachable as ``.committee``; ``metadata`` (calibration, provenance) is the
    committee's. ``bytes_per_edge`` (the backend's memory estimate) is the members' times M: the
    mean is computed from every member's energies.
    """

    def __init__(self, committee: Potential):
        super().__init__(committee.cutoff, committee.elements)
        self.committee = committee
        # the mean still evaluates every member: the memory estimate is the whole committee's
        self.bytes_per_edge = getattr(committee, "bytes_per_edge", Potential.bytes_per_edge) * committee_size(committee)
        self.edge_only = bool(getattr(committee, "edge_only", False))
        self.metadata = dict(getattr(committee, "metadata", {}) or {})

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        e = self.committee(graph)
        return e.mean(-1) if e.dim() == 2 else e


def mean_over_members(potential: Any) -> Any:
    """The potential whose energy surface a property relaxes on: the committee mean for a
    committee (wrapped once: an existing :class:`CommitteeMean` is returned as it is), the
    potential itself otherwise (oracles included)."""
    if isinstance(potential, CommitteeMean) or not is_committee(potential):
        return potential
    return CommitteeMean(potential)
