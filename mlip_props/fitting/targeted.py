"""Property-targeted active learning: label the structures a property workflow evaluates where the
committee disagrees most, until the property's committee std is below a tolerance.

The generic loop (:func:`mlip_props.fitting.active.learn`) explores with MD and labels frames where
the committee's forces disagree; that reduces the error where the dynamics goes, which is not
necessarily where a property is decided. Here the exploration strategy is the property workflow
itself (:class:`PropertyExplorer`, a :class:`~.explore.Explorer`), and the stopping rule is the
property's committee standard deviation (:class:`PropertyMonitor`, the ``monitor`` hook of
:func:`~.active.learn`). Everything else is the generic loop's machinery: one committee evaluation
scores all proposals, fingerprint de-duplication, the oracle journal (every call logged and
fsynced; resuming repeats no call), warm-start retraining with per-member bootstrap, and
checkpoints after every round.

Proposals (each round, for the current committee; the same code paths as
:func:`mlip_props.properties.uncertainty.committee_properties`):

* ``elastic``: the structure is relaxed (cell and ions, symmetry kept) with the committee MEAN;
  with ``reference="member"`` (the default of ``committee_properties``) every member's EOS
  volume V0_m is found on the workflow's scaled cells and the mean-relaxed cell is scaled to it;
  the six Voigt strains at each of ``strains`` (default +-0.5 %, +-1 %, engineering) of each
  reference cell (:func:`mlip_props.properties.elastic.strained`, ions clamped) are proposed.
* ``eos``: the ``n_points`` isotropically scaled cells V_ref (1 +- ``volume_range``).
* ``phonons``: the perfect supercell and phonopy's displaced supercells of the mean potential's
  finite-displacement workflow (:func:`mlip_props.properties.phonons.phonons`).

Scores (what predicts the property's std; one batched committee evaluation of all proposals):

* ``stress`` (default for ``elastic``): s = sqrt(sum_k var_m(sigma_m,k(eps) - sigma_m,k(0))) over
  the six Voigt stress components, GPa, where sigma(0) is the stress of the unstrained cell the
  strained one was made from (evaluated in the same batch). An elastic constant is the slope of
  stress vs strain, each member's C_m is fitted to its own stresses on exactly these cells, so in
  the linear regime sigma_m(eps) - sigma_m(0) = C_m eps and s = |eps| * (norm of the member spread
  of the strained column of C): the frame's direct estimate of the std of the constants it
  determines (for a shear strain of a cubic crystal s = |eps| std(C44) exactly). The spread of the
  stress itself would be dominated by the spread of the residual pressure at eps = 0 (the members'
  different lattice constants), which says nothing about C. Forces are useless here:
  in a one-atom cell (and any cell whose atoms sit on inversion centres) they vanish by symmetry
  for every member. When one constant is monitored (``learn_targeted``'s default: the monitored
  ``C11``/``C12``/``C44``), only its (stress, strain) Voigt entries and their cubic equivalents
  enter the sum (``voigt_pairs``): for C44, s = |eps| std_m(C44,m) on shear cells and 0 on the
  others, so the budget goes to the cells that decide the monitored constant.
* ``pressure`` (default for ``eos``): the member spread of P = -tr(sigma)/3, GPa. B = -V dP/dV;
  P is free of the members' arbitrary energy offsets, unlike the energy spread.
* ``forces`` (default for ``phonons``): the RMS over atoms of the per-atom force disagreement
  sqrt(mean_m |F_m,i - <F_i>|^2), eV/A. Force constants are built from the forces on ALL atoms of
  the displaced supercells, so the average disagreement, not the maximum (the generic loop's
  signal, tuned to find one bad atom), is what propagates into the frequency std.

The committee std of the property (the monitored quantity, e.g. ``C44_GPa``; any key of
:meth:`~mlip_props.properties.uncertainty.CommitteePropertiesResult.summary`, or ``nu_X`` for the
largest std of the X-point branches) is recomputed with ``committee_properties`` after the first
fit and after every round; the loop stops when it is below ``tolerance`` (same unit), when the
oracle budget is spent, or by the generic rules (no selection for ``patience`` rounds, rounds).

References: query by committee, H. S. Seung, M. Opper, H. Sompolinsky, COLT 1992; committee
spread as uncertainty of neural-network potentials, A. A. Peterson, R. Christensen, A. Khorshidi,
Phys. Chem. Chem. Phys. 19, 10978 (2017); stress-strain elastic constants, e.g. Y. Le Page and
P. Saxe, Phys. Rev. B 65, 104104 (2002).

Units: eV, Angstrom, GPa, THz.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch
from ase import Atoms

from ..backend import evaluate
from ..backend.batch import to_atoms
from .active import ActiveLearningConfig, ActiveLearningResult, learn
from .explore import Explorer, Proposal

TARGETS = ("elastic", "eos", "phonons")
SCORES = {"stress": "GPa", "pressure": "GPa", "forces": "eV/A"}
DEFAULT_SCORE = {"elastic": "stress", "eos": "pressure", "phonons": "forces"}
DEFAULT_QUANTITY = {"elastic": "C44_GPa", "eos": "B_GPa", "phonons": "nu_X"}
EV_A3_TO_GPA = 160.21766208
# the Voigt (stress, strain) entries of a monitored constant and its cubic-symmetry equivalents
# (what CommitteePropertiesResult.summary() reports after point-group symmetrisation)
QUANTITY_PAIRS = {"C11_GPa": [(1, 1), (2, 2), (3, 3)],
                  "C12_GPa": [(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)],
                  "C44_GPa": [(4, 4), (5, 5), (6, 6)]}
# what the generic loop's settings become for targeted learning (override any of them)
TARGETED_DEFAULTS = dict(lower_eV_A=0.0, upper_eV_A=float("inf"), dedup_distance=1e-3, max_per_round=4,
                         patience=2)


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown target property {target!r}; choose from {TARGETS}")


def workflow_structures(model: Any, structure: Any, target: str, *, reference: str = "member",
                        strains: Sequence[float] = (-0.01, -0.005, 0.005, 0.01), volume_range: float = 0.08,
                        n_points: int = 13, phonon_options: dict | None = None,
                        relaxation: Any = None) -> list[Atoms]:
    """The structures the ``target`` workflow of
    :func:`~mlip_props.properties.uncertainty.committee_properties` evaluates for ``model`` (a
    committee) on ``structure``: the structures of its plans
    (:func:`~mlip_props.properties.uncertainty.committee_plans`,
    :func:`~mlip_props.properties.uncertainty.member_elastic_plans`), each with
    ``info["config_type"]`` naming its role (``elastic:m<member>:e<voigt>:<strain>``,
    ``eos:<volume factor>``, ``phonons:<k>``); strained cells carry their unstrained cell in
    ``info["reference"]``. Units: A; strains engineering, volume factors relative."""
    from ..potentials.committee import mean_over_members
    from ..properties.plan import analyse_members, evaluate_plans
    from ..properties.relax import periodic_starting_points, resolve_relaxation
    from ..properties.uncertainty import committee_plans, member_elastic_plans

    _check_target(target)
    if reference not in ("member", "mean"):
        raise ValueError(f"reference must be 'member' or 'mean', got {reference!r}")
    kw = dict(dtype=torch.float64, device=None)
    mean = mean_over_members(model)
    _, refs, _ = periodic_starting_points(mean, [to_atoms(structure)], f"targeted {target}",
                                          resolve_relaxation(relaxation), **kw)
    wanted = {"elastic": ["elastic"] + (["eos"] if reference == "member" else []), "eos": ["eos"],
              "phonons": ["phonons"]}[target]
    plans = committee_plans(mean, refs, wanted, elastic_reference=reference, volume_range=volume_range,
                            n_points=n_points, strains=strains, phonon_options=phonon_options, **kw)
    if target == "eos":
        pts = plans["eos"].structures
        for f, p in zip(1.0 + np.linspace(-volume_range, volume_range, n_points), pts):
            p.info["config_type"] = f"eos:{f:.4f}"
        return pts
    if target == "phonons":
        cells = plans["phonons"].structures
        for k, a in enumerate(cells):
            a.info["config_type"] = f"phonons:{k}"
        return cells
    if reference == "member":
        eos_members = analyse_members(plans["eos"], evaluate_plans(model, [plans["eos"]], **kw)[0])
        elastic_plans = member_elastic_plans(mean, refs, [[m[0].v0_A3_per_atom for m in eos_members]],
                                             strains=strains, **kw)
    else:
        elastic_plans = [plans["elastic"]]
    out: list[Atoms] = []
    for m, plan in enumerate(elastic_plans):
        r0 = plan.references[0].copy()
        r0.info = {"config_type": f"elastic:m{m}:reference"}
        clamped = plan.structures[:6 * len(plan.strains)]  # the plan's strained cells, ions clamped
        for k, a in enumerate(clamped):
            j, x = divmod(k, len(plan.strains))
            a.info["config_type"] = f"elastic:m{m}:e{j + 1}:{float(plan.strains[x]):+.4f}"
            a.info["reference"] = r0  # the unstrained cell (for the stress-change score)
            a.info["voigt_strain"] = j + 1
            out.append(a)
    return out


def committee_scores(model: Any, frames: Sequence[Atoms], score: str,
                     voigt_pairs: Sequence[tuple[int, int]] | None = None) -> np.ndarray:
    """Committee disagreement of each frame by ``score`` (see the module docstring): ``stress``
    (GPa: norm over the six Voigt components of the member spread of the stress CHANGE from the
    frame's unstrained cell ``info["reference"]`` when it has one, of the stress otherwise),
    ``pressure`` (GPa) or ``forces`` (eV/A, RMS over atoms of the per-atom force disagreement).
    ``voigt_pairs`` (stress score only): 1-based Voigt (stress i, strain j) pairs, the elastic
    constants C_ij of interest; a frame strained along j (``info["voigt_strain"]``) then scores
    only the stress components i paired with its j (0 if none), i.e. |eps| times the spread of
    those C_ij alone. One batched evaluation (reference cells included)."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; choose from {tuple(SCORES)}")
    if not frames:
        return np.zeros(0)
    frames = list(frames)
    refs: list[Atoms] = []
    ref_of: list[int | None] = []
    if score == "stress":
        seen: dict[int, int] = {}
        for a in frames:
            r0 = a.info.get("reference")
            if isinstance(r0, Atoms):
                if id(r0) not in seen:
                    seen[id(r0)] = len(refs)
                    refs.append(r0)
                ref_of.append(seen[id(r0)])
            else:
                ref_of.append(None)
    props = ("energy", "forces") if score == "forces" else ("energy", "stress")
    r = evaluate(model, frames + refs, props)
    if score == "forces":
        out = []
        for f in r.forces_eV_A:
            f = f if f.ndim == 3 else f[None]
            out.append(float(np.sqrt(((f - f.mean(0)) ** 2).sum(-1).mean())))
        return np.array(out)
    s = np.asarray(r.stress_eV_A3, float)
    s = s if s.ndim == 3 else s[:, None]  # (B, M, 6)
    if refs:
        s0, s = s[len(frames):], s[: len(frames)].copy()
        for k, i in enumerate(ref_of):
            if i is not None:
                s[k] -= s0[i]
    if score == "pressure":
        p = -s[..., :3].mean(-1)
        return p.std(1) * EV_A3_TO_GPA
    var = s.var(1)  # (B, 6)
    if voigt_pairs is None:
        return np.sqrt(var.sum(-1)) * EV_A3_TO_GPA
    out = np.zeros(len(frames))
    for k, a in enumerate(frames):
        comps = [i - 1 for i, j in voigt_pairs if j == a.info.get("voigt_strain")]
        out[k] = np.sqrt(var[k, comps].sum()) * EV_A3_TO_GPA if comps else 0.0
    return out


