"""Pool protocol (the default): committee and random selection from the SAME fixed pool.

Per seed, a fixed pool of unlabelled frames from EMT Langevin MD of the cell at 300, 900, 1500 K
on cells at -5, 0, +5 % isotropic strain (:func:`emt_pool`, own seed); one run of
:func:`mlip_props.fitting.active.learn` per arm with a :class:`PoolExplorer` on that pool,
identical seed data (3 rattled cells + the isolated atom), committee, warm-start schedule and
frames per round; the arms differ only in ``selection`` ("disagreement": committee force
disagreement + de-duplication; "random": uniform among unlabelled pool frames). ``--arms
true_error`` runs a bound instead (:class:`TrueErrorPool`). Options for both arms:
``--pool-strained N`` (near-perfect strained cells in the pool, :func:`strained_frames`),
``--pool-extra-300k N``, ``--seed-strained N``, ``--train-dtype``; for the active arm only:
``--virial-lower``, ``--diversity``, ``--frame-reduce``. Each (seed, arm) may run as its own
process; rerun the same command to resume.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from mlip_props.backend import emt_oracle, evaluate
from mlip_props.fitting import preset
from mlip_props.fitting.active import learn
from mlip_props.fitting.explore import PoolExplorer, strain_cell

from .common import (cached_frames, cached_test_set, command_line, cu_cell, langevin, learn_settings, machine,
                     seed_frames)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("pool protocol")
    g.add_argument("--pool-per", type=int, default=40, help="pool frames per (strain, T) trajectory")
    g.add_argument("--pool-strained", type=int, default=0,
                   help="add this many near-perfect homogeneously strained cells to the pool")
    g.add_argument("--pool-extra-300k", type=int, default=0,
                   help="add this many frames per strain from longer 300 K EMT MD (a pool dominated by easy "
                        "near-equilibrium frames, as long target-temperature exploration gives)")
    g.add_argument("--diversity", type=float, default=0.0, help="active arm: diversity-aware batch selection")
    g.add_argument("--frame-reduce", choices=("max", "rms"), default="max",
                   help="active arm: per-atom force spread reduced over a frame by max or rms")
    g.add_argument("--compare", nargs="+", default=None, metavar="LABEL=WORKDIR",
                   help="several active-arm variants (each WORKDIR with seed*/disagreement and seed*/random) on "
                        "one plot and table against random (taken from the first WORKDIR)")


def emt_pool(cell, seed: int, temps=(300.0, 900.0, 1500.0), strains=(-0.05, 0.0, 0.05), n_per: int = 40,
             every: int = 20, equil: int = 100):
    """The exploration trajectories of the pool protocol: ASE Langevin MD with EMT (2 fs, friction
    0.02) of the cell at every (strain, T), a frame every ``every`` steps after ``equil``
    steps; own seed (never the test set's). Positions only: the pool is unlabelled, a frame costs
    an oracle call only when a selection rule picks it."""
    rng = np.random.default_rng(5000 + seed)
    out = []
    for s in strains:
        for t in temps:
            a, dyn = langevin(cell, s, t, rng)
            dyn.run(equil)
            for _ in range(n_per):
                dyn.run(every)
                b = a.copy()
                b.calc = None
                b.wrap()
                b.info["config_type"] = f"pool_s{s:+.2f}_{t:.0f}K"
                out.append(b)
    return out


def strained_frames(cell, seed: int, n: int, max_linear: float = 0.025, max_shear: float = 0.02,
                    rattles=(0.01, 0.03, 0.05)):
    """Near-perfect crystals under small homogeneous strains (the E(V) curvature and elastic
    response that MD frames at three fixed volumes barely constrain): isotropic linear strain
    uniform in +-``max_linear`` plus, for every other cell, symmetric shear/normal components
    uniform in +-``max_shear``; Gaussian rattle cycling through ``rattles`` (A). Own seed."""
    rng = np.random.default_rng(9000 + seed)
    out = []
    for k in range(n):
        e = np.eye(3) * rng.uniform(-max_linear, max_linear)
        if k % 2:
            g = rng.uniform(-max_shear, max_shear, (3, 3))
            e = e + 0.5 * (g + g.T)
        a = strain_cell(cell, e)
        a.positions += rng.normal(0, rattles[k % len(rattles)], a.positions.shape)
        a.wrap()
        a.info["config_type"] = "strained" if k % 2 else "volume"
        out.append(a)
    return out


class TrueErrorPool(PoolExplorer):
    """The pool with each frame's score set to the ACTUAL max per-atom force error of the committee
    mean (eV/A) against EMT labels of every pool frame (computed once, not counted as oracle
    calls): what selection could achieve if the committee disagreement were a perfect error
    estimate. A bound for the benchmark, not a method."""

    name = "pool_true_error"

    def __init__(self, frames):
        super().__init__(frames)
        self.ref = evaluate(emt_oracle(), self.frames, ("energy", "forces")).forces_eV_A

    def propose(self, model, round_index, rng, thresholds):
        p = super().propose(model, round_index, rng, thresholds)
        r = evaluate(model, p.frames, ("energy", "forces"))
        err = []
        for f, ref in zip(r.forces_eV_A, self.ref):
            fm = f.mean(0) if f.ndim == 3 else f
            err.append(float(np.sqrt(((fm - ref) ** 2).sum(-1)).max()))
        p.disagreement_eV_A = np.asarray(err)
        return p


def run_pool(args: argparse.Namespace) -> None:
    """For each seed and arm, :func:`learn` on the SAME fixed pool of EMT MD frames
    (:func:`emt_pool`, :class:`PoolExplorer`) with identical settings (seed data, committee,
    warm-start schedule, per-round count, test set); the arms differ only in the selection rule
    (committee disagreement + de-duplication vs uniform random). Resumable: rerun the command."""
    cell = cu_cell(args.reps)
    desc = preset(["Cu"]).to_dict()  # the fitting benchmark's default 20 symmetry functions, cutoff 5 A
    tests = cached_test_set(args, cell)
    for seed in args.seeds:
        t0 = time.perf_counter()
        tag = f"pool_{args.pool_per}_{args.pool_strained}"
        if args.pool_extra_300k:
            tag += f"_{args.pool_extra_300k}"

        def make_pool():
            extra = emt_pool(cell, seed + 100, temps=(300.0,), n_per=args.pool_extra_300k) \
                if args.pool_extra_300k else []
            for a in extra:
                a.info["config_type"] += "_long"
            return emt_pool(cell, seed, n_per=args.pool_per) + strained_frames(cell, seed, args.pool_strained) + extra

        pool = cached_frames(Path(args.workdir) / f"seed{seed}" / f"{tag}.extxyz", make_pool)
        t_pool = time.perf_counter() - t0
        for arm in args.arms:
            wd = Path(args.workdir) / f"seed{seed}" / arm
            wd.mkdir(parents=True, exist_ok=True)
            (wd / "run.json").write_text(json.dumps({
                "command": command_line(), "protocol": "pool", "seed": seed, "arm": arm,
                "pool_size": len(pool), "pool_s": t_pool, "n_test_frames": len(tests), "n_atoms": len(cell),
                "machine": machine(args.threads)}, indent=1))
            t0 = time.perf_counter()
            explorer = PoolExplorer(pool) if arm != "true_error" else TrueErrorPool(pool)
            res = learn(seed_frames(cell, seed, args.seed_strained), emt_oracle(), [explorer], wd, test_frames=tests,
                        selection="disagreement" if arm == "true_error" else arm, diversity=args.diversity,
                        frame_reduce=args.frame_reduce, max_per_round=args.max_per_round, max_rounds=args.max_rounds,
                        patience=2, **learn_settings(args, seed, desc))
            done = json.loads((wd / "run.json").read_text())
            done.update({"stop": res.stop_reason, "timings_s": res.timings_s, "wall_s": time.perf_counter() - t0,
                         "load_avg_end": os.getloadavg()})
            (wd / "run.json").write_text(json.dumps(done, indent=1, default=str))
