"""What every protocol of the Cu active-learning benchmark shares: the cell, the fixed test set, the
seed data, the learning-curve crossing, the properties against EMT, cached frame files and the
record of the machine a run used."""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
from ase import Atoms, units
from ase.build import bulk

from mlip_props.backend import emt_oracle
from mlip_props.fitting import label_with_oracle, preset
from mlip_props.fitting.explore import strain_cell

ARMS = ("disagreement", "random")  # the selection rules compared: committee disagreement and uniform random


def cu_cell(reps: int) -> Atoms:
    """The cubic fcc Cu cell (a = 3.61 A) repeated ``reps`` times along each axis (2: 32 atoms)."""
    return bulk("Cu", "fcc", a=3.61, cubic=True).repeat(reps)


def small_descriptor() -> dict:
    """12 symmetry functions, cutoff 4.5 A (the on-the-fly protocol and its refits)."""
    return preset(["Cu"], cutoff=4.5, n_radial=6, zetas=(1, 4), angular_etas=(0.01,)).to_dict()


def langevin(cell: Atoms, strain: float, temperature_K: float, rng: np.random.Generator):
    """ASE Langevin MD with EMT (2 fs, friction 0.02) of ``cell`` under isotropic ``strain``,
    Maxwell-Boltzmann velocities at ``temperature_K``; returns (atoms, dynamics)."""
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    a = strain_cell(cell, strain)
    a.calc = EMT()
    MaxwellBoltzmannDistribution(a, temperature_K=temperature_K, rng=rng)
    return a, Langevin(a, 2 * units.fs, temperature_K=temperature_K, friction=0.02, rng=rng)


def test_set(cell: Atoms, n_per: int, seed: int = 12345) -> list[Atoms]:
    """Independent EMT Langevin MD: 300/900/1500 K at a0, 900 K at -5 % and +5 % strain; after
    150 steps, ``n_per`` frames 25 steps apart from each, labelled by EMT."""
    rng = np.random.default_rng(seed)
    out = []
    for t, s in [(300, 0.0), (900, 0.0), (1500, 0.0), (900, -0.05), (900, 0.05)]:
        a, dyn = langevin(cell, s, t, rng)
        dyn.run(150)
        for _ in range(n_per):
            dyn.run(25)
            b = a.copy()
            b.calc = None
            out.append(b)
    return label_with_oracle(emt_oracle(), out)


def seed_frames(cell: Atoms, seed: int, n_strained: int = 0) -> list[Atoms]:
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


def crossing(x, y, target: float) -> float | None:
    """Smallest x where the (log-interpolated) curve y(x) first reaches <= target; None if never."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    for k in range(len(x)):
        if y[k] <= target:
            if k == 0:
                return float(x[0])
            f = (np.log(y[k - 1]) - np.log(target)) / (np.log(y[k - 1]) - np.log(y[k]))
            return float(x[k - 1] + f * (x[k] - x[k - 1]))
    return None


def cu_properties(pot: Any) -> dict:
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


def properties_vs_emt(model: Any, emt_ref: dict | None = None) -> dict:
    """:func:`cu_properties` of the committee mean of ``model`` and of EMT, and their relative errors."""
    from mlip_props.fitting import CommitteeMean

    out = {"emt": emt_ref or cu_properties(emt_oracle()), "al": cu_properties(CommitteeMean(model))}
    out["rel_err"] = {k: out["al"][k] / out["emt"][k] - 1 for k in out["emt"]}
    return out


def cached_frames(path: Path, make: Callable[[], list[Atoms]]) -> list[Atoms]:
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


def cached_test_set(args: argparse.Namespace, cell: Atoms) -> list[Atoms]:
    """The test set of ``--test-per-set`` frames per trajectory, cached in ``--workdir``."""
    return cached_frames(Path(args.workdir) / f"test_{args.test_per_set}.extxyz",
                         lambda: test_set(cell, args.test_per_set))


def command_line() -> str:
    return " ".join([sys.executable] + sys.argv)


def machine(threads: int, nice: bool = True) -> dict:
    """Platform, CPU count, torch threads, load average (and niceness) at the start of a run."""
    out = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": threads,
           "load_avg_start": os.getloadavg()}
    if nice:
        out["nice"] = os.nice(0)
    return out


def learn_settings(args: argparse.Namespace, seed: int, descriptor: dict) -> dict:
    """The :func:`~mlip_props.fitting.active.learn` settings every arm of the pool and trajectory
    protocols shares (thresholds, virial term, budget, committee, training schedule, seed)."""
    return dict(lower_eV_A=args.lower, upper_eV_A=args.upper, virial_lower_eV=args.virial_lower,
                train_dtype=args.train_dtype, max_oracle_calls=args.budget, committee=args.committee,
                hidden=tuple(args.hidden), descriptor=descriptor, initial_epochs=args.initial_epochs,
                retrain_epochs=args.retrain_epochs, seed=seed, progress=True)
