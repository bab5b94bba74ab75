"""Structure sources of a campaign -> labelled structures (or recorded load errors).

Every structure gets a label (``"Cu"``, ``"data/x.xyz@3"``, ``"Cu3Au:L1_2"``, ``"db.db@17"``) and a
content fingerprint (atomic numbers, positions, cell and pbc rounded to 1e-8 A). A ``library``
source (``library: all``, ``library: [cubic, wurtzite]``, optional ``exclude: [names]``) gives the
reference solids of :mod:`mlip_props.structure_library`, labelled by their library names
(``"Si-diamond"``, ``"Cu-fcc"``), in table order (:func:`library_names`). A structure
that cannot be read (empty file, unknown element symbol in a file) is kept as an item with its
error, so that the run records it as failed instead of stopping.
"""
from __future__ import annotations

import glob as _glob
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
import numpy as np
from ase import Atoms

from ..structures import _reference_volume_per_atom, load_structure, load_structures
from .schema import BINARY_PROTOTYPES, Campaign, StructureSource

__all__ = ["StructureItem", "expand_sources", "fingerprint", "binary_prototype", "library_names", "library_problems",
           "crystal_system", "CRYSTAL_SYSTEMS"]

#: the seven crystal systems with the last space-group number of each (International Tables)
CRYSTAL_SYSTEMS: tuple[tuple[str, int], ...] = (
    ("triclinic", 2), ("monoclinic", 15), ("orthorhombic", 74), ("tetragonal", 142), ("trigonal", 167),
    ("hexagonal", 194), ("cubic", 230))


def crystal_system(space_group_number: int) -> str:
    """Crystal system of a space group (1-230); ``ValueError`` outside that range."""
    n = int(space_group_number)
    if not 1 <= n <= 230:
        raise ValueError(f"space-group number {space_group_number!r} is not in 1..230")
    return next(name for name, last in CRYSTAL_SYSTEMS if n <= last)


def _library_selectors(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value) if isinstance(value, list) else []


def library_problems(value, exclude=None) -> list[str]:
    """Why a ``library`` source's value (``all``, or a list of crystal systems and prototypes)
    or its ``exclude`` list (library names) is not valid; empty when it is."""
    from ..structure_library import PROTOTYPES, resolve_solid_name

    known = {"all"} | {c for c, _ in CRYSTAL_SYSTEMS} | set(PROTOTYPES)
    sel = _library_selectors(value)
    out = []
    if not sel or not all(isinstance(v, str) for v in sel):
        return [f"'library' must be 'all' or a non-empty list of crystal systems or prototypes, got {value!r}"]
    for v in sel:
        if v not in known:
            out.append(f"library selector {v!r} is not 'all', a crystal system or a prototype "
                       f"(known: {', '.join(sorted(known))})")
    if exclude is not None:
        if not isinstance(exclude, list):
            out.append(f"'exclude' must be a list of reference-solid names, got {exclude!r}")
        else:
            out += [f"exclude: unknown reference solid {n!r}" for n in exclude
                    if not isinstance(n, str) or resolve_solid_name(n) is None]
    if not out and not library_names(value, exclude):
        out.append(f"library {value!r} (exclude {exclude!r}) selects no reference solid")
    return out


def library_names(value="all", exclude=None) -> list[str]:
    """Names of the reference solids a ``library`` source selects: ``"all"``, or those whose crystal
    system (from the space group of the table) or prototype is listed; minus ``exclude``
    (library names or their formula aliases). Table order."""
    from ..structure_library import resolve_solid_name, solid_entries

    sel = set(_library_selectors(value))
    drop = {resolve_solid_name(n) for n in (exclude or []) if isinstance(n, str)}
    return [name for name, e in solid_entries().items()
            if name not in drop and ("all" in sel or e.prototype in sel or crystal_system(e.space_group_number) in sel)]


@dataclass
class StructureItem:
    label: str
    atoms: Atoms | None
    error: str | None
    source: str
    fingerprint: str


def fingerprint(atoms: Atoms | None, label: str = "", error: str | None = None) -> str:
    """SHA-256 (hex, 16 chars) of the structure's content; of label + error when it failed to load."""
    h = hashlib.sha256()
    if atoms is None:
        h.update(json.dumps([label, error]).encode())
    else:
        h.update(np.asarray(atoms.get_atomic_numbers(), dtype=np.int64).tobytes())
        h.update(np.round(np.asarray(atoms.get_positions(), dtype=np.float64), 8).tobytes())
        h.update(np.round(np.asarray(atoms.get_cell(), dtype=np.float64), 8).tobytes())
        h.update(np.asarray(atoms.get_pbc(), dtype=np.int8).tobytes())
    return h.hexdigest()[:16]


def _item(label: str, atoms: Atoms | None, error: str | None, source: str) -> StructureItem:
    return StructureItem(label, atoms, error, source, fingerprint(atoms, label, error))


def _fcc_equivalent_a(symbol: str) -> float:
    v = _reference_volume_per_atom(symbol)
    if v is None:
        raise ValueError(f"no reference volume for {symbol}; give 'a' for the prototype")
    return (4 * v) ** (1 / 3)


