"""A fitted Cu committee at 2500 K: closest pair in a long NVT run and the drift of a following NVE
segment; see benchmarks/active_learning/robustness.py.

    python benchmarks/active_learning_robustness.py MODEL.pt --nvt-ps 100 --nve-ps 10 --out r.json
"""
import sys

from active_learning.robustness import main  # benchmarks/ is on sys.path when run as a script

if __name__ == "__main__":
    sys.exit(main())
