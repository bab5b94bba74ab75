"""The property table of the rare-event protocol: the committee loop's potential at the budget it
stopped at (arm 3, its final ``model.pt``) and the Boltzmann arm's potential at the same number of
oracle calls (arm 1, fitted from scratch on its first frames, as :func:`.rare_events.boltzmann_model`
does), each against EMT with :func:`.rare.all_properties` (a0, B, C11/C12/C44, X-point phonons,
vacancy formation energy, (111) surface energy, vacancy migration barrier) and the issue's
tolerances (:data:`.rare.TOLERANCES`)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from mlip_props.backend import emt_oracle
from mlip_props.fitting import CommitteeMean
from mlip_props.potentials import load_model_file

from .rare import TOLERANCES, all_properties


def _row(props: dict, ref: dict) -> dict:
    rel = {k: props[k] / ref[k] - 1 for k in ref}
    return {"values": props, "rel_err": rel, "within": {k: abs(rel[k]) <= TOLERANCES[k] for k in TOLERANCES}}


def property_table(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One entry per seed whose committee run finished (``curve.json``): the oracle calls, and the
    committee arm's and the Boltzmann arm's values, relative errors and pass/fail per property.
    Results are cached per seed in ``WORKDIR/properties_sSEED.json``."""
    from mlip_props.potentials import save_potential

    from .rare_events import boltzmann_frames, boltzmann_model, labelled_seeds

    ref_path = workdir / "properties_emt.json"
    if ref_path.is_file():
        emt = json.loads(ref_path.read_text())
    else:
        emt = all_properties(emt_oracle())
        ref_path.write_text(json.dumps(emt, indent=1))
    table: dict[str, Any] = {"emt": emt, "tolerances": TOLERANCES, "seeds": {}}
    for curve in sorted(workdir.glob("committee_s*/curve.json")):
        seed = int(curve.parent.name.rpartition("_s")[2])
        if getattr(args, "property_seeds", None) and seed not in args.property_seeds:
            continue
        cache = workdir / f"properties_s{seed}.json"
        if cache.is_file():
            table["seeds"][seed] = json.loads(cache.read_text())
            continue
        n = int(json.loads(curve.read_text())["calls"][-1])
        t0 = time.perf_counter()
        committee = all_properties(CommitteeMean(load_model_file(curve.parent / "model.pt")))
        t1 = time.perf_counter()
        bdir = workdir / f"boltzmann_s{seed}"
        bdir.mkdir(parents=True, exist_ok=True)
        path = bdir / f"model_{n}.pt"
        if not path.is_file():  # the same frames and fit as the arm itself (deterministic in the seed)
            save_potential(boltzmann_model(labelled_seeds(seed), boltzmann_frames(n, seed, args.stride), n, args, seed),
                           path)
        boltzmann = all_properties(CommitteeMean(load_model_file(path)))
        entry = {"oracle_calls": n, "committee": _row(committee, emt), "boltzmann": _row(boltzmann, emt),
                 "seconds": {"committee_properties": t1 - t0, "boltzmann_fit_and_properties": time.perf_counter() - t1}}
        cache.write_text(json.dumps(entry, indent=1))
        table["seeds"][seed] = entry
    table["summary"] = {seed: {"calls": e["oracle_calls"],
                               "committee_within": sum(e["committee"]["within"].values()),
                               "boltzmann_within": sum(e["boltzmann"]["within"].values()),
                               "of": len(TOLERANCES)} for seed, e in table["seeds"].items()}
    return table
