"""CHGNet (``chgnet``) models as batched torch potentials of the backend.

:class:`CHGNetPotential` runs CHGNet's own torch modules (embeddings, bond and angle bases,
atom/bond/angle convolutions, readout MLP, elemental reference energies) on the backend's packed
batch: many structures of mixed sizes, periodic and isolated together, in one forward pass.
CHGNet's own graph converter (pymatgen neighbour search, one structure at a time) and its
force/stress head are not used: the adapter builds CHGNet's graphs from the backend's neighbour
list with tensor operations over the whole batch and returns per-atom energies (eV), so the
backend's autograd gives forces, stress and Hessians (double backward) as for every other
potential.

Graphs, in CHGNet's conventions (``chgnet.graph``):

* atom graph: the backend's full directed list within ``atom_graph_cutoff`` (6 A for 0.3.0),
  edge ``(centre i, neighbour j)``, messages aggregated on the centre;
* undirected bonds: edge ``i -> j`` with cell shift ``S`` and its reverse ``j -> i`` with
  ``-S`` are one bond, sharing one bond feature (the shifts are recovered from the edge vectors,
  positions and cells without gradient);
* bond graph (angles): every ordered pair of distinct directed edges leaving the same atom,
  both shorter than ``bond_graph_cutoff`` (3 A), with CHGNet's angle between them.

Energy: CHGNet predicts the energy per atom, ``e = (sum_i site_i + sum_i ref(Z_i)) / N`` (site
energies of the readout MLP plus the MPtrj linear elemental references of its composition
model). The adapter returns ``site_i + ref(Z_i)`` per atom, whose sum is the total energy
``N e`` (eV) that CHGNet's ASE calculator reports.

Magnetic moments (CHGNet's ``site_wise`` head) and any charge information are not used: the
adapter predicts the energy only (magmoms do not enter CHGNet's energy; they are a separate
read-out of the atom features).

Isolated structures: CHGNet reads positions only through edge vectors, so a molecule without a
cell is exactly CHGNet on the molecule inside a periodic box large enough that no image is
within the cutoff (checked in ``tests/potentials/test_universal_battery.py``). CHGNet was trained on
crystals (MPtrj): molecules are outside its training domain.

Models: the checkpoints shipped inside the ``chgnet`` wheel, ``"0.3.0"`` (the default),
``"0.2.0"`` and ``"r2scan"``, or a CHGNet checkpoint file of the same layout; all are read with
``torch.load(weights_only=True)`` (no code in the file is run), so no ``trusted`` opt-in is
needed.

Precision: the weights are float32. The network follows the batch's dtype unless
``dtype="float32"``/``"float64"`` fixes it (edge vectors cast on the way in, energies cast
back); the model's own weights are restored exactly when it returns to float32.
"""
from __future__ import annotations

import contextlib
import io
import os
from typing import Any

import torch

from ..backend.neighbors import neighbor_pairs
from ..backend.potential import AtomicGraph, Potential
from ._precision import NetworkPrecision

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: pretrained name -> (file inside the chgnet package, mlp_out_bias as CHGNet.load sets it)
_SHIPPED = {
    "0.3.0": ("pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar", False),
    "0.2.0": ("pretrained/0.2.0/chgnet_0.2.0_e30f77s348m32.pth.tar", True),
    "r2scan": ("pretrained/r2scan/chgnet_r2scan_transfer_learning_e15f36s161m23.pth.tar", False),
}
#: largest |integer cell shift| the bond pairing encodes (a 6 A cutoff in a 0.05 A thin cell)
_MAX_SHIFT = 1 << 10


def _import_chgnet():
    try:
        import chgnet
        from chgnet.model.model import CHGNet
    except ImportError as exc:
        raise ValueError(
            "potential 'chgnet' needs the 'pretrained' extra (or 'chgnet'): pip install 'mlip-props[chgnet]' "
            f"(with your installed torch held by a constraints file) ({exc})"
        ) from exc
    return chgnet, CHGNet


def shipped_chgnet_models() -> list[str]:
    """Names of the CHGNet checkpoints whose files are inside the installed ``chgnet`` package."""
    chgnet, _ = _import_chgnet()
    root = os.path.dirname(chgnet.__file__)
    return [n for n, (f, _) in _SHIPPED.items() if os.path.isfile(os.path.join(root, f))]


