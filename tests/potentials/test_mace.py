"""MACE model files as batched torch potentials (:mod:`mlip_props.potentials.mace`).

No pretrained MACE weights can be fetched here: the test builds a small ScaleShiftMACE with
mace-torch's own constructors (random weights, float64), saves it as a MACE model file, and
checks the adapter against mace-torch's own ASE calculator on the same module (an independent
route: MACE's own neighbour list and force/stress head), against finite differences, for the
analytic Hessian and for batch consistency; and that model files are refused without
``trusted=True``. Skipped where mace-torch is not installed (it pins e3nn 0.4.4, which cannot
share an environment with sevenn's e3nn >= 0.5).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

pytest.importorskip("mace")

import mlip_props  # noqa: E402
from mlip_props.potentials.mace import MACEPotential, import_mace  # noqa: E402

ELEMENTS = [1, 8, 14]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    modules = import_mace()
    from e3nn import o3

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(0)
        block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
        model = modules.ScaleShiftMACE(
            r_max=4.0, num_bessel=4, num_polynomial_cutoff=5, max_ell=2, interaction_cls=block,
            interaction_cls_first=block, num_interactions=2, num_elements=len(ELEMENTS),
            hidden_irreps=o3.Irreps("8x0e + 8x1o"), MLP_irreps=o3.Irreps("8x0e"), gate=torch.nn.functional.silu,
            atomic_energies=np.array([-1.0, -2.0, -3.0]), avg_num_neighbors=8.0, atomic_numbers=ELEMENTS,
            correlation=2, atomic_inter_scale=2.0, atomic_inter_shift=0.1,
        )
    finally:
        torch.set_default_dtype(previous)
    path = tmp_path_factory.mktemp("mace") / "tiny.model"
    torch.save(model, path)
    return path, model


@pytest.fixture(scope="module")
def pot(model_file):
    return mlip_props.load_potential(f"mace:{model_file[0]}", trusted=True)


def _structures():
    si = bulk("Si", "diamond", a=5.43)
    si.rattle(0.05, seed=1)
    water = molecule("H2O")
    water.rattle(0.05, seed=2)
    sio = bulk("SiO", "rocksalt", a=4.6) * (1, 1, 2)
    sio.rattle(0.05, seed=3)
    return [si, water, sio]


def test_model_files_need_trust(model_file):
    with pytest.raises(ValueError, match="trusted=True"):
        mlip_props.load_potential(f"mace:{model_file[0]}")
    with pytest.raises(ValueError, match="trusted=True"):
        MACEPotential(str(model_file[0]))


def test_cutoff_and_elements_from_the_model(pot):
    assert isinstance(pot, MACEPotential)
    assert pot.cutoff == 4.0 and pot.elements == frozenset(ELEMENTS)
    with pytest.raises(ValueError, match=r"structure 1: .*Cu"):
        mlip_props.evaluate(pot, [_structures()[0], bulk("Cu", "fcc", a=3.6)], ("energy",))


def test_matches_mace_calculator(pot, model_file):
    from mace.calculators import MACECalculator

    calc = MACECalculator(models=copy.deepcopy(model_file[1]), device="cpu", default_dtype="float64")
    structures = _structures()
    res = mlip_props.evaluate(pot, structures, ("energy", "forces", "stress"))
    for k, atoms in enumerate(structures):
        ref = atoms.copy()
        ref.calc = calc
        assert res.energies_eV[k] == pytest.approx(ref.get_potential_energy(), abs=1e-10)
        f = ref.get_forces()
        assert np.abs(f).max() > 1e-3  # random weights still give real forces
        np.testing.assert_allclose(res.forces_eV_A[k], f, atol=1e-10)
        if atoms.pbc.all():
            np.testing.assert_allclose(res.stress_eV_A3[k], ref.get_stress(voigt=True), atol=1e-12)


def test_analytic_hessian_is_force_jacobian(pot):
    si, water, _ = _structures()
    res = mlip_props.evaluate(pot, [si, water], ("energy", "hessian"))
    h = 1e-4
    for atoms, hess in zip((si, water), res.hessians_eV_A2):
        n = len(atoms)
        displaced = []
        for k in range(3 * n):
            for sign in (1.0, -1.0):
                b = atoms.copy()
                b.positions[k // 3, k % 3] += sign * h
                displaced.append(b)
        f = mlip_props.evaluate(pot, displaced, ("forces",)).forces_eV_A
        fd = np.array([-(f[2 * k] - f[2 * k + 1]).reshape(-1) / (2 * h) for k in range(3 * n)])
        scale = np.abs(hess).max()
        assert scale > 1e-3
        assert np.abs(hess - hess.T).max() < 1e-10 * scale
        np.testing.assert_allclose(hess, fd, atol=1e-6 * max(scale, 1.0))
        assert np.abs(hess.reshape(3 * n, n, 3).sum(axis=1)).max() < 1e-10 * scale


def test_alone_equals_inside_batch_and_float32(pot):
    structures = _structures() * 4
    together = mlip_props.evaluate(pot, structures, ("energy", "forces", "stress"))
    single32 = mlip_props.evaluate(pot, structures[:3], ("energy", "forces", "stress"), dtype=torch.float32)
    for k in range(3):
        alone = mlip_props.evaluate(pot, [structures[k]], ("energy", "forces", "stress"))
        assert together.energies_eV[k + 9] == pytest.approx(alone.energies_eV[0], abs=1e-12)
        np.testing.assert_allclose(together.forces_eV_A[k + 9], alone.forces_eV_A[0], atol=1e-12)
        assert single32.energies_eV[k] == pytest.approx(alone.energies_eV[0], abs=1e-4)
        np.testing.assert_allclose(single32.forces_eV_A[k], alone.forces_eV_A[0], atol=1e-4)
