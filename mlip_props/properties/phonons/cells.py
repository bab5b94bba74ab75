"""Structures between ASE and phonopy, and the choice of the phonon supercell."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from ase import Atoms


def to_phonopy_atoms(atoms: Atoms):
    """ASE ``Atoms`` -> phonopy ``PhonopyAtoms`` (same order, ASE masses in amu)."""
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=np.asarray(atoms.get_cell()),
        scaled_positions=atoms.get_scaled_positions(wrap=False),
        masses=atoms.get_masses(),
    )


def to_ase_atoms(ph_atoms) -> Atoms:
    """phonopy ``PhonopyAtoms`` -> periodic ASE ``Atoms`` (same order and masses)."""
    return Atoms(
        symbols=list(ph_atoms.symbols),
        cell=np.asarray(ph_atoms.cell),
        scaled_positions=np.asarray(ph_atoms.scaled_positions),
        masses=np.asarray(ph_atoms.masses),
        pbc=True,
    )


def reduced_formula(atoms: Atoms) -> str:
    """pymatgen reduced formula (e.g. ``"Cu"``, ``"NaCl"``) of an ASE structure."""
    from pymatgen.core import Composition

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Composition(atoms.get_chemical_formula()).reduced_formula


def perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """Distances (A) between opposite faces of a cell (rows = lattice vectors): V / |a_j x a_k|."""
    cell = np.asarray(cell, dtype=float)
    vol = abs(np.linalg.det(cell))
    return np.array([vol / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)])


def symmetry_dataset(atoms: Atoms, symprec: float = 1e-5):
    """spglib symmetry dataset of an ASE structure (``None`` when spglib finds none)."""
    import spglib

    try:
        return spglib.get_symmetry_dataset(
            (np.asarray(atoms.get_cell(), dtype=float), atoms.get_scaled_positions(), atoms.numbers), symprec=symprec)
    except Exception:  # noqa: BLE001 - symmetry only picks cells; no symmetry is a valid answer
        return None


def primitive_matrix_from_dataset(dataset) -> np.ndarray:
    """phonopy ``primitive_matrix`` (columns: primitive vectors in the input cell's reduced
    coordinates) from a spglib dataset: inv(transformation_matrix) @ centring matrix, as
    phonopy's ``guess_primitive_matrix`` computes it, without a second symmetry search."""
    from phonopy.structure.cells import get_primitive_matrix_by_centring

    if dataset is None:
        return np.eye(3)
    centring = get_primitive_matrix_by_centring(str(dataset.international)[0])
    return np.array(np.linalg.inv(np.asarray(dataset.transformation_matrix, dtype=float)) @ centring, order="C")


_SUPERCELL_NOTE = "phonopy's symmetry search of a supercell grows as the square of its atom count"


def check_supercell_size(atoms: Atoms, supercell_matrix: Any, index: int | None = None,
                         max_atoms: float | None = None, how: str = "") -> int:
    """Atoms of the phonon supercell ``supercell_matrix`` (phonopy's, 3x3 integers) of ``atoms``;
    :class:`~mlip_props.backend.guards.SizeLimitError` above ``max_atoms`` (default
    ``$MLIP_PROPS_MAX_SUPERCELL_ATOMS``, 5,000: phonopy's symmetry search of the supercell grows
    as the square of its atom count, minutes at 5,000 on one CPU core). ``index`` names the
    structure (else its formula); ``how``: how the supercell was chosen, for the message."""
    from ...backend.guards import check_atom_count

    smat = np.asarray(supercell_matrix)
    cells = int(round(abs(np.linalg.det(smat))))
    n = len(atoms) * cells
    name = f"structure {index}" if index is not None else f"the {atoms.get_chemical_formula()} structure"
    diagonal = np.count_nonzero(smat - np.diag(np.diag(smat))) == 0
    shape = "x".join(str(int(v)) for v in np.diag(smat)) if diagonal else str(smat.tolist())
    plural = "s" if len(atoms) != 1 else ""
    check_atom_count(n, f"{name} ({len(atoms)} atom{plural}): the phonon supercell {shape}{how} ({cells:,} cells)",
                     env="MLIP_PROPS_MAX_SUPERCELL_ATOMS", maximum=max_atoms, note=_SUPERCELL_NOTE,
                     advice="give a smaller supercell or min_length_A")
    return n


