"""Analytic pair potentials in torch: Lennard-Jones, Morse and ZBL.

Each is smooth at its cutoff (C2 quintic switch over ``switch_width``), so forces and force
constants are continuous. Energies in eV, distances in Angstrom.
"""
from __future__ import annotations

from typing import Any

import torch

from .base import PairPotential

#: Coulomb constant e^2 / (4 pi eps0) in eV Angstrom (CODATA 2018).
COULOMB_EV_A = 14.399645478425668


class LennardJones(PairPotential):
    """phi(r) = 4 epsilon [(sigma/r)^12 - (sigma/r)^6].

    ``epsilon`` in eV, ``sigma`` in Angstrom; default cutoff 3 sigma with a switch over the last
    0.5 sigma. Minimum at r = 2^(1/6) sigma with depth -epsilon (Lennard-Jones, Proc. R. Soc. A
    106, 463 (1924)).
    """

    def __init__(
        self,
        epsilon: float = 1.0,
        sigma: float = 1.0,
        cutoff: float | None = None,
        switch_width: float | None = None,
        elements: set[int] | None = None,
    ):
        cutoff = 3.0 * sigma if cutoff is None else cutoff
        switch_width = min(0.5 * sigma, 0.5 * cutoff) if switch_width is None else switch_width
        super().__init__(cutoff, switch_width, elements)
        self.epsilon = float(epsilon)
        self.sigma = float(sigma)

    def pair_energy(self, r, zi, zj):
        s6 = (self.sigma / r) ** 6
        return 4.0 * self.epsilon * (s6 * s6 - s6)

    def pair_energy_and_derivative(self, r, zi, zj):
        s2 = (self.sigma * self.sigma) / (r * r)
        s6 = s2 * s2 * s2
        e4 = 4.0 * self.epsilon
        return e4 * (s6 * s6 - s6), (e4 / r) * (6.0 * s6 - 12.0 * s6 * s6)

    def get_config(self) -> dict[str, Any]:
        return dict(epsilon=self.epsilon, sigma=self.sigma, cutoff=self.cutoff, switch_width=self.switch_width,
                    elements=None if self.elements is None else sorted(self.elements))


class Morse(PairPotential):
    """phi(r) = D [exp(-2 a (r - r0)) - 2 exp(-a (r - r0))].

    ``D`` in eV (well depth = dissociation energy D_e), ``a`` in 1/Angstrom, ``r0`` in Angstrom
    (equilibrium distance). Harmonic force constant k = 2 D a^2 (Morse, Phys. Rev. 34, 57 (1929)).
    Default cutoff r0 + 8/a (where the attraction is 7e-4 D) with a switch over the last 2/a.
    """

    def __init__(
        self,
        D: float = 1.0,
        a: float = 1.0,
        r0: float = 1.0,
        cutoff: float | None = None,
        switch_width: float | None = None,
        elements: set[int] | None = None,
    ):
        cutoff = r0 + 8.0 / a if cutoff is None else cutoff
        switch_width = min(2.0 / a, 0.5 * cutoff) if switch_width is None else switch_width
        super().__init__(cutoff, switch_width, elements)
        self.D, self.a, self.r0 = float(D), float(a), float(r0)

    def pair_energy(self, r, zi, zj):
        x = torch.exp(-self.a * (r - self.r0))
        return self.D * (x * x - 2.0 * x)

    def pair_energy_and_derivative(self, r, zi, zj):
        x = torch.exp(-self.a * (r - self.r0))
        return self.D * (x * x - 2.0 * x), (2.0 * self.a * self.D) * (x - x * x)

    def get_config(self) -> dict[str, Any]:
        return dict(D=self.D, a=self.a, r0=self.r0, cutoff=self.cutoff, switch_width=self.switch_width,
                    elements=None if self.elements is None else sorted(self.elements))


class ZBL(PairPotential):
    """Ziegler-Biersack-Littmark universal screened nuclear repulsion.

    phi(r) = (Z_i Z_j e^2 / 4 pi eps0 r) * sum_k c_k exp(-d_k r / a),
    a = 0.46850 / (Z_i^0.23 + Z_j^0.23) Angstrom (Ziegler, Biersack, Littmark, *The Stopping and
    Range of Ions in Solids*, Pergamon 1985). Finite and strongly repulsive for any r > 0
    (about 1.4 keV for two Cu atoms 0.1 A apart). Default cutoff 2.0 A, switched off over its
    last 1.0 A so it only hardens the core of a potential it is added to.
    """

    _c = (0.18175, 0.50986, 0.28022, 0.02817)
    _d = (3.19980, 0.94229, 0.40290, 0.20162)

    def __init__(self, cutoff: float = 2.0, switch_width: float = 1.0, elements: set[int] | None = None):
        super().__init__(cutoff, switch_width, elements)

    def pair_energy(self, r, zi, zj):
        zi = zi.to(r.dtype)
        zj = zj.to(r.dtype)
        a = 0.46850 / (zi**0.23 + zj**0.23)
        x = r / a
        phi = sum(c * torch.exp(-d * x) for c, d in zip(self._c, self._d))
        return COULOMB_EV_A * zi * zj / r * phi

    def get_config(self) -> dict[str, Any]:
        return dict(cutoff=self.cutoff, switch_width=self.switch_width,
                    elements=None if self.elements is None else sorted(self.elements))
