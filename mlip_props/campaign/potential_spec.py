"""Potential specs in campaign files: model-file paths resolved against the campaign's folder, and
the identity (hash) that ties stored results to the exact potential that made them."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..properties.result import jsonable

_MODEL_SUFFIXES = (".pt", ".pth", ".model", ".ckpt")


def _canonical(obj: Any) -> str:
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"))


def _looks_like_path(text: str) -> bool:
    return text.endswith(_MODEL_SUFFIXES) or "/" in text


def _registered_prefix(spec: str) -> tuple[str, str] | None:
    """``(name, arguments)`` of a registered ``name:arguments`` spec (``mace:model.pt``), else None."""
    from ..potentials.registry import known_potentials

    if ":" not in spec:
        return None
    name, rest = spec.split(":", 1)
    return (name, rest) if name.strip().lower() in known_potentials() else None


def _resolve_path(text: str, base_dir: Path) -> str:
    p = Path(text).expanduser()
    return str(p if p.is_absolute() else (Path(base_dir) / p).resolve())


def resolve_potential_spec(spec: Any, base_dir: Path) -> Any:
    """Model-file paths relative to the campaign file become absolute: a bare model file
    (``model.pt``), the file argument of a registered spec (``mace:model.pt``,
    ``mace:path=model.pt,head=x``) and the ``path`` of a mapping; other specs unchanged."""
    if isinstance(spec, dict):
        return {k: (_resolve_path(v, base_dir) if k == "path" and isinstance(v, str) else v) for k, v in spec.items()}
    if not isinstance(spec, str):
        return spec
    s = spec.strip()
    registered = _registered_prefix(s)
    if registered is None:
        return _resolve_path(s, base_dir) if _looks_like_path(s) else spec
    name, rest = registered
    parts = []
    for part in rest.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            key, value = "", part
        if (key.strip() in ("", "path")) and _looks_like_path(value.strip()):
            value = _resolve_path(value.strip(), base_dir)
        parts.append(f"{key}={value}" if sep else value)
    return f"{name}:{','.join(parts)}"


def _files_of(spec: Any) -> list[str]:
    """Existing files named by a spec (bare path, arguments of a registered spec, mapping values)."""
    if isinstance(spec, dict):
        return [f for v in spec.values() if isinstance(v, str) for f in _files_of(v)]
    if not isinstance(spec, str):
        return []
    s = spec.strip()
    if Path(s).is_file():
        return [s]
    registered = _registered_prefix(s)
    if registered is None:
        return []
    values = [part.partition("=")[2] if "=" in part else part for part in registered[1].split(",")]
    return [v.strip() for v in values if v.strip() and Path(v.strip()).is_file()]


def potential_identity(spec: Any) -> tuple[str, str]:
    """(display name, hash) of a potential spec: the SHA-256 of the canonical spec text and of
    every model file it names (so that a model file replaced under the same name is a different
    potential, whose results are not mixed with the old file's)."""
    from ..potentials.serialization import file_sha256

    files = _files_of(spec)
    if isinstance(spec, str) and files == [spec.strip()]:
        return spec, file_sha256(spec.strip())
    text = _canonical(spec)
    if files:
        text += "|" + "|".join(file_sha256(f) for f in files)
    return (spec if isinstance(spec, str) else _canonical(spec)), hashlib.sha256(text.encode()).hexdigest()
