"""How unsure the committee is about a frame, and what that makes of the frame.

* frame reductions: the per-atom committee force spread sqrt(mean_m |F_m,i - <F_i>|^2) (eV/A)
  reduced over a frame's atoms, by its maximum (``"max"``) or root mean square (``"rms"``);
* the committee's virial spread per atom (eV), the stress analogue;
* score rules, one signature ``rule(force_eV_A, virial_eV) -> (score_eV_A, classes)``:
  :class:`ForceScore` (thresholds on the force spread) and :class:`ForceVirialScore` (the larger
  of the force spread and the virial spread as a force equivalent), each frame classified
  'trusted' (score < lower), 'candidate' or 'wild' (above upper: never labelled);
* :func:`score_proposals`: the committee spreads of the frames an explorer did not score itself,
  all in one committee evaluation.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ...backend import evaluate

if TYPE_CHECKING:
    from .config import ActiveLearningConfig

# per-atom squared spreads d_i^2 (N,) -> the frame's squared score
FRAME_REDUCTIONS: dict[str, Callable[[np.ndarray], Any]] = {"max": np.max, "rms": np.mean}


def check_thresholds(lower: float, upper: float) -> None:
    """ValueError unless 0 <= lower <= upper."""
    if not 0 <= lower <= upper:
        raise ValueError(f"need 0 <= lower <= upper thresholds, got {lower}, {upper}")


def classify(disagreement_eV_A: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """'trusted' (d < lower), 'candidate' (lower <= d <= upper) or 'wild' (d > upper) per frame."""
    check_thresholds(lower, upper)
    d = np.asarray(disagreement_eV_A, float)
    out = np.full(d.shape, "candidate", dtype=object)
    out[d < lower] = "trusted"
    out[(d > upper) | ~np.isfinite(d)] = "wild"
    return out


def member_disagreement(forces: np.ndarray, reduce: str = "max") -> float:
    """Per-atom committee force spread sqrt(mean_m |F_m,i - <F_i>|^2) reduced over the frame's
    atoms by ``FRAME_REDUCTIONS[reduce]``: its maximum (``"max"``) or root mean square (``"rms"``),
    eV/A, from member forces (M, N, 3) (a single model's (N, 3): 0)."""
    f = forces if forces.ndim == 3 else forces[None]
    if not f.shape[1]:
        return 0.0
    d2 = ((f - f.mean(0)) ** 2).sum(-1).mean(0)
    return float(np.sqrt(FRAME_REDUCTIONS[reduce](d2)))


def virial_disagreement(stress_eV_A3: np.ndarray, volume_A3: float, n_atoms: int) -> float:
    """Committee spread of the virial per atom, eV: sqrt(sum_ij var_m(sigma_m,ij V / N)) over the
    full 3x3 tensor (Voigt shear entries counted twice), from member stresses (M, 6) (eV/A^3).
    The stress analogue of the force disagreement (as the virial deviation of DP-GEN, Y. Zhang et
    al., Comput. Phys. Commun. 253, 107206 (2020)); 0 for a single model or a non-periodic frame."""
    s = np.asarray(stress_eV_A3, float)
    if s.ndim != 2 or s.shape[0] < 2 or not np.all(np.isfinite(s)):
        return 0.0
    var = (s * volume_A3 / n_atoms).var(0)
    return float(np.sqrt(var[:3].sum() + 2 * var[3:].sum()))


def score_proposals(model: Any, proposals: Sequence[Any], frame_reduce: str, with_virial: bool) -> dict[int, float]:
    """Fill ``disagreement_eV_A`` of every proposal that came without it (static strategies), all
    their frames in ONE committee evaluation. Returns the virial spread (eV/atom) of those frames
    that are periodic, keyed by ``id(atoms)`` (empty unless ``with_virial``)."""
    need = [p for p in proposals if p.disagreement_eV_A is None and p.frames]
    virial_by_id: dict[int, float] = {}
    if not need:
        return virial_by_id
    frames = [a for p in need for a in p.frames]
    r = evaluate(model, frames, ("energy", "forces", "stress") if with_virial else ("energy", "forces"))
    d = [member_disagreement(f, frame_reduce) for f in r.forces_eV_A]
    if with_virial:
        for k, a in enumerate(frames):
            if a.pbc.all() and r.stress_eV_A3 is not None:
                virial_by_id[id(a)] = virial_disagreement(r.stress_eV_A3[k], abs(a.get_volume()), len(a))
    start = 0
    for p in need:
        p.disagreement_eV_A = np.asarray(d[start : start + len(p.frames)])
        start += len(p.frames)
    return virial_by_id


class ForceScore:
    """The committee rule on forces: score = the force spread (eV/A), classified by the
    (lower, upper) thresholds."""

    with_virial = False

    def __init__(self, lower_eV_A: float, upper_eV_A: float):
        check_thresholds(lower_eV_A, upper_eV_A)
        self.lower_eV_A, self.upper_eV_A = lower_eV_A, upper_eV_A

    def __call__(self, force_eV_A: np.ndarray, virial_eV: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return force_eV_A, classify(force_eV_A, self.lower_eV_A, self.upper_eV_A)

    def round_summary(self, force_eV_A: np.ndarray, virial_eV: np.ndarray, selected: Sequence[int],
                      quantile: float) -> dict[str, Any]:
        """Entries of a round's record that belong to this rule (none)."""
        return {}


class ForceVirialScore(ForceScore):
    """Forces and virial together: score = max(d_F, d_V * lower / virial_lower) (eV/A, the virial
    spread as a force equivalent), 'trusted' below ``lower``; 'wild' where the force spread is
    above ``upper`` or the virial spread above ``virial_upper``."""

    with_virial = True

    def __init__(self, lower_eV_A: float, upper_eV_A: float, virial_lower_eV: float, virial_upper_eV: float):
        super().__init__(lower_eV_A, upper_eV_A)
        self.virial_lower_eV, self.virial_upper_eV = virial_lower_eV, virial_upper_eV

    def virial_as_force(self, virial_eV: np.ndarray) -> np.ndarray:
        return virial_eV * (self.lower_eV_A / self.virial_lower_eV)

    def __call__(self, force_eV_A: np.ndarray, virial_eV: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        score = np.maximum(force_eV_A, self.virial_as_force(virial_eV))
        cls = classify(score, self.lower_eV_A, np.inf)
        cls[(force_eV_A > self.upper_eV_A) | (virial_eV > self.virial_upper_eV) | ~np.isfinite(score)] = "wild"
        return score, cls

    def round_summary(self, force_eV_A: np.ndarray, virial_eV: np.ndarray, selected: Sequence[int],
                      quantile: float) -> dict[str, Any]:
        """The round's virial-spread quantile (eV) and how many picks the virial term made."""
        if not len(virial_eV):
            return {}
        return {"virial_q_eV": float(np.quantile(virial_eV, quantile)),
                "n_selected_virial": int(sum(virial_eV[k] * self.lower_eV_A / self.virial_lower_eV > force_eV_A[k]
                                             for k in selected))}


def score_rule(cfg: ActiveLearningConfig) -> ForceScore:
    """The score rule ``cfg`` asks for."""
    if cfg.virial_lower_eV is None:
        return ForceScore(cfg.lower_eV_A, cfg.upper_eV_A)
    return ForceVirialScore(cfg.lower_eV_A, cfg.upper_eV_A, cfg.virial_lower_eV, cfg.virial_upper_eV)
