"""One shape for every property: plan -> evaluate -> analyse.

A property is computed in three steps, as ASE's ``Vibrations`` (displace, run, read) and phonopy's
``Phonopy`` (hand out displaced supercells, take forces back) do it:

1. **plan**: ``plan_<property>(potential, structures, ...)`` returns an :class:`EvaluationPlan`:
   the structures whose energies, forces, stresses or Hessians the property needs
   (``plan.structures``, ``plan.quantities``) and the bookkeeping to read them back. Relaxations
   that decide where those structures are (the starting cell, ions at each strain) happen while
   planning, batched, on the committee-mean surface for a committee.
2. **evaluate**: one backend call answers the plan (:func:`evaluate_plans` answers many plans,
   of many properties and structures, in as few calls as their quantities allow).
3. **analyse**: ``plan.analyse(answers)`` turns an :class:`~mlip_props.backend.EvaluationResult`
   of a single potential into the property's results (one per input structure). For a
   committee, ``answers.member(m)`` is member m's column and ``answers.member_mean()`` the
   committee mean's: :func:`analyse_members` analyses every member of one evaluation.

The one-call property functions (``equation_of_state(potential, structures)``) are
:func:`compute`: plan + evaluate + analyse.
"""
from __future__ import annotations

import functools
import inspect
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from ase import Atoms

from ..backend.evaluate import EvaluationResult, evaluate
from ..backend.precision import compute_precision
from .result import with_precision


@dataclass
class EvaluationPlan:
    """The structures a property needs evaluated, what to compute for them, and how to read the
    answers back (subclasses add their bookkeeping and implement :meth:`analyse`).

    ``single``: the property was asked for one structure (the one-call function then returns one
    result instead of a list). ``quantities``: a subset of ``("energy", "forces", "stress",
    "hessian")``.
    """

    structures: list[Atoms]
    quantities: tuple[str, ...]
    single: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def analyse(self, answers: EvaluationResult) -> list[Any]:  # pragma: no cover - abstract
        """Results (one per input structure) from a single potential's answers to this plan."""
        raise NotImplementedError

    def input_index(self, k: int) -> int:
        """The input structure that ``structures[k]`` was built from (for error messages)."""
        return k

    def empty_answers(self) -> EvaluationResult:
        """The answers of a plan without structures (a property computed from earlier results)."""
        return EvaluationResult(energies_eV=np.zeros(0), forces_eV_A=[], stress_eV_A3=np.zeros((0, 6)),
                                hessians_eV_A2=[], n_atoms=np.zeros(0, dtype=int), precision=None)


def evaluate_plans(potential: Any, plans: Sequence[EvaluationPlan], *, dtype: Any = None, device: Any = None,
                   memory_budget: int | None = None) -> list[EvaluationResult]:
    """Answer many plans with as few backend calls as possible: one call for every plan without
    Hessians (the union of their quantities: energies, forces and stresses come from the same
    backward pass), one to the backend's Hessian-row engine for the plans that need only some rows
    (phonons), one for the plans that need full Hessians. Returns one result per plan, in order
    (committee results keep their member axis)."""
    kw = dict(dtype=dtype or torch.float64, device=device, memory_budget=memory_budget)
    out: list[EvaluationResult | None] = [None] * len(plans)
    groups: dict[bool, list[int]] = {False: [], True: []}
    for k, p in enumerate(plans):
        if not p.structures:
            out[k] = p.empty_answers()
        else:
            groups["hessian" in p.quantities].append(k)
    for wants_hessian, members in groups.items():
        row_plans = [k for k in members if wants_hessian and getattr(plans[k], "hessian_rows", None) is not None]
        if row_plans:  # plans that need only some Hessian rows (phonons): the backend's row engine
            from ..backend.hessian_rows import evaluate_hessian_rows

            for k in row_plans:
                if "stress" in plans[k].quantities:
                    raise ValueError(f"plan {k}: Hessian rows come with energies and forces, not stress")
            rows = [np.asarray(r) for k in row_plans for r in plans[k].hessian_rows]
            res = _named_errors(plans, row_plans, lambda structures: evaluate_hessian_rows(
                potential, structures, rows, dtype=kw["dtype"], device=device), rows=rows)
            _split(res, plans, row_plans, out)
            members = [k for k in members if k not in row_plans]
        if not members:
            continue
        quantities = tuple(q for q in ("energy", "forces", "stress", "hessian")
                           if any(q in plans[k].quantities for k in members))
        res = _named_errors(plans, members, lambda structures: evaluate(potential, structures, quantities, **kw))
        _split(res, plans, members, out)
    return out  # type: ignore[return-value]


def _split(res: EvaluationResult, plans: Sequence[EvaluationPlan], members: list[int], out: list) -> None:
    start = 0
    for k in members:
        n = len(plans[k].structures)
        out[k] = res.select(slice(start, start + n))
        start += n


_STRUCTURE_INDEX = re.compile(r"\bstructure (\d+)\b")


