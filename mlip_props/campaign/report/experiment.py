"""The parts of a report that let a reader judge a comparison with experiment.

* :func:`structure_crystal_systems`: the crystal system of every structure label, from spglib's
  space group of the input structure stored with its rows (symprec 1e-3 Å; ``"molecule"`` for a
  structure that is not periodic in three directions, ``"unknown"`` when spglib finds none);
* :func:`grouped_stats`: :func:`~.comparison.parity_stats` of the pairs of each crystal system;
* :func:`largest_deviations`: the pairs of every quantity with the largest relative deviation;
* :func:`ignored_physics`: what a static, classical, 0 K calculation leaves out of the comparison
  (zero-point motion and thermal expansion, anharmonic shifts, Cp vs Cv, LO-TO splitting without
  Born charges, magnetism, the electronic part of the thermal conductivity, the functional the
  potential was trained on, room-temperature phases), each item naming the compared structures it
  concerns.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from ..sources import crystal_system
from .comparison import parity_stats
from .quantities import reference_keys

__all__ = ["structure_crystal_systems", "crystal_system_of", "grouped_stats", "largest_deviations",
           "ignored_physics", "MAGNETIC_ORDER", "SYSTEM_ORDER", "system_sort_key", "annotate_crystal_systems"]

#: reference key (formula) -> magnetic order of the crystal at the measurement temperature
MAGNETIC_ORDER: dict[str, str] = {
    "Fe": "ferromagnetic", "Ni": "ferromagnetic", "Co": "ferromagnetic", "Gd": "ferromagnetic",
    "Cr": "antiferromagnetic (spin-density wave)", "Mn": "antiferromagnetic",
    "Fe2O3": "antiferromagnetic (weakly canted)", "Cr2O3": "antiferromagnetic", "NiO": "antiferromagnetic",
    "MnO": "antiferromagnetic", "CoO": "antiferromagnetic", "FeO": "antiferromagnetic",
}

#: crystals measured in a phase that is not their ground state at 0 K: key -> the reason
_HIGH_T_PHASE: dict[str, str] = {
    "BaTiO3": "cubic only above about 393 K (tetragonal and lower below)",
    "SrTiO3": "cubic above about 105 K (antiferrodistortive tetragonal below)",
    "Sn": "beta-Sn is stable above about 286 K (alpha-Sn, diamond, below)",
}

#: chemical elements whose pure crystals are metals (for the electronic-conductivity item)
_METALS = set("Li Be Na Mg Al K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Cs Ba "
              "La Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi".split())


def crystal_system_of(atoms: Any, symprec: float = 1e-3) -> str:
    """Crystal system of an ``ase.Atoms`` from spglib's space group (``"molecule"`` when not
    periodic in all three directions, ``"unknown"`` when spglib finds no space group)."""
    import spglib

    if atoms is None or len(atoms) == 0 or not bool(np.all(atoms.get_pbc())):
        return "molecule"
    cell = (np.asarray(atoms.get_cell(), dtype=float), atoms.get_scaled_positions(wrap=True),
            atoms.get_atomic_numbers())
    ds = spglib.get_symmetry_dataset(cell, symprec=symprec)
    if ds is None:
        return "unknown"
    number = ds["number"] if isinstance(ds, dict) else ds.number
    return crystal_system(int(number))


def structure_crystal_systems(rows: Iterable[Any], symprec: float = 1e-3) -> dict[str, str]:
    """label -> crystal system of the input structure of the first readable row of each label
    (rows of :func:`mlip_props.campaign.database.readable_rows`)."""
    out: dict[str, str] = {}
    for row in rows:
        label = row.get("label")
        if label is None or label in out:
            continue
        try:
            atoms = row.toatoms()
        except Exception:  # noqa: BLE001 - a row without a structure: no crystal system
            continue
        if len(atoms):
            out[label] = crystal_system_of(atoms, symprec)
    return out


def _structure_of_pair(label: str, systems: dict[str, str]) -> str | None:
    """The structure label a pair label starts with (``"Si-diamond X TA"`` -> ``"Si-diamond"``)."""
    if label in systems:
        return label
    best = None
    for s in systems:
        if label.startswith(s + " ") and (best is None or len(s) > len(best)):
            best = s
    return best


def annotate_crystal_systems(pairs: list[dict], systems: dict[str, str]) -> None:
    """Set ``crystal_system`` of every pair (``"unknown"`` when its structure has none)."""
    for p in pairs:
        s = _structure_of_pair(p["label"], systems)
        p["crystal_system"] = systems.get(s, "unknown") if s else "unknown"


#: the order of crystal systems in tables (then any other group, by name)
SYSTEM_ORDER = ("cubic", "hexagonal", "trigonal", "tetragonal", "orthorhombic", "monoclinic", "triclinic", "molecule",
                "unknown")


def system_sort_key(name: str) -> tuple[int, str]:
    """Sort key of a crystal system: :data:`SYSTEM_ORDER`, then by name."""
    return (SYSTEM_ORDER.index(name) if name in SYSTEM_ORDER else len(SYSTEM_ORDER), name)


def grouped_stats(pairs: list[dict], key: str = "crystal_system") -> dict[str, dict[str, float]]:
    """:func:`parity_stats` of the pairs of each value of ``pairs[i][key]`` (crystal systems in
    :data:`SYSTEM_ORDER`)."""
    groups: dict[str, list[dict]] = {}
    for p in sorted(pairs, key=lambda p: system_sort_key(str(p.get(key, "unknown")))):
        groups.setdefault(str(p.get(key, "unknown")), []).append(p)
    return {g: parity_stats(np.array([p["predicted"] for p in ps]), np.array([p["reference"] for p in ps]))
            for g, ps in groups.items()}


def largest_deviations(comparisons: dict[str, dict[str, Any]], n: int = 15) -> list[dict[str, Any]]:
    """The ``n`` pairs with the largest |relative difference| over every quantity (ties and pairs
    with a zero reference after, by |difference|), each with its quantity's ``key``/``label``/``unit``."""
    rows = []
    for key, c in comparisons.items():
        for p in c["pairs"]:
            rel = p.get("relative_difference_pct")
            rel_abs = abs(rel) if isinstance(rel, (int, float)) and math.isfinite(rel) else -1.0
            rows.append({"quantity": key, "quantity_label": c["label"], "unit": c["unit"], **p,
                         "_rank": (rel_abs, abs(p["difference"]))})
    rows.sort(key=lambda r: r["_rank"], reverse=True)
    return [{k: v for k, v in r.items() if k != "_rank"} for r in rows[:n]]


