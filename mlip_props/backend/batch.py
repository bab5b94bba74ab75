"""Packing many structures into one set of tensors.

A :class:`Batch` holds ``B`` structures with ``N`` atoms in total:

==================  ===============  ==========================================
field               shape            meaning
==================  ===============  ==========================================
``positions``       (N, 3)           Cartesian positions, Angstrom
``numbers``         (N,)             atomic numbers
``structure_index`` (N,)             which structure each atom belongs to
``cells``           (B, 3, 3)        lattice vectors as rows, Angstrom
``pbc``             (B, 3)           periodic directions
``n_atoms``         (B,)             atoms per structure
``ptr``             (B + 1,)         offsets: atoms of structure b are ptr[b]:ptr[b+1]
==================  ===============  ==========================================

Positions and cells are float64 by default (property accuracy); pass
``dtype=torch.float32`` for speed when the property allows it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

#: Smallest cell volume (Angstrom^3 per periodic structure) that is not called singular.
MIN_CELL_VOLUME_A3 = 1e-6
#: Atoms closer than this (Angstrom) are coincident: no potential can give them a finite gradient.
COINCIDENT_ATOMS_A = 1e-4


def default_device() -> torch.device:
    """CUDA when available, else the CPU; ``MLIP_PROPS_DEVICE`` overrides both."""
    env = os.environ.get("MLIP_PROPS_DEVICE")
    if env:
        return torch.device(env)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    return default_device() if device is None else torch.device(device)


def to_atoms(structure: Any) -> Atoms:
    """Return an ASE ``Atoms`` for an ASE ``Atoms``, pymatgen ``Structure`` or ``Molecule``."""
    if isinstance(structure, Atoms):
        return structure
    try:
        from pymatgen.core import Molecule, Structure
    except ImportError:  # pragma: no cover - pymatgen is a dependency
        Molecule = Structure = ()  # type: ignore[assignment]
    if isinstance(structure, (Structure, Molecule)):
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_atoms(structure)
    raise TypeError(
        f"expected ase.Atoms or pymatgen Structure/Molecule, got {type(structure).__name__}"
    )


def validate_atoms(atoms: Atoms, index: int = 0) -> None:
    """Raise ``ValueError`` naming structure ``index`` and the problem if ``atoms`` cannot be evaluated.

    Checks: at least one atom, finite positions, known atomic numbers, a non-singular cell in
    every periodic direction, and no periodic direction so thin (height under ``COINCIDENT_ATOMS_A``)
    that every atom coincides with its own image. Two atoms at the same place are found by the
    neighbour lists (torch potentials) or the oracle's own check.
    """
    n = len(atoms)
    if n == 0:
        raise ValueError(f"structure {index}: has no atoms")
    pos = atoms.get_positions()
    if not np.all(np.isfinite(pos)):
        bad = np.where(~np.isfinite(pos).all(axis=1))[0]
        raise ValueError(f"structure {index}: non-finite (NaN/inf) positions for atoms {bad[:10].tolist()}")
    z = atoms.get_atomic_numbers()
    if np.any(z < 1) or np.any(z >= len(chemical_symbols)):
        raise ValueError(f"structure {index}: unknown atomic number(s) {sorted(set(z[(z < 1)].tolist()))}")
    pbc = atoms.get_pbc()
    cell = np.asarray(atoms.get_cell())
    if not np.all(np.isfinite(cell)):
        raise ValueError(f"structure {index}: non-finite cell")
    if pbc.any():
        vol = abs(np.linalg.det(cell)) if pbc.all() else None
        if vol is not None and vol < MIN_CELL_VOLUME_A3:
            raise ValueError(f"structure {index}: zero-volume or singular cell (volume {vol:.3g} A^3)")
        for d in np.where(pbc)[0]:
            if np.linalg.norm(cell[d]) < 1e-8:
                raise ValueError(f"structure {index}: periodic direction {d} has a zero-length cell vector")
        if vol is not None:
            heights = cell_heights(cell)
            if heights.min() < COINCIDENT_ATOMS_A:
                d = int(np.argmin(heights))
                raise ValueError(
                    f"structure {index}: the cell is {heights[d]:.2e} A thick along periodic direction {d}, so "
                    f"every atom coincides with its own periodic image (minimum {COINCIDENT_ATOMS_A} A)"
                )
        if not pbc.all():
            # Mixed boundary conditions: the periodic vectors must be independent.
            sub = cell[pbc]
            if np.linalg.matrix_rank(sub, tol=1e-8) < len(sub):
                raise ValueError(f"structure {index}: singular cell in its periodic directions")


def cell_heights(cells: np.ndarray) -> np.ndarray:
    """Distances (Angstrom) between opposite faces of cells (..., 3, 3): ``|det| / |a_j x a_k|``
    for each lattice vector ``a_i`` (an infinite height for a degenerate face)."""
    cells = np.asarray(cells, dtype=np.float64)
    vol = np.abs(np.linalg.det(cells))
    heights = []
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        area = np.linalg.norm(np.cross(cells[..., j, :], cells[..., k, :]), axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            heights.append(np.where(area > 0, vol / np.where(area > 0, area, 1.0), np.inf))
    return np.stack(heights, axis=-1)


@dataclass(frozen=True)
class PackedStructures:
    """Plain numpy arrays of many structures, concatenated (the step before tensors).

    ``positions`` (N, 3) Angstrom, ``numbers`` (N,), ``cells`` (B, 3, 3), ``pbc`` (B, 3),
    ``n_atoms`` (B,), ``ptr`` (B + 1,).
    """

    positions: np.ndarray
    numbers: np.ndarray
    cells: np.ndarray
    pbc: np.ndarray
    n_atoms: np.ndarray
    ptr: np.ndarray

    @property
    def n_structures(self) -> int:
        return int(len(self.n_atoms))

    def positions_of(self, b: int) -> np.ndarray:
        return self.positions[self.ptr[b] : self.ptr[b + 1]]

    def slice(self, start: int, stop: int) -> "PackedStructures":
        """Structures ``start:stop`` (a contiguous range; no copy of the atom arrays)."""
        a0, a1 = self.ptr[start], self.ptr[stop]
        return PackedStructures(self.positions[a0:a1], self.numbers[a0:a1], self.cells[start:stop],
                                self.pbc[start:stop], self.n_atoms[start:stop], self.ptr[start : stop + 1] - a0)


def pack_structures(atoms_list: Sequence[Atoms]) -> PackedStructures:
    """Concatenate the arrays of ASE ``Atoms`` (no validation; see :func:`validate_packed`)."""
    n_atoms = np.fromiter((len(a) for a in atoms_list), dtype=np.int64, count=len(atoms_list))
    ptr = np.zeros(len(atoms_list) + 1, dtype=np.int64)
    np.cumsum(n_atoms, out=ptr[1:])
    if len(atoms_list):
        pos = np.concatenate([a.arrays["positions"] for a in atoms_list]).astype(np.float64, copy=False)
        z = np.concatenate([a.arrays["numbers"] for a in atoms_list]).astype(np.int64, copy=False)
        cells = np.stack([a.cell.array for a in atoms_list]).astype(np.float64, copy=False)
        pbc = np.stack([a.pbc for a in atoms_list]).astype(bool, copy=False)
    else:
        pos, z = np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
        cells, pbc = np.zeros((0, 3, 3)), np.zeros((0, 3), dtype=bool)
    return PackedStructures(pos, z, cells, pbc, n_atoms, ptr)


def validate_packed(packed: PackedStructures, atoms_list: Sequence[Atoms]) -> None:
    """:func:`validate_atoms` for every structure at once (vectorised); on a problem the first bad
    structure is checked again one by one, so the message is exactly :func:`validate_atoms`'s."""
    nb = packed.n_structures
    if nb == 0:
        raise ValueError("no structures given (empty list)")
    bad = packed.n_atoms == 0
    sidx = np.repeat(np.arange(nb), packed.n_atoms)
    atom_bad = ~np.isfinite(packed.positions).all(axis=1)
    atom_bad |= (packed.numbers < 1) | (packed.numbers >= len(chemical_symbols))
    if atom_bad.any():
        bad[np.unique(sidx[atom_bad])] = True
    bad |= ~np.isfinite(packed.cells).all(axis=(1, 2))
    full = packed.pbc.all(axis=1)
    if full.any():
        with np.errstate(invalid="ignore"):
            vol = np.abs(np.linalg.det(np.where(np.isfinite(packed.cells), packed.cells, 0.0)))
        bad |= full & (vol < MIN_CELL_VOLUME_A3)
        bad |= full & (cell_heights(np.where(np.isfinite(packed.cells), packed.cells, 0.0)).min(axis=1)
                       < COINCIDENT_ATOMS_A)
    lengths = np.linalg.norm(np.nan_to_num(packed.cells), axis=2)
    bad |= (packed.pbc & (lengths < 1e-8)).any(axis=1)
    mixed = packed.pbc.any(axis=1) & ~full
    bad |= mixed  # rare: checked one by one below
    for k in np.nonzero(bad)[0]:
        validate_atoms(atoms_list[int(k)], int(k))


