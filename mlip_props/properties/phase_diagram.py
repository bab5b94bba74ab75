"""Phase diagrams: composition convex hulls and temperature-pressure diagrams of polymorphs.

Composition (T = 0, P = 0): all structures of a chemical system are relaxed together (one
batched relaxation, cell included, symmetry kept); their energies per atom go to pymatgen's
``PhaseDiagram`` (Ong et al., Chem. Mater. 20, 1798 (2008)), which gives formation energies
relative to the elemental references, the lower convex hull, energies above it and the stable
set. Energies in eV/atom.

Temperature-pressure (polymorphs of one composition):

* T = 0: static enthalpies H = E + P V per atom after relaxing every polymorph at every
  pressure of the grid (each relaxation batched over the polymorphs; cell shape relaxed).
  Since dH/dP = V, the enthalpy differences are interpolated by cubic Hermite splines with
  their exact slopes; their roots are the T = 0 transition pressures.
* T > 0: quasi-harmonic Gibbs energies G(T, P) = min_V [E(V) + F_vib(V, T) + P V]
  (:mod:`mlip_props.properties.thermal`; zero-point energy included) from the relaxed
  structures at a set of volume pressures, all their supercells in one backend call; the
  stable phase at each (T, P) is the lowest G; transition temperatures at each pressure and
  transition pressures at each temperature are found by linear interpolation of Delta G.
Units: GPa, K, eV/atom. A committee potential gives the committee mean's diagram (every
relaxation and energy on the mean surface); the per-member T = 0 crossings, their mean and
spread are :func:`mlip_props.properties.transitions.transition`'s.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

import torch

from ..backend import evaluate
from ..backend.evaluate import prepare_structures
from ..backend.inputs import structure_list
from ..backend.units import EV_A3_TO_GPA
from .phonons import reduced_formula
from .relax import ENERGY_RELAXATION, RelaxSettings, relax, resolve_relaxation
from .result import PropertyResult, jsonable

#: The relaxation of the convex hull: cell and ions, symmetry kept, 1e-3 eV/A, 1e-3 GPa, 2000
#: steps (:data:`~mlip_props.properties.relax.ENERGY_RELAXATION`): a hull compares energies,
#: whose error is second order in the residual force.
HULL_RELAXATION = ENERGY_RELAXATION
#: The relaxation at each pressure of a P-T diagram: cell and ions, symmetry kept, 1e-4 eV/A and
#: 1e-4 GPa, 3000 steps. The T = 0 transition pressure is the crossing of two nearly parallel
#: enthalpy curves whose slopes are the volumes (dH/dP = V), and the QHA volumes come from these
#: relaxations: 1e-4 GPa of residual stress keeps each volume within ~1e-6 of its value at the
#: target pressure (bulk moduli ~10-100 GPa), far below what moves a crossing.
PT_RELAXATION = RelaxSettings(smax_GPa=1e-4)


# ---------------------------------------------------------------------------------------------
# composition hull
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HullResult(PropertyResult):
    """Convex hull of a chemical system (eV/atom), one entry per input structure, in order.

    ``formation_energies_eV_per_atom``: E/N - sum_el x_el E_el/N_el (lowest-energy elemental
    entries as references); ``e_above_hull_eV_per_atom``: distance to the lower hull (0 for
    stable entries); ``stable``: on the hull; ``stable_formulas``: reduced formulas of the
    stable phases.
    """

    elements: list
    formulas: list
    energies_eV_per_atom: np.ndarray
    formation_energies_eV_per_atom: np.ndarray
    e_above_hull_eV_per_atom: np.ndarray
    stable: list
    stable_formulas: list
    relaxed_atoms: list
    relax_converged: list
    phase_diagram: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "phase_diagram"}

    def plot(self, filename: str | None = None):
        """Formation energy vs composition with the hull (binary systems; pymatgen's
        ``PDPlotter`` for more components)."""
        return plot_hull(self, filename)


def convex_hull(
    potential: Any,
    structures: Sequence[Any],
    *,
    relaxation: RelaxSettings | dict | bool | None = None,
    dtype: Any = None,
    device: Any = None,
) -> HullResult:
    """Composition convex hull of ``structures`` (ASE Atoms / pymatgen Structures of one
    chemical system, every element present as a pure structure too). One batched relaxation
    (``relaxation``: cell and ions, symmetry kept, 1e-3 eV/A, 1e-3 GPa, 2000 steps by default,
    :data:`HULL_RELAXATION`), or one evaluate call with ``relaxation=False``; pymatgen
    ``PhaseDiagram`` for the hull. ``dtype`` (default float64) and ``device`` go to the backend."""
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    settings = resolve_relaxation(relaxation, HULL_RELAXATION)
    kw = dict(dtype=dtype or torch.float64, device=device)
    atoms_list = prepare_structures(structure_list(structures)[1])
    if settings.enabled:
        relaxed = relax(potential, atoms_list, settings=settings, **kw)
        atoms_list = [r.atoms for r in relaxed]
        energies = np.array([r.energy_eV for r in relaxed])
        conv = [bool(r.converged) for r in relaxed]
    else:
        energies = np.asarray(evaluate(potential, atoms_list, ("energy",), **kw).energies_eV, dtype=float)
        conv = [True] * len(atoms_list)
    elements = sorted({s for a in atoms_list for s in a.get_chemical_symbols()})
    pure = {a.get_chemical_symbols()[0] for a in atoms_list if len(set(a.get_chemical_symbols())) == 1}
    missing = [e for e in elements if e not in pure]
    if missing:
        raise ValueError(f"convex hull needs an elemental structure for {', '.join(missing)} (none among the inputs)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        entries = [PDEntry(Composition(a.get_chemical_formula()), float(e), name=str(k))
                   for k, (a, e) in enumerate(zip(atoms_list, energies))]
        pd = PhaseDiagram(entries)
        ef = np.array([pd.get_form_energy_per_atom(en) for en in entries])
        eah = np.array([pd.get_e_above_hull(en) for en in entries])
    stable_ids = {id(en) for en in pd.stable_entries}
    stable = [id(en) in stable_ids for en in entries]
    return HullResult(
        elements=elements,
        formulas=[reduced_formula(a) for a in atoms_list],
        energies_eV_per_atom=energies / np.array([len(a) for a in atoms_list]),
        formation_energies_eV_per_atom=ef,
        e_above_hull_eV_per_atom=eah,
        stable=stable,
        stable_formulas=sorted({reduced_formula(a) for a, s in zip(atoms_list, stable) if s}),
        relaxed_atoms=atoms_list,
        relax_converged=conv,
        phase_diagram=pd,
    )


def plot_hull(result: HullResult, filename: str | None = None):
    """Binary: formation energy (eV/atom) vs fraction of the second element, hull as a line.
    More components: pymatgen ``PDPlotter`` (matplotlib backend)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if len(result.elements) != 2:
        from pymatgen.analysis.phase_diagram import PDPlotter

        ax = PDPlotter(result.phase_diagram, backend="matplotlib").get_plot()
        fig = ax.figure
    else:
        b = result.elements[1]
        x = np.array([a.get_chemical_symbols().count(b) / len(a) for a in result.relaxed_atoms])
        ef = result.formation_energies_eV_per_atom
        fig, ax = plt.subplots(figsize=(5, 4))
        st = np.array(result.stable)
        order = np.argsort(x[st])
        ax.plot(x[st][order], ef[st][order], "-", color="C0", label="hull")
        ax.plot(x[st], ef[st], "o", color="C0", label="stable")
        ax.plot(x[~st], ef[~st], "x", color="C3", label="above hull")
        for xi, ei, f in zip(x, ef, result.formulas):
            ax.annotate(f, (xi, ei), textcoords="offset points", xytext=(3, 3), fontsize=7)
        ax.set_xlabel(f"x ({b} fraction)")
        ax.set_ylabel("formation energy (eV/atom)")
        ax.legend(fontsize=8)
        fig.tight_layout()
    if filename is not None:
        fig.savefig(filename, dpi=120)
        plt.close(fig)
    return fig


