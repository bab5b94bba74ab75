"""One place that turns names into potentials: :func:`load_potential`.

Specs:

* ``"emt"`` — ASE's EMT oracle (Al, Cu, Ag, Au, Ni, Pd, Pt; rough H, C, N, O);
* ``"lj"``, ``"lj:epsilon=0.4,sigma=2.3"``, ``"morse:D=0.34,a=1.36,r0=2.6"``, ``"zbl"`` — analytic
  torch potentials with keyword parameters (eV, Angstrom);
* ``"morse:...+zbl"`` — a sum of terms joined by ``+``;
* a path to a model file (``*.pt``) written by :func:`mlip_props.potentials.save_potential`;
* ``"sevenn"``, ``"sevenn:model=7net-l3i5"`` — SevenNet models as batched torch potentials
  (:class:`~mlip_props.potentials.sevenn.SevenNetPotential`; ``sevenn`` extra; the checkpoints
  ship inside the package and load offline); ``"sevenn-ase"`` — the same model through
  SevenNet's own ASE calculator behind the oracle adapter (to compare the two routes);
* ``"chgnet"``, ``"chgnet:model=r2scan"`` — CHGNet models as batched torch potentials
  (:class:`~mlip_props.potentials.chgnet.CHGNetPotential`; ``chgnet`` or ``pretrained`` extra;
  the checkpoints ship inside the package); ``"chgnet-ase"`` — CHGNet's own ASE calculator
  behind the oracle adapter (to compare the two routes);
* ``"mace:PATH"`` with ``trusted=True`` — a MACE model file as a batched torch potential
  (:class:`~mlip_props.potentials.mace.MACEPotential`; ``mace`` extra);
* any name added with :func:`register_potential` (e.g. the ``pyscf:`` oracle of the ``qm`` extra);
* a dict ``{"name": "lj", "epsilon": ...}`` or an already-built potential (returned as is).
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable

from ..backend.oracle import OraclePotential, emt_oracle
from ..validation import check_number
from .base import SumPotential
from .pair import ZBL, LennardJones, Morse
from .serialization import load_model_file

_FACTORIES: dict[str, Callable[..., Any]] = {}


def register_potential(name: str, factory: Callable[..., Any]) -> None:
    """Make ``load_potential(f"{name}:k=v,...")`` call ``factory(**params)`` (or ``factory(arg)``
    for a spec ``name:anything`` that is not key=value pairs)."""
    _FACTORIES[name.lower()] = factory


def known_potentials() -> list[str]:
    return sorted(_FACTORIES)


def _parse_value(v: str) -> Any:
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    return v


def _parse_params(text: str) -> dict[str, Any] | str:
    if not text:
        return {}
    if "=" not in text:
        return text
    out = {}
    for item in text.split(","):
        if "=" not in item:
            raise ValueError(f"bad potential parameter {item!r}: expected key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = _parse_value(v.strip())
    return out


def _accepts_trusted(factory: Callable[..., Any]) -> bool:
    """Whether a factory takes the ``trusted`` opt-in (only those that may unpickle a model file do;
    for the others, such as ``emt``, the opt-in has nothing to unlock)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "trusted" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


_POSITIVE = dict(minimum=0.0, exclusive_minimum=True)
#: allowed ranges of the numeric parameters of the built-in analytic potentials (eV, Angstrom,
#: 1/Angstrom); any other numeric parameter of any spec must be finite
PARAMETER_RANGES: dict[str, dict[str, dict[str, Any]]] = {
    "lj": {"epsilon": _POSITIVE, "sigma": _POSITIVE, "cutoff": _POSITIVE, "switch_width": _POSITIVE},
    "morse": {"D": _POSITIVE, "a": _POSITIVE, "r0": _POSITIVE, "cutoff": _POSITIVE, "switch_width": _POSITIVE},
    "zbl": {"cutoff": _POSITIVE, "switch_width": _POSITIVE},
}
PARAMETER_RANGES["lennard-jones"] = PARAMETER_RANGES["lj"]


def _check_parameters(name: str, params: dict[str, Any]) -> None:
    """``ValueError`` naming the potential and the parameter for a NaN, infinite or out-of-range
    number in a spec (``"lj:epsilon=nan"`` would give NaN energies); a switch wider than the cutoff
    is refused too."""
    ranges = PARAMETER_RANGES.get(name.strip().lower(), {})
    for key, value in params.items():
        if key not in ranges and (isinstance(value, bool) or not isinstance(value, (int, float))):
            continue  # strings (model names, paths) and flags of other potentials are their business
        try:
            check_number(key, value, **ranges.get(key, {}))
        except ValueError as exc:
            raise ValueError(f"potential {name!r}: {exc}") from None
    cutoff, width = params.get("cutoff"), params.get("switch_width")
    if ranges and isinstance(cutoff, (int, float)) and isinstance(width, (int, float)) and width > cutoff:
        raise ValueError(f"potential {name!r}: parameter 'switch_width': {width!r} is out of range "
                         f"(allowed: > 0 and <= cutoff = {cutoff!r})")


