"""SevenNet-0 as a batched torch potential of the backend (:mod:`mlip_props.potentials.sevenn`):
what is specific to SevenNet. The physical battery (equal to SevenNet's own ASE calculator in
float32 and float64, forces = -FD gradient, stress = finite strain, Hessian = FD Jacobian with
zero row sums, alone = inside a batch of 50 mixed structures, unknown elements named, float32
compute precision, saved memory per edge) runs on SevenNet in ``test_universal_battery.py``
(structures and tolerances in ``universal_families.SEVENN``). Here:

* the registry builds the native and the ASE routes, with the checkpoint's cutoff and elements;
* the float32 Hessian (the model's own precision) equals the float64 one to float32 accuracy;
* untrusted checkpoint files, unknown model names and dtypes are refused with clear errors.

The checkpoint ships inside the sevenn wheel: nothing here touches the network. One torch
thread (small tensors: threads only contend).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("sevenn")

import mlip_props  # noqa: E402
from mlip_props.potentials.sevenn import SevenNetPotential  # noqa: E402

from .universal_families import SEVENN_STRUCTURES as STRUCTURES  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _threads(one_torch_thread):  # small tensors: a second thread only contends
    yield


@pytest.fixture(scope="module")
def pot(sevenn_pot):
    return sevenn_pot


def test_registry_builds_native_and_ase_routes(pot):
    assert isinstance(pot, SevenNetPotential)
    assert pot.cutoff == 5.0  # SevenNet-0's checkpoint cutoff
    assert {1, 8, 12, 14, 29, 31, 7}.issubset(pot.elements) and 84 not in pot.elements
    assert getattr(mlip_props.load_potential("sevenn-ase"), "is_oracle", False)


def test_analytic_hessian_float32(pot):
    """The model's own precision: the float32 Hessian equals the float64 one to float32
    accuracy, and its asymmetry and acoustic-sum-rule violation stay at float32 noise
    (~1e-6 of the largest force constant, far below a physical 0.01 THz). The float64 Hessian
    itself is checked against finite differences in the battery."""
    structures = [STRUCTURES["Si"], STRUCTURES["H2O"]]
    ref64 = mlip_props.evaluate(pot, structures, ("energy", "hessian")).hessians_eV_A2
    res = mlip_props.evaluate(pot, structures, ("energy", "hessian"), dtype=torch.float32)
    for atoms, hess, ref in zip(structures, res.hessians_eV_A2, ref64):
        n, scale = len(atoms), np.abs(ref).max()
        np.testing.assert_allclose(hess, ref, atol=1e-4 * scale)
        assert np.abs(hess - hess.T).max() < 1e-5 * scale
        assert np.abs(hess.reshape(3 * n, n, 3).sum(axis=1)).max() < 1e-5 * scale


def test_checkpoint_files_need_trust(tmp_path):
    import sevenn._const

    path = tmp_path / "my_checkpoint.pth"
    shutil.copy(sevenn._const.SEVENNET_0_11Jul2024, path)
    with pytest.raises(ValueError, match="trusted=True"):
        mlip_props.load_potential(f"sevenn:model={path}")
    with pytest.raises(ValueError, match="unknown SevenNet model"):
        mlip_props.load_potential("sevenn:model=7net-nonexistent")
    with pytest.raises(ValueError, match="dtype"):
        SevenNetPotential(dtype="float16")
