"""Exploration strategies of active learning: where the committee is asked how unsure it is.

Each strategy proposes frames for one round; the loop (:mod:`.active`) scores every proposed
frame with the committee (maximum per-atom force disagreement, eV/A) and classifies it. Strategies
compose: :class:`~.active.learn` takes a list of them.

* :class:`MDExplorer` — Langevin molecular dynamics of many replicas at once (one per
  (cell, strain, temperature) combination) through the backend: forces of ALL replicas come from
  ONE :func:`~mlip_props.backend.evaluate.evaluate_batch` call per step on a
  :class:`~mlip_props.backend.Batch` of replicas. Since the model is the committee itself, the
  same call gives the member forces, so the disagreement is known at every step for free. The
  integrator is BAOAB (B. Leimkuhler and C. Matthews, Appl. Math. Res. Express 2013, 34 (2013)),
  driven by the committee-mean force. A replica whose disagreement exceeds the upper threshold
  ("too wild", the model is extrapolating) is put back to its last trusted frame with fresh
  Maxwell-Boltzmann velocities. On the fly (default): a replica whose frame is a candidate stops
  there for the rest of the round and resumes from it after retraining; trusted replicas run on.
  A temperature schedule (one list of replica temperatures per
  round, the last repeated) reaches temperatures well above the target, where the anharmonic
  high-energy configurations live that fixed-T Boltzmann sampling rarely visits.
* :class:`PoolExplorer` — a fixed pool of candidate frames offered every round (pool-based
  selection, the fair comparison of committee and random selection on the same trajectories).
* :class:`StrainExplorer` — random symmetric strains (compression and tension) plus a small rattle.
* :class:`RattleExplorer` — Gaussian random displacements of a few amplitudes.
* :class:`NormalModeExplorer` — harmonic normal-mode sampling at temperature T from the
  committee-mean Hessian (J. S. Smith, O. Isayev, A. E. Roitberg, Chem. Sci. 8, 3192 (2017)); no
  oracle call is needed to propose frames.
* :class:`ClusterScanExplorer` — short-range dimer and (equilateral / linear) trimer scans in
  vacuum, which bulk sampling never reaches.
* :class:`PairScanExplorer` — one nearest-neighbour pair of a (rattled) crystal pushed to a short
  distance (1.7-2.3 A by default): the repulsive wall with its surroundings.

Units: Angstrom, eV, amu, K, fs (timesteps).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations_with_replacement
from typing import Any, Sequence

import numpy as np
import torch
from ase import Atoms, units

from ..backend import Batch, build_neighbor_graph
from ..backend.batch import to_atoms
from ..backend.evaluate import evaluate_batch


@dataclass
class Proposal:
    """Frames proposed by one strategy in one round, with the committee's disagreement when the
    strategy already knows it (MD: from its own force calls), else None (scored by the loop)."""

    frames: list[Atoms]
    disagreement_eV_A: np.ndarray | None = None  # (n_frames,) max per-atom force disagreement
    n_steps: int = 0  # MD steps run (all replicas together count one per step)
    n_restarts: int = 0  # replicas sent back to their last trusted frame
    wild: list[Atoms] = field(default_factory=list)  # frames above the upper threshold (discarded)
    wild_disagreement_eV_A: np.ndarray | None = None


def _clean(a: Atoms, tag: str) -> Atoms:
    b = Atoms(numbers=a.get_atomic_numbers(), positions=a.get_positions(), cell=a.get_cell(), pbc=a.get_pbc())
    b.info["config_type"] = tag
    return b


def strain_cell(atoms: Atoms, eps: np.ndarray | float) -> Atoms:
    """Copy of ``atoms`` with its cell deformed by (1 + eps) (eps a scalar: isotropic, or 3x3)."""
    e = np.eye(3) * float(eps) if np.ndim(eps) == 0 else np.asarray(eps, float)
    a = atoms.copy()
    a.set_cell(np.asarray(a.get_cell()) @ (np.eye(3) + e), scale_atoms=True)
    a.calc = None
    return a


def max_disagreement(forces: torch.Tensor, ptr: Sequence[int]) -> np.ndarray:
    """Max over atoms of d_i = sqrt(mean_m |F_m,i - <F_i>|^2) per structure, eV/A, from member
    forces (M, N, 3) of a batch with atom offsets ``ptr``."""
    if forces.dim() == 2:
        return np.zeros(len(ptr) - 1)
    d = ((forces - forces.mean(0, keepdim=True)) ** 2).sum(-1).mean(0).sqrt().detach().cpu().numpy()
    return np.array([d[ptr[b] : ptr[b + 1]].max() if ptr[b + 1] > ptr[b] else 0.0 for b in range(len(ptr) - 1)])


class Explorer:
    """Base class: ``propose(model, round_index, rng, thresholds) -> Proposal``; ``state_dict`` /
    ``load_state_dict`` carry whatever must survive a restart (JSON/NumPy-serialisable).
    ``dedup_distance``: this explorer's fingerprint de-duplication distance in the loop (None: the
    loop's ``dedup_distance``; 0: only exact repeats, by structure hash, are duplicates)."""

    name = "explorer"
    dedup_distance: float | None = None

    def propose(self, model: Any, round_index: int, rng: np.random.Generator,
                thresholds: tuple[float, float]) -> Proposal:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class MDExplorer(Explorer):
    """Batched Langevin MD of replicas through the backend (see module docstring).

    ``base``: structure(s) to start from. ``temperature_schedule``: K, a list of replica
    temperatures per round (the last list repeats), e.g. ``[[300, 900], [300, 900, 1500, 2000]]``;
    a flat list means the same temperatures every round. ``strains``: isotropic strains of the
    cell (e.g. ``(-0.05, 0.0, 0.05)``); replicas are all (base, strain, T) combinations.
    ``steps``: MD steps per round; ``sample_every``: steps between frames offered for selection;
    ``timestep_fs``; ``friction``: Langevin friction, 1/fs; ``skin``: neighbour-list skin (A);
    ``stop_after_candidates``: end the round early (pause the dynamics) once this many candidate
    frames (disagreement between the thresholds) are collected, as on-the-fly learning does.
    ``pause_on_candidate`` (default True): on-the-fly learning per replica: a replica whose sampled frame is a
    candidate is proposed and stops there (frozen) for the rest of the round, while the others go
    on; it resumes from that frame in the next round, after the committee has been retrained on
    the new labels. The round ends after ``steps`` steps or when every replica is paused. Replicas
    the committee trusts therefore run long and those it does not pause early, as in
    on-the-fly MD (Z. Li, J. R. Kermode, A. De Vita, Phys. Rev. Lett. 114, 096405 (2015);
    R. Jinnouchi, J. Lahnsteiner, F. Karsai, G. Kresse, M. Bokdam, Phys. Rev. Lett. 122, 225701
    (2019)).
    """

    name = "md"

    def __init__(self, base: Any, temperature_schedule: Sequence[Any] = (300.0, 900.0, 1500.0),
                 strains: Sequence[float] = (0.0,), steps: int = 200, sample_every: int = 10,
                 timestep_fs: float = 2.0, friction: float = 0.02, skin: float = 0.5,
                 stop_after_candidates: int | None = None, pause_on_candidate: bool = True):
        bases = base if isinstance(base, (list, tuple)) else [base]
        self.bases = [to_atoms(b).copy() for b in bases]
        sched = list(temperature_schedule)
        self.schedule = [list(map(float, s)) for s in sched] if sched and np.ndim(sched[0]) > 0 \
            else [[float(t) for t in sched]]
        self.strains = [float(s) for s in strains]
        self.steps, self.sample_every = int(steps), max(1, int(sample_every))
        self.dt = float(timestep_fs) * units.fs
        self.gamma = float(friction) / units.fs
        self.skin = float(skin)
        self.stop_after = stop_after_candidates
        self.pause_on_candidate = bool(pause_on_candidate)
        self._state: dict[str, Any] = {}

    def replicas(self, round_index: int) -> list[tuple[Atoms, float, str]]:
        temps = self.schedule[min(round_index, len(self.schedule) - 1)]
        out = []
        for k, b in enumerate(self.bases):
            for s in self.strains:
                for t in temps:
                    out.append((strain_cell(b, s), t, f"md_b{k}_s{s:+.3f}_{t:.0f}K"))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self._state.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state = {k: (np.asarray(v) if isinstance(v, list) and k in ("positions", "velocities", "trusted")
                           else v) for k, v in state.items()}

    def propose(self, model, round_index, rng, thresholds):
        lo, hi = thresholds
        reps = self.replicas(round_index)
        tags = [r[2] for r in reps]
        frames0 = [r[0] for r in reps]
        batch = Batch.from_structures(frames0)
        n_at = batch.n_atoms.numpy()
        ptr = batch.ptr.tolist()
        masses = torch.as_tensor(np.concatenate([a.get_masses() for a in frames0]), dtype=torch.float64)[:, None]
        kt = torch.as_tensor(np.repeat([units.kB * r[1] for r in reps], n_at), dtype=torch.float64)[:, None]

        def mb_velocities(idx: np.ndarray) -> torch.Tensor:
            v = torch.as_tensor(rng.normal(size=(len(idx), 3)), dtype=torch.float64)
            return v * (kt[idx] / masses[idx]).sqrt()

        all_idx = np.arange(batch.n_total)
        st = self._state
        if st.get("tags") == tags:  # resume the dynamics where the last round stopped
            pos = torch.as_tensor(st["positions"], dtype=torch.float64)
            vel = torch.as_tensor(st["velocities"], dtype=torch.float64)
            trusted = torch.as_tensor(st["trusted"], dtype=torch.float64)
        else:  # new replica set (first round or a new temperature schedule entry)
            pos = batch.positions.clone()
            vel = mb_velocities(all_idx)
            trusted = pos.clone()
        batch = batch.with_positions(pos)
        graph = build_neighbor_graph(batch, model.cutoff, skin=self.skin)
        c1 = float(np.exp(-self.gamma * self.dt))
        c2 = float(np.sqrt(1.0 - c1 * c1))
        sig = (kt / masses).sqrt()
        h = 0.5 * self.dt

        def forces(b: Batch):
            nonlocal graph
            if graph.needs_rebuild(b):
                graph = build_neighbor_graph(b, model.cutoff, skin=self.skin)
            out = evaluate_batch(model, b, ("energy", "forces"), graph=graph)
            f = out.forces.detach()
            fm = f.mean(0) if f.dim() == 3 else f
            return fm, max_disagreement(f, ptr)

        fm, dis = forces(batch)
        frames, dvals, wild, wild_d = [], [], [], []
        n_restart = 0
        n_cand = 0
        step = 0
        frozen = torch.zeros(batch.n_total, 1, dtype=torch.bool)  # atoms of paused replicas
        paused = np.zeros(len(reps), dtype=bool)
        for step in range(1, self.steps + 1):
            pos0, vel0 = pos, vel
            vel = vel + h * fm / masses
            pos = pos + h * vel
            vel = c1 * vel + c2 * sig * torch.as_tensor(rng.normal(size=vel.shape), dtype=torch.float64)
            pos = pos + h * vel
            batch = batch.with_positions(pos)
            fm, dis = forces(batch)
            vel = vel + h * fm / masses
            if paused.any():  # paused replicas stay where they stopped (their forces are not used)
                pos = torch.where(frozen, pos0, pos)
                vel = torch.where(frozen, vel0, vel)
            dis = np.where(paused, 0.0, dis)
            bad = np.nonzero(dis > hi)[0]
            for b in bad:  # too wild: discard, back to the last trusted frame, fresh velocities
                sl = slice(ptr[b], ptr[b + 1])
                wild.append(self._frame(batch, b, tags[b], frames0))
                wild_d.append(float(dis[b]))
                pos = pos.clone()
                pos[sl] = trusted[sl]
                vel = vel.clone()
                vel[sl] = mb_velocities(np.arange(ptr[b], ptr[b + 1]))
                n_restart += 1
            if len(bad):
                batch = batch.with_positions(pos)
                fm, dis2 = forces(batch)
                dis = np.where(dis > hi, dis2, dis)
            for b in np.nonzero((dis < lo) & ~paused)[0]:
                trusted[ptr[b] : ptr[b + 1]] = pos[ptr[b] : ptr[b + 1]]
            if step % self.sample_every == 0:
                for b in range(len(reps)):
                    if dis[b] <= hi and not paused[b]:
                        frames.append(self._frame(batch, b, tags[b], frames0))
                        dvals.append(float(dis[b]))
                        n_cand += int(dis[b] >= lo)
                        if self.pause_on_candidate and dis[b] >= lo:
                            paused[b] = True
                            frozen[ptr[b] : ptr[b + 1]] = True
                if self.stop_after is not None and n_cand >= self.stop_after:
                    break
                if paused.all():
                    break
        self._state = {"tags": tags, "positions": pos.numpy().copy(), "velocities": vel.numpy().copy(),
                       "trusted": trusted.numpy().copy()}
        return Proposal(frames, np.asarray(dvals), step, n_restart, wild, np.asarray(wild_d))

    @staticmethod
    def _frame(batch: Batch, b: int, tag: str, frames0: list[Atoms]) -> Atoms:
        p0, p1 = int(batch.ptr[b]), int(batch.ptr[b + 1])
        ref = frames0[b]
        a = Atoms(numbers=ref.get_atomic_numbers(), positions=batch.positions[p0:p1].detach().numpy().copy(),
                  cell=ref.get_cell(), pbc=ref.get_pbc())
        if ref.pbc.all():
            a.wrap()
        a.info["config_type"] = tag
        return a


