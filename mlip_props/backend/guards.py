"""Size guards: what a job will need, estimated before it starts, refused above a limit.

A user who asks for the dense Hessian of 7,000 atoms, a 300x300x300 repeat or a 1000 A cutoff
should get an error naming the structure, the estimate and the knob to change, not an hour of
computing or an out-of-memory kill. Each guard here estimates from sizes alone (no computation)
and raises :class:`SizeLimitError` (a ``ValueError``, so the CLI exits 2) when the estimate is
above its limit. A limit comes from the guard's argument, else its environment variable, else
the default of :data:`LIMITS`:

* ``MLIP_PROPS_MAX_HESSIAN_GIB`` (0.5): memory of dense Hessians, (3N)^2 numbers each;
* ``MLIP_PROPS_MAX_NEIGHBOR_GIB`` (8): memory of one structure's neighbour list;
* ``MLIP_PROPS_MAX_NEIGHBOR_S`` (120): estimated time of one neighbour search, seconds;
* ``MLIP_PROPS_MAX_ATOMS`` (1,000,000): atoms of a structure built from a name (``repeat=``);
* ``MLIP_PROPS_MAX_SUPERCELL_ATOMS`` (5,000): atoms of a phonon supercell.

Besides its limit, a memory estimate above the memory available now (the host's
``MemAvailable``, or the free memory of the CUDA device) is refused too.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["SizeLimitError", "LIMITS", "limit", "available_memory_bytes", "dense_hessian_bytes",
           "check_dense_hessians", "NeighborEstimate", "neighbor_search_estimate", "check_neighbor_search",
           "check_atom_count"]

GIB = float(2**30)


class SizeLimitError(ValueError):
    """A job refused before it started because its estimated size is above a limit."""


#: environment variable -> (default, unit, what it bounds)
LIMITS: dict[str, tuple[float, str, str]] = {
    "MLIP_PROPS_MAX_HESSIAN_GIB": (0.5, "GiB", "memory of the dense Hessians of one evaluation"),
    "MLIP_PROPS_MAX_NEIGHBOR_GIB": (8.0, "GiB", "memory of one structure's neighbour list"),
    "MLIP_PROPS_MAX_NEIGHBOR_S": (120.0, "s", "estimated time of one structure's neighbour search"),
    "MLIP_PROPS_MAX_ATOMS": (1_000_000, "atoms", "atoms of a structure built from a name"),
    "MLIP_PROPS_MAX_SUPERCELL_ATOMS": (5_000, "atoms", "atoms of a phonon supercell"),
}


def limit(env: str, override: float | None = None) -> float:
    """The limit named ``env``: ``override`` when given, else the environment variable, else the
    default of :data:`LIMITS`. ``ValueError`` for a value that is not a positive number."""
    if override is not None:
        value: Any = override
        source = "argument"
    else:
        text = os.environ.get(env)
        if text is None or not text.strip():
            return float(LIMITS[env][0])
        source = f"${env}"
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{source}={text!r}: expected a positive number ({LIMITS[env][1]})") from None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (float(value) > 0):  # NaN fails too
        raise ValueError(f"{source} for {env}: expected a positive number ({LIMITS[env][1]}), got {value!r}")
    return float(value)


def _raise_hint(env: str) -> str:
    default, unit, _ = LIMITS[env]
    shown = f"{default:,.0f}" if unit == "atoms" else f"{default:g}"
    return f"to go ahead, raise the limit: {env}=<{unit}> in the environment (default {shown} {unit})"


def available_memory_bytes(device: Any = None) -> int | None:
    """Memory available now, in bytes: the free memory of a CUDA ``device``, else the host's
    available memory (``/proc/meminfo`` MemAvailable, or psutil); ``None`` when unknown."""
    try:
        import torch

        dev = torch.device(device) if device is not None else None
        if dev is not None and dev.type == "cuda" and torch.cuda.is_available():
            return int(torch.cuda.mem_get_info(dev)[0])
    except Exception:  # noqa: BLE001 - an estimate only: fall back to the host
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001
        return None


def _check_available(estimate: float, what: str, device: Any) -> None:
    avail = available_memory_bytes(device)
    if avail is not None and estimate > avail:
        where = "on the device" if device is not None and "cuda" in str(device) else "on this machine"
        raise SizeLimitError(f"{what} needs about {estimate / GIB:.2f} GiB, more than the "
                             f"{avail / GIB:.2f} GiB of memory available now {where}")


# ---------------------------------------------------------------------------------------------
# dense Hessians
# ---------------------------------------------------------------------------------------------
#: copies of the (3N)^2 matrix held while a dense Hessian is assembled (the result and the
#: buffer it is assembled in; the products themselves are chunked by the memory budget)
HESSIAN_COPIES = 2


def dense_hessian_bytes(n_atoms: int, itemsize: int = 8) -> float:
    """Bytes of one dense Hessian of ``n_atoms`` atoms while it is assembled:
    ``HESSIAN_COPIES`` x (3N)^2 numbers of ``itemsize`` bytes."""
    return float(HESSIAN_COPIES) * (3.0 * n_atoms) ** 2 * itemsize


def check_dense_hessians(
    n_atoms: Sequence[int],
    properties: Sequence[str] = ("hessian",),
    *,
    dtype: Any = None,
    device: Any = None,
    oracle: bool = False,
    max_gib: float | None = None,
) -> None:
    """Refuse dense Hessians (``"hessian"`` in ``properties``) whose memory estimate is above
    ``max_gib`` (default ``$MLIP_PROPS_MAX_HESSIAN_GIB``, 0.5 GiB) or above the memory
    available now. The estimate: the (3n)^2 results of all structures plus one assembly buffer
    of the largest (:func:`dense_hessian_bytes`), at the dtype's size (float64: 8 bytes).
    Time grows as n^2 too: 3n Hessian-vector products over the whole structure (torch), or 6n
    single points (``oracle``: finite differences).

    Raises :class:`SizeLimitError` naming the largest structure, its atom count, the estimate
    in GiB and the environment variable that raises the limit."""
    if "hessian" not in tuple(properties):
        return
    sizes = np.asarray(n_atoms, dtype=np.int64).reshape(-1)
    if not len(sizes):
        return
    itemsize = 4 if dtype is not None and "float32" in str(dtype) else 8
    per = (3.0 * sizes) ** 2 * itemsize
    k = int(np.argmax(sizes))
    estimate = float(per.sum() + (HESSIAN_COPIES - 1) * per[k])
    cap = limit("MLIP_PROPS_MAX_HESSIAN_GIB", max_gib)
    n = int(sizes[k])
    work = (f"{6 * n:,} single points of the oracle (finite differences)" if oracle else
            f"{3 * n:,} Hessian-vector products over all {n:,} atoms")
    what = (f"structure {k}: the dense Hessian ({3 * n:,} x {3 * n:,}) of its {n:,} atoms"
            + (f" (with those of the other {len(sizes) - 1} structures)" if len(sizes) > 1 else ""))
    if estimate > cap * GIB:
        raise SizeLimitError(
            f"{what} needs about {estimate / GIB:.2f} GiB and {work} (memory and time grow as the square "
            f"of the atom count), above the limit of {cap:g} GiB; use fewer atoms, Hessian rows "
            f"(phonons), or {_raise_hint('MLIP_PROPS_MAX_HESSIAN_GIB')}")
    _check_available(estimate, what, device)


# ---------------------------------------------------------------------------------------------
# neighbour lists
# ---------------------------------------------------------------------------------------------
#: bytes per pair of a neighbour list, from the search to the graph: the library's arrays
#: (indices, shifts, distance, vector: 60 bytes, capacity grown by doubling), their int64 copies
#: and the graph's tensors (edge index, shifts, structure, vector)
BYTES_PER_PAIR = 250
#: the neighbour-list library's cell list (vesin's CPU cell list): at most this many cells
VESIN_MAX_CELLS = 1e5
#: seconds per visit of a pair of cells and per pair found (measured on a shared CPU core
#: with vesin 0.6.2: ~40 ns per cell pair of an almost empty thin cell, ~1-3 us per pair
#: of a dense crystal, conversion included)
SECONDS_PER_CELL_VISIT = 40e-9
SECONDS_PER_PAIR = 2e-6


#: neighbour lists smaller than this (bytes) are not compared with the memory available
_CHECK_AVAILABLE_ABOVE = 256 * 2**20


@dataclass(frozen=True)
class NeighborEstimate:
    """What a neighbour search of one structure will cost, from its cell and atom count.

    ``pairs``: estimated pairs within the cutoff (uniform density of the atoms, plus the atoms'
    own periodic images); ``bytes``: their memory (``BYTES_PER_PAIR`` each); ``cells``: the
    cell-list shape the library will use; ``search``: neighbouring cells it visits per cell
    and direction; ``seconds``: estimated time; ``crashes``: True when the library's cell list
    would get zero cells in a direction (a division by zero that kills the process)."""

    pairs: float
    bytes: float
    cells: tuple[int, int, int]
    search: tuple[int, int, int]
    seconds: float
    crashes: bool
    widths: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _face_distances(box: np.ndarray) -> tuple[tuple[float, float, float], float]:
    """Distances between opposite faces of ``box`` (rows = vectors), V / |b x c| ..., and the
    volume V (plain floats: the guard runs before every neighbour search)."""
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = box.tolist()
    crosses = ((by * cz - bz * cy, bz * cx - bx * cz, bx * cy - by * cx),
               (cy * az - cz * ay, cz * ax - cx * az, cx * ay - cy * ax),
               (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx))
    vol = abs(ax * crosses[0][0] + ay * crosses[0][1] + az * crosses[0][2])
    widths = tuple(vol / max(math.sqrt(x * x + y * y + z * z), 1e-300) for x, y, z in crosses)
    return widths, vol  # type: ignore[return-value]


def _vesin_cells(widths: np.ndarray, cutoff: float) -> tuple[list[int], list[int]]:
    """The cell-list shape and search range vesin's CPU cell list computes (same arithmetic)."""
    n = [max(1.0, math.trunc(w / cutoff)) for w in widths]
    if n[0] * n[1] * n[2] > VESIN_MAX_CELLS:
        rxy, ryz = n[0] / n[1], n[1] / n[2]
        n2 = math.trunc((VESIN_MAX_CELLS / (rxy * ryz * ryz)) ** (1.0 / 3.0))
        n1 = math.trunc(ryz * n2)
        n = [math.trunc(rxy * n1), n1, n2]
    cells = [int(x) for x in n]
    search = [max(1, math.ceil(cutoff * c / w)) if c > 0 else 0 for c, w in zip(cells, widths)]
    return cells, search


