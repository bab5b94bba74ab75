"""Unit conversions used across mlip-props (internal units: eV, Angstrom, amu)."""
from ase import units as _u

#: 1 eV/Angstrom^3 in GPa.
EV_A3_TO_GPA = 1.0 / _u.GPa  # 160.21766...
#: 1 THz in cm^-1.
THZ_TO_CM1 = 1e12 / (_u._c * 100.0)  # 33.35641...
#: Boltzmann constant, eV/K.
KB_EV_K = _u.kB


def stress_to_gpa(stress_eV_A3):
    """Convert a stress (eV/A^3, any shape) to GPa."""
    return stress_eV_A3 * EV_A3_TO_GPA
