"""ASR-penalty ablation of the direct-force head: does the sum-rule penalty lower the raw
sum-rule violation by at least 10x?

For each run (``--runs``) a committee-1 model with a direct-force head is fitted to EMT-Cu data
(the 300-structure set of ``benchmarks/fitting_cu_emt.py``, sampled if missing), then, for the
direct head alone (no ZBL difference: both heads share the conservative core):

* test-set force RMSE of the direct head (meV/A) and of the unpenalised run of the same head;
* net force RMS |sum_i F_i| / n (eV/A) and column sums sum_i Phi_ij t (eV/A^2, autograd) on 6
  held-out rattled (0.1 A) 8-atom cells (:func:`mlip_props.fitting.translation_sum_rule`);
* Gamma acoustic frequencies: phonopy force constants from finite displacements (phonopy's
  displacement set, 1e-4 A, plus and minus) of a rattled (0.05 A) 32-atom fcc cell, forces of all
  displaced cells from the direct head in one batch, no sum rule imposed, frequencies at Gamma of
  that cell; the three lowest |omega| (THz). They vanish for a momentum-conserving head (a
  conservative one gives ~1e-6 THz, the finite-difference noise); on the perfect lattice they
  vanish by symmetry for any head, hence the rattle. The displacement matters: at 0.01 A the
  O(delta^2) error of central differences (which breaks the row sums of Phi, i.e. the translation
  invariance, even for an exact head) puts a floor of ~0.005 THz under these frequencies, at
  0.001 A one of ~5e-5 THz (it scales as delta^2); at 1e-4 A (float64 round-off is still
  negligible) they agree with the autograd force constants (``gamma_autograd_THz``, from
  ``benchmarks/fitting_cu_emt.py``), printed as a cross-check.

Run spec: ``HEAD:off`` | ``HEAD:const:W`` | ``HEAD:ramp:W:START:LEN`` with HEAD ``pair`` (the
default head) or ``atom`` (the original head). Ratios are printed against ``HEAD:off`` of the same
head and length. Prints machine, command, per-run time and a JSON summary; one torch thread.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

torch.set_num_threads(int(os.environ.get("MLIP_PROPS_THREADS", "1")))

from ase.build import bulk  # noqa: E402

from mlip_props.backend import emt_oracle  # noqa: E402
from mlip_props.fitting import fit, predict_direct_forces, sample, translation_sum_rule  # noqa: E402


def held_out_cells() -> list:
    out = []
    for k in range(6):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
        a.rattle(0.1, seed=100 + k)
        out.append(a)
    return out


def gamma_acoustic_fd(model, delta: float = 1e-4) -> list[float]:
    """Three lowest |omega| (THz) at Gamma of a rattled 32-atom Cu cell, phonopy force constants
    from finite displacements of the direct head (all displaced cells in one batch)."""
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    a.rattle(0.05, seed=11)
    unit = PhonopyAtoms(symbols=a.get_chemical_symbols(), cell=a.get_cell()[:], scaled_positions=a.get_scaled_positions())
    ph = Phonopy(unit, supercell_matrix=np.eye(3, dtype=int), primitive_matrix=np.eye(3))
    ph.generate_displacements(distance=delta, is_plusminus=True)
    cells = []
    for sc in ph.supercells_with_displacements:
        b = a.copy()
        b.set_positions(sc.positions)
        cells.append(b)
    f = predict_direct_forces(model, cells)
    ph.forces = np.stack([x[0].numpy() for x in f])
    ph.produce_force_constants()
    freqs = ph.run_qpoints([[0.0, 0.0, 0.0]]).frequencies[0]  # THz; imaginary as negative
    return sorted(np.abs(freqs).tolist())[:3]


def run_one(spec: str, data: str, args) -> dict:
    parts = spec.split(":")
    head, mode = parts[0], parts[1]
    kw: dict = {"weights": {"asr": 0.0 if mode == "off" else float(parts[2])}}
    if mode == "ramp":
        kw["asr_schedule"] = "ramp"
        if len(parts) > 3:
            kw["asr_ramp_start"], kw["asr_ramp_epochs"] = int(parts[3]), int(parts[4])
    hidden = tuple(int(h) for h in args.hidden.split(","))
    t0 = time.perf_counter()
    m, rep = fit(data, None, committee=1, hidden=hidden, epochs=args.epochs, seed=args.seed, progress=False,
                 direct_forces=True, direct_head=head, asr_length=args.asr_length, asr_batch=args.asr_batch,
                 max_time_s=args.max_time, **kw)
    fit_s = time.perf_counter() - t0
    sr = translation_sum_rule(m, held_out_cells(), head="direct")
    return {"run": spec, "epochs_run": rep.epochs_run, "best_epoch": rep.best_epoch, "fit_s": fit_s,
            "direct_rmse_test_meV_A": rep.metrics["test"]["direct_forces_rmse_meV_A"],
            "net_force_rms_eV_A": float(sr["net_force"][0]), "phi_column_sum_rms_eV_A2": float(sr["phi_column_sum"][0]),
            "gamma_acoustic_THz": gamma_acoustic_fd(m), "gamma_autograd_THz": gamma_autograd(m)}


def gamma_autograd(model) -> list[float]:
    """The same three frequencies from autograd force constants (cross-check)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fitting_cu_emt", os.path.join(os.path.dirname(__file__),
                                                                                 "fitting_cu_emt.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [float(x) for x in mod.direct_head_gamma(model)]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="/tmp/mlip_cu_emt.extxyz")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--hidden", default="32,32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--asr-length", type=float, default=0.1)
    p.add_argument("--asr-batch", type=int, default=0, help="structures per step for the HVP column-sum term")
    p.add_argument("--max-time", type=float, default=None)
    p.add_argument("--runs", default="pair:off,pair:const:100,atom:off,atom:const:100")
    args = p.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print("command:", " ".join([sys.executable] + sys.argv))
    if not os.path.isfile(args.data):
        sample(bulk("Cu", "fcc", a=3.61, cubic=True), emt_oracle(), n=args.n,
               strategies={"rattle": 0.3, "strain": 0.25, "md": 0.4, "normal_modes": 0.05}, out_path=args.data,
               seed=args.seed + 7, n_hessians=8)
    res = []
    for spec in filter(None, args.runs.split(",")):
        r = run_one(spec, args.data, args)
        res.append(r)
        print(json.dumps(r), flush=True)
    base = {r["run"].split(":")[0]: r for r in res if r["run"].split(":")[1] == "off"}
    print(f"\n{'run':24s} {'RMSE':>7s} {'xRMSE':>6s} {'netF':>9s} {'ratio':>6s} {'sumPhi':>9s} {'ratio':>6s} "
          f"{'Gamma |w| (THz)':>28s} {'ratios':>16s}")
    for r in res:
        b = base.get(r["run"].split(":")[0])
        g = r["gamma_acoustic_THz"]
        if b is not None:
            rr = b["direct_rmse_test_meV_A"]
            rx = r["direct_rmse_test_meV_A"] / rr
            rn = b["net_force_rms_eV_A"] / r["net_force_rms_eV_A"]
            rp = b["phi_column_sum_rms_eV_A2"] / r["phi_column_sum_rms_eV_A2"]
            rg = [x / y for x, y in zip(b["gamma_acoustic_THz"], g)]
            r.update(rmse_ratio=rx, net_force_ratio=rn, phi_ratio=rp, gamma_ratios=rg)
        print(f"{r['run']:24s} {r['direct_rmse_test_meV_A']:7.1f} {r.get('rmse_ratio', float('nan')):6.2f} "
              f"{r['net_force_rms_eV_A']:9.2e} {r.get('net_force_ratio', float('nan')):6.1f} "
              f"{r['phi_column_sum_rms_eV_A2']:9.2e} {r.get('phi_ratio', float('nan')):6.1f} "
              f"{', '.join(f'{x:.2e}' for x in g):>28s} "
              f"{', '.join(f'{x:.1f}' for x in r.get('gamma_ratios', [])):>16s}")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
