"""Lattice thermal conductivity as plan -> evaluate -> analyse.

:func:`plan_conductivity` relaxes the structures (batched), builds each one's phono3py object
and returns a :class:`ConductivityPlan`: per structure, the perfect fc3 supercell and phono3py's
symmetry-reduced singly and doubly displaced supercells (pairs beyond the cutoff left out), and,
when fc2 has a supercell of its own, the perfect fc2 supercell and its displaced ones -- energies
and forces of all of them in one backend call. :meth:`ConductivityPlan.analyse` turns one
potential's forces into fc2 and fc3, reports their sum rules before and after phono3py's
symmetrisation, and runs phono3py's kappa with and without the enforcement and on a denser mesh.
:func:`thermal_conductivity` is :func:`~mlip_props.properties.plan.compute` of that plan.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import torch
from ase import Atoms

from ...backend.evaluate import EvaluationResult
from ..phonons import (asr_violation, choose_supercell, parse_supercell, primitive_matrix_from_dataset, reduced_formula,
                       symmetry_dataset, to_ase_atoms, to_phonopy_atoms)
from ..plan import EvaluationPlan, one_call
from ..relax import PROPERTY_RELAXATION, RelaxSettings, periodic_starting_points, resolve_relaxation
from .kappa import (SUM_RULE_ENFORCEMENT, KappaRun, denser_mesh, enforce_sum_rules, fc3_sum_rule_violation,
                    is_metal, kappa_on_mesh, parse_mesh, produce_force_constants, relative_change,
                    set_supercell_forces, voigt_average)
from .result import ConductivityResult

Method = Literal["rta", "lbte"]

#: The relaxation of the conductivity structures by default: cell and ions, space group kept, to
#: 1e-4 eV/A and 1e-3 GPa (:data:`~mlip_props.properties.relax.PROPERTY_RELAXATION`); residual
#: forces of the perfect supercell are subtracted from the displaced ones in any case.
CONDUCTIVITY_RELAXATION = PROPERTY_RELAXATION


@dataclass
class ConductivityOptions:
    """How the analysis computes kappa (see :func:`thermal_conductivity`)."""

    temperatures_K: list[float]
    mesh: list[int]
    convergence_mesh: list[int] | None
    convergence_tolerance_rel: float
    isotope: bool
    method: str
    imaginary_tolerance_THz: float


@dataclass
class ConductivityPlan(EvaluationPlan):
    """The supercells of every structure's conductivity calculation and how to read their answers.

    ``templates``: per structure, its ``Phono3py`` object with displacements (each analysis works
    on a copy); ``included``: per structure, phono3py's fc3 supercells kept (False: a pair beyond
    the cutoff, not evaluated); ``fc3_start[k]``: index in ``structures`` of structure k's perfect
    fc3 supercell, its ``n_fc3[k]`` evaluated displaced supercells following it; ``fc2_start[k]``
    and ``n_fc2[k]`` the same for a separate fc2 supercell (``None``, 0: fc2 from the fc3 set).
    """

    references: list[Atoms] = field(default_factory=list)
    templates: list[Any] = field(default_factory=list)
    included: list[list[bool]] = field(default_factory=list)
    fc3_start: list[int] = field(default_factory=list)
    n_fc3: list[int] = field(default_factory=list)
    fc2_start: list[int | None] = field(default_factory=list)
    n_fc2: list[int] = field(default_factory=list)
    cutoff_pair_distance_A: float | None = None
    displacement_A: float = 0.03
    relaxed: bool = False
    relax_converged: list[Any] = field(default_factory=list)
    options: ConductivityOptions | None = None

    def analyse(self, answers: EvaluationResult) -> list[ConductivityResult]:
        """One :class:`ConductivityResult` per structure from a single potential's answers."""
        return [self._analyse_one(k, answers.forces_eV_A) for k in range(len(self.templates))]

    def _analyse_one(self, k: int, forces: Sequence[np.ndarray]) -> ConductivityResult:
        opt = self.options
        ph3 = copy.deepcopy(self.templates[k])
        s3 = self.fc3_start[k]
        fc2_forces = fc2_perfect = None
        if self.fc2_start[k] is not None:
            s2 = self.fc2_start[k]
            fc2_perfect, fc2_forces = forces[s2], forces[s2 + 1: s2 + 1 + self.n_fc2[k]]
        set_supercell_forces(ph3, forces[s3 + 1: s3 + 1 + self.n_fc3[k]], forces[s3], fc2_forces, fc2_perfect,
                             self.included[k])
        raw_fc2, raw_fc3 = produce_force_constants(ph3, separate_fc2=self.fc2_start[k] is not None)
        enforce_sum_rules(ph3)
        fc2_enforced_violation = asr_violation(ph3.fc2)
        fc3_enforced_violation = fc3_sum_rule_violation(ph3.fc3)
        lbte = opt.method == "lbte"
        run = dict(temperatures_K=opt.temperatures_K, isotope=opt.isotope, lbte=lbte,
                   imaginary_tolerance_THz=opt.imaginary_tolerance_THz)
        notes: list[str] = []
        main = kappa_on_mesh(ph3, opt.mesh, **run)
        dense: KappaRun | None = None
        raw: KappaRun | None = None
        if main.imaginary_modes:
            notes.append(f"imaginary harmonic modes on the {_mesh_text(opt.mesh)} mesh (lowest "
                         f"{main.min_frequency_THz:.3f} THz): the structure is not dynamically stable with this "
                         "potential, phonon lifetimes and kappa are not defined; no kappa computed")
        else:
            if opt.convergence_mesh is not None:
                dense = kappa_on_mesh(ph3, opt.convergence_mesh, **run)
                if dense.imaginary_modes:
                    notes.append(f"imaginary modes on the convergence mesh {_mesh_text(opt.convergence_mesh)} "
                                 f"(lowest {dense.min_frequency_THz:.3f} THz): mesh convergence not checked")
            ph3.fc2, ph3.fc3 = raw_fc2.copy(), raw_fc3.copy()
            raw = kappa_on_mesh(ph3, opt.mesh, **run)
            if raw.imaginary_modes:
                notes.append(f"the raw force constants (sum rules not enforced) give imaginary modes (lowest "
                             f"{raw.min_frequency_THz:.3f} THz): no kappa without enforcement")
        avg = voigt_average(main.kappa_W_mK)
        dense_avg = voigt_average(dense.kappa_W_mK) if dense is not None else None
        change = relative_change(dense_avg, avg)
        mesh_change = None if change is None else float(change.max())
        converged = mesh_change is not None and mesh_change <= opt.convergence_tolerance_rel
        if opt.convergence_mesh is None and not main.imaginary_modes:
            notes.append("mesh convergence not checked (convergence_mesh=False): converged is False")
        if mesh_change is not None and not converged:
            notes.append(f"kappa changes by {100 * mesh_change:.1f} % from the {_mesh_text(opt.mesh)} to the "
                         f"{_mesh_text(opt.convergence_mesh)} mesh (tolerance "
                         f"{100 * opt.convergence_tolerance_rel:.1f} %): use a denser mesh")
        metal = is_metal(self.references[k])
        if metal:
            notes.append("all elements are metals: kappa here is the lattice (phonon) part only; the electronic "
                         "contribution, usually the larger one in a metal, and electron-phonon scattering are not "
                         "included")
        raw_avg = voigt_average(raw.kappa_W_mK) if raw is not None else None
        scattering = ["three-phonon"] + (["isotope (natural abundances)"] if opt.isotope else [])
        return ConductivityResult(
            atoms=self.references[k], formula=reduced_formula(self.references[k]),
            n_atoms_primitive=len(ph3.primitive), method=opt.method, temperatures_K=list(opt.temperatures_K),
            kappa_W_mK=_lists(main.kappa_W_mK), kappa_average_W_mK=_lists(avg),
            kappa_rta_W_mK=_lists(main.kappa_rta_W_mK), kappa_rta_average_W_mK=_lists(voigt_average(
                main.kappa_rta_W_mK)),
            kappa_no_sum_rule_W_mK=_lists(raw.kappa_W_mK if raw is not None else None),
            kappa_no_sum_rule_average_W_mK=_lists(raw_avg),
            sum_rule_kappa_change_rel=_lists(relative_change(avg, raw_avg)),
            mesh=list(opt.mesh), convergence_mesh=None if opt.convergence_mesh is None else list(opt.convergence_mesh),
            kappa_convergence_mesh_average_W_mK=_lists(dense_avg), mesh_change_rel=mesh_change,
            convergence_tolerance_rel=opt.convergence_tolerance_rel, converged=bool(converged),
            fc2_supercell_matrix=np.asarray(ph3.phonon_supercell_matrix if ph3.phonon_supercell_matrix is not None
                                            else ph3.supercell_matrix).tolist(),
            fc3_supercell_matrix=np.asarray(ph3.supercell_matrix).tolist(),
            n_fc2_supercell_atoms=len(ph3.phonon_supercell), n_fc3_supercell_atoms=len(ph3.supercell),
            cutoff_pair_distance_A=self.cutoff_pair_distance_A, displacement_A=self.displacement_A,
            n_fc3_displaced_supercells=self.n_fc3[k], n_fc2_displaced_supercells=self.n_fc2[k],
            n_displaced_supercells=self.n_fc3[k] + self.n_fc2[k],
            fc2_sum_rule_violation_raw_eV_A2=asr_violation(raw_fc2),
            fc2_sum_rule_violation_enforced_eV_A2=fc2_enforced_violation,
            fc3_sum_rule_violation_raw_eV_A3=fc3_sum_rule_violation(raw_fc3),
            fc3_sum_rule_violation_enforced_eV_A3=fc3_enforced_violation,
            sum_rule_enforcement=SUM_RULE_ENFORCEMENT, scattering=scattering, isotope=opt.isotope,
            imaginary_modes=main.imaginary_modes, min_frequency_THz=main.min_frequency_THz, is_metal=metal,
            relaxed=self.relaxed, relax_converged=self.relax_converged[k], notes=notes)


