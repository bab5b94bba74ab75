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
import dataclasses
import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import torch
from ase import Atoms

from ...backend.evaluate import EvaluationResult, is_oracle
from ...backend.precision import compute_precision
from ...validation import check_number, check_numbers
from ..phonons.nac import is_polar
from ..phonons import (asr_violation, choose_supercell, parse_supercell, primitive_matrix_from_dataset, reduced_formula,
                       symmetry_dataset, to_ase_atoms, to_phonopy_atoms)
from ..plan import EvaluationPlan, evaluate_plans
from ..relax import PROPERTY_RELAXATION, RelaxSettings, periodic_starting_points, resolve_relaxation
from ..result import with_precision
from .kappa import (SUM_RULE_ENFORCEMENT, KappaRun, denser_mesh, displaced_supercells, enforce_sum_rules,
                    fc3_sum_rule_violation, is_metal, kappa_on_mesh, may_be_metallic, parse_mesh,
                    produce_force_constants, relative_change, set_supercell_forces, voigt_average)
from .committee import committee_fields
from .hessian_fc3 import fc_from_hessians, first_displacements, singly_displaced_supercells
from .result import ConductivityResult

Method = Literal["rta", "lbte"]
FC3Method = Literal["forces", "hessian"]

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
    raw_kappa: bool = True


