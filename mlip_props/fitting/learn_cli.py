"""``mlip-props learn``: the active-learning loop from the command line.

Wire-up (done by the CLI owner): ``register_subcommand("learn", "active learning", configure, run)``
or call :func:`register_subcommands` with the CLI's ``register_subcommand``.

Example::

    mlip-props learn --structure Cu --supercell 2 --oracle emt --workdir al_cu \\
        --temperatures 300 900 1500 --strains -0.05 0 0.05 --md-steps 150 --max-oracle-calls 200

Property-targeted (:mod:`.targeted`): label the elastic workflow's strained cells where the
committee disagrees most until the committee std of C44 is below 2 GPa::

    mlip-props learn --structure Cu --supercell 2 --target-property elastic --property-tolerance 2 \\
        --stress-weight 10 --workdir tl_cu --max-oracle-calls 60

``--pool frames.extxyz`` offers a fixed set of candidate frames every round instead of MD;
``--selection random`` picks uniformly among them (the control arm of a benchmark).

Exit codes: 0 finished (a stopping rule fired), 2 bad input, 130 interrupted (rerun the same
command to resume: no oracle call is repeated).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``learn`` options to ``parser``."""
    parser.add_argument("--structure", required=True,
                        help="seed structure: a file (any ASE format; several frames allowed) or a name (e.g. Cu)")
    parser.add_argument("--supercell", type=int, default=1, help="repeat a named/periodic seed n x n x n")
    parser.add_argument("--oracle", default="emt", help="potential spec of the oracle (default emt; e.g. pyscf:...)")
    parser.add_argument("--workdir", default="active_learning", help="checkpoints, logs, model.pt, learning curve")
    parser.add_argument("--test-set", default=None, help="labelled frames (extxyz) for the learning curve")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 900.0, 1500.0],
                        help="MD replica temperatures, K")
    parser.add_argument("--strains", type=float, nargs="+", default=[0.0], help="isotropic strains of MD replicas")
    parser.add_argument("--md-steps", type=int, default=200, help="MD steps per round")
    parser.add_argument("--sample-every", type=int, default=10, help="MD steps between offered frames")
    parser.add_argument("--timestep-fs", type=float, default=2.0)
    parser.add_argument("--no-pause", action="store_true",
                        help="MD replicas run the whole round (default: on-the-fly, a replica stops at its first "
                             "uncertain frame until the committee is retrained)")
    parser.add_argument("--rattle", type=int, default=0, help="rattled frames per round (0: none)")
    parser.add_argument("--strained", type=int, default=0, help="randomly strained frames per round (0: none)")
    parser.add_argument("--max-strain", type=float, default=0.05)
    parser.add_argument("--dimers", action="store_true", help="add dimer/trimer scans")
    parser.add_argument("--lower", type=float, default=None,
                        help="lower disagreement threshold, eV/A (default 0.05; targeted: 0, in the score's unit)")
    parser.add_argument("--upper", type=float, default=None,
                        help="upper disagreement threshold, eV/A (default 1.0; targeted: none)")
    parser.add_argument("--target-property", choices=("elastic", "eos", "phonons"), default=None,
                        help="property-targeted learning: propose the property workflow's own structures "
                             "(instead of MD) and stop when the property's committee std is below tolerance")
    parser.add_argument("--property-tolerance", type=float, default=None,
                        help="stop when the committee std of --property-quantity is below this (its unit)")
    parser.add_argument("--property-quantity", default=None,
                        help="monitored quantity (default: C44_GPa for elastic, B_GPa for eos, nu_X for phonons)")
    parser.add_argument("--property-score", choices=("stress", "pressure", "forces"), default=None,
                        help="disagreement score of the proposals (default: stress / pressure / forces)")
    parser.add_argument("--pool", default=None,
                        help="file of candidate frames (any ASE format): offered every round instead of MD")
    parser.add_argument("--selection", choices=("disagreement", "random"), default="disagreement",
                        help="random: control arm, uniform pick of unlabelled proposals (benchmarks)")
    parser.add_argument("--virial-lower", type=float, default=None,
                        help="eV/atom: also rank frames by the committee's virial spread, counted like a force "
                             "spread of --lower when it equals this (default: forces only)")
    parser.add_argument("--diversity", type=float, default=None,
                        help="diversity-aware batch picks (length = this x median candidate fingerprint distance; "
                             "0: plain greedy; default: the library default)")
    parser.add_argument("--balance-explorers", action="store_true",
                        help="a round's picks in turns over the explorers, each one's most uncertain first")
    parser.add_argument("--train-dtype", choices=("float64", "float32"), default=None,
                        help="warm-start training precision (default: the library default)")
    parser.add_argument("--max-per-round", type=int, default=8)
    parser.add_argument("--max-rounds", type=int, default=20)
    parser.add_argument("--max-oracle-calls", type=int, default=500)
    parser.add_argument("--patience", type=int, default=2, help="stop after this many rounds without selection")
    parser.add_argument("--target-uncertainty", type=float, default=None, help="eV/A; stop below it")
    parser.add_argument("--committee", type=int, default=4)
    parser.add_argument("--hidden", type=int, nargs="+", default=[16, 16])
    parser.add_argument("--stress-weight", type=float, default=None,
                        help="loss weight of the stress term (default: the fit default, 1; elastic targets "
                             "learn much faster with ~10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--restart", action="store_true", help="start afresh (default: resume the workdir)")


