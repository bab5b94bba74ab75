"""Committee uncertainty of properties: every member's EOS, elastic constants, phonons and Cv
from shared backend batches, with the committee mean and standard deviation.

Method (:func:`committee_properties`). A committee potential returns per-atom energies (N, M) for
its M members; :func:`mlip_props.backend.evaluate` then gives energies (B, M), forces (M, n, 3)
per structure and stresses (B, M, 6). Each property below asks the backend ONCE for all the
structures it needs and reads every member's column from that one evaluation:

* reference cell: the structure is relaxed (cell and ions, space group kept) with the committee
  MEAN potential (per-atom energy averaged over members; :func:`mlip_props.properties.relax.relax`).
* ``eos``: ``n_points`` isotropically scaled cells spanning V_ref (1 +- ``volume_range``)
  (default +-8 %, wide enough to contain every member's minimum), one committee evaluation, then
  :func:`mlip_props.properties.eos.fit_eos` (Birch-Murnaghan) of each member's own E(V): each
  member has its own V0 (its own minimum; the spread of lattice constants is part of the answer),
  B0 and B'. Cells with more than one atom keep the mean potential's fractional coordinates
  (ions are not relaxed per member).
* ``elastic``: stress-strain fits (:func:`mlip_props.properties.elastic` helpers: the six Voigt
  strains at +-0.5 %, +-1 %, straight-line fit, point-group symmetrisation) of each member's
  stress column. ``reference="member"`` (default) strains each member's OWN equilibrium cell: the
  mean-relaxed cell scaled isotropically to that member's EOS volume V0_m (exact for cubic
  crystals, an approximation for others); ``reference="mean"`` strains the mean-relaxed cell for
  every member. All members' strained cells go into one backend evaluation. Clamped ions
  (identical to relaxed ions for one-atom cells; ``ions_relaxed`` says so).
* ``phonons``: the mean potential's :func:`mlip_props.properties.phonons.phonons` on the
  reference cell by phonopy finite displacements gives the displaced supercells; ONE committee
  evaluation of them gives every member's forces, hence every member's force constants
  (phonopy, the same ASR enforcement), band frequencies on the mean's band path and at its
  high-symmetry points. Force constants are linear in the energy, so the member average of the
  force constants is exactly the mean potential's.
* ``thermal``: harmonic Cv(T) of every member from its force constants (phonopy mesh, as in
  :mod:`mlip_props.properties.thermal`), J/(mol K) per mole of atoms.

Mean and standard deviation are over members (population, ddof = 0, as in
:func:`mlip_props.fitting.committee.committee_predict`); per-member values are kept. The spread
of an ensemble as the uncertainty of a neural-network potential: A. A. Peterson, R. Christensen
and A. Khorshidi, Phys. Chem. Chem. Phys. 19, 10978 (2017). A committee's std is usually
mis-calibrated; :func:`calibration` measures against an oracle the fraction of errors within 1
and 2 std and the factor by which the std must be scaled (maximum-likelihood scaling of the
variance, alpha^2 = <err^2 / std^2>: F. Musil, M. J. Willatt, M. A. Langovoy and M. Ceriotti,
J. Chem. Theory Comput. 15, 906 (2019)).

Units: eV, Angstrom, GPa, THz, K, J/(mol K).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from ase import Atoms

from ..backend.evaluate import evaluate
from ..backend.potential import AtomicGraph, Potential
from .elastic import _fit, point_group_rotations, strained, symmetrize_stiffness, voigt_strain_tensor
from .eos import fit_eos
from .relax import periodic_starting_points
from .result import PropertyResult

PROPERTIES = ("eos", "elastic", "phonons", "thermal")


class MemberMean(Potential):
    """The committee mean as a potential: per-atom energies averaged over the member axis.

    Forces, stress and Hessians of it are the member means (linearity). Kept here so that
    properties do not depend on :mod:`mlip_props.fitting`.
    """

    def __init__(self, committee: Potential):
        super().__init__(committee.cutoff, committee.elements)
        self.committee = committee
        self.bytes_per_edge = getattr(committee, "bytes_per_edge", Potential.bytes_per_edge)
        self.edge_only = bool(getattr(committee, "edge_only", False))

    def forward(self, graph: AtomicGraph) -> torch.Tensor:
        e = self.committee(graph)
        return e.mean(-1) if e.dim() == 2 else e


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    return x.mean(axis=0), x.std(axis=0)


@dataclass(frozen=True)
class CommitteePropertiesResult(PropertyResult):
    """Committee mean, std (``*_std``) and per-member values (``*_members``, member axis first).

    EOS (per atom, Birch-Murnaghan): ``v0_A3_per_atom``, ``bulk_modulus_GPa``,
    ``bulk_modulus_derivative``. Elastic: ``C_GPa`` (6x6 Voigt), ``elastic_reference`` ("member"
    or "mean"). Phonons: ``band_frequencies_THz`` (n_q, n_branches, on ``band_qpoints`` of the
    mean potential's path), ``high_symmetry_frequencies_THz`` {label: per-branch list}.
    ``eos_volumes_A3_per_atom`` (P,) and ``eos_energies_eV_per_atom_members`` (M, P): each
    member's sampled E(V); ``e0_eV_per_atom_members``: its fitted minimum energy.
    ``elastic_eos_mismatch_GPa_members``: Voigt bulk modulus of each member's C minus its EOS B0
    (a self-consistency check: large values flag a member whose stress-strain response is not
    that of a smooth energy, e.g. non-linear within the strains used).
    Thermal: ``heat_capacity_J_molK`` (per mole of atoms) at ``temperatures_K``. Fields of
    properties not requested are ``None``. ``n_members``: committee size; ``converged``: the
    mean relaxation converged and every member's EOS fit succeeded with V0 inside the sampled
    range.
    """

    formula: str
    n_members: int
    atoms: Atoms
    converged: bool
    v0_A3_per_atom: float | None = None
    v0_A3_per_atom_std: float | None = None
    v0_A3_per_atom_members: np.ndarray | None = None
    bulk_modulus_GPa: float | None = None
    bulk_modulus_GPa_std: float | None = None
    bulk_modulus_GPa_members: np.ndarray | None = None
    bulk_modulus_derivative: float | None = None
    bulk_modulus_derivative_std: float | None = None
    elastic_reference: str | None = None
    ions_relaxed: bool | None = None
    C_GPa: np.ndarray | None = None
    C_GPa_std: np.ndarray | None = None
    C_GPa_members: np.ndarray | None = None
    elastic_eos_mismatch_GPa_members: np.ndarray | None = None
    band_qpoints: np.ndarray | None = None
    band_distances_inv_A: np.ndarray | None = None
    band_segment_labels: list | None = None
    band_segment_sizes: list | None = None
    band_frequencies_THz: np.ndarray | None = None
    band_frequencies_THz_std: np.ndarray | None = None
    high_symmetry_frequencies_THz: dict | None = None
    high_symmetry_frequencies_THz_std: dict | None = None
    high_symmetry_frequencies_THz_members: dict | None = None
    temperatures_K: np.ndarray | None = None
    heat_capacity_J_molK: np.ndarray | None = None
    heat_capacity_J_molK_std: np.ndarray | None = None
    heat_capacity_J_molK_members: np.ndarray | None = None
    timings_s: dict = field(default_factory=dict)
    calibration_factor: float | None = None
    calibration_factors: dict | None = None
    eos_volumes_A3_per_atom: np.ndarray | None = None
    eos_energies_eV_per_atom_members: np.ndarray | None = None
    e0_eV_per_atom_members: np.ndarray | None = None

    def summary(self, temperature_K: float = 300.0, points: Sequence[str] = ("X",), *,
                calibrated: bool = False, per_property: bool = False) -> dict[str, tuple[float, float, np.ndarray]]:
        """Scalar properties as ``{name: (mean, std, members)}``: B (GPa), C11, C12, C44 (GPa),
        the frequencies at the high-symmetry ``points`` (THz, each distinct branch, named
        ``nu_<point>_<branch>_THz``; default the X point), Cv at ``temperature_K`` (J/(mol K)).

        ``calibrated=True``: the std is multiplied by the calibration factor stored with the model
        (``calibration_factor``; with ``per_property=True`` the property's own factor from
        ``calibration_factors`` where there is one); ``ValueError`` when the model has none.
        The default returns the raw committee std."""
        out: dict[str, tuple[float, float, np.ndarray]] = {}
        if calibrated and self.calibration_factor is None:
            raise ValueError("no calibration stored with this committee (see store_calibration)")
        wanted = {p.upper() for p in points}

        def put(name, members):
            m = np.asarray(members, dtype=float)
            sd = float(m.std())
            if calibrated:
                f = (self.calibration_factors or {}).get(name) if per_property else None
                sd *= float(self.calibration_factor if f is None else f)
            out[name] = (float(m.mean()), sd, m)

        if self.bulk_modulus_GPa_members is not None:
            put("B_GPa", self.bulk_modulus_GPa_members)
        if self.C_GPa_members is not None:
            for name, (i, j) in (("C11_GPa", (0, 0)), ("C12_GPa", (0, 1)), ("C44_GPa", (3, 3))):
                put(name, self.C_GPa_members[:, i, j])
        if self.high_symmetry_frequencies_THz_members:
            for label, f in self.high_symmetry_frequencies_THz_members.items():
                if label.upper() not in wanted:
                    continue
                f = np.asarray(f)  # (M, n_branches)
                _, idx = np.unique(np.round(f.mean(0), 6), return_index=True)
                for k in sorted(idx):
                    put(f"nu_{label}_{k}_THz", f[:, k])
        if self.heat_capacity_J_molK_members is not None:
            t = np.asarray(self.temperatures_K)
            put(f"Cv_{temperature_K:g}K_J_molK",
                [np.interp(temperature_K, t, c) for c in self.heat_capacity_J_molK_members])
        return out


def _scaled(atoms: Atoms, volume_factor: float) -> Atoms:
    s = atoms.copy()
    s.calc = None
    s.set_cell(atoms.cell[:] * volume_factor ** (1.0 / 3.0), scale_atoms=True)
    return s


def committee_properties(
    committee: Potential,
    atoms: Any,
    properties: Sequence[str] = PROPERTIES,
    *,
    elastic_reference: str = "member",
    volume_range: float = 0.08,
    n_points: int = 13,
    strains: Sequence[float] = (-0.01, -0.005, 0.005, 0.01),
    temperatures_K: Sequence[float] | None = None,
    thermal_mesh: float | Sequence[int] = 30.0,
    phonon_kwargs: dict | None = None,
    relax_structure: bool = True,
    fmax: float = 1e-4,
    smax_GPa: float = 1e-3,
    max_steps: int = 3000,
    dtype: Any = None,
    device: Any = None,
) -> CommitteePropertiesResult | list[CommitteePropertiesResult]:
    """Committee mean, std and per-member values of EOS, elastic, phonon and thermal properties of
    one periodic structure (returns a :class:`CommitteePropertiesResult`) or of a list of them
    (returns a list); one backend evaluation per property serves all members AND all structures
    (see the module docstring for the method).

    ``properties``: any of ``eos``, ``elastic``, ``phonons``, ``thermal`` (``thermal`` implies
    ``phonons``; ``elastic_reference="member"`` implies ``eos``). ``volume_range``/``n_points``:
    EOS volumes V_ref (1 +- range) (default +-8 %, 13 points). ``strains``: engineering strains
    (default +-0.5, +-1 %). ``temperatures_K``: Cv grid (default 0-2000 K in 10 K steps plus 298.15 K).
    ``thermal_mesh``: Gamma-centred mesh length (A) or 3 ints. ``phonon_kwargs``: passed to
    :func:`mlip_props.properties.phonons.phonons` (``method`` is forced to ``"displacement"``).
    Units: eV, A, GPa, THz, K, J/(mol K). A potential with one member gives std = 0.
    A calibration stored in the model file (:func:`store_calibration`) is offered in the
    result's ``calibration_factor``/``calibration_factors`` (the raw std is never rescaled).
    ``timings_s``: seconds per stage for the whole call (shared by all structures of a list).

    Raises ``ValueError`` for unknown properties, a non-periodic structure (naming its index)
    or a bad reference.
    """
    import time

    from .relax import is_single_structure

    single = is_single_structure(atoms)
    if not single and (not isinstance(atoms, (list, tuple)) or len(atoms) == 0):
        raise ValueError("committee_properties takes one structure (ASE Atoms or pymatgen Structure) or a "
                         f"non-empty list of them, got {type(atoms).__name__}")
    props = set(properties)
    unknown = props - set(PROPERTIES)
    if unknown:
        raise ValueError(f"unknown properties {sorted(unknown)}; choose from {PROPERTIES}")
    if elastic_reference not in ("member", "mean"):
        raise ValueError(f"elastic_reference must be 'member' or 'mean', got {elastic_reference!r}")
    if "thermal" in props:
        props.add("phonons")
    if "elastic" in props and elastic_reference == "member":
        props.add("eos")
    if not 0 < volume_range < 0.5 or n_points < 5:
        raise ValueError(f"need 0 < volume_range < 0.5 and n_points >= 5, got {volume_range}, {n_points}")
    if "elastic" in props:
        x = np.asarray(strains, dtype=float)
        if x.ndim != 1 or len(np.unique(x)) < 2 or np.any(np.abs(x) > 0.1):
            raise ValueError(f"strains must hold at least two distinct magnitudes within +-0.1, got {list(strains)}")
    kw = dict(dtype=dtype or torch.float64, device=device)
    mean_pot = MemberMean(committee)
    n_members = int(getattr(committee, "n_members", 0) or 0)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    _, refs, relax_ok = periodic_starting_points(
        mean_pot, [atoms] if single else list(atoms), "committee properties", relax_structure=relax_structure,
        fmax=fmax, smax_GPa=smax_GPa, max_steps=max_steps, keep_symmetry=True, **kw)
    n_s = len(refs)
    timings["relax_mean"] = time.perf_counter() - t0
    outs: list[dict[str, Any]] = [{} for _ in refs]
    oks = [bool(r) for r in relax_ok]

    if "eos" in props:
        t0 = time.perf_counter()
        factors = 1.0 + np.linspace(-volume_range, volume_range, n_points)
        pts = [_scaled(r, f) for r in refs for f in factors]
        res = evaluate(committee, pts, ("energy",), **kw)
        e_all = np.asarray(res.energies_eV, dtype=float).reshape(n_s, n_points, -1)  # (S, P, M)
        n_members = n_members or e_all.shape[2]
        for k, ref in enumerate(refs):
            n = len(ref)
            e = e_all[k] / n
            vols = np.array([p.get_volume() / n for p in pts[k * n_points:(k + 1) * n_points]])
            fits = [fit_eos(vols, e[:, m], "birchmurnaghan") for m in range(e.shape[1])]
            v0 = np.array([f.v0_A3_per_atom for f in fits])
            b = np.array([f.bulk_modulus_GPa for f in fits])
            bp = np.array([f.bulk_modulus_derivative for f in fits])
            oks[k] = oks[k] and all(f.success for f in fits) and bool(np.all((v0 > vols.min()) & (v0 < vols.max())))
            outs[k].update(eos_volumes_A3_per_atom=vols, eos_energies_eV_per_atom_members=e.T.copy(),
                           e0_eV_per_atom_members=np.array([f.e0_eV_per_atom for f in fits]))
            outs[k].update(v0_A3_per_atom=float(v0.mean()), v0_A3_per_atom_std=float(v0.std()),
                           v0_A3_per_atom_members=v0, bulk_modulus_GPa=float(b.mean()),
                           bulk_modulus_GPa_std=float(b.std()), bulk_modulus_GPa_members=b,
                           bulk_modulus_derivative=float(bp.mean()), bulk_modulus_derivative_std=float(bp.std()))
        timings["eos"] = time.perf_counter() - t0

    if "elastic" in props:
        t0 = time.perf_counter()
        x = np.asarray(strains, dtype=float)
        n_x = len(x)
        cells, spans = [], []
        for k, ref in enumerate(refs):
            if elastic_reference == "member":
                v_ref = ref.get_volume() / len(ref)
                rk = [_scaled(ref, v / v_ref) for v in outs[k]["v0_A3_per_atom_members"]]
            else:
                rk = [ref]
            start = len(cells)
            cells += [strained(r, voigt_strain_tensor(j, m)) for r in rk for j in range(6) for m in x]
            spans.append((start, len(cells), len(rk)))
        res = evaluate(committee, cells, ("energy", "stress"), **kw)
        s_all = np.asarray(res.stress_eV_A3, dtype=float)
        if s_all.ndim == 2:
            s_all = s_all[:, None]
        n_members = n_members or s_all.shape[1]
        for k, ref in enumerate(refs):
            a, b, n_ref = spans[k]
            s = s_all[a:b].reshape(n_ref, 6, n_x, s_all.shape[1], 6)  # (ref, comp, strain, M, 6)
            rots, _, _ = point_group_rotations(ref)
            cm = []
            for m in range(s.shape[3]):
                c, _ = _fit(x, s[m if n_ref > 1 else 0, :, :, m, :])
                cm.append(symmetrize_stiffness(c, rots))
            cm = np.array(cm)
            out = outs[k]
            out.update(elastic_reference=elastic_reference, ions_relaxed=len(ref) == 1, C_GPa=cm.mean(0),
                       C_GPa_std=cm.std(0), C_GPa_members=cm)
            if "bulk_modulus_GPa_members" in out:  # Voigt bulk modulus of C vs the EOS one, per member
                kv = (cm[:, 0, 0] + cm[:, 1, 1] + cm[:, 2, 2] + 2 * (cm[:, 0, 1] + cm[:, 1, 2] + cm[:, 0, 2])) / 9.0
                out["elastic_eos_mismatch_GPa_members"] = kv - out["bulk_modulus_GPa_members"]
        timings["elastic"] = time.perf_counter() - t0

    if "phonons" in props:
        from .phonons import _enforce, phonons, to_ase_atoms

        t0 = time.perf_counter()
        pk = dict(phonon_kwargs or {})
        pk.update(method="displacement", relax=False)
        prs = phonons(mean_pot, list(refs), **pk, **kw)
        batch, spans = [], []
        for pr in prs:
            ph0 = pr.phonopy_object
            start = len(batch)
            batch += [to_ase_atoms(ph0.supercell)] + [to_ase_atoms(sc) for sc in ph0.supercells_with_displacements]
            spans.append((start, len(batch)))
        res = evaluate(committee, batch, ("energy", "forces"), **kw)
        forces_all = [f if f.ndim == 3 else f[None] for f in res.forces_eV_A]  # (M, n, 3) each
        n_members = n_members or forces_all[0].shape[0]
        timings["phonons_backend"] = time.perf_counter() - t0
        members_ph_all = []
        for k, pr in enumerate(prs):
            ph0 = pr.phonopy_object
            forces = forces_all[spans[k][0]:spans[k][1]]
            members_ph = []
            bq = [np.asarray(q) for q in pr.band_qpoints] if pr.band_qpoints else []
            band_m, hs_m = [], {}
            hs_q = _high_symmetry_qpoints(pr)
            for m in range(forces[0].shape[0]):
                ph = copy.deepcopy(ph0)
                ph.forces = np.array([f[m] - forces[0][m] for f in forces[1:]])
                ph.produce_force_constants(calculate_full_force_constants=True, fc_calculator="traditional",
                                           show_drift=False)
                _enforce(ph, pr.asr_enforcement)
                members_ph.append(ph)
                if bq:
                    ph.run_qpoints(np.concatenate(bq))
                    band_m.append(np.asarray(ph.qpoints.frequencies))
                for label, q in hs_q.items():
                    ph.run_qpoints(np.atleast_2d(q))
                    hs_m.setdefault(label, []).append(np.asarray(ph.qpoints.frequencies)[0])
            members_ph_all.append(members_ph)
            out = outs[k]
            if band_m:
                bm, bs = _stats(np.array(band_m))
                out.update(band_qpoints=np.concatenate(bq), band_frequencies_THz=bm, band_frequencies_THz_std=bs,
                           band_distances_inv_A=np.concatenate([np.asarray(d) for d in pr.band_distances_inv_A]),
                           band_segment_labels=[list(lab) for lab in pr.band_labels],
                           band_segment_sizes=[len(q) for q in bq])
            hs_members = {lab: np.array(v) for lab, v in hs_m.items()}
            out.update(high_symmetry_frequencies_THz={lab: v.mean(0) for lab, v in hs_members.items()},
                       high_symmetry_frequencies_THz_std={lab: v.std(0) for lab, v in hs_members.items()},
                       high_symmetry_frequencies_THz_members=hs_members)
        timings["phonons"] = time.perf_counter() - t0

        if "thermal" in props:
            from .thermal import _mesh_of, _tp, default_temperatures

            t0 = time.perf_counter()
            temps = default_temperatures() if temperatures_K is None else np.asarray(temperatures_K, dtype=float)
            for k, pr in enumerate(prs):
                mesh = _mesh_of(pr.phonopy_object, thermal_mesh)
                cvs = np.array([_tp(ph, mesh, temps)["heat_capacity"] / len(ph.primitive) for ph in members_ph_all[k]])
                outs[k].update(temperatures_K=temps, heat_capacity_J_molK=cvs.mean(0),
                               heat_capacity_J_molK_std=cvs.std(0), heat_capacity_J_molK_members=cvs)
            timings["thermal"] = time.perf_counter() - t0

    cal = stored_calibration(committee)
    cal_kw = {}
    if cal is not None:
        cal_kw = dict(calibration_factor=float(cal["factor"]),
                      calibration_factors={str(k): float(v) for k, v in (cal.get("per_property") or {}).items()})
    results = [CommitteePropertiesResult(formula=ref.get_chemical_formula(), n_members=n_members or 1, atoms=ref,
                                         converged=oks[k], timings_s=dict(timings), **cal_kw, **outs[k])
               for k, ref in enumerate(refs)]
    return results[0] if single else results


def plot_committee(result: CommitteePropertiesResult, filename: Any = None, n_std: float = 2.0):
    """Phonon dispersion (committee mean, shaded +- ``n_std`` std), Cv(T) (mean, shaded band) and,
    when the result has the EOS, E(V) - E0 per member with the mean curve and its +- ``n_std`` std
    band (meV/atom); member curves thin. Returns the matplotlib figure (saved when ``filename``
    is given)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .phonons import _save_or_return, band_axis, band_path_ticks

    has_eos = getattr(result, "eos_energies_eV_per_atom_members", None) is not None
    if has_eos:
        fig, (ax, axc, axe) = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [3, 2, 2]})
    else:
        fig, (ax, axc) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    if result.band_frequencies_THz is not None:
        f, sd, d = result.band_frequencies_THz, result.band_frequencies_THz_std, result.band_distances_inv_A
        start, segments = 0, []
        for (l0, l1), size in zip(result.band_segment_labels, result.band_segment_sizes):
            sl = slice(start, start + size)
            for b in range(f.shape[1]):
                ax.fill_between(d[sl], f[sl, b] - n_std * sd[sl, b], f[sl, b] + n_std * sd[sl, b], color="C0",
                                alpha=0.25, lw=0)
                ax.plot(d[sl], f[sl, b], color="C0", lw=1.0)
            segments.append((l0, l1, d[sl][0], d[sl][-1]))
            start += size
        band_axis(ax, *band_path_ticks(segments))
        ax.set_title(f"{result.formula}: committee of {result.n_members}, mean +- {n_std:g} std")
    if result.heat_capacity_J_molK is not None:
        t, c, sd = result.temperatures_K, result.heat_capacity_J_molK, result.heat_capacity_J_molK_std
        for cm in result.heat_capacity_J_molK_members:
            axc.plot(t, cm, color="0.6", lw=0.6)
        axc.fill_between(t, c - n_std * sd, c + n_std * sd, color="C1", alpha=0.3, lw=0)
        axc.plot(t, c, color="C1")
        axc.set_xlabel("T (K)")
        axc.set_ylabel("Cv (J/(mol K))")
    if has_eos:
        v = np.asarray(result.eos_volumes_A3_per_atom, dtype=float)
        e = 1000.0 * (np.asarray(result.eos_energies_eV_per_atom_members, dtype=float)
                      - np.asarray(result.e0_eV_per_atom_members, dtype=float)[:, None])  # meV/atom
        for em in e:
            axe.plot(v, em, color="0.6", lw=0.6)
        axe.fill_between(v, e.mean(0) - n_std * e.std(0), e.mean(0) + n_std * e.std(0), color="C2", alpha=0.3, lw=0)
        axe.plot(v, e.mean(0), color="C2")
        axe.set_xlabel("volume (Å³/atom)")
        axe.set_ylabel("E - E0 (meV/atom), each member's own E0")
    return _save_or_return(fig, filename)


