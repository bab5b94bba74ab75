"""Batched relaxation of positions and (optionally) the cell.

All structures relax together: one backend call per optimizer step evaluates every structure
that has not converged yet; a converged structure leaves the batch. That call has the memory
protection of ``evaluate`` (:class:`~mlip_props.backend.batch_chunks.ChunkedBatchEvaluator`):
structures that do not fit the memory budget together run in consecutive chunks, an
out-of-memory error halves the chunk, and a structure that does not fit alone raises
:class:`~mlip_props.backend.chunking.StructureMemoryError` naming its index. The optimizer is FIRE
(Bitzek et al., Phys. Rev. Lett. 97, 170201 (2006)) with ASE's default parameters, run on
tensors, per structure (its own time step, mixing and velocity).

The cell is parametrised by a deformation gradient F relative to the input cell, as in ASE's
``UnitCellFilter`` (cell = cell0 F^T, positions x = u F^T); the generalised cell force is the
virial -V (sigma + p I) F^-T divided by a cell factor (the number of atoms), so a target
pressure p (GPa) gives the enthalpy minimum. ``keep_symmetry`` symmetrises forces and stress
with the input's space-group operations (spglib), ASE ``FixSymmetry`` semantics.

How properties relax (:class:`RelaxSettings`, :data:`PROPERTY_RELAXATION`,
:data:`ENERGY_RELAXATION`, :func:`resolve_relaxation`) lives in
:mod:`mlip_props.properties.relax_settings` and is re-exported here.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np
import torch
from ase import Atoms

from ..backend import Batch, build_neighbor_graph, is_oracle
from ..backend.batch_chunks import ChunkedBatchEvaluator
from ..backend.evaluate import prepare_structures
from ..backend.inputs import is_single_structure, structure_list  # noqa: F401  (re-exported)
from ..backend.neighbors import select_graph
from ..backend.precision import compute_precision
from ..backend.units import EV_A3_TO_GPA
from ..potentials.committee import mean_over_members
from ..validation import check_number
from .relax_settings import ENERGY_RELAXATION, PROPERTY_RELAXATION, RelaxSettings, resolve_relaxation  # noqa: F401
from .result import PropertyResult

# ASE FIRE defaults
_DT, _DTMAX, _MAXSTEP, _NMIN, _FINC, _FDEC, _ASTART, _FA = 0.1, 1.0, 0.2, 5, 1.1, 0.5, 0.1, 0.99


@dataclass(frozen=True)
class RelaxResult(PropertyResult):
    """A relaxed structure and how the relaxation went.

    ``energy_eV``: final energy; ``enthalpy_eV``: E + pV (equal to the energy at zero pressure
    or without cell relaxation); ``max_force_eV_A``: largest atomic force norm at the end;
    ``max_stress_GPa``: largest component of sigma + p I at the end (``None`` when the cell
    was fixed); ``converged``: both below their thresholds within ``max_steps``.
    ``fmax_target_eV_A`` / ``smax_target_GPa``: the thresholds that applied (they depend on the
    compute precision, see :meth:`RelaxSettings.tolerances`); ``stalled``: the relaxation was
    stopped because its residual had not fallen for ``stall_steps`` steps (the noise floor of the
    compute precision, or a flat surface): ``converged`` is then False and ``max_force_eV_A`` /
    ``max_stress_GPa`` are the residuals reached; ``optimizer``: ``"fire"`` or ``"newton"``
    (``"newton+fire"`` when the Newton steps handed over to FIRE).
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = (
        "energy_eV", "volume_A3_per_atom", "max_force_eV_A", "max_stress_GPa", "converged", "stalled",)

    atoms: Atoms
    energy_eV: float
    enthalpy_eV: float
    converged: bool
    n_steps: int
    max_force_eV_A: float
    max_stress_GPa: float | None
    pressure_GPa: float
    volume_A3_per_atom: float | None
    fmax_target_eV_A: float = float("nan")
    smax_target_GPa: float | None = None
    stalled: bool = False
    optimizer: str = "fire"


