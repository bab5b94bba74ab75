"""Shared fixtures of the fitting tests: one small EMT-Cu data set and one small fitted committee.

Torch runs single-threaded here: on the shared 2-core CI machine two threads under load are
measured 10-50x slower per small tensor operation than one.
"""
import numpy as np
import pytest
import torch
from ase.build import bulk

from mlip_props.backend import emt_oracle


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def cu_frames():
    """~70 EMT-labelled Cu structures (<= 16 atoms): rattles, strains, MD, two Hessians, the isolated atom."""
    from mlip_props.fitting import sample

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return sample(bulk("Cu", "fcc", a=3.61, cubic=True), emt_oracle(), n=70,
                      strategies={"rattle": 0.4, "strain": 0.3, "md": 0.3}, max_atoms=16, md_stride=10,
                      md_equilibration=40, seed=3, n_hessians=2)
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="session")
def cu_model(cu_frames, tmp_path_factory):
    """A 2-member committee fitted to ``cu_frames`` (small, quick; accuracy is not the point)."""
    from mlip_props.fitting import fit

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = tmp_path_factory.mktemp("fit") / "cu.pt"
        model, report = fit(cu_frames, path, committee=2, hidden=(16, 16), epochs=150, patience=40,
                            progress=False, seed=1)
        return model, report, path
    finally:
        torch.set_num_threads(n)
