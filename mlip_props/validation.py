"""Checks of user-given numbers, shared by every property and the command line.

:func:`check_number` validates one numeric parameter where it enters a public function and
raises ``ValueError`` with the parameter's name, the value and the allowed range, so a negative
temperature or a NaN step count never turns into a result that was not computed.
:func:`reraise_control` lets ``except BaseException`` blocks catch the faults of compiled
libraries that do not derive from ``Exception`` (a Rust ``PanicException``) while letting
interrupts and exits through.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

__all__ = ["check_number", "check_numbers", "reraise_control", "CONTROL_EXCEPTIONS"]

#: exceptions that stop the program on purpose and must never be turned into an error message
CONTROL_EXCEPTIONS = (KeyboardInterrupt, SystemExit, GeneratorExit)


def _range_text(minimum: float | None, maximum: float | None, exclusive_minimum: bool,
                exclusive_maximum: bool = False) -> str:
    lo = None if minimum is None else (f"> {minimum:g}" if exclusive_minimum else f">= {minimum:g}")
    hi = None if maximum is None else (f"< {maximum:g}" if exclusive_maximum else f"<= {maximum:g}")
    parts = [p for p in (lo, hi) if p]
    return " and ".join(parts) if parts else "finite"


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    integer: bool = False,
    allow_none: bool = False,
) -> Any:
    """Return ``value`` when it is a finite real number (an integer when ``integer``) within
    ``[minimum, maximum]`` (an end excluded when ``exclusive_minimum``/``exclusive_maximum``), ``None`` when
    ``allow_none``; else raise ``ValueError`` naming the parameter, the value and the allowed range.

    Booleans are refused (``True`` is not a step count); numpy scalars are accepted.
    """
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"parameter {name!r}: a number is required, got None")
    kind = "an integer" if integer else "a number"
    allowed = _range_text(minimum, maximum, exclusive_minimum, exclusive_maximum)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"parameter {name!r}: expected {kind} ({allowed}), got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"parameter {name!r}: expected a finite {'integer' if integer else 'number'} ({allowed}), "
                         f"got {value!r}")
    if integer and not isinstance(value, numbers.Integral):
        if float(value) != int(value):
            raise ValueError(f"parameter {name!r}: expected an integer ({allowed}), got {value!r}")
        value = int(value)
    v = float(value)
    too_low = minimum is not None and (v <= minimum if exclusive_minimum else v < minimum)
    too_high = maximum is not None and (v >= maximum if exclusive_maximum else v > maximum)
    if too_low or too_high:
        raise ValueError(f"parameter {name!r}: {value!r} is out of range (allowed: {allowed})")
    return value


def check_numbers(name: str, values: Any, **limits: Any) -> list:
    """:func:`check_number` for every element of a sequence (the message names ``name[k]``);
    ``ValueError`` for an empty sequence or a non-sequence."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence,)) and not hasattr(values, "__len__"):
        raise ValueError(f"parameter {name!r}: expected a list of numbers, got {values!r}")
    out = [check_number(f"{name}[{k}]", v, **limits) for k, v in enumerate(list(values))]
    if not out:
        raise ValueError(f"parameter {name!r}: expected at least one number, got an empty list")
    return out


def reraise_control(exc: BaseException) -> None:
    """Re-raise ``exc`` when it is an interrupt or an exit (:data:`CONTROL_EXCEPTIONS`); return
    otherwise, so the caller can report it like any other error."""
    if isinstance(exc, CONTROL_EXCEPTIONS):
        raise exc


def check_mesh(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """A sampling mesh: a length (A, a number > 0) or three integers >= 1 (Gamma-centred mesh
    numbers); ``None`` when ``allow_none``. Returns the value (a list of three ints for a mesh);
    ``ValueError`` naming the parameter otherwise (a negative mesh number would reach phonopy's
    compiled code and abort the process)."""
    if value is None and allow_none:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return check_number(name, value, minimum=0.0, exclusive_minimum=True)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 3:
        raise ValueError(f"parameter {name!r}: expected a length in A (> 0) or three integers >= 1, got {value!r}")
    return check_numbers(name, list(value), minimum=1, integer=True)
