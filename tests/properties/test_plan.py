"""The plan -> evaluate -> analyse shape: member views of a committee evaluation, joint evaluation of
several plans, shared relaxations, the one structure-list helper and RelaxSettings."""
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

import mlip_props
from mlip_props.backend import evaluate
from mlip_props.backend.evaluate import CALL_COUNTS
from mlip_props.backend.inputs import is_single_structure, structure_list
from mlip_props.potentials.committee import CommitteeMean, is_committee, mean_over_members
from mlip_props.properties.elastic import elastic_tensor, plan_elastic
from mlip_props.properties.eos import equation_of_state, plan_eos
from mlip_props.properties.plan import analyse_members, count_backend_calls, evaluate_plans
from mlip_props.properties.relax import RelaxSettings, resolve_relaxation, shared_relaxations

MODEL = Path(mlip_props.__file__).parent / "data" / "cu_committee.pt"


@pytest.fixture(scope="module")
def committee():
    return mlip_props.load_potential(str(MODEL))


def _cells():
    a = bulk("Cu", "fcc", a=3.62)
    b = bulk("Cu", "fcc", a=3.58, cubic=True)
    b.rattle(0.02, seed=3)
    return [a, b]


def test_member_column_equals_the_member_alone(committee):
    cells = _cells()
    res = evaluate(committee, cells, ("energy", "forces", "stress"))
    assert res.n_members == committee.n_members == 4
    for m in range(res.n_members):
        alone = evaluate(committee.member(m), cells, ("energy", "forces", "stress"))
        col = res.member(m)
        np.testing.assert_allclose(col.energies_eV, alone.energies_eV, rtol=0, atol=1e-10)
        np.testing.assert_allclose(col.stress_eV_A3, alone.stress_eV_A3, rtol=0, atol=1e-12)
        for f, g in zip(col.forces_eV_A, alone.forces_eV_A):
            np.testing.assert_allclose(f, g, rtol=0, atol=1e-10)
    # the mean of the columns is the committee-mean potential's answer (linearity)
    mean = evaluate(CommitteeMean(committee), cells, ("energy", "forces", "stress"))
    np.testing.assert_allclose(res.member_mean().energies_eV, mean.energies_eV, atol=1e-10)
    np.testing.assert_allclose(res.member_mean().forces_eV_A[1], mean.forces_eV_A[1], atol=1e-10)
    assert len(res.members()) == 4 and mean.n_members == 0 and mean.member(0) is mean
    with pytest.raises(IndexError):
        res.member(4)
    sub = res.select([1])
    np.testing.assert_array_equal(sub.energies_eV, res.energies_eV[[1]])
    assert sub.n_atoms.tolist() == [4]


def test_mean_over_members(committee):
    mean = mean_over_members(committee)
    assert isinstance(mean, CommitteeMean) and mean_over_members(mean) is mean
    assert not is_committee(mean) and is_committee(committee)
    emt = mlip_props.load_potential("emt")
    assert mean_over_members(emt) is emt


def test_joint_evaluation_equals_separate_properties():
    """EOS and elastic plans answered by one backend call give the one-call functions' results."""
    sw = mlip_props.load_potential("sw")
    si = [bulk("Si", "diamond", a=5.43), bulk("Si", "diamond", a=5.40, cubic=True)]
    plans = [plan_eos(sw, si), plan_elastic(sw, si)]
    assert count_backend_calls(plans) == 1
    before = CALL_COUNTS["evaluate"]
    eos_answers, elastic_answers = evaluate_plans(sw, plans)
    assert CALL_COUNTS["evaluate"] - before == 1
    joint_eos = plans[0].analyse(eos_answers)
    joint_c = plans[1].analyse(elastic_answers)
    for j, e, c, s in zip(joint_eos, equation_of_state(sw, si), elastic_tensor(sw, si), si):
        assert j.bulk_modulus_GPa == pytest.approx(e.bulk_modulus_GPa, rel=1e-10)
        assert j.v0_A3_per_atom == pytest.approx(e.v0_A3_per_atom, rel=1e-12)
    for j, c in zip(joint_c, elastic_tensor(sw, si)):
        np.testing.assert_allclose(j.C_GPa, c.C_GPa, rtol=0, atol=1e-8)


