"""Active learning judged where it matters (Cu, EMT oracle): force error on the rare-event test set
(:mod:`.rare`) and on the typical one (:func:`.common.test_set`) against oracle calls, for three
arms with the same oracle, seed data, model and training settings:

1. ``boltzmann`` — what a user does without the loop: EMT Langevin MD of the bulk cell at 300 K,
   frames labelled at a fixed stride; a committee fitted from scratch on the first n of them, for
   each n of ``--budgets``.
2. ``random`` — the loop's beyond-Boltzmann explorers (MD of the bulk, vacancy and adatom-slab
   cells on a temperature schedule up to the liquid, compressed and stretched cells, dimer and
   trimer scans, unless ``--no-pair-scan`` a nearest-neighbour pair of the bulk and vacancy
   cells pushed to 1.7-2.3 A, and unless ``--no-strain`` small random strains of the bulk cell,
   up to 2 %, barely rattled, de-duplicated by structure hash only), frames picked uniformly at
   random among the unlabelled ones (no committee in the selection, no pausing).
3. ``committee`` — the same explorers with the committee loop (disagreement thresholds,
   de-duplication, on-the-fly pausing of MD replicas; with ``--strain`` the strained cells also
   scored by the committee's virial spread, ``--virial-lower``; ``--balance``: a round's picks in
   turns over the explorers).

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
    from mlip_props.fitting.explore import ClusterScanExplorer, MDExplorer, PairScanExplorer, StrainExplorer

    schedule = [[300.0, 900.0], [300.0, 900.0, 1500.0], [600.0, 1500.0, 2500.0]]
    bulk_md = MDExplorer([cu_cell(2), vacancy_endpoints(2)[0]], temperature_schedule=schedule,
                         strains=(-0.05, 0.0, 0.03), steps=args.md_steps, sample_every=args.sample_every,
                         pause_on_candidate=committee_pauses)
    slab_md = MDExplorer([slab_with_adatom("100"), slab_with_adatom("111")],
                         temperature_schedule=[[300.0, 700.0], [700.0, 1200.0]], steps=args.md_steps,
                         sample_every=args.sample_every, pause_on_candidate=committee_pauses)
    out = [bulk_md, slab_md, ClusterScanExplorer(["Cu"], r_range=(1.8, 3.4), n=5)]
    if args.pair_scan:  # close pairs inside the crystal (and the vacancy cell), fresh every round
        out.append(PairScanExplorer([cu_cell(2), vacancy_endpoints(2)[0]], r_range=(1.7, 2.3), n=8, rattle=0.08))
    if args.strain:  # near-equilibrium homogeneous strains: where the elastic constants are decided
        out.append(StrainExplorer(cu_cell(2), n=8, max_strain=0.02, rattle=0.02, dedup_distance=args.strain_dedup))
    return out


def _rmse(model: Any, frames: list) -> float:
    from mlip_props.fitting.active.curves import force_rmse_meV_A

    return force_rmse_meV_A(model, frames)


def run_loop_arm(args: argparse.Namespace, arm: str, seed: int, typical: list, rare: list) -> dict:
    from mlip_props.fitting.active import learn

    wd = Path(args.workdir) / f"{arm}_s{seed}"

    def monitor(model: Any, rnd: int) -> dict:
        out = {"rmse_typical_meV_A": _rmse(model, typical), "rmse_rare_meV_A": _rmse(model, rare)}
        if args.stop_at_target and out["rmse_rare_meV_A"] <= args.target:
            out["stop"] = f"rare-set force RMSE {out['rmse_rare_meV_A']:.1f} <= {args.target} meV/A"
        return out

    t0 = time.perf_counter()
    res = learn(seed_frames(cu_cell(2), seed, n_strained=2), explorers=explorers(args, arm == "committee"),
                workdir=wd, monitor=monitor, selection="random" if arm == "random" else "disagreement",
                lower_eV_A=args.lower, upper_eV_A=args.upper, max_oracle_calls=args.budget,
                max_rounds=args.max_rounds, max_per_round=max([args.per_round, *(args.per_round_schedule or [])]),
                per_round_schedule=args.per_round_schedule, committee=args.committee,
                hidden=tuple(args.hidden), descriptor=small_descriptor(), initial_epochs=args.initial_epochs,
                retrain_epochs=args.retrain_epochs, seed=seed, patience=args.patience, progress=False,
                **({"virial_lower_eV": args.virial_lower} if arm == "committee" and args.strain else {}),
                **({"balance_explorers": True} if arm == "committee" and args.balance else {}))
    points = [(h["oracle_calls"], h["rmse_typical_meV_A"], h["rmse_rare_meV_A"]) for h in res.history
              if "rmse_rare_meV_A" in h]
    return {"arm": arm, "seed": seed, "calls": [p[0] for p in points], "typical_meV_A": [p[1] for p in points],
            "rare_meV_A": [p[2] for p in points], "stop_reason": res.stop_reason, "timings_s": res.timings_s,
            "round_seconds": [(h["oracle_calls"], h["seconds"]) for h in res.history if "seconds" in h],
            "wall_s": time.perf_counter() - t0}


def boltzmann_frames(n: int, seed: int, stride: int) -> list:
    """EMT Langevin MD of the bulk cell at 300 K, ``n`` frames ``stride`` steps apart, labelled."""
    from mlip_props.backend import emt_oracle
    from mlip_props.fitting import label_with_oracle

    a, dyn = langevin(cu_cell(2), 0.0, 300.0, np.random.default_rng(7000 + seed))
    dyn.run(100)
    frames = []
    for _ in range(n):
        dyn.run(stride)
        b = a.copy()
        b.calc = None
        b.info["config_type"] = "md300"
        frames.append(b)
    return label_with_oracle(emt_oracle(), frames)


def labelled_seeds(seed: int) -> list:
    """The seed data every arm starts from (3 rattled + 2 strained 32-atom cells), labelled by EMT."""
    from mlip_props.backend import emt_oracle
    from mlip_props.fitting import label_with_oracle

    return label_with_oracle(emt_oracle(), seed_frames(cu_cell(2), seed, n_strained=2))


def run_boltzmann_arm(args: argparse.Namespace, seed: int, typical: list, rare: list) -> dict:
    from mlip_props.potentials import save_potential

    t0 = time.perf_counter()
    wd = Path(args.workdir) / f"boltzmann_s{seed}"
    wd.mkdir(parents=True, exist_ok=True)
    timings = {"oracle": 0.0, "training": 0.0, "exploration": 0.0, "selection": 0.0}
    t = time.perf_counter()
    seeds = labelled_seeds(seed)
    timings["oracle"] += time.perf_counter() - t
    t = time.perf_counter()
    pool = boltzmann_frames(max(args.budgets), seed, args.stride)  # the EMT MD and the labels of its frames
    timings["exploration"] += time.perf_counter() - t
    out: dict[str, Any] = {"arm": "boltzmann", "seed": seed, "calls": [], "typical_meV_A": [], "rare_meV_A": [],
                           "timings_s": timings}
    for b in sorted(args.budgets):
        t = time.perf_counter()
        model = boltzmann_model(seeds, pool, b, args, seed)
        timings["training"] += time.perf_counter() - t
        save_potential(model, wd / f"model_{b}.pt")
        out["calls"].append(min(b, len(seeds) + len(pool)))
        out["typical_meV_A"].append(_rmse(model, typical))
        out["rare_meV_A"].append(_rmse(model, rare))
        (wd / "partial.json").write_text(json.dumps(out, indent=1))  # an interruption keeps the budgets done
        print(f"boltzmann s{seed}: {out['calls'][-1]} calls, rare {out['rare_meV_A'][-1]:.0f} meV/A", flush=True)
        if args.stop_at_target and out["rare_meV_A"][-1] <= args.target:
            break
    out["wall_s"] = time.perf_counter() - t0
    return out


def first_calls(seeds: list, pool: list, n: int) -> list:
    """Arm 1's labels at ``n`` oracle calls: the seed frames, then the first MD frames of ``pool``."""
    return seeds + pool[: max(0, n - len(seeds))]


