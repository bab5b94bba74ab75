"""Phonons with a float32 universal model (SevenNet-0, the sevenn wheel's 7net-0) through the
batched analytic-Hessian route, against phonopy driven directly with SevenNet's own ASE
calculator; precision-aware imaginary-mode checks.

The reference here uses no mlip_props code: ``sevenn.calculator.SevenNetCalculator`` (its own
neighbour list and force head, float32), phonopy's symmetry-reduced finite displacements
(0.01 A) of the same 2x2x2 conventional supercell of the same relaxed Si, phonopy's force-constant
fit and symmetrisation. Runs with one torch thread (small tensors: threads only contend).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ase.build import bulk

pytest.importorskip("sevenn")

from mlip_props import load_potential  # noqa: E402
from mlip_props.properties.phonons import phonons  # noqa: E402

from .conftest import FCC_PRIMITIVE_MATRIX  # noqa: E402

#: q-points (reduced coordinates of the fcc primitive cell (a/2)(0,1,1), (1,0,1), (1,1,0)):
#: Gamma, X, L, W and a general point
Q_FCC = np.array([[0, 0, 0], [0.5, 0, 0.5], [0.5, 0.5, 0.5], [0.5, 0.25, 0.75], [0.1, 0.2, 0.3]])


@pytest.fixture(scope="module")
def sevenn_potential():
    return load_potential("sevenn")


@pytest.fixture(scope="module")
def si_float32(one_torch_thread, sevenn_potential):
    """Si phonons from SevenNet-0 in float32: default relaxation (cell + ions), default supercell
    (2x2x2 conventional, 64 atoms), Hessian route, a modest mesh."""
    return phonons(sevenn_potential, bulk("Si", "diamond", a=5.43), dtype=torch.float32, mesh=[8, 8, 8],
                   group_velocity_mesh=None)


def _sevenn_phonopy_si(a_conv: float):
    """Independent phonopy + SevenNetCalculator force constants of diamond Si (conventional cell of
    lattice constant ``a_conv`` times 2x2x2, fcc primitive cell)."""
    from ase import Atoms
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc = SevenNetCalculator("7net-0", device="cpu")
    conv = bulk("Si", "diamond", a=a_conv, cubic=True)
    unit = PhonopyAtoms(symbols=conv.get_chemical_symbols(), cell=conv.cell[:],
                        scaled_positions=conv.get_scaled_positions(), masses=conv.get_masses())
    ph = Phonopy(unit, supercell_matrix=np.diag([2, 2, 2]), primitive_matrix=FCC_PRIMITIVE_MATRIX)
    ph.generate_displacements(distance=0.01)
    forces = []
    for sc in ph.supercells_with_displacements:
        at = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        at.calc = calc
        forces.append(np.array(at.get_forces(), dtype=float))
    ph.forces = forces
    ph.produce_force_constants()
    ph.symmetrize_force_constants()
    return ph


def test_si_sevenn_equals_phonopy_with_the_ase_calculator(si_float32):
    res = si_float32
    assert res.method == "hessian" and res.precision == "float32"
    assert res.relaxed and res.relax_converged
    # same supercell: 64 atoms, the 2x2x2 conventional cell (all widths 2 a)
    a_conv = res.atoms.cell.cellpar()[0] * np.sqrt(2.0)
    assert res.n_supercell_atoms == 64
    np.testing.assert_allclose(res.supercell_widths_A, [2 * a_conv] * 3, rtol=1e-6)
    ref = _sevenn_phonopy_si(a_conv)
    assert len(ref.supercell) == 64
    # the same q-points in Cartesian coordinates (1/A), then in each primitive cell's basis
    q_cart = Q_FCC @ np.linalg.inv(np.asarray(ref.primitive.cell)).T
    q_ours = q_cart @ np.asarray(res.harmonic.primitive.cell).T
    ours = res.frequencies_at(q_ours)
    theirs = np.asarray(ref.run_qpoints(Q_FCC).frequencies)
    assert np.abs(ours - theirs).max() < 0.05, np.abs(ours - theirs).max()
    assert theirs[1, 0] > 3.0  # a real crystal: X TA around 4-6 THz, not a degenerate comparison


def test_si_float32_has_no_spurious_imaginary_modes(si_float32):
    res = si_float32
    # the tolerance knows the precision but is not inflated past usefulness
    assert res.imaginary_tolerance_THz >= 0.05
    assert res.imaginary_tolerance_THz <= 0.1
    assert res.asr_noise_THz < 0.05  # float32 Hessian noise, as a frequency
    assert res.asr_violation_eV_A2 > 0.0  # float32 rounding is seen, and reported ...
    assert res.asr_violation_enforced_eV_A2 < 1e-8  # ... and removed by the enforcement
    assert np.abs(res.gamma_acoustic_THz).max() < 1e-3
    assert not res.imaginary_modes and res.n_imaginary_modes == 0
    assert res.lowest_frequency_THz > -res.imaginary_tolerance_THz
    assert not res.polar and not res.lo_to_missing  # one element: no LO-TO splitting to miss


def test_mg_hcp_float32_has_no_spurious_imaginary_modes(one_torch_thread, sevenn_potential):
    # 3x3x2 (36 atoms, widths 8.3 and 10.4 A) instead of the default 4x4x2: half the test time
    res = phonons(sevenn_potential, bulk("Mg", "hcp", a=3.21, c=5.21), dtype=torch.float32, supercell=[3, 3, 2],
                  mesh=[6, 6, 4], group_velocity_mesh=None)
    assert res.precision == "float32" and res.relax_converged
    assert res.n_supercell_atoms == 36
    assert res.imaginary_tolerance_THz <= 0.1
    assert np.abs(res.gamma_acoustic_THz).max() < 1e-3
    assert not res.imaginary_modes and res.n_imaginary_modes == 0, res.lowest_frequency_THz
    assert not res.polar and not res.lo_to_missing  # a metal
