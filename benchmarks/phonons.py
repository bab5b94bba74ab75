"""Benchmark: phonons (supercells >= 10 A) + harmonic thermal properties of 50 structures.

mlip-props batched (analytic-Hessian route and finite-displacement route, reported separately)
against the baseline: phonopy driven one displaced supercell at a time through the ASE
calculator wrapper ``mlip_props.MLIPCalculator`` (the usual phonopy + ASE workflow). Same
supercells, same primitive cells, same band path, same meshes; no relaxation (the structures
are the same for all three, so only the phonon + thermal work is timed).

    python benchmarks/phonons.py [--repeats 3] [--n 50] [--routes hessian,displacement] [--write-docs]

Prints the machine, the command, the median wall time of ``--repeats`` runs per method, the
ratio to the baseline measured in the same run, and the largest frequency difference (THz)
over all band-path points of all structures. The structures are relaxed once beforehand
(untimed); both batched routes and the baseline use phonopy's translational/permutation
force-constant symmetrisation.

Same outputs from every method, per structure: force constants of the same supercell; band
structure on phonopy's seekpath path (``auto_band_structure``, 51 points per segment); total
DOS by the tetrahedron method on a 30 A mesh (phonopy's 201 default frequency points); mean
|group velocity| per branch on a 15 A mesh (symmetrised over each q's little group); Cv, S,
F on a 30 A mesh at 101 temperatures. mlip-props also reports the acoustic-sum-rule checks
(raw violation, Gamma acoustic frequencies before and after) and the imaginary-mode scan,
which the baseline does not compute.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

from mlip_props import MLIPCalculator, load_potential
from mlip_props.properties.phonons import phonons, to_ase_atoms, to_phonopy_atoms
from mlip_props.properties.thermal import thermal_from_phonons
from _timing import timed  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

POTENTIAL = "morse:D=0.34,a=1.36,r0=2.6,cutoff=6.0"
TEMPERATURES = np.arange(0.0, 1001.0, 10.0)
THERMAL_MESH = 30.0  # A, phonopy length2mesh
DOS_MESH = 30.0
GV_MESH = 15.0  # mlip-props' default group-velocity mesh (A)


def structures(n: int = 50) -> list:
    """fcc, bcc, hcp, diamond, rocksalt, L1_2 (4 atoms/primitive) and substituted rocksalt
    (8 atoms/primitive), nearest-neighbour distances near the Morse minimum (2.6 A), +-3 %."""
    d = 2.6
    out = []
    scales = np.linspace(0.97, 1.03, 10)
    for s in scales:
        out.append(bulk("Cu", "fcc", a=d * np.sqrt(2) * s))
    for s in scales[:8]:
        out.append(bulk("Fe", "bcc", a=d * 2 / np.sqrt(3) * s))
    for s in scales[:8]:
        out.append(bulk("Mg", "hcp", a=d * s, c=d * s * 1.633))
    for s in scales[:8]:
        out.append(bulk("Si", "diamond", a=d * 4 / np.sqrt(3) * s))
    for s in scales[:8]:
        out.append(bulk("NaCl", "rocksalt", a=2 * d * s))
    for s in scales[:4]:
        l12 = bulk("Cu", "fcc", a=d * np.sqrt(2) * s, cubic=True)
        l12.symbols[0] = "Au"
        out.append(l12)
    for s in scales[:4]:
        rs = bulk("NaCl", "rocksalt", a=2 * d * s, cubic=True)
        rs.symbols[0] = "K"  # 8-atom simple-cubic primitive cell
        out.append(rs)
    return out[:n]


def run_batched(pot, structs, method):
    # same force-constant symmetrisation as the baseline (phonopy's translational/permutation)
    ph = phonons(pot, structs, relaxation=False, method=method, mesh=DOS_MESH, group_velocity_mesh=GV_MESH,
                 asr_enforcement="phonopy")
    th = thermal_from_phonons(ph, temperatures_K=TEMPERATURES, mesh=THERMAL_MESH, check_mesh=False)
    return ph, th


def fc_stage_batched(pot, reference, method):
    """Force-constant stage alone (supercells already built): Hessian rows of all supercells,
    or all displaced supercells in one evaluate call + phonopy's force-constant fit."""
    from mlip_props import evaluate
    from mlip_props.properties.phonons import hessian_rows

    if method == "hessian":  # compact force constants, as the Hessian route keeps them
        phs = [r.harmonic for r in reference]
        t0 = time.perf_counter()
        sc = [to_ase_atoms(ph.supercell) for ph in phs]
        rows = [np.asarray(ph.primitive.p2s_map) for ph in phs]
        hessian_rows(pot, sc, rows)
        return time.perf_counter() - t0
    phs = [r.phonopy_object for r in reference]
    t0 = time.perf_counter()
    batch, owner = [], []
    for k, ph in enumerate(phs):
        for sc in ph.supercells_with_displacements:
            batch.append(to_ase_atoms(sc))
            owner.append(k)
    res = evaluate(pot, batch, ("energy", "forces"))
    for k, ph in enumerate(phs):
        ph.forces = [f for f, o in zip(res.forces_eV_A, owner) if o == k]
        ph.produce_force_constants(show_drift=False)
    return time.perf_counter() - t0