@dataclass(frozen=True)
class Batch:
    """Many structures packed into tensors (see the module docstring for the fields)."""

    positions: torch.Tensor
    numbers: torch.Tensor
    structure_index: torch.Tensor
    cells: torch.Tensor
    pbc: torch.Tensor
    n_atoms: torch.Tensor
    ptr: torch.Tensor

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_structures(
        cls,
        structures: Iterable[Any],
        dtype: torch.dtype = torch.float64,
        device: str | torch.device | None = None,
        validate: bool = True,
    ) -> "Batch":
        """Pack ASE ``Atoms`` / pymatgen structures (periodic or not, mixed sizes) into a batch.

        Raises ``ValueError`` naming the structure index for empty input, empty structures, NaN
        positions, unknown atomic numbers or singular cells.
        """
        atoms_list = [to_atoms(s) for s in structures]
        if not atoms_list:
            raise ValueError("no structures given (empty list)")
        packed = pack_structures(atoms_list)
        if validate:
            validate_packed(packed, atoms_list)
        return cls.from_packed(packed, dtype=dtype, device=device)

    @classmethod
    def from_packed(
        cls, packed: PackedStructures, dtype: torch.dtype = torch.float64, device: str | torch.device | None = None
    ) -> "Batch":
        """Tensors of already packed (and validated) structures."""
        device = resolve_device(device)
        sidx = np.repeat(np.arange(packed.n_structures), packed.n_atoms)
        as_t = lambda x, dt: torch.as_tensor(x, dtype=dt, device=device)  # noqa: E731
        return cls(
            positions=as_t(packed.positions, dtype),
            numbers=as_t(packed.numbers, torch.long),
            structure_index=as_t(sidx, torch.long),
            cells=as_t(packed.cells, dtype),
            pbc=as_t(packed.pbc, torch.bool),
            n_atoms=as_t(packed.n_atoms, torch.long),
            ptr=as_t(packed.ptr, torch.long),
        )

    # ------------------------------------------------------------------ properties
    @property
    def n_structures(self) -> int:
        return int(self.cells.shape[0])

    @property
    def n_total(self) -> int:
        return int(self.positions.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        return self.positions.dtype

    @property
    def device(self) -> torch.device:
        return self.positions.device

    def volumes(self) -> torch.Tensor:
        """Cell volumes, Angstrom^3 (B,). Meaningless (possibly 0) for non-periodic structures."""
        return torch.linalg.det(self.cells).abs()

    # ------------------------------------------------------------------ derived batches
    def with_positions(self, positions: torch.Tensor) -> "Batch":
        return replace(self, positions=positions)

    def with_cells(self, cells: torch.Tensor) -> "Batch":
        return replace(self, cells=cells)

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "Batch":
        dev = self.device if device is None else torch.device(device)
        dt = self.dtype if dtype is None else dtype
        return Batch(
            positions=self.positions.to(dev, dt),
            numbers=self.numbers.to(dev),
            structure_index=self.structure_index.to(dev),
            cells=self.cells.to(dev, dt),
            pbc=self.pbc.to(dev),
            n_atoms=self.n_atoms.to(dev),
            ptr=self.ptr.to(dev),
        )

    def select(self, indices: Sequence[int]) -> "Batch":
        """A new batch holding structures ``indices`` (in that order)."""
        idx = [int(i) for i in indices]
        ptr = self.ptr.cpu().numpy()
        atom_idx = np.concatenate([np.arange(ptr[i], ptr[i + 1]) for i in idx])
        n_np = self.n_atoms.cpu().numpy()[idx]
        ai = torch.as_tensor(atom_idx, device=self.device)
        as_long = lambda x: torch.as_tensor(x, dtype=torch.long, device=self.device)  # noqa: E731
        return Batch(
            positions=self.positions[ai],
            numbers=self.numbers[ai],
            structure_index=as_long(np.repeat(np.arange(len(idx)), n_np)),
            cells=self.cells[idx],
            pbc=self.pbc[idx],
            n_atoms=as_long(n_np),
            ptr=as_long(np.concatenate([[0], np.cumsum(n_np)])),
        )

    def split_atoms(self, per_atom: np.ndarray) -> list[np.ndarray]:
        """Split an (N, ...) per-atom array into one array per structure."""
        ptr = self.ptr.cpu().numpy()
        return [per_atom[ptr[b] : ptr[b + 1]] for b in range(self.n_structures)]

    def to_atoms(self) -> list[Atoms]:
        """Unpack back into ASE ``Atoms`` (current positions and cells)."""
        pos = self.positions.detach().cpu().numpy()
        z = self.numbers.cpu().numpy()
        cells = self.cells.detach().cpu().numpy()
        pbc = self.pbc.cpu().numpy()
        ptr = self.ptr.cpu().numpy()
        return [
            Atoms(numbers=z[ptr[b] : ptr[b + 1]], positions=pos[ptr[b] : ptr[b + 1]], cell=cells[b], pbc=pbc[b])
            for b in range(self.n_structures)
        ]
