"""Fixed-cell ion relaxation of deformed copies of a relaxed cell by Newton steps.

A strained (or isotropically scaled) copy of a relaxed cell differs from it by a small
homogeneous deformation, so its force constants differ from the reference cell's by terms of
the order of the strain. The Newton step dx = Phi_ref^+ f with the reference cell's Hessian Phi_ref
(one per reference: forward differences of batched forces, or the backend's analytic double
backward, :func:`reference_hessians`) is then the linear
internal-strain response (the first-order relaxation of DFPT-style elastic constants), and the
chord iteration x <- x + Phi_ref^+ f(x) contracts the residual force by a factor of the order of
the strain (plus anharmonicity) per step: 2-4 steps reach 1e-4 eV/A, where FIRE needs 30-50. The
pseudo-inverse drops the three translations (|eigenvalue| below ``floor_eV_A2``) and inverts the
other modes by their absolute eigenvalue (a saddle becomes a descent direction). Every step of
every cell is one batched backend call.

A cell whose residual does not shrink by at least 30 % in a step (far from the reference, a soft
mode, the float32 noise floor) or that is not converged after ``max_newton_steps`` is handed to
the batched FIRE of :func:`mlip_props.properties.relax.relax` from where it is, so the result is
the same relaxation (to the same threshold) either way; ``optimizer`` in each result says which
route ran (``"newton"`` or ``"newton+fire"``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from ..backend import evaluate
from ..backend.precision import compute_precision
from .relax import RelaxResult, RelaxSettings, relax


def reference_hessians(potential: Any, structures: Sequence[Atoms], *, dtype: Any, device: Any,
                       method: str = "fd", step_A: float = 0.01) -> list[np.ndarray]:
    """Symmetrised Hessians (3n x 3n, eV/A^2) of ``structures`` from one backend call.

    ``method="fd"`` (default): forward differences of the forces, -(f(x + h e_k) - f(x)) / h, of
    all 3n displaced copies of every structure batched in one call (3n + 1 structure evaluations
    each; the O(h) error, ~1 % for h = 0.01 A, only slows the chord iteration, it does not move
    the minimum it converges to). ``"analytic"``: the backend's double backward (3n backward passes
    through the model: for SevenNet-0 on the CPU about twice the cost of the displaced copies)."""
    if method == "analytic":
        res = evaluate(potential, list(structures), ("energy", "forces", "hessian"), dtype=dtype, device=device)
        return [0.5 * (np.asarray(h, dtype=float) + np.asarray(h, dtype=float).T) for h in res.hessians_eV_A2]
    if method != "fd":
        raise ValueError(f"method must be 'fd' or 'analytic', got {method!r}")
    cells = []
    for a in structures:
        cells.append(a)
        for k in range(3 * len(a)):
            d = a.copy()
            d.calc = None
            d.positions[k // 3, k % 3] += step_A
            cells.append(d)
    forces = evaluate(potential, cells, ("energy", "forces"), dtype=dtype, device=device).forces_eV_A
    out, start = [], 0
    for a in structures:
        n3 = 3 * len(a)
        f0 = np.asarray(forces[start], dtype=float).reshape(-1)
        h = np.stack([-(np.asarray(forces[start + 1 + k], dtype=float).reshape(-1) - f0) / step_A
                      for k in range(n3)], axis=1)
        out.append(0.5 * (h + h.T))
        start += n3 + 1
    return out


def newton_inverse(hessian: np.ndarray, floor_eV_A2: float = 1e-2) -> np.ndarray:
    """Pseudo-inverse of a Hessian by |eigenvalue|, modes below ``floor_eV_A2`` (translations) dropped."""
    w, v = np.linalg.eigh(hessian)
    keep = np.abs(w) > floor_eV_A2
    return (v[:, keep] / np.abs(w[keep])) @ v[:, keep].T


def relax_ions_newton(
    potential: Any,
    structures: Sequence[Atoms],
    references: Sequence[Atoms],
    owners: Sequence[int],
    settings: RelaxSettings,
    *,
    dtype: Any,
    device: Any,
    max_newton_steps: int = 8,
    max_step_A: float = 0.2,
) -> list[RelaxResult]:
    """Relax the ions of ``structures`` (cells fixed) to the threshold ``settings`` gives for the
    compute precision, by chord-Newton steps with the Hessian of ``references[owners[k]]`` (the
    cell structure k was deformed from, same atom order), then FIRE for the cells that need it.
    The Hessians are computed (one backend call) only for the references of cells that are not
    converged at the first evaluation: where symmetry keeps the ions in place (rocksalt, the
    volume points of diamond) no Hessian is needed. The largest atomic step is capped at
    ``max_step_A``. Returns one :class:`RelaxResult` per structure."""
    inverses: dict[int, np.ndarray] = {}
    precision = compute_precision(potential, dtype)
    fmax, _ = settings.tolerances(precision)
    atoms = [a.copy() for a in structures]
    for a in atoms:
        a.calc = None
    n = len(atoms)
    energy = np.zeros(n)
    residual = np.full(n, np.inf)
    steps = np.zeros(n, dtype=int)
    converged = np.zeros(n, dtype=bool)
    handoff: list[int] = []
    active = list(range(n))
    for it in range(max_newton_steps + 1):
        if not active:
            break
        res = evaluate(potential, [atoms[k] for k in active], ("energy", "forces"), dtype=dtype, device=device)
        if it == 0:
            fm0 = [float(np.linalg.norm(f, axis=1).max()) for f in res.forces_eV_A]
            need = sorted({owners[k] for k, f in zip(active, fm0) if f >= fmax})
            if need:
                hs = reference_hessians(potential, [references[b] for b in need], dtype=dtype, device=device)
                inverses = {b: newton_inverse(h) for b, h in zip(need, hs)}
        still = []
        for k, e, f in zip(active, res.energies_eV, res.forces_eV_A):
            f = np.asarray(f, dtype=float)
            fm = float(np.linalg.norm(f, axis=1).max())
            previous, energy[k], residual[k] = residual[k], float(e), fm
            if fm < fmax:
                converged[k] = True
            elif it == max_newton_steps or fm > 0.7 * previous:
                handoff.append(k)
            else:
                dx = (inverses[owners[k]] @ f.reshape(-1)).reshape(-1, 3)
                big = float(np.linalg.norm(dx, axis=1).max())
                if big > max_step_A:
                    dx *= max_step_A / big
                atoms[k].positions = atoms[k].positions + dx
                steps[k] += 1
                still.append(k)
        active = still
    out: list[RelaxResult | None] = [None] * n
    for k in range(n):
        if k in handoff:
            continue
        out[k] = RelaxResult(atoms=atoms[k], energy_eV=float(energy[k]), enthalpy_eV=float(energy[k]),
                             converged=bool(converged[k]), n_steps=int(steps[k]), max_force_eV_A=float(residual[k]),
                             max_stress_GPa=None, pressure_GPa=0.0,
                             volume_A3_per_atom=float(atoms[k].get_volume() / len(atoms[k])),
                             fmax_target_eV_A=float(fmax), optimizer="newton", precision=precision)
    if handoff:
        fire = dataclasses.replace(settings, cell=False, keep_symmetry=False)
        rest = relax(potential, [atoms[k] for k in handoff], settings=fire, dtype=dtype, device=device)
        for k, r in zip(handoff, rest):
            out[k] = dataclasses.replace(r, n_steps=int(steps[k]) + r.n_steps, optimizer="newton+fire")
    return out  # type: ignore[return-value]