# ---------------------------------------------------------------------------------------------
# temperature-pressure diagram of polymorphs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PTPhaseDiagram(PropertyResult):
    """Temperature-pressure phase diagram of polymorphs (eV/atom, GPa, K).

    ``static_enthalpy_eV_per_atom`` (n_phase, n_P) and ``static_volume_A3_per_atom`` at
    ``pressures_GPa`` (T = 0, no zero-point energy); ``transitions_T0``: list of
    {"low_pressure_phase", "high_pressure_phase", "pressure_GPa"} from static enthalpy crossings.
    With QHA: ``gibbs_eV_per_atom`` (n_phase, n_P, n_T) on ``pressures_GPa`` x
    ``temperatures_K`` (NaN where a phase's equilibrium volume leaves its sampled range),
    ``stable_phase`` (n_P, n_T) index into ``phases`` (-1 where undetermined),
    ``transition_temperatures_K``: per pressure, list of {"temperature_K", "from", "to"};
    ``transition_pressures_GPa``: per temperature, list of {"pressure_GPa", "from", "to"}.
    ``imaginary_modes``: per phase, any volume with imaginary modes (then its G is unreliable).
    """

    phases: list
    pressures_GPa: np.ndarray
    static_enthalpy_eV_per_atom: np.ndarray
    static_volume_A3_per_atom: np.ndarray
    transitions_T0: list
    temperatures_K: np.ndarray | None
    gibbs_eV_per_atom: np.ndarray | None
    stable_phase: np.ndarray | None
    transition_temperatures_K: list | None
    transition_pressures_GPa: list | None
    imaginary_modes: list | None
    relax_converged: bool
    qha_results: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "qha_results"}

    def plot(self, filename: str | None = None):
        """P-T diagram: stable phase regions, QHA boundaries and the static T = 0 transitions."""
        return plot_pt_diagram(self, filename)