class _Symmetrizer:
    """Space-group symmetrisation of forces and stress for one structure (ASE FixSymmetry)."""

    def __init__(self, atoms: Atoms, symprec: float):
        from ase.spacegroup.symmetrize import prep_symmetry

        self.rot, self.trans, self.symm_map = prep_symmetry(atoms, symprec=symprec)

    def forces(self, cell: np.ndarray, f: np.ndarray) -> np.ndarray:
        from ase.spacegroup.symmetrize import symmetrize_rank1

        return symmetrize_rank1(cell, np.linalg.inv(cell).T, f, self.rot, self.trans, self.symm_map)

    def stress(self, cell: np.ndarray, s33: np.ndarray) -> np.ndarray:
        from ase.spacegroup.symmetrize import symmetrize_rank2

        return symmetrize_rank2(cell, np.linalg.inv(cell), s33, self.rot)


def _symmetrizer(atoms: Atoms, symprec: float, index: int) -> _Symmetrizer:
    """:class:`_Symmetrizer` of structure ``index``; a failure of the symmetry library (spglib)
    becomes a ``ValueError`` naming the structure."""
    try:
        return _Symmetrizer(atoms, symprec)
    except Exception as exc:  # noqa: BLE001 - spglib raises its own error types
        raise ValueError(f"structure {index}: the symmetry analysis kept by the relaxation (spglib) failed: "
                         f"{exc} (atoms too close together or a degenerate cell?)") from exc


def _voigt_to_33(s: torch.Tensor) -> torch.Tensor:
    xx, yy, zz, yz, xz, xy = s.unbind(-1)
    return torch.stack([torch.stack([xx, xy, xz], -1), torch.stack([xy, yy, yz], -1), torch.stack([xz, yz, zz], -1)], -2)


def _graph_stale(graph, x, cells, x_ref, cells_ref, sidx, active_idx, reach) -> bool:
    """True when a pair may have crossed cutoff + skin since the graph was built: twice the
    largest atomic displacement plus the change of the longest lattice translation exceeds the skin."""
    disp = (x - x_ref).norm(dim=1)
    B = cells.shape[0]
    dmax = torch.zeros(B, dtype=x.dtype, device=x.device).scatter_reduce(0, sidx, disp, reduce="amax", include_self=True)
    if torch.equal(cells, cells_ref):  # fixed cell (and molecules, whose cell may be singular)
        cell_term = torch.zeros_like(dmax)
    else:
        rel = torch.linalg.solve(cells_ref, cells) - torch.eye(3, dtype=x.dtype, device=x.device)
        cell_term = torch.linalg.matrix_norm(rel) * reach  # Frobenius >= spectral norm: conservative
    bad = (2 * dmax + cell_term)[active_idx] > graph.skin
    return bool(bad.any())