def _named_errors(plans: Sequence[EvaluationPlan], members: list[int], run: Callable[[list], EvaluationResult],
                  rows: list[np.ndarray] | None = None) -> EvaluationResult:
    """``run`` on the distinct structures of ``members`` (a structure that several plans ask for, as
    phonons and thermal properties ask for the same supercells, is evaluated once; ``rows``: the
    Hessian rows asked for each structure, part of what makes two requests the same), answers
    returned for every structure in order. A ``ValueError`` that names a structure by its place in
    the joint call is re-raised naming the input structure of its plan it was built from."""
    structures = [s for k in members for s in plans[k].structures]
    owners = [(k, i) for k in members for i in range(len(plans[k].structures))]
    first, inverse = distinct_requests(structures, rows)
    if rows is not None:
        rows[:] = [rows[j] for j in first]

    def source_of(index: int) -> tuple[int, str]:
        k, i = owners[first[index]]
        return plans[k].input_index(i), f"{type(plans[k]).__name__.removesuffix('Plan').lower()} cell #{i}"

    with errors_name_inputs(source_of):
        res = run([structures[j] for j in first])
    if len(first) == len(structures):
        return res
    out = res.select(inverse)
    for answers in (out.forces_eV_A, out.hessians_eV_A2):  # each request gets its own arrays
        seen: set[int] = set()
        for j, u in enumerate(inverse):
            if answers is not None and u in seen:
                answers[j] = np.array(answers[j], copy=True)
            seen.add(u)
    return out


def _request_key(atoms: Atoms, rows: np.ndarray | None) -> bytes:
    """Bytes that equal for two requests exactly when they ask the same question of a potential:
    species, positions, cell, periodicity, per-atom charges and magnetic moments, the scalar
    ``info`` entries (charge, spin ...) and the Hessian rows asked for."""
    parts = [np.asarray(atoms.numbers, np.int64).tobytes(), np.asarray(atoms.positions, np.float64).tobytes(),
             np.asarray(atoms.cell.array, np.float64).tobytes(), np.asarray(atoms.pbc, bool).tobytes()]
    for name in ("initial_charges", "initial_magmoms"):
        if atoms.has(name):
            parts.append(name.encode() + np.asarray(atoms.arrays[name], np.float64).tobytes())
    info = sorted((str(k), repr(v)) for k, v in atoms.info.items() if isinstance(v, (str, int, float, bool)))
    parts.append(repr(info).encode())
    if rows is not None:
        parts.append(b"rows" + np.asarray(rows, np.int64).tobytes())
    return b"\x00|".join(parts)


def distinct_requests(structures: Sequence[Atoms], rows: Sequence[np.ndarray] | None = None
                      ) -> tuple[list[int], list[int]]:
    """``(first, inverse)``: the index of the first of each distinct request (structure, and its
    Hessian rows when given) and, for every request, the position of its distinct one in ``first``."""
    seen: dict[bytes, int] = {}
    first: list[int] = []
    inverse: list[int] = []
    for j, atoms in enumerate(structures):
        key = _request_key(atoms, None if rows is None else rows[j])
        if key not in seen:
            seen[key] = len(first)
            first.append(j)
        inverse.append(seen[key])
    return first, inverse


@contextmanager
def errors_name_inputs(source_of: Callable[[int], tuple[int, str]]) -> Iterator[None]:
    """Re-raise a ``ValueError`` that names ``structure N`` of a derived list (strained cells, volume
    points, supercells) as one naming the input structure it was built from:
    ``source_of(N) -> (input index, what N is)``."""
    try:
        yield
    except ValueError as exc:
        m = _STRUCTURE_INDEX.search(str(exc))
        if m is None:
            raise
        try:
            source, what = source_of(int(m.group(1)))
        except IndexError:
            raise exc from None
        text = _STRUCTURE_INDEX.sub(f"structure {source}", str(exc), count=1)
        raise ValueError(f"{text} (in the {what} built from it)") from exc


def count_backend_calls(plans: Sequence[EvaluationPlan]) -> int:
    """How many backend calls :func:`evaluate_plans` makes for ``plans``: one for the plans without
    Hessians, one for those that need Hessian rows (the row engine), one for full Hessians."""
    kinds = set()
    for p in plans:
        if not p.structures:
            continue
        if "hessian" not in p.quantities:
            kinds.add("no hessian")
        else:
            kinds.add("rows" if getattr(p, "hessian_rows", None) is not None else "full hessian")
    return len(kinds)


def compute(potential: Any, plan: EvaluationPlan, *, dtype: Any = None, device: Any = None) -> Any:
    """Evaluate and analyse one plan with the committee mean of ``potential`` (the potential itself
    for a single model): one result for a single structure, else a list."""
    answers = evaluate_plans(potential, [plan], dtype=dtype, device=device)[0]
    precision = answers.precision or compute_precision(potential, dtype)
    results = [with_precision(r, precision) for r in plan.analyse(answers.member_mean())]
    return results[0] if plan.single else results


def analyse_members(plan: EvaluationPlan, answers: EvaluationResult) -> list[list[Any]]:
    """``[member][structure]`` results: the plan analysed with each member's column of one
    committee evaluation (a single potential gives one member)."""
    return [[with_precision(r, a.precision) for r in plan.analyse(a)] for a in answers.members()]


def one_call(plan_function: Callable[..., EvaluationPlan]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the one-call form of a property from its plan function.

    ``@one_call(plan_eos) def equation_of_state(potential, structures, **options): "docs"`` makes
    ``equation_of_state`` plan, evaluate and analyse (:func:`compute`), with ``plan_eos``'s
    parameters (its signature is the one ``help()``, IDEs and the campaign schema see) and the
    decorated function's docstring and return annotation; the decorated body is never run."""
    plan_signature = inspect.signature(plan_function)

    def decorate(documented: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(documented)
        def run(potential: Any, structures: Any, *args: Any, **options: Any) -> Any:
            bound = plan_signature.bind(potential, structures, *args, **options)
            plan = plan_function(*bound.args, **bound.kwargs)
            return compute(potential, plan, dtype=bound.arguments.get("dtype"), device=bound.arguments.get("device"))

        returns = inspect.signature(documented).return_annotation
        run.__signature__ = plan_signature.replace(return_annotation=returns)  # type: ignore[attr-defined]
        del run.__wrapped__  # the signature is the plan's, not the documented stub's
        return run

    return decorate
