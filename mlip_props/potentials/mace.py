"""MACE models (``mace-torch``) as batched torch potentials of the backend.

:class:`MACEPotential` runs a MACE model file of the user's on the backend's packed batch. MACE
computes its edge vectors as ``positions[receiver] - positions[sender] + shifts``; the adapter
passes zero positions and the backend's differentiable edge vectors as the shifts, with the
backend's edge ``(i, j)`` as (sender, receiver), so MACE sees exactly ``r_ij = x_j - x_i + S cell``
and the backend's autograd gives forces, stress and Hessians. MACE's own force/stress outputs
are switched off (``compute_force=False``); the adapter returns MACE's per-atom energies
(``node_energy``: the isolated-atom energies E0 plus the interaction energy, eV).

Model files: a MACE model file is a pickled ``torch.nn.Module``; unpickling it runs code named
in the file. It is therefore loaded only with an explicit opt-in, ``trusted=True``
(``load_potential("mace:model.pt", trusted=True)``), for files you made or trust as you would a
Python script. mlip-props' own model files never need it (they are read with
``weights_only=True``).

Supported: MACE and ScaleShiftMACE models (one or several heads, ``head=``). Models that use
atomic positions beyond the edge vectors (electrostatics, field models) are refused.

Precision: the network follows the batch's dtype unless ``dtype="float32"``/``"float64"``
fixes it; the model's own weights are kept and restored exactly whenever it runs in its own
dtype again (a float64 model run in float32 once is not left rounded).
"""
from __future__ import annotations

import os
from typing import Any

import torch

from ..backend.potential import AtomicGraph, Potential
from ._precision import NetworkPrecision

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_SUPPORTED = ("MACE", "ScaleShiftMACE")


def import_mace() -> Any:
    """Import ``mace.modules`` (the classes a model file names), or a ``ValueError`` naming the extra.

    mace-torch pins e3nn 0.4.4, whose import reads e3nn's own constants with ``torch.load``; on
    torch >= 2.6 that load is ``weights_only`` and needs Python's ``slice`` allow-listed, which is
    done for that import alone (never ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``, which would disable the
    check for every file).
    """
    try:
        with torch.serialization.safe_globals([slice]):
            import mace.modules
    except ImportError as exc:
        raise ValueError(
            "the 'mace' potential needs mace-torch: pip install 'mlip-props[mace]' (with your installed torch held "
            f"by a constraints file) ({exc})"
        ) from exc
    return mace.modules


def _load_model_file(path: str, trusted: bool) -> torch.nn.Module:
    if not trusted:
        raise ValueError(
            f"MACE model {path!r}: a MACE model file is a pickled torch module and loading it runs code stored "
            "in the file; load a file you trust with load_potential('mace:PATH', trusted=True), or on the "
            "command line with --trust-model-file"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MACE model file not found: {path}")
    import_mace()
    model = torch.load(path, map_location="cpu", weights_only=False)
    name = type(model).__name__
    if name not in _SUPPORTED:
        raise ValueError(f"MACE model {path!r}: a {name} is not supported (supported: {', '.join(_SUPPORTED)})")
    return model


class MACEPotential(Potential):
    """A MACE model file on the backend's batched graph.

    ``path``: the model file (``torch.save`` of a MACE module); ``trusted``: must be True (the
    file is unpickled); ``head``: the head of a multi-head model (default: the first);
    ``dtype``: ``None`` (follow the batch), ``"float32"`` or ``"float64"``. Cutoff (``r_max``,
    Angstrom) and elements (``atomic_numbers``) come from the model.
    """

    #: MACE reads positions only through the edge vectors.
    edge_only = True
    #: Autograd memory per edge of one energy+forces+stress pass (bytes, float64), as a mid-size
    #: MACE (128x0e+128x1o, max_ell 3) saves; small test models save much less. float32 halves it.
    bytes_per_edge = 100_000

    def __init__(self, path: str, trusted: bool = False, head: str | None = None, dtype: str | None = None):
        if dtype is not None and dtype not in _DTYPES:
            raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
        path = str(path)
        model = _load_model_file(path, bool(trusted))
        heads = list(getattr(model, "heads", None) or ["Default"])
        if head is not None and head not in heads:
            raise ValueError(f"MACE model {path!r}: unknown head {head!r} (available: {heads})")
        zs = [int(z) for z in model.atomic_numbers.tolist()]
        super().__init__(float(model.r_max), set(zs))
        model.eval()
        for p in model.parameters():  # inference only
            p.requires_grad_(False)
        self.path = path
        self.head = head or heads[0]
        self.compute_dtype = dtype
        self.network = model
        self._precision = NetworkPrecision(model)
        self._head_index = heads.index(self.head)
        self._n_elements = len(zs)
        z_to_index = torch.full((120,), -1, dtype=torch.long)
        for k, z in enumerate(zs):
            z_to_index[z] = k
        self.register_buffer("z_to_index", z_to_index, persistent=False)

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        in_dtype = graph.edge_vectors.dtype
        dtype = _DTYPES[self.compute_dtype] if self.compute_dtype else in_dtype
        self._precision.ensure(self.network, dtype)
        dev = graph.numbers.device
        n, b = graph.n_atoms_total, graph.n_structures
        counts = torch.bincount(graph.structure_index, minlength=b)
        ptr = torch.cat([torch.zeros(1, dtype=torch.long, device=dev), torch.cumsum(counts, 0)])
        index = self.z_to_index.to(dev)[graph.numbers]
        data = {
            "positions": torch.zeros(n, 3, dtype=dtype, device=dev),
            "shifts": graph.edge_vectors.to(dtype),  # with zero positions: MACE's vectors = r_ij
            "unit_shifts": torch.zeros(graph.edge_index.shape[1], 3, dtype=dtype, device=dev),
            "edge_index": graph.edge_index,
            "cell": graph.cells.detach().to(dtype),
            "node_attrs": torch.nn.functional.one_hot(index, self._n_elements).to(dtype),
            "batch": graph.structure_index,
            "ptr": ptr,
            "head": torch.full((b,), self._head_index, dtype=torch.long, device=dev),
        }
        out = self.network(data, training=False, compute_force=False, compute_virials=False, compute_stress=False)
        return out["node_energy"].reshape(-1).to(in_dtype)

    def get_config(self) -> dict[str, Any]:
        return {"path": self.path, "head": self.head, "dtype": self.compute_dtype}
