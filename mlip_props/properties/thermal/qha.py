"""Quasi-harmonic thermodynamics: phonons at several volumes, all their supercells in one plan,
then G(T, P) = min_V [E(V) + F_vib(V, T) + P V] by phonopy's QHA."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from ase import Atoms

from ...backend.evaluate import EvaluationResult
from ..phonons import PhononPlan, plan_phonons, reduced_formula
from ..plan import EvaluationPlan, one_call
from ..relax import RelaxSettings, periodic_starting_points, relax, resolve_relaxation
from ...validation import check_mesh, check_number, check_numbers
from ..result import PropertyResult
from .harmonic import phonon_plan_options, thermal_from_phonons
from .sums import default_temperatures


@dataclass(frozen=True)
class QHAResult(PropertyResult):
    """Quasi-harmonic thermodynamics of one structure at ``pressure_GPa``, per mole of ATOMS.

    Inputs kept for re-use: ``volumes_A3_per_atom`` (n_V), ``static_energies_eV_per_atom``,
    ``free_energy_vib_kJ_mol``/``cv_vib_J_molK``/``entropy_vib_J_molK``
    (n_V, n_T). Outputs on ``temperatures_K`` (n_T, truncated where phonopy stops):
    ``volume_A3_per_atom``; ``volumetric_thermal_expansion_per_K`` (alpha_V = (1/V) dV/dT);
    ``linear_thermal_expansion_per_K`` (alpha_V / 3, exact for cubic crystals only);
    ``bulk_modulus_GPa`` (isothermal); ``cp_J_molK`` (phonopy numerical -T d2G/dT2);
    ``cv_J_molK`` (harmonic Cv interpolated at V(T)); ``gibbs_energy_eV_per_atom``;
    ``volume_in_range``: V(T) within the sampled volumes (outside: extrapolated, not trusted).
    ``imaginary_modes_per_volume``: flags from the phonon runs.
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = (
        "temperatures_K", "volume_A3_per_atom", "volumetric_thermal_expansion_per_K", "bulk_modulus_GPa",
        "cp_J_molK", "cv_J_molK", "volume_in_range",)

    formula: str
    pressure_GPa: float
    eos: str
    volumes_A3_per_atom: np.ndarray
    static_energies_eV_per_atom: np.ndarray
    temperatures_K: np.ndarray
    free_energy_vib_kJ_mol: np.ndarray
    cv_vib_J_molK: np.ndarray
    entropy_vib_J_molK: np.ndarray
    volume_A3_per_atom: np.ndarray
    volumetric_thermal_expansion_per_K: np.ndarray
    linear_thermal_expansion_per_K: np.ndarray
    bulk_modulus_GPa: np.ndarray
    cp_J_molK: np.ndarray
    cv_J_molK: np.ndarray
    gibbs_energy_eV_per_atom: np.ndarray
    volume_in_range: np.ndarray
    imaginary_modes_per_volume: list

    def at(self, temperature_K: float) -> dict[str, float]:
        """Outputs interpolated at one temperature (K)."""
        t = self.temperatures_K
        names = ("volume_A3_per_atom", "volumetric_thermal_expansion_per_K", "linear_thermal_expansion_per_K",
                 "bulk_modulus_GPa", "cp_J_molK", "cv_J_molK", "gibbs_energy_eV_per_atom")
        return {n: float(np.interp(temperature_K, t, getattr(self, n))) for n in names}

    def gibbs(self, pressures_GPa: Sequence[float]) -> np.ndarray:
        """G(T, P) in eV per atom, shape (n_P, n_T) on ``temperatures_K``; NaN where the
        equilibrium volume leaves the sampled range. Static enthalpy + vibrational free energy
        (zero-point included) minimised over volume at each (T, P) by phonopy's EOS fits."""
        pressures_GPa = check_numbers("pressures_GPa", pressures_GPa)
        out = np.full((len(pressures_GPa), len(self.temperatures_K)), np.nan)
        for i, p in enumerate(pressures_GPa):
            q = run_qha(self.volumes_A3_per_atom, self.static_energies_eV_per_atom, self.temperatures_K,
                        self.free_energy_vib_kJ_mol, self.cv_vib_J_molK,
                        self.entropy_vib_J_molK, float(p), self.eos)
            n = min(len(q["gibbs"]), out.shape[1])
            out[i, :n] = np.where(q["in_range"][:n], q["gibbs"][:n], np.nan)
        return out


