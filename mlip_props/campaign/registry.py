"""Property registry: property name -> callable + parameter schema.

Every property module follows the convention ``prop(potential, structures, **params)`` returning
one :class:`~mlip_props.properties.result.PropertyResult` per structure. The registry lists the
properties the campaign layer knows about by *module path*, imports them lazily and registers
what imports: a property whose module is not installed (or not written yet) is listed by
:func:`unavailable_properties` with the import error, so that campaign validation can say
clearly which properties are missing instead of failing halfway through a run.

The parameter schema is read from the function signature: every keyword parameter after
``(potential, structures)`` with its default; runtime-only parameters (``dtype``, ``device``,
``progress``) are not campaign parameters. Values from a campaign file are checked against the
default's type (an int is accepted where a float is expected).
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = [
    "PropertySpec", "ParamSpec", "register_property", "get_property", "available_properties",
    "unavailable_properties", "known_property_names", "PropertyUnavailable",
]

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

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def check(self, value: Any) -> str | None:
        """Return an error text if ``value`` does not fit this parameter, else ``None``."""
        d = self.default
        if d is _REQUIRED or d is None or value is None:
            return None
        if isinstance(d, bool):
            return None if isinstance(value, bool) else f"expected true/false, got {value!r}"
        if isinstance(d, (int, float)):
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


@dataclass(frozen=True)
class PropertySpec:
    """A registered property: ``func(potential, structures, **params)`` and its parameter schema."""

    name: str
    func: Callable[..., Any]
    params: dict[str, ParamSpec] = field(default_factory=dict)
    description: str = ""
    module: str = ""

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
    """Campaign parameters of ``func``: keyword parameters after the first two positional ones."""
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    out: dict[str, ParamSpec] = {}
    for p in params[2:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in RUNTIME_PARAMS:
            continue
        default = _REQUIRED if p.default is p.empty else p.default
        ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", str(p.annotation))
        out[p.name] = ParamSpec(p.name, default, "" if p.annotation is p.empty else str(ann))
    return out


# name -> (module, candidate function names, description)
_KNOWN: dict[str, tuple[str, tuple[str, ...], str]] = {
    "energy": ("mlip_props.campaign.builtin", ("energy",), "static or relaxed energy per atom (eV/atom)"),
    "relax": ("mlip_props.properties.relax", ("relax",), "batched FIRE relaxation of positions (and cell)"),
    "eos": ("mlip_props.properties.eos", ("equation_of_state", "eos"), "equation of state: V0, E0, B, B'"),
    "elastic": ("mlip_props.properties.elastic", ("elastic_tensor", "elastic_constants", "elastic"), "6x6 elastic tensor (GPa)"),
    "phonons": ("mlip_props.properties.phonons", ("phonons",), "harmonic phonons (THz) with ASR checks"),
    "thermal": ("mlip_props.properties.thermal", ("thermal_properties", "harmonic_thermal", "thermal"), "harmonic Cv, S, F (J/(mol K))"),
    "qha": ("mlip_props.properties.thermal", ("quasi_harmonic", "qha"), "quasi-harmonic thermodynamics"),
    "diatomic": ("mlip_props.properties.diatomic", ("diatomic",), "diatomic r_e, D_e, omega_e (cm^-1)"),
    "vibrations": ("mlip_props.properties.vibrations", ("vibrations",), "molecular vibrations (cm^-1)"),
    "committee": ("mlip_props.campaign.builtin", ("committee",),
                  "committee mean and std of EOS, elastic, phonons, Cv (committee potentials)"),
}

def _diatomic_adapter(func: Callable[..., Any]) -> Callable[..., Any]:
    """``diatomic`` takes pairs of symbols (it builds its own scan): a two-atom structure of a
    campaign stands for the pair of its elements."""

    def diatomic_from_structures(potential: Any, structures: Any, **params: Any) -> Any:
        single = not isinstance(structures, (list, tuple))
        pairs = []
        for k, a in enumerate([structures] if single else structures):
            syms = a.get_chemical_symbols() if hasattr(a, "get_chemical_symbols") else None
            if syms is None or len(syms) != 2:
                raise ValueError(f"structure {k}: diatomic needs a two-atom structure, got "
                                 f"{len(syms) if syms is not None else type(a).__name__} atoms")
            pairs.append(tuple(syms))
        res = func(potential, pairs, **params)
        return res[0] if single and isinstance(res, list) else res

    diatomic_from_structures.__doc__ = func.__doc__
    return diatomic_from_structures


#: wrappers turning campaign structures into what a property function takes
_ADAPTERS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {"diatomic": _diatomic_adapter}

_REGISTRY: dict[str, PropertySpec] = {}
_UNAVAILABLE: dict[str, str] = {}
_LOADED = False


def register_property(name: str, func: Callable[..., Any], params: dict[str, ParamSpec] | None = None,
                      description: str = "") -> PropertySpec:
    """Register ``func`` (``func(potential, structures, **params)``) under ``name``.

    ``params`` defaults to the schema read from the signature (:func:`schema_from_signature`).
    The integrator or a plug-in calls this to add properties; re-registering replaces.
    """
    spec = PropertySpec(name, func, schema_from_signature(func) if params is None else params,
                        description or (inspect.getdoc(func) or "").split("\n")[0], getattr(func, "__module__", ""))
    _REGISTRY[name] = spec
    _UNAVAILABLE.pop(name, None)
    return spec


_TRIED: set[str] = set()


def _load_one(name: str) -> None:
    """Import the module of known property ``name`` (once) and register it, or record why not."""
    if name in _TRIED or name in _REGISTRY or name not in _KNOWN:
        return
    _TRIED.add(name)
    module, candidates, desc = _KNOWN[name]
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # ImportError, or an error inside a module being written
        _UNAVAILABLE[name] = f"module {module} cannot be imported ({type(exc).__name__}: {exc})"
        return
    func = next((getattr(mod, c) for c in candidates if callable(getattr(mod, c, None))), None)
    if func is None:
        _UNAVAILABLE[name] = f"module {module} has none of the functions {', '.join(candidates)}"
        return
    params = schema_from_signature(func)
    if name in _ADAPTERS:
        func = _ADAPTERS[name](func)
    register_property(name, func, params=params, description=desc)


def _load_known() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for name in _KNOWN:
        _load_one(name)


def available_properties() -> dict[str, PropertySpec]:
    """Registered properties whose modules import, by name."""
    _load_known()
    return dict(_REGISTRY)


def unavailable_properties() -> dict[str, str]:
    """Known property names that could not be registered, with the reason."""
    _load_known()
    return dict(_UNAVAILABLE)


def known_property_names() -> list[str]:
    return sorted(set(_REGISTRY) | set(_UNAVAILABLE) | set(_KNOWN))


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
