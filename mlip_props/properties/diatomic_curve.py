"""One diatomic binding curve E(r): its minimum, derivatives, spectroscopic constants and checks.

Used by :mod:`mlip_props.properties.diatomic`, which owns the scans; everything here works on the
distances (A) and binding energies E(r) - E(A) - E(B) (eV) of one curve, and on nothing else.

* :class:`MinimumSearch`: the refinement of a minimum. A polynomial in u = (r - r_c) / w is fitted
  to the points of a window [r_c - w, r_c + w]; its minimum gives r_e and its derivatives at r_e
  give k = V'', f3 = V''', f4 = V''''. The window is re-centred on r_e and narrowed until two
  successive r_e differ by less than ``tol_A``.
* :func:`spectroscopic_constants`: omega_e = sqrt(k / mu) and
  omega_e x_e = hbar^2 / (16 mu k) (5 f3^2 / (3 k) - f4) (Dunham, Phys. Rev. 41, 721 (1932);
  second-order perturbation theory of the cubic and first-order of the quartic term).
* :func:`curve_checks`: repulsive wall, flat tail, spurious minima and kinks of the uniform scan.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import units

_HBAR = units._hbar * units.J * units.second  # eV * (ASE time)
#: a local minimum counts when it is this much (eV) below its neighbouring maxima
PROMINENCE_EV = 1e-5


def fit_minimum(r: np.ndarray, e: np.ndarray, center: float, width: float,
                deg: int) -> tuple[float, list[float]] | None:
    """Minimum r_e (A) of a degree-``deg`` polynomial fit in u = (r - center) / width and the energy
    derivatives 0..4 (eV/A^n) there; ``None`` when the fit has no minimum with |u| <= 1.2."""
    c = np.polynomial.polynomial.polyfit((r - center) / width, e, deg)
    P = np.polynomial.Polynomial(c)
    d1, d2 = P.deriv(1), P.deriv(2)
    roots = [x.real for x in d1.roots() if abs(x.imag) < 1e-9 and -1.2 <= x.real <= 1.2 and d2(x.real) > 0]
    if not roots:
        return None
    u0 = min(roots, key=lambda x: (P(x), abs(x)))
    derivs = [float(P.deriv(n)(u0)) / width**n if n else float(P(u0)) for n in range(5)]
    return center + u0 * width, derivs


@dataclass
class MinimumSearch:
    """The refinement of one curve's minimum, one window per pass.

    Start it at the lowest point of the coarse scan (``center``, ``width`` 1.5 grid steps,
    ``bound`` whether that point is an interior minimum below the dissociation limit); then, while
    not ``done``, evaluate the curve at :meth:`window` and hand the energies to :meth:`update`.
    ``history``: r_e (A) of every pass; ``derivs``: V, V', V'', V''', V'''' (eV/A^n) at the last
    r_e; ``fit_failed``: a window's fit had no minimum (the curve is then reported unbound).
    """

    center: float
    width: float
    bound: bool
    tol_A: float
    deg: int
    done: bool = False
    n_passes: int = 0
    history: list[float] = field(default_factory=list)
    derivs: list[float] | None = None
    fit_failed: bool = False

    def __post_init__(self) -> None:
        self.done = self.done or not self.bound

    def window(self, n_points: int) -> np.ndarray:
        """The distances (A) of the next pass."""
        return np.linspace(self.center - self.width, self.center + self.width, n_points)

    def update(self, r: np.ndarray, e: np.ndarray) -> None:
        """Fit the window's binding energies ``e`` (eV) at ``r`` (A) and move the window."""
        self.n_passes += 1
        fit = fit_minimum(r, e, self.center, self.width, self.deg)
        if fit is None:
            self.done, self.bound, self.fit_failed = True, False, True
            return
        r_e, self.derivs = fit
        self.history.append(r_e)
        if len(self.history) > 1 and abs(self.history[-1] - self.history[-2]) < self.tol_A:
            self.done = True
            return
        shift = abs(r_e - self.center)
        self.center = r_e
        self.width = max(min(self.width, max(0.05 * r_e, 4 * shift)), 20 * self.tol_A)

    @property
    def bond_length_change_A(self) -> float:
        """|r_e(last pass) - r_e(previous pass)| (inf after fewer than two passes)."""
        return abs(self.history[-1] - self.history[-2]) if len(self.history) > 1 else float("inf")


def coarse_minimum(r: np.ndarray, e: np.ndarray) -> tuple[float, float, bool]:
    """``(center, width, bound)`` to start a :class:`MinimumSearch` from a uniform scan with NaN
    at failed points: the lowest finite point, 1.5 grid steps, and whether it is an interior
    minimum (finite neighbours) below the dissociation limit."""
    ok = np.isfinite(e)
    idx = np.where(ok)[0]
    j = idx[np.argmin(e[ok])]
    h = float(r[1] - r[0])
    bound = bool(0 < j < len(r) - 1 and ok[j - 1] and ok[j + 1] and e[j] < 0)
    return float(r[j]), 1.5 * h, bound


def spectroscopic_constants(k: float, f3: float, f4: float, mu_amu: float) -> tuple[float, float]:
    """omega_e and omega_e x_e in cm^-1 from V'', V''', V'''' (eV/A^n) and mu (amu); NaN for k <= 0.

    For a Morse potential V = D (1 - exp(-a x))^2 (k = 2 D a^2, f3 = -6 D a^3, f4 = 14 D a^4)
    omega_e x_e = hbar^2 a^2 / (2 mu), the exact Morse result."""
    if not k > 0:
        return float("nan"), float("nan")
    omega_eV = _HBAR * np.sqrt(k / mu_amu)
    wx_eV = _HBAR**2 / (16.0 * mu_amu * k) * (5.0 * f3 * f3 / (3.0 * k) - f4)
    return float(omega_eV / units.invcm), float(wx_eV / units.invcm)


def spurious_minima(e: np.ndarray) -> int:
    """Local minima of the curve besides the global one (prominence > :data:`PROMINENCE_EV`)."""
    from scipy.signal import find_peaks

    peaks, _ = find_peaks(-e, prominence=PROMINENCE_EV)
    return max(0, len(peaks) - 1) if len(peaks) else 0


def smoothness_ratio(r: np.ndarray, e: np.ndarray, r_e: float, k: float) -> float:
    """Largest |second difference - mean of its two neighbours| / (local scale) for r >= 0.9 r_e
    on the uniform coarse grid: ~ (V''''/V'') h^2 << 1 for a smooth curve, ~ 1 at a kink."""
    if len(r) < 5:
        return float("nan")
    h = float(np.median(np.diff(r)))
    d2 = e[2:] - 2 * e[1:-1] + e[:-2]
    inner = r[1:-1]
    res = d2[1:-1] - 0.5 * (d2[:-2] + d2[2:])
    scale = np.maximum.reduce([np.abs(d2[:-2]), np.abs(d2[1:-1]), np.abs(d2[2:])]) + 0.1 * abs(k) * h * h + 1e-9
    sel = inner[1:-1] >= 0.9 * r_e
    return float((np.abs(res) / scale)[sel].max()) if sel.any() else 0.0


def repulsive_wall_ok(r: np.ndarray, e: np.ndarray, r_ref: float) -> bool:
    """The energy rises monotonically from ``r_ref`` toward short range and ends above the
    dissociation limit (finite points of the uniform scan)."""
    wall = e[r <= r_ref]
    return bool(len(wall) >= 2 and np.all(np.diff(wall) < 0) and wall[0] > 0)


def long_range_flat(e: np.ndarray, dissociation_energy_eV: float) -> bool:
    """The curve ends at the dissociation limit: |E(r_max)| < max(1e-3 eV, 1e-3 D_e) and the
    last step changes the energy by less than 1e-4 eV."""
    if len(e) <= 2 or not np.isfinite(e[-1]):
        return False
    de = dissociation_energy_eV
    return bool(abs(e[-1]) < max(1e-3, 1e-3 * abs(de) if np.isfinite(de) else 1e-3) and abs(e[-1] - e[-2]) < 1e-4)
