"""Active learning vs random selection for Cu with the EMT oracle (issue 7 acceptance benchmark).

Default protocol ``pool`` (fair comparison: same candidate frames, same loop, same training):
  per seed, a fixed pool of unlabelled frames from EMT Langevin MD of the 32-atom cell at 300, 900,
  1500 K on cells at -5, 0, +5 % isotropic strain (:func:`emt_pool`, own seed); two runs of
  :func:`mlip_props.fitting.active.learn` with a :class:`PoolExplorer` on that pool, identical seed
  data (3 rattled cells + the isolated atom), committee, warm-start schedule and frames per round;
  they differ only in ``selection`` ("disagreement": committee force disagreement + de-duplication;
  "random": uniform among unlabelled pool frames). Each (seed, arm) may run as its own process
  (``--seeds S --arms A``; rerun to resume); ``--summary`` writes the mean curves, the oracle calls
  to reach given errors for both arms and their ratio, and the plot; ``--properties`` a0, B and
  X-point phonons of each arm's committee mean vs EMT.

    python benchmarks/active_learning_cu.py --seeds 0 --arms disagreement --workdir /tmp/al ...
    python benchmarks/active_learning_cu.py --summary --workdir /tmp/al --out al.json --plot docs/active_learning_cu.png

  Options of the third session (identical for both arms unless noted): ``--pool-strained N`` adds N
  near-perfect homogeneously strained cells to the pool (:func:`strained_frames`),
  ``--seed-strained N`` strained cells to the seed data, ``--train-dtype float32`` float32 warm
  starts; active arm only: ``--virial-lower`` (committee virial spread in the score),
  ``--diversity``, ``--frame-reduce``. ``--arms true_error`` runs a bound (the pool ranked by the
  committee mean's actual force error, labels of the whole pool not counted). ``--compare
  LABEL=WORKDIR ...`` puts several active variants and random on one plot and table.

Protocol ``trajectory`` (fourth session; :func:`run_trajectory`): the committee arm explores by
committee-driven MD with per-replica pausing (on the fly) and records every frame; the random arm
runs the same loop, with the same number of picks per round, on those frames (all of them, or with
``--pool-stop-uncertainty`` only those explored before the committee run's target-uncertainty
stopping rule would have ended it). ``--summary --extra-random LABEL=WORKDIR`` puts both random
arms on one plot.

    python benchmarks/active_learning_cu.py --protocol trajectory --seeds 0 --arms disagreement ...
    python benchmarks/active_learning_cu.py --protocol trajectory --seeds 0 --arms random ...
    python benchmarks/active_learning_cu.py --protocol trajectory --summary --workdir W --plot P

Protocol ``onthefly`` (the older comparison), for each seed:
  1. active learning (:func:`mlip_props.fitting.active.learn`): 32-atom fcc Cu cells, seed data
     = a few rattled cells + the isolated atom; exploration = batched committee MD (replicas at
     -5 %, 0, +5 % isotropic strain, temperature schedule up to ``--t-max`` K, above the 1500 K
     target) + random strains up to +-5 %; thresholds ``--lower``/``--upper`` eV/A.
     Every explored frame is kept (``pool.extxyz``).
  2. random selection from the SAME exploration trajectories (the pool): n frames drawn
     uniformly, labelled by EMT, a committee fitted from scratch with the same architecture and
     the seed data, for n on a grid; test error vs n.
The fixed test set comes from independent ASE Langevin MD with EMT at 300, 900 and 1500 K on the
equilibrium cell and at 900 K on +-5 % strained cells (its own seed, never seen in training).

Reported: oracle calls to reach ``--target`` meV/A (AL vs random, mean over seeds, interpolated
on the log-error curves), wall time split into oracle / training / exploration / selection, and
the lattice constant, bulk modulus and X-point phonon frequencies of the final AL potential vs
EMT. Output: JSON (``--out``) and a plot with both curves (``--plot``).

    python benchmarks/active_learning_cu.py --seeds 0 1 2 --out al.json --plot docs/active_learning_cu.png
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.build import bulk

from mlip_props.backend import emt_oracle, evaluate
from mlip_props.fitting import fit, label_frames, preset
from mlip_props.fitting.active import force_rmse_meV_A, learn, plot_learning_curve
from mlip_props.fitting.explore import MDExplorer, PoolExplorer, StrainExplorer, strain_cell


def test_set(cell, n_per: int, seed: int = 12345):
    """Independent EMT Langevin MD: 300/900/1500 K at a0, 900 K at -5 % and +5 % strain."""
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    rng = np.random.default_rng(seed)
    out = []
    for t, s in [(300, 0.0), (900, 0.0), (1500, 0.0), (900, -0.05), (900, 0.05)]:
        a = strain_cell(cell, s)
        a.calc = EMT()
        MaxwellBoltzmannDistribution(a, temperature_K=t, rng=rng)
        dyn = Langevin(a, 2 * units.fs, temperature_K=t, friction=0.02, rng=rng)
        dyn.run(150)
        for _ in range(n_per):
            dyn.run(25)
            b = a.copy()
            b.calc = None
            out.append(b)
    r = evaluate(emt_oracle(), out, ("energy", "forces", "stress"))
    return label_frames(out, r.energies_eV, r.forces_eV_A, r.stress_eV_A3)


def emt_pool(cell, seed: int, temps=(300.0, 900.0, 1500.0), strains=(-0.05, 0.0, 0.05), n_per: int = 40,
             every: int = 20, equil: int = 100):
    """The exploration trajectories of the pool protocol: ASE Langevin MD with EMT (2 fs, friction
    0.02) of the 32-atom cell at every (strain, T), a frame every ``every`` steps after ``equil``
    steps; own seed (never the test set's). Positions only: the pool is unlabelled, a frame costs
    an oracle call only when a selection rule picks it."""
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    rng = np.random.default_rng(5000 + seed)
    out = []
    for s in strains:
        for t in temps:
            a = strain_cell(cell, s)
            a.calc = EMT()
            MaxwellBoltzmannDistribution(a, temperature_K=t, rng=rng)
            dyn = Langevin(a, 2 * units.fs, temperature_K=t, friction=0.02, rng=rng)
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


def seed_frames(cell, seed: int, n_strained: int = 0):
    """3 rattled copies of ``cell`` (0.03, 0.08, 0.15 A) and ``n_strained`` cells at alternating
    isotropic linear strain -1.5 %, +1.5 % (rattle 0.02 A)."""
    rng = np.random.default_rng(1000 + seed)
    out = []
    for amp in (0.03, 0.08, 0.15):
        a = cell.copy()
        a.positions += rng.normal(0, amp, a.positions.shape)
        a.info["config_type"] = "seed_rattle"
        out.append(a)
    for k in range(n_strained):
        a = strain_cell(cell, 0.015 * (-1) ** (k + 1))
        a.positions += rng.normal(0, 0.02, a.positions.shape)
        a.info["config_type"] = "seed_strained"
        out.append(a)
    return out


def crossing(x, y, target):
    """Smallest x where the (log-interpolated) curve y(x) first reaches <= target; None if never."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    for k in range(len(x)):
        if y[k] <= target:
            if k == 0:
                return float(x[0])
            f = (np.log(y[k - 1]) - np.log(target)) / (np.log(y[k - 1]) - np.log(y[k]))
            return float(x[k - 1] + f * (x[k] - x[k - 1]))
    return None


def _props(pot) -> dict:
    """a0 (A), B (GPa) from equation_of_state, X-point TA/LA (THz) from phonons (4x4x4 supercell of
    the primitive fcc cell, X = (1/2, 0, 1/2) in its reciprocal basis)."""
    from mlip_props.properties.eos import equation_of_state
    from mlip_props.properties.phonons import phonons

    prim = bulk("Cu", "fcc", a=3.6)
    e = equation_of_state(pot, prim)
    ph = phonons(pot, prim, supercell=4, band_structure=False, mesh=[4, 4, 4], group_velocity_mesh=None)
    fx = np.sort(ph.frequencies_at([[0.5, 0.0, 0.5]])[0])
    return {"a0_A": float((4 * e.v0_A3_per_atom) ** (1 / 3)), "bulk_modulus_GPa": float(e.bulk_modulus_GPa),
            "X_TA_THz": float(fx[0]), "X_LA_THz": float(fx[2])}


def properties_vs_emt(model, emt_ref: dict | None = None):
    from mlip_props.fitting import CommitteeMean

    out = {"emt": emt_ref or _props(emt_oracle()), "al": _props(CommitteeMean(model))}
    out["rel_err"] = {k: out["al"][k] / out["emt"][k] - 1 for k in out["emt"]}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--reps", type=int, default=2, help="cubic cell repeats (2: 32 atoms)")
    p.add_argument("--t-max", type=float, default=2000.0)
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
    p.add_argument("--random-n", type=int, nargs="+", default=[10, 20, 40, 70])
    p.add_argument("--random-epochs", type=int, default=150)
    p.add_argument("--test-per-set", type=int, default=6)
    p.add_argument("--target", type=float, default=40.0, help="force RMSE target, meV/A")
    p.add_argument("--no-properties", action="store_true")
    p.add_argument("--workdir", default="/tmp/al_cu_bench")
    p.add_argument("--out", default="al_cu.json")
    p.add_argument("--plot", default="docs/active_learning_cu.png")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--merge", nargs="+", default=None, help="merge per-seed JSON files into --out/--plot")
    p.add_argument("--refit-from", default=None,
                   help="per-seed JSON of a finished run: refit from scratch on the first n AL-labelled frames "
                        "(n from the random grid, same fit settings as random) and add the curve to that file")
    p.add_argument("--protocol", choices=("pool", "trajectory", "onthefly"), default="pool",
                   help="pool: both arms select from the same fixed EMT-MD pool with the same loop (default); "
                        "trajectory: on-the-fly committee MD with per-replica pausing, random arm = the same "
                        "loop drawing from that run's recorded trajectories; "
                        "onthefly: the first session's version (random arm fitted from scratch)")
    p.add_argument("--strain-n", type=int, default=4, help="trajectory protocol: strained cells proposed per round")
    p.add_argument("--patience", type=int, default=3, help="trajectory protocol: rounds without selection to stop")
    p.add_argument("--pool-stop-uncertainty", type=float, default=None,
                   help="trajectory protocol, random arm: use only the trajectories the committee run explored "
                        "until its stopping rule 'target uncertainty' (this value, eV/A: the round's 95 %% quantile "
                        "of the disagreement below it) would have ended it; then 8 picks per round")
    p.add_argument("--target-uncertainty", type=float, default=None,
                   help="trajectory protocol, committee arm: stop when a round's 95 %% disagreement quantile "
                        "is below this (eV/A)")
    p.add_argument("--extra-random", nargs="+", default=None, metavar="LABEL=WORKDIR",
                   help="--summary: further random arms (WORKDIR/seed*/random) on the same plot and table")
    p.add_argument("--al-workdir", default=None,
                   help="trajectory protocol, random arm: workdir of the finished committee runs (default --workdir)")
    p.add_argument("--arms", nargs="+", choices=ARMS + ("true_error",), default=list(ARMS),
                   help="pool protocol: which arms to run; true_error: a bound, not a method (ranks the pool by "
                        "the committee mean's ACTUAL max per-atom force error, from EMT labels of the whole pool "
                        "that are not counted as oracle calls)")
    p.add_argument("--pool-per", type=int, default=40, help="pool frames per (strain, T) trajectory")
    p.add_argument("--pool-strained", type=int, default=0,
                   help="pool protocol: add this many near-perfect homogeneously strained cells to the pool")
    p.add_argument("--pool-extra-300k", type=int, default=0,
                   help="pool protocol: add this many frames per strain from longer 300 K EMT MD (a pool "
                        "dominated by easy near-equilibrium frames, as long target-temperature exploration gives)")
    p.add_argument("--seed-strained", type=int, default=0, help="pool protocol: strained cells in the seed data")
    p.add_argument("--virial-lower", type=float, default=None,
                   help="active arm: also rank by the committee's virial-per-atom spread (eV), this its trust level")
    p.add_argument("--diversity", type=float, default=0.0, help="active arm: diversity-aware batch selection")
    p.add_argument("--frame-reduce", choices=("max", "rms"), default="max",
                   help="active arm: per-atom force spread reduced over a frame by max or rms")
    p.add_argument("--train-dtype", choices=("float64", "float32"), default="float64",
                   help="warm-start training precision (both arms)")
    p.add_argument("--properties", action="store_true", help="pool protocol: properties of the arms' models")
    p.add_argument("--summary", action="store_true", help="pool protocol: summarise --workdir into --out/--plot")
    p.add_argument("--compare", nargs="+", default=None, metavar="LABEL=WORKDIR",
                   help="pool protocol: several active-arm variants (each WORKDIR with seed*/disagreement and "
                        "seed*/random) on one plot and table against random (taken from the first WORKDIR)")
    args = p.parse_args()
    args.merge_only = False
    if args.protocol == "trajectory" and not (args.summary or args.compare or args.properties):
        torch.set_num_threads(args.threads)
        run_trajectory(args)
        return 0
    if args.protocol in ("pool", "trajectory"):
        torch.set_num_threads(args.threads)
        if args.compare:
            rep = compare_pool(dict(x.split("=", 1) for x in args.compare), args.out, args.plot, args.target)
            print(json.dumps(rep["summary"], indent=1, default=str))
        elif args.summary:
            title = ("Cu EMT: on-the-fly learning vs random from its trajectories"
                     if args.protocol == "trajectory" else "Cu EMT, 32-atom cells: selection from the same MD pool")
            rep = summarise_pool(args.workdir, args.out, args.plot, args.target, title,
                                 dict(x.split("=", 1) for x in args.extra_random or []),
                                 "random, all its trajectories" if args.protocol == "trajectory" else "random")
            print(json.dumps(rep["summary"], indent=1, default=str))
        elif args.properties:
            pool_properties(args)
        else:
            run_pool(args)
        return 0
    if args.refit_from:
        torch.set_num_threads(args.threads)
        refit_al(args)
        return 0
    if args.merge:
        rep = summarise(args.merge, args.out, args.plot, args.target)
        print(json.dumps(rep["summary"], indent=1, default=str))
        return 0
    torch.set_num_threads(args.threads)
    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(args.reps)
    desc = preset(["Cu"], cutoff=4.5, n_radial=6, zetas=(1, 4), angular_etas=(0.01,)).to_dict()
    tests = test_set(cell, args.test_per_set)
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": args.threads,
                          "load_avg_start": os.getloadavg()},
              "command": " ".join([sys.executable] + sys.argv), "n_atoms": len(cell), "n_test_frames": len(tests),
              "seeds": {}}
    curves = {}
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
        import ase.io

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
            m, _ = fit(seeds_lab + lab, None, committee=args.committee, hidden=tuple(args.hidden), descriptor=desc,
                       epochs=args.random_epochs, patience=max(20, args.random_epochs // 4), split=(1.0, 0.0, 0.0),
                       prune=None, plot=False, progress=False, seed=seed, batch_size=8)
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
        curves[f"active, seed {seed}"] = (x, y)
        curves[f"random, seed {seed}"] = (rx, ry)
        Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    if not args.merge_only:
        Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    return 0


ARMS = ("disagreement", "random")


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


def run_pool(args) -> None:
    """Pool protocol: for each seed and arm, :func:`learn` on the SAME fixed pool of EMT MD frames
    (:func:`emt_pool`, :class:`PoolExplorer`) with identical settings (seed data, committee,
    warm-start schedule, per-round count, test set); the arms differ only in the selection rule
    (committee disagreement + de-duplication vs uniform random). Resumable: rerun the command."""
    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(args.reps)
    desc = preset(["Cu"]).to_dict()  # the fitting benchmark's default 20 symmetry functions, cutoff 5 A
    tests = _cached(Path(args.workdir) / f"test_{args.test_per_set}.extxyz", lambda: test_set(cell, args.test_per_set))
    for seed in args.seeds:
        t0 = time.perf_counter()
        tag = f"pool_{args.pool_per}_{args.pool_strained}" + (f"_{args.pool_extra_300k}" if args.pool_extra_300k else "")

        def make_pool():
            extra = emt_pool(cell, seed + 100, temps=(300.0,), n_per=args.pool_extra_300k) \
                if args.pool_extra_300k else []
            for a in extra:
                a.info["config_type"] += "_long"
            return emt_pool(cell, seed, n_per=args.pool_per) + strained_frames(cell, seed, args.pool_strained) + extra

        pool = _cached(Path(args.workdir) / f"seed{seed}" / f"{tag}.extxyz", make_pool)
        t_pool = time.perf_counter() - t0
        for arm in args.arms:
            wd = Path(args.workdir) / f"seed{seed}" / arm
            wd.mkdir(parents=True, exist_ok=True)
            (wd / "run.json").write_text(json.dumps({
                "command": " ".join([sys.executable] + sys.argv), "protocol": "pool", "seed": seed, "arm": arm,
                "pool_size": len(pool), "pool_s": t_pool, "n_test_frames": len(tests), "n_atoms": len(cell),
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": args.threads,
                            "load_avg_start": os.getloadavg(), "nice": os.nice(0)}}, indent=1))
            t0 = time.perf_counter()
            explorer = PoolExplorer(pool) if arm != "true_error" else TrueErrorPool(pool)
            res = learn(seed_frames(cell, seed, args.seed_strained), emt_oracle(), [explorer], wd,
                        test_frames=tests, selection="disagreement" if arm == "true_error" else arm, lower_eV_A=args.lower, upper_eV_A=args.upper,
                        virial_lower_eV=args.virial_lower, diversity=args.diversity, train_dtype=args.train_dtype,
                        frame_reduce=args.frame_reduce,
                        max_per_round=args.max_per_round, max_rounds=args.max_rounds, max_oracle_calls=args.budget,
                        patience=2, committee=args.committee, hidden=tuple(args.hidden), descriptor=desc,
                        initial_epochs=args.initial_epochs, retrain_epochs=args.retrain_epochs, seed=seed,
                        progress=True)
            done = json.loads((wd / "run.json").read_text())
            done.update({"stop": res.stop_reason, "timings_s": res.timings_s, "wall_s": time.perf_counter() - t0,
                         "load_avg_end": os.getloadavg()})
            (wd / "run.json").write_text(json.dumps(done, indent=1, default=str))


