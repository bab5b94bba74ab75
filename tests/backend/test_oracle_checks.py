"""Oracles pass the same structure checks as torch potentials, and never hand back a non-finite number."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes

from mlip_props import evaluate
from mlip_props.backend.oracle import OracleError, OraclePotential
from mlip_props.potentials import load_potential


class _NaNForces(Calculator):
    """A calculator that answers a finite energy and NaN forces (what EMT does for coincident atoms)."""

    implemented_properties = ["energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        self.results = {"energy": -1.0, "forces": np.full((n, 3), np.nan), "stress": np.zeros(6)}


def test_oracle_refuses_coincident_atoms_like_torch_potentials():
    a = bulk("Cu", cubic=True)
    a.positions[1] = a.positions[0]
    for spec in ("emt", "lj"):
        with pytest.raises(ValueError, match="structure 0: atoms 0 and 1 coincide"):
            evaluate(load_potential(spec), [a], ("energy", "forces"))


@pytest.mark.parametrize("spec", ["emt", "lj"])
def test_cell_thinner_than_coincidence_is_refused(spec):
    # one atom in a cell 1e-5 A thick along x coincides with its own image (the neighbour-list
    # library used to die of a floating-point exception on such a cell)
    a = Atoms("Cu", cell=np.diag([1e-5, 3.0, 3.0]), pbc=True)
    with pytest.raises(ValueError, match="structure 0: the cell is 1.00e-05 A thick along periodic direction 0"):
        evaluate(load_potential(spec), [bulk("Cu"), a][1:], ("energy",))


def test_oracle_refuses_nan_positions_and_names_the_structure():
    good, bad = bulk("Cu"), bulk("Cu")
    bad.positions[0, 0] = np.nan
    with pytest.raises(ValueError, match="structure 1: non-finite"):
        evaluate(load_potential("emt"), [good, bad], ("energy",))


def test_nonfinite_oracle_answer_is_an_error_naming_structure_and_oracle():
    oracle = OraclePotential(_NaNForces, name="nanforces")
    structures = [bulk("Cu"), bulk("Cu", a=3.7)]
    with pytest.raises(OracleError, match=r"structure 0: oracle nanforces returned a non-finite forces"):
        evaluate(oracle, structures, ("energy", "forces"))
    # energies alone are finite and pass
    assert np.isfinite(evaluate(oracle, structures, ("energy",)).energies_eV).all()


def test_oracle_molecule_stress_stays_nan_by_convention():
    m = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.4]])
    res = evaluate(load_potential("emt"), [m], ("energy", "forces", "stress"))
    assert np.isfinite(res.energies_eV).all() and np.isnan(res.stress_eV_A3).all()
    # Newton's third law for the isolated dimer
    np.testing.assert_allclose(res.forces_eV_A[0].sum(axis=0), 0.0, atol=1e-10)
