"""``build_report``: a results database against experiment, as report.md, report.html, report.json
and figures/*.png, section by section.

Sections, in order: summary (rows per property, done, failed); accuracy against experiment (MAE,
MAPE, RMSE, R^2 per quantity, overall and per crystal system of the input structures, from spglib);
one comparison per quantity that has pairs (statistics overall and per crystal system, parity plot
coloured by crystal system, table of pairs with sources); the largest deviations; cross-checks
between properties (the EOS bulk modulus against the elastic tensor's, :mod:`.consistency`); the physics the
comparison ignores (:mod:`.experiment`); E(V), Cv(T) and phonon
dispersion curves; committee bands; binary convex hulls; a table of the main scalar results per
property (committee rows as mean ± std); the failed rows with their errors; the rows that no
longer read back from the database. Every row of every table carries its physical-check flags
(:mod:`.flags`: unconverged, imaginary modes, Born-unstable, v0 outside range, residual stress,
float32); parity plots mark flagged pairs and say which. report.json holds every number shown, at
full precision, and the flags of every pair.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..database import ResultsDB, readable_rows, to_dataframe
from ..reference import ReferenceTable, load_all_references, load_reference
from . import figures as fig
from .consistency import BULK_MODULUS_TOLERANCE, bulk_modulus_cross_checks
from .comparison import geometry_pairs, parity_stats, phonon_pairs, quantity_pairs, vibration_pairs
from .document import Document, format_value, format_with_std
from .experiment import (annotate_crystal_systems, grouped_stats, ignored_physics, largest_deviations,
                         structure_crystal_systems, system_sort_key)
from .flags import FLAGS_LEGEND, PRECISION_FLAGS, flags_text, quality_flags, row_flags
from .hulls import binary_hulls
from .quantities import (MOLECULAR_BOND_ANGLES, MOLECULAR_BOND_LENGTHS, PHONON_FREQUENCIES, QUANTITIES,
                         VIBRATION_FREQUENCIES, Quantity, collect_predictions,
                         is_cv298_column, is_number, reference_keys)
from .transitions import write_transition_section

__all__ = ["build_report", "Report"]


@dataclass
class Report:
    """Paths written by :func:`build_report` and its comparisons (quantity key -> label, unit,
    stats, pairs; as in report.json)."""

    out_dir: Path
    markdown: Path
    html: Path
    json: Path
    figures: list[Path]
    comparisons: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Sections:
    """The document, the figures folder and list, and report.json's data, filled section by section."""

    def __init__(self, out: Path) -> None:
        self.doc = Document()
        self.figdir = out / "figures"
        self.figdir.mkdir(parents=True, exist_ok=True)
        self.figures: list[Path] = []
        self.data: dict[str, Any] = {}

    def figure_path(self, name: str) -> Path:
        path = self.figdir / name
        self.figures.append(path)
        return path

    def image(self, path: Path, alt: str) -> None:
        self.doc.image(f"figures/{path.name}", alt)

    def comparison(self, q: Quantity, pairs: list[dict], potential: str) -> None:
        """Statistics, parity plot and table of one quantity's pairs."""
        doc = self.doc
        stats = parity_stats(np.array([p["predicted"] for p in pairs]), np.array([p["reference"] for p in pairs]))
        path = self.figure_path(f"parity_{q.key}.png")
        fig.write_parity_plot(path, q, pairs, stats, potential)
        self.data["comparisons"][q.key] = {"label": q.label, "unit": q.unit, "stats": stats, "pairs": pairs}
        doc.heading(2, f"{q.label} ({q.unit})")
        if q.note:
            doc.paragraph(q.note)
        r2 = "n/a" if not math.isfinite(stats["R2"]) else f"{stats['R2']:.4f}"
        doc.paragraph(f"n = {stats['n']}, MAE = {stats['MAE']:.4g} {q.unit}, RMSE = {stats['RMSE']:.4g} {q.unit}, "
                      f"mean signed error = {stats['ME']:.4g} {q.unit}, R² = {r2}, MAPE = {stats['MAPE_pct']:.3g} %.")
        by_system = grouped_stats(pairs)
        self.data["comparisons"][q.key]["stats_by_crystal_system"] = by_system
        if len(by_system) > 1:
            doc.table(["crystal system", "n", f"MAE ({q.unit})", "MAPE (%)", f"RMSE ({q.unit})", "R²"],
                      [[cs] + _stat_cells(st) for cs, st in by_system.items()])
        flagged = [p for p in pairs if quality_flags(p.get("flags"))]
        single = [p for p in pairs if set(p.get("flags") or []) & PRECISION_FLAGS]
        if single:
            doc.paragraph(f"{len(single)} of {len(pairs)} pairs were computed in single precision (float32; "
                          "flag shown in the table, not counted as a failed check below).")
        if flagged:
            unflagged = [p for p in pairs if not quality_flags(p.get("flags"))]
            clean = parity_stats(np.array([p["predicted"] for p in unflagged]),
                                 np.array([p["reference"] for p in unflagged]))
            self.data["comparisons"][q.key]["stats_unflagged"] = clean
            doc.paragraph(f"{len(flagged)} of {len(pairs)} pairs come from flagged results (marked × in red in the "
                          f"plot; included in the statistics above): "
                          + "; ".join(f"{p['label']} ({flags_text(quality_flags(p['flags']))})" for p in flagged[:20])
                          + (" ..." if len(flagged) > 20 else "")
                          + f". Without them: n = {clean['n']}, MAE = {clean['MAE']:.4g} {q.unit}, "
                            f"RMSE = {clean['RMSE']:.4g} {q.unit}.")
        if any("predicted_std" in p for p in pairs):
            doc.paragraph("Predicted values of committee potentials are shown as mean ± committee standard deviation "
                          "(over members, ddof 0), drawn as error bars; the std measures the members' spread around "
                          "their training oracle, not the distance to experiment.")
        self.image(path, f"parity plot {q.label}")
        doc.table(["structure", f"predicted ({q.unit})", f"experimental ({q.unit})", f"difference ({q.unit})",
                   "difference (%)", "source", "from", "flags"],
                  [[p["label"], format_with_std(p["predicted"], p.get("predicted_std")), format_value(p["reference"]),
                    format_value(p["difference"]), format_value(p["relative_difference_pct"]),
                    f"{p['source']} ({p['reference_file']})", p["via"], flags_text(p.get("flags", []))]
                   for p in pairs])

    def accuracy(self, comparisons: list[tuple[Quantity, list[dict]]]) -> None:
        """One row per compared quantity (n, MAE, MAPE, RMSE, R²) and the MAE per crystal system."""
        rows = [(q, pairs) for q, pairs in comparisons if pairs]
        if not rows:
            return
        systems = sorted({p.get("crystal_system", "unknown") for _, pairs in rows for p in pairs}, key=system_sort_key)
        self.doc.heading(2, "Accuracy against experiment")
        self.doc.paragraph("Predicted minus experimental value over every compared pair of each quantity (flagged "
                           "results included; each quantity's section also gives the statistics without them). "
                           "MAPE = mean |difference| / |experimental| in %. Crystal systems from spglib's space "
                           "group of each input structure (symprec 1e-3 Å).")
        table = []
        for q, pairs in rows:
            st = parity_stats(np.array([p["predicted"] for p in pairs]), np.array([p["reference"] for p in pairs]))
            table.append([f"{q.label} ({q.unit})"] + _stat_cells(st))
        self.doc.table(["quantity", "n", "MAE", "MAPE (%)", "RMSE", "R²"], table)
        if len(systems) > 1 or systems != ["unknown"]:
            self.doc.paragraph("MAE per crystal system (number of pairs in parentheses):")
            cells = []
            for q, pairs in rows:
                by = grouped_stats(pairs)
                cells.append([f"{q.label} ({q.unit})"] + [f"{by[cs]['MAE']:.4g} ({by[cs]['n']})" if cs in by else ""
                                                          for cs in systems])
            self.doc.table(["quantity"] + systems, cells)

    def deviations(self, n: int = 15) -> None:
        """The pairs with the largest relative deviation over every quantity."""
        worst = largest_deviations(self.data["comparisons"], n)
        if not worst:
            return
        self.data["largest_deviations"] = worst
        self.doc.heading(2, f"Largest deviations (the {len(worst)} largest |relative difference|)")
        self.doc.table(["quantity", "structure", "crystal system", "predicted", "experimental", "difference",
                        "difference (%)", "source", "flags"],
                       [[f"{w['quantity_label']} ({w['unit']})", w["label"], w.get("crystal_system", ""),
                         format_value(w["predicted"]), format_value(w["reference"]), format_value(w["difference"]),
                         format_value(w["relative_difference_pct"]), f"{w['source']} ({w['reference_file']})",
                         flags_text(w.get("flags", []))] for w in worst])

    def cross_checks(self, preds: dict) -> None:
        """The bulk modulus of the EOS against the Reuss bulk modulus of the elastic tensor, per
        structure with both (:mod:`.consistency`)."""
        checks = bulk_modulus_cross_checks(preds)
        if not checks:
            return
        self.data["cross_checks"] = {"bulk_modulus": checks}
        bad = [c["label"] for c in checks if not c["consistent"]]
        self.doc.heading(2, "Cross-checks between properties")
        self.doc.paragraph(
            "Bulk modulus two ways: B0 of the EOS fit and the Reuss bulk modulus 1/sum(S_ij, i,j<=3) of the "
            "elastic tensor ((C11 + 2 C12)/3 for cubic crystals) are the same curvature of E(V) at V0 and agree "
            f"within a few per cent for a well-behaved potential; a gap above {100 * BULK_MODULUS_TOLERANCE:.0f} % "
            "says its E(V) is not harmonic near V0 or its stress does not match its energy. "
            + (f"Inconsistent: {', '.join(bad)}." if bad else "Every structure is consistent."))
        self.doc.table(["structure", "B EOS (GPa)", "B elastic, Reuss (GPa)", "difference (%)", "check"],
                       [[c["label"], format_value(c["B_eos_GPa"]), format_value(c["B_elastic_reuss_GPa"]),
                         format_value(c["relative_difference_pct"]), "ok" if c["consistent"] else "inconsistent"]
                        for c in checks])

    def ignored_physics(self, labels: list[str], tables: list[ReferenceTable], df) -> None:
        """What the comparison leaves out, so that a reader can judge it."""
        flags: dict[str, list[str]] = {}
        for prop in ("phonons", "thermal", "committee"):
            for lab, fl in _label_flags(df, prop).items():
                flags.setdefault(lab, []).extend(fl)
        items = ignored_physics(self.data["comparisons"], labels, tables, flags)
        self.data["ignored_physics"] = [{"topic": t, "text": x} for t, x in items]
        self.doc.heading(2, "What the comparison ignores")
        for topic, text in items:
            self.doc.paragraph(f"{topic}: {text}")

    def curves(self, done, tables: list[ReferenceTable]) -> None:
        """E(V) curves, Cv(T) curves (with 3R and the experimental Cv at 298 K) and phonon
        dispersions (with the measured frequencies at high-symmetry points) of the done rows."""
        eos = done[done["property"] == "eos"]
        if len(eos):
            curves = [(lab, r["volumes_A3_per_atom"], r["energies_eV_per_atom"], r["v0_A3_per_atom"])
                      for lab, r in zip(eos["label"], eos["_result"])
                      if isinstance(r.get("volumes_A3_per_atom"), list)
                      and isinstance(r.get("energies_eV_per_atom"), list) and r.get("v0_A3_per_atom")]
            path = self.figure_path("eos_curves.png")
            fig.write_eos_curves(path, curves)
            self.doc.heading(2, "Equation-of-state curves")
            self.image(path, "EOS curves")
        th = done[done["property"] == "thermal"]
        if len(th):
            curves = [(lab, r.get("temperatures_K"), r.get("cv_J_molK"))
                      for lab, r in zip(th["label"], th["_result"])
                      if isinstance(r.get("temperatures_K"), list) and isinstance(r.get("cv_J_molK"), list)]
            measured = []
            for tb in tables:
                col = next((c for c in tb.units if is_cv298_column(c)), None)
                if col is None:
                    continue
                for lab in th["label"]:
                    got = next(filter(None, (tb.value(k, col) for k, _ in reference_keys(lab))), None)
                    if got:
                        measured.append(got[0])
            path = self.figure_path("cv_curves.png")
            fig.write_cv_curves(path, curves, measured)
            self.doc.heading(2, "Heat capacity Cv(T)")
            self.image(path, "Cv(T) curves")
        ph = done[done["property"] == "phonons"]
        if len(ph):
            self.doc.heading(2, "Phonon dispersions")
        for lab, r in zip(ph["label"], ph["_result"]):
            d, fr = r.get("band_distances_inv_A"), r.get("band_frequencies_THz")
            if not (isinstance(d, list) and isinstance(fr, list) and d):
                continue
            safe = "".join(ch if ch.isalnum() else "_" for ch in lab)
            path = self.figure_path(f"phonons_{safe}.png")
            fig.write_phonon_dispersion(path, lab, d, fr, r.get("band_labels"),
                                        next(filter(None, (_measured_at_points(tables, k)
                                                           for k, _ in reference_keys(lab))), []))
            self.image(path, f"{lab} phonon dispersion")

    def committee_curves(self, done, n_std: float = 2.0) -> None:
        """Per committee row: phonon dispersion, Cv(T) and E(V) with their committee bands."""
        rows = done[done["property"] == "committee"]
        first = True
        for lab, r in zip(rows["label"], rows["_result"]):
            if all(r.get(k) is None for k in ("band_frequencies_THz", "cv_J_molK",
                                              "eos_energies_eV_per_atom_members")):
                continue
            safe = "".join(ch if ch.isalnum() else "_" for ch in lab)
            path = self.figure_path(f"committee_{safe}.png")
            fig.write_committee_figure(path, lab, r, n_std=n_std)
            if first:
                self.doc.heading(2, "Committee uncertainty: phonon dispersions, Cv(T) and E(V)")
                self.doc.paragraph(f"Committee mean with a shaded band of ± {n_std:g} standard deviations; Cv(T) per "
                                   "mole of atoms and E(V) − E0 (each member's own minimum energy) with the member "
                                   "curves (grey).")
                first = False
            self.image(path, f"{lab} committee phonons and Cv")

    def hulls(self, df) -> None:
        for a, b, prop, points in binary_hulls(df):
            name = f"hull_{a}-{b}_{prop}"
            self.data[name] = points
            path = self.figure_path(f"{name}.png")
            fig.write_hull_plot(path, points, a, b, prop)
            self.doc.heading(2, f"Convex hull {a}-{b} (from the {prop!r} rows)")
            self.image(path, f"{a}-{b} convex hull")
            flags = _label_flags(df, prop)
            self.doc.table(["structure", "formula", f"x_{b}", "formation energy (eV/atom)", "E above hull (eV/atom)",
                            "flags"],
                           [[p["label"], p["formula"], format_value(p[f"x_{b}"]),
                             format_value(p["formation_energy_eV_per_atom"]),
                             format_value(p["e_above_hull_eV_per_atom"]), flags_text(flags.get(p["label"], []))]
                            for p in points])

    def result_table(self, prop: str, g) -> None:
        """The :data:`RESULT_COLUMNS` of a property that has them, else its first 8 scalar fields, of its
        done rows (at most 500 rows)."""
        fields: list[str] = list(RESULT_COLUMNS.get(prop, ()))
        for r in g["_result"] if not fields else []:
            for k, v in r.items():
                if k not in fields and isinstance(v, (int, float, str)) and not isinstance(v, bool) and len(fields) < 8:
                    fields.append(k)
        self.doc.heading(2, f"Results: {prop}")
        self.doc.table(["structure"] + fields + ["flags"],
                       [[lab] + [_result_cell(r, k) for k in fields]
                        + [flags_text(row_flags(r, json.loads(pj or "{}")))]
                        for lab, r, pj in zip(g["label"], g["_result"], g["params"])][:500])

    def committee_table(self, g) -> None:
        """Committee rows: every scalar that has a committee std, as ``mean ± std``."""
        fields: list[str] = []
        for r in g["_result"]:
            for k, v in r.items():
                if (k not in fields and k not in _COMMITTEE_SKIP and is_number(v) and is_number(r.get(f"{k}_std"))
                        and len(fields) < 14):
                    fields.append(k)
        cal = any(is_number(r.get("calibration_factor")) for r in g["_result"])
        self.doc.heading(2, "Results: committee")
        self.doc.paragraph("Committee mean ± standard deviation over members (ddof 0); per-member values are in the "
                           "database (`*_members`)."
                           + (" Calibrated std = std × the calibration factor stored with the model." if cal else ""))
        hdr = ["structure", "members"] + fields + (["calibration factor"] if cal else []) + ["flags"]
        self.doc.table(hdr, [[lab, format_value(r.get("n_members"))]
                             + [format_with_std(r.get(k), r.get(f"{k}_std")) for k in fields]
                             + ([format_value(r.get("calibration_factor"))] if cal else [])
                             + [flags_text(row_flags(r, json.loads(pj or "{}")))]
                             for lab, r, pj in zip(g["label"], g["_result"], g["params"])][:500])

    def failed_rows(self, failed) -> None:
        self.doc.heading(2, f"Failed rows ({len(failed)})")
        self.doc.table(["structure", "property", "error"], [[r["label"], r["property"], r["error"][:300]]
                                                           for _, r in failed.head(200).iterrows()])
        self.data["failed"] = [{"label": r["label"], "property": r["property"], "error": r["error"]}
                               for _, r in failed.iterrows()]


    def unreadable_rows(self, unreadable: list[str]) -> None:
        self.doc.heading(2, f"Unreadable rows ({len(unreadable)})")
        self.doc.paragraph("These database rows no longer decode (a damaged file) and are left out of this report; "
                           "recompute them into a new database (see docs/reliability.md).")
        self.doc.table(["row", "error"], [u.split(": ", 1) for u in unreadable[:200]])
        self.data["unreadable_rows"] = unreadable