class PoolExplorer(Explorer):
    """A fixed pool of candidate frames (e.g. precomputed exploration trajectories), offered every
    round (``n_per_round``: a random subset of that many instead); frames already labelled are
    recognised by their structure hash and never labelled twice. Used by pool-based comparisons:
    committee-selected and randomly selected data then come from exactly the same frames."""

    name = "pool"

    def __init__(self, frames: Sequence[Any], n_per_round: int | None = None):
        self.frames = [_clean(to_atoms(a), to_atoms(a).info.get("config_type", "pool")) for a in frames]
        if not self.frames:
            raise ValueError("empty candidate pool")
        self.n_per_round = n_per_round

    def propose(self, model, round_index, rng, thresholds):
        idx = np.arange(len(self.frames))
        if self.n_per_round is not None and self.n_per_round < len(idx):
            idx = np.sort(rng.choice(idx, size=self.n_per_round, replace=False))
        return Proposal([self.frames[k].copy() for k in idx])


class StrainExplorer(Explorer):
    """``n`` random symmetric strains, each component uniform in +-``max_strain``, plus an isotropic
    part uniform in +-``max_strain`` (compression and tension), and a Gaussian rattle of ``rattle`` A.
    ``dedup_distance`` (see :class:`Explorer`): small strains of a near-perfect cell differ in the
    descriptor fingerprint by less than the loop's default distance once the labelled data span
    liquids and surfaces (the fingerprint's per-feature scale is their spread), so with a few
    per cent of strain they all count as duplicates of the first one labelled; 0 keeps them
    apart (fresh random draws are never repeats)."""

    name = "strain"

    def __init__(self, base: Any, n: int = 8, max_strain: float = 0.05, rattle: float = 0.05,
                 dedup_distance: float | None = None):
        self.base, self.n, self.max_strain, self.rattle = to_atoms(base).copy(), int(n), float(max_strain), float(rattle)
        if dedup_distance is not None and dedup_distance < 0:
            raise ValueError(f"dedup_distance must be >= 0 or None, got {dedup_distance}")
        self.dedup_distance = dedup_distance

    def propose(self, model, round_index, rng, thresholds):
        out = []
        for _ in range(self.n):
            e = rng.uniform(-self.max_strain, self.max_strain, (3, 3))
            e = 0.5 * (e + e.T) * 0.5 + np.eye(3) * rng.uniform(-self.max_strain, self.max_strain)
            a = strain_cell(self.base, e)
            a.positions = a.positions + rng.normal(0.0, self.rattle, a.positions.shape)
            out.append(_clean(a, "strain"))
        return Proposal(out)


