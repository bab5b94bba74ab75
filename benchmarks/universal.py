#!/usr/bin/env python
"""Static energy + forces + stress with SevenNet-0: the batched backend against SevenNet's own
ASE calculator, TorchSim and the compute limit, same model, same structures, same run.

Workloads (``--workload``):

* ``si``: 64 rattled 8-atom diamond Si cells (a = 5.43 A, rattle 0.05 A);
* ``mixed``: 64 rattled cells of 2-64 atoms (Si, MgO, GaN, Cu, NaCl primitive cells and
  supercells).

Contenders (float32, the model's own precision, unless ``--dtype float64``):

(a) ``mlip_props.evaluate(load_potential("sevenn"), structures, ("energy", "forces", "stress"))``;
(b) ``SevenNetCalculator("7net-0")``, one structure at a time (``get_potential_energy``,
    ``get_forces``, ``get_stress``);
(c) the compute limit: one prebuilt batch holding every structure, its neighbour graph built
    beforehand, one ``evaluate_batch`` call (the model's forward + backward and the force/stress
    scatter, nothing else);
(d) with ``--torchsim-python PY``: ``torch_sim.static(structures, SevenNetModel("7net-0"))``
    (TorchSim's default: one batch of everything) in a worker process run by ``PY`` (TorchSim
    0.6.2 needs Python >= 3.12; the worker, ``benchmarks/_torchsim_worker.py``, reads the same
    structures from an extxyz file this script writes, and loads the same checkpoint of the
    ``sevenn`` wheel);
(e) with ``--alt-budget-mib M``: (a) with ``memory_budget=M`` MiB (larger chunks);
(f) with ``--same-chunks``: the chunks that (a) evaluates, prebuilt, one ``evaluate_batch``
    each.

Before timing, every contender is checked against (b) (energies per atom, forces, stress).
Contenders run round-robin (each round runs each once, in an order that rotates from round to
round; every contender but (c) has run once in the checks before) and the
medians of ``--repeats`` rounds are reported as structures/s. One more, instrumented call of (a)
splits its time into input preparation, neighbour lists, batch and graph assembly, the
adapter's input conversion, the network's forward pass, the backward pass and the rest (force
and stress scatter, copies out); the same split is given for (c).

Usage::

    python benchmarks/universal.py                      # both workloads, 3 rounds
    python benchmarks/universal.py --workload si --repeats 5 --threads 1 --json out.json \
        --torchsim-python /tmp/venv-ts/bin/python
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from ase.build import bulk

import mlip_props
from mlip_props.backend.batch import Batch
from mlip_props.backend.evaluate import evaluate_batch
from mlip_props.backend.neighbors import build_neighbor_graph
from _timing import round_robin, wall_and_cpu  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

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


def _evaluate_module():
    return sys.modules["mlip_props.backend.evaluate"]  # the module (the package exports a function of that name)


class _Timers:
    """Wall time spent inside chosen functions and methods while active (seconds by phase)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._undo: list = []

    def wrap(self, owner, name: str, phase: str, instance: bool = False) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0

        if instance:  # an nn.Module's forward on the instance; undone by deleting the attribute
            setattr(owner, name, timed)
            self._undo.append(lambda: delattr(owner, name))
        else:
            setattr(owner, name, timed)
            self._undo.append(lambda: setattr(owner, name, original))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


def time_split(pot, run, rest_label: str = "rest") -> dict:
    """One call of ``run()`` split into phases (seconds): input preparation, neighbour lists, batch
    packing and graph assembly, the adapter's input conversion, the network's forward pass
    (its modules up to the per-atom energy), the backward pass, and the rest (index bookkeeping,
    force and stress scatter, copies out)."""
    ev = _evaluate_module()
    tm = _Timers()
    tm.wrap(ev, "_prepare", "prepare_inputs_s")
    tm.wrap(ev, "shared_neighbor_lists", "neighbour_lists_s")
    tm.wrap(ev, "assemble_graph", "graph_assembly_s")
    tm.wrap(ev, "_grad_per_member", "backward_s")
    net_modules = [m for _, m in getattr(pot, "_energy_modules", [])]
    for m in net_modules:
        tm.wrap(m, "forward", "network_forward_s", instance=True)
    tm.wrap(pot, "forward", "_potential_forward", instance=True)
    original_from_packed = Batch.__dict__["from_packed"]

    def from_packed(cls, *a, **k):
        t0 = time.perf_counter()
        try:
            return original_from_packed.__func__(cls, *a, **k)
        finally:
            tm.seconds["graph_assembly_s"] = tm.seconds.get("graph_assembly_s", 0.0) + time.perf_counter() - t0

    Batch.from_packed = classmethod(from_packed)
    try:
        t0 = time.perf_counter()
        run()
        total = time.perf_counter() - t0
    finally:
        Batch.from_packed = original_from_packed
        tm.undo()
    sec = tm.seconds
    whole_forward = sec.pop("_potential_forward", 0.0)
    sec["adapter_conversion_s"] = whole_forward - sec.get("network_forward_s", 0.0)
    sec[rest_label + "_s"] = total - sum(sec.values())
    sec["total_s"] = total
    return {k: round(v, 4) for k, v in sec.items()}


