"""Campaign runner overhead: the runner (planning, batching, SQLite writes) vs the same property
calls made directly, and vs a per-structure loop.

Three ways to compute the same rows, with the same torch potential and structures:

* ``runner``  — :func:`mlip_props.campaign.runner.run_campaign` into a fresh SQLite database;
* ``direct``  — ``prop(potential, chunk, **params)`` on the same batches, results kept in memory
  (what the runner would cost without its database and scheduling);
* ``loop``    — ``prop(potential, structure, **params)`` one structure at a time (the
  baseline).

Overhead = (runner - direct) / runner. Prints the machine, the command, the median of
``--repeats`` runs of each mode and the ratios (target: < 10 % overhead).

    python benchmarks/campaign.py --n 500 --properties eos,elastic,phonons   # full size
    python benchmarks/campaign.py --n 16 --properties energy,eos --repeats 3  # quick
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def machine() -> str:
    return (f"{platform.node()} | {platform.processor() or platform.machine()} | {os.cpu_count()} CPUs | "
            f"torch {torch.__version__} threads={torch.get_num_threads()} | python {platform.python_version()}")


def structures(n: int) -> list[str]:
    """n one-atom cells: fcc/bcc/sc with a spread of lattice constants (names for the campaign file)."""
    kinds = [("fcc", 3.45), ("bcc", 2.75), ("sc", 2.2)]
    return [f"Cu:{k}:a={a0 + 0.004 * (i // 3):.4f}" for i in range(n) for k, a0 in [kinds[i % 3]]][:n]


PARAMS = {"energy": {"relax": True, "relax_cell": True, "fmax": 0.001}, "eos": {}, "elastic": {}, "phonons": {}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--properties", default="eos,elastic,phonons")
    ap.add_argument("--potential", default="morse:D=0.34,a=1.36,r0=2.6")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-loop", action="store_true", help="skip the per-structure loop (slow for large n)")
    args = ap.parse_args()

    from mlip_props.campaign.registry import get_property
    from mlip_props.campaign.runner import run_campaign
    from mlip_props.campaign.schema import parse_campaign
    from mlip_props.potentials import load_potential
    from mlip_props.structures import load_structure

    props = [p.strip() for p in args.properties.split(",") if p.strip()]
    names = structures(args.n)
    atoms = [load_structure(s) for s in names]
    pot = load_potential(args.potential)
    text = (f"name: bench\npotential: '{args.potential}'\nstructures:\n  - names: [{', '.join(names)}]\n"
            "properties:\n" + "".join(f"  {p}: {PARAMS.get(p, {})}\n".replace("'", "") for p in props)
            + f"options:\n  batch_size: {args.batch_size}\n")
    camp = parse_campaign(text.replace("True", "true"))

    inside: list[tuple[float, float, float, float]] = []  # (elapsed, compute, write, plan) per runner call

    def runner() -> None:
        tmp = tempfile.mkdtemp()
        try:
            s = run_campaign(camp, str(Path(tmp) / "b.db"), progress=False)
            assert s.n_done + s.n_failed == len(names) * len(props)
            inside.append((s.elapsed_s, s.compute_s, s.write_s, s.plan_s))
        finally:
            shutil.rmtree(tmp)

    def direct() -> None:
        for p in props:
            f = get_property(p).func
            for i in range(0, len(atoms), args.batch_size):
                [r.to_dict() for r in f(pot, [a.copy() for a in atoms[i:i + args.batch_size]], **PARAMS.get(p, {}))]

    def loop() -> None:
        for p in props:
            f = get_property(p).func
            for a in atoms:
                f(pot, a.copy(), **PARAMS.get(p, {})).to_dict()

    modes = {"runner": runner, "direct": direct}
    if not args.skip_loop:
        modes["loop"] = loop
    times: dict[str, list[float]] = {m: [] for m in modes}
    runner()  # warm-up (imports, potential, caches)
    for _ in range(args.repeats):
        for m, fn in modes.items():  # interleaved so load changes hit all modes alike
            t0 = time.perf_counter()
            fn()
            times[m].append(time.perf_counter() - t0)
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"machine: {machine()}")
    print(f"command: {' '.join([sys.executable] + sys.argv)}")
    print(f"workload: {len(names)} structures x {props} = {len(names) * len(props)} rows, potential {args.potential}, "
          f"batch size {args.batch_size}, median of {args.repeats}")
    for m, v in med.items():
        print(f"  {m:7s} median {v:8.2f} s   runs {', '.join(f'{x:.2f}' for x in times[m])}")
    over = (med["runner"] - med["direct"]) / med["runner"]
    print(f"runner vs direct batched calls (separate runs, sensitive to machine load): {100 * over:+.1f} %")
    runs = inside[1:]  # without the warm-up
    fr = [1 - c / e for e, c, _, _ in runs]
    print(f"overhead measured inside each runner call (1 - compute/elapsed; database {statistics.median(w for _, _, w, _ in runs):.3f} s, "
          f"planning {statistics.median(p for _, _, _, p in runs):.3f} s per run): median {100 * statistics.median(fr):.2f} %, "
          f"runs {', '.join(f'{100 * x:.2f}' for x in fr)} % (target < 10 %)")
    if "loop" in med:
        print(f"per-structure loop / runner: {med['loop'] / med['runner']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
