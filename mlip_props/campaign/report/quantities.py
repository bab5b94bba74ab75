"""What a report reads from each result: the predicted quantities, their units and reference columns.

A :class:`Quantity` names the reference-table columns it is compared with (``a_A``, ``B_GPa``,
``C11_GPa`` ...) and a predictor that reads the value, from the results of one structure, out of
the property rows of a results database. First available source wins:

* lattice constant a (Å) of a cubic crystal: EOS ``v0_A3_per_atom``; else a cell-relaxed
  ``relax``/``energy`` row's ``volume_A3_per_atom``; a = (n V)^(1/3) with n atoms per conventional
  cubic cell (:data:`CELL_ATOMS`: fcc 4, bcc 2, sc 1, diamond 8, and the compound prototypes of the
  structure library: zincblende 8, rocksalt 8, CsCl 2, fluorite 12, perovskite 5, spinel 56);
* lattice constants a and c (Å) of a non-cubic crystal (:data:`NONCUBIC`: hcp, wurtzite, rutile,
  corundum, beta-Sn, bct): the conventional cell that spglib finds in the relaxed cell of a
  cell-relaxed ``relax`` row (``atoms.cell_A``; hexagonal axes for corundum); a volume alone cannot
  give them, so without such a row there is no prediction;
* bulk modulus B (GPa): EOS ``bulk_modulus_GPa``; else (C11 + 2 C12)/3 of the elastic ``C_GPa``
  (cubic or unknown crystal), the Voigt average (C11 + C22 + C33 + 2 (C12 + C13 + C23))/9 for a
  non-cubic one;
* C11, C12, C13, C33, C44, C66 (GPa): elastic ``C_GPa`` (6x6 Voigt);
* r_e (Å), ω_e (cm⁻¹), D_0 and D_e (eV): ``bond_length_A``, ``omega_e_cm1``, ``D0_eV``,
  ``dissociation_energy_eV`` of ``diatomic`` rows;
* Cv at 298.15 K (J/(mol K), per mole of atoms): thermal ``cv_J_molK`` interpolated in
  ``temperatures_K``; Debye temperature (K): thermal ``debye_temperature_K``;
* lattice thermal conductivity (W/(m K)) at 300 K: conductivity ``kappa_average_W_mK`` (the mean of
  the diagonal, at the computed temperature nearest 300 K, within 5 K), against the ``kappa_lattice``
  rows of a table with ``quantity``/``value``/``unit`` columns.

Structure labels meet reference keys through :func:`reference_keys`: a label that is a name of the
structure library (``"Si-diamond"``) is looked up under that name (``solids.csv``,
``elastic_constants.csv``) and under its formula and prototype (``"Si"``, ``"diamond"``: the
tables keyed by material with a ``structure`` column), first hit per table.

A predictor returns ``(value, where from)`` or ``(value, where from, committee std)``; the std
comes from ``<field>_std`` or, for derived values, from the per-member values ``<field>_members``
(ddof 0). A ``committee`` row is read through :func:`committee_views`, which shows its committee
means under the single-potential field names.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Quantity", "QUANTITIES", "PHONON_FREQUENCIES", "VIBRATION_FREQUENCIES", "CELL_ATOMS", "NONCUBIC",
           "committee_views", "collect_predictions", "split_label", "is_number", "is_cv298_column", "reference_keys"]

#: atoms per conventional cubic cell of the cubic lattices the lattice constant is derived for
CELL_ATOMS = {"fcc": 4, "bcc": 2, "sc": 1, "diamond": 8,
              "zincblende": 8, "rocksalt": 8, "CsCl": 2, "fluorite": 12, "perovskite": 5, "spinel": 56}
#: non-cubic prototypes whose a and c are read from a relaxed cell
NONCUBIC = {"hcp", "wurtzite", "rutile", "corundum", "beta-Sn", "bct"}

#: results of one structure: property -> list of {"params", "result"[, "from"]}
StructureResults = dict[str, list[dict]]
#: (value, where from) or (value, where from, committee std)
Prediction = tuple


@dataclass
class Quantity:
    """One compared quantity: ``key`` (report.json), ``label`` and ``unit`` (tables, axes), the
    reference columns it matches (first present wins), ``predict(results, crystal)``, and a
    ``note`` printed above its table (how predictions and measurements are paired)."""

    key: str
    label: str
    unit: str
    ref_columns: tuple[str, ...]
    predict: Callable[[StructureResults, str], Prediction | None]
    match: Callable[[str], bool] | None = None  # fallback: any reference column this accepts
    conditions: dict[str, Any] = field(default_factory=dict)  # row filters applied where the column exists
    note: str = ""


def is_number(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _rows(results: StructureResults, prop: str) -> list[dict]:
    return results.get(prop, [])


def _first_row(results: StructureResults, prop: str, fieldname: str,
               cond: Callable[[dict], bool] = lambda r: True) -> tuple[float, dict] | None:
    for r in _rows(results, prop):
        v = r["result"].get(fieldname)
        if is_number(v) and cond(r):
            return float(v), r
    return None


def _first(results: StructureResults, prop: str, fieldname: str,
           cond: Callable[[dict], bool] = lambda r: True) -> Prediction | None:
    """(value, where from) of the first row with the field; (value, where from, std) when the
    row carries a committee std ``<field>_std``."""
    got = _first_row(results, prop, fieldname, cond)
    if got is None:
        return None
    v, r = got
    std = r["result"].get(f"{fieldname}_std")
    via = f"{r.get('from', prop)}.{fieldname}"
    return (v, via, float(std)) if is_number(std) else (v, via)


def _members_std(values: Any) -> float | None:
    """Committee std (ddof 0) of per-member values, None when there are none."""
    if not isinstance(values, list) or not values:
        return None
    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None
    return float(x.std()) if np.all(np.isfinite(x)) else None


def _cell_relaxed(r: dict) -> bool:
    return bool(r["params"].get("relax_cell"))


def _conventional_lengths_A(results: StructureResults) -> tuple[float, float, str] | None:
    """(a, c, where from) of the conventional cell spglib finds in the relaxed cell of the first
    cell-relaxed ``relax`` row that stores its atoms (symprec 1e-3 A)."""
    import spglib
    from ase.data import atomic_numbers

    for r in _rows(results, "relax"):
        at = r["result"].get("atoms")
        if not (_cell_relaxed(r) and isinstance(at, dict) and at.get("cell_A") and at.get("positions_A")):
            continue
        cell = np.asarray(at["cell_A"], dtype=float)
        frac = np.linalg.solve(cell.T, np.asarray(at["positions_A"], dtype=float).T).T
        nums = [atomic_numbers[s] for s in at["symbols"]]
        std = spglib.standardize_cell((cell, frac, nums), to_primitive=False, no_idealize=True, symprec=1e-3)
        if std is None:
            continue
        lengths = np.linalg.norm(std[0], axis=1)
        return float(lengths[0]), float(lengths[2]), f"{r.get('from', 'relax')}.atoms.cell_A (spglib conventional cell)"
    return None


def _lattice_constant_c_A(results: StructureResults, structure: str) -> Prediction | None:
    if structure not in NONCUBIC:
        return None
    got = _conventional_lengths_A(results)
    return (got[1], got[2].replace("conventional cell", "conventional c")) if got else None


def _lattice_constant_A(results: StructureResults, structure: str) -> Prediction | None:
    if structure in NONCUBIC:
        got = _conventional_lengths_A(results)
        return (got[0], got[2].replace("conventional cell", "conventional a")) if got else None
    n = CELL_ATOMS.get(structure or "fcc")
    if n is None:
        return None
    for prop, fname, cond in (("eos", "v0_A3_per_atom", lambda r: True),
                              ("relax", "volume_A3_per_atom", _cell_relaxed),
                              ("energy", "volume_A3_per_atom", _cell_relaxed)):
        got = _first(results, prop, fname, cond)
        if got:
            out = ((n * got[0]) ** (1 / 3), f"({n} x {got[1]})^(1/3)")
            members = _first_row(results, prop, fname, cond)[1]["result"].get(f"{fname}_members")
            std = _members_std([(n * v) ** (1 / 3) for v in members]) if isinstance(members, list) else None
            return out + (std,) if std is not None else out
    return None


def _elastic_constant_GPa(results: StructureResults, i: int, j: int) -> Prediction | None:
    for r in _rows(results, "elastic"):
        c = r["result"].get("C_GPa")
        if isinstance(c, list) and len(c) == 6:
            v = c[i][j]
            if v is not None:
                out = (float(v), f"{r.get('from', 'elastic')}.C_GPa[{i}][{j}]")
                sd = r["result"].get("C_GPa_std")
                if isinstance(sd, list) and len(sd) == 6 and is_number(sd[i][j]):
                    out += (float(sd[i][j]),)
                return out
    return None


def _bulk_modulus_GPa(results: StructureResults, structure: str) -> Prediction | None:
    got = _first(results, "eos", "bulk_modulus_GPa")
    if got:
        return got
    if structure in NONCUBIC:  # the Voigt average of the full tensor
        for r in _rows(results, "elastic"):
            c = r["result"].get("C_GPa")
            if isinstance(c, list) and len(c) == 6 and all(is_number(c[i][j]) for i in range(3) for j in range(3)):
                bv = (c[0][0] + c[1][1] + c[2][2] + 2 * (c[0][1] + c[0][2] + c[1][2])) / 9
                return float(bv), f"Voigt average (C11 + C22 + C33 + 2 (C12 + C13 + C23))/9 of {r.get('from', 'elastic')}.C_GPa"
        return None
    c11, c12 = _elastic_constant_GPa(results, 0, 0), _elastic_constant_GPa(results, 0, 1)
    if c11 and c12:
        out = ((c11[0] + 2 * c12[0]) / 3, f"(C11 + 2 C12)/3 of {c11[1].split('.')[0]}.C_GPa")
        cm = next((r["result"].get("C_GPa_members") for r in _rows(results, "elastic")
                   if isinstance(r["result"].get("C_GPa"), list)), None)
        std = _members_std([(c[0][0] + 2 * c[0][1]) / 3 for c in cm]) if isinstance(cm, list) else None
        return out + (std,) if std is not None else out
    return None


def _cv_298K_J_molK(results: StructureResults, structure: str) -> Prediction | None:
    for r in _rows(results, "thermal"):
        t, cv = r["result"].get("temperatures_K"), r["result"].get("cv_J_molK")
        if isinstance(t, list) and isinstance(cv, list) and len(t) == len(cv) and min(t) <= 298.15 <= max(t):
            out = (float(np.interp(298.15, t, cv)),
                   f"{r.get('from', 'thermal')}.cv_J_molK at 298.15 K (harmonic Cv)")
            members = r["result"].get("cv_J_molK_members")
            std = _members_std([float(np.interp(298.15, t, c)) for c in members]) if isinstance(members, list) else None
            return out + (std,) if std is not None else out
    return None


def _kappa_300K_W_mK(results: StructureResults, structure: str) -> Prediction | None:
    for r in _rows(results, "conductivity"):
        t, k = r["result"].get("temperatures_K"), r["result"].get("kappa_average_W_mK")
        if not (isinstance(t, list) and isinstance(k, list) and len(t) == len(k) and t):
            continue
        i = int(np.argmin(np.abs(np.asarray(t, dtype=float) - 300.0)))
        if abs(float(t[i]) - 300.0) <= 5.0 and is_number(k[i]):
            out = float(k[i]), f"{r.get('from', 'conductivity')}.kappa_average_W_mK at {float(t[i]):g} K"
            std = r["result"].get("kappa_average_W_mK_std")  # a committee's spread over its members' kappa
            return out + (float(std[i]),) if isinstance(std, list) and len(std) == len(k) and is_number(std[i]) else out
    return None


def is_cv298_column(col: str) -> bool:
    """A reference column holding a heat capacity in J/(mol K) (``Cv_...``/``Cp_..._J_mol_K``)."""
    c = col.lower()
    return c.startswith(("cv", "cp")) and (c.endswith("_j_mol_k") or c.endswith("_j_molk"))


QUANTITIES: list[Quantity] = [
    Quantity("lattice_constant", "lattice constant a", "Å", ("a_A", "lattice_constant_A"), _lattice_constant_A),
    Quantity("bulk_modulus", "bulk modulus B", "GPa", ("B_GPa", "bulk_modulus_GPa"), _bulk_modulus_GPa),
    Quantity("C11", "C11", "GPa", ("C11_GPa",), lambda r, s: _elastic_constant_GPa(r, 0, 0)),
    Quantity("C12", "C12", "GPa", ("C12_GPa",), lambda r, s: _elastic_constant_GPa(r, 0, 1)),
    Quantity("C44", "C44", "GPa", ("C44_GPa",), lambda r, s: _elastic_constant_GPa(r, 3, 3)),
    Quantity("lattice_constant_c", "lattice constant c", "Å", ("c_A",), _lattice_constant_c_A,
             note="Non-cubic crystals: c of the conventional cell of the relaxed structure (spglib)."),
    Quantity("C13", "C13", "GPa", ("C13_GPa",), lambda r, s: _elastic_constant_GPa(r, 0, 2)),
    Quantity("C33", "C33", "GPa", ("C33_GPa",), lambda r, s: _elastic_constant_GPa(r, 2, 2)),
    Quantity("C66", "C66", "GPa", ("C66_GPa",), lambda r, s: _elastic_constant_GPa(r, 5, 5)),
    Quantity("bond_length", "bond length r_e", "Å", ("r_e_A", "re_A", "bond_length_A"),
             lambda r, s: _first(r, "diatomic", "bond_length_A")),
    Quantity("omega_e", "harmonic frequency ω_e", "cm⁻¹", ("omega_e_cm1",),
             lambda r, s: _first(r, "diatomic", "omega_e_cm1")),
    Quantity("D0", "dissociation energy D_0", "eV", ("D0_eV", "D_0_eV"), lambda r, s: _first(r, "diatomic", "D0_eV")),
    Quantity("De", "well depth D_e", "eV", ("De_eV", "D_e_eV", "De_derived_eV"),
             lambda r, s: _first(r, "diatomic", "dissociation_energy_eV")),
    Quantity("cv298", "heat capacity at 298 K", "J/(mol K)", ("Cv_298K_J_mol_K", "Cp_298K_J_mol_K"), _cv_298K_J_molK,
             match=is_cv298_column, conditions={"temperature_K": 298.15}),
    Quantity("debye_temperature", "Debye temperature", "K", ("debye_temperature_K", "theta_D_K"),
             lambda r, s: _first(r, "thermal", "debye_temperature_K")),
    Quantity("kappa_lattice", "lattice thermal conductivity at 300 K", "W/(m K)", ("value",), _kappa_300K_W_mK,
             conditions={"quantity": "kappa_lattice", "unit": "W/(m K)"},
             note="Mean of the diagonal of the computed lattice kappa (phono3py) vs the measured total thermal "
                  "conductivity of natural-isotope crystals near room temperature; for metals the measured value "
                  "also holds the electronic part, which the calculation does not have."),
]

#: phonon frequencies at high-symmetry points, paired branch by branch (see comparison.phonon_pairs)
PHONON_FREQUENCIES = Quantity(
    "phonon_frequencies", "phonon frequency at high-symmetry points", "THz", (), lambda r, s: None,
    note="Distinct predicted frequencies at each point (degenerate branches merged), ascending, paired with the "
         "measured branches, ascending. Measurements at the temperatures given in the reference file; predictions "
         "are harmonic at 0 K.")
#: molecular vibrational frequencies, paired mode by mode (see comparison.vibration_pairs)
VIBRATION_FREQUENCIES = Quantity(
    "vibrations", "vibrational frequency", "cm⁻¹", (), lambda r, s: None,
    note="Harmonic frequencies vs experimental (anharmonic) fundamentals, paired in ascending order per molecule "
         "(degenerate modes repeated); harmonic values are expected a few % higher.")
#: bond lengths and angles of relaxed molecules vs molecular_geometries.csv (see comparison.geometry_pairs)
MOLECULAR_BOND_LENGTHS = Quantity(
    "molecular_bond_length", "molecular bond length", "Å", (), lambda r, s: None,
    note="Mean distance of the bonded atom pairs named in the reference row, in the geometry the vibrations "
         "property relaxed (a minimum of the potential, i.e. r_e-like); reference rows are r_e, r_0 (from "
         "ground-state rotational constants, typically 0.001-0.01 Å longer for bonds to H) or of unstated type, "
         "as their geometry_type column says.")
MOLECULAR_BOND_ANGLES = Quantity(
    "molecular_bond_angle", "molecular bond angle", "deg", (), lambda r, s: None,
    note="Mean angle of the bonded triples named in the reference row, in the relaxed geometry of the "
         "vibrations property.")


def _result_classes() -> dict[str, type]:
    """The single-potential result class of each property a committee row stands in for."""
    from ...properties.elastic import ElasticResult
    from ...properties.eos import EOSResult
    from ...properties.phonons import PhononResult
    from ...properties.thermal import ThermalResult

    return {"eos": EOSResult, "elastic": ElasticResult, "phonons": PhononResult, "thermal": ThermalResult}


def committee_views(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A ``committee`` row's result seen as ``eos``/``elastic``/``phonons``/``thermal`` results:
    the committee means are stored under the single-potential field names, so each view holds the
    ``REPORT_FIELDS`` of that property's result class that the row has, with ``<field>_std`` and
    ``<field>_members`` next to them (only properties the row computed)."""
    views: dict[str, dict[str, Any]] = {}
    for prop, cls in _result_classes().items():
        v = {name + suffix: result[name + suffix] for name in cls.REPORT_FIELDS for suffix in ("", "_std", "_members")
             if result.get(name + suffix) is not None and result.get(name) is not None}
        if any(k in v for k in ("v0_A3_per_atom", "C_GPa", "high_symmetry_frequencies_THz", "cv_J_molK")):
            views[prop] = v
    return views


