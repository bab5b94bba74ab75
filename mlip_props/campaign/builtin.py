"""The properties a campaign knows (:data:`BUILTIN_PROPERTIES`, read by
:mod:`mlip_props.campaign.registry`) and the two that live here: ``energy`` (static or relaxed
energy per atom) and ``committee`` (committee mean and std of EOS, elastic, phonon and thermal
properties).

A thin layer over :func:`mlip_props.evaluate` (one batched backend call for all structures) and,
with ``relax=True``, over :func:`mlip_props.properties.relax.relax` (batched FIRE). Used as the
cheap property of screening campaigns and of the convex-hull report (formation energies).
``committee`` wraps :func:`mlip_props.properties.uncertainty.committee_properties` for a committee
potential and stores the ``*_std`` columns the report draws as error bars.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from ..backend.evaluate import evaluate, prepare_structures
from ..backend.inputs import structure_list
from ..properties.relax import RelaxSettings
from ..properties.result import PropertyResult
from ..properties.uncertainty import CommitteePropertiesResult


@dataclass(frozen=True)
class EnergyResult(PropertyResult):
    """Energy of one structure (eV), per atom (eV/atom), with the state it was taken in.

    ``volume_A3_per_atom`` is ``None`` for non-periodic structures; ``max_force_eV_A`` is the
    largest atomic force norm of the final structure; ``converged`` is ``None`` for a static
    (unrelaxed) evaluation; ``max_stress_GPa`` the largest |stress| component (periodic only).
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = (
        "energy_eV", "energy_eV_per_atom", "volume_A3_per_atom", "max_force_eV_A", "converged",)

    formula: str
    n_atoms: int
    energy_eV: float
    energy_eV_per_atom: float
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
    dtype: Any = None,
    device: Any = None,
) -> EnergyResult | list[EnergyResult]:
    """Energy per atom (eV/atom) of each structure (ASE ``Atoms``, pymatgen ``Structure`` or
    ``Molecule``, one or a list), static or after a batched relaxation.

    ``relax``: relax positions (FIRE, ``fmax`` eV/A, at most ``max_steps`` steps);
    ``relax_cell``: also relax the cell to zero pressure (implies ``relax``). The final energy,
    forces and stress come from one :func:`mlip_props.evaluate` call over all structures, in
    ``dtype`` (default float64) on ``device``.
    """
    single, items = structure_list(structures)
    kw = dict(dtype=dtype or torch.float64, device=device)
    atoms_list = [a.copy() for a in prepare_structures(items)]
    steps = [0] * len(atoms_list)
    converged: list[bool | None] = [None] * len(atoms_list)
    do_relax = relax or relax_cell
    if do_relax:
        from ..properties.relax import relax as _relax  # explicit, documented dependency

        res = _relax(potential, atoms_list, fmax=fmax, relax_cell=relax_cell, max_steps=max_steps, **kw)
        atoms_list = [r.atoms for r in res]
        steps = [int(r.n_steps) for r in res]
        converged = [bool(r.converged) for r in res]
    periodic = [bool(a.pbc.all()) for a in atoms_list]
    props = ("energy", "forces", "stress") if any(periodic) else ("energy", "forces")
    ev = evaluate(potential, atoms_list, props, **kw)
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
            energy_eV_per_atom=e / n,
            volume_A3_per_atom=float(a.get_volume() / n) if periodic[k] else None,
            max_force_eV_A=fmax_k,
            max_stress_GPa=smax,
            relaxed=do_relax,
            converged=converged[k],
            n_steps=steps[k],
        ))
    return out[0] if single else out


# ------------------------------------------------------------------------------------- committee
_COMMITTEE_PROPERTIES = ("eos", "elastic", "phonons", "thermal")


