"""Campaign reports: results against experiment, as Markdown + HTML with PNG figures.

:func:`build_report` reads a results database, pairs predictions with ``reference_data/`` values
(see :mod:`mlip_props.campaign.reference`) and writes ``report.md``, ``report.html``,
``report.json`` (every number shown, full precision) and ``figures/*.png``:

* a parity plot per quantity (predicted vs experimental, y = x line, labelled points) with MAE,
  RMSE and R^2 = 1 - SS_res / SS_tot (R^2 is undefined, shown as "n/a", for fewer than 2
  points or no spread in the reference values); units on every axis;
* a table per quantity (structure, predicted, experimental, difference, relative difference,
  source), a table per property of the main scalar results, and the failed rows with errors;
* a convex hull (formation energy per atom vs composition, pymatgen ``PhaseDiagram``) for every
  binary system whose elements are present, from the ``energy`` (or ``relax``) rows.

Predicted quantities (and where they come from, first available wins):
lattice constant a (A): EOS ``v0_A3_per_atom``; else a cell-relaxed ``relax``/``energy`` row's
volume per atom; a = (n V)^(1/3) with n atoms per cubic cell (fcc 4, bcc 2, sc 1, diamond 8).
Bulk modulus (GPa): EOS ``bulk_modulus_GPa``; else (C11 + 2 C12)/3 of the elastic tensor.
C11, C12, C44 (GPa): elastic ``C_GPa`` (6x6 Voigt). Diatomics: ``bond_length_A``,
``omega_e_cm1``, ``D0_eV``, ``dissociation_energy_eV`` of ``diatomic`` rows.
"""
from __future__ import annotations

from contextlib import contextmanager

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .database import ResultsDB, to_dataframe
from .reference import ReferenceTable, load_all_references, load_reference

__all__ = ["build_report", "Report", "parity_stats", "QUANTITIES", "collect_predictions", "committee_views",
           "parity_figure"]

_CELL_ATOMS = {"fcc": 4, "bcc": 2, "sc": 1, "diamond": 8}


