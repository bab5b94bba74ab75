"""Benchmark: lattice thermal conductivity of Stillinger-Weber Si through phono3py.

mlip-props (:func:`mlip_props.properties.conductivity.thermal_conductivity`: every displaced
supercell in one batched backend call) against the baseline: phono3py driven one displaced
supercell at a time through the ASE calculator wrapper ``mlip_props.MLIPCalculator`` (the usual
phono3py + ASE workflow). Same potential, same cell (conventional 8-atom Si, a = 5.431 A, no
relaxation), same supercells, same displacements (0.03 A), same mesh, same phono3py settings.

    python benchmarks/conductivity.py [--supercells 2,3] [--mesh 7] [--repeats 3]

Two timings per supercell, medians of ``--repeats`` passes:

* forces: the forces of all displaced supercells (plus the perfect one) -- one batched
  ``evaluate_plans`` call against the calculator loop over the same supercells;
* end to end: displacements, forces, fc2/fc3, symmetrisation and kappa (RTA, isotopes, 300 K).
  mlip-props' run does more than the baseline: it also computes kappa with the raw
  (unsymmetrised) force constants, the sum-rule checks and the imaginary-mode scan; the
  convergence mesh is off in both.

Prints the machine, the command, the medians, the ratios and the largest relative kappa
difference between the two routes.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk

from mlip_props import MLIPCalculator, load_potential
from mlip_props.properties.conductivity import plan_conductivity, thermal_conductivity
from mlip_props.properties.plan import evaluate_plans
from _timing import timed  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

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


def phono3py_through_ase(potential, unit: Atoms, n: int, mesh: int) -> np.ndarray:
    """The baseline: phono3py's displacements, forces one supercell at a time, fc3/fc2, their
    symmetrisation, RTA kappa at 300 K with isotopes; returns the (6,) tensor, W/(m K)."""
    from phono3py import Phono3py
    from phonopy.structure.atoms import PhonopyAtoms

    cell = PhonopyAtoms(symbols=unit.get_chemical_symbols(), cell=np.asarray(unit.cell),
                        scaled_positions=unit.get_scaled_positions(), masses=unit.get_masses())
    ph3 = Phono3py(cell, supercell_matrix=[n] * 3, primitive_matrix=FCC_PRIMITIVE_MATRIX)
    ph3.generate_displacements(distance=0.03)
    scs = [Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
           for sc in ph3.supercells_with_displacements]
    ph3.forces = np.array(calculator_forces(potential, scs))
    ph3.produce_fc3()
    ph3.symmetrize_fc3()
    ph3.symmetrize_fc2()
    ph3.mesh_numbers = [mesh] * 3
    ph3.init_phph_interaction(average_degenerate_weights=True)
    ph3.run_thermal_conductivity(temperatures=[300.0], is_isotope=True)
    return np.array(ph3.thermal_conductivity.kappa[0][0])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--supercells", default="2,3", help="conventional-cell multiples, comma separated")
    ap.add_argument("--mesh", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    pot = load_potential("sw")
    si = bulk("Si", "diamond", a=5.431, cubic=True)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, torch {torch.__version__}; load average {os.getloadavg()[0]:.1f}")
    print("command: python " + " ".join(["benchmarks/conductivity.py", *(argv or sys.argv[1:])]))
    for n in (int(x) for x in args.supercells.split(",")):
        plan = plan_conductivity(pot, si, supercell=n, mesh=args.mesh, convergence_mesh=False, relaxation=False)
        n_sc = len(plan.structures)
        t_batch, _, _ = timed(lambda: evaluate_plans(pot, [plan]), args.repeats)
        t_loop, _, _ = timed(lambda: calculator_forces(pot, plan.structures), args.repeats)
        t_mp, _, res = timed(lambda: thermal_conductivity(pot, si, supercell=n, mesh=args.mesh,
                                                          convergence_mesh=False, relaxation=False), args.repeats)
        t_ref, _, ref = timed(lambda: phono3py_through_ase(pot, si, n, args.mesh), args.repeats)
        diff = float(np.max(np.abs(np.asarray(res.kappa_W_mK[0][:3]) - ref[:3]) / ref[:3]))
        print(f"{n}x{n}x{n} conventional ({8 * n ** 3} atoms), {n_sc} supercells evaluated "
              f"({res.n_displaced_supercells} displaced), mesh {args.mesh}^3:")
        print(f"  forces:     batched {t_batch:8.2f} s   calculator loop {t_loop:8.2f} s   "
              f"ratio {t_loop / t_batch:6.1f}x")
        print(f"  end to end: mlip-props {t_mp:8.2f} s   phono3py + ASE loop {t_ref:8.2f} s   "
              f"ratio {t_ref / t_mp:6.2f}x   kappa {res.kappa_average_W_mK[0]:.2f} vs {ref[:3].mean():.2f} W/(m K) "
              f"(max rel. diff {diff:.1e})")


if __name__ == "__main__":
    main()
