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
     structures) — phonopy's compact force constants, expanded to the full array by the
     supercell's lattice translations. The supercell is built by phonopy and evaluated in
     that order, so ``Phi[i, j, a, b] = H[3 i + a, 3 j + b]`` with no re-indexing; or
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
   140 (2017)), total DOS on a Gamma-centred mesh, group velocities on that mesh, imaginary
   modes (frequencies below ``-imaginary_tolerance_THz``; phonopy's convention: imaginary
   frequencies are returned as negative numbers).

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


def choose_supercell(atoms: Atoms, min_length_A: float = 10.0, primitive_matrix: np.ndarray | None = None,
                     symprec: float = 1e-5) -> np.ndarray:
    """Smallest supercell (phonopy ``supercell_matrix``, integer 3x3, column convention) whose
    three perpendicular widths are all >= ``min_length_A``.

    Candidates: diagonal multiples of the given cell, of its primitive cell (``primitive_matrix``
    in phonopy's convention) and of spglib's conventional cell, kept when integer in the given
    cell's basis; the one with fewest atoms wins (ties: the diagonal one).
    """
    import spglib

    lat = np.asarray(atoms.get_cell(), dtype=float)
    bases = [np.eye(3)]
    if primitive_matrix is not None:
        bases.append(np.asarray(primitive_matrix, dtype=float).T)
    try:
        ds = spglib.get_symmetry_dataset((lat, atoms.get_scaled_positions(), atoms.numbers), symprec=symprec)
        if ds is not None:
            bases.append(np.linalg.inv(np.asarray(ds.transformation_matrix, dtype=float)).T)
    except Exception:  # noqa: BLE001 - symmetry is only used to find a smaller cell
        pass
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
    structures at once. For
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
        graph = build_neighbor_graph(batch, pot.cutoff)
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
        try:
            hv = torch.autograd.grad(forces, pos, grad_outputs=vecs, is_grads_batched=True)[0]
        except RuntimeError:  # an op without a batching rule: one product at a time
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
    ph.run_qpoints([[0.0, 0.0, 0.0]])
    f = np.asarray(ph.qpoints.frequencies[0])
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
        ph.symmetrize_force_constants(level=3, show_drift=False)
        return "phonopy symmetrize_force_constants (translation + index permutation, 3 iterations)"
    return "none"


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
    phonopy_object: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "phonopy_object"}

    @property
    def phonopy(self):
        """The phonopy ``Phonopy`` object with the enforced force constants (for further work)."""
        return self.phonopy_object

    @property
    def force_constants_eV_A2(self) -> np.ndarray:
        """Enforced force constants, phonopy full layout (N, N, 3, 3), eV/A^2."""
        return np.asarray(self.phonopy_object.force_constants)

    def frequencies_at(self, qpoints: Sequence[Sequence[float]]) -> np.ndarray:
        """Frequencies (THz, ascending) at q-points in reduced coordinates of the primitive
        reciprocal lattice (phonopy's primitive cell), shape (n_q, 3 n_atoms_primitive)."""
        self.phonopy_object.run_qpoints(np.atleast_2d(qpoints))
        return np.asarray(self.phonopy_object.qpoints.frequencies)

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
    from phonopy.structure.cells import guess_primitive_matrix

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

    # build the phonopy objects (no model calls)
    phs = []
    for k, a in enumerate(atoms_list):
        unit = to_phonopy_atoms(a)
        pm = guess_primitive_matrix(unit, symprec=symprec)
        smat = sc_fixed if sc_fixed is not None else choose_supercell(a, min_length_A, pm, symprec)
        if abs(round(np.linalg.det(smat))) < 1:
            raise ValueError(f"structure {k}: singular supercell matrix {smat.tolist()}")
        ph = Phonopy(unit, supercell_matrix=smat, primitive_matrix=pm, symprec=symprec, is_symmetry=use_symmetry)
        if not use_symmetry:
            _restore_primitive_symmetry(ph, symprec)
        phs.append(ph)

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
        # rows of the primitive atoms only (compact fc), expanded by the supercell translations
        from phonopy.harmonic.force_constants import compact_fc_to_full_fc

        rows = [np.asarray(ph.primitive.p2s_map) for ph in phs]
        compact = hessian_rows(potential, batch, rows, dtype=dtype, device=device)
        for k, ph in enumerate(phs):
            raw_fc[k] = compact_fc_to_full_fc(ph.primitive, compact[k])
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
        ph.force_constants = raw_fc[k]
        viol_raw = asr_violation(raw_fc[k])
        gamma_raw = _gamma_acoustic(ph)
        used = _enforce(ph, enforcement)
        viol_after = asr_violation(ph.force_constants)
        gamma_after = _gamma_acoustic(ph)
        results.append(_analyse(
            ph, atoms_list[k], route, displacement_A if route == "displacement" else None,
            bool(relax), converged[k], viol_raw, viol_after, gamma_raw, gamma_after, used,
            band_structure, band_npoints, mesh, imaginary_tolerance_THz, group_velocity_mesh,
        ))
    if output_dir is not None:
        for k, r in enumerate(results):
            r.write(Path(output_dir) if single else Path(output_dir) / f"{k:04d}_{r.formula}")
    return results[0] if single else results


