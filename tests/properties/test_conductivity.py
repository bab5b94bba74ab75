"""Lattice thermal conductivity: mlip-props' batched plan against phono3py driven structure by
structure through the same potential's ASE calculator (written here, independently of the
plan's bookkeeping), the cubic isotropy of kappa, the sum rules, isotope scattering, metals,
unstable structures and bad input."""
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

pytest.importorskip("phono3py")

import mlip_props  # noqa: E402
from mlip_props.potentials.base import PairPotential  # noqa: E402
from mlip_props.properties.conductivity import plan_conductivity, thermal_conductivity  # noqa: E402

#: fcc primitive vectors (a/2)(0,1,1), (1,0,1), (1,1,0) in the conventional cell's coordinates
FCC_PRIMITIVE_MATRIX = [[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]


class IonicPair(PairPotential):
    """A rocksalt-stable pair potential: a Morse bond (0.6 eV, 1.3 /A, 2.8 A) between unlike
    species and a Born-Mayer repulsion 30 exp(-r / 0.55 A) eV between like ones."""

    def __init__(self):
        super().__init__(cutoff=6.0, switch_width=1.5)

    def pair_energy(self, r, zi, zj):
        unlike = (zi != zj).to(r.dtype)
        x = torch.exp(-1.3 * (r - 2.8))
        return unlike * 0.6 * (x * x - 2.0 * x) + (1.0 - unlike) * 30.0 * torch.exp(-r / 0.55)


def phono3py_reference(potential, conventional: Atoms, supercell: int, mesh: int, isotope: bool = True):
    """kappa (1, 6) W/(m K) at 300 K by phono3py alone: its displacements of 0.03 A in the
    ``supercell`` x ``conventional`` cell, forces one supercell at a time through
    ``mlip_props.MLIPCalculator``, the traditional fc3/fc2 fit, its symmetrisation, RTA on a
    ``mesh``^3 grid of the fcc primitive cell (tetrahedron weights averaged over degenerate
    bands). Returns (kappa, number of displaced supercells)."""
    from phono3py import Phono3py
    from phonopy.structure.atoms import PhonopyAtoms

    unit = PhonopyAtoms(symbols=conventional.get_chemical_symbols(), cell=np.asarray(conventional.cell),
                        scaled_positions=conventional.get_scaled_positions(), masses=conventional.get_masses())
    ph3 = Phono3py(unit, supercell_matrix=[supercell] * 3, primitive_matrix=FCC_PRIMITIVE_MATRIX)
    ph3.generate_displacements(distance=0.03)
    calc = mlip_props.MLIPCalculator(potential)
    forces = []
    for sc in ph3.supercells_with_displacements:
        atoms = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        atoms.calc = calc
        forces.append(atoms.get_forces())
    ph3.forces = np.array(forces)
    ph3.produce_fc3()
    ph3.symmetrize_fc3()
    ph3.symmetrize_fc2()
    ph3.mesh_numbers = [mesh] * 3
    # averaged over degenerate bands, as mlip-props does: else kappa depends on the eigenvector
    # choice in degenerate subspaces, which float noise in the forces decides
    ph3.init_phph_interaction(average_degenerate_weights=True)
    ph3.run_thermal_conductivity(temperatures=[300.0], is_isotope=isotope)
    return np.array(ph3.thermal_conductivity.kappa[0][0]), len(ph3.supercells_with_displacements)


@pytest.fixture(scope="module")
def sw():
    return mlip_props.load_potential("sw")


@pytest.fixture(scope="module")
def sw_si():
    return bulk("Si", "diamond", a=5.431, cubic=True)  # Stillinger-Weber's lattice constant


@pytest.fixture(scope="module")
def sw_si_kappa(sw, sw_si):
    return thermal_conductivity(sw, sw_si, supercell=2, mesh=5, convergence_mesh=7, relaxation=False)


def test_sw_si_kappa_equals_phono3py_driven_through_ase(sw, sw_si, sw_si_kappa):
    reference, n_displaced = phono3py_reference(sw, sw_si, supercell=2, mesh=5)
    r = sw_si_kappa
    assert r.n_displaced_supercells == r.n_fc3_displaced_supercells == n_displaced
    assert np.asarray(r.kappa_W_mK)[0, :3] == pytest.approx(reference[:3], rel=1e-2)
    assert r.kappa_average_W_mK[0] == pytest.approx(reference[:3].mean(), rel=1e-2)
    assert 50 < r.kappa_average_W_mK[0] < 2000  # SW Si: hundreds of W/(m K) (experiment 150)


def test_cubic_kappa_is_isotropic(sw_si_kappa):
    k = np.asarray(sw_si_kappa.kappa_W_mK)[0]
    avg = sw_si_kappa.kappa_average_W_mK[0]
    assert np.ptp(k[:3]) < 1e-10 * avg
    assert np.abs(k[3:]).max() < 1e-10 * avg


def test_sum_rules_reported_and_enforced(sw_si_kappa):
    r = sw_si_kappa
    # pair displacements of 0.03 A: the raw fc3 breaks translational invariance measurably
    assert r.fc3_sum_rule_violation_raw_eV_A3 > 1e-4
    assert r.fc3_sum_rule_violation_enforced_eV_A3 < 1e-2 * r.fc3_sum_rule_violation_raw_eV_A3
    assert r.fc2_sum_rule_violation_enforced_eV_A2 < 1e-8
    raw, enforced = r.kappa_no_sum_rule_average_W_mK[0], r.kappa_average_W_mK[0]
    assert r.sum_rule_kappa_change_rel[0] == pytest.approx(abs(enforced - raw) / raw, rel=1e-12)
    assert r.sum_rule_enforcement.startswith("phono3py")


def test_mesh_convergence_and_result_record(sw_si_kappa):
    r = sw_si_kappa
    assert r.mesh == [5, 5, 5] and r.convergence_mesh == [7, 7, 7]
    change = abs(r.kappa_convergence_mesh_average_W_mK[0] / r.kappa_average_W_mK[0] - 1)
    assert r.mesh_change_rel == pytest.approx(change, rel=1e-12)
    assert r.converged == (change <= r.convergence_tolerance_rel)
    assert not r.converged and any("denser mesh" in n for n in r.notes)  # 5^3 is far from converged for Si
    assert r.scattering == ["three-phonon", "isotope (natural abundances)"] and r.isotope
    assert r.fc3_supercell_matrix == r.fc2_supercell_matrix == (2 * np.eye(3, dtype=int)).tolist()
    assert r.n_fc3_supercell_atoms == 64 and r.n_atoms_primitive == 2 and r.cutoff_pair_distance_A is None
    assert not r.imaginary_modes and not r.is_metal
    import json

    json.dumps(r.to_dict())


def test_isotope_scattering_lowers_kappa_and_pair_cutoff_drops_supercells(sw, sw_si, sw_si_kappa):
    # one plan: no isotope scattering, and a pair cutoff of 3 A (second neighbours of Si at 3.84 A)
    plan = plan_conductivity(sw, sw_si, supercell=2, mesh=5, convergence_mesh=False, relaxation=False,
                             isotope=False, cutoff_pair_distance_A=3.0)
    assert 1 + plan.n_fc3[0] == len(plan.structures) < 1 + sw_si_kappa.n_fc3_displaced_supercells
    r = plan.analyse(mlip_props.evaluate(sw, plan.structures, ("energy", "forces")))[0]
    assert r.cutoff_pair_distance_A == 3.0 and r.scattering == ["three-phonon"] and not r.isotope
    # fewer scattering channels -> longer lifetimes -> larger kappa (Matthiessen's rule)
    reference, _ = phono3py_reference(sw, sw_si, supercell=2, mesh=5, isotope=False)
    full_fc3 = reference[:3].mean()
    assert full_fc3 > sw_si_kappa.kappa_average_W_mK[0]
    assert r.kappa_average_W_mK[0] > 0


def test_rocksalt_pair_potential_kappa_equals_phono3py_driven_through_ase():
    pot = IonicPair()
    r = thermal_conductivity(pot, bulk("NaCl", "rocksalt", a=5.6, cubic=True), supercell=2, mesh=5,
                             convergence_mesh=False)
    assert r.relaxed and r.relax_converged and r.formula == "NaCl"
    reference, n_displaced = phono3py_reference(pot, r.atoms, supercell=2, mesh=5)
    assert r.n_displaced_supercells == n_displaced
    assert np.asarray(r.kappa_W_mK)[0, :3] == pytest.approx(reference[:3], rel=1e-2)
    k = np.asarray(r.kappa_W_mK)[0]
    assert np.ptp(k[:3]) < 1e-10 * k[0] and np.abs(k[3:]).max() < 1e-10 * k[0]


def test_metal_gets_the_electrons_note():
    lj = mlip_props.load_potential("lj:epsilon=0.4,sigma=2.3")
    r = thermal_conductivity(lj, bulk("Cu", "fcc", a=3.6), supercell=3, mesh=4, convergence_mesh=False)
    assert r.is_metal and r.kappa_average_W_mK[0] > 0
    assert any("electronic contribution" in n and "not included" in n for n in r.notes)


def test_imaginary_modes_give_no_kappa_and_say_why():
    # a pair potential has no angular stiffness: diamond is unstable with Lennard-Jones
    lj = mlip_props.load_potential("lj:epsilon=0.4,sigma=2.3")
    r = thermal_conductivity(lj, bulk("Si", "diamond", a=5.43), supercell=2, mesh=3, convergence_mesh=False,
                             relaxation=False)
    assert r.imaginary_modes and r.min_frequency_THz < -0.05
    assert r.kappa_W_mK is None and r.kappa_average_W_mK is None and r.kappa_no_sum_rule_W_mK is None
    assert not r.converged and any("imaginary" in n and "no kappa" in n for n in r.notes)
    r.to_dict()


def test_bad_input_names_the_structure(sw, sw_si):
    molecule = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 2.3]])
    with pytest.raises(ValueError, match="structure 1"):
        plan_conductivity(sw, [sw_si, molecule], supercell=1, relaxation=False)
    with pytest.raises(ValueError, match="structure 0: singular"):
        plan_conductivity(sw, sw_si, supercell=[[1, 0, 0], [1, 0, 0], [0, 0, 1]], relaxation=False)
    with pytest.raises(ValueError, match="mesh"):
        plan_conductivity(sw, sw_si, mesh=[4, 0, 4], relaxation=False)
    with pytest.raises(ValueError, match="method"):
        plan_conductivity(sw, sw_si, method="bte", relaxation=False)
    with pytest.raises(ValueError, match="temperatures_K"):
        plan_conductivity(sw, sw_si, temperatures_K=[-10.0], relaxation=False)