class RattleExplorer(Explorer):
    """``n`` copies of ``base`` with Gaussian displacements, std drawn from ``amplitudes`` (A)."""

    name = "rattle"

    def __init__(self, base: Any, n: int = 8, amplitudes: Sequence[float] = (0.05, 0.1, 0.2)):
        self.base, self.n, self.amplitudes = to_atoms(base).copy(), int(n), [float(x) for x in amplitudes]

    def propose(self, model, round_index, rng, thresholds):
        out = []
        for k in range(self.n):
            a = self.base.copy()
            amp = self.amplitudes[k % len(self.amplitudes)]
            a.positions = a.positions + rng.normal(0.0, amp, a.positions.shape)
            out.append(_clean(a, f"rattle_{amp:g}A"))
        return Proposal(out)


class NormalModeExplorer(Explorer):
    """Normal-mode sampling: x = x0 + sum_k c_k e_k / sqrt(m), c_k ~ N(0, k_B T / omega_k^2), with the
    modes of the committee-mean Hessian at ``base`` (recomputed every round, one batched call).
    Soft modes (omega^2 below 1 % of the largest, e.g. translations) are skipped."""

    name = "normal_modes"

    def __init__(self, base: Any, n: int = 8, temperatures: Sequence[float] = (300.0, 1000.0)):
        self.base, self.n, self.temperatures = to_atoms(base).copy(), int(n), [float(t) for t in temperatures]

    def propose(self, model, round_index, rng, thresholds):
        from ..backend import evaluate
        from .model import CommitteeMean

        mean = CommitteeMean(model) if getattr(model, "n_members", 1) > 1 else model
        hmat = evaluate(mean, [self.base], ("hessian",)).hessians_eV_A2[0]
        m = np.repeat(self.base.get_masses(), 3)
        d = hmat / np.sqrt(np.outer(m, m))
        lam, vec = np.linalg.eigh(0.5 * (d + d.T))
        ok = lam > 1e-2 * lam.max()
        lam, vec = lam[ok], vec[:, ok]
        out = []
        for k in range(self.n):
            t = self.temperatures[k % len(self.temperatures)]
            c = rng.normal(0.0, np.sqrt(units.kB * t / lam))
            a = self.base.copy()
            a.positions = a.positions + ((vec @ c) / np.sqrt(m)).reshape(-1, 3)
            out.append(_clean(a, f"normal_modes_{t:.0f}K"))
        return Proposal(out)


