"""Which of a round's frames go to the oracle.

A picker has one signature, ``picker.pick(round_frames) -> (selected, duplicates)`` (indices into
the round's frames), and sees the round through :class:`RoundFrames`:

* :class:`GreedyPicker` (the committee rule): candidates in order of decreasing score; one closer
  than ``dedup_distance`` (RMS scaled descriptor-fingerprint distance) to a labelled frame or to
  an already-picked one is a duplicate;
* :class:`DiversePicker`: the same duplicates, the round's picks chosen greedily by score x
  (1 - exp(-(D/l)^2)), D the fingerprint distance to this round's picks (:func:`diverse_select`);
* :class:`BalancedPicker`: the greedy rule taken in turns over the explorers that proposed the
  candidates (:func:`round_robin_deduplicate`): each explorer's most uncertain candidate first, so one
  explorer with large disagreements cannot take every label of a round;
* :class:`RandomPicker` (the control arm of benchmarks): uniformly among the unlabelled frames,
  thresholds and scores ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from ase import Atoms

from ...backend import Batch, build_neighbor_graph, edge_vectors
from ..model import BehlerParrinelloPotential
from .journal import structure_hash

if TYPE_CHECKING:
    from .config import ActiveLearningConfig


def fingerprints(model: BehlerParrinelloPotential, frames: Sequence[Atoms], n_quantiles: int = 9,
                 cache: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Permutation-invariant fingerprint per frame: quantiles over atoms of every symmetry function
    (raw descriptors of ``model``), per species, concatenated; (n_frames, n_species * F * Q).
    One batched descriptor evaluation. ``cache``: fingerprints by structure hash, read and filled
    (valid while the descriptor is unchanged: warm starts keep it; the loop clears it on refits)."""
    if not frames:
        return np.zeros((0, 0))
    if cache is not None:
        keys = [structure_hash(a) for a in frames]
        todo = [k for k, h in enumerate(keys) if h not in cache]
        if todo:
            for k, fp in zip(todo, fingerprints(model, [frames[k] for k in todo], n_quantiles)):
                cache[keys[k]] = fp
        return np.stack([cache[h] for h in keys])
    batch = Batch.from_structures(list(frames))
    graph = build_neighbor_graph(batch, model.cutoff)
    with torch.no_grad():
        g = model.descriptor(batch.numbers, graph.edge_index, edge_vectors(batch, graph)).numpy()
        sp = model.species(batch.numbers).numpy()
    ptr = batch.ptr.tolist()
    ns = model.descriptor.n_species
    qs = np.linspace(0.0, 1.0, n_quantiles)
    out = np.zeros((len(frames), ns, n_quantiles, g.shape[1]))
    for b in range(len(frames)):
        gb, sb = g[ptr[b] : ptr[b + 1]], sp[ptr[b] : ptr[b + 1]]
        for s in range(ns):
            if (sb == s).any():
                out[b, s] = np.quantile(gb[sb == s], qs, axis=0)
    return out.reshape(len(frames), -1)


def deduplicate(fp_candidates: np.ndarray, fp_reference: np.ndarray, order: Sequence[int],
                distance: float | np.ndarray, scale: np.ndarray, limit: int) -> tuple[list[int], list[int]]:
    """Greedy selection in ``order`` (most uncertain first): a candidate is kept if its RMS scaled
    fingerprint distance to every reference frame and every kept candidate is >= ``distance``
    (one value, or one per candidate); at most ``limit`` kept. Returns (kept, duplicates) as
    candidate indices."""
    kept: list[int] = []
    dup: list[int] = []
    ref = fp_reference / scale if len(fp_reference) else np.zeros((0, fp_candidates.shape[1]))
    cand = fp_candidates / scale
    dist = per_candidate(distance, len(cand))
    for k in order:
        if len(kept) >= limit:
            break
        (kept if _nearest(ref, cand, kept, k) >= dist[k] else dup).append(int(k))
    return kept, dup


def _nearest(ref: np.ndarray, cand: np.ndarray, kept: list[int], k: int) -> float:
    """RMS scaled distance of candidate ``k`` to the nearest reference frame or kept candidate."""
    pool = np.concatenate([ref, cand[kept]]) if kept else ref
    return float(np.sqrt(((pool - cand[k]) ** 2).mean(1)).min()) if len(pool) else np.inf


def per_candidate(distance: float | np.ndarray, n: int) -> np.ndarray:
    """The de-duplication distance of each of ``n`` candidates (one value for all, or one each)."""
    d = np.asarray(distance, dtype=float)
    return np.broadcast_to(d, (n,)) if d.ndim == 0 else d