def _lists(x: Any) -> Any:
    """An array as nested lists (None stays None)."""
    return None if x is None else np.asarray(x, dtype=float).tolist()


def _mesh_text(mesh: Sequence[int] | None) -> str:
    return "x".join(str(int(m)) for m in mesh) if mesh is not None else "-"


def _options(temperatures_K: Any, mesh: Any, convergence_mesh: Any, convergence_tolerance_rel: float, isotope: bool,
             method: str, imaginary_tolerance_THz: float) -> ConductivityOptions:
    """Validated analysis options."""
    if method not in ("rta", "lbte"):
        raise ValueError(f"method must be 'rta' or 'lbte', got {method!r}")
    temps = [float(t) for t in np.atleast_1d(np.asarray(temperatures_K, dtype=float))]
    if not temps or any(not np.isfinite(t) or t < 0 for t in temps):
        raise ValueError(f"temperatures_K must be finite and >= 0 K, got {temperatures_K!r}")
    base = parse_mesh(mesh)
    if convergence_mesh is None or convergence_mesh is True:
        check = denser_mesh(base)
    elif convergence_mesh is False:
        check = None
    else:
        check = parse_mesh(convergence_mesh, "convergence_mesh")
    if not convergence_tolerance_rel > 0:
        raise ValueError(f"convergence_tolerance_rel must be > 0, got {convergence_tolerance_rel!r}")
    return ConductivityOptions(temperatures_K=temps, mesh=base, convergence_mesh=check,
                               convergence_tolerance_rel=float(convergence_tolerance_rel), isotope=bool(isotope),
                               method=method, imaginary_tolerance_THz=float(imaginary_tolerance_THz))