class PropertyExplorer(Explorer):
    """Proposes the ``target`` workflow's own structures for the current committee, scored by
    ``score`` (default per target: elastic -> stress, eos -> pressure, phonons -> forces); see the
    module docstring. ``voigt_pairs``: see :func:`committee_scores` (elastic constants of
    interest). ``workflow_kwargs`` go to :func:`workflow_structures`. The score's unit is
    ``score_unit`` (the loop's thresholds and ``decisions.jsonl`` use it for this strategy)."""

    def __init__(self, structure: Any, target: str = "elastic", score: str | None = None,
                 voigt_pairs: Sequence[tuple[int, int]] | None = None, **workflow_kwargs: Any):
        _check_target(target)
        self.structure = to_atoms(structure).copy()
        if not self.structure.pbc.all():
            raise ValueError(f"targeted {target}: the structure must be periodic in all three directions")
        self.target = target
        self.score = score or DEFAULT_SCORE[target]
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; choose from {tuple(SCORES)}")
        self.score_unit = SCORES[self.score]
        self.name = f"property:{target}"
        self.workflow_kwargs = workflow_kwargs
        self.voigt_pairs = None if voigt_pairs is None else [(int(i), int(j)) for i, j in voigt_pairs]

    def propose(self, model: Any, round_index: int, rng: np.random.Generator,
                thresholds: tuple[float, float]) -> Proposal:
        frames = workflow_structures(model, self.structure, self.target, **self.workflow_kwargs)
        scores = committee_scores(model, frames, self.score, self.voigt_pairs)
        for a in frames:
            a.info.pop("reference", None)  # scored; the loop writes frames (pool, logs) without it
        return Proposal(frames, scores)