@dataclass
class ConductivityPlan(EvaluationPlan):
    """The supercells of every structure's conductivity calculation and how to read their answers.

    ``templates``: per structure, its ``Phono3py`` object with displacements (each analysis works
    on a copy); ``included``: per structure, phono3py's fc3 supercells kept (False: a pair beyond
    the cutoff, not evaluated; empty for the Hessian route); ``fc3_start[k]``: index in ``structures`` of structure k's perfect
    fc3 supercell, its ``n_fc3[k]`` evaluated displaced supercells following it; ``fc2_start[k]``
    and ``n_fc2[k]`` the same for a separate fc2 supercell (``None``, 0: fc2 from the fc3 set).
    ``fc3_method``: ``"forces"`` (phono3py's single and pair displacements, forces) or
    ``"hessian"`` (the perfect supercells and phono3py's single displacements, full Hessians;
    :mod:`.hessian_fc3`); ``hessian_rows``: for the Hessian route every atom of every structure,
    so that the backend's Hessian-row engine answers (it gives a committee's Hessians per member,
    which the batched full-Hessian evaluation does not; the two took the same time within the
    noise of a shared machine), ``None`` for the force route.
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
    fc3_method: str = "forces"
    hessian_rows: list[np.ndarray] | None = None
    relaxed: bool = False
    relax_converged: list[Any] = field(default_factory=list)
    options: ConductivityOptions | None = None

    def analyse(self, answers: EvaluationResult) -> list[ConductivityResult]:
        """One :class:`ConductivityResult` per structure from a single potential's answers
        (a committee's: ``answers.member(m)``, ``answers.member_mean()`` or
        :meth:`analyse_committee`)."""
        if answers.n_members:
            raise ValueError(f"a committee's answers ({answers.n_members} members): analyse answers.member(m) or "
                             "answers.member_mean(), or use analyse_committee")
        return [self._analyse_one(k, answers) for k in range(len(self.templates))]

    def analyse_committee(self, answers: EvaluationResult) -> list[ConductivityResult]:
        """The committee-mean potential's results (:meth:`analyse` of ``answers.member_mean()``)
        with each member's kappa on the main mesh (the member's own fc2 and fc3 from its column
        of the same evaluation, sum rules enforced) and their mean and spread
        (:func:`.committee.committee_fields`). A single potential's answers give :meth:`analyse`."""
        if not answers.n_members:
            return self.analyse(answers)
        results = self.analyse(answers.member_mean())
        out = []
        for k, r in enumerate(results):
            runs = [self.member_kappa(k, answers.member(m)) for m in range(answers.n_members)]
            fields, notes = committee_fields(runs)
            out.append(dataclasses.replace(r, notes=list(r.notes) + notes, **fields))
        return out

    def member_kappa(self, k: int, answers: EvaluationResult) -> KappaRun:
        """kappa of structure ``k`` on the main mesh from a single potential's answers (sum rules
        enforced; no convergence mesh, no raw-constant run)."""
        opt = self.options
        ph3, _, _ = self.force_constants(k, answers)
        enforce_sum_rules(ph3)
        return kappa_on_mesh(ph3, opt.mesh, temperatures_K=opt.temperatures_K, isotope=opt.isotope,
                             lbte=opt.method == "lbte", imaginary_tolerance_THz=opt.imaginary_tolerance_THz)

    def force_constants(self, k: int, answers: EvaluationResult) -> tuple[Any, np.ndarray, np.ndarray]:
        """A copy of structure ``k``'s phono3py object with its raw (unsymmetrised) compact fc2 (eV/A^2)
        and fc3 (eV/A^3) from a single potential's ``answers`` set on it, and copies of the two."""
        ph3 = copy.deepcopy(self.templates[k])
        forces = answers.forces_eV_A
        s3, n3 = self.fc3_start[k], self.n_fc3[k]
        if self.fc3_method == "hessian":
            h = answers.hessians_eV_A2
            fc2_h = h[self.fc2_start[k]] if self.fc2_start[k] is not None else None
            raw_fc2, raw_fc3 = fc_from_hessians(ph3, h[s3], forces[s3], h[s3 + 1: s3 + 1 + n3],
                                                forces[s3 + 1: s3 + 1 + n3], fc2_hessian=fc2_h)
            return ph3, raw_fc2, raw_fc3
        fc2_forces = fc2_perfect = None
        if self.fc2_start[k] is not None:
            s2 = self.fc2_start[k]
            fc2_perfect, fc2_forces = forces[s2], forces[s2 + 1: s2 + 1 + self.n_fc2[k]]
        set_supercell_forces(ph3, forces[s3 + 1: s3 + 1 + n3], forces[s3], fc2_forces, fc2_perfect,
                             self.included[k])
        raw_fc2, raw_fc3 = produce_force_constants(ph3, separate_fc2=self.fc2_start[k] is not None)
        return ph3, raw_fc2, raw_fc3

    def _analyse_one(self, k: int, answers: EvaluationResult) -> ConductivityResult:
        opt = self.options
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        ph3, raw_fc2, raw_fc3 = self.force_constants(k, answers)
        t1 = time.perf_counter()
        enforce_sum_rules(ph3)
        fc2_enforced_violation = asr_violation(ph3.fc2)
        fc3_enforced_violation = fc3_sum_rule_violation(ph3.fc3)
        t2 = time.perf_counter()
        timings.update(force_constants=t1 - t0, sum_rules=t2 - t1)
        lbte = opt.method == "lbte"
        run = dict(temperatures_K=opt.temperatures_K, isotope=opt.isotope, lbte=lbte,
                   imaginary_tolerance_THz=opt.imaginary_tolerance_THz)
        notes: list[str] = []
        main = kappa_on_mesh(ph3, opt.mesh, **run)
        timings["kappa"] = time.perf_counter() - t2
        dense: KappaRun | None = None
        raw: KappaRun | None = None
        if main.imaginary_modes:
            notes.append(f"imaginary harmonic modes on the {_mesh_text(opt.mesh)} mesh (lowest "
                         f"{main.min_frequency_THz:.3f} THz): the structure is not dynamically stable with this "
                         "potential, phonon lifetimes and kappa are not defined; no kappa computed")
        else:
            if opt.convergence_mesh is not None:
                t = time.perf_counter()
                dense = kappa_on_mesh(ph3, opt.convergence_mesh, **run)
                timings["kappa_convergence_mesh"] = time.perf_counter() - t
                if dense.imaginary_modes:
                    notes.append(f"imaginary modes on the convergence mesh {_mesh_text(opt.convergence_mesh)} "
                                 f"(lowest {dense.min_frequency_THz:.3f} THz): mesh convergence not checked")
            if opt.raw_kappa:
                t = time.perf_counter()
                ph3.fc2, ph3.fc3 = raw_fc2.copy(), raw_fc3.copy()
                raw = kappa_on_mesh(ph3, opt.mesh, **run)
                timings["kappa_raw_force_constants"] = time.perf_counter() - t
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
        maybe_metal = may_be_metallic(self.references[k])
        if metal:
            notes.append("all elements are metals: kappa here is the lattice (phonon) part only; the electronic "
                         "contribution, usually the larger one in a metal, and electron-phonon scattering are not "
                         "included")
        elif maybe_metal:
            notes.append("a transition metal with non-metals other than oxygen, halogens or hydrogen (like TiN, TiC, "
                         "WC): the crystal may be metallic (no band gap is known to this calculation); if it is, "
                         "kappa here is the lattice (phonon) part only, without the electronic contribution and "
                         "electron-phonon scattering")
        polar = is_polar(self.references[k])
        if polar:
            notes.append("polar crystal: no non-analytical (LO-TO) correction, as the potential has no Born charges; "
                         "the LO modes near Gamma are TO-like (lo_to_missing)")
        if not opt.raw_kappa and not main.imaginary_modes:
            notes.append("kappa with the raw force constants not computed (raw_kappa=False): the effect of the "
                         "sum-rule enforcement on kappa is not reported")
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
            fc3_method=self.fc3_method, n_fc3_displaced_supercells=self.n_fc3[k],
            n_fc2_displaced_supercells=self.n_fc2[k],
            n_displaced_supercells=self.n_fc3[k] + self.n_fc2[k],
            fc2_sum_rule_violation_raw_eV_A2=asr_violation(raw_fc2),
            fc2_sum_rule_violation_enforced_eV_A2=fc2_enforced_violation,
            fc3_sum_rule_violation_raw_eV_A3=fc3_sum_rule_violation(raw_fc3),
            fc3_sum_rule_violation_enforced_eV_A3=fc3_enforced_violation,
            sum_rule_enforcement=SUM_RULE_ENFORCEMENT, scattering=scattering, isotope=opt.isotope,
            imaginary_modes=main.imaginary_modes, min_frequency_THz=main.min_frequency_THz, is_metal=metal,
            may_be_metallic=maybe_metal, lo_to_missing=polar,
            relaxed=self.relaxed, relax_converged=self.relax_converged[k], notes=notes, timings_s=timings)