#: the equation-of-state names of :mod:`mlip_props.properties.eos` and phonopy's spelling of them
_PHONOPY_EOS_NAMES = {"birchmurnaghan": "birch_murnaghan", "vinet": "vinet", "murnaghan": "murnaghan"}


def run_qha(volumes, energies, temperatures_K, free_energy, cv, entropy, pressure_GPa, eos) -> dict[str, np.ndarray]:
    """phonopy's array-level ``QHA`` on volumes (A^3/atom), static energies (eV/atom) and the
    vibrational F (kJ/mol), Cv and S (J/(mol K)) as (n_V, n_T) arrays: V(T), alpha_V(T), B_T(T),
    G(T) and Cp(T) where phonopy defines them, and whether V(T) is inside the sampled volumes.

    (``phonopy.run_qha`` needs one Phonopy object per volume and its own mesh sums, which G(T, P)
    re-fits at many pressures from stored arrays do not keep.)"""
    from phonopy.qha.core import QHA

    if eos not in _PHONOPY_EOS_NAMES:
        raise ValueError(f"unknown equation of state {eos!r}; choose from {tuple(_PHONOPY_EOS_NAMES)}")
    qha = QHA(np.asarray(volumes, dtype=float), np.asarray(energies, dtype=float),
              np.asarray(temperatures_K, dtype=float), np.asarray(cv).T, np.asarray(entropy).T,
              np.asarray(free_energy).T, pressure=pressure_GPa, eos=_PHONOPY_EOS_NAMES[eos],
              t_max=float(temperatures_K[-2]) if len(temperatures_K) > 2 else None)
    qha.run()
    vol = np.asarray(qha.volume_temperature)
    n = len(vol)
    vmin, vmax = np.min(volumes), np.max(volumes)
    return {
        "volume": vol,
        "alpha": np.asarray(qha.thermal_expansion)[:n],
        "bulk": np.asarray(qha.bulk_modulus_temperature)[:n],
        "gibbs": np.asarray(qha.gibbs_temperature)[:n],
        "cp": np.asarray(qha.heat_capacity_P_numerical)[:n],
        "in_range": (vol >= vmin) & (vol <= vmax),
    }


def cv_at_volume(volumes: np.ndarray, cv: np.ndarray, volume_of_T: np.ndarray) -> np.ndarray:
    """Harmonic Cv(V, T) (n_V, n_T) evaluated at V(T) by a quadratic fit in V at each T."""
    out = np.empty(len(volume_of_T))
    for k, v in enumerate(volume_of_T):
        c = np.polyfit(volumes, cv[:, k], 2 if len(volumes) > 3 else 1)
        out[k] = np.polyval(c, v)
    return out


@dataclass
class QHAPlan(EvaluationPlan):
    """Phonons of every volume of every material in one :class:`PhononPlan` (``set_sizes[i]``
    consecutive structures per material) and the QHA to run on them. ``static_energies``: per
    material, E(V) in eV/atom; ``None``: the energies of the perfect supercells in the answers
    (each committee member's own E(V))."""

    phonon_plan: PhononPlan | None = None
    set_sizes: list[int] = field(default_factory=list)
    static_energies: list[np.ndarray] | None = None
    temperatures_K: np.ndarray = field(default_factory=default_temperatures)
    pressure_GPa: float = 0.0
    eos: str = "vinet"
    mesh: float | Sequence[int] = 40.0
    hessian_rows: list | None = None

    def analyse(self, answers: EvaluationResult) -> list[QHAResult]:
        """One :class:`QHAResult` per material from one potential's answers."""
        temps = self.temperatures_K
        ths = thermal_from_phonons(self.phonon_plan.analyse(answers), temperatures_K=temps, mesh=self.mesh,
                                   check_mesh=False)
        if self.static_energies is None:
            e_all = self.phonon_plan.static_energies_eV_per_atom(answers)
        out, pos = [], 0
        for i, n_v in enumerate(self.set_sizes):
            th = ths[pos : pos + n_v]
            vs = self.phonon_plan.references[pos : pos + n_v]
            es = e_all[pos : pos + n_v] if self.static_energies is None else self.static_energies[i]
            pos += n_v
            vols = np.array([a.get_volume() / len(a) for a in vs])
            order = np.argsort(vols)
            vols = vols[order]
            e = np.asarray(es, dtype=float)[order]
            fe = np.array([th[j].free_energy_kJ_mol for j in order])
            cv = np.array([th[j].cv_J_molK for j in order])
            s = np.array([th[j].entropy_J_molK for j in order])
            q = run_qha(vols, e, temps, fe, cv, s, self.pressure_GPa, self.eos)
            n = len(q["volume"])
            out.append(QHAResult(
                formula=reduced_formula(vs[0]), pressure_GPa=float(self.pressure_GPa), eos=self.eos,
                volumes_A3_per_atom=vols, static_energies_eV_per_atom=e, temperatures_K=temps[:n],
                free_energy_vib_kJ_mol=fe, cv_vib_J_molK=cv, entropy_vib_J_molK=s,
                volume_A3_per_atom=q["volume"], volumetric_thermal_expansion_per_K=q["alpha"],
                linear_thermal_expansion_per_K=q["alpha"] / 3.0, bulk_modulus_GPa=q["bulk"],
                cp_J_molK=q["cp"], cv_J_molK=cv_at_volume(vols, cv[:, :n], q["volume"]),
                gibbs_energy_eV_per_atom=q["gibbs"], volume_in_range=q["in_range"],
                imaginary_modes_per_volume=[bool(th[j].imaginary_modes) for j in order]))
        return out


