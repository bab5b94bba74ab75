"""Joint campaign batches vs one batch per property: backend calls, wall time, identical results.

The campaign runner plans every property of a chunk of structures together (starting-point
relaxations shared between properties, one joint backend evaluation of all plans;
``options.joint_batches: true``, the default) or runs one batch per property
(``joint_batches: false``). Both modes run the same campaign into fresh databases, interleaved,
``--repeats`` times; printed: the machine, the command, the median wall time of each mode and
their ratio, the backend calls of one run of each (``evaluate`` calls and ``evaluate_batch``
calls, i.e. packed-batch evaluations including every optimiser step), and the largest difference
between the two modes' stored results.

    python benchmarks/campaign_joint.py                         # the demo campaign (fcc metals, EMT)
    python benchmarks/campaign_joint.py --synthetic 48          # 48 Cu cells x relax/eos/elastic/phonons, Morse
"""
from __future__ import annotations

import argparse
import json
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


def synthetic_campaign(n: int, batch_size: int) -> str:
    kinds = [("fcc", 3.45), ("bcc", 2.75)]
    names = [f"Cu:{k}:a={a0 + 0.004 * (i // 2):.4f}" for i in range(n) for k, a0 in [kinds[i % 2]]]
    return (f"name: joint-bench\npotential: 'morse:D=0.34,a=1.36,r0=2.6'\nstructures:\n  - names: [{', '.join(names)}]\n"
            "properties:\n  eos: {}\n  elastic: {}\n  phonons: {}\n  thermal: {}\n"
            f"options:\n  batch_size: {batch_size}\n")


def numbers(obj, prefix=""):
    """Flatten a result dict into {path: float} for comparison."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(numbers(v, f"{prefix}/{k}"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(numbers(v, f"{prefix}[{i}]"))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = float(obj)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--campaign", help="campaign file (default: the packaged fcc_metals demo)")
    ap.add_argument("--synthetic", type=int, default=0, help="instead: N Cu cells with a Morse potential")
    ap.add_argument("--batch-size", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from mlip_props.backend.evaluate import CALL_COUNTS
    from mlip_props.campaign.database import ResultsDB
    from mlip_props.campaign.runner import run_campaign
    from mlip_props.campaign.schema import load_campaign, parse_campaign

    if args.synthetic:
        text = synthetic_campaign(args.synthetic, args.batch_size)
        camps = {mode: parse_campaign(text.replace("options:\n", f"options:\n  joint_batches: {str(mode).lower()}\n"))
                 for mode in (True, False)}
        label = f"synthetic: {args.synthetic} Cu cells x eos/elastic/phonons/thermal, Morse, batch {args.batch_size}"
    else:
        from mlip_props.cli import demo_campaign_path

        path = Path(args.campaign) if args.campaign else demo_campaign_path()
        camps = {}
        for mode in (True, False):
            c = load_campaign(path)
            c.options["joint_batches"] = mode
            camps[mode] = c
        label = f"campaign {path.name}"

    times: dict[bool, list[float]] = {True: [], False: []}
    calls: dict[bool, dict[str, int]] = {}
    results: dict[bool, dict[str, dict]] = {}
    for rep in range(args.repeats):
        for mode in (True, False):
            tmp = tempfile.mkdtemp()
            try:
                before = dict(CALL_COUNTS)
                t0 = time.perf_counter()
                s = run_campaign(camps[mode], str(Path(tmp) / "r.db"), progress=False)
                times[mode].append(time.perf_counter() - t0)
                if rep == 0:
                    calls[mode] = {k: CALL_COUNTS[k] - before.get(k, 0) for k in ("evaluate", "evaluate_batch")}
                    rows = ResultsDB(str(Path(tmp) / "r.db")).db.select()
                    results[mode] = {f"{r.get('label')}|{r.get('property')}": json.loads(json.dumps(r.data.get("result")))
                                     for r in rows}
                assert s.n_failed == 0, f"{s.n_failed} rows failed"
            finally:
                shutil.rmtree(tmp)
    worst, where = 0.0, ""
    for key, res in results[True].items():
        a, b = numbers(res), numbers(results[False][key])
        for p in a.keys() & b.keys():
            if "timings" in p or "elapsed" in p:
                continue
            d = abs(a[p] - b[p]) / max(abs(b[p]), 1e-12)
            if d > worst:
                worst, where = d, f"{key}{p}"
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"machine: {machine()}")
    print(f"command: {' '.join([sys.executable] + sys.argv)}")
    print(f"workload: {label}, median of {args.repeats} interleaved runs")
    for mode, name in ((True, "joint batches"), (False, "per-property batches")):
        print(f"  {name:21s} median {med[mode]:7.2f} s  runs {', '.join(f'{x:.2f}' for x in times[mode])}  "
              f"backend calls: evaluate {calls[mode]['evaluate']}, evaluate_batch {calls[mode]['evaluate_batch']}")
    print(f"per-property / joint wall time: {med[False] / med[True]:.2f}x")
    print(f"largest relative difference between the modes' results: {worst:.2e} ({where or '-'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