#: properties whose results table shows these fields instead of the first 8 scalars (conductivity: kappa with the
#: committee std when there is one, the mesh convergence and the sum rules, raw and enforced, of every row)
RESULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "conductivity": ("temperatures_K", "kappa_average_W_mK", "mesh", "convergence_mesh", "mesh_change_rel",
                     "converged", "sum_rule_kappa_change_rel", "fc2_sum_rule_violation_raw_eV_A2",
                     "fc2_sum_rule_violation_enforced_eV_A2", "fc3_sum_rule_violation_raw_eV_A3",
                     "fc3_sum_rule_violation_enforced_eV_A3", "n_fc3_supercell_atoms", "n_displaced_supercells"),
}


def _result_cell(r: dict[str, Any], key: str) -> str:
    """A result field as a table cell: a mesh as ``11x11x11``, a list (one value per temperature) as
    ``a / b``, each with its committee std (``<key>_std``) as ``± std`` when the row has one."""
    v, std = r.get(key), r.get(f"{key}_std")
    if isinstance(v, list):
        if "mesh" in key and all(isinstance(x, int) for x in v):
            return "x".join(str(x) for x in v)
        stds = std if isinstance(std, list) and len(std) == len(v) else [None] * len(v)
        return " / ".join(format_with_std(x, s) for x, s in zip(v, stds))
    return format_with_std(v, std)


