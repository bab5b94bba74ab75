"""pyscf oracle (qm extra). Budget: under 3 minutes on 2 cores; every test uses its own cache."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import molecule

pytest.importorskip("pyscf")

from mlip_props import evaluate, load_potential  # noqa: E402
from mlip_props.backend.oracle import OracleError  # noqa: E402
from mlip_props.data import reference_data_dir  # noqa: E402
from mlip_props.potentials import pyscf_oracle as po  # noqa: E402

pytestmark = pytest.mark.qm
REF = reference_data_dir()


def test_package_imports_without_loading_pyscf():
    code = "import sys, mlip_props, mlip_props.potentials; print('pyscf' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_spec_parsing_and_auto_spin():
    pot = load_potential("pyscf:ccsd(t)/cc-pvtz")
    assert pot.name == "pyscf:ccsd(t)/cc-pvtz"
    assert load_potential("pyscf:method=b3lyp,basis=def2-svp").name == "pyscf:b3lyp/def2-svp"
    assert po.auto_spin(molecule("O2")) == 2  # triplet oxygen
    assert po.auto_spin(Atoms("N")) == 3 and po.auto_spin(Atoms("O")) == 2 and po.auto_spin(Atoms("H")) == 1
    assert po.auto_spin(molecule("H2O")) == 0 and po.auto_spin(molecule("OH")) == 1
    assert po.auto_spin(molecule("H2O"), charge=1) == 1


def test_triplet_o2_below_singlet_and_cache_rerun_is_free(tmp_path):
    o2 = molecule("O2")
    trip = po.pyscf_oracle("hf/sto-3g", cache_dir=tmp_path)
    sing = po.pyscf_oracle("hf/sto-3g", cache_dir=tmp_path, spin=0)
    e_t = evaluate(trip, [o2], ("energy",)).energies_eV[0]
    e_s = evaluate(sing, [o2], ("energy",)).energies_eV[0]
    assert e_t < e_s - 0.5  # Hund: the triplet ground state (restricted singlet is ~1-3 eV higher)
    n = po.N_COMPUTED
    assert evaluate(trip, [o2], ("energy",)).energies_eV[0] == e_t
    assert po.N_COMPUTED == n  # served from the on-disk cache
    assert len(list(tmp_path.rglob("*.json"))) == 2


def test_analytic_forces_match_energy_differences(tmp_path):
    oracle = po.pyscf_oracle("hf/sto-3g", cache_dir=tmp_path)
    m = molecule("H2O")
    m.positions[1] += [0.05, -0.03, 0.02]
    f = evaluate(oracle, [m], ("energy", "forces")).forces_eV_A[0]
    d = 1e-3
    for atom, axis in ((0, 2), (1, 0)):
        plus, minus = m.copy(), m.copy()
        plus.positions[atom, axis] += d
        minus.positions[atom, axis] -= d
        e = evaluate(oracle, [plus, minus], ("energy",)).energies_eV
        assert f[atom, axis] == pytest.approx(-(e[0] - e[1]) / (2 * d), abs=2e-4)
    assert np.abs(f.sum(axis=0)).max() < 1e-5  # no net force


def test_failures_are_clear(tmp_path):
    with pytest.raises(OracleError, match="unknown pyscf method 'nonsense'"):
        evaluate(po.pyscf_oracle("nonsense/sto-3g", cache_dir=tmp_path), [molecule("H2")], ("energy",))
    with pytest.raises(OracleError, match="basis"):
        evaluate(po.pyscf_oracle("hf/no-such-basis", cache_dir=tmp_path), [molecule("H2")], ("energy",))
    with pytest.raises(OracleError, match="structure 0: .*SCF .*not converged"):
        evaluate(po.pyscf_oracle("hf/sto-3g", cache_dir=tmp_path, max_cycle=1, conv_tol=1e-14),
                 [molecule("H2O")], ("energy",))


def test_h2_ccsd_t_triple_zeta_vs_experiment(tmp_path):
    from mlip_props.properties.diatomic import diatomic

    exp = pd.read_csv(REF / "diatomics.csv", comment="#").set_index("molecule").loc["H2"]
    oracle = po.pyscf_oracle("ccsd(t)/cc-pvtz", cache_dir=tmp_path)
    res = diatomic(oracle, "H2", n_points=16)
    assert res.bond_length_converged
    assert abs(res.bond_length_A - exp.r_e_A) < 0.005
    assert res.omega_e_cm1 == pytest.approx(exp.omega_e_cm1, rel=0.02)
    assert res.omega_e_x_e_cm1 == pytest.approx(exp.omega_e_x_e_cm1, rel=0.1)
    assert res.D0_eV == pytest.approx(exp.D0_eV, abs=0.1)  # cc-pVTZ misses ~0.05 eV of D_e
    assert res.repulsive_wall_ok and res.n_spurious_minima == 0
    n = po.N_COMPUTED
    again = diatomic(oracle, "H2", n_points=16)
    assert po.N_COMPUTED == n and again.bond_length_A == res.bond_length_A


def test_h2o_b3lyp_harmonic_vs_experimental_fundamentals(tmp_path):
    from mlip_props.properties.vibrations import vibrations

    exp = pd.read_csv(REF / "molecular_vibrations.csv", comment="#")
    nu = np.sort(exp[exp.molecule == "H2O"].frequency_cm1.to_numpy(float))
    res = vibrations(po.pyscf_oracle("b3lyp/def2-svp", cache_dir=tmp_path), molecule("H2O"), relaxation={"fmax_eV_A": 0.01})
    assert res.relax_converged and not res.imaginary_modes
    f = np.array(res.frequencies_cm1)
    assert np.all(np.abs(f / nu - 1) < 0.06), f
    assert np.all(f > nu)  # harmonic frequencies lie above the anharmonic fundamentals