def neighbor_search_estimate(positions: np.ndarray, box: np.ndarray, pbc: Sequence[bool],
                             cutoff: float) -> NeighborEstimate:
    """Estimate a neighbour search within ``cutoff`` (A) of atoms ``positions`` in ``box`` (the
    3x3 box given to the library; rows = vectors), periodic along ``pbc``.

    Pairs: each of the N (N - 1) ordered pairs of distinct atoms counts the volume of the
    cutoff sphere over the volume the atoms fill (the cell, stretched to the atoms' extent or
    the cutoff along non-periodic directions; at most 1 per pair without periodicity); each atom
    adds its own images within the cutoff, bounded by prod_d (2 floor(rc / w_d) + 1) - 1 over
    the periodic face distances w_d."""
    pos = np.asarray(positions, dtype=float).reshape(-1, 3)
    box = np.asarray(box, dtype=float)
    periodic = tuple(bool(p) for p in pbc)
    all_periodic, any_periodic = all(periodic), any(periodic)
    n = len(pos)
    rc = float(cutoff)
    widths, vol = _face_distances(box)
    cells, search = _vesin_cells(widths, rc)
    crashes = any(c < 1 for c in cells)
    if n and not all_periodic:
        frac = pos @ np.linalg.inv(box)
        for d in range(3):  # non-periodic: the box's width there -> the atoms' extent (at least rc)
            if not periodic[d]:
                extent = float(np.ptp(frac[:, d])) * widths[d]
                vol *= max(extent, rc) / max(widths[d], 1e-300)
    per_pair = 4.0 / 3.0 * math.pi * rc**3 / max(vol, 1e-300)
    if not any_periodic:
        per_pair = min(per_pair, 1.0)
    images = 1.0  # lattice points within rc of the origin: at most the box count ...
    for d in range(3):
        if periodic[d]:
            images *= 2.0 * math.floor(rc / widths[d]) + 1.0
    if all_periodic:  # ... and about the volume of a sphere grown by the widest face distance
        images = min(images, max(1.0, 4.0 / 3.0 * math.pi * (rc + max(widths)) ** 3 / max(vol, 1e-300)))
    pairs = float(n) * max(n - 1, 0) * per_pair + float(n) * (images - 1.0)
    visits = float(math.prod(cells)) * float(math.prod(2 * s + 1 for s in search)) if not crashes else 0.0
    seconds = visits * SECONDS_PER_CELL_VISIT + pairs * SECONDS_PER_PAIR
    return NeighborEstimate(pairs=pairs, bytes=pairs * BYTES_PER_PAIR, cells=tuple(cells), search=tuple(search),
                            seconds=seconds, crashes=crashes, widths=widths)