def run_trajectory(args) -> None:
    """Trajectory protocol (on-the-fly learning as the issue describes it), per seed:

    * ``disagreement``: :func:`learn` with committee-driven batched MD (replicas at -5, 0, +5 %
      isotropic strain x 300, 900, 1500 K, ``--md-steps`` steps of 2 fs per round, a frame every
      ``--sample-every`` steps) with per-replica pausing (``pause_on_candidate``: a replica whose
      frame the committee is unsure of, disagreement >= ``--lower``, stops there until the next
      round; trusted replicas go on), plus ``--strain-n`` random strained cells (+-5 %) per round.
      Every explored frame is recorded (``pool.extxyz``).
    * ``random``: the SAME loop (seed data, committee, warm starts, budget, and the same number of
      picks in every round as the disagreement run made: ``per_round_schedule``) on a
      :class:`PoolExplorer` over all frames the disagreement run recorded, picking uniformly:
      random selection from the same exploration trajectories. Needs that run finished first.
    """
    import ase.io

    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(args.reps)
    desc = preset(["Cu"]).to_dict()
    tests = _cached(Path(args.workdir) / f"test_{args.test_per_set}.extxyz", lambda: test_set(cell, args.test_per_set))
    for seed in args.seeds:
        for arm in args.arms:
            wd = Path(args.workdir) / f"seed{seed}" / arm
            wd.mkdir(parents=True, exist_ok=True)
            if arm == "disagreement":
                explorers = [MDExplorer(cell, temperature_schedule=[300.0, 900.0, 1500.0], strains=(-0.05, 0.0, 0.05),
                                        steps=args.md_steps, sample_every=args.sample_every, pause_on_candidate=True),
                             StrainExplorer(cell, n=args.strain_n, max_strain=0.05, rattle=0.05)]
            elif arm == "random":
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
                explorers = [PoolExplorer(frames)]
            else:
                raise SystemExit(f"trajectory protocol: arm {arm!r} not available")
            info = {"command": " ".join([sys.executable] + sys.argv), "protocol": "trajectory", "seed": seed,
                    "arm": arm, "n_test_frames": len(tests), "n_atoms": len(cell),
                    "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": args.threads,
                                "load_avg_start": os.getloadavg(), "nice": os.nice(0)}}
            extra = {}
            if arm == "disagreement" and args.target_uncertainty is not None:
                extra["target_uncertainty_eV_A"] = args.target_uncertainty
            if arm == "random":  # the same rounds: as many picks per round as the committee run made
                info["pool_size"] = len(explorers[0].frames)
                info["per_round_schedule"] = schedule
                extra = {"per_round_schedule": schedule,
                         "max_rounds": len(schedule) if args.pool_stop_uncertainty is None else args.max_rounds}
            (wd / "run.json").write_text(json.dumps(info, indent=1))
            t0 = time.perf_counter()
            res = learn(seed_frames(cell, seed, args.seed_strained), emt_oracle(), explorers, wd, test_frames=tests,
                        selection=arm, keep_pool=(arm == "disagreement"), lower_eV_A=args.lower,
                        upper_eV_A=args.upper, virial_lower_eV=args.virial_lower, train_dtype=args.train_dtype,
                        **{"max_per_round": args.max_per_round, "max_rounds": args.max_rounds, **extra},
                        max_oracle_calls=args.budget, patience=args.patience, committee=args.committee,
                        hidden=tuple(args.hidden), descriptor=desc, initial_epochs=args.initial_epochs,
                        retrain_epochs=args.retrain_epochs, seed=seed, progress=True)
            info.update({"stop": res.stop_reason, "timings_s": res.timings_s, "wall_s": time.perf_counter() - t0,
                         "load_avg_end": os.getloadavg()})
            if arm == "disagreement":
                pool = ase.io.read(wd / "pool.extxyz", index=":")
                kinds = Counter(a.info.get("config_type", "") for a in pool)
                info.update({"pool_size": len(pool), "pool_by_config_type": dict(kinds)})
            (wd / "run.json").write_text(json.dumps(info, indent=1, default=str))