def _build_one(spec: str, trusted: bool = False) -> Any:
    name, _, rest = spec.partition(":")
    key = name.strip().lower()
    if key not in _FACTORIES:
        raise ValueError(
            f"unknown potential {spec!r}: expected a model file path or one of {', '.join(known_potentials())}"
        )
    params = _parse_params(rest.strip())
    factory = _FACTORIES[key]
    extra = {"trusted": True} if trusted and _accepts_trusted(factory) else {}
    if isinstance(params, dict):
        _check_parameters(name, params)
    if isinstance(params, str):
        try:
            return factory(params, **extra)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"bad potential parameter {params!r} for {name!r}: expected key=value pairs ({exc})"
            ) from exc
    try:
        return factory(**params, **extra)
    except TypeError as exc:
        raise ValueError(f"bad parameters for potential {name!r}: {exc}") from exc


def load_potential(spec: Any, *, trusted: bool = False) -> Any:
    """Turn a spec (name, ``name:k=v,...``, ``a+b`` sum, model-file path, dict) into a potential.

    ``trusted=True`` is the explicit opt-in for model files that are pickled code (``"mace:PATH"``,
    a SevenNet checkpoint of your own): it is passed to the factory of a registered name, and
    the file is then unpickled, which runs whatever code it names. Without it such files are
    refused; mlip-props' own model files are always read with ``weights_only=True``.

    Raises ``ValueError`` listing the known names for an unknown spec, ``FileNotFoundError`` for
    a missing model file and ``ValueError`` for a corrupt one.
    """
    if hasattr(spec, "forward") or getattr(spec, "is_oracle", False):
        return spec
    if isinstance(spec, dict):
        d = dict(spec)
        name = d.pop("name", None)
        if name is None:
            raise ValueError("potential dict needs a 'name'")
        text = ",".join(f"{k}={v}" for k, v in d.items())
        return load_potential(f"{name}:{text}" if text else name, trusted=trusted)
    if isinstance(spec, os.PathLike):
        return load_model_file(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"potential spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    registered = ":" in spec and spec.split(":", 1)[0].strip().lower() in _FACTORIES  # e.g. "pyscf:b3lyp/def2-svp"
    if not registered and (spec.endswith((".pt", ".pth")) or os.sep in spec or Path(spec).is_file()):
        return load_model_file(spec)
    parts = [p for p in spec.split("+")]
    terms = [_build_one(p.strip(), trusted) for p in parts]
    if len(terms) == 1:
        return terms[0]
    if any(getattr(t, "is_oracle", False) for t in terms):
        raise ValueError(f"{spec!r}: oracles cannot be summed with other potentials")
    return SumPotential(*terms)


def _pretrained(module: str, attr: str, name: str, **kwargs) -> OraclePotential:
    try:
        mod = __import__(module, fromlist=[attr])
    except ImportError as exc:
        raise ValueError(
            f"potential {name!r} needs the 'pretrained' extra: pip install 'mlip-props[pretrained]' "
            f"(with your installed torch held by a constraints file) ({exc})"
        ) from exc
    cls = getattr(mod, attr)
    cache: list = []

    def factory():  # build the model once (seconds), on first use, then reuse it for every structure
        if not cache:
            cache.append(cls(**kwargs))
        return cache[0]

    return OraclePotential(factory, name=name)


register_potential("emt", lambda: emt_oracle())
register_potential("lj", LennardJones)
register_potential("lennard-jones", LennardJones)
register_potential("morse", Morse)
register_potential("zbl", ZBL)
register_potential("chgnet-ase", lambda **kw: _pretrained("chgnet.model.dynamics", "CHGNetCalculator", "chgnet-ase",
                                                          **kw))
register_potential("sevenn-ase", lambda **kw: _pretrained("sevenn.calculator", "SevenNetCalculator", "sevenn-ase",
                                                          **{"model": "7net-0", **kw}))


def _sevenn(*args: Any, **kwargs: Any) -> Any:
    from .sevenn import SevenNetPotential

    return SevenNetPotential(*args, **kwargs)


register_potential("sevenn", _sevenn)


def _chgnet(*args: Any, **kwargs: Any) -> Any:
    from .chgnet import CHGNetPotential

    return CHGNetPotential(*args, **kwargs)


register_potential("chgnet", _chgnet)


def _mace(*args: Any, **kwargs: Any) -> Any:
    from .mace import MACEPotential

    return MACEPotential(*args, **kwargs)


register_potential("mace", _mace)


def _gpaw(*args, **kwargs):  # the 'dft' extra: GPAW is imported on first use only
    from .gpaw_oracle import gpaw_oracle

    return gpaw_oracle(*args, **kwargs)


register_potential("gpaw", _gpaw)
