"""Loss terms for training, and the precomputed descriptor data that makes training fast.

Training structures do not move, so their descriptors G (N, F) and the descriptor Jacobian with
respect to each edge vector, J[e] = dG_{centre(e)}/dr_e (E, 3, F), are computed once by autograd
(every edge vector enters only its centre atom's descriptors). Each step then needs only the
networks: with dE/dG from one backward pass, dE/dr_e = sum_f dE/dG_{i f} J[e, f], forces
F_i = sum_{e: i -> *} dE/dr_e - sum_{e: * -> i} dE/dr_e and the virial
W = sum_e r_e (x) dE/dr_e, stress = sym(W) / V (as backend.evaluate defines them). This is the
approach of n2p2 and aenet (Behler, Int. J. Quantum Chem. 115, 1032 (2015)); the ZBL core and
isolated-atom energies have no trainable parameters and are subtracted from the labels in float64.

Terms (each logged separately):

* energy: mean over structures of ((E_pred - E_ref) / n_atoms)^2, eV^2/atom^2;
* forces: mean over atoms of |F_pred - F_ref|^2 / 3, (eV/A)^2;
* stress: mean over periodic structures of the virial per atom, ((sigma_pred - sigma_ref) V / n)^2
  averaged over the 6 Voigt components, eV^2/atom^2;
* hessian: mean square error of a few random Hessian columns per structure, (eV/A^2)^2, by double
  backward through the full model (Hessian-vector products with unit vectors);
* asr (direct-force head): net force per atom |sum_i F_i|^2 / n^2, plus, for the pair head
  (``direct_head="pair"``), the mean over each structure's edges of the squared antisymmetric part
  (c_ij - c_ji)^2 of its pair coefficients, (eV/A)^2, averaged over structures (every structure
  counts once whatever its size); and, optionally (in :func:`~.training.fit`), through
  Hessian-vector products with uniform translations t, |sum_i Phi_ij t|^2 (the column sum of the
  force-constant matrix, which a conservative head gives as zero to round-off). The antisymmetric
  part is the local origin of both violations: sum_i F_i = 1/2 sum_(i,j) (c_ij - c_ji) r_ij/r_ij,
  and sum_i Phi_ij t is its derivative, so penalising it on every edge drives the net force and the
  column sums down together, where the net force alone (a sum of many signed terms) constrains it
  only weakly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..backend import Batch, build_neighbor_graph, edge_vectors, module_device
from ..backend.evaluate import atomic_graph, evaluate_batch
from .data import Dataset
from .model import BehlerParrinelloPotential, edge_forces


@dataclass
class Precomputed:
    """Descriptors, their edge Jacobians and reference labels (network part) of a dataset."""

    species: torch.Tensor  # (N,)
    structure_index: torch.Tensor  # (N,)
    n_atoms: torch.Tensor  # (B,)
    g: torch.Tensor  # (N, F)
    jac: torch.Tensor  # (E, 3, F): dG_{centre(e), f} / d r_e
    edge_index: torch.Tensor  # (2, E)
    edge_vec: torch.Tensor  # (E, 3)
    edge_structure: torch.Tensor  # (E,)
    volume: torch.Tensor  # (B,)
    energy: torch.Tensor  # (B,) network target, eV
    forces: torch.Tensor  # (N, 3) network target, eV/A (0 where absent)
    has_forces: torch.Tensor  # (N,) bool
    stress: torch.Tensor  # (B, 6) network target eV/A^3 (0 where absent)
    has_stress: torch.Tensor  # (B,) bool

    @property
    def n_structures(self) -> int:
        return int(self.n_atoms.shape[0])

    def select(self, idx: torch.Tensor) -> "Precomputed":
        """Structures ``idx`` (a tensor), re-indexed compactly (vectorised, no loop)."""
        dev = self.g.device
        idx = idx.to(dev)
        b = self.n_structures
        smap = torch.full((b,), -1, dtype=torch.long, device=dev)
        smap[idx] = torch.arange(idx.numel(), device=dev)
        amask = smap[self.structure_index] >= 0
        atoms = torch.nonzero(amask).squeeze(1)
        amap = torch.cumsum(amask.long(), 0) - 1
        emask = smap[self.edge_structure] >= 0
        edges = torch.nonzero(emask).squeeze(1)
        return Precomputed(
            species=self.species[atoms], structure_index=smap[self.structure_index[atoms]],
            n_atoms=self.n_atoms[idx], g=self.g[atoms], jac=self.jac[edges],
            edge_index=amap[self.edge_index[:, edges]], edge_vec=self.edge_vec[edges],
            edge_structure=smap[self.edge_structure[edges]], volume=self.volume[idx],
            energy=self.energy[idx], forces=self.forces[atoms], has_forces=self.has_forces[atoms],
            stress=self.stress[idx], has_stress=self.has_stress[idx],
        )


def _descriptor_jacobian(model: BehlerParrinelloPotential, batch: Batch, graph) -> tuple[torch.Tensor, torch.Tensor]:
    vec = edge_vectors(batch, graph).detach().requires_grad_(True)
    g = model.descriptor(batch.numbers, graph.edge_index, vec)
    # one backward pass per feature (a loop over features, not data): measured faster on the CPU
    # than a vmapped (is_grads_batched) pass over all features at once
    jac = torch.stack([torch.autograd.grad(g[:, k].sum(), vec, retain_graph=k < g.shape[1] - 1)[0]
                       for k in range(g.shape[1])])
    return g.detach(), jac.permute(1, 2, 0).contiguous()  # (E, 3, F)


def precompute(
    model: BehlerParrinelloPotential,
    data: Dataset,
    dtype: torch.dtype = torch.float64,
    device: Any = None,
    max_edges_per_chunk: int = 20000,
) -> Precomputed:
    """Descriptors, edge Jacobians and network targets (labels minus E0 and ZBL) of ``data``.

    Computed in float64 in chunks of structures bounded by ``max_edges_per_chunk`` (memory), then
    cast to ``dtype``. The descriptor's transform is not applied here (it is part of the model).
    """
    from ..backend.neighbors import assemble_graph, neighbor_lists

    cpu64 = dict(dtype=torch.float64, device="cpu")
    model64 = model.to(torch.float64).to("cpu")
    frames = data.frames
    lists = neighbor_lists([a.positions for a in frames], [a.cell.array for a in frames], [a.pbc for a in frames],
                           model.cutoff)  # names a training frame with coincident atoms
    costs = [len(nl[0]) * max(1, model.descriptor.n_features) // 8 + len(a) for nl, a in zip(lists, data.frames)]
    from ..backend.evaluate import plan_chunks

    chunks = plan_chunks(costs, max(max_edges_per_chunk, max(costs)))
    parts = []
    for chunk in chunks:  # memory-bounded chunks of structures, each one batched computation
        batch = Batch.from_structures([data.frames[k] for k in chunk], **cpu64)
        graph = assemble_graph(batch, [lists[k] for k in chunk], model.cutoff)
        g, jac = _descriptor_jacobian(model64, batch, graph)
        out = evaluate_batch(model64.zbl, batch, ("energy", "forces", "stress"), graph=graph) if model64.zbl is not None else None
        parts.append((batch, graph, g, jac, out))
    n_atoms = torch.as_tensor(data.n_atoms)
    species = torch.cat([model64.species(p[0].numbers) for p in parts])
    sidx = torch.repeat_interleave(torch.arange(len(data)), n_atoms)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(n_atoms, 0)])
    ei, ev, es, gs, js = [], [], [], [], []
    zbl_e, zbl_f, zbl_s = [], [], []
    s0 = 0
    for batch, graph, g, jac, out in parts:
        a0 = int(ptr[s0])
        ei.append(graph.edge_index + a0)
        ev.append(edge_vectors(batch, graph).detach())
        es.append(graph.edge_structure + s0)
        gs.append(g)
        js.append(jac)
        if out is not None:
            zbl_e.append(out.energies.detach())
            zbl_f.append(out.forces.detach())
            zbl_s.append(torch.nan_to_num(out.stress.detach()))
        s0 += batch.n_structures
    e0 = model64.e0[species]
    e_ref = torch.as_tensor(data.energies, **cpu64) - torch.zeros(len(data), **cpu64).index_add(0, sidx, e0)
    has_f = torch.tensor([f is not None for f in data.forces]).repeat_interleave(n_atoms)
    f_ref = torch.cat([torch.as_tensor(f if f is not None else np.zeros((len(a), 3)), **cpu64)
                       for f, a in zip(data.forces, data.frames)])
    s_np = np.asarray(data.stress, dtype=float)
    has_s = torch.as_tensor(np.isfinite(s_np).all(axis=1))
    s_ref = torch.as_tensor(np.nan_to_num(s_np), **cpu64)
    if zbl_e:
        e_ref = e_ref - torch.cat(zbl_e)
        f_ref = f_ref - torch.cat(zbl_f)
        s_ref = s_ref - torch.cat(zbl_s)
    vol = torch.as_tensor([abs(np.linalg.det(a.get_cell())) if a.pbc.all() else 1.0 for a in data.frames], **cpu64)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    t = lambda x: x.to(dev, dtype)  # noqa: E731
    return Precomputed(
        species=species.to(dev), structure_index=sidx.to(dev), n_atoms=n_atoms.to(dev), g=t(torch.cat(gs)),
        jac=t(torch.cat(js)), edge_index=torch.cat(ei, 1).to(dev), edge_vec=t(torch.cat(ev)),
        edge_structure=torch.cat(es).to(dev), volume=t(vol), energy=t(e_ref), forces=t(f_ref),
        has_forces=has_f.to(dev), stress=t(s_ref), has_stress=has_s.to(dev),
    )


@dataclass
class Prediction:
    """Network-part predictions (no E0/ZBL) of a :class:`Precomputed` set, member axis first."""

    energy: torch.Tensor  # (M, B)
    forces: torch.Tensor  # (M, N, 3)
    stress: torch.Tensor  # (M, B, 6)
    direct_forces: torch.Tensor | None = None  # (M, N, 3)
    direct_antisymmetry: torch.Tensor | None = None  # (M, E): c_ij - c_ji of the pair head


def predict(model: BehlerParrinelloPotential, d: Precomputed, create_graph: bool = True,
            want_stress: bool = True, want_antisymmetry: bool = False) -> Prediction:
    """Energies, conservative forces and stress of the network part from precomputed descriptors
    (and the direct head's forces; with ``want_antisymmetry`` the pair head's c_ij - c_ji too)."""
    m = model.n_members
    g = d.g.unsqueeze(0).expand(m, -1, -1).clone().requires_grad_(True)
    e_atom = model.network_energies(g, d.species)  # (M, N)
    energy = torch.zeros(m, d.n_structures, dtype=g.dtype, device=g.device).index_add(1, d.structure_index, e_atom)
    de_dg = torch.autograd.grad(e_atom.sum(), g, create_graph=create_graph)[0]  # (M, N, F)
    centre = d.edge_index[0]
    de_dr = (d.jac[None] * de_dg[:, centre][:, :, None, :]).sum(-1)  # (M, E, 3); measured faster than einsum
    forces = edge_forces(de_dr, d.edge_index, d.g.shape[0])
    stress = torch.zeros(m, d.n_structures, 6, dtype=g.dtype, device=g.device)
    if want_stress:
        vir = d.edge_vec[None, :, :, None] * de_dr[:, :, None, :]  # (M, E, 3, 3)
        w = torch.zeros(m, d.n_structures, 3, 3, dtype=g.dtype, device=g.device).index_add(1, d.edge_structure, vir)
        w = 0.5 * (w + w.transpose(-1, -2))
        voigt = torch.stack([w[..., 0, 0], w[..., 1, 1], w[..., 2, 2], w[..., 1, 2], w[..., 0, 2], w[..., 0, 1]], -1)
        stress = voigt / d.volume[None, :, None]
    direct, anti = None, None
    if model.direct:
        if want_antisymmetry and model.direct_kind == "pair":
            direct, anti = model.direct_head(d.g, d.species, d.edge_index, d.edge_vec, return_antisymmetry=True)
        else:
            direct = model.direct_head(d.g, d.species, d.edge_index, d.edge_vec)
    return Prediction(energy, forces, stress, direct, anti)


def _wmean(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted mean over the last axis, per member: x (M, K), w (M, K) -> (M,)."""
    return (x * w).sum(-1) / w.sum(-1).clamp_min(1e-12)


