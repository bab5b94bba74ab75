"""Elastic stiffness tensor from stress-strain fits, clamped-ion and relaxed-ion.

Method (:func:`elastic_tensor`): every structure is relaxed (cell and ions, space group kept;
batched :func:`mlip_props.properties.relax.relax`). Each of the six Voigt strains
e_j (xx, yy, zz, yz, xz, xy; engineering shear strains, e_yz = 2 eps_yz) is applied with every
magnitude in ``strains`` (default +-0.5 % and +-1 %): cell and positions are deformed
homogeneously, x -> (1 + eps) x. The stresses of these cells are the clamped-ion response; the
ions of every strained cell of every structure are then relaxed at fixed cell in ONE batched
relax call (cells with more than one atom) and the stresses of all clamped and relaxed cells come
from ONE backend evaluation. C_ij = d sigma_i / d e_j is the slope of a straight-line fit of
each stress component against the strain magnitude (ASE's sign convention: tensile stress
positive), in GPa.

The raw 6x6 matrix is symmetrised in two steps: C -> (C + C^T)/2, then averaged over the
rotations of the crystal's point group (spglib, Cartesian frame), which projects it onto the
tensors invariant under the Laue class. ``asymmetry_GPa`` is the largest change the
symmetrisation made, so an inconsistent calculation is visible, not hidden.

Derived moduli (Voigt, Reuss and Hill bulk and shear moduli, universal anisotropy index) come
from pymatgen's ``ElasticTensor``: W. Voigt, Lehrbuch der Kristallphysik (1928); A. Reuss, Z.
Angew. Math. Mech. 9, 49 (1929); R. Hill, Proc. Phys. Soc. A 65, 349 (1952); S. I. Ranganathan
and M. Ostoja-Starzewski, Phys. Rev. Lett. 101, 055504 (2008). Mechanical stability is the
generic Born criterion: all eigenvalues of C positive (F. Mouhat and F.-X. Coudert, Phys. Rev. B
90, 224104 (2014)). Internal relaxation: e.g. the Kleinman parameter of diamond, C44 relaxed <
C44 clamped (Nielsen and Martin, Phys. Rev. B 32, 3792 (1985)).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from ase import Atoms

from ..backend.evaluate import EvaluationResult, is_oracle
from ..backend.precision import compute_precision
from ..backend.units import EV_A3_TO_GPA
from ..validation import check_number, check_numbers
from .plan import EvaluationPlan, errors_name_inputs, one_call
from .ion_newton import relax_ions_newton
from .relax import RelaxSettings, periodic_starting_points, relax, resolve_relaxation
from .result import PropertyResult

_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))

LAUE_CLASS = {
    "1": "-1", "-1": "-1", "2": "2/m", "m": "2/m", "2/m": "2/m",
    "222": "mmm", "mm2": "mmm", "mmm": "mmm",
    "4": "4/m", "-4": "4/m", "4/m": "4/m", "422": "4/mmm", "4mm": "4/mmm", "-42m": "4/mmm", "4/mmm": "4/mmm",
    "3": "-3", "-3": "-3", "32": "-3m", "3m": "-3m", "-3m": "-3m",
    "6": "6/m", "-6": "6/m", "6/m": "6/m", "622": "6/mmm", "6mm": "6/mmm", "-6m2": "6/mmm", "6/mmm": "6/mmm",
    "23": "m-3", "m-3": "m-3", "432": "m-3m", "-43m": "m-3m", "m-3m": "m-3m",
}


def voigt_strain_tensor(component: int, magnitude: float) -> np.ndarray:
    """Symmetric strain tensor (3x3) of Voigt component 0..5 with engineering magnitude."""
    a, b = _VOIGT[component]
    eps = np.zeros((3, 3))
    if a == b:
        eps[a, a] = magnitude
    else:
        eps[a, b] = eps[b, a] = 0.5 * magnitude
    return eps


def strained(atoms: Atoms, eps: np.ndarray) -> Atoms:
    """Copy of ``atoms`` with cell and positions deformed by (1 + eps) (homogeneous, ions clamped)."""
    d = np.eye(3) + eps
    s = atoms.copy()
    s.calc = None
    s.set_cell(atoms.cell[:] @ d, scale_atoms=False)
    s.set_positions(atoms.get_positions() @ d)
    return s


def _voigt_to_full(c: np.ndarray) -> np.ndarray:
    full = np.zeros((3, 3, 3, 3))
    for i, (a, b) in enumerate(_VOIGT):
        for j, (c_, d) in enumerate(_VOIGT):
            v = c[i, j]
            for p, q in ((a, b), (b, a)):
                for r, s in ((c_, d), (d, c_)):
                    full[p, q, r, s] = v
    return full


def _full_to_voigt(t: np.ndarray) -> np.ndarray:
    return np.array([[t[a, b, c, d] for (c, d) in _VOIGT] for (a, b) in _VOIGT])


def point_group_rotations(atoms: Atoms, symprec: float = 1e-5) -> tuple[np.ndarray, str, int]:
    """Cartesian rotation matrices of the point group (spglib), its symbol and the space-group number."""
    import spglib

    cell = np.asarray(atoms.cell[:])
    data = spglib.get_symmetry_dataset((cell, atoms.get_scaled_positions(), atoms.numbers), symprec=symprec)
    if data is None:
        return np.eye(3)[None], "1", 1
    a = cell.T  # columns: lattice vectors; x_cart = A x_frac
    ainv = np.linalg.inv(a)
    frac = np.unique(np.asarray(data.rotations, dtype=int), axis=0)  # several operations share a rotation
    rots = np.einsum("ij,rjk,kl->ril", a, frac.astype(float), ainv)
    return rots, str(data.pointgroup).strip(), int(data.number)


def symmetrize_stiffness(c_voigt: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Project a 6x6 stiffness (Voigt) onto the tensors invariant under ``rotations`` (Cartesian).

    (C + C^T)/2 first (major symmetry), then the group average
    C'_ijkl = <R_ia R_jb R_kc R_ld C_abcd>_R, which is the orthogonal projection onto the
    subspace of tensors with the crystal's (Laue) symmetry.
    """
    c = 0.5 * (c_voigt + c_voigt.T)
    r = np.asarray(rotations, dtype=float)
    t = np.einsum("ria,abcd->ribcd", r, _voigt_to_full(c))
    t = np.einsum("rjb,ribcd->rijcd", r, t)
    t = np.einsum("rkc,rijcd->rijkd", r, t)
    t = np.einsum("rld,rijkd->rijkl", r, t)
    return _full_to_voigt(t.mean(axis=0))


