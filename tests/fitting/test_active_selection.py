"""Active-learning selection rules beyond the maximum force disagreement: diversity-aware batch
picks, the committee's virial (stress) spread, and float32 warm starts.

The virial test uses a physical fact: a perfect fcc crystal under any homogeneous strain has zero
force on every atom by symmetry (every atom is an inversion centre), so a force-disagreement rule
can never ask for such cells, whatever the committee; their stress is where the members differ.
"""
import json

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.morse import MorsePotential

from mlip_props.backend import OraclePotential, evaluate
from mlip_props.fitting import fit, label_frames, preset
from mlip_props.fitting.active import (ActiveLearningConfig, deduplicate, diverse_select, force_rmse_meV_A, learn,
                                       virial_disagreement, warm_start_fit)
from mlip_props.fitting.active.selection import round_robin_deduplicate
from mlip_props.fitting.data import dataset_from_frames
from mlip_props.fitting.explore import PoolExplorer, StrainExplorer, strain_cell

MORSE = dict(epsilon=0.5, r0=2.5, rho0=4.0, rcut1=1.5, rcut2=1.8)
DESC = preset(["Cu"], cutoff=4.5, n_radial=5, zetas=(1,), angular_etas=(0.01,)).to_dict()


def morse_oracle(counter: dict) -> OraclePotential:
    def factory():
        counter["n"] += 1
        return MorsePotential(**MORSE)

    return OraclePotential(factory, name="morse")


# ------------------------------------------------------------------------------------------ diversity
def two_clusters():
    """Candidates in two tight groups in fingerprint space: A (indices 0-3, the most uncertain)
    and B (4-7, a bit less uncertain), far apart."""
    rng = np.random.default_rng(0)
    fp = np.concatenate([rng.normal(0.0, 0.05, (4, 6)), rng.normal(3.0, 0.05, (4, 6))])
    score = np.array([1.0, 0.99, 0.98, 0.97, 0.9, 0.89, 0.88, 0.87])
    return fp, score


def test_diverse_select_spreads_picks_over_groups():
    fp, score = two_clusters()
    scale = np.ones(fp.shape[1])
    plain, _ = deduplicate(fp, fp[:0], list(np.argsort(-score)), 0.01, scale, limit=2)
    assert plain == [0, 1]  # the plain greedy rule takes two near neighbours of group A
    kept, dup = diverse_select(fp, fp[:0], score, 0.01, scale, limit=2, length=1.0)
    assert kept == [0, 4] and not dup  # the most uncertain first, then the best of the other group
    kept, _ = diverse_select(fp, fp[:0], score, 0.01, scale, limit=4, length=1.0)
    assert kept[:2] == [0, 4] and set(kept) <= set(range(8)) and len(set(kept)) == 4


def test_diverse_select_short_length_is_plain_greedy_and_respects_references():
    fp, score = two_clusters()
    scale = np.ones(fp.shape[1])
    kept, _ = diverse_select(fp, fp[:0], score, 0.01, scale, limit=5, length=1e-6)
    assert kept == [0, 1, 2, 3, 4]
    # frames next to a labelled (reference) frame are duplicates, never picked
    ref = fp[4:5] + 1e-3
    kept, dup = diverse_select(fp, ref, score, 0.01, scale, limit=8, length=1.0)
    assert 4 in dup and 4 not in kept and len(kept) == 7
    # a candidate identical to one taken this round is a duplicate, not a second pick
    fp2 = np.concatenate([fp, fp[:1]])
    kept, dup = diverse_select(fp2, fp2[:0], np.append(score, 0.999), 0.01, scale, limit=9, length=1.0)
    assert 8 in dup and 8 not in kept


# ------------------------------------------------------------------------------------------ virial
def test_virial_disagreement_formula():
    s = np.zeros((2, 6))
    assert virial_disagreement(s, 100.0, 10) == 0.0
    assert virial_disagreement(s[:1], 100.0, 10) == 0.0  # one model: no spread
    s[1, 0] = 0.02  # members differ by 0.02 eV/A^3 in xx: std 0.01 -> virial/atom 0.01 * 100 / 10
    assert virial_disagreement(s, 100.0, 10) == pytest.approx(0.1)
    t = np.zeros((2, 6))
    t[1, 5] = 0.02  # the same spread in a shear entry counts twice in the full tensor (xy and yx)
    assert virial_disagreement(t, 100.0, 10) == pytest.approx(0.1 * np.sqrt(2))


