"""Density-functional oracle for solids: GPAW (Mortensen et al., J. Chem. Phys. 160, 092503 (2024);
projector-augmented waves, plane waves) behind the oracle interface, from the optional ``dft``
extra (``pip install 'mlip-props[dft]'``; see docs/dft_oracle.md for building GPAW).

Specs (through :func:`mlip_props.load_potential`)::

    "gpaw"                                   PBE, 350 eV plane waves, k-point density 3.5 /A^-1
    "gpaw:xc=PBE,ecut=300,kpts=4"            4x4x4 Monkhorst-Pack grid (Gamma-centred)
    "gpaw:xc=LDA,ecut=400,kpts=6x6x4"        an explicit grid
    "gpaw:kdensity=4.0,width=0.05"

Settings: ``mode`` ``pw`` (plane waves, cutoff ``ecut`` eV; the only mode with a stress tensor) or
``lcao`` (dzp basis; energy and forces only); ``xc`` any functional GPAW ships PAW setups for (LDA,
PBE, revPBE, RPBE); ``kpts`` an integer N (N x N x N), ``"AxBxC"``, or none and ``kdensity``
(k-points per A^-1 of reciprocal length, so cells of every shape get the same sampling, ASE's
convention); grids are Gamma-centred. ``smearing`` ``fd`` (Fermi-Dirac, the one offered), width
``width`` eV (0.1);
``spinpol`` spin-polarised (default off). SCF convergence: ``conv_energy`` eV per valence
electron (1e-6), ``conv_density`` electrons per valence electron (1e-5), ``conv_eigenstates``
eV^2 per valence electron (1e-9) -- tighter than GPAW's defaults so forces and stress agree with
finite differences of the energy to ~1e-4 eV/A.

Units and conventions: energies eV, forces eV/A, stress eV/A^3 in Voigt order xx, yy, zz, yz,
xz, xy with ASE's sign (positive = tensile). The energy returned is the *free* energy E - TS of
the smeared occupations, the quantity whose derivatives the forces and stress are (GPAW's own
``get_potential_energy()`` returns a zero-width extrapolation that is not); the extrapolated
value is kept in the cache as ``energy_zero_width``.

Cache: every single point is stored as JSON under ``cache_dir`` (default ``$MLIP_PROPS_CACHE/gpaw``
or ``~/.cache/mlip_props/gpaw``), keyed by a SHA-256 of the atomic numbers, positions and cell
(A, 1e-8), periodicity, every setting above and the GPAW and gpaw-data versions. A miss computes
energy, forces and (in ``pw`` mode, periodic cells) stress in one SCF, so any later request of
the same geometry is free.

Output and threads: GPAW's text output is appended to ``txt`` (default ``<cache_dir>/gpaw.txt``;
``txt="-"`` prints it, ``txt="none"`` drops it). BLAS runs with ``num_threads=1`` by default
(oversubscription on a shared machine costs more than it gains); GPAW runs serially (no MPI).
"""
from __future__ import annotations

import os
import re
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import chemical_symbols

from ..backend.oracle import OraclePotential
from ._disk_cache import geometry_key, load_cached, store_cached

#: number of real GPAW SCF calculations done in this process (cache hits excluded)
N_COMPUTED = 0

#: smearings whose forces and stress were checked against finite differences of the free energy
#: (Marzari-Vanderbilt is not offered: with GPAW 26.7 its forces missed the finite-difference
#: gradient of its free energy by 0.05 eV/A on rattled Si, where Fermi-Dirac agreed to 3e-4)
SMEARINGS = {"fd": "fermi-dirac"}
MODES = ("pw", "lcao")


def default_cache_dir() -> Path:
    env = os.environ.get("MLIP_PROPS_CACHE")
    return Path(env) / "gpaw" if env else Path.home() / ".cache" / "mlip_props" / "gpaw"


