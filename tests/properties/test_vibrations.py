import json

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import molecule
from ase.io import read
from scipy.spatial.transform import Rotation

from mlip_props import OraclePotential
from mlip_props.backend.oracle import OracleError
from mlip_props.backend.potential import Potential
from mlip_props.potentials import Morse
from mlip_props.properties.vibrations import vibrations

HBAR = units._hbar * units.J * units.second


def cm1(k, m):
    """Harmonic frequency (cm^-1) of force constant k (eV/A^2) and mass m (amu)."""
    return HBAR * np.sqrt(k / m) / units.invcm


class Springs(Potential):
    """Harmonic springs 1/2 k (r - r0)^2 between unlike atoms only (a ball-and-spring model)."""

    def __init__(self, k=40.0, r0=1.16):
        super().__init__(cutoff=2.0)
        self.k, self.r0 = k, r0

    def forward(self, graph):
        i, j = graph.edge_index
        r = graph.edge_lengths
        e = 0.5 * self.k * (r - self.r0) ** 2 * (graph.numbers[i] != graph.numbers[j]).to(r.dtype)
        return torch.zeros(graph.n_atoms_total, dtype=r.dtype, device=r.device).index_add(0, i, 0.5 * e)


def test_springs_match_analytic_normal_modes():
    k, r0 = 40.0, 1.16
    co2 = Atoms("OCO", positions=[[0, 0, -r0], [0, 0, 0], [0, 0, r0]])
    co = Atoms("CO", positions=[[0, 0, 0], [0, 0, r0]])
    r_co2, r_co = vibrations(Springs(k, r0), [co2, co])
    mO, mC = co2.get_masses()[0], co2.get_masses()[1]
    # CO2 with C-O springs only: bends have zero frequency, symmetric stretch sqrt(k/mO),
    # antisymmetric stretch sqrt(k (1/mO + 2/mC)) (Wilson, Decius, Cross 1955)
    assert r_co2.linear and len(r_co2.frequencies_cm1) == 4
    f = np.array(r_co2.frequencies_cm1)
    assert np.allclose(f[:2], 0.0, atol=0.5)
    assert f[2] == pytest.approx(cm1(k, mO), rel=1e-6)
    assert f[3] == pytest.approx(cm1(k * (1 / mO + 2 / mC), 1.0), rel=1e-6)
    # symmetric stretch: carbon at rest, oxygens opposite
    sym = np.array(r_co2.normal_modes[2])
    assert abs(sym[1]).max() < 1e-6 and sym[0, 2] == pytest.approx(-sym[2, 2], abs=1e-6)
    # diatomic: sqrt(k / mu)
    mu = mO * mC / (mO + mC)
    assert r_co.linear and len(r_co.frequencies_cm1) == 1
    assert r_co.frequencies_cm1[0] == pytest.approx(cm1(k, mu), rel=1e-6)
    assert r_co.zero_point_energy_eV == pytest.approx(0.5 * r_co.frequencies_cm1[0] * units.invcm, rel=1e-9)


def test_h2o_rigid_body_modes_vanish_and_rotation_invariance():
    pot = Morse(D=2.0, a=1.5, r0=1.0)
    h2o = molecule("H2O")
    rotated = h2o.copy()
    rotated.positions = Rotation.from_euler("xyz", [37, -71, 113], degrees=True).apply(h2o.positions) + [1, -2, 3]
    a, b = vibrations(pot, [h2o, rotated])
    assert a.relax_converged and not a.linear and len(a.frequencies_cm1) == 3
    assert np.abs(a.rigid_body_frequencies_cm1).max() < 1.0 and len(a.rigid_body_frequencies_cm1) == 6
    assert np.allclose(a.frequencies_cm1, b.frequencies_cm1, atol=1e-3)
    assert a.zero_point_energy_eV == pytest.approx(b.zero_point_energy_eV, rel=1e-6)
    assert a.entropy_J_molK == pytest.approx(b.entropy_J_molK, rel=1e-6)


def test_thermochemistry_and_trajectory(tmp_path):
    res = vibrations(Morse(D=2.0, a=1.5, r0=1.0), molecule("H2O"))
    assert res.symmetry_number == 2
    # H - E = ZPE + thermal (4 kT: 3/2 kT translation + 3/2 kT rotation + kT pV) + vibrational
    assert res.enthalpy_eV - res.energy_eV > res.zero_point_energy_eV + 3.99 * units.kB * 298.15
    # translational (144.8 for M = 18 at 1 atm) + rotational + vibrational; real water: 188.8 J/mol/K
    assert 170 < res.entropy_J_molK < 210
    json.dumps(res.to_dict())
    path = res.write_modes(str(tmp_path / "modes.traj"), n_frames=10)
    frames = read(path, ":")
    assert len(frames) == 30 and frames[3].info["mode"] == 0