def _keys(labels: Iterable[str]) -> dict[str, str]:
    """structure label -> formula key (the last of :func:`reference_keys`: ``"GaN"`` of ``"GaN-wurtzite"``)."""
    return {lab: reference_keys(lab)[-1][0] for lab in labels}


def _temperatures(comparisons: dict[str, dict[str, Any]], tables: list[Any]) -> list[float]:
    """Measurement temperatures (K) of the compared reference rows, where the tables give them."""
    temps: list[float] = []
    by_file = {t.path.name: t for t in tables}
    for c in comparisons.values():
        for p in c["pairs"]:
            t = by_file.get(p.get("reference_file"))
            if t is None:
                continue
            cols = [col for col in t.frame.columns if col.endswith("T_K") or col == "temperature_K"]
            col_pref = [col for col in cols if col.split("_")[0] == p.get("reference_column", "").split("_")[0]]
            for key, _ in reference_keys(p["label"].split(" ")[0]):
                sel = t.frame[t.frame[t.key] == key]
                if len(sel):
                    for col in (col_pref or cols)[:1]:
                        try:
                            v = float(sel.iloc[0][col])
                        except (TypeError, ValueError):
                            continue
                        if math.isfinite(v):
                            temps.append(v)
                    break
    return temps


def ignored_physics(comparisons: dict[str, dict[str, Any]], labels: list[str], tables: list[Any],
                    flags_by_label: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(topic, text) items of what the comparison leaves out, for the structures ``labels``
    compared (see the module docstring). Always the general items; the specific ones list the
    compared structures they concern, or say that none of them does."""
    keys = _keys(labels)
    temps = _temperatures(comparisons, tables)
    t_text = (f"The compared measurements were made at {min(temps):g}-{max(temps):g} K." if temps else
              "The reference tables give the temperature of each measurement.")
    items = [
        ("Zero-point motion and thermal expansion",
         "Predictions are static lattices at 0 K without zero-point motion (classical nuclei at the minimum of the "
         "potential energy); measurements are at finite temperature. " + t_text + " Thermal expansion from 0 K to "
         "room temperature and zero-point expansion each make the measured lattice parameter larger, typically by "
         "0.1-1 % together (more for soft and light crystals such as the alkali metals), and the measured moduli "
         "and elastic constants smaller (a few % at room temperature). Measured elastic constants are adiabatic, "
         "the static ones isothermal (the same at 0 K)."),
        ("Anharmonicity",
         "Phonon frequencies, Cv and the Debye temperature are harmonic at the static lattice; measured phonons "
         "carry anharmonic shifts and the volume of their temperature. Measured heat capacities are Cp at "
         "constant pressure; the harmonic Cv is lower by Cp - Cv = 9 B alpha^2 V T (about 1-3 % at 298 K for most "
         "solids). Molecular fundamentals are anharmonic; harmonic frequencies lie a few % above them."),
        ("Reference level of the potential",
         "A potential reproduces the method it was fitted to, not experiment: universal potentials such as "
         "SevenNet-0 reproduce PBE and PBE+U of the Materials Project, and PBE typically overestimates lattice "
         "constants by about 1 % and underestimates moduli, so a deviation from experiment is the sum of the "
         "functional's and the model's errors."),
    ]
    polar = sorted({lab for lab, fl in flags_by_label.items() if "no LO-TO" in fl and lab in keys})
    items.append(("LO-TO splitting",
                  "Without Born effective charges and the dielectric tensor (phonopy's non-analytical correction) the "
                  "longitudinal optical modes of polar crystals are not split from the transverse ones at Gamma, so "
                  "measured LO frequencies near Gamma are compared with TO-like ones. "
                  + (f"Concerns (rows flagged 'no LO-TO'): {', '.join(polar)}." if polar else
                     "None of the compared phonon rows is flagged 'no LO-TO'.")))
    mag = sorted(f"{lab} ({MAGNETIC_ORDER[k]})" for lab, k in keys.items() if k in MAGNETIC_ORDER)
    items.append(("Magnetism",
                  "The potentials have no spin degrees of freedom: a magnetic ground state enters only through the "
                  "energies the model was trained on (spin-polarised DFT), and magnetovolume and magnetoelastic "
                  "effects, magnon contributions to Cv and magnetic transitions are absent. "
                  + (f"Magnetic among the compared: {', '.join(mag)}." if mag else
                     "None of the compared structures is magnetically ordered at its measurement temperature.")))
    kappa = comparisons.get("kappa_lattice", {}).get("pairs", [])
    metals = sorted({p["label"] for p in kappa if all(e in _METALS for e in _elements(keys.get(p["label"], p["label"])))})
    maybe = sorted({p["label"] for p in kappa if p["label"] not in metals
                    and _may_be_metallic(_elements(keys.get(p["label"], p["label"])))})
    general = ("The computed conductivity is the lattice (phonon) part in the relaxation-time approximation with "
               "three-phonon and isotope scattering only; measured values of metals are dominated by the "
               "electronic part, and four-phonon and boundary scattering are absent.")
    if not kappa:
        specific = "No conductivity was compared in this report."
    else:
        specific = f"Metals among the compared: {', '.join(metals)}." if metals else \
            "No metal among the compared conductivities."
        if maybe:
            specific += (f" May be metallic (transition-metal carbides, nitrides, borides, ...; no band gap is known "
                         f"here): {', '.join(maybe)}.")
    items.append(("Electronic thermal conductivity", f"{general} {specific}"))
    hot = sorted(f"{lab} ({_HIGH_T_PHASE[k]})" for lab, k in keys.items() if k in _HIGH_T_PHASE)
    items.append(("Phases of the measurement temperature",
                  "Every crystal is computed in the phase of its measurement; a phase that is stable only at high "
                  "temperature can be dynamically unstable (imaginary modes) in a static 0 K calculation. "
                  + (f"Concerns: {', '.join(hot)}." if hot else "None of the compared structures is concerned.")))
    return items


def _may_be_metallic(elements: list[str]) -> bool:
    """The conductivity property's "may be metallic" rule (:func:`~mlip_props.properties.conductivity.kappa.
    may_be_metallic`) for a list of element symbols (False for names that are not elements)."""
    from ase.data import chemical_symbols

    from ...properties.conductivity.kappa import may_be_metallic

    if not elements or any(e not in chemical_symbols for e in elements):
        return False
    return may_be_metallic(elements)


def _elements(formula: str) -> list[str]:
    import re

    return re.findall(r"[A-Z][a-z]?", formula) or [formula]
