"""Symmetry functions: derivatives, invariances, a naive reference, and the diagnostics/transforms."""
import itertools

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from mlip_props import evaluate
from mlip_props.backend import Batch, build_neighbor_graph, edge_vectors
from mlip_props.fitting import (
    BehlerParrinelloPotential, FeatureTransform, SymmetryFunctions, collinearity_report, neighbor_pairs, preset,
    prune_features, whitening_matrix,
)
from mlip_props.fitting.descriptors import cutoff_function


def _cfg(kind="g5"):
    return preset(["Cu", "Au"], cutoff=4.5, angular_cutoff=3.8, n_radial=5, zetas=(1, 4), angular_etas=(0.01, 0.1),
                  angular_kind=kind)


def _alloy(seed=0):
    a = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1))
    a.symbols[[1, 4, 6]] = "Au"
    a.set_cell(np.asarray(a.cell) @ np.array([[1.0, 0.03, 0.0], [0.0, 1.0, 0.02], [0.01, 0.0, 1.0]]), scale_atoms=True)
    a.rattle(0.08, seed=seed)
    return a


def _descriptors(atoms, cfg):
    batch = Batch.from_structures([atoms], device="cpu")
    graph = build_neighbor_graph(batch, cfg.cutoff)
    return SymmetryFunctions(cfg)(batch.numbers, graph.edge_index, edge_vectors(batch, graph))


@pytest.mark.parametrize("kind", ["g4", "g5"])
def test_forces_and_stress_match_finite_differences(kind):
    model = BehlerParrinelloPotential(_cfg(kind).to_dict(), hidden=(8,), activation="tanh", zbl_outer=None, seed=3)
    atoms = _alloy()
    res = evaluate(model, [atoms], ("energy", "forces", "stress"), device="cpu")
    h = 1e-5
    fd = np.zeros((len(atoms), 3))
    for i, d in itertools.product(range(len(atoms)), range(3)):
        e = []
        for s in (1, -1):
            b = atoms.copy()
            b.positions[i, d] += s * h
            e.append(evaluate(model, [b], ("energy",), device="cpu").energies_eV[0])
        fd[i, d] = -(e[0] - e[1]) / (2 * h)
    assert np.abs(fd).max() > 1e-3  # the check is not vacuous
    np.testing.assert_allclose(res.forces_eV_A[0], fd, atol=1e-7)
    # stress: derivative of the energy with respect to a homogeneous strain, divided by volume
    eps = np.zeros((3, 3))
    eps[0, 1] = eps[1, 0] = h
    e = []
    for s in (1, -1):
        b = atoms.copy()
        b.set_cell(np.asarray(atoms.cell) @ (np.eye(3) + s * eps), scale_atoms=True)
        e.append(evaluate(model, [b], ("energy",), device="cpu").energies_eV[0])
    sxy = (e[0] - e[1]) / (2 * 2 * h) / atoms.get_volume()
    np.testing.assert_allclose(res.stress_eV_A3[0, 5], sxy, atol=1e-8)


def test_invariances():
    cfg = _cfg("g4")
    atoms = _alloy(1)
    g = _descriptors(atoms, cfg)
    assert float(g.abs().max()) > 0.1
    rot = atoms.copy()
    rot.rotate(37.0, (1, 2, 3), rotate_cell=True)
    np.testing.assert_allclose(_descriptors(rot, cfg), g, atol=1e-10)
    tr = atoms.copy()
    tr.translate([0.3, -1.2, 2.5])
    np.testing.assert_allclose(_descriptors(tr, cfg), g, atol=1e-10)
    perm = np.random.default_rng(0).permutation(len(atoms))
    np.testing.assert_allclose(_descriptors(atoms[perm], cfg), g[perm], atol=1e-10)
    # swapping the elements of two atoms is NOT a symmetry: the descriptors must notice
    sw = atoms.copy()
    sw.symbols[[0, 1]] = sw.symbols[[1, 0]]
    assert float((_descriptors(sw, cfg) - g).abs().max()) > 1e-3


def test_matches_naive_double_loop():
    cfg = _cfg("g4")
    mol = Atoms("CuAuCuCu", positions=[[0, 0, 0], [2.4, 0.1, 0], [0.2, 2.5, 0.3], [1.1, 1.0, 2.2]])
    g = _descriptors(mol, cfg).numpy()
    el = cfg.elements
    pos = mol.positions
    sym = mol.get_chemical_symbols()
    fc = lambda r, rc: float(cutoff_function(torch.tensor(r), rc, "poly"))  # noqa: E731
    pairs = [(a, b) for a in range(2) for b in range(a, 2)]
    for i in range(len(mol)):
        ref = np.zeros(g.shape[1])
        for j in range(len(mol)):
            if j == i:
                continue
            r = np.linalg.norm(pos[j] - pos[i])
            if r < cfg.cutoff:
                s = el.index(sym[j])
                for k, (eta, rs) in enumerate(cfg.radial):
                    ref[s * len(cfg.radial) + k] += np.exp(-eta * (r - rs) ** 2) * fc(r, cfg.cutoff)
        off = 2 * len(cfg.radial)
        for j, k in itertools.combinations([m for m in range(len(mol)) if m != i], 2):
            rij, rik = pos[j] - pos[i], pos[k] - pos[i]
            a, b, c = np.linalg.norm(rij), np.linalg.norm(rik), np.linalg.norm(pos[k] - pos[j])
            if a >= cfg.angular_cutoff or b >= cfg.angular_cutoff:
                continue
            cos = rij @ rik / (a * b)
            p = pairs.index(tuple(sorted((el.index(sym[j]), el.index(sym[k])))))
            for q, (eta, zeta, lam, _) in enumerate(cfg.angular):
                ref[off + p * len(cfg.angular) + q] += (2.0 ** (1 - zeta) * (1 + lam * cos) ** zeta
                                                        * np.exp(-eta * (a * a + b * b + c * c))
                                                        * fc(a, cfg.angular_cutoff) * fc(b, cfg.angular_cutoff)
                                                        * fc(c, cfg.angular_cutoff))
        np.testing.assert_allclose(g[i], ref, rtol=1e-10, atol=1e-12)


