"""The physical battery (mlip_props.testing) on every built-in potential and three kinds of structure."""
import numpy as np
import pytest
from ase.build import bulk

from mlip_props import testing
from mlip_props.potentials import ZBL, LennardJones, Morse, SumPotential

from .structures import cluster, small_cell, triclinic_cell

# (name, factory, nearest-neighbour distance in A for test structures)
POTENTIALS = [
    ("lj", lambda: LennardJones(epsilon=0.4, sigma=2.3), 2.55),
    ("morse", lambda: Morse(D=0.3429, a=1.3588, r0=2.866), 2.7),
    ("zbl", lambda: ZBL(cutoff=2.0, switch_width=1.0), 1.3),
    ("morse+zbl", lambda: SumPotential(Morse(D=0.3429, a=1.3588, r0=2.866), ZBL()), 1.6),
]
STRUCTURES = [("cluster", cluster), ("small_cell", small_cell), ("triclinic", triclinic_cell)]
IDS = [p[0] for p in POTENTIALS]


@pytest.mark.parametrize("name,factory,scale", POTENTIALS, ids=IDS)
@pytest.mark.parametrize("sname,builder", STRUCTURES, ids=[s[0] for s in STRUCTURES])
def test_forces_are_minus_gradient(name, factory, scale, sname, builder):
    assert testing.force_error(factory(), builder(scale)) < 1e-6


@pytest.mark.parametrize("name,factory,scale", POTENTIALS, ids=IDS)
@pytest.mark.parametrize("builder", [small_cell, triclinic_cell], ids=["small_cell", "triclinic"])
def test_stress_is_strain_derivative(name, factory, scale, builder):
    assert testing.stress_error(factory(), builder(scale)) < 1e-6


@pytest.mark.parametrize("name,factory,scale", POTENTIALS, ids=IDS)
@pytest.mark.parametrize("builder", [cluster, triclinic_cell], ids=["cluster", "triclinic"])
def test_hessian_symmetric_and_fd(name, factory, scale, builder):
    asym, fd = testing.hessian_errors(factory(), builder(scale))
    assert asym < 1e-10
    assert fd < 1e-6


@pytest.mark.parametrize("name,factory,scale", POTENTIALS, ids=IDS)
def test_acoustic_sum_rule_of_crystal(name, factory, scale):
    assert testing.acoustic_sum_rule_violation(factory(), small_cell(scale)) < 1e-8


@pytest.mark.parametrize("name,factory,scale", POTENTIALS, ids=IDS)
@pytest.mark.parametrize("builder", [cluster, triclinic_cell], ids=["cluster", "triclinic"])
def test_invariances(name, factory, scale, builder):
    err = testing.invariance_errors(factory(), builder(scale))
    e_scale = 1e-9 * max(1.0, abs(float(testing.evaluate(factory(), [builder(scale)], ("energy",)).energies_eV[0])))
    assert err["translation_eV"] < e_scale
    assert err["rotation_eV"] < e_scale
    assert err["permutation_eV"] < e_scale
    assert err["rotated_forces_eV_A"] < 1e-8
    assert err["permuted_forces_eV_A"] < 1e-8


@pytest.mark.parametrize("name,factory,scale", POTENTIALS, ids=IDS)
def test_extensive(name, factory, scale):
    assert testing.extensivity_error(factory(), triclinic_cell(scale)) < 1e-10


def test_alone_equals_inside_batch_of_100_mixed():
    pot = LennardJones(epsilon=0.4, sigma=2.3)
    rng = np.random.default_rng(7)
    others = []
    for k in range(99):
        kind = k % 4
        if kind == 0:
            a = bulk("Cu", "fcc", a=3.6 + 0.01 * (k % 5)).repeat((1 + k % 2, 1, 1))
        elif kind == 1:
            a = cluster(2.55, "Ag", seed=k)
        elif kind == 2:
            a = triclinic_cell(2.55, "Au", seed=k)
        else:
            a = bulk("Ni", "bcc", a=2.9, cubic=True).repeat((1, 1, 1 + k % 3))
        a.rattle(0.02, seed=int(rng.integers(1000)))
        others.append(a)
    target = small_cell(2.55)
    assert testing.batch_consistency_error(pot, target, others) < 1e-10
