"""Benchmark: relax + equation of state + elastic tensor for 100 crystals (fcc/bcc/hcp/diamond, 1-8 atoms).

mlip-props batched (relax -> equation_of_state -> elastic_tensor, each structure set in shared
backend batches) against the SAME torch potential through ``mlip_props.MLIPCalculator`` one
structure at a time, following the same protocol with ASE tools (FixSymmetry + FrechetCellFilter
+ FIRE relaxation, FIRE ion relaxation at every volume / strain, ase.eos Birch-Murnaghan fit,
straight-line stress-strain fit), and optionally matcalc's RelaxCalc/EOSCalc/ElasticityCalc
(``--matcalc-path DIR``: a directory holding matcalc and its missing pure-Python dependencies,
installed with ``pip install --target DIR --no-deps matcalc scikit-learn joblib threadpoolctl``
so that the project's torch is never touched).

The potential: Stillinger-Weber for Si (diamond) plus a short-ranged Morse pair potential for "Cu"
(D = 0.34 eV, a = 1.8 1/A, r0 = 2.6 A, cutoff 5.5 A; a model chosen so that fcc, bcc and hcp are all
mechanically stable, not a fit to copper), combined in one torch module that routes each edge to
its element's term.

    python benchmarks/solids.py [--repeats 3] [--n-loop 100] [--threads 1] [--matcalc-path DIR]

Prints the machine, the command, the median batched time of ``--repeats`` runs, the loop time
(over ``--n-loop`` structures, scaled to 100 if fewer) and their ratio, and the largest
differences in V0, B and C_ij between the two routes.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
from ase.build import bulk
from ase.units import GPa

from mlip_props import MLIPCalculator
from mlip_props.backend.potential import AtomicGraph, Potential
from mlip_props.potentials import Morse, StillingerWeber
from mlip_props.properties.elastic import strained, voigt_strain_tensor
from mlip_props.properties.eos import equation_of_state
from mlip_props.properties.elastic import elastic_tensor
from mlip_props.properties.relax import relax

FMAX = 1e-4  # eV/A
SMAX_GPA = 1e-3
STRAINS = (-0.01, -0.005, 0.005, 0.01)
VOLUME_RANGE, N_POINTS = 0.06, 11


class SiCuPotential(Potential):
    """Stillinger-Weber on Si-Si edges, a short-ranged model Morse pair potential on Cu-Cu edges."""

    def __init__(self):
        super().__init__(cutoff=5.5, elements={14, 29})
        self.sw = StillingerWeber()
        self.morse = Morse(D=0.34, a=1.8, r0=2.6, cutoff=5.5, switch_width=1.0)

    def _sub(self, g: AtomicGraph, z: int) -> AtomicGraph:
        i, j = g.edge_index
        keep = (g.numbers[i] == z) & (g.numbers[j] == z)
        return dataclasses.replace(g, edge_index=g.edge_index[:, keep], edge_vectors=g.edge_vectors[keep],
                                   edge_lengths=g.edge_lengths[keep], edge_structure=g.edge_structure[keep])

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        return self.sw(self._sub(graph, 14)) + self.morse(self._sub(graph, 29))


def structures(n: int = 100, seed: int = 0):
    """n crystals cycling through 8 cell types (1-8 atoms), starting lattice parameters spread +-2 %."""
    rng = np.random.default_rng(seed)
    makers = [
        lambda s: bulk("Si", "diamond", a=5.43 * s),  # 2 atoms
        lambda s: bulk("Si", "diamond", a=5.43 * s, cubic=True),  # 8
        lambda s: bulk("Cu", "fcc", a=3.50 * s),  # 1
        lambda s: bulk("Cu", "fcc", a=3.50 * s, cubic=True),  # 4
        lambda s: bulk("Cu", "bcc", a=2.78 * s),  # 1
        lambda s: bulk("Cu", "bcc", a=2.78 * s, cubic=True),  # 2
        lambda s: bulk("Cu", "hcp", a=2.48 * s, c=4.05 * s),  # 2
        lambda s: bulk("Cu", "hcp", a=2.48 * s, c=4.05 * s).repeat((1, 1, 2)),  # 4
    ]
    return [makers[k % len(makers)](1.0 + rng.uniform(-0.02, 0.02)) for k in range(n)]


# ----------------------------------------------------------------------------- batched
def run_batched(pot, atoms_list):
    rel = relax(pot, atoms_list, fmax=FMAX, relax_cell=True, smax_GPa=SMAX_GPA, keep_symmetry=True, max_steps=5000)
    base = [r.atoms for r in rel]
    eos = equation_of_state(pot, base, relaxation={"enabled": False, "fmax_eV_A": FMAX}, volume_range=VOLUME_RANGE,
                            n_points=N_POINTS)
    el = elastic_tensor(pot, base, relaxation={"enabled": False, "fmax_eV_A": FMAX}, strains=STRAINS)
    return [dict(v0=e.v0_A3_per_atom, B=e.bulk_modulus_GPa, C=c.C_raw_GPa, conv=r.converged and e.converged and c.converged)
            for r, e, c in zip(rel, eos, el)]


# ----------------------------------------------------------------------------- per structure, ASE
def run_ase_one(pot, atoms):
    from ase.constraints import FixSymmetry
    from ase.eos import EquationOfState
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    calc = MLIPCalculator(pot)
    a = atoms.copy()
    a.calc = calc
    a.set_constraint(FixSymmetry(a, symprec=1e-4))
    conv = FIRE(FrechetCellFilter(a), logfile=None).run(fmax=FMAX, steps=5000)
    a.set_constraint()
    n = len(a)

    def relaxed_stress_energy(b):
        b.calc = calc
        ok = True
        if n > 1:
            ok = FIRE(b, logfile=None).run(fmax=FMAX, steps=5000)
        return b.get_potential_energy(), b.get_stress(voigt=True), ok

    vols, ens = [], []
    for f in 1.0 + np.linspace(-VOLUME_RANGE, VOLUME_RANGE, N_POINTS):
        b = a.copy()
        b.set_cell(a.cell[:] * f ** (1 / 3), scale_atoms=True)
        e, _, ok = relaxed_stress_energy(b)
        conv = conv and ok
        vols.append(b.get_volume() / n)
        ens.append(e / n)
    v0, _, bmod = EquationOfState(vols, ens, eos="birchmurnaghan").fit()
    c = np.zeros((6, 6))
    for j in range(6):
        s = []
        for m in STRAINS:
            b = strained(a, voigt_strain_tensor(j, m))
            _, st, ok = relaxed_stress_energy(b)
            conv = conv and ok
            s.append(st)
        c[:, j] = np.polyfit(STRAINS, np.array(s), 1)[0] / GPa
    return dict(v0=v0, B=bmod / GPa, C=c, conv=bool(conv))


# ----------------------------------------------------------------------------- matcalc
def run_matcalc(pot, atoms_list):
    from matcalc import ElasticityCalc, EOSCalc, RelaxCalc
    from pymatgen.io.ase import AseAtomsAdaptor

    calc = MLIPCalculator(pot)
    out = []
    for atoms in atoms_list:
        s = AseAtomsAdaptor.get_structure(atoms)
        r = RelaxCalc(calc, fmax=FMAX, max_steps=5000, fix_symmetry=True).calc(s)
        st = r["final_structure"]
        e = EOSCalc(calc, fmax=FMAX, max_steps=5000, relax_structure=False,
                    max_abs_strain=(1 + VOLUME_RANGE) ** (1 / 3) - 1, n_points=N_POINTS).calc(st)
        el = ElasticityCalc(calc, fmax=FMAX, norm_strains=STRAINS, shear_strains=STRAINS, relax_structure=False,
                            relax_deformed_structures=len(atoms) > 1, units_GPa=True).calc(st)
        out.append(dict(B=e["bulk_modulus_bm"], C=np.asarray(el["elastic_tensor"].voigt)))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n-loop", type=int, default=100, help="structures run through the ASE loop (<= n)")
    p.add_argument("--loop-repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (both routes)")
    p.add_argument("--matcalc-path", default=None)
    p.add_argument("--n-matcalc", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pot = SiCuPotential()
    atoms_list = structures(args.n)
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({args.threads} thread(s)), load average {os.getloadavg()}")
    print("command: python " + " ".join(sys.argv))
    counts = {}
    for a in atoms_list:
        counts[len(a)] = counts.get(len(a), 0) + 1
    print(f"structures: {len(atoms_list)} (atoms per cell: {dict(sorted(counts.items()))})")

    times, res = [], None
    for _ in range(args.repeats):
        t = time.perf_counter()
        res = run_batched(pot, atoms_list)
        times.append(time.perf_counter() - t)
    t_b = statistics.median(times)
    print(f"batched mlip-props: median {t_b:.2f} s of {args.repeats} runs {[round(x, 2) for x in times]}; "
          f"all converged: {all(r['conv'] for r in res)}")

    # stratified subset for the loop: every k-th structure keeps the mix of cell types
    n_loop = min(args.n_loop, len(atoms_list))
    step = len(atoms_list) / n_loop
    idx = [int(k * step) for k in range(n_loop)]
    lt = []
    for _ in range(args.loop_repeats):
        t = time.perf_counter()
        ref = [run_ase_one(pot, atoms_list[k]) for k in idx]
        lt.append(time.perf_counter() - t)
    t_l = statistics.median(lt) * len(atoms_list) / n_loop
    scaled = "" if n_loop == len(atoms_list) else f" (measured on {n_loop} structures, scaled to {len(atoms_list)})"
    print(f"ASE loop (MLIPCalculator, one structure at a time): {t_l:.1f} s{scaled}; "
          f"all converged: {all(r['conv'] for r in ref)}")
    print(f"speed-up batched vs loop: {t_l / t_b:.1f}x")
    dv = max(abs(res[k]["v0"] / r["v0"] - 1) for k, r in zip(idx, ref))
    db = max(abs(res[k]["B"] / r["B"] - 1) for k, r in zip(idx, ref))
    dc = max(np.abs(res[k]["C"] - r["C"]).max() / np.abs(r["C"]).max() for k, r in zip(idx, ref))
    print(f"max relative difference batched vs loop: V0 {dv:.2e}, B {db:.2e}, C_ij {dc:.2e} (of max |C|)")

    if args.matcalc_path and args.n_matcalc:
        sys.path.insert(0, args.matcalc_path)
        sub = idx[: args.n_matcalc]
        t = time.perf_counter()
        mc = run_matcalc(pot, [atoms_list[k] for k in sub])
        t_m = (time.perf_counter() - t) * len(atoms_list) / len(sub)
        db = max(abs(res[k]["B"] / m["B"] - 1) for k, m in zip(sub, mc))
        dc = max(np.abs(res[k]["C"] - m["C"]).max() / np.abs(m["C"]).max() for k, m in zip(sub, mc))
        print(f"matcalc (RelaxCalc + EOSCalc + ElasticityCalc, per structure): {t_m:.1f} s "
              f"(measured on {len(sub)}, scaled to {len(atoms_list)}); speed-up {t_m / t_b:.1f}x; "
              f"max rel. difference B {db:.2e}, C_ij {dc:.2e}")


if __name__ == "__main__":
    main()
