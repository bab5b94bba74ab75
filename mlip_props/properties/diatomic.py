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

Reduced masses use the most abundant isotopes (:mod:`~mlip_props.properties.diatomic_species`,
NIST/AME values) unless ``masses`` overrides them. Checks reported (never fixed): ``repulsive_wall_ok`` (energy rises monotonically
toward short range and ends above the dissociation limit), ``n_spurious_minima`` (local minima
besides the global one, prominence > 1e-5 eV), ``smooth`` (no kink: second differences of the
uniform scan agree with the average of their neighbours), ``long_range_flat``. Oracle points
that fail (e.g. single-reference CCSD(T) beyond ~2.5 A for N2) are dropped and listed; the scan
then ends at ``max_converged_distance_A``.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from ase import Atoms, units
from ase.data import atomic_numbers, covalent_radii

from ..backend.evaluate import EvaluationResult, evaluate, is_oracle
from ..backend.inputs import is_single_structure
from ..backend.oracle import OracleError
from ..validation import check_number
from .diatomic_curve import (MinimumSearch, coarse_minimum, long_range_flat, repulsive_wall_ok, smoothness_ratio,
                             spectroscopic_constants, spurious_minima)
from .diatomic_species import (MOST_ABUNDANT_ISOTOPE_AMU, NAMED_ISOTOPES_AMU, isotope_mass,  # noqa: F401
                               pair_masses, pair_name, parse_pair)
from .plan import EvaluationPlan, analyse_members
from .result import PropertyResult


