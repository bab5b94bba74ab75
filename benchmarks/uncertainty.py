"""Benchmark: committee of 4 vs a single member for the Cu property set (EOS, elastic, phonons, Cv).

Both run :func:`mlip_props.properties.uncertainty.committee_properties` on fcc Cu with the shipped
EMT-Cu committee: once with the 4-member committee (one backend batch serves all members), once
with member 0 alone (``model.member(0)``, a 1-member potential, the same workflow). Also timed: the
naive alternative, the single-member workflow run once per member (4 runs). Prints the machine,
the command, the median of ``--repeats`` runs and the ratios.

    python benchmarks/uncertainty.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

import torch
from ase.build import bulk

import mlip_props
from mlip_props.properties.uncertainty import committee_properties
from _timing import timed  # noqa: E402  (benchmarks/ is on sys.path when run as a script)



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = mlip_props.load_potential(str(Path(mlip_props.__file__).parent / "data" / "cu_committee.pt"))
    one = model.member(0)
    atoms = bulk("Cu", "fcc", a=3.6)
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("command: python " + " ".join(sys.argv))
    committee_properties(one, atoms)  # warm-up (imports, phonopy set-up)
    ts1, tsm = [], []
    for _ in range(args.repeats):  # interleaved, so that load from other processes hits both alike
        t1, _, r1 = timed(lambda: committee_properties(one, atoms), 1)
        tm, _, rm = timed(lambda: committee_properties(model, atoms), 1)
        ts1.append(t1)
        tsm.append(tm)
    t1, tm = statistics.median(ts1), statistics.median(tsm)
    tn, tsn, _ = timed(lambda: [committee_properties(model.member(m), atoms) for m in range(model.n_members)],
                       max(1, args.repeats // 2))
    print(f"single member      : median {t1:.3f} s  runs {[round(t, 3) for t in ts1]}  stages {r1.timings_s}")
    print(f"committee of {model.n_members}     : median {tm:.3f} s  runs {[round(t, 3) for t in tsm]}  stages {rm.timings_s}")
    print(f"{model.n_members} single runs      : median {tn:.3f} s  runs {[round(t, 3) for t in tsn]}")
    print(f"ratio committee / single member: {tm / t1:.2f}x (target <= 2x); "
          f"naive per-member reruns / single: {tn / t1:.2f}x")
    for k, (mean, std, _) in rm.summary().items():
        print(f"  {k:18s} {mean:10.4f} +- {std:.4f}")


if __name__ == "__main__":
    main()
