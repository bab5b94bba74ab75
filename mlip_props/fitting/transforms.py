"""Descriptor diagnostics and the linear transform stored with a model.

Redundant (near-collinear) descriptors make a fit ill-conditioned. This module measures that
and fixes it explicitly:

* :func:`collinearity_report` — per-feature mean/std, correlation matrix, condition number of the
  correlation matrix, and variance inflation factors VIF_j = 1 / (1 - R_j^2), R_j^2 the
  coefficient of determination of feature j regressed on all others (VIF = inf for an exact
  linear dependence). See D. A. Belsley, E. Kuh, R. E. Welsch, *Regression Diagnostics*
  (Wiley 1980).
* :func:`prune_features` — drop constant features and near-collinear ones, either greedily by a
  correlation threshold or by CUR column selection on leverage scores with deflation
  (M. W. Mahoney and P. Drineas, PNAS 106, 697 (2009); G. Imbalzano et al., J. Chem. Phys.
  148, 241730 (2018)); every dropped feature is reported with the reason.
* :class:`FeatureTransform` — per-element ``x -> (g[keep] - mean) @ W`` with W the standardisation
  (diag 1/std), PCA whitening (V L^-1/2) or ZCA whitening (V L^-1/2 V^T) of the kept features
  (A. Kessy, A. Lewin, K. Strimmer, Am. Stat. 72, 309 (2018)). Whitened features have identity
  covariance on the data they were fitted on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

TRANSFORM_KINDS = ("standard", "pca", "zca", "none")


@dataclass(frozen=True)
class CollinearityReport:
    """Diagnostics of a feature matrix (rows = atoms, columns = features)."""

    names: list[str]
    mean: np.ndarray
    std: np.ndarray
    correlation: np.ndarray
    condition_number: float
    vif: np.ndarray
    constant: list[int]

    def most_collinear(self, k: int = 5) -> list[tuple[str, float]]:
        order = np.argsort(-np.nan_to_num(self.vif, posinf=np.finfo(float).max))
        return [(self.names[i], float(self.vif[i])) for i in order[:k]]

    def to_dict(self) -> dict[str, Any]:
        f = lambda x: [None if not np.isfinite(v) else float(v) for v in np.ravel(x)]  # noqa: E731
        return {
            "names": list(self.names), "mean": f(self.mean), "std": f(self.std),
            "condition_number": float(self.condition_number) if np.isfinite(self.condition_number) else None,
            "vif": f(self.vif), "constant": list(self.constant),
        }


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"feature matrix must be 2-D (atoms x features), got shape {x.shape}")
    return x


def collinearity_report(x: Any, names: Sequence[str] | None = None, std_tol: float = 1e-12) -> CollinearityReport:
    """Mean, std, correlation, condition number and VIFs of features ``x`` (n_samples, n_features)."""
    x = _as_numpy(x)
    n, f = x.shape
    names = list(names) if names is not None else [f"f{k}" for k in range(f)]
    mean = x.mean(0)
    std = x.std(0)
    scale = np.maximum(std, 1e-300)
    constant = [k for k in range(f) if std[k] <= std_tol * max(1.0, abs(mean[k]))]
    live = [k for k in range(f) if k not in constant]
    z = (x - mean) / scale
    corr = np.full((f, f), np.nan)
    if live:
        corr[np.ix_(live, live)] = (z[:, live].T @ z[:, live]) / n
        np.fill_diagonal(corr, 1.0)
        ev = np.linalg.eigvalsh(corr[np.ix_(live, live)])
        cond = float(ev.max() / ev.min()) if ev.min() > ev.max() * 1e-15 else float("inf")
    else:
        cond = float("inf")
    vif = np.full(f, np.inf)
    for k in live:  # one least-squares regression per feature (features, not data)
        others = [m for m in live if m != k]
        if not others:
            vif[k] = 1.0
            continue
        a = z[:, others]
        coef, *_ = np.linalg.lstsq(a, z[:, k], rcond=None)
        res = z[:, k] - a @ coef
        r2 = 1.0 - (res @ res) / (z[:, k] @ z[:, k])
        vif[k] = np.inf if 1.0 - r2 < 1e-10 else 1.0 / (1.0 - r2)
    return CollinearityReport(names, mean, std, corr, cond, vif, constant)


@dataclass(frozen=True)
class PruneResult:
    """Kept feature indices and, for every dropped feature, why."""

    keep: list[int]
    dropped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"keep": list(self.keep), "dropped": list(self.dropped)}


def prune_features(
    x: Any,
    names: Sequence[str] | None = None,
    method: str = "correlation",
    threshold: float = 0.999,
    n_keep: int | None = None,
    rank_tol: float = 1e-8,
) -> PruneResult:
    """Drop constant and near-collinear features.

    ``method="correlation"``: scan features in order and drop one whose |correlation| with an
    already kept feature exceeds ``threshold``. ``method="cur"``: keep ``n_keep`` features
    (default: the numerical rank of the standardised matrix at ``rank_tol``) chosen by CUR
    leverage scores with deflation; the rest are reported as redundant.
    """
    x = _as_numpy(x)
    n, f = x.shape
    names = list(names) if names is not None else [f"f{k}" for k in range(f)]
    rep = collinearity_report(x, names)
    dropped = [{"index": k, "name": names[k], "reason": f"constant (std {rep.std[k]:.3g})"} for k in rep.constant]
    live = [k for k in range(f) if k not in rep.constant]
    if method == "correlation":
        keep: list[int] = []
        for k in live:
            if keep:
                c = np.abs(rep.correlation[k, keep])
                m = int(np.argmax(c))
                if c[m] > threshold:
                    dropped.append({"index": k, "name": names[k], "partner": names[keep[m]],
                                    "correlation": float(rep.correlation[k, keep[m]]),
                                    "reason": f"|corr| {c[m]:.6f} > {threshold} with {names[keep[m]]}"})
                    continue
            keep.append(k)
    elif method == "cur":
        z = (x[:, live] - rep.mean[live]) / rep.std[live]
        sv = np.linalg.svd(z, compute_uv=False)
        rank = int((sv > rank_tol * sv[0]).sum()) if len(sv) else 0
        k_sel = min(rank, n_keep if n_keep is not None else rank)
        chosen: list[int] = []
        resid = z.copy()
        for _ in range(k_sel):  # one selection per kept feature
            _, s, vt = np.linalg.svd(resid, full_matrices=False)
            r = max(1, int((s > rank_tol * max(s[0], 1e-300)).sum()))
            lev = (vt[:r] ** 2).sum(0)
            lev[chosen] = -1.0
            c = int(np.argmax(lev))
            chosen.append(c)
            v = resid[:, c] / max(np.linalg.norm(resid[:, c]), 1e-300)
            resid = resid - np.outer(v, v @ resid)
        keep = sorted(live[c] for c in chosen)
        for c in range(len(live)):
            if c not in chosen:
                k = live[c]
                dropped.append({"index": k, "name": names[k],
                                "reason": f"CUR: not among the {k_sel} highest-leverage columns (rank {rank})"})
    else:
        raise ValueError(f"unknown pruning method {method!r}; choose 'correlation' or 'cur'")
    dropped.sort(key=lambda d: d["index"])
    return PruneResult(keep=keep, dropped=dropped)


def whitening_matrix(x: Any, kind: str = "standard", eps: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and matrix W (F, F) such that (x - mean) @ W is standardised or whitened.

    Uses the population covariance (divide by n). ``kind``: ``standard`` (W = diag 1/std),
    ``pca`` (W = V L^-1/2), ``zca`` (W = V L^-1/2 V^T), ``none`` (W = I, mean 0).
    Raises ``ValueError`` if the covariance is singular (prune first).
    """
    x = _as_numpy(x)
    f = x.shape[1]
    if kind == "none":
        return np.zeros(f), np.eye(f)
    mean = x.mean(0)
    xc = x - mean
    if kind == "standard":
        std = xc.std(0)
        if np.any(std <= eps):
            raise ValueError(f"features {np.where(std <= eps)[0].tolist()} are constant; prune them first")
        return mean, np.diag(1.0 / std)
    if kind not in ("pca", "zca"):
        raise ValueError(f"unknown transform {kind!r}; choose from {TRANSFORM_KINDS}")
    cov = xc.T @ xc / x.shape[0]
    lam, v = np.linalg.eigh(cov)
    if lam.min() <= eps * max(lam.max(), 1e-300):
        raise ValueError(f"covariance is singular (eigenvalue ratio {lam.min() / lam.max():.2e}); prune collinear features first")
    w = v / np.sqrt(lam)
    return mean, (w if kind == "pca" else w @ v.T)


