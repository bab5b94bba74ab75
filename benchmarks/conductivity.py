"""Benchmark: lattice thermal conductivity of Stillinger-Weber Si through phono3py.

mlip-props (:func:`mlip_props.properties.conductivity.plan_conductivity`, one batched backend
call, :meth:`~mlip_props.properties.conductivity.ConductivityPlan.analyse`) against the baseline:
phono3py driven one displaced supercell at a time through the ASE calculator wrapper
``mlip_props.MLIPCalculator`` (the usual phono3py + ASE workflow). Same potential, same cell
(conventional 8-atom Si, a = 5.431 A, no relaxation), same supercells, same displacements
(0.03 A), same mesh, same phono3py settings (RTA, isotopes, 300 K, tetrahedron weights averaged
over degenerate bands).

    python benchmarks/conductivity.py [--supercells 2,3] [--mesh 7] [--repeats 3] [--fc3-routes]

Every pass runs the routes back to back (round robin); the medians over ``--repeats`` passes are
printed per stage, so that the end-to-end ratio can be read against where the time goes:

* baseline: ``setup`` (Phono3py object, displacements, displaced supercells), ``forces`` (the
  calculator loop), ``force_constants`` (phono3py's fc3/fc2 solver), ``sum_rules``
  (phono3py's symmetrisation), ``kappa`` (phonons, interaction, RTA);
* mlip-props: ``plan`` (spglib, supercell choice, Phono3py object, displacements, conversion to
  ASE), ``evaluate`` (one backend call), then the analysis's own per-stage timings
  (``ConductivityResult.timings_s``: ``force_constants``, ``sum_rules``, ``kappa``,
  ``kappa_raw_force_constants``) and ``other`` (the rest of the analysis: copying the phono3py
  template, setting the forces, the result). Two mlip-props runs: the default
  (``raw_kappa=True``: also kappa from the raw, unsymmetrised constants, a second phono3py kappa
  run the baseline does not do) and ``raw_kappa=False`` (the same work as the baseline).

``--fc3-routes``: fc3 from force differences of phono3py's pair displacements against fc3 from
central differences of analytic Hessians of the singly displaced supercells
(``fc3_method="hessian"``) at the same displacement: backend time, end-to-end time, the largest
fc3 error and the kappa error (three-phonon only) of each against the converged reference (the
Hessian route at 0.003 A).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk

from mlip_props import MLIPCalculator, load_potential
from mlip_props.properties.conductivity import plan_conductivity
from mlip_props.properties.plan import evaluate_plans

FCC_PRIMITIVE_MATRIX = [[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]


def calculator_forces(potential, structures):
    """Forces of each structure through the ASE calculator, one call per structure."""
    calc = MLIPCalculator(potential)
    out = []
    for s in structures:
        a = s.copy()
        a.calc = calc
        out.append(a.get_forces())
    return out


def phono3py_through_ase(potential, unit: Atoms, n: int, mesh: int) -> tuple[np.ndarray, dict[str, float]]:
    """The baseline: phono3py's displacements, forces one supercell at a time, fc3/fc2, their
    symmetrisation, RTA kappa at 300 K with isotopes; returns the (6,) tensor, W/(m K), and the
    seconds per stage."""
    from phono3py import Phono3py
    from phonopy.structure.atoms import PhonopyAtoms

    t = {}
    t0 = time.perf_counter()
    cell = PhonopyAtoms(symbols=unit.get_chemical_symbols(), cell=np.asarray(unit.cell),
                        scaled_positions=unit.get_scaled_positions(), masses=unit.get_masses())
    ph3 = Phono3py(cell, supercell_matrix=[n] * 3, primitive_matrix=FCC_PRIMITIVE_MATRIX)
    ph3.generate_displacements(distance=0.03)
    scs = [Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
           for sc in ph3.supercells_with_displacements]
    t["setup"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ph3.forces = np.array(calculator_forces(potential, scs))
    t["forces"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ph3.produce_fc3()
    t["force_constants"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ph3.symmetrize_fc3()
    ph3.symmetrize_fc2()
    t["sum_rules"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ph3.mesh_numbers = [mesh] * 3
    ph3.init_phph_interaction(average_degenerate_weights=True)
    ph3.run_thermal_conductivity(temperatures=[300.0], is_isotope=True)
    t["kappa"] = time.perf_counter() - t0
    t["total"] = sum(t.values())
    return np.array(ph3.thermal_conductivity.kappa[0][0]), t


def mlip_props_run(potential, unit: Atoms, n: int, mesh: int, **options: Any) -> tuple[Any, dict[str, float]]:
    """plan -> one backend call -> analyse, timed per stage (the analysis's own stages from the
    result's ``timings_s``)."""
    t = {}
    t0 = time.perf_counter()
    plan = plan_conductivity(potential, unit, supercell=n, mesh=mesh, convergence_mesh=False, relaxation=False,
                             **options)
    t["plan"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    answers = evaluate_plans(potential, [plan])[0]
    t["evaluate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = plan.analyse(answers)[0]
    analysis = time.perf_counter() - t0
    t.update(result.timings_s)
    t["other"] = analysis - sum(result.timings_s.values())
    t["total"] = t["plan"] + t["evaluate"] + analysis
    return result, t


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r.get(k, 0.0) for r in runs) for k in runs[0]}


def _stages(t: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in t.items() if k != "total")


def end_to_end(pot, si, n: int, mesh: int, repeats: int) -> None:
    routes: dict[str, list] = {"baseline": [], "default": [], "like_for_like": []}
    kappas = {}
    for _ in range(repeats):  # round robin: the three routes back to back in every pass
        kappas["baseline"], t = phono3py_through_ase(pot, si, n, mesh)
        routes["baseline"].append(t)
        kappas["default"], t = mlip_props_run(pot, si, n, mesh)
        routes["default"].append(t)
        kappas["like_for_like"], t = mlip_props_run(pot, si, n, mesh, raw_kappa=False)
        routes["like_for_like"].append(t)
    med = {k: _medians(v) for k, v in routes.items()}
    ref = kappas["baseline"][:3]
    res = kappas["default"]
    diff = float(np.max(np.abs(np.asarray(res.kappa_W_mK[0][:3]) - ref) / ref))
    print(f"{n}x{n}x{n} conventional ({8 * n ** 3} atoms), {res.n_displaced_supercells} displaced supercells, "
          f"mesh {mesh}^3; medians of {repeats}; kappa {res.kappa_average_W_mK[0]:.2f} vs baseline "
          f"{ref.mean():.2f} W/(m K) (max rel. diff {diff:.1e})")
    b = med["baseline"]
    for name, label in (("baseline", "phono3py + ASE loop"), ("default", "mlip-props (raw_kappa=True)"),
                        ("like_for_like", "mlip-props (raw_kappa=False)")):
        m = med[name]
        ratio = "" if name == "baseline" else f"   end-to-end ratio {b['total'] / m['total']:.2f}x"
        print(f"  {label:30s} total {m['total']:7.2f} s{ratio}   [{_stages(m)}]")
    non_force = b["total"] - b["forces"]
    print(f"  forces: batched {med['default']['evaluate']:.2f} s vs calculator loop {b['forces']:.2f} s "
          f"({b['forces'] / med['default']['evaluate']:.1f}x); the baseline's phono3py work (setup, fc, sum rules, "
          f"kappa) {non_force:.2f} s bounds the end-to-end ratio at {b['total'] / non_force:.2f}x")


def fc3_routes(pot, si, n: int, mesh: int, repeats: int) -> None:
    from mlip_props.properties.conductivity.kappa import enforce_sum_rules, kappa_on_mesh

    opts = dict(supercell=n, mesh=mesh, convergence_mesh=False, relaxation=False, raw_kappa=False)

    def fc3_and_kappa(route: str, d: float):
        plan = plan_conductivity(pot, si, fc3_method=route, displacement_A=d, **opts)
        t0 = time.perf_counter()
        answers = evaluate_plans(pot, [plan])[0]
        t_eval = time.perf_counter() - t0
        ph3, _, fc3 = plan.force_constants(0, answers)
        enforce_sum_rules(ph3)
        run = kappa_on_mesh(ph3, [mesh] * 3, [300.0], isotope=False, lbte=False, imaginary_tolerance_THz=0.05)
        return fc3, float(np.mean(run.kappa_W_mK[0][:3])), t_eval, len(plan.structures)

    ref_fc3, ref_kappa, _, _ = fc3_and_kappa("hessian", 0.003)
    print(f"fc3 routes, {n}x{n}x{n} ({8 * n ** 3} atoms), mesh {mesh}^3; reference: Hessian route at 0.003 A, "
          f"three-phonon kappa {ref_kappa:.2f} W/(m K)")
    for d in (0.03, 0.01):
        rows = {}
        for route in ("forces", "hessian"):
            t_e2e, t_ev = [], []
            for _ in range(repeats):
                fc3, kappa, t_eval, n_struct = fc3_and_kappa(route, d)
                t_ev.append(t_eval)
                r, t = mlip_props_run(pot, si, n, mesh, fc3_method=route, displacement_A=d, raw_kappa=False)
                t_e2e.append(t["total"])
            rows[route] = (statistics.median(t_ev), statistics.median(t_e2e), n_struct,
                           float(np.abs(fc3 - ref_fc3).max()), abs(kappa / ref_kappa - 1))
        for route, (te, tt, ns, dfc3, dk) in rows.items():
            print(f"  d = {d} A, {route:7s}: {ns:4d} supercells, backend {te:7.2f} s, end to end {tt:7.2f} s, "
                  f"max |fc3 - ref| {dfc3:.2e} eV/A^3 (of max |fc3| {np.abs(ref_fc3).max():.1f}), "
                  f"kappa error {dk:.1e}")
        f, h = rows["forces"], rows["hessian"]
        print(f"  d = {d} A: Hessian route / force route: backend {h[0] / f[0]:.2f}x, end to end {h[1] / f[1]:.2f}x "
              "the time")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--supercells", default="2,3", help="conventional-cell multiples, comma separated")
    ap.add_argument("--mesh", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fc3-routes", action="store_true", help="also compare fc3 from forces and from Hessians")
    args = ap.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    pot = load_potential("sw")
    si = bulk("Si", "diamond", a=5.431, cubic=True)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, torch {torch.__version__}; load average {os.getloadavg()[0]:.1f}")
    print("command: python " + " ".join(["benchmarks/conductivity.py", *(argv or sys.argv[1:])]))
    for n in (int(x) for x in args.supercells.split(",")):
        end_to_end(pot, si, n, args.mesh, args.repeats)
        if args.fc3_routes:
            fc3_routes(pot, si, n, args.mesh, args.repeats)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
