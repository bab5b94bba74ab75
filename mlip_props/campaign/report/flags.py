"""The physical-check flags of a result row, as the report shows them next to every number.

A flag is a short text, set when a result reports a failed check:

==============================  ======================================================================
flag                            result field
==============================  ======================================================================
``unconverged``                 ``converged`` false
``relaxation unconverged``      ``relax_converged`` false
``ionic relaxation unconverged`` ``ions_converged`` false
``mesh unconverged``            ``mesh_converged`` false
``bond length unconverged``     ``bond_length_converged`` false
``fit failed``                  ``success`` false
``imaginary modes``             ``imaginary_modes`` true or ``n_imaginary``/``n_imaginary_modes`` > 0
``Born-unstable``               ``born_stable`` false
``clamped-ion Born-unstable``   ``clamped_ion_born_stable`` false
``unstable``                    ``stable`` false
``v0 outside range``            ``v0_inside_range`` false
``residual stress``             ``residual_stress_ok`` false
``no LO-TO``                    ``lo_to_missing`` true (a polar crystal's phonons without Born charges)
``no repulsive wall``            ``repulsive_wall_ok`` false (a diatomic curve that does not rise toward short range)
``spurious minima``             ``n_spurious_minima`` > 0 (a diatomic curve with more than one minimum)
``kinked curve``                ``smooth`` false (a diatomic curve with a kink)
``tail not flat``               ``long_range_flat`` false (a diatomic curve that has not reached its limit)
``float32``                     ``precision`` or ``dtype`` (result or parameters) ``float32``
==============================  ======================================================================
"""
from __future__ import annotations

from typing import Any

__all__ = ["row_flags", "flags_text", "quality_flags", "FLAG_FIELDS", "FLAGS_LEGEND", "PRECISION_FLAGS"]

#: result field -> (value that raises the flag, flag)
FLAG_FIELDS: dict[str, tuple[bool, str]] = {
    "converged": (False, "unconverged"),
    "relax_converged": (False, "relaxation unconverged"),
    "ions_converged": (False, "ionic relaxation unconverged"),
    "mesh_converged": (False, "mesh unconverged"),
    "bond_length_converged": (False, "bond length unconverged"),
    "success": (False, "fit failed"),
    "imaginary_modes": (True, "imaginary modes"),
    "born_stable": (False, "Born-unstable"),
    "clamped_ion_born_stable": (False, "clamped-ion Born-unstable"),
    "stable": (False, "unstable"),
    "v0_inside_range": (False, "v0 outside range"),
    "residual_stress_ok": (False, "residual stress"),
    "lo_to_missing": (True, "no LO-TO"),
    "repulsive_wall_ok": (False, "no repulsive wall"),
    "smooth": (False, "kinked curve"),
    "long_range_flat": (False, "tail not flat"),
}

#: flags that describe how a number was computed, not a failed check: a float32 result is as good as
#: its precision allows (the precision-aware tolerances decide convergence), so it is shown in every
#: table but does not count as "flagged" in the statistics without flagged results, the red marks of
#: the parity plots or the summary's "flagged" column (a campaign of a float32 universal model would
#: otherwise have every row flagged and no statistics without them).
PRECISION_FLAGS = frozenset({"float32"})

#: the sentence the report prints above its tables
FLAGS_LEGEND = ("Flags (column \"flags\"; \"-\" = every check passed): unconverged = the result's converged is false; "
                "relaxation/ionic relaxation/mesh/bond length unconverged = relax_converged/ions_converged/"
                "mesh_converged/bond_length_converged false; fit failed = success false; imaginary modes; "
                "Born-unstable; v0 outside range = the EOS minimum lies outside the sampled volumes; residual stress "
                "= the unrelaxed cell carries a stress above the threshold; no LO-TO = phonons of a polar crystal "
                "without Born charges (no LO-TO splitting); no repulsive wall / spurious minima / kinked curve / tail "
                "not flat = checks of a diatomic energy curve (a model that has not seen short or long bonds: its "
                "global minimum may not be the bond); float32 = computed in single precision (shown, but not counted "
                "as a failed check: convergence tolerances follow the precision).")


def row_flags(result: dict[str, Any] | None, params: dict[str, Any] | None = None) -> list[str]:
    """The flags (in :data:`FLAG_FIELDS` order, then ``float32``) of one result row."""
    result = result or {}
    flags = [flag for key, (bad, flag) in FLAG_FIELDS.items()
             if isinstance(result.get(key), bool) and result[key] is bad]
    n_imag = max((result.get(k) for k in ("n_imaginary", "n_imaginary_modes")
                  if isinstance(result.get(k), int) and not isinstance(result.get(k), bool)), default=0)
    if n_imag > 0 and "imaginary modes" not in flags:
        flags.append("imaginary modes")
    n_minima = result.get("n_spurious_minima")
    if isinstance(n_minima, int) and not isinstance(n_minima, bool) and n_minima > 0:
        flags.append("spurious minima")
    dtypes = {str(d) for d in (result.get("precision"), result.get("dtype"), (params or {}).get("dtype"))
              if d is not None}
    if any("float32" in d for d in dtypes):
        flags.append("float32")
    return flags


def quality_flags(flags: list[str] | None) -> list[str]:
    """The flags of a failed physical check: ``flags`` without the precision notes (:data:`PRECISION_FLAGS`)."""
    return [f for f in (flags or []) if f not in PRECISION_FLAGS]


def flags_text(flags: list[str]) -> str:
    """Flags as a table cell: comma-separated, ``-`` for none."""
    return ", ".join(flags) if flags else "-"
