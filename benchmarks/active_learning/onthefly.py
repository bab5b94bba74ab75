"""On-the-fly protocol: active learning with committee MD, random data fitted from scratch.

For each seed:
  1. active learning (:func:`mlip_props.fitting.active.learn`): fcc Cu cells, seed data = a few
     rattled cells + the isolated atom; exploration = batched committee MD (replicas at -5 %, 0,
     +5 % isotropic strain, temperature schedule up to ``--t-max`` K, above the 1500 K target) +
     random strains up to +-5 %; thresholds ``--lower``/``--upper`` eV/A. Every explored frame is
     kept (``pool.extxyz``).
  2. random selection from the SAME exploration trajectories (the pool): n frames drawn
     uniformly, labelled by EMT, a committee fitted from scratch with the same architecture and
     the seed data, for n on the ``--random-n`` grid; test error vs n.

Reported: oracle calls to reach ``--target`` meV/A (active vs random, interpolated on the
log-error curves), wall time split into oracle / training / exploration / selection, and the
lattice constant, bulk modulus and X-point phonon frequencies of the final committee vs EMT.
``--refit-from`` fits from scratch on prefixes of the actively selected data (the quality of the
selected data at equal training effort); ``--merge`` joins per-seed JSON files into one summary.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from mlip_props.backend import emt_oracle, evaluate
from mlip_props.fitting import fit, label_frames
from mlip_props.fitting.active import force_rmse_meV_A, learn, plot_learning_curve
from mlip_props.fitting.explore import MDExplorer, StrainExplorer

from .common import (command_line, crossing, cu_cell, machine, properties_vs_emt, seed_frames, small_descriptor,
                     test_set)

ACTIVE = "active (on the fly, warm-start committee)"
REFIT = "active-selected data, refit from scratch"
RANDOM = "random from the same trajectories, fit from scratch"
CURVE_KEYS = {ACTIVE: ("al_calls", "al_rmse_meV_A"), REFIT: ("al_refit_calls", "al_refit_rmse_meV_A"),
              RANDOM: ("random_calls", "random_rmse_meV_A")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("on-the-fly protocol")
    g.add_argument("--t-max", type=float, default=2000.0, help="highest MD temperature of the schedule (K)")
    g.add_argument("--random-n", type=int, nargs="+", default=[10, 20, 40, 70])
    g.add_argument("--random-epochs", type=int, default=150)
    g.add_argument("--no-properties", action="store_true")
    g.add_argument("--merge", nargs="+", default=None, help="merge per-seed JSON files into --out/--plot")
    g.add_argument("--refit-from", default=None,
                   help="per-seed JSON of a finished run: refit from scratch on the first n AL-labelled frames "
                        "(n from the random grid, same fit settings as random) and add the curve to that file")


def fit_from_scratch(frames: list, args: argparse.Namespace, descriptor: dict, seed: int):
    """A committee fitted from scratch on ``frames`` with the random baseline's settings."""
    model, _ = fit(frames, None, committee=args.committee, hidden=tuple(args.hidden), descriptor=descriptor,
                   epochs=args.random_epochs, patience=max(20, args.random_epochs // 4), split=(1.0, 0.0, 0.0),
                   prune=None, plot=False, progress=False, seed=seed, batch_size=8)
    return model


def run_onthefly(args: argparse.Namespace) -> None:
    """Steps 1 and 2 of the module docstring for every seed; the report in ``--out`` (after each seed)."""
    import ase.io

    cell = cu_cell(args.reps)
    desc = small_descriptor()
    tests = test_set(cell, args.test_per_set)
    report = {"machine": machine(args.threads, nice=False), "command": command_line(), "n_atoms": len(cell),
              "n_test_frames": len(tests), "seeds": {}}
    schedule = [[300.0, 900.0], [300.0, 900.0, 1500.0], [600.0, 1500.0, args.t_max]]
    for seed in args.seeds:
        wd = Path(args.workdir) / f"seed{seed}"
        explorers = [MDExplorer(cell, temperature_schedule=schedule, strains=(-0.05, 0.0, 0.05),
                                steps=args.md_steps, sample_every=args.sample_every, pause_on_candidate=False),
                     StrainExplorer(cell, n=6, max_strain=0.05, rattle=0.08)]
        t0 = time.perf_counter()
        res = learn(seed_frames(cell, seed), emt_oracle(), explorers, wd, test_frames=tests, keep_pool=True,
                    lower_eV_A=args.lower, upper_eV_A=args.upper, max_per_round=args.max_per_round,
                    max_rounds=args.max_rounds, max_oracle_calls=args.budget, patience=2, committee=args.committee,
                    hidden=tuple(args.hidden), descriptor=desc, initial_epochs=args.initial_epochs,
                    retrain_epochs=args.retrain_epochs, seed=seed, progress=True)
        al_wall = time.perf_counter() - t0
        x = [h["oracle_calls"] for h in res.history]
        y = [h["test_force_rmse_meV_A"] for h in res.history]
        # ---- random selection from the same exploration pool
        pool = ase.io.read(wd / "pool.extxyz", index=":")
        rng = np.random.default_rng(777 + seed)
        seeds_lab = [a for a in res.frames if a.info.get("config_type") in ("seed_rattle", "isolated_atom")]
        rx, ry, t_rand_oracle, t_rand_fit = [], [], 0.0, 0.0
        for n in args.random_n:
            pick = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
            frames = [pool[k].copy() for k in pick]
            for a in frames:
                a.calc = None
            t1 = time.perf_counter()
            r = evaluate(emt_oracle(), frames, ("energy", "forces", "stress"))
            t_rand_oracle += time.perf_counter() - t1
            lab = label_frames(frames, r.energies_eV, r.forces_eV_A, r.stress_eV_A3)
            t1 = time.perf_counter()
            m = fit_from_scratch(seeds_lab + lab, args, desc, seed)
            t_rand_fit += time.perf_counter() - t1
            rx.append(len(seeds_lab) + len(lab))
            ry.append(force_rmse_meV_A(m, tests))
            print(json.dumps({"seed": seed, "random_n": rx[-1], "test_force_rmse_meV_A": ry[-1]}), flush=True)
        rec = {"al_calls": x, "al_rmse_meV_A": y, "random_calls": rx, "random_rmse_meV_A": ry,
               "al_stop": res.stop_reason, "al_rounds": res.rounds, "al_timings_s": res.timings_s,
               "al_wall_s": al_wall, "random_oracle_s": t_rand_oracle, "random_fit_s": t_rand_fit,
               "pool_size": len(pool), "al_reach_target": crossing(x, y, args.target),
               "random_reach_target": crossing(rx, ry, args.target),
               "al_final_rmse_meV_A": y[-1], "history": res.history}
        if not args.no_properties and seed == args.seeds[0]:
            t1 = time.perf_counter()
            rec["properties"] = properties_vs_emt(res.model)
            rec["properties_s"] = time.perf_counter() - t1
        report["seeds"][str(seed)] = rec
        Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))


