import json

import numpy as np
import pytest
import torch
from ase import units
from ase.calculators.calculator import Calculator, all_changes

from mlip_props import OraclePotential, load_potential
from mlip_props.backend.oracle import OracleError
from mlip_props.backend.potential import Potential
from mlip_props.potentials import LennardJones, Morse, PairPotential
from mlip_props.properties.diatomic import diatomic, parse_pair, plot_diatomic_curves

HBAR = units._hbar * units.J * units.second  # eV * ASE time
M_H, M_CL, M_N = 1.00782503223, 34.968852682, 14.00307400443


def morse_constants(D, a, mu):
    """Analytic Morse spectroscopic constants (Morse, Phys. Rev. 34, 57 (1929)), cm^-1."""
    w = HBAR * np.sqrt(2 * D * a * a / mu) / units.invcm
    wx = HBAR**2 * a * a / (2 * mu) / units.invcm
    return w, wx


@pytest.mark.parametrize("pair,D,a,r0,mu", [
    ("N2", 9.9, 2.7, 1.098, M_N / 2),
    (("H", "Cl"), 4.6, 1.87, 1.2746, M_H * M_CL / (M_H + M_CL)),
])
def test_morse_recovery(pair, D, a, r0, mu):
    res = diatomic(Morse(D=D, a=a, r0=r0), pair)
    w, wx = morse_constants(D, a, mu)
    assert res.reduced_mass_amu == pytest.approx(mu, rel=1e-10)
    assert res.bond_length_converged
    assert abs(res.bond_length_A - r0) < 1e-4
    assert abs(res.dissociation_energy_eV - D) < 1e-4
    assert res.omega_e_cm1 == pytest.approx(w, rel=5e-4)
    assert res.omega_e_x_e_cm1 == pytest.approx(wx, rel=1e-2)
    # Morse levels are exactly w(n+1/2) - wx(n+1/2)^2: ZPE = w/2 - wx/4
    zpe = (w / 2 - wx / 4) * units.invcm
    assert res.D0_eV == pytest.approx(D - zpe, abs=1e-4)
    assert res.repulsive_wall_ok and res.smooth and res.n_spurious_minima == 0 and res.long_range_flat


def test_lennard_jones_minimum():
    eps, sigma = 0.0104, 3.4
    res = diatomic(LennardJones(epsilon=eps, sigma=sigma), "Ar2")
    assert abs(res.bond_length_A - 2 ** (1 / 6) * sigma) < 1e-4
    assert res.dissociation_energy_eV == pytest.approx(eps, rel=1e-4)
    # harmonic: k = 72 eps / (2^(1/3) sigma^2)
    k = 72 * eps / (2 ** (1 / 3) * sigma**2)
    assert res.force_constant_eV_A2 == pytest.approx(k, rel=1e-4)


def test_isotope_substitution_scales_omega():
    pot = Morse(D=4.75, a=1.94, r0=0.741)
    h2, d2 = diatomic(pot, ["H2", "H2"], masses=[None, ("D", "D")])
    m_d = 2.01410177812
    assert d2.omega_e_cm1 / h2.omega_e_cm1 == pytest.approx(np.sqrt(M_H / m_d), rel=1e-6)
    assert d2.omega_e_x_e_cm1 / h2.omega_e_x_e_cm1 == pytest.approx(M_H / m_d, rel=1e-3)
    assert d2.bond_length_A == pytest.approx(h2.bond_length_A, abs=1e-6)


def test_batch_equals_single():
    pot = load_potential("morse:D=4,a=1.8,r0=1.2+zbl")
    many = diatomic(pot, ["N2", "CO", ("H", "Cl")])
    alone = diatomic(pot, "CO")
    assert many[1].name == "CO"
    assert many[1].bond_length_A == pytest.approx(alone.bond_length_A, abs=1e-9)
    assert many[1].omega_e_cm1 == pytest.approx(alone.omega_e_cm1, rel=1e-9)


def test_wall_check_ok_for_morse_zbl_and_not_for_broken():
    good = diatomic(load_potential("morse:D=4,a=1.8,r0=1.2+zbl"), "N2")
    assert good.repulsive_wall_ok and good.n_spurious_minima == 0 and good.bound
    # a negative-epsilon LJ term makes the pair collapse at short range (potential specs refuse a
    # negative epsilon, so the broken potential is built from the classes)
    from mlip_props.potentials.base import SumPotential
    from mlip_props.potentials.pair import LennardJones

    broken_potential = SumPotential(load_potential("morse:D=4,a=1.8,r0=1.2"), LennardJones(epsilon=-0.5, sigma=0.8))
    broken = diatomic(broken_potential, "N2")
    assert not broken.repulsive_wall_ok