def check_neighbor_search(positions: np.ndarray, box: np.ndarray, pbc: Sequence[bool], cutoff: float, *,
                          index: int = 0, max_gib: float | None = None, max_seconds: float | None = None,
                          ) -> NeighborEstimate:
    """Refuse a neighbour search (see :func:`neighbor_search_estimate`) that would crash the
    library, need more than ``max_gib`` (``$MLIP_PROPS_MAX_NEIGHBOR_GIB``, 8 GiB) or the memory
    available now, or take longer than ``max_seconds`` (``$MLIP_PROPS_MAX_NEIGHBOR_S``, 120 s).
    Returns the estimate; raises :class:`SizeLimitError` naming ``structure {index}``."""
    est = neighbor_search_estimate(positions, box, pbc, cutoff)
    cap = limit("MLIP_PROPS_MAX_NEIGHBOR_GIB", max_gib)
    tcap = limit("MLIP_PROPS_MAX_NEIGHBOR_S", max_seconds)
    if not (est.crashes or est.bytes > cap * GIB or est.seconds > tcap or est.bytes > _CHECK_AVAILABLE_ABOVE):
        return est
    n = len(np.asarray(positions).reshape(-1, 3))
    widths = ", ".join(f"{w:.3g}" for w in est.widths)
    head = f"structure {index}: neighbour list of {n:,} atoms within {cutoff:g} A (cell widths {widths} A)"
    if est.crashes:
        raise SizeLimitError(
            f"{head}: the neighbour-list library (vesin) cannot search this cell: it is too thin along one "
            f"direction for how wide it is along the others (its cell list would get zero bins and the "
            f"process would die of a floating-point exception); repeat the cell along its thin direction "
            f"(atoms.repeat) or check the cell")
    if est.bytes > cap * GIB:
        raise SizeLimitError(
            f"{head}: about {est.pairs:.3g} pairs, {est.bytes / GIB:.3g} GiB, above the limit of {cap:g} GiB; "
            f"use a shorter cutoff or fewer atoms, or {_raise_hint('MLIP_PROPS_MAX_NEIGHBOR_GIB')}")
    if est.seconds > tcap:
        raise SizeLimitError(
            f"{head}: the search would visit {math.prod(est.cells):,} cells x "
            f"{math.prod(2 * s + 1 for s in est.search):,} neighbouring cells and find about "
            f"{est.pairs:.3g} pairs, about {est.seconds:.3g} s, above the limit of {tcap:g} s (a cell much "
            f"thinner than the cutoff has very many images); repeat the cell along its thin direction, use a "
            f"shorter cutoff, or {_raise_hint('MLIP_PROPS_MAX_NEIGHBOR_S')}")
    if est.bytes > _CHECK_AVAILABLE_ABOVE:  # reading the free memory costs more than the estimate
        _check_available(est.bytes, head, None)
    return est