#: the result fields each property's rows are read for (a test checks each against the result
#: class's ``REPORT_FIELDS``, so a renamed field fails there instead of vanishing from reports)
READS: dict[str, tuple[str, ...]] = {
    "eos": ("v0_A3_per_atom", "bulk_modulus_GPa"),
    "relax": ("volume_A3_per_atom",),
    "energy": ("volume_A3_per_atom", "energy_eV_per_atom"),
    "elastic": ("C_GPa",),
    "phonons": ("high_symmetry_frequencies_THz",),
    "thermal": ("temperatures_K", "cv_J_molK"),
}


def collect_predictions(df) -> dict[str, StructureResults]:
    """label -> property -> list of {"params", "result"} for the done rows of a results frame.

    A ``committee`` row also appears, FIRST, under ``eos``/``elastic``/``phonons``/``thermal``
    (see :func:`committee_views`; ``"from": "committee"``), so its committee means, with their
    std as error bars, are the values compared with experiment."""
    out: dict[str, StructureResults] = {}
    for _, row in df[df["status"] == "done"].iterrows():
        params = json.loads(row["params"] or "{}")
        out.setdefault(row["label"], {}).setdefault(row["property"], []).append(
            {"params": params, "result": row["_result"]})
    views: dict[tuple[str, str], list[dict]] = {}
    for _, row in df[(df["status"] == "done") & (df["property"] == "committee")].iterrows():
        for prop, view in committee_views(row["_result"]).items():
            views.setdefault((row["label"], prop), []).append(
                {"params": json.loads(row["params"] or "{}"), "result": view, "from": "committee"})
    for (label, prop), vs in views.items():
        out[label][prop] = vs + out[label].get(prop, [])
    return out


def reference_keys(label: str) -> list[tuple[str, str | None]]:
    """(reference key, crystal structure) candidates of a structure label, in the order tried:
    :func:`split_label`'s, and for a library name (``"GaN-wurtzite"``) also its formula and
    prototype (``("GaN", "wurtzite")``), the library name's crystal being its prototype; for
    ``"formula:prototype"`` of a library entry also the library name."""
    from ...structure_library import solid_entries

    key, crystal = split_label(label)
    entries = solid_entries()
    e = entries.get(key)
    if e is not None:
        proto = crystal or e.prototype
        return [(key, proto), (e.chemical_formula, proto)]
    out: list[tuple[str, str | None]] = [(key, crystal)]
    if crystal:
        out += [(n, crystal) for n, x in entries.items() if x.chemical_formula == key and x.prototype == crystal][:1]
    return out


def split_label(label: str) -> tuple[str, str | None]:
    """(reference key, crystal structure or None) of a structure label: ``"Cu:bcc@2"`` -> ``("Cu", "bcc")``."""
    base = label.split("@")[0].split("#")[0]
    parts = base.split(":")
    crystal = parts[1] if len(parts) > 1 and "=" not in parts[1] else None
    return parts[0], crystal
