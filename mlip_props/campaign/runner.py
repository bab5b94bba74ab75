"""Campaign execution: plan work, group it into batches per property, run in-process or on Dask.

Work items are (structure, property, parameters) for one potential. Items of one property and
parameter set are cut, in campaign order, into fixed batches of ``batch_size`` structures; a batch
is ONE call ``prop(potential, [structures...], **params)`` (so the property sends all of them
through the backend together) and its rows are committed in ONE database transaction. Batch
boundaries depend only on the campaign, never on what is already done, so a resumed run
recomputes exactly the batches that were lost, with the same composition, and gives the same
numbers as an uninterrupted run.

Failures are isolated: a structure that cannot be read, fails the checks (no atoms, NaN
positions, zero-volume cell, atoms closer than ``min_distance_A``, elements the potential does
not know) or makes the property raise is recorded as ``failed`` with its error; when a whole
batch raises, it is bisected until the failing structures are found and the rest complete.

Scale-out: with a Dask ``distributed`` scheduler address, batches are submitted as tasks
(``retries=2``; a task whose worker dies is rescheduled by Dask) and the driver writes their
rows as they complete. The worker runs the same :func:`run_batch` as the in-process runner.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
from ase import Atoms

from .. import __version__
from ..properties.result import jsonable
from .database import ResultsDB, RowRecord, claim_owner
from .potential_spec import potential_identity, resolve_potential_spec
from .registry import get_property
from .schema import Campaign, name_problem
from .sources import StructureItem, expand_sources
from ..validation import reraise_control

__all__ = ["WorkItem", "BatchTask", "RunSummary", "plan_work", "make_batches", "run_batch", "run_campaign",
           "potential_identity", "check_structure"]

log = logging.getLogger("mlip_props.campaign")


# ------------------------------------------------------------------------------------- identity
def _canonical(obj: Any) -> str:
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"))


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(params).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------- planning
@dataclass
class WorkItem:
    key: str
    item: StructureItem
    prop: str
    params: dict[str, Any]
    params_hash: str
    group: int  # index of the (property, params) request


@dataclass
class BatchTask:
    """Everything a worker needs for one batch (picklable): rows of one or several
    (property, parameters) requests, each ``(work key, label, atoms, load error, property, params)``."""

    potential: Any
    entries: list[tuple[str, str, Atoms | None, str | None, str, dict[str, Any]]]
    min_distance_A: float
    batch_id: str
    #: the user's opt-in to unpickle a model file that is code (``--trust-model-file``)
    trusted: bool = False

    @property
    def props(self) -> list[str]:
        """The properties of this batch's rows, in order of first appearance."""
        return list(dict.fromkeys(e[4] for e in self.entries))


@dataclass
class Outcome:
    key: str
    status: str
    result: dict[str, Any] | None
    error: str | None
    host: str
    elapsed_s: float


def plan_work(camp: Campaign, items: list[StructureItem], potential_hash: str) -> list[WorkItem]:
    work = []
    for g, req in enumerate(camp.properties):
        ph = params_hash(req.params)
        for it in items:
            key = hashlib.sha256(f"{it.fingerprint}|{it.label}|{req.name}|{potential_hash}|{ph}".encode()).hexdigest()[:32]
            work.append(WorkItem(key, it, req.name, req.params, ph, g))
    return work


def make_batches(work: list[WorkItem], batch_size: int, joint: bool = True) -> list[list[WorkItem]]:
    """Fixed batches of ``batch_size`` consecutive structures (campaign order). ``joint``: a batch
    holds every (property, params) request of its structures, planned together and evaluated in
    as few backend calls as possible (:func:`run_batch`); otherwise one batch per request and
    structure chunk. Boundaries depend only on the campaign, never on what is already done."""
    by_group: dict[int, list[WorkItem]] = {}
    for w in work:
        by_group.setdefault(w.group, []).append(w)
    if not joint:
        out = []
        for g in sorted(by_group):
            ws = by_group[g]
            out.extend(ws[i:i + batch_size] for i in range(0, len(ws), batch_size))
        return out
    n = max((len(ws) for ws in by_group.values()), default=0)
    return [[w for g in sorted(by_group) for w in by_group[g][i:i + batch_size]] for i in range(0, n, batch_size)]