def relax(
    potential: Any,
    structures: Any,
    *,
    fmax: float = 0.005,
    relax_cell: bool = False,
    pressure_GPa: float = 0.0,
    smax_GPa: float = 0.01,
    max_steps: int = 2000,
    keep_symmetry: bool = False,
    symprec: float = 1e-4,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    skin_A: float = 0.5,
    settings: RelaxSettings | None = None,
    stall_steps: int = 200,
    pressures_GPa: Sequence[float] | None = None,
) -> RelaxResult | list[RelaxResult]:
    """Relax one structure or many (batched) to ``fmax`` (eV/A) and, with ``relax_cell``, to a
    residual stress below ``smax_GPa`` at the target ``pressure_GPa``.

    ``settings`` (a :class:`RelaxSettings`, as the properties pass it) replaces ``fmax``,
    ``relax_cell``, ``smax_GPa``, ``max_steps``, ``keep_symmetry`` and ``pressure_GPa``. The
    defaults here (0.005 eV/A, 0.01 GPa, ions only) give a geometry to look at or to start from;
    properties relax with their own, tighter :class:`RelaxSettings`. ``pressures_GPa``: one target
    pressure per structure, replacing ``pressure_GPa`` (and the settings' one), so that a pressure
    scan relaxes all its (structure, pressure) pairs in one batch.

    Returns one :class:`RelaxResult` for a single structure, a list for a list. A structure
    that does not converge in ``max_steps`` is returned with ``converged=False`` (never raised,
    never hidden). Committees relax on the committee-mean energy surface. The neighbour graph
    is built with a ``skin_A`` margin and reused until an atom has moved, or the cell has
    deformed, enough that a pair could have crossed the cutoff.

    With ``settings`` the thresholds follow the compute precision of ``potential`` and ``dtype``
    (:meth:`RelaxSettings.tolerances`: float64 as given, float32 no tighter than float32 noise
    lets a relaxation reach); explicit ``fmax``/``smax_GPa`` apply as given. A structure whose
    residual (the larger of force/fmax and stress/smax) has not fallen by 5 % for
    ``stall_steps`` consecutive steps stops there, ``converged=False`` and ``stalled=True``, with
    the residual it reached (it is not spun on to ``max_steps``).
    """
    if settings is not None:
        relax_cell = settings.cell
        fmax, smax_GPa = settings.tolerances(compute_precision(potential, dtype))
        max_steps, keep_symmetry, pressure_GPa = settings.max_steps, settings.keep_symmetry, settings.pressure_GPa
        symprec, stall_steps = settings.symprec_A, settings.stall_steps
    for name, value in (("fmax", fmax), ("smax_GPa", smax_GPa), ("symprec", symprec)):
        check_number(name, value, minimum=0.0, exclusive_minimum=True)
    max_steps = check_number("max_steps", max_steps, minimum=0, integer=True)
    stall_steps = check_number("stall_steps", stall_steps, minimum=1, integer=True)
    check_number("pressure_GPa", pressure_GPa)
    check_number("skin_A", skin_A, minimum=0.0)
    potential = mean_over_members(potential)
    single, items = structure_list(structures)
    atoms_list = prepare_structures(items)
    if settings is not None and relax_cell and not any(a.pbc.all() for a in atoms_list):
        relax_cell = False  # RelaxSettings.cell is ignored for molecules
    if relax_cell:
        for k, a in enumerate(atoms_list):
            if not a.pbc.all():
                raise ValueError(f"structure {k}: relax_cell needs a cell periodic in all three directions")
    if pressures_GPa is None:
        pressures = np.full(len(atoms_list), float(pressure_GPa))
    else:
        pressures = np.asarray([check_number("pressures_GPa", v) for v in pressures_GPa], dtype=float)
        if pressures.shape != (len(atoms_list),):
            raise ValueError(f"pressures_GPa: one pressure per structure ({len(atoms_list)}), got {len(pressures)}")
    batch = Batch.from_structures(atoms_list, dtype=dtype, device=device, validate=False)
    dev, dt_ = batch.device, batch.dtype
    B = batch.n_structures
    sidx = batch.structure_index
    p_eV_A3 = torch.as_tensor(pressures / EV_A3_TO_GPA, dtype=dt_, device=dev)  # (B,)
    eye = torch.eye(3, dtype=dt_, device=dev)

    cell0 = batch.cells.clone()
    u = batch.positions.clone()  # reference-frame positions, x = u F^T
    F = eye.expand(B, 3, 3).clone()
    cell_factor = batch.n_atoms.to(dt_)  # as ASE's UnitCellFilter
    v_u = torch.zeros_like(u)
    v_c = torch.zeros_like(F)
    dt = torch.full((B,), _DT, dtype=dt_, device=dev)
    alpha = torch.full((B,), _ASTART, dtype=dt_, device=dev)
    n_pos = torch.zeros(B, dtype=torch.long, device=dev)
    first = torch.ones(B, dtype=torch.bool, device=dev)
    active = torch.ones(B, dtype=torch.bool, device=dev)
    steps = torch.zeros(B, dtype=torch.long, device=dev)
    energy = torch.zeros(B, dtype=dt_, device=dev)
    fmax_now = torch.zeros(B, dtype=dt_, device=dev)
    smax_now = torch.zeros(B, dtype=dt_, device=dev)
    best = torch.full((B,), float("inf"), dtype=torch.float64, device=dev)  # best residual / threshold
    last_gain = torch.zeros(B, dtype=torch.long, device=dev)  # step of the last 5 % improvement
    stalled = torch.zeros(B, dtype=torch.bool, device=dev)
    symm = [_symmetrizer(a, symprec, k) for k, a in enumerate(atoms_list)] if keep_symmetry else None
    props = ("energy", "forces", "stress") if relax_cell else ("energy", "forces")

    def per_structure_sum(x_atoms: torch.Tensor, x_cell: torch.Tensor | None) -> torch.Tensor:
        s = torch.zeros(B, dtype=dt_, device=dev).index_add(0, sidx, x_atoms.sum(-1))
        if x_cell is not None:
            s = s + x_cell.sum((-1, -2))
        return s

    use_graph = not is_oracle(potential) and skin_A > 0
    evaluator = ChunkedBatchEvaluator(potential)  # memory budget learned across the steps, OOM halving
    graph_full, x_ref, cells_ref = None, None, None
    # largest lattice translation a graph edge can carry, per structure (bounds S . delta-cell)
    reach = (getattr(potential, "cutoff", 0.0) or 0.0) + skin_A + cell0.norm(dim=-1).sum(-1)

    for it in range(max_steps + 1):
        idx = torch.nonzero(active).flatten()
        if idx.numel() == 0:
            break
        cells = torch.bmm(cell0, F.transpose(1, 2))
        x = torch.einsum("ni,nji->nj", u, F[sidx])
        cur = batch.with_positions(x).with_cells(cells)
        sub = cur.select(idx.tolist()) if idx.numel() < B else cur
        graph = None
        if use_graph:
            if graph_full is None or _graph_stale(graph_full, x, cells, x_ref, cells_ref, sidx, idx, reach):
                graph_full = build_neighbor_graph(cur, potential.cutoff, skin=skin_A,
                                                  half=bool(getattr(potential, "pairwise", False)))
                x_ref, cells_ref = x.clone(), cells.clone()
            graph = select_graph(graph_full, cur, idx.tolist(), sub) if idx.numel() < B else graph_full
        out = evaluator(sub, props, graph=graph, structure_ids=idx.tolist())
        e, f, s = out.energies, out.forces, out.stress
        atom_mask = active[sidx]
        forces = torch.zeros_like(u)
        forces[atom_mask] = f.detach()
        stress = torch.zeros(B, 6, dtype=dt_, device=dev)
        if s is not None:
            stress[idx] = s.detach()
        energy[idx] = e.detach()
        if symm is not None:
            fn = forces.cpu().numpy()
            sn = stress.cpu().numpy()
            ptr = batch.ptr.cpu().numpy()
            cn = cells.cpu().numpy()
            for b in idx.tolist():
                fn[ptr[b] : ptr[b + 1]] = symm[b].forces(cn[b], fn[ptr[b] : ptr[b + 1]])
                if relax_cell:
                    s33 = _voigt_to_33(torch.as_tensor(sn[b])).numpy()
                    s33 = symm[b].stress(cn[b], s33)
                    sn[b] = s33[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
            forces = torch.as_tensor(fn, dtype=dt_, device=dev)
            stress = torch.as_tensor(sn, dtype=dt_, device=dev)
        fnorm = forces.norm(dim=1)
        f_now = torch.zeros(B, dtype=dt_, device=dev).scatter_reduce(0, sidx, fnorm, reduce="amax", include_self=True)
        fmax_now = torch.where(active, f_now, fmax_now)  # structures that left keep their final residual
        done = fmax_now < fmax
        ratio = fmax_now.double() / fmax
        if relax_cell:
            resid = stress + p_eV_A3[:, None] * torch.tensor([1, 1, 1, 0, 0, 0], dtype=dt_, device=dev)
            smax_now = torch.where(active, resid.abs().max(dim=1).values * EV_A3_TO_GPA, smax_now)
            done = done & (smax_now < smax_GPa)
            ratio = torch.maximum(ratio, smax_now.double() / smax_GPa)
        gain = active & (ratio < 0.95 * best)
        best = torch.where(gain, ratio, best)
        last_gain = torch.where(gain, torch.full_like(last_gain, it), last_gain)
        stuck = active & ~done & (it - last_gain >= stall_steps)
        stalled = stalled | stuck
        newly = active & done
        active = active & ~done & ~stuck
        if it == max_steps or not bool(active.any()):
            break
        # generalised forces
        g_u = torch.einsum("ni,nij->nj", forces, F[sidx])
        g_c = None
        if relax_cell:
            vol = torch.linalg.det(cells).abs()
            virial = -vol[:, None, None] * (_voigt_to_33(stress) + p_eV_A3[:, None, None] * eye)
            virial = torch.linalg.solve(F, virial.transpose(1, 2)).transpose(1, 2)
            g_c = virial / cell_factor[:, None, None]
        amask = active[sidx][:, None].to(dt_)
        cmask = active[:, None, None].to(dt_)
        g_u = g_u * amask
        if g_c is not None:
            g_c = g_c * cmask
        # FIRE, per structure
        vf = per_structure_sum(g_u * v_u, None if g_c is None else g_c * v_c)
        fnorm2 = per_structure_sum(g_u * g_u, None if g_c is None else g_c * g_c).sqrt()
        vnorm = per_structure_sum(v_u * v_u, v_c * v_c if relax_cell else None).sqrt()
        uphill = (vf <= 0) & ~first & active
        downhill = (vf > 0) & ~first & active
        mix = torch.where(downhill, alpha, torch.zeros_like(alpha))
        scale = torch.where(fnorm2 > 0, vnorm / fnorm2.clamp_min(1e-300), torch.zeros_like(vnorm))
        v_u = (1 - mix[sidx, None]) * v_u + (mix * scale)[sidx, None] * g_u
        if relax_cell:
            v_c = (1 - mix[:, None, None]) * v_c + (mix * scale)[:, None, None] * g_c
        grow = downhill & (n_pos > _NMIN)
        dt = torch.where(grow, torch.clamp(dt * _FINC, max=_DTMAX), dt)
        alpha = torch.where(grow, alpha * _FA, alpha)
        n_pos = torch.where(downhill, n_pos + 1, n_pos)
        v_u = v_u * (~uphill)[sidx, None]
        if relax_cell:
            v_c = v_c * (~uphill)[:, None, None]
        alpha = torch.where(uphill, torch.full_like(alpha, _ASTART), alpha)
        dt = torch.where(uphill, dt * _FDEC, dt)
        n_pos = torch.where(uphill, torch.zeros_like(n_pos), n_pos)
        first = first & ~active
        v_u = v_u + dt[sidx, None] * g_u
        if relax_cell:
            v_c = v_c + dt[:, None, None] * g_c
        dr_u = dt[sidx, None] * v_u * amask
        dr_c = dt[:, None, None] * v_c * cmask if relax_cell else None
        norm = per_structure_sum(dr_u * dr_u, None if dr_c is None else dr_c * dr_c).sqrt()
        shrink = torch.where(norm > _MAXSTEP, _MAXSTEP / norm.clamp_min(1e-300), torch.ones_like(norm))
        u = u + dr_u * shrink[sidx, None]
        if relax_cell:
            F = F + (dr_c * shrink[:, None, None]) / cell_factor[:, None, None]
        steps = steps + active.long()
        del newly

    cells = torch.bmm(cell0, F.transpose(1, 2))
    x = torch.einsum("ni,nji->nj", u, F[sidx])
    final = batch.with_positions(x).with_cells(cells).to_atoms()
    vols = torch.linalg.det(cells).abs().cpu().numpy()
    results = []
    precision = compute_precision(potential, dtype)
    for b, a in enumerate(final):
        conv = not bool(active[b]) and not bool(stalled[b])
        n = len(a)
        vol = float(vols[b]) if a.pbc.all() else None
        e = float(energy[b])
        results.append(
            RelaxResult(
                atoms=a,
                energy_eV=e,
                enthalpy_eV=e + (float(p_eV_A3[b]) * vol if (relax_cell and vol) else 0.0),
                converged=conv,
                n_steps=int(steps[b]),
                max_force_eV_A=float(fmax_now[b]),
                max_stress_GPa=float(smax_now[b]) if relax_cell else None,
                pressure_GPa=float(pressures[b]),
                volume_A3_per_atom=None if vol is None else vol / n,
                fmax_target_eV_A=float(fmax),
                smax_target_GPa=float(smax_GPa) if relax_cell else None,
                stalled=bool(stalled[b]),
                precision=precision,
            )
        )
    return results[0] if single else results


def periodic_starting_points(
    potential: Any,
    structures: Any,
    purpose: str,
    relaxation: RelaxSettings,
    *,
    dtype: torch.dtype,
    device: str | torch.device | None,
) -> tuple[bool, list[Atoms], list[bool]]:
    """Validate fully periodic inputs for ``purpose`` and, when ``relaxation.enabled``, relax
    cell and ions of all of them in one batched call (on the committee-mean surface for a committee).

    Returns ``(single, structures, converged)``: whether one structure was given, the starting
    structures (relaxed or copies), and whether each relaxation converged (True when not relaxed).
    """
    single, items = structure_list(structures)
    atoms_list = prepare_structures(items)
    for k, a in enumerate(atoms_list):
        if not a.pbc.all():
            raise ValueError(f"structure {k}: {purpose} need a cell periodic in all three directions")
    if not relaxation.enabled:
        return single, [a.copy() for a in atoms_list], [True] * len(atoms_list)
    cache = _SHARED_RELAXATIONS.get()
    if cache is None:
        rel = relax(potential, atoms_list, settings=relaxation, dtype=dtype, device=device)
        return single, [r.atoms for r in rel], [r.converged for r in rel]
    keys = [_relaxation_key(potential, a, relaxation, dtype, device) for a in atoms_list]
    todo = [k for k, key in enumerate(keys) if key not in cache]
    if todo:
        rel = relax(potential, [atoms_list[k] for k in todo], settings=relaxation, dtype=dtype, device=device)
        for k, r in zip(todo, rel):
            cache[keys[k]] = (r.atoms, r.converged)
    return single, [cache[key][0].copy() for key in keys], [cache[key][1] for key in keys]


_SHARED_RELAXATIONS: ContextVar[dict | None] = ContextVar("mlip_props_shared_relaxations", default=None)


@contextmanager
def shared_relaxations() -> Iterator[None]:
    """Within this block, the starting-point relaxation of a structure (same potential object,
    same atoms, same :class:`RelaxSettings`, dtype and device) runs once and is reused by every
    property that asks for it (a campaign computing EOS, elastic constants and phonons of the same
    structures relaxes each structure once). The structures not yet relaxed are relaxed together,
    batched, as without the block; each property receives its own copy."""
    token = _SHARED_RELAXATIONS.set({})
    try:
        yield
    finally:
        _SHARED_RELAXATIONS.reset(token)


def _relaxation_key(potential: Any, atoms: Atoms, settings: RelaxSettings, dtype: Any, device: Any) -> tuple:
    h = hashlib.sha256()
    for arr in (atoms.numbers, atoms.get_positions(), np.asarray(atoms.cell), atoms.pbc):
        h.update(np.ascontiguousarray(arr).tobytes())
    return id(potential), h.hexdigest(), settings, str(dtype), str(device)
