"""One place that turns names and files into ASE ``Atoms``: :func:`load_structure`.

Specs understood (in this order):

* an ``ase.Atoms`` or pymatgen ``Structure``/``Molecule`` object (converted, copied);
* a path to a file: CIF files are read by pymatgen (``CifParser``: symmetry, occupancies checked),
  everything else by ``ase.io.read`` (extxyz, POSCAR, ASE trajectories, ...); multi-frame files
  give their last frame, or all frames through :func:`load_structures`;
* a crystal name ``"Cu"`` (the element's reference crystal structure and experimental lattice
  constant from ``ase.data.reference_states``, i.e. ASE's ``bulk()`` defaults), ``"Cu:hcp"``,
  ``"Cu:bcc:a=2.9"``, ``"Si:diamond:cubic=true"``, ``"Cu:fcc:repeat=2x2x2"``;
* a molecule name from ASE's G2 collection (``"N2"``, ``"H2O"``, ``"CO2"``, ``"CH4"``), or a
  homonuclear dimer ``"X2"`` of any element (bond length: twice the covalent radius, Cordero et
  al., Dalton Trans. 2008, 2832), non-periodic.
* a reference solid of :mod:`mlip_props.structure_library` (``"GaN-wurtzite"``, ``"TiO2-rutile"``,
  ``"Fe-bcc"``, ``"Cu-fcc"``, or a formula that names one entry, ``"MgO"``), built from the shipped
  table ``solids.csv`` at its experimental lattice parameters; takes only ``repeat=NxMxK``.
  Element names and G2 molecule names keep their meaning above: ``"Fe"`` is ASE's bcc Fe,
  ``"NaCl"`` the molecule, ``"NaCl-rocksalt"`` the crystal. :func:`get` builds a reference solid
  by name directly (``get("NaCl")`` is the crystal).
* a high-pressure polymorph of :mod:`mlip_props.polymorph_library` (``"Si-betaSn"``, ``"NaCl-B2"``,
  ``"GaN-rocksalt"``, ``"Fe-hcp"``) at its starting lattice parameters (a guess, relaxed by the
  properties that use it; not a reference solid); takes only ``repeat=NxMxK``.

When the crystal structure asked for differs from the element's reference structure and no
lattice constant is given, the lattice constant is chosen so that the volume per atom equals
the reference structure's (ideal c/a = sqrt(8/3) for hcp). Lengths are in Angstrom.

Errors: ``FileNotFoundError`` for a missing file; ``ValueError`` for an empty or unreadable
file, an unknown element or name, or a bad parameter — the message names the spec.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols, covalent_radii, reference_states

from .polymorph_library import get_polymorph, polymorph_names, resolve_polymorph_name
from .structure_library import (SolidEntry, close_matches, get, resolve_solid_name, solid_aliases, solid_entry,
                                solid_names)

__all__ = ["load_structure", "load_structures", "parse_name", "CRYSTAL_STRUCTURES", "get", "solid_names",
           "solid_aliases", "solid_entry", "SolidEntry"]

#: crystal structures ``ase.build.bulk`` builds from a name, with atoms per conventional cubic cell
#: (used to turn a volume per atom into a lattice constant)
CRYSTAL_STRUCTURES = ("fcc", "bcc", "hcp", "sc", "diamond")
_SIMPLE_ELEMENT_STRUCTURES = {"fcc": 4, "bcc": 2, "sc": 1, "diamond": 8}


def _parse_value(v: str) -> Any:
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def parse_name(spec: str) -> tuple[str, str | None, dict[str, Any]]:
    """Split ``"Cu:bcc:a=2.9,cubic=true"`` into ``("Cu", "bcc", {"a": 2.9, "cubic": True})``.

    Parameters may be separated by ``:`` or ``,``.
    """
    parts = [p.strip() for p in re.split(r"[:,]", spec.strip()) if p.strip()]
    if not parts:
        raise ValueError(f"empty structure name {spec!r}")
    name, crystal, params = parts[0], None, {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip()] = _parse_value(v.strip())
        elif crystal is None:
            crystal = p.lower()
        else:
            raise ValueError(f"structure {spec!r}: unexpected part {p!r} (expected key=value)")
    return name, crystal, params


def _reference_volume_per_atom(symbol: str) -> float | None:
    """Volume per atom (A^3) of the element's reference crystal in ``ase.data.reference_states``."""
    ref = reference_states[atomic_numbers[symbol]]
    if not ref:
        return None
    s = ref.get("symmetry")
    a = ref.get("a")
    if s in _SIMPLE_ELEMENT_STRUCTURES and a:
        return a**3 / _SIMPLE_ELEMENT_STRUCTURES[s]
    if s == "hcp" and a:
        c = ref.get("c/a", math.sqrt(8 / 3)) * a
        return math.sqrt(3) / 2 * a * a * c / 2
    return None


