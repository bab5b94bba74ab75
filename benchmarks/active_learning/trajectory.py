"""Trajectory protocol: on-the-fly learning, and random picks from the trajectories it explored.

* ``disagreement``: :func:`~mlip_props.fitting.active.learn` with committee-driven batched MD
  (replicas at -5, 0, +5 % isotropic strain x 300, 900, 1500 K, ``--md-steps`` steps of 2 fs per
  round, a frame every ``--sample-every`` steps) with per-replica pausing (``pause_on_candidate``:
  a replica whose frame the committee is unsure of, disagreement >= ``--lower``, stops there until
  the next round; trusted replicas go on), plus ``--strain-n`` random strained cells (+-5 %) per
  round. Every explored frame is recorded (``pool.extxyz``).
* ``random``: the SAME loop (seed data, committee, warm starts, budget, and the same number of
  picks in every round as the disagreement run made: ``per_round_schedule``) on a
  :class:`PoolExplorer` over all frames the disagreement run recorded (or, with
  ``--pool-stop-uncertainty``, only those explored before its target-uncertainty stopping rule
  would have ended it), picking uniformly. Needs that run finished first.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

from mlip_props.backend import emt_oracle
from mlip_props.fitting import preset
from mlip_props.fitting.active import learn
from mlip_props.fitting.explore import MDExplorer, PoolExplorer, StrainExplorer

from .common import cached_test_set, command_line, cu_cell, learn_settings, machine, seed_frames


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("trajectory protocol")
    g.add_argument("--strain-n", type=int, default=4, help="strained cells proposed per round")
    g.add_argument("--patience", type=int, default=3, help="rounds without selection to stop")
    g.add_argument("--pool-stop-uncertainty", type=float, default=None,
                   help="random arm: use only the trajectories the committee run explored until its stopping "
                        "rule 'target uncertainty' (this value, eV/A: the round's 95 %% quantile of the "
                        "disagreement below it) would have ended it; then --max-per-round picks per round")
    g.add_argument("--target-uncertainty", type=float, default=None,
                   help="committee arm: stop when a round's 95 %% disagreement quantile is below this (eV/A)")
    g.add_argument("--extra-random", nargs="+", default=None, metavar="LABEL=WORKDIR",
                   help="--summary: further random arms (WORKDIR/seed*/random) on the same plot and table")
    g.add_argument("--al-workdir", default=None,
                   help="random arm: workdir of the finished committee runs (default --workdir)")


def _random_arm_pool(args: argparse.Namespace, seed: int) -> tuple[list, list[int]]:
    """The frames the finished committee run of ``seed`` recorded and its picks per round (cut at
    its target-uncertainty stopping point with ``--pool-stop-uncertainty``)."""
    import ase.io

    al = Path(args.al_workdir or args.workdir) / f"seed{seed}" / "disagreement"
    if not (al / "run.json").is_file() or "stop" not in json.loads((al / "run.json").read_text()):
        raise SystemExit(f"run the disagreement arm of seed {seed} to its end first ({al})")
    frames = ase.io.read(al / "pool.extxyz", index=":")
    al_hist = [h for h in json.loads((al / "state.json").read_text())["history"] if h["round"] >= 0]
    schedule = [int(h["n_selected"]) for h in al_hist]
    if args.pool_stop_uncertainty is not None:  # where target_uncertainty would have stopped it
        stop = next((h["round"] for h in al_hist if h["uncertainty_q_eV_A"] < args.pool_stop_uncertainty),
                    al_hist[-1]["round"])
        frames = [a for a in frames if int(a.info["al_round"]) <= stop]
        schedule = schedule[: stop + 1] + [args.max_per_round]
    return frames, schedule


def run_trajectory(args: argparse.Namespace) -> None:
    """Each seed's arms in the order given (``disagreement`` before ``random``); module docstring."""
    import ase.io

    cell = cu_cell(args.reps)
    desc = preset(["Cu"]).to_dict()
    tests = cached_test_set(args, cell)
    for seed in args.seeds:
        for arm in args.arms:
            wd = Path(args.workdir) / f"seed{seed}" / arm
            wd.mkdir(parents=True, exist_ok=True)
            info = {"command": command_line(), "protocol": "trajectory", "seed": seed, "arm": arm,
                    "n_test_frames": len(tests), "n_atoms": len(cell), "machine": machine(args.threads)}
            rounds = {"max_per_round": args.max_per_round, "max_rounds": args.max_rounds}
            if arm == "disagreement":
                explorers = [MDExplorer(cell, temperature_schedule=[300.0, 900.0, 1500.0], strains=(-0.05, 0.0, 0.05),
                                        steps=args.md_steps, sample_every=args.sample_every, pause_on_candidate=True),
                             StrainExplorer(cell, n=args.strain_n, max_strain=0.05, rattle=0.05)]
                if args.target_uncertainty is not None:
                    rounds["target_uncertainty_eV_A"] = args.target_uncertainty
            elif arm == "random":  # the same rounds: as many picks per round as the committee run made
                frames, schedule = _random_arm_pool(args, seed)
                explorers = [PoolExplorer(frames)]
                info["pool_size"] = len(explorers[0].frames)
                info["per_round_schedule"] = schedule
                rounds.update(per_round_schedule=schedule,
                              max_rounds=len(schedule) if args.pool_stop_uncertainty is None else args.max_rounds)
            else:
                raise SystemExit(f"trajectory protocol: arm {arm!r} not available")
            (wd / "run.json").write_text(json.dumps(info, indent=1))
            t0 = time.perf_counter()
            res = learn(seed_frames(cell, seed, args.seed_strained), emt_oracle(), explorers, wd, test_frames=tests,
                        selection=arm, keep_pool=(arm == "disagreement"), patience=args.patience, **rounds,
                        **learn_settings(args, seed, desc))
            info.update({"stop": res.stop_reason, "timings_s": res.timings_s, "wall_s": time.perf_counter() - t0,
                         "load_avg_end": os.getloadavg()})
            if arm == "disagreement":
                pool = ase.io.read(wd / "pool.extxyz", index=":")
                kinds = Counter(a.info.get("config_type", "") for a in pool)
                info.update({"pool_size": len(pool), "pool_by_config_type": dict(kinds)})
            (wd / "run.json").write_text(json.dumps(info, indent=1, default=str))
