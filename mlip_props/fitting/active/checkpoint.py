"""A run's state between rounds and the files it keeps in its working directory.

``state.json`` (written atomically after the first fit and after every round, with the committee
in ``model.pt`` written just before it) names everything a restart needs: the last completed
round, the journal keys of the labelled data, the history, the explorers' states and the
cumulative timings. ``decisions.jsonl`` (one line per scored frame), ``rounds.jsonl`` (one line
per round) and ``pool.extxyz`` (optional: every explored frame) are appended to.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from .journal import structure_hash

RUN_FILES = ("oracle_journal.jsonl", "oracle_calls.jsonl", "decisions.jsonl", "rounds.jsonl", "pool.extxyz",
             "state.json")
TIMED_STAGES = ("oracle", "training", "exploration", "selection")


def clear_run(workdir: Path) -> None:
    """Remove the journal, logs and state of an earlier run in ``workdir`` (a fresh start)."""
    for name in RUN_FILES:
        (workdir / name).unlink(missing_ok=True)


@dataclass
class RunState:
    """What changes from round to round: the last completed round (-1: the first fit), rounds in a
    row without any selection, the journal keys of the labelled frames, the history records, the
    stop reason once there is one (and whether a monitor gave it), and the seconds spent per stage (cumulative over restarts)."""

    round: int = -1
    quiet: int = 0
    keys: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    stop_by_monitor: bool = False  # the stop came from a monitor, not from the settings' rules
    timings_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMED_STAGES, 0.0))

    def save(self, workdir: Path, explorers: Sequence[Any], config: dict[str, Any]) -> None:
        """Write ``state.json`` atomically (temporary file, then rename)."""
        state = {"round": self.round, "quiet": self.quiet, "history": self.history, "data": self.keys,
                 "timings_s": self.timings_s, "explorers": [ex.state_dict() for ex in explorers], "config": config,
                 "stop_reason": self.stop_reason, "stop_by_monitor": self.stop_by_monitor}
        tmp = workdir / "state.json.tmp"
        tmp.write_text(json.dumps(state, default=lambda x: x.tolist() if hasattr(x, "tolist") else str(x)))
        os.replace(tmp, workdir / "state.json")

    @classmethod
    def load(cls, workdir: Path, explorers: Sequence[Any]) -> RunState | None:
        """The state of the last completed round in ``workdir`` (restoring the explorers' states),
        or None if there is none."""
        path = workdir / "state.json"
        if not path.is_file():
            return None
        state = json.loads(path.read_text())
        for ex, st in zip(explorers, state.get("explorers", [])):
            ex.load_state_dict(st)
        out = cls(round=state["round"], quiet=state["quiet"], keys=list(state["data"]), history=state["history"],
                  stop_reason=state["stop_reason"], stop_by_monitor=bool(state.get("stop_by_monitor", False)))
        out.timings_s.update(state.get("timings_s", {}))  # the redone round counts twice
        return out


def write_decisions(path: Path, round_index: int, frames: Sequence[Atoms], sources: Sequence[str],
                    hashes: Sequence[str], force_eV_A: np.ndarray, virial_eV: np.ndarray | None,
                    decisions: Sequence[str], score_units: dict[str, str], proposals: Sequence[Any]) -> None:
    """Append one line per scored frame (round, source, config_type, hash, disagreement, decision;
    the virial spread when scored; a strategy's own score unit when not eV/A) and one per frame
    an MD explorer discarded as wild (restarted from its last trusted frame)."""
    with open(path, "a") as fh:
        for k, a in enumerate(frames):
            rec = {"round": round_index, "source": sources[k], "config_type": a.info.get("config_type", ""),
                   "hash": hashes[k], "disagreement_eV_A": float(force_eV_A[k]), "decision": decisions[k]}
            if virial_eV is not None:
                rec["virial_disagreement_eV"] = float(virial_eV[k])
            if score_units.get(sources[k], "eV/A") != "eV/A":  # a strategy's own score (e.g. stress, GPa)
                rec["score_unit"] = score_units[sources[k]]
            fh.write(json.dumps(rec) + "\n")
        for p in proposals:
            wild_d = p.wild_disagreement_eV_A if p.wild_disagreement_eV_A is not None else np.zeros(0)
            for a, d in zip(p.wild, wild_d):
                fh.write(json.dumps({"round": round_index, "source": "md", "config_type": a.info.get("config_type", ""),
                                     "hash": structure_hash(a), "disagreement_eV_A": float(d),
                                     "decision": "wild", "action": "restart_from_last_trusted"}) + "\n")


def append_pool(path: Path, round_index: int, frames: Sequence[Atoms], force_eV_A: np.ndarray) -> None:
    """Append the round's explored frames to ``pool.extxyz`` with their disagreement (eV/A) and round."""
    import ase.io

    pool = []
    for k, a in enumerate(frames):
        b = a.copy()
        b.info["al_disagreement"] = float(force_eV_A[k])
        b.info["al_round"] = round_index
        pool.append(b)
    ase.io.write(path, pool, format="extxyz", append=True)