def test_shared_relaxations_relax_once_and_change_nothing():
    sw = mlip_props.load_potential("sw")
    si = bulk("Si", "diamond", a=5.47)

    def steps(func):
        n = CALL_COUNTS["evaluate_batch"]
        out = func()
        return out, CALL_COUNTS["evaluate_batch"] - n

    plain, plain_steps = steps(lambda: plan_elastic(sw, si))
    with shared_relaxations():
        first, first_steps = steps(lambda: plan_eos(sw, si))
        shared, shared_steps = steps(lambda: plan_elastic(sw, si))
        other, other_steps = steps(lambda: plan_elastic(sw, si, relaxation={"fmax_eV_A": 5e-4}))
    # the elastic plan reused the EOS plan's starting relaxation: only its strained cells' ions ran
    start_steps = plain_steps - shared_steps
    assert start_steps > 10 and first_steps >= start_steps
    assert other_steps > shared_steps  # other settings: relaxed again
    np.testing.assert_allclose(shared.references[0].cell, plain.references[0].cell, atol=1e-12)
    np.testing.assert_allclose(shared.references[0].get_positions(), plain.references[0].get_positions(), atol=1e-12)
    assert shared.relax_converged == plain.relax_converged == [True]
    assert shared.references[0] is not first.references[0]  # each property gets its own copy
    c_plain = plain.analyse(evaluate_plans(sw, [plain])[0])[0].C_GPa
    c_shared = shared.analyse(evaluate_plans(sw, [shared])[0])[0].C_GPa
    np.testing.assert_allclose(c_shared, c_plain, rtol=0, atol=1e-10)


def test_committee_analyses_equal_single_member_workflows(committee):
    """analyse_members of one committee evaluation = each member's own plain property function."""
    ref = bulk("Cu", "fcc", a=3.6)
    plan = plan_eos(committee, ref, volume_range=0.08, n_points=13, relaxation=False)
    per_member = analyse_members(plan, evaluate_plans(committee, [plan])[0])
    for m in range(committee.n_members):
        one = equation_of_state(committee.member(m), ref, volume_range=0.08, n_points=13, relaxation=False)
        mine = per_member[m][0]
        # the member's column and the member alone agree to the last bit or two of the energies ...
        np.testing.assert_allclose(mine.energies_eV_per_atom, one.energies_eV_per_atom, rtol=0, atol=1e-14)
        np.testing.assert_allclose(mine.pressures_GPa, one.pressures_GPa, rtol=0, atol=1e-10)
        # ... and the nonlinear Birch-Murnaghan fit turns a 1-ulp change of E into ~3e-10 of B
        assert mine.bulk_modulus_GPa == pytest.approx(one.bulk_modulus_GPa, rel=1e-9)
        assert mine.v0_A3_per_atom == pytest.approx(one.v0_A3_per_atom, rel=1e-10)
        assert mine.bulk_modulus_from_pressure_GPa == pytest.approx(one.bulk_modulus_from_pressure_GPa, rel=1e-9)


def test_structure_list_one_or_many():
    from pymatgen.core import Lattice, Molecule, Structure

    mol = Molecule(["O", "H", "H"], [[0, 0, 0], [0.76, 0.59, 0], [-0.76, 0.59, 0]])
    st = Structure(Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]])
    for one in (bulk("Cu"), mol, st):
        assert is_single_structure(one)
        single, items = structure_list(one)
        assert single and items == [one]
    single, items = structure_list([mol, bulk("Cu")])
    assert not single and len(items) == 2
    single, items = structure_list(a for a in [bulk("Cu")])
    assert not single and len(items) == 1
    with pytest.raises(TypeError, match="not a string"):
        structure_list("Cu")
    with pytest.raises(ValueError, match="empty"):
        structure_list([])
    # a Molecule is one structure everywhere: relax returns one result, not one per site
    from mlip_props.properties.relax import relax

    r = relax(mlip_props.load_potential("emt"), Molecule(["Cu", "Cu"], [[0, 0, 0], [0, 0, 2.4]]))
    assert len(r.atoms) == 2
    dimer = Molecule(["Cu", "Cu"], [[0, 0, 0], [0, 0, 2.4]])
    assert evaluate(mlip_props.load_potential("emt"), dimer, ("energy",)).energies_eV.shape == (1,)


