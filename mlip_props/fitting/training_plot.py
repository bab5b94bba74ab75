"""The training-curve plot :func:`~.training.fit` writes next to the model (``*.curves.png``)."""
from __future__ import annotations

import os

import numpy as np


def plot_curves(history: list[dict[str, float]], path: str | os.PathLike) -> str:
    """Training curves (loss terms, validation RMSEs, learning rate) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for key in sorted({k for h in history for k in h if k.startswith("train_")}):
        axes[0].semilogy(ep, [h.get(key, np.nan) for h in history], label=key[6:])
    axes[0].set(xlabel="epoch", ylabel="loss term", title="training loss terms")
    axes[0].legend(fontsize=7)
    for key in ("val_energy_rmse_meV_atom", "val_forces_rmse_meV_A", "val_direct_forces_rmse_meV_A"):
        if any(key in h for h in history):
            axes[1].semilogy(ep, [h.get(key, np.nan) for h in history], label=key[4:])
    axes[1].set(xlabel="epoch", title="validation RMSE")
    axes[1].legend(fontsize=7)
    axes[2].semilogy(ep, [h["lr"] for h in history])
    axes[2].set(xlabel="epoch", title="learning rate")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
