"""Memory-safe chunking of the backend: how many structures one batched pass may hold.

:func:`~mlip_props.backend.evaluate.evaluate` splits its structures into consecutive chunks
whose estimated workspace stays within a memory budget (bytes; :func:`default_memory_budget`):

* **Prior.** The workspace of one energy+forces+stress pass is modelled as
  ``per_atom x atoms + per_edge x edges``, from the potential's ``bytes_per_edge`` (the static
  estimate of every potential; x members, /2 in float32). Hessians cost 3n times that per
  structure (3n Hessian-vector products). The first chunk is planned with this prior.
* **Learning.** Chunk passes are measured (:class:`MemoryMeter`): on CUDA every chunk, by the
  allocator's peak above what was allocated before it; on the CPU, where torch does not track
  peak allocation, the first chunks and those of a new edges-per-atom ratio, by the distinct
  storages autograd saves for backward (a saved-tensors hook) plus the batch, graph and output
  tensors. The model is refitted after each measured chunk (:class:`MemoryModel`) and later
  chunks are sized by it. A CPU measurement is a lower bound
  (temporaries are not seen), so there the model only ever grows above the prior.
* **Out of memory.** An out-of-memory error (:func:`is_out_of_memory`) halves the chunk and
  retries; the model's estimates are raised so that later chunks stay small. For Hessians of a
  single structure the number of simultaneous Hessian-vector products halves. One structure
  (with one product at a time) that still does not fit raises :class:`StructureMemoryError`.

What ran is returned as a :class:`~mlip_props.backend.results.ChunkRecord`.
"""
from __future__ import annotations

import os
from dataclasses import fields, is_dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .results import ChunkRecord

#: Default budget on the CPU (bytes): chunks of this size ran faster than 1 GiB ones (their
#: temporaries are reused instead of fresh pages at every call).
CPU_MEMORY_BUDGET = 256 << 20
#: The backend's own bytes per atom (positions, forces, indices, per-atom energies) in the prior.
BACKEND_BYTES_PER_ATOM = 200
ENV_BUDGET = "MLIP_PROPS_MEMORY_BUDGET"
_OOM_MESSAGES = ("out of memory", "can't allocate memory", "cublas_status_alloc_failed")


def default_memory_budget(device: torch.device) -> int:
    """Bytes of workspace one chunk may use: ``MLIP_PROPS_MEMORY_BUDGET`` (in MiB), else half the
    free GPU memory on CUDA, else 256 MiB (on the CPU, chunks of this size ran faster than 1 GiB
    ones: their temporaries are reused instead of fresh pages at every call)."""
    env = os.environ.get(ENV_BUDGET)
    if env:
        value = float(env)
        if not value > 0:
            raise ValueError(f"{ENV_BUDGET}={env!r}: the memory budget must be a positive number of MiB")
        return int(value * 2**20)
    if torch.device(device).type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(0.5 * free)
    return CPU_MEMORY_BUDGET


def plan_chunks(costs: Sequence[float], budget: float) -> list[list[int]]:
    """Split structures (in order) into consecutive chunks whose summed cost stays within budget
    (a structure costlier than the budget gets a chunk of its own)."""
    chunks: list[list[int]] = []
    current: list[int] = []
    total = 0.0
    for k, c in enumerate(costs):
        if current and total + c > budget:
            chunks.append(current)
            current, total = [], 0.0
        current.append(k)
        total += c
    if current:
        chunks.append(current)
    return chunks


def next_chunk_end(costs: np.ndarray, start: int, budget: float, max_count: int | None = None) -> int:
    """End (exclusive) of the chunk that starts at ``start``: the consecutive structures whose
    summed cost stays within ``budget`` (at least one, at most ``max_count``), as
    :func:`plan_chunks` groups them."""
    total = 0.0
    end = start
    for c in costs[start:]:
        if end > start and total + c > budget:
            break
        total += float(c)
        end += 1
        if max_count is not None and end - start >= max_count:
            break
    return end