def refit_al(args: argparse.Namespace) -> None:
    """Fit from scratch on prefixes of the AL data (in labelling order) with the random baseline's
    settings: compares the quality of the SELECTED DATA at equal training effort."""
    import ase.io

    part = json.loads(Path(args.refit_from).read_text())
    cell = cu_cell(args.reps)
    desc = small_descriptor()
    tests = test_set(cell, args.test_per_set)
    for seed, rec in part["seeds"].items():
        frames = ase.io.read(Path(args.workdir) / f"seed{seed}" / "data.extxyz", index=":")
        xs, ys, t_fit = [], [], 0.0
        for n in rec["random_calls"]:
            if n > len(frames):
                continue
            t1 = time.perf_counter()
            m = fit_from_scratch(frames[:n], args, desc, int(seed))
            t_fit += time.perf_counter() - t1
            xs.append(n)
            ys.append(force_rmse_meV_A(m, tests))
            print(json.dumps({"seed": seed, "al_refit_n": n, "test_force_rmse_meV_A": ys[-1]}), flush=True)
        rec["al_refit_calls"], rec["al_refit_rmse_meV_A"], rec["al_refit_fit_s"] = xs, ys, t_fit
    Path(args.refit_from).write_text(json.dumps(part, indent=1, default=str))


def _mean_curve(rows: list[dict], key_x: str, key_y: str) -> tuple[list, list] | None:
    """Geometric mean over seeds of one curve on the call counts all seeds share (None if absent)."""
    rows = [r for r in rows if key_x in r]
    if not rows:
        return None
    grid = sorted(set.intersection(*[set(r[key_x]) for r in rows]))
    ys = [[float(np.exp(np.interp(g, r[key_x], np.log(r[key_y])))) for g in grid] for r in rows]
    return grid, list(np.exp(np.mean(np.log(ys), axis=0)))


