"""Property-targeted vs generic MD-driven active learning: oracle calls to halve the committee std
of C44 of EMT Cu.

Both loops start from the SAME labelled seed data and the SAME committee (one first fit in a base
work directory, copied to both runs), use the same oracle (EMT), the same retraining (warm start,
``--retrain-epochs``, per-member bootstrap), the same ``--max-per-round`` and budget, and the same
monitor: after the first fit and after every round, C44 and its committee std from
:func:`mlip_props.properties.uncertainty.committee_properties` (``elastic``, per-member reference
cells) on the fcc Cu primitive cell. Each loop stops as soon as the std is <= half its starting
value (``tolerance`` = 0.5 x the initial std) or when the budget is spent.

(a) targeted (:func:`mlip_props.fitting.targeted.learn_targeted`, target ``elastic``): proposals
    are the elastic workflow's strained cells (six Voigt strains at +-0.5, +-1 % of each member's
    reference cell), scored by the member spread of the stress change from the unstrained cell
    in the C44 entries (shear stress of shear cells; ``voigt_pairs="auto"``), GPa.
(a') targeted_all: the same, scored over the whole stress change (all constants).
(b) generic (:func:`mlip_props.fitting.active.learn`): batched committee MD of the seed cell at
    300/900/1500 K and -3/0/+3 % isotropic strain, frames scored by the maximum per-atom force
    disagreement, thresholds ``--lower``/``--upper`` eV/A.
(c) random (control): the targeted loop's proposals (the elastic workflow's cells), but
    ``--max-per-round`` of them chosen at random (after the same de-duplication) instead of the
    most disagreeing: separates the choice of structures from the choice by disagreement.

Seed data: ``--n-seed`` rattled ``--supercell``^3 primitive fcc Cu cells (a = 3.61 A scaled
isotropically by a uniform random +-3 %, rattle 0.02-0.15 A) + the isolated atom, labelled by EMT. Committee: ``--committee`` members, hidden
``--hidden``, the active-learning preset descriptor (cutoff 4.5 A).

Reported (stdout, ``--out`` JSON): C44 std vs oracle calls per round for both loops, and the
oracle calls beyond the seed data each needed to halve the std (None: not reached in the budget).

    OMP_NUM_THREADS=1 python benchmarks/targeted_learning.py --out /tmp/targeted.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

from mlip_props.backend import emt_oracle
from mlip_props.fitting.active import learn
from mlip_props.fitting.explore import MDExplorer
from mlip_props.fitting.targeted import PropertyExplorer, PropertyMonitor, learn_targeted


class RandomPick(PropertyExplorer):
    """Control: the targeted loop's proposals with random scores (the loop's round-seeded rng),
    i.e. random choice among the workflow's cells instead of the most disagreeing ones."""

    def propose(self, model, round_index, rng, thresholds):
        p = super().propose(model, round_index, rng, thresholds)
        p.disagreement_eV_A = rng.uniform(0.0, 1.0, len(p.frames))
        return p


