"""Benchmark: kappa of Si with SevenNet-0, mlip-props' batched route against matcalc's Phonon3Calc.

matcalc (0.7) drives phono3py one displaced supercell at a time through an ASE calculator
(``SevenNetCalculator("7net-0")``); mlip-props evaluates all displaced supercells in one batched
backend call (``load_potential("sevenn:dtype=float32")``). The two need different environments
(matcalc pins its own stack), so this script is run once per route, each in its own venv, on the
same input structure and settings, and prints one JSON line per run:

    # mlip-props (the project's venv)
    python benchmarks/conductivity_matcalc.py --route mlip-props --structure si.json
    # matcalc (a venv with torch 2.13.0, matcalc 0.7, sevenn, phono3py; no mlip-props needed)
    python benchmarks/conductivity_matcalc.py --route matcalc --structure si.json

``--structure``: a ``mlip-props calc conductivity --json`` output (its relaxed ``atoms``: both
routes start from the same SevenNet-0-relaxed primitive cell and do not relax again, so the wall
times compare the displaced-supercell forces and phono3py's work). Settings shared by both:
the fc2 = fc3 supercell matrix of that output (``fc3_supercell_matrix``; 64-atom conventional
2x2x2 cell for Si), phono3py's 0.03 A displacements, RTA with isotope scattering at 300 K on the
``--mesh`` (11x11x11 by default). mlip-props runs with ``convergence_mesh=False`` and
``raw_kappa=False`` (the work matcalc does) and once more with its defaults (``--defaults``: also
the denser mesh and the raw-constant kappa). Differences that remain: matcalc builds a separate
fc2 displacement set (phono3py's ``phonon_supercell_matrix`` given even when equal; 1 more
supercell for Si), symmetrises with ``symmetrize_fc3r``/``symmetrize_fc2`` inside the fc solver,
and does not average the tetrahedron weights over degenerate bands.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from ase import Atoms


def read_structure(path: str) -> tuple[Atoms, list]:
    """The relaxed primitive cell and the fc3 supercell matrix of a ``calc conductivity --json`` output."""
    with open(path) as f:
        d = json.load(f)
    d = d[0] if isinstance(d, list) else d
    d = d.get("result", d)
    a = d["atoms"]
    atoms = Atoms(a["symbols"], positions=a["positions_A"], cell=a["cell_A"], pbc=a["pbc"])
    return atoms, d["fc3_supercell_matrix"]


def run_mlip_props(atoms: Atoms, matrix: list, mesh: list[int], defaults: bool) -> dict:
    import torch

    from mlip_props import load_potential
    from mlip_props.properties.conductivity import thermal_conductivity

    t0 = time.perf_counter()
    pot = load_potential("sevenn:dtype=float32")
    t1 = time.perf_counter()
    extra = {} if defaults else {"convergence_mesh": False, "raw_kappa": False}
    r = thermal_conductivity(pot, atoms, supercell=matrix, mesh=mesh, relaxation=False, isotope=True,
                             temperatures_K=[300.0], **extra)
    t2 = time.perf_counter()
    return {"route": "mlip-props" + (" (defaults)" if defaults else ""), "load_s": t1 - t0, "wall_s": t2 - t1,
            "kappa_average_W_mK": r.kappa_average_W_mK[0], "kappa_W_mK": r.kappa_W_mK[0],
            "n_displaced_supercells": r.n_displaced_supercells, "timings_s": r.timings_s,
            "mesh_change_rel": r.mesh_change_rel, "sum_rule_kappa_change_rel": r.sum_rule_kappa_change_rel,
            "torch_threads": torch.get_num_threads()}


def run_matcalc(atoms: Atoms, matrix: list, mesh: list[int]) -> dict:
    import matcalc
    import torch
    from matcalc import Phonon3Calc
    from sevenn.calculator import SevenNetCalculator

    t0 = time.perf_counter()
    calc = SevenNetCalculator("7net-0", device="cpu")
    t1 = time.perf_counter()
    pc = Phonon3Calc(calc, fc2_supercell=matrix, fc3_supercell=matrix, mesh_numbers=mesh, relax_structure=False,
                     thermal_conductivity_kwargs={"is_isotope": True}, t_min=300, t_max=300, t_step=10)
    out = pc.calc(atoms)
    t2 = time.perf_counter()
    ph3 = out["phonon3"]
    kappa = np.asarray(ph3.thermal_conductivity.kappa)[0, 0]
    n = (sum(1 for s in ph3.supercells_with_displacements if s is not None)
         + len(ph3.phonon_supercells_with_displacements))
    return {"route": f"matcalc {matcalc.__version__} Phonon3Calc", "load_s": t1 - t0, "wall_s": t2 - t1,
            "kappa_average_W_mK": float(np.mean(kappa[:3])), "kappa_W_mK": kappa.tolist(),
            "n_displaced_supercells": n, "torch_threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--route", choices=["mlip-props", "matcalc"], required=True)
    ap.add_argument("--structure", required=True)
    ap.add_argument("--mesh", type=int, default=11)
    ap.add_argument("--defaults", action="store_true", help="mlip-props: also the convergence mesh and raw kappa")
    args = ap.parse_args()
    atoms, matrix = read_structure(args.structure)
    mesh = [args.mesh] * 3
    load = os.getloadavg()
    res = (run_mlip_props(atoms, matrix, mesh, args.defaults) if args.route == "mlip-props"
           else run_matcalc(atoms, matrix, mesh))
    n_atoms = int(round(abs(np.linalg.det(matrix)))) * len(atoms)
    res.update(mesh=mesh, supercell_matrix=matrix, n_supercell_atoms=n_atoms,
               load_average_before=load, load_average_after=os.getloadavg(), python=platform.python_version(),
               omp_num_threads=os.environ.get("OMP_NUM_THREADS"))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