def rms_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS (over features) Euclidean distances between the rows of ``a`` and ``b``, (len(a), len(b))."""
    sq = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0) / max(a.shape[1], 1))


def diverse_select(fp_candidates: np.ndarray, fp_reference: np.ndarray, score: np.ndarray,
                   distance: float | np.ndarray,
                   scale: np.ndarray, limit: int, length: float) -> tuple[list[int], list[int]]:
    """Diversity-aware greedy batch selection (a batch-mode query: one round's picks should not
    be near neighbours of each other). Candidates within RMS scaled fingerprint distance
    ``distance`` of a reference (labelled) frame are duplicates. Then, repeatedly, the candidate
    of largest ``score * (1 - exp(-(D/length)^2))`` is taken, D its distance to the frames already
    taken this round (inf before the first pick, so the most uncertain frame comes first);
    one closer than ``distance`` to a taken frame is a duplicate instead. ``length`` -> 0 recovers
    the plain greedy order of :func:`deduplicate`. In the spirit of uncertainty-times-diversity
    batch selection (K. Brinker, ICML 2003; Zaverkin et al., Digital Discovery 1, 605 (2022)).
    Returns (kept, duplicates) as candidate indices, kept in the order taken."""
    n = len(fp_candidates)
    cand = fp_candidates / scale
    score = np.asarray(score, float)
    dist = per_candidate(distance, n)
    if len(fp_reference):
        d_ref = rms_distances(cand, fp_reference / scale).min(1)
    else:
        d_ref = np.full(n, np.inf)
    avail = d_ref >= dist
    dup = [int(k) for k in np.nonzero(~avail)[0]]
    d_kept = np.full(n, np.inf)
    kept: list[int] = []
    while len(kept) < limit and avail.any():
        with np.errstate(over="ignore", invalid="ignore"):
            w = 1.0 - np.exp(-((d_kept / length) ** 2)) if length > 0 else (d_kept > 0).astype(float)
        eff = np.where(avail, score * np.where(np.isinf(d_kept), 1.0, w), -np.inf)
        k = int(np.argmax(eff))
        avail[k] = False
        if d_kept[k] < dist[k]:
            dup.append(k)
            continue
        kept.append(k)
        d_kept = np.minimum(d_kept, rms_distances(cand, cand[k : k + 1])[:, 0])
    return kept, dup


# ------------------------------------------------------------------------------------------ pickers
@dataclass
class RoundFrames:
    """What a picker sees of one round: the proposed frames, their structure hashes, scores (eV/A)
    and classes (labelled frames proposed again already 'duplicate'), how many may be picked
    (``limit``), the round's random generator, the committee, the frames labelled before this
    round and the fingerprint cache of this run."""

    frames: list[Atoms]
    hashes: list[str]
    score_eV_A: np.ndarray
    classes: np.ndarray
    labelled: set[str]
    limit: int
    rng: np.random.Generator
    model: Any
    data: list[Atoms]
    fingerprint_cache: dict[str, np.ndarray]
    sources: Sequence[int] | None = None  # index of the explorer that proposed each frame (None: one)
    dedup_distance: np.ndarray | None = None  # per frame, where an explorer sets its own (NaN: the picker's)

    def dedup_distances(self, cand: np.ndarray, default: float) -> np.ndarray:
        """The de-duplication distance of each candidate: its explorer's, else ``default``."""
        if self.dedup_distance is None:
            return np.full(len(cand), float(default))
        d = np.asarray(self.dedup_distance, dtype=float)[cand]
        return np.where(np.isnan(d), float(default), d)

    def candidates(self) -> np.ndarray:
        """Indices of the frames classified 'candidate'."""
        return np.nonzero(self.classes == "candidate")[0]


