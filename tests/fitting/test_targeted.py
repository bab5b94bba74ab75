"""Property-targeted active learning: the proposals are the property workflow's own structures,
the most disagreeing ones are labelled (and only those), resume repeats no oracle call, and the
loop stops on the property's committee std.

Two toys: a committee of three analytic Morse potentials with different stiffness (known,
deterministic disagreement; for the proposal/score checks), and a small fitted committee with a
counting EMT oracle (for the loop).
"""
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT

from mlip_props.backend import OraclePotential
from mlip_props.backend.potential import AtomicGraph, Potential
from mlip_props.fitting import preset
from mlip_props.fitting.active import structure_hash
from mlip_props.fitting.committee import committee_predict
from mlip_props.fitting.targeted import QUANTITY_PAIRS, PropertyMonitor, committee_scores, learn_targeted, workflow_structures
from mlip_props.potentials import Morse
from mlip_props.properties.elastic import voigt_strain_tensor
from mlip_props.properties.uncertainty import committee_properties

EV_A3_TO_GPA = 160.21766208


class MorseCommittee(Potential):
    """Per-atom energies (N, M) of M Morse potentials (Girifalco-Weizer Cu, stiffness a scaled)."""

    def __init__(self, scales=(0.97, 1.0, 1.03)):
        super().__init__(6.0, {29})
        self.members = torch.nn.ModuleList(
            [Morse(D=0.3429, a=1.3588 * s, r0=2.866, cutoff=6.0, switch_width=1.0) for s in scales])
        self.n_members = len(scales)

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        return torch.stack([m(graph) for m in self.members], -1)

    def get_config(self):
        return {}


def emt_counter(counter: dict, fail_after: int | None = None) -> OraclePotential:
    def factory():
        counter["n"] += 1
        if fail_after is not None and counter["n"] > fail_after:
            raise RuntimeError(f"simulated crash at oracle call {counter['n']}")
        return EMT()

    return OraclePotential(factory, name="emt")


def seeds(n: int = 6) -> list:
    rng = np.random.default_rng(3)
    out = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.61, cubic=True)
        a.set_cell(a.cell[:] * (1 + 0.02 * (k % 3 - 1)), scale_atoms=True)
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        out.append(a)
    return out


DESC = preset(["Cu"], cutoff=4.5, n_radial=5, zetas=(1,), angular_etas=(0.01,)).to_dict()
FAST = dict(committee=3, hidden=(8,), descriptor=DESC, initial_epochs=60, retrain_epochs=10, batch_size=8)
QUICK = dict(workflow_kwargs={"reference": "mean", "relaxation": {"max_steps": 300}},
             property_kwargs={"elastic_reference": "mean", "relaxation": {"max_steps": 300}})


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_elastic_proposals_are_the_workflow_cells_and_reproduce_its_members_c44():
    """Every proposed cell is the mean-relaxed (reference='mean') or member-V0 (reference='member')
    cell under I + eps with eps one of committee_properties' Voigt strains; fitting each member's
    stress on the proposals reproduces committee_properties' per-member C44 (the same cells)."""
    model = MorseCommittee()
    cu = bulk("Cu", "fcc", a=3.6)
    strains = inspect.signature(committee_properties).parameters["strains"].default
    cells = workflow_structures(model, cu, "elastic", reference="mean")
    assert len(cells) == 6 * len(strains)
    ref = None
    for k, a in enumerate(cells):
        j, x = divmod(k, len(strains))
        f = np.eye(3) + voigt_strain_tensor(j, strains[x])
        r = np.asarray(a.cell) @ np.linalg.inv(f)  # the unstrained cell
        ref = r if ref is None else ref
        np.testing.assert_allclose(r, ref, atol=1e-10)
    np.testing.assert_allclose(np.abs(np.linalg.det(ref)), committee_properties(
        model, cu, ["elastic"], elastic_reference="mean").atoms.get_volume(), rtol=1e-8)
    # reference="member": each member's own cell; member m's shear stresses give its C44
    cells = workflow_structures(model, cu, "elastic")
    assert len(cells) == 3 * 6 * len(strains)
    from mlip_props.backend import evaluate

    sig = np.asarray(evaluate(model, cells, ("energy", "stress")).stress_eV_A3)  # (B, M, 6)
    cp = committee_properties(model, cu, ["elastic"]).C_GPa_members[:, 3, 3]
    for m in range(3):
        rows = [6 * len(strains) * m + 3 * len(strains) + i for i in range(len(strains))]  # e4 cells of m
        c44 = np.polyfit(strains, sig[rows, m, 3], 1)[0] * EV_A3_TO_GPA
        assert c44 == pytest.approx(cp[m], rel=1e-6)
    assert np.ptp(cp) > 1.0  # the members really disagree (stiffer Morse, stiffer crystal)