@dataclass(frozen=True)
class ElasticResult(PropertyResult):
    """Elastic constants of one structure (GPa, Voigt order xx, yy, zz, yz, xz, xy).

    ``C_GPa``: the relaxed-ion tensor, symmetrised by the Laue class (the physical one);
    ``C_relaxed_ion_GPa`` (the same), ``C_clamped_ion_GPa`` (ions deformed homogeneously);
    ``C_raw_GPa`` / ``C_clamped_ion_raw_GPa``: the fitted tensors before any symmetrisation;
    ``asymmetry_GPa``: max |C_raw - C| (relaxed and clamped), ``asymmetry_relative``: that over
    max |C|. Moduli from the symmetrised relaxed-ion tensor: Voigt/Reuss/Hill bulk and shear,
    Young's modulus E = 9KG/(3K+G) and Poisson ratio (3K-2G)/(6K+2G) from the Hill averages,
    the universal anisotropy index A^U = 5 G_V/G_R + K_V/K_R - 6. ``born_stable``: all
    eigenvalues of C positive; ``fit_residual_GPa``: largest deviation of a stress from its
    straight-line fit (non-linearity); ``residual_stress_GPa``: largest stress component of the
    unstrained reference cell; ``max_ion_displacement_A``: largest ion relaxation in a strained
    cell; ``converged``: the structure and every strained cell relaxed within their limits;
    ``residual_stress_ok``: the reference's residual stress is below the plan's
    ``max_residual_stress_GPa`` (default 0.1 GPa). Above it the stress-strain slopes are those of
    a pre-stressed crystal (they differ from the elastic constants by terms of the order of the
    stress) and ``notes`` says so.

    How it was computed: ``strain_patterns``: the Voigt components that were strained (all six,
    or the symmetry-reduced set whose point-group images span the six strains);
    ``n_strained_cells``: patterns x magnitudes; ``ion_optimizer``: ``"fire"``, ``"newton"``
    (chord-Newton steps with the reference cell's Hessian) or ``"none"`` (clamped ions);
    ``ion_relax_steps``: optimizer steps summed over the strained cells;
    ``ion_residual_force_eV_A``: the largest residual force left in a relaxed strained cell.
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = (
        "C_GPa", "C_clamped_ion_GPa", "bulk_modulus_hill_GPa", "shear_modulus_hill_GPa", "born_stable",
        "residual_stress_GPa", "residual_stress_ok", "ion_residual_force_eV_A", "relax_converged", "converged",)

    atoms: Atoms
    C_GPa: np.ndarray
    C_relaxed_ion_GPa: np.ndarray
    C_clamped_ion_GPa: np.ndarray
    C_raw_GPa: np.ndarray
    C_clamped_ion_raw_GPa: np.ndarray
    asymmetry_GPa: float
    asymmetry_relative: float
    point_group: str
    laue_class: str
    spacegroup_number: int
    bulk_modulus_voigt_GPa: float
    bulk_modulus_reuss_GPa: float
    bulk_modulus_hill_GPa: float
    shear_modulus_voigt_GPa: float
    shear_modulus_reuss_GPa: float
    shear_modulus_hill_GPa: float
    youngs_modulus_GPa: float
    poisson_ratio: float
    universal_anisotropy: float
    eigenvalues_GPa: np.ndarray
    born_stable: bool
    clamped_ion_born_stable: bool
    strains: np.ndarray
    fit_residual_GPa: float
    residual_stress_GPa: float
    ions_relaxed: bool
    max_ion_displacement_A: float
    relax_converged: bool
    converged: bool
    formula: str = ""
    residual_stress_ok: bool = True
    notes: tuple[str, ...] = ()
    strain_patterns: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    n_strained_cells: int = 0
    ion_residual_force_eV_A: float = 0.0
    ion_relax_steps: int = 0
    ion_optimizer: str = "fire"


def _moduli(c: np.ndarray) -> dict[str, float]:
    from pymatgen.analysis.elasticity import ElasticTensor

    nan = float("nan")
    out = dict(bulk_modulus_voigt_GPa=nan, bulk_modulus_reuss_GPa=nan, bulk_modulus_hill_GPa=nan,
               shear_modulus_voigt_GPa=nan, shear_modulus_reuss_GPa=nan, shear_modulus_hill_GPa=nan,
               youngs_modulus_GPa=nan, poisson_ratio=nan, universal_anisotropy=nan)
    et = ElasticTensor.from_voigt(c)
    out["bulk_modulus_voigt_GPa"] = float(et.k_voigt)
    out["shear_modulus_voigt_GPa"] = float(et.g_voigt)
    if abs(np.linalg.det(c)) > 1e-12 * max(np.abs(c).max(), 1e-30) ** 6:
        kr, gr = float(et.k_reuss), float(et.g_reuss)
        kh, gh = 0.5 * (et.k_voigt + kr), 0.5 * (et.g_voigt + gr)
        out.update(bulk_modulus_reuss_GPa=kr, shear_modulus_reuss_GPa=gr, bulk_modulus_hill_GPa=float(kh),
                   shear_modulus_hill_GPa=float(gh), universal_anisotropy=float(et.universal_anisotropy))
        if 3 * kh + gh != 0:
            out["youngs_modulus_GPa"] = float(9 * kh * gh / (3 * kh + gh))
            out["poisson_ratio"] = float((3 * kh - 2 * gh) / (6 * kh + 2 * gh))
    return out


def fit_stiffness(strains: np.ndarray, stress: np.ndarray) -> tuple[np.ndarray, float]:
    """stress: (6 components j, n strains, 6 stress comps) eV/A^3 -> C (6x6 GPa), max residual (GPa)."""
    c = np.zeros((6, 6))
    worst = 0.0
    x = np.asarray(strains)
    for j in range(6):
        coef = np.polyfit(x, stress[j], 1)  # (2, 6)
        c[:, j] = coef[0]
        worst = max(worst, float(np.abs(np.polyval(coef, x[:, None]) - stress[j]).max()))
    return c * EV_A3_TO_GPA, worst * EV_A3_TO_GPA


def _strain_voigt(eps: np.ndarray) -> np.ndarray:
    """Voigt vector (engineering shear strains) of symmetric 3x3 strain tensors (..., 3, 3)."""
    return np.stack([eps[..., a, b] * (1.0 if a == b else 2.0) for a, b in _VOIGT], axis=-1)


def _stress_voigt(sig: np.ndarray) -> np.ndarray:
    return np.stack([sig[..., a, b] for a, b in _VOIGT], axis=-1)


def _stress_33(v: np.ndarray) -> np.ndarray:
    out = np.zeros(v.shape[:-1] + (3, 3))
    for i, (a, b) in enumerate(_VOIGT):
        out[..., a, b] = out[..., b, a] = v[..., i]
    return out


def _images(component: int, rotations: np.ndarray) -> np.ndarray:
    """Voigt strain vectors R e R^T of the unit strain ``component`` under every rotation."""
    e = voigt_strain_tensor(component, 1.0)
    return _strain_voigt(np.einsum("rai,ij,rbj->rab", rotations, e, rotations))


def symmetry_strain_patterns(rotations: np.ndarray, tol: float = 1e-6) -> list[int]:
    """The fewest Voigt strain components (taken in order xx, yy, zz, yz, xz, xy) whose images under
    the point group ``rotations`` (Cartesian) span all six strains: the stress response to the
    others follows from theirs by symmetry, sigma(R e R^T) = R sigma(e) R^T (as phonopy needs
    only the symmetry-inequivalent displacements). Cubic: xx and yz; hexagonal and trigonal: xx,
    zz, yz; tetragonal (4/mmm): xx, zz, yz, xy; triclinic: all six."""
    rotations = np.asarray(rotations, dtype=float)
    chosen: list[int] = []
    span, rank = np.zeros((0, 6)), 0
    for j in range(6):
        trial = np.vstack([span, _images(j, rotations)])
        if np.linalg.matrix_rank(trial, tol=tol) > rank:
            chosen.append(j)
            span, rank = trial, np.linalg.matrix_rank(trial, tol=tol)
        if rank == 6:
            break
    return chosen


def fit_stiffness_symmetry(strains: np.ndarray, stress: np.ndarray, patterns: Sequence[int],
                           rotations: np.ndarray) -> tuple[np.ndarray, float]:
    """C (6x6 GPa) and the largest line-fit residual (GPa) from the stresses of the strained
    ``patterns`` only: stress (len(patterns), n strains, 6) eV/A^3. Each pattern's slope d sigma / d e
    and every rotated copy (R e R^T, R sigma R^T) are one equation C e = sigma; C is their
    least-squares solution (exact when the images span the six strains, as the patterns of
    :func:`symmetry_strain_patterns` do)."""
    x = np.asarray(strains)
    rotations = np.asarray(rotations, dtype=float)
    e_rows, s_rows, worst = [], [], 0.0
    for i, j in enumerate(patterns):
        coef = np.polyfit(x, stress[i], 1)
        worst = max(worst, float(np.abs(np.polyval(coef, x[:, None]) - stress[i]).max()))
        sig = _stress_33(coef[0])
        e_rows.append(_images(j, rotations))
        s_rows.append(_stress_voigt(np.einsum("rai,ij,rbj->rab", rotations, sig, rotations)))
    e_all, s_all = np.vstack(e_rows), np.vstack(s_rows)
    if np.linalg.matrix_rank(e_all, tol=1e-6) < 6:
        raise ValueError(f"strain patterns {list(patterns)} and their symmetry images do not span the six strains")
    c_t = np.linalg.lstsq(e_all, s_all, rcond=None)[0]  # S = E C^T
    return c_t.T * EV_A3_TO_GPA, worst * EV_A3_TO_GPA


@dataclass
class ElasticPlan(EvaluationPlan):
    """The strained cells of every structure (its strain ``patterns`` x ``len(strains)``
    magnitudes, clamped ions), then the ion-relaxed copies of those that were relaxed, then the
    unstrained references (for their residual stress and force). ``analyse`` fits the
    stress-strain slopes."""

    references: list[Atoms] = field(default_factory=list)
    strains: np.ndarray = field(default_factory=lambda: np.zeros(0))
    symprec: float = 1e-5
    ions_relaxed: list[bool] = field(default_factory=list)
    relaxed_indices: list[int] = field(default_factory=list)
    relax_converged: list[bool] = field(default_factory=list)
    ions_converged: list[bool] = field(default_factory=list)
    max_ion_displacement_A: list[float] = field(default_factory=list)
    max_residual_stress_GPa: float = 0.1
    patterns: list[list[int]] = field(default_factory=list)
    ion_residual_force_eV_A: list[float] = field(default_factory=list)
    ion_relax_steps: list[int] = field(default_factory=list)
    ion_optimizer: str = "fire"

    def _starts(self) -> list[int]:
        n_s = len(self.strains)
        pats = self.patterns or [list(range(6))] * len(self.references)
        return list(np.cumsum([0] + [len(p) * n_s for p in pats]))

    def input_index(self, k: int) -> int:
        starts = self._starts()
        n_clamped, n_relaxed = starts[-1], len(self.relaxed_indices)
        if k < n_clamped:
            return int(np.searchsorted(starts, k, side="right") - 1)
        if k < n_clamped + n_relaxed:
            return self.input_index(self.relaxed_indices[k - n_clamped])
        return k - n_clamped - n_relaxed

    def analyse(self, answers: EvaluationResult) -> list[ElasticResult]:
        stress = np.asarray(answers.stress_eV_A3, dtype=float)
        x = self.strains
        n_s = len(x)
        starts = self._starts()
        nc, nx = starts[-1], len(self.relaxed_indices)
        s_clamped = stress[:nc]
        s_relaxed = s_clamped.copy()
        s_relaxed[self.relaxed_indices] = stress[nc: nc + nx]
        s_ref = np.abs(stress[nc + nx:]).max(axis=1) * EV_A3_TO_GPA
        results = []
        for b, a in enumerate(self.references):
            pat = self.patterns[b] if self.patterns else list(range(6))
            sl = slice(starts[b], starts[b + 1])
            rots, pg, sg = point_group_rotations(a, self.symprec)
            if len(pat) == 6:
                c_cl, res_cl = fit_stiffness(x, s_clamped[sl].reshape(6, n_s, 6))
                c_rx, res_rx = fit_stiffness(x, s_relaxed[sl].reshape(6, n_s, 6))
            else:
                c_cl, res_cl = fit_stiffness_symmetry(x, s_clamped[sl].reshape(len(pat), n_s, 6), pat, rots)
                c_rx, res_rx = fit_stiffness_symmetry(x, s_relaxed[sl].reshape(len(pat), n_s, 6), pat, rots)
            cs_cl = symmetrize_stiffness(c_cl, rots)
            cs_rx = symmetrize_stiffness(c_rx, rots)
            asym = max(np.abs(c_rx - cs_rx).max(), np.abs(c_cl - cs_cl).max())
            eig = np.linalg.eigvalsh(cs_rx)
            stress_ok = bool(s_ref[b] <= self.max_residual_stress_GPa)
            notes = () if stress_ok else (
                f"residual stress {s_ref[b]:.3g} GPa of the unstrained cell exceeds {self.max_residual_stress_GPa:g} GPa:"
                " the slopes are stress-strain coefficients of a pre-stressed crystal, not its elastic constants"
                " (relax the structure first)",)
            results.append(ElasticResult(
                atoms=a, C_GPa=cs_rx, C_relaxed_ion_GPa=cs_rx, C_clamped_ion_GPa=cs_cl, C_raw_GPa=c_rx,
                C_clamped_ion_raw_GPa=c_cl, asymmetry_GPa=float(asym),
                asymmetry_relative=float(asym / max(np.abs(cs_rx).max(), 1e-30)), point_group=pg,
                laue_class=LAUE_CLASS.get(pg, "?"), spacegroup_number=sg, eigenvalues_GPa=eig,
                born_stable=bool(eig.min() > 0), clamped_ion_born_stable=bool(np.linalg.eigvalsh(cs_cl).min() > 0),
                strains=x, fit_residual_GPa=max(res_cl, res_rx), residual_stress_GPa=float(s_ref[b]),
                ions_relaxed=self.ions_relaxed[b], max_ion_displacement_A=self.max_ion_displacement_A[b],
                relax_converged=self.relax_converged[b],
                converged=bool(self.relax_converged[b] and self.ions_converged[b]),
                formula=a.get_chemical_formula(), residual_stress_ok=stress_ok, notes=notes,
                strain_patterns=tuple(int(j) for j in pat), n_strained_cells=len(pat) * n_s,
                ion_residual_force_eV_A=self.ion_residual_force_eV_A[b] if self.ion_residual_force_eV_A else 0.0,
                ion_relax_steps=self.ion_relax_steps[b] if self.ion_relax_steps else 0,
                ion_optimizer=self.ion_optimizer if self.ions_relaxed[b] else "none", **_moduli(cs_rx)))
        return results


_PATTERN_CHOICES = ("auto", "all", "symmetry")
_OPTIMIZER_CHOICES = ("auto", "fire", "newton")


def plan_elastic(
    potential: Any,
    structures: Any,
    *,
    strains: Sequence[float] = (-0.01, -0.005, 0.005, 0.01),
    relaxation: RelaxSettings | dict | bool | None = None,
    symprec: float = 1e-5,
    max_residual_stress_GPa: float = 0.1,
    strain_patterns: str = "auto",
    ion_optimizer: str = "auto",
    dtype: Any = None,
    device: Any = None,
) -> ElasticPlan:
    """Plan the elastic tensors of one structure or many (see :func:`elastic_tensor`): relax the
    references (batched), strain each, relax the ions of every strained cell (batched), and
    return the cells whose stresses are needed."""
    check_numbers("strains", strains, minimum=-0.1, maximum=0.1)
    check_number("symprec", symprec, minimum=0.0, exclusive_minimum=True)
    x = np.asarray(strains, dtype=float)
    if x.ndim != 1 or len(np.unique(x)) < 2 or np.any(np.abs(x) > 0.1) or not np.isfinite(x).all():
        raise ValueError(f"strains must hold at least two distinct magnitudes within +-0.1, got {list(strains)}")
    check_number("max_residual_stress_GPa", max_residual_stress_GPa, minimum=0.0, exclusive_minimum=True)
    if strain_patterns not in _PATTERN_CHOICES:
        raise ValueError(f"strain_patterns must be one of {_PATTERN_CHOICES}, got {strain_patterns!r}")
    if ion_optimizer not in _OPTIMIZER_CHOICES:
        raise ValueError(f"ion_optimizer must be one of {_OPTIMIZER_CHOICES}, got {ion_optimizer!r}")
    settings = resolve_relaxation(relaxation)
    kw = dict(dtype=dtype or torch.float64, device=device)
    single, base, relax_ok = periodic_starting_points(potential, structures, "elastic constants", settings, **kw)
    reduced = compute_precision(potential, kw["dtype"]) != "float64"  # model calls are what costs there
    if strain_patterns == "symmetry" or (strain_patterns == "auto" and reduced):
        patterns = [symmetry_strain_patterns(point_group_rotations(a, symprec)[0]) for a in base]
    else:
        patterns = [list(range(6)) for _ in base]
    newton = ion_optimizer == "newton" or (ion_optimizer == "auto" and reduced and not is_oracle(potential))

    clamped, owner = [], []
    for b, a in enumerate(base):
        for j in patterns[b]:
            for m in x:
                clamped.append(strained(a, voigt_strain_tensor(j, m)))
                owner.append(b)
    ions = [settings.ions_for(a) for a in base]
    to_relax = [k for k in range(len(clamped)) if ions[owner[k]]]
    relaxed: list[Atoms] = []
    ion_ok = [True] * len(base)
    disp = [0.0] * len(base)
    resid = [0.0] * len(base)
    nsteps = [0] * len(base)
    if to_relax:
        ion_settings = dataclasses.replace(settings, cell=False, keep_symmetry=False)  # fixed cell: ions only
        with errors_name_inputs(lambda i: (owner[to_relax[i]], f"strained cell #{to_relax[i]}")):
            if newton:
                relaxed_cells = relax_ions_newton(potential, [clamped[k] for k in to_relax], base,
                                                  [owner[k] for k in to_relax], ion_settings, **kw)
            else:
                relaxed_cells = relax(potential, [clamped[k] for k in to_relax], settings=ion_settings, **kw)
        for k, r in zip(to_relax, relaxed_cells):
            b = owner[k]
            relaxed.append(r.atoms)
            ion_ok[b] = ion_ok[b] and r.converged
            d = r.atoms.get_positions() - clamped[k].get_positions()
            disp[b] = max(disp[b], float(np.linalg.norm(d, axis=1).max()))
            resid[b] = max(resid[b], r.max_force_eV_A)
            nsteps[b] += r.n_steps
    return ElasticPlan(structures=clamped + relaxed + list(base), quantities=("energy", "stress"),
                       single=single, references=base, strains=x, symprec=symprec, ions_relaxed=ions,
                       relaxed_indices=to_relax, relax_converged=list(relax_ok), ions_converged=ion_ok,
                       max_ion_displacement_A=disp, max_residual_stress_GPa=float(max_residual_stress_GPa),
                       patterns=patterns, ion_residual_force_eV_A=resid, ion_relax_steps=nsteps,
                       ion_optimizer="newton" if newton else "fire")


@one_call(plan_elastic)
def elastic_tensor(potential: Any, structures: Any, **options: Any) -> ElasticResult | list[ElasticResult]:
    """Elastic stiffness tensor (6x6 Voigt, GPa) of one structure or many (batched).

    ``strains``: engineering strain magnitudes applied to each of the six Voigt components (at
    least two distinct values; default -1, -0.5, +0.5, +1 %). ``relaxation``
    (:class:`~mlip_props.properties.relax.RelaxSettings`, a dict of its fields, or False): the
    references are relaxed first (cell and ions, space group kept; 1e-4 eV/A, 1e-3 GPa by default)
    and the ions of every strained cell (``ions``; default: cells with more than one atom).
    ``symprec``: spglib tolerance (A) for the point group used to symmetrise.
    ``max_residual_stress_GPa``: above this residual stress of the unstrained cell the result is
    flagged (``residual_stress_ok=False``, with a note). Returns an
    :class:`ElasticResult` (or a list); see the module docstring for the method
    (:func:`plan_elastic`, then :meth:`ElasticPlan.analyse`).

    Raises ``ValueError`` naming the structure index for structures not periodic in 3D.
    """
