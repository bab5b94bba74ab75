"""The round loop: explore -> score -> select -> label -> retrain -> checkpoint (package docstring)."""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from ase import Atoms

from ...backend.batch import to_atoms
from ...backend.inputs import structure_list
from ..data import dataset_from_frames, write_dataset
from ..explore import Explorer, MDExplorer, Proposal
from ..model import BehlerParrinelloPotential
from .checkpoint import RunState, append_pool, clear_run, write_decisions
from .config import ActiveLearningConfig
from .curves import force_rmse_meV_A, plot_learning_curve
from .journal import OracleJournal, append_jsonl, is_labelled, structure_hash
from .retrain import fresh_fit, warm_start_fit
from .scores import score_proposals, score_rule
from .selection import RoundFrames, picker


@dataclass
class ActiveLearningResult:
    """What :func:`learn` did: the final committee, the labelled data, counts, timings (s)."""

    model: BehlerParrinelloPotential
    frames: list[Atoms]
    n_oracle_calls: int  # oracle single points this whole run made (resumed runs: this process only)
    n_labelled: int
    rounds: int
    stop_reason: str
    history: list[dict[str, Any]]
    timings_s: dict[str, float]
    workdir: str
    curve_plot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the model and the frames)."""
        return {"n_oracle_calls": self.n_oracle_calls, "n_labelled": self.n_labelled, "rounds": self.rounds,
                "stop_reason": self.stop_reason, "history": self.history, "timings_s": dict(self.timings_s),
                "workdir": self.workdir, "curve_plot": self.curve_plot}


def as_frames(data: Any) -> list[Atoms]:
    """Frames from None (none), an extxyz (or any ASE-readable) file, one structure or a list."""
    if data is None or (isinstance(data, (list, tuple)) and not data):
        return []
    if isinstance(data, (str, os.PathLike)):
        import ase.io

        x = ase.io.read(data, index=":")
        return x if isinstance(x, list) else [x]
    return [a if isinstance(a, Atoms) else to_atoms(a) for a in structure_list(data)[1]]


@dataclass
class _Selection:
    """One round's frames, their force and virial spreads (eV/A, eV), classes, decisions and picks."""

    frames: list[Atoms]
    force_eV_A: np.ndarray
    virial_eV: np.ndarray
    classes: np.ndarray
    decisions: list[str]
    selected: list[int]


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    timings[stage] += time.perf_counter() - t0