def binary_prototype(kind: str, a_sym: str, b_sym: str, a: float | None = None) -> Atoms:
    """Cubic binary prototypes: ``L1_2`` (A3B, Cu3Au type), ``L1_0`` (AB, CuAu type, c/a = 1 start)
    and ``B2`` (AB, CsCl type). Lattice constant ``a`` (A) defaults to Vegard's law over the
    elements' reference volumes per atom."""
    va = _reference_volume_per_atom(a_sym)
    vb = _reference_volume_per_atom(b_sym)
    if kind == "L1_2":
        frac = [(0, 0, 0), (0, .5, .5), (.5, 0, .5), (.5, .5, 0)]
        syms = [b_sym, a_sym, a_sym, a_sym]
        nper = 4
        x_b = 0.25
    elif kind == "L1_0":
        frac = [(0, 0, 0), (.5, .5, 0), (.5, 0, .5), (0, .5, .5)]
        syms = [a_sym, a_sym, b_sym, b_sym]
        nper = 4
        x_b = 0.5
    elif kind == "B2":
        frac = [(0, 0, 0), (.5, .5, .5)]
        syms = [a_sym, b_sym]
        nper = 2
        x_b = 0.5
    else:
        raise ValueError(f"unknown binary prototype {kind!r}; choose from {', '.join(BINARY_PROTOTYPES)}")
    if a is None:
        if va is None or vb is None:
            raise ValueError(f"{kind} {a_sym}-{b_sym}: no reference volume; give 'a'")
        v = (1 - x_b) * va + x_b * vb
        a = (nper * v) ** (1 / 3)
    return Atoms(syms, scaled_positions=frac, cell=[a, a, a], pbc=True)


def _formula(kind: str, a: str, b: str) -> str:
    return {"L1_2": f"{a}3{b}", "L1_0": f"{a}{b}", "B2": f"{a}{b}"}[kind]


def _expand_one(src: StructureSource, camp: Campaign) -> list[StructureItem]:
    kind, val, opt = src.kind, src.value, src.options
    out: list[StructureItem] = []
    if kind in ("name", "names"):
        for n in ([val] if kind == "name" else val):
            label = opt.get("label", n) if kind == "name" else n
            try:
                out.append(_item(label, load_structure(n), None, f"name:{n}"))
            except (ValueError, FileNotFoundError) as exc:
                out.append(_item(label, None, f"{type(exc).__name__}: {exc}", f"name:{n}"))
    elif kind in ("file", "glob"):
        if kind == "file":
            paths = [camp.resolve(val)]
        else:
            pattern = str(camp.resolve(val))
            paths = [Path(p) for p in sorted(_glob.glob(pattern))]
        for p in paths:
            rel = _rel(p, camp.base_dir)
            try:
                frames = load_structures(p) if opt.get("frames", "all") == "all" else [load_structure(p)]
            except (ValueError, FileNotFoundError) as exc:
                out.append(_item(opt.get("label", rel), None, f"{type(exc).__name__}: {exc}", f"file:{rel}"))
                continue
            for i, a in enumerate(frames):
                label = opt.get("label", rel) if len(frames) == 1 else f"{opt.get('label', rel)}@{i}"
                out.append(_item(label, a, None, f"file:{rel}"))
    elif kind == "prototype":
        a = opt.get("a")
        if val in BINARY_PROTOTYPES:
            for pa, pb in opt["pairs"]:
                label = f"{_formula(val, pa, pb)}:{val}"
                try:
                    out.append(_item(label, binary_prototype(val, pa, pb, a), None, f"prototype:{val}"))
                except ValueError as exc:
                    out.append(_item(label, None, f"ValueError: {exc}", f"prototype:{val}"))
        else:
            for el in opt["elements"]:
                spec = f"{el}2" if val == "dimer" else f"{el}:{val}" + (f":a={a}" if a else "")
                label = spec if val != "dimer" else f"{el}2"
                try:
                    out.append(_item(label, load_structure(spec), None, f"prototype:{val}"))
                except (ValueError, FileNotFoundError) as exc:
                    out.append(_item(label, None, f"{type(exc).__name__}: {exc}", f"prototype:{val}"))
    elif kind == "library":
        from ..structure_library import get as _get_solid

        for n in library_names(val, opt.get("exclude")):
            try:
                out.append(_item(n, _get_solid(n), None, f"library:{n}"))
            except ValueError as exc:
                out.append(_item(n, None, f"ValueError: {exc}", f"library:{n}"))
    elif kind == "db":
        import ase.db

        path = val if "://" in str(val) else str(camp.resolve(val))
        with ase.db.connect(path) as db:  # type: ignore[attr-defined]
            for row in db.select(opt.get("select")):
                out.append(_item(f"{Path(str(val)).name}@{row.id}", row.toatoms(), None, f"db:{val}"))
    return out


def _rel(p: Path, base: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(p)


def expand_sources(camp: Campaign) -> list[StructureItem]:
    """All structures of a campaign, in source order; identical (label, content) pairs once only;
    a repeated label with different content gets a ``#2``, ``#3`` suffix."""
    items: list[StructureItem] = []
    seen: dict[str, str] = {}
    for src in camp.sources:
        for it in _expand_one(src, camp):
            if seen.get(it.label) == it.fingerprint:
                continue
            base, k = it.label, 1
            while it.label in seen:
                k += 1
                it.label = f"{base}#{k}"
            seen[it.label] = it.fingerprint
            items.append(it)
    return items

