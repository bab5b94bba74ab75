"""Committee uncertainty of properties: every member's EOS, elastic constants, phonons and Cv
from shared backend evaluations, with the committee mean and standard deviation.

Method (:func:`committee_properties`): plan once, evaluate the committee once, analyse every
member. A committee potential returns per-atom energies (N, M); one backend evaluation of a
property's plan (:mod:`mlip_props.properties.plan`) holds every member's column, and the
property's own analysis reads each column as a single potential's answers
(:meth:`~mlip_props.backend.EvaluationResult.member`). There is no workflow code here:

* reference cell: relaxed (cell and ions, space group kept) on the committee-MEAN surface
  (:func:`mlip_props.potentials.committee.mean_over_members`).
* ``eos``: :func:`~mlip_props.properties.eos.plan_eos` on the reference without further
  relaxation (ions keep the mean potential's fractional coordinates), +-8 %, 13 points by default
  (wide enough to hold every member's minimum); each member's own Birch-Murnaghan fit gives its
  V0 (the spread of lattice constants is part of the answer), B0 and B'.
* ``elastic``: :func:`~mlip_props.properties.elastic.plan_elastic`, clamped ions (identical to
  relaxed ions for one-atom cells; ``ions_relaxed`` says so). ``reference="member"`` (default)
  strains each member's OWN equilibrium cell: the reference scaled isotropically to that member's
  EOS volume (exact for cubic crystals, an approximation otherwise): all members' plans in one
  evaluation, each analysed with its own member's column; ``reference="mean"`` strains the
  reference for every member.
* ``phonons``: :func:`~mlip_props.properties.phonons.plan_phonons` (finite displacements of the
  reference): every member's force constants, bands and high-symmetry frequencies from one
  evaluation. Force constants are linear in the energy, so the member mean of the force
  constants is exactly the mean potential's.
* ``thermal``: harmonic Cv(T) of every member's phonons
  (:func:`~mlip_props.properties.thermal.thermal_from_phonons`), J/(mol K) per mole of atoms.

The EOS, the phonons and (with ``reference="mean"``) the elastic cells share one backend call;
member-referenced elastic cells need the members' V0 and take a second.

Mean and standard deviation are over members (population, ddof = 0, as in
:func:`mlip_props.fitting.committee.committee_predict`); per-member values are kept. The spread
of an ensemble as the uncertainty of a neural-network potential: A. A. Peterson, R. Christensen
and A. Khorshidi, Phys. Chem. Chem. Phys. 19, 10978 (2017). Calibration against an oracle:
:mod:`mlip_props.properties.calibration`.

Units: eV, Angstrom, GPa, THz, K, J/(mol K).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from ase import Atoms

from ..potentials.committee import committee_size, is_committee, mean_over_members  # noqa: F401 (re-exported)
from .calibration import (CalibrationResult, calibration, store_calibration,  # noqa: F401 (re-exported)
                          stored_calibration)
from .elastic import plan_elastic
from .eos import plan_eos, scaled_to_volume
from .plan import analyse_members, evaluate_plans
from .relax import RelaxSettings, periodic_starting_points, resolve_relaxation
from .result import PropertyResult

PROPERTIES = ("eos", "elastic", "phonons", "thermal")
#: The reference cell is measured as it is: no relaxation at the EOS volumes or strains (the
#: members' answers are read at the mean potential's geometry).
AS_GIVEN = RelaxSettings(enabled=False, ions=False)


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
    Thermal: ``cv_J_molK`` (per mole of atoms) at ``temperatures_K``. Fields of
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
    cv_J_molK: np.ndarray | None = None
    cv_J_molK_std: np.ndarray | None = None
    cv_J_molK_members: np.ndarray | None = None
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
        if self.cv_J_molK_members is not None:
            t = np.asarray(self.temperatures_K)
            put(f"Cv_{temperature_K:g}K_J_molK",
                [np.interp(temperature_K, t, c) for c in self.cv_J_molK_members])
        return out


def committee_properties(
    committee: Any,
    atoms: Any,
    properties: Sequence[str] = PROPERTIES,
    *,
    elastic_reference: str = "member",
    volume_range: float = 0.08,
    n_points: int = 13,
    strains: Sequence[float] = (-0.01, -0.005, 0.005, 0.01),
    temperatures_K: Sequence[float] | None = None,
    thermal_mesh: float | Sequence[int] = 30.0,
    phonon_options: dict | None = None,
    relaxation: RelaxSettings | dict | bool | None = None,
    dtype: Any = None,
    device: Any = None,
) -> CommitteePropertiesResult | list[CommitteePropertiesResult]:
    """Committee mean, std and per-member values of EOS, elastic, phonon and thermal properties of
    one periodic structure (returns a :class:`CommitteePropertiesResult`) or of a list of them
    (returns a list); see the module docstring for the method.

    ``properties``: any of ``eos``, ``elastic``, ``phonons``, ``thermal`` (``thermal`` implies
    ``phonons``; ``elastic_reference="member"`` implies ``eos``). ``volume_range``/``n_points``:
    EOS volumes V_ref (1 +- range) (default +-8 %, 13 points). ``strains``: engineering strains
    (default +-0.5, +-1 %). ``temperatures_K``: Cv grid (default 0-2000 K in 10 K steps plus
    298.15 K). ``thermal_mesh``: Gamma-centred mesh length (A) or 3 ints. ``phonon_options``:
    options of :func:`mlip_props.properties.phonons.plan_phonons` (supercell, displacement,
    band path ...; the route is always finite displacements). ``relaxation``: how the reference
    is relaxed on the committee-mean surface (default: cell and ions, 1e-4 eV/A, 1e-3 GPa).
    Units: eV, A, GPa, THz, K, J/(mol K). A potential with one member gives std = 0. A
    calibration stored in the model file (:func:`store_calibration`) is offered in the result's
    ``calibration_factor``/``calibration_factors`` (the raw std is never rescaled).
    ``timings_s``: seconds per stage for the whole call (shared by all structures of a list).

    Raises ``ValueError`` for unknown properties, a non-periodic structure (naming its index)
    or a bad reference.
    """
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
    kw = dict(dtype=dtype or torch.float64, device=device)
    mean = mean_over_members(committee)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    single, refs, relax_ok = periodic_starting_points(mean, atoms, "committee properties",
                                                      resolve_relaxation(relaxation), **kw)
    timings["relax_mean"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    plans = committee_plans(mean, refs, props, elastic_reference=elastic_reference, volume_range=volume_range,
                            n_points=n_points, strains=strains, phonon_options=phonon_options, **kw)
    answers = dict(zip(plans, evaluate_plans(committee, list(plans.values()), **kw)))
    members = {name: analyse_members(plans[name], answers[name]) for name in plans}  # [member][structure]
    timings["evaluate_analyse"] = time.perf_counter() - t0
    n_members = max(committee_size(committee), *(a.n_members for a in answers.values())) if answers else 1

    outs: list[dict[str, Any]] = [{} for _ in refs]
    oks = [bool(r) for r in relax_ok]
    for k in range(len(refs)):
        if "eos" in members:
            oks[k] = oks[k] and _eos_fields(outs[k], [m[k] for m in members["eos"]])
        if "phonons" in members:
            _phonon_fields(outs[k], [m[k] for m in members["phonons"]])

    if "elastic" in props:
        t0 = time.perf_counter()
        if elastic_reference == "member":
            per_member = member_elastic_plans(mean, refs, [[m[k].v0_A3_per_atom for m in members["eos"]]
                                                           for k in range(len(refs))], strains=strains, **kw)
            elastic_answers = evaluate_plans(committee, per_member, **kw)
            c_members = [p.analyse(a.member(m) if a.n_members else a)
                         for m, (p, a) in enumerate(zip(per_member, elastic_answers))]
        else:
            c_members = members["elastic"]
        for k in range(len(refs)):
            cm = np.array([m[k].C_GPa for m in c_members])
            out = outs[k]
            out.update(elastic_reference=elastic_reference, ions_relaxed=c_members[0][k].ions_relaxed,
                       C_GPa=cm.mean(0), C_GPa_std=cm.std(0), C_GPa_members=cm)
            if "bulk_modulus_GPa_members" in out:  # Voigt bulk modulus of C vs the EOS one, per member
                kv = (cm[:, 0, 0] + cm[:, 1, 1] + cm[:, 2, 2] + 2 * (cm[:, 0, 1] + cm[:, 1, 2] + cm[:, 0, 2])) / 9.0
                out["elastic_eos_mismatch_GPa_members"] = kv - out["bulk_modulus_GPa_members"]
        timings["elastic"] = time.perf_counter() - t0

    if "thermal" in props:
        from .thermal import default_temperatures, thermal_from_phonons

        t0 = time.perf_counter()
        temps = default_temperatures() if temperatures_K is None else np.asarray(temperatures_K, dtype=float)
        for k in range(len(refs)):
            cvs = np.array([thermal_from_phonons(m[k], temperatures_K=temps, mesh=thermal_mesh,
                                                 check_mesh=False).cv_J_molK for m in members["phonons"]])
            outs[k].update(temperatures_K=temps, cv_J_molK=cvs.mean(0),
                           cv_J_molK_std=cvs.std(0), cv_J_molK_members=cvs)
        timings["thermal"] = time.perf_counter() - t0

    cal = stored_calibration(committee)
    cal_kw = {}
    if cal is not None:
        cal_kw = dict(calibration_factor=float(cal["factor"]),
                      calibration_factors={str(k): float(v) for k, v in (cal.get("per_property") or {}).items()})
    results = [CommitteePropertiesResult(formula=ref.get_chemical_formula(), n_members=n_members, atoms=ref,
                                         converged=oks[k], timings_s=dict(timings), **cal_kw, **outs[k])
               for k, ref in enumerate(refs)]
    return results[0] if single else results


def committee_plans(mean: Any, references: Sequence[Atoms], properties: Sequence[str], *,
                    elastic_reference: str = "member", volume_range: float = 0.08, n_points: int = 13,
                    strains: Sequence[float] = (-0.01, -0.005, 0.005, 0.01), phonon_options: dict | None = None,
                    dtype: Any = None, device: Any = None) -> dict[str, Any]:
    """The plans :func:`committee_properties` evaluates in its first backend call, by property name
    (``eos``, ``elastic`` with ``elastic_reference="mean"``, ``phonons``), for the committee-mean
    potential ``mean`` on the (already relaxed) ``references``; member-referenced elastic cells
    come from :func:`member_elastic_plans`."""
    kw = dict(dtype=dtype, device=device)
    plans: dict[str, Any] = {}
    if "eos" in properties:
        plans["eos"] = plan_eos(mean, references, volume_range=volume_range, n_points=n_points,
                                relaxation=AS_GIVEN, **kw)
    if "elastic" in properties and elastic_reference == "mean":
        plans["elastic"] = plan_elastic(mean, references, strains=strains, relaxation=AS_GIVEN, **kw)
    if "phonons" in properties or "thermal" in properties:
        from .phonons import plan_phonons

        options = dict(phonon_options or {})
        options.update(method="displacement", relaxation=False)
        plans["phonons"] = plan_phonons(mean, list(references), **options, **kw)
    return plans


def member_elastic_plans(mean: Any, references: Sequence[Atoms], v0_members: Sequence[Sequence[float]], *,
                         strains: Sequence[float] = (-0.01, -0.005, 0.005, 0.01), dtype: Any = None,
                         device: Any = None) -> list[Any]:
    """One elastic plan per member: each reference scaled isotropically to that member's EOS volume
    ``v0_members[structure][member]`` (A^3/atom; a failed fit, non-finite or non-positive, keeps
    the reference's own volume), strained, ions clamped. Plan m is read with member m's column."""
    n_members = len(v0_members[0])
    plans = []
    for m in range(n_members):
        cells = []
        for ref, v0 in zip(references, v0_members):
            v_ref = ref.get_volume() / len(ref)
            v = float(v0[m]) if np.isfinite(v0[m]) and v0[m] > 0 else v_ref
            cells.append(scaled_to_volume(ref, v / v_ref))
        plans.append(plan_elastic(mean, cells, strains=strains, relaxation=AS_GIVEN, dtype=dtype, device=device))
    return plans


def _eos_fields(out: dict[str, Any], fits: list[Any]) -> bool:
    """Committee EOS fields from the members' EOS results; True when every fit succeeded with its
    minimum inside the sampled volumes."""
    v0 = np.array([f.v0_A3_per_atom for f in fits])
    b = np.array([f.bulk_modulus_GPa for f in fits])
    bp = np.array([f.bulk_modulus_derivative for f in fits])
    vols = np.asarray(fits[0].volumes_A3_per_atom)
    out.update(eos_volumes_A3_per_atom=vols,
               eos_energies_eV_per_atom_members=np.array([f.energies_eV_per_atom for f in fits]),
               e0_eV_per_atom_members=np.array([f.e0_eV_per_atom for f in fits]),
               v0_A3_per_atom=float(v0.mean()), v0_A3_per_atom_std=float(v0.std()), v0_A3_per_atom_members=v0,
               bulk_modulus_GPa=float(b.mean()), bulk_modulus_GPa_std=float(b.std()), bulk_modulus_GPa_members=b,
               bulk_modulus_derivative=float(bp.mean()), bulk_modulus_derivative_std=float(bp.std()))
    return all(f.fits[f.eos].success and f.v0_inside_range for f in fits)


def _phonon_fields(out: dict[str, Any], results: list[Any]) -> None:
    """Committee phonon fields from the members' phonon results (bands on the reference's path)."""
    first = results[0]
    if first.band_qpoints:
        bands = np.array([np.concatenate([np.asarray(b) for b in r.band_frequencies_THz]) for r in results])
        mean, std = _stats(bands)
        out.update(band_qpoints=np.concatenate([np.asarray(q) for q in first.band_qpoints]),
                   band_frequencies_THz=mean, band_frequencies_THz_std=std,
                   band_distances_inv_A=np.concatenate([np.asarray(d) for d in first.band_distances_inv_A]),
                   band_segment_labels=[list(lab) for lab in first.band_labels],
                   band_segment_sizes=[len(q) for q in first.band_qpoints])
    per_member = {label: np.array([r.high_symmetry_frequencies_THz[label] for r in results])
                  for label in first.high_symmetry_frequencies_THz}
    out.update(high_symmetry_frequencies_THz={lab: v.mean(0) for lab, v in per_member.items()},
               high_symmetry_frequencies_THz_std={lab: v.std(0) for lab, v in per_member.items()},
               high_symmetry_frequencies_THz_members=per_member)


def plot_committee(result: CommitteePropertiesResult, filename: Any = None, n_std: float = 2.0):
    """Phonon dispersion (committee mean, shaded +- ``n_std`` std), Cv(T) (mean, shaded band) and,
    when the result has the EOS, E(V) - E0 per member with the mean curve and its +- ``n_std`` std
    band (meV/atom); member curves thin. Returns the matplotlib figure (saved when ``filename``
    is given)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .phonons import band_axis, band_path_ticks, save_or_return

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
    if result.cv_J_molK is not None:
        t, c, sd = result.temperatures_K, result.cv_J_molK, result.cv_J_molK_std
        for cm in result.cv_J_molK_members:
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
    return save_or_return(fig, filename)
