"""Active learning vs random selection for Cu with the EMT oracle: the command line of
:mod:`active_learning` (one module per protocol: pool, trajectory, onthefly; ``--help`` lists
every option by protocol).

    python benchmarks/active_learning_cu.py --seeds 0 --arms disagreement --workdir /tmp/al ...
    python benchmarks/active_learning_cu.py --summary --workdir /tmp/al --out al.json --plot docs/active_learning_cu.png
    python benchmarks/active_learning_cu.py --protocol trajectory --seeds 0 --arms disagreement ...
    python benchmarks/active_learning_cu.py --protocol onthefly --seeds 0 1 2 --out al.json --plot P
"""
import sys

from active_learning.cli import main  # benchmarks/ is on sys.path when run as a script

if __name__ == "__main__":
    sys.exit(main())
