"""Lattice thermal conductivity: mlip-props' batched plan against phono3py driven structure by
structure through the same potential's ASE calculator (written here, independently of the
plan's bookkeeping), the cubic isotropy of kappa, the invariance under a change of setting
(rotated, primitive cell), the sum rules, isotope scattering, metals, unstable structures, bad
input, committee members, and fc3 from Hessians against fc3 from forces."""
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

pytest.importorskip("phono3py")

import mlip_props  # noqa: E402
from mlip_props.backend.potential import Potential  # noqa: E402
from mlip_props.potentials.base import PairPotential  # noqa: E402
from mlip_props.potentials.committee import mean_over_members  # noqa: E402
from mlip_props.potentials.stillinger_weber import StillingerWeber  # noqa: E402
from mlip_props.properties.conductivity import plan_conductivity, thermal_conductivity  # noqa: E402
from mlip_props.properties.plan import evaluate_plans  # noqa: E402

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
    # the traditional finite-difference fit named explicitly: phono3py's default solver is symfc
    # wherever symfc is installed (it comes with phonopy's dependencies now), a different fit
    ph3.produce_fc3(fc_calculator="traditional")
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


@pytest.fixture(scope="module")
def sw_si_kappa_8(sw, sw_si):
    """kappa with isotope scattering on an 8x8x8 mesh: on 5x5x5 phono3py's Tamura term is not
    resolved (the same force constants gave 283.8 and 288.1 W/(m K) through two phono3py call paths
    with the dependencies of 2026-12; 0.13 % apart on 7x7x7, 0.03 % on 8x8x8)."""
    return thermal_conductivity(sw, sw_si, supercell=2, mesh=8, convergence_mesh=False, relaxation=False,
                                raw_kappa=False)


def test_sw_si_kappa_equals_phono3py_driven_through_ase(sw, sw_si, sw_si_kappa, sw_si_kappa_8):
    # three-phonon scattering alone, same supercells and 5x5x5 mesh: the same numbers
    reference, n_displaced = phono3py_reference(sw, sw_si, supercell=2, mesh=5, isotope=False)
    alone = thermal_conductivity(sw, sw_si, supercell=2, mesh=5, convergence_mesh=False, relaxation=False,
                                 raw_kappa=False, isotope=False)
    assert sw_si_kappa.n_displaced_supercells == sw_si_kappa.n_fc3_displaced_supercells == n_displaced
    assert np.asarray(alone.kappa_W_mK)[0] == pytest.approx(reference, rel=1e-8, abs=1e-8 * reference[0])
    # with isotope scattering (the default), on a mesh that resolves it: within 1 %
    reference, _ = phono3py_reference(sw, sw_si, supercell=2, mesh=8)
    r = sw_si_kappa_8
    assert np.asarray(r.kappa_W_mK)[0, :3] == pytest.approx(reference[:3], rel=1e-2)
    assert r.kappa_average_W_mK[0] == pytest.approx(reference[:3].mean(), rel=1e-2)
    assert 50 < r.kappa_average_W_mK[0] < 2000  # SW Si: hundreds of W/(m K) (experiment 150)


