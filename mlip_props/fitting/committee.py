"""Committee predictions: mean, spread and per-atom force disagreement, from one batched evaluation.

For M members with energies E_m, forces F_m and stress sigma_m (all from one
:func:`mlip_props.evaluate` call on the committee model, member axis included), the prediction is
the mean and the uncertainty the standard deviation over members (population, ddof = 0). The
per-atom force disagreement is d_i = sqrt(mean_m |F_m,i - mean F_i|^2) in eV/A, the usual
query-by-committee signal of active learning (H. S. Seung, M. Opper, H. Sompolinsky, COLT 1992;
A. V. Shapeev et al., Comput. Mater. Sci. 140, 171 (2017) for potentials).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..backend import evaluate


@dataclass(frozen=True)
class CommitteePrediction:
    """Per-structure committee statistics (eV, eV/A, eV/A^3; stress NaN for non-periodic)."""

    energy_mean_eV: np.ndarray  # (B,)
    energy_std_eV: np.ndarray  # (B,)
    forces_mean_eV_A: list[np.ndarray]  # (n, 3) each
    forces_std_eV_A: list[np.ndarray]  # (n, 3) each
    force_disagreement_eV_A: list[np.ndarray]  # (n,) each
    stress_mean_eV_A3: np.ndarray | None  # (B, 6)
    stress_std_eV_A3: np.ndarray | None  # (B, 6)
    n_members: int

    def to_dict(self) -> dict[str, Any]:
        lst = lambda xs: None if xs is None else [np.asarray(x).tolist() for x in xs]  # noqa: E731
        return {k: (v.tolist() if isinstance(v, np.ndarray) else lst(v) if isinstance(v, list) else v)
                for k, v in self.__dict__.items()}


def committee_predict(model: Any, structures: Any, stress: bool = True, dtype: torch.dtype = torch.float64,
                      device: Any = None) -> CommitteePrediction:
    """Mean and spread of a committee over ``structures`` (one batched evaluation of all members)."""
    props = ("energy", "forces", "stress") if stress else ("energy", "forces")
    r = evaluate(model, structures, props, dtype=dtype, device=device)
    e = r.energies_eV if r.energies_eV.ndim == 2 else r.energies_eV[:, None]
    fs = [f if f.ndim == 3 else f[None] for f in r.forces_eV_A]
    fmean = [f.mean(0) for f in fs]
    fstd = [f.std(0) for f in fs]
    dis = [np.sqrt(((f - f.mean(0)) ** 2).sum(-1).mean(0)) for f in fs]
    s_mean = s_std = None
    if stress:
        s = r.stress_eV_A3 if r.stress_eV_A3.ndim == 3 else r.stress_eV_A3[:, None]
        s_mean, s_std = s.mean(1), s.std(1)
    return CommitteePrediction(e.mean(1), e.std(1), fmean, fstd, dis, s_mean, s_std, e.shape[1])
