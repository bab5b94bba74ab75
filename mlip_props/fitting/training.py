"""Fitting Behler-Parrinello potentials (committees included) to labelled structures.

:func:`fit` reads extxyz (or takes frames / a :class:`~.data.Dataset`), takes isolated-atom
reference energies from single-atom frames (else a least-squares fit on composition), splits by
structure with a fixed seed, computes descriptors once, reports and prunes collinear features,
fits the descriptor transform, and trains all committee members together with AdamW (decoupled
weight decay; I. Loshchilov and F. Hutter, ICLR 2019) and a reduce-on-plateau or cosine learning
rate schedule, with early stopping on the validation loss, checkpoint/resume, a fixed seed, float64
or float32, a training-curve plot and a progress bar. Each loss term is logged separately
(see :mod:`.losses`).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..potentials import save_potential
from .data import Dataset, dataset_from_frames, read_dataset, split_indices
from .descriptors import SymmetryFunctionConfig, preset
from .losses import Precomputed, hessian_loss, loss_terms, precompute, predict, translation_sum_rule
from .model import BehlerParrinelloPotential
from .training_plot import plot_curves
from .transforms import collinearity_report, prune_features

DEFAULT_WEIGHTS = {"energy": 10.0, "forces": 1.0, "stress": 1.0, "hessian": 0.0, "asr": 0.0}


@dataclass
class TrainingReport:
    """What a fit did and how well it fits. RMSEs of the committee mean; meV/atom, meV/A, GPa."""

    n_structures: dict[str, int]
    data_hash: str
    e0_eV: dict[str, float]
    e0_source: str
    descriptor: dict[str, Any]
    pruning: list[dict[str, Any]]
    condition_number_before: list[float]
    condition_number_after: list[float]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    train_time_s: float
    structures_per_s: float
    metrics: dict[str, dict[str, float]]
    history: list[dict[str, float]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    curve_plot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=_json_default))

    def summary(self) -> str:
        lines = [f"fit: {self.n_structures}, best epoch {self.best_epoch}/{self.epochs_run}, "
                 f"{self.train_time_s:.1f} s ({self.structures_per_s:.1f} structures/s)"]
        for split, m in self.metrics.items():
            lines.append(f"  {split:5s}: " + ", ".join(f"{k}={v:.4g}" for k, v in m.items()))
        return "\n".join(lines)


def parse_weights(text: str | dict[str, float] | None) -> dict[str, float] | None:
    """Loss weights from CLI text ``"energy=10,forces=1,stress=0.1"`` (or a dict, returned checked).

    Raises ``ValueError`` for an unknown term or a value that is not a non-negative number.
    """
    if text is None or isinstance(text, dict):
        items = dict(text or {})
    else:
        items = {}
        for part in filter(None, (p.strip() for p in str(text).split(","))):
            if "=" not in part:
                raise ValueError(f"bad weight {part!r}: expected term=value")
            k, v = part.split("=", 1)
            items[k.strip()] = v.strip()
    out = {}
    for k, v in items.items():
        if k not in DEFAULT_WEIGHTS:
            raise ValueError(f"unknown loss term {k!r}; known: {', '.join(DEFAULT_WEIGHTS)}")
        try:
            out[k] = float(v)
        except ValueError as exc:
            raise ValueError(f"weight {k}={v!r} is not a number") from exc
        if out[k] < 0:
            raise ValueError(f"weight {k} must be >= 0, got {out[k]}")
    return out or None


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _as_dataset(data: Any) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, os.PathLike)):
        return read_dataset(data)
    return dataset_from_frames(list(data))


def _reference_energies(data: Dataset, elements: list[str]) -> tuple[dict[str, float], str, list[int]]:
    """E0 per element from isolated-atom frames, else least squares on composition; returns the
    indices of the remaining (non-isolated-atom) frames."""
    iso: dict[str, float] = {}
    rest = []
    for k, a in enumerate(data.frames):
        if len(a) == 1 and not a.pbc.any():
            iso[a.get_chemical_symbols()[0]] = float(data.energies[k])
        else:
            rest.append(k)
    if all(s in iso for s in elements):
        return {s: iso[s] for s in elements}, "isolated-atom frames", rest
    counts = np.array([[a.get_chemical_symbols().count(s) for s in elements] for a in (data.frames[k] for k in rest)], float)
    coef, *_ = np.linalg.lstsq(counts, data.energies[rest], rcond=None)
    return {s: float(c) for s, c in zip(elements, coef)}, "least squares on composition", rest


def _rmse_metrics(model: BehlerParrinelloPotential, d: Precomputed) -> dict[str, float]:
    if d.n_structures == 0:
        return {}
    p = predict(model, d, create_graph=False)
    p = type(p)(**{k: (None if v is None else v.detach()) for k, v in p.__dict__.items()})
    n = d.n_atoms.to(d.g.dtype)
    out = {"energy_rmse_meV_atom": float((((p.energy.mean(0) - d.energy) / n) ** 2).mean().sqrt()) * 1e3}
    hf = d.has_forces
    if bool(hf.any()):
        err = (p.forces.mean(0) - d.forces)[hf]
        out["forces_rmse_meV_A"] = float((err**2).mean().sqrt()) * 1e3
        if p.direct_forces is not None:
            errd = (p.direct_forces.mean(0) - d.forces)[hf]
            out["direct_forces_rmse_meV_A"] = float((errd**2).mean().sqrt()) * 1e3
            net = torch.zeros(d.n_structures, 3, dtype=d.g.dtype, device=d.g.device).index_add(0, d.structure_index, p.direct_forces.mean(0))
            out["direct_net_force_rms_meV_A"] = float(((net**2).sum(-1) / n**2).mean().sqrt()) * 1e3
    hs = d.has_stress
    if bool(hs.any()):
        from ..backend.units import EV_A3_TO_GPA

        out["stress_rmse_GPa"] = float((((p.stress.mean(0) - d.stress)[hs]) ** 2).mean().sqrt()) * EV_A3_TO_GPA
    return out


def fit(
    data: Any,
    out_path: str | os.PathLike | None = None,
    committee: int = 1,
    weights: dict[str, float] | None = None,
    *,
    descriptor: SymmetryFunctionConfig | dict[str, Any] | None = None,
    hidden: Sequence[int] = (32, 32),
    activation: str = "silu",
    transform: str = "standard",
    prune: str | None = "correlation",
    prune_threshold: float = 0.999,
    epochs: int = 400,
    batch_size: int = 16,
    lr: float = 3e-3,
    weight_decay: float = 1e-6,
    schedule: str = "plateau",
    patience: int = 60,
    min_lr: float = 1e-5,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = "cpu",
    split: Sequence[float] = (0.8, 0.1, 0.1),
    bootstrap: bool = True,
    direct_forces: bool = False,
    direct_head: str = "pair",
    e0: dict[str, float] | None = None,
    zbl: tuple[float, float] | None = (1.0, 2.0),
    hessian_rows: int = 4,
    hessian_batch: int = 2,
    asr_batch: int | None = None,
    asr_length: float = 1.0,
    asr_relative: bool = False,
    asr_schedule: str = "constant",
    asr_ramp_start: int | None = None,
    asr_ramp_epochs: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 20,
    resume: bool = False,
    plot: bool = True,
    progress: bool = True,
    max_time_s: float | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[BehlerParrinelloPotential, TrainingReport]:
    """Fit a Behler-Parrinello potential (committee of ``committee`` members) and save it.

    ``data``: extxyz path, list of labelled ``Atoms`` or a :class:`Dataset`. ``weights``: loss
    weights for ``energy`` (per atom, eV^2), ``forces`` ((eV/A)^2), ``stress`` (virial per atom,
    eV^2), ``hessian`` ((eV/A^2)^2) and ``asr`` (sum-rule penalty; for the direct-force head), merged
    into :data:`DEFAULT_WEIGHTS`. ``direct_forces``: add a direct-force head trained on the force
    labels (the energy head then learns from energies and stress); ``direct_head``: its form,
    ``"pair"`` (default; pair coefficients from both atoms' environments; the ``asr`` term then also
    penalises their antisymmetric part c_ij - c_ji on every edge, see :mod:`.losses`) or ``"atom"``
    (the original head, c from the centre atom's environment only). ``asr_batch``: structures per
    step for the Hessian-vector-product column-sum term of the penalty (0 turns that term off;
    default None: 0 for the pair head, whose antisymmetry term makes it unnecessary, 2 for the
    atom head). ``descriptor``: a symmetry-function config (default
    :func:`~.descriptors.preset` for the data's elements). ``zbl``: (inner, outer) radii (A) of the ZBL
    blend, or None. ``asr_length`` (A): the ASR penalty is |sum_i F_i|^2/n^2 + (L sum_i Phi_ij t)^2,
    i.e. the column-sum term is weighed as the spurious net force that a displacement of L would
    create, so both terms are in (eV/A)^2 like the force loss (default 1 A, the historical form;
    about the rattle amplitude, e.g. 0.1 A, keeps the column-sum term from swamping the force
    loss, which otherwise drives the head to the trivial F = 0). ``asr_relative``: divide the
    penalty by the head's own mean square force on the batch (times that of the training labels,
    to keep the units), so that shrinking all forces no longer lowers it (removes the trivial
    solution). ``asr_schedule``: ``"constant"`` (the ASR weight from the first epoch) or
    ``"ramp"`` (ASR weight 0 until epoch ``asr_ramp_start``, default ``epochs // 2``, so that the
    direct head first learns the forces, then raised linearly to ``weights["asr"]`` over
    ``asr_ramp_epochs``, default ``epochs // 4``, while the force weight stays fixed; the returned
    best-validation state is then chosen only among epochs at full ASR weight, with the validation
    net-force term included, so the unpenalised early epochs cannot win). ``out_path``: model
    file to write (with metadata: data hash, version, descriptor transform, settings, metrics).
    Returns the model (best validation epoch, float64,
    CPU) and a :class:`TrainingReport`.
    """
    t_start = time.perf_counter()
    w = dict(DEFAULT_WEIGHTS)
    if weights:
        unknown = set(weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown loss weights {sorted(unknown)}; known: {sorted(DEFAULT_WEIGHTS)}")
        w.update({k: float(v) for k, v in weights.items()})
    if direct_forces and not (weights and "asr" in weights):
        w["asr"] = 0.0
    if asr_batch is None:
        asr_batch = 0 if direct_head == "pair" else 2
    if not asr_length >= 0:
        raise ValueError(f"asr_length must be >= 0, got {asr_length}")
    if asr_schedule not in ("constant", "ramp"):
        raise ValueError(f"unknown asr_schedule {asr_schedule!r}; known: constant, ramp")
    ramp_start = int(epochs // 2 if asr_ramp_start is None else asr_ramp_start)
    ramp_len = max(1, int(epochs // 4 if asr_ramp_epochs is None else asr_ramp_epochs))
    if asr_schedule == "ramp" and not 0 <= ramp_start < epochs:
        raise ValueError(f"asr_ramp_start={ramp_start} must lie in [0, epochs={epochs})")

    def asr_weight(ep: int) -> float:
        if asr_schedule == "constant":
            return w["asr"]
        return w["asr"] * min(1.0, max(0.0, (ep - ramp_start + 1) / ramp_len))

    full_asr_epoch = ramp_start + ramp_len - 1 if asr_schedule == "ramp" else 0
    if schedule not in ("plateau", "cosine", "none"):
        raise ValueError(f"unknown schedule {schedule!r}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    full = _as_dataset(data)
    elements = full.elements
    e0_fit, e0_source, rest = _reference_energies(full, elements)
    if e0 is not None:
        e0_fit, e0_source = {s: float(e0[s]) for s in elements}, "given"
    ds = full.subset(rest)
    data_hash = full.hash()
    tr, va, te = split_indices(len(ds), split, seed)
    if descriptor is None:
        descriptor = preset(elements)
    cfg = descriptor if isinstance(descriptor, SymmetryFunctionConfig) else SymmetryFunctionConfig.from_dict(descriptor)
    missing = set(elements) - set(cfg.elements)
    if missing:
        raise ValueError(f"descriptor lacks elements {sorted(missing)} present in the data")
    zbl_kw = {"zbl_inner": zbl[0], "zbl_outer": zbl[1]} if zbl else {"zbl_inner": None, "zbl_outer": None}
    base = dict(descriptor=cfg.to_dict(), hidden=list(hidden), activation=activation, n_members=int(committee),
                e0=e0_fit, direct_forces=direct_forces, seed=seed, **zbl_kw)
    if direct_forces:
        base["direct_head"] = direct_head
    probe = BehlerParrinelloPotential(**base)
    pre_all = precompute(probe, ds, dtype=torch.float64)
    d_tr = pre_all.select(torch.as_tensor(tr))
    names = probe.descriptor.feature_names()
    # ---- diagnostics and pruning per species, on the training atoms
    keeps, pruning, cond_before, cond_after = [], [], [], []
    for s in range(probe.descriptor.n_species):
        gs = d_tr.g[d_tr.species == s]
        rep = collinearity_report(gs, names)
        cond_before.append(rep.condition_number)
        if prune:
            pr = prune_features(gs, names, method=prune, threshold=prune_threshold)
            keep = pr.keep
            pruning.extend({**dd, "element": cfg.elements[s]} for dd in pr.dropped)
        else:
            keep = [k for k in range(len(names)) if k not in rep.constant]
        keeps.append(keep)
        cond_after.append(collinearity_report(gs[:, keep], [names[k] for k in keep]).condition_number)
    n_per_atom = d_tr.n_atoms.to(torch.float64)
    scale = float(((d_tr.energy / n_per_atom) ** 2).mean().sqrt().clamp_min(1e-3))
    model = BehlerParrinelloPotential(
        **base, energy_scale=scale,
        transform={"n_features": len(names), "species_keep": keeps, "kind": transform},
    )
    model.transform.fit(d_tr.g, d_tr.species)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    model = model.to(dev, dtype)
    cast = lambda d: Precomputed(**{k: (v.to(dev, dtype) if v.is_floating_point() else v.to(dev))  # noqa: E731
                                    for k, v in d.__dict__.items()})
    d_tr = cast(d_tr)
    d_va = cast(pre_all.select(torch.as_tensor(va, dtype=torch.long)))
    d_te = cast(pre_all.select(torch.as_tensor(te, dtype=torch.long)))
    m = int(committee)
    n_tr = len(tr)
    if m > 1 and bootstrap:
        boot = torch.as_tensor(np.stack([rng.multinomial(n_tr, np.full(n_tr, 1.0 / n_tr)) for _ in range(m)]),
                               dtype=dtype, device=dev)
    else:
        boot = torch.ones(m, n_tr, dtype=dtype, device=dev)
    f_scale2 = float((d_tr.forces[d_tr.has_forces] ** 2).mean()) if bool(d_tr.has_forces.any()) else 1.0
    hess_idx = [k for k in tr if ds.hessians[k] is not None] if w["hessian"] > 0 else []
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    if schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(2, patience // 4), min_lr=min_lr)
    elif schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=min_lr)
    else:
        sched = None
    history: list[dict[str, float]] = []
    best_val, best_state, best_epoch, bad, start_epoch = float("inf"), None, 0, 0, 0
    settings = dict(committee=m, weights=w, hidden=list(hidden), activation=activation, transform=transform,
                    prune=prune, prune_threshold=prune_threshold, epochs=epochs, batch_size=batch_size, lr=lr,
                    weight_decay=weight_decay, schedule=schedule, patience=patience, seed=seed, dtype=str(dtype),
                    split=list(split), bootstrap=bool(bootstrap and m > 1), direct_forces=direct_forces,
                    direct_head=direct_head if direct_forces else None, asr_batch=asr_batch,
                    zbl=list(zbl) if zbl else None, hessian_rows=hessian_rows, asr_length=asr_length,
                    asr_relative=asr_relative, asr_schedule=asr_schedule,
                    asr_ramp_start=ramp_start if asr_schedule == "ramp" else None,
                    asr_ramp_epochs=ramp_len if asr_schedule == "ramp" else None)
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        ck = torch.load(checkpoint, map_location=dev, weights_only=True)
        if ck.get("data_hash") != data_hash:
            raise ValueError(f"{checkpoint}: checkpoint was made with different training data")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        if sched is not None and ck.get("sched"):
            sched.load_state_dict(ck["sched"])
        best_val, best_epoch, bad, start_epoch = ck["best_val"], ck["best_epoch"], ck["bad"], ck["epoch"] + 1
        best_state = ck["best_state"]
        history = json.loads(ck["history"])
        rng.bit_generator.state = json.loads(ck["rng_np"])
        torch.set_rng_state(ck["rng_torch"])
    use_direct = bool(direct_forces)
    epoch_iter = range(start_epoch, epochs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(epoch_iter, desc="fit", unit="epoch", initial=start_epoch, total=epochs)
        epoch_iter = bar
    stopped_early = False
    t_loop = time.perf_counter()
    n_seen = 0
    epoch = start_epoch - 1
    for epoch in epoch_iter:
        model.train()
        perm = torch.as_tensor(rng.permutation(n_tr), device=dev)
        sums: dict[str, float] = {}
        n_steps = 0
        w_asr = asr_weight(epoch)
        w_ep = {**w, "asr": w_asr}
        for b0 in range(0, n_tr, batch_size):  # minibatches of structures
            idx = perm[b0 : b0 + batch_size]
            d = d_tr.select(idx)
            pred = predict(model, d, create_graph=True, want_stress=w["stress"] > 0,
                           want_antisymmetry=use_direct and w_asr > 0)
            terms = loss_terms(model, d, pred, boot[:, idx], use_direct=use_direct)
            if hess_idx:
                pick = rng.choice(hess_idx, size=min(hessian_batch, len(hess_idx)), replace=False)
                terms["hessian"] = hessian_loss(model, [ds.frames[k] for k in pick], [ds.hessians[k] for k in pick],
                                                hessian_rows, rng, dtype=dtype, device=dev)
            if use_direct and w_asr > 0 and asr_batch > 0:
                pick = rng.choice(idx.cpu().numpy(), size=min(asr_batch, len(idx)), replace=False)
                sr = translation_sum_rule(model, [ds.frames[tr[k]] for k in pick], dtype=dtype, device=dev,
                                          create_graph=True)
                terms["asr"] = terms["asr"] + (asr_length * sr["phi_column_sum"]) ** 2
            if use_direct and w_asr > 0 and asr_relative and "asr" in terms:
                hf = d.has_forces
                own = (pred.direct_forces[:, hf] ** 2).mean((1, 2)).clamp_min(1e-12)  # (M,), not detached
                terms["asr"] = terms["asr"] * (f_scale2 / own)
            loss = sum(w_ep.get(k, 0.0) * v.mean() for k, v in terms.items() if w_ep.get(k, 0.0) > 0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach().mean())
            sums["total"] = sums.get("total", 0.0) + float(loss.detach())
            n_steps += 1
            n_seen += int(idx.numel())
        model.eval()
        rec: dict[str, float] = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "asr_weight": w_asr}
        rec.update({f"train_{k}": v / max(n_steps, 1) for k, v in sums.items()})
        d_val = d_va if d_va.n_structures else d_tr
        vp = predict(model, d_val, create_graph=False, want_stress=w["stress"] > 0,
                     want_antisymmetry=use_direct and asr_schedule == "ramp" and w_asr > 0)
        vt = loss_terms(model, d_val, vp, use_direct=use_direct)
        val_terms = [k for k in vt if k != "asr" or (asr_schedule == "ramp" and use_direct)]
        val = float(sum(w_ep.get(k, 0.0) * float(vt[k].detach().mean()) for k in val_terms if w_ep.get(k, 0.0) > 0))
        if asr_schedule == "ramp" and epoch == full_asr_epoch:  # select only among full-weight epochs
            best_val, bad = float("inf"), 0
            if sched is not None and schedule == "plateau":
                sched.best = float("inf")
                sched.num_bad_epochs = 0
        rec["val_loss"] = val
        rec.update({f"val_{k}": v for k, v in _rmse_metrics(model, d_val).items()})
        history.append(rec)
        if sched is not None:
            sched.step(val) if schedule == "plateau" else sched.step()
        if val < best_val * (1 - 1e-4):
            best_val, best_epoch, bad = val, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
        if bar is not None:
            bar.set_postfix(val_E=f"{rec.get('val_energy_rmse_meV_atom', float('nan')):.2f}",
                            val_F=f"{rec.get('val_forces_rmse_meV_A', float('nan')):.1f}")
        if checkpoint is not None and (epoch + 1) % checkpoint_every == 0:
            _save_checkpoint(checkpoint, model.state_dict(), opt, sched, epoch, best_val, best_epoch, bad, best_state,
                             history, rng, data_hash)
        if bad >= patience and epoch >= full_asr_epoch:
            stopped_early = True
            break
        if max_time_s is not None and time.perf_counter() - t_start > max_time_s:
            stopped_early = True
            break
    loop_time = time.perf_counter() - t_loop
    last_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if checkpoint is not None:  # the last epoch's state (not the best one), so resuming continues exactly
        _save_checkpoint(checkpoint, last_state, opt, sched, epoch, best_val, best_epoch, bad, best_state, history,
                         rng, data_hash)
    if best_state is not None:
        model.load_state_dict(best_state)
    model = model.to(torch.device("cpu"), torch.float64)
    model.eval()
    c64 = lambda d: Precomputed(**{k: (v.to("cpu", torch.float64) if v.is_floating_point() else v.to("cpu"))  # noqa: E731
                                   for k, v in d.__dict__.items()})
    metrics = {"train": _rmse_metrics(model, c64(d_tr)), "val": _rmse_metrics(model, c64(d_va)),
               "test": _rmse_metrics(model, c64(d_te))}
    curve = None
    if plot and history and out_path is not None:
        curve = plot_curves(history, Path(out_path).with_suffix(".curves.png"))
    report = TrainingReport(
        n_structures={"train": len(tr), "val": len(va), "test": len(te), "isolated_atoms": len(full) - len(ds)},
        data_hash=data_hash, e0_eV=e0_fit, e0_source=e0_source, descriptor=cfg.to_dict(), pruning=pruning,
        condition_number_before=cond_before, condition_number_after=cond_after, best_epoch=best_epoch,
        epochs_run=epoch + 1, stopped_early=stopped_early, train_time_s=loop_time,
        structures_per_s=n_seen / max(loop_time, 1e-9), metrics=metrics, history=history, settings=settings,
        curve_plot=curve,
    )
    model.metadata = {
        "trained_with": "mlip_props.fitting.fit",
        "data_hash": data_hash,
        "descriptor_transform": model.transform.get_config(),
        "settings": settings, "metrics": metrics, "e0_source": e0_source,
        "n_structures": report.n_structures, "best_epoch": best_epoch,
        **(metadata or {}),
    }
    if out_path is not None:
        save_potential(model, out_path, metadata=json.loads(json.dumps(model.metadata, default=str)))
    return model, report


def _save_checkpoint(path, state, opt, sched, epoch, best_val, best_epoch, bad, best_state, history, rng, data_hash):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": {k: v.detach().cpu() for k, v in state.items()},
        "opt": opt.state_dict(), "sched": sched.state_dict() if sched is not None else None,
        "epoch": int(epoch), "best_val": float(best_val), "best_epoch": int(best_epoch), "bad": int(bad),
        "best_state": best_state, "history": json.dumps(history), "rng_np": json.dumps(rng.bit_generator.state),
        "rng_torch": torch.get_rng_state(), "data_hash": data_hash,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