class FeatureTransform(torch.nn.Module):
    """Per-element linear descriptor transform ``x_e = (g[:, keep_e] - mean_e) @ W_e``.

    Stored in the model (buffers + config), so predictions use exactly the transform fitted on
    the training data. ``species_keep``: kept feature indices per species.
    """

    def __init__(self, n_features: int, species_keep: Sequence[Sequence[int]], kind: str = "standard"):
        super().__init__()
        if kind not in TRANSFORM_KINDS:
            raise ValueError(f"unknown transform {kind!r}; choose from {TRANSFORM_KINDS}")
        self.kind = kind
        self.n_features = int(n_features)
        self.species_keep = [list(map(int, k)) for k in species_keep]
        for s, keep in enumerate(self.species_keep):
            k = len(keep)
            self.register_buffer(f"keep_{s}", torch.tensor(keep, dtype=torch.long))
            self.register_buffer(f"mean_{s}", torch.zeros(k, dtype=torch.float64))
            self.register_buffer(f"w_{s}", torch.eye(k, dtype=torch.float64))

    def n_out(self, s: int) -> int:
        return len(self.species_keep[s])

    def get_config(self) -> dict[str, Any]:
        return {"n_features": self.n_features, "species_keep": self.species_keep, "kind": self.kind}

    def fit(self, g: torch.Tensor, species: torch.Tensor) -> "FeatureTransform":
        """Fit mean and W of each species on descriptors ``g`` (N, F) in float64."""
        for s in range(len(self.species_keep)):
            rows = g[species == s][:, getattr(self, f"keep_{s}").to(g.device)]
            if rows.shape[0] < 2:
                raise ValueError(f"species {s}: need at least 2 atoms to fit the descriptor transform")
            mean, w = whitening_matrix(rows, self.kind)
            getattr(self, f"mean_{s}").copy_(torch.as_tensor(mean))
            getattr(self, f"w_{s}").copy_(torch.as_tensor(w))
        return self

    def apply(self, g: torch.Tensor, s: int) -> torch.Tensor:
        """Transform descriptors ``g`` (..., F) of atoms of species ``s``."""
        keep = getattr(self, f"keep_{s}")
        return (g[..., keep] - getattr(self, f"mean_{s}").to(g.dtype)) @ getattr(self, f"w_{s}").to(g.dtype)