def test_kappa_is_the_same_in_a_rotated_and_in_the_primitive_setting(sw, sw_si, sw_si_kappa_8):
    # the same crystal three ways: conventional cubic cell, the same cell rotated by 37 degrees
    # about (1, 2, 3), and the 2-atom fcc primitive cell; supercell=None picks the same 64-atom
    # cubic supercell (widths >= 10 A) in each, the mesh is of the primitive cell in each
    rotated = sw_si.copy()
    rotated.rotate(37, (1, 2, 3), rotate_cell=True)
    primitive = bulk("Si", "diamond", a=5.431)
    plan = plan_conductivity(sw, [sw_si, rotated, primitive], mesh=5, convergence_mesh=False, relaxation=False,
                             isotope=False)
    answers = mlip_props.evaluate(sw, plan.structures, ("energy", "forces"))
    assert [len(plan.templates[k].supercell) for k in range(3)] == [64, 64, 64]
    three_phonon = [np.asarray(plan.member_kappa(k, answers).kappa_W_mK[0]) for k in range(3)]
    # three-phonon kappa: invariant to numerical precision (cubic: the tensor itself, not just its trace)
    for k in (1, 2):
        assert three_phonon[k] == pytest.approx(three_phonon[0], rel=1e-8, abs=1e-8 * three_phonon[0][0])
    # with isotope scattering, phono3py's Tamura term is not resolved on a 5x5x5 mesh (its setting
    # dependence there was 0.2-0.8 % and, with the dependencies of 2026-12, 2.2 %): on 8x8x8 the three
    # settings agree within 1 %, far within the convergence tolerance
    plan.options.isotope = True
    plan.options.mesh = [8, 8, 8]
    for k in (1, 2):
        change = abs(plan.member_kappa(k, answers).kappa_W_mK[0][0] / sw_si_kappa_8.kappa_average_W_mK[0] - 1)
        assert change < 0.01 < sw_si_kappa_8.convergence_tolerance_rel


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


def test_planned_supercells_are_phono3pys_displaced_supercells(sw, sw_si):
    # the plan builds the displaced supercells from the perfect one and phono3py's displacements;
    # they must be phono3py's own, in its order, pairs beyond the cutoff left out
    plan = plan_conductivity(sw, sw_si, supercell=2, fc3_supercell=1, cutoff_pair_distance_A=3.0, relaxation=False)
    ph3 = plan.templates[0]
    own = [sc for sc in ph3.supercells_with_displacements if sc is not None]
    assert plan.included[0] == [sc is not None for sc in ph3.supercells_with_displacements]
    assert not all(plan.included[0]) and plan.n_fc3[0] == len(own)
    own_fc2 = ph3.phonon_supercells_with_displacements
    planned = plan.structures[1:1 + len(own)] + plan.structures[2 + len(own):]
    assert len(planned) == len(own) + len(own_fc2) == len(plan.structures) - 2
    for ours, theirs in zip(planned, own + own_fc2):
        assert np.abs(ours.get_positions() - theirs.positions).max() < 1e-12
        assert np.allclose(ours.cell.array, theirs.cell) and list(ours.numbers) == list(theirs.numbers)


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
    assert r.is_metal and not r.may_be_metallic and not r.lo_to_missing and r.kappa_average_W_mK[0] > 0
    assert any("electronic contribution" in n and "not included" in n for n in r.notes)


@pytest.mark.parametrize("formula, crystal, metal, maybe", [
    ("NiAl", "cesiumchloride", True, False),  # an intermetallic: all metals, the electrons note
    ("TiN", "rocksalt", False, True),  # metallic nitrides and carbides: "may be metallic"
    ("TiC", "rocksalt", False, True),
    ("ScN", "rocksalt", False, True),  # a semiconductor the rule cannot tell from TiN: hence "may be"
    ("MgO", "rocksalt", False, False),  # main-group compounds: insulators and semiconductors
    ("NaCl", "rocksalt", False, False),
    ("GaAs", "zincblende", False, False),
    ("ZnS", "zincblende", False, False),  # group 12: not a transition metal of the rule
    ("NiO", "rocksalt", False, False),  # transition-metal oxides and halides: ionic
    ("CuCl", "zincblende", False, False),
    ("Si", "diamond", False, False),
])
def test_metal_rule(formula, crystal, metal, maybe):
    from mlip_props.properties.conductivity import is_metal, may_be_metallic

    a = bulk(formula, crystal, a=4.3)
    assert (is_metal(a), may_be_metallic(a)) == (metal, maybe)
    symbols = sorted(set(a.get_chemical_symbols()))  # the same rule from element symbols alone
    assert (is_metal(symbols), may_be_metallic(symbols)) == (metal, maybe)