def _high_symmetry_qpoints(pr: Any) -> dict[str, np.ndarray]:
    """Labelled q-points (primitive reduced coordinates) at the ends of the band segments."""
    out: dict[str, np.ndarray] = {}
    if not pr.band_qpoints:
        return out
    for (l0, l1), q in zip(pr.band_labels, pr.band_qpoints):
        q = np.asarray(q)
        out.setdefault(l0, q[0])
        out.setdefault(l1, q[-1])
    return out


@dataclass(frozen=True)
class CalibrationResult(PropertyResult):
    """Committee errors against an oracle, per property.

    ``z``: |mean - oracle| / std per property; ``within_1_std``/``within_2_std``: fraction of
    properties with z <= 1 / 2; ``scale_factor_ml``: alpha = sqrt(<z^2>), the maximum-likelihood
    factor for the std (Musil et al. 2019; > 1: the committee is over-confident);
    ``scale_factor_2std``: the smallest factor that puts every error within 2 (scaled) std.
    ``structure_index``: which structure each entry belongs to (all 0 for one summary);
    ``per_property``: ``{name: {"n", "scale_factor_ml", "within_1_std", "within_2_std"}}`` over
    the structures (one structure: the factor is that property's own z, a noisy estimate).
    """

    names: list
    mean: list
    std: list
    oracle: list
    z: list
    within_1_std: float
    within_2_std: float
    scale_factor_ml: float
    scale_factor_2std: float
    structure_index: list = field(default_factory=list)
    per_property: dict = field(default_factory=dict)


