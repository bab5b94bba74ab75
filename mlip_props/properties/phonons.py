"""Harmonic phonons through the batched backend, with phonopy doing the lattice dynamics.

Method (Togo & Tanaka, Scr. Mater. 108, 1 (2015); Togo et al., J. Phys.: Condens. Matter 35,
353001 (2023) for phonopy; Born & Huang, *Dynamical Theory of Crystal Lattices* (1954)):

1. every structure is relaxed (one batched :func:`~mlip_props.properties.relax.relax` call,
   cell included by default, space-group symmetry kept);
2. a supercell is chosen whose three perpendicular widths all reach ``min_length_A`` (the
   smallest of: a diagonal multiple of the given cell, of its primitive cell, or of its
   conventional cell — the last two are non-diagonal in the given cell's basis);
3. the second-order force constants Phi_{i a, j b} = d^2 E / du_{i a} du_{j b} (eV/A^2, phonopy's
   full ``(N, N, 3, 3)`` layout, atoms in phonopy's supercell order) come from either

   * ``"hessian"``: the analytic Hessian of each perfect supercell by autograd: forces of all
     supercells of all structures from one batched backend pass, then Hessian-vector products
     for the rows of the primitive-cell atoms only (3 n_primitive products, batched over all
     structures) — phonopy's compact force constants (n_primitive, N, 3, 3), which phonopy
     uses directly (the other rows follow from the supercell's lattice translations). The
     supercell is built by phonopy and evaluated in that order, so ``Phi[i, j, a, b] = H[3 i + a, 3 j + b]`` with no re-indexing; or
   * ``"displacement"``: phonopy's symmetry-reduced finite displacements (+-, 0.01 A), all
     displaced supercells of all structures (and the perfect ones, whose residual forces are
     subtracted) in ONE backend call;

   ``"auto"`` takes the Hessian for torch potentials and displacements for oracles;
4. the acoustic sum rule sum_j Phi_{i a, j b} = 0 (translational invariance) is checked on the
   raw force constants, then enforced (symfc's projector when symfc is installed, else
   phonopy's iterative symmetrisation) and the three Gamma acoustic frequencies are reported
   before and after (``asr_enforcement="auto"``: symfc for finite displacements, phonopy's
   iterative symmetrisation for Hessians);
5. band structure along the seekpath standard path (Hinuma et al., Comput. Mater. Sci. 128,
   140 (2017); phonopy's ``auto_band_structure`` path), all its dynamical matrices from
   phonopy's batched builder in one call and diagonalised together; total DOS on a
   Gamma-centred mesh (linear tetrahedron method, phonopy's weights), mean group velocities on
   a coarser mesh, imaginary modes (frequencies below ``-imaginary_tolerance_THz``; phonopy's
   convention: imaginary frequencies are returned as negative numbers). Meshes are reduced by
   the primitive cell's point group even where the supercell symmetry search is skipped.

Work done once per structure: one spglib search of the input cell (primitive matrix and
conventional cell for the supercell), one of the primitive cell (mesh reduction), one inside
seekpath (band path); no supercell symmetry search on the Hessian route.

Units: frequencies THz (1 THz = 33.356 cm^-1 = 4.1357 meV), force constants eV/A^2, masses amu,
group velocities m/s.
"""
from __future__ import annotations

import csv
import re
import warnings
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from ase import Atoms

from ..backend import evaluate, is_oracle
from ..backend.evaluate import prepare_structures
from .result import PropertyResult, jsonable

#: 1 THz * 1 A in m/s (phonopy group velocities are in THz A).
THZ_A_TO_M_S = 100.0
REFERENCE_DIR = Path(__file__).resolve().parents[2] / "reference_data"

Method = Literal["auto", "hessian", "displacement"]


# ---------------------------------------------------------------------------------------------
# conversions and supercell choice
# ---------------------------------------------------------------------------------------------
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


def choose_supercell(atoms: Atoms, min_length_A: float = 10.0, primitive_matrix: np.ndarray | None = None,
                     symprec: float = 1e-5, dataset: Any = None) -> np.ndarray:
    """Smallest supercell (phonopy ``supercell_matrix``, integer 3x3, column convention) whose
    three perpendicular widths are all >= ``min_length_A``.

    Candidates: diagonal multiples of the given cell, of its primitive cell (``primitive_matrix``
    in phonopy's convention) and of spglib's conventional cell, kept when integer in the given
    cell's basis; the one with fewest atoms wins (ties: the diagonal one). ``dataset``: the
    structure's spglib dataset when already at hand (else searched with ``symprec``).
    """
    lat = np.asarray(atoms.get_cell(), dtype=float)
    bases = [np.eye(3)]
    if primitive_matrix is not None:
        bases.append(np.asarray(primitive_matrix, dtype=float).T)
    ds = dataset if dataset is not None else symmetry_dataset(atoms, symprec)
    if ds is not None:
        bases.append(np.linalg.inv(np.asarray(ds.transformation_matrix, dtype=float)).T)
    best = None
    for k, base in enumerate(bases):
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
    return best[1].T.copy()


def _parse_supercell(supercell: Any) -> np.ndarray | None:
    if supercell is None:
        return None
    arr = np.asarray(supercell)
    if arr.ndim == 0:
        return np.eye(3, dtype=int) * int(arr)
    if arr.shape == (3,):
        return np.diag(arr.astype(int))
    if arr.shape == (3, 3):
        return arr.astype(int)
    raise ValueError(f"supercell must be an int, 3 ints or a 3x3 integer matrix, got shape {arr.shape}")


