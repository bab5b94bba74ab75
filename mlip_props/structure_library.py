"""The reference solids, buildable by name at their experimental lattice parameters.

Every row of the table ``solids.csv`` shipped inside the package (prototype, space group, a and
c in Angstrom, internal parameters, measurement temperature, sources) and every fcc metal of the
shipped ``elements_fcc.csv`` (its ``a_A``) is a :class:`SolidEntry`; :func:`get` builds one as an
``ase.Atoms`` primitive cell, so the lattice parameters exist in one place, the tables:

>>> from mlip_props import structures
>>> structures.get("GaN-wurtzite")          # P6_3mc, 4 atoms, a = 3.190 A, c = 5.189 A, u = 0.377
>>> structures.get("MgO")                   # a formula that names one entry only: "MgO-rocksalt"

Names are ``<formula>-<prototype>`` (``Si-diamond``, ``Fe-bcc``, ``TiO2-rutile``, ``CsCl-B2``,
``Cu-fcc``); a bare formula is an alias when exactly one entry has it (``MgO``, ``GaN``,
``TiO2``, ``Fe``). :func:`mlip_props.structures.load_structure` resolves the same names, after
its element names (``"Fe"`` there stays ASE's reference crystal) and ASE's G2 molecules
(``"NaCl"`` there stays the molecule; the crystal is ``"NaCl-rocksalt"``).

Prototypes and the sites they place (fractional coordinates of the conventional cell, species in
the order of the formula): fcc, bcc, hcp, diamond (``ase.build.bulk``); zincblende F-43m
(0,0,0), (1/4,1/4,1/4); rocksalt Fm-3m (0,0,0), (1/2,1/2,1/2); CsCl Pm-3m (0,0,0),
(1/2,1/2,1/2); fluorite Fm-3m (0,0,0), (1/4,1/4,1/4); wurtzite P6_3mc (1/3,2/3,0),
(1/3,2/3,u); rutile P4_2/mnm (0,0,0), (x,x,0); perovskite Pm-3m A (0,0,0), B (1/2,1/2,1/2),
X (1/2,1/2,0); corundum R-3c (hexagonal axes) (0,0,z_cation), (x_anion,0,1/4); spinel Fd-3m
(origin choice 2) A (1/8,1/8,1/8), B (1/2,1/2,1/2), X (x_anion,x_anion,x_anion); beta-Sn I4_1/amd
(0,0,0); bct I4/mmm (``ase.build.bulk``, the In type). Compounds and beta-Sn are built with
``ase.spacegroup.crystal`` and reduced to the primitive cell.
"""
from __future__ import annotations

import csv
import difflib
import functools
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ase import Atoms

from .data import DATA_DIR

__all__ = ["SolidEntry", "PROTOTYPES", "solid_entries", "solid_names", "solid_entry", "resolve_solid_name",
           "solid_aliases", "build_solid", "get", "close_matches"]

#: prototype -> (space-group number, fractional sites of the conventional cell, internal parameters it needs)
PROTOTYPES: dict[str, tuple[int, tuple[tuple[Any, Any, Any], ...], tuple[str, ...]]] = {
    "fcc": (225, ((0, 0, 0),), ()),
    "bcc": (229, ((0, 0, 0),), ()),
    "hcp": (194, ((1 / 3, 2 / 3, 1 / 4),), ()),
    "diamond": (227, ((0, 0, 0),), ()),
    "zincblende": (216, ((0, 0, 0), (0.25, 0.25, 0.25)), ()),
    "rocksalt": (225, ((0, 0, 0), (0.5, 0.5, 0.5)), ()),
    "CsCl": (221, ((0, 0, 0), (0.5, 0.5, 0.5)), ()),
    "fluorite": (225, ((0, 0, 0), (0.25, 0.25, 0.25)), ()),
    "wurtzite": (186, ((1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, "u")), ("u",)),
    "rutile": (136, ((0, 0, 0), ("x", "x", 0)), ("x",)),
    "perovskite": (221, ((0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)), ()),
    "corundum": (167, ((0, 0, "z_cation"), ("x_anion", 0, 0.25)), ("z_cation", "x_anion")),
    "spinel": (227, ((0.125, 0.125, 0.125), (0.5, 0.5, 0.5), ("x_anion", "x_anion", "x_anion")), ("x_anion",)),
    "beta-Sn": (141, ((0, 0, 0),), ()),
    "bct": (139, ((0, 0, 0),), ()),
}
_HEXAGONAL = {"hcp", "wurtzite", "corundum"}
_NEEDS_C = {"hcp", "wurtzite", "rutile", "corundum", "beta-Sn", "bct"}
_ELEMENT_BULK = {"fcc", "bcc", "hcp", "diamond", "bct"}
#: International Tables origin choice where the prototype's sites are given in a non-default one
_SETTING = {"spinel": 2}


