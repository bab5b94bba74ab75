"""Quantum-chemistry oracle: pyscf (Sun et al., J. Chem. Phys. 153, 024109 (2020)) behind the
oracle interface, from the optional ``qm`` extra (``pip install 'mlip-props[qm]'``).

Specs (through :func:`mlip_props.load_potential`)::

    "pyscf:hf/sto-3g"   "pyscf:b3lyp/def2-tzvp"   "pyscf:mp2/cc-pvtz"   "pyscf:ccsd(t)/cc-pvtz"
    "pyscf:method=ccsd,basis=cc-pvtz,charge=0,cache_dir=/tmp/qm"

Methods: ``hf``; any pyscf exchange-correlation functional name (``b3lyp``, ``pbe``, ``pbe0``,
``wb97x`` ...: Kohn-Sham DFT); ``mp2``; ``ccsd``; ``ccsd(t)``. Closed shells use restricted and
open shells unrestricted references (UHF/UKS). Post-HF methods freeze the chemical core
(``frozen_core=True``, pyscf's ``chemcore``) -- the convention the correlation-consistent basis
sets are built for. Energies in eV, forces in eV/A (converted with ASE's Hartree and Bohr).

Forces: analytic nuclear gradients for HF, DFT, MP2 and CCSD (pyscf ``nuc_grad_method``);
CCSD(T) has no analytic gradient here, so its forces are central finite differences of the
CCSD(T) energy (``fd_delta_A`` = 1e-3 A, 6N energies per force call; each is cached).

Spin: ``spin`` is 2S (pyscf's convention, the number of unpaired electrons). By default it is
chosen from the ground-state multiplicities of neutral isolated atoms (H 2S+1 = 2, C 3, N 4,
O 3, ...; NIST Atomic Spectra Database ground terms), from a small table of triplet molecules
(O2, S2, NH, CH2, SO), and otherwise from the electron-count parity (singlet or doublet).

Cache: every result is stored as JSON under ``cache_dir`` (default ``$MLIP_PROPS_CACHE`` or
``~/.cache/mlip_props/pyscf``) keyed by a SHA-256 of the geometry (A, 1e-8 precision), atomic
numbers, method, basis, charge, spin, frozen-core flag, convergence thresholds and the pyscf
version, so a rerun of the same scan costs nothing.

Threads: pyscf runs with ``num_threads=1`` OpenMP thread by default. On a shared, loaded machine
(2 cores, several users) OpenMP oversubscription made an H2 CCSD(T)/cc-pVTZ point 40x slower
(8 s instead of 0.2 s); pass ``num_threads=None`` to keep pyscf's own setting on a dedicated node.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes

from ..backend.oracle import OraclePotential
from ._disk_cache import geometry_key, load_cached, store_cached

#: ground-state 2S of neutral atoms (NIST ASD ground terms), Z -> 2S
ATOM_GROUND_STATE_2S: dict[str, int] = {
    "H": 1, "He": 0, "Li": 1, "Be": 0, "B": 1, "C": 2, "N": 3, "O": 2, "F": 1, "Ne": 0,
    "Na": 1, "Mg": 0, "Al": 1, "Si": 2, "P": 3, "S": 2, "Cl": 1, "Ar": 0, "K": 1, "Ca": 0,
    "Ga": 1, "Ge": 2, "As": 3, "Se": 2, "Br": 1, "Kr": 0, "I": 1, "Xe": 0,
}
#: neutral molecules with a triplet ground state (Hill formula -> 2S)
TRIPLET_MOLECULES: dict[str, int] = {"O2": 2, "S2": 2, "HN": 2, "CH2": 2, "OS": 2}

POST_HF = ("mp2", "ccsd", "ccsd(t)")
#: number of real pyscf calculations done in this process (cache hits excluded)
N_COMPUTED = 0


def default_cache_dir() -> Path:
    env = os.environ.get("MLIP_PROPS_CACHE")
    return Path(env) / "pyscf" if env else Path.home() / ".cache" / "mlip_props" / "pyscf"


def auto_spin(atoms: Atoms, charge: int = 0) -> int:
    """2S for ``atoms`` (see the module docstring)."""
    nelec = int(atoms.get_atomic_numbers().sum()) - int(charge)
    syms = atoms.get_chemical_symbols()
    if charge == 0 and len(atoms) == 1 and syms[0] in ATOM_GROUND_STATE_2S:
        return ATOM_GROUND_STATE_2S[syms[0]]
    if charge == 0 and atoms.get_chemical_formula(mode="hill") in TRIPLET_MOLECULES:
        return TRIPLET_MOLECULES[atoms.get_chemical_formula(mode="hill")]
    return nelec % 2


def _require_pyscf():
    try:
        import pyscf  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the pyscf oracle needs the 'qm' extra: pip install 'mlip-props[qm]' (pyscf>=2.4)"
        ) from exc
    return pyscf


class PySCFCalculator(Calculator):
    """ASE calculator running pyscf for molecules (non-periodic): energy (eV), forces (eV/A).

    See the module docstring for methods, spin handling, finite-difference forces of CCSD(T)
    and the on-disk cache. Failures (SCF or coupled cluster not converged, unknown method or
    basis) raise ``RuntimeError``/``ValueError`` with the reason; :class:`OraclePotential` wraps
    them in an ``OracleError`` naming the structure.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, method: str = "hf", basis: str = "sto-3g", charge: int = 0, spin: int | None = None,
                 cache_dir: str | os.PathLike | None = None, use_cache: bool = True, frozen_core: bool = True,
                 conv_tol: float = 1e-10, cc_conv_tol: float = 1e-9, max_cycle: int = 200,
                 fd_delta_A: float = 1e-3, max_memory_MB: int = 2000, num_threads: int | None = 1, **kwargs):
        super().__init__(**kwargs)
        self.method = method.strip().lower()
        self.basis = basis.strip().lower()
        self.charge = int(charge)
        self.spin = spin
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.use_cache = use_cache
        self.frozen_core = frozen_core
        self.conv_tol, self.cc_conv_tol, self.max_cycle = float(conv_tol), float(cc_conv_tol), int(max_cycle)
        self.fd_delta_A = float(fd_delta_A)
        self.max_memory_MB = int(max_memory_MB)
        self.num_threads = num_threads
        self._live: tuple[str, Any, Any] | None = None  # (key, mean field, post-HF object) of the last geometry

    # ------------------------------------------------------------------ cache
    def _spin_for(self, atoms: Atoms) -> int:
        return auto_spin(atoms, self.charge) if self.spin is None else int(self.spin)

    def cache_key(self, atoms: Atoms) -> str:
        pyscf = _require_pyscf()
        settings = {
            "method": self.method, "basis": self.basis, "charge": self.charge, "spin": self._spin_for(atoms),
            "frozen_core": self.frozen_core, "conv_tol": self.conv_tol, "cc_conv_tol": self.cc_conv_tol,
            "fd_delta": self.fd_delta_A if self.method == "ccsd(t)" else None, "pyscf": pyscf.__version__,
        }
        return geometry_key(atoms, settings, periodic=False)

    def _load(self, key: str) -> dict[str, Any]:
        return load_cached(self.cache_dir, key) if self.use_cache else {}

    def _store(self, key: str, data: dict[str, Any]) -> None:
        if self.use_cache:
            store_cached(self.cache_dir, key, data)

    # ------------------------------------------------------------------ pyscf
    def _mol(self, atoms: Atoms):
        from pyscf import gto

        if atoms.pbc.any():
            raise ValueError("the pyscf oracle is for molecules (non-periodic structures)")
        try:
            return gto.M(atom=[(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.get_positions())],
                         basis=self.basis, charge=self.charge, spin=self._spin_for(atoms), unit="Angstrom",
                         verbose=0, max_memory=self.max_memory_MB)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ValueError(f"pyscf cannot build {atoms.get_chemical_formula()} with basis {self.basis!r} "
                             f"(charge {self.charge}, 2S {self._spin_for(atoms)}): {exc}") from exc

    def _run(self, atoms: Atoms):
        """Mean field and post-HF objects, converged (or an exception)."""
        global N_COMPUTED
        from pyscf import cc, dft, mp, scf
        from pyscf.data.elements import chemcore

        if self.num_threads:
            from pyscf import lib

            lib.num_threads(int(self.num_threads))
        mol = self._mol(atoms)
        m = self.method
        restricted = mol.spin == 0
        if m in ("hf",) + POST_HF:
            mf = scf.RHF(mol) if restricted else scf.UHF(mol)
        else:
            mf = dft.RKS(mol) if restricted else dft.UKS(mol)
            mf.xc = m
            try:
                from pyscf.dft import libxc

                libxc.parse_xc(m)
            except Exception as exc:
                raise ValueError(f"unknown pyscf method {m!r}: expected hf, mp2, ccsd, ccsd(t) or a functional "
                                 f"name such as b3lyp ({exc})") from exc
        mf.conv_tol = self.conv_tol
        mf.max_cycle = self.max_cycle
        N_COMPUTED += 1
        mf.kernel()
        if not mf.converged and mol.spin:
            mf = mf.newton()  # second-order SCF rescues most open-shell atoms
            mf.kernel()
        if not mf.converged:
            raise RuntimeError(f"SCF ({type(mf).__name__}) not converged in {self.max_cycle} cycles")
        post = None
        frozen = chemcore(mol) if self.frozen_core else None
        frozen = frozen or None
        if m == "mp2":
            post = mp.MP2(mf, frozen=frozen)
            post.kernel()
        elif m in ("ccsd", "ccsd(t)"):
            post = cc.CCSD(mf, frozen=frozen)
            post.conv_tol = self.cc_conv_tol
            post.max_cycle = self.max_cycle
            post.kernel()
            if not post.converged:
                raise RuntimeError("CCSD amplitudes not converged (single-reference CC fails for strongly "
                                   "stretched bonds)")
            if m == "ccsd(t)":
                post.e_t = float(post.ccsd_t())
        return mf, post

    def _energy(self, mf, post) -> float:
        if post is None:
            e = mf.e_tot
        else:
            e = post.e_tot + getattr(post, "e_t", 0.0)
        return float(e) * units.Hartree

    def _forces(self, atoms: Atoms, mf, post) -> np.ndarray:
        if self.method == "ccsd(t)":
            f = np.zeros((len(atoms), 3))
            for i in range(len(atoms)):
                for a in range(3):
                    es = []
                    for s in (1.0, -1.0):
                        b = atoms.copy()
                        b.positions[i, a] += s * self.fd_delta_A
                        es.append(self._energy_of(b))
                    f[i, a] = -(es[0] - es[1]) / (2 * self.fd_delta_A)
            return f
        g = (post if post is not None else mf).nuc_grad_method()
        grad = g.kernel()
        return -np.asarray(grad) * units.Hartree / units.Bohr

    def _energy_of(self, atoms: Atoms) -> float:
        key = self.cache_key(atoms)
        data = self._load(key)
        if "energy" not in data:
            mf, post = self._run(atoms)
            data = {"energy": self._energy(mf, post)}
            self._store(key, data)
        return float(data["energy"])

    # ------------------------------------------------------------------ ASE
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        _require_pyscf()
        a = self.atoms
        key = self.cache_key(a)
        data = self._load(key)
        want_f = "forces" in properties
        if "energy" not in data or (want_f and "forces" not in data):
            live = self._live if (self._live is not None and self._live[0] == key) else None
            if live is None:
                mf, post = self._run(a)
                self._live = (key, mf, post)
            else:
                _, mf, post = live
            data = dict(data)
            data["energy"] = self._energy(mf, post)
            if want_f:
                data["forces"] = self._forces(a, mf, post).tolist()
            self._store(key, data)
        self.results["energy"] = self.results["free_energy"] = float(data["energy"])
        if "forces" in data:
            self.results["forces"] = np.asarray(data["forces"], dtype=float)


