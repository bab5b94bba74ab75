"""The command line of the Cu active-learning benchmark: options shared by the protocols, one
option group per protocol, and the dispatch to the protocol modules."""
from __future__ import annotations

import argparse
import json

import torch

from . import __doc__ as OVERVIEW
from . import onthefly, pool, trajectory
from .common import ARMS
from .summary import arm_properties, compare_pool, summarise_arms


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=OVERVIEW, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", choices=("pool", "trajectory", "onthefly"), default="pool",
                   help="pool: both arms select from the same fixed EMT-MD pool with the same loop (default); "
                        "trajectory: on-the-fly committee MD with per-replica pausing, random arm = the same "
                        "loop drawing from that run's recorded trajectories; onthefly: committee MD without "
                        "pausing, random arm = frames drawn from its trajectories, each fitted from scratch")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", choices=ARMS + ("true_error",), default=list(ARMS),
                   help="pool and trajectory protocols: which arms to run; true_error (pool): a bound, not a "
                        "method (ranks the pool by the committee mean's ACTUAL max per-atom force error, from "
                        "EMT labels of the whole pool that are not counted as oracle calls)")
    p.add_argument("--reps", type=int, default=2, help="cubic cell repeats (2: 32 atoms)")
    p.add_argument("--md-steps", type=int, default=60)
    p.add_argument("--sample-every", type=int, default=10)
    p.add_argument("--lower", type=float, default=0.03)
    p.add_argument("--upper", type=float, default=1.0)
    p.add_argument("--max-per-round", type=int, default=6)
    p.add_argument("--max-rounds", type=int, default=12)
    p.add_argument("--budget", type=int, default=80)
    p.add_argument("--committee", type=int, default=3)
    p.add_argument("--hidden", type=int, nargs="+", default=[16, 16])
    p.add_argument("--initial-epochs", type=int, default=150)
    p.add_argument("--retrain-epochs", type=int, default=40)
    p.add_argument("--test-per-set", type=int, default=6)
    p.add_argument("--target", type=float, default=40.0, help="force RMSE target, meV/A")
    p.add_argument("--seed-strained", type=int, default=0,
                   help="pool and trajectory protocols: strained cells in the seed data")
    p.add_argument("--virial-lower", type=float, default=None,
                   help="pool and trajectory protocols: also rank by the committee's virial-per-atom spread (eV), "
                        "this its trust level")
    p.add_argument("--train-dtype", choices=("float64", "float32"), default="float64",
                   help="warm-start training precision (both arms)")
    p.add_argument("--summary", action="store_true",
                   help="pool and trajectory protocols: summarise --workdir into --out/--plot")
    p.add_argument("--properties", action="store_true",
                   help="pool and trajectory protocols: properties of the arms' models")
    p.add_argument("--workdir", default="/tmp/al_cu_bench")
    p.add_argument("--out", default="al_cu.json")
    p.add_argument("--plot", default="docs/active_learning_cu.png")
    p.add_argument("--threads", type=int, default=1)
    for protocol in (pool, trajectory, onthefly):
        protocol.add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.protocol == "onthefly" or args.refit_from or args.merge:  # both read on-the-fly results
        if args.refit_from:
            onthefly.refit_al(args)
        elif args.merge:
            rep = onthefly.summarise(args.merge, args.out, args.plot, args.target)
            print(json.dumps(rep["summary"], indent=1, default=str))
        else:
            onthefly.run_onthefly(args)
    elif args.compare:
        rep = compare_pool(dict(x.split("=", 1) for x in args.compare), args.out, args.plot, args.target)
        print(json.dumps(rep["summary"], indent=1, default=str))
    elif args.summary:
        on_the_fly = args.protocol == "trajectory"
        title = ("Cu EMT: on-the-fly learning vs random from its trajectories" if on_the_fly
                 else "Cu EMT, 32-atom cells: selection from the same MD pool")
        rep = summarise_arms(args.workdir, args.out, args.plot, args.target, title,
                             dict(x.split("=", 1) for x in args.extra_random or []),
                             "random, all its trajectories" if on_the_fly else "random")
        print(json.dumps(rep["summary"], indent=1, default=str))
    elif args.properties:
        arm_properties(args)
    elif args.protocol == "trajectory":
        trajectory.run_trajectory(args)
    else:
        pool.run_pool(args)
    return 0
