"""LO-TO splitting: which crystals need it, and phonopy's non-analytical correction (NAC).

In a polar insulator the long-range dipole field of the optical modes near Gamma raises the
longitudinal optical (LO) frequency above the transverse (TO) one (Born & Huang 1954; Cochran &
Cowley, J. Phys. Chem. Solids 23, 447 (1962)): for a cubic diatomic crystal

    omega_LO^2 - omega_TO^2 = Z*^2 e^2 / (eps0 eps_inf V mu),

Z* the Born effective charge (e), eps_inf the electronic dielectric constant, V the primitive
cell volume and mu the reduced mass. Force constants of a finite supercell (and machine-learned
potentials, which have no long-range electrostatics) miss this term: without Born charges and
eps_inf the phonons of a polar crystal have no LO-TO splitting. The result says so
(``lo_to_missing``); the user can pass ``nac_params`` and phonopy adds the correction
(Gonze & Lee, Phys. Rev. B 55, 10355 (1997) by default, or Wang et al., J. Phys.: Condens.
Matter 22, 202201 (2010) with ``method="wang"``).

Which crystals are "polar" (:func:`is_polar`), a rule from the composition alone: at least two
elements and not all of them metals (pymatgen's ``Element.is_metal``). Compounds of a metal with
a non-metal or metalloid (MgO, GaN, NaCl, GaAs, SiC, ZnO ...) are flagged; elemental crystals
(Si, Cu: no Born charges by symmetry in the common structures) and intermetallics (Cu3Au, NiAl:
metals screen the macroscopic field) are not. Conservative where it errs: metallic compounds of
a metal and a non-metal (TiN, TiC) are flagged too, a harmless "may be missing"; trigonal Se/Te
(elemental, small non-zero Born charges) are not. ``polar=`` overrides the rule.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

#: e^2 / (4 pi eps0) in eV A: phonopy's NAC unit factor for eV, A, amu (``Hartree * Bohr``)
NAC_FACTOR_EV_A = 14.399651725922272


def is_polar(atoms: Atoms) -> bool:
    """The composition rule of this module: at least two elements, not all metals."""
    from pymatgen.core import Element

    symbols = set(atoms.get_chemical_symbols())
    return len(symbols) >= 2 and not all(Element(s).is_metal for s in symbols)


def lo_to_note(polar: bool, included: bool) -> str:
    """What the result's LO-TO fields mean for this structure."""
    if included:
        return ("LO-TO splitting included: phonopy's non-analytical correction with the given Born charges "
                "and dielectric tensor (at Gamma it needs a direction: band segments through Gamma use theirs; "
                "mesh and DOS Gamma points are TO only)")
    if polar:
        return ("polar crystal without Born charges: no LO-TO splitting (LO modes near Gamma are too low, "
                "equal to TO); pass nac_params={'born': ..., 'dielectric': ...} to include it")
    return "not polar by the composition rule (one element, or metals only): no LO-TO splitting expected"


def _as_born(born: Any, n: int, name: str) -> np.ndarray:
    z = np.asarray(born, dtype=float)
    if z.shape == (n,):
        z = z[:, None, None] * np.eye(3)
    if z.shape != (n, 3, 3) or not np.isfinite(z).all():
        raise ValueError(f"{name}: nac_params 'born' must be finite, one charge or one 3x3 tensor (e) per atom "
                         f"({n} atoms), got shape {np.shape(born)}")
    return z


def resolve_nac_params(nac_params: Any, atoms: Atoms, name: str) -> dict | None:
    """A user's ``nac_params`` for ``atoms`` (checked): ``{"born": one charge or 3x3 tensor (e) per atom
    of the input structure, "dielectric": eps_inf (a number or 3x3), optional "method": "gonze" |
    "wang"}``. Returns ``{"born_unit": (n, 3, 3), "dielectric": (3, 3), "method", "factor"}`` or
    ``None``. ``name`` (e.g. ``"structure 0"``) goes into error messages."""
    if nac_params is None:
        return None
    if not isinstance(nac_params, dict) or "born" not in nac_params or "dielectric" not in nac_params:
        raise ValueError(f"{name}: nac_params must be a dict with 'born' and 'dielectric' (and optional 'method')")
    unknown = set(nac_params) - {"born", "dielectric", "method"}
    if unknown:
        raise ValueError(f"{name}: unknown nac_params keys {sorted(unknown)} (allowed: born, dielectric, method)")
    born = _as_born(nac_params["born"], len(atoms), name)
    eps = np.asarray(nac_params["dielectric"], dtype=float)
    if eps.ndim == 0:
        eps = float(eps) * np.eye(3)
    if eps.shape != (3, 3) or not np.isfinite(eps).all():
        raise ValueError(f"{name}: nac_params 'dielectric' must be a finite number or 3x3 tensor, got shape "
                         f"{np.shape(nac_params['dielectric'])}")
    if not np.allclose(eps, eps.T, atol=1e-8) or np.linalg.eigvalsh(eps).min() <= 0:
        raise ValueError(f"{name}: nac_params 'dielectric' must be symmetric positive definite")
    method = nac_params.get("method", "gonze")
    if method not in ("gonze", "wang"):
        raise ValueError(f"{name}: nac_params 'method' must be 'gonze' or 'wang', got {method!r}")
    return {"born_unit": born, "dielectric": eps, "method": method, "factor": NAC_FACTOR_EV_A}


def charge_neutrality_e(resolved: dict | None) -> float | None:
    """Largest |sum over atoms of Z*_ab| (e): the charge sum rule, zero for consistent charges."""
    if resolved is None:
        return None
    return float(np.abs(resolved["born_unit"].sum(axis=0)).max())


def phonopy_nac_params(resolved: dict | None, harmonic: Any) -> dict | None:
    """phonopy's ``nac_params`` (Born charges of the primitive-cell atoms, in phonopy's primitive
    order) for a ``Phonopy`` object or :class:`~.force_constants.HarmonicModel` built from the
    structure whose per-atom charges ``resolved`` holds."""
    if resolved is None:
        return None
    supercell, primitive = harmonic.supercell, harmonic.primitive
    # supercell atom -> its unit-cell representative (a supercell index) -> unit-cell atom index
    s2u, u2u = np.asarray(supercell.s2u_map), supercell.u2u_map
    born = resolved["born_unit"][[int(u2u[s2u[int(p)]]) for p in primitive.p2s_map]]
    return {"born": np.ascontiguousarray(born), "dielectric": np.ascontiguousarray(resolved["dielectric"]),
            "factor": resolved["factor"], "method": resolved["method"]}
