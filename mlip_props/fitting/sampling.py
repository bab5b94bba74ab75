"""Oracle-labelled training data from a base structure: the sampling strategies of active learning.

Strategies (each frame carries ``info["config_type"]``):

* ``rattle`` — Gaussian random displacements (std drawn in [0.01, ``rattle_max``] A) of random
  supercells (at most ``max_atoms`` atoms) with a small random strain (+-1 %);
* ``strain`` — random symmetric strains (each component up to +-``strain_max``) plus a 0.02 A rattle;
* ``md`` — Langevin molecular dynamics with the oracle at each temperature of ``temperatures`` (K),
  snapshots every ``md_stride`` steps after ``md_equilibration`` steps (timestep ``md_timestep_fs``);
* ``normal_modes`` — harmonic normal-mode sampling: displacements sum_k c_k e_k / sqrt(m) with
  c_k ~ N(0, k_B T / omega_k^2) from the oracle's finite-difference Hessian of the base cell
  (J. S. Smith et al., Chem. Sci. 8, 3192 (2017));
* ``dimer`` — two atoms in vacuum at distances from ``dimer_range`` (A), probing short range.

Every element's isolated atom is added once (``config_type="isolated_atom"``) so the fit gets the
reference energies. Labels (energy eV, forces eV/A, stress eV/A^3 for periodic frames, optional
Hessians eV/A^2) come from one :func:`mlip_props.evaluate` call on the oracle.
"""
from __future__ import annotations

import os
from itertools import combinations_with_replacement
from typing import Any, Sequence

import numpy as np
from ase import Atoms, units

from ..backend import evaluate
from ..backend.batch import to_atoms
from .data import label_frames, write_dataset

STRATEGIES = ("rattle", "strain", "md", "normal_modes", "dimer")


def _supercells(base: Atoms, max_atoms: int) -> list[Atoms]:
    reps = [(1, 1, 1), (2, 1, 1), (1, 2, 1), (1, 1, 2), (2, 2, 1), (2, 1, 2), (1, 2, 2), (2, 2, 2), (3, 3, 3)]
    cells = [base.repeat(r) for r in reps if len(base) * np.prod(r) <= max_atoms] if base.pbc.all() else [base]
    return cells or [base]


def _strain(atoms: Atoms, eps: np.ndarray) -> Atoms:
    a = atoms.copy()
    a.set_cell(np.asarray(a.get_cell()) @ (np.eye(3) + eps), scale_atoms=True)
    return a


def _random_strain(rng: np.random.Generator, amp: float) -> np.ndarray:
    e = rng.uniform(-amp, amp, (3, 3))
    return 0.5 * (e + e.T)


