"""Active learning on EMT Cu-Au over the whole composition range, judged by formation energies and
the convex hull (issue 23, "alloys").

1. The loop (:func:`mlip_props.fitting.active.learn`, EMT oracle) on 32-atom cubic fcc cells:
   seeds = fcc Cu, fcc Au, L1_2 Cu3Au, L1_0 CuAu, L1_2 CuAu3 and one random solid solution at
   x_Cu = 0.25, 0.5, 0.75, each rattled (0.05 A) and strained (+-2 %), plus the isolated atoms;
   explorers = batched committee MD (:class:`~mlip_props.fitting.explore.MDExplorer`) of those
   eight cells at a temperature schedule, and
   :class:`~mlip_props.fitting.active.alloys.AlloyExplorer` (fresh random solid solutions at
   x = 0.25, 0.5, 0.75 and the ordered cells, strained +-4 %, rattled 0.08 A, every round).
2. Formation energies (cell and ions relaxed, per atom, relative to relaxed fcc Cu and Au) of the
   ordered phases and of random 32-atom cells at x = 0.25, 0.5, 0.75 (``--n-random`` each, draws
   never used in the loop), with the committee mean and with EMT directly, through
   :func:`mlip_props.properties.phase_diagram.convex_hull`.

Reported (``--out`` JSON): max |dE_f| (meV/atom), per-structure E_f, the stable set and the energy
order of the ordered phases with each potential, oracle calls, the wall-time split (oracle /
training / exploration / selection), test errors on independent EMT frames.

    OMP_NUM_THREADS=1 python benchmarks/active_learning_alloys.py --workdir /work/runs/h4/alloys \\
        --out /work/runs/h4/alloys.json
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

ORDERED = ("Cu3Au", "CuAu", "CuAu3")


def _labelled(frames):
    from mlip_props.backend import emt_oracle
    from mlip_props.fitting import label_with_oracle

    return label_with_oracle(emt_oracle(), frames)


def seed_frames(cells: dict, ss: list, seed: int) -> list:
    from mlip_props.fitting.active.alloys import strain_and_rattle

    rng = np.random.default_rng(1000 + seed)
    out = []
    for a in list(cells.values()) + ss:
        for s in (-0.02, 0.02):
            b = strain_and_rattle(a, rng, 0.0, 0.05)
            b.set_cell(b.cell * (1 + s), scale_atoms=True)
            b.info["config_type"] = "seed_" + a.info["config_type"]
            out.append(b)
    return out


def test_frames(cells: dict, n_per: int, seed: int = 4242) -> list:
    """Independent EMT-labelled frames: random solid solutions at x = 0.25, 0.5, 0.75 (draws of
    their own) and the ordered cells, strained +-3 %, rattled 0.1 A."""
    from mlip_props.fitting.active.alloys import fcc_solid_solution, strain_and_rattle

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_per):
        for x in (0.25, 0.5, 0.75):
            out.append(strain_and_rattle(fcc_solid_solution(("Cu", "Au"), x, 2, rng), rng, 0.03, 0.1))
        for a in cells.values():
            out.append(strain_and_rattle(a, rng, 0.03, 0.1))
    return _labelled(out)


def energy_rmse_meV_atom(model, frames) -> float:
    from mlip_props.backend import evaluate
    from mlip_props.fitting import CommitteeMean

    e = evaluate(CommitteeMean(model), frames, ("energy",)).energies_eV
    ref = np.array([a.get_potential_energy() for a in frames])
    n = np.array([len(a) for a in frames])
    return float(1000 * np.sqrt(np.mean(((np.asarray(e) - ref) / n) ** 2)))


def hull_summary(h, labels: list[str]) -> dict:
    ef = {lab: float(1000 * e) for lab, e in zip(labels, h.formation_energies_eV_per_atom)}
    eah = {lab: float(1000 * e) for lab, e in zip(labels, h.e_above_hull_eV_per_atom)}
    return {"formation_meV_atom": ef, "e_above_hull_meV_atom": eah,
            "on_hull": [lab for lab, s in zip(labels, h.stable) if s],
            "ordered_energy_order": sorted(ORDERED, key=lambda k: ef[k]),
            "relax_converged": dict(zip(labels, map(bool, h.relax_converged)))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="al_alloys")
    p.add_argument("--out", default="al_alloys.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=int, default=150, help="oracle calls at most")
    p.add_argument("--max-rounds", type=int, default=12)
    p.add_argument("--max-per-round", type=int, default=8)
    p.add_argument("--lower", type=float, default=0.05)
    p.add_argument("--upper", type=float, default=1.0)
    p.add_argument("--committee", type=int, default=4)
    p.add_argument("--hidden", type=int, nargs="+", default=[16, 16])
    p.add_argument("--initial-epochs", type=int, default=300)
    p.add_argument("--retrain-epochs", type=int, default=60)
    p.add_argument("--md-steps", type=int, default=100)
    p.add_argument("--n-random", type=int, default=2, help="random cells per composition in the hull test")
    p.add_argument("--test-per", type=int, default=2)
    p.add_argument("--no-resume", action="store_true")
    args = p.parse_args(argv)

    from mlip_props.fitting import CommitteeMean
    from mlip_props.fitting.active import learn
    from mlip_props.fitting.active.alloys import AlloyExplorer, cu_au_ordered_cells, fcc_solid_solution
    from mlip_props.fitting.explore import MDExplorer
    from mlip_props.potentials import load_potential
    from mlip_props.properties.phase_diagram import convex_hull

    t_all = time.perf_counter()
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "omp_threads": os.environ.get("OMP_NUM_THREADS"), "load_avg_start": os.getloadavg()},
              "command": " ".join([sys.executable] + sys.argv), "args": vars(args)}
    cells = cu_au_ordered_cells(2)
    ss = [fcc_solid_solution(("Cu", "Au"), x, 2, 100 + k) for k, x in enumerate((0.25, 0.5, 0.75))]
    tests = test_frames(cells, args.test_per)
    explorers = [MDExplorer(list(cells.values()) + ss, temperature_schedule=[[300.0, 900.0], [600.0, 1200.0]],
                            steps=args.md_steps, sample_every=10),
                 AlloyExplorer(("Cu", "Au"), (0.25, 0.5, 0.75), reps=2, ordered=list(cells.values()))]
    t0 = time.perf_counter()
    res = learn(seed_frames(cells, ss, args.seed), None, explorers, args.workdir, test_frames=tests,
                resume=not args.no_resume, lower_eV_A=args.lower, upper_eV_A=args.upper,
                max_per_round=args.max_per_round, max_rounds=args.max_rounds, max_oracle_calls=args.budget,
                committee=args.committee, hidden=tuple(args.hidden), initial_epochs=args.initial_epochs,
                retrain_epochs=args.retrain_epochs, seed=args.seed, progress=True)
    report["loop"] = {"wall_s": time.perf_counter() - t0, "oracle_calls": res.history[-1]["oracle_calls"],
                      "n_labelled": res.n_labelled, "rounds": res.rounds, "stop_reason": res.stop_reason,
                      "timings_s": res.timings_s,
                      "test_force_rmse_meV_A": res.history[-1].get("test_force_rmse_meV_A"),
                      "test_energy_rmse_meV_atom": energy_rmse_meV_atom(res.model, tests),
                      "n_test_frames": len(tests), "history": res.history}
    print(json.dumps({k: v for k, v in report["loop"].items() if k != "history"}), flush=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))

    # ---- formation energies and the hull, committee mean vs EMT, same structures and relaxation
    structs, labels = [], []
    for name, a in cells.items():
        structs.append(a.copy())
        labels.append(name)
    for x in (0.25, 0.5, 0.75):
        for k in range(args.n_random):
            structs.append(fcc_solid_solution(("Cu", "Au"), x, 2, 9000 + 10 * k + int(100 * x)))
            labels.append(f"random_xCu{x:.2f}_{k}")
    hulls, t_hull = {}, {}
    for name, pot in (("emt", load_potential("emt")), ("committee", CommitteeMean(res.model))):
        t1 = time.perf_counter()
        hulls[name] = hull_summary(convex_hull(pot, [s.copy() for s in structs]), labels)
        t_hull[name] = time.perf_counter() - t1
    d = {lab: hulls["committee"]["formation_meV_atom"][lab] - hulls["emt"]["formation_meV_atom"][lab]
         for lab in labels}
    report["hull"] = {"labels": labels, **hulls, "dE_f_meV_atom": d,
                      "max_abs_dE_f_meV_atom": max(abs(v) for v in d.values()),
                      "max_abs_dE_f_ordered_meV_atom": max(abs(d[k]) for k in ORDERED),
                      "same_on_hull": set(hulls["emt"]["on_hull"]) == set(hulls["committee"]["on_hull"]),
                      "same_ordered_energy_order": (hulls["emt"]["ordered_energy_order"]
                                                    == hulls["committee"]["ordered_energy_order"]),
                      "wall_s": t_hull}
    report["total_wall_s"] = time.perf_counter() - t_all
    report["load_avg_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps({k: v for k, v in report["hull"].items() if k not in ("emt", "committee")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
