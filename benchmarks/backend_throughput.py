#!/usr/bin/env python
"""Backend throughput: energy + forces + stress of 1,024 rattled 32-atom fcc cells, Lennard-Jones.

Contenders (all float64, all the same Lennard-Jones parameters and cutoff rc):

(a) ``mlip_props.evaluate`` on the whole list at once (batched, autograd forces and stress);
(a2) the same with neighbour-list sharing turned off: the rattled copies of one cell share one
    vesin list in (a) (exact: built with a 0.5 A skin, see ``shared_neighbor_lists``); (a2) gives
    every structure its own list, as a batch of distinct cells gets;
(a3) (a) with every derivative by autograd: Lennard-Jones declares closed-form edge gradients
    (``closed_form_edge_gradients``), which (a) uses; (a3) turns them off
    (``USE_CLOSED_FORM_EDGE_GRADIENTS = False``), as a fitted potential is evaluated;
(b) the same potential through ``mlip_props.MLIPCalculator``, one structure at a time;
(c) ASE's own numpy ``LennardJones`` calculator, one structure at a time (``smooth=True`` with
    its switch starting where ours starts, ``ro = rc - switch_width``);
(d) TorchSim's ``LennardJonesModel`` on one ``SimState`` holding all structures, when
    ``torch_sim`` is importable; ``--torchsim-python PY`` re-runs the whole benchmark under the
    interpreter PY (a venv holding torch_sim and mlip-props) when it is not.

Before timing, the script checks that the contenders compute the same thing: with a hard
cutoff (``switch_width=0``) mlip-props and ASE (``smooth=False``) must give identical forces and
stress and energies that differ by exactly n_pairs * phi(rc) (ASE shifts each pair energy by
phi(rc)); TorchSim's energy must equal ours (both truncate without shift) and its forces are
compared with ours and with central finite differences of its own energy.

Contenders are timed round-robin (each round runs every contender once; round 0 is a warm-up).
Prints the machine, the command, the median of ``--repeats`` rounds (structures/s) and the
speed-ups of (a) over (b), (c), (d) from the medians measured in this run, then the time per atom of one
structure of 1,000 and of 100,000 atoms and the peak resident memory (VmHWM of a fresh
subprocess per measurement; tracemalloc does not see torch's allocations).

Usage::

    python benchmarks/backend_throughput.py                  # full run (a few minutes on 2 cores)
    python benchmarks/backend_throughput.py --quick          # 128 structures, 3 repeats
    python benchmarks/backend_throughput.py --torchsim-python /tmp/tsvenv/bin/python
    python benchmarks/backend_throughput.py --device cuda    # (a) and (b) on the GPU; (c) on the CPU
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np

# Argon (Rowley, Nicholson and Parsonage, J. Comput. Phys. 17, 401 (1975); the usual LJ Ar set).
EPSILON_EV = 0.0104
#: where (a) and (b) run and in which precision (set from --device / --dtype)
DEVICE = None
DTYPE_NAME = "float64"
SIGMA_A = 3.40
LATTICE_A = 5.26  # fcc Ar near 0 K (~5.26 Angstrom)


# --------------------------------------------------------------------------------------------
# structures and potentials
# --------------------------------------------------------------------------------------------
def rattled_cells(n: int, reps=(2, 2, 2), rattle: float = 0.05, seed: int = 0):
    """``n`` fcc Ar cells (4 * prod(reps) atoms each), Gaussian rattle ``rattle`` Angstrom."""
    from ase.build import bulk

    base = bulk("Ar", "fcc", a=LATTICE_A, cubic=True).repeat(reps)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = base.copy()
        a.positions += rng.normal(scale=rattle, size=a.positions.shape)
        out.append(a)
    return out


def mlip_lj(rc: float, width: float):
    from mlip_props.potentials import LennardJones

    return LennardJones(epsilon=EPSILON_EV, sigma=SIGMA_A, cutoff=rc, switch_width=width)


def ase_lj(rc: float, width: float):
    from ase.calculators.lj import LennardJones

    if width > 0:
        return LennardJones(sigma=SIGMA_A, epsilon=EPSILON_EV, rc=rc, ro=rc - width, smooth=True)
    return LennardJones(sigma=SIGMA_A, epsilon=EPSILON_EV, rc=rc, smooth=False)


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def have_torchsim() -> bool:
    try:
        import torch_sim  # noqa: F401
    except ImportError:
        return False
    return True


def torchsim_model(rc: float):
    import torch
    from torch_sim.models.lennard_jones import LennardJonesModel

    return LennardJonesModel(sigma=SIGMA_A, epsilon=EPSILON_EV, cutoff=rc, dtype=torch.float64,
                             compute_forces=True, compute_stress=True)


def torchsim_state(structures):
    import torch
    import torch_sim as ts

    return ts.io.atoms_to_state(structures, device=torch.device("cpu"), dtype=torch.float64)


# --------------------------------------------------------------------------------------------
# the contenders: each evaluates energy, forces and stress of every structure
# --------------------------------------------------------------------------------------------
def _dtype():
    import torch

    return getattr(torch, DTYPE_NAME)


def run_a(pot, structures):
    import mlip_props

    return mlip_props.evaluate(pot, structures, ("energy", "forces", "stress"), device=DEVICE, dtype=_dtype())


def run_a_unshared(pot, structures):
    """(a) with neighbour-list sharing between displaced copies of one cell turned off: every
    structure gets its own vesin list, as structures with distinct cells always do."""
    from mlip_props.backend import neighbors

    old = neighbors.SHARED_LIST_SKIN_A
    neighbors.SHARED_LIST_SKIN_A = 0.0
    try:
        return run_a(pot, structures)
    finally:
        neighbors.SHARED_LIST_SKIN_A = old


def run_a_autograd(pot, structures):
    """(a) with the potential's closed-form edge gradients turned off: all derivatives by autograd."""
    import importlib

    ev = importlib.import_module("mlip_props.backend.evaluate")
    ev.USE_CLOSED_FORM_EDGE_GRADIENTS = False
    try:
        return run_a(pot, structures)
    finally:
        ev.USE_CLOSED_FORM_EDGE_GRADIENTS = True