def loss_terms(model: BehlerParrinelloPotential, d: Precomputed, pred: Prediction,
               weights: torch.Tensor | None = None, use_direct: bool = False) -> dict[str, torch.Tensor]:
    """Per-term losses, each (M,) (one per member). ``weights`` (M, B) are bootstrap multiplicities."""
    m = pred.energy.shape[0]
    if weights is None:
        weights = torch.ones(m, d.n_structures, dtype=d.g.dtype, device=d.g.device)
    n = d.n_atoms.to(d.g.dtype)
    out = {"energy": _wmean(((pred.energy - d.energy) / n) ** 2, weights)}
    f = pred.direct_forces if (use_direct and pred.direct_forces is not None) else pred.forces
    wa = weights[:, d.structure_index] * d.has_forces.to(d.g.dtype)
    out["forces"] = _wmean(((f - d.forces) ** 2).mean(-1), wa)
    ws = weights * d.has_stress.to(d.g.dtype)
    vir = (pred.stress - d.stress) * (d.volume / n)[None, :, None]
    out["stress"] = _wmean((vir**2).mean(-1), ws)
    if pred.direct_forces is not None:
        net = torch.zeros(m, d.n_structures, 3, dtype=d.g.dtype, device=d.g.device).index_add(
            1, d.structure_index, pred.direct_forces)
        out["asr"] = _wmean((net**2).sum(-1) / n**2, weights)
        if pred.direct_antisymmetry is not None:
            out["asr"] = out["asr"] + _wmean(antisymmetry_per_structure(d, pred.direct_antisymmetry), weights)
    return out