@dataclass(frozen=True)
class CommitteeRowResult(CommitteePropertiesResult):
    """A :class:`~mlip_props.properties.uncertainty.CommitteePropertiesResult` whose
    ``to_dict()`` (what the campaign database stores) also holds the scalar summary flat:
    ``B_GPa``, ``C11_GPa``, ``C12_GPa``, ``C44_GPa``, ``nu_<point>_<branch>_THz`` (X and L
    by default), ``Cv_<T>K_J_molK``, each with ``<name>_std`` (committee std, ddof 0) and,
    when the model file stores a calibration, ``<name>_std_calibrated`` (std times the
    stored factor). Scalars become searchable database columns."""

    summary_temperature_K: float = 300.0
    summary_points: tuple = ("X", "L")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        for name, (mean, std, _) in self.summary(self.summary_temperature_K, self.summary_points).items():
            d[name] = mean
            d[f"{name}_std"] = std
            if self.calibration_factor is not None:
                d[f"{name}_std_calibrated"] = std * float(self.calibration_factor)
        return d


def committee(
    potential: Any,
    structures: Any,
    *,
    properties: list = list(_COMMITTEE_PROPERTIES),
    elastic_reference: str = "member",
    volume_range: float = 0.08,
    n_points: int = 13,
    strains: list = [-0.01, -0.005, 0.005, 0.01],  # noqa: B006 - read-only default, shown in the schema
    temperatures_K: list | None = None,
    thermal_mesh: float = 30.0,
    phonon_options: dict | None = None,
    relaxation: RelaxSettings | dict | bool | None = None,
    summary_temperature_K: float = 300.0,
    summary_points: list = ["X", "L"],  # noqa: B006
    dtype: Any = None,
    device: Any = None,
) -> CommitteeRowResult | list[CommitteeRowResult]:
    """Committee mean and standard deviation of EOS, elastic, phonon and thermal properties:
    :func:`mlip_props.properties.uncertainty.committee_properties` over all structures of the
    batch (one committee evaluation per stage for every member and structure).

    Units: eV, A, GPa, THz, K, J/(mol K). The stored row holds every field of the committee
    result (``bulk_modulus_GPa`` + ``bulk_modulus_GPa_std``, ``C_GPa`` + ``C_GPa_std``,
    ``high_symmetry_frequencies_THz`` + ``_std``, ``cv_J_molK`` + ``_std``, per-member
    values ``*_members``) and the flat summary ``B_GPa``/``C11_GPa``/... with ``*_std`` columns
    (``summary_temperature_K`` for Cv, ``summary_points`` for the frequencies). ``phonon_options``:
    keyword options of the phonon calculation; ``relaxation``: how the structures are relaxed
    first (true/false or :class:`~mlip_props.properties.relax.RelaxSettings` fields; default the
    derivative properties' 1e-4 eV/A). Raises ``ValueError`` when the potential is not a committee
    (``n_members`` > 1).
    """
    from ..properties.uncertainty import committee_properties, is_committee

    if not is_committee(potential):
        raise ValueError("property 'committee' needs a committee potential (per-atom energies with a member "
                         f"axis, n_members > 1); {type(potential).__name__} is not one")
    single, items = structure_list(structures)
    res = committee_properties(potential, items[0] if single else items, tuple(properties),
                               elastic_reference=elastic_reference, volume_range=volume_range, n_points=n_points,
                               strains=tuple(strains), temperatures_K=temperatures_K, thermal_mesh=thermal_mesh,
                               phonon_options=phonon_options, relaxation=relaxation, dtype=dtype, device=device)
    rows = [CommitteeRowResult(**{f.name: getattr(r, f.name) for f in dataclasses.fields(r)},
                               summary_temperature_K=float(summary_temperature_K), summary_points=tuple(summary_points))
            for r in ([res] if single else res)]
    return rows[0] if single else rows