def hessian_rows(potential: Any, structures: Sequence[Atoms], rows: Sequence[Sequence[int]], *,
                 dtype=None, device=None, max_atoms_per_chunk: int = 20000) -> list[np.ndarray]:
    """Selected rows of the Hessian d2E/dx_i dx_j (eV/A^2) of many structures by autograd.

    ``rows[b]`` lists atoms of structure ``b``; returns one array (len(rows[b]), n_b, 3, 3)
    ``[i, j, a, b] = d2E/dx_{rows[i] a} dx_{j b}`` per structure. Energies and forces of all
    structures come from one pass of the backend's batch/graph machinery per chunk (forces
    kept differentiable); the 3 * max(len(rows)) Hessian-vector products are batched over all
    structures at once (each product covers every structure of a chunk). For
    phonons the rows of the primitive-cell atoms suffice (the rest follows from the supercell's
    translations), which costs 3 n_primitive instead of 3 N products.
    """
    import torch

    from ..backend import Batch, build_neighbor_graph
    from ..backend.evaluate import atomic_graph

    dtype = dtype or torch.float64
    out: list[np.ndarray] = [None] * len(structures)  # type: ignore[list-item]
    # structures with the same number of rows share chunks: every Hessian-vector product runs
    # over the whole chunk, so mixing 1-row and 8-row structures would waste 7/8 of the work
    order = sorted(range(len(structures)), key=lambda k: (len(rows[k]), k))
    chunks, cur, n = [], [], 0
    for k in order:
        a = structures[k]
        if cur and (n + len(a) > max_atoms_per_chunk or len(rows[k]) != len(rows[cur[-1]])):
            chunks.append(cur)
            cur, n = [], 0
        cur.append(k)
        n += len(a)
    if cur:
        chunks.append(cur)
    for chunk in chunks:
        batch = Batch.from_structures([structures[k] for k in chunk], dtype=dtype, device=device, validate=False)
        pot = potential.to(batch.device)
        pot.check_elements(batch)
        # pair potentials take each pair once (half the edges, half the Hessian-vector work)
        graph = build_neighbor_graph(batch, pot.cutoff, half=bool(getattr(pot, "pairwise", False)))
        pos = batch.positions.detach().requires_grad_(True)
        per_atom = pot(atomic_graph(batch.with_positions(pos), graph))
        if per_atom.dim() > 1:
            raise NotImplementedError("Hessians of committees: use one member at a time")
        forces = -torch.autograd.grad(per_atom.sum(), pos, create_graph=True)[0]
        ptr = batch.ptr.cpu().numpy()
        nrow = max(len(rows[k]) for k in chunk)
        vecs = torch.zeros(3 * nrow, batch.n_total, 3, dtype=forces.dtype, device=forces.device)
        for b, k in enumerate(chunk):
            for r, atom in enumerate(rows[k]):
                for c in range(3):
                    vecs[3 * r + c, ptr[b] + int(atom), c] = 1.0
        hv = None
        if forces.device.type != "cpu":  # vmapped products pay off on accelerators
            try:
                hv = torch.autograd.grad(forces, pos, grad_outputs=vecs, is_grads_batched=True, retain_graph=True)[0]
            except RuntimeError:  # an op without a batching rule: one product at a time
                hv = None
        if hv is None:  # on CPU one product at a time is ~2x faster than vmap (measured, Morse, 1 thread)
            hv = torch.stack([torch.autograd.grad(forces, pos, grad_outputs=v, retain_graph=True)[0] for v in vecs])
        hv = -hv.detach().cpu().numpy()  # (3 nrow, N, 3): d2E / dx_row dx
        for b, k in enumerate(chunk):
            nr = len(rows[k])
            blk = hv[: 3 * nr, ptr[b] : ptr[b + 1]].reshape(nr, 3, -1, 3)
            out[k] = np.ascontiguousarray(blk.transpose(0, 2, 1, 3))
    return out


# ---------------------------------------------------------------------------------------------
# acoustic sum rule
# ---------------------------------------------------------------------------------------------
def asr_violation(force_constants: np.ndarray) -> float:
    """Largest |sum_j Phi_{i a, j b}| (and over i, for the transposed rule) in eV/A^2."""
    fc = np.asarray(force_constants)
    if fc.shape[0] != fc.shape[1]:  # compact (n_primitive, N, 3, 3): only the row sums exist
        return float(np.abs(fc.sum(axis=1)).max())
    return float(max(np.abs(fc.sum(axis=1)).max(), np.abs(fc.sum(axis=0)).max()))


def _gamma_acoustic(ph) -> np.ndarray:
    f = frequencies_at_qpoints(ph, np.zeros((1, 3)))[0]
    return np.sort(f[np.argsort(np.abs(f))[:3]])


def symfc_available() -> bool:
    try:
        import symfc  # noqa: F401
    except ImportError:
        return False
    return True


def _resolve_enforcement(how: str, route: str) -> str:
    if how == "auto":
        return "symfc" if (route == "displacement" and symfc_available()) else "phonopy"
    if how not in ("symfc", "phonopy", "none"):
        raise ValueError(f"asr_enforcement must be 'auto', 'symfc', 'phonopy' or 'none', got {how!r}")
    if how == "symfc" and not symfc_available():
        raise ValueError("asr_enforcement='symfc' but symfc is not installed (pip install symfc)")
    return how


def _enforce(ph, how: str) -> str:
    if how == "symfc":
        ph.symmetrize_force_constants(use_symfc_projector=True, show_drift=False)
        return "symfc projector (space group, permutation, translation)"
    if how == "phonopy":
        if isinstance(ph, HarmonicModel):
            ph.symmetrize_force_constants(level=3)
        else:
            ph.symmetrize_force_constants(level=3, show_drift=False)
        return "phonopy symmetrize_force_constants (translation + index permutation, 3 iterations)"
    return "none"