def _stat_cells(st: dict[str, float]) -> list[str]:
    """n, MAE, MAPE, RMSE, R² of a :func:`parity_stats` dict as table cells."""
    return [str(st["n"]), format_value(st["MAE"]), format_value(st["MAPE_pct"]), format_value(st["RMSE"]),
            format_value(st["R2"])]


_COMMITTEE_SKIP = {"B_GPa"}  # the same number as bulk_modulus_GPa


def _label_flags(df, prop: str) -> dict[str, list[str]]:
    """label -> flags of the done rows of ``prop``."""
    out: dict[str, list[str]] = {}
    sel = df[(df["status"] == "done") & (df["property"] == prop)]
    for lab, r, pj in zip(sel["label"], sel["_result"], sel["params"]):
        out.setdefault(lab, [])
        out[lab] += [f for f in row_flags(r, json.loads(pj or "{}")) if f not in out[lab]]
    return out


def _measured_at_points(tables: list[ReferenceTable], key: str) -> list[tuple[str, float]]:
    """(point, frequency in THz) of every measured row of ``key`` in the tables with a ``point`` column."""
    out = []
    for tb in tables:
        if "point" not in tb.frame.columns:
            continue
        col = next((c for c in tb.units if c.endswith("_THz")), None)
        if col is None:
            continue
        for _, row in tb.frame[tb.frame[tb.key] == key].iterrows():
            if row[col] == row[col]:
                out.append((str(row["point"]), float(row[col])))
    return out


