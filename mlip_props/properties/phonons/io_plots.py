"""Phonon files (phonopy's ``phonopy_params.yaml``, ``band.yaml``), the shipped experimental
frequencies, and band-structure figures."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...data import reference_data_dir
from .result import PhononResult

#: the shipped experimental tables at import time (``reference_frequencies`` asks
#: :func:`~mlip_props.data.reference_data_dir` at each call, so the environment override applies)
REFERENCE_DIR = reference_data_dir()


def write_phonopy_files(result: PhononResult, output_dir: str | Path) -> dict[str, Path]:
    """``phonopy_params.yaml`` (with force constants) and ``band.yaml`` in ``output_dir``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ph = result.phonopy_object
    params = out / "phonopy_params.yaml"
    ph.save(filename=params, settings={"force_constants": True})
    files = {"phonopy_params": params}
    if ph.band_structure is None and result.band_qpoints and result.band_path is not None:
        labels, connections = result.band_path  # the path of the result's bands, now through phonopy
        ph.run_band_structure([np.asarray(q) for q in result.band_qpoints], path_connections=connections,
                              labels=labels, is_legacy_plot=False)
    if ph.band_structure is not None:
        band = out / "band.yaml"
        ph.write_yaml_band_structure(filename=band)
        files["band"] = band
    return files


def reference_frequencies(formula: str, path: str | Path | None = None) -> list[dict[str, Any]]:
    """Rows of the shipped ``phonons_high_symmetry.csv`` for a material (e.g. ``"Cu"``)."""
    p = Path(path) if path else reference_data_dir() / "phonons_high_symmetry.csv"
    if not p.is_file():
        return []
    with open(p, newline="") as fh:
        rows = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    return [r for r in rows if r.get("material") == formula]


def band_path_ticks(segments: Sequence[tuple[str, str, float, float]]) -> tuple[list[float], list[str]]:
    """Tick positions (1/A) and point names at the ends of band segments ``(label0, label1, x0, x1)``;
    where two segments meet at one x the names are kept once, and a jump between unconnected
    points gives a joined name ``"U|K"``. Names are as given (e.g. ``"Gamma"``)."""
    ticks: list[float] = []
    names: list[str] = []
    for l0, l1, x0, x1 in segments:
        for x, lab in ((x0, l0), (x1, l1)):
            if not ticks or abs(ticks[-1] - x) > 1e-9:
                ticks.append(float(x))
                names.append(lab)
            elif names[-1] != lab:
                names[-1] = f"{names[-1]}|{lab}"
    return ticks, names


def band_axis(ax, ticks: Sequence[float], names: Sequence[str], line_color: str = "0.7") -> None:
    """High-symmetry ticks (Gamma drawn as the Greek letter), vertical lines at them, the x range of
    the path, a zero line and the frequency label (THz) on a band-structure axis."""
    for x in ticks:
        ax.axvline(x, color=line_color, lw=0.6)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xticks(list(ticks))
    ax.set_xticklabels(["|".join("Γ" if p == "Gamma" else p for p in n.split("|")) for n in names])
    if ticks:
        ax.set_xlim(ticks[0], ticks[-1])
    ax.set_ylabel("frequency (THz)")


def save_or_return(fig, filename):
    """Lay out ``fig``; save and close it when ``filename`` is given; return it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    if filename is not None:
        fig.savefig(filename, dpi=120)
        plt.close(fig)
    return fig


def plot_band_structure(result: PhononResult, filename: str | Path | None = None, reference: bool = True):
    """Band structure (left) and DOS (right); experimental frequencies at high-symmetry points
    from the shipped ``phonons_high_symmetry.csv`` drawn as markers when present."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax, axd) = plt.subplots(1, 2, figsize=(8, 4.5), sharey=True, gridspec_kw={"width_ratios": [3, 1]})
    for d, f in zip(result.band_distances_inv_A, result.band_frequencies_THz):
        ax.plot(d, f, color="C0", lw=1.2)
    ticks, names = band_path_ticks([(l0, l1, d[0], d[-1])
                                    for (l0, l1), d in zip(result.band_labels, result.band_distances_inv_A)])
    plotted_ref = False
    for r in reference_frequencies(result.formula) if reference else []:
        for x, n in zip(ticks, names):
            if r.get("point") in n.split("|"):
                ax.plot([x], [float(r["frequency_THz"])], "o", mfc="none", color="C3",
                        label=None if plotted_ref else "experiment (neutron)")
                plotted_ref = True
    band_axis(ax, ticks, names)
    ax.set_title(f"{result.formula}: phonons ({result.method})")
    if plotted_ref:
        ax.legend(loc="best", fontsize=8)
    axd.plot(result.dos_states_per_THz, result.dos_frequencies_THz, color="C0")
    axd.set_xlabel("DOS (states/THz)")
    return save_or_return(fig, filename)


def max_frequency_difference_THz(a: PhononResult, b: PhononResult) -> float:
    """Largest |f_a - f_b| (THz) over the band-structure points of two results on the same path."""
    diffs = [np.abs(np.asarray(x) - np.asarray(y)).max() for x, y in zip(a.band_frequencies_THz, b.band_frequencies_THz)]
    return float(max(diffs)) if diffs else math.nan
