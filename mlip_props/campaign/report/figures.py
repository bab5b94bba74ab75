"""The report's figures (PNG, matplotlib's Agg backend): parity plots, convex hulls, E(V) and Cv(T)
curves, phonon dispersions with experimental points, committee bands.

Every figure is saved by :func:`save_png`, which also writes the title and the axis labels (each
with its unit in parentheses) as PNG text chunks, so a reader or a test can check them without
looking at the pixels.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .flags import quality_flags
from .experiment import system_sort_key
from .quantities import Quantity

__all__ = ["pyplot", "save_png", "parity_figure", "write_parity_plot", "write_hull_plot", "write_eos_curves",
           "write_cv_curves", "write_phonon_dispersion", "write_committee_figure"]

#: one colour per crystal system in every parity plot
_SYSTEM_COLOURS = {"cubic": "tab:blue", "hexagonal": "tab:orange", "trigonal": "tab:green", "tetragonal": "tab:purple",
                   "orthorhombic": "tab:brown", "monoclinic": "tab:pink", "triclinic": "tab:olive",
                   "molecule": "tab:cyan", "unknown": "tab:gray"}

#: gas constant (J/(mol K)): 3R is the Dulong-Petit limit of Cv per mole of atoms
_R_J_MOL_K = 8.314462618


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path, ax) -> None:
    """Save a PNG with its axis labels also written as PNG text chunks (checked by the tests)."""
    fig.savefig(path, metadata={"Title": ax.get_title().replace("\n", " "), "xlabel": ax.get_xlabel(),
                                "ylabel": ax.get_ylabel(), "Software": "mlip-props"})


@contextmanager
def _one_axis_figure(path: Path, size: tuple[float, float] = (5.5, 4.2)) -> Iterator[Any]:
    """A figure with one axis: yields the axis; on exit lays it out, saves it to ``path`` (with
    :func:`save_png`) and closes it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=size, dpi=110)
    yield ax
    fig.tight_layout()
    save_png(fig, path, ax)
    plt.close(fig)


def _labels(ax, xlabel: str, ylabel: str, title: str, legend: bool = True) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if legend:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


#: a parity plot with more pairs than this names only its largest deviations
MAX_PARITY_LABELS = 12


def _annotated(pairs: list[dict]) -> list[dict]:
    """The pairs whose labels a parity plot writes: all of them up to :data:`MAX_PARITY_LABELS`, else the
    :data:`MAX_PARITY_LABELS` largest absolute deviations, the points farthest from y = x (the tables below
    the plot name every point; the report's "largest deviations" table ranks relative ones)."""
    if len(pairs) <= MAX_PARITY_LABELS:
        return pairs
    def deviation(p: dict) -> float:
        d = p.get("difference")
        return abs(d) if isinstance(d, (int, float)) and math.isfinite(d) else 0.0
    return sorted(pairs, key=deviation, reverse=True)[:MAX_PARITY_LABELS]