def _lattice_from_volume(crystal: str, v: float) -> dict[str, float]:
    if crystal in _SIMPLE_ELEMENT_STRUCTURES:
        return {"a": (v * _SIMPLE_ELEMENT_STRUCTURES[crystal]) ** (1 / 3)}
    if crystal == "hcp":
        return {"a": (math.sqrt(2) * v) ** (1 / 3)}  # ideal c/a: V = a^3 / sqrt(2)
    raise ValueError(crystal)


def _repeat(value: Any, spec: str = "") -> tuple[int, int, int]:
    where = f"structure {spec!r}: " if spec else ""
    if isinstance(value, int) and not isinstance(value, bool):
        rep = (value, value, value)
    else:
        parts = str(value).lower().split("x")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"{where}repeat={value!r}: expected an integer or NxMxK")
        rep = tuple(int(p) for p in parts)  # type: ignore[assignment]
    if min(rep) < 1:
        raise ValueError(f"{where}repeat={value!r}: every repeat must be an integer >= 1")
    return rep  # type: ignore[return-value]


def _repeated(spec: str, atoms: Atoms, rep: tuple[int, int, int] | None) -> Atoms:
    """``atoms.repeat(rep)`` after the size guard (``$MLIP_PROPS_MAX_ATOMS``, 1,000,000 atoms)."""
    if rep is None:
        return atoms
    from .backend.guards import check_atom_count

    check_atom_count(len(atoms) * rep[0] * rep[1] * rep[2],
                     f"structure {spec!r} ({len(atoms)} atom{'s' if len(atoms) != 1 else ''} repeated "
                     f"{rep[0]}x{rep[1]}x{rep[2]})", advice="use a smaller repeat")
    return atoms.repeat(rep)


#: lattice parameters of a crystal name and their allowed ranges (Angstrom, degrees; ``u`` is a
#: fractional internal coordinate)
_LATTICE_PARAMETER_RANGES: dict[str, dict[str, Any]] = {
    "a": dict(minimum=0.0, exclusive_minimum=True),
    "b": dict(minimum=0.0, exclusive_minimum=True),
    "c": dict(minimum=0.0, exclusive_minimum=True),
    "covera": dict(minimum=0.0, exclusive_minimum=True),
    "alpha": dict(minimum=0.0, maximum=180.0, exclusive_minimum=True, exclusive_maximum=True),
    "u": dict(minimum=0.0, maximum=1.0, exclusive_maximum=True),
}


def _check_lattice_parameters(spec: str, params: dict[str, Any]) -> None:
    """``ValueError`` naming the spec for a lattice parameter that is not a finite number in its
    range (a negative ``a`` would build a left-handed cell), or a flag that is not true/false."""
    from .validation import check_number

    for name, value in params.items():
        if name in _LATTICE_PARAMETER_RANGES:
            try:
                check_number(name, value, **_LATTICE_PARAMETER_RANGES[name])
            except ValueError as exc:
                raise ValueError(f"structure {spec!r}: {exc}") from None
        elif name in ("cubic", "orthorhombic") and value not in (True, False):  # 0 and 1 pass too
            raise ValueError(f"structure {spec!r}: parameter {name!r}: expected true or false, got {value!r}")


def _is_element(name: str) -> bool:
    return name in atomic_numbers and name != "X"


