"""Fitting benchmark: fit a Cu committee to EMT and compare its properties with EMT's.

Steps: sample <= 300 EMT-labelled structures (rattles, strains, MD at 300/800/1500 K, a few
normal-mode frames; supercells <= 32 atoms), fit a Behler-Parrinello committee, then compute with
the SAME property modules for EMT (the oracle) and for the committee mean: lattice constant and
bulk modulus (EOS), C11/C12/C44 (elastic), phonon frequencies at X and L, Cv(300 K); the hard core
(dimer energies, NVT MD at 3000 K); the committee's force disagreement vs the true force error on
the held-out test set (Spearman rank correlation). Optional ablations (``--ablations``): stress
and Hessian training on/off, and the ASR penalty on/off for the direct-force head.

Run: ``python benchmarks/fitting_cu_emt.py [--epochs 600] [--committee 4] [--md-ps 10]
[--ablations] [--out model.pt] [--ship]``; only the ASR ablation of the direct head:
``--asr-only --ablation-epochs 80 --asr-length 0.1 [--asr-relative] --asr-runs off,ramp:100:30:20``. Prints machine, command, timings and a JSON summary.
Torch is set to one thread (measured much faster than two on a loaded 2-core machine).
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

from ase import Atoms  # noqa: E402
from ase.build import bulk  # noqa: E402

from mlip_props import evaluate  # noqa: E402
from mlip_props.backend import emt_oracle  # noqa: E402
from mlip_props.fitting import CommitteeMean, fit, read_dataset, sample, split_indices  # noqa: E402

X_Q, L_Q = (0.5, 0.0, 0.5), (0.5, 0.5, 0.5)  # reduced coordinates, phonopy fcc primitive cell


def properties(pot, label: str) -> dict:
    """Lattice constant, B, C11/C12/C44, X/L phonons, Cv(300 K) from the property modules."""
    from mlip_props.properties.elastic import elastic_tensor
    from mlip_props.properties.eos import equation_of_state
    from mlip_props.properties.phonons import phonons
    from mlip_props.properties.thermal import thermal_from_phonons

    t0 = time.perf_counter()
    cu = bulk("Cu", "fcc", a=3.61)
    eos = equation_of_state(pot, cu)
    a0 = (4.0 * eos.v0_A3_per_atom) ** (1.0 / 3.0)
    el = elastic_tensor(pot, cu)
    ph = phonons(pot, cu, supercell=3, band_structure=False)
    th = thermal_from_phonons(ph, temperatures_K=[300.0], check_mesh=False)
    fx, fl = ph.frequencies_at([X_Q, L_Q])
    out = {
        "lattice_constant_A": a0, "bulk_modulus_GPa": eos.bulk_modulus_GPa,
        "C11_GPa": float(el.C_GPa[0, 0]), "C12_GPa": float(el.C_GPa[0, 1]), "C44_GPa": float(el.C_GPa[3, 3]),
        "freq_X_THz": sorted(map(float, fx)), "freq_L_THz": sorted(map(float, fl)),
        "cv_300K_J_molK": float(th.cv_J_molK[0]), "time_s": time.perf_counter() - t0,
    }
    print(f"[{label}] properties in {out['time_s']:.1f} s: " + json.dumps(out))
    return out


def compare(fitp: dict, ref: dict) -> dict:
    rel = lambda a, b: abs(a - b) / abs(b)  # noqa: E731
    c = {k: rel(fitp[k], ref[k]) for k in ("lattice_constant_A", "bulk_modulus_GPa", "C11_GPa", "C12_GPa", "C44_GPa",
                                           "cv_300K_J_molK")}
    c["freq_X_max_rel"] = max(rel(a, b) for a, b in zip(fitp["freq_X_THz"], ref["freq_X_THz"]))
    c["freq_L_max_rel"] = max(rel(a, b) for a, b in zip(fitp["freq_L_THz"], ref["freq_L_THz"]))
    targets = {"lattice_constant_A": 0.005, "bulk_modulus_GPa": 0.05, "C11_GPa": 0.10, "C12_GPa": 0.10,
               "C44_GPa": 0.10, "freq_X_max_rel": 0.05, "freq_L_max_rel": 0.05, "cv_300K_J_molK": 0.01}
    return {k: {"rel_error": v, "target": targets[k], "pass": bool(v <= targets[k])} for k, v in c.items()}


def hard_core(pot, md_ps: float, seed: int = 0) -> dict:
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase import units

    from mlip_props.backend import MLIPCalculator

    r = np.linspace(0.4, 1.5, 56)
    e = evaluate(pot, [Atoms("Cu2", positions=[[0, 0, 0], [x, 0, 0]]) for x in list(r) + [8.0]], ("energy",)).energies_eV
    e = e - e[-1]
    out = {"dimer_E_0.5A_eV": float(np.interp(0.5, r, e[:-1])),
           "dimer_monotone_below_1.5A": bool(np.all(np.diff(e[:-1]) < 0))}
    if md_ps > 0:
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
        a.calc = MLIPCalculator(pot)
        rng = np.random.default_rng(seed)
        MaxwellBoltzmannDistribution(a, temperature_K=3000, rng=rng)
        dyn = Langevin(a, 1.0 * units.fs, temperature_K=3000, friction=0.02, fixcm=False, rng=rng)
        dmin = [np.inf]

        def track():
            d = a.get_all_distances(mic=True)
            d[np.diag_indices_from(d)] = np.inf
            dmin[0] = min(dmin[0], float(d.min()))

        dyn.attach(track, interval=10)
        t0 = time.perf_counter()
        dyn.run(int(md_ps * 1000))
        out.update({"md_3000K_ps": md_ps, "md_min_distance_A": dmin[0], "md_time_s": time.perf_counter() - t0,
                    "md_min_distance_ok": bool(dmin[0] > 1.2)})
    return out


def committee_spearman(model, data_path: str, seed: int) -> dict:
    """Spearman rank correlation of per-atom force disagreement vs |F_mean - F_ref| on the test split."""
    from scipy.stats import spearmanr

    from mlip_props.fitting import committee_predict
    from mlip_props.fitting.training import _reference_energies

    ds = read_dataset(data_path)
    _, _, rest = _reference_energies(ds, ds.elements)
    ds = ds.subset(rest)
    _, _, te = split_indices(len(ds), (0.8, 0.1, 0.1), seed)
    frames = [ds.frames[k] for k in te]
    cp = committee_predict(model, frames, stress=False)
    dis = np.concatenate(cp.force_disagreement_eV_A)
    err = np.concatenate([np.linalg.norm(cp.forces_mean_eV_A[i] - ds.forces[k], axis=1) for i, k in enumerate(te)])
    rho = spearmanr(dis, err).statistic
    return {"spearman_disagreement_vs_error": float(rho), "n_atoms": int(len(dis))}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--epochs", type=int, default=600)
    p.add_argument("--committee", type=int, default=4)
    p.add_argument("--hidden", type=str, default="32,32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--md-ps", type=float, default=10.0)
    p.add_argument("--data", type=str, default="/tmp/mlip_cu_emt.extxyz")
    p.add_argument("--out", type=str, default="/tmp/mlip_cu_committee.pt")
    p.add_argument("--max-time", type=float, default=None)
    p.add_argument("--ablations", action="store_true")
    p.add_argument("--skip-properties", action="store_true")
    p.add_argument("--reuse", action="store_true", help="evaluate an existing --out model instead of fitting")
    p.add_argument("--only-ablations", action="store_true", help="skip the main fit; EMT reference + ablations")
    p.add_argument("--ablation-epochs", type=int, default=None)
    p.add_argument("--asr-only", action="store_true", help="only the ASR on/off ablation of the direct head")
    p.add_argument("--asr-length", type=float, default=1.0, help="fit(asr_length=...) in A")
    p.add_argument("--asr-relative", action="store_true", help="fit(asr_relative=True)")
    p.add_argument("--asr-runs", type=str, default="off,const:3,const:100",
                   help="ASR runs: off | const:W | ramp:W[:start:length] (epochs), comma-separated")
    args = p.parse_args()
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("command:", " ".join([sys.executable] + sys.argv))
    summary: dict = {"args": vars(args)}
    t0 = time.perf_counter()
    if not os.path.isfile(args.data):
        sample(bulk("Cu", "fcc", a=3.61, cubic=True), emt_oracle(), n=args.n,
               strategies={"rattle": 0.3, "strain": 0.25, "md": 0.4, "normal_modes": 0.05}, out_path=args.data,
               seed=args.seed + 7, n_hessians=8)
    summary["sampling_s"] = time.perf_counter() - t0
    hidden = tuple(int(h) for h in args.hidden.split(","))
    if args.asr_only:
        summary["asr_ablation"] = asr_ablation(args, hidden)
        print(json.dumps(summary, indent=1, default=str))
        return
    if args.only_ablations:
        ref = properties(emt_oracle(), "EMT")
        summary["ablations"] = ablations(args, hidden, ref)
        print(json.dumps(summary, indent=1, default=str))
        return
    meta = {"training_recipe": "benchmarks/fitting_cu_emt.py", "oracle": "ASE EMT (Cu)",
            "data": f"{args.n} structures sampled by mlip_props.fitting.sample(seed={args.seed + 7})"}
    if args.reuse and os.path.isfile(args.out):
        from mlip_props import load_potential

        model = load_potential(args.out)
        summary["fit"] = {"metrics": model.metadata.get("metrics"), "reused": args.out}
    else:
        model, rep = fit(args.data, args.out, committee=args.committee, hidden=hidden, epochs=args.epochs,
                         seed=args.seed, progress=True, max_time_s=args.max_time, metadata=meta)
        print(rep.summary())
        summary["fit"] = {"metrics": rep.metrics, "best_epoch": rep.best_epoch, "epochs_run": rep.epochs_run,
                          "train_time_s": rep.train_time_s, "structures_per_s": rep.structures_per_s,
                          "n_structures": rep.n_structures, "pruned": [d["name"] for d in rep.pruning],
                          "condition_number_after": rep.condition_number_after}
    print("fit:", json.dumps(summary["fit"], default=str))
    mean = CommitteeMean(model)
    summary["committee"] = committee_spearman(model, args.data, args.seed)
    print("committee:", summary["committee"])
    summary["hard_core"] = hard_core(mean, args.md_ps)
    print("hard core:", summary["hard_core"])
    if not args.skip_properties:
        ref = properties(emt_oracle(), "EMT")
        fitp = properties(mean, "fit")
        summary["properties"] = {"emt": ref, "fit": fitp, "comparison": compare(fitp, ref)}
        for k, v in summary["properties"]["comparison"].items():
            print(f"  {k:22s} rel.err {v['rel_error']:.4f}  target {v['target']}  {'PASS' if v['pass'] else 'FAIL'}")
    if args.ablations:
        summary["ablations"] = ablations(args, hidden, ref if not args.skip_properties else None)
    print(json.dumps(summary, indent=1, default=str))


def ablations(args, hidden, ref) -> dict:
    """Stress on/off and Hessian on/off (bulk modulus and phonon errors); ASR on/off (direct head)."""
    from mlip_props.fitting import translation_sum_rule

    out = {}
    common = dict(committee=1, hidden=hidden, epochs=args.ablation_epochs or args.epochs, seed=args.seed, progress=False,
                  max_time_s=args.max_time)
    for name, w in {"no_stress": {"stress": 0.0}, "with_hessian": {"hessian": 0.05}}.items():
        m, rep = fit(args.data, None, weights=w, **common)
        entry = {"metrics": rep.metrics["test"]}
        if ref is not None:
            fitp = properties(m, name)
            entry["comparison"] = {k: v["rel_error"] for k, v in compare(fitp, ref).items()}
        out[name] = entry
        print(name, json.dumps(entry))
    out.update(asr_ablation(args, hidden))
    return out


def asr_ablation(args, hidden) -> dict:
    """Direct-force head with the ASR penalty off / constant / ramped (``--asr-runs``): test RMSE of
    the direct head, sum-rule violations on 6 held-out rattled 8-atom cells, Gamma acoustic
    frequencies of a rattled 32-atom cell from the head's force constants."""
    from mlip_props.fitting import translation_sum_rule

    common = dict(committee=1, hidden=hidden, epochs=args.ablation_epochs or args.epochs, seed=args.seed,
                  progress=False, max_time_s=args.max_time)
    held = []
    for k in range(6):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
        a.rattle(0.1, seed=100 + k)
        held.append(a)
    out = {}
    for spec in filter(None, args.asr_runs.split(",")):
        parts = spec.split(":")
        kw: dict = {"weights": {"asr": 0.0 if parts[0] == "off" else float(parts[1])}}
        if parts[0] == "ramp":
            kw["asr_schedule"] = "ramp"
            if len(parts) > 2:
                kw["asr_ramp_start"], kw["asr_ramp_epochs"] = int(parts[2]), int(parts[3])
        t0 = time.perf_counter()
        m, rep = fit(args.data, None, direct_forces=True, asr_length=args.asr_length, asr_relative=args.asr_relative,
                     **kw, **common)
        sr = translation_sum_rule(m, held, head="direct")
        entry = {"run": spec, "asr_length_A": args.asr_length, "asr_relative": args.asr_relative,
                 "epochs_run": rep.epochs_run, "best_epoch": rep.best_epoch,
                 "fit_s": time.perf_counter() - t0, "metrics": rep.metrics["test"],
                 "net_force_rms_eV_A": float(sr["net_force"][0]),
                 "phi_column_sum_rms_eV_A2": float(sr["phi_column_sum"][0]),
                 "gamma_acoustic_THz": [float(x) for x in direct_head_gamma(m)]}
        out[f"direct_{spec}"] = entry
        print(spec, json.dumps(entry), flush=True)
    return out