# ------------------------------------------------------------------------------------- worker side
_POTENTIALS: dict[str, Any] = {}


def _potential(spec: Any, trusted: bool = False) -> Any:
    key = f"{_canonical(spec)}|trusted={bool(trusted)}"
    if key not in _POTENTIALS:
        from ..potentials import load_potential

        _POTENTIALS[key] = load_potential(spec, trusted=trusted)
    return _POTENTIALS[key]


def check_structure(atoms: Atoms, potential: Any, min_distance_A: float) -> None:
    """Raise ``ValueError`` if ``atoms`` cannot be computed: the backend's checks (atoms present,
    finite positions and cell, non-singular cell), atoms closer than ``min_distance_A`` (A),
    and elements the potential does not support."""
    from ..backend.batch import validate_atoms

    validate_atoms(atoms, 0)
    if min_distance_A > 0 and len(atoms) > 1:
        from ase.neighborlist import neighbor_list

        a = atoms
        if not a.pbc.any():  # ASE's neighbour list wants a cell when there is no periodicity
            a = atoms.copy()
            a.center(vacuum=min_distance_A + 1.0)
        i, j, d = neighbor_list("ijd", a, min_distance_A)
        if len(d):
            m = int(np.argmin(d))
            raise ValueError(f"structure 0: atoms {int(i[m])} and {int(j[m])} overlap (distance {d[m]:.3g} A < "
                             f"min_distance_A = {min_distance_A} A)")
    if getattr(potential, "is_oracle", False):
        potential.check_atoms(atoms, 0)
    elif getattr(potential, "elements", None) is not None:
        from ase.data import chemical_symbols

        known = {chemical_symbols[int(z)] for z in potential.elements}
        bad = set(atoms.get_chemical_symbols()) - known
        if bad:
            raise ValueError(f"structure 0: element(s) {', '.join(sorted(bad))} not supported by the potential "
                             f"(supported: {', '.join(sorted(known))})")


def _err(exc: BaseException, label: str) -> str:
    msg = str(exc).replace("structure 0:", f"structure {label!r}:")
    return f"{type(exc).__name__}: {msg}"


def _result_dict(r: Any) -> dict[str, Any]:
    d = r.to_dict() if hasattr(r, "to_dict") else jsonable(r)
    if not isinstance(d, dict):
        d = {"value": d}
    json.dumps(d)  # must be JSON-serialisable
    return d


def _run_isolating(func: Callable, potential: Any, atoms: list[Atoms], labels: list[str],
                   params: dict[str, Any]) -> list[tuple[dict | None, str | None]]:
    """Run the property on all structures; bisect on failure to isolate the bad ones."""
    try:
        res = func(potential, [a.copy() for a in atoms], **params)
        if not isinstance(res, (list, tuple)):
            res = [res]
        if len(res) != len(atoms):
            raise RuntimeError(f"property returned {len(res)} results for {len(atoms)} structures")
        return [(_result_dict(r), None) for r in res]
    except BaseException as exc:  # noqa: BLE001 - a property's failure is data, not a crash
        reraise_control(exc)
        if len(atoms) == 1:
            return [(None, _err(exc, labels[0]))]
        h = len(atoms) // 2
        return (_run_isolating(func, potential, atoms[:h], labels[:h], params)
                + _run_isolating(func, potential, atoms[h:], labels[h:], params))