def calibration(summary: dict[str, tuple] | Sequence[dict[str, tuple]],
                oracle: dict[str, float] | Sequence[dict[str, float]]) -> CalibrationResult:
    """Calibration of committee std against oracle values for the properties both dicts share
    (``summary`` from :meth:`CommitteePropertiesResult.summary`: name -> (mean, std, ...)).
    Lists of summaries and oracle dicts (one pair per structure) pool all their properties
    (and give per-property factors over the structures).
    Raises ``ValueError`` when they share nothing, a std is zero or the lists differ in length."""
    sums = [summary] if isinstance(summary, dict) else list(summary)
    oras = [oracle] if isinstance(oracle, dict) else list(oracle)
    if len(sums) != len(oras):
        raise ValueError(f"{len(sums)} summaries but {len(oras)} oracle dicts")
    names, sidx = [], []
    for k, (s, o) in enumerate(zip(sums, oras)):
        for name in s:
            if name in o:
                names.append(name)
                sidx.append(k)
    if not names:
        raise ValueError("summary and oracle share no property names")
    mean = np.array([sums[k][n][0] for n, k in zip(names, sidx)], dtype=float)
    std = np.array([sums[k][n][1] for n, k in zip(names, sidx)], dtype=float)
    ref = np.array([oras[k][n] for n, k in zip(names, sidx)], dtype=float)
    if np.any(~(std > 0)):
        bad = [f"{n} (structure {k})" if len(sums) > 1 else n for n, k, s in zip(names, sidx, std) if not s > 0]
        raise ValueError(f"zero or undefined std for {bad}")
    z = np.abs(mean - ref) / std
    per: dict[str, dict] = {}
    for name in dict.fromkeys(names):
        zz = z[[i for i, n in enumerate(names) if n == name]]
        per[name] = {"n": int(len(zz)), "scale_factor_ml": float(np.sqrt(np.mean(zz**2))),
                     "within_1_std": float(np.mean(zz <= 1)), "within_2_std": float(np.mean(zz <= 2))}
    return CalibrationResult(names=names, mean=mean.tolist(), std=std.tolist(), oracle=ref.tolist(), z=z.tolist(),
                             within_1_std=float(np.mean(z <= 1)), within_2_std=float(np.mean(z <= 2)),
                             scale_factor_ml=float(np.sqrt(np.mean(z**2))),
                             scale_factor_2std=float(max(1.0, z.max() / 2.0)), structure_index=sidx,
                             per_property=per)


