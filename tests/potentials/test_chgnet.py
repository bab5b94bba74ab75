"""CHGNet 0.3.0 as a batched torch potential of the backend (:mod:`mlip_props.potentials.chgnet`):
what is specific to CHGNet. The physical battery (equal to CHGNet's own ASE calculator in float32
and float64, forces = -FD gradient, stress = finite strain, Hessian = FD Jacobian with zero row
sums, alone = inside a mixed batch, unknown elements named, float32 compute precision, saved
memory per edge) runs on CHGNet in ``test_universal_battery.py`` (structures and tolerances in
``universal_families.CHGNET``). Here:

* the registry builds the native and the ASE routes, with CHGNet 0.3.0's cutoffs and elements;
* CHGNet's raw stress (GPa) converts to the backend's eV/A^3 with the same sign;
* an isolated atom (no edge at all) has a finite energy and zero forces;
* bad model names, unreadable checkpoints and dtypes are refused.

The weights ship inside the chgnet wheel: nothing here touches the network. One torch thread
(small tensors: threads only contend).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms, units

pytest.importorskip("chgnet")

import mlip_props  # noqa: E402
from mlip_props.potentials.chgnet import CHGNetPotential  # noqa: E402

from .universal_families import CHGNET_STRUCTURES as STRUCTURES  # noqa: E402

VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
#: CHGNet's own stress head (the reference calculator) warns about its volume tensor
pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True")


@pytest.fixture(scope="module", autouse=True)
def _threads(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def pot(chgnet_pot):
    return chgnet_pot


def test_registry_builds_native_and_ase_routes(pot):
    assert isinstance(pot, CHGNetPotential)
    assert pot.cutoff == 6.0 and pot.bond_cutoff == 3.0  # CHGNet 0.3.0's atom and bond graphs
    assert pot.elements == frozenset(range(1, 95))
    assert getattr(mlip_props.load_potential("chgnet-ase"), "is_oracle", False)
    # weights_only checkpoints need no opt-in, and a global opt-in does not break the spec
    assert isinstance(mlip_props.load_potential("chgnet", trusted=True), CHGNetPotential)


def test_raw_chgnet_stress_is_GPa_with_the_backend_sign(pot, chgnet_calculator):
    """CHGNet's model returns stress in GPa as (1/V) dE/d(strain) (ASE's sign); its calculator
    multiplies by ``units.GPa``. The backend's eV/A^3 equals the raw GPa figure / 160.2."""
    from pymatgen.io.ase import AseAtomsAdaptor

    gan = STRUCTURES["GaN"]
    raw = chgnet_calculator.model.predict_structure(AseAtomsAdaptor.get_structure(gan), task="efs")
    raw_voigt_GPa = np.array([raw["s"][a, b] for a, b in VOIGT])
    ours = mlip_props.evaluate(pot, [gan], ("energy", "stress"), dtype=torch.float32).stress_eV_A3[0]
    np.testing.assert_allclose(ours, raw_voigt_GPa * units.GPa, atol=1e-5)
    assert np.abs(raw_voigt_GPa).max() > 1.0  # GPa-sized, not eV/A^3-sized


def test_isolated_atom_without_edges(pot):
    """A lone He atom (no edge within 6 A; also inside the battery's mixed batches): a finite
    energy (its elemental reference) and exactly zero forces."""
    lone = mlip_props.evaluate(pot, [Atoms("He", positions=[[0.0, 0.0, 0.0]])], ("energy", "forces"))
    assert np.isfinite(lone.energies_eV[0]) and np.abs(lone.forces_eV_A[0]).max() == 0.0


def test_bad_model_and_dtype_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown CHGNet model"):
        mlip_props.load_potential("chgnet:model=9.9.9")
    bad = tmp_path / "not_a_checkpoint.pth.tar"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable CHGNet checkpoint"):
        CHGNetPotential(model=str(bad))
    with pytest.raises(ValueError, match="dtype"):
        CHGNetPotential(dtype="float16")