def _relax_at_pressures(potential, atoms_list, pressures, settings: RelaxSettings, kw) -> list:
    """Relax every structure at every pressure in one batched relaxation (each pair with its own
    target pressure); ``[pressure][structure]`` results."""
    n = len(atoms_list)
    flat = relax(potential, [a for _ in pressures for a in atoms_list], settings=settings,
                 pressures_GPa=[float(p) for p in pressures for _ in atoms_list], **kw)
    return [flat[k * n:(k + 1) * n] for k in range(len(pressures))]


def static_transitions(pressures_GPa: np.ndarray, enthalpy: np.ndarray, volume: np.ndarray,
                       phases: Sequence[str]) -> list[dict[str, Any]]:
    """Roots of H_j(P) - H_i(P) where the lowest-enthalpy phase changes (cubic Hermite spline
    with slopes dH/dP = V; pressures GPa, enthalpies eV/atom, volumes A^3/atom)."""
    from scipy.interpolate import CubicHermiteSpline

    p = np.asarray(pressures_GPa, dtype=float)
    best = np.argmin(enthalpy, axis=0)
    out = []
    for k in range(len(p) - 1):
        i, j = int(best[k]), int(best[k + 1])
        if i == j:
            continue
        dh = enthalpy[j] - enthalpy[i]
        dv = (volume[j] - volume[i]) / EV_A3_TO_GPA  # eV/atom per GPa
        spl = CubicHermiteSpline(p, dh, dv)
        roots = [r for r in spl.roots(extrapolate=False) if p[k] - 1e-12 <= r <= p[k + 1] + 1e-12]
        r = float(roots[0]) if roots else float(p[k] + (p[k + 1] - p[k]) * dh[k] / (dh[k] - dh[k + 1]))
        out.append({"low_pressure_phase": phases[i], "high_pressure_phase": phases[j], "pressure_GPa": r})
    return out


def _crossings(x: np.ndarray, g: np.ndarray, phases: Sequence[str], key: str) -> list[dict[str, Any]]:
    """Where the argmin over phases of g (n_phase, n_x) changes along x (linear interpolation)."""
    out = []
    valid = np.all(np.isfinite(g), axis=0)
    best = np.where(valid, np.argmin(np.where(np.isfinite(g), g, np.inf), axis=0), -1)
    for k in range(len(x) - 1):
        i, j = int(best[k]), int(best[k + 1])
        if i < 0 or j < 0 or i == j:
            continue
        d0 = g[j, k] - g[i, k]
        d1 = g[j, k + 1] - g[i, k + 1]
        xc = x[k] + (x[k + 1] - x[k]) * d0 / (d0 - d1) if d0 != d1 else x[k]
        out.append({key: float(xc), "from": phases[i], "to": phases[j]})
    return out


