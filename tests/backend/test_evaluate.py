import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from mlip_props import evaluate, evaluate_batch, load_potential
from mlip_props.backend import Batch, Potential
from mlip_props.potentials import LennardJones, Morse

from .structures import cluster, triclinic_cell


def test_emt_oracle_agrees_with_ase():
    emt = load_potential("emt")
    frames = []
    for k, sym in enumerate(["Cu", "Al", "Au"]):
        a = bulk(sym, "fcc", a={"Cu": 3.6, "Al": 4.05, "Au": 4.08}[sym], cubic=True).repeat((2, 1, 1))
        a.rattle(0.05, seed=k)
        frames.append(a)
    res = evaluate(emt, frames, ("energy", "forces", "stress"))
    for k, a in enumerate(frames):
        a.calc = EMT()
        assert res.energies_eV[k] == pytest.approx(a.get_potential_energy(), abs=1e-12)
        assert np.allclose(res.forces_eV_A[k], a.get_forces(), atol=1e-12)
        assert np.allclose(res.stress_eV_A3[k], a.get_stress(), atol=1e-12)


def test_emt_finite_difference_hessian_matches_its_forces():
    emt = load_potential("emt")
    a = bulk("Cu", "fcc", a=3.6, cubic=True)
    a.rattle(0.02, seed=3)
    h = evaluate(emt, [a], ("energy", "hessian")).hessians_eV_A2[0]
    assert np.allclose(h, h.T)
    assert np.abs(h.reshape(12, 4, 3).sum(axis=1)).max() < 1e-3  # sum rule to FD accuracy


def test_lj_stress_sign_matches_ase_convention():
    """Compressed crystal: positive pressure, negative (ASE) stress."""
    lj = LennardJones(0.4, 2.3)
    s = evaluate(lj, [bulk("Cu", "fcc", a=3.2)], ("energy", "stress")).stress_GPa[0]
    assert np.all(s[:3] < 0)


def test_molecule_stress_is_nan():
    s = evaluate(LennardJones(0.4, 2.3), [cluster(2.5)], ("energy", "stress")).stress_eV_A3[0]
    assert np.isnan(s).all()


def test_chunking_by_memory_budget_gives_identical_results():
    lj = LennardJones(0.4, 2.3)
    frames = [triclinic_cell(2.55, seed=k) for k in range(30)]
    big = evaluate(lj, frames, ("energy", "forces", "stress", "hessian"))
    tiny = evaluate(lj, frames, ("energy", "forces", "stress", "hessian"), memory_budget=50_000)
    assert np.allclose(big.energies_eV, tiny.energies_eV, rtol=1e-12)
    assert all(np.allclose(a, b, atol=1e-12) for a, b in zip(big.forces_eV_A, tiny.forces_eV_A))
    assert np.allclose(big.stress_eV_A3, tiny.stress_eV_A3, atol=1e-14)
    assert all(np.allclose(a, b, atol=1e-10) for a, b in zip(big.hessians_eV_A2, tiny.hessians_eV_A2))


def test_float32_on_request():
    lj = LennardJones(0.4, 2.3)
    a = triclinic_cell(2.55)
    r64 = evaluate(lj, [a], ("energy", "forces"))
    r32 = evaluate(lj, [a], ("energy", "forces"), dtype=torch.float32)
    assert r32.energies_eV.dtype == np.float32
    assert r32.energies_eV[0] == pytest.approx(r64.energies_eV[0], rel=1e-5)


def test_pymatgen_structures_are_accepted():
    from pymatgen.io.ase import AseAtomsAdaptor

    a = triclinic_cell(2.55)
    lj = LennardJones(0.4, 2.3)
    e_ase = evaluate(lj, [a], ("energy",)).energies_eV[0]
    e_pmg = evaluate(lj, [AseAtomsAdaptor.get_structure(a)], ("energy",)).energies_eV[0]
    assert e_pmg == pytest.approx(e_ase, rel=1e-12)


def test_energy_and_forces_continuous_at_cutoff():
    lj = LennardJones(0.4, 2.3)
    rc = lj.cutoff
    r = np.array([rc - 1e-3, rc - 1e-6, rc + 1e-6])
    res = evaluate(lj, [Atoms("Ar2", positions=[[0, 0, 0], [x, 0, 0]]) for x in r], ("energy", "forces"))
    assert abs(res.energies_eV[1]) < 1e-12 and res.energies_eV[2] == 0.0
    assert abs(res.energies_eV[0]) < 1e-8
    assert abs(res.forces_eV_A[1][0, 0]) < 1e-9


class _ToyCommittee(Potential):
    """Two Morse members with different depths: per-atom energies (N, 2)."""

    n_members = 2

    def __init__(self):
        super().__init__(cutoff=8.0)
        self.members = torch.nn.ModuleList([Morse(0.30, 1.36, 2.87, cutoff=8.0), Morse(0.36, 1.36, 2.87, cutoff=8.0)])

    def forward(self, graph):
        return torch.stack([m(graph) for m in self.members], dim=-1)


def test_committee_member_axis_matches_members():
    com = _ToyCommittee()
    frames = [triclinic_cell(2.6), bulk("Cu", "fcc", a=3.61)]
    res = evaluate(com, frames, ("energy", "forces", "stress"))
    assert res.energies_eV.shape == (2, 2)
    assert res.stress_eV_A3.shape == (2, 2, 6)
    for m, member in enumerate(com.members):
        single = evaluate(member, frames, ("energy", "forces", "stress"))
        assert np.allclose(res.energies_eV[:, m], single.energies_eV, rtol=1e-12)
        assert np.allclose(res.forces_eV_A[0][m], single.forces_eV_A[0], atol=1e-12)
        assert np.allclose(res.stress_eV_A3[:, m], single.stress_eV_A3, atol=1e-14)


def test_evaluate_batch_returns_tensors_for_torch_and_oracle():
    frames = [bulk("Cu", "fcc", a=3.6), bulk("Cu", "fcc", a=3.7)]
    batch = Batch.from_structures(frames)
    for pot in (LennardJones(0.4, 2.3), load_potential("emt")):
        out = evaluate_batch(pot, batch, ("energy", "forces", "stress"))
        assert out.energies.shape == (2,) and out.forces.shape == (2, 3) and out.stress.shape == (2, 6)


def test_many_structures_in_chunks():
    """10,000 small structures run through the chunker without exhausting memory."""
    lj = LennardJones(0.4, 2.3)
    base = bulk("Cu", "fcc", a=3.6)
    frames = []
    for k in range(10_000):
        a = base.copy()
        a.set_cell(base.cell * (1 + 1e-4 * (k % 50)), scale_atoms=True)
        frames.append(a)
    res = evaluate(lj, frames, ("energy", "forces", "stress"), memory_budget=64 << 20)
    assert res.energies_eV.shape == (10_000,)
    assert np.all(np.isfinite(res.stress_eV_A3))
    assert res.energies_eV[0] == pytest.approx(res.energies_eV[50], rel=1e-12)
