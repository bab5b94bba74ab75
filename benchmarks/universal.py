#!/usr/bin/env python
"""Static energy + forces + stress with SevenNet-0: the batched backend against SevenNet's own
ASE calculator, same model, same structures, same run.

Workloads (``--workload``):

* ``si``: 64 rattled 8-atom diamond Si cells (a = 5.43 A, rattle 0.05 A);
* ``mixed``: 64 rattled cells of 2-64 atoms (Si, MgO, GaN, Cu, NaCl primitive cells and
  supercells).

Contenders (float32, the model's own precision, unless ``--dtype float64``):

(a) ``mlip_props.evaluate(load_potential("sevenn"), structures, ("energy", "forces", "stress"))``;
(b) ``SevenNetCalculator("7net-0")``, one structure at a time (``get_potential_energy``,
    ``get_forces``, ``get_stress``);
(c) the compute limit: the same chunks that (a) evaluates (captured from one call of (a)),
    prebuilt with their neighbour graphs, one ``evaluate_batch`` call each (forward + backward,
    nothing else);
(d) one prebuilt batch holding every structure, one ``evaluate_batch`` call (shows what the
    chunk size does).

Before timing, (a) and (b) are checked to agree (energies per atom, forces, stress). Contenders
run round-robin (each round runs each once; a warm-up round first) and the medians of
``--repeats`` rounds are reported as structures/s, with (a)'s time split into neighbour lists
(vesin, shared lists), the forward pass and the backward pass of one pass.

Usage::

    python benchmarks/universal.py                      # both workloads, 3 rounds
    python benchmarks/universal.py --workload si --repeats 5 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch
from ase.build import bulk

import mlip_props
from mlip_props.backend.batch import Batch, pack_structures
from mlip_props.backend.evaluate import atomic_graph, evaluate_batch
from mlip_props.backend.neighbors import build_neighbor_graph, shared_neighbor_lists

PROPS = ("energy", "forces", "stress")


def si_workload(n: int = 64) -> list:
    out = []
    for k in range(n):
        a = bulk("Si", "diamond", a=5.43, cubic=True)
        a.rattle(0.05, seed=k)
        out.append(a)
    return out


def mixed_workload(n: int = 64) -> list:
    bases = [
        bulk("Si", "diamond", a=5.43), bulk("MgO", "rocksalt", a=4.21), bulk("GaN", "wurtzite", a=3.19, c=5.19),
        bulk("Cu", "fcc", a=3.61), bulk("NaCl", "rocksalt", a=5.64),
    ]
    reps = [(1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2), (3, 2, 2), (4, 2, 2)]
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        a = bases[k % len(bases)].repeat(reps[(k // len(bases)) % len(reps)])
        if len(a) > 64:
            a = bases[k % len(bases)].repeat((2, 2, 2))
        a.rattle(0.05, seed=int(rng.integers(1 << 30)))
        out.append(a)
    return out


def ase_loop(calc, structures) -> list:
    out = []
    for a in structures:
        b = a.copy()
        b.calc = calc
        out.append((b.get_potential_energy(), b.get_forces(), b.get_stress(voigt=True)))
    return out


def split_times(pot, structures, dtype) -> dict:
    """One pass of (a) split into neighbour lists, forward and backward (seconds)."""
    t0 = time.perf_counter()
    packed = pack_structures(structures)
    shared_neighbor_lists(packed, pot.cutoff)
    t_nl = time.perf_counter() - t0
    batch = Batch.from_structures(structures, dtype=dtype)
    graph = build_neighbor_graph(batch, pot.cutoff)
    vec = atomic_graph(batch, graph).edge_vectors.detach().requires_grad_(True)
    g = atomic_graph(batch, graph, vectors=vec)
    t0 = time.perf_counter()
    energy = pot(g).sum()
    t_fwd = time.perf_counter() - t0
    t0 = time.perf_counter()
    torch.autograd.grad(energy, vec)
    t_bwd = time.perf_counter() - t0
    return {"neighbour_lists_s": t_nl, "forward_s": t_fwd, "backward_s": t_bwd, "n_edges": graph.n_edges}


def evaluated_chunks(pot, structures, dtype) -> list:
    """The (batch, graph) pairs that one ``evaluate`` call hands to ``evaluate_batch``."""
    ev = sys.modules["mlip_props.backend.evaluate"]  # the module (the package exports a function of that name)

    seen, original = [], ev.evaluate_batch

    def capture(potential, batch, properties, graph=None, **kw):
        seen.append((batch, graph))
        return original(potential, batch, properties, graph=graph, **kw)

    ev.evaluate_batch = capture
    try:
        mlip_props.evaluate(pot, structures, PROPS, dtype=dtype)
    finally:
        ev.evaluate_batch = original
    return seen


def run_workload(name: str, structures: list, pot, calc, dtype, repeats: int) -> dict:
    n_atoms = sum(len(a) for a in structures)
    res = mlip_props.evaluate(pot, structures, PROPS, dtype=dtype)
    ref = ase_loop(calc, structures)
    de = max(abs(res.energies_eV[k] - r[0]) / len(structures[k]) for k, r in enumerate(ref))
    df = max(np.abs(res.forces_eV_A[k] - r[1]).max() for k, r in enumerate(ref))
    ds = max(np.abs(res.stress_eV_A3[k] - r[2]).max() for k, r in enumerate(ref))
    batch = Batch.from_structures(structures, dtype=dtype)
    graph = build_neighbor_graph(batch, pot.cutoff)
    chunks = evaluated_chunks(pot, structures, dtype)
    contenders = {
        "mlip_props_evaluate": lambda: mlip_props.evaluate(pot, structures, PROPS, dtype=dtype),
        "sevenn_ase_loop": lambda: ase_loop(calc, structures),
        "compute_limit_same_chunks": lambda: [evaluate_batch(pot, b, PROPS, graph=g) for b, g in chunks],
        "one_batch_of_all": lambda: evaluate_batch(pot, batch, PROPS, graph=graph),
    }
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for rnd in range(repeats + 1):  # round 0: warm-up
        for key, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            if rnd:
                times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "workload": name, "n_structures": len(structures), "n_atoms": n_atoms,
        "max_abs_diff_vs_ase": {"energy_eV_per_atom": float(de), "forces_eV_A": float(df), "stress_eV_A3": float(ds)},
        "median_s": med, "all_s": times,
        "structures_per_s": {k: len(structures) / v for k, v in med.items()},
        "speedup_over_ase_loop": med["sevenn_ase_loop"] / med["mlip_props_evaluate"],
        "n_chunks": len(chunks),
        "fraction_of_compute_limit": med["compute_limit_same_chunks"] / med["mlip_props_evaluate"],
        "one_pass_split": split_times(pot, structures, dtype),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", choices=("si", "mixed", "both"), default="both")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    from sevenn.calculator import SevenNetCalculator

    dtype = getattr(torch, args.dtype)
    pot = mlip_props.load_potential("sevenn")
    calc = SevenNetCalculator("7net-0", device="cpu")
    out = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
                   f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}",
        "torch": torch.__version__, "dtype": args.dtype, "results": [],
    }
    loads = {"si": si_workload, "mixed": mixed_workload}
    for name in (("si", "mixed") if args.workload == "both" else (args.workload,)):
        r = run_workload(name, loads[name](), pot, calc, dtype, args.repeats)
        out["results"].append(r)
        sps = r["structures_per_s"]
        print(f"{name}: {r['n_structures']} structures, {r['n_atoms']} atoms; structures/s: "
              + ", ".join(f"{k} {v:.2f}" for k, v in sps.items())
              + f"; {r['speedup_over_ase_loop']:.2f}x the ASE loop, {100 * r['fraction_of_compute_limit']:.0f} % of "
              f"the compute limit; one pass: {json.dumps({k: round(v, 3) for k, v in r['one_pass_split'].items()})}",
              flush=True)
    out["load_average_after"] = os.getloadavg()[0]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k != "results"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
