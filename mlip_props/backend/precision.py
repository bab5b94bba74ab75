"""Which floating-point precision a potential computes in, for the record of every result.

The backend runs a batch in the ``dtype`` a property asks for (float64 by default). Some models
fix their own compute precision whatever the batch's (``"sevenn:dtype=float32"``: a module with
``compute_dtype = "float32"``); oracles (ASE calculators, pyscf) compute in double precision.
:func:`compute_precision` says which precision actually ran, so that results can state it and
reports can flag float32 numbers.
"""
from __future__ import annotations

from typing import Any

import torch

_NAMES = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def dtype_name(dtype: Any) -> str:
    """``"float32"``/``"float64"`` for a torch dtype or its name."""
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        if name not in _NAMES.values():
            raise ValueError(f"unknown dtype {dtype!r} (expected float32 or float64)")
        return name
    try:
        return _NAMES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r} (expected torch.float32 or torch.float64)") from None


def compute_precision(potential: Any, dtype: Any = None) -> str:
    """The precision in which ``potential`` computes energies for a batch in ``dtype``.

    Oracles: ``"float64"``. Torch potentials: the lowest precision fixed by the potential or any of
    its submodules (attribute ``compute_dtype``: ``"float32"``/``"float64"``; ``None`` follows the
    batch), else the batch's ``dtype`` (float64 when ``None``).
    """
    from .evaluate import is_oracle

    if is_oracle(potential):
        return "float64"
    batch = dtype_name(dtype if dtype is not None else torch.float64)
    modules = potential.modules() if isinstance(potential, torch.nn.Module) else [potential]
    fixed = {getattr(m, "compute_dtype", None) for m in modules} - {None}
    names = {dtype_name(d) for d in fixed if isinstance(d, (str, torch.dtype))}
    if not names:
        return batch
    order = ["float16", "bfloat16", "float32", "float64"]
    return min(names, key=order.index)
