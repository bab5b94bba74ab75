"""The batched torch backend: batches, neighbour graphs, evaluation, oracle and ASE adapters.

The backend knows nothing of properties, fitting or campaigns.
"""
from .batch import Batch, default_device, to_atoms, validate_atoms
from .calculator import MLIPCalculator
from .evaluate import BatchOutput, EvaluationResult, evaluate, evaluate_batch, is_oracle
from .neighbors import NeighborGraph, build_neighbor_graph, edge_vectors
from .oracle import OracleError, OraclePotential, emt_oracle
from .potential import AtomicGraph, Potential, module_device
from .units import EV_A3_TO_GPA, THZ_TO_CM1, stress_to_gpa

__all__ = [
    "Batch", "default_device", "to_atoms", "validate_atoms", "MLIPCalculator", "BatchOutput",
    "EvaluationResult", "evaluate", "evaluate_batch", "is_oracle", "NeighborGraph",
    "build_neighbor_graph", "edge_vectors", "OracleError", "OraclePotential", "emt_oracle",
    "AtomicGraph", "Potential", "module_device", "EV_A3_TO_GPA", "THZ_TO_CM1", "stress_to_gpa",
]