def _cached(path: Path, make):
    """Frames from ``path`` if an earlier process of the same workdir wrote them (the pool and the
    test set are deterministic in their seeds), else ``make()`` written there (atomic rename)."""
    import ase.io

    if path.is_file():
        frames = ase.io.read(path, index=":")
        for a in frames:
            a.info.setdefault("config_type", "pool")
        return frames
    frames = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    ase.io.write(tmp, frames, format="extxyz")
    os.replace(tmp, path)
    return frames


def pool_properties(args) -> None:
    """a0, B, X-point phonons of every finished (or interrupted) arm's committee mean vs EMT."""
    emt_ref = _props(emt_oracle())
    for seed in args.seeds:
        for arm in args.arms:
            wd = Path(args.workdir) / f"seed{seed}" / arm
            if not (wd / "model.pt").is_file():
                continue
            from mlip_props.potentials import load_model_file

            t0 = time.perf_counter()
            props = properties_vs_emt(load_model_file(wd / "model.pt"), emt_ref)
            props["seconds"] = time.perf_counter() - t0
            props["n_labelled"] = len(json.loads((wd / "state.json").read_text())["data"])
            (wd / "properties.json").write_text(json.dumps(props, indent=1))
            print(json.dumps({"seed": seed, "arm": arm, **props["rel_err"]}), flush=True)