def test_eos_and_phonon_proposals():
    model = MorseCommittee()
    cu = bulk("Cu", "fcc", a=3.6)
    eos = workflow_structures(model, cu, "eos", volume_range=0.05, n_points=5)
    v = np.array([a.get_volume() for a in eos])
    np.testing.assert_allclose(v / v[2], 1 + np.linspace(-0.05, 0.05, 5), rtol=1e-10)
    ph = workflow_structures(model, cu, "phonons", phonon_options={"supercell": 2})
    assert len(ph) >= 2 and all(len(a) == 8 for a in ph)  # perfect supercell + displaced ones
    d = np.linalg.norm(ph[1].positions - ph[0].positions, axis=1).max()
    assert d == pytest.approx(0.01, abs=1e-6)  # phonopy's default displacement amplitude


def test_stress_score_is_the_member_spread_and_shear_scales_with_c44_std():
    model = MorseCommittee()
    cu = bulk("Cu", "fcc", a=3.6)
    cells = workflow_structures(model, cu, "elastic", reference="mean")
    sc = committee_scores(model, cells, "stress")
    pred = committee_predict(model, cells)
    r0 = committee_predict(model, [cells[0].info["reference"]])
    from mlip_props.backend import evaluate

    sig = np.asarray(evaluate(model, cells + [cells[0].info["reference"]], ("energy", "stress")).stress_eV_A3)
    np.testing.assert_allclose(sc, np.linalg.norm((sig[:-1] - sig[-1]).std(1), axis=1) * EV_A3_TO_GPA,
                               rtol=1e-10)
    assert np.linalg.norm(r0.stress_std_eV_A3) * EV_A3_TO_GPA > 10 * sc.max()  # residual-pressure spread removed
    assert np.all(committee_scores(model, cells, "forces") < 1e-8)  # one-atom cells: no forces at all
    # shear cells of a cubic crystal: s = |eps| std(C44) (linear regime, mean reference, no residual shear)
    c = committee_properties(model, cu, ["elastic"], elastic_reference="mean")
    s = c.C_GPa_members[:, 3, 3].std()
    for k, x in enumerate((-0.01, -0.005, 0.005, 0.01)):
        assert sc[12 + k] == pytest.approx(abs(x) * s, rel=0.05)
    # restricted to the C44 entries: shear cells score |eps| std(C44) exactly, the others 0
    s44 = committee_scores(model, cells, "stress", QUANTITY_PAIRS["C44_GPa"])
    assert np.all(s44[:12] == 0)
    np.testing.assert_allclose(s44[12:], np.tile(np.abs([-0.01, -0.005, 0.005, 0.01]), 3) * s, rtol=1e-3)


def test_monitor_stops_on_tolerance():
    model = MorseCommittee()
    cu = bulk("Cu", "fcc", a=3.6)
    m = PropertyMonitor(cu, "elastic", "C44_GPa", elastic_reference="mean")
    mean, std = m.measure(model)
    members = committee_properties(model, cu, ["elastic"], elastic_reference="mean").C_GPa_members[:, 3, 3]
    assert std == pytest.approx(members.std()) and std > 0
    assert "stop" in PropertyMonitor(cu, "elastic", tolerance=1.01 * std, elastic_reference="mean")(model, 0)
    assert "stop" not in PropertyMonitor(cu, "elastic", tolerance=0.99 * std, elastic_reference="mean")(model, 0)


