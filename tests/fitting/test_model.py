"""Fitted-model physics: sum rules, hard core, committees, model files."""
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from mlip_props import evaluate, load_potential, save_potential
from mlip_props.fitting import (
    BehlerParrinelloPotential, committee_predict, predict_direct_forces, preset, translation_sum_rule,
)


def _rattled(seed=0, rep=(2, 1, 1)):
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(rep)
    a.rattle(0.1, seed=seed)
    return a


def test_conservative_head_sum_rule_to_round_off():
    model = BehlerParrinelloPotential(preset(["Cu"]).to_dict(), hidden=(16,), n_members=1, seed=2)
    a = _rattled()
    res = evaluate(model, [a], ("forces", "hessian"), device="cpu")
    f = res.forces_eV_A[0]
    assert np.abs(f).max() > 1e-3
    assert np.abs(f.sum(0)).max() < 1e-12 * max(1.0, np.abs(f).max()) * len(a)
    h = res.hessians_eV_A2[0].reshape(len(a), 3, len(a), 3)
    assert np.abs(h).max() > 1e-2
    # sum_j Phi_ij = 0 (acoustic sum rule) and Phi symmetric, both to round-off in float64
    assert np.abs(h.sum(axis=2)).max() < 1e-10 * np.abs(h).max()
    hf = res.hessians_eV_A2[0]
    assert np.abs(hf - hf.T).max() < 1e-10 * np.abs(hf).max()


def test_direct_head_breaks_sum_rule_and_conservative_does_not():
    model = BehlerParrinelloPotential(preset(["Cu"]).to_dict(), hidden=(16,), direct_forces=True, seed=5)
    frames = [_rattled(k) for k in range(3)]
    d = translation_sum_rule(model, frames, head="direct")
    c = translation_sum_rule(model, frames, head="conservative")
    assert float(d["net_force"].max()) > 1e-6 and float(d["phi_column_sum"].max()) > 1e-6
    assert float(c["net_force"].max()) < 1e-12 and float(c["phi_column_sum"].max()) < 1e-10
    f = predict_direct_forces(model, frames)
    assert f[0].shape == (1, len(frames[0]), 3)


def test_asr_penalty_reduces_direct_head_violation(cu_frames):
    from mlip_props.fitting import fit

    frames = [a for a in cu_frames if len(a) <= 8 or not a.pbc.all()]
    held_out = [_rattled(10 + k, (1, 1, 1)) for k in range(4)]
    kw = dict(committee=1, hidden=(16,), epochs=40, patience=100, progress=False, direct_forces=True, seed=0,
              zbl=None, batch_size=8)
    off, _ = fit(frames, None, weights={"asr": 0.0}, **kw)
    on, _ = fit(frames, None, weights={"asr": 100.0}, **kw)
    v_off = translation_sum_rule(off, held_out, head="direct")
    v_on = translation_sum_rule(on, held_out, head="direct")
    print("ASR off/on:", {k: float(v) for k, v in v_off.items()}, {k: float(v) for k, v in v_on.items()})
    assert float(v_on["net_force"]) < 0.1 * float(v_off["net_force"])
    assert float(v_on["phi_column_sum"]) < float(v_off["phi_column_sum"])
    # ramped penalty (zero for 20 epochs, linear over 5), column sums weighed at a 0.1 A displacement
    ramp, rep = fit(frames, None, weights={"asr": 100.0}, asr_schedule="ramp", asr_ramp_start=20, asr_ramp_epochs=5,
                    asr_length=0.1, **kw)
    w = [h["asr_weight"] for h in rep.history]
    assert w[:20] == [0.0] * 20 and w[20:25] == pytest.approx([20.0, 40.0, 60.0, 80.0, 100.0])
    assert all(x == 100.0 for x in w[25:])
    assert rep.best_epoch >= 24  # the returned state was trained with the full penalty
    v_r = translation_sum_rule(ramp, held_out, head="direct")
    print("ASR ramp:", {k: float(v) for k, v in v_r.items()})
    assert float(v_r["net_force"]) < 0.7 * float(v_off["net_force"])
    assert float(v_r["phi_column_sum"]) < 0.7 * float(v_off["phi_column_sum"])
    with pytest.raises(ValueError, match="asr_schedule"):
        fit(frames, None, asr_schedule="warmup", **kw)


