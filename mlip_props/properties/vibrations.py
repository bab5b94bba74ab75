"""Harmonic vibrations of molecules: frequencies, normal modes, zero-point energy, thermochemistry.

Method (Wilson, Decius, Cross, *Molecular Vibrations* (1955); Ochterski, "Vibrational analysis in
Gaussian" (1999)):

1. Tight batched relaxation of all molecules (:func:`mlip_props.properties.relax.relax`, FIRE);
   convergence is reported, not enforced.
2. Cartesian Hessians H (eV/A^2) of all relaxed molecules in ONE backend call (autograd for torch
   potentials, central finite differences of forces for oracles).
3. Mass weighting H_mw = M^-1/2 H M^-1/2 (masses in amu from the ``Atoms``, i.e. ASE's standard
   atomic weights unless the user sets other masses).
4. Eckart projection: the three translations sqrt(m_i) e_a and three infinitesimal rotations
   sqrt(m_i) (e_a x (x_i - x_com)) are orthonormalised (5 independent for linear molecules, 6
   otherwise); H_mw is diagonalised in their orthogonal complement, which removes rigid-body
   motion exactly.
5. omega = sqrt(lambda) -> cm^-1 (imaginary modes as negative numbers, counted in
   ``n_imaginary``), Cartesian normal modes (mass-weighted eigenvectors divided by sqrt(m),
   normalised), zero-point energy sum(hbar omega)/2 over real modes.
6. Ideal-gas thermochemistry with :class:`ase.thermochemistry.IdealGasThermo` (rigid rotor,
   harmonic oscillator, ideal gas) at ``temperature_K`` and ``pressure_Pa``; the rotational
   symmetry number comes from pymatgen's point-group analysis unless given.

``rigid_body_frequencies_cm1`` are the frequencies of the projected Hessian in the rigid-body
subspace (zero up to round-off when the projector is right); ``rigid_body_residual_cm1`` is the
largest |frequency| of the *unprojected* Hessian in that subspace, a measure of how far the
structure is from a stationary point (and of rotational invariance of the potential).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from ase import Atoms, units

from ..backend.evaluate import evaluate, is_oracle, prepare_structures
from .result import PropertyResult

_HBAR = units._hbar * units.J * units.second  # eV * (ASE time)
_EV_TO_J_MOL = units._e * units._Nav


@dataclass(frozen=True)
class VibrationsResult(PropertyResult):
    """Harmonic vibrational analysis of one molecule.

    ``frequencies_cm1``: the 3N-5 (linear) or 3N-6 vibrational frequencies, ascending, imaginary
    ones negative; ``normal_modes``: (n_modes, N, 3) Cartesian displacement patterns (unit
    norm); ``zero_point_energy_eV``; thermochemistry at ``temperature_K``/``pressure_Pa``:
    ``enthalpy_eV`` (H = E_elec + ZPE + thermal), ``entropy_J_mol_K``, ``gibbs_energy_eV``.
    """

    atoms: Atoms
    energy_eV: float
    relax_converged: bool
    max_force_eV_A: float
    linear: bool
    frequencies_cm1: list[float]
    normal_modes: list
    n_imaginary: int
    imaginary_modes: bool
    rigid_body_frequencies_cm1: list[float]
    rigid_body_residual_cm1: float
    zero_point_energy_eV: float
    symmetry_number: int
    spin: float
    temperature_K: float
    pressure_Pa: float
    enthalpy_eV: float | None
    entropy_J_mol_K: float | None
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


def _newton_polish(potential: Any, geoms: list[Atoms], fmax: float, max_steps: int):
    """Batched Newton-Raphson refinement (positions updated in place). Every iteration evaluates
    energies, forces and Hessians of all unconverged molecules in ONE call; the final values
    (at the returned geometries) are returned with the number of Newton steps per molecule."""
    B = len(geoms)
    energies = [0.0] * B
    forces: list[np.ndarray] = [np.zeros((len(a), 3)) for a in geoms]
    hessians: list[np.ndarray] = [np.zeros((3 * len(a), 3 * len(a))) for a in geoms]
    steps = [0] * B
    active = list(range(B))
    for it in range(max_steps + 1):
        res = evaluate(potential, [geoms[k] for k in active], ("energy", "forces", "hessian"))
        nxt = []
        for j, k in enumerate(active):
            energies[k] = float(res.energies_eV[j])
            forces[k] = res.forces_eV_A[j]
            hessians[k] = res.hessians_eV_A2[j]
            if np.linalg.norm(forces[k], axis=1).max() >= fmax and it < max_steps:
                nxt.append(k)
        for k in nxt:
            a = geoms[k]
            D = rigid_body_basis(a.get_positions(), np.ones(len(a)))
            q, _ = np.linalg.qr(np.hstack([D, np.eye(3 * len(a))]))
            Q = q[:, D.shape[1] : 3 * len(a)]
            lam, v = np.linalg.eigh(Q.T @ (0.5 * (hessians[k] + hessians[k].T)) @ Q)
            g = Q.T @ (-forces[k].ravel())
            ok = np.abs(lam) > 1e-6
            dx = Q @ (v[:, ok] @ ((v[:, ok].T @ g) / np.abs(lam[ok])))
            dx = -dx.reshape(-1, 3)
            big = np.linalg.norm(dx, axis=1).max()
            if big > 0.2:
                dx *= 0.2 / big
            a.set_positions(a.get_positions() + dx)
            steps[k] += 1
        active = nxt
        if not active:
            break
    return energies, forces, hessians, steps


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


def vibrations(
    potential: Any,
    structures: Any,
    *,
    relax: bool = True,
    fmax: float = 1e-4,
    max_steps: int = 5000,
    temperature_K: float = 298.15,
    pressure_Pa: float = 101325.0,
    symmetry_number: int | Sequence[int] | None = None,
    spin: float | Sequence[float] = 0.0,
    imaginary_tol_cm1: float = 1.0,
    newton_from_fmax: float = 1e-2,
    max_newton_steps: int = 30,
) -> VibrationsResult | list[VibrationsResult]:
    """Harmonic frequencies (cm^-1), normal modes, ZPE (eV) and ideal-gas thermochemistry of one
    molecule (``Atoms``) or many (list -> list), batched; see the module docstring.

    ``fmax`` (eV/A): relaxation threshold (tight by default, since residual forces leak into the
    low frequencies); ``relax=False`` uses the input geometry. Torch potentials relax with FIRE to
    ``newton_from_fmax`` and then with batched Newton steps (exact autograd Hessians, rigid-body
    motion projected out, |eigenvalues| so that negative curvature leads downhill, steps capped
    at 0.2 A); oracles relax with FIRE only. ``spin``: total electronic spin S
    (0 singlet, 0.5 doublet, 1 triplet) for the thermochemistry. ``symmetry_number``: rotational
    symmetry number (default from the point group). Modes below ``-imaginary_tol_cm1`` count as
    imaginary (``n_imaginary``, ``imaginary_modes``); all negative ones are excluded from the ZPE
    and thermochemistry. Raises ``ValueError`` naming the molecule
    for a single atom, a periodic structure, or an element the potential does not know.
    """
    single = isinstance(structures, Atoms) or hasattr(structures, "lattice") or hasattr(structures, "sites")
    atoms_list = prepare_structures([structures] if single else structures)
    for k, a in enumerate(atoms_list):
        if len(a) < 2:
            raise ValueError(f"structure {k}: a single atom ({a.get_chemical_formula()}) has no vibrations")
        if a.pbc.any():
            raise ValueError(f"structure {k}: vibrations() is for isolated molecules; use phonons for periodic cells")
    B = len(atoms_list)
    sym_n = list(symmetry_number) if isinstance(symmetry_number, (list, tuple)) else [symmetry_number] * B
    spins = list(spin) if isinstance(spin, (list, tuple)) else [spin] * B
    if len(sym_n) != B or len(spins) != B:
        raise ValueError("symmetry_number / spin lists must have one entry per molecule")

    oracle = is_oracle(potential)
    if relax:
        from .relax import relax as _relax

        # FIRE gets torch potentials close; batched Newton steps with the exact Hessians finish
        # the job (quadratic convergence). Oracles, whose Hessians cost 6N gradients, use FIRE only.
        pre = fmax if oracle else max(fmax, newton_from_fmax)
        rel = _relax(potential, atoms_list, fmax=pre, max_steps=max_steps)
        relaxed = [r.atoms for r in rel]
        for a0, a in zip(atoms_list, relaxed):
            a.set_masses(a0.get_masses())
    else:
        relaxed = [a.copy() for a in atoms_list]
    newton = 0 if (oracle or not relax) else max_newton_steps
    energies, forces, hessians, n_newton = _newton_polish(potential, relaxed, fmax, newton)
    fmaxs = [float(np.linalg.norm(f, axis=1).max()) for f in forces]
    conv = [f < fmax for f in fmaxs]

    from ase.thermochemistry import IdealGasThermo

    out = []
    for k, a in enumerate(relaxed):
        masses = a.get_masses()
        freqs, modes, rb, resid, linear = analyse_hessian(hessians[k], a.get_positions(), masses)
        n_imag = int((freqs < -imaginary_tol_cm1).sum())
        notes = []
        if n_imag:
            notes.append(f"{n_imag} imaginary mode(s): {freqs[freqs < -imaginary_tol_cm1].round(2).tolist()} cm^-1")
        if not conv[k]:
            notes.append(f"relaxation not converged (max force {fmaxs[k]:.2e} eV/A)")
        if n_newton[k]:
            notes.append(f"{n_newton[k]} Newton step(s) after FIRE")
        real = freqs[freqs > 0]
        zpe = float(0.5 * (real * units.invcm).sum())
        if sym_n[k] is not None:
            sigma = int(sym_n[k])
        else:
            sigma, why = _symmetry_number(a)
            if why:
                notes.append(why)
        e = float(energies[k])
        H = S = G = None
        try:
            import warnings

            vib_e = np.where(freqs >= 0, freqs, 1j * np.abs(freqs)) * units.invcm
            p = float(pressure_Pa)  # IdealGasThermo takes Pa (reference pressure 1e5 Pa)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "imag modes removed": recorded in notes
                thermo = IdealGasThermo(vib_energies=list(vib_e), geometry="linear" if linear else "nonlinear",
                                        potentialenergy=e, atoms=a, symmetrynumber=sigma, spin=float(spins[k]),
                                        ignore_imag_modes=True, vib_selection="exact")
                H = float(thermo.get_enthalpy(temperature_K, verbose=False))
                S = float(thermo.get_entropy(temperature_K, p, verbose=False) * _EV_TO_J_MOL)
                G = float(thermo.get_gibbs_energy(temperature_K, p, verbose=False))
        except Exception as exc:  # e.g. imaginary modes with strict settings
            notes.append(f"thermochemistry not computed: {type(exc).__name__}: {exc}")
        out.append(VibrationsResult(
            atoms=a, energy_eV=e, relax_converged=bool(conv[k]), max_force_eV_A=fmaxs[k], linear=bool(linear),
            frequencies_cm1=freqs.tolist(), normal_modes=modes.tolist(), n_imaginary=n_imag,
            imaginary_modes=bool(n_imag > 0), rigid_body_frequencies_cm1=rb.tolist(),
            rigid_body_residual_cm1=resid, zero_point_energy_eV=zpe, symmetry_number=sigma, spin=float(spins[k]),
            temperature_K=float(temperature_K), pressure_Pa=float(pressure_Pa), enthalpy_eV=H, entropy_J_mol_K=S,
            gibbs_energy_eV=G, masses_amu=masses.tolist(), notes=notes,
        ))
    return out[0] if single else out