class ClusterScanExplorer(Explorer):
    """Dimers and trimers (equilateral and linear) in vacuum, bond length on ``r_range`` (A) in ``n``
    points per shape, for every pair/triple of ``elements``; fixed frames, offered every round
    (already-labelled ones are removed by the de-duplication)."""

    name = "cluster_scan"

    def __init__(self, elements: Sequence[str], r_range: tuple[float, float] = (1.6, 3.5), n: int = 6,
                 trimers: bool = True):
        self.elements, self.r_range, self.n, self.trimers = list(elements), tuple(r_range), int(n), bool(trimers)

    def propose(self, model, round_index, rng, thresholds):
        rs = np.linspace(self.r_range[0], self.r_range[1], self.n)
        out = []
        for p in combinations_with_replacement(self.elements, 2):
            for r in rs:
                out.append(_clean(Atoms(list(p), positions=[[0, 0, 0], [r, 0, 0]]), "dimer"))
        if self.trimers:
            for p in combinations_with_replacement(self.elements, 3):
                for r in rs:
                    tri = [[0, 0, 0], [r, 0, 0], [0.5 * r, 0.5 * np.sqrt(3) * r, 0]]
                    out.append(_clean(Atoms(list(p), positions=tri), "trimer_equilateral"))
                    out.append(_clean(Atoms(list(p), positions=[[0, 0, 0], [r, 0, 0], [2 * r, 0, 0]]),
                                      "trimer_linear"))
        return Proposal(out)


