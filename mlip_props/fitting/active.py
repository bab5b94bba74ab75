"""Active learning: committee-driven on-the-fly fitting, oracle calls only where the model is unsure.

The loop (:func:`learn`)::

    seed frames --oracle--> data --fit--> committee
      repeat (one round):
        exploration (:mod:`.explore`: batched MD at a temperature schedule, strained cells,
                     rattles, normal modes, dimer/trimer scans) proposes frames
        selection: d = max over atoms of the per-atom committee force disagreement
                   sqrt(mean_m |F_m,i - <F_i>|^2) (eV/A; query by committee, H. S. Seung et al.,
                   COLT 1992; A. V. Shapeev et al., Comput. Mater. Sci. 140, 171 (2017))
                   d <  lower            -> "trusted"   (never labelled)
                   lower <= d <= upper   -> "candidate"
                   d >  upper            -> "wild"      (never labelled: the model extrapolates far
                                            outside its data; MD restarts from the last trusted frame)
                   candidates closer than ``dedup_distance`` (descriptor fingerprint distance) to a
                   labelled frame or to an already-selected one -> "duplicate"; of the rest the
                   ``max_per_round`` most uncertain -> "selected"
                   frames proposed again that are already labelled (same structure hash; fixed
                   pools, scans) -> "duplicate" as well, before any scoring of distances
                   optional (off by default): ``virial_lower_eV`` also scores statically proposed
                   frames by the committee's virial spread per atom (as a force-equivalent
                   d_V * lower / virial_lower); ``diversity`` > 0 picks a round's frames greedily by
                   disagreement x (1 - exp(-(D/l)^2)), D the fingerprint distance to this round's
                   picks; ``frame_reduce="rms"`` the RMS instead of the max over atoms
                   ``selection="random"`` (the control arm of benchmarks): instead, up to
                   ``max_per_round`` of the unlabelled proposed frames are picked uniformly at
                   random (thresholds and disagreement ignored), everything else unchanged
        oracle labels the selected frames (each call logged, journalled to disk at once)
        retrain: warm start from the current committee (same descriptor transform, bootstrap
                 resample per member), or a full refit every ``refit_every`` rounds
        checkpoint: labelled data (extxyz), committee (model file), explorer state (MD positions
                    and velocities), counters, history
      until: no frame selected for ``patience`` rounds, the oracle budget is spent, the target
             uncertainty is reached (the ``uncertainty_quantile`` of d over a round's frames is
             below ``target_uncertainty_eV_A``), a ``monitor`` says stop (property-targeted
             learning, :mod:`.targeted`: a property's committee std below a tolerance), or
             ``max_rounds``.

Resuming (``resume=True``, the default) restarts from the last completed round. Every round's
randomness is seeded from (seed, round), so the restarted round proposes the same frames, and the
oracle journal (``oracle_journal.extxyz``, keyed by a hash of numbers, positions, cell and pbc)
answers the calls already made before the crash: no oracle call is ever repeated.

Files in ``workdir``: ``oracle_calls.jsonl`` (one line per oracle call: round, hash, n_atoms,
config_type, seconds, energy), ``decisions.jsonl`` (one line per scored frame: round, source,
disagreement, decision), ``rounds.jsonl``, ``data.extxyz``, ``model.pt``, ``state.json``,
``learning_curve.png`` (force RMSE of the committee mean on a fixed test set vs oracle calls).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from ase import Atoms

from ..backend import Batch, build_neighbor_graph, edge_vectors, evaluate
from ..backend.batch import to_atoms
from .data import Dataset, dataset_from_frames, label_frames, write_dataset
from .explore import Explorer, MDExplorer, Proposal
from .model import BehlerParrinelloPotential

DECISIONS = ("trusted", "candidate", "wild", "duplicate", "selected")
SELECTIONS = ("disagreement", "random")


# ------------------------------------------------------------------------------------------ config
@dataclass
class ActiveLearningConfig:
    """Settings of :func:`learn` (eV/A for thresholds; see the module docstring)."""

    lower_eV_A: float = 0.05
    upper_eV_A: float = 1.0
    dedup_distance: float = 0.05  # fingerprint distance (descriptor units / feature std)
    max_per_round: int = 8
    # at most this many frames in round k (the last entry repeats; max_per_round still caps): replays
    # another run's schedule, e.g. a random-selection control with the same training rounds.
    per_round_schedule: list[int] | None = None
    max_rounds: int = 20
    max_oracle_calls: int = 500
    patience: int = 2  # rounds without any selection before stopping
    target_uncertainty_eV_A: float | None = None
    uncertainty_quantile: float = 0.95
    committee: int = 4
    hidden: tuple[int, ...] = (16, 16)
    descriptor: dict[str, Any] | None = None  # SymmetryFunctionConfig dict; default preset
    zbl: tuple[float, float] | None = (1.0, 2.0)
    initial_epochs: int = 300
    retrain_epochs: int = 80
    lr: float = 3e-3
    retrain_lr: float = 1e-3
    batch_size: int = 8
    refit_every: int = 0  # full refit (new transform, from scratch) every n rounds; 0: never
    weights: dict[str, float] | None = None
    oracle_properties: tuple[str, ...] = ("energy", "forces", "stress")
    include_isolated: bool = True
    seed: int = 0
    selection: str = "disagreement"  # "random": control arm, uniform pick among unlabelled proposals
    virial_lower_eV: float | None = None  # stress disagreement as virial per atom (eV); None: forces only
    virial_upper_eV: float = float("inf")
    diversity: float = 0.0  # diversity-aware batch picks: length = this x median candidate distance; 0: off
    train_dtype: str = "float64"  # warm-start training precision ("float32": faster on CPUs)
    frame_reduce: str = "max"  # per-atom force spread -> frame score: "max" over atoms or "rms" (static frames)

    def __post_init__(self) -> None:
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.virial_lower_eV is not None and not (0 < self.virial_lower_eV <= self.virial_upper_eV
                                                     and self.lower_eV_A > 0):
            raise ValueError("virial_lower_eV needs 0 < virial_lower_eV <= virial_upper_eV and lower_eV_A > 0, "
                             f"got {self.virial_lower_eV}, {self.virial_upper_eV}, {self.lower_eV_A}")
        if self.diversity < 0:
            raise ValueError(f"diversity must be >= 0, got {self.diversity}")
        if self.frame_reduce not in ("max", "rms"):
            raise ValueError(f"frame_reduce must be 'max' or 'rms', got {self.frame_reduce!r}")
        if self.per_round_schedule is not None and (not len(self.per_round_schedule)
                                                    or min(self.per_round_schedule) < 0):
            raise ValueError(f"per_round_schedule must be a non-empty list of counts >= 0, got {self.per_round_schedule}")
        if self.train_dtype not in ("float64", "float32"):
            raise ValueError(f"train_dtype must be 'float64' or 'float32', got {self.train_dtype!r}")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


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


# ------------------------------------------------------------------------------------------ helpers
def structure_hash(atoms: Atoms) -> str:
    """SHA-1 of numbers, positions (rounded to 1e-6 A), cell and pbc: the oracle journal key."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(atoms.get_atomic_numbers(), dtype=np.int64).tobytes())
    for arr in (atoms.get_positions(), np.asarray(atoms.get_cell())):
        h.update(np.ascontiguousarray(np.round(arr, 6) + 0.0).tobytes())
    h.update(np.ascontiguousarray(atoms.get_pbc()).tobytes())
    return h.hexdigest()[:20]


