"""On-the-fly economy on a temperature ramp (issue 23): committee MD of fcc Cu with the Langevin
temperature ramped linearly from ``--t-start`` to ``--t-end`` K, the committee's maximum per-atom
force disagreement d (eV/A) computed at EVERY step (the committee's own force call gives it), and
labelling on the fly:

* d < lower: trusted, the step goes on (and becomes the last trusted frame);
* lower <= d <= upper: the frame is labelled by EMT (energy, forces, stress), added to the data,
  and the committee is warm-started on all data (``--retrain-epochs``, float32,
  :func:`~mlip_props.fitting.active.warm_start_fit`); the dynamics continue from that frame with
  the new committee. At most one label every ``--min-gap`` steps (after a retraining the
  disagreement of the next steps is still measured; frames inside the gap are counted as
  "candidates not labelled");
* d > upper: an excursion above the upper threshold (counted, never labelled; the replica goes
  back to its last trusted frame with fresh Maxwell-Boltzmann velocities, as the loop's
  :class:`~mlip_props.fitting.explore.MDExplorer` does).

Integrator: BAOAB (Leimkuhler-Matthews) with the committee-mean force, friction ``--friction`` 1/fs.
Start: a committee model file (default the shipped EMT-Cu committee) and seed data of three
rattled and two +-1.5 % strained EMT frames (the loop's seeds, :func:`.common.seed_frames`), on
which, with the labels, it is retrained (without per-member bootstrap unless ``--bootstrap``: the
shipped committee's own training data are not shipped, and resampling five frames per member made
the members disagree more after the first label than before, 0.05 -> 0.25 eV/A in a test run). Written: ``PREFIX.json`` (counts, fractions, timings, settings), ``PREFIX.npz``
(per step: time ps, target T K, kinetic T K, d eV/A; labelled steps), ``PREFIX.png`` (d vs time,
thresholds, labelled frames, T). Partial results are written every ``--write-every`` steps, and
``--max-wall-s`` ends the run early (its length is then what the files say).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units

from .common import cu_cell, seed_frames


def _label(atoms_list):
    from mlip_props.backend import emt_oracle
    from mlip_props.fitting import label_with_oracle

    return label_with_oracle(emt_oracle(), atoms_list)


def plot_ramp(npz: str | Path, summary: dict, filename: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = np.load(npz)
    t, d, lab = z["time_ps"], z["disagreement_eV_A"], z["labelled_steps"]
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    ax.plot(t, d, lw=0.4, color="C0", label="max force disagreement (every step)")
    ax.axhline(summary["lower_eV_A"], color="C2", ls="--", lw=1, label=f"lower {summary['lower_eV_A']} eV/A")
    ax.axhline(summary["upper_eV_A"], color="C3", ls="--", lw=1, label=f"upper {summary['upper_eV_A']} eV/A")
    if len(lab):
        ax.plot(t[lab], d[lab], "o", ms=3.5, mfc="none", color="C1",
                label=f"labelled by EMT ({len(lab)} of {len(t)} frames)")
    ax.set_yscale("log")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("committee force disagreement (eV/A)")
    tx = ax.twinx()
    tx.plot(t, z["target_T_K"], color="0.5", lw=1)
    tx.set_ylabel("thermostat temperature (K)", color="0.4")
    ax.set_title(f"on-the-fly Cu{summary['n_atoms']} MD, {summary['t_start_K']:.0f} -> "
                 f"{summary['t_end_K']:.0f} K ramp over {summary['ramp_ps']:g} ps (ran {t[-1]:.2f} ps)", fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(filename, dpi=130)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict:
    from mlip_props.backend import Batch, build_neighbor_graph
    from mlip_props.backend.evaluate import evaluate_batch
    from mlip_props.fitting.active import warm_start_fit
    from mlip_props.fitting.data import dataset_from_frames
    from mlip_props.fitting.explore import max_disagreement
    from mlip_props.potentials import load_potential

    t_wall0 = time.perf_counter()
    timings = {"md": 0.0, "oracle": 0.0, "training": 0.0}
    model = load_potential(args.model)
    cell = cu_cell(args.reps)
    t1 = time.perf_counter()
    data = _label(seed_frames(cell, args.seed, n_strained=2))
    timings["oracle"] += time.perf_counter() - t1
    n_seed = len(data)
    rng = np.random.default_rng(args.seed)
    n_steps = int(round(args.ramp_ps * 1000 / args.timestep_fs))
    dt = args.timestep_fs * units.fs
    c1 = float(np.exp(-args.friction / units.fs * dt))
    c2 = float(np.sqrt(1 - c1 * c1))
    h = 0.5 * dt
    masses = torch.as_tensor(cell.get_masses(), dtype=torch.float64)[:, None]
    batch = Batch.from_structures([cell])
    n = len(cell)

    def temp_at(step: int) -> float:
        return args.t_start + (args.t_end - args.t_start) * step / n_steps

    def mb(t_k: float) -> torch.Tensor:
        v = torch.as_tensor(rng.normal(size=(n, 3)), dtype=torch.float64) * (units.kB * t_k / masses).sqrt()
        return v - (v * masses).sum(0) / masses.sum()

    graph = None

    def forces(pos):
        nonlocal graph, batch
        batch = batch.with_positions(pos)
        if graph is None or graph.needs_rebuild(batch):
            graph = build_neighbor_graph(batch, model.cutoff, skin=0.5)
        out = evaluate_batch(model, batch, ("energy", "forces"), graph=graph)
        f = out.forces.detach()
        return f.mean(0), float(max_disagreement(f, [0, n])[0])

    pos = batch.positions.clone()
    vel = mb(args.t_start)
    trusted = pos.clone()
    fm, d = forces(pos)
    rec_d = np.zeros(n_steps, np.float32)
    rec_tk = np.zeros(n_steps, np.float32)
    labelled, above_upper, skipped = [], [], 0
    last_label = -10 ** 9
    prefix = Path(args.out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)

    def write(n_done: int) -> dict:
        t_ps = (np.arange(n_done) + 1) * args.timestep_fs / 1000
        np.savez_compressed(f"{prefix}.npz", time_ps=t_ps, target_T_K=np.array([temp_at(k + 1) for k in range(n_done)]),
                            kinetic_T_K=rec_tk[:n_done], disagreement_eV_A=rec_d[:n_done],
                            labelled_steps=np.array(labelled, int), above_upper_steps=np.array(above_upper, int))
        dd = rec_d[:n_done]
        summ = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                            "omp_threads": os.environ.get("OMP_NUM_THREADS"), "load_avg_now": os.getloadavg()},
                "command": " ".join([sys.executable] + sys.argv), "model": args.model, "n_atoms": n,
                "t_start_K": args.t_start, "t_end_K": args.t_end, "ramp_ps": args.ramp_ps,
                "timestep_fs": args.timestep_fs, "friction_per_fs": args.friction, "lower_eV_A": args.lower,
                "upper_eV_A": args.upper, "min_gap_steps": args.min_gap, "retrain_epochs": args.retrain_epochs,
                "retrain_lr": args.retrain_lr, "bootstrap": args.bootstrap,
                "steps_planned": n_steps, "steps_run": n_done, "ps_run": n_done * args.timestep_fs / 1000,
                "T_reached_K": temp_at(n_done), "n_seed_frames": n_seed, "n_labelled": len(labelled),
                "fraction_labelled": len(labelled) / max(n_done, 1),
                "n_steps_above_upper": len(above_upper), "stayed_below_upper": not above_upper,
                "n_candidates_not_labelled_min_gap": skipped,
                "max_disagreement_eV_A": float(dd.max()) if n_done else None,
                "median_disagreement_eV_A": float(np.median(dd)) if n_done else None,
                "fraction_steps_above_lower": float((dd >= args.lower).mean()) if n_done else None,
                "labelled_steps": labelled, "above_upper_steps": above_upper,
                "timings_s": dict(timings), "wall_s": time.perf_counter() - t_wall0}
        Path(f"{prefix}.json").write_text(json.dumps(summ, indent=1))
        return summ

    n_done = 0
    for step in range(1, n_steps + 1):
        t0 = time.perf_counter()
        t_k = temp_at(step)
        sig = (units.kB * t_k / masses).sqrt()
        vel = vel + h * fm / masses
        pos = pos + h * vel
        vel = c1 * vel + c2 * sig * torch.as_tensor(rng.normal(size=vel.shape), dtype=torch.float64)
        pos = pos + h * vel
        fm, d = forces(pos)
        vel = vel + h * fm / masses
        if d > args.upper:  # excursion: counted, back to the last trusted frame, fresh velocities
            above_upper.append(step - 1)
            pos, vel = trusted.clone(), mb(t_k)
            fm, _ = forces(pos)
        elif d < args.lower:
            trusted = pos.clone()
        rec_d[step - 1] = d
        rec_tk[step - 1] = float((masses * vel ** 2).sum() / (3 * n * units.kB))
        timings["md"] += time.perf_counter() - t0
        if args.lower <= d <= args.upper:
            if step - last_label >= args.min_gap:
                a = Atoms(numbers=cell.numbers, positions=pos.numpy().copy(), cell=cell.cell, pbc=True)
                a.info["config_type"] = f"ramp_{t_k:.0f}K"
                t0 = time.perf_counter()
                data += _label([a])
                timings["oracle"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                model, _ = warm_start_fit(model, dataset_from_frames(data), epochs=args.retrain_epochs, lr=args.retrain_lr,
                                          batch_size=8, seed=args.seed * 7919 + step, dtype=torch.float32,
                                          bootstrap=args.bootstrap)
                timings["training"] += time.perf_counter() - t0
                labelled.append(step - 1)
                last_label = step
                fm, _ = forces(pos)
            else:
                skipped += 1
        n_done = step
        if step % args.write_every == 0:
            s = write(n_done)
            print(json.dumps({k: s[k] for k in ("steps_run", "T_reached_K", "n_labelled", "n_steps_above_upper",
                                                "max_disagreement_eV_A", "wall_s")}), flush=True)
        if args.max_wall_s and time.perf_counter() - t_wall0 > args.max_wall_s:
            break
    summ = write(n_done)
    from mlip_props.potentials import save_potential

    save_potential(model, f"{prefix}_model.pt")
    summ["final_model"] = f"{prefix}_model.pt"
    Path(f"{prefix}.json").write_text(json.dumps(summ, indent=1))
    if args.plot:
        plot_ramp(f"{prefix}.npz", summ, args.plot)
    return summ


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parents[2]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(here / "mlip_props" / "data" / "cu_committee.pt"))
    p.add_argument("--reps", type=int, default=2, help="cubic fcc cells per axis (2: 32 atoms)")
    p.add_argument("--t-start", type=float, default=300.0)
    p.add_argument("--t-end", type=float, default=2000.0)
    p.add_argument("--ramp-ps", type=float, default=50.0)
    p.add_argument("--timestep-fs", type=float, default=2.0)
    p.add_argument("--friction", type=float, default=0.02, help="Langevin friction (1/fs)")
    p.add_argument("--lower", type=float, default=0.05)
    p.add_argument("--upper", type=float, default=1.0)
    p.add_argument("--min-gap", type=int, default=50, help="steps between two labels at least")
    p.add_argument("--retrain-epochs", type=int, default=30)
    p.add_argument("--retrain-lr", type=float, default=1e-3, help="warm-start learning rate (AdamW, cosine)")
    p.add_argument("--bootstrap", action="store_true",
                   help="bootstrap-resample the data per member in every warm start (off: with a handful of "
                        "frames, resampling makes the members disagree more after a label than before)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write-every", type=int, default=1000)
    p.add_argument("--max-wall-s", type=float, default=None)
    p.add_argument("--out-prefix", default="ramp")
    p.add_argument("--plot", default=None)
    args = p.parse_args(argv)
    s = run(args)
    print(json.dumps({k: v for k, v in s.items() if k not in ("labelled_steps", "above_upper_steps")}, indent=1))
    return 0
