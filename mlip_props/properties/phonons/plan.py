"""Phonons as plan -> evaluate -> analyse.

:func:`plan_phonons` relaxes the structures (batched), builds each one's phonopy supercell and
returns a :class:`PhononPlan`: the supercells to evaluate -- the perfect supercell and phonopy's
displaced supercells (``"displacement"``, energies and forces), or the perfect supercell alone
(``"hessian"``, with :attr:`PhononPlan.hessian_rows`, the symmetry-independent atoms of one
primitive cell, whose Hessian rows the backend's row engine computes; ``row_expansions`` turn
them into the rows of every primitive atom) -- and the bookkeeping to read the answers back.
:meth:`PhononPlan.analyse` turns one potential's answers into force constants, checks and
enforces the acoustic sum rule and analyses the lattice dynamics. :func:`phonons` is
:func:`~mlip_props.properties.plan.compute` of that plan.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import torch
from ase import Atoms

from ...backend import is_oracle
from ...backend.evaluate import EvaluationResult, prepare_structures
from ...backend.inputs import structure_list
from ...validation import check_mesh, check_number
from ..plan import EvaluationPlan, one_call
from ..relax import PROPERTY_RELAXATION, RelaxSettings, periodic_starting_points, resolve_relaxation
from .analysis import AnalysisOptions, HarmonicSystem, analyse_harmonic
from .cells import (check_supercell_size, choose_supercell, parse_supercell, primitive_matrix_from_dataset, same_cell, to_ase_atoms,
                    to_phonopy_atoms)
from .force_constants import (HarmonicModel, RowExpansion, apply_force_constants, force_constants_from_displacements,
                              force_constants_from_hessian, resolve_enforcement, row_expansion)
from .nac import charge_neutrality_e, is_polar, phonopy_nac_params, resolve_nac_params
from .result import PhononResult

Method = Literal["auto", "hessian", "displacement"]

#: The relaxation of the phonon structures by default: cell and ions, space group kept, to
#: 1e-4 eV/A and 1e-3 GPa (:data:`~mlip_props.properties.relax.PROPERTY_RELAXATION`).
PHONON_RELAXATION = PROPERTY_RELAXATION


@dataclass
class PhononPlan(EvaluationPlan):
    """The supercells of every structure's phonon calculation and how to read their answers.

    ``references``: the structures measured (relaxed when ``relaxed``); ``harmonic``: per
    structure, its phonopy ``Phonopy`` object (displacements generated) or :class:`HarmonicModel`
    without force constants (each analysis works on a copy); ``primitive_symmetry``: the
    primitive cell's phonopy ``Symmetry`` (mesh reduction); ``supercell_start[k]``: index in
    ``structures`` of structure k's perfect supercell, its displaced supercells following it;
    ``hessian_rows``: per entry of ``structures``, the atoms whose Hessian rows are needed
    (``None``: the full Hessian, or no Hessian on the displacement route); ``polar``,
    ``born_charge_sum_e``: per structure, the LO-TO bookkeeping (:mod:`.nac`; the Born charges
    themselves sit on each ``harmonic`` template as phonopy ``nac_params``).
    """

    references: list[Atoms] = field(default_factory=list)
    harmonic: list[Any] = field(default_factory=list)
    primitive_symmetry: list[Any] = field(default_factory=list)
    supercell_start: list[int] = field(default_factory=list)
    method: str = "displacement"
    asr_enforcement: str = "phonopy"
    displacement_A: float | None = None
    relaxed: bool = False
    relax_converged: list[Any] = field(default_factory=list)
    options: AnalysisOptions = field(default_factory=AnalysisOptions)
    hessian_rows: list[np.ndarray] | None = None
    polar: list[bool] = field(default_factory=list)
    born_charge_sum_e: list[float | None] = field(default_factory=list)
    row_expansions: list[RowExpansion | None] = field(default_factory=list)

    def input_index(self, k: int) -> int:
        return int(np.searchsorted(self.supercell_start, k, side="right")) - 1

    def n_supercells(self, k: int) -> int:
        """Supercells evaluated for structure ``k`` (perfect + displaced)."""
        end = self.supercell_start[k + 1] if k + 1 < len(self.supercell_start) else len(self.structures)
        return end - self.supercell_start[k]

    def harmonic_systems(self, answers: EvaluationResult) -> list[HarmonicSystem]:
        """Each structure's harmonic model with the force constants of ``answers`` (one
        potential's), the acoustic sum rule checked and enforced."""
        out = []
        for k, template in enumerate(self.harmonic):
            ph = copy.deepcopy(template)
            start = self.supercell_start[k]
            if self.method == "displacement":
                forces = answers.forces_eV_A
                raw = force_constants_from_displacements(ph, forces[start],
                                                         forces[start + 1 : start + self.n_supercells(k)])
            else:
                raw = force_constants_from_hessian(answers.hessians_eV_A2[start], len(ph.supercell))
                expansion = self.row_expansions[k] if self.row_expansions else None
                if expansion is not None:  # rows of the symmetry-independent atoms -> all primitive atoms
                    raw = expansion.expand(raw)
            asr = apply_force_constants(ph, raw, self.asr_enforcement)
            out.append(HarmonicSystem(
                harmonic=ph, primitive_symmetry=self.primitive_symmetry[k], atoms=self.references[k],
                method=self.method, displacement_A=self.displacement_A, relaxed=self.relaxed,
                relax_converged=self.relax_converged[k], asr=asr, precision=answers.precision,
                polar=self.polar[k], lo_to_included=ph.nac_params is not None,
                born_charge_sum_e=self.born_charge_sum_e[k]))
        return out

    def analyse(self, answers: EvaluationResult) -> list[PhononResult]:
        """One :class:`PhononResult` per structure from a single potential's answers."""
        return [analyse_harmonic(s, self.options) for s in self.harmonic_systems(answers)]

    def static_energies_eV_per_atom(self, answers: EvaluationResult) -> np.ndarray:
        """Energy per atom (eV) of each structure's perfect supercell in ``answers``."""
        e = np.asarray(answers.energies_eV, dtype=float)
        return np.array([e[s] / len(self.structures[s]) for s in self.supercell_start])