class HarmonicModel:
    """The parts of a phonopy ``Phonopy`` object that the analysis needs -- supercell, primitive
    cell, force constants, dynamical matrix -- built by the same phonopy functions
    (``get_supercell``, ``get_primitive``, ``get_dynamical_matrix``) but without ``Phonopy``'s
    supercell symmetry object, which the Hessian route never uses. :meth:`to_phonopy` builds
    the equivalent ``Phonopy`` object (same atom order, same force constants) on demand."""

    def __init__(self, unitcell, supercell_matrix, primitive_matrix, symprec: float = 1e-5):
        from phonopy.physical_units import get_physical_units
        from phonopy.structure.cells import get_primitive, get_supercell

        self.unitcell = unitcell
        self.supercell_matrix = np.asarray(supercell_matrix, dtype="int64")
        self.primitive_matrix = np.asarray(primitive_matrix, dtype=float)
        self.symprec = symprec
        self.supercell = get_supercell(unitcell, self.supercell_matrix, symprec=symprec)
        self.primitive = get_primitive(self.supercell, np.linalg.inv(self.supercell_matrix) @ self.primitive_matrix,
                                       symprec)
        self.unit_conversion_factor = get_physical_units().DefaultToTHz
        self.force_constants = None
        self.dynamical_matrix = None
        self.displacements = None

    def set_force_constants(self, fc: np.ndarray) -> None:
        from phonopy.harmonic.dynamical_matrix import get_dynamical_matrix

        self.dynamical_matrix = get_dynamical_matrix(np.asarray(fc, dtype="double", order="C"), self.supercell,
                                                     self.primitive)
        self.force_constants = self.dynamical_matrix.force_constants

    def symmetrize_force_constants(self, level: int = 3) -> None:
        """phonopy's translational + index-permutation symmetrisation (full or compact array)."""
        from phonopy.harmonic.force_constants import (symmetrize_compact_force_constants,
                                                      symmetrize_force_constants)

        fc = np.array(self.force_constants, dtype="double", order="C")
        if fc.shape[0] == fc.shape[1]:
            symmetrize_force_constants(fc, level=level)
        else:
            symmetrize_compact_force_constants(fc, self.primitive, level=level)
        self.set_force_constants(fc)

    def to_phonopy(self):
        """The equivalent phonopy ``Phonopy`` object (supercell symmetry search skipped), with
        these force constants."""
        from phonopy import Phonopy

        ph = Phonopy(self.unitcell, supercell_matrix=self.supercell_matrix, primitive_matrix=self.primitive_matrix,
                     symprec=self.symprec, is_symmetry=False)
        if self.force_constants is not None:
            ph.force_constants = self.force_constants
        return ph


# ---------------------------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhononResult(PropertyResult):
    """Harmonic phonons of one structure.

    Frequencies in THz (imaginary ones as negative numbers, phonopy's convention), force
    constants eV/A^2, distances along the band path in 1/A (phonopy: 2 pi not included),
    DOS in states/THz per primitive cell, group velocities m/s (``mean_group_velocity_m_s``:
    |v| per branch averaged over the group-velocity mesh).

    Acoustic sum rule: ``asr_violation_eV_A2`` is max |sum_j Phi_ij| of the RAW force constants,
    ``gamma_acoustic_raw_THz`` the three Gamma acoustic frequencies from them;
    ``asr_violation_enforced_eV_A2`` and ``gamma_acoustic_THz`` after ``asr_enforcement``.
    All later quantities (bands, DOS, thermal properties) use the enforced force constants.
    """

    atoms: Atoms
    formula: str
    method: str
    n_atoms_primitive: int
    supercell_matrix: list
    n_supercell_atoms: int
    supercell_widths_A: list
    displacement_A: float | None
    n_displaced_supercells: int
    relaxed: bool
    relax_converged: bool | None
    asr_violation_eV_A2: float
    asr_violation_enforced_eV_A2: float
    gamma_acoustic_raw_THz: list
    gamma_acoustic_THz: list
    asr_enforcement: str
    band_labels: list
    band_distances_inv_A: list
    band_frequencies_THz: list
    band_qpoints: list
    high_symmetry_frequencies_THz: dict
    mesh: list
    dos_frequencies_THz: list
    dos_states_per_THz: list
    mean_group_velocity_m_s: list
    imaginary_modes: bool
    n_imaginary_modes: int
    lowest_frequency_THz: float
    imaginary_tolerance_THz: float
    #: internal, not serialised: the lattice-dynamics object the numbers came from (a phonopy
    #: ``Phonopy``, or a :class:`HarmonicModel` on the Hessian route, whose ``Phonopy`` twin
    #: ``phonopy_object`` builds on first use), the phonopy ``Symmetry`` of the primitive cell
    #: (mesh reduction), the run DOS ``Mesh`` (re-used by the thermal sums when they ask for
    #: the same mesh) and phonopy's band-path labels and connections (for ``band.yaml``)
    harmonic: Any = field(default=None, repr=False, compare=False)
    primitive_symmetry: Any = field(default=None, repr=False, compare=False)
    mesh_object: Any = field(default=None, repr=False, compare=False)
    band_path: Any = field(default=None, repr=False, compare=False)
    _phonopy: Any = field(default=None, repr=False, compare=False)

    _INTERNAL = ("harmonic", "primitive_symmetry", "mesh_object", "band_path", "_phonopy")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in self._INTERNAL}

    @property
    def phonopy_object(self):
        """The phonopy ``Phonopy`` object with the enforced force constants (built on first use
        on the Hessian route, then kept)."""
        if self._phonopy is None and self.harmonic is not None:
            h = self.harmonic
            object.__setattr__(self, "_phonopy", h.to_phonopy() if isinstance(h, HarmonicModel) else h)
        return self._phonopy

    @property
    def phonopy(self):
        """The phonopy ``Phonopy`` object with the enforced force constants (for further work)."""
        return self.phonopy_object

    @property
    def force_constants_eV_A2(self) -> np.ndarray:
        """Enforced force constants, phonopy full layout (N, N, 3, 3), eV/A^2 (the Hessian route
        keeps phonopy's compact (n_primitive, N, 3, 3) array in the phonopy object; it is
        expanded here by the supercell translations)."""
        fc = np.asarray(self.harmonic.force_constants)
        if fc.shape[0] != fc.shape[1]:
            from phonopy.harmonic.force_constants import compact_fc_to_full_fc

            fc = compact_fc_to_full_fc(self.harmonic.primitive, fc)
        return fc

    def frequencies_at(self, qpoints: Sequence[Sequence[float]]) -> np.ndarray:
        """Frequencies (THz, ascending) at q-points in reduced coordinates of the primitive
        reciprocal lattice (phonopy's primitive cell), shape (n_q, 3 n_atoms_primitive)."""
        return frequencies_at_qpoints(self.harmonic, np.atleast_2d(qpoints))

    def write(self, output_dir: str | Path) -> dict[str, Path]:
        """Write phonopy's ``phonopy_params.yaml`` (structure, supercell, force constants) and
        ``band.yaml`` into ``output_dir``, so users can go on in phonopy."""
        return write_phonopy_files(self, output_dir)

    def plot(self, filename: str | Path | None = None, reference: bool = True):
        """Band structure + DOS figure; experimental points from ``reference_data`` overlaid."""
        return plot_band_structure(self, filename, reference=reference)


