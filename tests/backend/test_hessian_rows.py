"""The backend's Hessian-row engine against the full autograd Hessian and finite differences of forces."""
import numpy as np
import torch
from ase.build import bulk

from mlip_props import load_potential
from mlip_props.backend import Potential, evaluate
from mlip_props.backend.hessian_rows import evaluate_hessian_rows


def _cells():
    rng = np.random.default_rng(0)
    out = []
    for a, rep in ((bulk("Ar", "fcc", a=5.26, cubic=True), (2, 1, 1)), (bulk("Ar", "hcp", a=3.72, c=6.07), (2, 2, 1))):
        s = a.repeat(rep)
        s.positions += rng.normal(scale=0.05, size=s.positions.shape)  # no symmetry to hide errors
        out.append(s)
    return out


def test_rows_equal_full_hessian_rows_and_finite_differences():
    lj = load_potential("lj:epsilon=0.0104,sigma=3.4")
    cells = _cells()
    rows = [[0, 3], [5]]  # different row counts: separate chunks
    res = evaluate_hessian_rows(lj, cells, rows)
    full = evaluate(lj, cells, ("energy", "forces", "hessian"))
    for k, (s, r) in enumerate(zip(cells, rows)):
        n = len(s)
        h = np.asarray(full.hessians_eV_A2[k]).reshape(n, 3, 3 * n)[r].reshape(3 * len(r), 3 * n)
        np.testing.assert_allclose(res.hessians_eV_A2[k], h, atol=1e-12)
        np.testing.assert_allclose(res.forces_eV_A[k], full.forces_eV_A[k], atol=1e-12)
        assert abs(res.energies_eV[k] - full.energies_eV[k]) < 1e-12
        # row (atom i, direction a) = -dF/dx_{i a}: central differences of the forces
        i, a, d = r[0], 1, 1e-4
        plus, minus = s.copy(), s.copy()
        plus.positions[i, a] += d
        minus.positions[i, a] -= d
        fp, fm = evaluate(lj, [plus, minus], ("energy", "forces")).forces_eV_A
        np.testing.assert_allclose(res.hessians_eV_A2[k][a], -(fp - fm).reshape(-1) / (2 * d), atol=1e-6)


class TwoMembers(Potential):
    """A committee of two different LJ potentials."""

    def __init__(self, a, b):
        super().__init__(max(a.cutoff, b.cutoff), None)
        self.a, self.b, self.n_members = a, b, 2

    def forward(self, graph):
        return torch.stack([self.a(graph), self.b(graph)], dim=-1)


def test_committee_rows_are_each_members_rows():
    a = load_potential("lj:epsilon=0.0104,sigma=3.4")
    b = load_potential("lj:epsilon=0.0120,sigma=3.3")
    cells = _cells()
    rows = [[1], [0, 2]]
    both = evaluate_hessian_rows(TwoMembers(a, b), cells, rows)
    assert both.n_members == 2
    for m, pot in enumerate((a, b)):
        alone = evaluate_hessian_rows(pot, cells, rows)
        mine = both.member(m)
        for k in range(len(cells)):
            np.testing.assert_allclose(mine.hessians_eV_A2[k], alone.hessians_eV_A2[k], atol=1e-12)
            np.testing.assert_allclose(mine.forces_eV_A[k], alone.forces_eV_A[k], atol=1e-12)
        np.testing.assert_allclose(mine.energies_eV, alone.energies_eV, atol=1e-12)
    assert np.abs(both.member(0).hessians_eV_A2[1] - both.member(1).hessians_eV_A2[1]).max() > 1e-3


def test_row_outside_structure_is_named():
    import pytest

    with pytest.raises(ValueError, match="structure 1"):
        evaluate_hessian_rows(load_potential("lj:epsilon=0.0104,sigma=3.4"), _cells(), [[0], [99]])