def mean_log_curve(curves: list[tuple[list, list]]) -> tuple[list[float], list[float]]:
    """Geometric mean of several error-vs-calls curves on the union of their call counts up to the
    shortest curve's end, each curve interpolated linearly in log(error) (runs whose rounds picked
    different numbers of frames have different call grids)."""
    end = min(x[-1] for x, _ in curves)
    start = max(x[0] for x, _ in curves)
    grid = sorted({float(v) for x, _ in curves for v in x if start <= v <= end})
    logs = [np.interp(grid, np.asarray(x, float), np.log(np.asarray(y, float))) for x, y in curves]
    return grid, list(np.exp(np.mean(logs, axis=0)))


def summarise_pool(workdir: str, out: str, plot: str, target: float,
                   title: str = "Cu EMT, 32-atom cells: selection from the same MD pool",
                   extra_random: dict[str, str] | None = None, random_label: str = "random") -> dict:
    """Curves of every seed/arm from the checkpoints (interrupted runs included: the rounds
    completed so far), geometric-mean curves over seeds on the common call grid, calls to reach
    given RMSE levels (log-interpolated) and the ratio active / random."""
    runs: dict[str, dict[str, dict]] = {}
    for st in sorted(Path(workdir).glob("seed*/*/state.json")):
        arm, seed = st.parent.name, st.parent.parent.name[4:]
        state = json.loads(st.read_text())
        hist = state["history"]
        rec = {"calls": [h["oracle_calls"] for h in hist], "rmse_meV_A": [h["test_force_rmse_meV_A"] for h in hist]}
        if "timings_s" in state:  # cumulative since the (last) start of this process' checkpointing
            rec["timings_s_checkpoint"] = state["timings_s"]
        for extra in ("run.json", "properties.json"):
            if (st.parent / extra).is_file():
                rec[extra[:-5]] = json.loads((st.parent / extra).read_text())
        runs.setdefault(seed, {})[arm] = rec
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
        er = _load_arm(wd, "random")
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