class PairScanExplorer(Explorer):
    """Close approaches inside a condensed phase (the repulsive wall, which fixed-temperature MD
    almost never visits): ``n`` copies of the ``base`` cells (cycled) rattled by ``rattle`` A, in
    each one random atom and its nearest neighbour (minimum image) moved symmetrically along their
    bond to a distance drawn uniformly from ``r_range`` (A). Fresh frames every round, from the
    round's random generator. Unlike :class:`ClusterScanExplorer` (dimers in vacuum) the pair keeps
    its crystalline surroundings."""

    name = "pair_scan"

    def __init__(self, base: Any, r_range: tuple[float, float] = (1.7, 2.3), n: int = 8, rattle: float = 0.08):
        bases = base if isinstance(base, (list, tuple)) else [base]
        self.bases = [to_atoms(b).copy() for b in bases]
        lo, hi = float(r_range[0]), float(r_range[1])
        if not 0 < lo <= hi:
            raise ValueError(f"r_range must be 0 < lo <= hi (A), got {r_range!r}")
        self.r_range, self.n, self.rattle = (lo, hi), int(n), float(rattle)

    def propose(self, model, round_index, rng, thresholds):
        out = []
        for k in range(self.n):
            a = self.bases[k % len(self.bases)].copy()
            a.positions = a.positions + rng.normal(0.0, self.rattle, a.positions.shape)
            i = int(rng.integers(len(a)))
            push_nearest_pair(a, i, float(rng.uniform(*self.r_range)))
            out.append(_clean(a, "pair_scan"))
        return Proposal(out)


def push_nearest_pair(atoms: Atoms, i: int, distance_A: float) -> int:
    """Move atom ``i`` and its nearest neighbour (minimum image) symmetrically along their bond,
    in place, until they are ``distance_A`` apart; returns the neighbour's index."""
    d = atoms.get_distances(i, range(len(atoms)), mic=True, vector=True)
    r = np.linalg.norm(d, axis=1)
    r[i] = np.inf
    j = int(np.argmin(r))
    shift = 0.5 * (r[j] - distance_A) * d[j] / r[j]
    atoms.positions[i] += shift
    atoms.positions[j] -= shift
    return j