# ---------------------------------------------------------------------------------------------
# main entry
# ---------------------------------------------------------------------------------------------
def phonons(
    potential: Any,
    structures: Any,
    *,
    supercell: Any = None,
    min_length_A: float = 10.0,
    method: Method = "auto",
    relax: bool = True,
    relax_cell: bool = True,
    fmax: float = 1e-4,
    smax_GPa: float = 1e-3,
    displacement_A: float = 0.01,
    asr_enforcement: str = "auto",
    band_structure: bool = True,
    band_npoints: int = 51,
    mesh: float | Sequence[int] = 40.0,
    group_velocity_mesh: float | Sequence[int] | None = 15.0,
    imaginary_tolerance_THz: float = 0.05,
    symprec: float = 1e-5,
    output_dir: str | Path | None = None,
    dtype=None,
    device=None,
) -> PhononResult | list[PhononResult]:
    """Harmonic phonons of one structure (returns a :class:`PhononResult`) or many (a list),
    all force evaluations in one backend call. See the module docstring for the method.

    ``supercell``: ``None`` (automatic: all perpendicular widths >= ``min_length_A``, A), an
    int, 3 ints or a 3x3 integer matrix (phonopy ``supercell_matrix``). ``method``: ``"auto"``,
    ``"hessian"`` (autograd, torch potentials; finite differences of forces for oracles) or
    ``"displacement"`` (phonopy finite displacements of ``displacement_A``, A).
    ``relax``/``relax_cell``: relax positions (and the cell) first to ``fmax`` (eV/A) and
    ``smax_GPa``, keeping the space group. ``asr_enforcement``: ``"auto"`` (symfc's projector for the
    displacement route when symfc is installed, phonopy's fast translational/permutation
    symmetrisation otherwise — autograd Hessians already obey the rule to ~1e-12 eV/A^2),
    ``"symfc"``, ``"phonopy"`` or ``"none"``. ``mesh``: Gamma-centred sampling
    mesh for DOS/group velocities/imaginary modes, as 3 ints or a length (A, phonopy's
    ``length2mesh``). ``group_velocity_mesh``: coarser mesh (same conventions) on which the
    mean group velocity per branch is averaged (``None``: skip). ``output_dir``: write ``phonopy_params.yaml`` and ``band.yaml`` there
    (one sub-folder per structure for a list).
    """
    import torch
    from phonopy import Phonopy
    from phonopy.structure.symmetry import Symmetry

    single = isinstance(structures, Atoms) or hasattr(structures, "lattice")
    atoms_list = prepare_structures([structures] if single else structures)
    for k, a in enumerate(atoms_list):
        if not a.pbc.all():
            raise ValueError(f"structure {k}: phonons need a cell periodic in all three directions")
    if method not in ("auto", "hessian", "displacement"):
        raise ValueError(f"method must be 'auto', 'hessian' or 'displacement', got {method!r}")
    route = ("displacement" if is_oracle(potential) else "hessian") if method == "auto" else method
    enforcement = _resolve_enforcement(asr_enforcement, route)
    # supercell symmetry (slow in phonopy for large supercells) is only needed by the
    # displacement route and by symfc; the primitive cell's symmetry is always used for meshes
    use_symmetry = route == "displacement" or enforcement == "symfc"
    dtype = dtype or torch.float64
    sc_fixed = _parse_supercell(supercell)

    converged: list[bool | None] = [None] * len(atoms_list)
    if relax:
        from .relax import relax as _relax

        rr = _relax(potential, atoms_list, fmax=fmax, relax_cell=relax_cell, smax_GPa=smax_GPa,
                    keep_symmetry=True, symprec=max(symprec, 1e-4), dtype=dtype, device=device)
        atoms_list = [r.atoms for r in rr]
        converged = [r.converged for r in rr]

    # build the phonopy objects (no model calls); one spglib search of the input cell gives the
    # primitive matrix, the conventional cell for the supercell choice and, when the input cell
    # is already primitive, the primitive cell's symmetry
    phs, psyms = [], []
    for k, a in enumerate(atoms_list):
        unit = to_phonopy_atoms(a)
        try:
            usym = Symmetry(unit, symprec)
            ds = usym.dataset
        except Exception:  # noqa: BLE001 - no symmetry found: P1 treatment below
            usym, ds = None, None
        pm = primitive_matrix_from_dataset(ds)
        smat = sc_fixed if sc_fixed is not None else choose_supercell(a, min_length_A, pm, symprec, dataset=ds)
        if abs(round(np.linalg.det(smat))) < 1:
            raise ValueError(f"structure {k}: singular supercell matrix {smat.tolist()}")
        if use_symmetry:
            ph = Phonopy(unit, supercell_matrix=smat, primitive_matrix=pm, symprec=symprec, is_symmetry=True)
        else:  # no Phonopy object (its supercell symmetry is unused here); built on demand
            ph = HarmonicModel(unit, smat, pm, symprec)
        phs.append(ph)
        # the primitive cell's point group (cheap) reduces the meshes to irreducible q-points even
        # when the (slow, for big supercells) supercell symmetry search was skipped
        if use_symmetry:
            psyms.append(ph.primitive_symmetry)
        elif usym is not None and _same_cell(ph.primitive, unit):
            psyms.append(usym)
        else:
            psyms.append(Symmetry(ph.primitive, symprec))

    # gather every supercell of every structure into one backend call
    batch: list[Atoms] = []
    owners: list[tuple[int, int]] = []  # (structure, -1 perfect | displacement index)
    for k, ph in enumerate(phs):
        batch.append(to_ase_atoms(ph.supercell))
        owners.append((k, -1))
        if route == "displacement":
            ph.generate_displacements(distance=displacement_A, is_plusminus="auto")
            for d, sc in enumerate(ph.supercells_with_displacements):
                batch.append(to_ase_atoms(sc))
                owners.append((k, d))
    raw_fc: list[np.ndarray] = [None] * len(phs)  # type: ignore[list-item]
    if route == "hessian" and not is_oracle(potential):
        # rows of the primitive atoms only: phonopy's compact force constants (n_primitive, N, 3, 3),
        # which phonopy uses as they are (the rest follows from the supercell translations)
        rows = [np.asarray(ph.primitive.p2s_map) for ph in phs]
        raw_fc = hessian_rows(potential, batch, rows, dtype=dtype, device=device)
    elif route == "hessian":  # oracle: full finite-difference Hessian (6 N single points each)
        res = evaluate(potential, batch, ("energy", "hessian"), dtype=dtype, device=device)
        for m, (k, _) in enumerate(owners):
            n = len(batch[m])
            h = np.asarray(res.hessians_eV_A2[m]).reshape(n, 3, n, 3)
            raw_fc[k] = np.ascontiguousarray(h.transpose(0, 2, 1, 3))
    else:
        res = evaluate(potential, batch, ("energy", "forces"), dtype=dtype, device=device)
        perfect = {k: res.forces_eV_A[m] for m, (k, d) in enumerate(owners) if d < 0}
        disp_forces: dict[int, list] = {}
        for m, (k, d) in enumerate(owners):
            if d >= 0:
                disp_forces.setdefault(k, []).append(res.forces_eV_A[m] - perfect[k])
        for k, ph in enumerate(phs):
            ph.forces = np.array(disp_forces[k])
            ph.produce_force_constants(calculate_full_force_constants=True, fc_calculator="traditional",
                                       show_drift=False)
            raw_fc[k] = np.array(ph.force_constants)

    results = []
    for k, ph in enumerate(phs):
        if isinstance(ph, HarmonicModel):
            ph.set_force_constants(raw_fc[k])
        else:
            ph.force_constants = raw_fc[k]
        viol_raw = asr_violation(raw_fc[k])
        gamma_raw = _gamma_acoustic(ph)
        used = _enforce(ph, enforcement)
        viol_after = asr_violation(ph.force_constants)
        gamma_after = _gamma_acoustic(ph)
        results.append(_analyse(
            ph, psyms[k], atoms_list[k], route, displacement_A if route == "displacement" else None,
            bool(relax), converged[k], viol_raw, viol_after, gamma_raw, gamma_after, used,
            band_structure, band_npoints, mesh, imaginary_tolerance_THz, group_velocity_mesh,
        ))
    if output_dir is not None:
        for k, r in enumerate(results):
            r.write(Path(output_dir) if single else Path(output_dir) / f"{k:04d}_{r.formula}")
    return results[0] if single else results