def _run_planned(plans: dict[tuple[str, str], tuple[Any, list[str]]], potential: Any,
                 outcomes: dict[str, tuple[str, dict | None, str | None]]) -> set[tuple[str, str]]:
    """Evaluate the plans of several requests in one :func:`~mlip_props.properties.plan.evaluate_plans`
    call and analyse each; returns the requests that must be recomputed one by one (their joint
    evaluation or their analysis raised)."""
    from ..properties.plan import evaluate_plans
    from ..properties.result import with_precision

    groups = list(plans)
    try:
        answers = evaluate_plans(potential, [plans[g][0] for g in groups])
    except BaseException as exc:  # noqa: BLE001 - recomputed request by request, with isolation
        reraise_control(exc)
        return set(groups)
    redo = set()
    for g, ans in zip(groups, answers):
        plan, keys = plans[g]
        try:
            # a plan that analyses a committee's members too (conductivity: each member's kappa, their mean and
            # spread) gets the whole committee's answers; the others the committee-mean potential's
            committee = getattr(plan, "analyse_committee", None)
            analysed = committee(ans) if committee is not None and ans.n_members else plan.analyse(ans.member_mean())
            results = [with_precision(r, ans.precision) for r in analysed]
            for key, r in zip(keys, results, strict=True):
                outcomes[key] = ("done", _result_dict(r), None)
        except BaseException as exc:  # noqa: BLE001
            reraise_control(exc)
            redo.add(g)
    return redo


def run_batch(task: BatchTask) -> list[Outcome]:
    """Compute one batch (in-process or on a Dask worker); never raises for a bad structure.

    Rows are grouped by request (property, params). Requests whose property has a plan
    (:mod:`mlip_props.properties.plan`) are planned together (starting-point relaxations shared,
    :func:`~mlip_props.properties.relax.shared_relaxations`) and answered by one joint evaluation;
    the others, and any request whose joint route fails, run through the property function with
    failures isolated by bisection."""
    from ..properties.relax import shared_relaxations

    t0 = time.perf_counter()
    host = socket.gethostname()
    outcomes: dict[str, tuple[str, dict | None, str | None]] = {}
    try:
        potential = _potential(task.potential, task.trusted)
        specs = {p: get_property(p) for p in task.props}
    except Exception as exc:  # noqa: BLE001
        e = f"{type(exc).__name__}: {exc}"
        return [Outcome(k, "failed", None, e, host, 0.0) for k, *_ in task.entries]
    groups: dict[tuple[str, str], tuple[str, dict[str, Any], list[tuple[str, str, Atoms]]]] = {}
    for key, label, atoms, error, prop, params in task.entries:
        if error is not None or atoms is None:
            outcomes[key] = ("failed", None, error or "no structure")
            continue
        try:
            check_structure(atoms, potential, task.min_distance_A)
        except BaseException as exc:  # noqa: BLE001
            reraise_control(exc)
            outcomes[key] = ("failed", None, _err(exc, label))
            continue
        groups.setdefault((prop, params_hash(params)), (prop, params, []))[2].append((key, label, atoms))
    with shared_relaxations():
        plans: dict[tuple[str, str], tuple[Any, list[str]]] = {}
        for g, (prop, params, rows) in groups.items():
            plan_func = getattr(specs[prop], "plan", None)
            if plan_func is None:
                continue
            try:
                plans[g] = (plan_func(potential, [a.copy() for _, _, a in rows], **params), [k for k, _, _ in rows])
            except BaseException as exc:  # noqa: BLE001 - planned again, with isolation, below
                reraise_control(exc)
        redo = _run_planned(plans, potential, outcomes) if plans else set()
        for g, (prop, params, rows) in groups.items():
            if g in plans and g not in redo:
                continue
            keys, labels, atoms = zip(*rows)
            for key, (res, err) in zip(keys, _run_isolating(specs[prop].func, potential, list(atoms), list(labels),
                                                            params)):
                outcomes[key] = ("done", res, None) if err is None else ("failed", None, err)
    dt = (time.perf_counter() - t0) / max(1, len(task.entries))
    return [Outcome(k, *outcomes[k], host, dt) for k, *_ in task.entries]