def plan_conductivity(
    potential: Any,
    structures: Any,
    *,
    supercell: Any = None,
    fc3_supercell: Any = None,
    min_length_A: float = 10.0,
    mesh: Any = (11, 11, 11),
    convergence_mesh: Any = None,
    convergence_tolerance_rel: float = 0.05,
    temperatures_K: Any = (300.0,),
    cutoff_pair_distance_A: float | None = None,
    displacement_A: float = 0.03,
    isotope: bool = True,
    method: Method = "rta",
    imaginary_tolerance_THz: float = 0.05,
    relaxation: RelaxSettings | dict | bool | None = None,
    symprec: float = 1e-5,
    dtype: Any = None,
    device: Any = None,
) -> ConductivityPlan:
    """Plan the lattice thermal conductivity of one structure or many (parameters as
    :func:`thermal_conductivity`): relax them (one batched relaxation), build each one's
    phono3py object with its displacements, and return every supercell to evaluate."""
    from phono3py import Phono3py

    options = _options(temperatures_K, mesh, convergence_mesh, convergence_tolerance_rel, isotope, method,
                       imaginary_tolerance_THz)
    if not displacement_A > 0:
        raise ValueError(f"displacement_A must be > 0, got {displacement_A!r}")
    if cutoff_pair_distance_A is not None and not cutoff_pair_distance_A > 0:
        raise ValueError(f"cutoff_pair_distance_A must be > 0 or None, got {cutoff_pair_distance_A!r}")
    settings = resolve_relaxation(relaxation, CONDUCTIVITY_RELAXATION)
    single, atoms_list, converged = periodic_starting_points(
        potential, structures, "thermal conductivity calculations", settings, dtype=dtype or torch.float64,
        device=device)
    fixed_fc2, fixed_fc3 = parse_supercell(supercell), parse_supercell(fc3_supercell)

    plan = ConductivityPlan(structures=[], quantities=("energy", "forces"), single=single, references=atoms_list,
                            cutoff_pair_distance_A=cutoff_pair_distance_A, displacement_A=float(displacement_A),
                            relaxed=settings.enabled, relax_converged=list(converged) if settings.enabled
                            else [None] * len(atoms_list), options=options)
    for k, a in enumerate(atoms_list):
        dataset = symmetry_dataset(a, symprec)
        primitive_matrix = primitive_matrix_from_dataset(dataset)
        fc2_matrix = (fixed_fc2 if fixed_fc2 is not None
                      else choose_supercell(a, min_length_A, primitive_matrix, symprec, dataset=dataset))
        fc3_matrix = fixed_fc3 if fixed_fc3 is not None else fc2_matrix
        for name, m in (("supercell", fc2_matrix), ("fc3_supercell", fc3_matrix)):
            if abs(round(np.linalg.det(m))) < 1:
                raise ValueError(f"structure {k}: singular {name} matrix {np.asarray(m).tolist()}")
        separate_fc2 = not np.array_equal(fc2_matrix, fc3_matrix)
        try:
            ph3 = Phono3py(to_phonopy_atoms(a), supercell_matrix=fc3_matrix, primitive_matrix=primitive_matrix,
                           phonon_supercell_matrix=fc2_matrix if separate_fc2 else None, symprec=symprec,
                           log_level=0)
            ph3.generate_displacements(distance=displacement_A, cutoff_pair_distance=cutoff_pair_distance_A)
        except (ValueError, RuntimeError, AssertionError) as exc:
            raise ValueError(f"structure {k} ({a.get_chemical_formula()}): phono3py could not set up its "
                             f"supercells: {exc}") from exc
        displaced = ph3.supercells_with_displacements
        included = [sc is not None for sc in displaced]
        plan.templates.append(ph3)
        plan.included.append(included)
        plan.fc3_start.append(len(plan.structures))
        plan.structures.append(to_ase_atoms(ph3.supercell))
        plan.structures.extend(to_ase_atoms(sc) for sc in displaced if sc is not None)
        plan.n_fc3.append(sum(included))
        if separate_fc2:
            plan.fc2_start.append(len(plan.structures))
            plan.structures.append(to_ase_atoms(ph3.phonon_supercell))
            fc2_displaced = ph3.phonon_supercells_with_displacements
            plan.structures.extend(to_ase_atoms(sc) for sc in fc2_displaced)
            plan.n_fc2.append(len(fc2_displaced))
        else:
            plan.fc2_start.append(None)
            plan.n_fc2.append(0)
    return plan


