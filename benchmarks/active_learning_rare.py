"""Active learning judged on rare events (Cu, EMT oracle): three arms (Boltzmann MD labels, random
picks from the loop's explorers, the committee loop), force error on rare and typical test sets
against oracle calls; see benchmarks/active_learning/rare_events.py.

    python benchmarks/active_learning_rare.py --arm committee --seed 0 --workdir /tmp/rare
    python benchmarks/active_learning_rare.py --summary --workdir /tmp/rare --out rare.json --plot P
"""
import sys

from active_learning.rare_events import main  # benchmarks/ is on sys.path when run as a script

if __name__ == "__main__":
    sys.exit(main())
