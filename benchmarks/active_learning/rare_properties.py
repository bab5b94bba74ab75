"""The property table of the rare-event protocol: the committee loop's potential at the budget it
stopped at (arm 3, its final ``model.pt``) and the Boltzmann arm's potential at the same number of
oracle calls (arm 1, fitted from scratch on its first frames, as :func:`.rare_events.boltzmann_model`
does), each against EMT with :func:`.rare.all_properties` (a0, B, C11/C12/C44, X-point phonons,
vacancy formation energy, (111) surface energy, vacancy migration barrier) and the issue's
tolerances (:data:`.rare.TOLERANCES`).

:func:`final_fit_table` is the same table for a final fit of each arm's labelled frames with a larger
model (``--final-model large``): the committee arm's labels, chosen by the loop's small committee, and
the Boltzmann arm's frames at the same calls, both fitted from scratch with one architecture and
schedule; it also reports each final potential's test-set RMSEs and its members' spread per property."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

from mlip_props.backend import emt_oracle
from mlip_props.fitting import CommitteeMean
from mlip_props.potentials import load_model_file

from .rare import TOLERANCES, all_properties


def _row(props: dict, ref: dict) -> dict:
    rel = {k: props[k] / ref[k] - 1 for k in ref}
    return {"values": props, "rel_err": rel, "within": {k: abs(rel[k]) <= TOLERANCES[k] for k in TOLERANCES}}


def _emt_reference(workdir: Path) -> dict:
    """EMT's properties, cached in ``WORKDIR/properties_emt.json``."""
    path = workdir / "properties_emt.json"
    if path.is_file():
        return json.loads(path.read_text())
    emt = all_properties(emt_oracle())
    path.write_text(json.dumps(emt, indent=1))
    return emt


def _per_seed(workdir: Path, args: argparse.Namespace, cache_prefix: str,
              entry_of: Callable[[int, Path, int], dict]) -> dict[int, dict]:
    """``entry_of(seed, committee_folder, calls)`` for each seed whose committee run finished
    (``curve.json``; ``--property-seeds`` selects), at the calls it finished with; cached in
    ``WORKDIR/{cache_prefix}_sSEED.json``."""
    seeds: dict[int, dict] = {}
    for curve in sorted(workdir.glob("committee_s*/curve.json")):
        seed = int(curve.parent.name.rpartition("_s")[2])
        if getattr(args, "property_seeds", None) and seed not in args.property_seeds:
            continue
        cache = workdir / f"{cache_prefix}_s{seed}.json"
        if not cache.is_file():
            n = int(json.loads(curve.read_text())["calls"][-1])
            (workdir / f"boltzmann_s{seed}").mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"oracle_calls": n, **entry_of(seed, curve.parent, n)}, indent=1))
        seeds[seed] = json.loads(cache.read_text())
    return seeds


def _summary(seeds: dict[int, dict], *extra: str) -> dict:
    """Per seed: calls, tolerances met per arm, and the arms' ``extra`` fields."""
    return {seed: {"calls": e["oracle_calls"],
                   "committee_within": sum(e["committee"]["within"].values()),
                   "boltzmann_within": sum(e["boltzmann"]["within"].values()),
                   **{f"{arm}_{k}": e[arm][k] for k in extra for arm in ("committee", "boltzmann")},
                   "of": len(TOLERANCES)} for seed, e in seeds.items()}


def property_table(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One entry per seed whose committee run finished (``curve.json``): the oracle calls, and the
    committee arm's and the Boltzmann arm's values, relative errors and pass/fail per property.
    Results are cached per seed in ``WORKDIR/properties_sSEED.json``."""
    from mlip_props.potentials import save_potential

    from .rare_events import boltzmann_frames, boltzmann_model, labelled_seeds

    emt = _emt_reference(workdir)

    def entry_of(seed: int, folder: Path, n: int) -> dict:
        t0 = time.perf_counter()
        committee = all_properties(CommitteeMean(load_model_file(folder / "model.pt")))
        t1 = time.perf_counter()
        path = workdir / f"boltzmann_s{seed}" / f"model_{n}.pt"
        if not path.is_file():  # the same frames and fit as the arm itself (deterministic in the seed)
            save_potential(boltzmann_model(labelled_seeds(seed), boltzmann_frames(n, seed, args.stride), n, args, seed),
                           path)
        boltzmann = all_properties(CommitteeMean(load_model_file(path)))
        return {"committee": _row(committee, emt), "boltzmann": _row(boltzmann, emt),
                "seconds": {"committee_properties": t1 - t0, "boltzmann_fit_and_properties": time.perf_counter() - t1}}

    seeds = _per_seed(workdir, args, "properties", entry_of)
    return {"emt": emt, "tolerances": TOLERANCES, "seeds": seeds, "summary": _summary(seeds)}


def large_model_config(seed: int) -> Any:
    """The final fit's settings: the descriptor preset's defaults for Cu (20 symmetry functions,
    cutoff 5 A), 4 members of 32-32, the loop's initial schedule (300 epochs, default weights)."""
    from mlip_props.fitting.active.config import ActiveLearningConfig
    from mlip_props.fitting.descriptors import preset

    return ActiveLearningConfig(committee=4, hidden=(32, 32), descriptor=preset(["Cu"]).to_dict(), seed=seed)


def _final_entry(frames_of: Any, path: Path, seed: int, emt: dict, typical: list, rare: list) -> dict:
    """Fit (or load) the final potential at ``path``; its properties vs EMT, the members' spread
    (standard deviation over members, relative to EMT) and its test-set force RMSEs (meV/A)."""
    import numpy as np

    from mlip_props.fitting.active.retrain import fresh_fit
    from mlip_props.potentials import save_potential

    from .rare_events import _rmse

    t0 = time.perf_counter()
    if not path.is_file():
        save_potential(fresh_fit(frames_of(), large_model_config(seed), seed), path)
    model = load_model_file(path)
    row = _row(all_properties(CommitteeMean(model)), emt)
    members = [all_properties(model.member(m)) for m in range(model.n_members)]
    row["member_std_rel"] = {k: float(np.std([r[k] for r in members], ddof=1) / emt[k]) for k in TOLERANCES}
    row["rare_meV_A"], row["typical_meV_A"] = _rmse(model, rare), _rmse(model, typical)
    row["seconds"] = time.perf_counter() - t0
    return row


def final_fit_table(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`property_table` with both arms' labels refitted by :func:`large_model_config`; cached
    per seed in ``WORKDIR/properties_large_sSEED.json`` (models ``model_large*.pt`` in the arm folders)."""
    from ase.io import read

    from .rare_events import boltzmann_frames, first_calls, labelled_seeds, test_sets

    emt = _emt_reference(workdir)
    typical, rare = test_sets(workdir, args.typical_per_set, args.rare_per_kind)

    def entry_of(seed: int, folder: Path, n: int) -> dict:
        return {"committee": _final_entry(lambda: read(folder / "data.extxyz", ":"), folder / "model_large.pt",
                                          seed, emt, typical, rare),
                "boltzmann": _final_entry(lambda: first_calls(labelled_seeds(seed), boltzmann_frames(n, seed, args.stride), n),
                                          workdir / f"boltzmann_s{seed}" / f"model_large_{n}.pt", seed, emt, typical, rare)}

    seeds = _per_seed(workdir, args, "properties_large", entry_of)
    config = large_model_config(0)
    return {"emt": emt, "tolerances": TOLERANCES, "model": config.descriptor, "hidden": list(config.hidden),
            "seeds": seeds, "summary": _summary(seeds, "rare_meV_A")}
