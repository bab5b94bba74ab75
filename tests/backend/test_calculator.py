import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

from mlip_props import MLIPCalculator, load_potential
from mlip_props.potentials import Morse


def _cu_morse():
    return Morse(D=0.3429, a=1.3588, r0=2.866)  # Girifalco & Weizer, Phys. Rev. 114, 687 (1959)


def test_calculator_matches_evaluate_and_ase_interface():
    a = bulk("Cu", "fcc", a=3.6, cubic=True)
    a.rattle(0.03, seed=2)
    a.calc = MLIPCalculator(load_potential("emt"))
    e, f, s = a.get_potential_energy(), a.get_forces(), a.get_stress()
    b = a.copy()
    b.calc = EMT()
    assert e == pytest.approx(b.get_potential_energy(), abs=1e-12)
    assert np.allclose(f, b.get_forces()) and np.allclose(s, b.get_stress())


def test_langevin_md_100_steps_and_nve_drift():
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    a.calc = MLIPCalculator(_cu_morse())
    MaxwellBoltzmannDistribution(a, temperature_K=300, rng=np.random.default_rng(0))
    e_start = a.get_total_energy()
    dyn = Langevin(a, 2 * units.fs, temperature_K=300, friction=0.02, fixcm=False,
                   rng=np.random.default_rng(1))
    dyn.run(100)
    assert np.isfinite(a.get_total_energy())
    langevin_change = a.get_total_energy() - e_start
    # NVE after the Langevin run: total energy conserved (drift per atom over 100 fs)
    e0 = a.get_total_energy()
    VelocityVerlet(a, 1 * units.fs).run(100)
    drift = abs(a.get_total_energy() - e0) / len(a)
    print(f"Langevin total-energy change {langevin_change:.4f} eV; NVE drift {drift:.2e} eV/atom per 100 fs")
    assert drift < 1e-4