def test_transition_metal_carbide_may_be_metallic_and_polar_crystal_has_no_lo_to():
    pot = IonicPair()  # species-blind: the same rocksalt crystal, named TiC or NaCl
    options = dict(supercell=2, mesh=3, convergence_mesh=False, raw_kappa=False)
    tic = thermal_conductivity(pot, bulk("TiC", "rocksalt", a=5.6), **options)
    nacl = thermal_conductivity(pot, bulk("NaCl", "rocksalt", a=5.6), **options)
    assert tic.may_be_metallic and not tic.is_metal and tic.kappa_average_W_mK[0] > 0
    assert any("may be metallic" in n and "electronic contribution" in n for n in tic.notes)
    assert not any("all elements are metals" in n for n in tic.notes)
    assert not nacl.may_be_metallic and not nacl.is_metal
    assert not any("metal" in n for n in nacl.notes)
    # both polar by the composition rule, no Born charges: flagged, and the report shows "no LO-TO"
    from mlip_props.campaign.report.flags import row_flags

    for r in (tic, nacl):
        assert r.lo_to_missing and any("LO-TO" in n for n in r.notes)
        assert "no LO-TO" in row_flags(r.to_dict())


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


@pytest.mark.parametrize("params, name", [
    (dict(temperatures_K=[300.0, float("nan")]), "temperatures_K"),
    (dict(temperatures_K=True), "temperatures_K"),
    (dict(temperatures_K=[]), "temperatures_K"),
    (dict(mesh=[4, 4.5, 4]), "mesh"),
    (dict(mesh=[4, 4]), "mesh"),
    (dict(mesh=-3), "mesh"),
    (dict(convergence_mesh=[7, 0, 7]), "convergence_mesh"),
    (dict(cutoff_pair_distance_A=-1.0), "cutoff_pair_distance_A"),
    (dict(cutoff_pair_distance_A=float("inf")), "cutoff_pair_distance_A"),
    (dict(displacement_A=0.0), "displacement_A"),
    (dict(convergence_tolerance_rel=float("nan")), "convergence_tolerance_rel"),
    (dict(imaginary_tolerance_THz=-0.1), "imaginary_tolerance_THz"),
    (dict(min_length_A=0.0), "min_length_A"),
    (dict(fc3_method="finite"), "fc3_method"),
    (dict(fc3_method="hessian", cutoff_pair_distance_A=3.0), "cutoff_pair_distance_A"),
])
def test_numeric_parameters_are_checked_before_any_work(sw, sw_si, params, name):
    with pytest.raises(ValueError, match=name):
        plan_conductivity(sw, sw_si, supercell=1, relaxation=False, **params)


class SWCommittee(Potential):
    """A committee of Stillinger-Weber potentials differing in the three-body strength lambda."""

    def __init__(self, members):
        super().__init__(members[0].cutoff, members[0].elements)
        self.members = torch.nn.ModuleList(members)
        self.n_members = len(members)
        self.bytes_per_edge, self.edge_only = members[0].bytes_per_edge, members[0].edge_only

    def forward(self, graph):
        return torch.stack([m(graph) for m in self.members], dim=-1)


