"""Predictions paired with experimental reference rows, and the statistics of the pairs.

A pair is a dict: ``label``, ``predicted``, ``reference`` (in the quantity's unit), ``source``
(citation of the reference value), ``reference_file``, ``reference_column``, ``via`` (the result
field it was read from), ``difference`` (predicted - reference), ``relative_difference_pct``,
``flags`` (the physical-check flags of the result rows the prediction was read from, see
:mod:`.flags`) and, for committee predictions only, ``predicted_std``.

Reference rows are picked by the structure label's key (``"Cu"`` of ``"Cu:fcc"``; a library name
such as ``"GaN-wurtzite"`` also under its formula and prototype, see
:func:`~.quantities.reference_keys`, first key with a row per table) and, where the table has a
``structure``/``phase`` column, by the label's crystal structure (else the table's first row for
that key).
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ..reference import ReferenceTable
from .flags import row_flags
from .quantities import Quantity, StructureResults, is_number, reference_keys

__all__ = ["parity_stats", "make_pair", "quantity_pairs", "phonon_pairs", "vibration_pairs", "geometry_pairs"]


def parity_stats(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, mean signed error, max |error| and R^2 of predictions against references.

    R^2 = 1 - SS_res / SS_tot; NaN (shown as "n/a") for fewer than 2 points or no spread in the
    reference values. MAPE_pct is NaN when a reference value is zero."""
    pred = np.asarray(pred, dtype=float)
    ref = np.asarray(ref, dtype=float)
    err = pred - ref
    n = len(err)
    if n == 0:
        return {"n": 0, "MAE": math.nan, "RMSE": math.nan, "ME": math.nan, "max_abs": math.nan, "R2": math.nan,
                "MAPE_pct": math.nan}
    ss_tot = float(np.sum((ref - ref.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if n >= 2 and ss_tot > 0 else math.nan
    return {"n": n, "MAE": float(np.mean(np.abs(err))), "RMSE": float(np.sqrt(np.mean(err**2))),
            "ME": float(np.mean(err)), "max_abs": float(np.max(np.abs(err))), "R2": r2,
            "MAPE_pct": float(np.mean(np.abs(err / ref)) * 100) if np.all(ref != 0) else math.nan}


def make_pair(label: str, pred: float, ref: float, source: str, table: ReferenceTable, column: str, via: str,
              std: float | None = None) -> dict[str, Any]:
    """One prediction-reference pair (see the module docstring)."""
    p = {"label": label, "predicted": pred, "reference": ref, "source": source, "reference_file": table.path.name,
         "reference_column": column, "via": via, "difference": pred - ref,
         "relative_difference_pct": 100 * (pred - ref) / ref if ref else math.nan}
    if is_number(std):  # committee std of the prediction: only present for committee rows
        p["predicted_std"] = float(std)
    return p


def prediction_flags(res: StructureResults, via: str) -> list[str]:
    """Flags of the rows a prediction was read from: every ``source.field`` named in ``via``
    (``eos.v0_A3_per_atom``, ``(4 x relax.volume_A3_per_atom)^(1/3)``) picks the structure's rows
    of that source that hold the field."""
    flags: list[str] = []
    for src, fieldname in re.findall(r"([A-Za-z_]+)\.([A-Za-z0-9_]+)", via):
        for prop, rows in res.items():
            for r in rows:
                if r.get("from", prop) == src and fieldname in r["result"]:
                    flags += [f for f in row_flags(r["result"], r.get("params")) if f not in flags]
    return flags


def _structure_condition(t: ReferenceTable, key: str, crystal: str | None) -> tuple[dict[str, Any], str | None]:
    """Row filter on the table's structure/phase column: the label's crystal, else the first row's."""
    col = next((c for c in ("structure", "phase") if c in t.frame.columns), None)
    if col is None:
        return {}, crystal
    if crystal is None:
        sel = t.frame[t.frame[t.key] == key]
        crystal = str(sel.iloc[0][col]) if len(sel) else None
    return {col: crystal}, crystal


def _reference_column(q: Quantity, t: ReferenceTable) -> str | None:
    col = next((c for c in q.ref_columns if c in t.units), None)
    if col is None and q.match is not None:
        col = next((c for c in t.units if q.match(c)), None)
    return col


def quantity_pairs(q: Quantity, preds: dict[str, StructureResults], tables: list[ReferenceTable]) -> list[dict]:
    """Pairs of ``q`` over every table that has one of its columns and every structure that both
    predicts it and has a reference value (tables in order, structures by label)."""
    pairs = []
    for t in tables:
        col = _reference_column(q, t)
        if col is None:
            continue
        for label, res in sorted(preds.items()):
            for key, crystal in reference_keys(label):
                cond, crystal = _structure_condition(t, key, crystal)
                cond.update({c: v for c, v in q.conditions.items() if c in t.frame.columns})
                refv = t.value(key, col, **cond)
                if refv is not None:
                    break
            if refv is None:
                continue
            pv = q.predict(res, crystal or "")
            if pv is None:
                continue
            pair = make_pair(label, pv[0], refv[0], refv[1], t, col, pv[1], pv[2] if len(pv) > 2 else None)
            pair["flags"] = prediction_flags(res, pv[1])
            pairs.append(pair)
    return pairs


def _distinct_frequencies(pred: list, std: list, gamma: bool) -> tuple[list[float], list[float | None]]:
    """Ascending frequencies with degenerate branches (within 0.01 THz) merged, each with the std
    of its first branch; at Gamma the acoustic zeros (< 0.05 THz) dropped."""
    distinct: list[float] = []
    dstd: list[float | None] = []
    for f, e in sorted(((float(x), e) for x, e in zip(pred, std) if x is not None), key=lambda p: p[0]):
        if not distinct or f - distinct[-1] > 0.01:
            distinct.append(f)
            dstd.append(e)
    if gamma:
        keep = [k for k, f in enumerate(distinct) if f > 0.05]
        distinct, dstd = [distinct[k] for k in keep], [dstd[k] for k in keep]
    return distinct, dstd


def phonon_pairs(preds: dict[str, StructureResults], tables: list[ReferenceTable]) -> list[dict]:
    """Phonon frequencies (THz) at high-symmetry points: the distinct predicted frequencies at a
    point (degenerate branches merged within 0.01 THz), ascending, paired with the experimental
    rows of that point, ascending, when their numbers agree."""
    pairs = []
    for t in tables:
        col = next((c for c in t.units if c.endswith("_THz") and not c.startswith("uncertainty")), None)
        if col is None or "point" not in t.frame.columns:
            continue
        for label, res in sorted(preds.items()):
            ph = res.get("phonons", [])
            if not ph:
                continue
            at_points = ph[0]["result"].get("high_symmetry_frequencies_THz") or {}
            at_points_std = ph[0]["result"].get("high_symmetry_frequencies_THz_std") or {}
            via_prop = ph[0].get("from", "phonons")
            flags = row_flags(ph[0]["result"], ph[0].get("params"))
            for key, crystal in reference_keys(label):
                cond, _ = _structure_condition(t, key, crystal)
                rows = t.frame[t.frame[t.key] == key]
                for c, v in cond.items():
                    rows = rows[rows[c] == v]
                if len(rows):
                    break
            for point, grp in rows.groupby("point"):
                point_key = (str(point) if at_points.get(str(point))
                             else ("Gamma" if str(point) in ("G", "Γ") else str(point)))
                pred = at_points.get(point_key)
                if not pred:
                    continue
                sd = at_points_std.get(point_key)
                if not (isinstance(sd, list) and len(sd) == len(pred)):
                    sd = [None] * len(pred)
                distinct, dstd = _distinct_frequencies(pred, sd, str(point) in ("Gamma", "G", "Γ"))
                grp = grp.sort_values(col)
                if len(distinct) != len(grp):
                    continue
                for f, e, (_, r) in zip(distinct, dstd, grp.iterrows()):
                    br = f" {r['branch']}" if "branch" in grp.columns else ""
                    pairs.append(make_pair(f"{label} {point}{br}", f, float(r[col]), t.source_for(r, col), t, col,
                                           f"{via_prop}.high_symmetry_frequencies_THz[{point}]", e)
                                 | {"flags": list(flags)})
    return pairs


def vibration_pairs(preds: dict[str, StructureResults], tables: list[ReferenceTable]) -> list[dict]:
    """Molecular vibrational frequencies (cm⁻¹): predicted, ascending, paired with the
    experimental fundamentals, ascending (degenerate modes repeated), when their numbers agree."""
    pairs = []
    for t in tables:
        if "frequency_cm1" not in t.units or "mode" not in t.frame.columns:
            continue
        for label, res in sorted(preds.items()):
            key = reference_keys(label)[0][0]
            rows = t.frame[t.frame[t.key] == key]
            vib = res.get("vibrations", [])
            if rows.empty or not vib:
                continue
            exp = []
            for _, r in rows.iterrows():
                deg = int(r["degeneracy"]) if "degeneracy" in rows.columns and r["degeneracy"] == r["degeneracy"] else 1
                exp += [(float(r["frequency_cm1"]), str(r["mode"]), t.source_for(r, "frequency_cm1"))] * deg
            exp.sort()
            freqs = sorted(float(f) for f in vib[0]["result"].get("frequencies_cm1", []) if f is not None)
            if len(freqs) != len(exp):
                continue
            seen: dict[str, int] = {}
            flags = row_flags(vib[0]["result"], vib[0].get("params"))
            for f, (e, mode, src) in zip(freqs, exp):
                seen[mode] = seen.get(mode, 0) + 1
                lab = f"{label} {mode}" + (f"({seen[mode]})" if seen[mode] > 1 else "")
                pairs.append(make_pair(lab, f, e, src, t, "frequency_cm1", "vibrations.frequencies_cm1 (ascending)")
                             | {"flags": list(flags)})
    return pairs


def _relaxed_geometry(result: dict) -> tuple[list[str], np.ndarray] | None:
    atoms = result.get("atoms") if isinstance(result, dict) else None
    if not isinstance(atoms, dict) or "symbols" not in atoms or "positions_A" not in atoms:
        return None
    return list(atoms["symbols"]), np.asarray(atoms["positions_A"], dtype=float)


def _bonded(symbols: list[str], pos: np.ndarray, i: int, j: int) -> bool:
    """Bonded when closer than 1.25 x the sum of ASE's covalent radii."""
    from ase.data import atomic_numbers, covalent_radii

    r = covalent_radii[atomic_numbers[symbols[i]]] + covalent_radii[atomic_numbers[symbols[j]]]
    return bool(np.linalg.norm(pos[i] - pos[j]) < 1.25 * r)


def _mean_geometry(symbols: list[str], pos: np.ndarray, names: list[str]) -> float | None:
    """Mean distance (A) of the bonded pairs A-B, or mean angle (deg) at B of the bonded triples A-B-C."""
    n = len(symbols)
    vals = []
    if len(names) == 2:
        a, b = names
        vals = [float(np.linalg.norm(pos[i] - pos[j])) for i in range(n) for j in range(n)
                if i != j and symbols[i] == a and symbols[j] == b and (a != b or i < j) and _bonded(symbols, pos, i, j)]
    elif len(names) == 3:
        a, c, b = names
        for k in range(n):
            if symbols[k] != c:
                continue
            for i in range(n):
                for j in range(n):
                    if (i < j or (a != b and i != j)) and k not in (i, j) and symbols[i] == a and symbols[j] == b \
                            and _bonded(symbols, pos, i, k) and _bonded(symbols, pos, j, k):
                        u, v = pos[i] - pos[k], pos[j] - pos[k]
                        cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
                        vals.append(math.degrees(math.acos(max(-1.0, min(1.0, cos)))))
    return float(np.mean(vals)) if vals else None


def geometry_pairs(preds: dict[str, StructureResults], tables: list[ReferenceTable], column: str) -> list[dict]:
    """Bond lengths (``column="r_A"``) or angles (``"angle_deg"``) of the molecules the ``vibrations``
    property relaxed, paired with the rows of a geometry table (``molecular_geometries.csv``: an
    ``atoms`` column "A-B" or "A-B-C" and the value column)."""
    pairs = []
    for t in tables:
        if column not in t.units or "atoms" not in t.frame.columns:
            continue
        for label, res in sorted(preds.items()):
            key = reference_keys(label)[0][0]
            rows = t.frame[(t.frame[t.key] == key) & t.frame[column].notna()]
            vib = res.get("vibrations", [])
            geom = _relaxed_geometry(vib[0]["result"]) if vib else None
            if rows.empty or geom is None:
                continue
            flags = row_flags(vib[0]["result"], vib[0].get("params"))
            for _, r in rows.iterrows():
                value = _mean_geometry(geom[0], geom[1], str(r["atoms"]).split("-"))
                if value is None:
                    continue
                what = r["quantity"] if "quantity" in rows.columns else r["atoms"]
                pairs.append(make_pair(f"{label} {what}", value, float(r[column]), t.source_for(r, column), t, column,
                                       "vibrations.atoms (relaxed geometry)") | {"flags": list(flags)})
    return pairs
