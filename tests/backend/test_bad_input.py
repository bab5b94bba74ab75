import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from mlip_props import evaluate, load_potential
from mlip_props.potentials import ZBL, LennardJones, Morse, SumPotential


def test_overlapping_atoms_with_zbl_are_finite_and_strongly_repulsive():
    pot = SumPotential(Morse(D=0.3429, a=1.3588, r0=2.866), ZBL())
    dimer = Atoms("Cu2", positions=[[0, 0, 0], [0.1, 0, 0]])
    res = evaluate(pot, [dimer], ("energy", "forces", "hessian"))
    assert np.isfinite(res.energies_eV).all() and np.isfinite(res.forces_eV_A[0]).all()
    assert np.isfinite(res.hessians_eV_A2[0]).all()
    assert res.energies_eV[0] > 1000.0  # ~1.4 keV for Cu-Cu at 0.1 A
    assert res.forces_eV_A[0][0, 0] < -1e4  # pushed apart


def test_energy_rises_monotonically_towards_short_range():
    pot = SumPotential(Morse(D=0.3429, a=1.3588, r0=2.866), ZBL())
    r = np.linspace(0.05, 2.8, 200)
    e = evaluate(pot, [Atoms("Cu2", positions=[[0, 0, 0], [x, 0, 0]]) for x in r], ("energy",)).energies_eV
    assert np.all(np.diff(e) < 0)


@pytest.mark.parametrize(
    "bad,message",
    [
        (Atoms("Cu2", positions=[[0, 0, 0], [np.nan, 0, 0]]), "non-finite"),
        (Atoms("Cu", cell=np.zeros((3, 3)), pbc=True), "zero-volume"),
        (Atoms("Cu2", positions=[[0, 0, 0], [1, 1, 1]], cell=[[1, 0, 0], [2, 0, 0], [0, 0, 1]], pbc=True), "singular"),
        (Atoms(), "no atoms"),
        (Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 0]]), "coincide"),
    ],
    ids=["nan", "zero_volume", "singular", "empty_structure", "coincident"],
)
def test_bad_structure_names_index_and_problem(bad, message):
    good = bulk("Cu", "fcc", a=3.6)
    with pytest.raises(ValueError, match=rf"structure 1: .*{message}"):
        evaluate(LennardJones(0.4, 2.3), [good, bad, good], ("energy",))


def test_empty_structure_list():
    with pytest.raises(ValueError, match="no structures"):
        evaluate(LennardJones(0.4, 2.3), [], ("energy",))


def test_unknown_element_for_restricted_potential_and_oracle():
    pot = Morse(D=0.3429, a=1.3588, r0=2.866, elements={29})
    with pytest.raises(ValueError, match=r"structure 1: element\(s\) U not supported"):
        evaluate(pot, [bulk("Cu"), Atoms("U2", positions=[[0, 0, 0], [2.5, 0, 0]])], ("energy",))
    with pytest.raises(ValueError, match=r"structure 0: element\(s\) Fe not supported by oracle emt"):
        evaluate(load_potential("emt"), [bulk("Fe")], ("energy",))


def test_unknown_property_and_potential_name():
    with pytest.raises(ValueError, match="unknown properties"):
        evaluate(LennardJones(), [molecule("H2")], ("dipole",))
    with pytest.raises(ValueError, match="unknown potential 'nope'.*emt"):
        load_potential("nope")
    with pytest.raises(ValueError, match="bad potential parameter"):
        load_potential("lj:epsilon")