def boltzmann_model(seeds: list, pool: list, n: int, args: argparse.Namespace, seed: int) -> Any:
    """Arm 1's committee at ``n`` oracle calls: fitted from scratch on the seed frames and the first
    ``n - len(seeds)`` labelled 300 K MD frames, with the loop's model and initial schedule."""
    from mlip_props.fitting.active.config import ActiveLearningConfig
    from mlip_props.fitting.active.retrain import fresh_fit

    cfg = ActiveLearningConfig(committee=args.committee, hidden=tuple(args.hidden), descriptor=small_descriptor(),
                               initial_epochs=args.initial_epochs, seed=seed)
    return fresh_fit(first_calls(seeds, pool, n), cfg, seed)


def _curve_of(folder: Path) -> dict | None:
    """A finished run's curve.json, else (a loop arm still running or interrupted) the curve so far
    from its checkpointed history (``partial: true``)."""
    if (folder / "curve.json").is_file():
        return json.loads((folder / "curve.json").read_text())
    arm, _, seed = folder.name.rpartition("_s")
    if arm == "boltzmann" and (folder / "partial.json").is_file():
        return {**json.loads((folder / "partial.json").read_text()), "partial": True}
    if arm not in ARMS or not (folder / "state.json").is_file():
        return None
    state = json.loads((folder / "state.json").read_text())
    history = state["history"]
    pts = [(h["oracle_calls"], h["rmse_typical_meV_A"], h["rmse_rare_meV_A"]) for h in history if "rmse_rare_meV_A" in h]
    return {"arm": arm, "seed": int(seed), "calls": [p[0] for p in pts], "typical_meV_A": [p[1] for p in pts],
            "rare_meV_A": [p[2] for p in pts], "partial": True, "timings_s": state.get("timings_s"),
            "round_seconds": [(h["oracle_calls"], h["seconds"]) for h in history if "seconds" in h]}


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
                                                    for d in ds],
                            "timings_s": [d.get("timings_s") for d in ds], "wall_s": [d.get("wall_s") for d in ds]}
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
    p.add_argument("--per-round-schedule", type=int, nargs="+", default=None,
                   help="labels allowed in round k (the last entry repeats), e.g. 8 x 18 then 16: --per-round-schedule "
                        "$(printf '8 %%.0s' {1..18}) 16")
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--lower", type=float, default=0.05)
    p.add_argument("--upper", type=float, default=2.0)
    p.add_argument("--md-steps", type=int, default=200)
    p.add_argument("--sample-every", type=int, default=10)
    p.add_argument("--committee", type=int, default=4)
    p.add_argument("--hidden", type=int, nargs="+", default=[16, 16])
    p.add_argument("--initial-epochs", type=int, default=300)
    p.add_argument("--retrain-epochs", type=int, default=80)
    p.add_argument("--stop-at-target", action=argparse.BooleanOptionalAction, default=True,
                   help="stop an arm once its rare-set force RMSE is <= --target (default on)")
    p.add_argument("--pair-scan", action=argparse.BooleanOptionalAction, default=True,
                   help="arms 2 and 3: also the PairScanExplorer (a nearest-neighbour pair of the bulk and vacancy "
                        "cells pushed to 1.7-2.3 A; default on)")
    p.add_argument("--strain", action=argparse.BooleanOptionalAction, default=True,
                   help="arms 2 and 3: also a StrainExplorer (8 random strains of the bulk cell up to 2 %%, rattle "
                        "0.02 A, per round; default on)")
    p.add_argument("--strain-dedup", type=float, default=0.0,
                   help="the StrainExplorer's own fingerprint de-duplication distance (default 0: structure hash "
                        "only; small strains are otherwise duplicates of the first one labelled)")
    p.add_argument("--balance", action=argparse.BooleanOptionalAction, default=False,
                   help="arm 3: a round's picks in turns over the explorers (balance_explorers; default off)")
    p.add_argument("--virial-lower", type=float, default=0.01,
                   help="arm 3 with --strain: virial spread per atom (eV) that counts as the lower force threshold")
    p.add_argument("--summary", action="store_true")
    p.add_argument("--properties", action="store_true",
                   help="the property table: arm 3's committee (its final model) and arm 1's at the same calls, "
                        "vs EMT, for every seed with a finished committee run")
    p.add_argument("--property-seeds", type=int, nargs="+", default=None,
                   help="--properties: only these seeds (default: every seed with a finished committee run)")
    p.add_argument("--final-model", choices=("loop", "large"), default="loop",
                   help="--properties: 'loop' tables the loop's own committee and arm 1 fitted with the loop's "
                        "model; 'large' refits both arms' labels with a larger model (20 symmetry functions, "
                        "cutoff 5 A, 4 x 32-32) and adds test-set RMSEs and the members' spread")
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
    if args.properties:
        from .rare_properties import final_fit_table, property_table

        table = final_fit_table(wd, args) if args.final_model == "large" else property_table(wd, args)
        if args.out:
            Path(args.out).write_text(json.dumps(table, indent=1))
        print(json.dumps(table["summary"], indent=1))
        return 0
    if args.arm is None:
        raise SystemExit("--arm is required (or --summary, --properties)")
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
