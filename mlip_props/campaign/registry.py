"""Property registry: property name -> callable + parameter schema.

Every property follows the convention ``prop(potential, structures, **params)`` returning one
:class:`~mlip_props.properties.result.PropertyResult` per structure. The properties the campaign
layer knows are listed explicitly in :data:`mlip_props.campaign.builtin.BUILTIN_PROPERTIES`
(name, the function that imports the property, its plan function where it has one); a property's
module is imported the first time the property is asked for. An import error is a bug and is
raised, except a missing optional dependency of a property that declares its extra
(``pip install mlip-props[<extra>]``): that property is listed by :func:`unavailable_properties`
with the extra to install, so that campaign validation says clearly what is missing.

The parameter schema is read from the function signature: every keyword parameter after
``(potential, structures)`` with its default; runtime-only parameters (``dtype``, ``device``,
``progress``) are not campaign parameters. Values from a campaign file are checked against the
default's type (an int is accepted where a float is expected); a ``relaxation`` parameter
(:class:`~mlip_props.properties.relax.RelaxSettings`) takes true/false or a mapping of
RelaxSettings fields.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = [
    "PropertySpec", "ParamSpec", "register_property", "get_property", "available_properties",
    "unavailable_properties", "known_property_names", "PropertyUnavailable", "OPTIONAL_EXTRAS",
]

#: optional dependency groups of pyproject.toml and the top-level modules each provides
OPTIONAL_EXTRAS: dict[str, tuple[str, ...]] = {
    "qm": ("pyscf",),
    "dist": ("dask", "distributed"),
    "pretrained": ("chgnet", "sevenn"),
    "kappa": ("phono3py",),
}

RUNTIME_PARAMS = frozenset({"dtype", "device", "progress", "self"})
_REQUIRED = object()


class PropertyUnavailable(KeyError):
    """A known property whose module cannot be imported (message says why)."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ParamSpec:
    """One campaign parameter of a property: name, default (``required`` when none) and annotation."""

    name: str
    default: Any
    annotation: str = ""
    kind: str = ""  # "relaxation": RelaxSettings | dict | bool | None

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def check(self, value: Any) -> str | None:
        """Return an error text if ``value`` does not fit this parameter, else ``None``."""
        if self.kind == "relaxation":
            return check_relaxation(value)
        d = self.default
        if d is _REQUIRED or d is None or value is None:
            return None
        if isinstance(d, bool):
            return None if isinstance(value, bool) else f"expected true/false, got {value!r}"
        if isinstance(d, (int, float)):
            if isinstance(value, (list, tuple)) and "Sequence" in self.annotation:  # e.g. mesh: 40.0 or [8, 8, 8]
                if value and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in value):
                    return None
                return f"expected a number or a list of positive integers, got {value!r}"
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"expected a number, got {value!r}"
            if isinstance(d, int) and not isinstance(d, bool) and isinstance(value, float) and "float" not in self.annotation:
                return f"expected an integer, got {value!r}"
            return None
        if isinstance(d, str):
            return None if isinstance(value, str) else f"expected a string, got {value!r}"
        if isinstance(d, (list, tuple)):
            return None if isinstance(value, (list, tuple, int, float, str)) else f"expected a list, got {value!r}"
        return None


def check_relaxation(value: Any) -> str | None:
    """Error text for a campaign ``relaxation`` value, or ``None``: true/false (the property's
    default relaxation, or none) or a mapping of :class:`~mlip_props.properties.relax.RelaxSettings`
    fields (each field type-checked, then validated by ``resolve_relaxation``)."""
    from ..properties.relax import PROPERTY_RELAXATION, RelaxSettings, resolve_relaxation

    if value is None or isinstance(value, bool):
        return None
    fields = [f.name for f in dataclasses.fields(RelaxSettings)]
    if not isinstance(value, dict):
        return f"expected true/false or a mapping of relaxation settings ({', '.join(fields)}), got {value!r}"
    for key, v in value.items():
        if key not in fields:
            return f"unknown relaxation setting {key!r}; choose from {', '.join(fields)}"
        default = getattr(PROPERTY_RELAXATION, key)
        if isinstance(default, bool) or default is None:
            if not (isinstance(v, bool) or (v is None and key == "ions")):
                return f"relaxation setting {key!r}: expected true/false, got {v!r}"
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"relaxation setting {key!r}: expected a number, got {v!r}"
    try:
        resolve_relaxation(value, PROPERTY_RELAXATION)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class PropertySpec:
    """A registered property: ``func(potential, structures, **params)`` and its parameter schema;
    ``plan`` (``plan(potential, structures, **params)`` -> an
    :class:`~mlip_props.properties.plan.EvaluationPlan`, the same parameters) for properties the
    campaign runner can plan and evaluate together with others, ``None`` otherwise."""

    name: str
    func: Callable[..., Any]
    params: dict[str, ParamSpec] = field(default_factory=dict)
    description: str = ""
    module: str = ""
    plan: Callable[..., Any] | None = None

    def check_params(self, params: dict[str, Any]) -> list[tuple[str | None, str]]:
        """Problems with ``params``: list of (parameter name or None, message)."""
        problems: list[tuple[str | None, str]] = []
        for k, v in params.items():
            if k not in self.params:
                allowed = ", ".join(sorted(self.params)) or "none"
                problems.append((k, f"property {self.name!r} has no parameter {k!r} (allowed: {allowed})"))
                continue
            err = self.params[k].check(v)
            if err:
                problems.append((k, f"property {self.name!r}, parameter {k!r}: {err}"))
        for p in self.params.values():
            if p.required and p.name not in params:
                problems.append((None, f"property {self.name!r} needs parameter {p.name!r}"))
        return problems

    def __call__(self, potential: Any, structures: Any, **params: Any) -> Any:
        return self.func(potential, structures, **params)


