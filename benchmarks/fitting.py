"""Fitting benchmarks: descriptor throughput (atoms/s) and training throughput (structures/s).

Descriptors: our batched symmetry functions (radial over the edge list, angular over neighbour
pairs built in torch) versus TorchANI's AEVComputer ("pyaev" strategy, the CPU path) for a
comparable function set on the same structures and the same neighbour pairs: 16 radial terms
(eta 16 A^-2, shifts 0.9-4.7 A, cutoff 5.2 A) and 32 angular terms within 3.5 A (ours: 4 radial
shifts x zeta in {1, 2, 4, 8} x lambda +-1 of G5; ANI: 4 shifts x 8 angle sections), one element.
Both get a precomputed neighbour list (ours the full directed list, TorchANI the half list it
expects), so the neighbour search is not timed. Forward alone and forward + backward (forces).
TorchANI is imported from ``--torchani-path`` (installed there with ``pip install --no-deps
--target``; it is not a dependency) when available.

Training: epochs of :func:`mlip_props.fitting.fit` on EMT-labelled Cu structures, committee 1
and 4, reported as structures per second per epoch (descriptors precomputed once, not timed).

Prints machine, command, the median of ``--repeats`` runs and the ratio to TorchANI measured in
the same run. Torch runs single-threaded unless MLIP_PROPS_THREADS is set.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

torch.set_num_threads(int(os.environ.get("MLIP_PROPS_THREADS", "1")))

from ase.build import bulk  # noqa: E402

from mlip_props.backend import Batch, build_neighbor_graph, edge_vectors  # noqa: E402
from mlip_props.fitting import SymmetryFunctionConfig, SymmetryFunctions  # noqa: E402

RC, RCA = 5.2, 3.5
RAD_SHIFTS = list(np.linspace(0.9, 4.7, 16))
ANG_SHIFTS = [0.9, 1.55, 2.2, 2.85]


def structures(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
        a.rattle(0.1, seed=int(rng.integers(1 << 30)))
        out.append(a)
    return out


def ours_config() -> SymmetryFunctionConfig:
    ang = [(8.0, z, lam, rs) for rs in ANG_SHIFTS for z in (1, 2, 4, 8) for lam in (1.0, -1.0)]
    return SymmetryFunctionConfig(elements=["Cu"], cutoff=RC, angular_cutoff=RCA,
                                  radial=[(16.0, rs) for rs in RAD_SHIFTS], angular=ang, angular_kind="g5",
                                  cutoff_function="cos")


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench_descriptors(frames, repeats: int, dtype) -> dict:
    batch = Batch.from_structures(frames, dtype=dtype, device="cpu")
    graph = build_neighbor_graph(batch, RC)
    sf = SymmetryFunctions(ours_config())
    n = batch.n_total
    vec0 = edge_vectors(batch, graph).detach()

    def fwd():
        with torch.no_grad():
            sf(batch.numbers, graph.edge_index, vec0)

    def fwd_bwd():
        v = vec0.clone().requires_grad_(True)
        sf(batch.numbers, graph.edge_index, v).sum().backward()

    out = {"n_atoms": n, "n_edges": graph.n_edges, "n_features": sf.n_features}
    out["ours_fwd_atoms_s"] = n / median_time(fwd, repeats)
    out["ours_fwd_bwd_atoms_s"] = n / median_time(fwd_bwd, repeats)
    return out, batch, graph


def bench_torchani(batch, graph, repeats: int, dtype) -> dict | None:
    try:
        os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
        from torchani.aev import AEVComputer
        from torchani.neighbors import Neighbors
    except Exception as exc:  # noqa: BLE001
        print(f"TorchANI not available ({type(exc).__name__}: {exc}); skipping the comparison")
        return None
    sections = list(np.linspace(0, np.pi, 9)[:-1] + np.pi / 16)
    aev = AEVComputer.from_constants(RC, RCA, 16.0, RAD_SHIFTS, 8.0, 32.0, ANG_SHIFTS, sections, 1,
                                     strategy="pyaev", cutoff_fn="cosine").to(dtype)
    i, j = graph.edge_index
    s = graph.shifts
    # half list: keep i < j, and for i == j (self images) the lexicographically positive shift
    pos_shift = (s[:, 0] > 0) | ((s[:, 0] == 0) & ((s[:, 1] > 0) | ((s[:, 1] == 0) & (s[:, 2] > 0))))
    keep = (i < j) | ((i == j) & pos_shift)
    vec0 = edge_vectors(batch, graph).detach()[keep]
    idx = torch.stack([i[keep], j[keep]])
    coords = batch.positions.detach()[None]
    elem = torch.zeros(1, batch.n_total, dtype=torch.long)
    n = batch.n_total

    def fwd():
        with torch.no_grad():
            aev.compute_from_neighbors(elem, coords, Neighbors(idx, vec0.norm(dim=-1), vec0))

    def fwd_bwd():
        v = vec0.clone().requires_grad_(True)
        aev.compute_from_neighbors(elem, coords, Neighbors(idx, v.norm(dim=-1), v)).sum().backward()

    return {"torchani_version": __import__("torchani").__version__, "torchani_n_features": 16 + 32,
            "torchani_fwd_atoms_s": n / median_time(fwd, repeats),
            "torchani_fwd_bwd_atoms_s": n / median_time(fwd_bwd, repeats)}


def bench_training(n_structures: int, epochs: int) -> dict:
    from mlip_props.backend import emt_oracle
    from mlip_props.fitting import fit, sample

    frames = sample(bulk("Cu", "fcc", a=3.61, cubic=True), emt_oracle(), n=n_structures,
                    strategies={"rattle": 0.5, "strain": 0.5}, seed=1)
    out = {}
    for m in (1, 4):
        _, rep = fit(frames, None, committee=m, epochs=epochs, patience=10**6, progress=False, plot=False)
        out[f"train_committee{m}_structures_s"] = rep.structures_per_s
        out[f"train_committee{m}_epoch_s"] = rep.train_time_s / rep.epochs_run
    out["train_n_structures"] = n_structures
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=40, help="structures (32-atom Cu cells) for the descriptor benchmark")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--torchani-path", default="/tmp/torchani_pkg")
    p.add_argument("--train-structures", type=int, default=100)
    p.add_argument("--train-epochs", type=int, default=5)
    p.add_argument("--float32", action="store_true")
    args = p.parse_args()
    if args.torchani_path and os.path.isdir(args.torchani_path):
        sys.path.append(args.torchani_path)
    dtype = torch.float32 if args.float32 else torch.float64
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, dtype {dtype}")
    print("command:", " ".join([sys.executable] + sys.argv))
    res, batch, graph = bench_descriptors(structures(args.n), args.repeats, dtype)
    ani = bench_torchani(batch, graph, args.repeats, dtype)
    if ani:
        res.update(ani)
        res["ratio_fwd_ours_over_torchani"] = res["ours_fwd_atoms_s"] / res["torchani_fwd_atoms_s"]
        res["ratio_fwd_bwd_ours_over_torchani"] = res["ours_fwd_bwd_atoms_s"] / res["torchani_fwd_bwd_atoms_s"]
    if args.train_epochs > 0:
        res.update(bench_training(args.train_structures, args.train_epochs))
    for k, v in res.items():
        print(f"  {k:36s} {v:.4g}" if isinstance(v, float) else f"  {k:36s} {v}")


if __name__ == "__main__":
    main()
