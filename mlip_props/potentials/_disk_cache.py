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