def seed_frames(n: int, supercell: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    base = bulk("Cu", "fcc", a=3.61).repeat(supercell)
    out = []
    for k in range(n):
        a = base.copy()
        a.set_cell(a.cell[:] * (1.0 + rng.uniform(-0.03, 0.03)), scale_atoms=True)
        a.positions += rng.normal(0.0, (0.02, 0.05, 0.1, 0.15)[k % 4], a.positions.shape)
        a.info["config_type"] = "seed_rattle"
        out.append(a)
    return out


def calls_to_reach(history: list[dict], target: float, n0: int) -> int | None:
    for h in history:
        if h.get("property_std") is not None and h["property_std"] <= target:
            return int(h["oracle_calls"]) - n0
    return None


LABELS = {"targeted": "targeted (C44 entries)", "targeted_all": "targeted (whole tensor)",
          "random": "workflow cells, random pick", "generic": "generic MD-driven"}


def merge(files: list[str], plot: str | None) -> dict:
    """Combine result files (runs of one seed may come from several processes with the same
    settings and ``--base-from``): per seed and run, calls to halve; a plot of std/std0 vs calls."""
    seeds: dict[int, dict] = {}
    for f in files:
        d = json.loads(Path(f).read_text())
        e = seeds.setdefault(d["args"]["seed"], {"std0": d["c44_std_start_GPa"], "c44_0": d["c44_start_GPa"],
                                                 "emt": d.get("c44_emt_GPa"), "runs": {}})
        assert abs(e["std0"] - d["c44_std_start_GPa"]) < 1e-9, "different starting committees"
        e["runs"].update(d["runs"])
    names = [n for n in LABELS if any(n in e["runs"] for e in seeds.values())]
    print("calls beyond the seed data to halve the committee std of C44 (None: not within the budget)")
    print("seed  C44_0 +- std0 (GPa)  " + "  ".join(f"{n:>12s}" for n in names))
    for sd, e in sorted(seeds.items()):
        row = "  ".join(f"{str(e['runs'][n]['calls_to_halve']) if n in e['runs'] else '-':>12s}" for n in names)
        print(f"{sd:4d}  {e['c44_0']:6.1f} +- {e['std0']:5.1f}        {row}")
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for k, n in enumerate(names):
            for j, (sd, e) in enumerate(sorted(seeds.items())):
                if n not in e["runs"]:
                    continue
                c = np.array(e["runs"][n]["curve"])
                ax.plot(c[:, 0], c[:, 1] / e["std0"], marker="o", ms=3, color=f"C{k}", ls=("-", "--", ":", "-.", (0, (1, 4)))[j % 5],
                        label=LABELS[n] if j == 0 else None)
        ax.axhline(0.5, color="k", lw=0.8)
        ax.set(xlabel="oracle calls beyond the seed data", ylabel="committee std of C44 / initial",
               title="EMT Cu: halving the C44 std (one line style per seed)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot, dpi=100)
    return seeds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="/tmp/targeted_learning")
    p.add_argument("--out", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-seed", type=int, default=24)
    p.add_argument("--supercell", type=int, default=2)
    p.add_argument("--committee", type=int, default=3)
    p.add_argument("--hidden", type=int, nargs="+", default=[16])
    p.add_argument("--initial-epochs", type=int, default=150)
    p.add_argument("--retrain-epochs", type=int, default=40)
    p.add_argument("--max-per-round", type=int, default=4)
    p.add_argument("--budget", type=int, default=24, help="oracle calls beyond the seed data")
    p.add_argument("--max-rounds", type=int, default=8)
    p.add_argument("--md-steps", type=int, default=40)
    p.add_argument("--lower", type=float, default=0.05)
    p.add_argument("--upper", type=float, default=1.5)
    p.add_argument("--stress-weight", type=float, default=None,
                   help="loss weight of the stress term (both loops and the first fit; default: the fit default)")
    p.add_argument("--runs", nargs="+", default=["targeted", "targeted_all", "generic", "random"],
                   choices=["targeted", "targeted_all", "generic", "random"])
    p.add_argument("--base-from", default=None,
                   help="reuse the first fit of an earlier run with the same settings (its base workdir)")
    p.add_argument("--merge", nargs="+", default=None, help="result files to combine (no run)")
    p.add_argument("--plot", default=None, help="with --merge: write the std-vs-calls figure here")
    args = p.parse_args(argv)
    if args.merge:
        merge(args.merge, args.plot)
        return 0
    torch.set_num_threads(1)
    t_all = time.perf_counter()
    wd = Path(args.workdir)
    if wd.exists():
        shutil.rmtree(wd)
    wd.mkdir(parents=True)
    oracle = emt_oracle()
    prim = bulk("Cu", "fcc", a=3.61)
    seeds = seed_frames(args.n_seed, args.supercell, args.seed)
    common = dict(committee=args.committee, hidden=tuple(args.hidden), initial_epochs=args.initial_epochs,
                  retrain_epochs=args.retrain_epochs, max_per_round=args.max_per_round, seed=args.seed,
                  weights=None if args.stress_weight is None else {"stress": args.stress_weight})
    mon = PropertyMonitor(prim, "elastic", "C44_GPa")
    # ---- the shared start: seed labels + first fit, checkpointed at round -1
    t0 = time.perf_counter()
    if args.base_from:
        shutil.copytree(args.base_from, wd / "base")
    base = learn(seeds, oracle, [], wd / "base", max_rounds=0, monitor=mon, **common)
    t_base = time.perf_counter() - t0
    h0 = base.history[0]
    n0, std0 = int(h0["oracle_calls"]), float(h0["property_std"])
    target = 0.5 * std0
    print(f"start: {n0} seed oracle calls, C44 = {h0['property_mean']:.2f} +- {std0:.3f} GPa; "
          f"target std <= {target:.3f} GPa (first fit {t_base:.0f} s)", flush=True)
    from mlip_props.properties.elastic import elastic_tensor

    c44_emt = float(elastic_tensor(oracle, prim).C_GPa[3, 3])  # the oracle's own value (not counted)
    print(f"EMT C44 = {c44_emt:.2f} GPa", flush=True)
    budget = n0 + args.budget
    runs = {}
    for name in args.runs:
        shutil.copytree(wd / "base", wd / name)
        t0 = time.perf_counter()
        if name in ("targeted", "targeted_all"):
            res = learn_targeted(seeds, prim, "elastic", oracle, wd / name, tolerance=target, quantity="C44_GPa",
                                 voigt_pairs="auto" if name == "targeted" else None, max_oracle_calls=budget, max_rounds=args.max_rounds, patience=args.max_rounds,
                                 progress=False, **common)
        elif name == "random":
            ex = RandomPick(prim, "elastic")
            rm = PropertyMonitor(prim, "elastic", "C44_GPa", tolerance=target)
            res = learn(seeds, oracle, [ex], wd / name, monitor=rm, max_oracle_calls=budget,
                        max_rounds=args.max_rounds, patience=args.max_rounds, lower_eV_A=0.0,
                        upper_eV_A=float("inf"), dedup_distance=1e-3, **common)
        else:
            md = MDExplorer(seeds[0], temperature_schedule=[300.0, 900.0, 1500.0], strains=(-0.03, 0.0, 0.03),
                            steps=args.md_steps, sample_every=10, pause_on_candidate=False)
            gm = PropertyMonitor(prim, "elastic", "C44_GPa", tolerance=target)
            res = learn(seeds, oracle, [md], wd / name, monitor=gm, max_oracle_calls=budget,
                        max_rounds=args.max_rounds, patience=args.max_rounds, lower_eV_A=args.lower,
                        upper_eV_A=args.upper, **common)
        dt = time.perf_counter() - t0
        curve = [(int(h["oracle_calls"]) - n0, float(h["property_std"]), float(h["property_mean"]))
                 for h in res.history if "property_std" in h]
        runs[name] = {"calls_to_halve": calls_to_reach(res.history, target, n0), "curve": curve,
                      "stop_reason": res.stop_reason, "oracle_calls_beyond_seed": int(res.n_labelled) - n0,
                      "wall_s": dt, "timings_s": res.timings_s}
        print(f"{name}: stop: {res.stop_reason}; wall {dt:.0f} s "
              f"(training {res.timings_s['training']:.0f} s, oracle {res.timings_s['oracle']:.1f} s)", flush=True)
        for c, s, m in curve:
            print(f"  {name:9s} oracle calls beyond seed {c:3d}   C44 {m:7.2f} +- {s:.3f} GPa", flush=True)
        print(f"  {name}: calls to halve the C44 std: {runs[name]['calls_to_halve']}", flush=True)
    out = {"command": " ".join([sys.executable.split('/')[-1]] + sys.argv), "machine": platform.platform(),
           "cpu_threads": torch.get_num_threads(), "omp": os.environ.get("OMP_NUM_THREADS"),
           "args": vars(args), "seed_calls": n0, "c44_start_GPa": h0["property_mean"], "c44_std_start_GPa": std0,
           "target_std_GPa": target, "c44_emt_GPa": c44_emt, "runs": runs, "total_wall_s": time.perf_counter() - t_all}
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
