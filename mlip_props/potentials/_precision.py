"""Running a wrapped network in the precision a batch asks for, without losing its own weights."""
from __future__ import annotations

import torch


class NetworkPrecision:
    """Switches ``network`` between float dtypes on demand and back to its own weights exactly.

    Converting float32 weights to float64 is exact, but float64 weights converted to float32 and
    back are not: the network's own state (in its own dtype) is kept on the CPU and restored
    whenever the network returns to its own dtype.
    """

    def __init__(self, network: torch.nn.Module):
        self.native_dtype = next(network.parameters()).dtype
        self._native_state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}

    @staticmethod
    def dtype_of(network: torch.nn.Module) -> torch.dtype:
        return next(network.parameters()).dtype

    def ensure(self, network: torch.nn.Module, dtype: torch.dtype) -> None:
        """Put ``network`` in ``dtype`` (a no-op when it already is)."""
        if self.dtype_of(network) == dtype:
            return
        network.to(dtype)
        if dtype == self.native_dtype:
            network.load_state_dict(self._native_state)
