"""Data I/O, sampling, losses against the backend, training mechanics."""
import numpy as np
import pytest
import torch
from ase.build import bulk

from mlip_props import evaluate
from mlip_props.fitting import (
    BehlerParrinelloPotential, dataset_from_frames, fit, hessian_loss, preset, read_dataset, split_indices,
    write_dataset,
)
from mlip_props.fitting.losses import precompute, predict


def test_extxyz_round_trip_with_hessian(cu_frames, tmp_path):
    path = tmp_path / "d.extxyz"
    write_dataset(cu_frames, path)
    ds = read_dataset(path)
    ref = dataset_from_frames(cu_frames)
    assert len(ds) == len(cu_frames)
    np.testing.assert_allclose(ds.energies, ref.energies, rtol=1e-7)
    np.testing.assert_allclose(ds.forces[5], ref.forces[5], atol=1e-7)  # extxyz writes ~8 digits
    np.testing.assert_array_equal(np.isnan(ds.stress), np.isnan(ref.stress))
    n_h = sum(h is not None for h in ds.hessians)
    assert n_h == 2
    k = next(i for i, h in enumerate(ds.hessians) if h is not None)
    np.testing.assert_allclose(ds.hessians[k], ref.hessians[k], atol=1e-6)
    assert ds.hash() == read_dataset(path).hash() != ref.subset(range(len(ref) - 1)).hash()
    # the isolated atom has no stress label; periodic frames do
    iso = [i for i, a in enumerate(ds.frames) if len(a) == 1]
    assert iso and np.all(np.isnan(ds.stress[iso]))


def test_missing_energy_names_the_structure(cu_frames):
    a = cu_frames[3].copy()
    a.calc = None
    with pytest.raises(ValueError, match="structure 1: no energy"):
        dataset_from_frames([cu_frames[0], a])


def test_split_is_by_structure_and_reproducible():
    a = split_indices(50, (0.8, 0.1, 0.1), seed=4)
    b = split_indices(50, (0.8, 0.1, 0.1), seed=4)
    assert a == b and sorted(a[0] + a[1] + a[2]) == list(range(50)) and len(a[1]) == 5
    assert split_indices(50, (0.8, 0.1, 0.1), seed=5) != a


def test_sample_strategies_and_labels(tmp_path):
    from mlip_props.backend import emt_oracle
    from mlip_props.fitting import sample

    out = tmp_path / "s.extxyz"
    frames = sample(bulk("Cu", "fcc", a=3.61), emt_oracle(), n=10, max_atoms=4, md_stride=2, md_equilibration=4,
                    out_path=out, seed=0)
    types = {a.info["config_type"].split("_")[0] for a in frames}
    assert {"rattle", "strain", "md", "normal", "dimer", "isolated"} <= types
    ds = read_dataset(out)
    assert len(ds) == 11
    # labels are the oracle's
    ref = evaluate(emt_oracle(), ds.frames[:3], ("energy", "forces"))
    np.testing.assert_allclose(ds.energies[:3], ref.energies_eV, atol=1e-6)
    dimers = [a for a in frames if a.info["config_type"] == "dimer"]
    assert dimers and all(not a.pbc.any() for a in dimers)


def test_precomputed_training_path_matches_backend_autograd(cu_frames):
    """Forces and stress of the fast training path equal backend autograd (network part + ZBL + E0)."""
    model = BehlerParrinelloPotential(preset(["Cu"]).to_dict(), hidden=(8,), n_members=2, e0={"Cu": 3.51}, seed=1)
    frames = [a for a in cu_frames if a.pbc.all()][:5]
    ds = dataset_from_frames(frames)
    d = precompute(model, ds)
    p = predict(model, d, create_graph=False)
    full = evaluate(model, frames, ("energy", "forces", "stress"), device="cpu")
    zbl = evaluate(model.zbl, frames, ("energy", "forces", "stress"), device="cpu")
    e = p.energy.detach().numpy().T + zbl.energies_eV[:, None] + 3.51 * ds.n_atoms[:, None]
    np.testing.assert_allclose(e, full.energies_eV, atol=1e-10)
    f_fast = p.forces.detach().numpy()[:, : len(frames[0])]
    np.testing.assert_allclose(f_fast + zbl.forces_eV_A[0][None], full.forces_eV_A[0], atol=1e-10)
    s_fast = p.stress.detach().numpy().transpose(1, 0, 2) + zbl.stress_eV_A3[:, None]
    np.testing.assert_allclose(s_fast, full.stress_eV_A3, atol=1e-10)


def test_hessian_loss_is_zero_for_the_models_own_hessian(cu_frames):
    model = BehlerParrinelloPotential(preset(["Cu"]).to_dict(), hidden=(8,), seed=1)
    frames = [a for a in cu_frames if a.pbc.all() and len(a) <= 8][:2]
    hs = evaluate(model, frames, ("hessian",), device="cpu").hessians_eV_A2
    rng = np.random.default_rng(0)
    assert float(hessian_loss(model, frames, hs, 3, rng)) < 1e-20
    assert float(hessian_loss(model, frames, [h + 0.1 for h in hs], 3, rng)) == pytest.approx(0.01, rel=1e-8)