def _reference_tables(reference: list[str | Path] | None) -> list[ReferenceTable]:
    if reference is None:
        return [t for t in load_all_references().values() if isinstance(t, ReferenceTable)]
    return [load_reference(r) for r in reference]


def build_report(db: str | Path | ResultsDB, out_dir: str | Path, reference: list[str | Path] | None = None,
                 title: str | None = None) -> Report:
    """Write the report of a results database into ``out_dir``; returns the paths written.

    ``reference``: CSV files to compare with, paths or names of shipped tables (default: every
    valid table shipped in ``mlip_props/data/reference/``).
    """
    out = Path(out_dir)
    s = _Sections(out)
    rdb = db if isinstance(db, ResultsDB) else ResultsDB(db, check_integrity=False)
    unreadable: list[str] = []
    df = to_dataframe(rdb, expand_results=False, unreadable=unreadable)
    rows = readable_rows(rdb)
    results_by_id = {row.id: (row.data.get("result") or {}) for row in rows}
    systems = structure_crystal_systems(rows)
    df["_result"] = [results_by_id[i] for i in df["id"]] if len(df) else []
    s.data.update({"db": str(rdb.url), "comparisons": {}, "properties": {}})
    potentials = sorted(set(df["potential"].dropna())) if len(df) else []
    pot = ", ".join(potentials) or "?"
    campaigns = sorted(set(df["campaign"].dropna())) if "campaign" in df and len(df) else []
    s.doc.heading(1, title or f"mlip-props report: {', '.join(campaigns) or Path(str(rdb.url)).stem}")
    s.doc.paragraph(f"Database: {rdb.url}. Potential(s): {pot}. Rows: {len(df)}.")

    s.doc.heading(2, "Summary")
    summary = []
    for prop, g in (df.groupby("property") if len(df) else []):
        n_done = int((g["status"] == "done").sum())
        n_failed = int((g["status"] == "failed").sum())
        n_flagged = sum(bool(quality_flags(row_flags(r, json.loads(pj or "{}"))))
                        for st, r, pj in zip(g["status"], g["_result"], g["params"]) if st == "done")
        s.data["properties"][prop] = {"rows": len(g), "done": n_done, "failed": n_failed, "flagged": n_flagged}
        summary.append([prop, len(g), n_done, n_failed, n_flagged])
    s.doc.table(["property", "rows", "done", "failed", "done but flagged (a failed check)"], summary)
    s.doc.paragraph(FLAGS_LEGEND)

    tables = _reference_tables(reference)
    preds = collect_predictions(df) if len(df) else {}
    comparisons = [(q, quantity_pairs(q, preds, tables)) for q in QUANTITIES]
    comparisons += [(PHONON_FREQUENCIES, phonon_pairs(preds, tables)),
                    (VIBRATION_FREQUENCIES, vibration_pairs(preds, tables)),
                    (MOLECULAR_BOND_LENGTHS, geometry_pairs(preds, tables, "r_A")),
                    (MOLECULAR_BOND_ANGLES, geometry_pairs(preds, tables, "angle_deg"))]
    for _, pairs in comparisons:
        annotate_crystal_systems(pairs, systems)
    s.accuracy(comparisons)
    for q, pairs in comparisons:
        if pairs:
            s.comparison(q, pairs, pot)
    s.deviations()
    s.cross_checks(preds)
    if len(df):
        s.ignored_physics(sorted(preds), tables, df)

    if len(df):
        done = df[df["status"] == "done"]
        s.curves(done, tables)
        s.committee_curves(done)
        s.hulls(df)
        write_transition_section(s.doc, s.data, done, tables, s.figure_path)
        for prop, g in done.groupby("property"):
            if prop == "committee":
                s.committee_table(g)
            else:
                s.result_table(prop, g)
        failed = df[df["status"] == "failed"]
        if len(failed):
            s.failed_rows(failed)
    if unreadable:
        s.unreadable_rows(unreadable)

    md = out / "report.md"
    md.write_text(s.doc.markdown())
    ht = out / "report.html"
    ht.write_text(s.doc.html(title or "mlip-props report"))
    js = out / "report.json"
    js.write_text(json.dumps(s.data, indent=1,
                             default=lambda o: None if isinstance(o, float) and not math.isfinite(o) else str(o)))
    return Report(out, md, ht, js, s.figures, s.data["comparisons"])