def test_strained_perfect_cells_invisible_to_forces_found_by_virial(tmp_path):
    """Pool of perfect fcc cells under homogeneous strain: forces vanish by symmetry, so the
    force rule trusts them all and labels none; with the virial spread in the score, the loop
    labels them (each at most once), and the decisions log both spreads."""
    a0 = 2.5 * np.sqrt(2)  # Morse fcc near its minimum
    cu = bulk("Cu", "fcc", a=a0, cubic=True)
    rng = np.random.default_rng(1)
    seeds = []
    for k in range(4):
        a = cu.copy()
        a.positions += rng.normal(0, 0.08, a.positions.shape)
        seeds.append(a)
    pool = [strain_cell(cu, e) for e in (-0.04, -0.02, 0.02, 0.04, np.diag([0.03, -0.01, 0.0]))]
    kw = dict(committee=3, hidden=(8,), descriptor=DESC, initial_epochs=40, retrain_epochs=5, max_rounds=2,
              max_per_round=2, patience=5, lower_eV_A=0.01, upper_eV_A=5.0, include_isolated=False)
    calls = {"n": 0}
    res = learn(seeds, morse_oracle(calls), [PoolExplorer(pool)], tmp_path / "f", **kw)
    dec = [json.loads(x) for x in (tmp_path / "f" / "decisions.jsonl").read_text().splitlines()]
    assert all(r["disagreement_eV_A"] < 1e-6 and r["decision"] == "trusted" for r in dec)
    assert res.n_labelled == 4 and calls["n"] == 4
    calls = {"n": 0}
    res = learn(seeds, morse_oracle(calls), [PoolExplorer(pool)], tmp_path / "v", virial_lower_eV=1e-4, **kw)
    dec = [json.loads(x) for x in (tmp_path / "v" / "decisions.jsonl").read_text().splitlines()]
    assert all(r["virial_disagreement_eV"] > 1e-4 for r in dec if r["decision"] == "selected")
    assert res.n_labelled == 4 + 4 and calls["n"] == 8  # 2 per round, never the same cell twice
    assert res.history[1]["n_selected_virial"] == 2
    with pytest.raises(ValueError, match="virial_lower_eV"):
        ActiveLearningConfig(virial_lower_eV=-1.0)


# ------------------------------------------------------------------------------------------ balance
def test_round_robin_deduplicate_takes_turns_over_sources():
    fp = np.arange(6, dtype=float)[:, None] * np.ones((1, 3))  # six well separated candidates
    scale = np.ones(3)

    def rr(order, sources, limit=6, ref=fp[:0]):
        return round_robin_deduplicate(fp, ref, order, sources, 0.5, scale, limit)

    # most uncertain first; sources a a a b c b: a's best, b's best, c's, then a, b, a
    assert rr([0, 1, 2, 3, 4, 5], list("aaabcb")) == ([0, 3, 4, 1, 5, 2], [])
    assert rr([2, 1, 0, 3, 4, 5], [1, 0, 0, 0, 0, 0], limit=2) == ([2, 0], [])  # source 0 (frame 2) begins
    # a near-duplicate of a labelled frame is passed over within its source's turn, not the round's
    kept, dup = rr([0, 1, 2, 3], list("aabb"), limit=2, ref=fp[2:3] + 0.01)
    assert kept == [0, 3] and dup == [2]
    assert rr([], []) == ([], [])