def test_committee_kappa_each_member_equals_its_plain_run(sw_si):
    members = [StillingerWeber(lam=21.0), StillingerWeber(lam=24.0)]
    committee = SWCommittee(members)
    # three-phonon scattering only: phono3py's isotope term on a coarse mesh moves by 0.2 % when the
    # forces change by rounding (4e-16 eV/A between the mean of the members' forces and the mean
    # potential's), which would blur the exact comparisons below
    options = dict(supercell=1, mesh=4, convergence_mesh=False, relaxation=False, raw_kappa=False, isotope=False)
    r = thermal_conductivity(committee, sw_si, **options)  # one plan, one evaluation, each member analysed
    assert r.n_members == 2 and len(r.kappa_W_mK_members) == 2
    for m, member in enumerate(members):
        plain = thermal_conductivity(member, sw_si, **options)
        assert np.asarray(r.kappa_W_mK_members[m]) == pytest.approx(np.asarray(plain.kappa_W_mK), rel=1e-6)
    per_member = np.asarray(r.kappa_average_W_mK_members)[:, 0]
    # a stiffer bond angle (larger lambda) gives faster phonons: the members' kappas differ
    assert per_member[1] > per_member[0]
    assert r.kappa_average_W_mK_member_mean[0] == pytest.approx(per_member.mean(), rel=1e-12)
    assert r.kappa_average_W_mK_std[0] == pytest.approx(abs(per_member[1] - per_member[0]) / 2, rel=1e-10)
    assert np.asarray(r.kappa_W_mK_std)[0, :3] == pytest.approx([r.kappa_average_W_mK_std[0]] * 3, rel=1e-6)
    # the main fields are the committee-mean potential's (its force constants are the members' mean)
    mean = thermal_conductivity(mean_over_members(committee), sw_si, **options)
    assert r.kappa_average_W_mK[0] == pytest.approx(mean.kappa_average_W_mK[0], rel=1e-6)
    import json

    json.dumps(r.to_dict())
    # a committee's raw answers are not a single potential's
    plan = plan_conductivity(committee, sw_si, **options)
    with pytest.raises(ValueError, match="committee"):
        plan.analyse(evaluate_plans(committee, [plan])[0])
    # the Hessian route reads each member's Hessians from the same single evaluation
    options["fc3_method"] = "hessian"
    r = thermal_conductivity(committee, sw_si, **options)
    for m, member in enumerate(members):
        plain = thermal_conductivity(member, sw_si, **options)
        assert np.asarray(r.kappa_W_mK_members[m]) == pytest.approx(np.asarray(plain.kappa_W_mK), rel=1e-6)


def test_fc3_from_hessians_equals_fc3_from_force_differences(sw, sw_si):
    options = dict(supercell=1, mesh=4, convergence_mesh=False, relaxation=False, isotope=False)
    fc3, kappa = {}, {}
    for route, d in (("forces", 0.03), ("hessian", 0.03), ("forces", 0.01), ("hessian", 0.01)):
        plan = plan_conductivity(sw, sw_si, fc3_method=route, displacement_A=d, **options)
        answers = evaluate_plans(sw, [plan])[0]
        ph3, raw_fc2, fc3[route, d] = plan.force_constants(0, answers)
        kappa[route, d] = plan.analyse(answers)[0]
        if route == "hessian":
            # perfect supercell + phono3py's single displacements (one for diamond Si), no pairs
            assert len(plan.structures) == 2 and kappa[route, d].fc3_method == "hessian"
            # fc2 is the analytic Hessian; the raw fc3 is translationally invariant to rounding
            assert kappa[route, d].fc3_sum_rule_violation_raw_eV_A3 < 1e-9
            assert kappa[route, d].fc2_sum_rule_violation_raw_eV_A2 < 1e-9
            # independent check: central difference of the backend's Hessians, written here
            u = 1e-3
            cells = []
            for sign in (1, -1):
                a = sw_si.copy()
                a.positions[0, 0] += sign * u
                cells.append(a)
            h = mlip_props.evaluate(sw, cells, ("energy", "forces", "hessian")).hessians_eV_A2
            direct = ((h[0] - h[1]) / (2 * u)).reshape(8, 3, 8, 3).transpose(0, 2, 1, 3)  # Phi_0jk^{x b c}
            assert np.abs(fc3[route, d][0, :, :, 0] - direct).max() < 2e-3 * np.abs(direct).max()
    scale = np.abs(fc3["hessian", 0.01]).max()
    diff = {d: np.abs(fc3["forces", d] - fc3["hessian", d]).max() for d in (0.03, 0.01)}
    # both are finite differences of one function with O(d^2) errors: they agree, and converge together
    assert diff[0.03] < 5e-3 * scale and diff[0.01] < diff[0.03] / 4
    for d in (0.03, 0.01):
        assert kappa["hessian", d].kappa_average_W_mK[0] == pytest.approx(kappa["forces", d].kappa_average_W_mK[0],
                                                                         rel=5e-3)
