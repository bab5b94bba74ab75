"""How a property relaxes its input structures: :class:`RelaxSettings` (tolerances, steps,
cell and symmetry options, and the float32 floor of the tolerances), the two defaults the
properties use (:data:`PROPERTY_RELAXATION`, :data:`ENERGY_RELAXATION`) and
:func:`resolve_relaxation`, which turns a property's ``relaxation`` argument into settings.

The relaxation itself is :func:`mlip_props.properties.relax.relax`, which re-exports every name
of this module (import them from either).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms


@dataclass(frozen=True)
class RelaxSettings:
    """How a property relaxes its input structures before it measures them (one vocabulary for
    every property: :func:`resolve_relaxation` turns a property's ``relaxation`` argument into one).

    ``enabled``: relax the input structures first (False: they are the reference cells as
    given). ``cell``: relax the cell as well as the ions (periodic structures; ignored for
    molecules). ``ions``: relax the ions of every deformed cell a property builds (EOS volumes,
    elastic strains), whether or not the input was relaxed; ``None`` = for cells with more than
    one atom (a one-atom cell has no internal coordinate), ``False``: clamped ions. ``keep_symmetry``: keep the
    space group (ASE ``FixSymmetry`` semantics). ``fmax_eV_A``: largest residual atomic force;
    ``smax_GPa``: largest residual stress component (cell relaxation); ``max_steps``: FIRE steps
    before a structure is reported ``converged=False`` (never raised). ``pressure_GPa``: target
    pressure of the cell relaxation. ``symprec_A``: tolerance of the space-group search that
    ``keep_symmetry`` uses (spglib, A).

    Default: 1e-4 eV/A and 1e-3 GPa, the tolerances the derivative properties (EOS, elastic
    constants, phonons, vibrations) need: a residual force F on an ion biases a force constant
    k by about F / displacement, so 1e-4 eV/A keeps the harmonic properties at the 1e-3 relative
    level for 0.01 A displacements, and 1e-3 GPa of residual stress is far below the ~0.1 GPa
    resolution of elastic constants from +-1 % strains. Properties that only compare energies
    (convex hulls) use :data:`ENERGY_RELAXATION` (1e-3 eV/A: an energy error second order in the
    residual force, below 1e-6 eV/atom).

    Precision (:meth:`tolerances`): a float32 potential relaxes to ``max(fmax_eV_A,
    fmax_float32_eV_A)`` and ``max(smax_GPa, smax_float32_GPa)`` (1e-3 eV/A, 1e-2 GPa: above the
    float32 noise floor, docs/relax.md). ``stall_steps``: a relaxation whose residual has not fallen
    by 5 % in this many steps stops, reported unconverged and ``stalled`` with its residual.
    """

    enabled: bool = True
    cell: bool = True
    ions: bool | None = None
    keep_symmetry: bool = True
    fmax_eV_A: float = 1e-4
    smax_GPa: float = 1e-3
    max_steps: int = 3000
    pressure_GPa: float = 0.0
    symprec_A: float = 1e-4
    fmax_float32_eV_A: float = 1e-3
    smax_float32_GPa: float = 1e-2
    stall_steps: int = 200

    def __post_init__(self) -> None:
        if not isinstance(self.stall_steps, (int, np.integer)) or isinstance(self.stall_steps, bool) \
                or self.stall_steps < 1:
            raise ValueError(f"relaxation stall_steps must be an integer >= 1, got {self.stall_steps!r}")
        for name in ("fmax_eV_A", "smax_GPa", "symprec_A", "fmax_float32_eV_A", "smax_float32_GPa"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ValueError(f"relaxation {name} must be a positive finite number, got {v!r}")
        if not isinstance(self.max_steps, (int, np.integer)) or isinstance(self.max_steps, bool) or self.max_steps < 0:
            raise ValueError(f"relaxation max_steps must be an integer >= 0, got {self.max_steps!r}")
        if not (isinstance(self.pressure_GPa, (int, float)) and np.isfinite(self.pressure_GPa)):
            raise ValueError(f"relaxation pressure_GPa must be a finite number, got {self.pressure_GPa!r}")

    def tolerances(self, precision: str | None) -> tuple[float, float]:
        """``(fmax_eV_A, smax_GPa)`` that apply to a potential computing in ``precision``
        (``"float64"``/``None``: the fields as given; lower precisions: no tighter than the
        float32 fields)."""
        if precision in (None, "float64"):
            return float(self.fmax_eV_A), float(self.smax_GPa)
        return max(float(self.fmax_eV_A), float(self.fmax_float32_eV_A)), \
            max(float(self.smax_GPa), float(self.smax_float32_GPa))

    def ions_for(self, atoms: Atoms) -> bool:
        """Whether the ions of deformed copies of ``atoms`` are relaxed."""
        return len(atoms) > 1 if self.ions is None else bool(self.ions)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The default of the derivative properties (EOS, elastic, phonons, thermal, vibrations).
PROPERTY_RELAXATION = RelaxSettings()
#: The default of properties that compare energies only (convex hulls).
ENERGY_RELAXATION = RelaxSettings(fmax_eV_A=1e-3, max_steps=2000)


def resolve_relaxation(relaxation: Any, default: RelaxSettings = PROPERTY_RELAXATION) -> RelaxSettings:
    """A property's ``relaxation`` argument as :class:`RelaxSettings`.

    ``None`` or ``True``: the property's ``default``; ``False``: no starting relaxation (the
    ions of deformed cells still follow ``ions``; ``{"enabled": False, "ions": False}`` measures
    every cell exactly as built); a
    :class:`RelaxSettings`: itself; a dict (campaign files): the default with those fields replaced
    (unknown keys are a ``ValueError`` naming them)."""
    if relaxation is None or relaxation is True:
        return default
    if relaxation is False:
        return dataclasses.replace(default, enabled=False)
    if isinstance(relaxation, RelaxSettings):
        return relaxation
    if isinstance(relaxation, dict):
        known = {f.name for f in dataclasses.fields(RelaxSettings)}
        bad = sorted(set(relaxation) - known)
        if bad:
            raise ValueError(f"unknown relaxation settings {bad}; choose from {sorted(known)}")
        return dataclasses.replace(default, **relaxation)
    raise TypeError(f"relaxation must be None, a bool, a dict or RelaxSettings, got {type(relaxation).__name__}")
