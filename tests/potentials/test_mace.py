"""MACE model files as batched torch potentials (:mod:`mlip_props.potentials.mace`): what is
specific to MACE model files.

No pretrained MACE weights can be fetched here: ``conftest.mace_model`` builds a small
ScaleShiftMACE with mace-torch's own constructors (random weights, float64) and saves it as a
MACE model file. The physical battery (equal to mace-torch's own ASE calculator on the same
module, Hessian = FD Jacobian with zero row sums, alone = inside a batch, unknown elements named)
runs on it in ``test_universal_battery.py`` (structures and tolerances in
``universal_families.MACE``). Here: model files are refused without ``trusted=True``, cutoff
and elements come from the model, and float32 evaluation agrees with float64. Skipped where
mace-torch is not installed (it pins e3nn 0.4.4, which cannot share an environment with
sevenn's e3nn >= 0.5).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mace")

import mlip_props  # noqa: E402
from mlip_props.potentials.mace import MACEPotential  # noqa: E402

from .conftest import MACE_ELEMENTS  # noqa: E402
from .universal_families import MACE_STRUCTURES  # noqa: E402


@pytest.fixture(scope="module")
def pot(mace_pot):
    return mace_pot


def test_model_files_need_trust(mace_model):
    with pytest.raises(ValueError, match="trusted=True"):
        mlip_props.load_potential(f"mace:{mace_model[0]}")
    with pytest.raises(ValueError, match="trusted=True"):
        MACEPotential(str(mace_model[0]))


def test_cutoff_and_elements_from_the_model(pot):
    assert isinstance(pot, MACEPotential)
    assert pot.cutoff == 4.0 and pot.elements == frozenset(MACE_ELEMENTS)


def test_float32_equals_float64(pot):
    structures = list(MACE_STRUCTURES.values())
    single32 = mlip_props.evaluate(pot, structures, ("energy", "forces", "stress"), dtype=torch.float32)
    for k, atoms in enumerate(structures):
        alone = mlip_props.evaluate(pot, [atoms], ("energy", "forces", "stress"))
        assert single32.energies_eV[k] == pytest.approx(alone.energies_eV[0], abs=1e-4)
        np.testing.assert_allclose(single32.forces_eV_A[k], alone.forces_eV_A[0], atol=1e-4)
