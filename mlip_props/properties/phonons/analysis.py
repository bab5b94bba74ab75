"""Lattice dynamics of a harmonic model with enforced force constants: band structure along the
seekpath path, a Gamma-centred mesh (tetrahedron DOS, imaginary modes), mean group velocities,
all batched over q-points; :func:`analyse_harmonic` turns one :class:`HarmonicSystem` into a
:class:`~mlip_props.properties.phonons.result.PhononResult`."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from .cells import perpendicular_widths, reduced_formula
from .force_constants import AcousticSumRuleCheck, HarmonicModel, frequencies_at_qpoints
from .nac import lo_to_note
from .result import PhononResult

#: 1 THz * 1 A in m/s (phonopy group velocities are in THz A).
THZ_A_TO_M_S = 100.0


@dataclass(frozen=True)
class AnalysisOptions:
    """What to compute from the force constants. ``band_npoints``: q-points per band segment;
    ``mesh``/``group_velocity_mesh``: Gamma-centred meshes as 3 ints or a length (A, phonopy's
    ``length2mesh``; ``group_velocity_mesh=None`` skips group velocities);
    ``imaginary_tolerance_THz``: frequencies below minus this count as imaginary (``None``: chosen
    from the compute precision and the measured noise, :func:`imaginary_tolerance`)."""

    band_structure: bool = True
    band_npoints: int = 51
    mesh: float | Sequence[int] = 40.0
    group_velocity_mesh: float | Sequence[int] | None = 15.0
    imaginary_tolerance_THz: float | None = None


@dataclass
class HarmonicSystem:
    """One structure's harmonic model (a ``Phonopy`` object or a :class:`HarmonicModel`, its
    force constants enforced), the primitive cell's phonopy ``Symmetry`` (mesh reduction), and how
    it was obtained (``method``, ``displacement_A``, relaxation, acoustic-sum-rule check)."""

    harmonic: Any
    primitive_symmetry: Any
    atoms: Atoms
    method: str
    displacement_A: float | None
    relaxed: bool
    relax_converged: bool | None
    asr: AcousticSumRuleCheck
    precision: str | None = None
    polar: bool = False
    lo_to_included: bool = False
    born_charge_sum_e: float | None = None


#: the imaginary-mode tolerance (THz) when the force constants are float64: well above their
#: noise (raw sum-rule violations ~1e-12 eV/A^2), below any physical instability worth reporting
IMAGINARY_TOLERANCE_FLOAT64_THZ = 0.05
#: in lower precision, the tolerance is at least this multiple of :func:`asr_noise_THz`
NOISE_MULTIPLE = 3.0


def asr_noise_THz(violation_eV_A2: float, masses_amu: Sequence[float], to_THz: float) -> float:
    """The frequency (THz) that the raw acoustic-sum-rule violation corresponds to on the lightest
    atom, sqrt(violation / m_min) / (2 pi) (phonopy's unit factor). The violation is a sum over the supercell of
    force-constant errors, as every dynamical-matrix element is, so for a translationally
    invariant model computed in float32 it measures the rounding noise of the dynamical matrix:
    eigenvalues below about (this)^2 in magnitude are indistinguishable from zero."""
    return float(np.sqrt(max(violation_eV_A2, 0.0) / float(np.min(masses_amu))) * to_THz)


def imaginary_tolerance(requested: float | None, precision: str | None, noise_THz: float) -> float:
    """The imaginary-mode tolerance (THz): ``requested`` when given; else 0.05 THz for float64
    force constants and, for lower precision (float32 models), the larger of 0.05 THz and
    :data:`NOISE_MULTIPLE` x the measured noise frequency :func:`asr_noise_THz`."""
    if requested is not None:
        return float(requested)
    tol = IMAGINARY_TOLERANCE_FLOAT64_THZ
    if precision not in (None, "float64"):
        tol = max(tol, NOISE_MULTIPLE * noise_THz)
    return float(tol)


def sampling_mesh(mesh: float | Sequence[int], ph) -> np.ndarray:
    """Mesh numbers (3 ints) of a mesh given as 3 ints or as a length (A, phonopy's
    ``length2mesh`` on the primitive cell of ``ph``)."""
    if np.ndim(mesh) == 0:
        from phonopy.phonon.grid import length2mesh

        return np.asarray(length2mesh(float(mesh), ph.primitive.cell), dtype=int)
    return np.asarray(mesh, dtype=int)


def plain_label(s: str) -> str:
    """Plain label from phonopy/seekpath ones (``$\\mathrm{X}$``, ``GAMMA``, ``$\\Gamma$``)."""
    t = re.sub(r"\\mathrm\{([^}]*)\}", r"\1", str(s)).replace("$", "").replace("\\", "").strip()
    return "Gamma" if t.upper() in ("GAMMA", "G") else t


def segment_labels(labels: Sequence[str], connections: Sequence[bool], n_segments: int) -> list[tuple[str, str]]:
    """(start, end) point names of each band segment from phonopy's labels and path connections."""
    it = iter(labels)
    out: list[tuple[str, str]] = []
    prev_end = None
    for i in range(n_segments):
        start = prev_end if (i > 0 and connections[i - 1]) else next(it)
        end = next(it)
        out.append((plain_label(start), plain_label(end)))
        prev_end = end
    return out


def band_path(ph, npoints: int = 51):
    """phonopy's seekpath band path for the primitive cell (``auto_band_structure``'s path):
    (list of (n_q, 3) q-point arrays in reduced coordinates of the primitive reciprocal
    lattice, phonopy labels, path connections)."""
    from phonopy.phonon.band_structure import get_band_qpoints_by_seekpath

    bands, labels, connections = get_band_qpoints_by_seekpath(ph.primitive, npoints, is_const_interval=True)
    return [np.asarray(b, dtype=float) for b in bands], list(labels), list(connections)


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


@dataclass
class _Bands:
    labels: list
    distances: list
    frequencies: list
    qpoints: list
    high_symmetry: dict
    lowest_THz: float | None
    n_imaginary: int
    path: Any


def _bands(ph, npoints: int, tol: float) -> _Bands:
    """Frequencies along the seekpath path, all segments diagonalised together."""
    bands, raw_labels, connections = band_path(ph, npoints)
    if _has_nac(ph):  # per segment: one through Gamma takes its direction there (phonopy's rule)
        rec = np.linalg.inv(np.asarray(ph.primitive.cell))
        freqs = []
        for b in bands:
            through_gamma = np.linalg.norm(np.cross(rec @ b[0], rec @ b[-1])) < 1e-8
            freqs.append(frequencies_at_qpoints(ph, b, q_direction=(b[0] - b[-1]) if through_gamma else None))
    else:
        sizes = [len(b) for b in bands]
        freqs = np.split(frequencies_at_qpoints(ph, np.concatenate(bands)), np.cumsum(sizes)[:-1])
    out = _Bands([], [], [], [], {}, None, 0, (raw_labels, connections))
    for (l0, l1), q, d, f in zip(segment_labels(raw_labels, connections, len(bands)), bands,
                                 band_distances(ph, bands), freqs):
        out.labels.append([l0, l1])
        out.distances.append(d.tolist())
        out.frequencies.append(f.tolist())
        out.qpoints.append(q.tolist())
        out.high_symmetry.setdefault(l0, f[0].tolist())
        out.high_symmetry.setdefault(l1, f[-1].tolist())
        low = float(f.min())
        out.lowest_THz = low if out.lowest_THz is None else min(out.lowest_THz, low)
        out.n_imaginary += int((f < -tol).sum())
    return out


def _has_nac(ph) -> bool:
    from phonopy.harmonic.dynamical_matrix import DynamicalMatrixNAC

    return isinstance(ph.dynamical_matrix, DynamicalMatrixNAC)


def mean_group_velocity_m_s(ph, symmetry, mesh: float | Sequence[int]) -> np.ndarray:
    """|group velocity| per branch (m/s), averaged with the weights of a Gamma-centred mesh."""
    gm = mesh_object(ph, symmetry, sampling_mesh(mesh, ph))
    gv = np.linalg.norm(group_velocities(ph, gm.qpoints, symmetry), axis=-1)  # (nq, nb) THz A
    gw = np.asarray(gm.weights)
    return (gv * gw[:, None]).sum(0) / gw.sum() * THZ_A_TO_M_S


def analyse_harmonic(system: HarmonicSystem, options: AnalysisOptions) -> PhononResult:
    """Bands, DOS mesh, group velocities and imaginary-mode counts of one harmonic system."""
    ph, sym, asr = system.harmonic, system.primitive_symmetry, system.asr
    noise = asr_noise_THz(asr.violation_raw_eV_A2, ph.primitive.masses, ph.unit_conversion_factor)
    tol = imaginary_tolerance(options.imaginary_tolerance_THz, system.precision, noise)
    bands = _bands(ph, options.band_npoints, tol) if options.band_structure else _Bands([], [], [], [], {}, None, 0,
                                                                                          None)
    mesh_numbers = sampling_mesh(options.mesh, ph)
    if options.group_velocity_mesh:
        mean_gv = mean_group_velocity_m_s(ph, sym, options.group_velocity_mesh)
    else:
        mean_gv = np.full(3 * len(ph.primitive), np.nan)
    dos_mesh = mesh_object(ph, sym, mesh_numbers)
    mesh_freqs = np.asarray(dos_mesh.frequencies)
    weights = np.asarray(dos_mesh.weights)
    lowest = float(mesh_freqs.min()) if bands.lowest_THz is None else min(bands.lowest_THz, float(mesh_freqs.min()))
    n_imaginary = bands.n_imaginary + int(((mesh_freqs < -tol) * weights[:, None]).sum())
    dos_points, dos = tetrahedron_dos(dos_mesh)
    return PhononResult(
        atoms=system.atoms,
        formula=reduced_formula(system.atoms),
        method=system.method,
        n_atoms_primitive=len(ph.primitive),
        supercell_matrix=np.asarray(ph.supercell_matrix).tolist(),
        n_supercell_atoms=len(ph.supercell),
        supercell_widths_A=perpendicular_widths(ph.supercell.cell).tolist(),
        displacement_A=system.displacement_A,
        n_displaced_supercells=0 if system.displacement_A is None else len(ph.displacements),
        relaxed=system.relaxed,
        relax_converged=system.relax_converged,
        asr_violation_eV_A2=asr.violation_raw_eV_A2,
        asr_violation_enforced_eV_A2=asr.violation_enforced_eV_A2,
        gamma_acoustic_raw_THz=asr.gamma_acoustic_raw_THz,
        gamma_acoustic_THz=asr.gamma_acoustic_THz,
        asr_enforcement=asr.enforcement,
        asr_noise_THz=noise,
        band_labels=bands.labels,
        band_distances_inv_A=bands.distances,
        band_frequencies_THz=bands.frequencies,
        band_qpoints=bands.qpoints,
        high_symmetry_frequencies_THz=bands.high_symmetry,
        mesh=mesh_numbers.tolist(),
        dos_frequencies_THz=dos_points.tolist(),
        dos_states_per_THz=dos.tolist(),
        mean_group_velocity_m_s=mean_gv.tolist(),
        imaginary_modes=bool(lowest < -tol),
        n_imaginary_modes=n_imaginary,
        lowest_frequency_THz=lowest,
        imaginary_tolerance_THz=float(tol),
        polar=system.polar,
        lo_to_included=system.lo_to_included,
        lo_to_missing=system.polar and not system.lo_to_included,
        lo_to_note=lo_to_note(system.polar, system.lo_to_included),
        born_charge_sum_e=system.born_charge_sum_e,
        harmonic=ph,
        _phonopy=ph if not isinstance(ph, HarmonicModel) else None,
        primitive_symmetry=sym,
        mesh_object=dos_mesh,
        band_path=bands.path,
    )