def _primitive_symmetry(ph, unit_symmetry, unit, symprec: float, use_symmetry: bool):
    """The primitive cell's point group (cheap), which reduces the meshes to irreducible q-points
    even when the (slow, for big supercells) supercell symmetry search was skipped."""
    from phonopy.structure.symmetry import Symmetry

    if use_symmetry:
        return ph.primitive_symmetry
    if unit_symmetry is not None and same_cell(ph.primitive, unit):
        return unit_symmetry
    return Symmetry(ph.primitive, symprec)


def plan_phonons(
    potential: Any,
    structures: Any,
    *,
    supercell: Any = None,
    min_length_A: float = 10.0,
    method: Method = "auto",
    relaxation: RelaxSettings | dict | bool | None = None,
    displacement_A: float = 0.01,
    asr_enforcement: str = "auto",
    band_structure: bool = True,
    band_npoints: int = 51,
    mesh: float | Sequence[int] = 40.0,
    group_velocity_mesh: float | Sequence[int] | None = 15.0,
    imaginary_tolerance_THz: float | None = None,
    symprec: float = 1e-5,
    nac_params: dict | Sequence[dict | None] | None = None,
    polar: bool | Sequence[bool] | None = None,
    dtype: Any = None,
    device: Any = None,
) -> PhononPlan:
    """Plan the phonons of one structure or many (parameters as :func:`phonons`): relax them
    (one batched relaxation, on the committee mean for a committee), build each one's phonopy
    supercell (and displacements), and return the supercells to evaluate. ``method="auto"``
    resolves against ``potential``: the Hessian route for torch potentials, displacements for
    oracles."""
    from phonopy import Phonopy
    from phonopy.structure.symmetry import Symmetry

    check_number("min_length_A", min_length_A, minimum=0.0, exclusive_minimum=True)
    check_number("displacement_A", displacement_A, minimum=0.0, exclusive_minimum=True)
    band_npoints = check_number("band_npoints", band_npoints, minimum=2, integer=True)
    check_mesh("mesh", mesh)
    check_mesh("group_velocity_mesh", group_velocity_mesh, allow_none=True)
    if imaginary_tolerance_THz is not None:
        check_number("imaginary_tolerance_THz", imaginary_tolerance_THz, minimum=0.0)
    check_number("symprec", symprec, minimum=0.0, exclusive_minimum=True)
    single, items = structure_list(structures)
    atoms_list = prepare_structures(items)
    for k, a in enumerate(atoms_list):
        if not a.pbc.all():
            raise ValueError(f"structure {k}: phonons need a cell periodic in all three directions")
    if method not in ("auto", "hessian", "displacement"):
        raise ValueError(f"method must be 'auto', 'hessian' or 'displacement', got {method!r}")
    route = ("displacement" if is_oracle(potential) else "hessian") if method == "auto" else method
    enforcement = resolve_enforcement(asr_enforcement, route)
    settings = resolve_relaxation(relaxation, PHONON_RELAXATION)
    # supercell symmetry (slow in phonopy for large supercells) is only needed by the
    # displacement route and by symfc; the primitive cell's symmetry is always used for meshes
    use_symmetry = route == "displacement" or enforcement == "symfc"
    fixed_supercell = parse_supercell(supercell)
    nac_list = _per_structure(nac_params, len(atoms_list), "nac_params", dict)
    polar_list = _per_structure(polar, len(atoms_list), "polar", bool)
    resolved_nac = [resolve_nac_params(n, a, f"structure {k}") for k, (n, a) in enumerate(zip(nac_list, atoms_list))]

    converged: list[bool | None] = [None] * len(atoms_list)
    if settings.enabled:  # batched, and shared with other properties inside shared_relaxations()
        settings = dataclasses.replace(settings, symprec_A=max(symprec, settings.symprec_A))
        _, atoms_list, ok = periodic_starting_points(potential, atoms_list, "phonons", settings,
                                                     dtype=dtype or torch.float64, device=device)
        converged = list(ok)

    # phonopy objects (no model calls); one spglib search of the input cell gives the primitive
    # matrix, the conventional cell for the supercell choice and, when the input cell is already
    # primitive, the primitive cell's symmetry
    harmonic, symmetries, supercells, starts = [], [], [], []
    rows: list[np.ndarray] = []
    expansions: list[RowExpansion | None] = []
    for k, a in enumerate(atoms_list):
        unit = to_phonopy_atoms(a)
        try:
            unit_symmetry = Symmetry(unit, symprec)
            dataset = unit_symmetry.dataset
        except Exception:  # noqa: BLE001 - no symmetry found: P1 treatment below
            unit_symmetry, dataset = None, None
        primitive_matrix = primitive_matrix_from_dataset(dataset)
        smat = (fixed_supercell if fixed_supercell is not None
                else choose_supercell(a, min_length_A, primitive_matrix, symprec, dataset=dataset, index=k))
        if abs(round(np.linalg.det(smat))) < 1:
            raise ValueError(f"structure {k}: singular supercell matrix {smat.tolist()}")
        if fixed_supercell is not None:  # the exact atom count, before phonopy builds it
            check_supercell_size(a, smat, k, how=" (the supercell given)")
        if use_symmetry:
            ph = Phonopy(unit, supercell_matrix=smat, primitive_matrix=primitive_matrix, symprec=symprec,
                         is_symmetry=True)
        else:  # no Phonopy object (its supercell symmetry is unused here); built on demand
            ph = HarmonicModel(unit, smat, primitive_matrix, symprec)
        ph.nac_params = phonopy_nac_params(resolved_nac[k], ph)
        harmonic.append(ph)
        symmetries.append(_primitive_symmetry(ph, unit_symmetry, unit, symprec, use_symmetry))
        starts.append(len(supercells))
        supercells.append(to_ase_atoms(ph.supercell))
        # rows of the primitive atoms only: phonopy's compact force constants (n_primitive, N, 3, 3),
        # which phonopy uses as they are (the rest follows from the supercell translations)
        # ... and of those only the symmetry-independent atoms' (the others are rotated copies)
        expansion = row_expansion(ph, symmetries[-1]) if route == "hessian" and not is_oracle(potential) else None
        p2s = np.asarray(ph.primitive.p2s_map)
        rows.append(p2s if expansion is None else p2s[expansion.computed])
        expansions.append(expansion)
        if route == "displacement":
            ph.generate_displacements(distance=displacement_A, is_plusminus="auto")
            supercells.extend(to_ase_atoms(sc) for sc in ph.supercells_with_displacements)

    if route == "displacement":
        quantities, hessian_rows = ("energy", "forces"), None
    elif is_oracle(potential):  # the full finite-difference Hessian (6 N single points each)
        quantities, hessian_rows = ("energy", "hessian"), None
    else:
        quantities, hessian_rows = ("energy", "hessian"), rows
    options = AnalysisOptions(band_structure=band_structure, band_npoints=band_npoints, mesh=mesh,
                              group_velocity_mesh=group_velocity_mesh, imaginary_tolerance_THz=imaginary_tolerance_THz)
    return PhononPlan(
        structures=supercells, quantities=quantities, single=single, references=atoms_list, harmonic=harmonic,
        primitive_symmetry=symmetries, supercell_start=starts, method=route, asr_enforcement=enforcement,
        displacement_A=displacement_A if route == "displacement" else None, relaxed=settings.enabled,
        relax_converged=converged, options=options, hessian_rows=hessian_rows,
        polar=[is_polar(a) if p is None else bool(p) for a, p in zip(atoms_list, polar_list)],
        born_charge_sum_e=[charge_neutrality_e(n) for n in resolved_nac], row_expansions=expansions)


