"""Harmonic and quasi-harmonic thermodynamics from phonons.

Harmonic (Born & Huang 1954; e.g. Dove, *Introduction to Lattice Dynamics*, CUP 1993, ch. 5):
phonopy's mesh sampling of the phonon frequencies of :func:`~mlip_props.properties.phonons.phonons`
gives the constant-volume heat capacity Cv, entropy S, Helmholtz free energy F (zero-point
energy included) and internal energy U = F + T S. Every quantity is reported twice:

* ``*_atoms``: per mole of ATOMS (Cv -> 3R = 24.94 J/(mol K) at high T, Dulong-Petit);
* ``*_fu``: per mole of FORMULA UNITS (pymatgen reduced formula: NaCl -> 2 atoms per f.u.).

Units: J/(mol K) for Cv and S, kJ/mol for F and U, K for temperatures. The sampling mesh is
checked by repeating the calculation on a denser mesh (1.5x the linear density).

Debye temperatures: ``debye_temperature_K`` from the second moment of the phonon DOS,
theta_D(2) = (h/k_B) sqrt(5/3 <nu^2>) (Barron, Berg & Morrison, Proc. R. Soc. A 242, 478 (1957);
Grimvall, *Thermophysical Properties of Materials*, 1999, sec. 7.3) — the high-temperature
limit of the Cv-Debye temperature; ``debye_temperature_cv_K`` inverts the Debye heat capacity
at each temperature.

Quasi-harmonic (phonopy's ``phonopy.qha.core.QHA``; Togo et al., Phys. Rev. B 81, 174301 (2010)): phonons
at a set of volumes, all their supercells in ONE backend call, static energies E(V), then
G(T, P) = min_V [E(V) + F_vib(V, T) + P V] by an equation-of-state fit at each T: volumetric
thermal expansion alpha_V(T), Cp(T), isothermal bulk modulus B_T(T), G(T, P). Cell shapes are
either scaled isotropically (``volume_factors``; internal positions relaxed) or relaxed at a set
of pressures (``pressures_GPa``; shape relaxed, e.g. hcp c/a).
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from .phonons import PhononResult, phonons, reduced_formula
from .result import PropertyResult, jsonable

#: molar gas constant J/(mol K) (CODATA 2018, exact).
R_J_MOLK = 8.314462618
#: Planck / Boltzmann, K per THz.
H_OVER_KB_K_THZ = 47.99243073366221
#: 1 eV per atom in kJ/mol.
EV_TO_KJ_MOL = 96.48533212331002


def default_temperatures() -> np.ndarray:
    """0 to 2000 K in 10 K steps, plus 298.15 K."""
    return np.unique(np.r_[np.arange(0.0, 2000.0 + 1e-9, 10.0), 298.15])


def debye_cv(t_over_theta: np.ndarray) -> np.ndarray:
    """Debye heat capacity per mole of atoms, J/(mol K): 9R (T/theta)^3 int_0^{theta/T} x^4 e^x/(e^x-1)^2 dx."""
    from scipy.integrate import quad

    out = []
    for t in np.atleast_1d(t_over_theta):
        if t <= 0:
            out.append(0.0)
            continue
        xd = 1.0 / t
        val, _ = quad(lambda x: x**4 * np.exp(-x) / (-np.expm1(-x)) ** 2 if x > 0 else 0.0, 0.0, xd, limit=200)
        out.append(9.0 * R_J_MOLK * t**3 * val)
    return np.array(out)


@lru_cache(maxsize=1)
def _debye_table() -> tuple[np.ndarray, np.ndarray]:
    t = np.logspace(-2.5, 2.5, 3000)  # T / theta_D
    return t, debye_cv(t) / (3.0 * R_J_MOLK)


def debye_temperature_from_cv(temperatures_K: np.ndarray, cv_J_molK_atoms: np.ndarray) -> np.ndarray:
    """theta_D(T) such that the Debye Cv equals the given Cv (per mole of atoms), by inverting
    the (monotonic) Debye function on a dense table; NaN where Cv is outside (1 %, 99.99 %) of
    3R, where the inversion is ill-conditioned."""
    t_tab, c_tab = _debye_table()
    temps = np.asarray(temperatures_K, dtype=float)
    frac = np.asarray(cv_J_molK_atoms, dtype=float) / (3.0 * R_J_MOLK)
    ok = (temps > 0) & (frac > 0.01) & (frac < 0.9999)
    out = np.full(len(temps), np.nan)
    # log-log interpolation of T/theta as a function of Cv/3R
    x = np.interp(np.log(frac[ok]), np.log(c_tab), np.log(t_tab))
    out[ok] = temps[ok] / np.exp(x)
    return out


def _mesh_of(ph, mesh) -> np.ndarray:
    if np.ndim(mesh) == 0:
        from phonopy.phonon.grid import length2mesh

        return np.asarray(length2mesh(float(mesh), ph.primitive.cell), dtype=int)
    return np.asarray(mesh, dtype=int)


def _tp(ph, mesh: np.ndarray, temperatures: np.ndarray, symmetry: Any = None,
        mesh_object: Any = None) -> dict[str, Any]:
    """phonopy thermal properties per mole of primitive cells (kJ/mol, J/(mol K)).

    ``mesh_object``: an already run phonopy ``Mesh`` of ``ph``, used when it has the same mesh
    numbers (no second diagonalisation); ``symmetry``: the primitive cell's phonopy ``Symmetry``
    for a new mesh (default: ``ph``'s own, through ``ph.run_mesh``). The ``"mesh"`` entry is
    the ``Mesh`` used."""
    from phonopy.phonon.thermal_properties import ThermalProperties

    mesh = np.asarray(mesh, dtype=int)
    if mesh_object is not None and np.array_equal(np.asarray(mesh_object.mesh_numbers), mesh):
        m = mesh_object
    elif symmetry is not None:
        from .phonons import mesh_object as _mesh_object

        m = _mesh_object(ph, symmetry, mesh)
    else:
        ph.run_mesh(mesh, is_gamma_center=True)
        m = ph.mesh
    tp = ThermalProperties(m, exclude_gamma_acoustic=True)
    tp.temperatures = temperatures
    tp.run()
    return {"temperatures": np.asarray(tp.temperatures), "free_energy": np.asarray(tp.free_energy),
            "entropy": np.asarray(tp.entropy), "heat_capacity": np.asarray(tp.heat_capacity), "mesh": m}


def _moment_debye(mesh) -> float:
    """theta_D(2) (K) from a run phonopy ``Mesh`` (or, for old callers, a Phonopy object)."""
    mesh = getattr(mesh, "mesh", None) if not hasattr(mesh, "weights") else mesh
    f = np.asarray(mesh.frequencies)
    w = np.asarray(mesh.weights, dtype=float)[:, None] * np.ones_like(f)
    pos = f > 0
    nu2 = (f[pos] ** 2 * w[pos]).sum() / w[pos].sum()
    return float(H_OVER_KB_K_THZ * np.sqrt(5.0 / 3.0 * nu2))


# ---------------------------------------------------------------------------------------------
# harmonic
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ThermalResult(PropertyResult):
    """Harmonic thermal properties of one structure.

    ``*_atoms`` fields are per mole of atoms, ``*_fu`` per mole of formula units
    (``formula`` is the pymatgen reduced formula; ``atoms_per_formula_unit`` atoms each).
    Cv, S in J/(mol K); F, U, zero-point energy in kJ/mol; temperatures K.
    ``mesh_change_cv_rel``: largest |Cv(mesh) - Cv(denser mesh)| / 3R over the temperatures;
    ``mesh_converged``: that change below ``mesh_tolerance``. Imaginary modes (from the phonon
    calculation) are excluded from the sums by phonopy and flagged here.
    """

    formula: str
    atoms_per_formula_unit: int
    n_atoms_primitive: int
    temperatures_K: np.ndarray
    cv_J_molK_atoms: np.ndarray
    entropy_J_molK_atoms: np.ndarray
    free_energy_kJ_mol_atoms: np.ndarray
    internal_energy_kJ_mol_atoms: np.ndarray
    cv_J_molK_fu: np.ndarray
    entropy_J_molK_fu: np.ndarray
    free_energy_kJ_mol_fu: np.ndarray
    internal_energy_kJ_mol_fu: np.ndarray
    zero_point_energy_kJ_mol_atoms: float
    debye_temperature_K: float
    debye_temperature_cv_K: np.ndarray
    mesh: list
    check_mesh: list | None
    mesh_change_cv_rel: float | None
    mesh_change_entropy_J_molK_atoms: float | None
    mesh_converged: bool | None
    mesh_tolerance: float
    imaginary_modes: bool
    lowest_frequency_THz: float
    phonon_result: PhononResult | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "phonon_result"}

    def at(self, temperature_K: float) -> dict[str, float]:
        """All per-mole-of-atoms quantities interpolated at one temperature (K)."""
        t = self.temperatures_K
        return {name: float(np.interp(temperature_K, t, getattr(self, name))) for name in (
            "cv_J_molK_atoms", "entropy_J_molK_atoms", "free_energy_kJ_mol_atoms", "internal_energy_kJ_mol_atoms")}


def thermal_from_phonons(
    results: PhononResult | Sequence[PhononResult],
    *,
    temperatures_K: Sequence[float] | None = None,
    mesh: float | Sequence[int] = 50.0,
    check_mesh: bool = True,
    mesh_tolerance: float = 0.005,
) -> ThermalResult | list[ThermalResult]:
    """Harmonic Cv, S, F, U (see :class:`ThermalResult`) from phonon results (no model calls).

    ``mesh``: Gamma-centred mesh as 3 ints or a length (A; phonopy ``length2mesh``, default 50).
    ``check_mesh``: repeat on a mesh 1.5x denser and report the change.
    """
    single = isinstance(results, PhononResult)
    out = []
    temps = default_temperatures() if temperatures_K is None else np.asarray(temperatures_K, dtype=float)
    for r in [results] if single else results:
        ph = r.harmonic if getattr(r, "harmonic", None) is not None else r.phonopy_object
        n_prim = len(ph.primitive)
        n_fu_atoms = _atoms_per_fu(r.atoms)
        m = _mesh_of(ph, mesh)
        check = None
        dcv = ds = None
        conv = None
        sym, mobj = getattr(r, "primitive_symmetry", None), getattr(r, "mesh_object", None)
        if check_mesh:
            check = np.ceil(m * 1.5).astype(int)
            tp2 = _tp(ph, check, temps, sym, mobj)
        tp = _tp(ph, m, temps, sym, mobj)
        theta2 = _moment_debye(tp["mesh"])
        cv = tp["heat_capacity"] / n_prim
        s = tp["entropy"] / n_prim
        f = tp["free_energy"] / n_prim
        u = f + temps * s / 1000.0
        if check_mesh:
            dcv = float(np.max(np.abs(tp2["heat_capacity"] / n_prim - cv)) / (3 * R_J_MOLK))
            ds = float(np.max(np.abs(tp2["entropy"] / n_prim - s)))
            conv = bool(dcv < mesh_tolerance)
        zpe = float(np.interp(0.0, temps, f)) if temps.min() == 0 else float("nan")
        out.append(ThermalResult(
            formula=r.formula,
            atoms_per_formula_unit=n_fu_atoms,
            n_atoms_primitive=n_prim,
            temperatures_K=temps,
            cv_J_molK_atoms=cv,
            entropy_J_molK_atoms=s,
            free_energy_kJ_mol_atoms=f,
            internal_energy_kJ_mol_atoms=u,
            cv_J_molK_fu=cv * n_fu_atoms,
            entropy_J_molK_fu=s * n_fu_atoms,
            free_energy_kJ_mol_fu=f * n_fu_atoms,
            internal_energy_kJ_mol_fu=u * n_fu_atoms,
            zero_point_energy_kJ_mol_atoms=zpe,
            debye_temperature_K=theta2,
            debye_temperature_cv_K=debye_temperature_from_cv(temps, cv),
            mesh=m.tolist(),
            check_mesh=None if check is None else check.tolist(),
            mesh_change_cv_rel=dcv,
            mesh_change_entropy_J_molK_atoms=ds,
            mesh_converged=conv,
            mesh_tolerance=mesh_tolerance,
            imaginary_modes=r.imaginary_modes,
            lowest_frequency_THz=r.lowest_frequency_THz,
            phonon_result=r,
        ))
    return out[0] if single else out


def _atoms_per_fu(atoms: Atoms) -> int:
    from pymatgen.core import Composition
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return int(round(Composition(atoms.get_chemical_formula()).reduced_composition.num_atoms))


def harmonic_thermal(
    potential: Any,
    structures: Any,
    *,
    temperatures_K: Sequence[float] | None = None,
    mesh: float | Sequence[int] = 50.0,
    check_mesh: bool = True,
    mesh_tolerance: float = 0.005,
    **phonon_kwargs: Any,
) -> ThermalResult | list[ThermalResult]:
    """Harmonic thermal properties of one structure or many: :func:`phonons` (one batched
    backend call, ``phonon_kwargs`` passed on) then :func:`thermal_from_phonons`. Units and
    per-atom / per-formula-unit conventions: :class:`ThermalResult`."""
    phonon_kwargs.setdefault("band_structure", False)
    ph = phonons(potential, structures, **phonon_kwargs)
    return thermal_from_phonons(ph, temperatures_K=temperatures_K, mesh=mesh, check_mesh=check_mesh,
                                mesh_tolerance=mesh_tolerance)


# ---------------------------------------------------------------------------------------------
# quasi-harmonic
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QHAResult(PropertyResult):
    """Quasi-harmonic thermodynamics of one structure at ``pressure_GPa``, per mole of ATOMS.

    Inputs kept for re-use: ``volumes_A3_per_atom`` (n_V), ``static_energies_eV_per_atom``,
    ``free_energy_vib_kJ_mol_atoms``/``cv_vib_J_molK_atoms``/``entropy_vib_J_molK_atoms``
    (n_V, n_T). Outputs on ``temperatures_K`` (n_T, truncated where phonopy stops):
    ``volume_A3_per_atom``; ``volumetric_thermal_expansion_per_K`` (alpha_V = (1/V) dV/dT);
    ``linear_thermal_expansion_per_K`` (alpha_V / 3, exact for cubic crystals only);
    ``bulk_modulus_GPa`` (isothermal); ``cp_J_molK_atoms`` (phonopy numerical -T d2G/dT2);
    ``cv_J_molK_atoms`` (harmonic Cv interpolated at V(T)); ``gibbs_energy_eV_per_atom``;
    ``volume_in_range``: V(T) within the sampled volumes (outside: extrapolated, not trusted).
    ``imaginary_modes_per_volume``: flags from the phonon runs.
    """

    formula: str
    pressure_GPa: float
    eos: str
    volumes_A3_per_atom: np.ndarray
    static_energies_eV_per_atom: np.ndarray
    temperatures_K: np.ndarray
    free_energy_vib_kJ_mol_atoms: np.ndarray
    cv_vib_J_molK_atoms: np.ndarray
    entropy_vib_J_molK_atoms: np.ndarray
    volume_A3_per_atom: np.ndarray
    volumetric_thermal_expansion_per_K: np.ndarray
    linear_thermal_expansion_per_K: np.ndarray
    bulk_modulus_GPa: np.ndarray
    cp_J_molK_atoms: np.ndarray
    cv_J_molK_atoms: np.ndarray
    gibbs_energy_eV_per_atom: np.ndarray
    volume_in_range: np.ndarray
    imaginary_modes_per_volume: list

    def at(self, temperature_K: float) -> dict[str, float]:
        """Outputs interpolated at one temperature (K)."""
        t = self.temperatures_K
        names = ("volume_A3_per_atom", "volumetric_thermal_expansion_per_K", "linear_thermal_expansion_per_K",
                 "bulk_modulus_GPa", "cp_J_molK_atoms", "cv_J_molK_atoms", "gibbs_energy_eV_per_atom")
        return {n: float(np.interp(temperature_K, t, getattr(self, n))) for n in names}

    def gibbs(self, pressures_GPa: Sequence[float]) -> np.ndarray:
        """G(T, P) in eV per atom, shape (n_P, n_T) on ``temperatures_K``; NaN where the
        equilibrium volume leaves the sampled range. Static enthalpy + vibrational free energy
        (zero-point included) minimised over volume at each (T, P) by phonopy's EOS fits."""
        out = np.full((len(pressures_GPa), len(self.temperatures_K)), np.nan)
        for i, p in enumerate(pressures_GPa):
            q = _run_qha(self.volumes_A3_per_atom, self.static_energies_eV_per_atom, self.temperatures_K,
                         self.free_energy_vib_kJ_mol_atoms, self.cv_vib_J_molK_atoms,
                         self.entropy_vib_J_molK_atoms, float(p), self.eos)
            n = min(len(q["gibbs"]), out.shape[1])
            g = np.where(q["in_range"][:n], q["gibbs"][:n], np.nan)
            out[i, :n] = g
        return out


def _run_qha(volumes, energies, temps, fe, cv, s, pressure, eos) -> dict[str, np.ndarray]:
    from phonopy.qha.core import QHA

    # phonopy's array-level QHA class (what the deprecated PhonopyQHA wrapper ran); phonopy.run_qha
    # needs one Phonopy object per volume and its own mesh sums, which G(T, P) re-fits at many
    # pressures from stored arrays do not keep. Arrays are (n_T, n_V); F in kJ/mol, Cv and S in J/(mol K).
    qha = QHA(np.asarray(volumes, dtype=float), np.asarray(energies, dtype=float), np.asarray(temps, dtype=float),
              np.asarray(cv).T, np.asarray(s).T, np.asarray(fe).T, pressure=pressure, eos=eos,
              t_max=float(temps[-2]) if len(temps) > 2 else None)
    qha.run()
    vol = np.asarray(qha.volume_temperature)
    n = len(vol)
    vmin, vmax = np.min(volumes), np.max(volumes)
    return {
        "volume": vol,
        "alpha": np.asarray(qha.thermal_expansion)[:n],
        "bulk": np.asarray(qha.bulk_modulus_temperature)[:n],
        "gibbs": np.asarray(qha.gibbs_temperature)[:n],
        "cp": np.asarray(qha.heat_capacity_P_numerical)[:n],
        "in_range": (vol >= vmin) & (vol <= vmax),
    }


def _cv_at_volume(volumes: np.ndarray, cv: np.ndarray, vt: np.ndarray) -> np.ndarray:
    """Harmonic Cv(V, T) (n_V, n_T) evaluated at V(T) by a quadratic fit in V at each T."""
    out = np.empty(len(vt))
    for k, v in enumerate(vt):
        c = np.polyfit(volumes, cv[:, k], 2 if len(volumes) > 3 else 1)
        out[k] = np.polyval(c, v)
    return out


def qha_from_structures(
    potential: Any,
    volume_sets: Sequence[Sequence[Atoms]],
    static_energies_eV_per_atom: Sequence[Sequence[float]],
    *,
    temperatures_K: Sequence[float] | None = None,
    pressure_GPa: float = 0.0,
    eos: str = "vinet",
    mesh: float | Sequence[int] = 40.0,
    **phonon_kwargs: Any,
) -> list[QHAResult]:
    """QHA for several materials given their structures at several volumes (already relaxed):
    ONE :func:`phonons` call (one backend batch) for every supercell of every volume of every
    material, then phonopy's QHA per material. Used by :func:`quasi_harmonic` and the P-T
    phase diagram."""
    temps = default_temperatures() if temperatures_K is None else np.asarray(temperatures_K, dtype=float)
    flat = [a for vs in volume_sets for a in vs]
    for k, vs in enumerate(volume_sets):
        if len(vs) < 5:
            raise ValueError(f"structure {k}: quasi-harmonic fits need at least 5 volumes, got {len(vs)}")
    phonon_kwargs.setdefault("band_structure", False)
    phonon_kwargs["relax"] = False
    phs = phonons(potential, flat, **phonon_kwargs)
    ths = thermal_from_phonons(phs, temperatures_K=temps, mesh=mesh, check_mesh=False)
    out = []
    pos = 0
    for vs, es in zip(volume_sets, static_energies_eV_per_atom):
        th = ths[pos : pos + len(vs)]
        pos += len(vs)
        vols = np.array([a.get_volume() / len(a) for a in vs])
        order = np.argsort(vols)
        vols = vols[order]
        e = np.asarray(es, dtype=float)[order]
        fe = np.array([th[i].free_energy_kJ_mol_atoms for i in order])
        cv = np.array([th[i].cv_J_molK_atoms for i in order])
        s = np.array([th[i].entropy_J_molK_atoms for i in order])
        q = _run_qha(vols, e, temps, fe, cv, s, pressure_GPa, eos)
        n = len(q["volume"])
        out.append(QHAResult(
            formula=reduced_formula(vs[0]),
            pressure_GPa=float(pressure_GPa),
            eos=eos,
            volumes_A3_per_atom=vols,
            static_energies_eV_per_atom=e,
            temperatures_K=temps[:n],
            free_energy_vib_kJ_mol_atoms=fe,
            cv_vib_J_molK_atoms=cv,
            entropy_vib_J_molK_atoms=s,
            volume_A3_per_atom=q["volume"],
            volumetric_thermal_expansion_per_K=q["alpha"],
            linear_thermal_expansion_per_K=q["alpha"] / 3.0,
            bulk_modulus_GPa=q["bulk"],
            cp_J_molK_atoms=q["cp"],
            cv_J_molK_atoms=_cv_at_volume(vols, cv[:, :n], q["volume"]),
            gibbs_energy_eV_per_atom=q["gibbs"],
            volume_in_range=q["in_range"],
            imaginary_modes_per_volume=[bool(th[i].imaginary_modes) for i in order],
        ))
    return out


def quasi_harmonic(
    potential: Any,
    structures: Any,
    *,
    volume_factors: Sequence[float] = tuple(np.linspace(0.94, 1.06, 7)),
    temperatures_K: Sequence[float] | None = None,
    pressure_GPa: float = 0.0,
    eos: str = "vinet",
    mesh: float | Sequence[int] = 40.0,
    fmax: float = 1e-4,
    **phonon_kwargs: Any,
) -> QHAResult | list[QHAResult]:
    """Quasi-harmonic alpha(T), Cp(T), B(T), G(T) at ``pressure_GPa`` (see :class:`QHAResult`).

    Each structure is relaxed (cell and positions, batched), scaled isotropically to
    ``volume_factors`` x V0 (volume ratios), its internal positions relaxed at each volume
    (one batched relaxation, symmetry kept), and all supercells of all volumes evaluated in one
    backend call (:func:`qha_from_structures`). ``eos``: phonopy's ``"vinet"``,
    ``"birch_murnaghan"`` or ``"murnaghan"``.
    """
    from .relax import relax

    single = isinstance(structures, Atoms) or hasattr(structures, "lattice")
    from ..backend.evaluate import prepare_structures

    atoms_list = prepare_structures([structures] if single else structures)
    base = relax(potential, atoms_list, fmax=fmax, relax_cell=True, smax_GPa=1e-3, keep_symmetry=True)
    scaled = []
    for r in base:
        for f in volume_factors:
            a = r.atoms.copy()
            a.set_cell(np.asarray(a.get_cell()) * float(f) ** (1.0 / 3.0), scale_atoms=True)
            scaled.append(a)
    rel = relax(potential, scaled, fmax=fmax, relax_cell=False, keep_symmetry=True)
    nv = len(volume_factors)
    sets = [[rel[i * nv + j].atoms for j in range(nv)] for i in range(len(base))]
    energies = [[rel[i * nv + j].energy_eV / len(rel[i * nv + j].atoms) for j in range(nv)] for i in range(len(base))]
    out = qha_from_structures(potential, sets, energies, temperatures_K=temperatures_K, pressure_GPa=pressure_GPa,
                              eos=eos, mesh=mesh, **phonon_kwargs)
    return out[0] if single else out