def pyscf_oracle(spec: str | None = None, *, method: str | None = None, basis: str | None = None,
                 hessian_delta: float = 0.005, **kwargs) -> OraclePotential:
    """A pyscf oracle for :func:`mlip_props.evaluate` and every property: ``pyscf_oracle("b3lyp/def2-svp")``
    or ``pyscf_oracle(method="ccsd", basis="cc-pvtz", cache_dir=...)``; ``kwargs`` go to
    :class:`PySCFCalculator` (charge, spin, cache_dir, use_cache, frozen_core, conv_tol ...).
    ``hessian_delta`` (A): displacement of the finite-difference Hessians."""
    _require_pyscf()
    if spec:
        m, _, b = spec.partition("/")
        method = method or m
        basis = basis or b or None
    method = (method or "hf").strip().lower()
    basis = (basis or "sto-3g").strip().lower()
    if not method or not basis:
        raise ValueError(f"pyscf spec needs method/basis, e.g. 'pyscf:b3lyp/def2-svp', got {spec!r}")
    name = f"pyscf:{method}/{basis}"
    opts = dict(kwargs)
    return OraclePotential(lambda: PySCFCalculator(method=method, basis=basis, **opts), name=name,
                           hessian_delta=hessian_delta)


def _register() -> None:
    from .registry import register_potential

    register_potential("pyscf", pyscf_oracle)


_register()