def _same_cell(a, b, tol: float = 1e-8) -> bool:
    """Same lattice, species and (modulo lattice vectors) positions, in the same order."""
    if len(a) != len(b) or list(a.numbers) != list(b.numbers) or not np.allclose(a.cell, b.cell, atol=tol):
        return False
    d = np.asarray(a.scaled_positions) - np.asarray(b.scaled_positions)
    return bool(np.allclose(d - np.rint(d), 0.0, atol=tol))


def reduced_formula(atoms: Atoms) -> str:
    """pymatgen reduced formula (e.g. ``"Cu"``, ``"NaCl"``) of an ASE structure."""
    from pymatgen.core import Composition

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Composition(atoms.get_chemical_formula()).reduced_formula


def _label(s: str) -> str:
    """Plain label from phonopy/seekpath ones (``$\\mathrm{X}$``, ``GAMMA``, ``$\\Gamma$``)."""
    t = re.sub(r"\\mathrm\{([^}]*)\}", r"\1", str(s)).replace("$", "").replace("\\", "").strip()
    return "Gamma" if t.upper() in ("GAMMA", "G") else t


def _segment_labels(labels: Sequence[str], connections: Sequence[bool], n_segments: int) -> list[tuple[str, str]]:
    it = iter(labels)
    out: list[tuple[str, str]] = []
    prev_end = None
    for i in range(n_segments):
        start = prev_end if (i > 0 and connections[i - 1]) else next(it)
        end = next(it)
        out.append((_label(start), _label(end)))
        prev_end = end
    return out


