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

    def summary(self, temperature_K: float = 300.0) -> dict[str, tuple[float, float, np.ndarray]]:
        """Scalar properties as ``{name: (mean, std, members)}``: B (GPa), C11, C12, C44 (GPa),
        the X-point frequencies (THz, each distinct branch), Cv at ``temperature_K`` (J/(mol K))."""
        out: dict[str, tuple[float, float, np.ndarray]] = {}

        def put(name, members):
            m = np.asarray(members, dtype=float)
            out[name] = (float(m.mean()), float(m.std()), m)

        if self.bulk_modulus_GPa_members is not None:
            put("B_GPa", self.bulk_modulus_GPa_members)
        if self.C_GPa_members is not None:
            for name, (i, j) in (("C11_GPa", (0, 0)), ("C12_GPa", (0, 1)), ("C44_GPa", (3, 3))):
                put(name, self.C_GPa_members[:, i, j])
        if self.high_symmetry_frequencies_THz_members:
            for label, f in self.high_symmetry_frequencies_THz_members.items():
                if label.upper() != "X":
                    continue
                f = np.asarray(f)  # (M, n_branches)
                _, idx = np.unique(np.round(f.mean(0), 6), return_index=True)
                for k in sorted(idx):
                    put(f"nu_X_{k}_THz", f[:, k])
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
    atoms: Atoms,
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
) -> CommitteePropertiesResult:
    """Committee mean, std and per-member values of EOS, elastic, phonon and thermal properties of
    one periodic structure; one backend evaluation per property serves all members (see the
    module docstring for the method).

    ``properties``: any of ``eos``, ``elastic``, ``phonons``, ``thermal`` (``thermal`` implies
    ``phonons``; ``elastic_reference="member"`` implies ``eos``). ``volume_range``/``n_points``:
    EOS volumes V_ref (1 +- range) (default +-8 %, 13 points). ``strains``: engineering strains
    (default +-0.5, +-1 %). ``temperatures_K``: Cv grid (default 0-2000 K in 10 K steps plus 298.15 K).
    ``thermal_mesh``: Gamma-centred mesh length (A) or 3 ints. ``phonon_kwargs``: passed to
    :func:`mlip_props.properties.phonons.phonons` (``method`` is forced to ``"displacement"``).
    Units: eV, A, GPa, THz, K, J/(mol K). A potential with one member gives std = 0.

    Raises ``ValueError`` for unknown properties, a non-periodic structure or a bad reference.
    """
    import time

    from .relax import is_single_structure

    if not is_single_structure(atoms):
        raise ValueError("committee_properties takes one structure (ASE Atoms or pymatgen Structure)")
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
    kw = dict(dtype=dtype or torch.float64, device=device)
    mean_pot = MemberMean(committee)
    n_members = int(getattr(committee, "n_members", 1))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    _, base, relax_ok = periodic_starting_points(
        mean_pot, [atoms], "committee properties", relax_structure=relax_structure, fmax=fmax, smax_GPa=smax_GPa,
        max_steps=max_steps, keep_symmetry=True, **kw)
    ref = base[0]
    n = len(ref)
    timings["relax_mean"] = time.perf_counter() - t0
    out: dict[str, Any] = {}
    ok = bool(relax_ok[0])

    if "eos" in props:
        t0 = time.perf_counter()
        factors = 1.0 + np.linspace(-volume_range, volume_range, n_points)
        pts = [_scaled(ref, f) for f in factors]
        res = evaluate(committee, pts, ("energy",), **kw)
        e = np.asarray(res.energies_eV, dtype=float).reshape(n_points, -1) / n  # (P, M)
        vols = np.array([p.get_volume() / n for p in pts])
        fits = [fit_eos(vols, e[:, m], "birchmurnaghan") for m in range(e.shape[1])]
        v0 = np.array([f.v0_A3_per_atom for f in fits])
        b = np.array([f.bulk_modulus_GPa for f in fits])
        bp = np.array([f.bulk_modulus_derivative for f in fits])
        ok = ok and all(f.success for f in fits) and bool(np.all((v0 > vols.min()) & (v0 < vols.max())))
        out.update(v0_A3_per_atom=float(v0.mean()), v0_A3_per_atom_std=float(v0.std()), v0_A3_per_atom_members=v0,
                   bulk_modulus_GPa=float(b.mean()), bulk_modulus_GPa_std=float(b.std()), bulk_modulus_GPa_members=b,
                   bulk_modulus_derivative=float(bp.mean()), bulk_modulus_derivative_std=float(bp.std()))
        timings["eos"] = time.perf_counter() - t0

    if "elastic" in props:
        t0 = time.perf_counter()
        x = np.asarray(strains, dtype=float)
        if x.ndim != 1 or len(np.unique(x)) < 2 or np.any(np.abs(x) > 0.1):
            raise ValueError(f"strains must hold at least two distinct magnitudes within +-0.1, got {list(strains)}")
        n_s = len(x)
        if elastic_reference == "member":
            v_ref = ref.get_volume() / n
            refs = [_scaled(ref, v / v_ref) for v in out["v0_A3_per_atom_members"]]
        else:
            refs = [ref]
        cells = [strained(r, voigt_strain_tensor(j, m)) for r in refs for j in range(6) for m in x]
        res = evaluate(committee, cells, ("energy", "stress"), **kw)
        s = np.asarray(res.stress_eV_A3, dtype=float)
        if s.ndim == 2:
            s = s[:, None]
        s = s.reshape(len(refs), 6, n_s, s.shape[1], 6)  # (ref, comp, strain, M, 6)
        rots, _, _ = point_group_rotations(ref)
        cm = []
        for m in range(s.shape[3]):
            r = m if len(refs) > 1 else 0
            c, _ = _fit(x, s[r, :, :, m, :])
            cm.append(symmetrize_stiffness(c, rots))
        cm = np.array(cm)
        out.update(elastic_reference=elastic_reference, ions_relaxed=n == 1, C_GPa=cm.mean(0), C_GPa_std=cm.std(0),
                   C_GPa_members=cm)
        if "bulk_modulus_GPa_members" in out:  # Voigt bulk modulus of C vs the EOS one, per member
            kv = (cm[:, 0, 0] + cm[:, 1, 1] + cm[:, 2, 2] + 2 * (cm[:, 0, 1] + cm[:, 1, 2] + cm[:, 0, 2])) / 9.0
            out["elastic_eos_mismatch_GPa_members"] = kv - out["bulk_modulus_GPa_members"]
        timings["elastic"] = time.perf_counter() - t0

    if "phonons" in props:
        from .phonons import _enforce, phonons

        t0 = time.perf_counter()
        pk = dict(phonon_kwargs or {})
        pk.update(method="displacement", relax=False)
        pr = phonons(mean_pot, ref, **pk, **kw)
        ph0 = pr.phonopy_object
        sup = ph0.supercells_with_displacements
        from .phonons import to_ase_atoms

        batch = [to_ase_atoms(ph0.supercell)] + [to_ase_atoms(sc) for sc in sup]
        res = evaluate(committee, batch, ("energy", "forces"), **kw)
        forces = [f if f.ndim == 3 else f[None] for f in res.forces_eV_A]  # (M, n, 3) each
        timings["phonons_backend"] = time.perf_counter() - t0
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
        if band_m:
            bm, bs = _stats(np.array(band_m))
            out.update(band_qpoints=np.concatenate(bq), band_frequencies_THz=bm, band_frequencies_THz_std=bs,
                       band_distances_inv_A=np.concatenate([np.asarray(d) for d in pr.band_distances_inv_A]),
                       band_segment_labels=[list(lab) for lab in pr.band_labels],
                       band_segment_sizes=[len(q) for q in bq])
        hs_members = {k: np.array(v) for k, v in hs_m.items()}
        out.update(high_symmetry_frequencies_THz={k: v.mean(0) for k, v in hs_members.items()},
                   high_symmetry_frequencies_THz_std={k: v.std(0) for k, v in hs_members.items()},
                   high_symmetry_frequencies_THz_members=hs_members)
        timings["phonons"] = time.perf_counter() - t0

        if "thermal" in props:
            from .thermal import _mesh_of, _tp, default_temperatures

            t0 = time.perf_counter()
            temps = default_temperatures() if temperatures_K is None else np.asarray(temperatures_K, dtype=float)
            mesh = _mesh_of(ph0, thermal_mesh)
            cvs = np.array([_tp(ph, mesh, temps)["heat_capacity"] / len(ph.primitive) for ph in members_ph])
            out.update(temperatures_K=temps, heat_capacity_J_molK=cvs.mean(0), heat_capacity_J_molK_std=cvs.std(0),
                       heat_capacity_J_molK_members=cvs)
            timings["thermal"] = time.perf_counter() - t0

    return CommitteePropertiesResult(formula=ref.get_chemical_formula(), n_members=n_members, atoms=ref,
                                     converged=ok, timings_s=timings, **out)