# ------------------------------------------------------------------------------------- driver
@dataclass
class RunSummary:
    db: str
    n_structures: int
    n_work: int
    n_already: int
    n_computed: int
    n_done: int
    n_failed: int
    n_lost: int
    elapsed_s: float
    skipped_properties: list[tuple[str, str]] = field(default_factory=list)
    compute_s: float = 0.0  # summed wall time inside run_batch (property calls and checks)
    write_s: float = 0.0  # summed wall time of database transactions
    plan_s: float = 0.0  # reading the campaign's structures, keys and the database before the first batch

    @property
    def overhead_fraction(self) -> float:
        """Share of the run not spent computing (planning + database + scheduling), in-process runs."""
        return max(0.0, 1.0 - self.compute_s / self.elapsed_s) if self.elapsed_s > 0 else 0.0

    @property
    def complete(self) -> bool:
        return self.n_lost == 0


#: seconds a runner's claim on rows lasts (``options.claim_ttl_s``): after it, a runner killed
#: before writing those rows no longer holds them and another runner computes them
DEFAULT_CLAIM_TTL_S = 3600.0


def default_db_path(camp: Campaign) -> str:
    """``options.db`` or ``<name>.db``, relative to the current directory (outputs go where the
    user runs, inputs are found relative to the campaign file)."""
    db = camp.options.get("db") or f"{camp.name if camp.name and not name_problem(camp.name) else 'campaign'}.db"
    return db if "://" in str(db) else str(Path(os.path.expanduser(str(db))).resolve())


