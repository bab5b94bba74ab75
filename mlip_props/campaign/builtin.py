"""Built-in campaign property ``energy``: static or relaxed energy per atom.

A thin layer over :func:`mlip_props.evaluate` (one batched backend call for all structures) and,
with ``relax=True``, over :func:`mlip_props.properties.relax.relax` (batched FIRE). Used as the
cheap property of screening campaigns and of the convex-hull report (formation energies).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend.evaluate import evaluate, prepare_structures
from ..properties.result import PropertyResult


@dataclass(frozen=True)
class EnergyResult(PropertyResult):
    """Energy of one structure (eV), per atom (eV/atom), with the state it was taken in.

    ``volume_A3_per_atom`` is ``None`` for non-periodic structures; ``max_force_eV_A`` is the
    largest atomic force norm of the final structure; ``converged`` is ``None`` for a static
    (unrelaxed) evaluation; ``max_stress_GPa`` the largest |stress| component (periodic only).
    """

    formula: str
    n_atoms: int
    energy_eV: float
    energy_per_atom_eV: float
    volume_A3_per_atom: float | None
    max_force_eV_A: float
    max_stress_GPa: float | None
    relaxed: bool
    converged: bool | None
    n_steps: int


def energy(
    potential: Any,
    structures: Any,
    *,
    relax: bool = False,
    relax_cell: bool = False,
    fmax: float = 0.01,
    max_steps: int = 1000,
) -> EnergyResult | list[EnergyResult]:
    """Energy per atom (eV/atom) of each structure, static or after a batched relaxation.

    ``relax``: relax positions (FIRE, ``fmax`` eV/A, at most ``max_steps`` steps);
    ``relax_cell``: also relax the cell to zero pressure (implies ``relax``). The final energy,
    forces and stress come from one :func:`mlip_props.evaluate` call over all structures.
    """
    single = not isinstance(structures, (list, tuple))
    atoms_list = [a.copy() for a in prepare_structures(structures)]
    steps = [0] * len(atoms_list)
    converged: list[bool | None] = [None] * len(atoms_list)
    do_relax = relax or relax_cell
    if do_relax:
        from ..properties.relax import relax as _relax  # explicit, documented dependency

        res = _relax(potential, atoms_list, fmax=fmax, relax_cell=relax_cell, max_steps=max_steps)
        atoms_list = [r.atoms for r in res]
        steps = [int(r.n_steps) for r in res]
        converged = [bool(r.converged) for r in res]
    periodic = [bool(a.pbc.all()) for a in atoms_list]
    props = ("energy", "forces", "stress") if any(periodic) else ("energy", "forces")
    ev = evaluate(potential, atoms_list, props)
    out = []
    for k, a in enumerate(atoms_list):
        n = len(a)
        e = float(np.asarray(ev.energies_eV[k]).mean())
        f = np.asarray(ev.forces_eV_A[k])
        fmax_k = float(np.linalg.norm(f.reshape(-1, 3), axis=1).max()) if f.size else 0.0
        smax = None
        if periodic[k] and ev.stress_eV_A3 is not None:
            smax = float(np.abs(ev.stress_GPa[k]).max())
        out.append(EnergyResult(
            formula=a.get_chemical_formula(mode="metal"),
            n_atoms=n,
            energy_eV=e,
            energy_per_atom_eV=e / n,
            volume_A3_per_atom=float(a.get_volume() / n) if periodic[k] else None,
            max_force_eV_A=fmax_k,
            max_stress_GPa=smax,
            relaxed=do_relax,
            converged=converged[k],
            n_steps=steps[k],
        ))
    return out[0] if single else out
