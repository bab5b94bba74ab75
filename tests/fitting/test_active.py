"""Active learning: threshold logic, de-duplication, crash/resume without repeated oracle calls,
the batched MD explorer, and a molecule loop with an analytic (Morse) oracle.

The oracle is ASE's Morse pair potential wrapped as an OraclePotential (an analytic stand-in for
DFT): counting its calls is the point of several tests.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.morse import MorsePotential

from mlip_props.backend import OraclePotential
from mlip_props.backend.potential import Potential
from mlip_props.fitting import BehlerParrinelloPotential, preset
from mlip_props.fitting.active import (ActiveLearningConfig, classify, deduplicate, fingerprints, learn,
                                      structure_hash)
from mlip_props.fitting.explore import ClusterScanExplorer, MDExplorer, RattleExplorer
from mlip_props.potentials.pair import Morse

MORSE = dict(epsilon=0.5, r0=2.5, rho0=4.0, rcut1=1.5, rcut2=1.8)  # cut off smoothly 3.75-4.5 A
DESC = preset(["Cu"], cutoff=4.5, n_radial=5, zetas=(1,), angular_etas=(0.01,)).to_dict()
FAST = dict(committee=3, hidden=(8,), descriptor=DESC, initial_epochs=60, retrain_epochs=15, batch_size=8,
            oracle_properties=("energy", "forces"))


class Boom(RuntimeError):
    pass


def morse_oracle(counter: dict, fail_after: int | None = None) -> OraclePotential:
    def factory():
        counter["n"] += 1
        if fail_after is not None and counter["n"] > fail_after:
            raise Boom(f"simulated crash at oracle call {counter['n']}")
        return MorsePotential(**MORSE)

    return OraclePotential(factory, name="morse")


def cluster(n: int = 4, seed: int = 0) -> Atoms:
    """A compact Morse cluster near its equilibrium spacing (a 'molecule')."""
    pos = np.array([[0, 0, 0], [2.5, 0, 0], [1.25, 2.17, 0], [1.25, 0.72, 2.04], [3.75, 2.17, 0.0]])[:n]
    a = Atoms(["Cu"] * n, positions=pos + np.random.default_rng(seed).normal(0, 0.05, (n, 3)))
    return a


def seeds(n: int = 4) -> list[Atoms]:
    out = []
    for k in range(n):
        a = cluster(4, seed=10 + k)
        a.positions += np.random.default_rng(k).normal(0, 0.1, a.positions.shape)
        out.append(a)
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


# ------------------------------------------------------------------------------------------ units
def test_classify_thresholds():
    d = np.array([0.0, 0.049, 0.05, 0.3, 1.0, 1.0001, np.nan])
    assert list(classify(d, 0.05, 1.0)) == ["trusted", "trusted", "candidate", "candidate", "candidate", "wild",
                                            "wild"]
    with pytest.raises(ValueError):
        classify(d, 0.5, 0.1)


def test_dedup_rejects_near_identical_and_keeps_distinct():
    model = BehlerParrinelloPotential(DESC, hidden=(4,), n_members=2)
    a = cluster(4)
    b = a.copy()
    b.positions += 1e-4  # rigid shift: identical descriptors
    c = a.copy()
    c.positions[1, 0] += 0.6  # a genuinely different frame
    perm = a[[2, 0, 3, 1]]  # same frame, atoms relabelled: permutation-invariant fingerprint
    fp = fingerprints(model, [a, b, c, perm])
    scale = fp.std(0) + 1e-6
    kept, dup = deduplicate(fp[:4], fp[:0], [0, 1, 2, 3], 0.05, scale, limit=10)
    assert kept == [0, 2] and dup == [1, 3]
    kept, dup = deduplicate(fp[1:3], fp[:1], [0, 1], 0.05, scale, limit=10)  # vs labelled reference
    assert kept == [1] and dup == [0]


def test_batched_md_replicas_thermalise_one_force_call_per_step():
    """The BAOAB integrator thermalises replicas at different temperatures together (equipartition,
    loose bounds for 4 atoms), with forces from one evaluate_batch call per step (the Morse oracle
    as force field: it counts single points, 2 replicas per step)."""
    calls = {"n": 0}
    oracle = morse_oracle(calls)
    oracle.cutoff = 4.5
    cu = bulk("Cu", "fcc", a=2.5 * np.sqrt(2), cubic=True)  # Morse fcc near its minimum
    md = MDExplorer(cu, temperature_schedule=[200.0, 800.0], steps=120, sample_every=12, timestep_fs=2.0,
                    friction=0.05, pause_on_candidate=False)
    prop = md.propose(oracle, 0, np.random.default_rng(0), (0.0, np.inf))
    assert calls["n"] == 2 * (120 + 1)  # the oracle adapter answers per structure: 2 replicas x (steps + 1)
    v = md.state_dict()["velocities"]
    m = np.concatenate([cu.get_masses()] * 2)[:, None]
    ke = 0.5 * (m * np.asarray(v) ** 2).sum(1)
    t = [2 * ke[k * len(cu):(k + 1) * len(cu)].mean() / (3 * units.kB) for k in range(2)]
    assert t[1] > t[0]
    assert 0.3 * 200 < t[0] < 2.5 * 200 and 0.3 * 800 < t[1] < 2.5 * 800  # 4 atoms: large fluctuations
    assert len(prop.frames) == 2 * 10 and {f.info["config_type"][-4:] for f in prop.frames} == {"200K", "800K"}


class TwoMorseCommittee(Potential):
    """A two-member 'committee' of Morse pair potentials with different stiffness: the members'
    forces differ in proportion to the displacements, so hot replicas disagree more than cold ones."""

    n_members = 2

    def __init__(self):
        super().__init__(cutoff=5.0)
        self.members = torch.nn.ModuleList([Morse(D=0.3, a=a, r0=2.55, cutoff=5.0) for a in (1.4, 1.55)])

    def forward(self, graph):
        return torch.stack([m(graph) for m in self.members], dim=-1)


def test_md_pause_on_candidate_stops_only_the_unsure_replica():
    """On-the-fly pausing per replica: the hot replica stops at its first candidate frame (its last
    proposed frame, and where its dynamics resume next round); the cold, trusted replica runs the
    whole round with exactly the trajectory it has without pausing; with every frame a candidate
    the round ends at the first sample."""
    cu = bulk("Cu", "fcc", a=2.55 * np.sqrt(2), cubic=True).repeat(2)
    model, lo = TwoMorseCommittee(), 0.1

    def run(pause, thresholds=(lo, np.inf)):
        md = MDExplorer(cu, temperature_schedule=[50.0, 1500.0], steps=60, sample_every=6, pause_on_candidate=pause)
        return md, md.propose(model, 0, np.random.default_rng(0), thresholds)

    _, free = run(False)
    md, p = run(True)
    by = lambda prop, t: [(f, d) for f, d in zip(prop.frames, prop.disagreement_eV_A) if f.info["config_type"].endswith(t)]
    hot_free, hot = by(free, "1500K"), by(p, "1500K")
    assert max(d for _, d in by(free, "_50K")) < lo < max(d for _, d in hot_free)  # the premise of the test
    first = next(k for k, (_, d) in enumerate(hot_free) if d >= lo)
    assert len(hot) == first + 1 and hot[-1][1] >= lo and all(d < lo for _, d in hot[:-1])
    assert p.n_steps == 60 and len(by(p, "_50K")) == 10
    for (fa, da), (fb, db) in zip(by(p, "_50K"), by(free, "_50K")):
        assert np.isclose(da, db, rtol=1e-9) and np.allclose(fa.positions, fb.positions)
    n = len(cu)
    resume = cu.copy()
    resume.positions = np.asarray(md.state_dict()["positions"])[n:]
    resume.wrap()
    assert np.allclose(resume.positions, hot[-1][0].positions, atol=1e-9)
    _, allc = run(True, (0.0, np.inf))
    assert allc.n_steps == 6 and len(allc.frames) == 2


# ------------------------------------------------------------------------------------------ loops
def explorers():
    return [MDExplorer(cluster(4), temperature_schedule=[[300.0, 1200.0]], steps=60, sample_every=6),
            RattleExplorer(cluster(4), n=6, amplitudes=(0.05, 0.3, 0.8)),
            ClusterScanExplorer(["Cu"], r_range=(1.2, 4.0), n=5, trimers=False)]


def test_threshold_logic_oracle_sees_only_candidates(tmp_path):
    calls = {"n": 0}
    res = learn(seeds(), morse_oracle(calls), explorers(), tmp_path, lower_eV_A=0.1, upper_eV_A=0.4,
                max_rounds=2, max_per_round=4, patience=5, **FAST)
    dec = read_jsonl(tmp_path / "decisions.jsonl")
    called = {r["hash"] for r in read_jsonl(tmp_path / "oracle_calls.jsonl") if r["round"] >= 0}
    by_hash = {}
    for r in dec:
        by_hash.setdefault(r["hash"], []).append(r)
    kinds = {r["decision"] for r in dec}
    assert {"trusted", "wild", "selected"} <= kinds, kinds  # the test exercises all three regions
    for r in dec:  # nothing outside [lower, upper] is ever labelled
        if r["decision"] in ("trusted", "wild"):
            assert r["hash"] not in called
    for h in called:  # every oracle call after the seeds was a selected candidate inside the window
        sel = [r for r in by_hash[h] if r["decision"] == "selected"]
        assert sel and all(0.1 <= r["disagreement_eV_A"] <= 0.4 for r in sel)
    assert calls["n"] == len(read_jsonl(tmp_path / "oracle_calls.jsonl")) == res.n_oracle_calls
    assert res.n_labelled == len(res.frames) == calls["n"]  # one call per labelled frame, seeds included


def test_kill_mid_round_and_resume_repeats_no_oracle_call(tmp_path):
    kw = dict(lower_eV_A=0.02, upper_eV_A=2.0, max_rounds=3, max_per_round=3, patience=5, **FAST)
    ref_calls = {"n": 0}
    ref = learn(seeds(), morse_oracle(ref_calls), explorers(), tmp_path / "ref", **kw)
    n_seed = 5  # 4 seeds + the isolated atom
    assert ref_calls["n"] > n_seed + 3, "the reference run must make oracle calls in several rounds"
    k = n_seed + 3 + 1  # crash in the middle of the second round's labelling (or later)
    first = {"n": 0}
    with pytest.raises(Exception, match="simulated crash"):
        learn(seeds(), morse_oracle(first, fail_after=k), explorers(), tmp_path / "run", **kw)
    second = {"n": 0}
    res = learn(seeds(), morse_oracle(second), explorers(), tmp_path / "run", **kw)
    assert (first["n"] - 1) + second["n"] == ref_calls["n"]  # the failed call did not count as labelled
    assert [structure_hash(a) for a in res.frames] == [structure_hash(a) for a in ref.frames]
    np.testing.assert_array_equal([a.get_potential_energy() for a in res.frames],
                                  [a.get_potential_energy() for a in ref.frames])
    hashes = [r["hash"] for r in read_jsonl(tmp_path / "run" / "oracle_calls.jsonl")]
    assert len(hashes) == len(set(hashes))  # never the same structure twice
    # a finished run resumed again does nothing
    third = {"n": 0}
    again = learn(seeds(), morse_oracle(third), explorers(), tmp_path / "run", **kw)
    assert third["n"] == 0 and len(again.frames) == len(res.frames)


def test_resume_with_a_larger_budget_goes_on_and_a_monitor_stop_stands(tmp_path):
    kw = dict(lower_eV_A=0.0, upper_eV_A=50.0, max_rounds=6, max_per_round=2, patience=5, **FAST)
    first = learn(seeds(), morse_oracle({"n": 0}), explorers(), tmp_path / "run", max_oracle_calls=7, **kw)
    assert first.stop_reason.startswith("oracle budget 7") and first.n_labelled == 7
    calls = {"n": 0}
    more = learn(seeds(), morse_oracle(calls), explorers(), tmp_path / "run", max_oracle_calls=11, **kw)
    assert more.n_labelled == 11 and calls["n"] == 4  # two more rounds of two labels, nothing relabelled
    assert more.stop_reason.startswith("oracle budget 11")
    per_round = [h["seconds"] for h in more.history if h["round"] >= 0]
    assert per_round and all(set(s) >= {"oracle", "training", "exploration", "selection"} for s in per_round)
    # the stages' per-round seconds add up to the cumulative timings (this process did every round)
    for stage in ("training", "exploration"):
        total = sum(s[stage] for s in per_round)
        assert total <= more.timings_s[stage] + 1e-9
    stop_now = lambda model, rnd: {"stop": "enough"} if rnd >= 0 else {}  # noqa: E731
    m = learn(seeds(), morse_oracle({"n": 0}), explorers(), tmp_path / "mon", max_oracle_calls=30,
              monitor=stop_now, **kw)
    assert m.stop_reason == "enough" and m.rounds == 1
    again = {"n": 0}
    m2 = learn(seeds(), morse_oracle(again), explorers(), tmp_path / "mon", max_oracle_calls=60, monitor=stop_now,
               **kw)
    assert again["n"] == 0 and m2.stop_reason == "enough" and m2.n_labelled == m.n_labelled


def test_molecule_loop_learns_and_stops(tmp_path):
    """The full loop on a 4-atom Morse cluster: error on held-out frames drops, a stopping rule fires."""
    calls = {"n": 0}
    oracle = morse_oracle(calls)
    rng = np.random.default_rng(5)
    test = []
    for k in range(12):
        a = cluster(4, seed=100 + k)
        a.positions += rng.normal(0, 0.12, a.positions.shape)
        a.calc = MorsePotential(**MORSE)
        a.get_forces()
        test.append(a)
    ex = [MDExplorer(cluster(4), temperature_schedule=[[300.0, 900.0]], steps=60, sample_every=6),
          RattleExplorer(cluster(4), n=6, amplitudes=(0.05, 0.15, 0.3))]
    kw = dict(FAST, hidden=(8,), initial_epochs=100, retrain_epochs=40, retrain_lr=3e-3)
    res = learn(seeds(), oracle, ex, tmp_path, test_frames=test, lower_eV_A=0.03, upper_eV_A=0.6,
                max_rounds=4, max_per_round=5, max_oracle_calls=22, patience=2, **kw)
    h = res.history
    assert h[0]["round"] == -1 and len(h) >= 3
    assert h[-1]["test_force_rmse_meV_A"] < 0.8 * h[0]["test_force_rmse_meV_A"]
    assert res.n_labelled <= 22 and res.stop_reason
    assert Path(res.curve_plot).is_file() and (tmp_path / "model.pt").is_file()
    assert res.timings_s["training"] > 0 and res.timings_s["oracle"] > 0


def test_learn_cli_configure_and_run(tmp_path, capsys):
    """The argparse pair the CLI wires as ``mlip-props learn``: a one-round EMT run on a 4-atom cell."""
    import argparse

    from mlip_props.fitting import learn_cli

    p = argparse.ArgumentParser()
    learn_cli.configure(p)
    args = p.parse_args(["--structure", "Cu", "--supercell", "2", "--workdir", str(tmp_path), "--temperatures", "600", "--md-steps", "20",
                         "--sample-every", "5", "--no-pause", "--max-rounds", "1", "--committee", "2", "--hidden", "8",
                         "--lower", "0.0", "--upper", "100", "--max-per-round", "2", "--diversity", "0.5",
                         "--train-dtype", "float32"])
    assert learn_cli.run(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert summary["rounds"] == 1 and 3 + 1 < summary["n_labelled"] <= 3 + 1 + 2  # seeds + isolated + selected
    assert (tmp_path / "model.pt").is_file() and (tmp_path / "data.extxyz").is_file()
    bad = p.parse_args(["--structure", "no_such_thing_xyz", "--workdir", str(tmp_path / "b")])
    assert learn_cli.run(bad) == 2
    bad_pool = p.parse_args(["--structure", "Cu", "--pool", str(tmp_path / "missing.extxyz"), "--workdir",
                             str(tmp_path / "c")])
    assert learn_cli.run(bad_pool) == 2
    bad_virial = p.parse_args(["--structure", "Cu", "--workdir", str(tmp_path / "d"), "--lower", "0",
                               "--virial-lower", "0.01"])  # the virial spread is counted in units of --lower
    assert learn_cli.run(bad_virial) == 2
    bad_balance = p.parse_args(["--structure", "Cu", "--workdir", str(tmp_path / "e"), "--balance-explorers",
                                "--selection", "random"])  # turns over explorers apply to the greedy rule only
    assert learn_cli.run(bad_balance) == 2


def test_static_explorers_propose_valid_frames():
    """Strains stay within the requested amplitude; normal modes move atoms by a thermal amount
    (larger at higher T); cluster scans cover the dimer/trimer shapes."""
    from mlip_props.fitting.explore import NormalModeExplorer, StrainExplorer

    model = BehlerParrinelloPotential(DESC, hidden=(4,), n_members=2)
    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    rng = np.random.default_rng(0)
    st = StrainExplorer(cu, n=5, max_strain=0.05, rattle=0.0).propose(model, 0, rng, (0.0, 1.0)).frames
    for a in st:
        ratio = np.linalg.solve(np.asarray(cu.cell), np.asarray(a.cell)) - np.eye(3)
        assert np.abs(ratio).max() <= 0.05 * 1.5 + 1e-12 and np.allclose(ratio, ratio.T)
    nm = NormalModeExplorer(cu, n=40, temperatures=(100.0, 2000.0)).propose(model, 0, rng, (0.0, 1.0)).frames
    disp = [np.abs(a.positions - cu.positions).max() for a in nm]
    assert np.mean(disp[1::2]) > np.mean(disp[0::2]) > 0
    cs = ClusterScanExplorer(["Cu"], n=4).propose(model, 0, rng, (0.0, 1.0)).frames
    assert len(cs) == 4 * 3 and {a.info["config_type"] for a in cs} == {"dimer", "trimer_equilateral",
                                                                       "trimer_linear"}


def test_pool_arms_share_frames_and_random_arm_ignores_thresholds(tmp_path):
    """Pool protocol of the benchmark: both selection rules label only frames of the same fixed
    pool, never one twice; the random arm picks max_per_round unlabelled frames per round whatever
    their disagreement (thresholds set so that every frame is 'wild' for the committee rule, which
    then labels nothing), and the committee arm labels only candidates inside the window."""
    from mlip_props.fitting.explore import PoolExplorer

    rng = np.random.default_rng(3)
    pool = []
    for k in range(14):
        a = cluster(4, seed=200 + k)
        a.positions += rng.normal(0, 0.1 + 0.02 * k, a.positions.shape)
        pool.append(a)
    pool_hashes = {structure_hash(a) for a in pool}
    kw = dict(max_rounds=3, max_per_round=3, patience=5, **FAST)
    calls = {"n": 0}
    learn(seeds(), morse_oracle(calls), [PoolExplorer(pool)], tmp_path / "rand", selection="random",
          lower_eV_A=0.0, upper_eV_A=0.0, **kw)
    rc = [r for r in read_jsonl(tmp_path / "rand" / "oracle_calls.jsonl") if r["round"] >= 0]
    assert [sum(r["round"] == k for r in rc) for k in range(3)] == [3, 3, 3]
    assert {r["hash"] for r in rc} <= pool_hashes and len({r["hash"] for r in rc}) == 9
    # a per-round schedule (replaying another run's rounds) caps each round's picks
    res = learn(seeds(), morse_oracle({"n": 0}), [PoolExplorer(pool)], tmp_path / "sched", selection="random",
                lower_eV_A=0.0, upper_eV_A=0.0, per_round_schedule=[2, 0, 5], **kw)
    assert [h["n_selected"] for h in res.history if h["round"] >= 0] == [2, 0, 3]  # max_per_round = 3 still caps
    for bad in ([], [2, -1]):
        with pytest.raises(ValueError, match="per_round_schedule"):
            ActiveLearningConfig(per_round_schedule=bad)
    dec = read_jsonl(tmp_path / "rand" / "decisions.jsonl")
    assert all(r["disagreement_eV_A"] > 0 for r in dec if r["decision"] == "selected")  # 'wild' for the rule
    # the committee arm on the same pool with the same thresholds labels nothing: every frame is wild
    calls = {"n": 0}
    res = learn(seeds(), morse_oracle(calls), [PoolExplorer(pool)], tmp_path / "wild", lower_eV_A=0.0,
                upper_eV_A=0.0, **kw)
    assert res.n_labelled == 5 and all(h["n_selected"] == 0 for h in res.history)  # 4 seeds + isolated atom
    # a window: only in-window pool frames, each once; frames labelled before come back as duplicates
    res = learn(seeds(), morse_oracle({"n": 0}), [PoolExplorer(pool)], tmp_path / "qbc", lower_eV_A=0.01,
                upper_eV_A=10.0, **kw)
    qc = [r for r in read_jsonl(tmp_path / "qbc" / "oracle_calls.jsonl") if r["round"] >= 0]
    assert qc and {r["hash"] for r in qc} <= pool_hashes and len({r["hash"] for r in qc}) == len(qc)
    dec = read_jsonl(tmp_path / "qbc" / "decisions.jsonl")
    later = [r for r in dec if r["round"] > 0 and r["hash"] in {c["hash"] for c in qc if c["round"] == 0}]
    assert later and all(r["decision"] == "duplicate" for r in later)
    with pytest.raises(ValueError, match="selection"):
        learn(seeds(), morse_oracle({"n": 0}), [PoolExplorer(pool)], tmp_path / "bad", selection="greedy", **kw)


def test_pair_scan_explorer_pushes_one_pair_into_the_wall():
    from mlip_props.fitting.explore import PairScanExplorer

    base = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    ex = PairScanExplorer(base, r_range=(1.8, 2.0), n=6, rattle=0.0)
    frames = ex.propose(None, 0, np.random.default_rng(3), (0.05, 1.0)).frames
    assert len(frames) == 6
    for a in frames:
        dist = a.get_all_distances(mic=True)[np.triu_indices(len(a), 1)]
        close = np.sort(dist)
        assert 1.8 - 1e-9 <= close[0] <= 2.0 + 1e-9  # the pushed pair
        assert close[1] > 2.3  # every other pair keeps at least ~ the nearest-neighbour distance less the push
        assert a.info["config_type"] == "pair_scan" and len(a) == len(base)
        # the pair moved symmetrically: the centre of mass is the crystal's
        np.testing.assert_allclose(a.get_center_of_mass(), base.get_center_of_mass(), atol=1e-9)
    again = ex.propose(None, 0, np.random.default_rng(3), (0.05, 1.0)).frames
    np.testing.assert_array_equal(again[0].positions, frames[0].positions)  # seeded: a resumed round repeats
    other = ex.propose(None, 1, np.random.default_rng(4), (0.05, 1.0)).frames
    assert not np.allclose(other[0].positions, frames[0].positions)
    with pytest.raises(ValueError, match="r_range"):
        PairScanExplorer(base, r_range=(2.0, 1.8))
