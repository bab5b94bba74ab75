"""The other direction: an ASE ``Calculator`` that wraps any mlip-props potential.

With it, users run ASE's optimizers, molecular dynamics, NEB, ... on a fitted or analytic
potential. Every call goes through :func:`mlip_props.backend.evaluate.evaluate`.
"""
from __future__ import annotations

from typing import Any

import torch
from ase.calculators.calculator import Calculator, all_changes

from .evaluate import evaluate


class MLIPCalculator(Calculator):
    """ASE calculator for a mlip-props potential (energy eV, forces eV/A, stress eV/A^3).

    Stress is only available for structures periodic in all three directions. For committees
    the committee mean is returned and the member standard deviations are put in
    ``calc.results["energy_std"]``, ``["forces_std"]`` and ``["stress_std"]``.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, potential: Any, dtype: torch.dtype = torch.float64, device: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.potential = potential
        self.dtype = dtype
        self.device = device

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want = ["energy", "forces"]
        if "stress" in properties and self.atoms.pbc.all():
            want.append("stress")
        res = evaluate(self.potential, [self.atoms], want, dtype=self.dtype, device=self.device)
        e = res.energies_eV[0]
        f = res.forces_eV_A[0]
        if e.ndim:  # committee: mean and spread
            self.results["energy_std"] = float(e.std())
            self.results["forces_std"] = f.std(axis=0)
            e, f = e.mean(), f.mean(axis=0)
        self.results["energy"] = float(e)
        self.results["free_energy"] = float(e)
        self.results["forces"] = f
        if "stress" in want:
            s = res.stress_eV_A3[0]
            if s.ndim > 1:
                self.results["stress_std"] = s.std(axis=0)
                s = s.mean(axis=0)
            self.results["stress"] = s