# ---------------------------------------------------------------------------------------------
# atom counts
# ---------------------------------------------------------------------------------------------
#: bytes per atom of an ASE ``Atoms`` while it is built by ``repeat`` (positions, numbers and
#: the temporary tiles)
BYTES_PER_BUILT_ATOM = 100


def check_atom_count(n_atoms: int, what: str, *, env: str = "MLIP_PROPS_MAX_ATOMS", maximum: float | None = None,
                     advice: str = "", note: str | None = None, at_least: bool = False) -> None:
    """Refuse a structure of ``n_atoms`` atoms above the limit ``env`` (``maximum`` overrides it).
    ``what`` names the structure in the message, ``advice`` says what to change, ``note`` why
    the size matters (default: the memory to build it); ``at_least``: ``n_atoms`` is a lower bound."""
    cap = limit(env, maximum)
    if n_atoms > cap:
        why = (f"about {n_atoms * BYTES_PER_BUILT_ATOM / GIB:.2g} GiB just to build, and far more to evaluate"
               if note is None else note)
        raise SizeLimitError(
            f"{what}: {'at least ' if at_least else ''}{n_atoms:,} atoms ({why}) is above the limit of "
            f"{cap:,.0f} atoms ({LIMITS[env][2]}); {advice + ', or ' if advice else ''}{_raise_hint(env)}")