@dataclass(frozen=True)
class SolidEntry:
    """One reference solid: how to build it and where its numbers come from.

    ``a_A``/``c_A``: lattice parameters (Angstrom; ``c_A`` None for cubic prototypes);
    ``internal_parameters``: fractional coordinates not fixed by symmetry (``u`` of wurtzite,
    ``x`` of rutile, ``z_cation``/``x_anion`` of corundum); ``temperature_K``: temperature of the
    measurement; ``source``: short name of the primary source, explained in ``table``'s header.
    """

    name: str
    chemical_formula: str
    prototype: str
    space_group_symbol: str
    space_group_number: int
    atoms_per_primitive_cell: int
    a_A: float
    c_A: float | None
    temperature_K: float
    source: str
    table: str
    internal_parameters: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the entry."""
        return asdict(self)


#: the structures are always built from the shipped tables (not from a ``$MLIP_PROPS_REFERENCE_DATA``
#: folder given for comparisons), so a name means the same crystal everywhere
_SHIPPED_REFERENCE = DATA_DIR / "reference"


def _rows(table: str) -> list[dict[str, str]]:
    path = _SHIPPED_REFERENCE / f"{table}.csv"
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return list(csv.DictReader(lines))


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _internal(text: str, where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(";"))):
        key, sep, value = part.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"{where}: internal parameter {part!r} is not name=number") from None
        if not sep:
            raise ValueError(f"{where}: internal parameter {part!r} is not name=number")
    return out


def _check(entry: SolidEntry) -> SolidEntry:
    where = f"reference solid {entry.name!r} ({entry.table})"
    if entry.prototype not in PROTOTYPES:
        raise ValueError(f"{where}: unknown prototype {entry.prototype!r}; known: {', '.join(PROTOTYPES)}")
    number, sites, needed = PROTOTYPES[entry.prototype]
    if entry.space_group_number != number:
        raise ValueError(f"{where}: space group {entry.space_group_number} does not match prototype "
                         f"{entry.prototype} ({number})")
    if not entry.a_A > 0:
        raise ValueError(f"{where}: lattice parameter a_A = {entry.a_A} must be positive")
    if entry.prototype in _NEEDS_C and not (entry.c_A and entry.c_A > 0):
        raise ValueError(f"{where}: prototype {entry.prototype} needs a positive c_A")
    missing = [p for p in needed if p not in entry.internal_parameters]
    if missing:
        raise ValueError(f"{where}: prototype {entry.prototype} needs internal parameter(s) {missing}")
    species = _species(entry.chemical_formula)
    if entry.prototype not in _ELEMENT_BULK and len(species) != len(sites):
        raise ValueError(f"{where}: formula {entry.chemical_formula!r} has {len(species)} species, prototype "
                         f"{entry.prototype} has {len(sites)} sites")
    return entry


@functools.lru_cache(maxsize=1)
def _entries() -> tuple[SolidEntry, ...]:
    out = []
    for r in _rows("solids"):
        out.append(SolidEntry(
            name=r["name"], chemical_formula=r["chemical_formula"], prototype=r["prototype"],
            space_group_symbol=r["space_group_symbol"], space_group_number=int(r["space_group_index"]),
            atoms_per_primitive_cell=int(r["atoms_per_primitive_count"]), a_A=float(r["a_A"]),
            c_A=_float(r["c_A"]), temperature_K=float(r["temperature_K"]), source=r["source"], table="solids.csv",
            internal_parameters=_internal(r["internal_parameters"], f"reference solid {r['name']!r} (solids.csv)")))
    for r in _rows("elements_fcc"):
        if r.get("structure") == "fcc" and r.get("a_A"):
            out.append(SolidEntry(
                name=f"{r['element']}-fcc", chemical_formula=r["element"], prototype="fcc", space_group_symbol="Fm-3m",
                space_group_number=225, atoms_per_primitive_cell=1, a_A=float(r["a_A"]), c_A=None,
                temperature_K=float(r["a_T_K"]), source=r["a_source"], table="elements_fcc.csv"))
    names = [e.name for e in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"reference solids: name(s) {dup} appear twice")
    return tuple(_check(e) for e in out)


def solid_entries() -> dict[str, SolidEntry]:
    """Every reference solid by name, in table order."""
    return {e.name: e for e in _entries()}


def solid_names() -> list[str]:
    """Names of the reference solids, in table order."""
    return [e.name for e in _entries()]


def solid_aliases() -> dict[str, str]:
    """Bare formula -> name, for formulas that exactly one entry has (``"MgO"`` -> ``"MgO-rocksalt"``)."""
    by_formula: dict[str, list[str]] = {}
    for e in _entries():
        by_formula.setdefault(e.chemical_formula, []).append(e.name)
    return {f: names[0] for f, names in by_formula.items() if len(names) == 1}


def resolve_solid_name(name: str) -> str | None:
    """The entry name that ``name`` means (itself, a unique bare formula, or a case variant), or None."""
    entries = solid_entries()
    if name in entries:
        return name
    alias = solid_aliases().get(name)
    if alias:
        return alias
    folded = {n.casefold(): n for n in entries}
    return folded.get(name.casefold())


def close_matches(name: str, candidates: list[str] | None = None, n: int = 5) -> list[str]:
    """Up to ``n`` names close to ``name`` (difflib, case-insensitive) among ``candidates``
    (default: the reference solids and their formula aliases)."""
    pool = candidates if candidates is not None else solid_names() + list(solid_aliases())
    by_fold = {c.casefold(): c for c in pool}
    hits = difflib.get_close_matches(name.casefold(), list(by_fold), n=n, cutoff=0.6)
    prefix = [c for c in pool if c.casefold().startswith(name.casefold()) and c.casefold() not in hits]
    return list(dict.fromkeys([by_fold[h] for h in hits] + prefix))[:n]


def solid_entry(name: str) -> SolidEntry:
    """The :class:`SolidEntry` a name means; ``ValueError`` listing close matches otherwise."""
    resolved = resolve_solid_name(name)
    if resolved is None:
        near = close_matches(name)
        raise ValueError(f"unknown reference solid {name!r}" + (f"; close matches: {', '.join(near)}" if near else "")
                         + f" (all {len(solid_names())}: mlip_props.structures.solid_names())")
    return solid_entries()[resolved]


def _species(formula: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r"[A-Z][a-z]?", formula)))


def build_solid(entry: SolidEntry) -> Atoms:
    """Primitive cell of ``entry`` at its experimental lattice parameters (Angstrom)."""
    from ase.build import bulk
    from ase.spacegroup import crystal

    p = entry.prototype
    if p in _ELEMENT_BULK:
        kw: dict[str, float] = {"a": entry.a_A}
        if p in ("hcp", "bct"):
            kw["c"] = float(entry.c_A)  # type: ignore[arg-type]
        return bulk(entry.chemical_formula, p, **kw)
    number, sites, _ = PROTOTYPES[p]
    basis = [tuple(entry.internal_parameters[v] if isinstance(v, str) else float(v) for v in site) for site in sites]
    c = entry.c_A if entry.c_A else entry.a_A
    gamma = 120.0 if p in _HEXAGONAL else 90.0
    atoms = crystal(_species(entry.chemical_formula), basis=basis, spacegroup=number, setting=_SETTING.get(p, 1),
                    cellpar=[entry.a_A, entry.a_A, c, 90.0, 90.0, gamma], primitive_cell=True)
    atoms.wrap()
    return atoms


def get(name: str) -> Atoms:
    """Build a reference solid by name (``"GaN-wurtzite"``, ``"MgO"``, ``"Cu-fcc"``): its primitive
    cell at the experimental lattice parameters of the table. ``ValueError`` with close matches
    for an unknown name."""
    return build_solid(solid_entry(name))