def test_neighbor_pairs_counts_every_unordered_pair_once():
    centre = torch.tensor([2, 0, 2, 1, 0, 2, 2])
    e1, e2 = neighbor_pairs(centre, 4)
    got = sorted(tuple(sorted(p)) for p in zip(e1.tolist(), e2.tolist()))
    want = sorted((a, b) for a, b in itertools.combinations(range(7), 2) if centre[a] == centre[b])
    assert got == want


def test_smooth_at_cutoff_and_finite_hessian_for_collinear_neighbours():
    cfg = preset(["Cu"], cutoff=4.0, angular_cutoff=4.0, n_radial=4)
    near = _descriptors(Atoms("Cu2", positions=[[0, 0, 0], [4.0 - 1e-4, 0, 0]]), cfg)
    assert float(near.abs().max()) < 1e-9
    # perfect fcc has collinear neighbour pairs (cos = -1): Hessians must stay finite
    model = BehlerParrinelloPotential(cfg.to_dict(), hidden=(4,), zbl_outer=None)
    h = evaluate(model, [bulk("Cu", "fcc", a=3.6)], ("hessian",), device="cpu").hessians_eV_A2[0]
    assert np.all(np.isfinite(h))


def _features(n=400, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(6):
        a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 1))
        a.rattle(0.1, seed=k)
        frames.append(a)
    cfg = preset(["Cu"], cutoff=4.5, n_radial=6)
    g = torch.cat([_descriptors(a, cfg) for a in frames]).numpy()
    return g[rng.permutation(len(g))[:n]], SymmetryFunctions(cfg).feature_names()


def test_duplicated_feature_is_flagged_and_pruned():
    g, names = _features()
    x = np.concatenate([g, 2.0 * g[:, [3]] + 1.0], axis=1)  # an exact linear copy of feature 3
    names = names + ["copy_of_3"]
    rep = collinearity_report(x, names)
    assert np.isinf(rep.vif[3]) and np.isinf(rep.vif[-1])
    assert abs(rep.correlation[3, -1] - 1.0) < 1e-12
    assert np.isinf(rep.condition_number) or rep.condition_number > 1e12
    pr = prune_features(x, names, method="correlation", threshold=0.999)
    assert x.shape[1] - 1 not in pr.keep and 3 in pr.keep
    dropped = {d["index"]: d for d in pr.dropped}
    assert dropped[x.shape[1] - 1]["partner"] == names[3]
    rep2 = collinearity_report(x[:, pr.keep])
    assert np.all(np.isfinite(rep2.vif))
    cur = prune_features(x, names, method="cur")
    assert len(cur.keep) < x.shape[1] and not ({3, x.shape[1] - 1} <= set(cur.keep))


@pytest.mark.parametrize("kind", ["pca", "zca", "standard"])
def test_whitening_gives_identity_covariance(kind):
    g, names = _features()
    keep = prune_features(g, names).keep
    x = g[:, keep]
    mean, w = whitening_matrix(x, kind)
    z = (x - mean) @ w
    cov = z.T @ z / len(z)
    if kind == "standard":
        np.testing.assert_allclose(np.diag(cov), 1.0, atol=1e-8)
    else:
        np.testing.assert_allclose(cov, np.eye(len(keep)), atol=1e-8)
    # the torch module applies the same transform
    t = FeatureTransform(g.shape[1], [keep], kind).fit(torch.as_tensor(g), torch.zeros(len(g), dtype=torch.long))
    zt = t.apply(torch.as_tensor(g), 0).numpy()
    covt = (zt - zt.mean(0)).T @ (zt - zt.mean(0)) / len(zt)
    np.testing.assert_allclose(np.diag(covt), 1.0, atol=1e-8)
    if kind != "standard":
        np.testing.assert_allclose(covt, np.eye(len(keep)), atol=1e-8)
    if kind != "pca":  # PCA axes are defined up to sign; the others are unique
        np.testing.assert_allclose(zt, z, atol=1e-8)


def test_whitening_refuses_singular_covariance():
    g, _ = _features()
    x = np.concatenate([g, g[:, :1]], axis=1)
    with pytest.raises(ValueError, match="singular"):
        whitening_matrix(x, "pca")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_descriptors_on_gpu_match_cpu():
    cfg = _cfg("g4")
    atoms = _alloy()
    batch = Batch.from_structures([atoms], device="cuda")
    graph = build_neighbor_graph(batch, cfg.cutoff)
    g = SymmetryFunctions(cfg).to("cuda")(batch.numbers, graph.edge_index, edge_vectors(batch, graph))
    np.testing.assert_allclose(g.cpu().numpy(), _descriptors(atoms, cfg).numpy(), atol=1e-10)
