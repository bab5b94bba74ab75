"""Base for property results: frozen dataclasses with units in field names and ``to_dict()``."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np


def jsonable(value: Any) -> Any:
    """Convert numpy arrays/scalars, dataclasses, ASE Atoms and containers to JSON-serialisable data.

    Non-finite floats become ``None`` (JSON has no NaN); ASE ``Atoms`` become a dict with
    symbols, positions (A), cell (A) and pbc.
    """
    from ase import Atoms

    if isinstance(value, PropertyResult):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Atoms):
        return {
            "symbols": value.get_chemical_symbols(),
            "positions_A": value.get_positions().tolist(),
            "cell_A": np.asarray(value.get_cell()).tolist(),
            "pbc": value.get_pbc().tolist(),
        }
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


@dataclasses.dataclass(frozen=True)
class PropertyResult:
    """Base class: subclasses are frozen dataclasses whose field names carry their units.

    ``REPORT_FIELDS``: the names of the fields a report or a database column may read (scalars,
    and per-mode lists such as ``frequencies_cm1``); a test checks that each is a field of its
    class, so that a renamed field fails there instead of silently vanishing from reports.

    ``precision``: the floating-point precision the potential computed in (``"float32"`` or
    ``"float64"``; keyword-only, set by :func:`mlip_props.properties.plan.compute` from the
    backend's answers), so that a float32 number is never mistaken for a float64 one.
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = ()
    precision: str | None = dataclasses.field(default=None, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def with_precision(result: Any, precision: str | None) -> Any:
    """``result`` with its ``precision`` recorded (results that already state one, and values
    that are not :class:`PropertyResult`, are returned unchanged)."""
    if precision is None or not isinstance(result, PropertyResult) or result.precision is not None:
        return result
    return dataclasses.replace(result, precision=precision)