def schema_from_signature(func: Callable[..., Any]) -> dict[str, ParamSpec]:
    """Campaign parameters of ``func``: keyword parameters after the first two positional ones
    (without the runtime-only ones). A parameter annotated ``RelaxSettings | dict | bool | None``
    is a ``relaxation`` parameter (:func:`check_relaxation`); one that takes a ``RelaxSettings``
    object only is left out."""
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    out: dict[str, ParamSpec] = {}
    for p in params[2:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in RUNTIME_PARAMS:
            continue
        default = _REQUIRED if p.default is p.empty else p.default
        ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", str(p.annotation))
        ann = "" if p.annotation is p.empty else str(ann)
        kind = ""
        if "RelaxSettings" in ann:
            if "dict" not in ann:
                continue  # takes a RelaxSettings object only: not a value a campaign file can hold
            kind = "relaxation"
        out[p.name] = ParamSpec(p.name, default, ann, kind)
    return out


_REGISTRY: dict[str, PropertySpec] = {}
_UNAVAILABLE: dict[str, str] = {}
_TRIED: set[str] = set()
_LOADED = False


def register_property(name: str, func: Callable[..., Any], params: dict[str, ParamSpec] | None = None,
                      description: str = "", plan: Callable[..., Any] | None = None) -> PropertySpec:
    """Register ``func`` (``func(potential, structures, **params)``) under ``name``, with its plan
    function ``plan`` where it has one.

    ``params`` defaults to the schema read from the signature (:func:`schema_from_signature`).
    The integrator or a plug-in calls this to add properties; re-registering replaces.
    """
    spec = PropertySpec(name, func, schema_from_signature(func) if params is None else params,
                        description or (inspect.getdoc(func) or "").split("\n")[0], getattr(func, "__module__", ""),
                        plan)
    _REGISTRY[name] = spec
    _UNAVAILABLE.pop(name, None)
    return spec


def missing_extra(exc: ImportError, extra: str | None) -> str | None:
    """The reason a property that needs optional dependency group ``extra`` is unavailable, when
    ``exc`` is the import of one of that group's modules failing; ``None`` otherwise (a bug)."""
    if extra is None:
        return None
    missing = (getattr(exc, "name", None) or "").split(".")[0]
    if missing not in OPTIONAL_EXTRAS.get(extra, ()):
        return None
    return f"needs the optional dependency {missing!r}: pip install 'mlip-props[{extra}]' ({exc})"


def load_builtin(entry: Any) -> None:
    """Import and register one :class:`~mlip_props.campaign.builtin.BuiltinProperty`, or record it
    as unavailable when only its optional extra is missing (any other error is raised)."""
    try:
        func, plan = entry.load()
    except ImportError as exc:
        why = missing_extra(exc, entry.extra)
        if why is None:
            raise
        _UNAVAILABLE[entry.name] = why
        _TRIED.add(entry.name)
        return
    _TRIED.add(entry.name)
    register_property(entry.name, func, params=schema_from_signature(func), description=entry.description,
                      plan=plan)


def _builtin() -> dict[str, Any]:
    from .builtin import BUILTIN_PROPERTIES

    return {entry.name: entry for entry in BUILTIN_PROPERTIES}


def _load_one(name: str) -> None:
    """Import the built-in property ``name`` (once) and register it."""
    if name in _TRIED or name in _REGISTRY:
        return
    entry = _builtin().get(name)
    if entry is not None:
        load_builtin(entry)


def _load_known() -> None:
    global _LOADED
    if _LOADED:
        return
    for name in _builtin():
        _load_one(name)
    _LOADED = True


def available_properties() -> dict[str, PropertySpec]:
    """Registered properties whose modules import, by name."""
    _load_known()
    return dict(_REGISTRY)


def unavailable_properties() -> dict[str, str]:
    """Known property names that could not be registered, with the reason."""
    _load_known()
    return dict(_UNAVAILABLE)


def known_property_names() -> list[str]:
    return sorted(set(_REGISTRY) | set(_UNAVAILABLE) | set(_builtin()))


def is_available(name: str) -> bool:
    """Whether property ``name`` is registered (importing only its own module)."""
    _load_one(name)
    return name in _REGISTRY


def get_property(name: str) -> PropertySpec:
    """The registered property ``name``; ``PropertyUnavailable`` (a ``KeyError``) says why not.
    Only the module of that property is imported."""
    _load_one(name)
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _UNAVAILABLE:
        raise PropertyUnavailable(f"property {name!r} is not available in this installation: {_UNAVAILABLE[name]}")
    raise PropertyUnavailable(
        f"unknown property {name!r}; known: {', '.join(known_property_names())}"
    )