def run_campaign(
    camp: Campaign,
    db: str | None = None,
    *,
    scheduler: Any = None,
    workers: int | None = None,
    batch_size: int | None = None,
    retry_failed: bool | None = None,
    progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Run a validated campaign; returns a :class:`RunSummary`.

    ``db``: results database (file or ase.db URL; default the campaign's ``options.db`` or
    ``<name>.db`` in the current directory). ``scheduler``: a Dask scheduler address
    (``tcp://host:port``) or a ``distributed.Client``; ``workers``: start a local Dask cluster
    with that many worker processes instead. Only work whose key is not in the database yet is
    computed (plus failed rows with ``retry_failed``).
    """
    t0 = time.perf_counter()
    db_url = db or default_db_path(camp)
    rdb = ResultsDB(db_url)
    pot_spec = resolve_potential_spec(camp.potential, camp.base_dir)
    pot_name, pot_hash = potential_identity(pot_spec)
    items = expand_sources(camp)
    work = plan_work(camp, items, pot_hash)
    bs = int(batch_size or camp.options.get("batch_size") or 16)
    retry = camp.options.get("retry_failed", False) if retry_failed is None else retry_failed
    present = rdb.keys()
    failed_present = rdb.keys("failed") if retry else set()
    todo_keys = {w.key for w in work if w.key not in present or w.key in failed_present}
    joint = bool(camp.options.get("joint_batches", True))
    batches = []
    for bi, b in enumerate(make_batches(work, bs, joint=joint)):
        todo = [w for w in b if w.key in todo_keys]
        if todo:
            batches.append((f"{'+'.join(dict.fromkeys(w.prop for w in b))}:{bi}", todo))
    by_key = {w.key: w for w in work}
    plan_s = time.perf_counter() - t0
    compute_s = 0.0
    write_s = 0.0
    n_todo = sum(len(b) for _, b in batches)
    meta_common = {"potential": pot_name, "potential_hash": pot_hash, "campaign": camp.name,
                   "mlip_props_version": __version__}
    log.info("campaign %s: %d structures x %d properties = %d rows; %d present, %d to compute in %d batches",
             camp.name, len(items), len(camp.properties), len(work), len(work) - n_todo, n_todo, len(batches))

    tasks = [BatchTask(pot_spec, [(w.key, w.item.label, w.item.atoms, w.item.error, w.prop, w.params) for w in b],
                       float(camp.options.get("min_distance_A", 0.5)), bid, trusted=camp.trust_model_file)
             for bid, b in batches]

    bar = None
    prop_bars: dict[str, Any] = {}
    if progress and n_todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_todo, desc=f"{camp.name} (all)", unit="row", position=0)
        per_prop: dict[str, int] = {}
        for t in tasks:
            for e in t.entries:
                per_prop[e[4]] = per_prop.get(e[4], 0) + 1
        if len(per_prop) > 1:
            for k, (p, n) in enumerate(per_prop.items()):
                prop_bars[p] = tqdm(total=n, desc=f"  {p}", unit="row", position=k + 1, leave=False)
    n_done = n_failed = n_written = 0

    def write(task: BatchTask, outcomes: list[Outcome]) -> None:
        nonlocal n_done, n_failed, n_written, compute_s, write_s
        compute_s += sum(o.elapsed_s for o in outcomes)
        tw = time.perf_counter()
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        recs = []
        for o in outcomes:
            w = by_key[o.key]
            meta = dict(meta_common, params_hash=w.params_hash, host=o.host, batch=task.batch_id,
                        elapsed_s=round(o.elapsed_s, 6), time_utc=now, params=w.params)
            recs.append(RowRecord(o.key, w.item.label, w.prop, w.params, o.status, w.item.atoms, o.result,
                                  o.error, w.item.source, meta))
        n_written += rdb.write_batch(recs, replace_failed=retry)
        write_s += time.perf_counter() - tw
        n_done += sum(o.status == "done" for o in outcomes)
        n_failed += sum(o.status == "failed" for o in outcomes)
        if bar is not None:
            bar.set_postfix_str(f"{'+'.join(task.props)} failed={n_failed}")
            bar.update(len(outcomes))
        for o in outcomes:
            if by_key[o.key].prop in prop_bars:
                prop_bars[by_key[o.key].prop].update(1)
        if on_batch is not None:
            on_batch(n_done + n_failed, n_todo)

    lost = 0
    client, cluster = None, None
    try:
        if scheduler is not None or workers:
            from distributed import Client, LocalCluster, as_completed

            if scheduler is None:
                cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                       dashboard_address=None)
                client = Client(cluster)
            elif isinstance(scheduler, str):
                client = Client(scheduler)
            else:
                client = scheduler
            futs = {client.submit(run_batch, t, pure=False, retries=2): t for t in tasks}
            for fut in as_completed(list(futs)):
                t = futs[fut]
                try:
                    write(t, fut.result())
                except Exception as exc:  # noqa: BLE001 - worker lost beyond retries: leave for a rerun
                    lost += len(t.entries)
                    log.error("batch %s lost (%s: %s); rerun the campaign to compute it", t.batch_id,
                              type(exc).__name__, exc)
        else:
            # runners sharing one database claim each batch's rows before computing them, so
            # concurrent runners split the work; a claim expires after claim_ttl_s
            owner = claim_owner()
            ttl = float(camp.options.get("claim_ttl_s", DEFAULT_CLAIM_TTL_S))
            for t in tasks:
                mine = set(rdb.claim([e[0] for e in t.entries], owner, ttl, retry_failed=bool(retry)))
                if not mine:
                    continue
                if len(mine) < len(t.entries):
                    t = dataclasses.replace(t, entries=[e for e in t.entries if e[0] in mine])
                try:
                    write(t, run_batch(t))
                finally:
                    rdb.release(mine, owner)
    finally:
        for b in prop_bars.values():
            b.close()
        if bar is not None:
            bar.close()
        if cluster is not None:
            client.close()
            cluster.close()
        elif client is not None and isinstance(scheduler, str):
            client.close()
    return RunSummary(db_url, len(items), len(work), len(work) - n_todo, n_written, n_done, n_failed, lost,
                      time.perf_counter() - t0, list(camp.skipped_properties), compute_s, write_s, plan_s)


def campaign_env_threads() -> int:  # pragma: no cover - informational
    return int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
