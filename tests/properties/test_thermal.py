"""Harmonic and quasi-harmonic thermal properties against independent phonopy + ASE EMT and
physical limits (Dulong-Petit, Cp > Cv, positive thermal expansion)."""
import numpy as np
import pytest
from ase.build import bulk

from mlip_props import load_potential
from mlip_props.properties.thermal import R_J_MOLK, debye_cv, harmonic_thermal, quasi_harmonic

MESH = [24, 24, 24]


@pytest.fixture(scope="module")
def emt_cu_thermal():
    return harmonic_thermal(load_potential("emt"), bulk("Cu", "fcc", a=3.6), mesh=MESH,
                            temperatures_K=[0, 100, 300, 1000, 2000])


def _independent_cv(ref, temperature):
    """Cv (J/(mol K) per mole of 1-atom primitive cells) from the independent phonopy + ASE EMT
    reference (tests/properties/conftest.py) on the same mesh."""
    ref.run_mesh(MESH, is_gamma_center=True)
    ref.run_thermal_properties(temperatures=[temperature], exclude_gamma_acoustic=True)
    return float(ref.thermal_properties.heat_capacity[0])


def test_cv_300K_matches_independent_phonopy(emt_cu_thermal, emt_cu_reference):
    ref = _independent_cv(emt_cu_reference, 300.0)
    assert emt_cu_thermal.at(300.0)["cv_J_molK"] == pytest.approx(ref, rel=5e-3)


def test_dulong_petit_and_third_law(emt_cu_thermal):
    r = emt_cu_thermal
    assert r.at(2000.0)["cv_J_molK"] == pytest.approx(3 * R_J_MOLK, rel=5e-3)
    assert r.cv_J_molK[0] == pytest.approx(0.0, abs=1e-6)
    assert r.entropy_J_molK[0] == pytest.approx(0.0, abs=1e-3)
    # U(0) = F(0) = zero-point energy > 0, and U = F + T S everywhere
    assert r.zero_point_energy_kJ_mol > 0
    assert np.allclose(r.internal_energy_kJ_mol,
                       r.free_energy_kJ_mol + r.temperatures_K * r.entropy_J_molK / 1000)
    assert r.mesh_converged and r.mesh_change_cv_rel < 5e-3


def test_debye_temperature_consistent_with_heat_capacity(emt_cu_thermal):
    r = emt_cu_thermal
    # theta_D(2) is the high-temperature limit of the Cv-Debye temperature (Grimvall 1999, sec. 7.3)
    k = list(r.temperatures_K).index(300.0)
    assert r.debye_temperature_cv_K[k] == pytest.approx(r.debye_temperature_K, rel=0.03)
    assert 200 < r.debye_temperature_K < 500  # EMT Cu; experiment 343 K
    assert debye_cv(np.array([10.0]))[0] == pytest.approx(3 * R_J_MOLK, rel=1e-3)


def test_per_formula_unit_fields():
    lj = load_potential("lj:epsilon=0.0104,sigma=3.4")
    nacl = bulk("NaCl", "rocksalt", a=7.6)  # same LJ for both: an fcc-like lattice at this spacing
    r = harmonic_thermal(lj, nacl, temperatures_K=[300.0], mesh=[8, 8, 8], check_mesh=False, relaxation=False)
    assert r.formula == "NaCl" and r.atoms_per_formula_unit == 2 and r.n_atoms_primitive == 2
    assert r.cv_J_molK_fu[0] == pytest.approx(2 * r.cv_J_molK[0])
    assert r.free_energy_kJ_mol_fu[0] == pytest.approx(2 * r.free_energy_kJ_mol[0])


def test_qha_emt_cu_expansion_and_cp_above_cv():
    q = quasi_harmonic(load_potential("emt"), bulk("Cu", "fcc", a=3.6), volume_factors=np.linspace(0.97, 1.05, 5),
                       temperatures_K=np.arange(0, 701, 10.0), mesh=[16, 16, 16],
                       phonon_options={"asr_enforcement": "phonopy"})
    at = q.at(300.0)
    assert 3e-6 < at["linear_thermal_expansion_per_K"] < 5e-5  # order 1e-5 /K (Cu expt 1.65e-5)
    assert at["cp_J_molK"] > at["cv_J_molK"] > 0
    assert 80 < at["bulk_modulus_GPa"] < 200
    k300 = int(np.argmin(abs(q.temperatures_K - 300)))
    assert q.volume_in_range[k300]
    assert q.volume_A3_per_atom[k300] > q.volume_A3_per_atom[0]  # expands on heating
