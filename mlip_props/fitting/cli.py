"""``mlip-props sample`` and ``mlip-props fit``: oracle-labelled data and fitted committees.

Examples::

    mlip-props sample Cu --oracle emt --n 300 --out cu.extxyz --hessians 8
    mlip-props fit cu.extxyz --out cu.pt --committee 4 --weights energy=10,forces=1,stress=0.1

Exit codes: 0 done, 2 bad input (missing file, unknown structure/oracle, bad weights).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from .sampling import STRATEGIES


def configure_sample(p: argparse.ArgumentParser) -> None:
    p.add_argument("structure", help="base structure: a file any ASE reads, or a name (Cu, Cu:hcp, H2O)")
    p.add_argument("--oracle", default="emt", help="potential spec labelling the frames (default: emt)")
    p.add_argument("--n", type=int, default=200, help="number of labelled frames (default 200)")
    p.add_argument("--out", required=True, help="output extended-XYZ file")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES),
                   help=f"sampling strategies (default: {' '.join(STRATEGIES)})")
    p.add_argument("--max-atoms", type=int, default=32, help="largest supercell, atoms (default 32)")
    p.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 800.0, 1500.0], help="MD temperatures, K")
    p.add_argument("--hessians", type=int, default=0, help="frames that also get a finite-difference Hessian")
    p.add_argument("--seed", type=int, default=0)


def run_sample(args: argparse.Namespace) -> int:
    from ..potentials import load_potential
    from ..structures import load_structure
    from .sampling import sample

    try:
        base = load_structure(args.structure)
        oracle = load_potential(args.oracle)
    except (ValueError, FileNotFoundError) as exc:
        print(f"mlip-props sample: error: {exc}", file=sys.stderr)
        return 2
    frames = sample(base, oracle, n=args.n, strategies=args.strategies, out_path=args.out, seed=args.seed,
                    max_atoms=args.max_atoms, temperatures=args.temperatures, n_hessians=args.hessians)
    if not args.quiet:
        print(f"wrote {len(frames)} labelled frames to {args.out}")
    return 0


def configure_fit(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="labelled frames (extended XYZ with energy, forces, [stress, hessian])")
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    p.add_argument("--committee", type=int, default=1, help="committee members (default 1)")
    p.add_argument("--weights", default=None, help="loss weights, e.g. energy=10,forces=1,stress=0.1,hessian=0.1,asr=1")
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--hidden", type=int, nargs="+", default=[32, 32], help="hidden layer widths")
    p.add_argument("--direct-forces", action="store_true", help="add a direct-force head (sum rule not built in)")
    p.add_argument("--float32", action="store_true", help="train in float32 (default float64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default=None, help="checkpoint file (resumable with --resume)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--max-time", type=float, default=None, help="stop training after this many seconds")


def run_fit(args: argparse.Namespace) -> int:
    import torch

    from .training import fit, parse_weights

    try:
        weights = parse_weights(args.weights)
    except ValueError as exc:
        print(f"mlip-props fit: error: {exc}", file=sys.stderr)
        return 2
    try:
        _, report = fit(args.data, args.out, committee=args.committee, weights=weights, epochs=args.epochs,
                        hidden=tuple(args.hidden), direct_forces=args.direct_forces, seed=args.seed,
                        dtype=torch.float32 if args.float32 else torch.float64, checkpoint=args.checkpoint,
                        resume=args.resume, max_time_s=args.max_time, progress=not args.quiet)
    except (ValueError, FileNotFoundError) as exc:
        print(f"mlip-props fit: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(report.summary())
        print(f"model written to {args.out}")
    return 0


def register_subcommands(register: Callable[..., Any]) -> None:
    register("sample", "oracle-labelled training frames around a structure", configure_sample, run_sample)
    register("fit", "fit a Behler-Parrinello potential or committee", configure_fit, run_fit)
