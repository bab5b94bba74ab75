#!/usr/bin/env python
"""TorchSim side of ``benchmarks/universal.py`` (run by it in a Python >= 3.12 environment that
holds ``torch-sim-atomistic`` and ``sevenn``; it never imports mlip_props).

It reads one JSON command per line on stdin and answers one JSON line on stdout:

* ``{"cmd": "load", "name": NAME, "file": EXTXYZ, "threads": T}``: read the structures, build
  ``SevenNetModel("7net-0")`` (float32, CPU) once, run ``torch_sim.static`` once (warm-up) and
  write its energies (eV), forces (eV/A) and ASE-sign Voigt stress (eV/A^3) to ``EXTXYZ.npz``;
* ``{"cmd": "time", "name": NAME}``: one timed ``torch_sim.static`` call on all of them
  (``SimState`` from the ASE structures, the default: one batch of everything, no autobatcher);
  answers ``{"seconds": wall, "cpu_seconds": process CPU time}``;
* ``{"cmd": "quit"}``.
"""
from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np


def main() -> int:
    warnings.simplefilter("ignore")
    import torch
    import torch_sim as ts
    from ase.io import read
    from torch_sim.models.sevennet import SevenNetModel

    model = None
    workloads: dict[str, list] = {}
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        if msg["cmd"] == "load":
            if msg.get("threads"):
                torch.set_num_threads(int(msg["threads"]))
            if model is None:
                model = SevenNetModel("7net-0", device="cpu", dtype=torch.float32)
            atoms = read(msg["file"], index=":")
            workloads[msg["name"]] = atoms
            out = ts.static(atoms, model)
            np.savez(msg["file"] + ".npz",
                     energies=np.array([float(o["potential_energy"].reshape(-1)[0]) for o in out]),
                     forces=np.concatenate([o["forces"].numpy().reshape(-1, 3) for o in out]),
                     stress=np.stack([_voigt(o["stress"].numpy().reshape(3, 3)) for o in out]))
            reply = {"ok": True, "n": len(atoms), "torch": torch.__version__, "torch_sim": ts.__version__,
                     "threads": torch.get_num_threads()}
        elif msg["cmd"] == "time":
            atoms = workloads[msg["name"]]
            t0, c0 = time.perf_counter(), time.process_time()
            ts.static(atoms, model)
            reply = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
        else:
            reply = {"error": f"unknown command {msg['cmd']!r}"}
        print(json.dumps(reply), flush=True)
    return 0


def _voigt(s: np.ndarray) -> list[float]:
    return [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]


if __name__ == "__main__":
    raise SystemExit(main())
