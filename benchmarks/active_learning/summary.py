"""Reading the arms' working directories back: mean learning curves over seeds, oracle calls to
reach given force errors (active / random), comparisons of selection variants, and the
properties of each arm's committee against EMT. Shared by the pool and trajectory protocols;
interrupted runs count with the rounds they completed."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from mlip_props.backend import emt_oracle
from mlip_props.fitting.active import plot_learning_curve
from mlip_props.potentials import load_model_file

from .common import ARMS, crossing, cu_properties, properties_vs_emt


def arm_record(run_dir: Path) -> dict:
    """One run's learning curve (oracle calls, test force RMSE in meV/A), the picks made by the
    virial term per round, the cumulative stage timings of its checkpoint (s) and its
    ``run.json`` / ``properties.json`` if written."""
    state = json.loads((run_dir / "state.json").read_text())
    hist = state["history"]
    rec = {"calls": [h["oracle_calls"] for h in hist], "rmse_meV_A": [h["test_force_rmse_meV_A"] for h in hist],
           "n_selected_virial": [h.get("n_selected_virial") for h in hist]}
    for extra in ("run.json", "properties.json"):
        if (run_dir / extra).is_file():
            rec[extra[:-5]] = json.loads((run_dir / extra).read_text())
    if "timings_s" in state:  # cumulative since the (last) start of this process' checkpointing
        rec["timings_s_checkpoint"] = state["timings_s"]
    return rec


def load_runs(workdir: str) -> dict[str, dict[str, dict]]:
    """{seed: {arm: :func:`arm_record`}} of every ``workdir/seed*/ARM`` with a checkpoint."""
    runs: dict[str, dict[str, dict]] = {}
    for st in sorted(Path(workdir).glob("seed*/*/state.json")):
        runs.setdefault(st.parent.parent.name[4:], {})[st.parent.name] = arm_record(st.parent)
    return runs


def load_arm(workdir: str, arm: str) -> dict[str, dict]:
    """{seed: :func:`arm_record`} of one arm of ``workdir``."""
    return {seed: by_arm[arm] for seed, by_arm in load_runs(workdir).items() if arm in by_arm}


def mean_log_curve(curves: list[tuple[list, list]]) -> tuple[list[float], list[float]]:
    """Geometric mean of several error-vs-calls curves on the union of their call counts up to the
    shortest curve's end, each curve interpolated linearly in log(error) (runs whose rounds picked
    different numbers of frames have different call grids)."""
    end = min(x[-1] for x, _ in curves)
    start = max(x[0] for x, _ in curves)
    grid = sorted({float(v) for x, _ in curves for v in x if start <= v <= end})
    logs = [np.interp(grid, np.asarray(x, float), np.log(np.asarray(y, float))) for x, y in curves]
    return grid, list(np.exp(np.mean(logs, axis=0)))


def summarise_arms(workdir: str, out: str, plot: str, target: float,
                   title: str = "Cu EMT, 32-atom cells: selection from the same MD pool",
                   extra_random: dict[str, str] | None = None, random_label: str = "random") -> dict:
    """Curves of every seed/arm from the checkpoints (interrupted runs included: the rounds
    completed so far), geometric-mean curves over seeds on the common call grid, calls to reach
    given RMSE levels (log-interpolated) and the ratio active / random."""
    runs = load_runs(workdir)
    seeds = sorted(k for k, v in runs.items() if all(a in v for a in ARMS))
    mean = {}
    for arm in ARMS:
        mean[arm] = mean_log_curve([(runs[s][arm]["calls"], runs[s][arm]["rmse_meV_A"]) for s in seeds])
    full = dict(mean)  # for the plot: each arm's mean curve as far as all its seeds go
    x_end = min(mean[a][0][-1] for a in ARMS)
    for arm in ARMS:
        n_common = sum(x <= x_end for x in mean[arm][0])
        mean[arm] = (mean[arm][0][:n_common], mean[arm][1][:n_common])
    reach = max(min(mean[a][1]) for a in ARMS)  # the lowest error BOTH mean curves reach
    levels = sorted({float(x) for x in (300, 200, 150, 100, 80, 60, 50, 40) if x >= reach} | {np.ceil(reach * 10) / 10},
                    reverse=True)
    table = []
    for lev in levels:
        ca, cr = crossing(*mean["disagreement"], lev), crossing(*mean["random"], lev)
        per_seed = {s: (crossing(runs[s]["disagreement"]["calls"], runs[s]["disagreement"]["rmse_meV_A"], lev),
                        crossing(runs[s]["random"]["calls"], runs[s]["random"]["rmse_meV_A"], lev)) for s in seeds}
        table.append({"level_meV_A": lev, "active_calls": ca, "random_calls": cr,
                      "ratio": (ca / cr if ca and cr else None), "per_seed_active_random": per_seed})
    at_end = {a: {s: float(np.exp(np.interp(x_end, runs[s][a]["calls"], np.log(runs[s][a]["rmse_meV_A"]))))
                  for s in seeds} for a in ARMS}
    extra = {}  # further random arms (label -> workdir with seed*/random), e.g. another pool of the same runs
    for label, wd in (extra_random or {}).items():
        er = load_arm(wd, "random")
        es = [sd for sd in seeds if sd in er]
        curve = mean_log_curve([(er[sd]["calls"], er[sd]["rmse_meV_A"]) for sd in es])
        extra[label] = {"seeds": es, "mean_curve": curve, "runs": er,
                        "calls_to_reach": {lev: {"mean_curve": crossing(*curve, lev),
                                                 "per_seed": {sd: crossing(er[sd]["calls"], er[sd]["rmse_meV_A"], lev)
                                                              for sd in es}}
                                           for lev in levels}}
        active = {row["level_meV_A"]: row["active_calls"] for row in table}
        extra[label]["ratio_active_to_this_random"] = {
            lev: (active[lev] / v["mean_curve"] if v["mean_curve"] and active[lev] else None)
            for lev, v in extra[label]["calls_to_reach"].items()}
    summ = {"seeds": seeds, "mean_curves": mean, "lowest_common_meV_A": reach, "calls_to_reach": table,
            "extra_random": {k: {kk: vv for kk, vv in v.items() if kk != "runs"} for k, v in extra.items()},
            "common_final_calls": mean["random"][0][-1], "rmse_at_common_final_calls_meV_A": at_end,
            "target_meV_A": target,
            "target_reached": {a: crossing(*mean[a], target) for a in ARMS}}
    report = {"runs": runs, "summary": summ}
    Path(out).write_text(json.dumps(report, indent=1, default=str))
    colours = {"disagreement": "C0", "random": "C3"}
    labels = {"disagreement": "committee disagreement (active)", "random": random_label}
    curves = {f"{labels[arm]}, geometric mean of {len(seeds)} seeds": arm for arm in ARMS}
    lines = {c: full[a] for c, a in curves.items()}
    thin = {c: [(runs[s][a]["calls"], runs[s][a]["rmse_meV_A"]) for s in seeds] for c, a in curves.items()}
    cols = {c: colours[a] for c, a in curves.items()}
    for k, (label, v) in enumerate(extra.items()):
        c = f"{label}, geometric mean of {len(v['seeds'])} seeds"
        lines[c] = v["mean_curve"]
        thin[c] = [(v["runs"][sd]["calls"], v["runs"][sd]["rmse_meV_A"]) for sd in v["seeds"]]
        cols[c] = ("C1", "C4", "C2")[k % 3]
    plot_learning_curve(lines, plot, target, title, runs=thin, colours=cols, figsize=(6.8, 4.4))
    return report


def compare_pool(variants: dict[str, str], out: str, plot: str, target: float) -> dict:
    """Several active-arm variants (label -> workdir) against the random arm of the first workdir:
    geometric-mean curves over the seeds every variant and random share (each curve up to the
    rounds all its seeds completed), oracle calls to reach given RMSE levels per seed and on the
    mean curves (log-interpolated), ratios to random, and one plot."""
    first = next(iter(variants.values()))
    arms = {"random": load_arm(first, "random")}
    for label, wd in variants.items():
        arms[label] = load_arm(wd, "disagreement")
    seeds = sorted(set.intersection(*[set(v) for v in arms.values()]))
    mean = {}
    for label, runs in arms.items():
        mean[label] = mean_log_curve([(runs[s]["calls"], runs[s]["rmse_meV_A"]) for s in seeds])
    table = []
    for lev in (150.0, 100.0, 80.0, 60.0, 50.0, 40.0, 30.0):
        row = {"level_meV_A": lev}
        cr = crossing(*mean["random"], lev)
        for label, runs in arms.items():
            c = crossing(*mean[label], lev)
            per = [crossing(runs[s]["calls"], runs[s]["rmse_meV_A"], lev) for s in seeds]
            cr_s = [crossing(arms["random"][s]["calls"], arms["random"][s]["rmse_meV_A"], lev) for s in seeds]
            row[label] = {"mean_curve_calls": c, "ratio_mean_curve": (c / cr if c and cr else None),
                          "per_seed_calls": per,
                          "mean_of_per_seed_calls": (float(np.mean(per)) if all(per) else None),
                          "ratio_of_per_seed_means": (float(np.mean(per) / np.mean(cr_s))
                                                      if all(per) and all(cr_s) else None)}
        table.append(row)
    summ = {"seeds": seeds, "variants": variants, "mean_curves": mean, "calls_to_reach": table, "target_meV_A": target}
    report = {"runs": arms, "summary": summ}
    Path(out).write_text(json.dumps(report, indent=1, default=str))
    names = {label: f"{label} (geometric mean, {len(seeds)} seeds)" for label in arms}
    plot_learning_curve({names[label]: mean[label] for label in arms}, plot, target,
                        "Cu EMT, 32-atom cells: selection rules on the same pool",
                        runs={names[label]: [(r[s]["calls"], r[s]["rmse_meV_A"]) for s in seeds]
                              for label, r in arms.items()},
                        colours={names[label]: "C3" if label == "random" else f"C{[0, 2, 1, 4, 5][(k - 1) % 5]}"
                                 for k, label in enumerate(arms)}, figsize=(6.6, 4.4))
    return report


def arm_properties(args) -> None:
    """a0, B, X-point phonons of every finished (or interrupted) arm's committee mean vs EMT."""
    emt_ref = cu_properties(emt_oracle())
    for seed in args.seeds:
        for arm in args.arms:
            wd = Path(args.workdir) / f"seed{seed}" / arm
            if not (wd / "model.pt").is_file():
                continue
            t0 = time.perf_counter()
            props = properties_vs_emt(load_model_file(wd / "model.pt"), emt_ref)
            props["seconds"] = time.perf_counter() - t0
            props["n_labelled"] = len(json.loads((wd / "state.json").read_text())["data"])
            (wd / "properties.json").write_text(json.dumps(props, indent=1))
            print(json.dumps({"seed": seed, "arm": arm, **props["rel_err"]}), flush=True)