def _mesh_from(mesh, ph) -> np.ndarray:
    if np.ndim(mesh) == 0:
        from phonopy.phonon.grid import length2mesh

        return np.asarray(length2mesh(float(mesh), ph.primitive.cell), dtype=int)
    return np.asarray(mesh, dtype=int)


def band_path(ph, npoints: int = 51):
    """phonopy's seekpath band path for the primitive cell (``auto_band_structure``'s path):
    (list of (n_q, 3) q-point arrays in reduced coordinates of the primitive reciprocal
    lattice, phonopy labels, path connections)."""
    from phonopy.phonon.band_structure import get_band_qpoints_by_seekpath

    bands, labels, connections = get_band_qpoints_by_seekpath(ph.primitive, npoints, is_const_interval=True)
    return [np.asarray(b, dtype=float) for b in bands], list(labels), list(connections)


def frequencies_at_qpoints(ph, qpoints: np.ndarray) -> np.ndarray:
    """Frequencies (THz, ascending; imaginary as negative) of a phonopy object at many q-points:
    all dynamical matrices from phonopy's batched builder in one call, eigenvalues from one
    batched ``numpy.linalg.eigvalsh`` (the same numbers as phonopy's per-q band-structure loop)."""
    from phonopy.harmonic.dynamical_matrix import get_dynamical_matrices_at_qpoints

    q = np.ascontiguousarray(np.atleast_2d(qpoints), dtype="double")
    if ph.dynamical_matrix is None:
        raise RuntimeError("phonopy object without force constants")
    ev = np.linalg.eigvalsh(get_dynamical_matrices_at_qpoints(ph.dynamical_matrix, q)).real
    return np.sqrt(np.abs(ev)) * np.sign(ev) * ph.unit_conversion_factor


def band_distances(ph, bands: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Cumulative distances (1/A, no 2 pi) along the band path, phonopy's convention (continued
    across segments, each segment starting where the previous one ended)."""
    rec = np.linalg.inv(np.asarray(ph.primitive.cell)).T
    out, d = [], 0.0
    for b in bands:
        steps = np.linalg.norm(np.diff(b, axis=0) @ rec, axis=1)
        seg = d + np.r_[0.0, np.cumsum(steps)]
        out.append(seg)
        d = float(seg[-1])
    return out


def mesh_object(ph, symmetry, mesh, *, group_velocities: bool = False):
    """A run phonopy ``Mesh`` (Gamma-centred, reduced by the primitive point group of
    ``symmetry``) on ``ph``'s dynamical matrix, with group velocities when asked."""
    from phonopy.phonon.group_velocity import GroupVelocity
    from phonopy.phonon.mesh import Mesh

    gv = None
    if group_velocities:
        gv = GroupVelocity(ph.dynamical_matrix, symmetry=symmetry, frequency_factor_to_THz=ph.unit_conversion_factor)
    m = Mesh(ph.dynamical_matrix, np.asarray(mesh, dtype="int64"), is_gamma_center=True, group_velocity=gv,
             rotations=symmetry.pointgroup_operations, primitive_symmetry=symmetry, factor=ph.unit_conversion_factor)
    m.run()
    return m


