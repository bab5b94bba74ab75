"""Warm-start retraining cost against the size of the data (issue 23's performance requirement:
it must not grow faster than the data does). Times :func:`warm_start_fit` of one committee on the
first N labelled frames of an active-learning run directory, for several N, in round-robin
repeats (median reported), and prints seconds per epoch, per frame-epoch and per atom-epoch.

    python -m active_learning.warm_start_scaling RUN_DIR [RUN_DIR ...] --sizes 50 100 200 400
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def labelled_frames(run_dirs: list[str]) -> list:
    from mlip_props.fitting.active.journal import OracleJournal

    frames: dict[str, object] = {}
    for d in run_dirs:
        journal = OracleJournal(None, Path(d), ("energy", "forces", "stress"))
        keys = json.loads((Path(d) / "state.json").read_text())["data"]
        for k, a in zip(keys, journal.frames(keys)):
            frames.setdefault(k, a)
    return list(frames.values())


def main(argv: list[str] | None = None) -> int:
    import torch

    from mlip_props.fitting import dataset_from_frames
    from mlip_props.fitting.active.config import ActiveLearningConfig
    from mlip_props.fitting.active.retrain import fresh_fit, warm_start_fit

    from .common import small_descriptor

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    frames = [a for a in labelled_frames(args.run_dirs) if len(a) > 1]
    sizes = [n for n in args.sizes if n <= len(frames)]
    cfg = ActiveLearningConfig(committee=4, hidden=(16, 16), descriptor=small_descriptor(), initial_epochs=5)
    model = fresh_fit(frames[:20], cfg, 0)
    data = {n: dataset_from_frames(frames[:n]) for n in sizes}
    times: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(args.repeats):
        for n in sizes:
            t = time.perf_counter()
            warm_start_fit(model, data[n], epochs=args.epochs, seed=1)
            times[n].append(time.perf_counter() - t)
    atoms = {n: sum(len(a) for a in frames[:n]) for n in sizes}
    rows = [{"frames": n, "atoms": atoms[n], "median_s": float(np.median(times[n])),
             "s_per_epoch": float(np.median(times[n])) / args.epochs,
             "ms_per_frame_epoch": 1e3 * float(np.median(times[n])) / (args.epochs * n),
             "us_per_atom_epoch": 1e6 * float(np.median(times[n])) / (args.epochs * atoms[n]), "runs_s": times[n]}
            for n in sizes]
    print(json.dumps(rows, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
