"""Training inside the loop: the first (and any periodic full) fit from scratch, and warm starts
that continue the committee on the grown data set."""
from __future__ import annotations

import numpy as np
import torch
from ase import Atoms

from ..data import Dataset, dataset_from_frames
from ..model import BehlerParrinelloPotential
from .config import ActiveLearningConfig


def _bulk_subset(ds: Dataset) -> Dataset:
    """The frames of ``ds`` other than isolated atoms (single atoms in vacuum)."""
    return ds.subset([k for k, a in enumerate(ds.frames) if not (len(a) == 1 and not a.pbc.any())])


def warm_start_fit(model: BehlerParrinelloPotential, data: Dataset, epochs: int = 80, lr: float = 1e-3,
                   batch_size: int = 8, weights: dict[str, float] | None = None, seed: int = 0,
                   bootstrap: bool = True, dtype: torch.dtype = torch.float64,
                   ) -> tuple[BehlerParrinelloPotential, dict[str, float]]:
    """Continue training a committee on ``data`` (retraining after new labels): same architecture,
    descriptor transform and E0 (from the first fit), AdamW with a cosine schedule from ``lr``,
    one fresh bootstrap resample per member (seeded), ``epochs`` passes. Returns the model (the
    epoch with the lowest training loss) and its final per-term training RMSEs (meV/A, meV/atom).
    Uses the fitting layer's precomputed descriptors/Jacobians (:mod:`.losses`). ``dtype``: the
    training precision (``torch.float32`` is faster on CPUs; descriptors are still computed in
    float64 and cast); the returned model is float64 either way."""
    from ..losses import loss_terms, precompute, predict
    from ..training import DEFAULT_WEIGHTS, _rmse_metrics

    w = dict(DEFAULT_WEIGHTS)
    w.update(weights or {})
    ds = _bulk_subset(data)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    d = precompute(model, ds, dtype=dtype)  # (moves the model to float64 in place: cast it after)
    model = model.to(dtype)
    n, m = d.n_structures, model.n_members
    boot = (torch.as_tensor(np.stack([rng.multinomial(n, np.full(n, 1.0 / n)) for _ in range(m)]), dtype=dtype)
            if bootstrap and m > 1 else torch.ones(m, n, dtype=dtype))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-6)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1), eta_min=lr * 0.05)
    best, best_state = float("inf"), None
    model.train()
    for _ in range(epochs):
        perm = torch.as_tensor(rng.permutation(n))
        tot = 0.0
        for b0 in range(0, n, batch_size):
            idx = perm[b0 : b0 + batch_size]
            sub = d.select(idx)
            pred = predict(model, sub, create_graph=True, want_stress=w["stress"] > 0)
            terms = loss_terms(model, sub, pred, boot[:, idx])
            loss = sum(w.get(k, 0.0) * v.mean() for k, v in terms.items() if w.get(k, 0.0) > 0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
        sched.step()
        if tot < best:
            best, best_state = tot, {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    metrics = _rmse_metrics(model, d)
    return model.to(torch.float64), metrics


def fresh_fit(frames: list[Atoms], cfg: ActiveLearningConfig, seed: int) -> BehlerParrinelloPotential:
    """A committee fitted from scratch on ``frames`` with the architecture and schedule of ``cfg``
    (its ``descriptor`` or, if None, a small preset
    with cutoff 4.5 A for the elements present), all frames in training."""
    from ..descriptors import preset
    from ..training import fit

    ds = dataset_from_frames(frames)
    desc = cfg.descriptor or preset(ds.elements, cutoff=4.5, n_radial=6, zetas=(1, 4), angular_etas=(0.01,)).to_dict()
    model, _ = fit(ds, None, committee=cfg.committee, hidden=cfg.hidden, descriptor=desc, epochs=cfg.initial_epochs,
                   patience=max(20, cfg.initial_epochs // 4), lr=cfg.lr, batch_size=cfg.batch_size, seed=seed,
                   split=(1.0, 0.0, 0.0), prune=None, zbl=cfg.zbl, weights=cfg.weights, plot=False, progress=False)
    return model