def _check_qha_parameters(temperatures_K: Any, pressure_GPa: Any, eos: Any, mesh: Any) -> np.ndarray | None:
    """Validate the QHA's own parameters before any work (``ValueError`` naming the parameter and
    its allowed range); returns the temperatures (K) as an array, ``None`` for the default."""
    check_number("pressure_GPa", pressure_GPa)
    if eos not in _PHONOPY_EOS_NAMES:
        raise ValueError(f"parameter 'eos': unknown equation of state {eos!r}; choose from {tuple(_PHONOPY_EOS_NAMES)}")
    check_mesh("mesh", mesh)
    if temperatures_K is None:
        return None
    temps = np.asarray(check_numbers("temperatures_K", temperatures_K, minimum=0.0), dtype=float)
    if len(temps) < 3 or np.any(np.diff(temps) <= 0):
        raise ValueError(f"parameter 'temperatures_K': expected at least 3 strictly increasing temperatures "
                         f"(>= 0 K; thermal expansion and Cp are derivatives in T), got {list(temperatures_K)!r}")
    return temps


def plan_qha_from_structures(
    potential: Any,
    volume_sets: Sequence[Sequence[Atoms]],
    static_energies_eV_per_atom: Sequence[Sequence[float]] | None = None,
    *,
    temperatures_K: Sequence[float] | None = None,
    pressure_GPa: float = 0.0,
    eos: str = "vinet",
    mesh: float | Sequence[int] = 40.0,
    phonon_options: dict | None = None,
    dtype: Any = None,
    device: Any = None,
) -> QHAPlan:
    """The QHA plan of materials given at several (already relaxed) volumes each: one phonon plan
    for every supercell of every volume (see :func:`qha_from_structures`)."""
    checked_temps = _check_qha_parameters(temperatures_K, pressure_GPa, eos, mesh)
    for k, vs in enumerate(volume_sets):
        if len(vs) < 5:
            raise ValueError(f"structure {k}: quasi-harmonic fits need at least 5 volumes, got {len(vs)}")
    if static_energies_eV_per_atom is not None:
        for k, (vs, es) in enumerate(zip(volume_sets, static_energies_eV_per_atom)):
            if len(es) != len(vs):
                raise ValueError(f"structure {k}: {len(es)} static energies for {len(vs)} volumes")
    options = phonon_plan_options(phonon_options, band_structure=False)
    flat = [a for vs in volume_sets for a in vs]
    pp = plan_phonons(potential, flat, relaxation=False, dtype=dtype, device=device, **options)
    temps = default_temperatures() if checked_temps is None else checked_temps
    energies = None if static_energies_eV_per_atom is None else [np.asarray(e, dtype=float)
                                                                 for e in static_energies_eV_per_atom]
    return QHAPlan(structures=pp.structures, quantities=pp.quantities, phonon_plan=pp,
                   set_sizes=[len(vs) for vs in volume_sets], static_energies=energies, temperatures_K=temps,
                   pressure_GPa=float(pressure_GPa), eos=eos, mesh=mesh, hessian_rows=pp.hessian_rows)