def parity_stats(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, mean signed error, max |error| and R^2 of predictions against references."""
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


# ------------------------------------------------------------------------------------- predictions
@dataclass
class Quantity:
    key: str
    label: str
    unit: str
    ref_columns: tuple[str, ...]
    predict: Callable[[dict[str, list[dict]], str], tuple[float, str] | None]
    match: Callable[[str], bool] | None = None  # fallback: any reference column this accepts
    conditions: dict[str, Any] = field(default_factory=dict)  # row filters applied where the column exists


def _rows(results: dict[str, list[dict]], prop: str) -> list[dict]:
    return results.get(prop, [])


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _first_row(results, prop, fieldname, cond: Callable[[dict], bool] = lambda r: True):
    for r in _rows(results, prop):
        v = r["result"].get(fieldname)
        if _num(v) and cond(r):
            return float(v), r
    return None


def _first(results, prop, fieldname, cond: Callable[[dict], bool] = lambda r: True):
    """(value, where from) of the first row with the field; (value, where from, std) when the
    row carries a committee std ``<field>_std``."""
    got = _first_row(results, prop, fieldname, cond)
    if got is None:
        return None
    v, r = got
    std = r["result"].get(f"{fieldname}_std")
    via = f"{r.get('from', prop)}.{fieldname}"
    return (v, via, float(std)) if _num(std) else (v, via)


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


def _lattice(results, structure: str):
    n = _CELL_ATOMS.get(structure or "fcc")
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


def _c(results, i, j):
    for r in _rows(results, "elastic"):
        c = r["result"].get("C_GPa")
        if isinstance(c, list) and len(c) == 6:
            v = c[i][j]
            if v is not None:
                out = (float(v), f"{r.get('from', 'elastic')}.C_GPa[{i}][{j}]")
                sd = r["result"].get("C_GPa_std")
                if isinstance(sd, list) and len(sd) == 6 and _num(sd[i][j]):
                    out += (float(sd[i][j]),)
                return out
    return None


def _bulk(results, structure):
    got = _first(results, "eos", "bulk_modulus_GPa")
    if got:
        return got
    c11, c12 = _c(results, 0, 0), _c(results, 0, 1)
    if c11 and c12:
        out = ((c11[0] + 2 * c12[0]) / 3, f"(C11 + 2 C12)/3 of {c11[1].split('.')[0]}.C_GPa")
        cm = next((r["result"].get("C_GPa_members") for r in _rows(results, "elastic")
                   if isinstance(r["result"].get("C_GPa"), list)), None)
        std = _members_std([(c[0][0] + 2 * c[0][1]) / 3 for c in cm]) if isinstance(cm, list) else None
        return out + (std,) if std is not None else out
    return None


def _cv298(results, structure):
    for r in _rows(results, "thermal"):
        t, cv = r["result"].get("temperatures_K"), r["result"].get("cv_J_molK_atoms")
        if isinstance(t, list) and isinstance(cv, list) and len(t) == len(cv) and min(t) <= 298.15 <= max(t):
            out = (float(np.interp(298.15, t, cv)),
                   f"{r.get('from', 'thermal')}.cv_J_molK_atoms at 298.15 K (harmonic Cv)")
            members = r["result"].get("cv_J_molK_atoms_members")
            std = _members_std([float(np.interp(298.15, t, c)) for c in members]) if isinstance(members, list) else None
            return out + (std,) if std is not None else out
    return None


def _is_cv298(col: str) -> bool:
    c = col.lower()
    return c.startswith(("cv", "cp")) and (c.endswith("_j_mol_k") or c.endswith("_j_molk"))


QUANTITIES: list[Quantity] = [
    Quantity("lattice_constant", "lattice constant a", "Å", ("a_A", "lattice_constant_A"), _lattice),
    Quantity("bulk_modulus", "bulk modulus B", "GPa", ("B_GPa", "bulk_modulus_GPa"), _bulk),
    Quantity("C11", "C11", "GPa", ("C11_GPa",), lambda r, s: _c(r, 0, 0)),
    Quantity("C12", "C12", "GPa", ("C12_GPa",), lambda r, s: _c(r, 0, 1)),
    Quantity("C44", "C44", "GPa", ("C44_GPa",), lambda r, s: _c(r, 3, 3)),
    Quantity("bond_length", "bond length r_e", "Å", ("r_e_A", "re_A", "bond_length_A"),
             lambda r, s: _first(r, "diatomic", "bond_length_A")),
    Quantity("omega_e", "harmonic frequency ω_e", "cm⁻¹", ("omega_e_cm1",),
             lambda r, s: _first(r, "diatomic", "omega_e_cm1")),
    Quantity("D0", "dissociation energy D_0", "eV", ("D0_eV", "D_0_eV"), lambda r, s: _first(r, "diatomic", "D0_eV")),
    Quantity("De", "well depth D_e", "eV", ("De_eV", "D_e_eV", "De_derived_eV"),
             lambda r, s: _first(r, "diatomic", "dissociation_energy_eV")),
    Quantity("cv298", "heat capacity at 298 K", "J/(mol K)", ("Cv_298K_J_mol_K", "Cp_298K_J_mol_K"), _cv298,
             match=_is_cv298, conditions={"temperature_K": 298.15}),
    Quantity("debye_temperature", "Debye temperature", "K", ("debye_temperature_K", "theta_D_K"),
             lambda r, s: _first(r, "thermal", "debye_temperature_K")),
]


#: committee result field -> (property, field) of the single-potential results the report reads
_COMMITTEE_FIELDS = {
    "eos": ("v0_A3_per_atom", "bulk_modulus_GPa", "bulk_modulus_derivative"),
    "elastic": ("C_GPa",),
    "phonons": ("high_symmetry_frequencies_THz",),
    "thermal": ("temperatures_K", ("heat_capacity_J_molK", "cv_J_molK_atoms")),
}


def committee_views(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A ``committee`` row's result seen as ``eos``/``elastic``/``phonons``/``thermal`` results:
    the committee means under the single-potential field names, with ``<field>_std`` and
    ``<field>_members`` next to them (only properties the row computed)."""
    views: dict[str, dict[str, Any]] = {}
    for prop, names in _COMMITTEE_FIELDS.items():
        v: dict[str, Any] = {}
        for name in names:
            src, dst = (name, name) if isinstance(name, str) else name
            if result.get(src) is None:
                continue
            v[dst] = result[src]
            for suffix in ("_std", "_members"):
                if result.get(src + suffix) is not None:
                    v[dst + suffix] = result[src + suffix]
        if any(k in v for k in ("v0_A3_per_atom", "C_GPa", "high_symmetry_frequencies_THz", "cv_J_molK_atoms")):
            views[prop] = v
    return views


def collect_predictions(df) -> dict[str, dict[str, list[dict]]]:
    """label -> property -> list of {"params", "result"} for the done rows of a results frame.

    A ``committee`` row also appears, FIRST, under ``eos``/``elastic``/``phonons``/``thermal``
    (see :func:`committee_views`; ``"from": "committee"``), so its committee means, with their
    std as error bars, are the values compared with experiment."""
    out: dict[str, dict[str, list[dict]]] = {}
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


def _split_label(label: str) -> tuple[str, str | None]:
    base = label.split("@")[0].split("#")[0]
    parts = base.split(":")
    crystal = parts[1] if len(parts) > 1 and "=" not in parts[1] else None
    return parts[0], crystal


# ------------------------------------------------------------------------------------- report
@dataclass
class Report:
    out_dir: Path
    markdown: Path
    html: Path
    json: Path
    figures: list[Path]
    comparisons: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Doc:
    def __init__(self) -> None:
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(("table", headers, rows))

    def img(self, path: str, alt: str) -> None:
        self.blocks.append(("img", path, alt))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})")
            else:
                hdr, rows = b[1], b[2]
                out.append("| " + " | ".join(hdr) + " |")
                out.append("|" + "---|" * len(hdr))
                for r in rows:
                    out.append("| " + " | ".join(str(x).replace("|", "\\|").replace("\n", " ") for x in r) + " |")
            out.append("")
        return "\n".join(out)

    def html(self, title: str) -> str:
        out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
               "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
               "td,th{border:1px solid #bbb;padding:2px 6px;font-size:90%}img{max-width:560px}</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{html.escape(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{html.escape(b[1])}</p>")
            elif b[0] == "img":
                out.append(f"<img src='{html.escape(b[1])}' alt='{html.escape(b[2])}'>")
            else:
                out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b[1]) + "</tr>")
                for r in b[2]:
                    out.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>")
                out.append("</table>")
        out.append("</body></html>")
        return "\n".join(out)