def test_relax_settings():
    default = RelaxSettings()
    assert resolve_relaxation(None) is resolve_relaxation(True) and resolve_relaxation(None) == default
    assert resolve_relaxation(False).enabled is False
    assert resolve_relaxation({"fmax_eV_A": 1e-3}).fmax_eV_A == 1e-3
    assert resolve_relaxation({"fmax_eV_A": 1e-3}).smax_GPa == default.smax_GPa
    with pytest.raises(ValueError, match="unknown relaxation settings.*fmax"):
        resolve_relaxation({"fmax": 1e-3})
    for bad in ({"fmax_eV_A": -1.0}, {"fmax_eV_A": float("nan")}, {"max_steps": -2}, {"smax_GPa": 0.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            resolve_relaxation(bad)
    with pytest.raises(TypeError):
        resolve_relaxation("tight")
    cu = bulk("Cu")
    assert default.ions_for(cu) is False and RelaxSettings(ions=True).ions_for(cu) is True
    assert default.ions_for(bulk("Si", "diamond", a=5.43)) is True


def test_count_backend_calls_by_kind():
    sw = mlip_props.load_potential("sw")
    from mlip_props.properties.phonons import plan_phonons

    si = bulk("Si", "diamond", a=5.43)
    eos = plan_eos(sw, si, relaxation=False)
    rows = plan_phonons(sw, si, relaxation=False, supercell=2)  # the Hessian-row route of a torch potential
    assert rows.hessian_rows is not None
    assert count_backend_calls([eos]) == 1 and count_backend_calls([eos, rows]) == 2
    before = dict(CALL_COUNTS)
    eos_answers, row_answers = evaluate_plans(sw, [eos, rows])
    assert CALL_COUNTS["evaluate"] - before.get("evaluate", 0) == 1  # the row engine is the second call
    assert len(row_answers.hessians_eV_A2) == 1 and len(eos_answers.energies_eV) == 11


def test_shared_supercells_are_evaluated_once_with_the_same_answers(monkeypatch):
    """Phonons and thermal properties of one crystal ask for the same displaced supercells: a joint
    evaluation computes each once, and every plan gets exactly the answers of its own evaluation."""
    import mlip_props.backend.hessian_rows as rows_module
    from mlip_props.potentials import load_potential
    from mlip_props.properties.phonons import plan_phonons
    from mlip_props.properties.plan import distinct_requests
    from mlip_props.properties.thermal.harmonic import plan_thermal

    lj = load_potential("lj:epsilon=0.0104,sigma=3.4,cutoff=7")
    ar = bulk("Ar", "fcc", a=5.3)
    with shared_relaxations():
        ph, th = plan_phonons(lj, ar), plan_thermal(lj, ar)
    assert len(ph.structures) > 0 and len(distinct_requests(ph.structures + th.structures)[0]) == len(ph.structures)
    sizes = []
    engine = rows_module.evaluate_hessian_rows

    def spy(potential, structures, rows, **kw):
        sizes.append(len(structures))
        return engine(potential, structures, rows, **kw)

    monkeypatch.setattr(rows_module, "evaluate_hessian_rows", spy)
    joint = evaluate_plans(lj, [ph, th])
    assert sizes == [len(ph.structures)]
    alone = evaluate_plans(lj, [th])[0]
    for a, b in zip(joint[1].hessians_eV_A2, alone.hessians_eV_A2):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert joint[0].hessians_eV_A2[0] is not joint[1].hessians_eV_A2[0]
    # a different position is a different request
    moved = ar.copy()
    moved.positions[0, 0] += 1e-9
    assert distinct_requests([ar, moved, ar.copy()])[1] == [0, 1, 0]
