"""The on-disk cache of the expensive oracles (pyscf, GPAW): one JSON file per key (a SHA-256 of
the geometry and the settings) under ``cache_dir/<first two hex digits>/``, written atomically."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def load_cached(cache_dir: Path, key: str) -> dict[str, Any]:
    """The entry stored under ``key``, or ``{}`` when there is none (or it cannot be read)."""
    try:
        return json.loads((Path(cache_dir) / key[:2] / f"{key}.json").read_text())
    except (OSError, ValueError):
        return {}


def store_cached(cache_dir: Path, key: str, data: dict[str, Any]) -> None:
    """Write ``data`` under ``key`` (a temporary file renamed into place: concurrent runs never see
    half a file)."""
    d = Path(cache_dir) / key[:2]
    d.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, d / f"{key}.json")


def geometry_key(atoms: Any, settings: dict[str, Any], periodic: bool) -> str:
    """SHA-256 of a structure (species, positions to 1e-8 A; with ``periodic`` also the cell and
    pbc) and of the ``settings`` that decide the answer (method, basis, code versions ...)."""
    import hashlib

    import numpy as np

    payload: dict[str, Any] = {"numbers": atoms.get_atomic_numbers().tolist(),
                               "positions": [f"{x:.8f}" for x in atoms.get_positions().ravel()]}
    if periodic:
        payload["cell"] = [f"{x:.8f}" for x in np.asarray(atoms.get_cell()).ravel()]
        payload["pbc"] = atoms.get_pbc().tolist()
    payload.update(settings)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
