"""Force constants from phono3py's displaced supercells, their sum rules, and kappa on a mesh.

Force constants in phono3py's compact layouts: fc2 (n_primitive, N, 3, 3) in eV/A^2 and fc3
(n_primitive, N, N, 3, 3, 3) in eV/A^3, atoms in phono3py's supercell order. kappa in W/(m K),
Voigt order xx, yy, zz, yz, xz, xy (phono3py's).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from ...validation import check_numbers


#: What :func:`enforce_sum_rules` does (phono3py's traditional symmetrisation).
SUM_RULE_ENFORCEMENT = "phono3py symmetrize_fc2/fc3 (translational + index permutation, 3 iterations)"


def fc3_sum_rule_violation(fc3: np.ndarray) -> float:
    """Largest |sum_k Phi_ijk^abc| and |sum_j Phi_ijk^abc| (eV/A^3): translational invariance of
    the third-order force constants (compact (n_primitive, N, N, 3, 3, 3) or full array)."""
    fc3 = np.asarray(fc3)
    return float(max(np.abs(fc3.sum(axis=2)).max(), np.abs(fc3.sum(axis=1)).max()))


def displaced_supercells(perfect: Atoms, dataset: dict) -> tuple[list[Atoms], list[bool]]:
    """phono3py's displaced fc3 supercells, built from the ``perfect`` supercell (ASE) and the
    displacements (A) of its ``dataset``, in phono3py's order (every single displacement, then
    every pair of each first atom): the supercells to evaluate, and per entry whether it is
    included (False: a pair beyond the cutoff, not built). Equal to converting phono3py's
    ``supercells_with_displacements`` one by one (to rounding), at a tenth of the cost."""
    first = dataset["first_atoms"]
    out = []
    for d in first:
        out.append(_displaced(perfect, [(d["number"], d["displacement"])]))
    included = [True] * len(first)
    for d in first:
        for e in d.get("second_atoms", []):
            keep = bool(e.get("included", True))
            included.append(keep)
            if keep:
                out.append(_displaced(perfect, [(d["number"], d["displacement"]), (e["number"], e["displacement"])]))
    return out, included


def _displaced(perfect: Atoms, moves: Sequence[tuple[int, Any]]) -> Atoms:
    a = perfect.copy()
    pos = a.positions  # the copy's own array
    for atom, u in moves:
        pos[int(atom)] += np.asarray(u, dtype=float)
    return a


def set_supercell_forces(ph3: Any, fc3_forces: Sequence[np.ndarray], fc3_perfect: np.ndarray,
                         fc2_forces: Sequence[np.ndarray] | None, fc2_perfect: np.ndarray | None,
                         included: Sequence[bool]) -> None:
    """Give a ``Phono3py`` object the forces (eV/A) of its displaced supercells, the perfect
    supercell's residual forces subtracted. ``fc3_forces`` holds the included supercells only
    (``included``: phono3py's list, pairs beyond the cutoff are False); excluded ones get zeros,
    as phono3py expects. ``fc2_forces``: the separate fc2 supercells (``None``: fc2 comes from
    the fc3 dataset)."""
    n_atoms = len(ph3.supercell)
    full = np.zeros((len(included), n_atoms, 3))
    it = iter(fc3_forces)
    for k, inc in enumerate(included):
        if inc:
            full[k] = next(it) - fc3_perfect
    ph3.forces = full
    if fc2_forces is not None:
        ph3.phonon_forces = np.array([f - fc2_perfect for f in fc2_forces])


def produce_force_constants(ph3: Any, separate_fc2: bool) -> tuple[np.ndarray, np.ndarray]:
    """Raw (unsymmetrised) compact fc2 and fc3 from the forces set on ``ph3`` (phono3py's
    finite-difference solver); returns copies and leaves them set on ``ph3``."""
    ph3.produce_fc3(fc_calculator="traditional", is_compact_fc=True)
    if separate_fc2:
        ph3.produce_fc2(fc_calculator="traditional", is_compact_fc=True)
    return np.array(ph3.fc2), np.array(ph3.fc3)


def enforce_sum_rules(ph3: Any) -> None:
    """Enforce translational invariance and index permutation symmetry on fc2 and fc3 of ``ph3``
    (in place, phono3py's traditional symmetrisation)."""
    ph3.symmetrize_fc3()
    ph3.symmetrize_fc2()


@dataclass
class KappaRun:
    """kappa of one set of force constants on one mesh: ``kappa_W_mK`` (n_T, 6) of the requested
    solver, ``kappa_rta_W_mK`` (n_T, 6) the RTA solution (the same for ``"rta"``), both ``None``
    with imaginary modes; ``min_frequency_THz`` over the mesh's phonons (negative: imaginary)."""

    kappa_W_mK: np.ndarray | None
    kappa_rta_W_mK: np.ndarray | None
    min_frequency_THz: float
    imaginary_modes: bool


def kappa_on_mesh(ph3: Any, mesh: Sequence[int], temperatures_K: Sequence[float], *, isotope: bool, lbte: bool,
                  imaginary_tolerance_THz: float) -> KappaRun:
    """Harmonic phonons on the Gamma-centred ``mesh`` from the fc2 of ``ph3``; when none is
    imaginary (below ``-imaginary_tolerance_THz``), kappa from the fc2 and fc3 set on ``ph3``
    (phono3py's tetrahedron method; isotope scattering with natural abundances when
    ``isotope``). The tetrahedron weights are averaged over degenerate bands
    (``average_degenerate_weights``): without it kappa depends on the arbitrary choice of
    eigenvectors in degenerate subspaces, and force noise of 1e-12 eV/A moves the kappa of SW Si
    on a 5x5x5 mesh by 0.1 % (0.01 % with the average)."""
    ph3.mesh_numbers = [int(m) for m in mesh]
    ph3.init_phph_interaction(average_degenerate_weights=True)
    ph3.run_phonon_solver()
    frequencies = np.asarray(ph3.get_phonon_data()[0])
    f_min = float(frequencies.min())
    if f_min < -imaginary_tolerance_THz:
        return KappaRun(None, None, f_min, True)
    ph3.run_thermal_conductivity(is_LBTE=lbte, temperatures=np.asarray(temperatures_K, dtype=float),
                                 is_isotope=isotope)
    tc = ph3.thermal_conductivity
    kappa = np.array(tc.kappa[0])
    kappa_rta = np.array(tc.kappa_RTA[0]) if lbte else kappa.copy()
    return KappaRun(kappa, kappa_rta, f_min, False)


def voigt_average(kappa_W_mK: np.ndarray | None) -> np.ndarray | None:
    """One third of the trace of each Voigt tensor (n_T, 6) -> (n_T,)."""
    if kappa_W_mK is None:
        return None
    return np.asarray(kappa_W_mK)[:, :3].mean(axis=1)


def parse_mesh(mesh: Any, what: str = "mesh") -> list[int]:
    """A q-mesh given as one int or three ints >= 1 -> three ints; ``ValueError`` naming the
    parameter (:func:`mlip_props.validation.check_numbers`) otherwise (a zero or negative mesh
    number would reach phono3py's compiled code)."""
    values = [mesh] * 3 if np.ndim(mesh) == 0 else list(np.asarray(mesh, dtype=object).reshape(-1))
    if len(values) != 3:
        raise ValueError(f"parameter {what!r}: expected one or three integers >= 1, got {mesh!r}")
    return [int(m) for m in check_numbers(what, values, minimum=1, integer=True)]


def denser_mesh(mesh: Sequence[int]) -> list[int]:
    """The automatic convergence mesh: max(n + 2, ceil(1.25 n)) points along each direction."""
    return [max(n + 2, math.ceil(1.25 * n)) for n in mesh]


def _symbols(composition: Atoms | Sequence[str]) -> set[str]:
    return set(composition.get_chemical_symbols() if isinstance(composition, Atoms) else composition)


def is_metal(composition: Atoms | Sequence[str]) -> bool:
    """Whether every element of ``composition`` (an Atoms or element symbols) is a metal
    (pymatgen's ``Element.is_metal``): an elemental metal or an intermetallic (Cu, NiAl, Cu3Au),
    whose heat electrons carry too."""
    from pymatgen.core import Element

    return all(Element(s).is_metal for s in _symbols(composition))


#: non-metals whose compounds with transition metals are (almost always) ionic insulators or
#: semiconductors: oxides and halides (TiO2, NiO, ZrO2, CuCl); hydrogen for the hydrides' salts
IONIC_ANIONS = frozenset({"H", "O", "F", "Cl", "Br", "I"})


def may_be_metallic(composition: Atoms | Sequence[str]) -> bool:
    """A composition (an Atoms or element symbols) that may be a metal although not every element is one: a transition metal
    (groups 3-11, lanthanides and actinides; pymatgen's ``Element.group``) with non-metals none
    of which is oxygen, a halogen or hydrogen (:data:`IONIC_ANIONS`) -- the carbides, nitrides,
    borides, silicides, pnictides and chalcogenides of the transition metals, many of them
    metallic (TiN, TiC, ZrN, NbC, WC, TiB2, MoSi2, CoSi, NbSe2) and some not (ScN, FeS2, MoS2).
    No band gap is known to a phonon calculation, so this says "may be". Main-group compounds
    (MgO, NaCl, GaAs, GaN, AlN, SiC), group-12 ones (ZnO, ZnS, CdTe) and transition-metal oxides
    and halides are not flagged; all-metal compositions are :func:`is_metal` instead."""
    from pymatgen.core import Element

    elements = [Element(s) for s in _symbols(composition)]
    if all(e.is_metal for e in elements):
        return False
    transition = any(e.is_metal and (3 <= e.group <= 11 or e.is_lanthanoid or e.is_actinoid) for e in elements)
    return transition and not any(e.symbol in IONIC_ANIONS for e in elements if not e.is_metal)


def relative_change(new: np.ndarray | None, ref: np.ndarray | None) -> np.ndarray | None:
    """|new - ref| / |ref| elementwise (None when either is missing)."""
    if new is None or ref is None:
        return None
    ref = np.asarray(ref, dtype=float)
    return np.abs(np.asarray(new, dtype=float) - ref) / np.maximum(np.abs(ref), 1e-300)