FC_BASELINE = []


def run_baseline(pot, structs, reference):
    """phonopy + ASE, one displaced supercell at a time (same supercell/primitive matrices)."""
    from phonopy import Phonopy

    calc = MLIPCalculator(pot)
    out = []
    fc_time = 0.0
    for a, ref in zip(structs, reference):
        ph = Phonopy(to_phonopy_atoms(a), supercell_matrix=np.asarray(ref.supercell_matrix),
                     primitive_matrix=ref.harmonic.primitive_matrix)
        ph.generate_displacements(distance=0.01, is_plusminus="auto")
        t0 = time.perf_counter()
        forces = []
        for sc in ph.supercells_with_displacements:
            at = to_ase_atoms(sc)
            at.calc = calc
            forces.append(at.get_forces())
        ph.forces = forces
        ph.produce_force_constants(show_drift=False)
        fc_time += time.perf_counter() - t0
        ph.symmetrize_force_constants(show_drift=False)
        ph.auto_band_structure(npoints=51)
        ph.run_mesh(GV_MESH, is_gamma_center=True, with_group_velocities=True)
        ph.run_mesh(DOS_MESH, is_gamma_center=True)
        ph.run_total_dos()
        ph.run_mesh(THERMAL_MESH, is_gamma_center=True)
        ph.run_thermal_properties(temperatures=TEMPERATURES)
        out.append(ph)
    FC_BASELINE.append(fc_time)
    return out


def max_band_difference(results, baseline) -> float:
    worst = 0.0
    for r, ph in zip(results, baseline):
        for f_ours, f_ref in zip(r.band_frequencies_THz, ph.band_structure.frequencies):
            worst = max(worst, float(np.abs(np.asarray(f_ours) - np.asarray(f_ref)).max()))
    return worst


