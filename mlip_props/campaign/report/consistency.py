"""Cross-checks between the properties of one structure: one physical quantity computed two ways.

Bulk modulus, equation of state vs elastic tensor. Under a hydrostatic pressure the strain is
``S sigma`` with ``S = C^-1``, so the bulk modulus of the elastic tensor is the Reuss one,
``B_R = 1 / sum_{i,j<=3} S_ij`` (A. Reuss, Z. Angew. Math. Mech. 9, 49 (1929)); for a cubic crystal
``(C11 + 2 C12)/3``. The EOS fit's ``B0`` is the same second derivative of the energy at the
equilibrium volume, so the two agree up to the anharmonicity over the EOS's volume range (a few
per cent for a well-behaved potential: a Birch-Murnaghan fit of ``E(V)`` over +-6 % and the
``C_ij`` from strains of +-1 % see the same curvature). A larger gap says the potential's ``E(V)``
is not harmonic near V0 (its curvature at the minimum differs from the curvature over the range:
a fitted potential that has seen few near-equilibrium cells), or that its stress does not match
its energy (a direct-stress head, an unconverged relaxation). Neither number is then to be trusted
on its own.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .quantities import StructureResults, is_number

__all__ = ["reuss_bulk_modulus_GPa", "bulk_modulus_cross_checks", "BULK_MODULUS_TOLERANCE"]

#: relative gap between the EOS and the elastic-tensor bulk moduli above which the report flags it
BULK_MODULUS_TOLERANCE = 0.10


def reuss_bulk_modulus_GPa(c_GPa: Any) -> float | None:
    """``1 / sum_{i,j<=3} S_ij`` (GPa) of a 6x6 Voigt stiffness tensor (GPa); None when it is not a
    finite, invertible 6x6 tensor."""
    try:
        c = np.asarray(c_GPa, dtype=float)
    except (TypeError, ValueError):
        return None
    if c.shape != (6, 6) or not np.isfinite(c).all():
        return None
    try:
        s = np.linalg.inv(c)
    except np.linalg.LinAlgError:
        return None
    total = float(s[:3, :3].sum())
    return 1.0 / total if total != 0.0 else None


def _first_value(rows: list[dict], field: str) -> tuple[Any, str] | None:
    for r in rows:
        v = (r.get("result") or {}).get(field)
        if v is not None:
            return v, r.get("from", "")
    return None


def bulk_modulus_cross_checks(predictions: dict[str, StructureResults],
                              tolerance: float = BULK_MODULUS_TOLERANCE) -> list[dict[str, Any]]:
    """One record per structure with both an EOS bulk modulus and an elastic tensor (the first row
    of each, committee means first, as the comparisons read them): ``B_eos_GPa``,
    ``B_elastic_reuss_GPa``, ``relative_difference_pct`` (elastic vs EOS) and ``consistent``
    (|difference| <= ``tolerance``)."""
    out = []
    for label, results in sorted(predictions.items()):
        eos = _first_value(results.get("eos", []), "bulk_modulus_GPa")
        el = _first_value(results.get("elastic", []), "C_GPa")
        if eos is None or el is None or not is_number(eos[0]) or eos[0] <= 0:
            continue
        b_r = reuss_bulk_modulus_GPa(el[0])
        if b_r is None:
            continue
        rel = b_r / float(eos[0]) - 1.0
        out.append({"label": label, "B_eos_GPa": float(eos[0]), "B_elastic_reuss_GPa": b_r,
                    "relative_difference_pct": 100.0 * rel, "consistent": abs(rel) <= tolerance,
                    "from_committee": "committee" in (eos[1], el[1])})
    return out
