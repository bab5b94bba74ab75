#!/usr/bin/env python
"""Static energy + forces + stress with CHGNet 0.3.0: the batched backend against CHGNet's own
ASE calculator, same model weights, same structures, same run.

Workload: 32 rattled 8-atom diamond Si cells (a = 5.43 A, rattle 0.05 A, seeds 0-31).

Contenders (float32, the model's own precision):

(a) ``mlip_props.evaluate(load_potential("chgnet"), structures, ("energy", "forces", "stress"))``;
(b) ``CHGNetCalculator()``, one structure at a time (``get_potential_energy``, ``get_forces``,
    ``get_stress``);
(c) CHGNet's own batching, ``CHGNet.predict_structure(structures, task="efs", batch_size=32)``
    (pymatgen graph conversion per structure, then one batched forward/backward).

(a) and (b) are first checked to agree. Contenders run round-robin (a warm-up round first, then
``--repeats`` rounds, each running each contender once); medians are reported. One pass of (a)
is split into the neighbour list, CHGNet's graphs built from it (bond pairing and angles), the
forward and the backward pass.

Usage::

    python benchmarks/chgnet_batched.py --repeats 3 [--threads 1] [--json out.json]
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
from mlip_props.backend.batch import Batch
from mlip_props.backend.evaluate import atomic_graph
from mlip_props.backend.neighbors import build_neighbor_graph
from _timing import round_robin  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from universal import ase_loop, si_workload  # noqa: E402  (the same workload and ASE loop as universal.py)

PROPS = ("energy", "forces", "stress")


def split_times(pot, structures) -> dict:
    """One float32 pass of (a): neighbour list, CHGNet graphs, forward, backward (seconds)."""
    batch = Batch.from_structures(structures, dtype=torch.float32)
    t0 = time.perf_counter()
    graph = build_neighbor_graph(batch, pot.cutoff)
    t_nl = time.perf_counter() - t0
    vec = atomic_graph(batch, graph).edge_vectors.detach().requires_grad_(True)
    g = atomic_graph(batch, graph, vectors=vec)
    t0 = time.perf_counter()
    pot._undirected(g)
    pot._angle_pairs(g)
    t_graphs = time.perf_counter() - t0
    t0 = time.perf_counter()
    energy = pot(g).sum()
    t_fwd = time.perf_counter() - t0 - t_graphs  # the forward builds the graphs again
    t0 = time.perf_counter()
    torch.autograd.grad(energy, vec)
    t_bwd = time.perf_counter() - t0
    return {"neighbour_list_s": t_nl, "chgnet_graphs_s": t_graphs, "forward_s": t_fwd, "backward_s": t_bwd,
            "n_edges": graph.n_edges}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=32, help="number of Si cells")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args(argv)
    load_start = os.getloadavg()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    from chgnet.model.dynamics import CHGNetCalculator

    structures = si_workload(args.n)  # universal.py's Si cells (seeds 0..n-1)
    pot = mlip_props.load_potential("chgnet")
    calc = CHGNetCalculator(use_device="cpu")
    model = calc.model
    from pymatgen.io.ase import AseAtomsAdaptor

    res = mlip_props.evaluate(pot, structures, PROPS, dtype=torch.float32)
    ref = ase_loop(calc, structures)
    diff = {
        "energy_eV_per_atom": max(abs(res.energies_eV[k] - r[0]) / len(structures[k]) for k, r in enumerate(ref)),
        "forces_eV_A": max(float(np.abs(res.forces_eV_A[k] - r[1]).max()) for k, r in enumerate(ref)),
        "stress_eV_A3": max(float(np.abs(res.stress_eV_A3[k] - r[2]).max()) for k, r in enumerate(ref)),
    }
    contenders = {
        "mlip_props_evaluate": lambda: mlip_props.evaluate(pot, structures, PROPS, dtype=torch.float32),
        "chgnet_ase_loop": lambda: ase_loop(calc, structures),
        "chgnet_predict_structure_batch": lambda: model.predict_structure(
            [AseAtomsAdaptor.get_structure(a) for a in structures], task="efs", batch_size=len(structures)),
    }
    times, _ = round_robin(contenders, args.repeats, warmup=True, rotate=False)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {
        "workload": f"{args.n} rattled 8-atom Si cells", "n_atoms": sum(len(a) for a in structures),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
        "load_average_start": load_start, "max_abs_diff_vs_ase": diff,
        "median_s": med, "all_s": times,
        "structures_per_s": {k: args.n / v for k, v in med.items()},
        "speedup_over_ase_loop": med["chgnet_ase_loop"] / med["mlip_props_evaluate"],
        "speedup_over_chgnet_batch": med["chgnet_predict_structure_batch"] / med["mlip_props_evaluate"],
        "one_pass_split": split_times(pot, structures),
        "load_average_end": os.getloadavg(),
    }
    text = json.dumps(out, indent=2, default=float)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