def _build_crystal(spec: str, symbol: str, crystal: str | None, params: dict[str, Any]) -> Atoms:
    from ase.build import bulk

    params = dict(params)
    rep = _repeat(params.pop("repeat"), spec) if "repeat" in params else None
    allowed = {"a", "b", "c", "covera", "cubic", "orthorhombic", "alpha", "u"}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"structure {spec!r}: unknown parameter(s) {sorted(unknown)}; allowed: {sorted(allowed | {'repeat'})}")
    _check_lattice_parameters(spec, params)
    ref = reference_states[atomic_numbers[symbol]] or {}
    ref_sym = ref.get("symmetry")
    if crystal is None:
        if ref_sym not in (*CRYSTAL_STRUCTURES, "rocksalt", "zincblende", "wurtzite", "bct", "rhombohedral", "orthorhombic", "cubic"):
            raise ValueError(
                f"structure {spec!r}: {symbol}'s reference state is {ref_sym or 'unknown'!r}, not a crystal; "
                f"give one of {', '.join(CRYSTAL_STRUCTURES)} (e.g. '{symbol}:fcc:a=4.0') or a molecule name"
            )
    elif crystal not in CRYSTAL_STRUCTURES:
        raise ValueError(f"structure {spec!r}: unknown crystal structure {crystal!r}; choose from {', '.join(CRYSTAL_STRUCTURES)}")
    if crystal is not None and crystal != ref_sym and "a" not in params:
        v = _reference_volume_per_atom(symbol)
        if v is None:
            raise ValueError(f"structure {spec!r}: no reference volume for {symbol}; give the lattice constant, e.g. '{symbol}:{crystal}:a=...'")
        params.update(_lattice_from_volume(crystal, v))
    try:
        atoms = bulk(symbol, crystal, **params)
    except Exception as exc:  # ase raises ValueError/KeyError/RuntimeError with its own words
        raise ValueError(f"structure {spec!r}: ase.build.bulk failed: {exc}") from exc
    return _repeated(spec, atoms, rep)


def _build_molecule(spec: str, name: str, params: dict[str, Any]) -> Atoms | None:
    from ase.build import molecule
    from ase.collections import g2

    if params:
        vac = params.pop("vacuum", None)
        if params:
            raise ValueError(f"structure {spec!r}: molecules take only 'vacuum', got {sorted(params)}")
    else:
        vac = None
    atoms = None
    if name in g2.names:
        atoms = molecule(name)
    else:
        m = re.fullmatch(r"([A-Z][a-z]?)2", name)
        if m and _is_element(m.group(1)):
            z = atomic_numbers[m.group(1)]
            d = 2 * covalent_radii[z]
            atoms = Atoms(m.group(1) * 2, positions=[[0, 0, 0], [0, 0, d]])
    if atoms is None:
        return None
    if vac is not None:
        from .validation import check_number

        try:
            check_number("vacuum", vac, minimum=0.0)
        except ValueError as exc:
            raise ValueError(f"structure {spec!r}: {exc}") from None
        atoms.center(vacuum=float(vac))
    return atoms


def _from_name(spec: str) -> Atoms:
    name, crystal, params = parse_name(spec)
    if _is_element(name):
        ref = reference_states[atomic_numbers[name]] or {}
        gas = ref.get("symmetry") in ("diatom", "atom", None)
        if crystal is not None or not gas:
            return _build_crystal(spec, name, crystal, params)
    from ase.collections import g2

    solid = None if _is_element(name) or name in g2.names else resolve_solid_name(name)
    if solid is not None:
        return _build_reference_solid(spec, solid, crystal, params)
    poly = None if _is_element(name) or name in g2.names else resolve_polymorph_name(name)
    if poly is not None:  # a high-pressure polymorph (mlip_props.polymorph_library): starting guesses
        return _build_reference_solid(spec, poly, crystal, params, build=get_polymorph)
    if crystal is None:
        atoms = _build_molecule(spec, name, params)
        if atoms is not None:
            return atoms
    if _is_element(name):  # a gas with no molecule of that name: ask for a crystal
        return _build_crystal(spec, name, crystal, params)
    hint = ""
    cap = name[:1].upper() + name[1:].lower()
    if _is_element(cap):
        hint = f" (did you mean the element {cap!r}?)"
    near = close_matches(name, solid_names() + list(solid_aliases()) + polymorph_names() + list(g2.names))
    raise ValueError(
        f"unknown structure {spec!r}: not a file, not an element symbol{hint}, not a reference solid "
        f"(e.g. GaN-wurtzite, MgO), not an ASE G2 molecule name (e.g. N2, H2O, CH4) nor a dimer X2"
        + (f"; close matches: {', '.join(near)}" if near else "")
    )