def _md_frames(base: Atoms, oracle, temperatures, n: int, rng, stride: int, equil: int, dt_fs: float) -> list[Atoms]:
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    out: list[Atoms] = []
    per_t = [n // len(temperatures) + (1 if k < n % len(temperatures) else 0) for k in range(len(temperatures))]
    for t, m in zip(temperatures, per_t):
        if m == 0:
            continue
        a = base.copy()
        a.calc = oracle.calculator()
        MaxwellBoltzmannDistribution(a, temperature_K=t, rng=rng)
        dyn = Langevin(a, dt_fs * units.fs, temperature_K=t, friction=0.02, fixcm=False, rng=rng)
        dyn.run(equil)
        for _ in range(m):
            dyn.run(stride)
            snap = Atoms(numbers=a.numbers, positions=a.get_positions(), cell=a.cell, pbc=a.pbc)
            snap.info["config_type"] = f"md_{int(t)}K"
            out.append(snap)
    return out


def _normal_mode_frames(base: Atoms, oracle, temperatures, n: int, rng) -> list[Atoms]:
    h = evaluate(oracle, [base], ("hessian",)).hessians_eV_A2[0]
    masses = np.repeat(base.get_masses(), 3)
    d = h / np.sqrt(np.outer(masses, masses))
    lam, vec = np.linalg.eigh(0.5 * (d + d.T))
    ok = lam > 1e-3 * lam.max()  # drop the acoustic (translation) modes
    lam, vec = lam[ok], vec[:, ok]
    out = []
    for k in range(n):
        t = temperatures[k % len(temperatures)]
        c = rng.normal(0.0, np.sqrt(units.kB * t / lam))
        disp = (vec @ c) / np.sqrt(masses)
        a = base.copy()
        a.positions = a.positions + disp.reshape(-1, 3)
        a.calc = None
        a.info["config_type"] = f"normal_modes_{int(t)}K"
        out.append(a)
    return out


def sample(
    base_atoms: Any,
    oracle: Any,
    n: int = 200,
    strategies: Sequence[str] | dict[str, float] = STRATEGIES,
    *,
    out_path: str | os.PathLike | None = None,
    seed: int = 0,
    max_atoms: int = 32,
    rattle_max: float = 0.15,
    strain_max: float = 0.05,
    temperatures: Sequence[float] = (300.0, 800.0, 1500.0),
    md_stride: int = 20,
    md_equilibration: int = 100,
    md_timestep_fs: float = 2.0,
    dimer_range: tuple[float, float] | None = None,
    n_hessians: int = 0,
    include_isolated: bool = True,
) -> list[Atoms]:
    """Sample ``n`` structures around ``base_atoms`` with ``strategies`` and label them with ``oracle``.

    ``strategies``: names from :data:`STRATEGIES` (equal shares) or a dict name -> relative share.
    ``oracle``: an :class:`~mlip_props.backend.OraclePotential` (e.g. ``emt_oracle()``). MD and
    normal-mode sampling use the largest supercell of at most ``max_atoms`` atoms and the base cell
    respectively. ``dimer_range`` defaults to (0.7, 2.0) x the base's nearest-neighbour distance.
    ``n_hessians`` frames (the smallest) also get oracle Hessians (finite differences) for Hessian
    training. Writes extxyz to ``out_path`` if given. Returns the labelled frames.
    """
    base = to_atoms(base_atoms).copy()
    base.calc = None
    shares = dict(strategies) if isinstance(strategies, dict) else {s: 1.0 for s in strategies}
    unknown = set(shares) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"unknown sampling strategies {sorted(unknown)}; choose from {STRATEGIES}")
    if n < 1:
        raise ValueError("n must be >= 1")
    total = sum(shares.values())
    names = list(shares)
    counts = [int(np.floor(n * shares[s] / total)) for s in names]
    for k in range(n - sum(counts)):
        counts[k % len(counts)] += 1
    rng = np.random.default_rng(seed)
    cells = _supercells(base, max_atoms)
    frames: list[Atoms] = []
    for name, m in zip(names, counts):
        if m == 0:
            continue
        if name == "rattle":
            for _ in range(m):
                a = _strain(cells[rng.integers(len(cells))], _random_strain(rng, 0.01))
                a.positions = a.positions + rng.normal(0.0, rng.uniform(0.01, rattle_max), a.positions.shape)
                a.info["config_type"] = "rattle"
                frames.append(a)
        elif name == "strain":
            for _ in range(m):
                a = _strain(cells[rng.integers(len(cells))], _random_strain(rng, strain_max))
                a.positions = a.positions + rng.normal(0.0, 0.02, a.positions.shape)
                a.info["config_type"] = "strain"
                frames.append(a)
        elif name == "md":
            frames.extend(_md_frames(cells[-1], oracle, list(temperatures), m, rng, md_stride, md_equilibration,
                                     md_timestep_fs))
        elif name == "normal_modes":
            frames.extend(_normal_mode_frames(cells[0], oracle, list(temperatures), m, rng))
        elif name == "dimer":
            from ase.neighborlist import neighbor_list

            if dimer_range is None:
                d = neighbor_list("d", base, 6.0) if len(base) > 1 or base.pbc.any() else np.array([2.5])
                nn = float(d.min()) if len(d) else 2.5
                dimer_range = (0.7 * nn, 2.0 * nn)
            syms = sorted(set(base.get_chemical_symbols()))
            pairs = list(combinations_with_replacement(syms, 2))
            rs = np.linspace(dimer_range[0], dimer_range[1], m)
            for k, r in enumerate(rs):
                p = pairs[k % len(pairs)]
                a = Atoms(symbols=list(p), positions=[[0, 0, 0], [r, 0, 0]], pbc=False)
                a.info["config_type"] = "dimer"
                frames.append(a)
    if include_isolated:
        for s in sorted(set(base.get_chemical_symbols())):
            a = Atoms(s, positions=[[0.0, 0.0, 0.0]], pbc=False)
            a.info["config_type"] = "isolated_atom"
            frames.append(a)
    res = evaluate(oracle, frames, ("energy", "forces", "stress"))
    hess = None
    if n_hessians > 0:
        order = np.argsort([len(a) if a.pbc.all() else 10**6 for a in frames], kind="stable")[:n_hessians]
        hres = evaluate(oracle, [frames[k] for k in order], ("hessian",))
        hess = [None] * len(frames)
        for k, h in zip(order, hres.hessians_eV_A2):
            hess[k] = h
    labelled = label_frames(frames, res.energies_eV, res.forces_eV_A, res.stress_eV_A3, hess)
    for a, b in zip(labelled, frames):
        a.info["config_type"] = b.info.get("config_type", "")
    if out_path is not None:
        write_dataset(labelled, out_path)
    return labelled
