"""Report section: pressure-induced transitions (the ``transition`` rows) against measured onsets.

One table row per done ``transition`` row: material, transition, the predicted static T = 0
crossing (GPa; committee: mean ± std of the members' crossings, with how many members cross on the
grid), the measured onset on compression, its reported range and source (the row of a reference
table with ``material``/``transition`` columns, ``phase_transitions.csv``), and the row's checks.
One figure: the enthalpy of every high-pressure phase relative to the input phase, H - H_input
(meV/atom) against pressure. A paragraph says why a T = 0 crossing is expected below the onsets.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .document import Document, format_value, format_with_std

__all__ = ["transition_rows", "write_transition_section", "TRANSITION_NOTE"]

TRANSITION_NOTE = (
    "A static T = 0 crossing is the equilibrium pressure at which the two phases' enthalpies H = E + PV are "
    "equal (no zero-point or thermal energy). The measured values are onsets on compression at room "
    "temperature: the transformation needs an overpressure to nucleate and shows hysteresis (the reverse "
    "transition on release is lower), and the onset depends on the pressure medium (shear stress). The "
    "equilibrium pressure lies inside the hysteresis loop, below the onset on compression: a model crossing "
    "below the onset range is expected and not by itself an error; a crossing above it is. Static DFT crossings fall below the onsets too: for Si "
    "diamond -> beta-Sn, LDA and GGA functionals (PBE among them) give 3.5-10.0 GPa against the measured "
    "11.3-12.6 GPa, diffusion Monte Carlo 14.0 +- 1.0 GPa (R. G. Hennig et al., arXiv:1006.3253, Phys. Rev. B 82, "
    "014101 (2010); abstract). A potential fitted to PBE data (SevenNet-0, CHGNet) is "
    "to be judged against PBE's crossing as well as the onsets. Fe bcc -> hcp is set by the "
    "ferromagnetism of bcc Fe: a potential without magnetic degrees of freedom gives a non-magnetic "
    "balance, not a prediction of the magnetic transition."
)


def _reference_row(tables: list, material: str, transition: str) -> dict[str, Any] | None:
    for tb in tables:
        frame = getattr(tb, "frame", None)
        if frame is None or not {"material", "transition", "value", "unit"} <= set(frame.columns):
            continue
        sel = frame[(frame["material"] == material) & (frame["transition"] == transition)]
        if len(sel):
            r = sel.iloc[0]
            return {"value": float(r["value"]), "unit": str(r["unit"]), "range": str(r.get("uncertainty", "") or ""),
                    "source": str(r.get("primary_source", "") or ""), "file": Path(str(tb.path)).name}
    return None


def _checks(r: dict[str, Any]) -> list[str]:
    out = []
    if r.get("relax_converged") is False:
        out.append("unconverged")
    if r.get("space_group_changed"):
        sgs, phases, p = r.get("relaxed_space_groups") or [], r.get("phases") or [], r.get("pressures_GPa") or []
        where = []
        for name in r["space_group_changed"]:
            i = phases.index(name) if name in phases else -1
            row = sgs[i] if 0 <= i < len(sgs) else []
            at = [f"{format_value(p[k])} GPa: {g}" for k, g in enumerate(row) if k < len(p) and g != row[0]]
            if not at and row:
                at = [f"all pressures: {row[0]}"]
            where.append(f"{name} ({', '.join(at)})" if at else name)
        out.append("relaxed into another space group: " + "; ".join(where))
    if r.get("input_phase_lowest_at_first_pressure") is False:
        out.append("input phase not the lowest at the first pressure")
    if r.get("precision") == "float32":
        out.append("float32")
    return out


def transition_rows(done, tables: list) -> list[dict[str, Any]]:
    """One dict per done ``transition`` row: label, material, transition, predicted GPa (+ std,
    members), the crossing phases, the experimental onset (value, unit, range, source, file) and checks."""
    rows = []
    sel = done[done["property"] == "transition"]
    for label, r in zip(sel["label"], sel["_result"]):
        material, trans = r.get("material") or "", r.get("transition") or ""
        ref = _reference_row(tables, material, trans) if material else None
        rows.append({
            "label": label, "material": material or r.get("formula", ""),
            "transition": trans or " / ".join(r.get("phases") or []),
            "predicted_GPa": r.get("transition_pressure_GPa"), "predicted_std_GPa": r.get("transition_pressure_GPa_std"),
            "members_GPa": r.get("transition_pressure_GPa_members"), "n_members": r.get("n_members", 1),
            "n_members_with_transition": r.get("n_members_with_transition"),
            "crossing": (f"{r.get('low_pressure_phase')} -> {r.get('high_pressure_phase')}"
                         if r.get("high_pressure_phase") else "none on the grid"),
            "grid_GPa": [min(r.get("pressures_GPa") or [np.nan]), max(r.get("pressures_GPa") or [np.nan])],
            "phases": r.get("phases") or [], "pressures_GPa": r.get("pressures_GPa") or [],
            "enthalpy_eV_per_atom": r.get("enthalpy_eV_per_atom") or [],
            "experimental": ref, "checks": _checks(r)})
    return rows


def _figure(path: Path, rows: list[dict[str, Any]]) -> bool:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    curves = [(row, np.asarray(row["pressures_GPa"], float), np.asarray(row["enthalpy_eV_per_atom"], float))
              for row in rows if len(row["phases"]) >= 2 and np.asarray(row["enthalpy_eV_per_atom"]).ndim == 2]
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for k, (row, p, h) in enumerate(curves):
        for i in range(1, len(row["phases"])):
            ax.plot(p, 1000 * (h[i] - h[0]), "-o", ms=3, color=f"C{k % 10}",
                    label=f"{row['label']}: {row['phases'][i]}")
        ref = row["experimental"]
        if ref and ref["unit"] == "GPa":
            ax.axvline(ref["value"], color=f"C{k % 10}", ls=":", lw=1)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("pressure (GPa)")
    ax.set_ylabel("H - H(input phase) (meV/atom)")
    ax.set_title("static enthalpies; dotted: measured onsets", fontsize=9)
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_transition_section(doc: Document, data: dict[str, Any], done, tables: list, figure_path) -> None:
    """Append the section (nothing without ``transition`` rows); ``figure_path(name)`` returns the
    path of a new figure (the builder's, so that the figure is listed); the rows go to
    ``data["transitions"]``."""
    rows = transition_rows(done, tables)
    if not rows:
        return
    data["transitions"] = rows
    doc.heading(2, "Pressure-induced transitions (static T = 0 enthalpy crossings vs measured onsets)")
    doc.paragraph(TRANSITION_NOTE)
    if any((r["n_members"] or 1) > 1 for r in rows):
        doc.paragraph("Committee rows: mean ± standard deviation (ddof 0) of the members' own crossings, over the "
                      "members that cross on the grid (count in the members column).")
    table = []
    for r in rows:
        ref = r["experimental"]
        members = (f"{r['n_members_with_transition']}/{r['n_members']}" if (r["n_members"] or 1) > 1 else "")
        table.append([r["label"], r["material"], r["transition"],
                      format_with_std(r["predicted_GPa"], r["predicted_std_GPa"]) if r["predicted_GPa"] is not None
                      else "none", r["crossing"], members,
                      f"{format_value(r['grid_GPa'][0])}-{format_value(r['grid_GPa'][1])}",
                      f"{format_value(ref['value'])} {ref['unit']}" if ref else "", ref["range"] if ref else "",
                      f"{ref['source']} ({ref['file']})" if ref else "", "; ".join(r["checks"])])
    doc.table(["structure", "material", "transition", "predicted T=0 crossing (GPa)", "crossing phases", "members",
               "grid (GPa)", "experimental onset", "reported range", "source", "checks"], table)
    path = figure_path("transitions_enthalpy.png")
    if _figure(path, rows):
        doc.image(f"figures/{path.name}", "enthalpy differences vs pressure")