def _loop(calc, structures):
    out = []
    for atoms in structures:
        atoms.calc = calc
        s = atoms.get_stress()  # asked first, so one calculation serves all three
        out.append((atoms.get_potential_energy(), atoms.get_forces(), s))
        atoms.calc = None
    return out


def run_b(pot, structures):
    from mlip_props import MLIPCalculator

    return _loop(MLIPCalculator(pot, dtype=_dtype(), device=DEVICE), structures)


def run_c(calc, structures):
    return _loop(calc, structures)


def run_d(model, structures):
    return model(torchsim_state(structures))


def timed(fn, *args, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return times


# --------------------------------------------------------------------------------------------
# agreement checks (printed; the benchmark refuses to time contenders that disagree)
# --------------------------------------------------------------------------------------------
def n_pairs(atoms, rc: float) -> int:
    from ase.neighborlist import neighbor_list

    return len(neighbor_list("i", atoms, rc)) // 2


def lj_phi(r: float) -> float:
    s6 = (SIGMA_A / r) ** 6
    return 4 * EPSILON_EV * (s6 * s6 - s6)


def check_agreement(structures, rc: float, width: float) -> dict:
    """Max deviations between mlip-props and ASE, hard and smooth cutoff (eV, eV/A, eV/A^3)."""
    import mlip_props

    sub = structures[:8]
    res = {}
    hard = mlip_props.evaluate(mlip_lj(rc, 0.0), sub)
    ref = run_c(ase_lj(rc, 0.0), [a.copy() for a in sub])
    shift = np.array([n_pairs(a, rc) * lj_phi(rc) for a in sub])
    res["hard_energy_eV"] = float(np.max(np.abs(hard.energies_eV - (np.array([r[0] for r in ref]) + shift))))
    res["hard_forces_eV_A"] = float(max(np.abs(f - r[1]).max() for f, r in zip(hard.forces_eV_A, ref)))
    res["hard_stress_eV_A3"] = float(np.max(np.abs(hard.stress_eV_A3 - np.array([r[2] for r in ref]))))
    smooth = mlip_props.evaluate(mlip_lj(rc, width), sub)
    ref = run_c(ase_lj(rc, width), [a.copy() for a in sub])
    res["smooth_energy_per_atom_eV"] = float(np.max(np.abs(smooth.energies_eV - [r[0] for r in ref]))) / len(sub[0])
    res["smooth_forces_eV_A"] = float(max(np.abs(f - r[1]).max() for f, r in zip(smooth.forces_eV_A, ref)))
    res["max_force_eV_A"] = float(max(np.abs(f).max() for f in smooth.forces_eV_A))
    global DTYPE_NAME
    kept, DTYPE_NAME = DTYPE_NAME, "float64"  # the check runs in float64 whatever is timed
    try:
        auto = run_a_autograd(mlip_lj(rc, width), sub)  # (a3): closed-form edge gradients off
    finally:
        DTYPE_NAME = kept
    res["closed_form_vs_autograd_forces_eV_A"] = float(max(np.abs(f - g).max()
                                                           for f, g in zip(smooth.forces_eV_A, auto.forces_eV_A)))
    return res


def check_torchsim(structures, rc: float) -> dict:
    """TorchSim vs mlip-props (hard cutoff) and vs finite differences of TorchSim's own energy."""
    from ase.build import bulk

    import mlip_props

    sub = [a.copy() for a in structures[:4]]
    model = torchsim_model(rc)
    out = run_d(model, sub)
    ours = mlip_props.evaluate(mlip_lj(rc, 0.0), sub)
    e_ts = out["energy"].detach().numpy()
    f_ts = out["forces"].detach().numpy()
    f_ours = np.concatenate(ours.forces_eV_A)
    res = {
        "energy_vs_mlip_eV": float(np.max(np.abs(e_ts - ours.energies_eV))),
        "forces_vs_mlip_eV_A": float(np.abs(f_ts - f_ours).max()),
        "force_ratio_ts_over_mlip": float(np.sum(f_ts * f_ours) / np.sum(f_ours * f_ours)),
    }
    s = out["stress"].detach().numpy()  # (B, 3, 3)
    voigt = np.stack([s[:, 0, 0], s[:, 1, 1], s[:, 2, 2], s[:, 1, 2], s[:, 0, 2], s[:, 0, 1]], axis=1)
    res["stress_ratio_ts_over_mlip"] = float(np.sum(voigt * ours.stress_eV_A3) / np.sum(ours.stress_eV_A3**2))

    def fd(atoms, h=1e-4, comps=((0, 0), (3, 1), (17, 2))):
        errs = []
        f = run_d(model, [atoms])["forces"].detach().numpy()
        for k, c in comps:
            e = []
            for sgn in (1, -1):
                b = atoms.copy()
                b.positions[k, c] += sgn * h
                e.append(float(run_d(model, [b])["energy"][0]))
            errs.append((f[k, c], -(e[0] - e[1]) / (2 * h)))
        return errs

    pairs = fd(sub[0])
    res["fd_force_over_minus_dEdx"] = [float(a / b) for a, b in pairs]
    # a skewed (triclinic) cell: primitive fcc with a shear, rattled
    tri = bulk("Ar", "fcc", a=LATTICE_A).repeat((3, 3, 3))
    tri.set_cell(tri.cell[:] @ np.array([[1, 0.15, 0.05], [0, 1, 0.1], [0, 0, 1]]), scale_atoms=True)
    tri.positions += np.random.default_rng(1).normal(scale=0.05, size=tri.positions.shape)
    e_tri = float(run_d(model, [tri])["energy"][0])
    e_tri_ours = float(mlip_props.evaluate(mlip_lj(rc, 0.0), [tri], ("energy",)).energies_eV[0])
    res["triclinic_energy_ts_eV"] = e_tri
    res["triclinic_energy_mlip_eV"] = e_tri_ours
    res["fd_triclinic_force_over_minus_dEdx"] = [float(a / b) for a, b in fd(tri, comps=((0, 0), (5, 1)))]
    return res


# --------------------------------------------------------------------------------------------
# parts of the run
# --------------------------------------------------------------------------------------------
def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "nproc": os.cpu_count(), "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    info["device_of_a_b"] = str(DEVICE or ("cuda" if torch.cuda.is_available() else "cpu"))
    info["dtype_of_a_b"] = DTYPE_NAME
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        info["loadavg_at_start"] = os.getloadavg()
    except OSError:
        pass
    import ase

    info["ase"] = ase.__version__
    info["numpy"] = np.__version__
    return info


def throughput(args) -> dict:
    """Round-robin: each round times every contender once, so background load hits all alike."""
    structures = rattled_cells(args.n_structures)
    contenders = {
        "a_mlip_evaluate_batched": (run_a, mlip_lj(args.rc, args.width)),
        "a2_mlip_batched_unshared_lists": (run_a_unshared, mlip_lj(args.rc, args.width)),
        "a3_mlip_batched_all_autograd": (run_a_autograd, mlip_lj(args.rc, args.width)),
        "b_mlip_calculator_loop": (run_b, mlip_lj(args.rc, args.width)),
        "c_ase_lj_loop": (run_c, ase_lj(args.rc, args.width)),
    }
    if have_torchsim():
        contenders["d_torchsim_batched"] = (run_d, torchsim_model(args.rc))
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for rnd in range(args.repeats + 1):  # round 0 is a warm-up
        for name, (fn, obj) in contenders.items():
            t0 = time.perf_counter()
            fn(obj, structures)
            if rnd:
                times[name].append(time.perf_counter() - t0)
    n = len(structures)
    results = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        results[name] = {"times_s": ts, "median_s": med, "structures_per_s": n / med}
        print(f"  {name:28s} median {med:8.3f} s  {n / med:9.1f} structures/s   runs {[round(t, 3) for t in ts]}",
              flush=True)
    a = times["a_mlip_evaluate_batched"]
    for name, ts in times.items():
        if name[0] != "a":
            results[name]["per_round_ratio_to_a_median"] = statistics.median(t / ta for t, ta in zip(ts, a))
    if have_torchsim():
        state = torchsim_state(structures)
        model = contenders["d_torchsim_batched"][1]
        results["d_torchsim_model_call_only"] = {"times_s": timed(model, state, repeats=args.repeats)}
        results["d_torchsim_model_call_only"]["median_s"] = statistics.median(
            results["d_torchsim_model_call_only"]["times_s"])
        print(f"  TorchSim model call only (SimState prebuilt): median "
              f"{results['d_torchsim_model_call_only']['median_s']:.3f} s", flush=True)
    return results


def scaling(args) -> dict:
    pot = mlip_lj(args.rc, args.width)
    out = {}
    for reps, repeats in (((5, 5, 10), args.repeats), ((25, 25, 40), max(3, args.repeats_large))):
        atoms = rattled_cells(1, reps=reps, seed=2)[0]
        times = timed(lambda: run_a(pot, [atoms]), repeats=repeats)
        med = statistics.median(times)
        out[str(len(atoms))] = {"times_s": times, "median_s": med, "us_per_atom": 1e6 * med / len(atoms)}
        print(f"  {len(atoms):7d} atoms: median {med:8.3f} s = {1e6 * med / len(atoms):7.2f} us/atom"
              f"   runs {[round(t, 3) for t in times]}", flush=True)
    return out


def peak_rss_mib() -> float:
    """Peak resident memory of this process, MiB: VmHWM (reset at exec, unlike ru_maxrss, which a
    child inherits from a large parent on Linux), else ru_maxrss."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_case(case: str, args) -> None:
    """Run one case in this (fresh) process and print its peak RSS (MiB) as JSON."""
    before = peak_rss_mib()
    pot = mlip_lj(args.rc, args.width)
    if case == "batch_1024x32":
        structures = rattled_cells(args.n_structures)
    elif case == "atoms_1000":
        structures = rattled_cells(1, reps=(5, 5, 10), seed=2)
    elif case == "atoms_100000":
        structures = rattled_cells(1, reps=(25, 25, 40), seed=2)
    elif case == "ase_loop_1024x32":
        structures = rattled_cells(args.n_structures)
    else:
        raise ValueError(case)
    mid = peak_rss_mib()
    import torch

    cuda = DEVICE is not None and str(DEVICE).startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if case.startswith("ase"):
        run_c(ase_lj(args.rc, args.width), structures)
    else:
        run_a(pot, structures)
    peak = peak_rss_mib()
    rec = {"case": case, "rss_after_imports_MiB": before, "rss_after_structures_MiB": mid, "peak_rss_MiB": peak}
    if cuda:
        rec["peak_gpu_allocated_MiB"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(rec))


def memory(args) -> dict:
    out = {}
    for case in ("batch_1024x32", "ase_loop_1024x32", "atoms_1000", "atoms_100000"):
        cmd = [sys.executable, os.path.abspath(__file__), "--memory-case", case,
               "--rc", str(args.rc), "--width", str(args.width), "--n-structures", str(args.n_structures),
               "--dtype", args.dtype] + (["--device", args.device] if args.device else [])
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[case] = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"  {case:18s} peak RSS {out[case]['peak_rss_MiB']:8.1f} MiB "
              f"(after imports {out[case]['rss_after_imports_MiB']:.1f}, "
              f"after building structures {out[case]['rss_after_structures_MiB']:.1f})"
              + (f"; peak GPU allocated {out[case]['peak_gpu_allocated_MiB']:.1f} MiB"
                 if "peak_gpu_allocated_MiB" in out[case] else ""), flush=True)
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-structures", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=5, help="timed runs per contender (median reported)")
    p.add_argument("--repeats-large", type=int, default=5, help="timed runs of the 100,000-atom structure")
    p.add_argument("--rc", type=float, default=2.5 * SIGMA_A, help="cutoff, Angstrom (default 2.5 sigma)")
    p.add_argument("--width", type=float, default=0.5 * SIGMA_A, help="switch width, Angstrom (default 0.5 sigma)")
    p.add_argument("--quick", action="store_true", help="128 structures, 3 repeats, no 100k-atom run")
    p.add_argument("--torchsim-python", default=None, help="interpreter with torch_sim installed, for (d)")
    p.add_argument("--skip", default="", help="comma list of parts to skip: throughput,scaling,memory")
    p.add_argument("--json", default=None, help="write all figures to this JSON file")
    p.add_argument("--memory-case", default=None, help=argparse.SUPPRESS)
    p.add_argument("--device", default=None, help="device of (a) and (b): cpu, cuda (default: the backend's choice)")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"), help="precision of (a) and (b)")
    args = p.parse_args(argv)
    global DEVICE, DTYPE_NAME
    DEVICE, DTYPE_NAME = args.device, args.dtype
    if args.quick:
        args.n_structures, args.repeats, args.repeats_large = 128, 3, 3
    if args.memory_case:
        memory_case(args.memory_case, args)
        return {}
    if args.torchsim_python and not have_torchsim():
        # run the whole benchmark in the interpreter that has torch_sim (and mlip-props) installed
        rest = [a for a in (argv if argv is not None else sys.argv[1:])]
        k = rest.index("--torchsim-python")
        rest = rest[:k] + rest[k + 2:]
        os.environ["MLIP_PROPS_BENCH_COMMAND"] = " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv)
        os.execv(args.torchsim_python, [args.torchsim_python, os.path.abspath(__file__)] + rest)
    skip = set(filter(None, args.skip.split(",")))

    command = " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv)
    if os.environ.get("MLIP_PROPS_BENCH_COMMAND"):
        command = f"{os.environ['MLIP_PROPS_BENCH_COMMAND']}  (re-run as: {command})"
    report: dict = {"machine": machine(), "command": command,
                    "parameters": {"epsilon_eV": EPSILON_EV, "sigma_A": SIGMA_A, "lattice_A": LATTICE_A,
                                   "rc_A": args.rc, "switch_width_A": args.width,
                                   "n_structures": args.n_structures, "atoms_per_structure": 32,
                                   "repeats": args.repeats, "device": args.device, "dtype": args.dtype}}
    print("machine:", json.dumps(report["machine"]))
    print("command:", report["command"])
    print(f"LJ Ar: epsilon {EPSILON_EV} eV, sigma {SIGMA_A} A, rc {args.rc:.3f} A, switch over the last {args.width:.3f} A")

    structures = rattled_cells(args.n_structures)
    print("agreement checks (first 8 structures):")
    report["agreement"] = check_agreement(structures, args.rc, args.width)
    for k, v in report["agreement"].items():
        print(f"  {k:28s} {v:.3e}")
    ag = report["agreement"]
    if (ag["hard_forces_eV_A"] > 1e-9 or ag["hard_energy_eV"] > 1e-9 or ag["hard_stress_eV_A3"] > 1e-11
            or ag["closed_form_vs_autograd_forces_eV_A"] > 1e-12):
        raise SystemExit("mlip-props and ASE disagree on the hard-cutoff Lennard-Jones: not timing")

    if "throughput" not in skip:
        if have_torchsim():
            import torch_sim

            report["torchsim"] = {"version": getattr(torch_sim, "__version__", None) or _dist_version("torch-sim-atomistic"),
                                  "checks": check_torchsim(structures, args.rc)}
            print("TorchSim", report["torchsim"]["version"], "checks:", json.dumps(report["torchsim"]["checks"]))
        print(f"throughput, {args.n_structures} structures x 32 atoms, energy+forces+stress, "
              f"median of {args.repeats} rounds:", flush=True)
        report["throughput"] = thr = throughput(args)
        a = thr["a_mlip_evaluate_batched"]["median_s"]
        report["ratios"] = {f"{k[0]}/a": v["median_s"] / a for k, v in thr.items()
                            if k[0] != "a" and "model_call_only" not in k}
        for k, v in report["ratios"].items():
            per_round = thr[next(n for n in thr if n.startswith(k[0]))]["per_round_ratio_to_a_median"]
            print(f"  (a) is {v:6.2f}x faster than ({k[0]}) (ratio of medians; median of per-round ratios {per_round:.2f})")
        a2 = thr["a2_mlip_batched_unshared_lists"]["median_s"]
        report["ratios_unshared"] = {f"{k[0]}/a2": v["median_s"] / a2 for k, v in thr.items()
                                     if k[0] != "a" and "model_call_only" not in k}
        for k, v in report["ratios_unshared"].items():
            print(f"  (a2, no list sharing) is {v:6.2f}x faster than ({k[0]}) (ratio of medians)")
    if "scaling" not in skip and not args.quick:
        print("scaling, one structure, energy+forces+stress:")
        report["scaling"] = sc = scaling(args)
        r = sc["100000"]["us_per_atom"] / sc["1000"]["us_per_atom"]
        report["scaling"]["per_atom_ratio_100000_over_1000"] = r
        print(f"  time per atom, 100,000 / 1,000 atoms: {r:.2f}")
    if "memory" not in skip and not args.quick:
        print("peak memory (fresh subprocess each, VmHWM):")
        report["memory"] = memory(args)
    try:
        report["machine"]["loadavg_at_end"] = os.getloadavg()
    except OSError:
        pass
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return report


if __name__ == "__main__":
    main()
