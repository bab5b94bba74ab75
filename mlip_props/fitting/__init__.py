"""Fitted potentials: symmetry-function descriptors, Behler-Parrinello committees with a ZBL core,
physics-informed training, and oracle-labelled sampling.

>>> from mlip_props.fitting import sample, fit
>>> from mlip_props.backend import emt_oracle
>>> frames = sample(bulk("Cu", cubic=True), emt_oracle(), n=200, out_path="cu.extxyz")
>>> model, report = fit("cu.extxyz", "cu.pt", committee=4)
"""
from .committee import CommitteePrediction, committee_predict
from .data import (Dataset, dataset_from_frames, label_frames, label_with_oracle, read_dataset, split_indices,
                   write_dataset)
from .descriptors import SymmetryFunctionConfig, SymmetryFunctions, compute_descriptors, neighbor_pairs, preset
from .losses import hessian_loss, translation_sum_rule
from .model import BehlerParrinelloPotential, CommitteeMean, EnsembleMLP, predict_direct_forces
from .sampling import STRATEGIES, sample
from .training import DEFAULT_WEIGHTS, TrainingReport, fit, parse_weights
from .transforms import CollinearityReport, FeatureTransform, collinearity_report, prune_features, whitening_matrix

__all__ = [
    "CommitteePrediction", "committee_predict", "Dataset", "dataset_from_frames", "label_frames", "label_with_oracle",
    "read_dataset", "split_indices", "write_dataset", "SymmetryFunctionConfig", "SymmetryFunctions", "compute_descriptors",
    "neighbor_pairs", "preset", "hessian_loss", "translation_sum_rule", "BehlerParrinelloPotential", "EnsembleMLP",
    "predict_direct_forces", "CommitteeMean", "STRATEGIES", "sample", "DEFAULT_WEIGHTS", "TrainingReport", "fit", "parse_weights",
    "CollinearityReport", "FeatureTransform", "collinearity_report", "prune_features", "whitening_matrix",
]
