"""Force constants: from Hessian rows or displaced-supercell forces, the acoustic sum rule
(checked on the raw constants, then enforced), and :class:`HarmonicModel`, the lean stand-in for
phonopy's ``Phonopy`` on the Hessian route.

Force constants Phi_{i a, j b} = d^2 E / du_{i a} du_{j b} in eV/A^2, phonopy's layouts: full
(N, N, 3, 3) or compact (n_primitive, N, 3, 3) (the rows of the primitive-cell atoms), atoms in
phonopy's supercell order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


# ---------------------------------------------------------------------------------------------
# frequencies of a harmonic model
# ---------------------------------------------------------------------------------------------
def frequencies_at_qpoints(ph, qpoints: np.ndarray, q_direction: Any = None) -> np.ndarray:
    """Frequencies (THz, ascending; imaginary as negative) of a phonopy object at many q-points:
    all dynamical matrices from phonopy's batched builder in one call, eigenvalues from one
    batched ``numpy.linalg.eigvalsh`` (the same numbers as phonopy's per-q band-structure loop).
    ``q_direction`` (reduced coordinates): the direction of approach to Gamma, used by the
    non-analytical correction at q = 0 exactly (LO-TO splitting; ignored without NAC)."""
    from phonopy.harmonic.dynamical_matrix import get_dynamical_matrices_at_qpoints

    q = np.ascontiguousarray(np.atleast_2d(qpoints), dtype="double")
    if ph.dynamical_matrix is None:
        raise RuntimeError("phonopy object without force constants")
    direction = None if q_direction is None else np.ascontiguousarray(q_direction, dtype="double")
    ev = np.linalg.eigvalsh(get_dynamical_matrices_at_qpoints(ph.dynamical_matrix, q,
                                                              nac_q_direction=direction)).real
    return np.sqrt(np.abs(ev)) * np.sign(ev) * ph.unit_conversion_factor


def gamma_acoustic_frequencies(ph) -> np.ndarray:
    """The three Gamma frequencies closest to zero (THz, ascending): the acoustic modes, zero when
    the acoustic sum rule holds."""
    f = frequencies_at_qpoints(ph, np.zeros((1, 3)))[0]
    return np.sort(f[np.argsort(np.abs(f))[:3]])


# ---------------------------------------------------------------------------------------------
# force constants from the answers of a plan
# ---------------------------------------------------------------------------------------------
def force_constants_from_hessian(hessian_rows_eV_A2: np.ndarray, n_atoms: int) -> np.ndarray:
    """Phonopy force constants (n_rows, N, 3, 3) from Hessian rows (3 n_rows, 3 N): rows of the
    primitive atoms give the compact array, all rows the full one. The supercell is phonopy's and
    was evaluated in its atom order, so Phi[i, j, a, b] = H[3 i + a, 3 j + b]."""
    h = np.asarray(hessian_rows_eV_A2)
    return np.ascontiguousarray(h.reshape(h.shape[0] // 3, 3, n_atoms, 3).transpose(0, 2, 1, 3))


def force_constants_from_displacements(ph, perfect_forces_eV_A: np.ndarray,
                                       displaced_forces_eV_A: Sequence[np.ndarray]) -> np.ndarray:
    """Full force constants (N, N, 3, 3) by phonopy's traditional fit of the forces of its
    displaced supercells, the perfect supercell's residual forces subtracted (sets them on
    ``ph``, a ``Phonopy`` object with its displacements)."""
    ph.forces = np.array([f - perfect_forces_eV_A for f in displaced_forces_eV_A])
    ph.produce_force_constants(calculate_full_force_constants=True, fc_calculator="traditional", show_drift=False)
    return np.array(ph.force_constants)


def set_force_constants(ph, fc: np.ndarray) -> None:
    """Give a ``Phonopy`` object or a :class:`HarmonicModel` its force constants."""
    if isinstance(ph, HarmonicModel):
        ph.set_force_constants(fc)
    else:
        ph.force_constants = fc


# ---------------------------------------------------------------------------------------------
# acoustic sum rule
# ---------------------------------------------------------------------------------------------
def asr_violation(force_constants: np.ndarray) -> float:
    """Largest |sum_j Phi_{i a, j b}| (and over i, for the transposed rule) in eV/A^2."""
    fc = np.asarray(force_constants)
    if fc.shape[0] != fc.shape[1]:  # compact (n_primitive, N, 3, 3): only the row sums exist
        return float(np.abs(fc.sum(axis=1)).max())
    return float(max(np.abs(fc.sum(axis=1)).max(), np.abs(fc.sum(axis=0)).max()))


def symfc_available() -> bool:
    """Whether symfc (the symmetry-adapted force-constant projector) is installed."""
    try:
        import symfc  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_enforcement(how: str, method: str) -> str:
    """``asr_enforcement`` as ``"symfc"``, ``"phonopy"`` or ``"none"``: ``"auto"`` is symfc's
    projector for finite displacements when symfc is installed, phonopy's symmetrisation otherwise."""
    if how == "auto":
        return "symfc" if (method == "displacement" and symfc_available()) else "phonopy"
    if how not in ("symfc", "phonopy", "none"):
        raise ValueError(f"asr_enforcement must be 'auto', 'symfc', 'phonopy' or 'none', got {how!r}")
    if how == "symfc" and not symfc_available():
        raise ValueError("asr_enforcement='symfc' but symfc is not installed (pip install symfc)")
    return how