def _restore_primitive_symmetry(ph, symprec: float) -> None:
    """With ``is_symmetry=False`` phonopy skips the (slow, for big supercells) supercell symmetry
    search but then also samples meshes without the primitive cell's point group. The
    primitive cell's symmetry is cheap: put it back so meshes are reduced to irreducible
    q-points (phonopy 4.x keeps it in ``_primitive_symmetry``; left alone if that changes)."""
    from phonopy.structure.symmetry import Symmetry

    if hasattr(ph, "_primitive_symmetry"):
        try:
            ph._primitive_symmetry = Symmetry(ph.primitive, symprec, True)
        except Exception:  # noqa: BLE001 - an optimisation only
            pass


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


def _analyse(ph, atoms, route, disp, relaxed, converged, viol_raw, viol_after, gamma_raw, gamma_after,
             used, band_structure, band_npoints, mesh, tol, group_velocity_mesh) -> PhononResult:
    lowest = []
    n_imag = 0
    labels: list = []
    distances: list = []
    bfreqs: list = []
    bq: list = []
    hs: dict[str, list] = {}
    if band_structure:
        ph.auto_band_structure(npoints=band_npoints, with_group_velocities=False)
        bs = ph.band_structure
        seg_labels = _segment_labels(bs.labels, bs.path_connections, len(bs.qpoints))
        for (l0, l1), q, d, f in zip(seg_labels, bs.qpoints, bs.distances, bs.frequencies):
            f = np.asarray(f)
            labels.append([l0, l1])
            distances.append(np.asarray(d).tolist())
            bfreqs.append(f.tolist())
            bq.append(np.asarray(q).tolist())
            hs.setdefault(l0, f[0].tolist())
            hs.setdefault(l1, f[-1].tolist())
            lowest.append(f.min())
            n_imag += int((f < -tol).sum())
    mesh_arr = _mesh_from(mesh, ph)
    if group_velocity_mesh:
        gmesh = _mesh_from(group_velocity_mesh, ph)
        ph.run_mesh(gmesh, is_gamma_center=True, with_group_velocities=True)
        gv = np.linalg.norm(np.asarray(ph.mesh.group_velocities), axis=-1)  # (nq, nb) THz A
        gw = np.asarray(ph.mesh.weights)
        mean_gv = (gv * gw[:, None]).sum(0) / gw.sum() * THZ_A_TO_M_S
    else:
        mean_gv = np.full(3 * len(ph.primitive), np.nan)
    ph.run_mesh(mesh_arr, is_gamma_center=True)
    mfreq = np.asarray(ph.mesh.frequencies)
    w = np.asarray(ph.mesh.weights)
    lowest.append(mfreq.min())
    n_imag += int(((mfreq < -tol) * w[:, None]).sum())
    ph.run_total_dos()
    tdos = ph.total_dos
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
        dos_frequencies_THz=np.asarray(tdos.frequency_points).tolist(),
        dos_states_per_THz=np.asarray(tdos.dos).tolist(),
        mean_group_velocity_m_s=mean_gv.tolist(),
        imaginary_modes=bool(low < -tol),
        n_imaginary_modes=n_imag,
        lowest_frequency_THz=low,
        imaginary_tolerance_THz=float(tol),
        phonopy_object=ph,
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


def plot_band_structure(result: PhononResult, filename: str | Path | None = None, reference: bool = True):
    """Band structure (left) and DOS (right); experimental frequencies at high-symmetry points
    from ``reference_data/phonons_high_symmetry.csv`` drawn as markers when present."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax, axd) = plt.subplots(1, 2, figsize=(8, 4.5), sharey=True, gridspec_kw={"width_ratios": [3, 1]})
    ticks, ticklabels = [], []
    ref = reference_frequencies(result.formula) if reference else []
    plotted_ref = False
    for (l0, l1), d, f in zip(result.band_labels, result.band_distances_inv_A, result.band_frequencies_THz):
        ax.plot(d, f, color="C0", lw=1.2)
        for x, lab in ((d[0], l0), (d[-1], l1)):
            if not ticks or abs(ticks[-1] - x) > 1e-9:
                ticks.append(x)
                ticklabels.append("Γ" if lab == "Gamma" else lab)
            elif ticklabels[-1] != ("Γ" if lab == "Gamma" else lab):
                ticklabels[-1] += "|" + ("Γ" if lab == "Gamma" else lab)
            for r in ref:
                if r.get("point") == lab:
                    ax.plot([x], [float(r["frequency_THz"])], "o", mfc="none", color="C3",
                            label=None if plotted_ref else "experiment (neutron)")
                    plotted_ref = True
    for x in ticks:
        ax.axvline(x, color="0.7", lw=0.6)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xticks(ticks)
    ax.set_xticklabels(ticklabels)
    if ticks:
        ax.set_xlim(ticks[0], ticks[-1])
    ax.set_ylabel("frequency (THz)")
    ax.set_title(f"{result.formula}: phonons ({result.method})")
    if plotted_ref:
        ax.legend(loc="best", fontsize=8)
    axd.plot(result.dos_states_per_THz, result.dos_frequencies_THz, color="C0")
    axd.set_xlabel("DOS (states/THz)")
    fig.tight_layout()
    if filename is not None:
        fig.savefig(filename, dpi=120)
        plt.close(fig)
    return fig


def max_frequency_difference_THz(a: PhononResult, b: PhononResult) -> float:
    """Largest |f_a - f_b| (THz) over the band-structure points of two results on the same path."""
    diffs = [np.abs(np.asarray(x) - np.asarray(y)).max() for x, y in zip(a.band_frequencies_THz, b.band_frequencies_THz)]
    return float(max(diffs)) if diffs else math.nan