def test_hard_core_dimer(cu_model):
    model = cu_model[0]
    r = np.concatenate([np.linspace(0.4, 1.5, 45), [6.5]])
    dimers = [Atoms("Cu2", positions=[[0, 0, 0], [x, 0, 0]]) for x in r]
    e = evaluate(model, dimers, ("energy",), device="cpu").energies_eV  # (n, M)
    e = e.mean(1) if e.ndim == 2 else e
    e_inf = e[-1]
    assert e[np.argmin(np.abs(r - 0.5))] - e_inf > 10.0
    assert np.all(np.diff(e[:-1]) < 0)  # monotone decreasing up to 1.5 A
    # isolated atoms dissociate exactly to the reference energies
    np.testing.assert_allclose(e_inf, 2 * model.get_config()["e0"]["Cu"], atol=1e-9)


def test_committee_shapes_and_statistics(cu_model):
    model = cu_model[0]
    assert model.n_members == 2
    frames = [_rattled(k) for k in range(2)]
    res = evaluate(model, frames, ("energy", "forces", "stress"), device="cpu")
    assert res.energies_eV.shape == (2, 2) and res.forces_eV_A[0].shape == (2, len(frames[0]), 3)
    assert res.stress_eV_A3.shape == (2, 2, 6)
    for m in range(2):
        one = evaluate(model.member(m), frames, ("energy", "forces"), device="cpu")
        np.testing.assert_allclose(one.energies_eV, res.energies_eV[:, m], atol=1e-10)
        np.testing.assert_allclose(one.forces_eV_A[1], res.forces_eV_A[1][m], atol=1e-10)
    cp = committee_predict(model, frames)
    np.testing.assert_allclose(cp.energy_mean_eV, res.energies_eV.mean(1))
    assert np.all(cp.energy_std_eV > 0)  # members differ (seeds and bootstrap)
    d = cp.force_disagreement_eV_A[0]
    expect = np.sqrt(((res.forces_eV_A[0] - res.forces_eV_A[0].mean(0)) ** 2).sum(-1).mean(0))
    np.testing.assert_allclose(d, expect)


def test_model_file_round_trip_and_errors(cu_model, tmp_path):
    model, report, path = cu_model
    loaded = load_potential(str(path))
    assert isinstance(loaded, BehlerParrinelloPotential)
    md = loaded.metadata
    assert md["data_hash"] == report.data_hash and "descriptor_transform" in md and "settings" in md
    frames = [_rattled(3)]
    a = evaluate(model, frames, ("energy", "forces", "stress"), device="cpu")
    b = evaluate(loaded, frames, ("energy", "forces", "stress"), device="cpu")
    np.testing.assert_allclose(a.energies_eV, b.energies_eV, atol=1e-12)
    np.testing.assert_allclose(a.forces_eV_A[0], b.forces_eV_A[0], atol=1e-12)
    # save again and reload: identical
    p2 = save_potential(loaded, tmp_path / "again.pt", metadata=md)
    c = evaluate(load_potential(p2), frames, ("energy",), device="cpu")
    np.testing.assert_allclose(c.energies_eV, a.energies_eV, atol=1e-12)
    # corrupt: truncated file; foreign: a torch file that is not a model
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable"):
        load_potential(str(bad))
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not an mlip-props model"):
        load_potential(str(foreign))


def test_unknown_element_is_a_clear_error(cu_model):
    with pytest.raises(ValueError, match="structure 1"):
        evaluate(cu_model[0], [_rattled(0), Atoms("Fe2", positions=[[0, 0, 0], [2, 0, 0]])], ("energy",),
                 device="cpu")


def test_shipped_cu_committee_loads_by_path_and_has_a_hard_core():
    import subprocess
    import sys
    from pathlib import Path

    import mlip_props

    path = Path(mlip_props.__file__).parent / "data" / "cu_committee.pt"
    if not path.is_file():
        pytest.skip("no shipped model file")
    # a fresh interpreter that never imported mlip_props.fitting can load it by path
    code = f"from mlip_props import load_potential; p = load_potential({str(path)!r}); print(type(p).__name__, p.n_members)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["BehlerParrinelloPotential", "4"]
    pot = load_potential(str(path))
    assert "how_trained" in pot.metadata and pot.metadata["data_hash"]
    r = np.linspace(0.4, 1.5, 23)
    e = evaluate(pot, [Atoms("Cu2", positions=[[0, 0, 0], [x, 0, 0]]) for x in r], ("energy",)).energies_eV
    assert np.all(np.diff(e, axis=0) < 0) and np.all(e[2] - 2 * pot.get_config()["e0"]["Cu"] > 10.0)