def group_velocities(ph, qpoints: np.ndarray, symmetry: Any = None, q_length: float = 1e-5) -> np.ndarray:
    """Group velocities v = d omega / d q (THz A; x 100 for m/s) at many q-points, shape
    (n_q, n_bands, 3), bands in ascending frequency order.

    phonopy's ``GroupVelocity`` method (finite-difference variant, ``q_length`` in 1/A, no 2 pi),
    batched: dD/dq along x, y, z and along phonopy's symmetry-breaking direction (1, 2, 3) from
    central differences of dynamical matrices built for all q at once; v_i = <e_i|dD/dq|e_i> /
    (2 omega_i), degenerate subspaces first rotated to diagonalise dD/dq along (1, 2, 3);
    zero for frequencies below 1e-4 THz; averaged over the little group of each q when the
    primitive cell's phonopy ``symmetry`` is given (as phonopy does)."""
    from phonopy.harmonic.dynamical_matrix import get_dynamical_matrices_at_qpoints
    from phonopy.phonon.degeneracy import degenerate_sets

    dmat = ph.dynamical_matrix
    factor = ph.unit_conversion_factor
    q = np.ascontiguousarray(np.atleast_2d(qpoints), dtype="double")
    nq = len(q)
    cell = np.asarray(ph.primitive.cell, dtype=float)
    dirs = np.array([[1.0, 2.0, 3.0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    dirs[0] /= np.linalg.norm(dirs[0])
    shifts = (dirs * q_length) @ cell.T  # reduced-coordinate steps, phonopy: primitive.cell @ dq_cart
    qq = np.concatenate([q] + [q + d for d in shifts] + [q - d for d in shifts])
    dm = get_dynamical_matrices_at_qpoints(dmat, np.ascontiguousarray(qq))
    d0 = dm[:nq]
    ddm = (dm[nq : 5 * nq] - dm[5 * nq :]).reshape(4, nq, *d0.shape[1:]) / (2 * q_length)
    ev, vec = np.linalg.eigh(d0)
    freqs = np.sqrt(np.abs(ev)) * np.sign(ev) * factor
    # <e_i| dD_dir |e_j> for all four directions: (4, nq, nb, nb)
    proj = np.einsum("qai,dqab,qbj->dqij", vec.conj(), ddm, vec, optimize=True)
    gv = np.einsum("dqii->qid", proj[1:]).real.copy()  # non-degenerate bands
    for k in range(nq):
        for deg in degenerate_sets(freqs[k]):
            if len(deg) < 2:
                continue
            sub = np.ix_(deg, deg)
            _, u = np.linalg.eigh(proj[0, k][sub])
            for c in range(3):
                gv[k, deg, c] = np.diag(u.conj().T @ proj[c + 1, k][sub] @ u).real
    ok = freqs > 1e-4
    gv = np.where(ok[..., None], gv * (factor**2 / np.where(ok, freqs, 1.0) / 2)[..., None], 0.0)
    if symmetry is None:
        return gv
    rec = np.linalg.inv(cell)  # columns: reciprocal vectors (no 2 pi), phonopy's convention
    rots = np.asarray(symmetry.reciprocal_operations, dtype=float)
    r_cart = np.einsum("ij,rjk,kl->ril", rec, rots, np.linalg.inv(rec))
    q_bz = q - np.rint(q)
    diff = q_bz[:, None, :] - np.einsum("rij,qj->qri", rots, q_bz)
    little = (np.abs(diff) < symmetry.tolerance).all(-1).astype(float)  # (nq, n_ops)
    return np.einsum("qr,rij,qbj->qbi", little, r_cart, gv) / little.sum(1)[:, None, None]


def tetrahedron_dos(mesh) -> tuple[np.ndarray, np.ndarray]:
    """Total phonon DOS (states/THz per primitive cell) of a run phonopy ``Mesh`` by the linear
    tetrahedron method (Bloechl, Jepsen & Andersen, Phys. Rev. B 49, 16223 (1994)), on
    phonopy's default frequency points (``TotalDos.set_draw_area()``: 201 points spanning the
    frequencies plus 10 % margins). The same numbers as phonopy's ``TotalDos.run()``, which also
    integrates the cumulative DOS (a second, equally expensive tetrahedron pass) that is not
    needed here."""
    from phonopy.phonon.dos import TotalDos
    from phonopy.phonon.tetrahedron_method import get_integration_weights

    points = np.asarray(TotalDos(mesh, use_tetrahedron_method=True).frequency_points, dtype="double")
    bz = mesh.bz_grid
    ir_gp = np.asarray(mesh.ir_grid_points, dtype="int64")
    gmap = np.asarray(mesh.grid_mapping_table, dtype="int64")
    unique_gps = np.unique(gmap)
    if not np.array_equal(unique_gps, ir_gp):  # not phonopy's usual layout: let phonopy do it
        tdos = TotalDos(mesh, use_tetrahedron_method=True)
        tdos.run()
        return np.asarray(tdos.frequency_points), np.asarray(tdos.dos)
    bz2ir = np.searchsorted(unique_gps, gmap[np.asarray(bz.bzg2grg)]).astype("int64")
    iw = get_integration_weights(points, np.asarray(mesh.frequencies, dtype="double"), bz,
                                 grid_points=np.asarray(bz.grg2bzg)[ir_gp], bzgp2irgp_map=bz2ir, function="I")
    dos = np.einsum("isb,i->s", iw, np.asarray(mesh.weights, dtype=float)) / float(np.prod(bz.D_diag))
    return points, dos


def _analyse(ph, psym, atoms, route, disp, relaxed, converged, viol_raw, viol_after, gamma_raw, gamma_after,
             used, band_structure, band_npoints, mesh, tol, group_velocity_mesh) -> PhononResult:
    lowest = []
    n_imag = 0
    labels: list = []
    distances: list = []
    bfreqs: list = []
    bq: list = []
    hs: dict[str, list] = {}
    path = None
    if band_structure:
        bands, raw_labels, connections = band_path(ph, band_npoints)
        path = (raw_labels, connections)
        sizes = [len(b) for b in bands]
        freqs = np.split(frequencies_at_qpoints(ph, np.concatenate(bands)), np.cumsum(sizes)[:-1])
        seg_labels = _segment_labels(raw_labels, connections, len(bands))
        for (l0, l1), q, d, f in zip(seg_labels, bands, band_distances(ph, bands), freqs):
            labels.append([l0, l1])
            distances.append(d.tolist())
            bfreqs.append(f.tolist())
            bq.append(q.tolist())
            hs.setdefault(l0, f[0].tolist())
            hs.setdefault(l1, f[-1].tolist())
            lowest.append(f.min())
            n_imag += int((f < -tol).sum())
    mesh_arr = _mesh_from(mesh, ph)
    if group_velocity_mesh:
        gm = mesh_object(ph, psym, _mesh_from(group_velocity_mesh, ph))
        gv = np.linalg.norm(group_velocities(ph, gm.qpoints, psym), axis=-1)  # (nq, nb) THz A
        gw = np.asarray(gm.weights)
        mean_gv = (gv * gw[:, None]).sum(0) / gw.sum() * THZ_A_TO_M_S
    else:
        mean_gv = np.full(3 * len(ph.primitive), np.nan)
    dm = mesh_object(ph, psym, mesh_arr)
    mfreq = np.asarray(dm.frequencies)
    w = np.asarray(dm.weights)
    lowest.append(mfreq.min())
    n_imag += int(((mfreq < -tol) * w[:, None]).sum())
    dos_points, dos = tetrahedron_dos(dm)
    low = float(min(lowest))
    smat = np.asarray(ph.supercell_matrix)
    return PhononResult(
        atoms=atoms,
        formula=reduced_formula(atoms),
        method=route,
        n_atoms_primitive=len(ph.primitive),
        supercell_matrix=smat.tolist(),
        n_supercell_atoms=len(ph.supercell),
        supercell_widths_A=perpendicular_widths(ph.supercell.cell).tolist(),
        displacement_A=disp,
        n_displaced_supercells=0 if disp is None else len(ph.displacements),
        relaxed=relaxed,
        relax_converged=converged,
        asr_violation_eV_A2=viol_raw,
        asr_violation_enforced_eV_A2=viol_after,
        gamma_acoustic_raw_THz=np.asarray(gamma_raw).tolist(),
        gamma_acoustic_THz=np.asarray(gamma_after).tolist(),
        asr_enforcement=used,
        band_labels=labels,
        band_distances_inv_A=distances,
        band_frequencies_THz=bfreqs,
        band_qpoints=bq,
        high_symmetry_frequencies_THz=hs,
        mesh=mesh_arr.tolist(),
        dos_frequencies_THz=dos_points.tolist(),
        dos_states_per_THz=dos.tolist(),
        mean_group_velocity_m_s=mean_gv.tolist(),
        imaginary_modes=bool(low < -tol),
        n_imaginary_modes=n_imag,
        lowest_frequency_THz=low,
        imaginary_tolerance_THz=float(tol),
        harmonic=ph,
        _phonopy=ph if not isinstance(ph, HarmonicModel) else None,
        primitive_symmetry=psym,
        mesh_object=dm,
        band_path=path,
    )


# ---------------------------------------------------------------------------------------------
# files, reference data and plots
# ---------------------------------------------------------------------------------------------
def write_phonopy_files(result: PhononResult, output_dir: str | Path) -> dict[str, Path]:
    """``phonopy_params.yaml`` (with force constants) and ``band.yaml`` in ``output_dir``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ph = result.phonopy_object
    params = out / "phonopy_params.yaml"
    ph.save(filename=params, settings={"force_constants": True})
    files = {"phonopy_params": params}
    if ph.band_structure is None and result.band_qpoints and result.band_path is not None:
        labels, connections = result.band_path  # the path of the result's bands, now through phonopy
        ph.run_band_structure([np.asarray(q) for q in result.band_qpoints], path_connections=connections,
                              labels=labels, is_legacy_plot=False)
    if ph.band_structure is not None:
        band = out / "band.yaml"
        ph.write_yaml_band_structure(filename=band)
        files["band"] = band
    return files


def reference_frequencies(formula: str, path: str | Path | None = None) -> list[dict[str, Any]]:
    """Rows of ``reference_data/phonons_high_symmetry.csv`` for a material (e.g. ``"Cu"``)."""
    p = Path(path) if path else REFERENCE_DIR / "phonons_high_symmetry.csv"
    if not p.is_file():
        return []
    with open(p, newline="") as fh:
        rows = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    return [r for r in rows if r.get("material") == formula]


def band_path_ticks(segments: Sequence[tuple[str, str, float, float]]) -> tuple[list[float], list[str]]:
    """Tick positions (1/A) and point names at the ends of band segments ``(label0, label1, x0, x1)``;
    where two segments meet at one x the names are kept once, and a jump between unconnected
    points gives a joined name ``"U|K"``. Names are as given (e.g. ``"Gamma"``)."""
    ticks: list[float] = []
    names: list[str] = []
    for l0, l1, x0, x1 in segments:
        for x, lab in ((x0, l0), (x1, l1)):
            if not ticks or abs(ticks[-1] - x) > 1e-9:
                ticks.append(float(x))
                names.append(lab)
            elif names[-1] != lab:
                names[-1] = f"{names[-1]}|{lab}"
    return ticks, names


def band_axis(ax, ticks: Sequence[float], names: Sequence[str], line_color: str = "0.7") -> None:
    """High-symmetry ticks (Gamma drawn as the Greek letter), vertical lines at them, the x range of
    the path, a zero line and the frequency label (THz) on a band-structure axis."""
    for x in ticks:
        ax.axvline(x, color=line_color, lw=0.6)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xticks(list(ticks))
    ax.set_xticklabels(["|".join("Γ" if p == "Gamma" else p for p in n.split("|")) for n in names])
    if ticks:
        ax.set_xlim(ticks[0], ticks[-1])
    ax.set_ylabel("frequency (THz)")


def _save_or_return(fig, filename):
    """Lay out ``fig``; save and close it when ``filename`` is given; return it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    if filename is not None:
        fig.savefig(filename, dpi=120)
        plt.close(fig)
    return fig


def plot_band_structure(result: PhononResult, filename: str | Path | None = None, reference: bool = True):
    """Band structure (left) and DOS (right); experimental frequencies at high-symmetry points
    from ``reference_data/phonons_high_symmetry.csv`` drawn as markers when present."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax, axd) = plt.subplots(1, 2, figsize=(8, 4.5), sharey=True, gridspec_kw={"width_ratios": [3, 1]})
    for d, f in zip(result.band_distances_inv_A, result.band_frequencies_THz):
        ax.plot(d, f, color="C0", lw=1.2)
    ticks, names = band_path_ticks([(l0, l1, d[0], d[-1])
                                    for (l0, l1), d in zip(result.band_labels, result.band_distances_inv_A)])
    plotted_ref = False
    for r in reference_frequencies(result.formula) if reference else []:
        for x, n in zip(ticks, names):
            if r.get("point") in n.split("|"):
                ax.plot([x], [float(r["frequency_THz"])], "o", mfc="none", color="C3",
                        label=None if plotted_ref else "experiment (neutron)")
                plotted_ref = True
    band_axis(ax, ticks, names)
    ax.set_title(f"{result.formula}: phonons ({result.method})")
    if plotted_ref:
        ax.legend(loc="best", fontsize=8)
    axd.plot(result.dos_states_per_THz, result.dos_frequencies_THz, color="C0")
    axd.set_xlabel("DOS (states/THz)")
    return _save_or_return(fig, filename)


def max_frequency_difference_THz(a: PhononResult, b: PhononResult) -> float:
    """Largest |f_a - f_b| (THz) over the band-structure points of two results on the same path."""
    diffs = [np.abs(np.asarray(x) - np.asarray(y)).max() for x, y in zip(a.band_frequencies_THz, b.band_frequencies_THz)]
    return float(max(diffs)) if diffs else math.nan