class _MorseWithBump(PairPotential):
    """Morse well plus a Gaussian barrier at 1.8 A: a second, spurious minimum appears behind it."""

    def __init__(self):
        super().__init__(cutoff=6.0, switch_width=1.0)

    def pair_energy(self, r, zi, zj):
        x = torch.exp(-2.5 * (r - 1.2))
        return 4.0 * (x * x - 2 * x) + 5.0 * torch.exp(-(((r - 1.8) / 0.15) ** 2))


def test_spurious_minimum_counted():
    res = diatomic(_MorseWithBump(), "N2")
    assert res.n_spurious_minima == 1
    assert res.bond_length_A == pytest.approx(1.2, abs=0.05)
    assert diatomic(Morse(D=4, a=2.5, r0=1.2), "N2").n_spurious_minima == 0


def test_kink_detected_for_hard_cutoff():
    smooth = diatomic(LennardJones(epsilon=0.0104, sigma=3.4), "Ar2")
    hard = diatomic(LennardJones(epsilon=0.0104, sigma=3.4, switch_width=0.0), "Ar2")
    assert smooth.smooth and not hard.smooth
    assert hard.smoothness_ratio > 5 * smooth.smoothness_ratio


def test_bad_input():
    pot = Morse(D=4, a=1.8, r0=1.2)
    with pytest.raises(ValueError, match="unknown element 'Xx'"):
        diatomic(pot, "Xx2")
    with pytest.raises(ValueError, match="3 atoms"):
        diatomic(pot, "N3")
    with pytest.raises(ValueError, match="pair 1"):
        diatomic(pot, ["N2", 42])
    with pytest.raises(ValueError, match="not supported"):
        diatomic(Morse(D=4, a=1.8, r0=1.2, elements={1}), "HCl")
    assert parse_pair("H-Cl") == ("H", "Cl") and parse_pair("Li2") == ("Li", "Li")


class _FlakyMorse(Calculator):
    """Morse dimer energy that 'fails to converge' beyond r_fail (as CCSD(T) does for stretched N2)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, r_fail=2.5, atom_fails=False):
        super().__init__()
        self.r_fail, self.atom_fails = r_fail, atom_fails

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if len(self.atoms) == 1:
            if self.atom_fails:
                raise RuntimeError("SCF not converged")
            self.results = {"energy": -1.0, "forces": np.zeros((1, 3))}
            return
        r = self.atoms.get_distance(0, 1)
        if r > self.r_fail:
            raise RuntimeError(f"CC not converged at r={r:.3f}")
        x = np.exp(-2.7 * (r - 1.1))
        self.results = {"energy": -2.0 + 9.9 * (x * x - 2 * x), "forces": np.zeros((2, 3))}


def test_oracle_scan_stops_where_method_fails_and_reports_it():
    oracle = OraclePotential(lambda: _FlakyMorse(r_fail=2.5), name="flaky")
    res = diatomic(oracle, "N2")
    assert res.failed_distances_A and min(res.failed_distances_A) > 2.5
    assert res.max_converged_distance_A <= 2.5
    assert any("failed" in n for n in res.notes)
    assert res.bond_length_A == pytest.approx(1.1, abs=1e-4)
    assert res.dissociation_energy_eV == pytest.approx(9.9, abs=1e-3)
    with pytest.raises(OracleError, match="SCF not converged"):
        diatomic(OraclePotential(lambda: _FlakyMorse(atom_fails=True), name="flaky"), "N2")


def test_to_dict_and_plot(tmp_path):
    res = diatomic(Morse(D=4, a=1.8, r0=1.2), ["N2", "O2"])
    json.dumps(res[0].to_dict())
    path = tmp_path / "curves.png"
    plot_diatomic_curves(res, path=str(path))
    assert path.stat().st_size > 1000


class MorseCommittee(Potential):
    """A committee of Morse members with different (D, a, r0): per-atom energies (N, M)."""

    def __init__(self, params):
        super().__init__(8.0, None)
        self.members = torch.nn.ModuleList([Morse(D=D, a=a, r0=r0, cutoff=8.0, switch_width=1.0)
                                            for D, a, r0 in params])
        self.n_members = len(params)

    def forward(self, graph):
        return torch.stack([m(graph) for m in self.members], dim=-1)


def test_committee_std_of_bond_length_and_omega():
    """Each member's own minimum (analytic Morse values) and the committee std over members."""
    params = [(9.9, 2.7, 1.090), (9.7, 2.65, 1.098), (10.1, 2.75, 1.105)]
    mu = M_N / 2
    res = diatomic(MorseCommittee(params), "N2")
    assert res.n_members == 3
    w = np.array([morse_constants(D, a, mu)[0] for D, a, _ in params])
    np.testing.assert_allclose(res.bond_length_A_members, [p[2] for p in params], atol=1e-4)
    np.testing.assert_allclose(res.omega_e_cm1_members, w, rtol=5e-4)
    np.testing.assert_allclose(res.dissociation_energy_eV_members, [p[0] for p in params], atol=1e-4)
    assert res.bond_length_A_std == pytest.approx(np.std(res.bond_length_A_members), rel=1e-12)
    assert res.bond_length_A_std == pytest.approx(np.std([p[2] for p in params]), abs=1e-4)
    assert res.omega_e_cm1_std == pytest.approx(np.std(w), rel=2e-2)
    assert res.dissociation_energy_eV_std > 0 and res.D0_eV_std > 0 and res.omega_e_x_e_cm1_std > 0
    # the reported values remain those of the mean curve, whose minimum lies among the members'
    assert min(res.bond_length_A_members) < res.bond_length_A < max(res.bond_length_A_members)
    json.dumps(res.to_dict())