def enforce_acoustic_sum_rule(ph, how: str) -> str:
    """Enforce the acoustic sum rule on the force constants of ``ph`` in place (``how``:
    ``"symfc"``, ``"phonopy"`` or ``"none"``); returns a description of what was done."""
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


@dataclass(frozen=True)
class AcousticSumRuleCheck:
    """The acoustic sum rule (translational invariance, sum_j Phi_{i a, j b} = 0) before and after
    enforcement: largest violation (eV/A^2) and the three Gamma acoustic frequencies (THz)."""

    violation_raw_eV_A2: float
    violation_enforced_eV_A2: float
    gamma_acoustic_raw_THz: list
    gamma_acoustic_THz: list
    enforcement: str


def apply_force_constants(ph, raw_fc: np.ndarray, how: str) -> AcousticSumRuleCheck:
    """Set the raw force constants on ``ph``, check the acoustic sum rule, enforce it (``how``
    as :func:`resolve_enforcement` returns it) and check again."""
    set_force_constants(ph, raw_fc)
    viol_raw = asr_violation(raw_fc)
    gamma_raw = gamma_acoustic_frequencies(ph)
    used = enforce_acoustic_sum_rule(ph, how)
    return AcousticSumRuleCheck(
        violation_raw_eV_A2=viol_raw, violation_enforced_eV_A2=asr_violation(ph.force_constants),
        gamma_acoustic_raw_THz=np.asarray(gamma_raw).tolist(),
        gamma_acoustic_THz=np.asarray(gamma_acoustic_frequencies(ph)).tolist(), enforcement=used)


# ---------------------------------------------------------------------------------------------
# the lean harmonic model of the Hessian route
# ---------------------------------------------------------------------------------------------
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
        #: phonopy ``nac_params`` (Born charges of the primitive atoms, dielectric tensor) or None
        self.nac_params = None

    def set_force_constants(self, fc: np.ndarray) -> None:
        from phonopy.harmonic.dynamical_matrix import get_dynamical_matrix

        self.dynamical_matrix = get_dynamical_matrix(np.asarray(fc, dtype="double", order="C"), self.supercell,
                                                     self.primitive, nac_params=self.nac_params)
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

    def to_phonopy(self) -> Any:
        """The equivalent phonopy ``Phonopy`` object (supercell symmetry search skipped), with
        these force constants."""
        from phonopy import Phonopy

        ph = Phonopy(self.unitcell, supercell_matrix=self.supercell_matrix, primitive_matrix=self.primitive_matrix,
                     symprec=self.symprec, is_symmetry=False)
        if self.force_constants is not None:
            ph.force_constants = self.force_constants
        if self.nac_params is not None:
            ph.nac_params = self.nac_params
        return ph


def hessian_rows(potential: Any, structures: Sequence[Any], rows: Sequence[Sequence[int]], *, dtype: Any = None,
                 device: Any = None) -> list[np.ndarray]:
    """Force-constant rows of many structures in phonopy's layout: one array (len(rows[b]), n_b,
    3, 3) ``[i, j, a, b] = d2E/dx_{rows[i] a} dx_{j b}`` (eV/A^2) per structure, from the
    backend's Hessian-row engine (:func:`~mlip_props.backend.hessian_rows.evaluate_hessian_rows`)."""
    from ...backend.hessian_rows import evaluate_hessian_rows

    res = evaluate_hessian_rows(potential, structures, rows, dtype=dtype, device=device)
    return [force_constants_from_hessian(h, int(n)) for h, n in zip(res.hessians_eV_A2, res.n_atoms)]