class StructureMemoryError(MemoryError):
    """One structure alone does not fit in memory (out-of-memory at the smallest chunk)."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an out-of-memory error of torch on any device: ``torch.OutOfMemoryError`` (CUDA),
    a ``RuntimeError`` saying "out of memory" or "DefaultCPUAllocator: can't allocate memory", or
    Python's ``MemoryError`` (but not :class:`StructureMemoryError`, which is final)."""
    if isinstance(exc, StructureMemoryError):
        return False
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, (oom, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MESSAGES)


def too_large_error(index: int, n_atoms: int, budget: int | None, device: torch.device, what: str,
                    cause: BaseException) -> StructureMemoryError:
    """The error for structure ``index`` that does not fit even alone (``budget``: the memory
    budget in bytes the chunks were sized to, ``None`` where there is none)."""
    where = "" if budget is None else f"; memory budget {budget / 2**20:.1f} MiB"
    knob = ("" if budget is None else
            f" The budget (memory_budget= in bytes, or the environment variable {ENV_BUDGET} in MiB) sizes "
            f"the chunks of several structures; one structure always runs alone.")
    return StructureMemoryError(
        f"structure {index} ({n_atoms} atoms) does not fit in memory on {device} even alone ({what}{where}): "
        f"{cause}. Evaluate it on a device with more free memory (device=), or in float32 (dtype=).{knob}")


class MemoryMeter:
    """Bytes that one chunk's pass held (``bytes`` after the ``with`` block).

    On CUDA: the caching allocator's peak above what was allocated on entry (its peak statistics
    are reset on entry). Elsewhere torch does not track peak allocation: the distinct storages
    autograd saves for backward while the block runs (a ``saved_tensors_hooks`` pack hook, which
    keeps no reference), plus the tensors passed to :meth:`count` (batch, graph, outputs). That
    is a lower bound: temporaries freed within the pass are not seen (``lower_bound``).
    """

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.method = "cuda_peak" if self.cuda else "saved_tensors"
        self.lower_bound = not self.cuda
        self.bytes: int | None = None
        self._storages: dict[tuple[int, int], int] = {}
        self._hooks = None
        self._base = 0

    def count(self, *objects: Any) -> None:
        """Count tensors (and the tensors inside dataclasses, lists and tuples) once each; a no-op
        on CUDA, where the allocator's peak already holds them."""
        if self.cuda:
            return
        for obj in objects:
            if isinstance(obj, torch.Tensor):
                self._add(obj)
            elif isinstance(obj, (list, tuple)):
                self.count(*obj)
            elif is_dataclass(obj) and not isinstance(obj, type):
                self.count(*(getattr(obj, f.name) for f in fields(obj)))

    def _add(self, t: torch.Tensor) -> None:
        try:
            s = t.untyped_storage()
            self._storages[(s.data_ptr(), s.nbytes())] = s.nbytes()
        except Exception:  # noqa: BLE001 - tensors without a storage (vmap, subclasses): their size
            self._storages[(id(t), -1)] = t.nelement() * t.element_size()

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        self._add(t)
        return t.detach()  # no reference to the saved tensor itself: no reference cycle

    def __enter__(self) -> "MemoryMeter":
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
            self._hooks.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.cuda:
            if exc_type is None:
                torch.cuda.synchronize(self.device)
                self.bytes = int(torch.cuda.max_memory_allocated(self.device) - self._base)
        else:
            self._hooks.__exit__(exc_type, exc, tb)
            self._hooks = None
            if exc_type is None:
                self.bytes = int(sum(self._storages.values()))
            self._storages = {}


