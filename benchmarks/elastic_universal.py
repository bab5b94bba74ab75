"""Relax + EOS + relaxed-ion elastic tensor with a float32 universal model (SevenNet-0): mlip-props
against matcalc 0.7 on the same model (issues 19 and 20).

Two engines, one structure at a time, alternating (a loaded machine changes speed over minutes,
so the two sides of a ratio are measured back to back):

* ``mlip-props`` (this checkout's ``.venv``): ``relax``, ``equation_of_state`` and
  ``elastic_tensor`` of ``load_potential("sevenn")`` with ``dtype=torch.float32`` inside one
  ``shared_relaxations()`` block (the starting relaxation runs once). Variants: ``default`` (the
  float32 defaults: thresholds 1e-3 eV/A and 1e-2 GPa, symmetry-reduced strain patterns,
  chord-Newton ion relaxation with the reference Hessian); ``--levers`` adds the same settings with
  all six strain patterns and/or FIRE, to measure each lever; ``--old`` the pre-change path
  (1e-4 eV/A, 1e-3 GPa, six patterns, FIRE).
* ``matcalc`` (a separate venv holding matcalc 0.7 and the same sevenn; run through
  ``--engine matcalc`` as a subprocess): ``EOSCalc`` and ``ElasticityCalc`` with
  ``sevenn.calculator.SevenNetCalculator("7net-0")``, (a) at the same settings: fmax 1e-3 eV/A,
  relaxed ions in every strained cell (``relax_deformed_structures=True``), normal and shear
  strains +-0.5 %, +-1 %, EOS ions relaxed at fixed shape over +-6 % in volume
  (``max_abs_strain=0.02``, ``allow_shape_change=False``), and (b) at matcalc's defaults.

Times exclude model loading and a warm-up evaluation. Model calls of mlip-props are counted (batched
calls and structures evaluated). Output: one JSON line per (structure, engine, variant).

    .venv/bin/python benchmarks/elastic_universal.py --matcalc-python /tmp/venv-matcalc/bin/python \\
        --out /tmp/elastic_universal.jsonl Mg-hcp Si-diamond GaN-wurtzite
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time

import numpy as np

DEFAULT_STRUCTURES = ["Mg-hcp", "Si-diamond", "MgO-rocksalt", "GaN-wurtzite", "TiO2-rutile", "Al2O3-corundum",
                      "Al-fcc", "Cu-fcc", "Fe-bcc", "Ti-hcp", "Zn-hcp", "C-diamond", "GaAs-zincblende",
                      "AlN-wurtzite", "ZnO-wurtzite", "NaCl-rocksalt", "LiF-rocksalt", "CaF2-fluorite",
                      "SrTiO3-perovskite", "Be-hcp"]
STRAINS = (-0.01, -0.005, 0.005, 0.01)
FMAX = 1e-3


def _summary(c: np.ndarray) -> dict:
    c = np.asarray(c, dtype=float)
    return {k: float(c[i, j]) for k, (i, j) in
            {"C11": (0, 0), "C12": (0, 1), "C13": (0, 2), "C33": (2, 2), "C44": (3, 3), "C66": (5, 5)}.items()}


def _build(name: str):
    from mlip_props import structures

    return structures.get(name)


# --------------------------------------------------------------------------------------------- mlip-props
def run_mlip_props(name: str, variants: list[str]) -> list[dict]:
    import torch

    import importlib

    import mlip_props.properties.relax as rx
    from mlip_props import evaluate, load_potential
    from mlip_props.properties.elastic import elastic_tensor
    from mlip_props.properties.eos import equation_of_state
    from mlip_props.properties.relax import RelaxSettings, relax

    torch.set_num_threads(1)
    be = importlib.import_module("mlip_props.backend.evaluate")
    counts = {"calls": 0, "structures": 0, "atoms": 0, "hessian_calls": 0}
    inner = be.evaluate_batch

    def counting(potential, batch, props, *a, **k):
        counts["calls"] += 1
        counts["structures"] += batch.n_structures
        counts["atoms"] += int(batch.n_atoms.sum())
        counts["hessian_calls"] += int("hessian" in props)
        return inner(potential, batch, props, *a, **k)

    be.evaluate_batch = counting
    rx.evaluate_batch = counting
    pot = load_potential("sevenn")
    atoms = _build(name)
    evaluate(pot, [atoms], ("energy", "forces", "stress"), dtype=torch.float32)  # warm-up
    old = RelaxSettings(fmax_float32_eV_A=1e-4, smax_float32_GPa=1e-3)
    settings = {  # variant -> (relaxation, strain_patterns, ion_optimizer)
        "default": (None, "auto", "auto"),
        "all+newton": (None, "all", "newton"),
        "symmetry+fire": (None, "symmetry", "fire"),
        "all+fire": (None, "all", "fire"),
        "old": (old, "all", "fire"),
    }
    rows = []
    for variant in variants:
        relaxation, patterns, optimizer = settings[variant]
        rs = relaxation or RelaxSettings()
        for k in counts:
            counts[k] = 0
        t0 = time.perf_counter()
        r = relax(pot, atoms, settings=rs, dtype=torch.float32)
        t1 = time.perf_counter()
        c_relax = dict(counts)
        after = dataclasses.replace(rs, enabled=False)  # the relaxed cell is the reference of both
        e = equation_of_state(pot, r.atoms, relaxation=after, ion_optimizer=optimizer, dtype=torch.float32)
        t2 = time.perf_counter()
        c_eos = {k: counts[k] - c_relax[k] for k in counts}
        el = elastic_tensor(pot, r.atoms, strains=STRAINS, relaxation=after, strain_patterns=patterns,
                            ion_optimizer=optimizer, dtype=torch.float32)
        t3 = time.perf_counter()
        c_el = {k: counts[k] - c_relax[k] - c_eos[k] for k in counts}
        rows.append(dict(
            structure=name, engine="mlip-props", variant=variant, n_atoms=len(atoms),
            t_relax_s=t1 - t0, t_eos_s=t2 - t1, t_elastic_s=t3 - t2, t_total_s=t3 - t0,
            calls_relax=c_relax, calls_eos=c_eos, calls_elastic=c_el,
            relax=dict(steps=r.n_steps, converged=r.converged, stalled=r.stalled, fmax_eV_A=r.max_force_eV_A,
                       smax_GPa=r.max_stress_GPa, fmax_target=r.fmax_target_eV_A, smax_target=r.smax_target_GPa,
                       volume_A3_per_atom=r.volume_A3_per_atom),
            eos=dict(B_GPa=e.bulk_modulus_GPa, Bp=e.bulk_modulus_derivative, v0_A3_per_atom=e.v0_A3_per_atom,
                     converged=e.converged, ion_residual_eV_A=e.ion_residual_force_eV_A, optimizer=e.ion_optimizer),
            elastic=dict(**_summary(el.C_GPa), clamped=_summary(el.C_clamped_ion_GPa),
                         B_hill_GPa=el.bulk_modulus_hill_GPa, G_hill_GPa=el.shear_modulus_hill_GPa,
                         asymmetry_GPa=el.asymmetry_GPa, patterns=list(el.strain_patterns),
                         n_cells=el.n_strained_cells, ion_steps=el.ion_relax_steps,
                         ion_residual_eV_A=el.ion_residual_force_eV_A, optimizer=el.ion_optimizer,
                         converged=el.converged, residual_stress_GPa=el.residual_stress_GPa,
                         C_GPa=np.asarray(el.C_GPa).round(2).tolist())))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


# --------------------------------------------------------------------------------------------- matcalc
def run_matcalc(name: str, variants: list[str]) -> list[dict]:
    import torch
    from matcalc import ElasticityCalc, EOSCalc, RelaxCalc
    from pymatgen.io.ase import AseAtomsAdaptor
    from sevenn.calculator import SevenNetCalculator

    torch.set_num_threads(1)
    calc = SevenNetCalculator("7net-0", device="cpu")
    atoms = _build(name)
    a = atoms.copy()
    a.calc = calc
    a.get_potential_energy()  # warm-up
    structure = AseAtomsAdaptor.get_structure(atoms)
    n_calls = [0]
    inner = calc.calculate

    def counting(*args, **kw):
        n_calls[0] += 1
        return inner(*args, **kw)

    calc.calculate = counting
    rows = []
    for variant in variants:
        if variant == "same":
            relax_kw = dict(fmax=FMAX, max_steps=3000)
            eos_kw = dict(fmax=FMAX, max_abs_strain=0.02, n_points=11, allow_shape_change=False, max_steps=3000)
            el_kw = dict(fmax=FMAX, norm_strains=STRAINS, shear_strains=STRAINS, relax_deformed_structures=True,
                         relax_calc_kwargs={"max_steps": 3000})
        else:  # matcalc's defaults
            relax_kw, eos_kw, el_kw = {}, {}, {}
        n_calls[0] = 0
        t0 = time.perf_counter()
        r = RelaxCalc(calc, **relax_kw).calc(structure)
        t1 = time.perf_counter()
        c_relax = n_calls[0]
        start = structure
        if variant == "same":  # the relaxed cell is the reference of both, as on the mlip-props side
            start = r["final_structure"]
            eos_kw["relax_structure"] = el_kw["relax_structure"] = False
        e = EOSCalc(calc, **eos_kw).calc(start)
        t2 = time.perf_counter()
        c_eos = n_calls[0] - c_relax
        el = ElasticityCalc(calc, **el_kw).calc(start)
        t3 = time.perf_counter()
        c_el = n_calls[0] - c_relax - c_eos
        c = np.asarray(el["elastic_tensor"].voigt)
        rows.append(dict(
            structure=name, engine="matcalc", variant=variant, n_atoms=len(atoms),
            t_relax_s=t1 - t0, t_eos_s=t2 - t1, t_elastic_s=t3 - t2, t_total_s=t3 - t0,
            calls_relax={"calls": c_relax}, calls_eos={"calls": c_eos}, calls_elastic={"calls": c_el},
            relax=dict(volume_A3_per_atom=float(r["final_structure"].volume / len(atoms))),
            eos=dict(B_GPa=float(e["bulk_modulus_bm"])),
            elastic=dict(**_summary(c), B_hill_GPa=float(el["bulk_modulus_vrh"]),
                         G_hill_GPa=float(el["shear_modulus_vrh"]), C_GPa=c.round(2).tolist())))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


EV_A3_TO_GPA = 160.21766208


def _gpa(row: dict, key: str) -> float:
    """A matcalc elastic value in GPa (ElasticityCalc returns eV/A^3 unless units_GPa=True)."""
    v = row["elastic"][key]
    return v * EV_A3_TO_GPA if row["engine"] == "matcalc" else v


def report(paths: list[str]) -> str:
    """Markdown tables from JSON lines: times and model calls, then the results side by side."""
    rows = [json.loads(line) for p in paths for line in open(p) if line.startswith("{")]
    by = {(r["structure"], r["engine"], r["variant"]): r for r in rows}
    names = list(dict.fromkeys(r["structure"] for r in rows))
    out = ["| structure | atoms | mlip-props default (s) | calls / structures evaluated (Hessians) | matcalc same (s) | "
           "calls | ratio (time) | ratio (structures evaluated) | matcalc defaults (s) |", "|---" * 9 + "|"]
    for n in names:
        mp, mc, md = by.get((n, "mlip-props", "default")), by.get((n, "matcalc", "same")), \
            by.get((n, "matcalc", "defaults"))
        if mp is None:
            continue
        calls = sum(mp[k]["calls"] for k in ("calls_relax", "calls_eos", "calls_elastic"))
        structs = sum(mp[k]["structures"] for k in ("calls_relax", "calls_eos", "calls_elastic"))
        hess = sum(mp[k]["hessian_calls"] for k in ("calls_relax", "calls_eos", "calls_elastic"))
        mcc = sum(mc[k]["calls"] for k in ("calls_relax", "calls_eos", "calls_elastic")) if mc else None
        out.append(f"| {n} | {mp['n_atoms']} | {mp['t_total_s']:.0f} (relax {mp['t_relax_s']:.0f}, EOS "
                   f"{mp['t_eos_s']:.0f}, elastic {mp['t_elastic_s']:.0f}) | {calls} / {structs} ({hess}) | "
                   + (f"{mc['t_total_s']:.0f} (relax {mc['t_relax_s']:.0f}, EOS {mc['t_eos_s']:.0f}, elastic "
                      f"{mc['t_elastic_s']:.0f}) | {mcc} | {mc['t_total_s'] / mp['t_total_s']:.1f} | "
                      f"{mcc / structs:.1f} |" if mc else "not run | | | |")
                   + (f" {md['t_total_s']:.0f} |" if md else " not run |"))
    out += ["", "| structure | engine, variant | C11 | C12 | C13 | C33 | C44 | C66 | (C11-C12)/2 | B Hill | B EOS |"
            " relax/ion residual (eV/A) |", "|---" * 12 + "|"]
    for n in names:
        for key in (("mlip-props", "default"), ("matcalc", "same"), ("matcalc", "defaults")):
            r = by.get((n, *key))
            if r is None:
                continue
            c = {k: _gpa(r, k) for k in ("C11", "C12", "C13", "C33", "C44", "C66")}
            resid = ""
            if r["engine"] == "mlip-props":
                resid = f"{r['relax']['fmax_eV_A']:.1e} / {r['elastic']['ion_residual_eV_A']:.1e}"
            out.append(f"| {n} | {', '.join(key)} | " + " | ".join(f"{c[k]:.1f}" for k in c)
                       + f" | {(c['C11'] - c['C12']) / 2:.1f} | {_gpa(r, 'B_hill_GPa'):.1f} | {r['eos']['B_GPa']:.1f} | "
                       f"{resid} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("structures", nargs="*", default=DEFAULT_STRUCTURES[:6])
    ap.add_argument("--engine", choices=("both", "mlip-props", "matcalc"), default="both")
    ap.add_argument("--matcalc-python", default="/tmp/venv-matcalc/bin/python")
    ap.add_argument("--variants", default=None, help="comma-separated variants of the chosen engine")
    ap.add_argument("--levers", action="store_true", help="also all+newton, symmetry+fire, all+fire")
    ap.add_argument("--old", action="store_true", help="also the pre-change path (1e-4 eV/A, 6 patterns, FIRE)")
    ap.add_argument("--matcalc-defaults", action="store_true", help="also matcalc at its own defaults")
    ap.add_argument("--out", default=None, help="append JSON lines here")
    ap.add_argument("--report", nargs="+", default=None, help="print markdown tables from these JSON-lines files")
    args = ap.parse_args()
    if args.report:
        print(report(args.report))
        return
    def emit(rows: list[dict]) -> None:
        for row in rows:
            line = json.dumps(row)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(line + "\n")

    for name in args.structures:
        rows: list[dict] = []
        if args.engine in ("both", "matcalc"):
            mv = args.variants.split(",") if args.variants and args.engine == "matcalc" else \
                ["same"] + (["defaults"] if args.matcalc_defaults else [])
            if args.engine == "matcalc":
                rows += run_matcalc(name, mv)
            else:
                cmd = [args.matcalc_python, __file__, "--engine", "matcalc", "--variants", ",".join(mv), name]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode:
                    print(out.stderr[-3000:], file=sys.stderr)
                emit([json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")])
        if args.engine in ("both", "mlip-props"):
            pv = args.variants.split(",") if args.variants and args.engine == "mlip-props" else \
                ["default"] + (["all+newton", "symmetry+fire", "all+fire"] if args.levers else []) + \
                (["old"] if args.old else [])
            rows += run_mlip_props(name, pv)
        emit(rows)


if __name__ == "__main__":
    main()