def _load_arm(workdir: str, arm: str) -> dict[str, dict]:
    out = {}
    for st in sorted(Path(workdir).glob(f"seed*/{arm}/state.json")):
        state = json.loads(st.read_text())
        hist = state["history"]
        rec = {"calls": [h["oracle_calls"] for h in hist], "rmse_meV_A": [h["test_force_rmse_meV_A"] for h in hist],
               "n_selected_virial": [h.get("n_selected_virial") for h in hist]}
        for extra in ("run.json", "properties.json"):
            if (st.parent / extra).is_file():
                rec[extra[:-5]] = json.loads((st.parent / extra).read_text())
        if "timings_s" in state:
            rec["timings_s_checkpoint"] = state["timings_s"]
        out[st.parent.parent.name[4:]] = rec
    return out


def compare_pool(variants: dict[str, str], out: str, plot: str, target: float) -> dict:
    """Several active-arm variants (label -> workdir) against the random arm of the first workdir:
    geometric-mean curves over the seeds every variant and random share (each curve up to the
    rounds all its seeds completed), oracle calls to reach given RMSE levels per seed and on the
    mean curves (log-interpolated), ratios to random, and one plot."""
    first = next(iter(variants.values()))
    arms = {"random": _load_arm(first, "random")}
    for label, wd in variants.items():
        arms[label] = _load_arm(wd, "disagreement")
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