def plot_committee(result: CommitteePropertiesResult, filename: Any = None, n_std: float = 2.0):
    """Phonon dispersion (committee mean, shaded +- ``n_std`` std) and Cv(T) (mean, shaded band),
    with the member curves thin; returns the matplotlib figure (saved when ``filename`` is given)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax, axc) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    if result.band_frequencies_THz is not None:
        f, sd, d = result.band_frequencies_THz, result.band_frequencies_THz_std, result.band_distances_inv_A
        start, ticks, labels = 0, [], []
        for (l0, l1), size in zip(result.band_segment_labels, result.band_segment_sizes):
            sl = slice(start, start + size)
            for b in range(f.shape[1]):
                ax.fill_between(d[sl], f[sl, b] - n_std * sd[sl, b], f[sl, b] + n_std * sd[sl, b], color="C0",
                                alpha=0.25, lw=0)
                ax.plot(d[sl], f[sl, b], color="C0", lw=1.0)
            for x, lab in ((d[sl][0], l0), (d[sl][-1], l1)):
                lab = "Γ" if lab == "Gamma" else lab
                if not ticks or abs(ticks[-1] - x) > 1e-9:
                    ticks.append(x)
                    labels.append(lab)
                elif labels[-1] != lab:
                    labels[-1] += "|" + lab
            start += size
        for x in ticks:
            ax.axvline(x, color="0.7", lw=0.6)
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels)
        ax.set_xlim(ticks[0], ticks[-1])
        ax.set_ylabel("frequency (THz)")
        ax.set_title(f"{result.formula}: committee of {result.n_members}, mean +- {n_std:g} std")
    if result.heat_capacity_J_molK is not None:
        t, c, sd = result.temperatures_K, result.heat_capacity_J_molK, result.heat_capacity_J_molK_std
        for cm in result.heat_capacity_J_molK_members:
            axc.plot(t, cm, color="0.6", lw=0.6)
        axc.fill_between(t, c - n_std * sd, c + n_std * sd, color="C1", alpha=0.3, lw=0)
        axc.plot(t, c, color="C1")
        axc.set_xlabel("T (K)")
        axc.set_ylabel("Cv (J/(mol K))")
    fig.tight_layout()
    if filename is not None:
        fig.savefig(filename, dpi=120)
        plt.close(fig)
    return fig


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


def calibration(summary: dict[str, tuple], oracle: dict[str, float]) -> CalibrationResult:
    """Calibration of committee std against oracle values for the properties both dicts share
    (``summary`` from :meth:`CommitteePropertiesResult.summary`: name -> (mean, std, ...)).
    Raises ``ValueError`` when they share nothing or a std is zero."""
    names = [k for k in summary if k in oracle]
    if not names:
        raise ValueError("summary and oracle share no property names")
    mean = np.array([summary[k][0] for k in names], dtype=float)
    std = np.array([summary[k][1] for k in names], dtype=float)
    ref = np.array([oracle[k] for k in names], dtype=float)
    if np.any(~(std > 0)):
        raise ValueError(f"zero or undefined std for {[k for k, s in zip(names, std) if not s > 0]}")
    z = np.abs(mean - ref) / std
    return CalibrationResult(names=names, mean=mean.tolist(), std=std.tolist(), oracle=ref.tolist(), z=z.tolist(),
                             within_1_std=float(np.mean(z <= 1)), within_2_std=float(np.mean(z <= 2)),
                             scale_factor_ml=float(np.sqrt(np.mean(z**2))),
                             scale_factor_2std=float(max(1.0, z.max() / 2.0)))
