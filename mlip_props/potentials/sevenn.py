"""SevenNet (``sevenn``) models as batched torch potentials of the backend.

:class:`SevenNetPotential` runs the SevenNet network's own torch modules on the backend's
packed batch: many structures of mixed sizes and elements, periodic and isolated together, in
one forward pass. The network reads only edge vectors, so the adapter hands it the backend's
differentiable ``graph.edge_vectors`` and stops before SevenNet's own reduction and
force/stress head: it returns the per-atom energies (eV) and the backend's autograd gives
forces, stress and Hessians (double backward) as for every other potential.

Edge convention: SevenNet's ``edge_index`` is (centre i, neighbour j) with
``edge_vec = x_j - x_i + shift @ cell`` and messages flowing from j into i, which is the
backend's own convention, so the full neighbour list passes through unchanged.

Models: the checkpoints shipped inside the ``sevenn`` wheel (``"7net-0"``, the default,
``"7net-0_22may2024"``, ``"7net-l3i5"``, ``"7net-mf-0"`` with ``modal=``) load offline.
SevenNet reads checkpoints with pickle (``torch.load(weights_only=False)``), which can run code
stored in the file: a checkpoint file of your own is therefore only loaded with
``trusted=True``; the shipped ones come with the installed package and need no opt-in.

Precision: the weights are float32. By default the network follows the batch's dtype
(``evaluate(..., dtype=torch.float32)`` runs the model's own precision; float64, the
backend's default, converts the weights exactly and runs in double precision, which SevenNet's
modules allow). ``dtype="float32"`` (or ``"float64"``) fixes the compute precision whatever the
batch: edge vectors are cast on the way in and energies cast back, autograd flows through.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from ..backend.potential import AtomicGraph, Potential
from ._precision import NetworkPrecision

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _import_sevenn():
    try:
        import sevenn._keys as keys
        import sevenn.util as sevenn_util
    except ImportError as exc:
        raise ValueError(
            "the 'sevenn' potential needs the sevenn package: pip install 'mlip-props[sevenn]' "
            f"(with your installed torch held by a constraints file) ({exc})"
        ) from exc
    return keys, sevenn_util


#: Pretrained names (lower case) -> the ``sevenn._const`` attribute holding the checkpoint path.
_PRETRAINED_FILES = {
    "7net-0": "SEVENNET_0_11Jul2024", "sevennet-0": "SEVENNET_0_11Jul2024",
    "7net-0_11jul2024": "SEVENNET_0_11Jul2024", "7net-0_22may2024": "SEVENNET_0_22May2024",
    "7net-l3i5": "SEVENNET_l3i5", "7net-mf-0": "SEVENNET_MF_0", "7net-mf-ompa": "SEVENNET_MF_ompa",
    "7net-omat": "SEVENNET_omat", "7net-omni": "SEVENNET_omni",
}


def _shipped_path(name: str) -> str | None:
    """The checkpoint file of pretrained model ``name`` if it is inside the installed package
    (the larger checkpoints that SevenNet would download at run time are never used)."""
    import sevenn._const as const

    path = getattr(const, _PRETRAINED_FILES.get(name.lower(), ""), None)
    return path if path and os.path.isfile(path) else None


def shipped_sevenn_models() -> list[str]:
    """Names of the SevenNet checkpoints whose files are inside the installed ``sevenn`` package."""
    _import_sevenn()
    return [n for n in _PRETRAINED_FILES if n.startswith("7net") and _shipped_path(n)]


def _load_network(model: str, trusted: bool):
    keys, util = _import_sevenn()
    if os.path.isfile(model):
        if not trusted:
            raise ValueError(
                f"SevenNet checkpoint {model!r}: sevenn reads checkpoint files with pickle, which can run code "
                "stored in the file; load a file you trust with trusted=True "
                "(load_potential('sevenn:model=PATH,trusted=true')). The checkpoints shipped inside the sevenn "
                f"package need no opt-in: {', '.join(shipped_sevenn_models())}"
            )
    elif _shipped_path(model) is None:
        raise ValueError(
            f"unknown SevenNet model {model!r}: expected a checkpoint file (with trusted=True) or one of the "
            f"checkpoints shipped inside the sevenn package: {', '.join(shipped_sevenn_models())}"
        )
    import warnings

    with warnings.catch_warnings():  # "no tensor-product accelerator" and similar notices
        warnings.simplefilter("ignore")
        checkpoint = util.load_checkpoint(model)
        net = checkpoint.build_model()
    return keys, net


class SevenNetPotential(Potential):
    """A SevenNet model (default SevenNet-0, ``"7net-0"``) on the backend's batched graph.

    ``model``: a shipped checkpoint name or a checkpoint path (with ``trusted=True``);
    ``modal``: the fidelity of a multi-fidelity model (e.g. ``"R2SCAN"`` or ``"PBE"`` for
    ``7net-mf-0``); ``dtype``: ``None`` (follow the batch), ``"float32"`` or ``"float64"``.
    Cutoff (Angstrom) and the supported elements come from the checkpoint.
    """

    #: SevenNet messages depend on positions only through the edge vectors: the backend takes
    #: forces and stress from one gradient with respect to them.
    edge_only = True
    #: Autograd memory per edge of one energy+forces+stress pass (bytes, float64), measured on
    #: SevenNet-0 by summing the storages autograd saves (196-224 kB per edge in Si cells of 8-216
    #: atoms; ``tests/potentials/test_universal_battery.py`` checks it); float32
    #: needs half (the planner halves it).
    bytes_per_edge = 200_000

    def __init__(self, model: str = "7net-0", modal: str | None = None, dtype: str | None = None,
                 trusted: bool = False):
        if dtype is not None and dtype not in _DTYPES:
            raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
        model = str(model)
        keys, net = _load_network(model, bool(trusted))
        if not net.type_map or not net.cutoff:
            raise ValueError(f"SevenNet model {model!r} has no type map or cutoff")
        modal_map = dict(net.modal_map or {})
        if modal_map and modal is None:
            raise ValueError(f"SevenNet model {model!r} is multi-fidelity: choose modal= one of {sorted(modal_map)}")
        if modal is not None and modal not in modal_map:
            raise ValueError(f"SevenNet model {model!r}: unknown modal {modal!r} (available: {sorted(modal_map) or 'none'})")
        super().__init__(float(net.cutoff), set(int(z) for z in net.type_map))
        net.set_is_batch_data(True)
        net.eval()
        for p in net.parameters():  # inference only: no weight gradients are ever needed
            p.requires_grad_(False)
        self.model_name = model
        self.modal = modal
        self.compute_dtype = dtype
        self.network = net
        self._precision = NetworkPrecision(net)
        self._keys = keys
        self._modal_index = None if modal is None else int(modal_map[modal])
        z_to_type = torch.full((120,), -1, dtype=torch.long)
        for z, t in net.type_map.items():
            z_to_type[int(z)] = int(t)
        self.register_buffer("z_to_type", z_to_type, persistent=False)
        self._energy_modules = self._modules_before_reduction(net)

    @staticmethod
    def _modules_before_reduction(net: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
        """SevenNet's modules up to the per-atom energy: everything before the total-energy
        reduction and the force/stress head (both replaced by the backend)."""
        from sevenn.nn.linear import AtomReduce

        out = []
        for name, module in net._modules.items():
            if isinstance(module, AtomReduce) or "force" in name or "stress" in name:
                break
            out.append((name, module))
        if not out or out[-1][0] != "rescale_atomic_energy":
            names = ", ".join(n for n, _ in out[-3:])
            raise ValueError(f"unexpected SevenNet module layout (last modules before the reduction: {names})")
        return out

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        k = self._keys
        in_dtype = graph.edge_vectors.dtype
        dtype = _DTYPES[self.compute_dtype] if self.compute_dtype else in_dtype
        self._precision.ensure(self.network, dtype)
        from sevenn.nn.node_embedding import OnehotEmbedding

        data: dict[str, Any] = {
            k.NODE_FEATURE: self.z_to_type.to(graph.numbers.device)[graph.numbers],
            k.ATOMIC_NUMBERS: graph.numbers,
            k.EDGE_IDX: graph.edge_index,
            k.EDGE_VEC: graph.edge_vectors.to(dtype),
            k.BATCH: graph.structure_index,
        }
        if self._modal_index is not None:
            data[k.MODAL_TYPE] = torch.full((graph.n_structures,), self._modal_index, dtype=torch.long,
                                            device=graph.numbers.device)
        for _, module in self._energy_modules:
            data = module(data)
            if isinstance(module, OnehotEmbedding):  # SevenNet makes one-hot features float32
                for key in {module.key_output, module.key_additional_output} - {None}:
                    if data[key].is_floating_point():
                        data[key] = data[key].to(dtype)
        return data[k.ATOMIC_ENERGY].reshape(-1).to(in_dtype)

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model_name, "modal": self.modal, "dtype": self.compute_dtype}
