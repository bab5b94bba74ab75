"""The GPAW oracle (``dft`` extra): forces and stress are derivatives of its energy, the cache
returns the same numbers without a new SCF, and the structure checks refuse what plane waves
cannot describe. Small rattled, strained Si2 cell, 200 eV, 2x2x2 k-points (~3 s per SCF)."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

pytest.importorskip("gpaw")

from mlip_props.backend import evaluate  # noqa: E402
from mlip_props.potentials import gpaw_oracle as go  # noqa: E402
from mlip_props.potentials import load_potential  # noqa: E402

pytestmark = pytest.mark.dft

SETTINGS = dict(xc="PBE", ecut=200, kpts=2)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gpaw_cache")


@pytest.fixture(scope="module")
def si():
    a = bulk("Si", "diamond", a=5.43)
    rng = np.random.default_rng(0)
    a.positions += rng.normal(0.0, 0.05, a.positions.shape)
    strain = np.array([[0.01, 0.005, 0.0], [0.005, -0.01, 0.0], [0.0, 0.0, 0.003]])
    a.set_cell(a.cell @ (np.eye(3) + strain), scale_atoms=True)
    return a


@pytest.fixture(scope="module")
def oracle(cache_dir):
    return go.gpaw_oracle(**SETTINGS, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def reference(oracle, si):
    return evaluate(oracle, [si], properties=("energy", "forces", "stress"))


def _energy(oracle, atoms) -> float:
    return float(evaluate(oracle, [atoms], properties=("energy",)).energies_eV[0])


def test_forces_are_minus_the_energy_gradient(oracle, si, reference):
    d = 0.01  # A; central difference error ~ d^2 F''' << 1e-3 eV/A here
    f = np.asarray(reference.forces_eV_A[0])
    assert np.abs(f).max() > 0.02  # the rattle gives forces worth testing
    for atom, axis in ((0, 0), (1, 2)):
        e = []
        for sign in (1.0, -1.0):
            b = si.copy()
            b.positions[atom, axis] += sign * d
            e.append(_energy(oracle, b))
        fd = -(e[0] - e[1]) / (2 * d)
        assert f[atom, axis] == pytest.approx(fd, abs=2e-3), (atom, axis)
    assert np.abs(f.sum(axis=0)).max() < 1e-3  # no net force on a periodic cell


def test_stress_is_the_finite_strain_derivative(oracle, si, reference):
    eps = 0.005
    s = np.asarray(reference.stress_eV_A3[0])
    v = si.get_volume()
    for voigt, (i, j) in ((0, (0, 0)), (5, (0, 1))):
        e = []
        for sign in (1.0, -1.0):
            t = np.eye(3)
            if i == j:
                t[i, i] += sign * eps
            else:  # symmetric shear: engineering strain eps in Voigt component xy
                t[i, j] += sign * eps / 2
                t[j, i] += sign * eps / 2
            b = si.copy()
            b.set_cell(b.cell @ t, scale_atoms=True)
            e.append(_energy(oracle, b))
        fd = (e[0] - e[1]) / (2 * eps) / v  # eV/A^3, ASE sign: sigma = (1/V) dE/d(strain)
        assert s[voigt] == pytest.approx(fd, abs=3e-4 * max(1.0, abs(fd) / 1e-2)), voigt
    assert abs(s[0] - s[1]) > 1e-3  # the strain makes the cell anisotropic: a real tensor is tested


def test_cache_returns_identical_numbers_without_an_scf(cache_dir, si, reference):
    before = go.N_COMPUTED
    again = evaluate(load_potential(f"gpaw:xc=PBE,ecut=200,kpts=2,cache_dir={cache_dir}"), [si],
                     properties=("energy", "forces", "stress"))
    assert go.N_COMPUTED == before
    assert again.energies_eV[0] == reference.energies_eV[0]
    assert np.array_equal(np.asarray(again.forces_eV_A[0]), np.asarray(reference.forces_eV_A[0]))
    assert np.array_equal(np.asarray(again.stress_eV_A3[0]), np.asarray(reference.stress_eV_A3[0]))
    # other settings are another cache entry (no SCF is run to check it: the keys differ)
    other = go.GPAWCachedCalculator(xc="PBE", ecut=250, kpts=2, cache_dir=cache_dir)
    same = go.GPAWCachedCalculator(**SETTINGS, cache_dir=cache_dir)
    assert other.cache_key(si) != same.cache_key(si)
    shifted = si.copy()
    shifted.positions[0, 0] += 1e-6
    assert same.cache_key(shifted) != same.cache_key(si)


def test_structure_and_setting_checks(oracle, si):
    mol = si.copy()
    mol.pbc = False
    with pytest.raises(ValueError, match="structure 0: the gpaw oracle is for periodic solids"):
        evaluate(oracle, [mol], properties=("energy",))
    big = si.repeat((3, 3, 4))  # 72 atoms > max_atoms=64
    with pytest.raises(ValueError, match="structure 1: 72 atoms exceed"):
        evaluate(oracle, [si, big], properties=("energy",))
    with pytest.raises(ValueError, match="ecut"):
        go.gpaw_oracle(ecut=-1)
    with pytest.raises(ValueError, match="kpts"):
        go.gpaw_oracle(kpts="4x4")
    with pytest.raises(ValueError, match="smearing"):
        go.gpaw_oracle(smearing="mv")
    assert go.parse_kpts("6x6x4") == (6, 6, 4) and go.parse_kpts(3) == (3, 3, 3)
    assert {13, 14} <= oracle.elements  # PAW setups of gpaw-data for PBE


def test_active_learning_loop_labels_with_gpaw(oracle, si, tmp_path):
    """The committee loop with GPAW as its oracle: every labelled frame carries exactly the energy,
    forces and stress a direct GPAW evaluation of that geometry gives (no unit or sign slip between
    the oracle and the training data), and a frame is never labelled twice."""
    from mlip_props.fitting import dataset_from_frames, preset
    from mlip_props.fitting.active import learn, structure_hash
    from mlip_props.fitting.explore import RattleExplorer

    seeds = [si.copy()]
    res = learn(seeds, oracle=oracle, explorers=[RattleExplorer(bulk("Si", "diamond", a=5.43), n=4,
                                                                amplitudes=(0.03, 0.06))],
                workdir=tmp_path / "al", include_isolated=False, lower_eV_A=0.0, upper_eV_A=50.0,
                max_rounds=1, max_per_round=2, committee=2, hidden=(4,), initial_epochs=5, retrain_epochs=2,
                descriptor=preset(["Si"], cutoff=3.5, n_radial=3, zetas=(1,), angular_etas=(0.01,)).to_dict())
    assert res.n_labelled == 3
    assert len({structure_hash(a) for a in res.frames}) == 3
    ds = dataset_from_frames(res.frames)
    direct = evaluate(oracle, res.frames, properties=("energy", "forces", "stress"))
    np.testing.assert_allclose(ds.energies, direct.energies_eV, rtol=0, atol=1e-10)
    for f_lab, f_dir in zip(ds.forces, direct.forces_eV_A):
        np.testing.assert_allclose(f_lab, f_dir, rtol=0, atol=1e-10)
    for a, s_dir in zip(res.frames, direct.stress_eV_A3):
        np.testing.assert_allclose(a.get_stress(voigt=True), s_dir, rtol=0, atol=1e-10)