class _Run:
    """One call of :func:`learn`: the settings, the oracle journal, the explorers and the per-run
    state (round counter, labelled keys, history, timings), plus the current committee."""

    def __init__(self, cfg: ActiveLearningConfig, journal: OracleJournal, explorers: list[Explorer], workdir: Path,
                 tests: list[Atoms], monitor: Any, keep_pool: bool, progress: bool):
        self.cfg, self.journal, self.explorers, self.wd = cfg, journal, explorers, workdir
        self.tests, self.monitor, self.keep_pool, self.progress = tests, monitor, keep_pool, progress
        self.rule = score_rule(cfg)
        self.picker = picker(cfg)
        self.fingerprint_cache: dict[str, np.ndarray] = {}  # by structure hash (pools, labelled data)
        self.state = RunState()
        self.model: BehlerParrinelloPotential | None = None

    # ---------------------------------------------------------------------------------- start
    def resume(self) -> bool:
        """Continue after the last completed round of an earlier run, if ``workdir`` has one."""
        from ...potentials import load_model_file

        state = RunState.load(self.wd, self.explorers)
        if state is None:
            return False
        if state.stop_reason and not state.stop_by_monitor:  # a larger budget or patience: go on
            q = next((h["uncertainty_q_eV_A"] for h in reversed(state.history) if "uncertainty_q_eV_A" in h),
                     float("inf"))
            state.stop_reason = self.cfg.stop_reason(state.quiet, len(state.keys), q)
        self.state, self.model = state, load_model_file(self.wd / "model.pt")
        return True

    def start(self, seeds: list[Atoms]) -> None:
        """Label the seed frames (and one isolated atom per element), fit the first committee, checkpoint."""
        cfg, journal, st = self.cfg, self.journal, self.state
        todo = [a.copy() for a in seeds if not is_labelled(a)]
        st.keys = journal.add_labelled([a for a in seeds if is_labelled(a)])
        if cfg.include_isolated:
            have = {journal.cache[k]["numbers"][0] for k in st.keys if journal.is_isolated_atom(k)}
            for z in sorted({int(z) for a in seeds for z in a.get_atomic_numbers()} - have):
                iso = Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]], pbc=False)
                iso.info["config_type"] = "isolated_atom"
                todo.append(iso)
        for a in todo:
            a.info.setdefault("config_type", "seed")
        with _timed(st.timings_s, "oracle"):
            st.keys += journal.label(todo, -1)
        with _timed(st.timings_s, "training"):
            self.model = fresh_fit(journal.frames(st.keys), cfg, cfg.seed)
        if self.tests or self.monitor is not None:
            rec: dict[str, Any] = {"round": -1, "oracle_calls": len(st.keys), "n_labelled": len(st.keys)}
            if self.tests:
                rec["test_force_rmse_meV_A"] = force_rmse_meV_A(self.model, self.tests)
            if self.monitor is not None:
                mon = dict(self.monitor(self.model, -1))
                st.stop_reason = mon.pop("stop", None) or None
                st.stop_by_monitor = st.stop_reason is not None
                rec.update(mon)
            st.history.append(rec)
        self.checkpoint()

    def checkpoint(self) -> None:
        """The model file, then the state that names the data (journal keys)."""
        from ...potentials import save_potential

        save_potential(self.model, self.wd / "model.pt")
        self.state.save(self.wd, self.explorers, self.cfg.to_dict())

    # ---------------------------------------------------------------------------------- one round
    def run_round(self, rnd: int) -> None:
        """Explore, score, select, label, retrain, record and checkpoint round ``rnd``."""
        cfg, st = self.cfg, self.state
        before = dict(st.timings_s)
        rng = np.random.default_rng([cfg.seed, rnd])  # explorers first, then the random picker
        data = self.journal.frames(st.keys)
        with _timed(st.timings_s, "exploration"):
            proposals = [(ex.name, ex.propose(self.model, rnd, rng, (cfg.lower_eV_A, cfg.upper_eV_A)))
                         for ex in self.explorers]
            virial_by_id = score_proposals(self.model, [p for _, p in proposals], cfg.frame_reduce,
                                           self.rule.with_virial)
        with _timed(st.timings_s, "selection"):
            sel = self.select(rnd, rng, proposals, virial_by_id, data)
        with _timed(st.timings_s, "oracle"):
            new = self.journal.label([sel.frames[k] for k in sel.selected], rnd)
        st.keys = st.keys + new
        with _timed(st.timings_s, "training"):
            if new:
                self.retrain(rnd)
        st.quiet = 0 if sel.selected else st.quiet + 1
        dis, cls, props = sel.force_eV_A, sel.classes, [p for _, p in proposals]
        q_unc = float(np.quantile(dis, cfg.uncertainty_quantile)) if len(dis) else 0.0
        rec = {"round": rnd, "n_explored": len(sel.frames), "n_trusted": int((cls == "trusted").sum()),
               "n_candidates": int((cls == "candidate").sum()),
               "n_wild": int((cls == "wild").sum()) + sum(len(p.wild) for p in props),
               "n_duplicates": int(sum(d == "duplicate" for d in sel.decisions)), "n_selected": len(sel.selected),
               "md_steps": int(sum(p.n_steps for p in props)), "md_restarts": int(sum(p.n_restarts for p in props)),
               "uncertainty_q_eV_A": q_unc, "max_disagreement_eV_A": float(dis.max()) if len(dis) else 0.0,
               "n_labelled": len(st.keys), "oracle_calls": len(st.keys),
               **self.rule.round_summary(dis, sel.virial_eV, sel.selected, cfg.uncertainty_quantile),
               "seconds": {k: st.timings_s[k] - before.get(k, 0.0) for k in st.timings_s}}
        self.record_round(rnd, rec, q_unc)

    def select(self, rnd: int, rng: np.random.Generator, proposals: list[tuple[str, Proposal]],
               virial_by_id: dict[int, float], data: list[Atoms]) -> _Selection:
        """Score and classify the round's frames, mark those labelled before as duplicates, let the
        picker choose; log every decision (and the explored frames with ``keep_pool``)."""
        frames = [a for _, p in proposals for a in p.frames]
        dis = np.concatenate([p.disagreement_eV_A for _, p in proposals if p.frames]) if frames else np.zeros(0)
        dvir = np.array([virial_by_id.get(id(a), 0.0) for a in frames])
        score, cls = self.rule(dis, dvir)
        hashes = [structure_hash(a) for a in frames]
        labelled = set(self.state.keys)
        for k, h in enumerate(hashes):  # proposed again (fixed pools, scans): never labelled twice
            if h in labelled:
                cls[k] = "duplicate"
        decisions = list(cls)
        limit = self.cfg.picks_allowed(rnd, len(self.state.keys))
        source = [j for j, (_, p) in enumerate(proposals) for _ in p.frames]  # explorer index, per frame
        own = [getattr(ex, "dedup_distance", None) for ex in self.explorers]  # an explorer's own distance
        dedup = np.array([np.nan if own[j] is None else own[j] for j in source]) if any(
            d is not None for d in own) else None
        selected, duplicates = self.picker.pick(RoundFrames(frames, hashes, score, cls, labelled, limit, rng,
                                                            self.model, data, self.fingerprint_cache, source,
                                                            dedup))
        for k in duplicates:
            decisions[k] = "duplicate"
        for k in selected:
            decisions[k] = "selected"
        write_decisions(self.wd / "decisions.jsonl", rnd, frames, [name for name, p in proposals for _ in p.frames],
                        hashes, dis, dvir if self.rule.with_virial else None, decisions,
                        {ex.name: getattr(ex, "score_unit", "eV/A") for ex in self.explorers},
                        [p for _, p in proposals])
        if self.keep_pool and frames:
            append_pool(self.wd / "pool.extxyz", rnd, frames, dis)
        return _Selection(frames, dis, dvir, cls, decisions, selected)

    def retrain(self, rnd: int) -> None:
        """Warm start on all labelled data, or a full refit every ``refit_every`` rounds."""
        cfg = self.cfg
        data = self.journal.frames(self.state.keys)
        if cfg.refit_every and (rnd + 1) % cfg.refit_every == 0:
            self.model = fresh_fit(data, cfg, cfg.seed + 1000 * (rnd + 1))
            self.fingerprint_cache.clear()  # the descriptor transform changed
        else:
            self.model, _ = warm_start_fit(self.model, dataset_from_frames(data), epochs=cfg.retrain_epochs,
                                           lr=cfg.retrain_lr, batch_size=cfg.batch_size, weights=cfg.weights,
                                           seed=cfg.seed * 7919 + rnd, dtype=getattr(torch, cfg.train_dtype))

    def record_round(self, rnd: int, rec: dict[str, Any], uncertainty_q_eV_A: float) -> None:
        """Test error and monitor entries into the round's record, the stopping rules, the checkpoint."""
        st = self.state
        if self.tests:
            rec["test_force_rmse_meV_A"] = force_rmse_meV_A(self.model, self.tests)
        mon = dict(self.monitor(self.model, rnd)) if self.monitor is not None else {}
        mon_stop = mon.pop("stop", None)
        rec.update(mon)
        st.history.append(rec)
        append_jsonl(self.wd / "rounds.jsonl", rec)
        if self.progress:
            print(json.dumps(rec), flush=True)
        st.stop_reason = (str(mon_stop) if mon_stop
                          else self.cfg.stop_reason(st.quiet, len(st.keys), uncertainty_q_eV_A))
        st.stop_by_monitor = bool(mon_stop)
        st.round = rnd
        self.checkpoint()

    # ---------------------------------------------------------------------------------- the end
    def finish(self, t_start: float) -> ActiveLearningResult:
        st = self.state
        stop_reason = st.stop_reason or f"max_rounds {self.cfg.max_rounds} reached"
        frames_out = self.journal.frames(st.keys)
        write_dataset(frames_out, self.wd / "data.extxyz")
        curve = None
        pts = [(h["oracle_calls"], h["test_force_rmse_meV_A"]) for h in st.history if "test_force_rmse_meV_A" in h]
        if pts:
            curve = plot_learning_curve({"active learning": tuple(zip(*pts))}, self.wd / "learning_curve.png")
        timings = st.timings_s
        timings["total"] = time.perf_counter() - t_start
        return ActiveLearningResult(model=self.model, frames=frames_out, n_oracle_calls=self.journal.n_calls,
                                    n_labelled=len(st.keys), rounds=st.round + 1, stop_reason=stop_reason,
                                    history=st.history, timings_s=timings, workdir=str(self.wd), curve_plot=curve)


