"""Phonons with SevenNet-0 in float32: mlip-props' batched analytic-Hessian route against phonopy's
finite displacements through SevenNet's own ASE calculator, same relaxed structure, same supercell.

For each crystal (diamond Si, rocksalt MgO, wurtzite GaN, hcp Mg by default):

1. relax once with mlip-props (``relax`` with the phonons' default ``RelaxSettings``, float32);
2. analytic route: ``plan_phonons`` (relaxation off) -> ``evaluate_plans`` (Hessian rows of the
   primitive atoms, double backward) -> ``plan.analyse`` (ASR enforcement, band path, mesh);
3. phonopy route: ``Phonopy`` with the same supercell and primitive matrices, its displacements
   (0.01 A, +- where needed), ``SevenNetCalculator`` forces one supercell at a time,
   ``produce_force_constants``, raw sum-rule violation, ``symmetrize_force_constants``, then
   frequencies on the same band path q-points and the same mesh;
   also mlip-props' ``method="displacement"`` (the same displacements, forces batched in one
   backend call, perfect-supercell forces subtracted, symfc/phonopy ASR enforcement);
4. frequencies at Gamma and the zone-boundary points, n_imaginary (same tolerance for both: the
   analytic result's), ASR violation of each route's raw force constants, wall times.

Timings: one process, one torch thread, routes alternated round-robin over ``--passes``, medians.

    python benchmarks/phonons_universal.py [--materials Si MgO GaN-wurtzite Mg] [--passes 1] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np
import torch


def analytic_route(pot, atoms, mesh, method="hessian", supercell=None):
    """mlip-props' phonons, relaxation off: ``method="hessian"`` (analytic rows, the default for
    torch potentials) or ``"displacement"`` (phonopy's displacements, forces batched in one
    backend call)."""
    from mlip_props.properties.phonons import plan_phonons
    from mlip_props.properties.plan import evaluate_plans

    t0 = time.perf_counter()
    plan = plan_phonons(pot, atoms, relaxation=False, dtype=torch.float32, mesh=mesh, group_velocity_mesh=None,
                        method=method, supercell=supercell)
    t1 = time.perf_counter()
    answers = evaluate_plans(pot, [plan], dtype=torch.float32)[0]
    t2 = time.perf_counter()
    res = plan.analyse(answers)[0]
    t3 = time.perf_counter()
    return res, answers.precision, {"plan_s": t1 - t0, "evaluate_s": t2 - t1, "analyse_s": t3 - t2, "total_s": t3 - t0}


def phonopy_route(calc, atoms, supercell_matrix, primitive_matrix, band_qpoints, mesh_qpoints):
    from ase import Atoms
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    t0 = time.perf_counter()
    unit = PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=np.asarray(atoms.cell),
                        scaled_positions=atoms.get_scaled_positions(), masses=atoms.get_masses())
    ph = Phonopy(unit, supercell_matrix=supercell_matrix, primitive_matrix=primitive_matrix)
    ph.generate_displacements(distance=0.01, is_plusminus="auto")
    t1 = time.perf_counter()
    forces = []
    for sc in ph.supercells_with_displacements:
        at = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        at.calc = calc
        forces.append(np.array(at.get_forces(), dtype=float))
    t2 = time.perf_counter()
    ph.forces = forces
    ph.produce_force_constants()
    fc = np.asarray(ph.force_constants)
    viol = float(max(np.abs(fc.sum(axis=0)).max(), np.abs(fc.sum(axis=1)).max()))
    ph.symmetrize_force_constants()
    band = np.asarray(ph.run_qpoints(np.concatenate(band_qpoints)).frequencies)
    mesh_f = np.asarray(ph.run_qpoints(mesh_qpoints).frequencies)  # the analytic result's irreducible mesh
    t3 = time.perf_counter()
    return ph, viol, band, mesh_f, len(forces), {"setup_s": t1 - t0, "forces_s": t2 - t1, "fc_analysis_s": t3 - t2,
                                                "total_s": t3 - t0}


def probe_products(pot, repeats: int = 2) -> list[dict]:
    """Cost of the row engine's Hessian-vector products against plain force evaluations on the
    64-atom Si supercell: forces; rows of 0 atoms (forces with ``create_graph``), 1 atom (3
    products) and 2 atoms (6 products)."""
    from ase.build import bulk

    from mlip_props.backend import evaluate
    from mlip_props.backend.hessian_rows import evaluate_hessian_rows

    sc = bulk("Si", "diamond", a=5.45, cubic=True).repeat(2)
    evaluate(pot, [sc], ("energy", "forces"), dtype=torch.float32)  # warm-up
    out = []
    for _ in range(repeats):
        row = {}
        t = time.perf_counter()
        evaluate(pot, [sc], ("energy", "forces"), dtype=torch.float32)
        row["forces_s"] = time.perf_counter() - t
        for n in (0, 1, 2):
            t = time.perf_counter()
            evaluate_hessian_rows(pot, [sc], [list(range(n))], dtype=torch.float32)
            row[f"rows_{n}_atoms_s"] = time.perf_counter() - t
        out.append(row)
        print(json.dumps({"probe_products": row}), flush=True)
    return out


def run(materials, passes, mesh):
    from sevenn.calculator import SevenNetCalculator

    from mlip_props import load_potential
    from mlip_props.properties.relax import PROPERTY_RELAXATION, relax
    from mlip_props.structures import get

    torch.set_num_threads(1)
    pot = load_potential("sevenn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc = SevenNetCalculator("7net-0", device="cpu")
    rows = []
    for name in materials:
        t = time.perf_counter()
        rr = relax(pot, get(name), settings=PROPERTY_RELAXATION, dtype=torch.float32)
        relax_s = time.perf_counter() - t
        atoms = rr.atoms
        times_a, times_p, times_d = [], [], []
        for _ in range(passes):  # round-robin: one of each per pass
            res, precision, ta = analytic_route(pot, atoms, mesh)
            times_a.append(ta)
            res_d, _, td = analytic_route(pot, atoms, mesh, "displacement", np.asarray(res.supercell_matrix))
            times_d.append(td)
            ph, viol_p, band_p, mesh_p, n_disp, tp = phonopy_route(
                calc, atoms, np.asarray(res.supercell_matrix), res.harmonic.primitive_matrix, res.band_qpoints,
                res.mesh_object.qpoints)
            times_p.append(tp)
        band_a = np.concatenate([np.asarray(f) for f in res.band_frequencies_THz])
        mesh_a = np.asarray(res.mesh_object.frequencies)
        tol = res.imaginary_tolerance_THz
        weights = np.asarray(res.mesh_object.weights)
        hs = {k: np.round(v, 3).tolist() for k, v in res.high_symmetry_frequencies_THz.items()}
        q_hs = {}
        for (l0, l1), q in zip(res.band_labels, res.band_qpoints):
            q_hs.setdefault(l0, q[0])
            q_hs.setdefault(l1, q[-1])
        hs_p = {k: np.round(ph.run_qpoints([q]).frequencies[0], 3).tolist() for k, q in q_hs.items()}
        med = lambda ts, k: statistics.median(t[k] for t in ts)  # noqa: E731
        row = {
            "material": name, "precision": precision, "n_supercell_atoms": res.n_supercell_atoms,
            "supercell_matrix": res.supercell_matrix, "n_displacements_phonopy": n_disp,
            "relax": {"converged": rr.converged, "n_steps": rr.n_steps, "max_force_eV_A": rr.max_force_eV_A,
                      "max_stress_GPa": rr.max_stress_GPa, "wall_s": relax_s},
            "frequencies_THz": {"analytic": hs, "phonopy_ase": hs_p},
            "max_abs_diff_band_THz": float(np.abs(band_a - band_p).max()),
            "max_abs_diff_mesh_THz": float(np.abs(mesh_a - mesh_p).max()),
            "imaginary_tolerance_THz": tol, "asr_noise_THz": res.asr_noise_THz,
            "n_imaginary": {"analytic": res.n_imaginary_modes,
                            "phonopy_ase": int((band_p < -tol).sum() + ((mesh_p < -tol) * weights[:, None]).sum())},
            "lowest_THz": {"analytic": res.lowest_frequency_THz,
                           "phonopy_ase": float(min(band_p.min(), mesh_p.min()))},
            "asr_violation_raw_eV_A2": {"analytic": res.asr_violation_eV_A2, "phonopy_ase": viol_p,
                                        "batched_displacement": res_d.asr_violation_eV_A2},
            "batched_displacement": {
                "asr_enforcement": res_d.asr_enforcement, "n_imaginary": res_d.n_imaginary_modes,
                "max_abs_diff_band_vs_phonopy_ase_THz": float(np.abs(np.concatenate(
                    [np.asarray(f) for f in res_d.band_frequencies_THz]) - band_p).max())},
            "gamma_acoustic_raw_THz_analytic": res.gamma_acoustic_raw_THz,
            "polar": res.polar, "lo_to_missing": res.lo_to_missing,
            "wall_s": {"analytic": {k: med(times_a, k) for k in times_a[0]},
                       "phonopy_ase": {k: med(times_p, k) for k in times_p[0]},
                       "batched_displacement": {k: med(times_d, k) for k in times_d[0]}},
            "passes": passes,
        }
        row["speedup_phonopy_over_analytic"] = row["wall_s"]["phonopy_ase"]["total_s"] / row["wall_s"]["analytic"][
            "total_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--materials", nargs="+", default=["Si", "MgO", "GaN-wurtzite", "Mg"])
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--mesh", type=int, nargs=3, default=[8, 8, 8])
    ap.add_argument("--json", default=None)
    ap.add_argument("--probe-products", action="store_true",
                    help="only time Hessian-vector products against force evaluations (64-atom Si)")
    args = ap.parse_args()
    if args.probe_products:
        from mlip_props import load_potential

        torch.set_num_threads(1)
        probe_products(load_potential("sevenn"))
        return
    rows = run(args.materials, args.passes, args.mesh)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