@dataclass(frozen=True)
class DiatomicResult(PropertyResult):
    """Spectroscopic constants and the energy curve of one diatomic A-B.

    Energies in eV, distances in Angstrom, frequencies in cm^-1, masses in amu. ``energies_eV``
    is the binding curve E(r) - E(A) - E(B) at ``distances_A`` (coarse and refinement points,
    sorted). ``D0_eV = dissociation_energy_eV - zero_point_energy_eV``.
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = (
        "bond_length_A", "dissociation_energy_eV", "D0_eV", "zero_point_energy_eV", "omega_e_cm1",
        "omega_e_x_e_cm1", "force_constant_eV_A2", "bound", "bond_length_converged", "repulsive_wall_ok",
        "n_spurious_minima", "smooth", "long_range_flat", "bond_length_A_std", "dissociation_energy_eV_std",
        "omega_e_cm1_std", "omega_e_x_e_cm1_std", "D0_eV_std")

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


def _dimer(a: str, b: str, r: float) -> Atoms:
    return Atoms([a, b], positions=[[0.0, 0.0, 0.0], [0.0, 0.0, float(r)]])


# ------------------------------------------------------------------------------ evaluation
_STRUCT_RE = re.compile(r"structure (\d+)")


def _energies(potential: Any, structures: list[Atoms], may_fail: np.ndarray, *, dtype: Any = None,
              device: Any = None) -> tuple[np.ndarray, list[int]]:
    """Energies (eV) of all structures in one backend call: (B,), or (B, M) for a committee. For
    oracles, a failed point whose ``may_fail`` flag is set is recorded (NaN), together with the
    farther points of its pair, and the call is repeated for the remaining points; any other
    failure is raised. Returns the energies and the indices of the failed points."""
    kw = dict(dtype=dtype or torch.float64, device=device)
    if not is_oracle(potential):
        return np.asarray(evaluate(potential, structures, ("energy",), **kw).energies_eV, dtype=float), []
    todo = list(range(len(structures)))
    out = np.full(len(structures), np.nan)
    failed: list[int] = []
    while todo:
        try:
            e = evaluate(potential, [structures[k] for k in todo], ("energy",), **kw).energies_eV
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


# ------------------------------------------------------------------------------ plan and analysis
#: two refinement windows of one pair are the same window when their centres and half-widths
#: agree to this (A): far below any window's spacing, far above the round-off of a refit
_WINDOW_MATCH_A = 1e-8


@dataclass
class DiatomicPlan(EvaluationPlan):
    """The scans of every pair: the uniform coarse grids (``grids[i]``, points that failed for an
    oracle left out: ``failed[i]``), the isolated atoms of every element, and every refinement
    window planning visited (``windows[i]``: (centre, half-width, distances, index of the first
    structure)); for a committee the windows of the mean curve and of each member's curve.

    ``analyse(answers)`` repeats the refinement of each pair's minimum on the answers' curve,
    reading each pass's window from the plan: the answers of the planned potential (or of one
    committee member, or of the committee mean) follow a path the plan holds. ``scan_answers``:
    the energies planning measured, in the order of ``structures`` (evaluating the plan again
    gives the same numbers)."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    masses_amu: list[tuple[float, float]] = field(default_factory=list)
    grids: list[np.ndarray] = field(default_factory=list)
    coarse_index: list[list[int]] = field(default_factory=list)  # structure index of each grid point, -1 failed
    failed: list[list[float]] = field(default_factory=list)
    atom_index: dict[str, int] = field(default_factory=dict)
    windows: list[list[tuple[float, float, np.ndarray, int]]] = field(default_factory=list)
    pair_notes: list[list[str]] = field(default_factory=list)
    tol_A: float = 1e-4
    max_passes: int = 4
    deg: int = 8
    smooth_threshold: float = 0.5
    potential_name: str = ""
    scan_answers: EvaluationResult | None = None

    def analyse(self, answers: EvaluationResult) -> list[DiatomicResult]:
        energies = np.asarray(answers.energies_eV, dtype=float)
        return [self._analyse_pair(i, energies) for i in range(len(self.pairs))]

    def binding_curve(self, i: int, energies: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Coarse-grid binding energies (eV; NaN where the point failed) of pair ``i`` and the two
        isolated-atom energies, from one potential's energies of ``structures``."""
        a, b = self.pairs[i]
        e_a, e_b = float(energies[self.atom_index[a]]), float(energies[self.atom_index[b]])
        idx = np.asarray(self.coarse_index[i])
        e = np.full(len(idx), np.nan)
        e[idx >= 0] = energies[idx[idx >= 0]] - e_a - e_b
        return e, e_a, e_b

    def start_search(self, i: int, curve: np.ndarray) -> MinimumSearch:
        """The refinement of pair ``i``'s minimum from its coarse binding curve."""
        if np.isfinite(curve).sum() < 5:
            raise ValueError(f"pair {i} ({pair_name(*self.pairs[i])}): fewer than 5 scan points converged")
        center, width, bound = coarse_minimum(self.grids[i], curve)
        return MinimumSearch(center, width, bound, self.tol_A, self.deg)

    def find_window(self, i: int, center: float, width: float) -> tuple[float, float, np.ndarray, int] | None:
        """The planned window of pair ``i`` with this centre and half-width (A), or ``None``."""
        for w in self.windows[i]:
            if abs(w[0] - center) < _WINDOW_MATCH_A and abs(w[1] - width) < _WINDOW_MATCH_A:
                return w
        return None

    def _window(self, i: int, center: float, width: float) -> tuple[float, float, np.ndarray, int]:
        w = self.find_window(i, center, width)
        if w is None:
            raise ValueError(f"pair {i} ({pair_name(*self.pairs[i])}): the answers lead the refinement to a "
                             f"window (r = {center:.6f} +- {width:.6f} A) this plan did not evaluate; analyse the "
                             "answers of the potential the plan was made with (or of one of its committee members)")
        return w

    def _analyse_pair(self, i: int, energies: np.ndarray) -> DiatomicResult:
        a, b = self.pairs[i]
        m1, m2 = self.masses_amu[i]
        mu = m1 * m2 / (m1 + m2)
        g = self.grids[i]
        curve, e_a, e_b = self.binding_curve(i, energies)
        search = self.start_search(i, curve)
        curve_r_A, curve_e_eV = list(g), list(curve)
        while not search.done and search.n_passes < self.max_passes:
            center, width, r, start = self._window(i, search.center, search.width)
            search.center, search.width = center, width
            e = energies[start : start + len(r)] - e_a - e_b
            curve_r_A.extend(r.tolist())
            curve_e_eV.extend(e.tolist())
            search.update(r, e)
        notes = list(self.pair_notes[i])
        if search.fit_failed:
            notes.append("refinement fit found no minimum in the window")
        if search.bound and search.derivs is not None:
            r_e = search.history[-1]
            v0, _, k, f3, f4 = search.derivs
            w, wx = spectroscopic_constants(k, f3, f4, mu)
            change = search.bond_length_change_A
        else:
            r_e, v0, k, f3, f4, w, wx, change = (float("nan"),) * 8
            if not search.bound:
                notes.append("no bound minimum inside the scan")
        de = -v0
        zpe = (w / 2.0 - wx / 4.0) * units.invcm
        # checks on the coarse uniform grid
        ok = np.isfinite(curve)
        gk, ek = g[ok], curve[ok]
        ref_r = r_e if np.isfinite(r_e) else (gk[np.argmin(ek)] if len(ek) else np.nan)
        flat = long_range_flat(ek, de)
        ratio = smoothness_ratio(gk, ek, ref_r, k if np.isfinite(k) else 0.0)
        if np.isfinite(r_e) and 3.0 * r_e > g[-1] and not flat:
            notes.append(f"scan ends at {g[-1]:.2f} A < 3 r_e and the curve is not flat there; pass r_max_A")
        if self.failed[i]:
            notes.append(f"{len(self.failed[i])} scan point(s) failed from {min(self.failed[i]):.3f} A on; "
                         f"scan ends at {gk.max():.3f} A")
        order = np.argsort(curve_r_A)
        return DiatomicResult(
            name=pair_name(a, b), symbols=(a, b), masses_amu=(m1, m2), reduced_mass_amu=mu,
            bound=bool(search.bound), bond_length_A=float(r_e), bond_length_converged=bool(change < self.tol_A),
            bond_length_change_A=float(change), dissociation_energy_eV=float(de), D0_eV=float(de - zpe),
            zero_point_energy_eV=float(zpe), omega_e_cm1=float(w), omega_e_x_e_cm1=float(wx),
            force_constant_eV_A2=float(k), third_derivative_eV_A3=float(f3), fourth_derivative_eV_A4=float(f4),
            energy_at_minimum_eV=float(v0 + e_a + e_b), isolated_atom_energies_eV=(e_a, e_b),
            distances_A=np.asarray(curve_r_A)[order].tolist(), energies_eV=np.asarray(curve_e_eV)[order].tolist(),
            scan_range_A=(float(g[0]), float(g[-1])), max_converged_distance_A=float(gk.max()),
            failed_distances_A=sorted(self.failed[i]), long_range_flat=flat,
            repulsive_wall_ok=repulsive_wall_ok(gk, ek, ref_r), n_spurious_minima=spurious_minima(ek),
            smooth=bool(ratio < self.smooth_threshold), smoothness_ratio=ratio, n_refinement_passes=search.n_passes,
            potential=self.potential_name, notes=notes,
        )


def _curve(energies: np.ndarray, c: int) -> np.ndarray:
    """Curve ``c`` of a scan's energies: 0 the potential's (a committee's mean), m + 1 member m's."""
    if energies.ndim == 1:
        return energies
    return energies.mean(axis=1) if c == 0 else energies[:, c - 1]


def plan_diatomic(
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
    dtype: Any = None,
    device: Any = None,
) -> DiatomicPlan:
    """Plan the scans of one pair or many (see :func:`diatomic`): the coarse grids and isolated
    atoms in one backend call, then the refinement windows of every minimum, one call per pass
    for all pairs (for a committee: the mean curve's and every member's minimum, in the same
    calls). Returns the plan with every geometry and the energies measured (``scan_answers``)."""
    for name, value in (("r_min_A", r_min_A), ("r_max_A", r_max_A)):
        check_number(name, value, minimum=0.0, exclusive_minimum=True, allow_none=True)
    check_number("n_points", n_points, minimum=8, integer=True, allow_none=True)
    check_number("n_refine", n_refine, minimum=6, integer=True, allow_none=True)
    check_number("tol_A", tol_A, minimum=0.0, exclusive_minimum=True)
    max_passes = check_number("max_passes", max_passes, minimum=0, integer=True)
    check_number("smooth_threshold", smooth_threshold, minimum=0.0, exclusive_minimum=True)
    single = isinstance(pairs, (str, tuple)) or is_single_structure(pairs)
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
    masses_amu, pair_notes = pair_masses(syms, masses, single)
    kw = dict(dtype=dtype, device=device)

    # coarse grids and isolated atoms: one call
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
    scan: list[Atoms] = []
    for i, ((a, b), g) in enumerate(zip(syms, grids)):
        for r in g:
            at = _dimer(a, b, r)
            at.info["pair"] = i
            scan.append(at)
    n_scan = len(scan)
    scan += [Atoms([s], positions=[[0.0, 0.0, 0.0]]) for s in elements]
    e_scan, failed_idx = _energies(potential, scan, np.arange(len(scan)) < n_scan, **kw)
    failed = set(failed_idx)
    keep = [k for k in range(len(scan)) if k not in failed]
    structures = [scan[k] for k in keep]
    answers = [e_scan[keep]]
    position = {k: j for j, k in enumerate(keep)}
    coarse_index = [[position.get(i * n_points + p, -1) for p in range(n_points)] for i in range(len(syms))]
    failed_r = [sorted(float(grids[k // n_points][k % n_points]) for k in failed_idx if k // n_points == i)
                for i in range(len(syms))]
    plan = DiatomicPlan(
        structures=structures, quantities=("energy",), single=single, pairs=syms, masses_amu=masses_amu,
        grids=grids, coarse_index=coarse_index, failed=failed_r,
        atom_index={s: position[n_scan + k] for k, s in enumerate(elements)}, windows=[[] for _ in syms],
        pair_notes=pair_notes, tol_A=tol_A, max_passes=max_passes, deg=deg, smooth_threshold=smooth_threshold,
        potential_name=getattr(potential, "name", type(potential).__name__))

    # the curves whose minima are refined: the potential's (the committee mean's) and each member's
    n_curves = 1 + (e_scan.shape[1] if e_scan.ndim == 2 else 0)
    curves = [_curve(e_scan[keep], c) for c in range(n_curves)]
    searches = []  # (pair, curve, isolated-atom energies, search)
    for c, energies in enumerate(curves):
        for i in range(len(syms)):
            coarse, e_a, e_b = plan.binding_curve(i, energies)
            searches.append((i, c, (e_a, e_b), plan.start_search(i, coarse)))

    # refinement passes: every unfinished search of every pair and curve in one call per pass
    for _ in range(max_passes):
        active = [s for s in searches if not s[3].done]
        if not active:
            break
        new: list[Atoms] = []
        for i, _c, _atoms, search in active:
            if plan.find_window(i, search.center, search.width) is None:
                r = search.window(n_refine)
                plan.windows[i].append((search.center, search.width, r, len(plan.structures) + len(new)))
                new += [_dimer(*syms[i], x) for x in r]
        e_new = _energies(potential, new, np.zeros(len(new), bool), **kw)[0] if new else e_scan[:0]
        plan.structures.extend(new)
        answers.append(e_new)
        e_all = np.concatenate(answers)
        for i, c, (e_a, e_b), search in active:
            search.center, search.width, r, start = plan._window(i, search.center, search.width)
            e = _curve(e_all[start : start + len(r)], c)
            search.update(r, e - e_a - e_b)
    e_all = np.concatenate(answers)
    plan.scan_answers = EvaluationResult(energies_eV=e_all, n_atoms=np.array([len(s) for s in plan.structures]))
    return plan


_SPREAD_FIELDS = ("bond_length_A", "dissociation_energy_eV", "omega_e_cm1", "omega_e_x_e_cm1", "D0_eV")


def committee_spread(mean: DiatomicResult, members: Sequence[DiatomicResult], tol_A: float,
                     max_passes: int) -> DiatomicResult:
    """The committee result of one pair: the mean curve's constants (``mean``) with the members'
    values (``*_members``) and their standard deviation over members (``*_std``, ddof 0) of r_e,
    D_e, omega_e, omega_e x_e and D_0, each member's from its own refined minimum (``members``:
    each member's result on the same plan). Without a bound minimum in every member the spread is
    left out and a note says which member has none."""
    notes = list(mean.notes)
    spread: dict[str, Any] = {"n_members": len(members)}
    if mean.bound:
        unbound = [m for m, r in enumerate(members) if not (r.bound and np.isfinite(r.bond_length_A))]
        if unbound:
            notes.append(f"committee std not available: member(s) {unbound} have no bound minimum")
        else:
            values = {name: np.array([getattr(r, name) for r in members]) for name in _SPREAD_FIELDS}
            spread.update({f"{name}_std": float(v.std()) for name, v in values.items()})
            spread.update({f"{name}_members": values[name].tolist()
                           for name in ("bond_length_A", "dissociation_energy_eV", "omega_e_cm1")})
            if not all(r.bond_length_converged for r in members):
                notes.append(f"committee: a member's r_e did not converge to {tol_A} A in {max_passes} passes")
    return dataclasses.replace(mean, notes=notes, **spread)


def diatomic(potential: Any, pairs: Any, **options: Any) -> DiatomicResult | list[DiatomicResult]:
    """Scan the energy of diatomic pair(s) and derive r_e (A), D_e, D_0 (eV), omega_e and
    omega_e x_e (cm^-1) -- see the module docstring for the method and references.

    ``pairs``: "N2", "CO", ("C", "O"), a two-atom ``Atoms``/pymatgen ``Molecule`` (its
    elements), or a list of those (-> list of results). ``masses``: per pair (or, for a single
    pair, directly) two masses in amu or isotope names ("D", "13C"); default the most abundant
    isotopes. ``r_min_A``, ``r_max_A``: the scan range (default from the covalent radii, see the
    module docstring). ``n_points``: coarse scan points per pair (default 400 for torch
    potentials, 24 for oracles); ``n_refine``: points per refinement pass (15 / 9); ``tol_A``:
    r_e converged when two passes agree to this (1e-4 A), within ``max_passes`` (4) passes;
    ``smooth_threshold``: the ``smoothness_ratio`` below which the curve is ``smooth`` (0.5).
    All scan points of all pairs and the isolated atoms go through one backend call, each
    refinement pass through one more (:func:`plan_diatomic`); the analysis
    (:meth:`DiatomicPlan.analyse`) reads the energies planning measured. A committee's result
    holds the mean curve's constants and, from each member's own curve analysed on the same plan
    (:func:`~mlip_props.properties.plan.analyse_members`), the per-member values and their std
    (:func:`committee_spread`). ``dtype`` (default float64) and ``device``: the backend's.
    """
    plan = plan_diatomic(potential, pairs, **options)
    answers = plan.scan_answers
    results = plan.analyse(answers.member_mean())
    if answers.n_members:
        per_member = analyse_members(plan, answers)
        results = [committee_spread(r, [m[i] for m in per_member], plan.tol_A, plan.max_passes)
                   for i, r in enumerate(results)]
    return results[0] if plan.single else results


# the parameters (help(), IDEs, the campaign schema) are plan_diatomic's, as plan.one_call gives them
# to the other properties
diatomic.__signature__ = inspect.signature(plan_diatomic).replace(  # type: ignore[attr-defined]
    return_annotation="DiatomicResult | list[DiatomicResult]")


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
