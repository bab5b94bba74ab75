"""Harmonic thermal properties of one structure or many: Cv, S, F, U from phonons."""
from __future__ import annotations

import dataclasses
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
from ase import Atoms

from ...backend.evaluate import EvaluationResult
from ... import validation
from ..phonons import PhononPlan, PhononResult, plan_phonons
from ..plan import EvaluationPlan, one_call
from ..relax import RelaxSettings
from ..result import PropertyResult, jsonable
from .sums import (R_J_MOLK, debye_temperature_from_cv, default_temperatures, mesh_thermal_properties,
                   moment_debye_temperature, thermal_mesh)


@dataclass(frozen=True)
class ThermalResult(PropertyResult):
    """Harmonic thermal properties of one structure.

    Fields without a suffix are per mole of atoms, ``*_fu`` per mole of formula units
    (``formula`` is the pymatgen reduced formula; ``atoms_per_formula_unit`` atoms each).
    Cv, S in J/(mol K); F, U, zero-point energy in kJ/mol; temperatures K.
    ``mesh_change_cv_rel``: largest |Cv(mesh) - Cv(denser mesh)| / 3R over the temperatures;
    ``mesh_converged``: that change below ``mesh_tolerance``. Imaginary modes (from the phonon
    calculation) are excluded from the sums by phonopy and flagged here. ``lo_to_missing``: the
    phonon calculation's flag (a polar crystal without Born charges, so the LO branches near Gamma
    lack their non-analytical shift; its effect on Cv and S is small, a few mesh points near Gamma,
    but the sums are not those of the corrected spectrum); with ``nac_params`` in the phonon options
    phonopy applies the correction on the mesh (Gamma itself TO only).
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = (
        "temperatures_K", "cv_J_molK", "entropy_J_molK", "debye_temperature_K", "mesh_converged",
        "imaginary_modes", "n_imaginary_modes", "lo_to_missing")

    formula: str
    atoms_per_formula_unit: int
    n_atoms_primitive: int
    temperatures_K: np.ndarray
    cv_J_molK: np.ndarray
    entropy_J_molK: np.ndarray
    free_energy_kJ_mol: np.ndarray
    internal_energy_kJ_mol: np.ndarray
    cv_J_molK_fu: np.ndarray
    entropy_J_molK_fu: np.ndarray
    free_energy_kJ_mol_fu: np.ndarray
    internal_energy_kJ_mol_fu: np.ndarray
    zero_point_energy_kJ_mol: float
    debye_temperature_K: float
    debye_temperature_cv_K: np.ndarray
    mesh: list
    check_mesh: list | None
    mesh_change_cv_rel: float | None
    mesh_change_entropy_J_molK: float | None
    mesh_converged: bool | None
    mesh_tolerance: float
    imaginary_modes: bool
    n_imaginary_modes: int
    lowest_frequency_THz: float
    lo_to_missing: bool
    phonon_result: PhononResult | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "phonon_result"}

    def at(self, temperature_K: float) -> dict[str, float]:
        """All per-mole-of-atoms quantities interpolated at one temperature (K)."""
        t = self.temperatures_K
        return {name: float(np.interp(temperature_K, t, getattr(self, name))) for name in (
            "cv_J_molK", "entropy_J_molK", "free_energy_kJ_mol", "internal_energy_kJ_mol")}


def atoms_per_formula_unit(atoms: Atoms) -> int:
    """Atoms in one pymatgen reduced formula unit (NaCl: 2)."""
    from pymatgen.core import Composition

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return int(round(Composition(atoms.get_chemical_formula()).reduced_composition.num_atoms))


def _thermal_of(r: PhononResult, temps: np.ndarray, mesh: Any, check_mesh: bool, mesh_tolerance: float) -> ThermalResult:
    ph = r.harmonic if getattr(r, "harmonic", None) is not None else r.phonopy_object
    n_prim = len(ph.primitive)
    n_fu_atoms = atoms_per_formula_unit(r.atoms)
    m = thermal_mesh(ph, mesh)
    check = dcv = ds = conv = None
    sym, existing = getattr(r, "primitive_symmetry", None), getattr(r, "mesh_object", None)
    if check_mesh:
        check = np.ceil(m * 1.5).astype(int)
        denser = mesh_thermal_properties(ph, check, temps, sym, existing)
    tp = mesh_thermal_properties(ph, m, temps, sym, existing)
    cv = tp["heat_capacity"] / n_prim
    s = tp["entropy"] / n_prim
    f = tp["free_energy"] / n_prim
    u = f + temps * s / 1000.0
    if check_mesh:
        dcv = float(np.max(np.abs(denser["heat_capacity"] / n_prim - cv)) / (3 * R_J_MOLK))
        ds = float(np.max(np.abs(denser["entropy"] / n_prim - s)))
        conv = bool(dcv < mesh_tolerance)
    zpe = float(np.interp(0.0, temps, f)) if temps.min() == 0 else float("nan")
    return ThermalResult(
        formula=r.formula, atoms_per_formula_unit=n_fu_atoms, n_atoms_primitive=n_prim, temperatures_K=temps,
        cv_J_molK=cv, entropy_J_molK=s, free_energy_kJ_mol=f, internal_energy_kJ_mol=u,
        cv_J_molK_fu=cv * n_fu_atoms, entropy_J_molK_fu=s * n_fu_atoms, free_energy_kJ_mol_fu=f * n_fu_atoms,
        internal_energy_kJ_mol_fu=u * n_fu_atoms, zero_point_energy_kJ_mol=zpe,
        debye_temperature_K=moment_debye_temperature(tp["mesh"]),
        debye_temperature_cv_K=debye_temperature_from_cv(temps, cv), mesh=m.tolist(),
        check_mesh=None if check is None else check.tolist(), mesh_change_cv_rel=dcv,
        mesh_change_entropy_J_molK=ds, mesh_converged=conv, mesh_tolerance=mesh_tolerance,
        imaginary_modes=r.imaginary_modes, n_imaginary_modes=r.n_imaginary_modes, lowest_frequency_THz=r.lowest_frequency_THz,
        lo_to_missing=bool(r.lo_to_missing), phonon_result=r)


def thermal_from_phonons(
    results: PhononResult | Sequence[PhononResult],
    *,
    temperatures_K: Sequence[float] | None = None,
    mesh: float | Sequence[int] = 50.0,
    check_mesh: bool = True,
    mesh_tolerance: float = 0.005,
) -> ThermalResult | list[ThermalResult]:
    """Harmonic Cv, S, F, U (see :class:`ThermalResult`) from phonon results (no model calls).

    ``mesh``: Gamma-centred mesh as 3 ints or a length (A; phonopy ``length2mesh``, default 50).
    ``check_mesh``: repeat on a mesh 1.5x denser and report the change.
    """
    single = isinstance(results, PhononResult)
    validation.check_mesh("mesh", mesh)
    validation.check_number("mesh_tolerance", mesh_tolerance, minimum=0.0, exclusive_minimum=True)
    temps = default_temperatures() if temperatures_K is None else np.asarray(
        validation.check_numbers("temperatures_K", temperatures_K, minimum=0.0), dtype=float)
    out = [_thermal_of(r, temps, mesh, check_mesh, mesh_tolerance) for r in ([results] if single else results)]
    return out[0] if single else out


#: plan_phonons keywords that are parameters of the thermal properties themselves.
_NOT_PHONON_OPTIONS = ("potential", "structures", "relaxation", "dtype", "device")


def phonon_plan_options(phonon_options: dict | None, **defaults: Any) -> dict[str, Any]:
    """``phonon_options`` (keywords of :func:`~mlip_props.properties.phonons.plan_phonons`) over
    ``defaults``; a ``ValueError`` names unknown keys (relaxation, dtype and device are parameters
    of the calling property)."""
    opts = dict(defaults)
    opts.update(phonon_options or {})
    allowed = set(inspect.signature(plan_phonons).parameters) - set(_NOT_PHONON_OPTIONS)
    bad = sorted(set(opts) - allowed)
    if bad:
        raise ValueError(f"unknown phonon options {bad}; choose from {sorted(allowed)} "
                         "(relaxation, dtype and device are parameters of the property itself)")
    return opts


@dataclass
class ThermalPlan(EvaluationPlan):
    """A :class:`~mlip_props.properties.phonons.PhononPlan` (its supercells are this plan's) and
    the thermal sums to take on each structure's phonons."""

    phonon_plan: PhononPlan | None = None
    temperatures_K: np.ndarray = field(default_factory=default_temperatures)
    mesh: float | Sequence[int] = 50.0
    check_mesh: bool = True
    mesh_tolerance: float = 0.005
    hessian_rows: list | None = None

    def input_index(self, k: int) -> int:
        return self.phonon_plan.input_index(k)

    def analyse(self, answers: EvaluationResult) -> list[ThermalResult]:
        """One :class:`ThermalResult` (with its phonon result) per structure from one potential's answers."""
        return thermal_from_phonons(self.phonon_plan.analyse(answers), temperatures_K=self.temperatures_K,
                                    mesh=self.mesh, check_mesh=self.check_mesh, mesh_tolerance=self.mesh_tolerance)


def plan_thermal(
    potential: Any,
    structures: Any,
    *,
    temperatures_K: Sequence[float] | None = None,
    mesh: float | Sequence[int] = 50.0,
    check_mesh: bool = True,
    mesh_tolerance: float = 0.005,
    relaxation: RelaxSettings | dict | bool | None = None,
    phonon_options: dict | None = None,
    dtype: Any = None,
    device: Any = None,
) -> ThermalPlan:
    """Plan the harmonic thermal properties of one structure or many (see :func:`harmonic_thermal`):
    the phonon plan (relaxation included) and the thermal sums to take."""
    options = phonon_plan_options(phonon_options, band_structure=False)
    pp = plan_phonons(potential, structures, relaxation=relaxation, dtype=dtype, device=device, **options)
    validation.check_mesh("mesh", mesh)
    validation.check_number("mesh_tolerance", mesh_tolerance, minimum=0.0, exclusive_minimum=True)
    temps = default_temperatures() if temperatures_K is None else np.asarray(
        validation.check_numbers("temperatures_K", temperatures_K, minimum=0.0), dtype=float)
    return ThermalPlan(structures=pp.structures, quantities=pp.quantities, single=pp.single, phonon_plan=pp,
                       temperatures_K=temps, mesh=mesh, check_mesh=check_mesh, mesh_tolerance=mesh_tolerance,
                       hessian_rows=pp.hessian_rows)


@one_call(plan_thermal)
def harmonic_thermal(potential: Any, structures: Any, **options: Any) -> ThermalResult | list[ThermalResult]:
    """Harmonic thermal properties of one structure (a :class:`ThermalResult`) or many (a list):
    phonons (one batched relaxation, one backend evaluation of all supercells) then the mesh sums
    of :func:`thermal_from_phonons`. Units and per-atom / per-formula-unit conventions:
    :class:`ThermalResult`.

    ``temperatures_K``: default 0-2000 K in 10 K steps plus 298.15 K. ``mesh``: Gamma-centred
    sampling mesh, 3 ints or a length (A, phonopy's ``length2mesh``; default 50 A);
    ``check_mesh``: repeat on a 1.5x denser mesh and report the change (``mesh_converged``: the
    change of Cv below ``mesh_tolerance`` x 3R). ``relaxation``: as for
    :func:`~mlip_props.properties.phonons.phonons` (cell and ions, 1e-4 eV/A, 1e-3 GPa by default).
    ``phonon_options``: other keywords of :func:`~mlip_props.properties.phonons.plan_phonons`
    (``supercell``, ``min_length_A``, ``method``, ``displacement_A``, ``asr_enforcement`` ...;
    the band structure is skipped unless ``band_structure`` is set).
    """
