"""The learning curve: force error of a committee on a fixed labelled test set, and its plot."""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from ...backend import evaluate
from ..data import dataset_from_frames


def force_rmse_meV_A(model: Any, test_frames: Sequence[Atoms]) -> float:
    """Force RMSE (meV/A) of ``model`` (the committee mean for committees) on labelled frames,
    one batched evaluation."""
    ds = dataset_from_frames(list(test_frames))
    r = evaluate(model, ds.frames, ("energy", "forces"))
    err = []
    for f_pred, f_ref in zip(r.forces_eV_A, ds.forces):
        if f_ref is None:
            continue
        fp = f_pred.mean(0) if f_pred.ndim == 3 else f_pred
        err.append((fp - f_ref).ravel())
    return float(np.sqrt(np.mean(np.concatenate(err) ** 2)) * 1e3)


def plot_learning_curve(curves: dict[str, tuple[Sequence[float], Sequence[float]]], path: str | os.PathLike,
                        target_meV_A: float | None = None, title: str = "",
                        runs: dict[str, list[tuple[Sequence[float], Sequence[float]]]] | None = None,
                        colours: dict[str, str] | None = None, figsize: tuple[float, float] = (5.5, 3.8)) -> str:
    """Test-set force RMSE (meV/A) vs oracle calls, one line per label, log y; ``runs`` adds thin
    lines (e.g. the single seeds behind a mean curve) in the colour of their label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    for k, (label, (x, y)) in enumerate(curves.items()):
        colour = (colours or {}).get(label, f"C{k}")
        for rx, ry in (runs or {}).get(label, []):
            ax.plot(rx, ry, "-", color=colour, alpha=0.25, lw=0.7)
        ax.plot(x, y, "o-", ms=3, color=colour, label=label)
    if target_meV_A:
        ax.axhline(target_meV_A, color="k", ls="--", lw=0.8, label=f"{target_meV_A:g} meV/A")
    ax.set(xlabel="oracle calls", ylabel="test force RMSE (meV/A)", yscale="log", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
