"""Equations of state E(V), P(V), and enthalpies H(P) of polymorphs with their crossings.

Method (:func:`equation_of_state`): every structure is relaxed (cell and ions, space group kept;
:func:`mlip_props.properties.relax.relax`, batched), its cell is scaled isotropically to
``n_points`` volumes spanning ``V0 (1 +- volume_range)``; the ions of cells with internal
degrees of freedom (more than one atom) are relaxed at each fixed volume (one batched relax call
for all scaled cells of all structures); then energies and stresses of all volume points of all
structures come from ONE backend evaluation. Per atom, E(V) is fitted by nonlinear least squares
(scipy) to

* Birch-Murnaghan, 3rd order (default): F. Birch, Phys. Rev. 71, 809 (1947);
* Vinet: P. Vinet et al., J. Phys.: Condens. Matter 1, 1941 (1989);
* Murnaghan: F. D. Murnaghan, PNAS 30, 244 (1944).

The pressures P = -tr(sigma)/3 from the backend's stresses are fitted independently with the
P(V) form of the same equation of state; its B0 is ``bulk_modulus_from_pressure_GPa``, a
cross-check of the energy fit (they agree when stresses are consistent with energies).

:func:`transition_pressures` takes EOS results of polymorphs (same composition) and finds the
pressures where their enthalpies per atom H = E + PV cross (common-tangent construction).

Units: eV, Angstrom^3 per atom, GPa.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from ase import Atoms
from scipy.optimize import brentq, least_squares

from ..backend.evaluate import EvaluationResult
from ..backend.units import EV_A3_TO_GPA
from ..validation import check_number
from .plan import EvaluationPlan, errors_name_inputs, one_call
from .ion_newton import relax_ions_newton
from .relax import RelaxSettings, periodic_starting_points, relax, resolve_relaxation
from .result import PropertyResult

EOS_FORMS = ("birchmurnaghan", "vinet", "murnaghan")


# ---------------------------------------------------------------------------------------------
# analytic forms: energy E(V) and pressure P(V) = -dE/dV; B0 in eV/A^3 inside
# ---------------------------------------------------------------------------------------------
def eos_energy(form: str, v: np.ndarray, e0: float, v0: float, b0: float, bp: float) -> np.ndarray:
    """Energy (eV/atom) of an equation of state at volumes ``v`` (A^3/atom); ``b0`` in eV/A^3."""
    v = np.asarray(v, dtype=float)
    if form == "birchmurnaghan":
        eta = (v0 / v) ** (2.0 / 3.0)
        return e0 + 9.0 * v0 * b0 / 16.0 * ((eta - 1.0) ** 3 * bp + (eta - 1.0) ** 2 * (6.0 - 4.0 * eta))
    if form == "vinet":
        x = (v / v0) ** (1.0 / 3.0)
        return e0 + 2.0 * b0 * v0 / (bp - 1.0) ** 2 * (
            2.0 - (5.0 + 3.0 * bp * (x - 1.0) - 3.0 * x) * np.exp(-1.5 * (bp - 1.0) * (x - 1.0)))
    if form == "murnaghan":
        return e0 + b0 * v / bp * ((v0 / v) ** bp / (bp - 1.0) + 1.0) - b0 * v0 / (bp - 1.0)
    raise ValueError(f"unknown equation of state {form!r}; choose from {EOS_FORMS}")


def eos_pressure(form: str, v: np.ndarray, v0: float, b0: float, bp: float) -> np.ndarray:
    """Pressure P = -dE/dV (units of ``b0``) of an equation of state at volumes ``v``."""
    v = np.asarray(v, dtype=float)
    if form == "birchmurnaghan":
        x = (v0 / v) ** (1.0 / 3.0)
        return 1.5 * b0 * (x**7 - x**5) * (1.0 + 0.75 * (bp - 4.0) * (x**2 - 1.0))
    if form == "vinet":
        x = (v / v0) ** (1.0 / 3.0)
        return 3.0 * b0 * (1.0 - x) / x**2 * np.exp(1.5 * (bp - 1.0) * (1.0 - x))
    if form == "murnaghan":
        return b0 / bp * ((v0 / v) ** bp - 1.0)
    raise ValueError(f"unknown equation of state {form!r}; choose from {EOS_FORMS}")


@dataclass(frozen=True)
class EOSFit(PropertyResult):
    """One fitted equation of state (per atom). ``fit_residual_eV_per_atom``: RMS of E - E_fit."""

    eos: str
    e0_eV_per_atom: float
    v0_A3_per_atom: float
    bulk_modulus_GPa: float
    bulk_modulus_derivative: float
    fit_residual_eV_per_atom: float
    success: bool


def fit_eos(volumes_A3: np.ndarray, energies_eV: np.ndarray, form: str = "birchmurnaghan") -> EOSFit:
    """Least-squares fit of E(V) (per atom: A^3, eV) to one of :data:`EOS_FORMS`.

    Starting point from a parabola through the data (V0 = -b/2a, B0 = V0 E''(V0), B' = 4).
    ``success`` is True only for a physical fit of data with a minimum: the optimiser
    converged, the parameters are finite, the data are convex (positive curvature of the
    parabola through them), B0 > 0, B' > 0, and V0 lies inside the sampled volumes. Data with a
    maximum, monotonic data or a minimum outside the range give ``success=False`` (never an
    extrapolated V0 reported as good). Raises ``ValueError`` for fewer than 5 points,
    non-finite values, or volumes that do not span a range.
    """
    if form not in EOS_FORMS:
        raise ValueError(f"unknown equation of state {form!r}; choose from {EOS_FORMS}")
    v = np.asarray(volumes_A3, dtype=float)
    e = np.asarray(energies_eV, dtype=float)
    if len(v) < 5:
        raise ValueError(f"need at least 5 volume points for a 4-parameter fit, got {len(v)}")
    if v.shape != e.shape or not (np.isfinite(v).all() and np.isfinite(e).all()):
        raise ValueError("volumes and energies must be finite arrays of the same length")
    if not np.ptp(v) > 1e-6 * np.abs(v).max() or len(np.unique(v)) < 5:
        raise ValueError(f"the volumes do not span a range (need >= 5 distinct volumes, got {np.unique(v)})")
    a, b, c = np.polyfit(v, e, 2)
    v0 = -b / (2 * a) if a > 0 else v[np.argmin(e)]
    if not (0.5 * v.min() < v0 < 2.0 * v.max()):
        v0 = v[np.argmin(e)]
    b0 = max(2 * a * v0, 1e-4)
    x0 = np.array([e.min(), v0, b0, 4.0])
    vs, es = v.mean(), max(np.ptp(e), 1e-12)

    def resid(x):
        return (eos_energy(form, v, x[0], x[1] * vs, x[2], x[3]) - e) / es

    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # trial steps of bad data; judged below
        sol = least_squares(resid, np.array([x0[0], x0[1] / vs, x0[2], x0[3]]), method="lm", xtol=1e-15,
                            ftol=1e-15, gtol=1e-15, max_nfev=20000)
        e0, v0, b0, bp = sol.x[0], sol.x[1] * vs, sol.x[2], sol.x[3]
        rms = float(np.sqrt(np.mean((eos_energy(form, v, e0, v0, b0, bp) - e) ** 2)))
    ok = bool(sol.success and np.isfinite(sol.x).all() and a > 0 and b0 > 0 and bp > 0
              and v.min() <= v0 <= v.max())
    return EOSFit(eos=form, e0_eV_per_atom=float(e0), v0_A3_per_atom=float(v0), bulk_modulus_GPa=float(b0 * EV_A3_TO_GPA),
                  bulk_modulus_derivative=float(bp), fit_residual_eV_per_atom=rms, success=ok)


def fit_pressure(volumes_A3: np.ndarray, pressures_GPa: np.ndarray, form: str = "birchmurnaghan",
                 guess: tuple[float, float, float] | None = None) -> tuple[float, float, float, float]:
    """Least-squares fit of P(V) (A^3/atom, GPa): returns (V0, B0 GPa, B', RMS residual GPa)."""
    v = np.asarray(volumes_A3, dtype=float)
    p = np.asarray(pressures_GPa, dtype=float)
    if guess is None:
        slope, icpt = np.polyfit(v, p, 1)
        v0g = -icpt / slope if slope < 0 else v.mean()
        guess = (v0g, -slope * v0g, 4.0)
    vs, ps = v.mean(), max(np.abs(p).max(), 1e-6)

    def resid(x):
        return (eos_pressure(form, v, x[0] * vs, x[1], x[2]) - p) / ps

    sol = least_squares(resid, np.array([guess[0] / vs, guess[1], guess[2]]), method="lm", xtol=1e-15, ftol=1e-15,
                        gtol=1e-15, max_nfev=20000)
    v0, b0, bp = sol.x[0] * vs, sol.x[1], sol.x[2]
    rms = float(np.sqrt(np.mean((eos_pressure(form, v, v0, b0, bp) - p) ** 2)))
    return float(v0), float(b0), float(bp), rms


@dataclass(frozen=True)
class EOSResult(PropertyResult):
    """Equation of state of one structure (per atom).

    Main fields come from the ``eos`` form; ``fits`` holds all three forms. ``volumes_A3_per_atom``,
    ``energies_eV_per_atom``, ``pressures_GPa``: the computed points (P from the backend stress).
    ``bulk_modulus_from_pressure_GPa``: B0 of the P(V) fit (cross-check);
    ``v0_inside_range``: the fitted minimum lies inside the sampled volumes (else the fit is an
    extrapolation); ``converged``: the initial relaxation and every ion relaxation converged;
    ``ion_residual_force_eV_A``: the largest residual force left at a volume point whose ions were
    relaxed; ``ion_optimizer``: ``"fire"``, ``"newton"`` or ``"none"`` (clamped ions).
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = (
        "v0_A3_per_atom", "e0_eV_per_atom", "bulk_modulus_GPa", "bulk_modulus_derivative",
        "bulk_modulus_from_pressure_GPa", "fit_residual_eV_per_atom", "v0_inside_range", "relax_converged",
        "ion_residual_force_eV_A", "converged",)

    atoms: Atoms
    eos: str
    v0_A3_per_atom: float
    e0_eV_per_atom: float
    bulk_modulus_GPa: float
    bulk_modulus_derivative: float
    fit_residual_eV_per_atom: float
    fits: dict[str, EOSFit]
    volumes_A3_per_atom: np.ndarray
    energies_eV_per_atom: np.ndarray
    pressures_GPa: np.ndarray
    bulk_modulus_from_pressure_GPa: float
    pressure_fit_residual_GPa: float
    v0_inside_range: bool
    ions_relaxed: bool
    relax_converged: bool
    converged: bool
    n_atoms: int = 0
    formula: str = ""
    ion_residual_force_eV_A: float = 0.0
    ion_optimizer: str = "none"

    def _params(self) -> tuple[float, float, float, float]:
        return (self.e0_eV_per_atom, self.v0_A3_per_atom, self.bulk_modulus_GPa / EV_A3_TO_GPA,
                self.bulk_modulus_derivative)

    def energy_eV_per_atom(self, volume_A3_per_atom: Any) -> np.ndarray:
        """Fitted E(V), eV/atom."""
        return eos_energy(self.eos, volume_A3_per_atom, *self._params())

    def pressure_GPa(self, volume_A3_per_atom: Any) -> np.ndarray:
        """Fitted P(V) = -dE/dV, GPa."""
        _, v0, b0, bp = self._params()
        return eos_pressure(self.eos, volume_A3_per_atom, v0, b0, bp) * EV_A3_TO_GPA

    def volume_A3_per_atom(self, pressure_GPa: float) -> float:
        """V(P) of the fitted equation of state (root of P(V) = P), A^3/atom."""
        v0 = self.v0_A3_per_atom
        f = lambda v: float(self.pressure_GPa(v)) - pressure_GPa  # noqa: E731
        if f(v0) == 0.0:
            return v0
        step = 0.99 if f(v0) < 0 else 1.01  # compress for P above P(V0), expand below
        a, v = v0, v0
        while 0.3 * v0 < v < 3.0 * v0:  # walk away from V0 along the stable (dP/dV < 0) branch
            v = a * step
            if f(v) * f(a) <= 0:
                return float(brentq(f, min(a, v), max(a, v), xtol=1e-12 * v0, rtol=1e-14))
            a = v
        raise ValueError(f"pressure {pressure_GPa} GPa outside what the fitted EOS of {self.formula} reaches")

    def enthalpy_eV_per_atom(self, pressure_GPa: float) -> float:
        """H(P) = E(V(P)) + P V(P), eV/atom (the minimum of E + PV over V)."""
        v = self.volume_A3_per_atom(pressure_GPa)
        return float(self.energy_eV_per_atom(v)) + pressure_GPa / EV_A3_TO_GPA * v


def scaled_to_volume(atoms: Atoms, volume_factor: float) -> Atoms:
    """A copy of ``atoms`` with its cell (and the atoms with it) scaled isotropically by
    ``volume_factor`` in volume."""
    s = atoms.copy()
    s.calc = None
    s.set_cell(atoms.cell[:] * volume_factor ** (1.0 / 3.0), scale_atoms=True)
    return s


@dataclass
class EOSPlan(EvaluationPlan):
    """The volume points of every structure's E(V) (``n_points`` consecutive structures per input,
    ions relaxed at fixed volume where ``ions_relaxed``), with the reference cells and how their
    relaxations went. ``analyse`` fits each structure's E(V) and P(V)."""

    references: list[Atoms] = field(default_factory=list)
    n_points: int = 11
    eos: str = "birchmurnaghan"
    ions_relaxed: list[bool] = field(default_factory=list)
    relax_converged: list[bool] = field(default_factory=list)
    ions_converged: list[bool] = field(default_factory=list)
    ion_residual_force_eV_A: list[float] = field(default_factory=list)
    ion_optimizer: str = "fire"

    def input_index(self, k: int) -> int:
        return k // self.n_points

    def analyse(self, answers: EvaluationResult) -> list[EOSResult]:
        energies = np.asarray(answers.energies_eV, dtype=float)
        pressures = -np.asarray(answers.stress_eV_A3, dtype=float)[:, :3].mean(axis=1) * EV_A3_TO_GPA
        return [self._analyse_one(b, energies, pressures) for b in range(len(self.references))]

    def _analyse_one(self, b: int, energies: np.ndarray, pressures: np.ndarray) -> EOSResult:
        a = self.references[b]
        n = len(a)
        sl = slice(b * self.n_points, (b + 1) * self.n_points)
        vols = np.array([p.get_volume() / n for p in self.structures[sl]])
        e = energies[sl] / n
        p = pressures[sl]
        fits = {form: fit_eos(vols, e, form) for form in EOS_FORMS}
        main = fits[self.eos]
        _, pb0, _, prms = fit_pressure(vols, p, self.eos, guess=(main.v0_A3_per_atom, main.bulk_modulus_GPa,
                                                                  main.bulk_modulus_derivative))
        return EOSResult(
            atoms=a, eos=self.eos, v0_A3_per_atom=main.v0_A3_per_atom, e0_eV_per_atom=main.e0_eV_per_atom,
            bulk_modulus_GPa=main.bulk_modulus_GPa, bulk_modulus_derivative=main.bulk_modulus_derivative,
            fit_residual_eV_per_atom=main.fit_residual_eV_per_atom, fits=fits, volumes_A3_per_atom=vols,
            energies_eV_per_atom=e, pressures_GPa=p, bulk_modulus_from_pressure_GPa=pb0,
            pressure_fit_residual_GPa=prms,
            v0_inside_range=bool(vols.min() < main.v0_A3_per_atom < vols.max()),
            ions_relaxed=self.ions_relaxed[b], relax_converged=self.relax_converged[b],
            converged=bool(self.relax_converged[b] and self.ions_converged[b] and main.success),
            n_atoms=n, formula=a.get_chemical_formula(),
            ion_residual_force_eV_A=self.ion_residual_force_eV_A[b] if self.ion_residual_force_eV_A else 0.0,
            ion_optimizer=self.ion_optimizer if self.ions_relaxed[b] else "none")


def plan_eos(
    potential: Any,
    structures: Any,
    *,
    volume_range: float = 0.06,
    n_points: int = 11,
    eos: str = "birchmurnaghan",
    relaxation: RelaxSettings | dict | bool | None = None,
    ion_optimizer: str = "auto",
    dtype: Any = None,
    device: Any = None,
) -> EOSPlan:
    """Plan the equation of state of one structure or many (see :func:`equation_of_state`): relax
    the references (batched), scale each to ``n_points`` volumes, relax the ions at each volume
    (one batched call for all), and return the volume points to evaluate. ``ion_optimizer``:
    ``"fire"``, ``"newton"`` (chord-Newton steps with each reference's Hessian,
    :mod:`mlip_props.properties.ion_newton`; may leave the symmetric branch where the model has an
    instability) or ``"auto"`` (= FIRE)."""
    if ion_optimizer not in ("auto", "fire", "newton"):
        raise ValueError(f"ion_optimizer must be one of ('auto', 'fire', 'newton'), got {ion_optimizer!r}")
    if eos not in EOS_FORMS:
        raise ValueError(f"unknown equation of state {eos!r}; choose from {EOS_FORMS}")
    check_number("volume_range", volume_range, minimum=0.0, maximum=0.5, exclusive_minimum=True,
                 exclusive_maximum=True)
    n_points = check_number("n_points", n_points, minimum=5, integer=True)  # 5: a 4-parameter fit
    settings = resolve_relaxation(relaxation)
    kw = dict(dtype=dtype or torch.float64, device=device)
    single, base, relax_ok = periodic_starting_points(potential, structures, "equations of state", settings, **kw)

    factors = 1.0 + np.linspace(-volume_range, volume_range, n_points)
    points = [scaled_to_volume(a, f) for a in base for f in factors]
    ions = [settings.ions_for(a) for a in base]
    ion_ok = [True] * len(base)
    resid = [0.0] * len(base)
    newton = False
    to_relax = [k for k in range(len(points)) if ions[k // n_points]]
    if to_relax:
        ion_settings = dataclasses.replace(settings, cell=False, keep_symmetry=False)  # fixed cell: ions only
        # "auto" is FIRE: measured with SevenNet-0, Newton saved nothing at the volume points (few FIRE
        # steps each) and on rutile TiO2 it left the symmetric branch at expanded volumes (lower
        # energies, B 170 vs 211 GPa), where FIRE's symmetric forces keep the space group
        newton = ion_optimizer == "newton"
        with errors_name_inputs(lambda i: (to_relax[i] // n_points, f"volume point #{to_relax[i] % n_points}")):
            if newton:
                relaxed = relax_ions_newton(potential, [points[k] for k in to_relax], base,
                                            [k // n_points for k in to_relax], ion_settings, **kw)
            else:
                relaxed = relax(potential, [points[k] for k in to_relax], settings=ion_settings, **kw)
        for k, r in zip(to_relax, relaxed):
            points[k] = r.atoms
            ion_ok[k // n_points] = ion_ok[k // n_points] and r.converged
            resid[k // n_points] = max(resid[k // n_points], r.max_force_eV_A)
    return EOSPlan(structures=points, quantities=("energy", "stress"), single=single, references=base,
                   n_points=n_points, eos=eos, ions_relaxed=ions, relax_converged=list(relax_ok),
                   ions_converged=ion_ok, ion_residual_force_eV_A=resid,
                   ion_optimizer="newton" if newton else "fire")


@one_call(plan_eos)
def equation_of_state(potential: Any, structures: Any, **options: Any) -> EOSResult | list[EOSResult]:
    """Equation of state of one structure (returns an :class:`EOSResult`) or many (a list).

    ``volume_range``: the volumes span V0 (1 - range) ... V0 (1 + range) in ``n_points`` steps
    (default +-6 %, 11 points). ``eos``: the main form, one of ``birchmurnaghan`` (default),
    ``vinet``, ``murnaghan``. ``relaxation`` (:class:`~mlip_props.properties.relax.RelaxSettings`,
    a dict of its fields, or False): the references are relaxed (cell and ions, space group kept)
    to 1e-4 eV/A and 1e-3 GPa by default, and the ions at every volume for cells with more than one
    atom (``ions``). All structures share one batched relaxation, one batched ion relaxation and one
    backend evaluation (:func:`plan_eos`, then :meth:`EOSPlan.analyse`). Units: eV, A^3, GPa.

    Raises ``ValueError`` naming the structure index for non-periodic structures and bad
    parameters.
    """


# ---------------------------------------------------------------------------------------------
# enthalpy and transition pressures
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseTransition(PropertyResult):
    """Enthalpies of phases ``low`` (stable below) and ``high`` (stable above) cross at ``pressure_GPa``.

    ``volume_change_A3_per_atom``: V_high - V_low at the transition (negative for a
    pressure-induced transition); ``extrapolated``: a volume at the transition lies outside the
    sampled EOS range of its phase.
    """

    low: str
    high: str
    pressure_GPa: float
    enthalpy_eV_per_atom: float
    volume_low_A3_per_atom: float
    volume_high_A3_per_atom: float
    volume_change_A3_per_atom: float
    extrapolated: bool


@dataclass(frozen=True)
class EnthalpyResult(PropertyResult):
    """H(P) per atom of several polymorphs on a pressure grid and the crossings of their enthalpies.

    ``enthalpies_eV_per_atom``: (n_phases, n_pressures); ``stable_phase``: the label of the
    lowest enthalpy at each pressure; ``transitions``: crossings between successive stable
    phases (the thermodynamic transitions); ``crossings``: every pairwise crossing.
    """

    labels: list[str]
    pressures_GPa: np.ndarray
    enthalpies_eV_per_atom: np.ndarray
    stable_phase: list[str]
    transitions: list[PhaseTransition]
    crossings: list[PhaseTransition] = field(default_factory=list)


def _inside(r: EOSResult, v: float) -> bool:
    vols = np.asarray(r.volumes_A3_per_atom)
    return bool(vols.min() - 1e-9 <= v <= vols.max() + 1e-9)


def transition_pressures(
    eos_results: Sequence[EOSResult],
    labels: Sequence[str] | None = None,
    *,
    p_min_GPa: float = 0.0,
    p_max_GPa: float = 50.0,
    n_grid: int = 201,
) -> EnthalpyResult:
    """Enthalpy H(P) = E(V) + P V per atom of polymorphs and the pressures where they cross (GPa).

    Each phase's H(P) comes from its fitted EOS (V(P) solved from P(V), so H is the minimum of
    E + PV over V: the common-tangent construction). Crossings are bracketed on an ``n_grid``
    grid in [``p_min_GPa``, ``p_max_GPa``] and refined with Brent's method. The phases must have
    the same composition (enthalpies per atom are compared). Reference: e.g. Yin and Cohen,
    Phys. Rev. B 26, 5668 (1982) for Si diamond -> beta-tin from E(V) curves.
    """
    if len(eos_results) < 2:
        raise ValueError("transition_pressures needs at least two EOS results (polymorphs)")
    labels = [str(x) for x in (labels if labels is not None else
                               [f"{r.formula}#{k}" for k, r in enumerate(eos_results)])]
    if len(labels) != len(eos_results):
        raise ValueError(f"{len(labels)} labels for {len(eos_results)} EOS results")
    comps = []
    for k, r in enumerate(eos_results):
        from ase.formula import Formula

        f = Formula(r.formula).reduce()[0] if r.formula else None
        comps.append(f)
    if any(c is not None and c != comps[0] for c in comps):
        raise ValueError(f"structures {', '.join(str(c) for c in comps)}: polymorphs must share a composition")
    if not p_max_GPa > p_min_GPa:
        raise ValueError(f"p_max_GPa ({p_max_GPa}) must exceed p_min_GPa ({p_min_GPa})")
    grid = np.linspace(p_min_GPa, p_max_GPa, n_grid)

    def h(k: int, p: float) -> float:
        try:
            return eos_results[k].enthalpy_eV_per_atom(p)
        except ValueError:
            return np.nan

    H = np.array([[h(k, p) for p in grid] for k in range(len(eos_results))])

    def crossing(i: int, j: int, lo: float, hi: float) -> PhaseTransition:
        g = lambda p: h(i, p) - h(j, p)  # noqa: E731
        pt = float(brentq(g, lo, hi, xtol=1e-10, rtol=1e-13))
        vi = eos_results[i].volume_A3_per_atom(pt)
        vj = eos_results[j].volume_A3_per_atom(pt)
        # i is stable below pt when H_i < H_j just below
        low, high, vl, vh = (i, j, vi, vj) if g(lo) < 0 else (j, i, vj, vi)
        return PhaseTransition(low=labels[low], high=labels[high], pressure_GPa=pt, enthalpy_eV_per_atom=h(i, pt),
                               volume_low_A3_per_atom=vl, volume_high_A3_per_atom=vh,
                               volume_change_A3_per_atom=vh - vl,
                               extrapolated=not (_inside(eos_results[low], vl) and _inside(eos_results[high], vh)))

    crossings = []
    for i in range(len(eos_results)):
        for j in range(i + 1, len(eos_results)):
            d = H[i] - H[j]
            for m in range(n_grid - 1):
                if np.isfinite(d[m]) and np.isfinite(d[m + 1]) and d[m] * d[m + 1] < 0:
                    crossings.append(crossing(i, j, grid[m], grid[m + 1]))
    Hm = np.where(np.isfinite(H), H, np.inf)
    stable_idx = Hm.argmin(axis=0)
    transitions = []
    for m in range(n_grid - 1):
        a, b = int(stable_idx[m]), int(stable_idx[m + 1])
        if a != b:
            transitions.append(crossing(a, b, grid[m], grid[m + 1]))
    return EnthalpyResult(labels=labels, pressures_GPa=grid, enthalpies_eV_per_atom=H,
                          stable_phase=[labels[k] for k in stable_idx], transitions=transitions,
                          crossings=sorted(crossings, key=lambda t: t.pressure_GPa))
