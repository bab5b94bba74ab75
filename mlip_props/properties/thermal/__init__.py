"""Harmonic and quasi-harmonic thermodynamics from phonons.

Harmonic (Born & Huang 1954; e.g. Dove, *Introduction to Lattice Dynamics*, CUP 1993, ch. 5):
phonopy's mesh sampling of the phonon frequencies of :func:`~mlip_props.properties.phonons.phonons`
gives the constant-volume heat capacity Cv, entropy S, Helmholtz free energy F (zero-point
energy included) and internal energy U = F + T S. Every quantity is reported twice:

* ``cv_J_molK``, ``entropy_J_molK``, ``free_energy_kJ_mol`` ...: per mole of ATOMS (Cv -> 3R = 24.94 J/(mol K) at high T, Dulong-Petit);
* ``*_fu``: per mole of FORMULA UNITS (pymatgen reduced formula: NaCl -> 2 atoms per f.u.).

Units: J/(mol K) for Cv and S, kJ/mol for F and U, K for temperatures. The sampling mesh is
checked by repeating the calculation on a denser mesh (1.5x the linear density).

Debye temperatures: ``debye_temperature_K`` from the second moment of the phonon DOS,
theta_D(2) = (h/k_B) sqrt(5/3 <nu^2>) (Barron, Berg & Morrison, Proc. R. Soc. A 242, 478 (1957);
Grimvall, *Thermophysical Properties of Materials*, 1999, sec. 7.3) — the high-temperature
limit of the Cv-Debye temperature; ``debye_temperature_cv_K`` inverts the Debye heat capacity
at each temperature.

Quasi-harmonic (phonopy's ``phonopy.qha.core.QHA``; Togo et al., Phys. Rev. B 81, 174301 (2010)):
phonons at a set of volumes, all their supercells in ONE backend call, static energies E(V), then
G(T, P) = min_V [E(V) + F_vib(V, T) + P V] by an equation-of-state fit at each T: volumetric
thermal expansion alpha_V(T), Cp(T), isothermal bulk modulus B_T(T), G(T, P). Cell shapes are
either scaled isotropically (``volume_factors``; internal positions relaxed) or relaxed at a set
of pressures (the P-T phase diagram; shape relaxed, e.g. hcp c/a).

Plan -> evaluate -> analyse: :func:`plan_thermal` and :func:`plan_quasi_harmonic` wrap a
:class:`~mlip_props.properties.phonons.PhononPlan`; their ``analyse(answers)`` takes one
potential's answers (a committee member's column included). Modules: :mod:`.sums` (mesh sums,
Debye temperatures), :mod:`.harmonic`, :mod:`.qha`.
"""
from .harmonic import (ThermalPlan, ThermalResult, atoms_per_formula_unit, harmonic_thermal, phonon_plan_options,
                       plan_thermal, thermal_from_phonons)
from .qha import (DEFAULT_VOLUME_FACTORS, QHAPlan, QHAResult, cv_at_volume, plan_qha_from_structures,
                  plan_quasi_harmonic, qha_from_structures, quasi_harmonic, run_qha)
from .sums import (EV_TO_KJ_MOL, H_OVER_KB_K_THZ, R_J_MOLK, debye_cv, debye_temperature_from_cv, default_temperatures,
                   mesh_thermal_properties, moment_debye_temperature, thermal_mesh)

__all__ = [
    "harmonic_thermal", "plan_thermal", "ThermalPlan", "ThermalResult", "thermal_from_phonons",
    "quasi_harmonic", "plan_quasi_harmonic", "qha_from_structures", "plan_qha_from_structures", "QHAPlan",
    "QHAResult", "run_qha", "cv_at_volume", "DEFAULT_VOLUME_FACTORS", "thermal_mesh", "mesh_thermal_properties",
    "moment_debye_temperature", "debye_cv", "debye_temperature_from_cv", "default_temperatures",
    "atoms_per_formula_unit", "phonon_plan_options", "R_J_MOLK", "H_OVER_KB_K_THZ", "EV_TO_KJ_MOL",
]