def test_imaginary_modes_are_negative_and_flagged():
    # a pair potential makes linear CO2 a saddle point: the bends are imaginary
    res = vibrations(Morse(D=2.0, a=1.5, r0=1.0), molecule("CO2"))
    assert res.linear and res.imaginary_modes and res.n_imaginary_modes == 2
    assert res.frequencies_cm1[0] < 0 and res.frequencies_cm1[1] < 0


def test_bad_input():
    pot = Morse(D=2.0, a=1.5, r0=1.0)
    with pytest.raises(ValueError, match="structure 1: a single atom"):
        vibrations(pot, [molecule("H2O"), Atoms("Ar")])
    with pytest.raises(ValueError, match="structure 0.*not supported"):
        vibrations(Morse(D=2.0, a=1.5, r0=1.0, elements={1, 8}), [molecule("NH3")])

    from ase.calculators.calculator import Calculator

    class Broken(Calculator):
        implemented_properties = ["energy", "forces"]

        def calculate(self, *args, **kwargs):
            raise RuntimeError("SCF did not converge")

    with pytest.raises(OracleError, match="SCF did not converge"):
        vibrations(OraclePotential(Broken, name="broken"), molecule("H2O"))


class MorseCommittee(Potential):
    """Two Morse members with different wells: per-atom energies (N, 2)."""

    def __init__(self):
        super().__init__(cutoff=6.0)
        self.members = torch.nn.ModuleList([Morse(D=2.0, a=1.5, r0=1.0, cutoff=6.0),
                                            Morse(D=2.2, a=1.4, r0=1.05, cutoff=6.0)])
        self.n_members = 2

    def forward(self, graph):
        return torch.stack([m(graph) for m in self.members], dim=-1)


def test_committee_is_its_mean_potential_and_members_analyse_the_same_plan():
    from mlip_props.backend import evaluate
    from mlip_props.potentials.committee import CommitteeMean
    from mlip_props.properties.plan import analyse_members, evaluate_plans
    from mlip_props.properties.vibrations import plan_vibrations

    committee, mols = MorseCommittee(), [molecule("H2O"), molecule("NH3")]
    res = vibrations(committee, mols)
    mean = vibrations(CommitteeMean(committee), mols)
    for a, b in zip(res, mean):
        np.testing.assert_allclose(a.frequencies_cm1, b.frequencies_cm1, rtol=1e-10, atol=1e-8)
        assert a.relax_converged and a.zero_point_energy_eV == pytest.approx(b.zero_point_energy_eV, rel=1e-10)
    # one committee evaluation of the plan, analysed member by member = each member evaluated alone
    # at the committee-mean geometry
    plan = plan_vibrations(committee, mols)
    members = analyse_members(plan, evaluate_plans(committee, [plan])[0])
    assert len(members) == 2
    for m, member in enumerate(committee.members):
        alone = plan.analyse(evaluate(member, plan.structures, ("energy", "forces", "hessian")))
        for a, b in zip(members[m], alone):
            np.testing.assert_allclose(a.frequencies_cm1, b.frequencies_cm1, rtol=1e-10, atol=1e-8)
            assert a.max_force_eV_A == pytest.approx(b.max_force_eV_A, rel=1e-10)
    # the members disagree, and the mean geometry is not a member's stationary point
    assert abs(members[0][0].frequencies_cm1[-1] - members[1][0].frequencies_cm1[-1]) > 10
    assert not members[0][0].relax_converged


def test_relaxation_settings_molecules_and_dtype():
    pot = Morse(D=2.0, a=1.5, r0=1.0)
    h2o = molecule("H2O")
    h2o.positions[0, 0] += 0.05
    tight = vibrations(pot, h2o)
    assert tight.relax_converged and tight.max_force_eV_A < 1e-4
    loose = vibrations(pot, h2o, relaxation={"fmax_eV_A": 0.05}, max_newton_steps=0)
    assert loose.relax_converged and 1e-4 < loose.max_force_eV_A < 0.05  # converged to its own threshold
    as_is = vibrations(pot, h2o, relaxation=False)
    assert np.allclose(as_is.atoms.positions, h2o.positions) and as_is.max_force_eV_A > 0.1
    with pytest.raises(ValueError, match="fmaxx"):
        vibrations(pot, h2o, relaxation={"fmaxx": 1e-3})

    from pymatgen.core import Molecule

    from_pmg = vibrations(pot, Molecule(h2o.get_chemical_symbols(), h2o.positions))
    np.testing.assert_allclose(from_pmg.frequencies_cm1, tight.frequencies_cm1, rtol=1e-8)
    single = vibrations(pot, h2o, dtype=torch.float32)
    np.testing.assert_allclose(single.frequencies_cm1, tight.frequencies_cm1, rtol=1e-3)
