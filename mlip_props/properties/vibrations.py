"""Harmonic vibrations of molecules: frequencies, normal modes, zero-point energy, thermochemistry.

Method (Wilson, Decius, Cross, *Molecular Vibrations* (1955); Ochterski, "Vibrational analysis in
Gaussian" (1999)):

1. Plan (:func:`plan_vibrations`): tight batched relaxation of all molecules
   (:func:`mlip_props.properties.relax.relax`, FIRE, then batched Newton steps for torch
   potentials; :data:`VIBRATIONS_RELAXATION`); convergence is reported, not enforced.
2. Evaluate: Cartesian Hessians H (eV/A^2) of all relaxed molecules in ONE backend call (autograd
   for torch potentials, central finite differences of forces for oracles).
3. Analyse (:meth:`VibrationsPlan.analyse`), per molecule:

   a. Mass weighting H_mw = M^-1/2 H M^-1/2 (masses in amu from the ``Atoms``, i.e. ASE's
      standard atomic weights unless the user sets other masses).
   b. Eckart projection: the three translations sqrt(m_i) e_a and three infinitesimal rotations
      sqrt(m_i) (e_a x (x_i - x_com)) are orthonormalised (5 independent for linear molecules, 6
      otherwise); H_mw is diagonalised in their orthogonal complement, which removes rigid-body
      motion exactly.
   c. omega = sqrt(lambda) -> cm^-1 (imaginary modes as negative numbers, counted in
      ``n_imaginary_modes``), Cartesian normal modes (mass-weighted eigenvectors divided by sqrt(m),
      normalised), zero-point energy sum(hbar omega)/2 over real modes.
   d. Ideal-gas thermochemistry with :class:`ase.thermochemistry.IdealGasThermo` (rigid rotor,
      harmonic oscillator, ideal gas) at ``temperature_K`` and ``pressure_Pa``; the rotational
      symmetry number comes from pymatgen's point-group analysis unless given.

``rigid_body_frequencies_cm1`` are the frequencies of the projected Hessian in the rigid-body
subspace (zero up to round-off when the projector is right); ``rigid_body_residual_cm1`` is the
largest |frequency| of the *unprojected* Hessian in that subspace, a measure of how far the
structure is from a stationary point (and of rotational invariance of the potential).
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from ase import Atoms, units
from ase.thermochemistry import IdealGasThermo

from ..backend.evaluate import EvaluationResult, evaluate, is_oracle, prepare_structures
from ..backend.inputs import structure_list
from ..potentials.committee import mean_over_members
from ..validation import check_number
from .plan import EvaluationPlan, one_call
from .relax import RelaxSettings, relax, resolve_relaxation
from .result import PropertyResult

_HBAR = units._hbar * units.J * units.second  # eV * (ASE time)
_EV_TO_J_MOL = units._e * units._Nav


@dataclass(frozen=True)
class VibrationsResult(PropertyResult):
    """Harmonic vibrational analysis of one molecule.

    ``frequencies_cm1``: the 3N-5 (linear) or 3N-6 vibrational frequencies, ascending, imaginary
    ones negative; ``normal_modes``: (n_modes, N, 3) Cartesian displacement patterns (unit
    norm); ``zero_point_energy_eV``; thermochemistry at ``temperature_K``/``pressure_Pa``:
    ``enthalpy_eV`` (H = E_elec + ZPE + thermal), ``entropy_J_molK``, ``gibbs_energy_eV``.
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = (
        "energy_eV", "frequencies_cm1", "zero_point_energy_eV", "n_imaginary_modes", "imaginary_modes",
        "relax_converged", "max_force_eV_A", "rigid_body_residual_cm1", "enthalpy_eV", "entropy_J_molK",
        "gibbs_energy_eV")

    atoms: Atoms
    energy_eV: float
    relax_converged: bool
    max_force_eV_A: float
    linear: bool
    frequencies_cm1: list[float]
    normal_modes: list
    n_imaginary_modes: int
    imaginary_modes: bool
    rigid_body_frequencies_cm1: list[float]
    rigid_body_residual_cm1: float
    zero_point_energy_eV: float
    symmetry_number: int
    spin: float
    temperature_K: float
    pressure_Pa: float
    enthalpy_eV: float | None
    entropy_J_molK: float | None
    gibbs_energy_eV: float | None
    masses_amu: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def write_modes(self, filename: str, modes: Sequence[int] | None = None, amplitude_A: float = 0.3,
                    n_frames: int = 20) -> str:
        """Write normal modes as an ASE trajectory (open with ``ase gui filename``): for each mode
        (index into ``frequencies_cm1``; default all) one sine period of ``n_frames`` frames whose
        largest atomic displacement is ``amplitude_A``. Returns the file name."""
        from ase.io import write

        idx = range(len(self.frequencies_cm1)) if modes is None else modes
        frames = []
        base = self.atoms.get_positions()
        for m in idx:
            v = np.asarray(self.normal_modes[m])
            v = v / max(np.linalg.norm(v, axis=1).max(), 1e-12)
            for t in range(n_frames):
                a = self.atoms.copy()
                a.calc = None
                a.set_positions(base + amplitude_A * np.sin(2 * np.pi * t / n_frames) * v)
                a.info["mode"] = int(m)
                a.info["frequency_cm1"] = float(self.frequencies_cm1[m])
                frames.append(a)
        write(filename, frames)
        return filename