def direct_head_gamma(model) -> list[float]:
    """Gamma-point frequencies (THz) of a rattled (0.05 A) 2x2x2 fcc supercell from force constants
    Phi = -dF/dx of the direct head (autograd Jacobian; dynamical matrix (Phi + Phi^T) / 2m, no sum
    rule enforced): the three lowest |omega|, which are exactly zero for a conservative head. (On
    the perfect lattice they vanish by symmetry for this head too, so a rattled cell is used.)"""
    from mlip_props.backend import Batch, build_neighbor_graph
    from mlip_props.backend.evaluate import atomic_graph

    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    a.rattle(0.05, seed=11)
    batch = Batch.from_structures([a], device="cpu")
    graph = build_neighbor_graph(batch, model.cutoff)
    pos = batch.positions.detach().requires_grad_(True)
    f = model.direct_forces(atomic_graph(batch.with_positions(pos), graph))[0].reshape(-1)
    n = f.numel()
    phi = torch.stack([-torch.autograd.grad(f[k], pos, retain_graph=True)[0].reshape(-1) for k in range(n)]).detach()
    mass = a.get_masses()[0]
    d = 0.5 * (phi + phi.T).numpy() / mass
    lam = np.linalg.eigvalsh(d)
    from ase import units as u

    omega = np.sign(lam) * np.sqrt(np.abs(lam)) * np.sqrt(u._e / u._amu) / 1e-10 / (2 * np.pi) / 1e12
    return sorted(np.abs(omega))[:3]


if __name__ == "__main__":
    main()
