"""LO-TO splitting of polar crystals: the flag without Born charges, phonopy's non-analytical
correction with them, checked against the textbook formula for a cubic diatomic crystal

    omega_LO^2 - omega_TO^2 = Z*^2 e^2 / (eps0 eps_inf V mu)

(Born & Huang 1954; V the primitive-cell volume, mu the reduced mass), written here in SI units
from CODATA constants, independently of phonopy's unit factors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

from mlip_props import load_potential
from mlip_props.campaign.report.flags import row_flags
from mlip_props.properties.phonons import phonons
from mlip_props.properties.phonons.nac import is_polar
from mlip_props.properties.thermal import thermal_from_phonons

E_C = 1.602176634e-19  # C
EPS0 = 8.8541878128e-12  # F/m
AMU_KG = 1.66053906660e-27
Z_BORN, EPS_INF, A_NACL = 1.1, 2.4, 5.64


def _textbook_split_THz2(atoms_primitive_volume_A3: float, m1: float, m2: float) -> float:
    mu = m1 * m2 / (m1 + m2) * AMU_KG
    d_omega2 = Z_BORN**2 * E_C**2 / (EPS0 * EPS_INF * atoms_primitive_volume_A3 * 1e-30 * mu)  # s^-2
    return d_omega2 / (2 * np.pi) ** 2 / 1e24  # THz^2


@pytest.fixture(scope="module")
def lj():
    # one Lennard-Jones pair potential for every pair: a simple-cubic arrangement of "Na" and "Cl"
    # whose Gamma optical mode is a clean test bed (the formula holds for any short-range fc; the
    # lattice is unstable away from Gamma -- central forces on simple cubic -- which Gamma ignores)
    return load_potential("lj:epsilon=0.1,sigma=2.51")


def _nacl_conventional():
    return bulk("NaCl", "rocksalt", a=A_NACL, cubic=True)  # 8 atoms, Na and Cl alternating


@pytest.mark.parametrize("method", ["hessian", "displacement"])
def test_lo_to_splitting_equals_the_textbook_formula(lj, method):
    atoms = _nacl_conventional()
    born = [Z_BORN if s == "Na" else -Z_BORN for s in atoms.get_chemical_symbols()]  # per input atom
    kw = dict(relaxation=False, method=method, supercell=2, mesh=[4, 4, 4], group_velocity_mesh=None)
    plain = phonons(lj, atoms, **kw)
    res = phonons(lj, atoms, nac_params={"born": born, "dielectric": EPS_INF}, **kw)
    assert plain.polar and plain.lo_to_missing and not plain.lo_to_included
    assert res.polar and res.lo_to_included and not res.lo_to_missing
    assert res.born_charge_sum_e == pytest.approx(0.0, abs=1e-12)
    assert "no LO-TO" in row_flags(plain.to_dict()) and "no LO-TO" not in row_flags(res.to_dict())

    prim = res.harmonic.primitive
    volume = abs(np.linalg.det(np.asarray(prim.cell)))
    assert volume == pytest.approx(A_NACL**3 / 4, rel=1e-10)
    expected = _textbook_split_THz2(volume, *np.asarray(prim.masses))

    f_plain = plain.frequencies_at([[0, 0, 0]])[0]
    f_to = f_plain[3:]  # three degenerate optical modes without the correction
    assert np.ptp(f_to) < 1e-6 and np.abs(f_plain[:3]).max() < 1e-5
    for direction in ([0.5, 0.0, 0.5], [0.5, 0.5, 0.5], [0.1, 0.3, 0.2]):  # cubic: any direction
        f = res.frequencies_at([[0, 0, 0]], q_direction=direction)[0]
        np.testing.assert_allclose(f[3:5], f_to[:2], atol=1e-6)  # TO unchanged
        assert f[5] ** 2 - f_to[0] ** 2 == pytest.approx(expected, rel=0.01)
    # the band path approaches Gamma along its segments: LO above TO there, and the correction
    # vanishes at q = 0 without a direction (mesh Gamma points are TO only, phonopy's convention)
    gamma = np.asarray(res.high_symmetry_frequencies_THz["Gamma"])
    assert gamma[5] ** 2 - gamma[4] ** 2 == pytest.approx(expected, rel=0.01)
    np.testing.assert_allclose(res.frequencies_at([[0, 0, 0]])[0], f_plain, atol=1e-6)
    # written phonopy files carry the Born charges
    ph = res.phonopy_object
    assert ph.nac_params is not None
    np.testing.assert_allclose(np.asarray(ph.nac_params["born"])[:, 0, 0], [Z_BORN, -Z_BORN])
    # thermal properties from these phonons carry the flag (their mesh sums lack the LO shift without charges)
    th_plain, th_res = thermal_from_phonons([plain, res], temperatures_K=[100.0, 300.0], check_mesh=False)
    assert th_plain.lo_to_missing and not th_res.lo_to_missing
    assert "no LO-TO" in row_flags(th_plain.to_dict()) and "no LO-TO" not in row_flags(th_res.to_dict())


def test_polar_rule_and_override():
    assert is_polar(bulk("MgO", "rocksalt", a=4.21))
    assert is_polar(bulk("GaN", "wurtzite", a=3.19, c=5.19))
    assert is_polar(bulk("SiC", "zincblende", a=4.36))  # metalloid + non-metal
    assert not is_polar(bulk("Si", "diamond", a=5.43))
    assert not is_polar(bulk("Cu", "fcc", a=3.6))
    cu3au = bulk("Cu", "fcc", a=3.75, cubic=True)
    cu3au.symbols[0] = "Au"
    assert not is_polar(cu3au)  # an intermetallic: metals screen the field


def test_nac_params_are_checked(lj):
    atoms = _nacl_conventional()
    kw = dict(relaxation=False, supercell=1, mesh=[2, 2, 2], group_velocity_mesh=None, band_structure=False)
    with pytest.raises(ValueError, match=r"structure 0.*born.*8 atoms"):
        phonons(lj, atoms, nac_params={"born": [1.1, -1.1], "dielectric": 2.0}, **kw)
    with pytest.raises(ValueError, match=r"structure 0.*dielectric.*positive definite"):
        phonons(lj, atoms, nac_params={"born": [0.0] * 8, "dielectric": -1.0}, **kw)
    with pytest.raises(ValueError, match=r"structure 0.*'born' and 'dielectric'"):
        phonons(lj, atoms, nac_params={"born": [0.0] * 8}, **kw)
    res = phonons(lj, atoms, polar=False, **kw)  # the user knows better (e.g. a metallic compound)
    assert not res.polar and not res.lo_to_missing


def test_imaginary_tolerance_knows_the_precision():
    """The default imaginary-mode tolerance: 0.05 THz for float64 force constants; for float32 the
    larger of 0.05 THz and 3 x the measured noise, sqrt(raw ASR violation / lightest mass) as a
    frequency (recomputed here from the reported violation in SI units); an explicit tolerance wins."""
    from mlip_props.properties.phonons.analysis import imaginary_tolerance

    ar = bulk("Ar", "fcc", a=5.26)
    lj_ar = load_potential("lj:epsilon=0.0104,sigma=3.40")
    kw = dict(relaxation=False, supercell=2, mesh=[4, 4, 4], group_velocity_mesh=None, band_structure=False)
    r64 = phonons(lj_ar, ar, **kw)
    r32 = phonons(lj_ar, ar, dtype=torch.float32, **kw)
    assert (r64.precision, r32.precision) == ("float64", "float32")
    assert r64.imaginary_tolerance_THz == 0.05
    assert r32.asr_violation_eV_A2 > 100 * r64.asr_violation_eV_A2  # float32 rounding is measured
    m = ar.get_masses()[0] * AMU_KG
    noise_THz = np.sqrt(r32.asr_violation_eV_A2 * E_C / 1e-20 / m) / (2 * np.pi) / 1e12  # sqrt(k/m)/(2 pi)
    assert r32.asr_noise_THz == pytest.approx(noise_THz, rel=1e-3)
    assert r32.imaginary_tolerance_THz == pytest.approx(max(0.05, 3 * noise_THz), rel=1e-3)
    assert phonons(lj_ar, ar, dtype=torch.float32, imaginary_tolerance_THz=0.01, **kw).imaginary_tolerance_THz == 0.01
    # the rule itself, where the noise dominates
    assert imaginary_tolerance(None, "float32", 0.1) == pytest.approx(0.3)
    assert imaginary_tolerance(None, "float64", 0.1) == 0.05
    assert imaginary_tolerance(0.2, "float32", 0.1) == 0.2