def _build_reference_solid(spec: str, name: str, crystal: str | None, params: dict[str, Any],
                           build: Any = get) -> Atoms:
    if crystal is not None:
        raise ValueError(f"structure {spec!r}: {name!r} is a reference solid with its own prototype; "
                         f"unexpected part {crystal!r}")
    params = dict(params)
    rep = _repeat(params.pop("repeat"), spec) if "repeat" in params else None
    if params:
        raise ValueError(f"structure {spec!r}: reference solids take only 'repeat', got {sorted(params)}; "
                         f"for other lattice parameters build it with ase or give a file")
    return _repeated(spec, build(name), rep)


def _read_file(path: Path, index: Any) -> list[Atoms]:
    if not path.is_file():
        raise FileNotFoundError(f"structure file {str(path)!r} does not exist")
    if path.stat().st_size == 0 or not path.read_bytes().strip():
        raise ValueError(f"structure file {str(path)!r} is empty")
    if path.suffix.lower() == ".cif":
        import warnings

        from pymatgen.io.ase import AseAtomsAdaptor
        from pymatgen.io.cif import CifParser

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structs = CifParser(str(path)).parse_structures(primitive=False)
        except Exception as exc:
            raise ValueError(f"structure file {str(path)!r}: pymatgen could not parse the CIF: {exc}") from exc
        if not structs:
            raise ValueError(f"structure file {str(path)!r}: no structure in the CIF")
        frames = [AseAtomsAdaptor.get_atoms(s) for s in structs]
        return frames if index == ":" else [frames[-1 if index is None else index]]
    import ase.io

    try:
        out = ase.io.read(str(path), index=":" if index is None else index)
    except Exception as exc:
        raise ValueError(f"structure file {str(path)!r}: ASE could not read it: {type(exc).__name__}: {exc}") from exc
    frames = out if isinstance(out, list) else [out]
    if not frames:
        raise ValueError(f"structure file {str(path)!r}: no structure in the file")
    if index is None:
        frames = frames[-1:]
    return frames


def _looks_like_path(spec: str) -> bool:
    if os.sep in spec or "/" in spec or Path(spec).exists():
        return True
    if ":" in spec or "=" in spec:
        return False
    return bool(re.search(r"\.[A-Za-z][A-Za-z0-9_]{0,7}$", spec)) or spec.upper().startswith(("POSCAR", "CONTCAR"))


def load_structures(spec: Any) -> list[Atoms]:
    """All structures a spec names: every frame of a file, or a one-element list; see :func:`load_structure`."""
    if isinstance(spec, (list, tuple)):
        return [a for s in spec for a in load_structures(s)]
    if isinstance(spec, (str, os.PathLike)) and _looks_like_path(str(spec)):
        return [a.copy() for a in _read_file(Path(spec), ":")]
    return [load_structure(spec)]


def load_structure(spec: Any, index: int | None = None) -> Atoms:
    """Turn a name, a file path or a structure object into one ``ase.Atoms``.

    ``index``: frame of a multi-frame file (default: the last). See the module docstring for
    names; raises ``FileNotFoundError`` / ``ValueError`` with the spec in the message.
    """
    from .backend.batch import to_atoms

    if isinstance(spec, Atoms) or hasattr(spec, "lattice") or hasattr(spec, "cart_coords"):
        return to_atoms(spec).copy()
    if isinstance(spec, os.PathLike):
        return _read_file(Path(spec), index)[0].copy()
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"structure spec must be a non-empty string, path or Atoms, got {spec!r}")
    spec = spec.strip()
    if Path(spec).is_file() or _looks_like_path(spec):
        return _read_file(Path(spec), index)[0].copy()
    atoms = _from_name(spec)
    if not np.all(np.isfinite(atoms.get_positions())):  # pragma: no cover - defensive
        raise ValueError(f"structure {spec!r}: non-finite positions")
    return atoms


def element_symbols() -> list[str]:
    """All element symbols ASE knows (H ... Og)."""
    return chemical_symbols[1:]