class MemoryModel:
    """Workspace of one energy+forces+stress pass: ``per_atom x atoms + per_edge x edges`` bytes.

    Starts at the prior (the potential's static estimate); :meth:`observe` refits it to measured
    chunks: with one kind of chunk (or chunks that all have the same edges per atom) the prior is
    scaled; with chunks of different edges per atom both coefficients are fitted (least squares
    in relative error). The fit is then raised until it covers every measured chunk. With
    ``lower_bound`` (CPU measurements, which miss temporaries) it never goes below the prior.
    After an out-of-memory error :meth:`register_oom` multiplies every estimate.
    """

    def __init__(self, per_atom_bytes: float, per_edge_bytes: float, lower_bound: bool = False):
        self.prior = (float(per_atom_bytes), float(per_edge_bytes))
        self.per_atom, self.per_edge = self.prior
        self.lower_bound = lower_bound
        self.oom_factor = 1.0
        self._obs: list[tuple[float, float, float]] = []

    @property
    def observations(self) -> list[tuple[float, float, float]]:
        """(atoms, edges, measured bytes) of the chunks learned from."""
        return list(self._obs)

    @property
    def effective(self) -> tuple[float, float]:
        """(bytes per atom, bytes per edge) as chunks are sized now (out-of-memory factor included)."""
        return self.per_atom * self.oom_factor, self.per_edge * self.oom_factor

    def predict(self, n_atoms: Any, n_edges: Any) -> Any:
        """Estimated bytes (scalar or array) of a pass over this many atoms and edges."""
        a, b = self.effective
        return a * np.asarray(n_atoms, dtype=float) + b * np.asarray(n_edges, dtype=float)

    def observe(self, n_atoms: float, n_edges: float, measured_bytes: float) -> None:
        if measured_bytes > 0 and n_atoms > 0:
            self._obs.append((float(n_atoms), float(n_edges), float(measured_bytes)))
            self._fit()

    def _fit(self) -> None:
        n, e, m = np.array(self._obs).T
        a0, b0 = self.prior
        a, b = a0, b0
        ratio = e / n
        if len(n) >= 2 and ratio.max() > 1.25 * ratio.min():
            sol, *_ = np.linalg.lstsq(np.stack([n / m, e / m], axis=1), np.ones_like(m), rcond=None)
            if np.all(sol > 0):
                a, b = float(sol[0]), float(sol[1])
        cover = float(np.max(m / (a * n + b * e)))  # the smallest multiple that covers every chunk
        a, b = a * cover, b * cover
        if self.lower_bound:
            a, b = max(a, a0), max(b, b0)
        self.per_atom, self.per_edge = a, b

    def register_oom(self, predicted_bytes: float, budget: float) -> None:
        """A chunk estimated at ``predicted_bytes`` did not fit: from now on estimate it at twice
        the budget or more, so that half of it is the most a chunk holds."""
        self.oom_factor *= max(2.0, 2.0 * budget / max(predicted_bytes, 1.0))


def attempt_chunk(fn: Callable[[], None], meter: MemoryMeter | None, device: torch.device) -> BaseException | None:
    """Run ``fn`` (inside ``meter``); the out-of-memory error it raised, or None on success."""
    try:
        if meter is None:
            fn()
        else:
            with meter:
                fn()
        return None
    except BaseException as exc:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
        if not is_out_of_memory(exc):
            raise
        error = RuntimeError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    # outside the except block: the traceback (and the tensors its frames hold) is released
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return error


#: On the CPU (where measuring costs Python work for every saved tensor) the first chunks are
#: measured, and later ones only when their edges per atom fall outside those measured.
CPU_MEASURED_CHUNKS = 2


def _measure(model: MemoryModel, device: torch.device, hessian: bool, n_atoms: np.ndarray, n_edges: np.ndarray) -> bool:
    """Whether to measure a chunk: always on CUDA (the allocator's peak is free); on the CPU not
    for Hessian chunks, and for energy+forces+stress chunks the first ``CPU_MEASURED_CHUNKS``
    and any whose edges per atom lie outside the range measured so far (by more than 10 %)."""
    if device.type == "cuda":
        return True
    if hessian:
        return False
    ratios = [e / n for n, e, _ in model.observations]
    if len(ratios) < CPU_MEASURED_CHUNKS:
        return True
    r = float(n_edges.sum()) / max(float(n_atoms.sum()), 1.0)
    return not (0.9 * min(ratios) <= r <= 1.1 * max(ratios))


