"""What :func:`mlip_props.backend.evaluate` returns: per-structure energies, forces, stresses and
Hessians as numpy arrays, with views of one committee member, of the committee mean, and of a
subset of the structures."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from .units import EV_A3_TO_GPA


@dataclass(frozen=True)
class ChunkRecord:
    """How one :func:`~mlip_props.backend.evaluate.evaluate` call was split into batched passes
    (see :mod:`mlip_props.backend.chunking`).

    ``chunks``: structures per chunk, in input order (consecutive structures; they sum to the
    number of structures of the call; for
    :func:`~mlip_props.backend.hessian_rows.evaluate_hessian_rows` the chunks group structures
    of equal row count, in the order they ran, without a budget). ``memory_budget_bytes``: the
    budget chunks were sized to.
    ``memory_per_atom_bytes`` / ``memory_per_edge_bytes``: the workspace model of one
    energy+forces+stress pass as the last chunk was sized (the potential's static estimate,
    refitted to the measured chunks, raised after out-of-memory errors). ``measured_bytes``: per
    chunk, what :class:`~mlip_props.backend.chunking.MemoryMeter` measured (``None`` where not
    measured); ``measure``: how (``"cuda_peak"``: the allocator's peak; ``"saved_tensors"``: the
    storages autograd saved plus the batch, graph and outputs, a lower bound; ``"none"``).
    ``probe_bytes``: for Hessians, the measured energy+forces pass over the first chunk that the
    model learned from (Hessian chunks themselves are measured on CUDA only, and not learned
    from). ``retries``: chunks retried smaller after an out-of-memory error.
    """

    chunks: list[int]
    memory_budget_bytes: int | None = None
    memory_per_atom_bytes: float | None = None
    memory_per_edge_bytes: float | None = None
    measured_bytes: list[int | None] = field(default_factory=list)
    measure: str = "none"
    probe_bytes: int | None = None
    retries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvaluationResult:
    """Per-structure results of :func:`evaluate` (numpy arrays).

    ``energies_eV`` (B,) — or (B, M) for a committee of M members;
    ``forces_eV_A`` one (n, 3) array per structure — (M, n, 3) for a committee;
    ``stress_eV_A3`` (B, 6) Voigt (xx, yy, zz, yz, xz, xy), ASE sign convention, NaN for
    structures not periodic in all directions — (B, M, 6) for a committee;
    ``hessians_eV_A2`` one (3n, 3n) array per structure, d2E/dx_i dx_j.
    """

    energies_eV: np.ndarray
    forces_eV_A: list[np.ndarray] | None = None
    stress_eV_A3: np.ndarray | None = None
    hessians_eV_A2: list[np.ndarray] | None = None
    n_atoms: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    #: the floating-point precision the potential computed in (``"float32"``/``"float64"``; see
    #: :func:`mlip_props.backend.precision.compute_precision`), ``None`` when not recorded.
    precision: str | None = None
    #: how the call was chunked (:class:`ChunkRecord`; ``None`` for oracles, which go structure
    #: by structure). A record of the whole call: :meth:`member`, :meth:`member_mean` and
    #: :meth:`select` keep it unchanged (a selection's record still describes the call).
    chunking: ChunkRecord | None = None

    @property
    def stress_GPa(self) -> np.ndarray | None:
        """Stress in GPa (same layout as ``stress_eV_A3``)."""
        return None if self.stress_eV_A3 is None else self.stress_eV_A3 * EV_A3_TO_GPA

    @property
    def energies_per_atom_eV(self) -> np.ndarray:
        n = self.n_atoms.reshape((-1,) + (1,) * (self.energies_eV.ndim - 1))
        return self.energies_eV / n

    @property
    def n_members(self) -> int:
        """Committee size: M for energies of shape (B, M), 0 for a single potential."""
        return int(self.energies_eV.shape[1]) if self.energies_eV.ndim == 2 else 0

    def member(self, m: int) -> "EvaluationResult":
        """Member ``m``'s answers as those of a single potential (energies (B,), forces (n, 3) ...).

        A single potential's result has no member axis: ``member(0)`` returns it unchanged."""
        if self.n_members == 0:
            if m != 0:
                raise IndexError(f"member {m} of a single-potential result")
            return self
        if not 0 <= m < self.n_members:
            raise IndexError(f"member {m} of a committee of {self.n_members}")
        return EvaluationResult(
            energies_eV=self.energies_eV[:, m],
            forces_eV_A=None if self.forces_eV_A is None else [f[m] for f in self.forces_eV_A],
            stress_eV_A3=None if self.stress_eV_A3 is None else self.stress_eV_A3[:, m],
            hessians_eV_A2=None if self.hessians_eV_A2 is None else [h[m] if h.ndim == 3 else h
                                                                      for h in self.hessians_eV_A2],
            n_atoms=self.n_atoms, precision=self.precision,
            chunking=self.chunking)

    def members(self) -> list["EvaluationResult"]:
        """Every member's answers (:meth:`member`); one entry for a single potential."""
        return [self.member(m) for m in range(max(self.n_members, 1))]

    def member_mean(self) -> "EvaluationResult":
        """The committee-mean potential's answers (energies, forces, stress and Hessians are linear
        in the per-atom energies, so the mean over members is exact); unchanged for a single potential."""
        if self.n_members == 0:
            return self
        return EvaluationResult(
            energies_eV=self.energies_eV.mean(axis=1),
            forces_eV_A=None if self.forces_eV_A is None else [f.mean(axis=0) for f in self.forces_eV_A],
            stress_eV_A3=None if self.stress_eV_A3 is None else self.stress_eV_A3.mean(axis=1),
            hessians_eV_A2=None if self.hessians_eV_A2 is None else [h.mean(axis=0) if h.ndim == 3 else h
                                                                      for h in self.hessians_eV_A2],
            n_atoms=self.n_atoms, precision=self.precision,
            chunking=self.chunking)

    def select(self, indices: Sequence[int] | slice) -> "EvaluationResult":
        """The answers of a subset of the structures (in the order given)."""
        idx = np.arange(len(self.energies_eV))[indices] if isinstance(indices, slice) else np.asarray(indices, int)
        pick = lambda xs: None if xs is None else [xs[i] for i in idx]  # noqa: E731
        return EvaluationResult(
            energies_eV=self.energies_eV[idx], forces_eV_A=pick(self.forces_eV_A),
            stress_eV_A3=None if self.stress_eV_A3 is None else self.stress_eV_A3[idx],
            hessians_eV_A2=pick(self.hessians_eV_A2), n_atoms=self.n_atoms[idx] if len(self.n_atoms) else self.n_atoms,
            precision=self.precision, chunking=self.chunking)

    def to_dict(self) -> dict[str, Any]:
        lst = lambda xs: None if xs is None else [np.asarray(x).tolist() for x in xs]  # noqa: E731
        return {
            "energies_eV": self.energies_eV.tolist(),
            "forces_eV_A": lst(self.forces_eV_A),
            "stress_eV_A3": None if self.stress_eV_A3 is None else self.stress_eV_A3.tolist(),
            "hessians_eV_A2": lst(self.hessians_eV_A2),
            "n_atoms": self.n_atoms.tolist(),
            "precision": self.precision,
            "chunking": None if self.chunking is None else self.chunking.to_dict(),
        }
