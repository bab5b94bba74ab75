"""Behler-Parrinello neural-network potentials with a ZBL hard core, as backend potentials.

Per-atom energy (eV) of atom i of element s::

    E_i = E0_s + scale * (NN_s(x_i) - NN_s(x0_s)) + E_ZBL,i

with x_i the transformed symmetry functions of atom i (:mod:`.descriptors`, :mod:`.transforms`),
x0_s the transform of an all-zero descriptor (an isolated atom), so an isolated atom has exactly
its reference energy E0_s and two atoms pulled apart dissociate to E0_a + E0_b. E_ZBL is the
Ziegler-Biersack-Littmark screened nuclear repulsion (:class:`mlip_props.potentials.ZBL`) switched
off smoothly (C2 quintic) between ``zbl_inner`` and ``zbl_outer``, so the energy rises steeply as
any two atoms approach whatever the training data held (J. Behler and M. Parrinello, Phys. Rev.
Lett. 98, 146401 (2007); ZBL: Ziegler, Biersack, Littmark, *The Stopping and Range of Ions in
Solids* (1985)).

A committee of M members (independent initialisations, bootstrap resamples) lives in one module
whose weights carry a member axis: all members are evaluated together in one pass and
``forward`` returns per-atom energies of shape (N, M) (``n_members = M``), which the backend's
``evaluate`` turns into energies (B, M), forces (M, N, 3) and stress (B, M, 6).

Optional direct-force head (``direct_forces=True``): F_i = sum_j c_ij r_ij / |r_ij|, predicted
without differentiating the energy (faster; as in recent "non-conservative" models). It is
translation invariant but does not conserve momentum: pairing each edge with its reverse,
sum_i F_i = 1/2 sum_(i,j) (c_ij - c_ji) r_ij/|r_ij| != 0 unless c_ij = c_ji, which nothing in
the head imposes. Two parametrisations (``direct_head``):

* ``"pair"`` (default for new models): c_ij = sum_k B_k(r_ij) rho_k(a_i + b_j), with
  B_k = scale * Gaussian_k(r) fc(r) a radial basis, e_i = [x_i (zero-padded), onehot(s_i)] the
  atom's input, b = phi(e) its "sender" embedding and a = phi(e) + delta(e) its "receiver"
  embedding (phi, delta, rho small per-member MLPs, as in message-passing models with separate
  sender and receiver weights). Both atoms' environments enter. c_ij != c_ji wherever
  delta != 0, so the head breaks the sum rule; but at delta = 0 the head is the deep-sets
  symmetric form rho(phi(e_i) + phi(e_j)), which includes the EAM/EMT form
  c_ij = phi'(r) + (F'(rho_i) + F'(rho_j)) rho'(r), so the acoustic-sum-rule penalty on the
  antisymmetric part c_ij - c_ji (:func:`.losses.loss_terms`) can drive the violation towards
  zero without costing accuracy. Nothing but that penalty makes delta vanish.
* ``"atom"`` (the original head, kept to read old files): c_ij = NN_{s_i}([x_i, rbf(r_ij),
  onehot(s_j)]), blind to atom j's environment: it conserves momentum only where c stops depending
  on x_i (a pair force), so the penalty trades accuracy for sum-rule violation.

The energy head's conservative forces (backend autograd) are always available and satisfy the
sum rule to round-off.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Sequence

import torch
from ase.data import atomic_numbers

from ..backend.potential import AtomicGraph, Potential
from ..potentials import ZBL, register_model_class
from ..potentials.committee import CommitteeMean as _CoreCommitteeMean
from .descriptors import SymmetryFunctionConfig, SymmetryFunctions, cutoff_function
from .transforms import FeatureTransform

ACTIVATIONS = {"silu": torch.nn.functional.silu, "tanh": torch.tanh, "softplus": torch.nn.functional.softplus}


class EnsembleMLP(torch.nn.Module):
    """M independent MLPs evaluated together: input (M, n, d_in) -> output (M, n) (or (M, n, d_out)
    for ``d_out > 1``).

    Weights (M, d_in, d_out) per layer; member m is initialised from ``seed + m`` (LeCun-normal
    hidden layers, small output layer), so members differ from the start.
    """

    def __init__(self, n_members: int, d_in: int, hidden: Sequence[int], activation: str = "silu", seed: int = 0,
                 d_out: int = 1):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)} (smooth only)")
        self.activation = activation
        self.d_out = int(d_out)
        sizes = [int(d_in)] + [int(h) for h in hidden] + [self.d_out]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for k in range(len(sizes) - 1):
            w = torch.empty(n_members, sizes[k], sizes[k + 1], dtype=torch.float64)
            for m in range(n_members):  # per-member seeds (members, not data)
                g = torch.Generator().manual_seed(int(seed) * 1000 + m * 17 + k)
                std = (0.1 if k == len(sizes) - 2 else 1.0) / math.sqrt(max(sizes[k], 1))
                w[m] = torch.randn(sizes[k], sizes[k + 1], generator=g, dtype=torch.float64) * std
            self.weights.append(torch.nn.Parameter(w))
            self.biases.append(torch.nn.Parameter(torch.zeros(n_members, 1, sizes[k + 1], dtype=torch.float64)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = ACTIVATIONS[self.activation]
        h = x
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.einsum("mni,mio->mno", h, w) + b
            if k < last:
                h = act(h)
        return h.squeeze(-1) if self.d_out == 1 else h


@register_model_class
class BehlerParrinelloPotential(Potential):
    """Behler-Parrinello network potential (+ isolated-atom energies + ZBL core); see module docstring.

    Build with :func:`mlip_props.fitting.fit` (which fits the transform and weights) or directly
    from a :class:`SymmetryFunctionConfig`. Energies in eV, distances in Angstrom.
    """

    edge_only = True  # symmetry functions and the ZBL core see only the edge vectors

    def __init__(
        self,
        descriptor: dict[str, Any] | SymmetryFunctionConfig,
        hidden: Sequence[int] = (32, 32),
        activation: str = "silu",
        n_members: int = 1,
        e0: dict[str, float] | None = None,
        energy_scale: float = 1.0,
        transform: dict[str, Any] | None = None,
        zbl_inner: float | None = 1.0,
        zbl_outer: float | None = 2.0,
        direct_forces: bool = False,
        n_rbf: int = 8,
        seed: int = 0,
        direct_head: str = "pair",
    ):
        cfg = descriptor if isinstance(descriptor, SymmetryFunctionConfig) else SymmetryFunctionConfig.from_dict(descriptor)
        zs = {atomic_numbers[s] for s in cfg.elements}
        super().__init__(cfg.cutoff, zs)
        self.descriptor = SymmetryFunctions(cfg)
        nf = self.descriptor.n_features
        ns = self.descriptor.n_species
        if transform is None:
            transform = {"n_features": nf, "species_keep": [list(range(nf))] * ns, "kind": "standard"}
        self.transform = FeatureTransform(**transform)
        self.hidden = [int(h) for h in hidden]
        self.activation = activation
        self.n_members = int(n_members)
        if self.n_members < 1:
            raise ValueError("n_members must be >= 1")
        self.seed = int(seed)
        self.energy_scale = float(energy_scale)
        self.nets = torch.nn.ModuleList(
            EnsembleMLP(self.n_members, self.transform.n_out(s), self.hidden, activation, seed=self.seed + 101 * s)
            for s in range(ns)
        )
        e0 = e0 or {}
        self.register_buffer("e0", torch.tensor([float(e0.get(s, 0.0)) for s in cfg.elements], dtype=torch.float64))
        self.zbl_inner = None if zbl_inner is None else float(zbl_inner)
        self.zbl_outer = None if zbl_outer is None else float(zbl_outer)
        self.zbl = None
        if zbl_outer is not None:
            if not 0 <= (zbl_inner or 0.0) < zbl_outer:
                raise ValueError("need 0 <= zbl_inner < zbl_outer")
            self.zbl = ZBL(cutoff=self.zbl_outer, switch_width=self.zbl_outer - (self.zbl_inner or 0.0), elements=zs)
        self.direct = bool(direct_forces)
        self.n_rbf = int(n_rbf)
        if direct_head not in ("pair", "atom"):
            raise ValueError(f"unknown direct_head {direct_head!r}; choose 'pair' or 'atom'")
        self.direct_kind = direct_head
        if self.direct and direct_head == "atom":
            self.force_nets = torch.nn.ModuleList(
                EnsembleMLP(self.n_members, self.transform.n_out(s) + self.n_rbf + ns, self.hidden, activation,
                            seed=self.seed + 7919 + 101 * s)
                for s in range(ns)
            )
        elif self.direct:
            d_emb = max(self.transform.n_out(s) for s in range(ns)) + ns
            width = self.hidden[-1] if self.hidden else 16
            inner = self.hidden[:1]
            mk = lambda d_in, d_out, k: EnsembleMLP(self.n_members, d_in, inner, activation,  # noqa: E731
                                                    seed=self.seed + 7919 + 101 * k, d_out=d_out)
            self.pair_embed = mk(d_emb, width, 0)  # phi: atom -> R^width
            self.pair_receiver = mk(d_emb, width, 1)  # delta: the receiving atom's extra embedding
            self.pair_readout = mk(width, self.n_rbf, 2)  # rho: R^width -> radial coefficients
        nang = self.descriptor.n_angular
        self.bytes_per_edge = 8 * (12 * self.descriptor.n_radial + 40 * nang + 8 * self.n_members * max(self.hidden))
        self.metadata: dict[str, Any] = {}

    # ------------------------------------------------------------------ config / files
    @property
    def elements_symbols(self) -> list[str]:
        return list(self.descriptor.config.elements)

    def get_config(self) -> dict[str, Any]:
        return {
            "descriptor": self.descriptor.config.to_dict(),
            "hidden": self.hidden,
            "activation": self.activation,
            "n_members": self.n_members,
            "e0": {s: float(v) for s, v in zip(self.elements_symbols, self.e0.tolist())},
            "energy_scale": self.energy_scale,
            "transform": self.transform.get_config(),
            "zbl_inner": self.zbl_inner,
            "zbl_outer": self.zbl_outer,
            "direct_forces": self.direct,
            "n_rbf": self.n_rbf,
            "seed": self.seed,
            "direct_head": self.direct_kind,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "BehlerParrinelloPotential":
        config = dict(config)
        config.setdefault("direct_head", "atom")  # files written before the pair head existed
        return cls(**config)

    def member(self, m: int) -> "BehlerParrinelloPotential":
        """A single-member potential holding member ``m``'s weights (e.g. for Hessians)."""
        cfg = dict(self.get_config(), n_members=1)
        one = type(self)(**cfg).to(self.e0.device)
        sd = self.state_dict()
        one_sd = {}
        for k, v in sd.items():
            is_member = (".weights." in k or ".biases." in k) and v.dim() == 3 and v.shape[0] == self.n_members
            one_sd[k] = v[m : m + 1].clone() if is_member else v.clone()
        one.load_state_dict(one_sd)
        one.to(next(self.parameters()).dtype)
        return one

    # ------------------------------------------------------------------ energies
    def species(self, numbers: torch.Tensor) -> torch.Tensor:
        return self.descriptor.species(numbers)

    def network_energies(self, g: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Network part scale * (NN(x) - NN(x0)) of per-atom energies, (M, N), from descriptors
        ``g`` of shape (N, F) or (M, N, F) (one copy per member, to take per-member gradients)."""
        if g.dim() == 2:
            g = g.unsqueeze(0).expand(self.n_members, -1, -1)
        out = torch.zeros(g.shape[0], g.shape[1], dtype=g.dtype, device=g.device)
        for s, net in enumerate(self.nets):  # loop over elements, not atoms
            idx = torch.nonzero(species == s).squeeze(1)
            if idx.numel() == 0:
                continue
            x = self.transform.apply(g[:, idx], s)
            x0 = self.transform.apply(torch.zeros(g.shape[0], 1, g.shape[2], dtype=g.dtype, device=g.device), s)
            e = net(x) - net(x0)
            out = out.index_copy(1, idx, self.energy_scale * e)
        return out

    def reference_energies(self, species: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.e0.to(species.device)[species].to(dtype)

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        g = graph.within(self.cutoff)
        sp = self.species(g.numbers)
        desc = self.descriptor(g.numbers, g.edge_index, g.edge_vectors)
        e = self.network_energies(desc, sp).transpose(0, 1)  # (N, M)
        extra = self.reference_energies(sp, e.dtype)
        if self.zbl is not None:
            extra = extra + self.zbl(g.within(self.zbl.cutoff))
        e = e + extra[:, None]
        return e[:, 0] if self.n_members == 1 else e

    # ------------------------------------------------------------------ direct-force head
    def rbf(self, r: torch.Tensor) -> torch.Tensor:
        """Gaussian radial basis (E, n_rbf) times the C2 cutoff, centres evenly on [0, cutoff]."""
        centres = torch.linspace(0.0, self.cutoff, self.n_rbf, dtype=r.dtype, device=r.device)
        width = self.cutoff / max(self.n_rbf - 1, 1)
        fc = cutoff_function(r, self.cutoff, "poly")
        return torch.exp(-0.5 * ((r[:, None] - centres) / width) ** 2) * fc[:, None]

    def direct_head(
        self, desc: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor, edge_vectors: torch.Tensor,
        return_antisymmetry: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Direct-head forces (M, N, 3), eV/A, from descriptors and edges (ZBL not included).

        With ``return_antisymmetry=True`` (pair head only) also the antisymmetric part
        c_ij - c_ji (M, E) of the pair coefficients of every edge (eV/A), the quantity whose
        vanishing makes the head conserve momentum (sum_i F_i = 0) and obey the acoustic sum rule.
        """
        if not self.direct:
            raise ValueError("this model has no direct-force head (fit with direct_forces=True)")
        if self.direct_kind == "pair":
            return self._pair_head(desc, species, edge_index, edge_vectors, return_antisymmetry)
        if return_antisymmetry:
            raise ValueError("the antisymmetric part is defined for direct_head='pair' only")
        r = edge_vectors.norm(dim=-1)
        keep = r < self.cutoff
        ei, vec, r = edge_index[:, keep], edge_vectors[keep], r[keep]
        i, j = ei
        n = desc.shape[0]
        ns = self.descriptor.n_species
        onehot = torch.nn.functional.one_hot(species[j], ns).to(desc.dtype)
        basis = self.rbf(r)
        unit = vec / r[:, None]
        forces = torch.zeros(self.n_members, n, 3, dtype=desc.dtype, device=desc.device)
        for s, net in enumerate(self.force_nets):  # loop over elements
            sel = torch.nonzero(species[i] == s).squeeze(1)
            if sel.numel() == 0:
                continue
            x = self.transform.apply(desc[i[sel]], s)
            inp = torch.cat([x, basis[sel], onehot[sel]], dim=1)
            c = net(inp.unsqueeze(0).expand(self.n_members, -1, -1)) * basis[sel, :1].new_tensor(self.energy_scale)
            forces = forces.index_add(1, i[sel], c[..., None] * unit[sel])
        return forces

    def atom_embedding(self, desc: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Per-atom input of the pair head, (N, D + n_species): transformed descriptors zero-padded
        to the widest element's D, and the one-hot element."""
        ns = self.descriptor.n_species
        d = max(self.transform.n_out(s) for s in range(ns))
        x = torch.zeros(desc.shape[0], d, dtype=desc.dtype, device=desc.device)
        for s in range(ns):  # loop over elements
            idx = torch.nonzero(species == s).squeeze(1)
            if idx.numel():
                xs = self.transform.apply(desc[idx], s)
                x = x.index_copy(0, idx, torch.nn.functional.pad(xs, (0, d - xs.shape[1])))
        return torch.cat([x, torch.nn.functional.one_hot(species, ns).to(desc.dtype)], dim=1)

    def _pair_head(self, desc, species, edge_index, edge_vectors, return_antisymmetry):
        r = edge_vectors.norm(dim=-1)
        i, j = edge_index
        m = self.n_members
        emb = self.atom_embedding(desc, species).unsqueeze(0).expand(m, -1, -1)
        phi = self.pair_embed(emb)  # (M, N, W)
        recv = phi + self.pair_receiver(emb)  # the atom that receives the force
        basis = self.rbf(r) * self.energy_scale  # (E, K), includes the cutoff function

        def coeff(a, b):  # c_ab = sum_k B_k(r_ab) rho_k(recv_a + phi_b)
            return (self.pair_readout(recv[:, a] + phi[:, b]) * basis).sum(-1)  # (M, E)

        c = coeff(i, j)
        unit = edge_vectors / r.clamp_min(1e-12)[:, None]
        forces = torch.zeros(m, desc.shape[0], 3, dtype=desc.dtype, device=desc.device).index_add(
            1, i, c[..., None] * unit)
        if return_antisymmetry:
            return forces, c - coeff(j, i)
        return forces

    def zbl_forces(self, graph: AtomicGraph) -> torch.Tensor:
        """Forces (N, 3) eV/A of the ZBL core alone, by autograd through the edge vectors."""
        vec = graph.edge_vectors
        if not vec.requires_grad:
            vec = vec.detach().requires_grad_(True)
        g = replace(graph, edge_vectors=vec, edge_lengths=vec.norm(dim=-1))
        e = self.zbl(g.within(self.zbl.cutoff)).sum()
        if not e.requires_grad:
            return torch.zeros_like(graph.positions)
        dv = torch.autograd.grad(e, vec, create_graph=torch.is_grad_enabled(), allow_unused=True)[0]
        if dv is None:
            return torch.zeros_like(graph.positions)
        return edge_forces(dv, g.edge_index, graph.n_atoms_total)

    def direct_forces(self, graph: AtomicGraph) -> torch.Tensor:
        """Direct-head forces plus the (conservative) ZBL core forces, (M, N, 3) eV/A."""
        g = graph.within(self.cutoff)
        sp = self.species(g.numbers)
        desc = self.descriptor(g.numbers, g.edge_index, g.edge_vectors)
        f = self.direct_head(desc, sp, g.edge_index, g.edge_vectors)
        if self.zbl is not None:
            f = f + self.zbl_forces(g)[None]
        return f


def edge_forces(de_dvec: torch.Tensor, edge_index: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """Forces (..., N, 3) from dE/dr_e of edge vectors r_e = x_j - x_i (+ shift): F_i += dE/dr_e,
    F_j -= dE/dr_e. ``de_dvec`` is (..., E, 3)."""
    i, j = edge_index
    shape = de_dvec.shape[:-2] + (n_atoms, 3)
    out = torch.zeros(shape, dtype=de_dvec.dtype, device=de_dvec.device)
    out = out.index_add(-2, i, de_dvec)
    return out.index_add(-2, j, -de_dvec)


def predict_direct_forces(model: BehlerParrinelloPotential, structures: Any, dtype: torch.dtype = torch.float64,
                          device: Any = None, create_graph: bool = False) -> list[torch.Tensor]:
    """Direct-head forces (eV/A) of each structure, one (M, n, 3) tensor each, in one batch."""
    from ..backend import Batch, build_neighbor_graph
    from ..backend.evaluate import atomic_graph, prepare_structures

    atoms = prepare_structures(structures)
    batch = Batch.from_structures(atoms, dtype=dtype, device=device)
    model = model.to(batch.device)
    graph = build_neighbor_graph(batch, model.cutoff)
    pos = batch.positions.detach().requires_grad_(create_graph)
    f = model.direct_forces(atomic_graph(batch.with_positions(pos), graph))
    if not create_graph:
        f = f.detach()
    ptr = batch.ptr.tolist()
    return [f[:, ptr[b] : ptr[b + 1]] for b in range(batch.n_structures)]


@register_model_class
class CommitteeMean(_CoreCommitteeMean):
    """The committee-mean potential of a :class:`BehlerParrinelloPotential`
    (:class:`mlip_props.potentials.committee.CommitteeMean`, savable as a model file): per-atom
    energies (N,) averaged over members, so forces, stress and Hessians are the member means.

    ``CommitteeMean.from_file("cu_committee.pt")`` or ``CommitteeMean(model)``; the members stay
    reachable as ``.committee`` (for :func:`~.committee.committee_predict`).
    """

    def __init__(self, committee: BehlerParrinelloPotential | dict[str, Any]):
        if isinstance(committee, dict):
            committee = BehlerParrinelloPotential(**committee)
        super().__init__(committee)

    def get_config(self) -> dict[str, Any]:
        return {"committee": self.committee.get_config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "CommitteeMean":
        return cls(config["committee"])

    @classmethod
    def from_file(cls, path: Any) -> "CommitteeMean":
        from ..potentials import load_model_file

        pot = load_model_file(path)
        if isinstance(pot, CommitteeMean):
            return pot
        out = cls(pot)
        out.metadata = dict(getattr(pot, "metadata", {}))
        return out
