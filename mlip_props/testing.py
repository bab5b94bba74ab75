"""A battery of physical checks that every mlip-props potential must pass.

Each check returns the size of the violation (a float) so that tests can assert on it with a
tolerance that means something and users can run the same checks on their own models:

* :func:`force_error` — forces vs. minus the central finite-difference gradient of the energy;
* :func:`stress_error` — stress vs. the finite-strain derivative of the energy per volume;
* :func:`hessian_errors` — Hessian symmetry and agreement with finite differences of forces
  (:func:`force_jacobian_fd`: that finite-difference Hessian itself);
* :func:`acoustic_sum_rule_violation` — rows of the Hessian of a crystal sum to zero;
* :func:`invariance_errors` — translation, rotation and permutation invariance of the energy;
* :func:`extensivity_error` — a 2x2x2 supercell has 8x the energy;
* :func:`batch_consistency_error` — a structure alone equals the same structure in a batch
  (:func:`batch_consistency_errors`: energy, forces and stress apart, for several structures of one batch).

All finite-difference structures of one check are evaluated in ONE backend call.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from ase import Atoms

from .backend.evaluate import evaluate


def _displaced(atoms: Atoms, k: int, h: float) -> Atoms:
    a = atoms.copy()
    p = a.get_positions()
    p[k // 3, k % 3] += h
    a.set_positions(p)
    return a


def force_error(potential: Any, atoms: Atoms, h: float = 1e-5, relative: bool = True) -> float:
    """max |F - F_fd| / max(|F|, 1e-3) over all components (relative), F_fd = -(E(x+h) - E(x-h)) / 2h
    (float64, step ``h`` in A); ``relative=False``: max |F - F_fd| itself (eV/A)."""
    n3 = 3 * len(atoms)
    frames = [atoms] + [_displaced(atoms, k, s * h) for k in range(n3) for s in (1, -1)]
    res = evaluate(potential, frames, ("energy", "forces"))
    e = res.energies_eV[1:].reshape(n3, 2)
    f_fd = -(e[:, 0] - e[:, 1]) / (2 * h)
    f = res.forces_eV_A[0].reshape(-1)
    err = float(np.abs(f - f_fd).max())
    return err / max(np.abs(f).max(), 1e-3) if relative else err


_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def _strained(atoms: Atoms, eps: np.ndarray) -> Atoms:
    a = atoms.copy()
    a.set_cell(np.asarray(a.get_cell()) @ (np.eye(3) + eps), scale_atoms=True)
    return a


def stress_error(potential: Any, atoms: Atoms, h: float = 1e-5, relative: bool = True) -> float:
    """max |sigma - sigma_fd| / max(|sigma|, 1e-4 eV/A^3), sigma_fd = dE/d(eps) / V by central differences
    (float64; symmetric strains of +-h on the diagonal, +-h/2 on each off-diagonal pair);
    ``relative=False``: max |sigma - sigma_fd| itself (eV/A^3)."""
    frames = [atoms]
    for a, b in _VOIGT:
        for s in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] += 0.5 * s * h
            eps[b, a] += 0.5 * s * h
            frames.append(_strained(atoms, eps))
    res = evaluate(potential, frames, ("energy", "stress"))
    e = res.energies_eV[1:].reshape(6, 2)
    sigma_fd = (e[:, 0] - e[:, 1]) / (2 * h) / atoms.get_volume()
    sigma = res.stress_eV_A3[0]
    err = float(np.abs(sigma - sigma_fd).max())
    return err / max(np.abs(sigma).max(), 1e-4) if relative else err


def hessian_errors(potential: Any, atoms: Atoms, h: float = 1e-5) -> tuple[float, float]:
    """(asymmetry, finite-difference error) of the Hessian, both relative to max |H|.

    The finite-difference Hessian column k is -(F(x + h e_k) - F(x - h e_k)) / 2h.
    """
    hess = evaluate(potential, [atoms], ("energy", "hessian")).hessians_eV_A2[0]
    h_fd = force_jacobian_fd(potential, atoms, h)
    scale = max(np.abs(hess).max(), 1e-6)
    return float(np.abs(hess - hess.T).max() / scale), float(np.abs(hess - h_fd).max() / scale)


def force_jacobian_fd(potential: Any, atoms: Atoms, h: float = 1e-5) -> np.ndarray:
    """The finite-difference Hessian (3n, 3n) eV/A^2: column k is -(F(x + h e_k) - F(x - h e_k)) / 2h
    (float64, all 6n displaced structures in one call)."""
    n3 = 3 * len(atoms)
    frames = [_displaced(atoms, k, s * h) for k in range(n3) for s in (1, -1)]
    fres = evaluate(potential, frames, ("energy", "forces"))
    f = np.array([x.reshape(-1) for x in fres.forces_eV_A]).reshape(n3, 2, n3)
    return -(f[:, 0] - f[:, 1]).T / (2 * h)


def acoustic_sum_rule_violation(potential: Any, atoms: Atoms) -> float:
    """max_{i,a,b} |sum_j d2E/dx_ia dx_jb| (eV/A^2): zero for a translationally invariant model."""
    hess = evaluate(potential, [atoms], ("energy", "hessian")).hessians_eV_A2[0]
    n = len(atoms)
    return float(np.abs(hess.reshape(3 * n, n, 3).sum(axis=1)).max())


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def invariance_errors(potential: Any, atoms: Atoms, seed: int = 0) -> dict[str, float]:
    """Energy change (eV) under a translation, a rotation (positions and cell) and a permutation,
    and the force error (eV/A) of the rotated forces against rotating the forces."""
    rng = np.random.default_rng(seed)
    moved = atoms.copy()
    moved.translate(rng.normal(size=3))
    rot = _rotation(seed)
    rotated = atoms.copy()
    rotated.set_positions(atoms.get_positions() @ rot.T)
    rotated.set_cell(np.asarray(atoms.get_cell()) @ rot.T)
    perm = rng.permutation(len(atoms))
    permuted = atoms[perm]
    res = evaluate(potential, [atoms, moved, rotated, permuted], ("energy", "forces"))
    e = res.energies_eV
    return {
        "translation_eV": float(abs(e[1] - e[0])),
        "rotation_eV": float(abs(e[2] - e[0])),
        "permutation_eV": float(abs(e[3] - e[0])),
        "rotated_forces_eV_A": float(np.abs(res.forces_eV_A[2] - res.forces_eV_A[0] @ rot.T).max()),
        "permuted_forces_eV_A": float(np.abs(res.forces_eV_A[3] - res.forces_eV_A[0][perm]).max()),
    }


def extensivity_error(potential: Any, atoms: Atoms) -> float:
    """|E(2x2x2 supercell) - 8 E(cell)| / |8 E(cell)| for a periodic cell."""
    e = evaluate(potential, [atoms, atoms.repeat(2)], ("energy",)).energies_eV
    return float(abs(e[1] - 8 * e[0]) / max(abs(8 * e[0]), 1e-12))


def batch_consistency_errors(potential: Any, structures: Sequence[Atoms], picks: Sequence[int],
                             dtype: torch.dtype = torch.float64) -> list[dict[str, float]]:
    """For each index in ``picks``: how structure ``structures[k]`` evaluated alone differs from
    the same structure inside one batch of all ``structures`` (in ``dtype``), as
    ``{"energy_eV", "forces_eV_A", "stress_eV_A3"}`` (largest absolute differences; the stress
    one is ``inf`` where one of the two is NaN (not periodic) and the other is not)."""
    props = ("energy", "forces", "stress")
    mixed = evaluate(potential, list(structures), props, dtype=dtype)
    out = []
    for k in picks:
        alone = evaluate(potential, [structures[k]], props, dtype=dtype)
        s0, s1 = alone.stress_eV_A3[0], mixed.stress_eV_A3[k]
        if not np.array_equal(np.isnan(s0), np.isnan(s1)):
            ds = float("inf")
        else:
            ok = ~np.isnan(s0)
            ds = float(np.abs(s1[ok] - s0[ok]).max()) if ok.any() else 0.0
        out.append({"energy_eV": float(abs(mixed.energies_eV[k] - alone.energies_eV[0])),
                    "forces_eV_A": float(np.abs(mixed.forces_eV_A[k] - alone.forces_eV_A[0]).max()),
                    "stress_eV_A3": ds})
    return out


def batch_consistency_error(potential: Any, atoms: Atoms, others: Sequence[Atoms], position: int | None = None) -> float:
    """Largest difference (energy eV, forces eV/A, stress eV/A^3) of ``atoms`` alone vs inside ``others``
    (at ``position``, default the middle; :func:`batch_consistency_errors`)."""
    pos = len(others) // 2 if position is None else position
    frames = list(others[:pos]) + [atoms] + list(others[pos:])
    return max(batch_consistency_errors(potential, frames, [pos])[0].values())
