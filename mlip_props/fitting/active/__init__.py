"""Active learning: committee-driven on-the-fly fitting, oracle calls only where the model is unsure.

The loop (:func:`learn`, :mod:`.loop`)::

    seed frames --oracle--> data --fit--> committee
      repeat (one round):
        exploration (:mod:`..explore`: batched MD at a temperature schedule, strained cells,
                     rattles, normal modes, dimer/trimer scans) proposes frames
        selection: d = max over atoms of the per-atom committee force disagreement
                   sqrt(mean_m |F_m,i - <F_i>|^2) (eV/A; query by committee, H. S. Seung et al.,
                   COLT 1992; A. V. Shapeev et al., Comput. Mater. Sci. 140, 171 (2017))
                   d <  lower            -> "trusted"   (never labelled)
                   lower <= d <= upper   -> "candidate"
                   d >  upper            -> "wild"      (never labelled: the model extrapolates far
                                            outside its data; MD restarts from the last trusted frame)
                   candidates closer than ``dedup_distance`` (descriptor fingerprint distance) to a
                   labelled frame or to an already-selected one -> "duplicate"; of the rest the
                   ``max_per_round`` most uncertain -> "selected"
                   frames proposed again that are already labelled (same structure hash; fixed
                   pools, scans) -> "duplicate" as well, before any scoring of distances
                   optional (off by default): ``virial_lower_eV`` also scores statically proposed
                   frames by the committee's virial spread per atom (as a force-equivalent
                   d_V * lower / virial_lower); ``diversity`` > 0 picks a round's frames greedily by
                   disagreement x (1 - exp(-(D/l)^2)), D the fingerprint distance to this round's
                   picks; ``frame_reduce="rms"`` the RMS instead of the max over atoms;
                   ``balance_explorers`` takes a round's picks in turns over the explorers
                   ``selection="random"`` (the control arm of benchmarks): instead, up to
                   ``max_per_round`` of the unlabelled proposed frames are picked uniformly at
                   random (thresholds and disagreement ignored), everything else unchanged
        oracle labels the selected frames (each call logged, journalled to disk at once)
        retrain: warm start from the current committee (same descriptor transform, bootstrap
                 resample per member), or a full refit every ``refit_every`` rounds
        checkpoint: labelled data (extxyz), committee (model file), explorer state (MD positions
                    and velocities), counters, history
      until: no frame selected for ``patience`` rounds, the oracle budget is spent, the target
             uncertainty is reached (the ``uncertainty_quantile`` of d over a round's frames is
             below ``target_uncertainty_eV_A``), a ``monitor`` says stop (property-targeted
             learning, :mod:`..targeted`: a property's committee std below a tolerance), or
             ``max_rounds``.

Resuming (``resume=True``, the default) restarts from the last completed round. Every round's
randomness is seeded from (seed, round), so the restarted round proposes the same frames, and the
oracle journal (``oracle_journal.extxyz``, keyed by a hash of numbers, positions, cell and pbc)
answers the calls already made before the crash: no oracle call is ever repeated. A run that
stopped on its own rules (budget, patience, target uncertainty) goes on when resumed with looser
ones (a larger ``max_oracle_calls`` or ``max_rounds``); a stop asked for by a ``monitor`` stands.
Each round's record carries its own ``seconds`` per stage (oracle, training, exploration, selection).

Files in ``workdir``: ``oracle_calls.jsonl`` (one line per oracle call: round, hash, n_atoms,
config_type, seconds, energy), ``decisions.jsonl`` (one line per scored frame: round, source,
disagreement, decision), ``rounds.jsonl``, ``data.extxyz``, ``model.pt``, ``state.json``,
``learning_curve.png`` (force RMSE of the committee mean on a fixed test set vs oracle calls).

Rooms: :mod:`.config` (the settings, validated once and frozen), :mod:`.scores` (force and
virial disagreement, frame reductions, score rules and classification), :mod:`.selection`
(fingerprints, de-duplication, the greedy / diversity / random pickers), :mod:`.journal` (the
oracle journal), :mod:`.checkpoint` (the run state and the files of ``workdir``),
:mod:`.retrain` (fresh fits and warm starts), :mod:`.curves` (test error and learning-curve plot),
:mod:`.loop` (:func:`learn`).
"""
from .checkpoint import RunState
from .config import DECISIONS, SELECTIONS, ActiveLearningConfig
from .curves import force_rmse_meV_A, plot_learning_curve
from .journal import OracleJournal, structure_hash
from .loop import ActiveLearningResult, learn
from .retrain import fresh_fit, warm_start_fit
from .scores import (FRAME_REDUCTIONS, ForceScore, ForceVirialScore, classify, member_disagreement,
                     virial_disagreement)
from .selection import (BalancedPicker, DiversePicker, GreedyPicker, RandomPicker, RoundFrames, deduplicate,
                        diverse_select, fingerprints, round_robin_deduplicate)

__all__ = [
    "ActiveLearningConfig", "ActiveLearningResult", "DECISIONS", "SELECTIONS", "learn", "RunState", "OracleJournal",
    "structure_hash", "force_rmse_meV_A", "plot_learning_curve", "fresh_fit", "warm_start_fit", "FRAME_REDUCTIONS",
    "ForceScore", "ForceVirialScore", "classify", "member_disagreement", "virial_disagreement", "DiversePicker",
    "GreedyPicker", "RandomPicker", "RoundFrames", "deduplicate", "diverse_select", "fingerprints", "BalancedPicker",
    "round_robin_deduplicate",
]
