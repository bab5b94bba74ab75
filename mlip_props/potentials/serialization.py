"""Model files: one torch file with the class name, its config, weights and metadata.

Files are read with ``torch.load(..., weights_only=True)``: only tensors, numbers, strings,
lists and dicts are accepted, so opening a model file never runs code from it.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from ..backend.potential import Potential

MODEL_FORMAT = "mlip-props-model"
MODEL_FORMAT_VERSION = 1

_MODEL_CLASSES: dict[str, type] = {}


def register_model_class(cls: type) -> type:
    """Make a :class:`Potential` subclass loadable from model files (usable as a decorator).

    The class is rebuilt with ``cls.from_config(config)`` if it defines it, else ``cls(**config)``.
    """
    _MODEL_CLASSES[cls.__name__] = cls
    return cls


def registered_model_classes() -> list[str]:
    return sorted(_MODEL_CLASSES)


def potential_to_dict(potential: Potential, with_state: bool = True) -> dict[str, Any]:
    name = type(potential).__name__
    if name not in _MODEL_CLASSES:
        raise ValueError(f"{name} is not a registered model class; call register_model_class first")
    out: dict[str, Any] = {"class": name, "config": potential.get_config()}
    if with_state:
        out["state_dict"] = {k: v.detach().cpu() for k, v in potential.state_dict().items()}
    return out


#: Entry-point group of packages whose import registers more model classes (mlip-props' own
#: fitted networks, declared in its pyproject, and any third-party plug-in). They are imported
#: only when a file names a class not registered yet, so this layer never imports them itself.
PLUGIN_GROUP = "mlip_props.model_classes"


def _import_plugins() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            ep.load()
        except ImportError:  # pragma: no cover - optional plugin missing
            pass


def potential_from_dict(d: dict[str, Any]) -> Potential:
    name = d.get("class")
    if name not in _MODEL_CLASSES:
        _import_plugins()
    if name not in _MODEL_CLASSES:
        raise ValueError(f"unknown model class {name!r}; known: {', '.join(registered_model_classes())}")
    cls = _MODEL_CLASSES[name]
    config = d.get("config", {})
    pot = cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)
    state = d.get("state_dict")
    if state:
        pot.load_state_dict(state)
    return pot


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_potential(potential: Potential, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``potential`` to a model file; ``metadata`` (JSON-like) is stored beside the weights."""
    from .. import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "mlip_props_version": __version__,
        "model": potential_to_dict(potential),
        "metadata": metadata or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # never leave a half-written model file behind
    return path


def load_model_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Potential:
    """Load a model file written by :func:`save_potential`.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a corrupt or foreign one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt/unsafe files
        raise ValueError(f"{path}: not a readable mlip-props model file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not an mlip-props model file (no '{MODEL_FORMAT}' header)")
    if int(payload.get("format_version", -1)) > MODEL_FORMAT_VERSION:
        raise ValueError(f"{path}: model format version {payload['format_version']} is newer than this mlip-props")
    try:
        pot = potential_from_dict(payload["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"{path}: corrupt model file ({type(exc).__name__}: {exc})") from exc
    pot.metadata = dict(payload.get("metadata", {}))
    pot.source_file = str(path)
    pot.file_hash = file_sha256(path)
    return pot
