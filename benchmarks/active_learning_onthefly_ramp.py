"""On-the-fly committee MD of fcc Cu on a 300 -> 2000 K ramp: labelled fraction of the MD frames and
the committee's force disagreement against the thresholds; see benchmarks/active_learning/ramp.py.

    OMP_NUM_THREADS=1 python benchmarks/active_learning_onthefly_ramp.py --ramp-ps 50 \
        --out-prefix /work/runs/h4/ramp --plot docs/active_learning_onthefly_ramp.png
"""
import sys

from active_learning.ramp import main  # benchmarks/ is on sys.path when run as a script

if __name__ == "__main__":
    sys.exit(main())