def run_matcalc(pot, structs, path: str):
    """matcalc 0.7's ``PhononCalc`` (phonopy finite displacements through an ASE calculator, one
    structure at a time): supercells >= 10 A (diagonal, from the cell lengths), no relaxation,
    default displacement (0.015 A), force constants + thermal properties on phonopy's default
    mesh only (no band structure, DOS or group velocities: less than the other methods compute)."""
    if path not in sys.path:
        sys.path.insert(0, path)
    from matcalc import PhononCalc

    from mlip_props import MLIPCalculator

    calc = PhononCalc(MLIPCalculator(pot), min_length=10.0, relax_structure=False, write_phonon=False,
                      t_step=10.0, t_max=1000.0)
    return [calc.calc(a.copy()) for a in structs]



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-repeats", type=int, default=None, help="default: same as --repeats")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared 2-core machine more threads oversubscribe)")
    ap.add_argument("--routes", default="hessian,displacement",
                    help="comma-separated batched routes to time (hessian, displacement)")
    ap.add_argument("--write-docs", action="store_true", help="write docs/benchmarks/phonons.md")
    ap.add_argument("--matcalc-path", default=None,
                    help="directory holding matcalc (pip install --target DIR --no-deps matcalc scikit-learn "
                         "joblib threadpoolctl): also time matcalc's PhononCalc")
    ap.add_argument("--n-matcalc", type=int, default=None, help="structures timed with matcalc (scaled to all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pot = load_potential(POTENTIAL)
    # relax once (untimed, batched, symmetry kept) so all methods start from the same minima
    from mlip_props.properties.relax import relax

    rel = relax(pot, structures(args.n), relax_cell=True, keep_symmetry=True, fmax=1e-4, smax_GPa=1e-3, max_steps=1000)
    structs = [r.atoms for r in rel]
    n_unconverged = sum(not r.converged for r in rel)
    n_prim = [len(s) for s in structs]
    machine = f"{platform.node()} | {platform.processor() or platform.machine()} | {os.cpu_count()} CPU cores | " \
              f"torch {torch.__version__} ({torch.get_num_threads()} threads) | Python {platform.python_version()}"
    command = "python " + " ".join(sys.argv)
    print("machine:", machine)
    print("command:", command)
    print(f"structures: {len(structs)} (atoms per input cell {min(n_prim)}-{max(n_prim)}), potential {POTENTIAL}; "
          f"relaxed first ({n_unconverged} not converged in 1000 steps)")

    # warm-up (imports, torch kernels)
    run_batched(pot, structs[:2], "hessian")

    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    nan = float("nan")
    t_h = t_d = fc_h = fc_d = dh = dd = nan
    all_h, all_d, ph_h, ph_d = [], [], None, None
    if "hessian" in routes:
        t_h, all_h, (ph_h, _) = timed(lambda: run_batched(pot, structs, "hessian"), args.repeats)
        print(f"batched, analytic Hessian : median {t_h:.2f} s  runs {[round(x, 2) for x in all_h]}")
    if "displacement" in routes:
        t_d, all_d, (ph_d, _) = timed(lambda: run_batched(pot, structs, "displacement"), args.repeats)
        print(f"batched, displacements    : median {t_d:.2f} s  runs {[round(x, 2) for x in all_d]}")
    ref = ph_h if ph_h is not None else ph_d
    br = args.baseline_repeats or args.repeats
    t_b, all_b, base = timed(lambda: run_baseline(pot, structs, ref), br)
    print(f"baseline phonopy+ASE      : median {t_b:.2f} s  runs {[round(x, 2) for x in all_b]}")
    fc_b = statistics.median(FC_BASELINE)
    if ph_h is not None:
        fc_h = statistics.median(fc_stage_batched(pot, ph_h, "hessian") for _ in range(args.repeats))
        dh = max_band_difference(ph_h, base)
    if ph_d is not None:
        fc_d = statistics.median(fc_stage_batched(pot, ph_d, "displacement") for _ in range(args.repeats))
        dd = max_band_difference(ph_d, base)
    print(f"force-constant stage only (median): Hessian {fc_h:.2f} s, displacements {fc_d:.2f} s, "
          f"baseline {fc_b:.2f} s -> {fc_b / fc_h:.1f}x and {fc_b / fc_d:.1f}x")
    n_sc = sum(r.n_supercell_atoms for r in ref)
    n_disp = sum(len(ph.displacements) for ph in base)
    print(f"supercells: {len(structs)} with {n_sc} atoms in total, widths >= "
          f"{min(min(r.supercell_widths_A) for r in ref):.2f} A; displaced supercells (baseline): {n_disp}")
    print(f"speed-up vs baseline: Hessian {t_b / t_h:.1f}x, displacements {t_b / t_d:.1f}x")
    print(f"max |frequency difference| on band paths vs baseline: Hessian {dh:.4f} THz, displacements {dd:.4f} THz")
    if args.matcalc_path:
        k = args.n_matcalc or len(structs)
        t_m, all_m, _ = timed(lambda: run_matcalc(pot, structs[:k], args.matcalc_path), 1)
        t_m_all = t_m * len(structs) / k
        print(f"matcalc PhononCalc        : {t_m:.2f} s for {k} structures -> {t_m_all:.2f} s for {len(structs)} "
              f"(scaled); Hessian route {t_m_all / t_h:.1f}x faster (matcalc computes force constants and "
              f"mesh thermal properties only)")
    n_imag = sum(r.imaginary_modes for r in ref)
    print(f"structures with imaginary modes (expected for a pair potential in diamond etc.): {n_imag}")

    if args.write_docs:
        path = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "phonons.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_markdown(machine, command, len(structs), n_prim, n_sc, n_disp, ref, t_h, all_h, t_d, all_d,
                                  t_b, all_b, dh, dd, n_imag, fc_h, fc_d, fc_b))
        print("wrote", path)


