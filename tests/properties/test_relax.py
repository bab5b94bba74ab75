import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS

from mlip_props import load_potential
from mlip_props.properties.relax import relax


def test_emt_cu_cell_relaxation_matches_ase():
    emt = load_potential("emt")
    res = relax(emt, bulk("Cu", "fcc", a=3.7), relax_cell=True, smax_GPa=0.001)
    ref = bulk("Cu", "fcc", a=3.7)
    ref.calc = EMT()
    BFGS(FrechetCellFilter(ref), logfile=None).run(fmax=1e-5)
    assert res.converged
    assert res.max_stress_GPa < 0.001
    assert res.atoms.get_volume() == pytest.approx(ref.get_volume(), rel=1e-4)


def test_batch_equals_alone_and_positions_relax():
    lj = load_potential("lj:epsilon=0.0104,sigma=3.4")
    rattled = bulk("Ar", "fcc", a=5.3).repeat(2)
    rattled.rattle(0.05, seed=3)
    others = [bulk("Ar", "fcc", a=5.1 + 0.02 * k) for k in range(5)]
    alone = relax(lj, rattled, relax_cell=True)
    together = relax(lj, others[:2] + [rattled] + others[2:], relax_cell=True)
    assert alone.converged and all(r.converged for r in together)
    assert together[2].energy_eV == pytest.approx(alone.energy_eV, rel=1e-10)
    assert np.allclose(together[2].atoms.positions, alone.atoms.positions, atol=1e-8)
    assert alone.max_force_eV_A < 0.005


def test_target_pressure_gives_that_stress():
    lj = load_potential("lj:epsilon=0.0104,sigma=3.4")
    res = relax(lj, bulk("Ar", "fcc", a=5.2), relax_cell=True, pressure_GPa=1.0, smax_GPa=1e-3)
    from mlip_props import evaluate

    s = evaluate(lj, [res.atoms], ("energy", "stress")).stress_GPa[0]
    assert res.converged
    assert np.allclose(s[:3], -1.0, atol=2e-3)  # ASE sign: compressive stress = -P
    assert res.enthalpy_eV > res.energy_eV


def test_unconverged_is_reported_not_hidden():
    m = molecule("H2O")
    m.positions[1] += [0.3, 0.0, 0.0]
    res = relax(load_potential("morse:D=2,a=1.5,r0=1.0"), m, max_steps=3)
    assert not res.converged
    assert res.n_steps == 3
    assert res.max_force_eV_A > 0.005


def test_keep_symmetry_preserves_space_group():
    import spglib

    emt = load_potential("emt")
    a = bulk("Cu", "hcp", a=2.6, c=4.1)
    res = relax(emt, a, relax_cell=True, keep_symmetry=True)
    cell = (res.atoms.cell[:], res.atoms.get_scaled_positions(), res.atoms.numbers)
    assert spglib.get_spacegroup(cell, symprec=1e-5) == spglib.get_spacegroup(
        (a.cell[:], a.get_scaled_positions(), a.numbers), symprec=1e-5)
    assert res.converged


def test_neighbour_graph_reuse_with_skin_changes_nothing():
    lj = load_potential("lj:epsilon=0.0104,sigma=3.4")
    frames = []
    for k in range(6):
        a = bulk("Ar", "fcc", a=5.25 + 0.03 * k).repeat((1 + k % 2, 1, 1))
        a.rattle(0.05, seed=k)
        frames.append(a)
    fresh = relax(lj, frames, relax_cell=True, skin_A=0.0)  # graph rebuilt at every step
    reused = relax(lj, frames, relax_cell=True, skin_A=0.5)
    for a, b in zip(fresh, reused):
        assert a.n_steps == b.n_steps
        assert b.energy_eV == pytest.approx(a.energy_eV, rel=1e-12)
        assert np.allclose(a.atoms.cell[:], b.atoms.cell[:], atol=1e-10)