# ---------------------------------------------------------------------------------------------
# symmetry-reduced Hessian rows
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowExpansion:
    """How the compact force constants of all primitive atoms follow from the rows of the
    symmetry-independent ones: ``computed`` (positions in phonopy's primitive order whose rows
    are evaluated), and per primitive atom j: ``source[j]`` (its row in the evaluated block),
    ``rotation[j]`` (3x3 Cartesian R of a space-group operation mapping the source atom onto j)
    and ``permutation[j]`` (supercell atom l -> image of l under that operation), so that
    Phi(j, perm[l]) = R Phi(source, l) R^T."""

    computed: np.ndarray
    source: np.ndarray
    rotation: np.ndarray
    permutation: np.ndarray

    def expand(self, rows_fc: np.ndarray) -> np.ndarray:
        """Compact force constants (n_primitive, N, 3, 3) from the evaluated rows (n_computed, N, 3, 3)."""
        out = np.empty((len(self.source),) + rows_fc.shape[1:], dtype=float)
        for j, (s, r, perm) in enumerate(zip(self.source, self.rotation, self.permutation)):
            out[j, perm] = np.einsum("ab,lbc,dc->lad", r, rows_fc[s], r)
        return out


def row_expansion(harmonic: Any, symmetry: Any, tol_A: float = 1e-3) -> RowExpansion | None:
    """The :class:`RowExpansion` of a harmonic model (``HarmonicModel`` or ``Phonopy``) from the
    primitive cell's phonopy ``Symmetry``: the independent atoms' rows suffice, the others are
    rotated copies (a space-group operation maps the crystal, and so its supercell, onto itself).
    ``None`` when nothing is saved (every primitive atom independent) or when an operation does
    not map the supercell onto itself within ``tol_A`` (then all rows are evaluated)."""
    prim, sc = harmonic.primitive, harmonic.supercell
    try:
        ds = symmetry.dataset
        equivalent = np.asarray(ds.equivalent_atoms)
        rotations, translations = np.asarray(ds.rotations), np.asarray(ds.translations)
    except Exception:  # noqa: BLE001 - no symmetry information: evaluate every row
        return None
    if len(equivalent) != len(prim) or len(set(equivalent.tolist())) == len(prim):
        return None
    lat = np.asarray(prim.cell, dtype=float)  # rows: primitive lattice vectors
    sc_lat = np.asarray(sc.cell, dtype=float)
    r_sc = np.asarray(sc.scaled_positions) @ sc_lat  # Cartesian supercell positions
    x_sc = r_sc @ np.linalg.inv(lat)  # in primitive fractional coordinates
    p2s = np.asarray(prim.p2s_map)
    independent = sorted(set(equivalent.tolist()))
    slot = {a: k for k, a in enumerate(independent)}
    source, rotation, permutation = [], [], []
    numbers = np.asarray(sc.numbers)
    for j in range(len(prim)):
        i = int(equivalent[j])
        if i == j:
            source.append(slot[j]), rotation.append(np.eye(3)), permutation.append(np.arange(len(sc)))
            continue
        for rot, t in zip(rotations, translations):
            d = x_sc[p2s[j]] - (rot @ x_sc[p2s[i]] + t)
            if np.abs(d - np.rint(d)).max() < 1e-4:
                t = t + np.rint(d)  # maps supercell atom p2s[i] onto p2s[j] itself, not an image
                break
        else:
            return None
        x_new = x_sc @ rot.T + t
        s_new = (x_new @ lat) @ np.linalg.inv(sc_lat)
        diff = s_new[:, None, :] - np.asarray(sc.scaled_positions)[None, :, :]
        diff -= np.rint(diff)
        dist = np.linalg.norm(diff @ sc_lat, axis=-1)
        perm = dist.argmin(axis=1)
        if dist[np.arange(len(sc)), perm].max() > tol_A or len(set(perm.tolist())) != len(sc) \
                or not np.array_equal(numbers[perm], numbers):
            return None
        if perm[p2s[i]] != p2s[j]:
            return None
        source.append(slot[i])
        rotation.append(lat.T @ rot @ np.linalg.inv(lat.T))  # Cartesian: r = x lat
        permutation.append(perm)
    return RowExpansion(computed=np.asarray(independent), source=np.asarray(source), rotation=np.asarray(rotation),
                        permutation=np.asarray(permutation))