def test_balanced_picks_share_a_round_between_explorers(tmp_path):
    """Two fixed pools: strongly rattled cells (large committee disagreement) and strained,
    barely rattled ones (small disagreement, above the lower threshold). The greedy rule gives both picks of the round to
    the first pool; balanced picks give one to each, and the decisions log says which explorer."""
    a0 = 2.5 * np.sqrt(2)
    cu = bulk("Cu", "fcc", a=a0, cubic=True)
    rng = np.random.default_rng(2)

    def rattled(std, n):
        out = []
        for _ in range(n):
            a = cu.copy()
            a.positions += rng.normal(0, std, a.positions.shape)
            out.append(a)
        return out

    seeds, hot = rattled(0.1, 4), rattled(0.35, 4)
    gentle = []  # cells strained by -3..+3 %, barely rattled: unlike the seeds in fingerprint
    for e in (-0.03, -0.01, 0.01, 0.03):
        a = strain_cell(cu, e)
        a.positions += rng.normal(0, 0.01, a.positions.shape)
        gentle.append(a)
    kw = dict(committee=3, hidden=(8,), descriptor=DESC, initial_epochs=40, retrain_epochs=5, max_rounds=1,
              max_per_round=2, patience=5, lower_eV_A=1e-4, upper_eV_A=50.0, include_isolated=False)

    def picked_pools(folder, **extra):
        learn(seeds, morse_oracle({"n": 0}), [PoolExplorer(hot), PoolExplorer(gentle)], tmp_path / folder,
              **kw, **extra)
        dec = [json.loads(x) for x in (tmp_path / folder / "decisions.jsonl").read_text().splitlines()]
        assert len(dec) == 8 and not any(r["decision"] in ("trusted", "wild") for r in dec)  # all candidates
        return [k // 4 for k, r in enumerate(dec) if r["decision"] == "selected"]  # 0: hot pool, 1: gentle

    assert picked_pools("greedy") == [0, 0]
    assert picked_pools("balanced", balance_explorers=True) == [0, 1]
    with pytest.raises(ValueError, match="balance_explorers"):
        ActiveLearningConfig(balance_explorers=True, selection="random")
    with pytest.raises(ValueError, match="balance_explorers"):
        ActiveLearningConfig(balance_explorers=True, diversity=0.5)


def test_explorer_own_dedup_distance_reaches_the_picker(tmp_path):
    """Perfect cells strained by 1.001-1.004 % next to a labelled one at 1 % are within the loop's
    fingerprint distance of it: duplicates. An explorer's own distance reaches the picker: with
    0 only exact repeats (structure hash) are duplicates, and the virial rule labels all four."""
    a0 = 2.5 * np.sqrt(2)
    cu = bulk("Cu", "fcc", a=a0, cubic=True)
    rng = np.random.default_rng(3)
    seeds = []
    for std in (0.05, 0.1, 0.15, 0.2):
        a = cu.copy()
        a.positions += rng.normal(0, std, a.positions.shape)
        seeds.append(a)
    seeds.append(strain_cell(cu, 0.01))
    pool = [strain_cell(cu, e) for e in (0.01001, 0.01002, 0.01003, 0.01004)]
    kw = dict(committee=3, hidden=(8,), descriptor=DESC, initial_epochs=40, retrain_epochs=5, max_rounds=1,
              max_per_round=4, patience=5, lower_eV_A=0.01, upper_eV_A=50.0, include_isolated=False,
              virial_lower_eV=1e-5)

    def decisions(folder, own):
        ex = PoolExplorer(pool)
        ex.dedup_distance = own
        learn(seeds, morse_oracle({"n": 0}), [ex], tmp_path / folder, **kw)
        return [json.loads(x)["decision"] for x in (tmp_path / folder / "decisions.jsonl").read_text().splitlines()]

    assert decisions("default", None) == ["duplicate"] * 4
    assert decisions("own", 0.0) == ["selected"] * 4
    with pytest.raises(ValueError, match="dedup_distance"):
        StrainExplorer(cu, dedup_distance=-1.0)


# ------------------------------------------------------------------------------------------ float32
def test_warm_start_float32_trains_and_returns_float64():
    """Float32 warm starts (faster on CPUs): the model comes back in float64, the training loss
    falls, and the result is close to the float64 warm start from the same state."""
    torch.manual_seed(0)
    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    rng = np.random.default_rng(2)
    frames = []
    for k in range(12):
        a = strain_cell(cu, rng.uniform(-0.03, 0.03))
        a.positions += rng.normal(0, 0.1, a.positions.shape)
        frames.append(a)
    from mlip_props.backend import emt_oracle

    r = evaluate(emt_oracle(), frames, ("energy", "forces", "stress"))
    frames = label_frames(frames, r.energies_eV, r.forces_eV_A, r.stress_eV_A3)
    model, _ = fit(frames[:4], None, committee=2, hidden=(8,), descriptor=DESC, epochs=20, split=(1.0, 0.0, 0.0),
                   prune=None, plot=False, progress=False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    before = force_rmse_meV_A(model, frames)
    out = {}
    for dt in (torch.float32, torch.float64):
        model.load_state_dict(state)
        m, metrics = warm_start_fit(model.to(torch.float64), dataset_from_frames(frames), epochs=60, lr=1e-2,
                                    dtype=dt)
        assert all(p.dtype == torch.float64 for p in m.parameters())
        out[dt] = force_rmse_meV_A(m, frames)
        assert np.isfinite(metrics["forces_rmse_meV_A"])
    assert out[torch.float32] < 0.9 * before
    assert out[torch.float32] == pytest.approx(out[torch.float64], rel=0.05)


def test_frame_reduce_max_vs_rms():
    """One atom of four disagrees (members +-0.4 eV/A in x): max = 0.4, rms over atoms = 0.2."""
    from mlip_props.fitting.active import member_disagreement

    f = np.zeros((2, 4, 3))
    f[0, 0, 0], f[1, 0, 0] = 0.4, -0.4
    assert member_disagreement(f, "max") == pytest.approx(0.4)
    assert member_disagreement(f, "rms") == pytest.approx(0.2)
    with pytest.raises(ValueError, match="frame_reduce"):
        ActiveLearningConfig(frame_reduce="median")
