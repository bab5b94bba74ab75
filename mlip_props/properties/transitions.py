"""Pressure-induced transitions: the static (T = 0) enthalpy crossing of a structure and its
high-pressure polymorphs, with the committee spread of the crossing.

Method (plan -> evaluate -> analyse, :mod:`mlip_props.properties.plan`):

1. **plan** (:func:`plan_transition`): each input structure (the low-pressure phase) and its
   partner polymorphs (``polymorphs``: names of :mod:`mlip_props.polymorph_library` or of any
   structure :func:`mlip_props.structures.load_structure` resolves; empty: every polymorph of the
   library with the input's composition) are relaxed at every pressure of ``pressures_GPa``
   (cell and ions, space group kept, :data:`~mlip_props.properties.phase_diagram.PT_RELAXATION`;
   one relaxation per pressure batched over all phases of all inputs; a committee relaxes on its
   mean surface). The relaxed cells are the plan's structures (energy and stress).
2. **evaluate**: one backend call; a committee's answer holds every member's column.
3. **analyse** (:meth:`TransitionPlan.analyse`, one potential's answers): static enthalpies
   H = E + P V per atom, and the crossings of the lowest-enthalpy phase found as in
   :func:`~mlip_props.properties.phase_diagram.static_transitions` (cubic Hermite spline of
   Delta H with slopes dH/dP = V).

Committees (:func:`transition`, ``committee_relaxation``):

* ``"member"`` (default): each member relaxed on its own surface at every pressure (M times the
  relaxations): each member's crossing exactly as that member alone would give it.
* ``"mean"``: every member's enthalpy read at the structures relaxed on the committee-mean
  surface (one evaluation for all members, as the other committee properties do; no extra
  relaxation). A member's enthalpy there exceeds its own minimum by about V dP^2 / (2 B), dP its
  residual pressure at the mean cells (reported, ``member_residual_pressure_GPa_max``); that bias
  differs between the phases and moves the crossing by its difference over Delta V, which is large
  when the phases' volumes are close (Cu committee fcc/hcp: members 4 GPa from their equilibrium,
  crossings off by up to 1 GPa, docs/phase_diagram.md). A cheap first look, not the default.

The result holds the mean potential's curves and crossings and, for a committee, every member's
first crossing (``transition_pressure_GPa_members``; ``None`` where a member has none on the
grid), their mean (``transition_pressure_GPa``) and population standard deviation (ddof 0,
``transition_pressure_GPa_std``) over the members that have one. Units: GPa, eV/atom, A^3/atom.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from ase import Atoms

from ..backend.evaluate import EvaluationResult, prepare_structures
from ..backend.inputs import structure_list
from ..backend.potential import AtomicGraph, Potential
from ..backend.precision import compute_precision
from ..backend.units import EV_A3_TO_GPA
from ..potentials.committee import committee_size, is_committee
from .phase_diagram import PT_RELAXATION, _relax_at_pressures, static_transitions
from .phonons import reduced_formula
from .plan import EvaluationPlan, analyse_members, evaluate_plans
from .relax import RelaxSettings, resolve_relaxation
from .result import PropertyResult, with_precision

__all__ = ["TransitionResult", "TransitionPlan", "plan_transition", "transition", "DEFAULT_PRESSURES_GPA"]

#: default pressure grid (GPa): 0 to 40 in steps of 5, covering the measured onsets of
#: ``phase_transitions.csv`` except GaN's
DEFAULT_PRESSURES_GPA = [float(x) for x in np.arange(0.0, 40.01, 5.0)]


@dataclass(frozen=True)
class TransitionResult(PropertyResult):
    """Static T = 0 transition(s) of one input structure (``phases[0]``) and its polymorphs.

    ``enthalpy_eV_per_atom``/``volume_A3_per_atom`` (n_phase, n_P): the model's (committee mean's)
    relaxed curves on ``pressures_GPa``; ``transitions_T0``: every change of the lowest-enthalpy
    phase (``low_pressure_phase``, ``high_pressure_phase``, ``pressure_GPa``);
    ``transition_pressure_GPa``: the first one (committee: mean of the members' first crossings)
    with ``low_pressure_phase``/``high_pressure_phase``; ``None`` when the lowest phase never
    changes on the grid. Committees: ``transition_pressure_GPa_members`` (per member, ``None``
    without a crossing), ``transition_pressure_GPa_std`` (ddof 0, over members with a crossing),
    ``n_members_with_transition``; ``transition_pressure_GPa_mean_potential``: the committee-mean
    potential's own crossing. ``material``/``transition``: the row of ``phase_transitions.csv``
    this pair belongs to (from the polymorph library; empty otherwise). Checks:
    ``relax_converged``; ``input_phase_lowest_at_first_pressure``; ``space_group_changed``: phases
    whose relaxed cell gained symmetry (spglib, symprec 1e-3 A) at some pressure, i.e. relaxed into
    another phase (``relaxed_space_groups`` (n_phase, n_P): spglib numbers of the relaxed cells);
    ``member_residual_pressure_GPa_max`` (``"mean"`` route): largest |P_member - P|
    at the mean-relaxed cells.
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = (
        "transition_pressure_GPa", "transition_pressure_GPa_std", "low_pressure_phase", "high_pressure_phase",
        "relax_converged")

    formula: str
    phases: list
    pressures_GPa: np.ndarray
    enthalpy_eV_per_atom: np.ndarray
    volume_A3_per_atom: np.ndarray
    transitions_T0: list
    transition_pressure_GPa: float | None
    low_pressure_phase: str | None
    high_pressure_phase: str | None
    relax_converged: bool
    input_phase_lowest_at_first_pressure: bool
    space_group_changed: list
    material: str = ""
    transition: str = ""
    n_members: int = 1
    committee_relaxation: str | None = None
    transition_pressure_GPa_mean_potential: float | None = None
    transition_pressure_GPa_std: float | None = None
    transition_pressure_GPa_members: list | None = None
    n_members_with_transition: int | None = None
    member_residual_pressure_GPa_max: float | None = None
    relaxed_space_groups: list = field(default_factory=list)


@dataclass
class TransitionPlan(EvaluationPlan):
    """The relaxed cells of every phase of every input at every pressure (``cells[s][i][k]``: index
    into ``structures`` of input s, phase i, pressure k) and what the analysis names them."""

    pressures_GPa: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cells: list = field(default_factory=list)
    phase_names: list = field(default_factory=list)
    labels: list = field(default_factory=list)  # (material, transition) per input
    converged: list = field(default_factory=list)
    space_groups: list = field(default_factory=list)  # per input: (n_phase, n_P) spglib numbers
    input_space_groups: list = field(default_factory=list)  # per input: per phase

    def input_index(self, k: int) -> int:
        for s, rows in enumerate(self.cells):
            if any(k in row for row in rows):
                return s
        return k

    def curves(self, answers: EvaluationResult, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(enthalpy eV/atom, volume A^3/atom, pressure GPa from the stress) (n_phase, n_P) of input s."""
        p = self.pressures_GPa
        idx = np.asarray(self.cells[s])
        n = np.array([[len(self.structures[j]) for j in row] for row in idx])
        vol = np.array([[self.structures[j].get_volume() for j in row] for row in idx]) / n
        e = np.asarray(answers.energies_eV, dtype=float)[idx] / n
        h = e + p[None, :] * vol / EV_A3_TO_GPA
        stress = np.asarray(answers.stress_eV_A3, dtype=float)[idx]  # (n_phase, n_P, 6), ASE sign
        p_model = -stress[..., :3].mean(axis=-1) * EV_A3_TO_GPA
        return h, vol, p_model

    def analyse(self, answers: EvaluationResult) -> list[TransitionResult]:
        out = []
        for s in range(len(self.cells)):
            h, v, _ = self.curves(answers, s)
            names = self.phase_names[s]
            t0 = static_transitions(self.pressures_GPa, h, v, names)
            first = t0[0] if t0 else {}
            sg, sg0 = np.asarray(self.space_groups[s]), self.input_space_groups[s]
            changed = [names[i] for i in range(len(names)) if np.any(sg[i] != sg0[i])]
            out.append(TransitionResult(
                formula=reduced_formula(self.structures[self.cells[s][0][0]]), phases=list(names),
                pressures_GPa=self.pressures_GPa.copy(), enthalpy_eV_per_atom=h, volume_A3_per_atom=v,
                transitions_T0=t0, transition_pressure_GPa=first.get("pressure_GPa"),
                low_pressure_phase=first.get("low_pressure_phase"), high_pressure_phase=first.get("high_pressure_phase"),
                relax_converged=bool(self.converged[s]), input_phase_lowest_at_first_pressure=bool(np.argmin(h[:, 0]) == 0),
                space_group_changed=changed, material=self.labels[s][0], transition=self.labels[s][1],
                relaxed_space_groups=sg.tolist()))
        return out


def _space_group(atoms: Atoms) -> int:
    import spglib

    ds = spglib.get_symmetry_dataset((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers), symprec=1e-3)
    return int(ds.number) if ds is not None else 0


def _phases(atoms: Atoms, index: int, polymorphs: Sequence[str]) -> tuple[list[str], list[Atoms], tuple[str, str]]:
    """Names and structures of input ``index`` and its partners, and its phase_transitions.csv key."""
    from ..polymorph_library import polymorph_entries, polymorphs_of
    from ..structure_library import solid_entries
    from ..structures import load_structure

    formula = reduced_formula(atoms)
    if polymorphs:
        chosen = [(n, load_structure(n)) for n in polymorphs]
        chosen = [(n, a) for n, a in chosen if reduced_formula(a) == formula]
        if not chosen:
            raise ValueError(f"structure {index}: none of the polymorphs {list(polymorphs)} has its composition "
                             f"{formula}")
    else:
        chosen = [(e.name, load_structure(e.name)) for e in polymorphs_of(formula)]
        if not chosen:
            raise ValueError(f"structure {index}: no high-pressure polymorph of {formula} in the polymorph library "
                             "(give 'polymorphs' by name)")
    entries = polymorph_entries()
    key = next(((entries[n].material, entries[n].transition) for n, _ in chosen if n in entries), ("", ""))
    sg = _space_group(atoms)
    low = next((entries[n].low_pressure_phase for n, _ in chosen if n in entries), None)
    solids = solid_entries()
    if low in solids and solids[low].space_group_number == sg:
        name = low
    else:
        name = f"input (space group {sg})"
    names = [name] + [n for n, _ in chosen]
    if len(set(names)) != len(names):
        raise ValueError(f"structure {index}: phase names {names} repeat")
    return names, [atoms] + [a for _, a in chosen], key


def plan_transition(
    potential: Any,
    structures: Any,
    *,
    polymorphs: list = [],  # noqa: B006 - read-only default, shown in the campaign schema
    pressures_GPa: list = DEFAULT_PRESSURES_GPA,  # noqa: B006
    relaxation: RelaxSettings | dict | bool | None = None,
    dtype: Any = None,
    device: Any = None,
) -> TransitionPlan:
    """Plan the static transitions of each structure (the low-pressure phase) against its
    polymorphs: relax every phase at every pressure (GPa; at least two), batched per pressure over
    all phases of all inputs, on the committee-mean surface for a committee. ``relaxation``:
    :data:`~mlip_props.properties.phase_diagram.PT_RELAXATION` by default (1e-4 eV/A, 1e-4 GPa,
    3000 steps; float32 potentials: no tighter than 1e-3 eV/A, 1e-2 GPa); cell relaxation cannot be
    switched off."""
    single, items = structure_list(structures)
    atoms_list = prepare_structures(items)
    p = np.asarray(sorted(float(x) for x in pressures_GPa), dtype=float)
    if len(p) < 2 or len(set(p.tolist())) != len(p):
        raise ValueError(f"a transition scan needs at least two distinct pressures, got {list(pressures_GPa)}")
    settings = resolve_relaxation(relaxation, PT_RELAXATION)
    if not settings.enabled or not settings.cell:
        raise ValueError("a transition scan relaxes every phase's cell at every pressure: relaxation cannot be "
                         "False or have cell=False")
    for k, a in enumerate(atoms_list):
        if not a.pbc.all():
            raise ValueError(f"structure {k}: a transition scan needs a periodic crystal")
    groups = [_phases(a, k, polymorphs) for k, a in enumerate(atoms_list)]
    flat = [at for _, ats, _ in groups for at in ats]
    relaxed = _relax_at_pressures(potential, flat, p, settings, dict(dtype=dtype or torch.float64, device=device))
    structures_out, cells, conv, sgs, sg0 = [], [], [], [], []
    offset = 0
    for names, ats, _ in groups:
        rows = []
        for i in range(len(names)):
            row = []
            for k in range(len(p)):
                row.append(len(structures_out))
                structures_out.append(relaxed[k][offset + i].atoms)
            rows.append(row)
        cells.append(rows)
        conv.append(all(relaxed[k][offset + i].converged for i in range(len(names)) for k in range(len(p))))
        sgs.append([[_space_group(relaxed[k][offset + i].atoms) for k in range(len(p))] for i in range(len(names))])
        sg0.append([_space_group(a) for a in ats])
        offset += len(names)
    return TransitionPlan(structures=structures_out, quantities=("energy", "stress"), single=single, pressures_GPa=p,
                          cells=cells, phase_names=[g[0] for g in groups], labels=[g[2] for g in groups],
                          converged=conv, space_groups=sgs, input_space_groups=sg0)


class _Member(Potential):
    """Member ``m`` of a committee as a single potential (per-atom energies (N,))."""

    def __init__(self, committee: Any, m: int):
        super().__init__(committee.cutoff, committee.elements)
        self.committee = committee
        self.m = int(m)
        self.bytes_per_edge = getattr(committee, "bytes_per_edge", Potential.bytes_per_edge)
        self.edge_only = bool(getattr(committee, "edge_only", False))

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        return self.committee(graph)[..., self.m]


def _first_crossing(r: TransitionResult) -> float | None:
    return r.transition_pressure_GPa


def transition(
    potential: Any,
    structures: Any,
    *,
    polymorphs: list = [],  # noqa: B006 - read-only default, shown in the campaign schema
    pressures_GPa: list = DEFAULT_PRESSURES_GPA,  # noqa: B006
    relaxation: RelaxSettings | dict | bool | None = None,
    committee_relaxation: str = "member",
    dtype: Any = None,
    device: Any = None,
) -> TransitionResult | list[TransitionResult]:
    """Static T = 0 transition pressure(s) (GPa) of each structure against its high-pressure
    polymorphs (``polymorphs``: names; empty = the polymorph library's entries of the structure's
    composition) on the grid ``pressures_GPa`` (default 0-40 GPa in 5 GPa steps): plan
    (:func:`plan_transition`), one evaluation, analysis. For a committee potential every member's
    crossing, their mean and spread (``committee_relaxation``: ``"member"``, each member relaxed on
    its own surface, default, or ``"mean"``, members read at the mean-relaxed cells; see the module
    docstring). One result for one structure, else a list."""
    if committee_relaxation not in ("mean", "member"):
        raise ValueError(f"committee_relaxation must be 'mean' or 'member', got {committee_relaxation!r}")
    kw = dict(polymorphs=polymorphs, pressures_GPa=pressures_GPa, relaxation=relaxation, dtype=dtype, device=device)
    plan = plan_transition(potential, structures, **kw)
    answers = evaluate_plans(potential, [plan], dtype=dtype, device=device)[0]
    precision = answers.precision or compute_precision(potential, dtype)
    mean = [with_precision(r, precision) for r in plan.analyse(answers.member_mean())]
    if is_committee(potential):
        n = committee_size(potential)
        if committee_relaxation == "mean":
            members = analyse_members(plan, answers)  # [member][structure]
            resid = [max(float(np.abs(plan.curves(a, s)[2] - plan.pressures_GPa[None, :]).max())
                         for a in answers.members()) for s in range(len(mean))]
        else:
            members = []
            for m in range(n):
                member = _Member(potential, m)
                mplan = plan_transition(member, structures, **kw)
                members.append(mplan.analyse(evaluate_plans(member, [mplan], dtype=dtype, device=device)[0]))
            resid = [None] * len(mean)
        out = []
        for s, r in enumerate(mean):
            per = [_first_crossing(members[m][s]) for m in range(n)]
            got = np.array([x for x in per if x is not None], dtype=float)
            out.append(dataclasses.replace(
                r, n_members=n, committee_relaxation=committee_relaxation,
                transition_pressure_GPa_mean_potential=r.transition_pressure_GPa,
                transition_pressure_GPa=float(got.mean()) if len(got) else None,
                transition_pressure_GPa_std=float(got.std()) if len(got) else None,
                transition_pressure_GPa_members=per, n_members_with_transition=int(len(got)),
                member_residual_pressure_GPa_max=resid[s]))
        mean = out
    return mean[0] if plan.single else mean