def summarise(paths: list[str], out: str, plot: str, target: float) -> dict:
    """Merge per-seed JSON files (seeds run as separate processes) into one summary and plot."""
    report = {"parts": paths, "seeds": {}}
    for pth in paths:
        part = json.loads(Path(pth).read_text())
        report["seeds"].update(part["seeds"])
        report.setdefault("machine", part["machine"])
        report.setdefault("commands", []).append(part["command"])
        report["n_atoms"], report["n_test_frames"] = part["n_atoms"], part["n_test_frames"]
    s = list(report["seeds"].values())
    mean = {label: _mean_curve(s, *keys) for label, keys in CURVE_KEYS.items()}
    mean = {k: v for k, v in mean.items() if v is not None}
    # the error level every curve reaches: the worst of the final errors (or the target if lower errors)
    level = max(target, max(v[1][-1] for v in mean.values()))
    cross = {k: crossing(v[0], v[1], level) for k, v in mean.items()}
    rnd = cross.get(RANDOM)
    summ = {
        "target_meV_A": target,
        "al_final_rmse_meV_A": [r["al_final_rmse_meV_A"] for r in s],
        "al_calls_final": [r["al_calls"][-1] for r in s],
        "al_calls_to_target_per_seed": [r["al_reach_target"] for r in s],
        "random_calls_to_target_per_seed": [r["random_reach_target"] for r in s],
        "mean_curves": mean,
        "common_level_meV_A": level,
        "calls_to_common_level_mean_curves": cross,
        "ratio_vs_random": {k: (v / rnd if v is not None and rnd else None) for k, v in cross.items()},
        "timings_mean_s": {k: float(np.mean([r["al_timings_s"][k] for r in s]))
                           for k in ("oracle", "training", "exploration", "selection", "total")},
        "random_fit_s_mean": float(np.mean([r["random_fit_s"] for r in s])),
        "random_oracle_s_mean": float(np.mean([r["random_oracle_s"] for r in s])),
        "properties": next((r["properties"] for r in s if "properties" in r), None),
    }
    report["summary"] = summ
    Path(out).write_text(json.dumps(report, indent=1, default=str))
    colours = dict(zip(CURVE_KEYS, ("C0", "C2", "C3")))
    names = {label: label + f" (mean of {len(s)} seeds)" for label in mean}
    plot_learning_curve({names[label]: curve for label, curve in mean.items()}, plot, target,
                        f"Cu EMT, {report['n_atoms']}-atom cells: active vs random selection",
                        runs={names[label]: [(r[CURVE_KEYS[label][0]], r[CURVE_KEYS[label][1]]) for r in s
                                             if CURVE_KEYS[label][0] in r] for label in mean},
                        colours={names[label]: colours[label] for label in mean}, figsize=(6.4, 4.2))
    return report