def choose_supercell(atoms: Atoms, min_length_A: float = 10.0, primitive_matrix: np.ndarray | None = None,
                     symprec: float = 1e-5, dataset: Any = None, index: int | None = None) -> np.ndarray:
    """Smallest supercell (phonopy ``supercell_matrix``, integer 3x3, column convention) whose
    three perpendicular widths are all >= ``min_length_A``.

    Candidates: diagonal multiples of the given cell, of its primitive cell (``primitive_matrix``
    in phonopy's convention) and of spglib's conventional cell, kept when integer in the given
    cell's basis; the one with fewest atoms wins (ties: the diagonal one). ``dataset``: the
    structure's spglib dataset when already at hand (else searched with ``symprec``).
    A supercell above the size limit is refused (:func:`check_supercell_size`, naming
    ``structure {index}`` when given).
    """
    lat = np.asarray(atoms.get_cell(), dtype=float)
    bases = [np.eye(3)]
    if primitive_matrix is not None:
        bases.append(np.asarray(primitive_matrix, dtype=float).T)
    ds = dataset if dataset is not None else symmetry_dataset(atoms, symprec)
    if ds is not None:
        bases.append(np.linalg.inv(np.asarray(ds.transformation_matrix, dtype=float)).T)
    best = None
    for base in bases:
        widths = perpendicular_widths(base @ lat)
        n = np.maximum(1, np.ceil(min_length_A / widths - 1e-8)).astype(int)
        s_row = np.diag(n) @ base
        if not np.allclose(s_row, np.round(s_row), atol=1e-6):
            continue
        s_row = np.round(s_row).astype(int)
        det = int(round(abs(np.linalg.det(s_row))))
        if det == 0:
            continue
        if best is None or det < best[0]:
            best = (det, s_row)
    check_supercell_size(atoms, best[1].T, index, how=f" for min_length_A={min_length_A:g}")
    return best[1].T.copy()


def parse_supercell(supercell: Any) -> np.ndarray | None:
    """A user's ``supercell`` (None, an int, 3 ints or a 3x3 integer matrix) as phonopy's
    ``supercell_matrix`` (None: choose automatically)."""
    if supercell is None:
        return None
    arr = np.asarray(supercell)
    if arr.ndim == 0:
        out = np.eye(3, dtype=int) * int(arr)
    elif arr.shape == (3,):
        out = np.diag(arr.astype(int))
    elif arr.shape == (3, 3):
        out = arr.astype(int)
    else:
        raise ValueError(f"supercell must be an int, 3 ints or a 3x3 integer matrix, got shape {arr.shape}")
    # size guard: every cell holds at least one atom, so the supercell has >= det atoms
    # (check_supercell_size with the structure gives the exact count)
    from ...backend.guards import check_atom_count

    cells = int(round(abs(np.linalg.det(out))))
    check_atom_count(cells, f"supercell {supercell!r} ({cells:,} cells of at least one atom each)",
                     env="MLIP_PROPS_MAX_SUPERCELL_ATOMS", note=_SUPERCELL_NOTE, at_least=True,
                     advice="give a smaller supercell")
    return out


def same_cell(a, b, tol: float = 1e-8) -> bool:
    """Same lattice, species and (modulo lattice vectors) positions, in the same order (phonopy
    ``PhonopyAtoms``)."""
    if len(a) != len(b) or list(a.numbers) != list(b.numbers) or not np.allclose(a.cell, b.cell, atol=tol):
        return False
    d = np.asarray(a.scaled_positions) - np.asarray(b.scaled_positions)
    return bool(np.allclose(d - np.rint(d), 0.0, atol=tol))