def parity_figure(q: Quantity, pairs: list[dict], stats: dict, potential: str):
    """The parity plot (matplotlib figure, axes) of ``pairs``: predicted vs experimental, y = x,
    vertical error bars of ``predicted_std`` (committee std) where pairs carry one, and a red ×
    over every pair with a failed check (:func:`.flags.quality_flags`; float32 alone is not one); labels on at
    most :data:`MAX_PARITY_LABELS` points (the largest deviations). Points are coloured by the
    pairs' ``crystal_system`` (a legend entry each) when the pairs carry it."""
    plt = pyplot()
    x = np.array([p["reference"] for p in pairs])
    y = np.array([p["predicted"] for p in pairs])
    fig, ax = plt.subplots(figsize=(4.8, 4.5), dpi=110)
    systems = sorted({p.get("crystal_system") for p in pairs}, key=lambda c: system_sort_key(str(c)))
    if systems == [None]:
        ax.scatter(x, y, s=28, zorder=3)
    else:
        for k, cs in enumerate(systems):
            idx = [i for i, p in enumerate(pairs) if p.get("crystal_system") == cs]
            ax.scatter(x[idx], y[idx], s=28, zorder=3, color=_SYSTEM_COLOURS.get(str(cs), f"C{k % 10}"),
                       label=str(cs or "unknown"))
    has_std = [k for k, p in enumerate(pairs) if "predicted_std" in p]
    if has_std:
        e = np.array([pairs[k]["predicted_std"] for k in has_std])
        ax.errorbar(x[has_std], y[has_std], yerr=e, fmt="none", ecolor="C0", elinewidth=1.0, capsize=3, zorder=2,
                    label="± committee std")
        y_lo, y_hi = y[has_std] - e, y[has_std] + e
    else:
        y_lo = y_hi = y
    flagged = [k for k, p in enumerate(pairs) if quality_flags(p.get("flags"))]
    if flagged:
        ax.scatter(x[flagged], y[flagged], s=60, marker="x", c="tab:red", zorder=4,
                   label="flagged result (see table)")
    for p in _annotated(pairs):
        ax.annotate(p["label"], (p["reference"], p["predicted"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    lo, hi = float(min(x.min(), y.min(), y_lo.min())), float(max(x.max(), y.max(), y_hi.max()))
    pad = 0.05 * (hi - lo or abs(hi) or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8, label="y = x")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    if flagged or systems != [None]:
        ax.legend(fontsize=7)
    ax.set_xlabel(f"experimental {q.label} ({q.unit})")
    ax.set_ylabel(f"predicted {q.label} ({q.unit})")
    r2 = "n/a" if not math.isfinite(stats["R2"]) else f"{stats['R2']:.3f}"
    ax.set_title(f"{q.label} [{potential}]\nMAE {stats['MAE']:.3g} {q.unit}, RMSE {stats['RMSE']:.3g} {q.unit}, "
                 f"R² {r2}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig, ax


def write_parity_plot(path: Path, q: Quantity, pairs: list[dict], stats: dict, potential: str) -> None:
    """:func:`parity_figure` saved to ``path``."""
    fig, ax = parity_figure(q, pairs, stats, potential)
    save_png(fig, path, ax)
    pyplot().close(fig)


def write_hull_plot(path: Path, points: list[dict], a: str, b: str, prop: str) -> None:
    """Formation energy per atom vs the atomic fraction of ``b``: points on the hull (blue, joined),
    points above it (red), labelled; ``points`` as made by :func:`..hulls.binary_hulls`."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4), dpi=110)
    xs = np.array([p[f"x_{b}"] for p in points])
    ys = np.array([p["formation_energy_eV_per_atom"] for p in points])
    st = np.array([p["e_above_hull_eV_per_atom"] < 1e-6 for p in points])
    ax.scatter(xs[~st], ys[~st], c="tab:red", label="above hull", zorder=3)
    ax.scatter(xs[st], ys[st], c="tab:blue", label="on hull", zorder=3)
    hx = np.array(sorted(set(np.round(xs[st], 10))))
    hy = [min(ys[st][np.isclose(xs[st], v)]) for v in hx]
    ax.plot(hx, hy, "b-", lw=1)
    for p in points:
        ax.annotate(p["label"], (p[f"x_{b}"], p["formation_energy_eV_per_atom"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"atomic fraction of {b} in {a}-{b} (x_{b}, dimensionless)")
    ax.set_ylabel("formation energy (eV/atom)")
    ax.set_title(f"{a}-{b} convex hull (from the {prop!r} rows)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_png(fig, path, ax)
    plt.close(fig)


def write_eos_curves(path: Path, curves: Sequence[tuple[str, Any, Any, float]]) -> None:
    """E - E_min (meV/atom) against V/V0, one line per ``(label, volumes_A3_per_atom,
    energies_eV_per_atom, v0_A3_per_atom)``."""
    with _one_axis_figure(path) as ax:
        for lab, v, e, v0 in curves:
            ax.plot(np.array(v) / v0, 1000 * (np.array(e) - min(e)), "o-", ms=3, label=lab)
        _labels(ax, "volume V/V0 (dimensionless)", "energy E - E_min (meV/atom)", "equations of state")


def write_cv_curves(path: Path, curves: Sequence[tuple[str, Any, Any]], cv_298K_J_molK: Sequence[float]) -> None:
    """Harmonic Cv(T) per mole of atoms, one line per ``(label, temperatures_K, cv_J_molK)``, the
    Dulong-Petit limit 3R and the experimental values at 298.15 K as crosses."""
    with _one_axis_figure(path) as ax:
        for lab, t, cv in curves:
            ax.plot(t, cv, "-", label=lab)
        ax.axhline(3 * _R_J_MOL_K, color="k", ls="--", lw=0.8, label="3R (Dulong-Petit)")
        for cv in cv_298K_J_molK:
            ax.plot([298.15], [cv], "kx")
        _labels(ax, "temperature T (K)", "heat capacity Cv (J/(mol K))",
                "harmonic Cv(T) per mole of atoms (x: experiment at 298 K)")


def write_phonon_dispersion(path: Path, label: str, distances_inv_A: list, frequencies_THz: list,
                            segment_labels: list | None, measured_THz: Sequence[tuple[str, float]]) -> None:
    """Band structure along the high-symmetry path (one line per segment and branch), with the
    measured frequencies ``(point, THz)`` as red squares at the points that are on the path."""
    from ...properties.phonons import band_axis, band_path_ticks

    with _one_axis_figure(path, size=(5.5, 3.8)) as ax:
        segments = []
        for k, (x, y) in enumerate(zip(distances_inv_A, frequencies_THz)):
            ax.plot(x, np.array(y, dtype=float), "b-", lw=1)
            if isinstance(segment_labels, list) and k < len(segment_labels):
                segments.append((segment_labels[k][0], segment_labels[k][1], x[0], x[-1]))
        ticks, names = band_path_ticks(segments)
        n_exp = 0
        for point, freq in measured_THz:
            if point in names:
                ax.plot([ticks[names.index(point)]], [freq], "rs", ms=4)
                n_exp += 1
        band_axis(ax, ticks, names, line_color="k")
        ax.set_xlabel("wave vector along the high-symmetry path (1/Å)")
        ax.set_title(f"{label}: phonon dispersion" + (" (red squares: experiment)" if n_exp else ""), fontsize=9)


#: committee result arrays drawn by :func:`write_committee_figure`
COMMITTEE_ARRAYS = ("band_frequencies_THz", "band_frequencies_THz_std", "band_distances_inv_A", "temperatures_K",
                    "cv_J_molK", "cv_J_molK_std", "cv_J_molK_members",
                    "eos_volumes_A3_per_atom", "eos_energies_eV_per_atom_members", "e0_eV_per_atom_members")


def write_committee_figure(path: Path, label: str, result: dict, n_std: float = 2.0) -> None:
    """A committee row's phonon dispersion (mean, shaded ± ``n_std`` std), Cv(T) and E(V) (mean,
    band, member curves), drawn by :func:`mlip_props.properties.uncertainty.plot_committee`."""
    from types import SimpleNamespace

    from ...properties.uncertainty import plot_committee

    r = result
    ns = SimpleNamespace(**{k: (None if r.get(k) is None else np.asarray(r[k], dtype=float))
                            for k in COMMITTEE_ARRAYS},
                         band_segment_labels=r.get("band_segment_labels"),
                         band_segment_sizes=r.get("band_segment_sizes"),
                         formula=f"{label} ({r.get('formula')})", n_members=r.get("n_members"))
    fig = plot_committee(ns, None, n_std=n_std)
    ax = fig.axes[0]
    ax.set_xlabel("wave vector along the high-symmetry path (1/Å)")
    save_png(fig, path, ax)
    pyplot().close(fig)
