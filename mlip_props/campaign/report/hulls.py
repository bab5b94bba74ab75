"""Binary convex hulls from the ``energy`` (or ``relax``) rows of a results database.

For every binary system A-B whose two elements were both computed, the formation energy per atom
of each structure (relative to the elements' energies per atom in the same rows) and its energy
above the hull, from pymatgen's ``PhaseDiagram``. Rows of ``energy`` and of ``relax`` make
separate hulls (they may hold different relaxation settings).
"""
from __future__ import annotations

__all__ = ["binary_hulls"]


def binary_hulls(df) -> list[tuple[str, str, str, list[dict]]]:
    """``(A, B, property, points)`` per binary system (A, B sorted by symbol), points sorted by
    ``x_B`` then formation energy, each with ``label``, ``formula``, ``x_<B>`` (atomic fraction),
    ``formation_energy_eV_per_atom`` and ``e_above_hull_eV_per_atom``."""
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    rows = df[(df["status"] == "done") & (df["property"].isin(["energy", "relax"]))]
    if rows.empty:
        return []
    entries_by_prop: dict[str, list] = {}
    for _, r in rows.iterrows():
        e = r["_result"].get("energy_eV")
        if e is None or r["formula"] in (None, ""):
            continue
        entries_by_prop.setdefault(r["property"], []).append((r["label"], Composition(r["formula"]), float(e)))
    hulls = []
    for prop, ents in entries_by_prop.items():
        systems = sorted({tuple(sorted(str(el) for el in c.elements)) for _, c, _ in ents if len(c.elements) == 2})
        for system in systems:
            sub = [(lab, c, e) for lab, c, e in ents if {str(el) for el in c.elements} <= set(system)]
            if not all(any({str(el) for el in c.elements} == {x} for _, c, _ in sub) for x in system):
                continue  # an element of the system was not computed
            pd_entries = [PDEntry(c, e, name=lab) for lab, c, e in sub]
            diagram = PhaseDiagram(pd_entries)
            a, b = system
            points = []
            for ent, (lab, c, e) in zip(pd_entries, sub):
                points.append({"label": lab, "formula": c.reduced_formula, f"x_{b}": c.get_atomic_fraction(b),
                               "formation_energy_eV_per_atom": float(diagram.get_form_energy_per_atom(ent)),
                               "e_above_hull_eV_per_atom": float(diagram.get_e_above_hull(ent))})
            points.sort(key=lambda d: (d[f"x_{b}"], d["formation_energy_eV_per_atom"]))
            hulls.append((a, b, prop, points))
    return hulls
