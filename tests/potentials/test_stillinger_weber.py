"""Stillinger-Weber Si (PRB 31, 5262 (1985)): derivatives, smoothness, lattice and elastic constants."""
import numpy as np
import pytest
import torch
from ase.build import bulk

from mlip_props import evaluate, load_potential
from mlip_props.potentials import StillingerWeber, load_model_file, save_potential
from mlip_props.potentials.stillinger_weber import triplets
from mlip_props.properties.elastic import elastic_tensor
from mlip_props.properties.relax import relax

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def sw():
    return load_potential("sw")


def _rattled(seed=0):
    a = bulk("Si", "diamond", a=5.43, cubic=True)
    a.rattle(0.08, seed=seed)
    a.set_cell(a.cell[:] @ (np.eye(3) + [[0.01, 0.02, 0], [0.02, -0.01, 0.005], [0, 0.005, 0.015]]), scale_atoms=True)
    return a


def test_forces_match_finite_differences(sw):
    a = _rattled()
    res = evaluate(sw, [a], ("energy", "forces"))
    f = res.forces_eV_A[0]
    h = 1e-5
    fd = np.zeros_like(f)
    for i in range(len(a)):
        for d in range(3):
            e = []
            for s in (1, -1):
                b = a.copy()
                b.positions[i, d] += s * h
                e.append(evaluate(sw, [b], ("energy",)).energies_eV[0])
            fd[i, d] = -(e[0] - e[1]) / (2 * h)
    assert np.abs(f).max() > 0.1  # a real test: forces are not zero
    assert np.allclose(f, fd, atol=1e-6)


def test_stress_matches_strain_derivative(sw):
    a = _rattled(1)
    s = evaluate(sw, [a], ("energy", "stress")).stress_eV_A3[0]
    v = a.get_volume()
    h = 1e-6
    for k, (p, q) in enumerate(((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))):
        e = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[p, q] += 0.5 * sign * h
            eps[q, p] += 0.5 * sign * h
            b = a.copy()
            b.set_cell(a.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
            e.append(evaluate(sw, [b], ("energy",)).energies_eV[0])
        # engineering shear: d/d(gamma) = 1/2 d/d(eps_pq) for pq off-diagonal counted twice
        assert s[k] == pytest.approx((e[0] - e[1]) / (2 * h) / v, abs=1e-7)


def test_hessian_symmetric_and_matches_forces(sw):
    a = bulk("Si", "diamond", a=5.43)
    a.rattle(0.05, seed=2)
    hess = evaluate(sw, [a], ("energy", "hessian")).hessians_eV_A2[0]
    assert np.allclose(hess, hess.T, atol=1e-8)
    h = 1e-5
    col = []
    for s in (1, -1):
        b = a.copy()
        b.positions[0, 0] += s * h
        col.append(evaluate(sw, [b], ("forces",)).forces_eV_A[0].reshape(-1))
    assert np.allclose(hess[:, 0], -(col[0] - col[1]) / (2 * h), atol=1e-5)


def test_smooth_at_cutoff(sw):
    # a dimer stretched through the cutoff a*sigma: energy and force go to zero continuously
    from ase import Atoms

    rc = sw.cutoff
    es, fs = [], []
    for r in (rc - 0.02, rc - 0.005, rc - 1e-4, rc + 1e-4):
        d = Atoms("Si2", positions=[[0, 0, 0], [r, 0, 0]])
        out = evaluate(sw, [d], ("energy", "forces"))
        es.append(out.energies_eV[0])
        fs.append(abs(out.forces_eV_A[0][0, 0]))
    assert es[-1] == 0.0 and fs[-1] == 0.0
    assert abs(es[2]) < 1e-12 and fs[2] < 1e-10
    assert abs(es[0]) > abs(es[1]) > abs(es[2])


def test_triplets_count():
    # diamond: 4 neighbours per atom -> 4*3 ordered pairs per atom
    sw = StillingerWeber()
    from mlip_props.backend import Batch
    from mlip_props.backend.neighbors import build_neighbor_graph

    batch = Batch.from_structures([bulk("Si", "diamond", a=5.43, cubic=True)])
    g = build_neighbor_graph(batch, sw.cutoff)
    e1, e2 = triplets(g.edge_index, batch.n_total)
    assert len(e1) == 8 * 12
    assert bool((g.edge_index[0, e1] == g.edge_index[0, e2]).all()) and bool((e1 != e2).all())


def test_diamond_lattice_energy_and_elastic_constants(sw):
    # Stillinger & Weber 1985: a0 = 5.431 A, E = -2 eps = -4.3366 eV/atom; elastic constants of SW Si
    # (Balamane, Halicioglu and Tiller, PRB 46, 2250 (1992)): C11 151, C12 76, C44 56 GPa
    r = relax(sw, bulk("Si", "diamond", a=5.3), relax_cell=True, smax_GPa=1e-4)
    a0 = (4 * r.atoms.get_volume()) ** (1 / 3)
    assert a0 == pytest.approx(5.431, abs=0.002)
    assert r.energy_eV / 2 == pytest.approx(-2 * 2.1683, abs=1e-4)
    el = elastic_tensor(sw, r.atoms)
    c = el.C_GPa
    assert c[0, 0] == pytest.approx(151, rel=0.02)
    assert c[0, 1] == pytest.approx(76, rel=0.02)
    assert c[3, 3] == pytest.approx(56, rel=0.03)


def test_model_file_roundtrip(tmp_path, sw):
    p = save_potential(sw, tmp_path / "sw.pt")
    back = load_model_file(p)
    a = _rattled(3)
    e1 = evaluate(sw, [a], ("energy",)).energies_eV[0]
    e2 = evaluate(back, [a], ("energy",)).energies_eV[0]
    assert e1 == e2


def test_float32_close_to_float64(sw):
    a = _rattled(4)
    e64 = evaluate(sw, [a], ("energy",)).energies_eV[0]
    e32 = evaluate(sw, [a], ("energy",), dtype=torch.float32).energies_eV[0]
    assert e32 == pytest.approx(e64, rel=1e-5)


@pytest.mark.parametrize("builder", ["cluster", "small_cell", "triclinic"])
def test_physical_battery_on_si_structures(sw, builder):
    # the project's battery (mlip_props.testing) on Si structures with three-body terms active
    from tests.backend.structures import cluster, small_cell, triclinic_cell

    from mlip_props import testing

    a = {"cluster": cluster, "small_cell": small_cell, "triclinic": triclinic_cell}[builder](2.35, "Si")
    assert testing.force_error(sw, a) < 1e-6
    asym, fd = testing.hessian_errors(sw, a)
    assert asym < 1e-10 and fd < 1e-6
    err = testing.invariance_errors(sw, a)
    assert err["rotated_forces_eV_A"] < 1e-8 and err["permuted_forces_eV_A"] < 1e-8
    if a.pbc.all():
        assert testing.stress_error(sw, a) < 1e-6
        assert testing.extensivity_error(sw, a) < 1e-10
        assert testing.acoustic_sum_rule_violation(sw, a) < 1e-8