def refit_al(args) -> None:
    """Fit from scratch on prefixes of the AL data (in labelling order) with the random baseline's
    settings: compares the quality of the SELECTED DATA at equal training effort."""
    import ase.io

    part = json.loads(Path(args.refit_from).read_text())
    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(args.reps)
    desc = preset(["Cu"], cutoff=4.5, n_radial=6, zetas=(1, 4), angular_etas=(0.01,)).to_dict()
    tests = test_set(cell, args.test_per_set)
    for seed, rec in part["seeds"].items():
        frames = ase.io.read(Path(args.workdir) / f"seed{seed}" / "data.extxyz", index=":")
        xs, ys, t_fit = [], [], 0.0
        for n in rec["random_calls"]:
            if n > len(frames):
                continue
            t1 = time.perf_counter()
            m, _ = fit(frames[:n], None, committee=args.committee, hidden=tuple(args.hidden), descriptor=desc,
                       epochs=args.random_epochs, patience=max(20, args.random_epochs // 4), split=(1.0, 0.0, 0.0),
                       prune=None, plot=False, progress=False, seed=int(seed), batch_size=8)
            t_fit += time.perf_counter() - t1
            xs.append(n)
            ys.append(force_rmse_meV_A(m, tests))
            print(json.dumps({"seed": seed, "al_refit_n": n, "test_force_rmse_meV_A": ys[-1]}), flush=True)
        rec["al_refit_calls"], rec["al_refit_rmse_meV_A"], rec["al_refit_fit_s"] = xs, ys, t_fit
    Path(args.refit_from).write_text(json.dumps(part, indent=1, default=str))


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
    curves = {}
    for k, r in report["seeds"].items():
        curves[f"active, seed {k}"] = (r["al_calls"], r["al_rmse_meV_A"])
        curves[f"random, seed {k}"] = (r["random_calls"], r["random_rmse_meV_A"])
    def mean_curve(key_x, key_y):
        rows = [r for r in s if key_x in r]
        if not rows:
            return None
        grid = sorted(set.intersection(*[set(r[key_x]) for r in rows]))
        ys = [[float(np.exp(np.interp(g, r[key_x], np.log(r[key_y])))) for g in grid] for r in rows]
        return grid, list(np.exp(np.mean(np.log(ys), axis=0)))

    mean = {"active (on the fly, warm-start committee)": mean_curve("al_calls", "al_rmse_meV_A"),
            "active-selected data, refit from scratch": mean_curve("al_refit_calls", "al_refit_rmse_meV_A"),
            "random from the same trajectories, fit from scratch": mean_curve("random_calls", "random_rmse_meV_A")}
    mean = {k: v for k, v in mean.items() if v is not None}
    # the error level every curve reaches: the worst of the final errors (or the target if lower errors)
    level = max(target, max(v[1][-1] for v in mean.values()))
    cross = {k: crossing(v[0], v[1], level) for k, v in mean.items()}
    rnd = cross.get("random from the same trajectories, fit from scratch")
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = dict(zip(["active (on the fly, warm-start committee)", "active-selected data, refit from scratch", "random from the same trajectories, fit from scratch"], ("C0", "C2", "C3")))
    keys = {"active (on the fly, warm-start committee)": ("al_calls", "al_rmse_meV_A"),
            "active-selected data, refit from scratch": ("al_refit_calls", "al_refit_rmse_meV_A"),
            "random from the same trajectories, fit from scratch": ("random_calls", "random_rmse_meV_A")}
    for label, (gx, gy) in mean.items():
        kx, ky = keys[label]
        for r in s:
            if kx in r:
                ax.plot(r[kx], r[ky], "-", color=colours[label], alpha=0.25, lw=0.8)
        ax.plot(gx, gy, "o-", color=colours[label], ms=4, label=label + f" (mean of {len(s)} seeds)")
    ax.axhline(target, color="k", ls="--", lw=0.8, label=f"target {target:g} meV/A")
    ax.set(xlabel="oracle calls (EMT single points)", ylabel="test force RMSE (meV/A)", yscale="log",
           title=f"Cu EMT, {report['n_atoms']}-atom cells: active vs random selection")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    plt.close(fig)
    return report


if __name__ == "__main__":
    sys.exit(main())