def _require_gpaw():
    try:
        import gpaw  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the gpaw oracle needs the 'dft' extra: pip install 'mlip-props[dft]' (gpaw>=24 and gpaw-data; "
            "GPAW compiles a C extension against libxc, BLAS and FFTW: see docs/dft_oracle.md)"
        ) from exc
    return gpaw


def _versions() -> dict[str, str]:
    gpaw = _require_gpaw()
    try:
        from importlib.metadata import version

        data = version("gpaw-data")
    except Exception:  # setups installed another way (gpaw install-data, GPAW_SETUP_PATH)
        data = os.environ.get("GPAW_SETUP_PATH", "unknown")
    return {"gpaw": gpaw.__version__, "gpaw-data": data}


def setup_elements(xc: str = "PBE") -> set[int] | None:
    """Atomic numbers with a PAW setup for functional ``xc`` in GPAW's setup paths (``None`` when
    the setup folders cannot be listed: GPAW then reports a missing setup itself)."""
    _require_gpaw()
    try:
        from gpaw import setup_paths
        paths = list(setup_paths)
    except Exception:
        return None
    try:
        import gpaw_data

        paths.append(str(Path(gpaw_data.__file__).parent / "setups"))
    except Exception:
        pass
    pattern = re.compile(rf"^([A-Z][a-z]?)\.{re.escape(xc)}(\.gz)?$")
    found = set()
    for p in paths:
        try:
            names = os.listdir(p)
        except OSError:
            continue
        for n in names:
            m = pattern.match(n)
            if m and m.group(1) in chemical_symbols:
                found.add(chemical_symbols.index(m.group(1)))
    return found or None


def parse_kpts(kpts: Any) -> tuple[int, int, int] | None:
    """``4`` -> (4, 4, 4); ``"6x6x4"`` -> (6, 6, 4); ``None`` -> None (use the k-point density)."""
    if kpts is None or kpts == "":
        return None
    if isinstance(kpts, bool):
        raise ValueError(f"kpts must be an integer or 'AxBxC', got {kpts!r}")
    if isinstance(kpts, (int, np.integer)):
        grid = (int(kpts),) * 3
    elif isinstance(kpts, str):
        parts = kpts.lower().split("x")
        try:
            grid = tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"kpts must be an integer or 'AxBxC', got {kpts!r}") from None
        if len(grid) == 1:
            grid = grid * 3
    else:
        grid = tuple(int(k) for k in kpts)
    if len(grid) != 3 or min(grid) < 1:
        raise ValueError(f"kpts must be three integers >= 1, got {kpts!r}")
    return grid  # type: ignore[return-value]


