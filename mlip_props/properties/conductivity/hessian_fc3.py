"""fc3 from analytic Hessians of singly displaced supercells (``fc3_method="hessian"``).

For a torch potential the backend gives the full Hessian Phi_jk^bc = d^2E / du_j^b du_k^c of a
supercell by autograd. Displacing atom i by u along a and differencing the Hessians gives the
third-order force constants directly:

    Phi_ijk^abc = d Phi_jk^bc / du_i^a  ~  [Phi_jk^bc(+u e_a) - Phi_jk^bc(-u e_a)] / (2 u),

central differences with an O(u^2) error, from phono3py's symmetry-reduced SINGLE displacements
only (no pairs). phono3py's own fc3 solver does the rest: its first-atom displacements with
``delta_fc2`` = Phi(displaced) - Phi(perfect) are solved by least squares over the site-symmetry
images of the displacements (a displacement -u that is symmetry-equivalent to +u enters through
its image, so the even O(u) term cancels as in a central difference), then distributed to the
other atoms of the primitive cell. fc2 is the perfect supercell's analytic Hessian (no
finite-difference error at all).

Cost: one Hessian is 3N Hessian-vector products, so the route evaluates (1 + n_single) x 3N
products against (1 + n_pairs) force evaluations of the force-difference route; which is faster
depends on the potential and the cell (measured in docs/conductivity.md).

Layouts as in :mod:`.kappa`: compact fc2 (n_primitive, N, 3, 3), eV/A^2; compact fc3
(n_primitive, N, N, 3, 3, 3), eV/A^3.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from ase import Atoms


def hessian_to_fc2(hessian_eV_A2: np.ndarray) -> np.ndarray:
    """A (3N, 3N) Hessian (eV/A^2) as phonopy's full fc2 (N, N, 3, 3)."""
    h = np.asarray(hessian_eV_A2, dtype=float)
    n = h.shape[0] // 3
    return np.ascontiguousarray(h.reshape(n, 3, n, 3).transpose(0, 2, 1, 3))


def first_displacements(ph3: Any) -> list[tuple[int, np.ndarray]]:
    """phono3py's symmetry-reduced single displacements of the fc3 supercell: (atom, displacement
    in A) per entry of its dataset's ``first_atoms``."""
    return [(int(d["number"]), np.asarray(d["displacement"], dtype=float)) for d in ph3.dataset["first_atoms"]]


def singly_displaced_supercells(perfect: Atoms, displacements: Sequence[tuple[int, np.ndarray]]) -> list[Atoms]:
    """Copies of the ``perfect`` supercell with one atom displaced each (A)."""
    out = []
    for atom, u in displacements:
        a = perfect.copy()
        pos = a.get_positions()
        pos[atom] += u
        a.set_positions(pos)
        out.append(a)
    return out


def fc_from_hessians(ph3: Any, perfect_hessian: np.ndarray, perfect_forces: np.ndarray,
                     displaced_hessians: Sequence[np.ndarray], displaced_forces: Sequence[np.ndarray],
                     fc2_hessian: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw (unsymmetrised) compact fc2 and fc3 from the Hessians (eV/A^2) and forces (eV/A) of the
    perfect fc3 supercell and of its singly displaced copies (in the order of
    :func:`first_displacements`); sets them on ``ph3`` and returns copies. ``fc2_hessian``: the
    Hessian of the separate fc2 supercell (``None``: fc2 from the fc3 supercell's Hessian)."""
    from phono3py.phonon3.fc3 import get_fc3

    h0 = hessian_to_fc2(perfect_hessian)
    first = []
    for (atom, u), h, f in zip(first_displacements(ph3), displaced_hessians, displaced_forces):
        first.append({"number": atom, "displacement": u, "forces": np.asarray(f) - perfect_forces,
                      "delta_fc2": hessian_to_fc2(h) - h0})
    dataset = {"natom": len(ph3.supercell), "first_atoms": first}
    _, fc3 = get_fc3(ph3.supercell, ph3.primitive, dataset, ph3.symmetry, is_compact_fc=True)
    if fc2_hessian is None:
        fc2 = h0[ph3.primitive.p2s_map]
    else:
        fc2 = hessian_to_fc2(fc2_hessian)[ph3.phonon_primitive.p2s_map]
    ph3.fc2 = np.ascontiguousarray(fc2)
    ph3.fc3 = np.ascontiguousarray(fc3)
    return np.array(ph3.fc2), np.array(ph3.fc3)