def store_calibration(model_path: Any, calibration_result: CalibrationResult, out_path: Any = None, *,
                      factor: str = "ml", oracle: str = "", note: str = "") -> Path:
    """Store a calibration with the model: ``metadata["calibration"]`` of the model file.

    Written (JSON-like, loadable with ``weights_only=True``): ``factor`` (the std scale factor
    to apply: ``scale_factor_ml`` for ``factor="ml"``, the default, or ``scale_factor_2std``
    for ``"2std"``), ``factor_kind``, both factors, ``per_property`` ({name: ML factor over the
    structures}), ``within_1_std``/``within_2_std``, ``n``, the names, z and oracle values,
    ``oracle`` and ``note`` (free text), ``method``. The other metadata and the weights are kept.
    ``out_path``: write a new model file there (default: replace ``model_path``, atomically).
    The loaded potential exposes it as ``potential.metadata["calibration"]``;
    :func:`committee_properties` offers it as ``calibration_factor``/``calibration_factors``
    (never replacing the raw std). Returns the path written.
    """
    from ..potentials.serialization import load_model_file, save_potential

    if factor not in ("ml", "2std"):
        raise ValueError(f"factor must be 'ml' or '2std', got {factor!r}")
    c = calibration_result
    pot = load_model_file(model_path)
    meta = dict(getattr(pot, "metadata", {}) or {})
    meta["calibration"] = {
        "factor": float(c.scale_factor_ml if factor == "ml" else c.scale_factor_2std),
        "factor_kind": factor,
        "scale_factor_ml": float(c.scale_factor_ml),
        "scale_factor_2std": float(c.scale_factor_2std),
        "per_property": {k: float(v["scale_factor_ml"]) for k, v in (c.per_property or {}).items()},
        "within_1_std": float(c.within_1_std),
        "within_2_std": float(c.within_2_std),
        "n": len(c.names),
        "names": [str(n) for n in c.names],
        "z": [float(v) for v in c.z],
        "oracle_values": [float(v) for v in c.oracle],
        "oracle": str(oracle),
        "note": str(note),
        "method": "std scale factors from committee errors vs an oracle (mlip_props.properties.uncertainty."
                  "calibration; ML factor sqrt(<z^2>), Musil et al., JCTC 15, 906 (2019))",
    }
    return save_potential(pot, Path(out_path if out_path is not None else model_path), metadata=meta)


def stored_calibration(potential: Any) -> dict | None:
    """The calibration stored with a loaded model (``potential.metadata["calibration"]``), or None."""
    meta = getattr(potential, "metadata", None)
    cal = meta.get("calibration") if isinstance(meta, dict) else None
    return cal if isinstance(cal, dict) and "factor" in cal else None


def is_committee(potential: Any) -> bool:
    """Whether ``potential`` is a committee: it declares ``n_members`` > 1 (per-atom energies of
    shape (N, M), as :class:`MemberMean` and :func:`committee_properties` expect)."""
    try:
        return int(getattr(potential, "n_members", 1) or 1) > 1
    except (TypeError, ValueError):
        return False