def rigid_body_basis(positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Orthonormal mass-weighted translation+rotation vectors, shape (3N, 5 or 6) (Eckart)."""
    n = len(masses)
    sm = np.sqrt(masses)
    x = positions - (masses[:, None] * positions).sum(0) / masses.sum()
    vecs = []
    for a in range(3):
        t = np.zeros((n, 3))
        t[:, a] = sm
        vecs.append(t.ravel())
    for a in range(3):
        e = np.zeros(3)
        e[a] = 1.0
        vecs.append((sm[:, None] * np.cross(e, x)).ravel())
    D = np.array(vecs).T
    u, s, _ = np.linalg.svd(D, full_matrices=False)
    keep = s > 1e-6 * s.max()
    return u[:, keep]


def _freq_cm1(lam: np.ndarray) -> np.ndarray:
    """Eigenvalues of the mass-weighted Hessian (eV/(A^2 amu)) -> signed frequencies in cm^-1."""
    return np.sign(lam) * _HBAR * np.sqrt(np.abs(lam)) / units.invcm


def analyse_hessian(hessian: np.ndarray, positions: np.ndarray, masses: np.ndarray):
    """Frequencies (cm^-1), Cartesian modes (n, N, 3), rigid-body (projected) frequencies and the
    unprojected rigid-body residual (cm^-1), and linearity, from a Cartesian Hessian (eV/A^2)."""
    n = len(masses)
    inv_sm = 1.0 / np.sqrt(np.repeat(masses, 3))
    h = 0.5 * (hessian + hessian.T) * inv_sm[:, None] * inv_sm[None, :]
    D = rigid_body_basis(positions, masses)
    linear = D.shape[1] == 5
    # orthogonal complement of the rigid-body space
    q, _ = np.linalg.qr(np.hstack([D, np.eye(3 * n)]))
    Q = q[:, D.shape[1] : 3 * n]
    lam, vec = np.linalg.eigh(Q.T @ h @ Q)
    modes_mw = Q @ vec
    modes = (modes_mw * inv_sm[:, None]).T.reshape(-1, n, 3)
    modes = modes / np.linalg.norm(modes.reshape(len(modes), -1), axis=1)[:, None, None]
    P = np.eye(3 * n) - D @ D.T
    hp = P @ h @ P
    rb = np.linalg.eigvalsh(D.T @ hp @ D)
    resid = np.linalg.eigvalsh(D.T @ h @ D)
    return _freq_cm1(lam), modes, _freq_cm1(rb), float(np.abs(_freq_cm1(resid)).max()), linear


def _newton_polish(potential: Any, geoms: list[Atoms], fmax: float, max_steps: int, *, dtype: Any,
                   device: Any) -> list[int]:
    """Batched Newton-Raphson refinement of ``geoms`` (positions updated in place) until every
    atomic force is below ``fmax`` (eV/A) or ``max_steps`` steps: every iteration evaluates the
    forces and Hessians of all unconverged molecules in ONE call. Returns the number of Newton
    steps per molecule."""
    steps = [0] * len(geoms)
    active = list(range(len(geoms)))
    for _ in range(max_steps):
        if not active:
            break
        res = evaluate(potential, [geoms[k] for k in active], ("forces", "hessian"), dtype=dtype, device=device)
        nxt = []
        for j, k in enumerate(active):
            forces, hessian = res.forces_eV_A[j], res.hessians_eV_A2[j]
            if np.linalg.norm(forces, axis=1).max() < fmax:
                continue
            nxt.append(k)
            a = geoms[k]
            a.set_positions(a.get_positions() + _newton_step(a, forces, hessian))
            steps[k] += 1
        active = nxt
    return steps


def _newton_step(atoms: Atoms, forces: np.ndarray, hessian: np.ndarray) -> np.ndarray:
    """One Newton-Raphson displacement (n, 3) in A: rigid-body motion projected out, the
    |eigenvalues| of the Hessian used (so that negative curvature leads downhill), the largest
    atomic step capped at 0.2 A."""
    n = len(atoms)
    D = rigid_body_basis(atoms.get_positions(), np.ones(n))
    q, _ = np.linalg.qr(np.hstack([D, np.eye(3 * n)]))
    Q = q[:, D.shape[1] : 3 * n]
    lam, v = np.linalg.eigh(Q.T @ (0.5 * (hessian + hessian.T)) @ Q)
    g = Q.T @ (-forces.ravel())
    ok = np.abs(lam) > 1e-6
    dx = -(Q @ (v[:, ok] @ ((v[:, ok].T @ g) / np.abs(lam[ok])))).reshape(-1, 3)
    big = np.linalg.norm(dx, axis=1).max()
    if big > 0.2:
        dx *= 0.2 / big
    return dx


def _symmetry_number(atoms: Atoms) -> tuple[int, str | None]:
    """Rotational symmetry number from pymatgen's point-group analysis (tolerance 0.1 A), and a
    note when the analysis failed and 1 is assumed (the entropy then lacks R ln sigma)."""
    try:
        from pymatgen.core import Molecule
        from pymatgen.symmetry.analyzer import PointGroupAnalyzer

        mol = Molecule(atoms.get_chemical_symbols(), atoms.get_positions())
        return int(PointGroupAnalyzer(mol, tolerance=0.1).get_rotational_symmetry_number()), None
    except Exception as exc:  # pragma: no cover - pymatgen missing or failing on odd geometries
        return 1, (f"rotational symmetry number not determined ({type(exc).__name__}: {exc}); "
                   "1 assumed: pass symmetry_number=")


#: The relaxation :func:`vibrations` starts from: ions only (molecules have no cell), no space-group
#: constraint, 1e-4 eV/A and up to 5000 FIRE steps. The force threshold is tight because a residual
#: force F leaks into the low frequencies: it biases a curvature by about F / (mode amplitude), and
#: soft torsions and bends of 50-200 cm^-1 (curvatures ~0.01-0.1 eV/A^2 amu^-1) move by whole
#: wavenumbers at 1e-3 eV/A. Torch potentials reach it with FIRE to :data:`NEWTON_FROM_FMAX_EV_A`
#: and batched Newton steps on exact Hessians after that (FIRE converges slowly on such soft modes).
VIBRATIONS_RELAXATION = RelaxSettings(cell=False, keep_symmetry=False, fmax_eV_A=1e-4, max_steps=5000)
#: FIRE hands over to Newton-Raphson below this largest force (eV/A), where the quadratic model of
#: the surface is good enough for full Newton steps (torch potentials; oracles use FIRE only).
NEWTON_FROM_FMAX_EV_A = 1e-2


@dataclass
class VibrationsPlan(EvaluationPlan):
    """The relaxed molecules (``structures``, masses kept) whose energies, forces and Hessians a
    vibrational analysis needs, with the per-molecule settings; ``analyse`` diagonalises the
    projected mass-weighted Hessians and adds the ideal-gas thermochemistry. ``hessian_rows``
    names every atom of each molecule: the backend's row engine answers it with the full Hessian,
    for every member of a committee."""

    symmetry_numbers: list[int | None] = field(default_factory=list)
    spins: list[float] = field(default_factory=list)
    temperature_K: float = 298.15
    pressure_Pa: float = 101325.0
    imaginary_tol_cm1: float = 1.0
    fmax_eV_A: float = VIBRATIONS_RELAXATION.fmax_eV_A
    newton_steps: list[int] = field(default_factory=list)
    hessian_rows: list[list[int]] = field(default_factory=list)  # every atom: the full Hessian

    def analyse(self, answers: EvaluationResult) -> list[VibrationsResult]:
        return [self._analyse_one(k, float(answers.energies_eV[k]), np.asarray(answers.forces_eV_A[k]),
                                  np.asarray(answers.hessians_eV_A2[k])) for k in range(len(self.structures))]

    def _analyse_one(self, k: int, energy: float, forces: np.ndarray, hessian: np.ndarray) -> VibrationsResult:
        a = self.structures[k]
        masses = a.get_masses()
        fmax = float(np.linalg.norm(forces, axis=1).max())
        converged = fmax < self.fmax_eV_A
        freqs, modes, rb, resid, linear = analyse_hessian(hessian, a.get_positions(), masses)
        n_imag = int((freqs < -self.imaginary_tol_cm1).sum())
        notes = []
        if n_imag:
            notes.append(f"{n_imag} imaginary mode(s): {freqs[freqs < -self.imaginary_tol_cm1].round(2).tolist()} cm^-1")
        if not converged:
            notes.append(f"relaxation not converged (max force {fmax:.2e} eV/A)")
        if self.newton_steps[k]:
            notes.append(f"{self.newton_steps[k]} Newton step(s) after FIRE")
        real = freqs[freqs > 0]
        zpe = float(0.5 * (real * units.invcm).sum())
        if self.symmetry_numbers[k] is not None:
            sigma = int(self.symmetry_numbers[k])
        else:
            sigma, why = _symmetry_number(a)
            if why:
                notes.append(why)
        spin = float(self.spins[k])
        H = S = G = None
        try:
            vib_e = np.where(freqs >= 0, freqs, 1j * np.abs(freqs)) * units.invcm
            T, p = float(self.temperature_K), float(self.pressure_Pa)  # IdealGasThermo takes Pa
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "imag modes removed": recorded in notes
                thermo = IdealGasThermo(vib_energies=list(vib_e), geometry="linear" if linear else "nonlinear",
                                        potentialenergy=energy, atoms=a, symmetrynumber=sigma, spin=spin,
                                        ignore_imag_modes=True, vib_selection="exact")
                H = float(thermo.get_enthalpy(T, verbose=False))
                S = float(thermo.get_entropy(T, p, verbose=False) * _EV_TO_J_MOL)
                G = float(thermo.get_gibbs_energy(T, p, verbose=False))
        except Exception as exc:  # e.g. imaginary modes with strict settings
            notes.append(f"thermochemistry not computed: {type(exc).__name__}: {exc}")
        return VibrationsResult(
            atoms=a, energy_eV=energy, relax_converged=bool(converged), max_force_eV_A=fmax, linear=bool(linear),
            frequencies_cm1=freqs.tolist(), normal_modes=modes.tolist(), n_imaginary_modes=n_imag,
            imaginary_modes=bool(n_imag > 0), rigid_body_frequencies_cm1=rb.tolist(),
            rigid_body_residual_cm1=resid, zero_point_energy_eV=zpe, symmetry_number=sigma, spin=spin,
            temperature_K=float(self.temperature_K), pressure_Pa=float(self.pressure_Pa), enthalpy_eV=H,
            entropy_J_molK=S, gibbs_energy_eV=G, masses_amu=masses.tolist(), notes=notes,
        )


def _per_molecule(value: Any, n: int, name: str) -> list[Any]:
    """A scalar or one entry per molecule -> a list of ``n`` entries."""
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value] * n
    if len(values) != n:
        raise ValueError(f"{name}: got {len(values)} entries for {n} molecules (one per molecule, or one value)")
    return values


def plan_vibrations(
    potential: Any,
    molecules: Any,
    *,
    relaxation: RelaxSettings | dict | bool | None = None,
    temperature_K: float = 298.15,
    pressure_Pa: float = 101325.0,
    symmetry_number: int | Sequence[int] | None = None,
    spin: float | Sequence[float] = 0.0,
    imaginary_tol_cm1: float = 1.0,
    newton_from_fmax: float = NEWTON_FROM_FMAX_EV_A,
    max_newton_steps: int = 30,
    dtype: Any = None,
    device: Any = None,
) -> VibrationsPlan:
    """Plan the vibrational analysis of one molecule or many (see :func:`vibrations`): validate,
    relax (batched FIRE, then batched Newton steps for torch potentials; on the committee-mean
    surface for a committee) and return the relaxed molecules, whose energies, forces and Hessians
    are to be evaluated (autograd for torch potentials, central finite differences of forces for
    oracles)."""
    check_number("temperature_K", temperature_K, minimum=0.0, exclusive_minimum=True)
    check_number("pressure_Pa", pressure_Pa, minimum=0.0, exclusive_minimum=True)
    check_number("imaginary_tol_cm1", imaginary_tol_cm1, minimum=0.0)
    check_number("newton_from_fmax", newton_from_fmax, minimum=0.0, exclusive_minimum=True)
    max_newton_steps = check_number("max_newton_steps", max_newton_steps, minimum=0, integer=True)
    single, items = structure_list(molecules)
    atoms_list = prepare_structures(items)
    for k, a in enumerate(atoms_list):
        if len(a) < 2:
            raise ValueError(f"structure {k}: a single atom ({a.get_chemical_formula()}) has no vibrations")
        if a.pbc.any():
            raise ValueError(f"structure {k}: vibrations() is for isolated molecules; use phonons for periodic cells")
    n = len(atoms_list)
    symmetry_numbers = _per_molecule(symmetry_number, n, "symmetry_number")
    for k, sigma in enumerate(symmetry_numbers):
        check_number(f"symmetry_number[{k}]", sigma, minimum=1, integer=True, allow_none=True)
    spins = _per_molecule(spin, n, "spin")
    for k, s in enumerate(spins):
        check_number(f"spin[{k}]", s, minimum=0.0)
    settings = resolve_relaxation(relaxation, VIBRATIONS_RELAXATION)
    # a molecule has no cell, and spglib's space-group symmetrisation needs one
    settings = dataclasses.replace(settings, cell=False, keep_symmetry=False)
    kw = dict(dtype=dtype or torch.float64, device=device)
    surface = mean_over_members(potential)
    oracle = is_oracle(potential)
    newton_steps = [0] * n
    if settings.enabled:
        # FIRE gets torch potentials close; batched Newton steps with the exact Hessians finish the
        # job (quadratic convergence). Oracles, whose Hessians cost 6N gradients, use FIRE only.
        fire = settings if oracle else dataclasses.replace(
            settings, fmax_eV_A=max(settings.fmax_eV_A, newton_from_fmax))
        relaxed = [r.atoms for r in relax(surface, atoms_list, settings=fire, **kw)]
        for a0, a in zip(atoms_list, relaxed):
            a.set_masses(a0.get_masses())
        if not oracle:
            newton_steps = _newton_polish(surface, relaxed, settings.fmax_eV_A, max_newton_steps, **kw)
    else:
        relaxed = [a.copy() for a in atoms_list]
    return VibrationsPlan(structures=relaxed, quantities=("energy", "forces", "hessian"), single=single,
                          symmetry_numbers=symmetry_numbers, spins=spins, temperature_K=float(temperature_K),
                          pressure_Pa=float(pressure_Pa), imaginary_tol_cm1=float(imaginary_tol_cm1),
                          fmax_eV_A=settings.fmax_eV_A, newton_steps=newton_steps,
                          hessian_rows=[list(range(len(a))) for a in relaxed])


@one_call(plan_vibrations)
def vibrations(potential: Any, molecules: Any, **options: Any) -> VibrationsResult | list[VibrationsResult]:
    """Harmonic frequencies (cm^-1), normal modes, ZPE (eV) and ideal-gas thermochemistry of one
    molecule (``Atoms`` or pymatgen ``Molecule``) or many (list -> list), batched; see the module
    docstring.

    ``relaxation`` (:class:`~mlip_props.properties.relax.RelaxSettings`, a dict of its fields, or
    False for the input geometry): by default :data:`VIBRATIONS_RELAXATION`, 1e-4 eV/A (tight,
    since residual forces leak into the low frequencies), at most 5000 FIRE steps; ``cell`` and
    ``keep_symmetry`` do not apply to molecules. Torch potentials relax with FIRE to
    ``newton_from_fmax`` (eV/A) and then with at most ``max_newton_steps`` batched Newton steps
    (exact autograd Hessians, rigid-body motion projected out, |eigenvalues| so that negative
    curvature leads downhill, steps capped at 0.2 A); oracles relax with FIRE only. A committee
    relaxes on its mean surface and is analysed with the mean of its members' Hessians
    (:func:`~mlip_props.properties.plan.analyse_members` of the plan's answers gives each member's
    modes at that geometry). ``spin``: total electronic spin S (0 singlet, 0.5 doublet, 1 triplet)
    for the thermochemistry. ``symmetry_number``: rotational symmetry number (default from the
    point group). Modes below ``-imaginary_tol_cm1`` count as imaginary (``n_imaginary_modes``,
    ``imaginary_modes``); all negative ones are excluded from the ZPE and thermochemistry.
    ``dtype`` (default float64) and ``device`` are those of the backend. One plan
    (:func:`plan_vibrations`), one Hessian evaluation of all molecules, one analysis
    (:meth:`VibrationsPlan.analyse`).

    Raises ``ValueError`` naming the molecule for a single atom, a periodic structure, or an
    element the potential does not know.
    """