def run_chunks(
    run: Callable[[int, int, int | None, MemoryMeter | None], None],
    n_atoms: np.ndarray,
    n_edges: np.ndarray,
    model: MemoryModel,
    budget: int,
    device: torch.device,
    *,
    hessian: bool = False,
    probe: Callable[[int, int, MemoryMeter], None] | None = None,
    progress: bool = False,
    names: Sequence[int] | None = None,
) -> ChunkRecord:
    """Run ``run(b0, b1, hessian_block, meter)`` over consecutive chunks ``[b0, b1)`` of the
    structures, sized by ``model`` to ``budget`` and relearned after every measured chunk
    (:func:`_measure` says which), halving on out-of-memory (see the module docstring).
    Energy+forces+stress chunks are learned from; for Hessians ``probe(b0, b1, meter)`` (an
    energy+forces pass) is measured on the first chunk instead, and the Hessian chunks are not
    learned from (measured on CUDA only). ``names``: the index by which a structure that does
    not fit alone is named in the error (default its position, 0..n-1).
    Returns the :class:`ChunkRecord`."""
    n_atoms = np.asarray(n_atoms, dtype=float)
    n_edges = np.asarray(n_edges, dtype=float)
    n_structures = len(n_atoms)
    sizes: list[int] = []
    measured: list[int | None] = []
    retries = 0
    method = "cuda_peak" if device.type == "cuda" else "saved_tensors"

    def costs(start: int, end: int) -> np.ndarray:
        """Estimated bytes of structures start..end-1 under the model as it is now."""
        w = model.predict(n_atoms[start:end], n_edges[start:end])
        return w * 3 * n_atoms[start:end] if hessian else w

    def chunk_end(start: int, cap: int | None) -> int:
        """:func:`next_chunk_end` from ``start``, pricing only a window of structures that grows
        until the chunk closes (not all of them after every chunk)."""
        window = 64
        while True:
            stop = min(n_structures, start + window)
            end = start + next_chunk_end(costs(start, stop), 0, budget, cap)
            if end < stop or stop == n_structures or (cap is not None and end - start >= cap):
                return end
            window *= 4

    def halve(start: int, end: int, block: int | None, what: str, error: BaseException):
        """(structure cap, block cap) after an out-of-memory error, or raise for one structure."""
        model.register_oom(float(costs(start, end).sum()), budget)
        if end - start > 1:
            return (end - start) // 2, None
        if block is not None and block > 1:
            return 1, block // 2
        raise too_large_error(start if names is None else names[start], int(n_atoms[start]), budget, device, what,
                              error)

    probe_bytes = None
    if hessian and probe is not None and n_structures:
        cap = None
        while True:
            end = chunk_end(0, cap)
            meter = MemoryMeter(device)
            error = attempt_chunk(lambda: probe(0, end, meter), meter, device)
            if error is None:
                probe_bytes = meter.bytes
                if meter.bytes:
                    model.observe(n_atoms[:end].sum(), n_edges[:end].sum(), meter.bytes)
                break
            retries += 1
            cap, _ = halve(0, end, None, "energy and forces", error)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_structures, desc="evaluate", unit="structure")
    start, cap, block_cap = 0, None, None
    while start < n_structures:
        end = chunk_end(start, cap)
        block = None
        if hessian:
            per_vec = float(model.predict(n_atoms[start:end].sum(), n_edges[start:end].sum()))
            block = int(max(1, min(3 * n_atoms[start:end].max(), budget // max(per_vec, 1.0))))
            if block_cap is not None:
                block = min(block, block_cap)
        meter = MemoryMeter(device) if _measure(model, device, hessian, n_atoms[start:end], n_edges[start:end]) else None
        error = attempt_chunk(lambda: run(start, end, block, meter), meter, device)
        if error is None:
            sizes.append(end - start)
            measured.append(None if meter is None else meter.bytes)
            if meter is not None and meter.bytes and not hessian:
                model.observe(n_atoms[start:end].sum(), n_edges[start:end].sum(), meter.bytes)
            if bar is not None:
                bar.update(end - start)
            start, cap, block_cap = end, None, None
            continue
        retries += 1
        what = (f"Hessian with {block} Hessian-vector products at a time" if hessian
                else "energy, forces and stress")
        cap, block_cap = halve(start, end, block, what, error)
    if bar is not None:
        bar.close()
    per_atom, per_edge = model.effective
    return ChunkRecord(chunks=sizes, memory_budget_bytes=int(budget), memory_per_atom_bytes=float(per_atom),
                       memory_per_edge_bytes=float(per_edge), measured_bytes=measured, measure=method,
                       probe_bytes=probe_bytes, retries=retries)