class GPAWCachedCalculator(Calculator):
    """ASE calculator running GPAW for periodic solids, with the on-disk cache of the module
    docstring: energy (free energy, eV), forces (eV/A), stress (Voigt eV/A^3, ASE sign).

    Failures (SCF not converged, a missing PAW setup) raise GPAW's own exception;
    :class:`OraclePotential` wraps it in an ``OracleError`` naming the structure.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, mode: str = "pw", xc: str = "PBE", ecut: float = 350.0, kpts: Any = None,
                 kdensity: float = 3.5, smearing: str = "fd", width: float = 0.1, spinpol: bool = False,
                 conv_energy: float = 1e-6, conv_density: float = 1e-5, conv_eigenstates: float = 1e-9,
                 maxiter: int = 333, cache_dir: str | os.PathLike | None = None, use_cache: bool = True,
                 txt: str | None = None, num_threads: int | None = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self.settings = _settings(mode, xc, ecut, kpts, kdensity, smearing, width, spinpol,
                                  conv_energy, conv_density, conv_eigenstates, maxiter)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.use_cache = bool(use_cache)
        self.txt = txt
        self.num_threads = num_threads

    # ------------------------------------------------------------------ cache
    def cache_key(self, atoms: Atoms) -> str:
        return geometry_key(atoms, {"settings": self.settings, "versions": _versions()}, periodic=True)

    def _load(self, key: str) -> dict[str, Any]:
        return load_cached(self.cache_dir, key) if self.use_cache else {}

    def _store(self, key: str, data: dict[str, Any]) -> None:
        if self.use_cache:
            store_cached(self.cache_dir, key, data)

    # ------------------------------------------------------------------ GPAW
    def gpaw_parameters(self, atoms: Atoms) -> dict[str, Any]:
        """The keyword arguments of ``gpaw.GPAW`` for ``atoms`` (without ``txt``)."""
        s = self.settings
        mode: Any = {"name": "pw", "ecut": s["ecut"]} if s["mode"] == "pw" else {"name": "lcao"}
        if s["kpts"] is not None:
            kpts: Any = {"size": tuple(s["kpts"]), "gamma": True}
        else:
            kpts = {"density": s["kdensity"], "gamma": True}
        params: dict[str, Any] = dict(
            mode=mode, xc=s["xc"], kpts=kpts, spinpol=s["spinpol"],
            occupations={"name": SMEARINGS[s["smearing"]], "width": s["width"]},
            convergence={"energy": s["conv_energy"], "density": s["conv_density"],
                         "eigenstates": s["conv_eigenstates"]},
            maxiter=s["maxiter"],
        )
        if s["mode"] == "lcao":
            params["basis"] = "dzp"
        return params

    def _txt_context(self):
        txt = self.txt
        if txt == "-":
            return nullcontext("-")
        if txt is not None and str(txt).lower() == "none":
            return nullcontext(None)
        path = Path(txt) if txt is not None else self.cache_dir / "gpaw.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a")

    def _run(self, atoms: Atoms) -> dict[str, Any]:
        global N_COMPUTED
        _require_gpaw()
        from gpaw import GPAW

        a = Atoms(atoms.get_atomic_numbers(), positions=atoms.get_positions(), cell=atoms.get_cell(),
                  pbc=atoms.get_pbc())
        want_stress = self.settings["mode"] == "pw" and bool(a.pbc.all())
        limits = nullcontext()
        if self.num_threads:
            try:
                from threadpoolctl import threadpool_limits

                limits = threadpool_limits(limits=int(self.num_threads))
            except ImportError:  # pragma: no cover
                pass
        with limits, self._txt_context() as txt:
            a.calc = GPAW(txt=txt, **self.gpaw_parameters(a))
            N_COMPUTED += 1
            data: dict[str, Any] = {
                "energy": float(a.get_potential_energy(force_consistent=True)),
                "energy_zero_width": float(a.get_potential_energy()),
                "forces": np.asarray(a.get_forces(), dtype=float).tolist(),
            }
            if want_stress:
                data["stress"] = np.asarray(a.get_stress(voigt=True), dtype=float).tolist()
            data["iterations"] = int(a.calc.get_number_of_iterations() or 0)
            data["n_kpoints_irreducible"] = int(len(a.calc.get_ibz_k_points()))
        return data

    # ------------------------------------------------------------------ ASE
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        if "stress" in properties and self.settings["mode"] != "pw":
            raise ValueError(f"the gpaw oracle gives a stress in mode 'pw' only (mode is {self.settings['mode']!r})")
        key = self.cache_key(a)
        data = self._load(key)
        if "energy" not in data or ("stress" in properties and "stress" not in data):
            data = self._run(a)
            self._store(key, data)
        self.results["energy"] = self.results["free_energy"] = float(data["energy"])
        self.results["forces"] = np.asarray(data["forces"], dtype=float)
        if "stress" in data:
            self.results["stress"] = np.asarray(data["stress"], dtype=float)


def _settings(mode, xc, ecut, kpts, kdensity, smearing, width, spinpol, conv_energy, conv_density,
              conv_eigenstates, maxiter) -> dict[str, Any]:
    """Checked, JSON-safe settings (``ValueError`` naming the bad one)."""
    from ..validation import check_number

    mode = str(mode).strip().lower()
    if mode not in MODES:
        raise ValueError(f"gpaw mode must be one of {', '.join(MODES)}, got {mode!r}")
    smearing = str(smearing).strip().lower()
    if smearing not in SMEARINGS:
        raise ValueError(f"gpaw smearing must be one of {', '.join(SMEARINGS)}, got {smearing!r}")
    for name, value in (("ecut", ecut), ("kdensity", kdensity), ("width", width), ("conv_energy", conv_energy),
                        ("conv_density", conv_density), ("conv_eigenstates", conv_eigenstates)):
        check_number(name, value, minimum=0.0, exclusive_minimum=True)
    if int(maxiter) < 1:
        raise ValueError(f"gpaw maxiter must be >= 1, got {maxiter!r}")
    grid = parse_kpts(kpts)
    return {"mode": mode, "xc": str(xc).strip(), "ecut": float(ecut) if mode == "pw" else None,
            "kpts": None if grid is None else list(grid), "kdensity": None if grid is not None else float(kdensity),
            "smearing": smearing, "width": float(width), "spinpol": bool(spinpol),
            "conv_energy": float(conv_energy), "conv_density": float(conv_density),
            "conv_eigenstates": float(conv_eigenstates), "maxiter": int(maxiter)}


class GPAWOracle(OraclePotential):
    """:class:`OraclePotential` for GPAW: the oracle's structure checks plus periodicity in every
    direction (plane waves need it) and ``max_atoms`` (a guard against an accidental supercell:
    a GPAW single point costs ~N^2-N^3)."""

    def __init__(self, factory, name: str, elements: set[int] | None, max_atoms: int, hessian_delta: float):
        super().__init__(factory, name=name, elements=elements, hessian_delta=hessian_delta)
        self.max_atoms = int(max_atoms)

    def check_atoms(self, atoms: Atoms, index: int) -> None:
        super().check_atoms(atoms, index)
        if not atoms.pbc.all():
            raise ValueError(f"structure {index}: the gpaw oracle is for periodic solids (pbc {atoms.pbc.tolist()}); "
                             "use the pyscf oracle for molecules")
        if len(atoms) > self.max_atoms:
            raise ValueError(f"structure {index}: {len(atoms)} atoms exceed the gpaw oracle's max_atoms="
                             f"{self.max_atoms} (raise it explicitly for a bigger cell)")


def gpaw_oracle(spec: str | None = None, *, max_atoms: int = 64, hessian_delta: float = 0.005,
                trusted: bool = False, **kwargs: Any) -> OraclePotential:
    """A GPAW oracle for :func:`mlip_props.evaluate` and every property: ``gpaw_oracle(xc="PBE",
    ecut=300, kpts=4)`` or through ``load_potential("gpaw:xc=PBE,ecut=300,kpts=4")``; ``kwargs`` go
    to :class:`GPAWCachedCalculator` (mode, xc, ecut, kpts, kdensity, smearing, width, spinpol,
    conv_*, cache_dir, use_cache, txt, num_threads). ``spec``: a bare mode, ``"pw"`` or ``"lcao"``.
    ``hessian_delta`` (A): displacement of the finite-difference Hessians. ``trusted`` is accepted
    for the registry and unused (nothing is unpickled)."""
    _require_gpaw()
    if spec:
        kwargs.setdefault("mode", spec)
    opts = dict(kwargs)
    probe = GPAWCachedCalculator(**opts)  # checks the settings now, not at the first structure
    s = probe.settings
    grid = f"kpts={'x'.join(map(str, s['kpts']))}" if s["kpts"] else f"kdensity={s['kdensity']:g}"
    name = f"gpaw:{s['mode']},xc={s['xc']}" + (f",ecut={s['ecut']:g}" if s["ecut"] else "") + f",{grid}"
    return GPAWOracle(lambda: GPAWCachedCalculator(**opts), name=name, elements=setup_elements(s["xc"]),
                      max_atoms=max_atoms, hessian_delta=hessian_delta)