def _default_volume_pressures(p: np.ndarray, relaxed) -> np.ndarray:
    """8 pressures spanning the grid, padded by ~4 % of volume below (thermal expansion) and
    ~2 % above, with the bulk modulus B = -V dP/dV estimated from the static relaxations at
    the two lowest / highest grid pressures (softest polymorph)."""
    def bulk(i0, i1):
        bs = []
        for k in range(len(relaxed[0])):
            v0, v1 = relaxed[i0][k].volume_A3_per_atom, relaxed[i1][k].volume_A3_per_atom
            if v0 and v1 and abs(v1 - v0) > 1e-12:
                bs.append(-0.5 * (v0 + v1) * (p[i1] - p[i0]) / (v1 - v0))
        return min(bs) if bs else None

    if len(p) >= 2:
        b_lo, b_hi = bulk(0, 1), bulk(len(p) - 2, len(p) - 1)
    else:
        b_lo = b_hi = None
    lo = p.min() - (0.04 * b_lo if b_lo and b_lo > 0 else 1.0)
    hi = p.max() + (0.02 * b_hi if b_hi and b_hi > 0 else 1.0)
    return np.linspace(lo, hi, 8)


def pt_phase_diagram(
    potential: Any,
    polymorphs: Mapping[str, Any],
    *,
    pressures_GPa: Sequence[float] = tuple(np.linspace(0.0, 20.0, 11)),
    temperatures_K: Sequence[float] | None = None,
    volume_pressures_GPa: Sequence[float] | None = None,
    relaxation: RelaxSettings | dict | bool | None = None,
    eos: str = "vinet",
    mesh: float | Sequence[int] = 30.0,
    phonon_options: dict | None = None,
    dtype: Any = None,
    device: Any = None,
) -> PTPhaseDiagram:
    """P-T phase diagram of ``polymorphs`` ({name: structure}, same composition).

    ``pressures_GPa``: grid for static enthalpies and for G(T, P). ``temperatures_K``: ``None``
    for the static T = 0 analysis only; otherwise quasi-harmonic G(T, P) from phonons of every
    polymorph relaxed at ``volume_pressures_GPa`` (default: 8 pressures from about 4 % of volume
    below the lowest grid pressure, room for thermal expansion, to about 2 % above the highest,
    using the bulk modulus estimated from the static relaxations). ``relaxation``: the cell and
    ion relaxation at each pressure (:data:`PT_RELAXATION` by default: 1e-4 eV/A, 1e-4 GPa, 3000
    steps; its ``pressure_GPa`` is set per grid point; it cannot be switched off). ``mesh``: the
    thermal sampling mesh (3 ints or a length in A). ``phonon_options``: keywords of
    :func:`~mlip_props.properties.phonons.plan_phonons` for the QHA phonons (``supercell``,
    ``method``, ``asr_enforcement`` ...). ``dtype`` (default float64) and ``device`` go to every
    backend call.
    """
    names = list(polymorphs)
    if len(names) < 2:
        raise ValueError("a P-T phase diagram needs at least two polymorphs")
    atoms_list = prepare_structures([polymorphs[n] for n in names])
    comps = {reduced_formula(a) for a in atoms_list}
    if len(comps) != 1:
        raise ValueError(f"polymorphs must share one composition, got {sorted(comps)}")
    settings = resolve_relaxation(relaxation, PT_RELAXATION)
    if not settings.enabled or not settings.cell:
        raise ValueError("a P-T phase diagram relaxes every polymorph's cell at every pressure: "
                         "relaxation cannot be False or have cell=False")
    kw = dict(dtype=dtype or torch.float64, device=device)
    p = np.asarray(sorted(pressures_GPa), dtype=float)
    relaxed = _relax_at_pressures(potential, atoms_list, p, settings, kw)
    vp = None
    if temperatures_K is not None:
        if volume_pressures_GPa is None:
            vp = _default_volume_pressures(p, relaxed)
        else:
            vp = np.asarray(sorted(volume_pressures_GPa), dtype=float)
        extra = np.array([x for x in vp if not np.any(np.isclose(x, p))])
        if len(extra):
            more = _relax_at_pressures(potential, atoms_list, extra, settings, kw)
            order = np.argsort(np.r_[p, extra])
            relaxed = [(relaxed + more)[k] for k in order]
            all_p = np.r_[p, extra][order]
        else:
            all_p = p
    else:
        all_p = p
    converged = all(r.converged for row in relaxed for r in row)
    idx = {float(x): k for k, x in enumerate(all_p)}
    h = np.array([[relaxed[idx[float(x)]][i].enthalpy_eV / len(atoms_list[i]) for x in p] for i in range(len(names))])
    v = np.array([[relaxed[idx[float(x)]][i].volume_A3_per_atom for x in p] for i in range(len(names))])
    t0 = static_transitions(p, h, v, names)
    result = dict(phases=names, pressures_GPa=p, static_enthalpy_eV_per_atom=h, static_volume_A3_per_atom=v,
                  transitions_T0=t0, temperatures_K=None, gibbs_eV_per_atom=None, stable_phase=None,
                  transition_temperatures_K=None, transition_pressures_GPa=None, imaginary_modes=None,
                  relax_converged=converged)
    if temperatures_K is None:
        return PTPhaseDiagram(**result)

    from .thermal import qha_from_structures

    temps = np.asarray(temperatures_K, dtype=float)
    sets = [[relaxed[idx[float(x)]][i].atoms for x in vp] for i in range(len(names))]
    energies = [[relaxed[idx[float(x)]][i].energy_eV / len(atoms_list[i]) for x in vp] for i in range(len(names))]
    qhas = qha_from_structures(potential, sets, energies, temperatures_K=temps, eos=eos, mesh=mesh,
                               phonon_options=phonon_options, dtype=dtype, device=device)
    nt = min(len(q.temperatures_K) for q in qhas)
    temps = temps[:nt]
    g = np.array([q.gibbs(p)[:, :nt] for q in qhas])  # (phase, P, T)
    valid = np.all(np.isfinite(g), axis=0)
    stable = np.where(valid, np.argmin(np.where(np.isfinite(g), g, np.inf), axis=0), -1)
    tt = [_crossings(temps, g[:, k, :], names, "temperature_K") for k in range(len(p))]
    tp = [_crossings(p, g[:, :, m], names, "pressure_GPa") for m in range(len(temps))]
    result.update(temperatures_K=temps, gibbs_eV_per_atom=g, stable_phase=stable, transition_temperatures_K=tt,
                  transition_pressures_GPa=tp, imaginary_modes=[bool(any(q.imaginary_modes_per_volume)) for q in qhas])
    return PTPhaseDiagram(qha_results=qhas, **result)


