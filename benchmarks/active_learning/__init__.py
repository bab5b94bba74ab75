"""Active learning vs random selection for Cu with the EMT oracle: oracle calls to reach a test
force error, wall time per stage, and the properties (a0, B, X-point phonons) of the learnt
committees against EMT.

One module per protocol (run through ``benchmarks/active_learning_cu.py``):

* ``pool`` (:mod:`.pool`, the default): both selection rules ("disagreement": committee force
  disagreement + de-duplication; "random": uniform) run the same loop on the same fixed pool of
  EMT MD frames; ``--arms true_error``: a bound (ranking by the committee's actual error).
* ``trajectory`` (:mod:`.trajectory`): on-the-fly committee MD with per-replica pausing; the
  random arm runs the same loop, with the same picks per round, on the frames that run explored.
* ``onthefly`` (:mod:`.onthefly`): committee MD without pausing; the random arm draws frames
  from its trajectories and fits each training set from scratch.

:mod:`.summary` reads finished (or interrupted) pool and trajectory arms back: mean curves over
seeds, calls to reach given errors and the ratio active / random (``--summary``), selection
variants side by side (``--compare LABEL=WORKDIR ...``), properties (``--properties``).
:mod:`.common` holds the cell, the fixed test set (independent EMT Langevin MD at 300, 900,
1500 K on the equilibrium cell and at 900 K on +-5 % strained cells, its own seed), the seed data
and the property calculation.

    python benchmarks/active_learning_cu.py --seeds 0 --arms disagreement --workdir /tmp/al ...
    python benchmarks/active_learning_cu.py --summary --workdir /tmp/al --out al.json --plot docs/active_learning_cu.png
    python benchmarks/active_learning_cu.py --compare LABEL=WORKDIR ... --out cmp.json --plot P
    python benchmarks/active_learning_cu.py --protocol trajectory --seeds 0 --arms disagreement ...
    python benchmarks/active_learning_cu.py --protocol trajectory --seeds 0 --arms random ...
    python benchmarks/active_learning_cu.py --protocol trajectory --summary --workdir W --plot P
    python benchmarks/active_learning_cu.py --protocol onthefly --seeds 0 1 2 --out al.json --plot P

Each (seed, arm) of the pool and trajectory protocols may run as its own process; rerun the same
command to resume.
"""