def _markdown(machine, command, n, n_prim, n_sc, n_disp, ref, t_h, all_h, t_d, all_d, t_b, all_b, dh, dd, n_imag,
              fc_h, fc_d, fc_b):
    r = lambda xs: ", ".join(f"{x:.1f}" for x in xs) or "not run"  # noqa: E731
    return f"""## Phonons + harmonic thermal properties, {n} structures

Command: `{command}`

Machine: {machine}. The three methods ran back to back in one process; ratios are from that run.

Work: {n} structures (fcc, bcc, hcp, diamond, rocksalt, L1_2 and an 8-atom substituted rocksalt;
{min(n_prim)}-{max(n_prim)} atoms per input cell), torch Morse pair potential `{POTENTIAL}`,
supercells with all perpendicular widths >= {min(min(x.supercell_widths_A) for x in ref):.2f} A
({n_sc} supercell atoms in total, {n_disp} symmetry-reduced displaced supercells). Every method
computes the same outputs per structure: band structure on phonopy's seekpath path (51 points per
segment), total DOS (tetrahedron method, {DOS_MESH:g} A mesh), mean group velocity per branch
({GV_MESH:g} A mesh), Cv/S/F on a {THERMAL_MESH:g} A mesh at {len(TEMPERATURES)} temperatures, after
phonopy's translational/permutation force-constant symmetrisation; mlip-props also computes the
sum-rule checks and the imaginary-mode scan. Structures relaxed once beforehand (untimed); torch
with {torch.get_num_threads()} thread(s).

| method | median wall time (s) | runs (s) | speed-up vs baseline | max freq. difference vs baseline (THz) |
|---|---|---|---|---|
| mlip-props batched, analytic Hessian (route b) | {t_h:.2f} | {r(all_h)} | {t_b / t_h:.1f}x | {dh:.4f} |
| mlip-props batched, finite displacements (route a) | {t_d:.2f} | {r(all_d)} | {t_b / t_d:.1f}x | {dd:.4f} |
| baseline: phonopy + ASE `MLIPCalculator`, one supercell at a time | {t_b:.2f} | {r(all_b)} | 1.0x | - |

Force-constant stage alone (supercells built, no post-processing; median): Hessian rows
{fc_h:.2f} s ({fc_b / fc_h:.1f}x), finite displacements in one `evaluate` call + phonopy's fit
{fc_d:.2f} s ({fc_b / fc_d:.1f}x), baseline {fc_b:.2f} s.

The frequency difference is the largest |f - f_baseline| over all band-path points and branches of
all structures (target: 0.05 THz). {n_imag} of the structures have imaginary modes (a pair potential
does not stabilise diamond and some other cells); they are compared like the others.
matcalc: run with `--matcalc-path DIR` (timing printed, not written here).
"""


if __name__ == "__main__":
    main()
