"""The settings of the active-learning loop: validated once when built, never changed afterwards."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from typing import Any

from .scores import FRAME_REDUCTIONS, check_thresholds

DECISIONS = ("trusted", "candidate", "wild", "duplicate", "selected")
SELECTIONS = ("disagreement", "random")


@dataclass(frozen=True)
class ActiveLearningConfig:
    """Settings of :func:`~mlip_props.fitting.active.learn` (eV/A for thresholds; see the package
    docstring). Frozen: :meth:`with_overrides` returns a validated copy with some fields replaced."""

    lower_eV_A: float = 0.05
    upper_eV_A: float = 1.0
    dedup_distance: float = 0.05  # fingerprint distance (descriptor units / feature std)
    max_per_round: int = 8
    # at most this many frames in round k (the last entry repeats; max_per_round still caps): replays
    # another run's schedule, e.g. a random-selection control with the same training rounds.
    per_round_schedule: tuple[int, ...] | None = None
    max_rounds: int = 20
    max_oracle_calls: int = 500
    patience: int = 2  # rounds without any selection before stopping
    target_uncertainty_eV_A: float | None = None
    uncertainty_quantile: float = 0.95
    committee: int = 4
    hidden: tuple[int, ...] = (16, 16)
    descriptor: dict[str, Any] | None = None  # SymmetryFunctionConfig dict; default preset
    zbl: tuple[float, float] | None = (1.0, 2.0)
    initial_epochs: int = 300
    retrain_epochs: int = 80
    lr: float = 3e-3
    retrain_lr: float = 1e-3
    batch_size: int = 8
    refit_every: int = 0  # full refit (new transform, from scratch) every n rounds; 0: never
    weights: dict[str, float] | None = None
    oracle_properties: tuple[str, ...] = ("energy", "forces", "stress")
    include_isolated: bool = True
    seed: int = 0
    selection: str = "disagreement"  # "random": control arm, uniform pick among unlabelled proposals
    virial_lower_eV: float | None = None  # stress disagreement as virial per atom (eV); None: forces only
    virial_upper_eV: float = float("inf")
    diversity: float = 0.0  # diversity-aware batch picks: length = this x median candidate distance; 0: off
    train_dtype: str = "float64"  # warm-start training precision ("float32": faster on CPUs)
    frame_reduce: str = "max"  # per-atom force spread -> frame score: "max" over atoms or "rms" (static frames)
    balance_explorers: bool = False  # a round's picks in turns over the explorers (BalancedPicker)

    def __post_init__(self) -> None:
        check_thresholds(self.lower_eV_A, self.upper_eV_A)
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.virial_lower_eV is not None and not (0 < self.virial_lower_eV <= self.virial_upper_eV
                                                     and self.lower_eV_A > 0):
            raise ValueError("virial_lower_eV needs 0 < virial_lower_eV <= virial_upper_eV and lower_eV_A > 0, "
                             f"got {self.virial_lower_eV}, {self.virial_upper_eV}, {self.lower_eV_A}")
        if self.diversity < 0:
            raise ValueError(f"diversity must be >= 0, got {self.diversity}")
        if self.balance_explorers and (self.selection != "disagreement" or self.diversity > 0):
            raise ValueError("balance_explorers applies to the greedy disagreement rule: it needs "
                             f"selection='disagreement' and diversity=0, got {self.selection!r}, {self.diversity}")
        if self.frame_reduce not in FRAME_REDUCTIONS:
            raise ValueError(f"frame_reduce must be one of {tuple(FRAME_REDUCTIONS)}, got {self.frame_reduce!r}")
        if self.per_round_schedule is not None:
            if not len(self.per_round_schedule) or min(self.per_round_schedule) < 0:
                raise ValueError(f"per_round_schedule must be a non-empty list of counts >= 0, "
                                 f"got {self.per_round_schedule}")
            object.__setattr__(self, "per_round_schedule", tuple(int(n) for n in self.per_round_schedule))
        if self.train_dtype not in ("float64", "float32"):
            raise ValueError(f"train_dtype must be 'float64' or 'float32', got {self.train_dtype!r}")

    def with_overrides(self, **overrides: Any) -> ActiveLearningConfig:
        """A validated copy with the named fields replaced (this one is left as it is)."""
        known = {f.name for f in dataclasses.fields(self)}
        for k in overrides:
            if k not in known:
                raise ValueError(f"unknown active-learning setting {k!r}")
        return dataclasses.replace(self, **overrides) if overrides else self

    def picks_allowed(self, round_index: int, n_labelled: int) -> int:
        """How many frames round ``round_index`` may label: ``max_per_round``, capped by the oracle
        budget left and by ``per_round_schedule``."""
        room = max(0, self.max_oracle_calls - n_labelled)
        if self.per_round_schedule:
            room = min(room, self.per_round_schedule[min(round_index, len(self.per_round_schedule) - 1)])
        return min(self.max_per_round, room)

    def stop_reason(self, rounds_without_selection: int, n_labelled: int, uncertainty_q_eV_A: float) -> str | None:
        """Why the loop stops after a round (patience, oracle budget, target uncertainty), or None."""
        if rounds_without_selection >= self.patience:
            return f"no selection for {rounds_without_selection} rounds"
        if n_labelled >= self.max_oracle_calls:
            return f"oracle budget {self.max_oracle_calls} reached"
        if self.target_uncertainty_eV_A is not None and uncertainty_q_eV_A < self.target_uncertainty_eV_A:
            return (f"target uncertainty reached ({uncertainty_q_eV_A:.3g} < {self.target_uncertainty_eV_A} eV/A)")
        return None

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))