def learn(
    seed_frames: Any,
    oracle: Any = None,
    explorers: Sequence[Explorer] | None = None,
    workdir: str | os.PathLike = "active_learning",
    *,
    test_frames: Any = None,
    resume: bool = True,
    config: ActiveLearningConfig | None = None,
    keep_pool: bool = False,
    progress: bool = False,
    monitor: Any = None,
    **overrides: Any,
) -> ActiveLearningResult:
    """Run (or resume) the active-learning loop; see the package docstring.

    ``seed_frames``: Atoms, a list, or a file; unlabelled frames are labelled by the oracle.
    ``oracle``: any :class:`~mlip_props.backend.OraclePotential` (default
    :func:`~mlip_props.backend.emt_oracle`; pyscf via ``load_potential("pyscf:...")``; any ASE
    calculator via ``OraclePotential(calc)``). ``explorers``: strategies from :mod:`..explore`
    (default: :class:`~..explore.MDExplorer` at 300/900/1500 K on the first seed frame).
    ``test_frames``: labelled frames for the learning curve (force RMSE after every round).
    ``config`` / ``overrides``: :class:`ActiveLearningConfig` fields (``config`` itself is not
    changed). ``keep_pool``: also write every explored frame with its disagreement to
    ``pool.extxyz`` (for random-selection baselines).
    ``monitor``: optional ``monitor(model, round) -> dict`` called after the first fit (round -1)
    and after every round's retraining; its entries go into the round's history record, and a
    ``"stop"`` entry (a reason string) stops the loop (property-targeted learning,
    :mod:`..targeted`, monitors a property's committee std this way).
    Returns an :class:`ActiveLearningResult`; the committee is also in ``workdir/model.pt``.
    Oracle calls are counted as labelled frames (``oracle_calls`` in the history: seeds and
    isolated atoms included; every labelled frame costs exactly one single point).
    """
    from ...backend import emt_oracle

    cfg = (config or ActiveLearningConfig()).with_overrides(**overrides)
    oracle = oracle if oracle is not None else emt_oracle()
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    seeds = as_frames(seed_frames)
    if not seeds:
        raise ValueError("no seed frames given")
    explorers = list(explorers) if explorers is not None else [MDExplorer(seeds[0].copy())]
    if not resume:
        clear_run(wd)
    run = _Run(cfg, OracleJournal(oracle, wd, cfg.oracle_properties), explorers, wd, as_frames(test_frames),
               monitor, keep_pool, progress)
    t_start = time.perf_counter()
    if not run.resume():
        run.start(seeds)
    for rnd in range(run.state.round + 1, cfg.max_rounds):
        if run.state.stop_reason:
            break
        run.run_round(rnd)
    return run.finish(t_start)