class PropertyMonitor:
    """``monitor(model, round) -> dict`` for :func:`~.active.learn`: the committee mean and std
    of ``quantity`` (a key of ``CommitteePropertiesResult.summary()``, e.g. ``C44_GPa``, ``B_GPa``,
    ``nu_X_2_THz``; ``nu_X``: the largest std among the X-point branches) on ``structure`` from
    :func:`~mlip_props.properties.uncertainty.committee_properties`; ``"stop"`` when the std is
    below ``tolerance`` (the quantity's unit). ``property_kwargs`` go to ``committee_properties``."""

    def __init__(self, structure: Any, target: str = "elastic", quantity: str | None = None,
                 tolerance: float | None = None, **property_kwargs: Any):
        _check_target(target)
        self.structure = to_atoms(structure).copy()
        self.target = target
        self.quantity = quantity or DEFAULT_QUANTITY[target]
        self.tolerance = tolerance
        self.property_kwargs = property_kwargs
        self.last_reference: str | None = None

    def measure(self, model: Any) -> tuple[float, float]:
        """(mean, std) of the monitored quantity for ``model``."""
        from ..properties.uncertainty import committee_properties

        kw = dict(self.property_kwargs)
        if self.target == "elastic" and kw.get("elastic_reference", "member") == "member":
            # per-member reference cells need every member's EOS minimum inside the sampled range;
            # an early committee may have none (no volume data yet): then strain the mean's cell
            eos = committee_properties(model, self.structure, ["eos"], **{k: v for k, v in kw.items()
                                                                          if k != "elastic_reference"})
            v0 = np.asarray(eos.v0_A3_per_atom_members, float)
            if not (eos.converged and np.all(np.isfinite(v0))):
                kw["elastic_reference"] = "mean"
        self.last_reference = kw.get("elastic_reference", "member") if self.target == "elastic" else None
        summ = committee_properties(model, self.structure, [self.target], **kw).summary()
        if self.quantity == "nu_X":
            keys = [k for k in summ if k.startswith("nu_X_")]
            if not keys:
                raise ValueError("no X point on the band path of this structure; name a quantity")
            k = max(keys, key=lambda k: summ[k][1])
            return summ[k][0], summ[k][1]
        if self.quantity not in summ:
            raise ValueError(f"quantity {self.quantity!r} not in the {self.target} results {sorted(summ)}")
        return summ[self.quantity][0], summ[self.quantity][1]

    def __call__(self, model: Any, round_index: int) -> dict[str, Any]:
        m, s = self.measure(model)
        out: dict[str, Any] = {"property": self.quantity, "property_mean": m, "property_std": s}
        if self.last_reference is not None:
            out["elastic_reference"] = self.last_reference
        if self.tolerance is not None and s < self.tolerance:
            out["stop"] = f"property std {self.quantity} {s:.4g} < tolerance {self.tolerance:g}"
        return out


