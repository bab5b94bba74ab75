"""Calibration of committee uncertainties against an oracle, stored with the model file.

A committee's std is usually mis-calibrated; :func:`calibration` measures against an oracle the
fraction of errors within 1 and 2 std and the factor by which the std must be scaled
(maximum-likelihood scaling of the variance, alpha^2 = <err^2 / std^2>: F. Musil, M. J. Willatt,
M. A. Langovoy and M. Ceriotti, J. Chem. Theory Comput. 15, 906 (2019)).
:func:`store_calibration` writes it into the model's metadata; :func:`stored_calibration` reads it
back. The raw std is never rescaled silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .result import PropertyResult


@dataclass(frozen=True)
class CalibrationResult(PropertyResult):
    """Committee errors against an oracle, per property.

    ``z``: |mean - oracle| / std per property; ``within_1_std``/``within_2_std``: fraction of
    properties with z <= 1 / 2; ``scale_factor_ml``: alpha = sqrt(<z^2>), the maximum-likelihood
    factor for the std (Musil et al. 2019; > 1: the committee is over-confident);
    ``scale_factor_2std``: the smallest factor that puts every error within 2 (scaled) std.
    ``structure_index``: which structure each entry belongs to (all 0 for one summary);
    ``per_property``: ``{name: {"n", "scale_factor_ml", "within_1_std", "within_2_std"}}`` over
    the structures (one structure: the factor is that property's own z, a noisy estimate).
    """

    names: list
    mean: list
    std: list
    oracle: list
    z: list
    within_1_std: float
    within_2_std: float
    scale_factor_ml: float
    scale_factor_2std: float
    structure_index: list = field(default_factory=list)
    per_property: dict = field(default_factory=dict)


def calibration(summary: dict[str, tuple] | Sequence[dict[str, tuple]],
                oracle: dict[str, float] | Sequence[dict[str, float]]) -> CalibrationResult:
    """Calibration of committee std against oracle values for the properties both dicts share
    (``summary`` from :meth:`CommitteePropertiesResult.summary`: name -> (mean, std, ...)).
    Lists of summaries and oracle dicts (one pair per structure) pool all their properties
    (and give per-property factors over the structures).
    Raises ``ValueError`` when they share nothing, a std is zero or the lists differ in length."""
    sums = [summary] if isinstance(summary, dict) else list(summary)
    oras = [oracle] if isinstance(oracle, dict) else list(oracle)
    if len(sums) != len(oras):
        raise ValueError(f"{len(sums)} summaries but {len(oras)} oracle dicts")
    names, sidx = [], []
    for k, (s, o) in enumerate(zip(sums, oras)):
        for name in s:
            if name in o:
                names.append(name)
                sidx.append(k)
    if not names:
        raise ValueError("summary and oracle share no property names")
    mean = np.array([sums[k][n][0] for n, k in zip(names, sidx)], dtype=float)
    std = np.array([sums[k][n][1] for n, k in zip(names, sidx)], dtype=float)
    ref = np.array([oras[k][n] for n, k in zip(names, sidx)], dtype=float)
    if np.any(~(std > 0)):
        bad = [f"{n} (structure {k})" if len(sums) > 1 else n for n, k, s in zip(names, sidx, std) if not s > 0]
        raise ValueError(f"zero or undefined std for {bad}")
    z = np.abs(mean - ref) / std
    per: dict[str, dict] = {}
    for name in dict.fromkeys(names):
        zz = z[[i for i, n in enumerate(names) if n == name]]
        per[name] = {"n": int(len(zz)), "scale_factor_ml": float(np.sqrt(np.mean(zz**2))),
                     "within_1_std": float(np.mean(zz <= 1)), "within_2_std": float(np.mean(zz <= 2))}
    return CalibrationResult(names=names, mean=mean.tolist(), std=std.tolist(), oracle=ref.tolist(), z=z.tolist(),
                             within_1_std=float(np.mean(z <= 1)), within_2_std=float(np.mean(z <= 2)),
                             scale_factor_ml=float(np.sqrt(np.mean(z**2))),
                             scale_factor_2std=float(max(1.0, z.max() / 2.0)), structure_index=sidx,
                             per_property=per)


def store_calibration(model_path: Any, calibration_result: CalibrationResult, out_path: Any = None, *,
                      factor: str = "ml", oracle: str = "", note: str = "") -> Path:
    """Store a calibration with the model: ``metadata["calibration"]`` of the model file.

    Written (JSON-like, loadable with ``weights_only=True``): ``factor`` (the std scale factor
    to apply: ``scale_factor_ml`` for ``factor="ml"``, the default, or ``scale_factor_2std``
    for ``"2std"``), ``factor_kind``, both factors, ``per_property`` ({name: ML factor over the
    structures}), ``within_1_std``/``within_2_std``, ``n``, the names, z and oracle values,
    ``oracle`` and ``note`` (free text), ``method``. The other metadata and the weights are kept.
    ``out_path``: write a new model file there (default: replace ``model_path``, atomically).
    The loaded potential exposes it as ``potential.metadata["calibration"]``;
    :func:`committee_properties` offers it as ``calibration_factor``/``calibration_factors``
    (never replacing the raw std). Returns the path written.
    """
    from ..potentials.serialization import load_model_file, save_potential

    if factor not in ("ml", "2std"):
        raise ValueError(f"factor must be 'ml' or '2std', got {factor!r}")
    c = calibration_result
    pot = load_model_file(model_path)
    meta = dict(getattr(pot, "metadata", {}) or {})
    meta["calibration"] = {
        "factor": float(c.scale_factor_ml if factor == "ml" else c.scale_factor_2std),
        "factor_kind": factor,
        "scale_factor_ml": float(c.scale_factor_ml),
        "scale_factor_2std": float(c.scale_factor_2std),
        "per_property": {k: float(v["scale_factor_ml"]) for k, v in (c.per_property or {}).items()},
        "within_1_std": float(c.within_1_std),
        "within_2_std": float(c.within_2_std),
        "n": len(c.names),
        "names": [str(n) for n in c.names],
        "z": [float(v) for v in c.z],
        "oracle_values": [float(v) for v in c.oracle],
        "oracle": str(oracle),
        "note": str(note),
        "method": "std scale factors from committee errors vs an oracle (mlip_props.properties.calibration."
                  "calibration; ML factor sqrt(<z^2>), Musil et al., JCTC 15, 906 (2019))",
    }
    return save_potential(pot, Path(out_path if out_path is not None else model_path), metadata=meta)


def stored_calibration(potential: Any) -> dict | None:
    """The calibration stored with a loaded model (``potential.metadata["calibration"]``), or None."""
    meta = getattr(potential, "metadata", None)
    cal = meta.get("calibration") if isinstance(meta, dict) else None
    return cal if isinstance(cal, dict) and "factor" in cal else None