def antisymmetry_per_structure(d: Precomputed, anti: torch.Tensor) -> torch.Tensor:
    """Mean over each structure's edges of (c_ij - c_ji)^2, (M, B), (eV/A)^2 (0 without edges)."""
    m = anti.shape[0]
    z = torch.zeros(m, d.n_structures, dtype=anti.dtype, device=anti.device)
    cnt = torch.zeros(d.n_structures, dtype=anti.dtype, device=anti.device).index_add(
        0, d.edge_structure, torch.ones_like(anti[0]))
    return z.index_add(1, d.edge_structure, anti**2) / cnt.clamp_min(1.0)


# ---------------------------------------------------------------------------------------------
# terms through the full model (double backward): Hessian columns and translation HVPs
# ---------------------------------------------------------------------------------------------
def _member_grads(energies: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """dE_m/dx for every member, (M, N, 3), keeping the graph."""
    if energies.dim() == 1:
        return torch.autograd.grad(energies.sum(), pos, create_graph=True)[0][None]
    m = energies.shape[1]
    return torch.stack([torch.autograd.grad(energies[:, k].sum(), pos, create_graph=True, retain_graph=True)[0]
                        for k in range(m)])


def hessian_loss(model: BehlerParrinelloPotential, frames: list, hessians: list[np.ndarray], n_rows: int,
                 rng: np.random.Generator, dtype: torch.dtype = torch.float64, device: Any = None) -> torch.Tensor:
    """Mean square error (eV/A^2)^2 of ``n_rows`` random Hessian columns per structure, per member (M,).

    Column k of the model Hessian of every structure at once: the Hessian-vector product of the
    gradient with the unit vector of degree of freedom k (double backward through the model).
    """
    batch = Batch.from_structures(frames, dtype=dtype, device=device or module_device(model))
    graph = build_neighbor_graph(batch, model.cutoff)
    pos = batch.positions.detach().requires_grad_(True)
    per_atom = model(atomic_graph(batch.with_positions(pos), graph))
    pa = per_atom if per_atom.dim() == 2 else per_atom[:, None]
    e = torch.zeros(batch.n_structures, pa.shape[1], dtype=pa.dtype, device=pa.device).index_add(
        0, batch.structure_index, pa)
    grads = _member_grads(e, pos)  # (M, N, 3)
    ptr = batch.ptr.tolist()
    n_at = batch.n_atoms.tolist()
    rows = [rng.choice(3 * n, size=min(n_rows, 3 * n), replace=False) for n in n_at]
    r = max(len(x) for x in rows)
    vecs = torch.zeros(r, batch.n_total * 3, dtype=pa.dtype, device=pa.device)
    ref = torch.zeros(r, batch.n_total * 3, dtype=pa.dtype, device=pa.device)
    mask = torch.zeros(r, batch.n_total * 3, dtype=pa.dtype, device=pa.device)
    for b, ks in enumerate(rows):  # index bookkeeping per structure (labels differ in size)
        h = torch.as_tensor(hessians[b], dtype=pa.dtype, device=pa.device)
        for q, k in enumerate(ks):
            vecs[q, 3 * ptr[b] + int(k)] = 1.0
            ref[q, 3 * ptr[b] : 3 * ptr[b + 1]] = h[:, int(k)]
            mask[q, 3 * ptr[b] : 3 * ptr[b + 1]] = 1.0
    vecs = vecs.reshape(r, -1, 3)
    losses = []
    for mm in range(grads.shape[0]):  # members
        hv = torch.autograd.grad(grads[mm], pos, grad_outputs=vecs, is_grads_batched=True, create_graph=True,
                                 retain_graph=True)[0].reshape(r, -1)
        losses.append((((hv - ref) ** 2) * mask).sum() / mask.sum())  # noqa: PERF401
    return torch.stack(losses)


def translation_sum_rule(model: BehlerParrinelloPotential, frames: list, dtype: torch.dtype = torch.float64,
                         device: Any = None, head: str = "direct", create_graph: bool = False) -> dict[str, torch.Tensor]:
    """Sum-rule violations of a force head, per member (M,).

    ``net_force``: RMS over structures of |sum_i F_i| / n (eV/A). ``phi_column_sum``: RMS over atoms j
    and directions of sum_i Phi_ij t, Phi_ij = -dF_i/dx_j, for uniform translations t (eV/A^2),
    from vector-Jacobian products of the net force. Both vanish for a conservative,
    translation-invariant head (``head="conservative"``).
    """
    batch = Batch.from_structures(frames, dtype=dtype, device=device)
    model = model.to(batch.device, dtype)
    graph = build_neighbor_graph(batch, model.cutoff)
    pos = batch.positions.detach().requires_grad_(True)
    ag = atomic_graph(batch.with_positions(pos), graph)
    if head == "direct":
        f = model.direct_forces(ag)  # (M, N, 3)
    else:
        pa = model(ag)
        pa = pa if pa.dim() == 2 else pa[:, None]
        e = torch.zeros(batch.n_structures, pa.shape[1], dtype=pa.dtype, device=pa.device).index_add(
            0, batch.structure_index, pa)
        f = -_member_grads(e, pos)
    m = f.shape[0]
    net = torch.zeros(m, batch.n_structures, 3, dtype=f.dtype, device=f.device).index_add(1, batch.structure_index, f)
    n = batch.n_atoms.to(f.dtype)
    net_rms = ((net**2).sum(-1) / n**2).mean(-1).sqrt()
    cols = []
    for mm in range(m):  # members x 3 directions of translation
        for t in range(3):
            g = torch.autograd.grad(net[mm, :, t].sum(), pos, create_graph=create_graph, retain_graph=True)[0]
            cols.append((g**2).mean())
    phi = torch.stack(cols).reshape(m, 3).mean(-1).sqrt()
    if not create_graph:
        net_rms, phi = net_rms.detach(), phi.detach()
    return {"net_force": net_rms, "phi_column_sum": phi}
