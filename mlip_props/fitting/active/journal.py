"""Oracle calls through one place, journalled to disk after every call so that no call is ever
made twice for the same structure, across crashes and restarts."""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from ...backend import evaluate
from ..data import dataset_from_frames, label_frames


def structure_hash(atoms: Atoms) -> str:
    """SHA-1 of numbers, positions (rounded to 1e-6 A), cell and pbc: the oracle journal key."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(atoms.get_atomic_numbers(), dtype=np.int64).tobytes())
    for arr in (atoms.get_positions(), np.asarray(atoms.get_cell())):
        h.update(np.ascontiguousarray(np.round(arr, 6) + 0.0).tobytes())
    h.update(np.ascontiguousarray(atoms.get_pbc()).tobytes())
    return h.hexdigest()[:20]


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``path`` and fsync it (NumPy scalars written as numbers)."""
    with open(path, "a") as fh:
        fh.write(json.dumps(record, default=lambda x: x.item() if hasattr(x, "item") else str(x)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def is_labelled(atoms: Atoms) -> bool:
    """True if ``atoms`` carries a calculator with an energy (a frame that needs no oracle call)."""
    return atoms.calc is not None and "energy" in getattr(atoms.calc, "results", {})


class OracleJournal:
    """Oracle calls through one place: answers cached by structure hash in a JSON-lines journal
    (exact float64 round trip) appended and fsynced after EVERY call, so a crash loses at most the
    call in flight; each call also logged to ``oracle_calls.jsonl`` (round, hash, seconds, energy)."""

    def __init__(self, oracle: Any, workdir: Path, properties: Sequence[str]):
        self.oracle = oracle
        self.properties = tuple(properties)
        self.path = workdir / "oracle_journal.jsonl"
        self.log = workdir / "oracle_calls.jsonl"
        self.cache: dict[str, dict[str, Any]] = {}
        self.n_calls = 0
        self.n_cached = 0
        self.seconds = 0.0
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a crash: that call is simply redone
                    continue
                self.cache[rec["hash"]] = rec

    def frame(self, key: str) -> Atoms:
        """The labelled frame (single-point results) stored under ``key``."""
        rec = self.cache[key]
        a = Atoms(numbers=rec["numbers"], positions=rec["positions"], cell=rec["cell"], pbc=rec["pbc"])
        stress = [np.asarray(rec["stress"], float)] if rec.get("stress") is not None else None
        forces = [np.asarray(rec["forces"], float)] if rec.get("forces") is not None else None
        out = label_frames([a], [rec["energy"]], forces, stress)[0]
        out.info["config_type"] = rec.get("config_type", "")
        out.info["al_hash"] = key
        return out

    def frames(self, keys: Sequence[str]) -> list[Atoms]:
        """The labelled frames stored under ``keys``, in that order."""
        return [self.frame(k) for k in keys]

    def is_isolated_atom(self, key: str) -> bool:
        """Whether the frame stored under ``key`` is a single atom in vacuum."""
        rec = self.cache[key]
        return len(rec["numbers"]) == 1 and not any(rec["pbc"])

    def add(self, atoms: Atoms, energy: float, forces: Any, stress: Any, round_index: int, given: bool) -> str:
        """Journal the labels of ``atoms`` (eV, eV/A, eV/A^3) under its structure hash; returns the hash."""
        key = structure_hash(atoms)
        st = None if stress is None or not np.all(np.isfinite(stress)) else np.asarray(stress, float).tolist()
        rec = {"hash": key, "round": int(round_index), "given": bool(given),
               "config_type": atoms.info.get("config_type", ""), "numbers": atoms.get_atomic_numbers().tolist(),
               "positions": atoms.get_positions().tolist(), "cell": np.asarray(atoms.get_cell()).tolist(),
               "pbc": [bool(x) for x in atoms.get_pbc()], "energy": float(energy),
               "forces": None if forces is None else np.asarray(forces, float).tolist(), "stress": st}
        append_jsonl(self.path, rec)
        self.cache[key] = rec
        return key

    def add_labelled(self, frames: Sequence[Atoms]) -> list[str]:
        """Store frames that came with labels (no oracle call)."""
        keys = []
        for a in frames:
            ds = dataset_from_frames([a])
            key = structure_hash(a)
            if key not in self.cache:
                self.add(a, ds.energies[0], ds.forces[0], ds.stress[0], -1, given=True)
            keys.append(key)
        return keys

    def label(self, frames: Sequence[Atoms], round_index: int) -> list[str]:
        """Oracle labels of ``frames`` (one call each, unless journalled); returns their keys."""
        keys = []
        for a in frames:
            key = structure_hash(a)
            if key in self.cache:
                self.n_cached += 1
                keys.append(key)
                continue
            props = tuple(p for p in self.properties if p != "stress" or a.pbc.all())
            t0 = time.perf_counter()
            r = evaluate(self.oracle, [a], props)
            dt = time.perf_counter() - t0
            self.seconds += dt
            self.n_calls += 1
            stress = r.stress_eV_A3[0] if r.stress_eV_A3 is not None else None
            forces = r.forces_eV_A[0] if r.forces_eV_A is not None else None
            self.add(a, r.energies_eV[0], forces, stress, round_index, given=False)
            append_jsonl(self.log, {"round": round_index, "hash": key, "n_atoms": len(a),
                                    "config_type": a.info.get("config_type", ""), "seconds": dt,
                                    "energy_eV": float(r.energies_eV[0]), "time": time.time()})
            keys.append(key)
        return keys
