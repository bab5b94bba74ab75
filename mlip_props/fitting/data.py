"""Training data: labelled structures from extended XYZ, hashing, and train/validation/test splits.

Labels are read from what ASE's extxyz reader attaches (a single-point calculator holding
``energy`` eV, ``forces`` eV/A, ``stress`` eV/A^3) or from ``atoms.info``/``atoms.arrays`` keys
(``energy``/``REF_energy``, ``forces``/``REF_forces``, ``stress``/``REF_stress``). A Hessian
(eV/A^2, 3n x 3n, d2E/dx dx') is stored flattened in ``atoms.info["hessian"]``. Non-periodic
frames never carry a stress label.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
from ase import Atoms


@dataclass
class Dataset:
    """Labelled structures. ``energies`` (B,) eV; ``forces`` one (n, 3) array or None per frame;
    ``stress`` (B, 6) Voigt eV/A^3, NaN where absent; ``hessians`` (3n, 3n) or None per frame."""

    frames: list[Atoms]
    energies: np.ndarray
    forces: list[np.ndarray | None]
    stress: np.ndarray
    hessians: list[np.ndarray | None]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def n_atoms(self) -> np.ndarray:
        return np.array([len(a) for a in self.frames])

    @property
    def elements(self) -> list[str]:
        from ase.data import atomic_numbers

        syms = {s for a in self.frames for s in a.get_chemical_symbols()}
        return sorted(syms, key=lambda s: atomic_numbers[s])

    def subset(self, idx: Sequence[int]) -> "Dataset":
        idx = [int(i) for i in idx]
        return Dataset([self.frames[i] for i in idx], self.energies[idx], [self.forces[i] for i in idx],
                       self.stress[idx], [self.hessians[i] for i in idx])

    def hash(self) -> str:
        """SHA-256 of numbers, positions, cells, pbc and all labels (identifies the training data)."""
        h = hashlib.sha256()
        for k, a in enumerate(self.frames):
            for arr in (a.get_atomic_numbers(), a.get_positions(), np.asarray(a.get_cell()), a.get_pbc()):
                h.update(np.ascontiguousarray(arr).tobytes())
            h.update(np.float64(self.energies[k]).tobytes())
            if self.forces[k] is not None:
                h.update(np.ascontiguousarray(self.forces[k], dtype=np.float64).tobytes())
            h.update(np.ascontiguousarray(self.stress[k], dtype=np.float64).tobytes())
            if self.hessians[k] is not None:
                h.update(np.ascontiguousarray(self.hessians[k], dtype=np.float64).tobytes())
        return h.hexdigest()


def _label(atoms: Atoms, key: str, per_atom: bool) -> Any:
    for k in (key, f"REF_{key}"):
        src = atoms.arrays if per_atom else atoms.info
        if k in src:
            return np.asarray(src[k], dtype=float)
    calc = atoms.calc
    if calc is not None and key in getattr(calc, "results", {}):
        return np.asarray(calc.results[key], dtype=float)
    return None


def dataset_from_frames(frames: Iterable[Atoms]) -> Dataset:
    """Collect labels from frames (see module docstring); ``ValueError`` naming the frame if one
    has no energy or malformed forces/stress/Hessian."""
    frames = list(frames)
    if not frames:
        raise ValueError("no training frames")
    energies, forces, stress, hess = [], [], [], []
    for k, a in enumerate(frames):
        e = _label(a, "energy", False)
        if e is None or not np.isfinite(e).all():
            raise ValueError(f"structure {k}: no energy label")
        energies.append(float(np.ravel(e)[0]))
        f = _label(a, "forces", True)
        if f is not None and f.shape != (len(a), 3):
            raise ValueError(f"structure {k}: forces have shape {f.shape}, expected ({len(a)}, 3)")
        forces.append(f)
        s = _label(a, "stress", False)
        if s is not None and a.pbc.all():
            s = np.ravel(s)
            if s.size == 9:
                m = s.reshape(3, 3)
                s = np.array([m[0, 0], m[1, 1], m[2, 2], m[1, 2], m[0, 2], m[0, 1]])
            if s.size != 6:
                raise ValueError(f"structure {k}: stress has {s.size} components")
            stress.append(s)
        else:
            stress.append(np.full(6, np.nan))
        h = a.info.get("hessian")
        if h is not None:
            h = np.asarray(h, dtype=float).reshape(-1)
            d = 3 * len(a)
            if h.size != d * d:
                raise ValueError(f"structure {k}: hessian has {h.size} entries, expected {d * d}")
            h = h.reshape(d, d)
        hess.append(h)
    clean = []
    for a in frames:
        b = Atoms(numbers=a.get_atomic_numbers(), positions=a.get_positions(), cell=a.get_cell(), pbc=a.get_pbc())
        b.info.update({k: v for k, v in a.info.items() if k in ("config_type",)})
        clean.append(b)
    return Dataset(clean, np.array(energies), forces, np.array(stress), hess)


def read_dataset(path: str | os.PathLike, index: str = ":") -> Dataset:
    """Read labelled frames from an extended-XYZ file (any ASE-readable format works)."""
    import ase.io

    if not os.path.isfile(path):
        raise FileNotFoundError(f"training data not found: {path}")
    frames = ase.io.read(path, index=index)
    return dataset_from_frames(frames if isinstance(frames, list) else [frames])


def label_frames(frames: Sequence[Atoms], energies, forces=None, stress=None, hessians=None) -> list[Atoms]:
    """Attach labels to copies of ``frames`` as single-point results (what extxyz writes)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    out = []
    for k, a in enumerate(frames):
        b = a.copy()
        res: dict[str, Any] = {"energy": float(energies[k])}
        if forces is not None:
            res["forces"] = np.asarray(forces[k], dtype=float)
        if stress is not None and b.pbc.all() and np.all(np.isfinite(stress[k])):
            res["stress"] = np.asarray(stress[k], dtype=float)
        if hessians is not None and hessians[k] is not None:
            b.info["hessian"] = np.asarray(hessians[k], dtype=float).reshape(-1)
        b.calc = SinglePointCalculator(b, **res)
        out.append(b)
    return out


def label_with_oracle(oracle: Any, frames: Sequence[Atoms],
                      properties: Sequence[str] = ("energy", "forces", "stress")) -> list[Atoms]:
    """Labelled copies of ``frames``: one batched :func:`mlip_props.evaluate` of ``oracle`` (or any
    potential) for ``properties``, attached by :func:`label_frames` (eV, eV/A, eV/A^3; stress only
    on cells periodic in all three directions)."""
    from ..backend import evaluate

    r = evaluate(oracle, list(frames), tuple(properties))
    return label_frames(frames, r.energies_eV, r.forces_eV_A if "forces" in properties else None,
                        r.stress_eV_A3 if "stress" in properties else None)


def write_dataset(frames: Sequence[Atoms], path: str | os.PathLike) -> None:
    """Write labelled frames (with single-point results) to extended XYZ."""
    import ase.io

    ase.io.write(str(path), list(frames), format="extxyz")


def split_indices(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> tuple[list[int], list[int], list[int]]:
    """Random train/validation/test split of ``n`` structures (by structure) with a fixed seed."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"split fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    if fractions[1] > 0 and n >= 3:
        n_val = max(n_val, 1)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"{n} structures are too few for split {fractions}")
    return (sorted(perm[:n_train].tolist()), sorted(perm[n_train : n_train + n_val].tolist()),
            sorted(perm[n_train + n_val :].tolist()))
