"""Thermal sums over phonon frequencies (phonopy's ``ThermalProperties`` on a mesh), Debye
temperatures and the constants they use."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from ..phonons import mesh_object, sampling_mesh

#: molar gas constant J/(mol K) (CODATA 2018, exact).
R_J_MOLK = 8.314462618
#: Planck / Boltzmann, K per THz.
H_OVER_KB_K_THZ = 47.99243073366221
#: 1 eV per atom in kJ/mol.
EV_TO_KJ_MOL = 96.48533212331002


def default_temperatures() -> np.ndarray:
    """0 to 2000 K in 10 K steps, plus 298.15 K."""
    return np.unique(np.r_[np.arange(0.0, 2000.0 + 1e-9, 10.0), 298.15])


def debye_cv(t_over_theta: np.ndarray) -> np.ndarray:
    """Debye heat capacity per mole of atoms, J/(mol K): 9R (T/theta)^3 int_0^{theta/T} x^4 e^x/(e^x-1)^2 dx."""
    from scipy.integrate import quad

    out = []
    for t in np.atleast_1d(t_over_theta):
        if t <= 0:
            out.append(0.0)
            continue
        xd = 1.0 / t
        val, _ = quad(lambda x: x**4 * np.exp(-x) / (-np.expm1(-x)) ** 2 if x > 0 else 0.0, 0.0, xd, limit=200)
        out.append(9.0 * R_J_MOLK * t**3 * val)
    return np.array(out)


@lru_cache(maxsize=1)
def _debye_table() -> tuple[np.ndarray, np.ndarray]:
    t = np.logspace(-2.5, 2.5, 3000)  # T / theta_D
    return t, debye_cv(t) / (3.0 * R_J_MOLK)


def debye_temperature_from_cv(temperatures_K: np.ndarray, cv_J_molK: np.ndarray) -> np.ndarray:
    """theta_D(T) such that the Debye Cv equals the given Cv (per mole of atoms), by inverting
    the (monotonic) Debye function on a dense table; NaN where Cv is outside (1 %, 99.99 %) of
    3R, where the inversion is ill-conditioned."""
    t_tab, c_tab = _debye_table()
    temps = np.asarray(temperatures_K, dtype=float)
    frac = np.asarray(cv_J_molK, dtype=float) / (3.0 * R_J_MOLK)
    ok = (temps > 0) & (frac > 0.01) & (frac < 0.9999)
    out = np.full(len(temps), np.nan)
    # log-log interpolation of T/theta as a function of Cv/3R
    x = np.interp(np.log(frac[ok]), np.log(c_tab), np.log(t_tab))
    out[ok] = temps[ok] / np.exp(x)
    return out


def moment_debye_temperature(mesh) -> float:
    """theta_D(2) = (h/k_B) sqrt(5/3 <nu^2>) (K) over the positive frequencies of a run phonopy
    ``Mesh``, weighted by the mesh weights."""
    f = np.asarray(mesh.frequencies)
    w = np.asarray(mesh.weights, dtype=float)[:, None] * np.ones_like(f)
    pos = f > 0
    nu2 = (f[pos] ** 2 * w[pos]).sum() / w[pos].sum()
    return float(H_OVER_KB_K_THZ * np.sqrt(5.0 / 3.0 * nu2))


def thermal_mesh(ph, mesh: float | Sequence[int]) -> np.ndarray:
    """Mesh numbers (3 ints) of a thermal sampling mesh given as 3 ints or as a length (A,
    phonopy's ``length2mesh`` on the primitive cell of the phonopy object ``ph``)."""
    return sampling_mesh(mesh, ph)


def mesh_thermal_properties(ph, mesh: Sequence[int], temperatures_K: Sequence[float], symmetry: Any = None,
                            existing_mesh: Any = None) -> dict[str, Any]:
    """phonopy's harmonic thermal properties on a Gamma-centred mesh, per mole of PRIMITIVE CELLS:
    ``"free_energy"`` (kJ/mol, zero-point energy included), ``"entropy"`` and
    ``"heat_capacity"`` (J/(mol K)) on ``"temperatures"`` (K); ``"mesh"``: the run phonopy
    ``Mesh``. The three Gamma acoustic modes are excluded (phonopy's ``exclude_gamma_acoustic``).

    ``existing_mesh``: an already run phonopy ``Mesh`` of ``ph``, used when it has the same mesh
    numbers (no second diagonalisation); ``symmetry``: the primitive cell's phonopy ``Symmetry``
    for a new mesh (default: ``ph``'s own, through ``ph.run_mesh``)."""
    from phonopy.phonon.thermal_properties import ThermalProperties

    mesh = np.asarray(mesh, dtype=int)
    if existing_mesh is not None and np.array_equal(np.asarray(existing_mesh.mesh_numbers), mesh):
        m = existing_mesh
    elif symmetry is not None:
        m = mesh_object(ph, symmetry, mesh)
    else:
        ph.run_mesh(mesh, is_gamma_center=True)
        m = ph.mesh
    tp = ThermalProperties(m, exclude_gamma_acoustic=True)
    tp.temperatures = temperatures_K
    tp.run()
    return {"temperatures": np.asarray(tp.temperatures), "free_energy": np.asarray(tp.free_energy),
            "entropy": np.asarray(tp.entropy), "heat_capacity": np.asarray(tp.heat_capacity), "mesh": m}