def plot_pt_diagram(result: PTPhaseDiagram, filename: str | None = None):
    """Stable-phase map in (P, T) with boundaries; stars mark the static T = 0 transitions."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    n = len(result.phases)
    if result.stable_phase is not None:
        s = np.ma.masked_less(np.asarray(result.stable_phase, dtype=float), 0)
        cmap = ListedColormap([f"C{k}" for k in range(n)])
        ax.pcolormesh(result.pressures_GPa, result.temperatures_K, s.T, cmap=cmap, vmin=-0.5, vmax=n - 0.5,
                      shading="nearest", alpha=0.35)
        bp, bt = [], []
        for k, lst in enumerate(result.transition_temperatures_K):
            for c in lst:
                bp.append(result.pressures_GPa[k])
                bt.append(c["temperature_K"])
        for m, lst in enumerate(result.transition_pressures_GPa):
            for c in lst:
                bp.append(c["pressure_GPa"])
                bt.append(result.temperatures_K[m])
        if bp:
            o = np.argsort(bt)
            ax.plot(np.array(bp)[o], np.array(bt)[o], "k.", ms=3, label="QHA boundary")
        for k, name in enumerate(result.phases):
            ax.plot([], [], "s", color=f"C{k}", alpha=0.5, label=name)
    for c in result.transitions_T0:
        ax.plot([c["pressure_GPa"]], [0.0], "*", ms=12, color="k", clip_on=False,
                label=f"static T=0: {c['low_pressure_phase']}->{c['high_pressure_phase']}")
    ax.set_xlabel("pressure (GPa)")
    ax.set_ylabel("temperature (K)")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    if filename is not None:
        fig.savefig(filename, dpi=120)
        plt.close(fig)
    return fig
