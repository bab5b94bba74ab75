"""Diatomic molecules: bond length, dissociation energy, harmonic frequency and anharmonicity.

Method
------
1. One batched energy scan of every requested pair A-B from deep in the repulsive wall
   (``max(0.3 A, 0.4 r_guess)``, r_guess the sum of covalent radii) to the dissociation limit
   (``max(3 r_guess, r_guess + 2.5 A)``; for torch potentials at least the cutoff + 0.5 A), together
   with the isolated atoms of every element involved, in ONE backend call.
2. Local refinement: a denser batched scan (all pairs in one call) in a window around each
   minimum, fitted by a polynomial in (r - r_c); the fit's minimum gives r_e and its derivatives
   at r_e give k = V'', f3 = V''', f4 = V''''. The window is re-centred and narrowed until two
   successive r_e differ by less than ``tol_A`` (1e-4 A default).
3. Spectroscopic constants from the derivatives (Dunham, Phys. Rev. 41, 721 (1932); second-order
   perturbation theory of the cubic and first-order of the quartic term, e.g. Califano,
   *Vibrational States* (1976), or Herzberg, *Spectra of Diatomic Molecules* (1950)):

   * omega_e = sqrt(k / mu)                                   (harmonic frequency)
   * omega_e x_e = hbar^2 / (16 mu k) * (5 f3^2 / (3 k) - f4)  (energy units)

   For a Morse potential V = D (1 - exp(-a x))^2 (k = 2 D a^2, f3 = -6 D a^3, f4 = 14 D a^4) this
   gives omega_e x_e = hbar^2 a^2 / (2 mu), i.e. a^2 hbar / (4 pi c mu) in cm^-1 -- the exact
   Morse result.
4. D_e = E(A) + E(B) - V(r_e) from the isolated-atom energies (not from a Morse fit near the
   minimum, which overestimates D_e badly for stiff covalent bonds); zero-point energy
   ZPE = omega_e / 2 - omega_e x_e / 4 and D_0 = D_e - ZPE.

Reduced masses use the most abundant isotopes (table below, NIST/AME values) unless ``masses``
overrides them. Checks reported (never fixed): ``repulsive_wall_ok`` (energy rises monotonically
toward short range and ends above the dissociation limit), ``n_spurious_minima`` (local minima
besides the global one, prominence > 1e-5 eV), ``smooth`` (no kink: second differences of the
uniform scan agree with the average of their neighbours), ``long_range_flat``. Oracle points
that fail (e.g. single-reference CCSD(T) beyond ~2.5 A for N2) are dropped and listed; the scan
then ends at ``max_converged_distance_A``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from ase import Atoms, units
from ase.data import atomic_masses, atomic_numbers, covalent_radii

from ..backend.evaluate import evaluate, is_oracle
from ..backend.oracle import OracleError
from .result import PropertyResult

#: symbol -> mass (amu) of the most abundant isotope (NIST "Atomic Weights and Isotopic
#: Compositions", AME2016 masses). Elements not listed fall back to the standard atomic weight.
MOST_ABUNDANT_ISOTOPE_AMU: dict[str, float] = {
    "H": 1.00782503223, "He": 4.00260325413, "Li": 7.0160034366, "Be": 9.012183065,
    "B": 11.00930536, "C": 12.0, "N": 14.00307400443, "O": 15.99491461957, "F": 18.99840316273,
    "Ne": 19.9924401762, "Na": 22.9897692820, "Mg": 23.985041697, "Al": 26.98153853,
    "Si": 27.97692653465, "P": 30.97376199842, "S": 31.9720711744, "Cl": 34.968852682,
    "Ar": 39.9623831237, "K": 38.9637064864, "Ca": 39.962590863, "Br": 78.9183376,
    "Kr": 83.9114977282, "I": 126.9044719, "Xe": 131.9041550856, "Cs": 132.905451961,
}
#: named isotopes accepted in ``masses`` (amu).
NAMED_ISOTOPES_AMU: dict[str, float] = {
    "D": 2.01410177812, "T": 3.0160492779, "13C": 13.00335483507, "15N": 15.00010889888,
    "18O": 17.99915961286, "37Cl": 36.965902602,
}

_HBAR = units._hbar * units.J * units.second  # eV * (ASE time)
_PROMINENCE_EV = 1e-5


def isotope_mass(symbol: str) -> tuple[float, bool]:
    """Mass (amu) of the most abundant isotope of ``symbol`` (or of a named isotope such as "D")
    and whether it came from the isotope table (``False``: standard atomic weight)."""
    if symbol in NAMED_ISOTOPES_AMU:
        return NAMED_ISOTOPES_AMU[symbol], True
    if symbol in MOST_ABUNDANT_ISOTOPE_AMU:
        return MOST_ABUNDANT_ISOTOPE_AMU[symbol], True
    if symbol not in atomic_numbers:
        raise ValueError(f"unknown element {symbol!r}")
    return float(atomic_masses[atomic_numbers[symbol]]), False


@dataclass(frozen=True)
class DiatomicResult(PropertyResult):
    """Spectroscopic constants and the energy curve of one diatomic A-B.

    Energies in eV, distances in Angstrom, frequencies in cm^-1, masses in amu. ``energies_eV``
    is the binding curve E(r) - E(A) - E(B) at ``distances_A`` (coarse and refinement points,
    sorted). ``D0_eV = dissociation_energy_eV - zero_point_energy_eV``.
    """

    name: str
    symbols: tuple[str, str]
    masses_amu: tuple[float, float]
    reduced_mass_amu: float
    bound: bool
    bond_length_A: float
    bond_length_converged: bool
    bond_length_change_A: float  # |r_e(last pass) - r_e(previous pass)|
    dissociation_energy_eV: float
    D0_eV: float
    zero_point_energy_eV: float
    omega_e_cm1: float
    omega_e_x_e_cm1: float
    force_constant_eV_A2: float
    third_derivative_eV_A3: float
    fourth_derivative_eV_A4: float
    energy_at_minimum_eV: float
    isolated_atom_energies_eV: tuple[float, float]
    distances_A: list[float]
    energies_eV: list[float]
    scan_range_A: tuple[float, float]
    max_converged_distance_A: float
    failed_distances_A: list[float]
    long_range_flat: bool
    repulsive_wall_ok: bool
    n_spurious_minima: int
    smooth: bool
    smoothness_ratio: float
    n_refinement_passes: int
    potential: str = ""
    notes: list[str] = field(default_factory=list)
    n_members: int | None = None
    bond_length_A_std: float | None = None
    bond_length_A_members: list[float] | None = None
    dissociation_energy_eV_std: float | None = None
    dissociation_energy_eV_members: list[float] | None = None
    omega_e_cm1_std: float | None = None
    omega_e_cm1_members: list[float] | None = None
    omega_e_x_e_cm1_std: float | None = None
    D0_eV_std: float | None = None


# ------------------------------------------------------------------------------ input parsing
_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")


def parse_pair(spec: Any, index: int = 0) -> tuple[str, str]:
    """"N2", "CO", "HCl", "H-F" or ("C", "O") -> a pair of element symbols; ValueError otherwise."""
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and all(isinstance(s, str) for s in spec):
        syms = [s.strip() for s in spec]
    elif isinstance(spec, str):
        text = spec.replace("-", "").replace(" ", "")
        if not text or _TOKEN.sub("", text):
            raise ValueError(f"pair {index}: cannot parse {spec!r} as a diatomic (e.g. 'N2', 'CO', ('H', 'Cl'))")
        syms = []
        for sym, count in _TOKEN.findall(text):
            syms += [sym] * (int(count) if count else 1)
    else:
        raise ValueError(f"pair {index}: expected a formula like 'N2' or a tuple of two symbols, got {spec!r}")
    if len(syms) != 2:
        raise ValueError(f"pair {index}: {spec!r} has {len(syms)} atoms, a diatomic needs 2")
    for s in syms:
        if s not in atomic_numbers or atomic_numbers[s] == 0:
            raise ValueError(f"pair {index}: unknown element {s!r} in {spec!r}")
    return syms[0], syms[1]


def _pair_name(a: str, b: str) -> str:
    return f"{a}2" if a == b else f"{a}{b}"


def _dimer(a: str, b: str, r: float) -> Atoms:
    return Atoms([a, b], positions=[[0.0, 0.0, 0.0], [0.0, 0.0, float(r)]])


# ------------------------------------------------------------------------------ evaluation
_STRUCT_RE = re.compile(r"structure (\d+)")


def _energies(potential: Any, structures: list[Atoms], may_fail: np.ndarray,
              members: list | None = None) -> tuple[np.ndarray, list[int]]:
    """Energies (eV) of all structures in one backend call. For oracles, a failed point whose
    ``may_fail`` flag is set is recorded (NaN) and the call is repeated for the remaining points
    (oracles cache or are cheap to rerun for done points); any other failure is raised.
    Committees (energies (B, M)): the mean curve is returned and, when ``members`` is a list, the
    (B, M) member energies are appended to it."""
    if not is_oracle(potential):
        e = evaluate(potential, structures, ("energy",)).energies_eV
        if e.ndim == 2 and members is not None:
            members.append(np.asarray(e, dtype=float))
        return (e.mean(axis=1) if e.ndim == 2 else e), []  # committees: the mean curve
    todo = list(range(len(structures)))
    out = np.full(len(structures), np.nan)
    failed: list[int] = []
    while todo:
        try:
            e = evaluate(potential, [structures[k] for k in todo], ("energy",)).energies_eV
        except OracleError as exc:
            m = _STRUCT_RE.search(str(exc))
            if m is None:
                raise
            bad = todo[int(m.group(1))]
            if not may_fail[bad]:
                raise
            # single-reference methods fail beyond some distance: drop the farther points of that pair too
            r_bad = structures[bad].get_distance(0, 1)
            tag = structures[bad].info.get("pair")
            drop = {bad} | {k for k in todo if may_fail[k] and structures[k].info.get("pair") == tag
                            and structures[k].get_distance(0, 1) > r_bad}
            failed.extend(drop)
            todo = [k for k in todo if k not in drop]
            continue
        out[todo] = e
        todo = []
    return out, sorted(failed)


# ------------------------------------------------------------------------------ analysis
def _poly_fit(r: np.ndarray, e: np.ndarray, center: float, width: float, deg: int):
    """Polynomial fit in u = (r - center) / width; returns the coefficient array (low to high)."""
    u = (r - center) / width
    return np.polynomial.polynomial.polyfit(u, e, deg)


def _fit_minimum(r: np.ndarray, e: np.ndarray, center: float, width: float, deg: int) -> tuple[float, list[float]] | None:
    """Minimum of a polynomial fit and the energy derivatives 0..4 (eV/A^n) there, or None."""
    c = _poly_fit(r, e, center, width, deg)
    P = np.polynomial.Polynomial(c)
    d1, d2 = P.deriv(1), P.deriv(2)
    roots = [x.real for x in d1.roots() if abs(x.imag) < 1e-9 and -1.2 <= x.real <= 1.2 and d2(x.real) > 0]
    if not roots:
        return None
    u0 = min(roots, key=lambda x: (P(x), abs(x)))
    derivs = [float(P.deriv(n)(u0)) / width**n if n else float(P(u0)) for n in range(5)]
    return center + u0 * width, derivs


def _spurious_minima(e: np.ndarray) -> int:
    from scipy.signal import find_peaks

    peaks, _ = find_peaks(-e, prominence=_PROMINENCE_EV)
    return max(0, len(peaks) - 1) if len(peaks) else 0


def _smoothness(r: np.ndarray, e: np.ndarray, r_e: float, k: float) -> float:
    """Largest |second difference - mean of its two neighbours| / (local scale) for r >= 0.9 r_e
    on the uniform coarse grid: ~ (V''''/V'') h^2 << 1 for a smooth curve, ~ 1 at a kink."""
    if len(r) < 5:
        return float("nan")
    h = float(np.median(np.diff(r)))
    d2 = e[2:] - 2 * e[1:-1] + e[:-2]
    rr = r[1:-1]
    res = d2[1:-1] - 0.5 * (d2[:-2] + d2[2:])
    scale = np.maximum.reduce([np.abs(d2[:-2]), np.abs(d2[1:-1]), np.abs(d2[2:])]) + 0.1 * abs(k) * h * h + 1e-9
    sel = rr[1:-1] >= 0.9 * r_e
    return float((np.abs(res) / scale)[sel].max()) if sel.any() else 0.0


def _spectroscopic(k: float, f3: float, f4: float, mu_amu: float) -> tuple[float, float]:
    """omega_e and omega_e x_e in cm^-1 from V'', V''', V'''' (eV/A^n) and mu (amu)."""
    if not k > 0:
        return float("nan"), float("nan")
    omega_eV = _HBAR * np.sqrt(k / mu_amu)
    wx_eV = _HBAR**2 / (16.0 * mu_amu * k) * (5.0 * f3 * f3 / (3.0 * k) - f4)
    return float(omega_eV / units.invcm), float(wx_eV / units.invcm)


def _member_spread(tracks: list[dict[str, Any]], mu: float) -> dict[str, Any]:
    """Committee std (ddof 0) and per-member values of r_e, D_e, omega_e, omega_e x_e and D_0
    from each member's own refined minimum (``tracks``: the members' refinement states)."""
    vals = []
    for t in tracks:
        v0, _, k, f3, f4 = t["derivs"]
        om, wx = _spectroscopic(k, f3, f4, mu)
        vals.append((t["history"][-1], -v0, om, wx, -v0 - (om / 2.0 - wx / 4.0) * units.invcm))
    v = np.array(vals)
    sd = v.std(axis=0)
    return dict(bond_length_A_std=float(sd[0]), bond_length_A_members=v[:, 0].tolist(),
                dissociation_energy_eV_std=float(sd[1]), dissociation_energy_eV_members=v[:, 1].tolist(),
                omega_e_cm1_std=float(sd[2]), omega_e_cm1_members=v[:, 2].tolist(),
                omega_e_x_e_cm1_std=float(sd[3]), D0_eV_std=float(sd[4]))


# ------------------------------------------------------------------------------ public API
def diatomic(
    potential: Any,
    pairs: Any,
    *,
    masses: Sequence[Any] | None = None,
    r_min_A: float | None = None,
    r_max_A: float | None = None,
    n_points: int | None = None,
    n_refine: int | None = None,
    tol_A: float = 1e-4,
    max_passes: int = 4,
    smooth_threshold: float = 0.5,
) -> DiatomicResult | list[DiatomicResult]:
    """Scan the energy of diatomic pair(s) and derive r_e (A), D_e, D_0 (eV), omega_e and
    omega_e x_e (cm^-1) -- see the module docstring for the method and references.

    ``pairs``: "N2", "CO", ("C", "O"), or a list of those (-> list of results). ``masses``: per
    pair (or, for a single pair, directly) two masses in amu or isotope names ("D", "13C");
    default the most abundant isotopes. ``n_points``: coarse scan points per pair (default 400
    for torch potentials, 24 for oracles); ``n_refine``: points per refinement pass (15 / 9).
    All scan points of all pairs and the isolated atoms go through one backend call, each
    refinement pass through one more.
    """
    single = isinstance(pairs, (str, tuple))
    specs = [pairs] if single else list(pairs)
    if not specs:
        raise ValueError("no pairs given")
    syms = [parse_pair(s, i) for i, s in enumerate(specs)]
    oracle = is_oracle(potential)
    n_points = n_points or (24 if oracle else 400)
    n_refine = n_refine or (9 if oracle else 15)
    deg = min(8, n_refine - 3) if not oracle else min(6, n_refine - 3)
    if n_points < 8 or n_refine < 6:
        raise ValueError("n_points must be >= 8 and n_refine >= 6")

    # masses
    if masses is None:
        mass_list = [None] * len(syms)
    elif single:
        mass_list = [masses]
    else:
        mass_list = list(masses)
        if len(mass_list) != len(syms):
            raise ValueError(f"masses: got {len(mass_list)} entries for {len(syms)} pairs")
    pair_masses, notes_all = [], []
    for i, ((a, b), m) in enumerate(zip(syms, mass_list)):
        notes: list[str] = []
        if m is None:
            ms = []
            for s in (a, b):
                v, ok = isotope_mass(s)
                if not ok:
                    notes.append(f"no isotope mass for {s}: standard atomic weight {v:.4f} amu used")
                ms.append(v)
        else:
            if len(m) != 2:
                raise ValueError(f"pair {i}: masses need two entries, got {m!r}")
            ms = [isotope_mass(x)[0] if isinstance(x, str) else float(x) for x in m]
            if min(ms) <= 0:
                raise ValueError(f"pair {i}: masses must be positive, got {ms}")
        pair_masses.append(tuple(ms))
        notes_all.append(notes)

    # coarse grids
    cutoff = getattr(potential, "cutoff", None)
    grids = []
    for a, b in syms:
        rg = covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]]
        lo = r_min_A if r_min_A is not None else max(0.3, 0.4 * rg)
        hi = r_max_A if r_max_A is not None else max(3.0 * rg, rg + 2.5)
        if r_max_A is None and not oracle and cutoff:
            hi = max(hi, min(float(cutoff) + 0.5, 25.0))
        if not hi > lo > 0:
            raise ValueError(f"bad scan range [{lo}, {hi}] A")
        grids.append(np.linspace(lo, hi, n_points))

    elements = sorted({s for p in syms for s in p}, key=lambda s: atomic_numbers[s])
    structures: list[Atoms] = []
    may_fail: list[bool] = []
    for i, ((a, b), g) in enumerate(zip(syms, grids)):
        for r in g:
            at = _dimer(a, b, r)
            at.info["pair"] = i
            structures.append(at)
            may_fail.append(True)
    for s in elements:
        structures.append(Atoms([s], positions=[[0.0, 0.0, 0.0]]))
        may_fail.append(False)
    member_e: list[np.ndarray] = []
    e_all, failed = _energies(potential, structures, np.array(may_fail), member_e)
    n_scan = len(syms) * n_points
    e_atom = dict(zip(elements, e_all[n_scan:]))
    committee = bool(member_e) and member_e[0].shape[1] > 1
    e_atom_m = dict(zip(elements, member_e[0][n_scan:])) if committee else {}  # (M,) per element

    curves_r = [list(g) for g in grids]
    curves_e = []
    failed_r: list[list[float]] = [[] for _ in syms]
    for i in range(len(syms)):
        e = e_all[i * n_points : (i + 1) * n_points] - e_atom[syms[i][0]] - e_atom[syms[i][1]]
        curves_e.append(list(e))
    for k in failed:
        if k < n_scan:
            failed_r[k // n_points].append(float(grids[k // n_points][k % n_points]))

    # coarse minima
    centers, widths, bound = [], [], []
    for i, g in enumerate(grids):
        e = np.asarray(curves_e[i])
        ok = np.isfinite(e)
        if ok.sum() < 5:
            raise ValueError(f"pair {i} ({_pair_name(*syms[i])}): fewer than 5 scan points converged")
        idx = np.where(ok)[0]
        j = idx[np.argmin(e[ok])]
        h = float(g[1] - g[0])
        is_bound = 0 < j < len(g) - 1 and ok[j - 1] and ok[j + 1] and e[j] < 0
        bound.append(is_bound)
        centers.append(float(g[j]))
        widths.append(1.5 * h)

    # committees: every member's own minimum is refined with the same protocol as the mean curve,
    # its window points riding in the same backend calls (no extra call)
    tracks: dict[tuple[int, int], dict[str, Any]] = {}
    if committee:
        for i, g in enumerate(grids):
            a, b = syms[i]
            em = member_e[0][i * n_points:(i + 1) * n_points] - e_atom_m[a] - e_atom_m[b]  # (n_points, M)
            for m in range(em.shape[1]):
                j = int(np.argmin(em[:, m]))
                ok_m = bool(bound[i] and 0 < j < len(g) - 1 and em[j, m] < 0)
                tracks[(i, m)] = {"center": float(g[j]), "width": 1.5 * float(g[1] - g[0]), "done": not ok_m,
                                  "bound": ok_m, "history": [], "derivs": None}

    # refinement passes: all unfinished pairs in one call per pass
    history: list[list[float]] = [[] for _ in syms]
    derivs: list[list[float] | None] = [None] * len(syms)
    done = [not b for b in bound]
    n_pass = [0] * len(syms)
    for _pass in range(max_passes):
        active = [i for i in range(len(syms)) if not done[i]]
        active_m = [key for key, t in tracks.items() if not t["done"]]
        if not active and not active_m:
            break
        structs, owners = [], []
        for i in active:
            rr = np.linspace(centers[i] - widths[i], centers[i] + widths[i], n_refine)
            for r in rr:
                structs.append(_dimer(*syms[i], r))
                owners.append((i, r))
        for key in active_m:
            t = tracks[key]
            for r in np.linspace(t["center"] - t["width"], t["center"] + t["width"], n_refine):
                structs.append(_dimer(*syms[key[0]], r))
                owners.append((key, r))
        pass_m: list[np.ndarray] = []
        e_ref, _ = _energies(potential, structs, np.zeros(len(structs), bool), pass_m if committee else None)
        for key in active_m:
            i, m = key
            t = tracks[key]
            sel = [k for k, (o, _) in enumerate(owners) if o == key]
            rr = np.array([owners[k][1] for k in sel])
            fit = _fit_minimum(rr, pass_m[0][sel, m] - e_atom_m[syms[i][0]][m] - e_atom_m[syms[i][1]][m],
                               t["center"], t["width"], deg)
            if fit is None:
                t.update(done=True, bound=False)
                continue
            t["history"].append(fit[0])
            t["derivs"] = fit[1]
            if len(t["history"]) > 1 and abs(t["history"][-1] - t["history"][-2]) < tol_A:
                t["done"] = True
            else:
                shift = abs(fit[0] - t["center"])
                t["center"] = fit[0]
                t["width"] = max(min(t["width"], max(0.05 * fit[0], 4 * shift)), 20 * tol_A)
        for i in active:
            n_pass[i] += 1
            sel = [k for k, (o, _) in enumerate(owners) if o == i]
            rr = np.array([owners[k][1] for k in sel])
            ee = e_ref[sel] - e_atom[syms[i][0]] - e_atom[syms[i][1]]
            curves_r[i].extend(rr.tolist())
            curves_e[i].extend(ee.tolist())
            fit = _fit_minimum(rr, ee, centers[i], widths[i], deg)
            if fit is None:
                done[i] = True
                bound[i] = False
                notes_all[i].append("refinement fit found no minimum in the window")
                continue
            r_e, d = fit
            history[i].append(r_e)
            derivs[i] = d
            converged = len(history[i]) > 1 and abs(history[i][-1] - history[i][-2]) < tol_A
            if converged:
                done[i] = True
            else:
                shift = abs(r_e - centers[i])
                centers[i] = r_e
                widths[i] = max(min(widths[i], max(0.05 * r_e, 4 * shift)), 20 * tol_A)

    results = []
    for i, (a, b) in enumerate(syms):
        m1, m2 = pair_masses[i]
        mu = m1 * m2 / (m1 + m2)
        order = np.argsort(curves_r[i])
        rr = np.asarray(curves_r[i])[order]
        ee = np.asarray(curves_e[i])[order]
        g = grids[i]
        e_coarse = np.asarray(curves_e[i][: len(g)])
        ok = np.isfinite(e_coarse)
        gk, ek = g[ok], e_coarse[ok]
        notes = notes_all[i]
        if bound[i] and derivs[i] is not None:
            r_e = history[i][-1]
            v0, _, k, f3, f4 = derivs[i]
            w, wx = _spectroscopic(k, f3, f4, mu)
            change = abs(history[i][-1] - history[i][-2]) if len(history[i]) > 1 else float("inf")
        else:
            r_e, v0, k, f3, f4, w, wx, change = (float("nan"),) * 8
            if not bound[i]:
                notes.append("no bound minimum inside the scan")
        de = -v0
        zpe = (w / 2.0 - wx / 4.0) * units.invcm
        # checks on the coarse uniform grid
        ref_r = r_e if np.isfinite(r_e) else (gk[np.argmin(ek)] if len(ek) else np.nan)
        wall = ek[gk <= ref_r]
        wall_ok = bool(len(wall) >= 2 and np.all(np.diff(wall) < 0) and wall[0] > 0)
        tail = ek[-1] if len(ek) else np.nan
        flat = bool(np.isfinite(tail) and abs(tail) < max(1e-3, 1e-3 * abs(de) if np.isfinite(de) else 1e-3)
                    and len(ek) > 2 and abs(ek[-1] - ek[-2]) < 1e-4)
        ratio = _smoothness(gk, ek, ref_r, k if np.isfinite(k) else 0.0)
        if np.isfinite(r_e) and 3.0 * r_e > g[-1] and not flat:
            notes.append(f"scan ends at {g[-1]:.2f} A < 3 r_e and the curve is not flat there; pass r_max_A")
        if failed_r[i]:
            notes.append(f"{len(failed_r[i])} scan point(s) failed from {min(failed_r[i]):.3f} A on; "
                         f"scan ends at {gk.max():.3f} A")
        spread: dict[str, Any] = {}
        if committee:
            mine = [tracks[(i, m)] for m in range(member_e[0].shape[1])]
            spread["n_members"] = len(mine)
            if bound[i] and all(t["bound"] and t["derivs"] is not None for t in mine):
                spread.update(_member_spread(mine, mu))
                if not all(t["done"] for t in mine):
                    notes.append(f"committee: a member's r_e did not converge to {tol_A} A in {max_passes} passes")
            elif bound[i]:
                notes.append("committee std not available: member(s) "
                             f"{[m for m, t in enumerate(mine) if not t['bound']]} have no bound minimum")
        results.append(DiatomicResult(
            name=_pair_name(a, b), symbols=(a, b), masses_amu=(m1, m2), reduced_mass_amu=mu,
            bound=bool(bound[i]), bond_length_A=float(r_e), bond_length_converged=bool(change < tol_A),
            bond_length_change_A=float(change), dissociation_energy_eV=float(de), D0_eV=float(de - zpe),
            zero_point_energy_eV=float(zpe), omega_e_cm1=float(w), omega_e_x_e_cm1=float(wx),
            force_constant_eV_A2=float(k), third_derivative_eV_A3=float(f3), fourth_derivative_eV_A4=float(f4),
            energy_at_minimum_eV=float(v0 + e_atom[a] + e_atom[b]),
            isolated_atom_energies_eV=(float(e_atom[a]), float(e_atom[b])),
            distances_A=rr.tolist(), energies_eV=ee.tolist(), scan_range_A=(float(g[0]), float(g[-1])),
            max_converged_distance_A=float(gk.max()), failed_distances_A=sorted(failed_r[i]),
            long_range_flat=flat, repulsive_wall_ok=wall_ok, n_spurious_minima=_spurious_minima(ek),
            smooth=bool(ratio < smooth_threshold), smoothness_ratio=ratio, n_refinement_passes=n_pass[i],
            potential=getattr(potential, "name", type(potential).__name__), notes=notes, **spread,
        ))
    return results[0] if single else results


def plot_diatomic_curves(results: DiatomicResult | Sequence[DiatomicResult], ax=None, path: str | None = None,
                         e_range_eV: tuple[float, float] | None = None):
    """Plot binding curves E(r) - E(A) - E(B) (eV vs A) of one or many results; mark r_e.

    Returns the matplotlib Axes; with ``path`` the figure is also saved there.
    """
    import matplotlib

    if ax is None:
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    res = [results] if isinstance(results, DiatomicResult) else list(results)
    lo = 0.0
    for r in res:
        line, = ax.plot(r.distances_A, r.energies_eV, label=f"{r.name} (r_e={r.bond_length_A:.4f} A)")
        if r.bound:
            ax.plot([r.bond_length_A], [-r.dissociation_energy_eV], "o", color=line.get_color())
            lo = min(lo, -r.dissociation_energy_eV)
    ax.axhline(0.0, color="gray", lw=0.5)
    ax.set_ylim(*(e_range_eV or (1.15 * lo - 0.1, max(1.0, -0.6 * lo))))
    ax.set_xlabel("r (Angstrom)")
    ax.set_ylabel("E(r) - E(A) - E(B) (eV)")
    ax.legend(fontsize=8)
    if path:
        ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    return ax
