"""Loader for the experimental reference tables (``mlip_props/data/reference/*.csv``, shipped
inside the package) with their sources.

A table is named by path or, for a shipped one, by name: ``load_reference("elements_fcc")``;
:func:`reference_file` and :func:`reference_data_dir` (from :mod:`mlip_props.data`, the one place
that finds the shipped files) give the paths.

File format: ``#`` comment lines (units, temperatures, full citations), then a CSV header and rows.
The first column among ``element, formula, molecule, species, system, name`` is the key. Checks
on load (``ValueError`` naming file, row and column):

* every numeric column carries its unit as a suffix (``_A``, ``_GPa``, ``_eV``, ``_cm1``,
  ``_THz``, ``_K``, ``_J_mol_K`` ...) or is declared dimensionless (``_ratio``, ``_count``,
  ``_dimensionless``, or a name in :data:`DIMENSIONLESS`); a column named ``value`` or
  ``second_value`` may take its unit from a ``unit`` column instead (every row must give one);
* a column ending in ``_source`` or named ``source`` is present, and every row has a source for
  each value it gives;
* no key appears twice (with the same ``structure``/``state`` column when the file has one).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data import reference_data_dir, reference_file, reference_names

__all__ = ["ReferenceTable", "load_reference", "load_all_references", "UNIT_SUFFIXES", "unit_of",
           "reference_data_dir", "reference_file", "reference_names"]

#: recognised unit suffixes -> unit text for axis labels (longest match wins)
UNIT_SUFFIXES: dict[str, str] = {
    "_A3_per_atom": "Å³/atom", "_eV_per_atom": "eV/atom", "_J_mol_K": "J/(mol K)", "_J_molK": "J/(mol K)",
    "_kJ_mol": "kJ/mol", "_eV_A2": "eV/Å²", "_eV_A": "eV/Å", "_GPa": "GPa", "_eV": "eV", "_cm1": "cm⁻¹",
    "_THz": "THz", "_K": "K", "_A": "Å", "_amu": "amu", "_A3": "Å³", "_deg": "deg", "_pct": "%",
    "_1_K": "1/K", "_per_K": "1/K", "_kg_m3": "kg/m³", "_g_cm3": "g/cm³", "_D": "D", "_cm1_per_A": "cm⁻¹/Å",
}
DIMENSIONLESS = {"bulk_modulus_derivative", "B_prime", "Bp", "multiplicity", "Z", "spin", "degeneracy",
                 "poisson_ratio", "anisotropy", "symmetry_number"}
_DIMLESS_SUFFIX = ("_ratio", "_count", "_dimensionless", "_index")
#: value columns whose unit is given per row by a ``unit`` column
_UNIT_COLUMN_VALUES = ("value", "second_value")
KEY_COLUMNS = ("element", "material", "formula", "molecule", "species", "system", "name")
_CONDITION_COLUMNS = ("structure", "state", "phase", "point", "q_point", "branch", "mode", "temperature_K", "T_K",
                      "transition", "quantity", "condition", "isotopologue")


def unit_of(column: str) -> str | None:
    """Unit text of a column name from its suffix; ``""`` for dimensionless; ``None`` if none."""
    for suf in sorted(UNIT_SUFFIXES, key=len, reverse=True):
        if column.endswith(suf):
            return UNIT_SUFFIXES[suf]
    if column in DIMENSIONLESS or column.endswith(_DIMLESS_SUFFIX):
        return ""
    return None


@dataclass
class ReferenceTable:
    """A checked reference file: ``frame`` (pandas), key column, value columns with units, sources."""

    path: Path
    frame: Any
    key: str
    units: dict[str, str]
    comments: list[str] = field(default_factory=list)

    def value(self, key: str, column: str, **conditions: Any) -> tuple[float, str] | None:
        """(value, source) for ``key`` and ``column`` or ``None`` when absent/blank."""
        df = self.frame
        sel = df[df[self.key] == key]
        for c, v in conditions.items():
            if c in sel.columns:
                sel = sel[sel[c] == v]
        if sel.empty or column not in sel.columns:
            return None
        v = sel.iloc[0][column]
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None
        if v != v:
            return None
        return v, self.source_for(sel.iloc[0], column)

    def source_for(self, row: Any, column: str) -> str:
        base = column
        for suf in sorted(UNIT_SUFFIXES, key=len, reverse=True):
            if base.endswith(suf):
                base = base[: -len(suf)]
                break
        cands = [f"{base}_source", f"{base.split('_')[0]}_source", "source", "primary_source"]
        if re.fullmatch(r"C\d\d(_second)?", base):
            cands.insert(0, "C_second_source" if base.endswith("_second") else "C_source")
        for c in cands:
            if c in row.index and str(row[c]) not in ("", "nan"):
                return str(row[c])
        return ""


def load_reference(path: str | Path) -> ReferenceTable:
    """Read and check one reference CSV (see the module docstring): a path, or the name of a
    shipped table (``"elements_fcc"``, ``"elements_fcc.csv"``) when no such file exists."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        if p.name != str(path):
            raise FileNotFoundError(f"reference file {str(p)!r} does not exist")
        try:
            p = reference_file(p.name)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"reference file {str(path)!r} does not exist, and {exc}") from None
    text = p.read_text()
    comments = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("#")]
    df = pd.read_csv(p, comment=None, skip_blank_lines=True,
                     skiprows=[i for i, ln in enumerate(text.splitlines()) if ln.startswith("#")],
                     keep_default_na=True, dtype=str)
    if df.empty:
        raise ValueError(f"{p}: no rows")
    key = next((c for c in KEY_COLUMNS if c in df.columns), None)
    if key is None:
        raise ValueError(f"{p}: no key column (one of {', '.join(KEY_COLUMNS)})")
    src_cols = [c for c in df.columns if c == "source" or c.endswith("_source")]
    if not src_cols:
        raise ValueError(f"{p}: no source column ('source' or '<quantity>_source')")
    units: dict[str, str] = {}
    problems = []
    for c in df.columns:
        if c == key or c in src_cols or c in ("comment", "comments", "notes", "reference", "structure", "state",
                                              "phase", "point", "q_point", "branch", "mode", "method", "unit",
                                              "transition", "quantity", "condition", "cross_check"):
            continue
        num = pd.to_numeric(df[c], errors="coerce")
        if num.notna().sum() == 0:
            continue  # text column
        u = unit_of(c)
        if u is None and c in _UNIT_COLUMN_VALUES and "unit" in df.columns:
            missing = df[df[c].notna() & (df["unit"].isna() | (df["unit"].astype(str).str.strip() == ""))]
            for i in missing.index:
                problems.append(f"row {i + 1}: value without a unit")
            u = "per row (unit column)"
        if u is None:
            problems.append(f"column {c!r} is numeric but has no unit suffix ({', '.join(sorted(UNIT_SUFFIXES))} "
                            f"or a dimensionless marker)")
            continue
        units[c] = u
        bad = df[df[c].notna() & num.isna()]
        for i in bad.index:
            problems.append(f"row {i + 1}: column {c!r}: {df.at[i, c]!r} is not a number")
        df[c] = num
    conds = [c for c in _CONDITION_COLUMNS if c in df.columns]
    dup = df.duplicated(subset=[key] + conds, keep=False)
    for i in df.index[dup]:
        problems.append(f"row {i + 1}: duplicate entry for {key}={df.at[i, key]!r}"
                        + (f" ({', '.join(f'{c}={df.at[i, c]}' for c in conds)})" if conds else ""))
    table = ReferenceTable(p, df, key, units, comments)
    for i in df.index:
        for c in units:
            v = df.at[i, c]
            if v == v and not table.source_for(df.loc[i], c):
                problems.append(f"row {i + 1}: value {c}={v} has no source")
    if problems:
        raise ValueError(f"{p}: " + "; ".join(problems))
    return table


def load_all_references(folder: str | Path | None = None) -> dict[str, ReferenceTable | Exception]:
    """Every ``*.csv`` in ``folder`` (default :func:`reference_data_dir`, the shipped tables), by
    file stem; a file that fails its checks maps to the exception (so one bad file does not hide
    the others)."""
    out: dict[str, ReferenceTable | Exception] = {}
    for f in sorted(Path(folder or reference_data_dir()).glob("*.csv")):
        try:
            out[f.stem] = load_reference(f)
        except (ValueError, FileNotFoundError) as exc:
            out[f.stem] = exc
    return out
