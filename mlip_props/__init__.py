"""mlip-props: materials properties from fitted interatomic potentials.

>>> import mlip_props
>>> pot = mlip_props.load_potential("lj:epsilon=0.4,sigma=2.3")
>>> res = mlip_props.evaluate(pot, structures, ("energy", "forces", "stress"))
"""
__version__ = "0.1.0"

from .backend import (  # noqa: E402
    Batch,
    EvaluationResult,
    MLIPCalculator,
    OraclePotential,
    Potential,
    evaluate,
    evaluate_batch,
)
from .potentials import load_potential, save_potential  # noqa: E402

__all__ = [
    "__version__", "Batch", "EvaluationResult", "MLIPCalculator", "OraclePotential", "Potential",
    "evaluate", "evaluate_batch", "load_potential", "save_potential",
]