def learn_targeted(
    seed_frames: Any,
    structure: Any,
    target: str = "elastic",
    oracle: Any = None,
    workdir: str | os.PathLike = "targeted_learning",
    *,
    tolerance: float | None = None,
    quantity: str | None = None,
    score: str | None = None,
    voigt_pairs: Any = "auto",
    extra_explorers: Sequence[Explorer] = (),
    workflow_kwargs: dict | None = None,
    property_kwargs: dict | None = None,
    config: ActiveLearningConfig | None = None,
    resume: bool = True,
    progress: bool = False,
    **overrides: Any,
) -> ActiveLearningResult:
    """Property-targeted active learning (module docstring): the generic loop
    (:func:`~.active.learn`: journal, checkpoints, resume without repeating oracle calls, dedup,
    warm starts) with :class:`PropertyExplorer` on ``structure`` (plus ``extra_explorers``, e.g.
    an MD explorer) and :class:`PropertyMonitor` stopping when the committee std of ``quantity``
    drops below ``tolerance``. ``overrides``: :class:`~.active.ActiveLearningConfig` fields;
    defaults changed for this use (``TARGETED_DEFAULTS``): no trust/wild thresholds (lower 0,
    upper inf: every workflow structure is a candidate; thresholds are in the score's unit),
    ``dedup_distance`` 1e-3 (only symmetry-equivalent or already-labelled cells are duplicates),
    ``max_per_round`` 4. ``voigt_pairs``: for the elastic stress score, the (stress, strain)
    Voigt entries that matter (:func:`committee_scores`); ``"auto"``: those of ``quantity``
    (``QUANTITY_PAIRS``: C11, C12, C44 and their cubic equivalents; for other crystals pass them),
    ``None``: the whole tensor. The history records ``property_mean``/``property_std`` per round."""
    _check_target(target)
    kw = dict(TARGETED_DEFAULTS) if config is None else {}  # an explicit config is taken as it is
    kw.update(overrides)
    if isinstance(voigt_pairs, str):
        voigt_pairs = QUANTITY_PAIRS.get(quantity or DEFAULT_QUANTITY[target]) if target == "elastic" else None
    explorers: list[Explorer] = [PropertyExplorer(structure, target, score, voigt_pairs,
                                                  **(workflow_kwargs or {}))]
    explorers += list(extra_explorers)
    mon = PropertyMonitor(structure, target, quantity, tolerance, **(property_kwargs or {}))
    return learn(seed_frames, oracle, explorers, workdir, resume=resume, config=config, progress=progress,
                 monitor=mon, **kw)