class TorchSimWorker:
    """``benchmarks/_torchsim_worker.py`` in another Python, driven line by line (JSON)."""

    def __init__(self, python: str, threads: int | None):
        here = os.path.dirname(os.path.abspath(__file__))
        self.proc = subprocess.Popen([python, os.path.join(here, "_torchsim_worker.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.threads = threads
        self.tmp = tempfile.mkdtemp(prefix="universal-bench-")
        self.info: dict = {}

    def _ask(self, msg: dict) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the TorchSim worker stopped (see its error output above)")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"TorchSim worker: {reply['error']}")
        return reply

    def load(self, name: str, structures: list) -> tuple[np.ndarray, list, np.ndarray]:
        from ase.io import write

        path = os.path.join(self.tmp, f"{name}.extxyz")
        clean = []
        for a in structures:
            b = a.copy()
            b.calc = None
            clean.append(b)
        write(path, clean, format="extxyz")
        self.info = self._ask({"cmd": "load", "name": name, "file": path, "threads": self.threads})
        res = np.load(path + ".npz")
        ptr = np.concatenate([[0], np.cumsum([len(a) for a in structures])])
        forces = [res["forces"][ptr[k] : ptr[k + 1]] for k in range(len(structures))]
        return res["energies"], forces, res["stress"]

    def time(self, name: str) -> tuple[float, float]:
        """Wall and process CPU seconds of one ``torch_sim.static`` call in the worker."""
        reply = self._ask({"cmd": "time", "name": name})
        return float(reply["seconds"]), float(reply["cpu_seconds"])

    def close(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except Exception:  # noqa: BLE001 - best effort
            self.proc.kill()


def _max_diffs(structures, energies, forces, stress, ref) -> dict:
    return {
        "energy_eV_per_atom": float(max(abs(energies[k] - r[0]) / len(structures[k]) for k, r in enumerate(ref))),
        "forces_eV_A": float(max(np.abs(forces[k] - r[1]).max() for k, r in enumerate(ref))),
        "stress_eV_A3": float(max(np.abs(stress[k] - r[2]).max() for k, r in enumerate(ref))),
    }


def evaluated_chunks(pot, structures, dtype) -> list:
    """The (batch, graph) pairs that one ``evaluate`` call hands to ``evaluate_batch``."""
    ev = _evaluate_module()
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


def run_workload(name: str, structures: list, pot, calc, dtype, repeats: int, torchsim: TorchSimWorker | None,
                 alt_budget_mib: float | None, same_chunks: bool, skip: tuple = ()) -> dict:
    n_atoms = sum(len(a) for a in structures)
    ref = ase_loop(calc, structures)
    res = mlip_props.evaluate(pot, structures, PROPS, dtype=dtype)
    diffs = {"mlip_props_evaluate": _max_diffs(structures, res.energies_eV, res.forces_eV_A, res.stress_eV_A3, ref)}
    ev = _evaluate_module()
    n_calls = ev.CALL_COUNTS["evaluate_batch"]
    res = mlip_props.evaluate(pot, structures, PROPS, dtype=dtype)
    n_chunks = ev.CALL_COUNTS["evaluate_batch"] - n_calls
    diffs = {"mlip_props_evaluate": _max_diffs(structures, res.energies_eV, res.forces_eV_A, res.stress_eV_A3, ref)}
    batch = Batch.from_structures(structures, dtype=dtype)
    graph = build_neighbor_graph(batch, pot.cutoff)
    contenders = {
        "mlip_props_evaluate": lambda: mlip_props.evaluate(pot, structures, PROPS, dtype=dtype),
        "sevenn_ase_loop": lambda: ase_loop(calc, structures),
        "compute_limit_one_batch": lambda: evaluate_batch(pot, batch, PROPS, graph=graph),
    }
    if alt_budget_mib:
        budget = int(alt_budget_mib * 2**20)
        key = f"mlip_props_evaluate_budget_{alt_budget_mib:g}MiB"
        contenders[key] = lambda: mlip_props.evaluate(pot, structures, PROPS, dtype=dtype, memory_budget=budget)
        n_alt = ev.CALL_COUNTS["evaluate_batch"]
        contenders[key]()  # its warm-up
        n_alt = ev.CALL_COUNTS["evaluate_batch"] - n_alt
    if same_chunks:
        chunks = evaluated_chunks(pot, structures, dtype)
        contenders["compute_limit_same_chunks"] = lambda: [evaluate_batch(pot, b, PROPS, graph=g) for b, g in chunks]
    if torchsim is not None:
        e, f, s = torchsim.load(name, structures)  # includes TorchSim's warm-up call
        diffs["torchsim_static"] = _max_diffs(structures, e, f, s, ref)
        contenders["torchsim_static"] = lambda: torchsim.time(name)
    for key in skip:
        contenders.pop(key, None)
    # (a) and (b) ran above (the check): the model is warm; every round times each contender once,
    # in an order that rotates from round to round; wall and process CPU time (one thread: less
    # sensitive than wall time to other jobs on a shared machine)
    splits: dict[str, list[dict]] = {"mlip_props_evaluate": [], "compute_limit_one_batch": []}

    def measure(key, fn) -> tuple[float, float]:
        if key in splits:  # timed phase by phase (the wrappers cost microseconds per call)
            c0 = time.process_time()
            splits[key].append(time_split(pot, fn))
            return splits[key][-1]["total_s"], time.process_time() - c0
        if key == "torchsim_static":
            return fn()  # the worker's own timers around torch_sim.static
        return wall_and_cpu(fn)

    def progress(rnd, times, cpu_times) -> None:
        print(f"  {name} round {rnd}: " + ", ".join(f"{k} {v[-1]:.1f} s (cpu {cpu_times[k][-1]:.1f} s)"
                                                   for k, v in times.items()), flush=True)

    times, cpu_times = round_robin(contenders, repeats, measure=measure, on_round=progress)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu_times.items()}
    out = {
        "workload": name, "n_structures": len(structures), "n_atoms": n_atoms, "n_edges": graph.n_edges,
        "max_abs_diff_vs_ase": diffs,
        "median_s": med, "all_s": times, "median_cpu_s": med_cpu, "all_cpu_s": cpu_times,
        "structures_per_s": {k: len(structures) / v for k, v in med.items()},
        "n_chunks": n_chunks,
        "split_median_s": {k: {p: statistics.median(d[p] for d in v) for p in v[0]} for k, v in splits.items() if v},
    }
    if "sevenn_ase_loop" in med:
        out["speedup_over_ase_loop"] = {k: med["sevenn_ase_loop"] / v for k, v in med.items()}
        out["speedup_over_ase_loop_cpu"] = {k: med_cpu["sevenn_ase_loop"] / v for k, v in med_cpu.items()}
    if "compute_limit_one_batch" in med:
        out["compute_limit_over_contender"] = {k: med["compute_limit_one_batch"] / v for k, v in med.items()}
        out["compute_limit_over_contender_cpu"] = {k: med_cpu["compute_limit_one_batch"] / v
                                                   for k, v in med_cpu.items()}
    if alt_budget_mib:
        out["n_chunks_alt_budget"] = n_alt
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", choices=("si", "mixed", "both"), default="both")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--threads", type=int, help="torch intra-op threads for every contender (default: torch's)")
    ap.add_argument("--torchsim-python", help="a Python (>= 3.12) with torch-sim-atomistic and sevenn installed")
    ap.add_argument("--alt-budget-mib", type=float, help="also time evaluate with this memory budget (MiB)")
    ap.add_argument("--same-chunks", action="store_true", help="also time evaluate's own chunks, prebuilt")
    ap.add_argument("--skip", default="", help="comma-separated contenders not to time (e.g. sevenn_ase_loop)")
    ap.add_argument("--n-structures", type=int, default=64, help="structures per workload (64 in the issue)")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    from sevenn.calculator import SevenNetCalculator

    dtype = getattr(torch, args.dtype)
    pot = mlip_props.load_potential("sevenn")
    calc = SevenNetCalculator("7net-0", device="cpu")
    torchsim = TorchSimWorker(args.torchsim_python, torch.get_num_threads()) if args.torchsim_python else None
    out = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
                   f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}",
        "torch": torch.__version__, "dtype": args.dtype, "results": [],
    }
    loads = {"si": si_workload, "mixed": mixed_workload}
    try:
        for name in (("si", "mixed") if args.workload == "both" else (args.workload,)):
            r = run_workload(name, loads[name](args.n_structures), pot, calc, dtype, args.repeats, torchsim, args.alt_budget_mib,
                             args.same_chunks, tuple(k for k in args.skip.split(",") if k))
            out["results"].append(r)
            print(f"{name}: {r['n_structures']} structures, {r['n_atoms']} atoms, {r['n_chunks']} chunks; "
                  "structures/s: " + ", ".join(f"{k} {v:.2f}" for k, v in r["structures_per_s"].items())
                  + "".join(f"\n  {key}: " + ", ".join(f"{k} {v:.2f}" for k, v in r[key].items())
                            for key in ("speedup_over_ase_loop", "speedup_over_ase_loop_cpu",
                                        "compute_limit_over_contender", "compute_limit_over_contender_cpu")
                            if key in r)
                  + "".join(f"\n  split of {k} (median s): {json.dumps({p: round(x, 3) for p, x in v.items()})}"
                            for k, v in r["split_median_s"].items())
                  + f"\n  max |diff| vs the ASE calculator: {json.dumps(r['max_abs_diff_vs_ase'])}", flush=True)
    finally:
        if torchsim is not None:
            out["torchsim"] = torchsim.info
            torchsim.close()
    out["load_average_after"] = os.getloadavg()[0]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k != "results"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
