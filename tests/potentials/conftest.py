"""The universal potentials and their own ASE calculators, built once for every test file of
this folder (``<family>_pot``, ``<family>_calculator``, ``<family>_reference``); each skips
where its package is not installed. The structures are in ``universal_families.py``."""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms

import mlip_props

from .universal_families import CHGNET_STRUCTURES, MACE_STRUCTURES, SEVENN_STRUCTURES

#: element numbers of the small MACE model built below
MACE_ELEMENTS = [1, 8, 14]


def _reference(calculator, structures: dict[str, Atoms], prepare=lambda a: a.copy()) -> dict:
    """The calculator on each structure: (energy eV, forces eV/A, stress eV/A^3 Voigt, NaN when
    the structure is not periodic in all three directions)."""
    out = {}
    for name, atoms in structures.items():
        ref = prepare(atoms)
        ref.calc = calculator
        stress = ref.get_stress(voigt=True) if atoms.pbc.all() else np.full(6, np.nan)
        out[name] = (ref.get_potential_energy(), ref.get_forces(), stress)
    return out


# --- CHGNet ----------------------------------------------------------------------------------
@pytest.fixture(scope="package")
def chgnet_pot():
    pytest.importorskip("chgnet")
    return mlip_props.load_potential("chgnet")


@pytest.fixture(scope="package")
def chgnet_calculator():
    pytest.importorskip("chgnet")
    from chgnet.model.dynamics import CHGNetCalculator

    return CHGNetCalculator(use_device="cpu")


def as_periodic(atoms: Atoms) -> Atoms:
    """The same atoms in a fully periodic cell with no periodic image within CHGNet's 6 A."""
    a = atoms.copy()
    if not a.pbc.any():
        a.center(vacuum=6.0)
    a.pbc = True
    return a


@pytest.fixture(scope="package")
def chgnet_reference(chgnet_calculator):
    """CHGNet's ASE calculator (pymatgen neighbour search, CHGNet's own graph converter, bond/angle
    graphs and force/stress head) on the structures made periodic (CHGNet's calculator needs a
    cell): the slab and the molecule with more vacuum than the 6 A cutoff."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Converting a tensor with requires_grad=True")
        return _reference(chgnet_calculator, CHGNET_STRUCTURES, as_periodic)


# --- SevenNet-0 ------------------------------------------------------------------------------
@pytest.fixture(scope="package")
def sevenn_pot():
    pytest.importorskip("sevenn")
    return mlip_props.load_potential("sevenn")


@pytest.fixture(scope="package")
def sevenn_calculator():
    pytest.importorskip("sevenn")
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SevenNetCalculator("7net-0", device="cpu")


@pytest.fixture(scope="package")
def sevenn_reference(sevenn_calculator):
    """SevenNet's ASE calculator (its own neighbour list, its own force/stress head)."""
    return _reference(sevenn_calculator, SEVENN_STRUCTURES)


# --- MACE model files ------------------------------------------------------------------------
@pytest.fixture(scope="package")
def mace_model(tmp_path_factory):
    """A small ScaleShiftMACE built with mace-torch's own constructors (random weights, float64;
    no pretrained MACE weights can be fetched here), saved as a MACE model file: (path, module)."""
    pytest.importorskip("mace")
    from e3nn import o3

    from mlip_props.potentials.mace import import_mace

    modules = import_mace()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(0)
        block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
        model = modules.ScaleShiftMACE(
            r_max=4.0, num_bessel=4, num_polynomial_cutoff=5, max_ell=2, interaction_cls=block,
            interaction_cls_first=block, num_interactions=2, num_elements=len(MACE_ELEMENTS),
            hidden_irreps=o3.Irreps("8x0e + 8x1o"), MLP_irreps=o3.Irreps("8x0e"), gate=torch.nn.functional.silu,
            atomic_energies=np.array([-1.0, -2.0, -3.0]), avg_num_neighbors=8.0, atomic_numbers=MACE_ELEMENTS,
            correlation=2, atomic_inter_scale=2.0, atomic_inter_shift=0.1,
        )
    finally:
        torch.set_default_dtype(previous)
    path = tmp_path_factory.mktemp("mace") / "tiny.model"
    torch.save(model, path)
    return path, model


@pytest.fixture(scope="package")
def mace_pot(mace_model):
    return mlip_props.load_potential(f"mace:{mace_model[0]}", trusted=True)


@pytest.fixture(scope="package")
def mace_reference(mace_model):
    """mace-torch's own ASE calculator on the same module (its own neighbour list and force/stress head)."""
    from mace.calculators import MACECalculator

    calc = MACECalculator(models=copy.deepcopy(mace_model[1]), device="cpu", default_dtype="float64")
    return _reference(calc, MACE_STRUCTURES)