def _lists(x: Any) -> Any:
    """An array as nested lists (None stays None)."""
    return None if x is None else np.asarray(x, dtype=float).tolist()


def _mesh_text(mesh: Sequence[int] | None) -> str:
    return "x".join(str(int(m)) for m in mesh) if mesh is not None else "-"


def _options(temperatures_K: Any, mesh: Any, convergence_mesh: Any, convergence_tolerance_rel: float, isotope: bool,
             method: str, imaginary_tolerance_THz: float, raw_kappa: bool) -> ConductivityOptions:
    """Validated analysis options (``ValueError`` naming the parameter)."""
    if method not in ("rta", "lbte"):
        raise ValueError(f"method must be 'rta' or 'lbte', got {method!r}")
    values = ([temperatures_K] if np.ndim(temperatures_K) == 0
              else list(np.asarray(temperatures_K, dtype=object).reshape(-1)))
    temps = [float(t) for t in check_numbers("temperatures_K", values, minimum=0.0)]
    base = parse_mesh(mesh)
    if convergence_mesh is None or convergence_mesh is True:
        check = denser_mesh(base)
    elif convergence_mesh is False:
        check = None
    else:
        check = parse_mesh(convergence_mesh, "convergence_mesh")
    check_number("convergence_tolerance_rel", convergence_tolerance_rel, minimum=0.0, exclusive_minimum=True)
    check_number("imaginary_tolerance_THz", imaginary_tolerance_THz, minimum=0.0)
    return ConductivityOptions(temperatures_K=temps, mesh=base, convergence_mesh=check,
                               convergence_tolerance_rel=float(convergence_tolerance_rel), isotope=bool(isotope),
                               method=method, imaginary_tolerance_THz=float(imaginary_tolerance_THz),
                               raw_kappa=bool(raw_kappa))


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
    fc3_method: FC3Method = "forces",
    raw_kappa: bool = True,
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
                       imaginary_tolerance_THz, raw_kappa)
    check_number("displacement_A", displacement_A, minimum=0.0, exclusive_minimum=True)
    check_number("cutoff_pair_distance_A", cutoff_pair_distance_A, minimum=0.0, exclusive_minimum=True,
                 allow_none=True)
    check_number("min_length_A", min_length_A, minimum=0.0, exclusive_minimum=True)
    check_number("symprec", symprec, minimum=0.0, exclusive_minimum=True)
    if fc3_method not in ("forces", "hessian"):
        raise ValueError(f"fc3_method must be 'forces' or 'hessian', got {fc3_method!r}")
    hessian = fc3_method == "hessian"
    if hessian and is_oracle(potential):
        raise ValueError("fc3_method='hessian' needs the analytic Hessians of a torch potential; "
                         f"{type(potential).__name__} is an oracle (use fc3_method='forces')")
    if hessian and cutoff_pair_distance_A is not None:
        raise ValueError("cutoff_pair_distance_A drops pairs of displacements, which fc3_method='hessian' does not "
                         "evaluate (it uses single displacements only): use fc3_method='forces' with a pair cutoff")
    settings = resolve_relaxation(relaxation, CONDUCTIVITY_RELAXATION)
    single, atoms_list, converged = periodic_starting_points(
        potential, structures, "thermal conductivity calculations", settings, dtype=dtype or torch.float64,
        device=device)
    fixed_fc2, fixed_fc3 = parse_supercell(supercell), parse_supercell(fc3_supercell)

    quantities = ("energy", "forces", "hessian") if hessian else ("energy", "forces")
    plan = ConductivityPlan(structures=[], quantities=quantities,
                            single=single, references=atoms_list, cutoff_pair_distance_A=cutoff_pair_distance_A,
                            displacement_A=float(displacement_A), fc3_method=fc3_method,
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
        plan.templates.append(ph3)
        plan.fc3_start.append(len(plan.structures))
        perfect = to_ase_atoms(ph3.supercell)
        plan.structures.append(perfect)
        if hessian:  # the perfect supercell and phono3py's single displacements; fc2 from the Hessian
            singles = singly_displaced_supercells(perfect, first_displacements(ph3))
            plan.included.append([])
            plan.structures.extend(singles)
            plan.n_fc3.append(len(singles))
        else:  # built from the perfect supercell and the displacements, not converted one by one
            displaced, included = displaced_supercells(perfect, ph3.dataset)
            plan.included.append(included)
            plan.structures.extend(displaced)
            plan.n_fc3.append(len(displaced))
        if separate_fc2:
            plan.fc2_start.append(len(plan.structures))
            perfect_fc2 = to_ase_atoms(ph3.phonon_supercell)
            plan.structures.append(perfect_fc2)
            fc2_displaced = [] if hessian else singly_displaced_supercells(
                perfect_fc2, [(d["number"], d["displacement"]) for d in ph3.phonon_dataset["first_atoms"]])
            plan.structures.extend(fc2_displaced)
            plan.n_fc2.append(len(fc2_displaced))
        else:
            plan.fc2_start.append(None)
            plan.n_fc2.append(0)
    if hessian:
        plan.hessian_rows = [np.arange(len(a)) for a in plan.structures]
    return plan


def thermal_conductivity(potential: Any, structures: Any,
                         **options: Any) -> ConductivityResult | list[ConductivityResult]:
    """Lattice thermal conductivity (W/(m K)) of one structure (a :class:`ConductivityResult`)
    or many (a list), every displaced supercell of every structure in one backend call
    (:func:`plan_conductivity`, then :meth:`ConductivityPlan.analyse_committee`, which is
    :meth:`ConductivityPlan.analyse` for a single potential).

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
    ``fc3_method``: ``"forces"`` (default: force differences of phono3py's pair displacements) or
    ``"hessian"`` (torch potentials: central differences of the analytic Hessians of the singly
    displaced supercells, fc2 the analytic Hessian; :mod:`.hessian_fc3`; no pair cutoff).
    ``raw_kappa``: also compute kappa with the raw (unsymmetrised) force constants, the effect of
    the sum rules on kappa (default True; one more kappa run per structure).
    A committee potential is relaxed on its mean surface, evaluated once, and analysed for the
    mean potential and for each member (:meth:`ConductivityPlan.analyse_committee`: the members'
    kappa, mean and standard deviation in the result).
    All numbers are checked first (``ValueError`` naming the parameter).
    ``relaxation`` (:class:`~mlip_props.properties.relax.RelaxSettings`, a dict of its fields,
    or False): cell and ions relaxed first, space group kept, 1e-4 eV/A and 1e-3 GPa by
    default. ``dtype`` (default float64) and ``device`` go to every backend call.
    """
    plan = plan_conductivity(potential, structures, **options)
    answers = evaluate_plans(potential, [plan], dtype=options.get("dtype"), device=options.get("device"))[0]
    precision = answers.precision or compute_precision(potential, options.get("dtype"))
    results = [with_precision(r, precision) for r in plan.analyse_committee(answers)]
    return results[0] if plan.single else results


# the parameters (help(), IDEs, the campaign schema) are plan_conductivity's, as plan.one_call gives them to the
# other properties; the body differs from one_call's in analysing a committee's members too
thermal_conductivity.__signature__ = inspect.signature(plan_conductivity).replace(  # type: ignore[attr-defined]
    return_annotation="ConductivityResult | list[ConductivityResult]")