def test_loop_labels_most_disagreeing_workflow_cells_only_and_resumes(tmp_path):
    """One fitted committee, the elastic workflow's cells of fcc Cu: only the 3 most disagreeing
    (after de-duplication) per round are sent to the oracle; a crash in round 1 and a restart
    repeat no oracle call and end with the same data."""
    cu = bulk("Cu", "fcc", a=3.61)
    kw = dict(max_rounds=2, max_per_round=3, **FAST, **QUICK)
    ref_calls = {"n": 0}
    ref = learn_targeted(seeds(), cu, "elastic", emt_counter(ref_calls), tmp_path / "ref", **kw)
    dec = read_jsonl(tmp_path / "ref" / "decisions.jsonl")
    calls = read_jsonl(tmp_path / "ref" / "oracle_calls.jsonl")
    n_seed = 6 + 1  # seeds + the isolated atom
    assert ref_calls["n"] == len(calls) == n_seed + 2 * 3
    for rnd in (0, 1):
        d = [r for r in dec if r["round"] == rnd]
        assert len(d) == 24 and all(r["config_type"].startswith("elastic:") and r["score_unit"] == "GPa"
                                    for r in d)
        sel = [r for r in d if r["decision"] == "selected"]
        rest = [r for r in d if r["decision"] not in ("selected", "duplicate")]
        assert len(sel) == 3
        assert min(r["disagreement_eV_A"] for r in sel) >= max(r["disagreement_eV_A"] for r in rest)
        assert {r["hash"] for r in sel} == {c["hash"] for c in calls if c["round"] == rnd}
    assert [h["round"] for h in ref.history] == [-1, 0, 1]
    assert all(h["property"] == "C44_GPa" and h["property_std"] > 0 for h in ref.history)
    # crash during round 1's labelling, then resume
    first = {"n": 0}
    with pytest.raises(RuntimeError, match="simulated crash"):
        learn_targeted(seeds(), cu, "elastic", emt_counter(first, fail_after=n_seed + 3 + 1), tmp_path / "run",
                       **kw)
    second = {"n": 0}
    res = learn_targeted(seeds(), cu, "elastic", emt_counter(second), tmp_path / "run", **kw)
    assert (first["n"] - 1) + second["n"] == ref_calls["n"]
    assert [structure_hash(a) for a in res.frames] == [structure_hash(a) for a in ref.frames]
    hashes = [r["hash"] for r in read_jsonl(tmp_path / "run" / "oracle_calls.jsonl")]
    assert len(hashes) == len(set(hashes))


def test_loop_stops_when_property_std_below_tolerance(tmp_path):
    cu = bulk("Cu", "fcc", a=3.61)
    calls = {"n": 0}
    res = learn_targeted(seeds(4), cu, "elastic", emt_counter(calls), tmp_path, tolerance=1e9, max_rounds=3,
                         **FAST, **QUICK)
    assert res.rounds == 0 and res.stop_reason.startswith("property std C44_GPa")
    assert calls["n"] == 4 + 1  # the seed labels only


def test_learn_cli_target_property(tmp_path, capsys):
    import argparse

    from mlip_props.fitting import learn_cli

    p = argparse.ArgumentParser()
    learn_cli.configure(p)
    args = p.parse_args(["--structure", "Cu", "--supercell", "2", "--workdir", str(tmp_path), "--committee", "2",
                         "--hidden", "8", "--target-property", "elastic", "--property-tolerance", "1e9",
                         "--stress-weight", "10"])
    assert learn_cli.run(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rounds"] == 0 and "property std" in summary["stop_reason"]
    assert summary["history"][0]["property"] == "C44_GPa"
    assert json.loads((tmp_path / "state.json").read_text())["config"]["weights"] == {"stress": 10.0}


def test_eos_and_phonon_targets_score_and_monitor():
    """EOS: the pressure score is the member spread of P on the scaled cells, B_GPa monitored;
    phonons: force score on displaced supercells (zero on the perfect one), X-point std monitored."""
    model = MorseCommittee()
    cu = bulk("Cu", "fcc", a=3.6)
    eos = workflow_structures(model, cu, "eos", volume_range=0.05, n_points=5)
    sp = committee_scores(model, eos, "pressure")
    from mlip_props.backend import evaluate

    sig = np.asarray(evaluate(model, eos, ("energy", "stress")).stress_eV_A3)
    np.testing.assert_allclose(sp, (-sig[..., :3].mean(-1)).std(1) * EV_A3_TO_GPA, rtol=1e-10)
    mean, std = PropertyMonitor(cu, "eos").measure(model)
    b = committee_properties(model, cu, ["eos"]).bulk_modulus_GPa_members
    assert std == pytest.approx(b.std()) and std > 1.0
    ph = workflow_structures(model, cu, "phonons", phonon_options={"supercell": 2})
    sf = committee_scores(model, ph, "forces")
    assert sf[0] < 1e-8 < sf[1]  # perfect supercell: no forces for any member
    out = PropertyMonitor(cu, "phonons", tolerance=1e6, phonon_options={"supercell": 2})(model, 0)
    assert out["property_std"] > 0 and "stop" in out