@one_call(plan_qha_from_structures)
def qha_from_structures(potential: Any, volume_sets: Sequence[Sequence[Atoms]], *args: Any,
                        **options: Any) -> list[QHAResult]:
    """QHA for several materials given their structures at several volumes (already relaxed; at
    least 5 each): ONE backend evaluation of every supercell of every volume of every material,
    then phonopy's QHA per material. ``static_energies_eV_per_atom``: E(V) per material (e.g. the
    energies of the relaxations that made the volumes); ``None`` takes them from the evaluated
    perfect supercells. ``phonon_options``: keywords of
    :func:`~mlip_props.properties.phonons.plan_phonons` (no relaxation: the volumes are used as
    given). Used by :func:`quasi_harmonic` and the P-T phase diagram."""


DEFAULT_VOLUME_FACTORS = tuple(float(x) for x in np.linspace(0.94, 1.06, 7))


def plan_quasi_harmonic(
    potential: Any,
    structures: Any,
    *,
    volume_factors: Sequence[float] = DEFAULT_VOLUME_FACTORS,
    temperatures_K: Sequence[float] | None = None,
    pressure_GPa: float = 0.0,
    eos: str = "vinet",
    mesh: float | Sequence[int] = 40.0,
    relaxation: RelaxSettings | dict | bool | None = None,
    phonon_options: dict | None = None,
    dtype: Any = None,
    device: Any = None,
) -> QHAPlan:
    """Plan the quasi-harmonic properties of one structure or many (see :func:`quasi_harmonic`):
    relax (batched), scale to the volumes, relax the ions at each volume (one batched call), and
    plan the phonons of all volumes together."""
    _check_qha_parameters(temperatures_K, pressure_GPa, eos, mesh)
    factors = check_numbers("volume_factors", volume_factors, minimum=0.5, maximum=2.0, exclusive_minimum=True,
                            exclusive_maximum=True)
    if len(set(factors)) < 5:
        raise ValueError(f"parameter 'volume_factors': quasi-harmonic fits need at least 5 distinct volume "
                         f"factors, got {len(set(factors))} ({list(volume_factors)!r})")
    settings = resolve_relaxation(relaxation)
    kw = dict(dtype=dtype or torch.float64, device=device)
    single, base, _ = periodic_starting_points(potential, structures, "quasi-harmonic calculations", settings, **kw)
    scaled = []
    for a in base:
        for f in volume_factors:
            s = a.copy()
            s.set_cell(np.asarray(s.get_cell()) * float(f) ** (1.0 / 3.0), scale_atoms=True)
            scaled.append(s)
    nv = len(volume_factors)
    to_relax = [k for k in range(len(scaled)) if settings.enabled and settings.ions_for(base[k // nv])]
    if to_relax:  # ions at each fixed volume, symmetry kept
        ion_settings = dataclasses.replace(settings, cell=False)
        for k, r in zip(to_relax, relax(potential, [scaled[k] for k in to_relax], settings=ion_settings, **kw)):
            scaled[k] = r.atoms
    sets = [scaled[i * nv : (i + 1) * nv] for i in range(len(base))]
    plan = plan_qha_from_structures(potential, sets, None, temperatures_K=temperatures_K, pressure_GPa=pressure_GPa,
                                    eos=eos, mesh=mesh, phonon_options=phonon_options, dtype=dtype, device=device)
    plan.single = single
    return plan


@one_call(plan_quasi_harmonic)
def quasi_harmonic(potential: Any, structures: Any, **options: Any) -> QHAResult | list[QHAResult]:
    """Quasi-harmonic alpha(T), Cp(T), B(T), G(T) at ``pressure_GPa`` (see :class:`QHAResult`).

    Each structure is relaxed (cell and positions, batched, symmetry kept; ``relaxation`` as for
    the other properties, 1e-4 eV/A and 1e-3 GPa by default), scaled isotropically to
    ``volume_factors`` x V0 (volume ratios, default 0.94-1.06 in 7 steps), its internal positions
    relaxed at each volume (one batched relaxation, symmetry kept; cells with more than one atom,
    see ``RelaxSettings.ions``), and all supercells of all volumes evaluated in one backend call;
    E(V) are the energies of the evaluated perfect supercells. ``eos``: ``"vinet"`` (default),
    ``"birchmurnaghan"`` or ``"murnaghan"`` (fitted by phonopy). ``mesh``: the thermal sampling mesh (3 ints or a
    length in A). ``phonon_options``: keywords of
    :func:`~mlip_props.properties.phonons.plan_phonons` (``supercell``, ``method``,
    ``asr_enforcement`` ...).
    """