def _per_structure(value: Any, n: int, name: str, kind: type) -> list:
    """A parameter given once for all structures (``None`` or one ``kind``) or as one per structure."""
    if value is None or isinstance(value, kind):
        return [value] * n
    values = list(value)
    if len(values) != n or not all(v is None or isinstance(v, kind) for v in values):
        raise ValueError(f"{name} must be None, one {kind.__name__} or a list of {n} (one per structure, None "
                         f"allowed), got {value!r:.80}")
    return values


@one_call(plan_phonons)
def phonons(potential: Any, structures: Any, **options: Any) -> PhononResult | list[PhononResult]:
    """Harmonic phonons of one structure (returns a :class:`PhononResult`) or many (a list),
    all force evaluations in one backend call (:func:`plan_phonons`, then
    :meth:`PhononPlan.analyse`). See the package docstring for the method.

    ``supercell``: ``None`` (automatic: all perpendicular widths >= ``min_length_A``, A), an
    int, 3 ints or a 3x3 integer matrix (phonopy ``supercell_matrix``). ``method``: ``"auto"``,
    ``"hessian"`` (autograd, torch potentials; finite differences of forces for oracles) or
    ``"displacement"`` (phonopy finite displacements of ``displacement_A``, A).
    ``relaxation`` (:class:`~mlip_props.properties.relax.RelaxSettings`, a dict of its fields, or
    False): cell and positions relaxed first, space group kept, to 1e-4 eV/A and 1e-3 GPa by
    default. ``asr_enforcement``: ``"auto"`` (symfc's projector for the displacement route when
    symfc is installed, phonopy's fast translational/permutation symmetrisation otherwise —
    autograd Hessians already obey the rule to ~1e-12 eV/A^2), ``"symfc"``, ``"phonopy"`` or
    ``"none"``. ``mesh``: Gamma-centred sampling mesh for DOS/imaginary modes, as 3 ints or a
    length (A, phonopy's ``length2mesh``). ``group_velocity_mesh``: coarser mesh (same
    conventions) on which the mean group velocity per branch is averaged (``None``: skip).
    ``imaginary_tolerance_THz``: frequencies below minus this count as imaginary; ``None`` (default):
    0.05 THz for float64 force constants, max(0.05, 3 x the measured float32 noise) for float32
    models (the noise is the raw sum-rule violation as a frequency, ``result.asr_noise_THz``).
    ``nac_params`` (one dict for all structures, or one per structure): Born effective charges
    ``"born"`` (one number or 3x3 tensor (e) per atom of the input structure, in its order) and the
    electronic dielectric tensor ``"dielectric"`` (eps_inf, a number or 3x3), optional ``"method"``
    (``"gonze"``, default, or ``"wang"``): phonopy's non-analytical correction, i.e. LO-TO splitting.
    Without it a polar crystal (``polar``: ``None`` = the composition rule of :mod:`.nac`, at least
    two elements and not all metals) has ``result.lo_to_missing`` set.
    ``dtype`` (default float64) and ``device`` go to every backend call. ``result.write(folder)``
    writes ``phonopy_params.yaml`` and ``band.yaml`` for phonopy.
    """
