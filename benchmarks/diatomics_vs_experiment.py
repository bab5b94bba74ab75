"""Diatomic spectroscopic constants from a potential (default: a pyscf oracle) vs experiment.

Runs :func:`mlip_props.properties.diatomic.diatomic` over the molecules of
the shipped reference table ``diatomics.csv`` and draws parity plots (r_e, omega_e, omega_e x_e, D_0) against
the experimental values (Huber & Herzberg 1979), with the mean absolute error in each panel.

    python benchmarks/diatomics_vs_experiment.py                     # B3LYP/def2-SVP (minutes)
    python benchmarks/diatomics_vs_experiment.py --ccsdt             # CCSD(T)/cc-pVTZ (slow: ~3 s a point for N2)
    python benchmarks/diatomics_vs_experiment.py --potential model.pt --pairs H2 N2 CO
    python benchmarks/diatomics_vs_experiment.py --method mp2/cc-pvtz --out results/diatomics

Outputs in ``--out``: ``diatomics.json`` (all results), ``diatomics_table.csv`` (computed vs
experiment), ``parity.png`` and ``curves.png``. Oracle results are cached on disk
(``--cache-dir``), so a rerun costs nothing. Caveats: experiment gives D_0 and anharmonic
constants of the real molecule; single-reference methods on stretched bonds (the long-range
part of the scan) may fail to converge -- those points are dropped and listed in each result.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

QUANTITIES = [("bond_length_A", "r_e_A", "r_e (A)"), ("omega_e_cm1", "omega_e_cm1", "omega_e (cm^-1)"),
              ("omega_e_x_e_cm1", "omega_e_x_e_cm1", "omega_e x_e (cm^-1)"), ("D0_eV", "D0_eV", "D_0 (eV)")]


def load_experiment() -> pd.DataFrame:
    from mlip_props.data import reference_file

    return pd.read_csv(reference_file("diatomics"), comment="#").set_index("molecule")


def parity_plot(table: pd.DataFrame, label: str, path: Path) -> dict[str, float]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    maes = {}
    for ax, (calc, exp, name) in zip(axes, QUANTITIES):
        x, y = table[f"{exp}_exp"].to_numpy(float), table[f"{calc}_calc"].to_numpy(float)
        ok = np.isfinite(x) & np.isfinite(y)
        mae = float(np.mean(np.abs(y[ok] - x[ok]))) if ok.any() else float("nan")
        maes[calc] = mae
        ax.plot(x[ok], y[ok], "o")
        for m, xi, yi in zip(table.index[ok], x[ok], y[ok]):
            ax.annotate(m, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
        lo, hi = (min(x[ok].min(), y[ok].min()), max(x[ok].max(), y[ok].max())) if ok.any() else (0, 1)
        pad = 0.05 * (hi - lo + 1e-9)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
        ax.set_xlabel(f"experiment {name}")
        ax.set_ylabel(f"{label} {name}")
        ax.set_title(f"MAE = {mae:.4g} {name[name.index('(') + 1:-1]}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return maes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="b3lyp/def2-svp", help="pyscf method/basis (default b3lyp/def2-svp)")
    ap.add_argument("--ccsdt", action="store_true", help="use CCSD(T)/cc-pVTZ (overrides --method)")
    ap.add_argument("--potential", default=None, help="any load_potential spec or model file instead of pyscf")
    ap.add_argument("--pairs", nargs="*", default=None, help="subset of the molecules in diatomics.csv")
    ap.add_argument("--n-points", type=int, default=None, help="coarse scan points per pair")
    ap.add_argument("--cache-dir", default=None, help="pyscf cache directory")
    ap.add_argument("--out", default="results/diatomics_vs_experiment")
    args = ap.parse_args(argv)

    from mlip_props import load_potential
    from mlip_props.properties.diatomic import diatomic, plot_diatomic_curves

    if args.potential:
        pot, label = load_potential(args.potential), args.potential
    else:
        from mlip_props.potentials.pyscf_oracle import pyscf_oracle

        method = "ccsd(t)/cc-pvtz" if args.ccsdt else args.method
        kw = {"cache_dir": args.cache_dir} if args.cache_dir else {}
        pot, label = pyscf_oracle(method, **kw), f"pyscf {method}"
    exp = load_experiment()
    pairs = args.pairs or list(exp.index)
    unknown = [p for p in pairs if p not in exp.index]
    if unknown:
        ap.error(f"no experimental data for {unknown}; known: {list(exp.index)}")
    results = diatomic(pot, pairs, n_points=args.n_points)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diatomics.json").write_text(json.dumps({"potential": label, "results": [r.to_dict() for r in results]},
                                                   indent=1))
    rows = []
    for r in results:
        row = {"molecule": r.name}
        for calc, e, _ in QUANTITIES:
            row[f"{calc}_calc"] = getattr(r, calc)
            row[f"{e}_exp"] = exp.loc[r.name, e]
        row.update(De_calc_eV=r.dissociation_energy_eV, De_derived_exp_eV=exp.loc[r.name, "De_derived_eV"],
                   converged=r.bond_length_converged, max_converged_distance_A=r.max_converged_distance_A,
                   n_failed_points=len(r.failed_distances_A), repulsive_wall_ok=r.repulsive_wall_ok,
                   n_spurious_minima=r.n_spurious_minima)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("molecule")
    table.to_csv(out / "diatomics_table.csv")
    maes = parity_plot(table, label, out / "parity.png")
    plot_diatomic_curves(results, path=str(out / "curves.png"))
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print("MAE vs experiment:", ", ".join(f"{k} {v:.4g}" for k, v in maes.items()))
    print(f"written: {out}/diatomics.json, diatomics_table.csv, parity.png, curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
