"""The physical battery of the universal-model adapters, one parametrised check per physical
truth, for each family (CHGNet, SevenNet-0, MACE model files; ``universal_families.py`` says on
what and with which tolerance, and why):

* energies, forces and stress equal the family's own ASE calculator (an independent route: its
  own neighbour list and force/stress head), in each dtype the family computes in; a structure
  not periodic in all three directions has NaN stress; the compared values are not zeros;
* forces are minus the central finite-difference gradient of the energy, stress is the
  finite-strain derivative of E per volume (float64, :mod:`mlip_props.testing`);
* the analytic Hessian (double backward) is symmetric, equals the finite-difference Jacobian of
  the forces and its rows sum to zero (translation invariance);
* a structure gives the same answers alone and inside a mixed batch;
* an unknown element is a ``ValueError`` naming the structure and the element;
* a potential fixed to float32 computes in float32 inside a float64 batch, equal to the float64
  network to float32 precision;
* the memory autograd saves per edge matches what the chunk planner assumes.

A family whose package is not installed is skipped. One torch thread (small tensors: threads
only contend).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import mlip_props
from mlip_props import testing
from mlip_props.backend.batch import Batch
from mlip_props.backend.evaluate import evaluate_batch
from mlip_props.backend.neighbors import build_neighbor_graph

from .universal_families import FAMILIES

#: CHGNet's own stress head (the reference calculator) warns about its volume tensor
pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True")


@pytest.fixture(scope="module", autouse=True)
def _threads(one_torch_thread):
    yield


def _families(check: str | None = None) -> list:
    return [pytest.param(f, id=f.name) for f in FAMILIES.values() if check is None or getattr(f, check)]


def _pot(request, family):
    return request.getfixturevalue(f"{family.name}_pot")


@pytest.mark.parametrize("family,dtype", [
    pytest.param(f, d, id=f"{f.name}-{str(d).split('.')[-1]}") for f in FAMILIES.values() for d in f.ase.dtypes])
def test_matches_own_ase_calculator(request, family, dtype):
    pot = _pot(request, family)
    own = request.getfixturevalue(f"{family.name}_reference")
    check = family.ase
    names = list(family.structures)
    res = mlip_props.evaluate(pot, [family.structures[n] for n in names], ("energy", "forces", "stress"), dtype=dtype)
    for k, name in enumerate(names):
        energy, forces, stress = own[name]
        per = len(forces) if check.energy_per_atom else 1
        assert abs(res.energies_eV[k] - energy) / per <= check.energy_eV, name
        np.testing.assert_allclose(res.forces_eV_A[k], forces, atol=check.forces_atol_eV_A, err_msg=name)
        np.testing.assert_allclose(res.stress_eV_A3[k], stress, atol=check.stress_atol_eV_A3, equal_nan=True,
                                   err_msg=name)
        if not family.structures[name].pbc.all():  # not periodic: no stress
            assert np.isnan(res.stress_eV_A3[k]).all(), name
    for name, low in check.min_forces_eV_A.items():  # the comparison is not of zeros
        assert np.abs(res.forces_eV_A[names.index(name)]).max() > low, name
    for name, low in check.min_stress_eV_A3.items():
        assert np.abs(res.stress_eV_A3[names.index(name)]).max() > low, name
    for name, (lo, hi) in check.energy_per_atom_eV.items():
        assert lo < res.energies_eV[names.index(name)] / len(family.structures[name]) < hi, name


@pytest.mark.parametrize("family", _families("derivatives"))
def test_forces_and_stress_are_energy_derivatives(request, family):
    pot = _pot(request, family)
    check = family.derivatives
    for name in check.force_names:
        err = testing.force_error(pot, family.structures[name], h=check.force_h_A, relative=check.relative)
        assert err <= check.force_tol, name
    for name in check.stress_names:
        atoms = family.structures[name]
        err = testing.stress_error(pot, atoms, h=check.stress_h, relative=check.relative)
        assert err <= check.stress_tol, name
        if check.min_stress_eV_A3 is not None:
            stress = mlip_props.evaluate(pot, [atoms], ("energy", "stress")).stress_eV_A3[0]
            assert np.abs(stress).max() > check.min_stress_eV_A3, name


@pytest.mark.parametrize("family", _families())
def test_analytic_hessian_float64(request, family):
    pot = _pot(request, family)
    check = family.hessian
    structures = [family.structures[n] for n in check.names]
    hessians = mlip_props.evaluate(pot, structures, ("energy", "hessian")).hessians_eV_A2
    for name, atoms, hess in zip(check.names, structures, hessians):
        n = len(atoms)
        assert hess.shape == (3 * n, 3 * n), name
        scale = float(np.abs(hess).max())
        assert scale > check.min_scale_eV_A2, name  # real force constants (eV/A^2)
        assert np.abs(hess - hess.T).max() < check.asym_rel * scale, name
        np.testing.assert_allclose(hess, testing.force_jacobian_fd(pot, atoms, check.h_A), rtol=check.fd_rtol,
                                   atol=check.fd_atol(scale), err_msg=name)
        row_sums = hess.reshape(3 * n, n, 3).sum(axis=1)  # sum over atoms j of d2E/dx_i dx_j
        assert np.abs(row_sums).max() < check.asr_tol(scale), name


@pytest.mark.parametrize("family", _families())
def test_alone_equals_inside_mixed_batch(request, family):
    pot = _pot(request, family)
    check = family.batch
    for frames, picks in check.batches(family.structures):
        for k, err in zip(picks, testing.batch_consistency_errors(pot, frames, picks, dtype=check.dtype)):
            for key, tol in check.tol.items():
                if tol is not None:
                    assert err[key] <= tol, f"structure {k} of {len(frames)}: {key} {err[key]:.3g} > {tol:g}"


@pytest.mark.parametrize("family", _families())
def test_unknown_element_names_structure_and_element(request, family):
    pot = _pot(request, family)
    first = next(iter(family.structures.values()))
    with pytest.raises(ValueError, match=rf"structure 1: .*{family.unknown_symbol}"):
        mlip_props.evaluate(pot, [first, family.unknown_element], ("energy",))


@pytest.mark.parametrize("family", _families("fixed_float32"))
def test_fixed_compute_precision_follows_gradients(request, family):
    """dtype='float32' computes in float32 inside a float64 batch: equal to the float64 network
    to float32 precision; the float64 network's weights are the exact float32 ones."""
    pot = _pot(request, family)
    p32 = family.fixed_float32()
    si = family.structures["Si"]
    a = mlip_props.evaluate(p32, [si], ("energy", "forces", "stress"))
    b = mlip_props.evaluate(pot, [si], ("energy", "forces", "stress"), dtype=torch.float64)
    assert a.energies_eV[0] == pytest.approx(b.energies_eV[0], abs=1e-4)
    np.testing.assert_allclose(a.forces_eV_A[0], b.forces_eV_A[0], atol=1e-4)
    np.testing.assert_allclose(a.stress_eV_A3[0], b.stress_eV_A3[0], atol=1e-5)
    assert a.energies_eV[0] != b.energies_eV[0]  # the float32 network did run


@pytest.mark.parametrize("family", _families("bytes_per_edge_structures"))
def test_bytes_per_edge_matches_saved_autograd_memory(request, family):
    """The chunk planner's per-edge memory is what autograd really saves (float64 pass)."""
    pot = _pot(request, family)
    for build in family.bytes_per_edge_structures:
        atoms = build()
        batch = Batch.from_structures([atoms], dtype=torch.float64)
        graph = build_neighbor_graph(batch, pot.cutoff)
        storages: dict[tuple[int, int], int] = {}

        def pack(t):
            s = t.untyped_storage()
            storages[(s.data_ptr(), s.nbytes())] = s.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            evaluate_batch(pot, batch, ("energy", "forces", "stress"), graph=graph)
        per_edge = sum(storages.values()) / graph.n_edges
        assert 0.5 * pot.bytes_per_edge < per_edge < 2.0 * pot.bytes_per_edge, atoms.get_chemical_formula()
