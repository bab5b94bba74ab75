"""Active learning judged where it matters (Cu, EMT oracle): force error on the rare-event test set
(:mod:`.rare`) and on the typical one (:func:`.common.test_set`) against oracle calls, for three
arms with the same oracle, seed data, model and training settings:

1. ``boltzmann`` — what a user does without the loop: EMT Langevin MD of the bulk cell at 300 K,
   frames labelled at a fixed stride; a committee fitted from scratch on the first n of them, for
   each n of ``--budgets``.
2. ``random`` — the loop's beyond-Boltzmann explorers (MD of the bulk, vacancy and adatom-slab
   cells on a temperature schedule up to the liquid, compressed and stretched cells, dimer and
   trimer scans), frames picked uniformly at random among the unlabelled ones (no committee in
   the selection, no pausing).
3. ``committee`` — the same explorers with the committee loop (disagreement thresholds,
   de-duplication, on-the-fly pausing of MD replicas).

Arms 2 and 3 warm-start their committee every round (the loop's schedule); arm 1 fits from
scratch at every budget with the loop's initial schedule (a user fits once, at the end).

    python benchmarks/active_learning_rare.py --arm committee --seed 0 --workdir /tmp/rare
    python benchmarks/active_learning_rare.py --summary --workdir /tmp/rare --out rare.json --plot docs/al_rare.png

Each (arm, seed) is its own process and its own folder ``WORKDIR/ARM_sSEED`` (curve.json);
the test sets are made once and cached in WORKDIR.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import cached_frames, crossing, cu_cell, langevin, machine, seed_frames, small_descriptor, test_set
from .rare import rare_set, slab_with_adatom, vacancy_endpoints

ARMS = ("boltzmann", "random", "committee")


def test_sets(workdir: Path, n_typical: int, n_rare: int) -> tuple[list, list]:
    cell = cu_cell(2)
    typical = cached_frames(workdir / f"typical_{n_typical}.extxyz", lambda: test_set(cell, n_typical))
    rare = cached_frames(workdir / f"rare_{n_rare}.extxyz", lambda: rare_set(n_rare))
    return typical, rare


def explorers(args: argparse.Namespace, committee_pauses: bool) -> list:
    """The beyond-Boltzmann explorers arms 2 and 3 share."""
    from mlip_props.fitting.explore import ClusterScanExplorer, MDExplorer

    schedule = [[300.0, 900.0], [300.0, 900.0, 1500.0], [600.0, 1500.0, 2500.0]]
    bulk_md = MDExplorer([cu_cell(2), vacancy_endpoints(2)[0]], temperature_schedule=schedule,
                         strains=(-0.05, 0.0, 0.03), steps=args.md_steps, sample_every=args.sample_every,
                         pause_on_candidate=committee_pauses)
    slab_md = MDExplorer([slab_with_adatom("100"), slab_with_adatom("111")],
                         temperature_schedule=[[300.0, 700.0], [700.0, 1200.0]], steps=args.md_steps,
                         sample_every=args.sample_every, pause_on_candidate=committee_pauses)
    return [bulk_md, slab_md, ClusterScanExplorer(["Cu"], r_range=(1.8, 3.4), n=5)]


def _rmse(model: Any, frames: list) -> float:
    from mlip_props.fitting.active.curves import force_rmse_meV_A

    return force_rmse_meV_A(model, frames)


def run_loop_arm(args: argparse.Namespace, arm: str, seed: int, typical: list, rare: list) -> dict:
    from mlip_props.fitting.active import learn

    wd = Path(args.workdir) / f"{arm}_s{seed}"
    monitor = lambda model, rnd: {"rmse_typical_meV_A": _rmse(model, typical),  # noqa: E731
                                  "rmse_rare_meV_A": _rmse(model, rare)}
    t0 = time.perf_counter()
    res = learn(seed_frames(cu_cell(2), seed, n_strained=2), explorers=explorers(args, arm == "committee"),
                workdir=wd, monitor=monitor, selection="random" if arm == "random" else "disagreement",
                lower_eV_A=args.lower, upper_eV_A=args.upper, max_oracle_calls=args.budget,
                max_rounds=args.max_rounds, max_per_round=args.per_round, committee=args.committee,
                hidden=tuple(args.hidden), descriptor=small_descriptor(), initial_epochs=args.initial_epochs,
                retrain_epochs=args.retrain_epochs, seed=seed, patience=args.patience, progress=False)
    points = [(h["oracle_calls"], h["rmse_typical_meV_A"], h["rmse_rare_meV_A"]) for h in res.history
              if "rmse_rare_meV_A" in h]
    return {"arm": arm, "seed": seed, "calls": [p[0] for p in points], "typical_meV_A": [p[1] for p in points],
            "rare_meV_A": [p[2] for p in points], "stop_reason": res.stop_reason, "timings_s": res.timings_s,
            "wall_s": time.perf_counter() - t0}


def boltzmann_frames(n: int, seed: int, stride: int) -> list:
    """EMT Langevin MD of the bulk cell at 300 K, ``n`` frames ``stride`` steps apart, labelled."""
    from mlip_props.backend import emt_oracle, evaluate
    from mlip_props.fitting import label_frames

    a, dyn = langevin(cu_cell(2), 0.0, 300.0, np.random.default_rng(7000 + seed))
    dyn.run(100)
    frames = []
    for _ in range(n):
        dyn.run(stride)
        b = a.copy()
        b.calc = None
        b.info["config_type"] = "md300"
        frames.append(b)
    r = evaluate(emt_oracle(), frames, ("energy", "forces", "stress"))
    return label_frames(frames, r.energies_eV, r.forces_eV_A, r.stress_eV_A3)


def run_boltzmann_arm(args: argparse.Namespace, seed: int, typical: list, rare: list) -> dict:
    from mlip_props.backend import emt_oracle, evaluate
    from mlip_props.fitting import label_frames
    from mlip_props.fitting.active.config import ActiveLearningConfig
    from mlip_props.fitting.active.retrain import fresh_fit

    t0 = time.perf_counter()
    seeds = seed_frames(cu_cell(2), seed, n_strained=2)
    r = evaluate(emt_oracle(), seeds, ("energy", "forces", "stress"))
    seeds = label_frames(seeds, r.energies_eV, r.forces_eV_A, r.stress_eV_A3)
    pool = boltzmann_frames(max(args.budgets), seed, args.stride)
    cfg = ActiveLearningConfig(committee=args.committee, hidden=tuple(args.hidden), descriptor=small_descriptor(),
                               initial_epochs=args.initial_epochs, seed=seed)
    out: dict[str, Any] = {"arm": "boltzmann", "seed": seed, "calls": [], "typical_meV_A": [], "rare_meV_A": []}
    for b in sorted(args.budgets):
        frames = seeds + pool[: b - len(seeds)] if b > len(seeds) else seeds
        model = fresh_fit(frames, cfg, seed)
        out["calls"].append(len(frames))
        out["typical_meV_A"].append(_rmse(model, typical))
        out["rare_meV_A"].append(_rmse(model, rare))
        print(f"boltzmann s{seed}: {len(frames)} calls, rare {out['rare_meV_A'][-1]:.0f} meV/A", flush=True)
    out["wall_s"] = time.perf_counter() - t0
    return out


def _curve_of(folder: Path) -> dict | None:
    """A finished run's curve.json, else (a loop arm still running or interrupted) the curve so far
    from its checkpointed history (``partial: true``)."""
    if (folder / "curve.json").is_file():
        return json.loads((folder / "curve.json").read_text())
    arm, _, seed = folder.name.rpartition("_s")
    if arm not in ARMS or not (folder / "state.json").is_file():
        return None
    history = json.loads((folder / "state.json").read_text())["history"]
    pts = [(h["oracle_calls"], h["rmse_typical_meV_A"], h["rmse_rare_meV_A"]) for h in history if "rmse_rare_meV_A" in h]
    return {"arm": arm, "seed": int(seed), "calls": [p[0] for p in pts], "typical_meV_A": [p[1] for p in pts],
            "rare_meV_A": [p[2] for p in pts], "partial": True}


def summarise(workdir: Path, target: float) -> dict:
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for folder in sorted(p for p in workdir.glob("*_s*") if p.is_dir()):
        d = _curve_of(folder)
        if d is not None:
            runs[d["arm"]].append(d)
    out: dict[str, Any] = {"target_rare_meV_A": target, "arms": {}}
    for arm, ds in runs.items():
        reach = [crossing(d["calls"], d["rare_meV_A"], target) for d in ds]
        out["arms"][arm] = {"seeds": [d["seed"] for d in ds], "calls_to_target": reach,
                            "partial": [bool(d.get("partial")) for d in ds],
                            "final_calls": [d["calls"][-1] if d["calls"] else None for d in ds],
                            "final_rare_meV_A": [d["rare_meV_A"][-1] if d["rare_meV_A"] else None for d in ds],
                            "final_typical_meV_A": [d["typical_meV_A"][-1] if d["typical_meV_A"] else None
                                                    for d in ds]}
    out["runs"] = runs
    return out


def plot(summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"boltzmann": "tab:grey", "random": "tab:orange", "committee": "tab:blue"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for ax, key, title in zip(axes, ("typical_meV_A", "rare_meV_A"), ("typical test set", "rare-event test set")):
        for arm, ds in summary["runs"].items():
            for k, d in enumerate(ds):
                ax.plot(d["calls"], d[key], "-o", ms=3, color=colours[arm], alpha=0.8,
                        label=arm if k == 0 else None)
        if key == "rare_meV_A":
            ax.axhline(summary["target_rare_meV_A"], color="k", lw=0.8, ls="--", label="target")
        ax.set_yscale("log")
        ax.set_xlabel("oracle calls")
        ax.set_ylabel("force RMSE (meV/A)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arm", choices=ARMS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default="al_rare")
    p.add_argument("--typical-per-set", type=int, default=8, help="typical test frames per trajectory (5 trajectories)")
    p.add_argument("--rare-per-kind", type=int, default=6, help="rare test frames per kind (8 kinds; NEB: 7 images)")
    p.add_argument("--budget", type=int, default=200, help="oracle calls of arms 2 and 3")
    p.add_argument("--budgets", type=int, nargs="+", default=[10, 20, 40, 80, 160, 320], help="arm 1's training sizes")
    p.add_argument("--stride", type=int, default=20, help="arm 1: MD steps between labelled frames")
    p.add_argument("--max-rounds", type=int, default=30)
    p.add_argument("--per-round", type=int, default=8)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--lower", type=float, default=0.05)
    p.add_argument("--upper", type=float, default=2.0)
    p.add_argument("--md-steps", type=int, default=200)
    p.add_argument("--sample-every", type=int, default=10)
    p.add_argument("--committee", type=int, default=4)
    p.add_argument("--hidden", type=int, nargs="+", default=[16, 16])
    p.add_argument("--initial-epochs", type=int, default=300)
    p.add_argument("--retrain-epochs", type=int, default=80)
    p.add_argument("--summary", action="store_true")
    p.add_argument("--target", type=float, default=60.0, help="rare-set force RMSE target (meV/A)")
    p.add_argument("--out")
    p.add_argument("--plot")
    return p


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parser().parse_args(argv)
    wd = Path(args.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    if args.summary:
        s = summarise(wd, args.target)
        if args.out:
            Path(args.out).write_text(json.dumps(s, indent=1))
        if args.plot:
            plot(s, args.plot)
        print(json.dumps({arm: {k: v for k, v in d.items()} for arm, d in s["arms"].items()}, indent=1))
        return 0
    if args.arm is None:
        raise SystemExit("--arm is required (or --summary)")
    typical, rare = test_sets(wd, args.typical_per_set, args.rare_per_kind)
    info = {"machine": machine(torch.get_num_threads()), "args": vars(args)}
    if args.arm == "boltzmann":
        d = run_boltzmann_arm(args, args.seed, typical, rare)
    else:
        d = run_loop_arm(args, args.arm, args.seed, typical, rare)
    d.update(info)
    out = wd / f"{args.arm}_s{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "curve.json").write_text(json.dumps(d, indent=1, default=str))
    print(json.dumps({k: d[k] for k in ("arm", "seed", "calls", "rare_meV_A", "typical_meV_A")}))
    return 0