# ------------------------------------------------------------------------------ the property list
@dataclass(frozen=True)
class BuiltinProperty:
    """One property of the campaign layer: ``load()`` imports it and returns the property function
    (``func(potential, structures, **params)``) and its plan function (same parameters; ``None``
    where the runner cannot plan it together with others). ``extra``: the optional dependency group
    (pyproject ``[project.optional-dependencies]``) without which the property is unavailable;
    ``None`` for properties built on the core dependencies, whose import errors are raised."""

    name: str
    load: Callable[[], tuple[Callable[..., Any], Callable[..., Any] | None]]
    description: str
    extra: str | None = None


def _relax() -> tuple[Callable[..., Any], None]:
    from ..properties.relax import relax

    return relax, None


def _eos() -> tuple[Callable[..., Any], Callable[..., Any]]:
    from ..properties.eos import equation_of_state, plan_eos

    return equation_of_state, plan_eos


def _elastic() -> tuple[Callable[..., Any], Callable[..., Any]]:
    from ..properties.elastic import elastic_tensor, plan_elastic

    return elastic_tensor, plan_elastic


def _phonons() -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    from ..properties.phonons import phonons, plan_phonons

    return phonons, plan_phonons


def _thermal() -> tuple[Callable[..., Any], Callable[..., Any]]:
    from ..properties.thermal import harmonic_thermal, plan_thermal

    return harmonic_thermal, plan_thermal


def _qha() -> tuple[Callable[..., Any], Callable[..., Any]]:
    from ..properties.thermal import plan_quasi_harmonic, quasi_harmonic

    return quasi_harmonic, plan_quasi_harmonic


def _diatomic() -> tuple[Callable[..., Any], None]:
    # no plan for the runner: planning a diatomic evaluates its scans (the refinement windows depend
    # on them), and diatomic() analyses those answers, with the committee spread
    from ..properties.diatomic import diatomic

    return diatomic, None


def _vibrations() -> tuple[Callable[..., Any], Callable[..., Any]]:
    from ..properties.vibrations import plan_vibrations, vibrations

    return vibrations, plan_vibrations


def _transition() -> tuple[Callable[..., Any], None]:
    # no plan for the runner: the runner analyses plans with the committee mean, and a transition
    # row of a committee holds every member's crossing (transition() analyses every member)
    from ..properties.transitions import transition

    return transition, None


def _conductivity() -> tuple[Callable[..., Any], Callable[..., Any]]:
    import phono3py  # noqa: F401  (the kappa extra; imported here so that its absence shows at load)

    from ..properties.conductivity import plan_conductivity, thermal_conductivity

    return thermal_conductivity, plan_conductivity


#: every property a campaign file may name, in the order ``mlip-props properties`` lists them
BUILTIN_PROPERTIES: tuple[BuiltinProperty, ...] = (
    BuiltinProperty("energy", lambda: (energy, None), "static or relaxed energy per atom (eV/atom)"),
    BuiltinProperty("relax", _relax, "batched FIRE relaxation of positions (and cell)"),
    BuiltinProperty("eos", _eos, "equation of state: V0, E0, B, B'"),
    BuiltinProperty("elastic", _elastic, "6x6 elastic tensor (GPa)"),
    BuiltinProperty("phonons", _phonons, "harmonic phonons (THz) with ASR checks"),
    BuiltinProperty("thermal", _thermal, "harmonic Cv, S, F (J/(mol K))"),
    BuiltinProperty("qha", _qha, "quasi-harmonic thermodynamics"),
    BuiltinProperty("diatomic", _diatomic, "diatomic r_e, D_e, omega_e (cm^-1)"),
    BuiltinProperty("vibrations", _vibrations, "molecular vibrations (cm^-1)"),
    BuiltinProperty("transition", _transition,
                    "static T=0 enthalpy crossing vs high-pressure polymorphs (GPa), committee spread"),
    BuiltinProperty("conductivity", _conductivity, "lattice thermal conductivity (W/(m K)), phono3py",
                    extra="kappa"),
    BuiltinProperty("committee", lambda: (committee, None),
                    "committee mean and std of EOS, elastic, phonons, Cv (committee potentials)"),
)