def test_lbte_with_its_own_fc2_supercell(sw, sw_si):
    r = thermal_conductivity(sw, sw_si, supercell=2, fc3_supercell=1, mesh=4, convergence_mesh=False,
                             relaxation=False, method="lbte")
    assert r.method == "lbte" and r.fc2_supercell_matrix == (2 * np.eye(3, dtype=int)).tolist()
    assert r.fc3_supercell_matrix == np.eye(3, dtype=int).tolist() and r.n_fc3_supercell_atoms == 8
    assert r.n_fc2_displaced_supercells == 1  # one inequivalent atom, +-x equivalent by symmetry
    assert r.n_displaced_supercells == r.n_fc2_displaced_supercells + r.n_fc3_displaced_supercells
    # the LBTE run's own RTA is the RTA solution of the same force constants
    rta = thermal_conductivity(sw, sw_si, supercell=2, fc3_supercell=1, mesh=4, convergence_mesh=False,
                               relaxation=False, method="rta")
    assert r.kappa_rta_average_W_mK[0] == pytest.approx(rta.kappa_average_W_mK[0], rel=1e-8)
    assert r.kappa_average_W_mK[0] != pytest.approx(rta.kappa_average_W_mK[0], rel=1e-3)  # a different solution
    k = np.asarray(r.kappa_W_mK)[0]
    assert r.kappa_average_W_mK[0] > 0 and np.ptp(k[:3]) < 1e-8 * k[0]


def test_campaign_property_and_cli_name():
    from mlip_props.campaign.registry import get_property

    spec = get_property("conductivity")
    assert spec.func is thermal_conductivity and spec.plan is plan_conductivity
    assert {"supercell", "fc3_supercell", "mesh", "cutoff_pair_distance_A", "isotope", "method",
            "relaxation"} <= set(spec.params)