def _load_network(model: str) -> torch.nn.Module:
    chgnet, cls = _import_chgnet()
    if model in _SHIPPED:
        path = os.path.join(os.path.dirname(chgnet.__file__), _SHIPPED[model][0])
        mlp_out_bias, version = _SHIPPED[model][1], model
    elif os.path.isfile(model):
        path, mlp_out_bias, version = model, None, None
    else:
        raise ValueError(
            f"unknown CHGNet model {model!r}: expected a CHGNet checkpoint file or one of the checkpoints shipped "
            f"inside the chgnet package: {', '.join(shipped_chgnet_models())}"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        args, weights = dict(state["model"]["model_args"]), state["model"]["state_dict"]
    except Exception as exc:  # not a CHGNet checkpoint, or one holding more than tensors and plain data
        raise ValueError(f"CHGNet model {model!r}: not a readable CHGNet checkpoint ({exc})") from exc
    if mlp_out_bias is not None:
        args["mlp_out_bias"] = mlp_out_bias
    if version is not None:
        args["version"] = version
    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its parameter count
        net = cls(**args)
    net.load_state_dict(weights)
    return net


def _check_layout(net: torch.nn.Module, model: str) -> None:
    """Refuse CHGNet variants whose energy this adapter would not reproduce."""
    from chgnet.model.composition_model import AtomRef

    problems = []
    if not net.mlp_first:
        problems.append("readout pools before the MLP (mlp_first=False): no per-atom energies")
    if net.composition_model is not None and not isinstance(net.composition_model, AtomRef):
        problems.append(f"composition model {type(net.composition_model).__name__} (only AtomRef)")
    if not isinstance(net.bond_conv_layers, torch.nn.ModuleList) or not isinstance(net.angle_layers,
                                                                                     torch.nn.ModuleList):
        problems.append("bond or angle updates switched off")
    if problems:
        raise ValueError(f"CHGNet model {model!r} is not supported: {'; '.join(problems)}")


class CHGNetPotential(Potential):
    """A CHGNet model (default the pretrained CHGNet 0.3.0) on the backend's batched graph.

    ``model``: ``"0.3.0"``, ``"0.2.0"``, ``"r2scan"`` (shipped in the wheel) or a checkpoint
    path; ``dtype``: ``None`` (follow the batch), ``"float32"`` or ``"float64"``; ``trusted``:
    accepted and not needed (checkpoints are read with ``weights_only=True``). Cutoff
    (``atom_graph_cutoff``, Angstrom) and the bond-graph cutoff come from the checkpoint;
    elements H-Pu (Z = 1-94, CHGNet's embedding table).
    """

    #: CHGNet reads positions only through the edge vectors (bond lengths and angles).
    edge_only = True
    #: Autograd memory per edge (of the 6 A atom graph) of one energy+forces+stress pass (bytes,
    #: float64), measured on CHGNet 0.3.0 by summing the storages autograd saves: 30-38 kB in
    #: diamond Si (4 bonds under 3 A per atom), 73 kB in rocksalt MgO, 77 kB in fcc Cu (12 bonds,
    #: 132 angles per atom: the angles dominate); ``tests/potentials/test_universal_battery.py`` checks it
    #: within a factor 2. float32 needs half (the planner halves it).
    bytes_per_edge = 50_000

    def __init__(self, model: str = "0.3.0", dtype: str | None = None, trusted: bool = False):
        if dtype is not None and dtype not in _DTYPES:
            raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
        model = str(model)
        net = _load_network(model)
        _check_layout(net, model)
        conv = net.graph_converter
        n_elements = int(net.atom_embedding.embedding.num_embeddings)
        super().__init__(float(conv.atom_graph_cutoff), set(range(1, n_elements + 1)))
        net.eval()
        for p in net.parameters():  # inference only
            p.requires_grad_(False)
        self.model_name = model
        self.compute_dtype = dtype
        self.bond_cutoff = float(conv.bond_graph_cutoff)
        self.network = net
        self._precision = NetworkPrecision(net)

    # -- CHGNet's graphs from the backend's edges (integer work, no gradient) -------------------

    @staticmethod
    def _undirected(graph: AtomicGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """(directed -> undirected bond index (E,), one directed edge per bond (U,)).

        Edge ``i -> j`` with shift ``S`` and ``j -> i`` with ``-S`` are one bond. ``S`` solves
        ``r_ij - (x_j - x_i) = S @ cell`` (least squares over the periodic cell rows; zero rows of
        an isolated structure's cell give zero shifts).
        """
        i, j = graph.edge_index
        dev = i.device
        if i.numel() == 0:
            z = torch.zeros(0, dtype=torch.long, device=dev)
            return z, z
        with torch.no_grad():
            vec = graph.edge_vectors.detach().double()
            pos = graph.positions.detach().double()
            offset = vec - (pos[j] - pos[i])
            inv = torch.linalg.pinv(graph.cells.detach().double())  # (B, 3, 3)
            shift = torch.einsum("ek,ekl->el", offset, inv[graph.edge_structure]).round().long()
            m = 2 * _MAX_SHIFT + 1
            code = (shift[:, 0] * m + shift[:, 1]) * m + shift[:, 2]  # sign = lexicographic sign of S
            forward = (i < j) | ((i == j) & (code > 0))
            key = torch.stack([torch.where(forward, i, j), torch.where(forward, j, i),
                               torch.where(forward, code, -code)], dim=1)
            _, d2u = torch.unique(key, dim=0, return_inverse=True)
            n_bonds = int(d2u.max()) + 1
            u2d = torch.empty(n_bonds, dtype=torch.long, device=dev)
            u2d.scatter_(0, d2u, torch.arange(d2u.numel(), device=dev))
        return d2u, u2d

    def _angle_pairs(self, graph: AtomicGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """Ordered pairs (e1, e2) of distinct directed edges leaving one atom, both shorter than
        the bond-graph cutoff: CHGNet's bond graph."""
        with torch.no_grad():
            short = torch.nonzero(graph.edge_lengths.detach() < self.bond_cutoff).squeeze(1)
            a, b = neighbor_pairs(graph.edge_index[0, short], graph.n_atoms_total)
        return torch.cat([short[a], short[b]]), torch.cat([short[b], short[a]])

    # -- the network ----------------------------------------------------------------------------

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        in_dtype = graph.edge_vectors.dtype
        dtype = _DTYPES[self.compute_dtype] if self.compute_dtype else in_dtype
        self._precision.ensure(self.network, dtype)
        net = self.network
        n_atoms = graph.n_atoms_total
        d2u, u2d = self._undirected(graph)
        e1, e2 = self._angle_pairs(graph)
        centre = graph.edge_index[0]
        atom_graph = graph.edge_index.t()

        vec = graph.edge_vectors.to(dtype)
        length = vec.norm(dim=1)
        bond_length = length[u2d]
        enc = net.bond_basis_expansion
        bases_ag = enc.rbf_expansion_ag(bond_length)
        bases_bg = enc.rbf_expansion_bg(bond_length)
        unit = vec / length[:, None]  # CHGNet uses centre - neighbour: the same angles
        angle_bases = net.angle_basis_expansion(unit[e1], unit[e2])
        bond_graph = torch.stack([centre[e1], d2u[e1], d2u[e2]], dim=1)
        has_angles = bool(e1.numel())

        atom_feas = net.atom_embedding(graph.numbers - 1)  # CHGNet's row 0 is hydrogen
        bond_feas = net.bond_embedding(bases_ag)
        bond_weights_ag = net.bond_weights_ag(bases_ag)
        bond_weights_bg = net.bond_weights_bg(bases_bg)
        angle_feas = net.angle_embedding(angle_bases) if has_angles else None
        for atom_layer, bond_layer, angle_layer in zip(net.atom_conv_layers[:-1], net.bond_conv_layers,
                                                       net.angle_layers):
            atom_feas = atom_layer(atom_feas=atom_feas, bond_feas=bond_feas, bond_weights=bond_weights_ag,
                                   atom_graph=atom_graph, directed2undirected=d2u)
            if has_angles:
                bond_feas = bond_layer(atom_feas=atom_feas, bond_feas=bond_feas, bond_weights=bond_weights_bg,
                                       angle_feas=angle_feas, bond_graph=bond_graph)
                angle_feas = angle_layer(atom_feas=atom_feas, bond_feas=bond_feas, angle_feas=angle_feas,
                                         bond_graph=bond_graph)
        atom_feas = net.atom_conv_layers[-1](atom_feas=atom_feas, bond_feas=bond_feas, bond_weights=bond_weights_ag,
                                             atom_graph=atom_graph, directed2undirected=d2u)
        if net.readout_norm is not None:
            atom_feas = net.readout_norm(atom_feas)
        site = net.mlp(atom_feas).reshape(n_atoms)
        if net.composition_model is not None:
            site = site + net.composition_model.fc.weight[0, graph.numbers - 1]
        return site.to(in_dtype)

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model_name, "dtype": self.compute_dtype}