def _pm(x: Any, std: Any = None) -> str:
    """``value ± std`` when a committee std is given, else the plain value."""
    return f"{_fmt(x)} ± {_fmt(std)}" if _num(std) else _fmt(x)


def _fmt(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return "n/a" if not math.isfinite(x) else f"{x:.6g}"
    return str(x)


def _parity_plot(path: Path, q: Quantity, pairs: list[dict], stats: dict, potential: str) -> None:
    fig, ax = parity_figure(q, pairs, stats, potential)
    _save(fig, path, ax)
    _plt().close(fig)


def parity_figure(q: Quantity, pairs: list[dict], stats: dict, potential: str):
    """The parity plot (matplotlib figure, axes) of ``pairs``: predicted vs experimental, y = x,
    and vertical error bars of ``predicted_std`` (committee std) where pairs carry one."""
    plt = _plt()
    x = np.array([p["reference"] for p in pairs])
    y = np.array([p["predicted"] for p in pairs])
    fig, ax = plt.subplots(figsize=(4.8, 4.5), dpi=110)
    ax.scatter(x, y, s=28, zorder=3)
    has_std = [k for k, p in enumerate(pairs) if "predicted_std" in p]
    if has_std:
        e = np.array([pairs[k]["predicted_std"] for k in has_std])
        ax.errorbar(x[has_std], y[has_std], yerr=e, fmt="none", ecolor="C0", elinewidth=1.0, capsize=3, zorder=2,
                    label="± committee std")
        y_lo, y_hi = y[has_std] - e, y[has_std] + e
    else:
        y_lo = y_hi = y
    for p in pairs:
        ax.annotate(p["label"], (p["reference"], p["predicted"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    lo, hi = float(min(x.min(), y.min(), y_lo.min())), float(max(x.max(), y.max(), y_hi.max()))
    pad = 0.05 * (hi - lo or abs(hi) or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8, label="y = x")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(f"experimental {q.label} ({q.unit})")
    ax.set_ylabel(f"predicted {q.label} ({q.unit})")
    r2 = "n/a" if not math.isfinite(stats["R2"]) else f"{stats['R2']:.3f}"
    ax.set_title(f"{q.label} [{potential}]\nMAE {stats['MAE']:.3g} {q.unit}, RMSE {stats['RMSE']:.3g} {q.unit}, "
                 f"R² {r2}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig, ax


@contextmanager
def _figure(figdir: Path, figures: list[Path], name: str, size: tuple[float, float] = (5.5, 4.2)):
    """A figure with one axis: yields the axis; on exit lays it out, saves ``figdir/name`` (with
    :func:`_save`), closes it and appends the path to ``figures``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=size, dpi=110)
    yield ax
    fig.tight_layout()
    path = figdir / name
    _save(fig, path, ax)
    plt.close(fig)
    figures.append(path)


def _labels(ax, xlabel: str, ylabel: str, title: str, legend: bool = True) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if legend:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _save(fig, path: Path, ax) -> None:
    """Save a PNG with its axis labels also written as PNG text chunks (checked by the tests)."""
    fig.savefig(path, metadata={"Title": ax.get_title().replace("\n", " "), "xlabel": ax.get_xlabel(),
                                "ylabel": ax.get_ylabel(), "Software": "mlip-props"})


def _hulls(df, doc: _Doc, figdir: Path, figures: list[Path], data: dict) -> None:
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    rows = df[(df["status"] == "done") & (df["property"].isin(["energy", "relax"]))]
    if rows.empty:
        return
    entries_by_prop: dict[str, list] = {}
    for _, r in rows.iterrows():
        e = r["_result"].get("energy_eV")
        if e is None or r["formula"] in (None, ""):
            continue
        entries_by_prop.setdefault(r["property"], []).append((r["label"], Composition(r["formula"]), float(e)))
    for prop, ents in entries_by_prop.items():
        systems = sorted({tuple(sorted(str(el) for el in c.elements)) for _, c, _ in ents if len(c.elements) == 2})
        for sysm in systems:
            sub = [(lab, c, e) for lab, c, e in ents if {str(el) for el in c.elements} <= set(sysm)]
            if not all(any({str(el) for el in c.elements} == {x} for _, c, _ in sub) for x in sysm):
                continue
            pd_entries = [PDEntry(c, e, name=lab) for lab, c, e in sub]
            pdg = PhaseDiagram(pd_entries)
            a, b = sysm
            pts = []
            for ent, (lab, c, e) in zip(pd_entries, sub):
                x = c.get_atomic_fraction(b)
                pts.append({"label": lab, "formula": c.reduced_formula, f"x_{b}": x,
                            "formation_energy_eV_per_atom": float(pdg.get_form_energy_per_atom(ent)),
                            "e_above_hull_eV_per_atom": float(pdg.get_e_above_hull(ent))})
            pts.sort(key=lambda d: (d[f"x_{b}"], d["formation_energy_eV_per_atom"]))
            name = f"hull_{a}-{b}_{prop}"
            data[name] = pts
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(5, 4), dpi=110)
            xs = np.array([p[f"x_{b}"] for p in pts])
            ys = np.array([p["formation_energy_eV_per_atom"] for p in pts])
            st = np.array([p["e_above_hull_eV_per_atom"] < 1e-6 for p in pts])
            ax.scatter(xs[~st], ys[~st], c="tab:red", label="above hull", zorder=3)
            ax.scatter(xs[st], ys[st], c="tab:blue", label="on hull", zorder=3)
            hx = np.array(sorted(set(np.round(xs[st], 10))))
            hy = [min(ys[st][np.isclose(xs[st], v)]) for v in hx]
            ax.plot(hx, hy, "b-", lw=1)
            for p in pts:
                ax.annotate(p["label"], (p[f"x_{b}"], p["formation_energy_eV_per_atom"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
            ax.set_xlabel(f"atomic fraction of {b} in {a}-{b} (x_{b}, dimensionless)")
            ax.set_ylabel("formation energy (eV/atom)")
            ax.set_title(f"{a}-{b} convex hull (from the {prop!r} rows)", fontsize=9)
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
            fig.tight_layout()
            fpath = figdir / f"{name}.png"
            _save(fig, fpath, ax)
            plt.close(fig)
            figures.append(fpath)
            doc.h(2, f"Convex hull {a}-{b} (from the {prop!r} rows)")
            doc.img(f"figures/{fpath.name}", f"{a}-{b} convex hull")
            doc.table(["structure", "formula", f"x_{b}", "formation energy (eV/atom)", "E above hull (eV/atom)"],
                      [[p["label"], p["formula"], _fmt(p[f"x_{b}"]), _fmt(p["formation_energy_eV_per_atom"]),
                        _fmt(p["e_above_hull_eV_per_atom"])] for p in pts])


def _comparison_section(doc: _Doc, figdir: Path, figures: list[Path], data: dict, q: Quantity, pairs: list[dict],
                        pot: str, note: str = "") -> None:
    stats = parity_stats(np.array([p["predicted"] for p in pairs]), np.array([p["reference"] for p in pairs]))
    fpath = figdir / f"parity_{q.key}.png"
    _parity_plot(fpath, q, pairs, stats, pot)
    figures.append(fpath)
    data["comparisons"][q.key] = {"label": q.label, "unit": q.unit, "stats": stats, "pairs": pairs}
    doc.h(2, f"{q.label} ({q.unit})")
    if note:
        doc.p(note)
    r2 = "n/a" if not math.isfinite(stats["R2"]) else f"{stats['R2']:.4f}"
    doc.p(f"n = {stats['n']}, MAE = {stats['MAE']:.4g} {q.unit}, RMSE = {stats['RMSE']:.4g} {q.unit}, "
          f"mean signed error = {stats['ME']:.4g} {q.unit}, R² = {r2}, MAPE = {stats['MAPE_pct']:.3g} %.")
    if any("predicted_std" in p for p in pairs):
        doc.p("Predicted values of committee potentials are shown as mean ± committee standard deviation "
              "(over members, ddof 0), drawn as error bars; the std measures the members' spread around "
              "their training oracle, not the distance to experiment.")
    doc.img(f"figures/{fpath.name}", f"parity plot {q.label}")
    doc.table(["structure", f"predicted ({q.unit})", f"experimental ({q.unit})", f"difference ({q.unit})",
               "difference (%)", "source", "from"],
              [[p["label"], _pm(p["predicted"], p.get("predicted_std")), _fmt(p["reference"]), _fmt(p["difference"]),
                _fmt(p["relative_difference_pct"]), f"{p['source']} ({p['reference_file']})", p["via"]]
               for p in pairs])


def _structure_condition(t: ReferenceTable, key: str, crystal: str | None) -> tuple[dict[str, Any], str | None]:
    """Row filter on the table's structure/phase column: the label's crystal, else the first row's."""
    col = next((c for c in ("structure", "phase") if c in t.frame.columns), None)
    if col is None:
        return {}, crystal
    if crystal is None:
        sel = t.frame[t.frame[t.key] == key]
        crystal = str(sel.iloc[0][col]) if len(sel) else None
    return {col: crystal}, crystal


def _phonon_pairs(preds: dict, tables: list[ReferenceTable]) -> list[dict]:
    """Phonon frequencies at high-symmetry points: the distinct predicted frequencies at a point
    (degenerate branches merged within 0.01 THz), ascending, paired with the experimental rows of
    that point, ascending, when their numbers agree."""
    pairs = []
    for t in tables:
        col = next((c for c in t.units if c.endswith("_THz") and not c.startswith("uncertainty")), None)
        if col is None or "point" not in t.frame.columns:
            continue
        for label, res in sorted(preds.items()):
            ph = _rows(res, "phonons")
            if not ph:
                continue
            hs = ph[0]["result"].get("high_symmetry_frequencies_THz") or {}
            hs_std = ph[0]["result"].get("high_symmetry_frequencies_THz_std") or {}
            via_prop = ph[0].get("from", "phonons")
            key, crystal = _split_label(label)
            cond, _ = _structure_condition(t, key, crystal)
            rows = t.frame[t.frame[t.key] == key]
            for c, v in cond.items():
                rows = rows[rows[c] == v]
            for point, grp in rows.groupby("point"):
                pkey = str(point) if hs.get(str(point)) else ("Gamma" if str(point) in ("G", "Γ") else str(point))
                pred = hs.get(pkey)
                if not pred:
                    continue
                sd = hs_std.get(pkey)
                if not (isinstance(sd, list) and len(sd) == len(pred)):
                    sd = [None] * len(pred)
                distinct: list[float] = []
                dstd: list[float | None] = []
                for f, e in sorted(((float(x), e) for x, e in zip(pred, sd) if x is not None), key=lambda p: p[0]):
                    if not distinct or f - distinct[-1] > 0.01:
                        distinct.append(f)
                        dstd.append(e)
                if str(point) in ("Gamma", "G", "Γ"):
                    keep = [k for k, f in enumerate(distinct) if f > 0.05]  # acoustic zeros
                    distinct, dstd = [distinct[k] for k in keep], [dstd[k] for k in keep]
                grp = grp.sort_values(col)
                if len(distinct) != len(grp):
                    continue
                for f, e, (_, r) in zip(distinct, dstd, grp.iterrows()):
                    br = f" {r['branch']}" if "branch" in grp.columns else ""
                    pairs.append(_pair(f"{label} {point}{br}", f, float(r[col]), t.source_for(r, col), t, col,
                                       f"{via_prop}.high_symmetry_frequencies_THz[{point}]", e))
    return pairs


def _pair(label, pred, ref, source, t, col, via, std=None):
    p = {"label": label, "predicted": pred, "reference": ref, "source": source, "reference_file": t.path.name,
         "reference_column": col, "via": via, "difference": pred - ref,
         "relative_difference_pct": 100 * (pred - ref) / ref if ref else math.nan}
    if _num(std):  # committee std of the prediction: only present for committee rows
        p["predicted_std"] = float(std)
    return p


def _vibration_pairs(preds: dict, tables: list[ReferenceTable]) -> list[dict]:
    pairs = []
    for t in tables:
        if "frequency_cm1" not in t.units or "mode" not in t.frame.columns:
            continue
        for label, res in sorted(preds.items()):
            key, _ = _split_label(label)
            rows = t.frame[t.frame[t.key] == key]
            vib = _rows(res, "vibrations")
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
            for f, (e, mode, src) in zip(freqs, exp):
                seen[mode] = seen.get(mode, 0) + 1
                lab = f"{label} {mode}" + (f"({seen[mode]})" if seen[mode] > 1 else "")
                pairs.append(_pair(lab, f, e, src, t, "frequency_cm1", "vibrations.frequencies_cm1 (ascending)"))
    return pairs


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curves(df, doc: _Doc, figdir: Path, figures: list[Path], tables: list[ReferenceTable]) -> None:
    """EOS curves, Cv(T) curves (with Dulong-Petit 3R) and phonon dispersions of the done rows."""
    from ..properties.phonons import band_axis, band_path_ticks

    done = df[df["status"] == "done"]
    eos = done[done["property"] == "eos"]
    if len(eos):
        with _figure(figdir, figures, "eos_curves.png") as ax:
            for lab, r in zip(eos["label"], eos["_result"]):
                v, e = r.get("volumes_A3_per_atom"), r.get("energies_eV_per_atom")
                if isinstance(v, list) and isinstance(e, list) and r.get("v0_A3_per_atom"):
                    v0 = r["v0_A3_per_atom"]
                    ax.plot(np.array(v) / v0, 1000 * (np.array(e) - min(e)), "o-", ms=3, label=lab)
            _labels(ax, "volume V/V0 (dimensionless)", "energy E - E_min (meV/atom)", "equations of state")
        f = figures[-1]
        doc.h(2, "Equation-of-state curves")
        doc.img(f"figures/{f.name}", "EOS curves")
    th = done[done["property"] == "thermal"]
    if len(th):
        with _figure(figdir, figures, "cv_curves.png") as ax:
            for lab, r in zip(th["label"], th["_result"]):
                t, cv = r.get("temperatures_K"), r.get("cv_J_molK_atoms")
                if isinstance(t, list) and isinstance(cv, list):
                    ax.plot(t, cv, "-", label=lab)
            ax.axhline(3 * 8.314462618, color="k", ls="--", lw=0.8, label="3R (Dulong-Petit)")
            for tb in tables:
                col = next((c for c in tb.units if _is_cv298(c)), None)
                if col is None:
                    continue
                for lab in th["label"]:
                    got = tb.value(_split_label(lab)[0], col)
                    if got:
                        ax.plot([298.15], [got[0]], "kx")
            _labels(ax, "temperature T (K)", "heat capacity Cv (J/(mol K))",
                    "harmonic Cv(T) per mole of atoms (x: experiment at 298 K)")
        f = figures[-1]
        doc.h(2, "Heat capacity Cv(T)")
        doc.img(f"figures/{f.name}", "Cv(T) curves")
    ph = done[done["property"] == "phonons"]
    if len(ph):
        doc.h(2, "Phonon dispersions")
    for lab, r in zip(ph["label"], ph["_result"]):
        d, fr, labels = r.get("band_distances_inv_A"), r.get("band_frequencies_THz"), r.get("band_labels")
        if not (isinstance(d, list) and isinstance(fr, list) and d):
            continue
        safe = "".join(ch if ch.isalnum() else "_" for ch in lab)
        with _figure(figdir, figures, f"phonons_{safe}.png", size=(5.5, 3.8)) as ax:
            segments = []
            for k, (x, y) in enumerate(zip(d, fr)):
                ax.plot(x, np.array(y, dtype=float), "b-", lw=1)
                if isinstance(labels, list) and k < len(labels):
                    segments.append((labels[k][0], labels[k][1], x[0], x[-1]))
            ticks, names = band_path_ticks(segments)
            n_exp = 0
            for tb in tables:
                if "point" in tb.frame.columns:
                    col = next((c for c in tb.units if c.endswith("_THz")), None)
                    rows = tb.frame[tb.frame[tb.key] == _split_label(lab)[0]] if col else []
                    for _, rr in (rows.iterrows() if len(rows) else []):
                        p = str(rr["point"])
                        if p in names and rr[col] == rr[col]:
                            ax.plot([ticks[names.index(p)]], [float(rr[col])], "rs", ms=4)
                            n_exp += 1
            band_axis(ax, ticks, names, line_color="k")
            ax.set_xlabel("wave vector along the high-symmetry path (1/Å)")
            ax.set_title(f"{lab}: phonon dispersion" + (" (red squares: experiment)" if n_exp else ""), fontsize=9)
        f = figures[-1]
        doc.img(f"figures/{f.name}", f"{lab} phonon dispersion")


def _committee_curves(df, doc: _Doc, figdir: Path, figures: list[Path], n_std: float = 2.0) -> None:
    """Per committee row: phonon dispersion (mean, shaded ± ``n_std`` std), Cv(T) and E(V) (mean,
    band, member curves) drawn by :func:`mlip_props.properties.uncertainty.plot_committee`."""
    from types import SimpleNamespace

    from ..properties.uncertainty import plot_committee

    rows = df[(df["status"] == "done") & (df["property"] == "committee")]
    arrays = ("band_frequencies_THz", "band_frequencies_THz_std", "band_distances_inv_A", "temperatures_K",
              "heat_capacity_J_molK", "heat_capacity_J_molK_std", "heat_capacity_J_molK_members",
              "eos_volumes_A3_per_atom", "eos_energies_eV_per_atom_members", "e0_eV_per_atom_members")
    first = True
    for lab, r in zip(rows["label"], rows["_result"]):
        if all(r.get(k) is None for k in ("band_frequencies_THz", "heat_capacity_J_molK",
                                          "eos_energies_eV_per_atom_members")):
            continue
        ns = SimpleNamespace(**{k: (None if r.get(k) is None else np.asarray(r[k], dtype=float)) for k in arrays},
                             band_segment_labels=r.get("band_segment_labels"),
                             band_segment_sizes=r.get("band_segment_sizes"),
                             formula=f"{lab} ({r.get('formula')})", n_members=r.get("n_members"))
        fig = plot_committee(ns, None, n_std=n_std)
        ax = fig.axes[0]
        ax.set_xlabel("wave vector along the high-symmetry path (1/Å)")
        safe = "".join(ch if ch.isalnum() else "_" for ch in lab)
        f = figdir / f"committee_{safe}.png"
        _save(fig, f, ax)
        _plt().close(fig)
        figures.append(f)
        if first:
            doc.h(2, "Committee uncertainty: phonon dispersions, Cv(T) and E(V)")
            doc.p(f"Committee mean with a shaded band of ± {n_std:g} standard deviations; Cv(T) per mole of atoms "
                  "and E(V) − E0 (each member's own minimum energy) with the member curves (grey).")
            first = False
        doc.img(f"figures/{f.name}", f"{lab} committee phonons and Cv")


_COMMITTEE_SKIP = {"B_GPa"}  # the same number as bulk_modulus_GPa


def _committee_table(doc: _Doc, g) -> None:
    """Committee rows: every scalar that has a committee std, as ``mean ± std``."""
    fields: list[str] = []
    for r in g["_result"]:
        for k, v in r.items():
            if (k not in fields and k not in _COMMITTEE_SKIP and _num(v) and _num(r.get(f"{k}_std"))
                    and len(fields) < 14):
                fields.append(k)
    cal = any(_num(r.get("calibration_factor")) for r in g["_result"])
    doc.h(2, "Results: committee")
    doc.p("Committee mean ± standard deviation over members (ddof 0); per-member values are in the database "
          "(`*_members`)." + (" Calibrated std = std × the calibration factor stored with the model." if cal else ""))
    hdr = ["structure", "members"] + fields + (["calibration factor"] if cal else [])
    doc.table(hdr, [[lab, _fmt(r.get("n_members"))] + [_pm(r.get(k), r.get(f"{k}_std")) for k in fields]
                    + ([_fmt(r.get("calibration_factor"))] if cal else [])
                    for lab, r in zip(g["label"], g["_result"])][:500])


def build_report(db: str | Path | ResultsDB, out_dir: str | Path, reference: list[str | Path] | None = None,
                 title: str | None = None) -> Report:
    """Write the report of a results database into ``out_dir``; returns the paths written.

    ``reference``: CSV files to compare with (default: every valid file in ``reference_data/``).
    """
    out = Path(out_dir)
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    rdb = db if isinstance(db, ResultsDB) else ResultsDB(db)
    df = to_dataframe(rdb, expand_results=False)
    results_by_id = {row.id: (row.data.get("result") or {}) for row in rdb.db.select()}
    df["_result"] = [results_by_id[i] for i in df["id"]] if len(df) else []
    doc = _Doc()
    figures: list[Path] = []
    data: dict[str, Any] = {"db": str(rdb.url), "comparisons": {}, "properties": {}}
    potentials = sorted(set(df["potential"].dropna())) if len(df) else []
    pot = ", ".join(potentials) or "?"
    campaigns = sorted(set(df["campaign"].dropna())) if "campaign" in df and len(df) else []
    doc.h(1, title or f"mlip-props report: {', '.join(campaigns) or Path(str(rdb.url)).stem}")
    doc.p(f"Database: {rdb.url}. Potential(s): {pot}. Rows: {len(df)}.")

    # ---- summary
    doc.h(2, "Summary")
    summ = []
    for prop, g in (df.groupby("property") if len(df) else []):
        n_done = int((g["status"] == "done").sum())
        n_failed = int((g["status"] == "failed").sum())
        data["properties"][prop] = {"rows": len(g), "done": n_done, "failed": n_failed}
        summ.append([prop, len(g), n_done, n_failed])
    doc.table(["property", "rows", "done", "failed"], summ)

    # ---- comparisons
    if reference is None:
        tables = [t for t in load_all_references().values() if isinstance(t, ReferenceTable)]
    else:
        tables = [load_reference(r) for r in reference]
    preds = collect_predictions(df) if len(df) else {}
    for q in QUANTITIES:
        pairs = []
        for t in tables:
            col = next((c for c in q.ref_columns if c in t.units), None)
            if col is None and q.match is not None:
                col = next((c for c in t.units if q.match(c)), None)
            if col is None:
                continue
            for label, res in sorted(preds.items()):
                key, crystal = _split_label(label)
                cond, crystal = _structure_condition(t, key, crystal)
                cond.update({c: v for c, v in q.conditions.items() if c in t.frame.columns})
                refv = t.value(key, col, **cond)
                if refv is None:
                    continue
                pv = q.predict(res, crystal or "")
                if pv is None:
                    continue
                pairs.append({"label": label, "predicted": pv[0], "reference": refv[0], "source": refv[1],
                              "reference_file": t.path.name, "reference_column": col, "via": pv[1],
                              "difference": pv[0] - refv[0], "relative_difference_pct": 100 * (pv[0] - refv[0]) / refv[0]
                              if refv[0] else math.nan})
                if len(pv) > 2 and _num(pv[2]):  # committee std (error bar)
                    pairs[-1]["predicted_std"] = float(pv[2])
        if not pairs:
            continue
        _comparison_section(doc, figdir, figures, data, q, pairs, pot)

    # ---- phonon frequencies at high-symmetry points
    ph_pairs = _phonon_pairs(preds, tables)
    if ph_pairs:
        q = Quantity("phonon_frequencies", "phonon frequency at high-symmetry points", "THz", (), lambda r, s: None)
        _comparison_section(doc, figdir, figures, data, q, ph_pairs, pot,
                            note="Distinct predicted frequencies at each point (degenerate branches merged), "
                                 "ascending, paired with the measured branches, ascending. Measurements at the "
                                 "temperatures given in the reference file; predictions are harmonic at 0 K.")

    # ---- molecular vibrations (modes paired in ascending order)
    vib_pairs = _vibration_pairs(preds, tables)
    if vib_pairs:
        q = Quantity("vibrations", "vibrational frequency", "cm⁻¹", (), lambda r, s: None)
        _comparison_section(doc, figdir, figures, data, q, vib_pairs, pot,
                            note="Harmonic frequencies vs experimental (anharmonic) fundamentals, paired in ascending "
                                 "order per molecule (degenerate modes repeated); harmonic values are expected a few % higher.")

    # ---- curves: EOS, Cv(T), phonon dispersions
    if len(df):
        _curves(df, doc, figdir, figures, tables)

    # ---- committee rows: shaded phonon bands and Cv(T) band
    if len(df):
        _committee_curves(df, doc, figdir, figures)

    # ---- hulls
    if len(df):
        _hulls(df, doc, figdir, figures, data)

    # ---- per-property result tables
    for prop, g in (df[df["status"] == "done"].groupby("property") if len(df) else []):
        if prop == "committee":
            _committee_table(doc, g)
            continue
        fields: list[str] = []
        for r in g["_result"]:
            for k, v in r.items():
                if k not in fields and isinstance(v, (int, float, str)) and not isinstance(v, bool) and len(fields) < 8:
                    fields.append(k)
        doc.h(2, f"Results: {prop}")
        doc.table(["structure"] + fields, [[lab] + [_fmt(r.get(k)) for k in fields]
                                            for lab, r in zip(g["label"], g["_result"])][:500])

    failed = df[df["status"] == "failed"] if len(df) else df
    if len(failed):
        doc.h(2, f"Failed rows ({len(failed)})")
        doc.table(["structure", "property", "error"], [[r["label"], r["property"], r["error"][:300]]
                                                      for _, r in failed.head(200).iterrows()])
        data["failed"] = [{"label": r["label"], "property": r["property"], "error": r["error"]} for _, r in failed.iterrows()]
    md = out / "report.md"
    md.write_text(doc.markdown())
    ht = out / "report.html"
    ht.write_text(doc.html(title or "mlip-props report"))
    js = out / "report.json"
    js.write_text(json.dumps(data, indent=1, default=lambda o: None if isinstance(o, float) and not math.isfinite(o) else str(o)))
    return Report(out, md, ht, js, figures, data["comparisons"])
