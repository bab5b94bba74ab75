"""High-pressure polymorphs, buildable by name, for the enthalpy crossings of ``phase_transitions.csv``.

These are NOT reference solids: their lattice parameters are starting guesses (roughly the
measured or computed cell near the transition, from memory, not audited), and the relaxation at
every pressure of a P-T scan (:func:`mlip_props.properties.phase_diagram.pt_phase_diagram`,
:func:`mlip_props.properties.transitions.transition`) replaces them. They are therefore kept out of
the 70-solid table ``solids.csv`` and out of every comparison against experimental lattice
parameters; :func:`mlip_props.structures.load_structure` resolves their names after the reference
solids (``"Si-betaSn"``, ``"NaCl-B2"``, ``"GaN-rocksalt"``, ``"Fe-hcp"`` ...).

Each :class:`PolymorphEntry` names the low-pressure phase it competes with (a reference solid of
:mod:`mlip_props.structure_library`) and the row of ``phase_transitions.csv`` (``material``,
``transition``) that holds the measured onset. The crystals are built by the structure library's
prototype builder (same sites, primitive cells): beta-Sn I4_1/amd (origin choice 1, site (0,0,0)),
CsCl Pm-3m, rocksalt Fm-3m, hcp P6_3/mmc.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ase import Atoms

from .structure_library import PROTOTYPES, SolidEntry, build_solid, close_matches

__all__ = ["PolymorphEntry", "polymorph_entries", "polymorph_names", "polymorph_entry", "resolve_polymorph_name",
           "polymorphs_of", "get_polymorph"]


@dataclass(frozen=True)
class PolymorphEntry:
    """A high-pressure polymorph: ``name`` (``<formula>-<phase>``), ``prototype`` (a
    :data:`~mlip_props.structure_library.PROTOTYPES` key), starting lattice parameters ``a_A``,
    ``c_A`` (Angstrom; ``None`` for cubic cells), ``low_pressure_phase`` (the reference solid it
    competes with), ``material``/``transition`` (the row of ``phase_transitions.csv``; empty when
    the table has none) and ``note`` (where the starting guess comes from)."""

    name: str
    chemical_formula: str
    prototype: str
    space_group_symbol: str
    space_group_number: int
    a_A: float
    c_A: float | None
    low_pressure_phase: str
    material: str
    transition: str
    note: str
    internal_parameters: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the entry."""
        return asdict(self)


_GUESS = "starting guess near the transition pressure (not audited); relaxed at every pressure"
_ENTRIES: tuple[PolymorphEntry, ...] = (
    PolymorphEntry("Si-betaSn", "Si", "beta-Sn", "I4_1/amd", 141, 4.686, 2.585, "Si-diamond",
                   "Si", "diamond -> beta-Sn (Si-II)", f"c/a 0.552; {_GUESS}"),
    PolymorphEntry("Ge-betaSn", "Ge", "beta-Sn", "I4_1/amd", 141, 4.884, 2.692, "Ge-diamond",
                   "Ge", "diamond -> beta-Sn (Ge-II)", f"c/a 0.551; {_GUESS}"),
    PolymorphEntry("NaCl-B2", "NaCl", "CsCl", "Pm-3m", 221, 2.997, None, "NaCl-rocksalt",
                   "NaCl", "B1 (rocksalt) -> B2 (CsCl)",
                   "a = 2.997 A at the transition (phase_transitions.csv notes); relaxed at every pressure"),
    PolymorphEntry("KCl-B2", "KCl", "CsCl", "Pm-3m", 221, 3.80, None, "KCl-rocksalt",
                   "KCl", "B1 (rocksalt) -> B2 (CsCl)", f"volume ~10 % below B1; {_GUESS}"),
    PolymorphEntry("GaN-rocksalt", "GaN", "rocksalt", "Fm-3m", 225, 4.22, None, "GaN-wurtzite",
                   "GaN", "wurtzite (B4) -> rocksalt (B1)", _GUESS),
    PolymorphEntry("AlN-rocksalt", "AlN", "rocksalt", "Fm-3m", 225, 4.05, None, "AlN-wurtzite",
                   "AlN", "wurtzite (B4) -> rocksalt (B1)", _GUESS),
    PolymorphEntry("ZnO-rocksalt", "ZnO", "rocksalt", "Fm-3m", 225, 4.28, None, "ZnO-wurtzite",
                   "ZnO", "wurtzite (B4) -> rocksalt (B1)", _GUESS),
    PolymorphEntry("Fe-hcp", "Fe", "hcp", "P6_3/mmc", 194, 2.47, 3.96, "Fe-bcc",
                   "Fe", "bcc (alpha) -> hcp (epsilon)", f"c/a 1.60; {_GUESS}"),
)


def _check(e: PolymorphEntry) -> PolymorphEntry:
    number = PROTOTYPES[e.prototype][0]
    if number != e.space_group_number:
        raise ValueError(f"polymorph {e.name!r}: space group {e.space_group_number} does not match prototype "
                         f"{e.prototype} ({number})")
    return e


def polymorph_entries() -> dict[str, PolymorphEntry]:
    """Every high-pressure polymorph by name, in table order."""
    return {e.name: _check(e) for e in _ENTRIES}


def polymorph_names() -> list[str]:
    """Names of the high-pressure polymorphs."""
    return [e.name for e in _ENTRIES]


def resolve_polymorph_name(name: str) -> str | None:
    """The entry name that ``name`` means (itself or a case variant), or None."""
    folded = {n.casefold(): n for n in polymorph_names()}
    return folded.get(name.casefold())


def polymorph_entry(name: str) -> PolymorphEntry:
    """The :class:`PolymorphEntry` of ``name``; ``ValueError`` listing close matches otherwise."""
    resolved = resolve_polymorph_name(name)
    if resolved is None:
        near = close_matches(name, polymorph_names())
        raise ValueError(f"unknown polymorph {name!r}" + (f"; close matches: {', '.join(near)}" if near else "")
                         + f" (known: {', '.join(polymorph_names())})")
    return polymorph_entries()[resolved]


def polymorphs_of(formula: str) -> list[PolymorphEntry]:
    """The high-pressure polymorphs of a reduced formula (``"Si"``, ``"NaCl"``), table order."""
    return [e for e in _ENTRIES if e.chemical_formula == formula]


def get_polymorph(name: str) -> Atoms:
    """Primitive cell of the polymorph ``name`` at its starting lattice parameters (Angstrom)."""
    e = polymorph_entry(name)
    solid = SolidEntry(name=e.name, chemical_formula=e.chemical_formula, prototype=e.prototype,
                       space_group_symbol=e.space_group_symbol, space_group_number=e.space_group_number,
                       atoms_per_primitive_cell=0, a_A=e.a_A, c_A=e.c_A, temperature_K=0.0, source="guess",
                       table="polymorph_library", internal_parameters=dict(e.internal_parameters))
    return build_solid(solid)