def test_single_potential_has_no_std_and_identical_members_zero_std():
    one = diatomic(Morse(D=9.9, a=2.7, r0=1.098, cutoff=8.0, switch_width=1.0), "N2")
    assert one.n_members is None and one.bond_length_A_std is None and one.omega_e_cm1_std is None
    same = diatomic(MorseCommittee([(9.9, 2.7, 1.098)] * 2), "N2")
    assert same.bond_length_A_std < 1e-12 and same.omega_e_cm1_std < 1e-8
    assert same.bond_length_A == pytest.approx(one.bond_length_A, abs=1e-9)
    assert same.omega_e_cm1 == pytest.approx(one.omega_e_cm1, rel=1e-9)


def test_committee_members_equal_plain_diatomic_of_each_member():
    """The committee's per-member values are each member's own diatomic (the member as a plain
    potential, same scan), and its central values those of the committee-mean potential."""
    from mlip_props.potentials.committee import CommitteeMean

    params = [(9.9, 2.7, 1.090), (9.7, 2.65, 1.098), (10.1, 2.75, 1.105)]
    committee = MorseCommittee(params)
    res = diatomic(committee, ["N2", "CO"])
    for i, pair in enumerate(["N2", "CO"]):
        plain = [diatomic(m, pair) for m in committee.members]
        for name in ("bond_length_A", "dissociation_energy_eV", "omega_e_cm1"):
            np.testing.assert_allclose(getattr(res[i], f"{name}_members"), [getattr(p, name) for p in plain],
                                       rtol=1e-10, atol=1e-10)
        assert res[i].omega_e_x_e_cm1_std == pytest.approx(np.std([p.omega_e_x_e_cm1 for p in plain]), rel=1e-8)
        assert res[i].D0_eV_std == pytest.approx(np.std([p.D0_eV for p in plain]), rel=1e-8)
        mean = diatomic(CommitteeMean(committee), pair)
        assert res[i].bond_length_A == pytest.approx(mean.bond_length_A, abs=1e-10)
        assert res[i].omega_e_cm1 == pytest.approx(mean.omega_e_cm1, rel=1e-10)


def test_plan_evaluated_again_gives_the_same_constants_and_wrong_answers_are_refused():
    from mlip_props.backend import evaluate
    from mlip_props.properties.diatomic import plan_diatomic
    from mlip_props.properties.plan import compute

    pot = load_potential("morse:D=4,a=1.8,r0=1.2+zbl")
    plan = plan_diatomic(pot, ["N2", "HCl"])
    once = diatomic(pot, ["N2", "HCl"])
    again = compute(pot, plan)
    for a, b in zip(once, again):
        assert a.bond_length_A == pytest.approx(b.bond_length_A, abs=1e-10)
        assert a.omega_e_x_e_cm1 == pytest.approx(b.omega_e_x_e_cm1, rel=1e-8)
        assert a.n_refinement_passes == b.n_refinement_passes
    # a different potential's curve leads to windows the plan never evaluated
    other = evaluate(Morse(D=4, a=1.8, r0=1.5), plan.structures, ("energy",))
    with pytest.raises(ValueError, match="pair 0 \\(N2\\).*did not evaluate"):
        plan.analyse(other)


def test_two_atom_structures_stand_for_their_pair():
    from ase.build import molecule
    from pymatgen.core import Molecule

    pot = Morse(D=4, a=1.8, r0=1.2)
    by_name = diatomic(pot, "CO")
    co = molecule("CO")
    by_atoms = diatomic(pot, co)
    by_molecule = diatomic(pot, [Molecule(co.get_chemical_symbols(), co.positions)])[0]
    assert by_atoms.bond_length_A == by_name.bond_length_A == by_molecule.bond_length_A
    with pytest.raises(ValueError, match="structure 0: 3 atoms"):
        diatomic(pot, molecule("H2O"))