def _candidate_fingerprints(rf: RoundFrames, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(candidates, labelled data, scale): fingerprints of the candidates and of the labelled frames,
    with one per-feature scale (std over both, floored at 1e-3 of the mean magnitude)."""
    fp_all = fingerprints(rf.model, [rf.frames[k] for k in cand] + rf.data, cache=rf.fingerprint_cache)
    scale = fp_all.std(0) + 1e-3 * (np.abs(fp_all).mean() + 1e-12)
    return fp_all[: len(cand)], fp_all[len(cand):], scale


class GreedyPicker:
    """Candidates by decreasing score; near-duplicates (fingerprint distance < ``dedup_distance``
    to labelled data or to this round's picks) skipped (:func:`deduplicate`)."""

    def __init__(self, dedup_distance: float):
        self.dedup_distance = dedup_distance

    def pick(self, rf: RoundFrames) -> tuple[list[int], list[int]]:
        cand = rf.candidates()
        if not len(cand):
            return [], []
        fp_c, fp_r, scale = _candidate_fingerprints(rf, cand)
        kept, dups = self._choose(rf, cand, fp_c, fp_r, scale)
        return [int(cand[k]) for k in kept], [int(cand[k]) for k in dups]

    def _choose(self, rf: RoundFrames, cand: np.ndarray, fp_c: np.ndarray, fp_r: np.ndarray,
                scale: np.ndarray) -> tuple[list[int], list[int]]:
        order = list(np.argsort(-rf.score_eV_A[cand], kind="stable"))
        return deduplicate(fp_c, fp_r, order, rf.dedup_distances(cand, self.dedup_distance), scale, rf.limit)


class DiversePicker(GreedyPicker):
    """Diversity-aware batch picks (:func:`diverse_select`) with the length ``diversity`` x the
    median pairwise fingerprint distance of the round's candidates; one candidate: greedy."""

    def __init__(self, dedup_distance: float, diversity: float):
        super().__init__(dedup_distance)
        self.diversity = diversity

    def _choose(self, rf, cand, fp_c, fp_r, scale):
        if len(cand) < 2:
            return super()._choose(rf, cand, fp_c, fp_r, scale)
        cs = fp_c / scale
        pair = rms_distances(cs, cs)
        length = self.diversity * float(np.median(pair[np.triu_indices(len(cand), 1)]))
        return diverse_select(fp_c, fp_r, rf.score_eV_A[cand], rf.dedup_distances(cand, self.dedup_distance), scale,
                              rf.limit, length)


def round_robin_deduplicate(fp_candidates: np.ndarray, fp_reference: np.ndarray, order: Sequence[int],
                            sources: Sequence[Any], distance: float | np.ndarray, scale: np.ndarray,
                            limit: int) -> tuple[list[int], list[int]]:
    """:func:`deduplicate` taken in turns over ``sources`` (the source of each candidate): at each
    turn a source takes its most uncertain remaining candidate (``order``: most uncertain first)
    that is not a near-duplicate of a labelled frame or of a kept one (those it passes over are
    duplicates); sources in the order of their first candidate in ``order``; at most ``limit`` kept.
    Returns (kept, duplicates) as candidate indices, kept in the order taken."""
    groups: dict[Any, list[int]] = {}
    for k in order:
        groups.setdefault(sources[k], []).append(int(k))
    queues = list(groups.values())
    ref = fp_reference / scale if len(fp_reference) else np.zeros((0, fp_candidates.shape[1]))
    cand = fp_candidates / scale
    dist = per_candidate(distance, len(cand))
    kept: list[int] = []
    dup: list[int] = []
    while len(kept) < limit and any(queues):
        for q in queues:
            while q and len(kept) < limit:
                k = q.pop(0)
                if _nearest(ref, cand, kept, k) >= dist[k]:
                    kept.append(k)
                    break
                dup.append(k)
    return kept, dup


class BalancedPicker(GreedyPicker):
    """The greedy rule in turns over the explorers (``balance_explorers``): the round's picks go
    round-robin to the explorers that proposed candidates, each explorer's candidates by
    decreasing score, near-duplicates passed over within the explorer's turn
    (:func:`round_robin_deduplicate`). A per-source cap in the spirit of DP-GEN's per-system picks
    (Y. Zhang et al., Comput. Phys. Commun. 253, 107206 (2020)): without it, the explorer with the
    largest disagreements (close pairs, the liquid) takes every label, and configurations whose
    errors matter for near-equilibrium properties (small strains: the elastic constants) are never
    labelled although the committee is unsure there too."""

    def _choose(self, rf, cand, fp_c, fp_r, scale):
        by_score = list(np.argsort(-rf.score_eV_A[cand], kind="stable"))
        sources = [0 if rf.sources is None else rf.sources[int(c)] for c in cand]
        return round_robin_deduplicate(fp_c, fp_r, by_score, sources, rf.dedup_distances(cand, self.dedup_distance),
                                       scale, rf.limit)


class RandomPicker:
    """Up to ``limit`` of the round's unlabelled frames (each structure once) uniformly at random,
    whatever their scores and classes; no duplicates reported beyond those already labelled."""

    def pick(self, rf: RoundFrames) -> tuple[list[int], list[int]]:
        fresh = [k for k, h in enumerate(rf.hashes) if h not in rf.labelled]
        fresh = [k for k in fresh if rf.hashes[k] not in {rf.hashes[j] for j in fresh if j < k}]
        pick = rf.rng.choice(len(fresh), size=min(rf.limit, len(fresh)), replace=False) if fresh else []
        return sorted(int(fresh[j]) for j in pick), []


def picker(cfg: ActiveLearningConfig) -> GreedyPicker | RandomPicker:
    """The picker ``cfg`` asks for."""
    if cfg.selection == "random":
        return RandomPicker()
    if cfg.diversity > 0:
        return DiversePicker(cfg.dedup_distance, cfg.diversity)
    if cfg.balance_explorers:
        return BalancedPicker(cfg.dedup_distance)
    return GreedyPicker(cfg.dedup_distance)