def test_checkpoint_resume_and_seed_reproducibility(cu_frames, tmp_path):
    kw = dict(committee=2, hidden=(8,), progress=False, seed=3, plot=False)
    cu_frames = cu_frames[:30] + cu_frames[-1:]  # keep it quick; the isolated atom is last
    ck = tmp_path / "ck.pt"
    m_full, r_full = fit(cu_frames, None, epochs=6, **kw)
    m_a, r_a = fit(cu_frames, None, epochs=3, checkpoint=ck, checkpoint_every=1, **kw)
    assert ck.is_file()
    m_b, r_b = fit(cu_frames, None, epochs=6, checkpoint=ck, resume=True, **kw)
    assert len(r_b.history) == 6
    sd_full, sd_b = m_full.state_dict(), m_b.state_dict()
    for k in sd_full:
        torch.testing.assert_close(sd_full[k], sd_b[k], rtol=1e-9, atol=1e-12)
    # stress off changes the losses that are logged
    _, r_ns = fit(cu_frames, None, epochs=2, weights={"stress": 0.0}, **kw)
    assert r_ns.settings["weights"]["stress"] == 0.0


def test_float32_training_runs_and_returns_float64_model(cu_frames, tmp_path):
    model, rep = fit(cu_frames, tmp_path / "f32.pt", committee=1, hidden=(8,), epochs=3, progress=False,
                     dtype=torch.float32)
    assert next(model.parameters()).dtype == torch.float64
    assert (tmp_path / "f32.curves.png").is_file()
    assert rep.settings["dtype"] == "torch.float32"
    assert np.isfinite(rep.metrics["test"]["forces_rmse_meV_A"])


def test_parse_weights_for_the_cli():
    from mlip_props.fitting import parse_weights

    assert parse_weights("energy=10, forces=1,stress=0") == {"energy": 10.0, "forces": 1.0, "stress": 0.0}
    with pytest.raises(ValueError, match="unknown loss term"):
        parse_weights("force=1")
    with pytest.raises(ValueError, match="not a number"):
        parse_weights("forces=abc")


def test_asr_loss_of_the_pair_head_is_net_force_plus_antisymmetry(cu_frames):
    """The pair head's ASR term = |sum_i F_i|^2/n^2 + per-structure mean of (c_ij - c_ji)^2, both from
    the fast training path; it vanishes (to round-off) when the receiver embedding is switched off."""
    from mlip_props.fitting.losses import antisymmetry_per_structure, loss_terms

    model = BehlerParrinelloPotential(preset(["Cu"]).to_dict(), hidden=(8,), direct_forces=True, seed=2)
    frames = [a for a in cu_frames if a.pbc.all()][:4]
    d = precompute(model, dataset_from_frames(frames))
    p = predict(model, d, create_graph=False, want_antisymmetry=True)
    assert p.direct_antisymmetry.shape == (1, d.edge_index.shape[1])
    # the training path's forces equal the head evaluated through the backend graph
    from mlip_props.fitting import predict_direct_forces

    f_ref = predict_direct_forces(model, frames, device="cpu")  # where d lives
    torch.testing.assert_close(p.direct_forces[0, : len(frames[0])], f_ref[0][0].cpu(), rtol=1e-10, atol=1e-12)
    terms = loss_terms(model, d, p)
    n = d.n_atoms.double()
    net = torch.zeros(len(frames), 3, dtype=torch.float64).index_add(0, d.structure_index, p.direct_forces[0].detach())
    anti = [float((p.direct_antisymmetry[0, d.edge_structure == b] ** 2).mean()) for b in range(len(frames))]
    expect = float(((net**2).sum(-1) / n**2).mean()) + float(np.mean(anti))
    assert float(terms["asr"]) == pytest.approx(expect, rel=1e-10)
    assert float(antisymmetry_per_structure(d, p.direct_antisymmetry).mean()) > 0
    with torch.no_grad():
        model.pair_receiver.weights[-1].zero_()
        model.pair_receiver.biases[-1].zero_()
    p0 = predict(model, d, create_graph=False, want_antisymmetry=True)
    assert float(loss_terms(model, d, p0)["asr"]) < 1e-28
    assert float(p0.direct_forces.abs().max()) > 1e-4


def test_label_with_oracle_attaches_the_oracles_own_numbers():
    from ase import Atoms
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from mlip_props.backend import emt_oracle
    from mlip_props.fitting import label_with_oracle

    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    cell.positions[0] += [0.05, -0.03, 0.02]
    dimer = Atoms("Cu2", positions=[[0, 0, 0], [2.4, 0, 0]], pbc=False)
    labelled = label_with_oracle(emt_oracle(), [cell, dimer])
    for src, lab in zip((cell, dimer), labelled):
        assert src.calc is None  # the inputs are left alone
        ref = src.copy()
        ref.calc = EMT()
        assert lab.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(lab.get_forces(), ref.get_forces(), atol=1e-10)
        if src.pbc.all():
            np.testing.assert_allclose(lab.get_stress(), ref.get_stress(), atol=1e-10)
        else:
            assert "stress" not in lab.calc.results  # no stress for a molecule