def _seed_structures(args: argparse.Namespace) -> list:
    from ..backend.batch import to_atoms
    from ..structures import load_structures

    frames = [to_atoms(a) for a in load_structures(args.structure)]
    if args.supercell > 1:
        frames = [a.repeat(args.supercell) if a.pbc.all() else a for a in frames]
    return frames


def _weights(args: argparse.Namespace) -> dict | None:
    w = getattr(args, "stress_weight", None)
    return None if w is None else {"stress": float(w)}


def run(args: argparse.Namespace) -> int:
    """Run or resume the loop; prints one JSON line per round and a summary. Returns an exit code."""
    import numpy as np

    from ..potentials import load_potential
    from .active import learn
    from .targeted import learn_targeted
    from .explore import ClusterScanExplorer, MDExplorer, RattleExplorer, StrainExplorer

    try:
        seeds = _seed_structures(args)
        oracle = load_potential(args.oracle)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    base = seeds[0]
    rng = np.random.default_rng(args.seed)
    seed_frames = []
    for k in range(3):  # the seed data: a few rattled copies of each structure
        for a in seeds:
            b = a.copy()
            b.positions += rng.normal(0.0, 0.05 * (k + 1), b.positions.shape)
            b.info["config_type"] = "seed_rattle"
            seed_frames.append(b)
    if getattr(args, "pool", None):
        import ase.io

        from .explore import PoolExplorer

        try:
            explorers: list[Any] = [PoolExplorer(ase.io.read(args.pool, index=":"))]
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        explorers = [MDExplorer(base, temperature_schedule=args.temperatures, strains=args.strains,
                                steps=args.md_steps, sample_every=args.sample_every, timestep_fs=args.timestep_fs,
                                pause_on_candidate=not args.no_pause)]
    if args.rattle:
        explorers.append(RattleExplorer(base, n=args.rattle))
    if args.strained and base.pbc.all():
        explorers.append(StrainExplorer(base, n=args.strained, max_strain=args.max_strain))
    if args.dimers:
        explorers.append(ClusterScanExplorer(sorted(set(base.get_chemical_symbols()))))
    if args.target_property:
        cell = _seed_structures(argparse.Namespace(structure=args.structure, supercell=1))[0]  # not repeated
        return _report(lambda: learn_targeted(
            seed_frames, cell, args.target_property, oracle, args.workdir, tolerance=args.property_tolerance,
            quantity=args.property_quantity, score=args.property_score, resume=not args.restart, progress=True,
            lower_eV_A=0.0 if args.lower is None else args.lower,
            upper_eV_A=float("inf") if args.upper is None else args.upper,
            max_per_round=args.max_per_round, max_rounds=args.max_rounds, max_oracle_calls=args.max_oracle_calls,
            patience=args.patience, committee=args.committee, hidden=tuple(args.hidden), seed=args.seed,
            weights=_weights(args)))
    return _report(lambda: learn(
        seed_frames, oracle, explorers, args.workdir, test_frames=args.test_set, resume=not args.restart,
        lower_eV_A=0.05 if args.lower is None else args.lower,
        upper_eV_A=1.0 if args.upper is None else args.upper, max_per_round=args.max_per_round,
        max_rounds=args.max_rounds, max_oracle_calls=args.max_oracle_calls, patience=args.patience,
        target_uncertainty_eV_A=args.target_uncertainty, committee=args.committee,
        hidden=tuple(args.hidden), seed=args.seed, weights=_weights(args), progress=True,
        selection=getattr(args, "selection", "disagreement"), virial_lower_eV=getattr(args, "virial_lower", None),
        balance_explorers=getattr(args, "balance_explorers", False),
        **{k: v for k, v in (("diversity", getattr(args, "diversity", None)),
                             ("train_dtype", getattr(args, "train_dtype", None))) if v is not None}))


def _report(loop: Callable[[], Any]) -> int:
    """Run a learning loop; print its result as JSON (exit 0), a clear error (2) or how to resume (130)."""
    try:
        res = loop()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    print(json.dumps(res.to_dict(), default=str))
    return 0


def register_subcommands(register: Callable[..., Any]) -> None:
    """Hook for :mod:`mlip_props.cli`: ``register(name, help, configure, handler)``."""
    register("learn", "active learning: committee-driven on-the-fly fitting", configure, run)