@one_call(plan_conductivity)
def thermal_conductivity(potential: Any, structures: Any,
                         **options: Any) -> ConductivityResult | list[ConductivityResult]:
    """Lattice thermal conductivity (W/(m K)) of one structure (a :class:`ConductivityResult`)
    or many (a list), every displaced supercell of every structure in one backend call
    (:func:`plan_conductivity`, then :meth:`ConductivityPlan.analyse`).

    ``supercell``: the fc2 (harmonic) supercell, phonopy ``supercell_matrix`` (an int, 3 ints
    or a 3x3 integer matrix; ``None``: all perpendicular widths >= ``min_length_A``, A).
    ``fc3_supercell``: the fc3 supercell (``None``: the fc2 one; then fc2 comes from the fc3
    displacements). ``mesh``: the Gamma-centred q-mesh (one or three ints) of the primitive cell.
    ``convergence_mesh``: the denser mesh of the convergence check (``None``: max(n + 2,
    ceil(1.25 n)) per direction; ``False``: skip); ``converged`` when the average kappa changes
    by at most ``convergence_tolerance_rel``. ``temperatures_K``: K. ``cutoff_pair_distance_A``:
    pairs of displaced atoms farther apart (A) are not evaluated and their fc3 is zero
    (phono3py's pair cutoff; ``None``: all pairs). ``displacement_A``: phono3py's displacement
    (A; 0.03 by default, phono3py's). ``isotope``: isotope scattering of the natural abundances
    (Tamura). ``method``: ``"rta"`` or ``"lbte"`` (direct solution; its RTA comes along).
    ``imaginary_tolerance_THz``: harmonic frequencies below minus this on the mesh mean no kappa.
    ``relaxation`` (:class:`~mlip_props.properties.relax.RelaxSettings`, a dict of its fields,
    or False): cell and ions relaxed first, space group kept, 1e-4 eV/A and 1e-3 GPa by
    default. ``dtype`` (default float64) and ``device`` go to every backend call.
    """
