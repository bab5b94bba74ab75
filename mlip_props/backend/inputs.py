"""One answer to "one structure or many": every property and the backend use :func:`structure_list`."""
from __future__ import annotations

from typing import Any

from ase import Atoms


def is_single_structure(structures: Any) -> bool:
    """True for one structure: an ASE ``Atoms`` or a pymatgen ``Structure``/``Molecule`` (anything
    with sites and coordinates, as opposed to a list of such objects)."""
    if isinstance(structures, Atoms):
        return True
    # pymatgen: Structure has a lattice, Molecule has none; both have cart_coords and sites
    return hasattr(structures, "cart_coords") and hasattr(structures, "sites")


def structure_list(structures: Any) -> tuple[bool, list[Any]]:
    """``(single, items)``: whether one structure was given, and the structures as a list.

    One ASE ``Atoms`` or pymatgen ``Structure``/``Molecule`` gives ``(True, [it])``; a list,
    tuple or other iterable of them ``(False, list(...))``. A string is refused (names and files
    go through :mod:`mlip_props.structures`); so is an empty collection.
    """
    if isinstance(structures, (str, bytes)):
        raise TypeError("structures must be Atoms/Structure/Molecule objects, not a string; "
                        "see mlip_props.structures for names and files")
    if is_single_structure(structures):
        return True, [structures]
    try:
        items = list(structures)
    except TypeError:
        raise TypeError(f"expected a structure (ASE Atoms, pymatgen Structure or Molecule) or a list of them, "
                        f"got {type(structures).__name__}") from None
    if not items:
        raise ValueError("no structures given (empty list)")
    return False, items