def classify(disagreement_eV_A: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """'trusted' (d < lower), 'candidate' (lower <= d <= upper) or 'wild' (d > upper) per frame."""
    if not 0 <= lower <= upper:
        raise ValueError(f"need 0 <= lower <= upper thresholds, got {lower}, {upper}")
    d = np.asarray(disagreement_eV_A, float)
    out = np.full(d.shape, "candidate", dtype=object)
    out[d < lower] = "trusted"
    out[(d > upper) | ~np.isfinite(d)] = "wild"
    return out


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


def deduplicate(fp_candidates: np.ndarray, fp_reference: np.ndarray, order: Sequence[int], distance: float,
                scale: np.ndarray, limit: int) -> tuple[list[int], list[int]]:
    """Greedy selection in ``order`` (most uncertain first): a candidate is kept if its RMS scaled
    fingerprint distance to every reference frame and every kept candidate is >= ``distance``;
    at most ``limit`` kept. Returns (kept, duplicates) as candidate indices."""
    kept: list[int] = []
    dup: list[int] = []
    ref = fp_reference / scale if len(fp_reference) else np.zeros((0, fp_candidates.shape[1]))
    cand = fp_candidates / scale
    for k in order:
        if len(kept) >= limit:
            break
        pool = np.concatenate([ref, cand[kept]]) if kept else ref
        dmin = np.sqrt(((pool - cand[k]) ** 2).mean(1)).min() if len(pool) else np.inf
        (kept if dmin >= distance else dup).append(int(k))
    return kept, dup


def _rms_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS (over features) Euclidean distances between the rows of ``a`` and ``b``, (len(a), len(b))."""
    sq = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0) / max(a.shape[1], 1))


def diverse_select(fp_candidates: np.ndarray, fp_reference: np.ndarray, score: np.ndarray, distance: float,
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
    dup: list[int] = []
    if len(fp_reference):
        ref = fp_reference / scale
        d_ref = _rms_distances(cand, ref).min(1)
    else:
        d_ref = np.full(n, np.inf)
    avail = d_ref >= distance
    dup = [int(k) for k in np.nonzero(~avail)[0]]
    d_kept = np.full(n, np.inf)
    kept: list[int] = []
    while len(kept) < limit and avail.any():
        with np.errstate(over="ignore", invalid="ignore"):
            w = 1.0 - np.exp(-((d_kept / length) ** 2)) if length > 0 else (d_kept > 0).astype(float)
        eff = np.where(avail, score * np.where(np.isinf(d_kept), 1.0, w), -np.inf)
        k = int(np.argmax(eff))
        avail[k] = False
        if d_kept[k] < distance:
            dup.append(k)
            continue
        kept.append(k)
        d_kept = np.minimum(d_kept, _rms_distances(cand, cand[k : k + 1])[:, 0])
    return kept, dup


def virial_disagreement(stress_eV_A3: np.ndarray, volume_A3: float, n_atoms: int) -> float:
    """Committee spread of the virial per atom, eV: sqrt(sum_ij var_m(sigma_m,ij V / N)) over the
    full 3x3 tensor (Voigt shear entries counted twice), from member stresses (M, 6) (eV/A^3).
    The stress analogue of the force disagreement (as the virial deviation of DP-GEN, Y. Zhang et
    al., Comput. Phys. Commun. 253, 107206 (2020)); 0 for a single model or a non-periodic frame."""
    s = np.asarray(stress_eV_A3, float)
    if s.ndim != 2 or s.shape[0] < 2 or not np.all(np.isfinite(s)):
        return 0.0
    var = (s * volume_A3 / n_atoms).var(0)
    return float(np.sqrt(var[:3].sum() + 2 * var[3:].sum()))


def _jsonl(path: Path, rec: dict[str, Any]) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(rec, default=lambda x: x.item() if hasattr(x, "item") else str(x)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


class OracleJournal:
    """Oracle calls through one place: answers cached by structure hash in a JSON-lines journal
    (exact float64 round trip) appended and fsynced after EVERY call, so a crash loses at most the
    call in flight; each call also logged to ``oracle_calls.jsonl`` (round, hash, seconds, energy)."""

    def __init__(self, oracle: Any, workdir: Path, properties: Sequence[str]):
        self.oracle = oracle
        self.properties = tuple(properties)
        self.path = workdir / "oracle_journal.jsonl"
        self.log = workdir / "oracle_calls.jsonl"
        self.cache: dict[str, dict[str, Any]] = {}
        self.n_calls = 0
        self.n_cached = 0
        self.seconds = 0.0
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a crash: that call is simply redone
                    continue
                self.cache[rec["hash"]] = rec

    def frame(self, key: str) -> Atoms:
        """The labelled frame (single-point results) stored under ``key``."""
        rec = self.cache[key]
        a = Atoms(numbers=rec["numbers"], positions=rec["positions"], cell=rec["cell"], pbc=rec["pbc"])
        stress = [np.asarray(rec["stress"], float)] if rec.get("stress") is not None else None
        forces = [np.asarray(rec["forces"], float)] if rec.get("forces") is not None else None
        out = label_frames([a], [rec["energy"]], forces, stress)[0]
        out.info["config_type"] = rec.get("config_type", "")
        out.info["al_hash"] = key
        return out

    def add(self, atoms: Atoms, energy: float, forces: Any, stress: Any, round_index: int, given: bool) -> str:
        key = structure_hash(atoms)
        st = None if stress is None or not np.all(np.isfinite(stress)) else np.asarray(stress, float).tolist()
        rec = {"hash": key, "round": int(round_index), "given": bool(given),
               "config_type": atoms.info.get("config_type", ""), "numbers": atoms.get_atomic_numbers().tolist(),
               "positions": atoms.get_positions().tolist(), "cell": np.asarray(atoms.get_cell()).tolist(),
               "pbc": [bool(x) for x in atoms.get_pbc()], "energy": float(energy),
               "forces": None if forces is None else np.asarray(forces, float).tolist(), "stress": st}
        _jsonl(self.path, rec)
        self.cache[key] = rec
        return key

    def add_labelled(self, frames: Sequence[Atoms]) -> list[str]:
        """Store frames that came with labels (no oracle call)."""
        keys = []
        for a in frames:
            ds = dataset_from_frames([a])
            key = structure_hash(a)
            if key not in self.cache:
                self.add(a, ds.energies[0], ds.forces[0], ds.stress[0], -1, given=True)
            keys.append(key)
        return keys

    def label(self, frames: Sequence[Atoms], round_index: int) -> list[str]:
        """Oracle labels of ``frames`` (one call each, unless journalled); returns their keys."""
        keys = []
        for a in frames:
            key = structure_hash(a)
            if key in self.cache:
                self.n_cached += 1
                keys.append(key)
                continue
            props = tuple(p for p in self.properties if p != "stress" or a.pbc.all())
            t0 = time.perf_counter()
            r = evaluate(self.oracle, [a], props)
            dt = time.perf_counter() - t0
            self.seconds += dt
            self.n_calls += 1
            stress = r.stress_eV_A3[0] if r.stress_eV_A3 is not None else None
            forces = r.forces_eV_A[0] if r.forces_eV_A is not None else None
            self.add(a, r.energies_eV[0], forces, stress, round_index, given=False)
            _jsonl(self.log, {"round": round_index, "hash": key, "n_atoms": len(a),
                              "config_type": a.info.get("config_type", ""), "seconds": dt,
                              "energy_eV": float(r.energies_eV[0]), "time": time.time()})
            keys.append(key)
        return keys


def _as_frames(data: Any) -> list[Atoms]:
    if data is None:
        return []
    if isinstance(data, (str, os.PathLike)):
        import ase.io

        x = ase.io.read(data, index=":")
        return x if isinstance(x, list) else [x]
    if isinstance(data, Atoms):
        return [data]
    return [to_atoms(a) if not isinstance(a, Atoms) else a for a in data]


def _is_labelled(a: Atoms) -> bool:
    return a.calc is not None and "energy" in getattr(a.calc, "results", {})


def _bulk_subset(ds: Dataset) -> Dataset:
    return ds.subset([k for k, a in enumerate(ds.frames) if not (len(a) == 1 and not a.pbc.any())])


# ------------------------------------------------------------------------------------------ training
def warm_start_fit(model: BehlerParrinelloPotential, data: Dataset, epochs: int = 80, lr: float = 1e-3,
                   batch_size: int = 8, weights: dict[str, float] | None = None, seed: int = 0,
                   bootstrap: bool = True, dtype: torch.dtype = torch.float64,
                   ) -> tuple[BehlerParrinelloPotential, dict[str, float]]:
    """Continue training a committee on ``data`` (retraining after new labels): same architecture,
    descriptor transform and E0 (from the first fit), AdamW with a cosine schedule from ``lr``,
    one fresh bootstrap resample per member (seeded), ``epochs`` passes. Returns the model (the
    epoch with the lowest training loss) and its final per-term training RMSEs (meV/A, meV/atom).
    Uses the fitting layer's precomputed descriptors/Jacobians (:mod:`.losses`). ``dtype``: the
    training precision (``torch.float32`` is faster on CPUs; descriptors are still computed in
    float64 and cast); the returned model is float64 either way."""
    from .losses import loss_terms, precompute, predict
    from .training import DEFAULT_WEIGHTS, _rmse_metrics

    w = dict(DEFAULT_WEIGHTS)
    w.update(weights or {})
    ds = _bulk_subset(data)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    d = precompute(model, ds, dtype=dtype)  # (moves the model to float64 in place: cast it after)
    model = model.to(dtype)
    n, m = d.n_structures, model.n_members
    boot = (torch.as_tensor(np.stack([rng.multinomial(n, np.full(n, 1.0 / n)) for _ in range(m)]), dtype=dtype)
            if bootstrap and m > 1 else torch.ones(m, n, dtype=dtype))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-6)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1), eta_min=lr * 0.05)
    best, best_state = float("inf"), None
    model.train()
    for _ in range(epochs):
        perm = torch.as_tensor(rng.permutation(n))
        tot = 0.0
        for b0 in range(0, n, batch_size):
            idx = perm[b0 : b0 + batch_size]
            sub = d.select(idx)
            pred = predict(model, sub, create_graph=True, want_stress=w["stress"] > 0)
            terms = loss_terms(model, sub, pred, boot[:, idx])
            loss = sum(w.get(k, 0.0) * v.mean() for k, v in terms.items() if w.get(k, 0.0) > 0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
        sched.step()
        if tot < best:
            best, best_state = tot, {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    metrics = _rmse_metrics(model, d)
    return model.to(torch.float64), metrics


def _fresh_fit(frames: list[Atoms], cfg: ActiveLearningConfig, seed: int) -> BehlerParrinelloPotential:
    from .descriptors import preset
    from .training import fit

    ds = dataset_from_frames(frames)
    desc = cfg.descriptor or preset(ds.elements, cutoff=4.5, n_radial=6, zetas=(1, 4), angular_etas=(0.01,)).to_dict()
    model, _ = fit(ds, None, committee=cfg.committee, hidden=cfg.hidden, descriptor=desc, epochs=cfg.initial_epochs,
                   patience=max(20, cfg.initial_epochs // 4), lr=cfg.lr, batch_size=cfg.batch_size, seed=seed,
                   split=(1.0, 0.0, 0.0), prune=None, zbl=cfg.zbl, weights=cfg.weights, plot=False, progress=False)
    return model


def force_rmse_meV_A(model: Any, test_frames: Sequence[Atoms]) -> float:
    """Force RMSE (meV/A) of ``model`` (the committee mean for committees) on labelled frames,
    one batched evaluation."""
    ds = dataset_from_frames(list(test_frames))
    r = evaluate(model, ds.frames, ("energy", "forces"))
    err = []
    for f_pred, f_ref in zip(r.forces_eV_A, ds.forces):
        if f_ref is None:
            continue
        fp = f_pred.mean(0) if f_pred.ndim == 3 else f_pred
        err.append((fp - f_ref).ravel())
    return float(np.sqrt(np.mean(np.concatenate(err) ** 2)) * 1e3)


def plot_learning_curve(curves: dict[str, tuple[Sequence[float], Sequence[float]]], path: str | os.PathLike,
                        target_meV_A: float | None = None, title: str = "",
                        runs: dict[str, list[tuple[Sequence[float], Sequence[float]]]] | None = None,
                        colours: dict[str, str] | None = None, figsize: tuple[float, float] = (5.5, 3.8)) -> str:
    """Test-set force RMSE (meV/A) vs oracle calls, one line per label, log y; ``runs`` adds thin
    lines (e.g. the single seeds behind a mean curve) in the colour of their label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    for k, (label, (x, y)) in enumerate(curves.items()):
        colour = (colours or {}).get(label, f"C{k}")
        for rx, ry in (runs or {}).get(label, []):
            ax.plot(rx, ry, "-", color=colour, alpha=0.25, lw=0.7)
        ax.plot(x, y, "o-", ms=3, color=colour, label=label)
    if target_meV_A:
        ax.axhline(target_meV_A, color="k", ls="--", lw=0.8, label=f"{target_meV_A:g} meV/A")
    ax.set(xlabel="oracle calls", ylabel="test force RMSE (meV/A)", yscale="log", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


# ------------------------------------------------------------------------------------------ the loop
def _save_state(workdir: Path, state: dict[str, Any]) -> None:
    tmp = workdir / "state.json.tmp"
    tmp.write_text(json.dumps(state, default=lambda x: x.tolist() if hasattr(x, "tolist") else str(x)))
    os.replace(tmp, workdir / "state.json")


def _member_disagreement(forces: np.ndarray, reduce: str = "max") -> float:
    """Per-atom committee force spread sqrt(mean_m |F_m,i - <F_i>|^2) reduced over the frame's
    atoms: its maximum (``"max"``) or its root mean square (``"rms"``), eV/A."""
    f = forces if forces.ndim == 3 else forces[None]
    if not f.shape[1]:
        return 0.0
    d2 = ((f - f.mean(0)) ** 2).sum(-1).mean(0)
    return float(np.sqrt(d2.max() if reduce == "max" else d2.mean()))


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
    """Run (or resume) the active-learning loop; see the module docstring.

    ``seed_frames``: Atoms, a list, or a file; unlabelled frames are labelled by the oracle.
    ``oracle``: any :class:`~mlip_props.backend.OraclePotential` (default
    :func:`~mlip_props.backend.emt_oracle`; pyscf via ``load_potential("pyscf:...")``; any ASE
    calculator via ``OraclePotential(calc)``). ``explorers``: strategies from :mod:`.explore`
    (default: :class:`~.explore.MDExplorer` at 300/900/1500 K on the first seed frame).
    ``test_frames``: labelled frames for the learning curve (force RMSE after every round).
    ``config`` / ``overrides``: :class:`ActiveLearningConfig` fields. ``keep_pool``: also write
    every explored frame with its disagreement to ``pool.extxyz`` (for random-selection baselines).
    ``monitor``: optional ``monitor(model, round) -> dict`` called after the first fit (round -1)
    and after every round's retraining; its entries go into the round's history record, and a
    ``"stop"`` entry (a reason string) stops the loop (property-targeted learning,
    :mod:`.targeted`, monitors a property's committee std this way).
    Returns an :class:`ActiveLearningResult`; the committee is also in ``workdir/model.pt``.
    Oracle calls are counted as labelled frames (``oracle_calls`` in the history: seeds and
    isolated atoms included; every labelled frame costs exactly one single point).
    """
    from ..backend import emt_oracle
    from ..potentials import load_model_file, save_potential

    cfg = config or ActiveLearningConfig()
    for k, v in overrides.items():
        if not hasattr(cfg, k):
            raise ValueError(f"unknown active-learning setting {k!r}")
        setattr(cfg, k, v)
    classify(np.zeros(1), cfg.lower_eV_A, cfg.upper_eV_A)  # validates the thresholds
    cfg.__post_init__()  # validates the selection rule (also when given as an override)
    oracle = oracle if oracle is not None else emt_oracle()
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    seeds = _as_frames(seed_frames)
    if not seeds:
        raise ValueError("no seed frames given")
    if explorers is None:
        explorers = [MDExplorer(seeds[0].copy())]
    explorers = list(explorers)
    tests = _as_frames(test_frames)
    state_path = wd / "state.json"
    if not resume:
        for f in ("oracle_journal.jsonl", "oracle_calls.jsonl", "decisions.jsonl", "rounds.jsonl", "pool.extxyz",
                  "state.json"):
            (wd / f).unlink(missing_ok=True)
    journal = OracleJournal(oracle, wd, cfg.oracle_properties)
    timings = {"oracle": 0.0, "training": 0.0, "exploration": 0.0, "selection": 0.0}
    t_start = time.perf_counter()
    state = json.loads(state_path.read_text()) if state_path.is_file() else None
    if state is not None:  # resume after the last completed round
        keys = list(state["data"])
        model = load_model_file(wd / "model.pt")
        for ex, st in zip(explorers, state.get("explorers", [])):
            ex.load_state_dict(st)
        history, rnd0, quiet, stop_reason = state["history"], state["round"] + 1, state["quiet"], state["stop_reason"]
        timings.update(state.get("timings_s", {}))  # cumulative over restarts (the redone round counts twice)
    else:
        todo = [a.copy() for a in seeds if not _is_labelled(a)]
        keys = journal.add_labelled([a for a in seeds if _is_labelled(a)])
        if cfg.include_isolated:
            have = {journal.cache[k]["numbers"][0] for k in keys if len(journal.cache[k]["numbers"]) == 1
                    and not any(journal.cache[k]["pbc"])}
            for z in sorted({int(z) for a in seeds for z in a.get_atomic_numbers()} - have):
                iso = Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]], pbc=False)
                iso.info["config_type"] = "isolated_atom"
                todo.append(iso)
        for a in todo:
            a.info.setdefault("config_type", "seed")
        t0 = time.perf_counter()
        keys += journal.label(todo, -1)
        timings["oracle"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        model = _fresh_fit([journal.frame(k) for k in keys], cfg, cfg.seed)
        timings["training"] += time.perf_counter() - t0
        history = []
        rnd0, quiet, stop_reason = 0, 0, None
        if tests or monitor is not None:
            rec0: dict[str, Any] = {"round": -1, "oracle_calls": len(keys), "n_labelled": len(keys)}
            if tests:
                rec0["test_force_rmse_meV_A"] = force_rmse_meV_A(model, tests)
            if monitor is not None:
                mon = dict(monitor(model, -1))
                stop_reason = mon.pop("stop", None) or None
                rec0.update(mon)
            history.append(rec0)
        save_potential(model, wd / "model.pt")
        _save_state(wd, {"round": -1, "quiet": 0, "history": history, "data": keys, "timings_s": timings,
                         "explorers": [ex.state_dict() for ex in explorers], "config": cfg.to_dict(),
                         "stop_reason": stop_reason})
    rnd = rnd0 - 1
    fp_cache: dict[str, np.ndarray] = {}  # de-duplication fingerprints by structure hash (pools, labelled data)
    for rnd in range(rnd0, cfg.max_rounds):
        if stop_reason:
            rnd -= 1
            break
        rng = np.random.default_rng([cfg.seed, rnd])
        data = [journal.frame(k) for k in keys]
        # ---- exploration
        t0 = time.perf_counter()
        props: list[tuple[str, Proposal]] = []
        for ex in explorers:
            props.append((ex.name, ex.propose(model, rnd, rng, (cfg.lower_eV_A, cfg.upper_eV_A))))
        need = [p for _, p in props if p.disagreement_eV_A is None and p.frames]
        vir_by_id: dict[int, float] = {}  # virial disagreement (eV/atom) of statically scored frames
        if need:  # static strategies: all their frames scored in ONE committee evaluation
            allf = [a for p in need for a in p.frames]
            use_vir = cfg.virial_lower_eV is not None
            r = evaluate(model, allf, ("energy", "forces", "stress") if use_vir else ("energy", "forces"))
            dall = [_member_disagreement(f, cfg.frame_reduce) for f in r.forces_eV_A]
            if use_vir:
                for k, a in enumerate(allf):
                    if a.pbc.all() and r.stress_eV_A3 is not None:
                        vir_by_id[id(a)] = virial_disagreement(r.stress_eV_A3[k], abs(a.get_volume()), len(a))
            o = 0
            for p in need:
                p.disagreement_eV_A = np.asarray(dall[o : o + len(p.frames)])
                o += len(p.frames)
        timings["exploration"] += time.perf_counter() - t0
        # ---- selection
        t0 = time.perf_counter()
        frames = [a for _, p in props for a in p.frames]
        source = [name for name, p in props for _ in p.frames]
        dis = np.concatenate([p.disagreement_eV_A for _, p in props if p.frames]) if frames else np.zeros(0)
        dvir = np.array([vir_by_id.get(id(a), 0.0) for a in frames])
        if cfg.virial_lower_eV is not None:  # classify and rank on the force-equivalent of both spreads
            score = np.maximum(dis, dvir * (cfg.lower_eV_A / cfg.virial_lower_eV))
            cls = classify(score, cfg.lower_eV_A, np.inf)
            cls[(dis > cfg.upper_eV_A) | (dvir > cfg.virial_upper_eV) | ~np.isfinite(score)] = "wild"
        else:
            score = dis
            cls = classify(dis, cfg.lower_eV_A, cfg.upper_eV_A)
        decision = list(cls)
        have = set(keys)
        hashes = [structure_hash(a) for a in frames]
        for k, hk in enumerate(hashes):  # proposed again (fixed pools, scans): never labelled twice
            if hk in have:
                decision[k] = "duplicate"
                cls[k] = "duplicate"
        cand = np.nonzero(cls == "candidate")[0]
        selected: list[int] = []
        room = max(0, cfg.max_oracle_calls - len(keys))
        if cfg.per_round_schedule:
            room = min(room, int(cfg.per_round_schedule[min(rnd, len(cfg.per_round_schedule) - 1)]))
        if cfg.selection == "random":  # control arm: uniform among unlabelled frames, thresholds ignored
            fresh = [k for k, hk in enumerate(hashes) if hk not in have]
            fresh = [k for k in fresh if hashes[k] not in {hashes[j] for j in fresh if j < k}]
            pick = rng.choice(len(fresh), size=min(cfg.max_per_round, room, len(fresh)), replace=False) \
                if fresh else []
            selected = sorted(int(fresh[j]) for j in pick)
            for k in selected:
                decision[k] = "selected"
        elif len(cand):
            fp_all = fingerprints(model, [frames[k] for k in cand] + data, cache=fp_cache)
            fp_c, fp_r = fp_all[: len(cand)], fp_all[len(cand):]
            scale = fp_all.std(0) + 1e-3 * (np.abs(fp_all).mean() + 1e-12)
            if cfg.diversity > 0 and len(cand) > 1:
                cs = fp_c / scale
                pair = _rms_distances(cs, cs)
                length = cfg.diversity * float(np.median(pair[np.triu_indices(len(cand), 1)]))
                kept, dups = diverse_select(fp_c, fp_r, score[cand], cfg.dedup_distance, scale,
                                            min(cfg.max_per_round, room), length)
            else:
                order = list(np.argsort(-score[cand], kind="stable"))
                kept, dups = deduplicate(fp_c, fp_r, order, cfg.dedup_distance, scale, min(cfg.max_per_round, room))
            selected = [int(cand[k]) for k in kept]
            for k in dups:
                decision[int(cand[k])] = "duplicate"
            for k in selected:
                decision[k] = "selected"
        n_wild_md = sum(len(p.wild) for _, p in props)
        units = {ex.name: getattr(ex, "score_unit", "eV/A") for ex in explorers}
        with open(wd / "decisions.jsonl", "a") as fh:
            for k, a in enumerate(frames):
                drec = {"round": rnd, "source": source[k], "config_type": a.info.get("config_type", ""),
                        "hash": hashes[k], "disagreement_eV_A": float(dis[k]), "decision": decision[k]}
                if cfg.virial_lower_eV is not None:
                    drec["virial_disagreement_eV"] = float(dvir[k])
                if units.get(source[k], "eV/A") != "eV/A":  # a strategy's own score (e.g. stress, GPa)
                    drec["score_unit"] = units[source[k]]
                fh.write(json.dumps(drec) + "\n")
            for _, p in props:
                dw = p.wild_disagreement_eV_A if p.wild_disagreement_eV_A is not None else np.zeros(0)
                for a, d in zip(p.wild, dw):
                    fh.write(json.dumps({"round": rnd, "source": "md", "config_type": a.info.get("config_type", ""),
                                         "hash": structure_hash(a), "disagreement_eV_A": float(d),
                                         "decision": "wild", "action": "restart_from_last_trusted"}) + "\n")
        if keep_pool and frames:
            import ase.io

            pool = []
            for k, a in enumerate(frames):
                b = a.copy()
                b.info["al_disagreement"] = float(dis[k])
                b.info["al_round"] = rnd
                pool.append(b)
            ase.io.write(wd / "pool.extxyz", pool, format="extxyz", append=True)
        timings["selection"] += time.perf_counter() - t0
        # ---- oracle
        t0 = time.perf_counter()
        new = journal.label([frames[k] for k in selected], rnd)
        timings["oracle"] += time.perf_counter() - t0
        keys = keys + new
        # ---- retrain (warm start, or a periodic full refit)
        t0 = time.perf_counter()
        if new:
            data = [journal.frame(k) for k in keys]
            if cfg.refit_every and (rnd + 1) % cfg.refit_every == 0:
                model = _fresh_fit(data, cfg, cfg.seed + 1000 * (rnd + 1))
                fp_cache.clear()
            else:
                model, _ = warm_start_fit(model, dataset_from_frames(data), epochs=cfg.retrain_epochs,
                                          lr=cfg.retrain_lr, batch_size=cfg.batch_size, weights=cfg.weights,
                                          seed=cfg.seed * 7919 + rnd, dtype=getattr(torch, cfg.train_dtype))
        timings["training"] += time.perf_counter() - t0
        quiet = 0 if selected else quiet + 1
        q_unc = float(np.quantile(dis, cfg.uncertainty_quantile)) if len(dis) else 0.0
        if cfg.virial_lower_eV is not None and len(dvir):
            rec_vir = {"virial_q_eV": float(np.quantile(dvir, cfg.uncertainty_quantile)),
                       "n_selected_virial": int(sum(dvir[k] * cfg.lower_eV_A / cfg.virial_lower_eV > dis[k]
                                                    for k in selected))}
        else:
            rec_vir = {}
        rec = {"round": rnd, "n_explored": len(frames), "n_trusted": int((cls == "trusted").sum()),
               "n_candidates": int(len(cand)), "n_wild": int((cls == "wild").sum()) + n_wild_md,
               "n_duplicates": int(sum(d == "duplicate" for d in decision)), "n_selected": len(selected),
               "md_steps": int(sum(p.n_steps for _, p in props)),
               "md_restarts": int(sum(p.n_restarts for _, p in props)),
               "uncertainty_q_eV_A": q_unc, "max_disagreement_eV_A": float(dis.max()) if len(dis) else 0.0,
               "n_labelled": len(keys), "oracle_calls": len(keys), **rec_vir}
        if tests:
            rec["test_force_rmse_meV_A"] = force_rmse_meV_A(model, tests)
        mon = dict(monitor(model, rnd)) if monitor is not None else {}
        mon_stop = mon.pop("stop", None)
        rec.update(mon)
        history.append(rec)
        _jsonl(wd / "rounds.jsonl", rec)
        if progress:
            print(json.dumps(rec), flush=True)
        if mon_stop:
            stop_reason = str(mon_stop)
        elif quiet >= cfg.patience:
            stop_reason = f"no selection for {quiet} rounds"
        elif len(keys) >= cfg.max_oracle_calls:
            stop_reason = f"oracle budget {cfg.max_oracle_calls} reached"
        elif cfg.target_uncertainty_eV_A is not None and q_unc < cfg.target_uncertainty_eV_A:
            stop_reason = f"target uncertainty reached ({q_unc:.3g} < {cfg.target_uncertainty_eV_A} eV/A)"
        # ---- checkpoint: the model file, then the state that names the data (journal keys)
        save_potential(model, wd / "model.pt")
        _save_state(wd, {"round": rnd, "quiet": quiet, "history": history, "data": keys, "timings_s": timings,
                         "explorers": [ex.state_dict() for ex in explorers], "config": cfg.to_dict(),
                         "stop_reason": stop_reason})
    if not stop_reason:
        stop_reason = f"max_rounds {cfg.max_rounds} reached"
    frames_out = [journal.frame(k) for k in keys]
    write_dataset(frames_out, wd / "data.extxyz")
    curve = None
    pts = [(h["oracle_calls"], h["test_force_rmse_meV_A"]) for h in history if "test_force_rmse_meV_A" in h]
    if pts:
        curve = plot_learning_curve({"active learning": tuple(zip(*pts))}, wd / "learning_curve.png")
    timings["total"] = time.perf_counter() - t_start
    return ActiveLearningResult(model=model, frames=frames_out, n_oracle_calls=journal.n_calls, n_labelled=len(keys),
                                rounds=rnd + 1, stop_reason=stop_reason, history=history, timings_s=timings,
                                workdir=str(wd), curve_plot=curve)
