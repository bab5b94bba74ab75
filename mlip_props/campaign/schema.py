"""Campaign files: YAML schema and validation that names the offending line.

A campaign file (the shipped ones: ``mlip_props/data/workflows/*.yaml``)::

    name: fcc-metals                      # required
    description: ...                      # optional
    potential: emt                        # any load_potential spec (string or mapping)
    structures:                           # list of sources, each one of:
      - Cu                                #   a name or file path (plain string)
      - name: Cu:hcp                      #   one name (see mlip_props.structures)
      - names: [Al, Ni, Ag]               #   several names
      - file: data/cu.cif                 #   a file (every frame; frames: last for the last only)
      - glob: "data/*.xyz"                #   files matching a pattern (at least one must match)
      - prototype: fcc                    #   a generator over element lists:
        elements: [Al, Cu, Ni]            #     fcc/bcc/hcp/sc/diamond/dimer, or L1_2/L1_0/B2 over
                                          #     ``pairs: [[Cu, Au]]`` (A3B, AB, AB)
      - db: structures.db                 #   an ASE database, optional ``select: "natoms<10"``
      - library: all                      #   reference solids of mlip_props.structure_library: all, or
        exclude: [Fe-bcc]                 #     crystal systems / prototypes ([cubic, wurtzite]); labels are
                                          #     the library names (see campaign.sources.library_names)
    properties:                           # mapping name -> parameters (or null), or a list of
      energy: {relax: true}               #   such one-key mappings (same property twice)
      eos: {}
    options:                              # all optional
      batch_size: 16                      #   structures per backend call (per batch)
      db: results.db                      #   results database (relative to the current directory)
      report: report/                     #   report folder (relative to the current directory)
      min_distance_A: 0.5                 #   closer atoms: structure recorded as failed
      retry_failed: false                 #   recompute rows recorded as failed
      joint_batches: true                 #   plan every property of a structure chunk together
      claim_ttl_s: 3600                   #   how long a runner's claim on rows lasts (shared databases)
    reference: [elements_fcc.csv]         # reference CSV files for the report (paths or shipped names)

Validation runs before any work: unknown keys, properties (and properties known but not
available in this installation), parameters and their types, elements and names, missing files
and empty globs are all collected and reported as ``file:line: message``.
"""
from __future__ import annotations

import glob as _glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data import reference_data_dir
from .registry import _UNAVAILABLE, PropertyUnavailable, get_property, is_available


def _unavailable() -> dict[str, str]:
    return _UNAVAILABLE

__all__ = ["Campaign", "CampaignError", "StructureSource", "PropertyRequest", "load_campaign",
           "parse_campaign", "reference_data_dir", "DEFAULT_OPTIONS"]

DEFAULT_OPTIONS: dict[str, Any] = {
    "batch_size": 16,
    "db": None,
    "report": None,
    "min_distance_A": 0.5,
    "retry_failed": False,
    "joint_batches": True,
    "claim_ttl_s": 3600.0,
}
_TOP_KEYS = {"name", "description", "potential", "structures", "properties", "options", "reference"}
_SOURCE_KINDS = ("name", "names", "file", "glob", "prototype", "db", "library")
_SOURCE_EXTRA = {"name": {"label"}, "names": set(), "file": {"frames", "label"}, "glob": {"frames"},
                 "prototype": {"elements", "pairs", "a", "label"}, "db": {"select"},
                 "library": {"exclude"}}
ELEMENT_PROTOTYPES = ("fcc", "bcc", "hcp", "sc", "diamond", "dimer")
BINARY_PROTOTYPES = ("L1_2", "L1_0", "B2")


class CampaignError(ValueError):
    """A campaign file failed validation; ``problems`` is a list of (line, message)."""

    def __init__(self, path: str, problems: list[tuple[int | None, str]]):
        self.path = path
        self.problems = sorted(problems, key=lambda p: (p[0] or 0))
        lines = [f"{path}:{ln}: {msg}" if ln else f"{path}: {msg}" for ln, msg in self.problems]
        super().__init__("invalid campaign file:\n  " + "\n  ".join(lines))


@dataclass
class StructureSource:
    kind: str
    value: Any
    line: int
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PropertyRequest:
    name: str
    params: dict[str, Any]
    line: int


@dataclass
class Campaign:
    """A validated campaign. Paths in sources are resolved relative to ``base_dir``."""

    name: str
    potential: Any
    sources: list[StructureSource]
    properties: list[PropertyRequest]
    options: dict[str, Any]
    reference: list[str]
    base_dir: Path
    path: str = "<campaign>"
    description: str = ""
    skipped_properties: list[tuple[str, str]] = field(default_factory=list)
    #: the user opted in (``--trust-model-file``) to unpickle a model file that is code
    trust_model_file: bool = False

    def resolve(self, p: str | os.PathLike) -> Path:
        q = Path(os.path.expanduser(str(p)))
        return q if q.is_absolute() else self.base_dir / q


# --------------------------------------------------------------------------------- YAML + lines
def _lines(node: yaml.Node, path: tuple = (), out: dict | None = None, dups: list | None = None) -> dict:
    """Map every path (tuple of keys/indices) in the YAML tree to its 1-based line."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            key = k.value
            if key in seen and dups is not None:
                dups.append((k.start_mark.line + 1, f"duplicate key {key!r}"))
            seen.add(key)
            out[path + (key,)] = k.start_mark.line + 1
            _lines(v, path + (key,), out, dups)
            out[path + (key,)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, path + (i,), out, dups)
    return out


def _line(lines: dict, *path) -> int | None:
    p = tuple(path)
    while p not in lines and p:
        p = p[:-1]
    return lines.get(p)


def _names_trust(spec: Any) -> bool:
    """Whether a potential spec from a campaign file tries to opt in to unpickling (``trusted``)."""
    if isinstance(spec, dict):
        return any(str(k).strip().lower() == "trusted" for k in spec) or any(_names_trust(v) for v in spec.values())
    if isinstance(spec, str):
        return any(part.split("=", 1)[0].strip().lower() == "trusted"
                   for part in spec.replace(":", ",").replace("+", ",").split(",") if "=" in part)
    return False


def load_campaign(path: str | os.PathLike, *, skip_unavailable: bool = False, check_potential: bool = True,
                  trust_model_file: bool = False) -> Campaign:
    """Read and validate a campaign file; raises :class:`CampaignError` naming every bad line.

    ``trust_model_file``: the user's explicit opt-in to unpickle a model file that is code
    (``mace:PATH``); it is never read from the campaign file itself, which may come from anyone."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"campaign file {str(p)!r} does not exist")
    return parse_campaign(p.read_text(), base_dir=p.parent, path=str(p), skip_unavailable=skip_unavailable,
                          check_potential=check_potential, trust_model_file=trust_model_file)


def parse_campaign(text: str, *, base_dir: str | os.PathLike = ".", path: str = "<campaign>",
                   skip_unavailable: bool = False, check_potential: bool = True,
                   trust_model_file: bool = False) -> Campaign:
    """Validate campaign YAML ``text``; see the module docstring for the schema.

    ``skip_unavailable``: drop properties that are known but not installed (listed in
    ``Campaign.skipped_properties``) instead of rejecting the file.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CampaignError(path, [((mark.line + 1) if mark else None, f"YAML syntax error: {getattr(exc, 'problem', exc)}")]) from exc
    if node is None or not isinstance(data, dict):
        raise CampaignError(path, [(1, "a campaign file must be a mapping with 'name', 'potential', 'structures', 'properties'")])
    problems: list[tuple[int | None, str]] = []
    lines = _lines(node, dups=problems)
    base = Path(base_dir)

    for k in data:
        if k not in _TOP_KEYS:
            problems.append((_line(lines, k), f"unknown key {k!r} (allowed: {', '.join(sorted(_TOP_KEYS))})"))
    for k in ("name", "potential", "structures", "properties"):
        if k not in data:
            problems.append((1, f"missing required key {k!r}"))
    name = data.get("name", "")
    if "name" in data and not isinstance(name, str):
        problems.append((_line(lines, "name"), "'name' must be a string"))
    elif isinstance(name, str):
        why = name_problem(name)
        if why:
            problems.append((_line(lines, "name"), why))

    # potential
    pot = data.get("potential")
    loaded_pot = None
    if pot is not None and check_potential:
        from ..potentials import load_potential

        try:
            if _names_trust(pot):
                raise ValueError("a campaign file cannot trust a model file itself: give --trust-model-file "
                                 "(or trust_model_file=True) when you run it")
            from .potential_spec import resolve_potential_spec

            spec = resolve_potential_spec(pot, base)
            loaded_pot = load_potential(spec, trusted=trust_model_file)
        except (ValueError, FileNotFoundError, TypeError, OSError) as exc:
            problems.append((_line(lines, "potential"), f"potential {pot!r}: {exc}"))

    # options
    options = dict(DEFAULT_OPTIONS)
    opts = data.get("options") or {}
    if not isinstance(opts, dict):
        problems.append((_line(lines, "options"), "'options' must be a mapping"))
        opts = {}
    for k, v in opts.items():
        ln = _line(lines, "options", k)
        if k not in DEFAULT_OPTIONS:
            problems.append((ln, f"unknown option {k!r} (allowed: {', '.join(DEFAULT_OPTIONS)})"))
        elif k == "batch_size" and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            problems.append((ln, f"batch_size must be a positive integer, got {v!r}"))
        elif k == "min_distance_A" and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
            problems.append((ln, f"min_distance_A must be a number >= 0 (Angstrom), got {v!r}"))
        elif k == "claim_ttl_s" and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0
                                     or v != v or v == float("inf")):
            problems.append((ln, f"claim_ttl_s must be a positive number of seconds, got {v!r}"))
        elif k in ("retry_failed", "joint_batches") and not isinstance(v, bool):
            problems.append((ln, f"{k} must be true/false, got {v!r}"))
        else:
            options[k] = v

    sources = _check_sources(data.get("structures"), lines, base, problems)
    props, skipped = _check_properties(data.get("properties"), lines, problems, skip_unavailable)
    if loaded_pot is not None:
        for req in props:
            if req.name == "committee" and int(getattr(loaded_pot, "n_members", 1) or 1) < 2:
                problems.append((req.line or None, f"property 'committee' needs a committee potential (n_members > 1); "
                                                   f"potential {pot!r} is not one"))

    refs = data.get("reference") or []
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list):
        problems.append((_line(lines, "reference"), "'reference' must be a list of CSV files"))
        refs = []
    for i, r in enumerate(refs):
        if not _find_reference(str(r), base):
            problems.append((_line(lines, "reference", i), f"reference file {r!r} not found (looked in {base} and {reference_data_dir()})"))

    if problems:
        raise CampaignError(path, problems)
    return Campaign(name=name, potential=pot, sources=sources, properties=props, options=options,
                    reference=[str(_find_reference(str(r), base)) for r in refs], base_dir=base, path=path,
                    description=str(data.get("description", "") or ""), skipped_properties=skipped, trust_model_file=trust_model_file)


#: longest campaign name (it is also the default database file name, ``<name>.db``)
MAX_NAME_LENGTH = 120


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a campaign name, or ``None``: the name is a label that also gives the
    default database file ``<name>.db`` in the working folder, so it may not be empty, longer than
    :data:`MAX_NAME_LENGTH`, start with a dot, or hold a path separator or a control character."""
    if not name.strip():
        return "'name' must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"'name' is a label of at most {MAX_NAME_LENGTH} characters (got {len(name)})"
    if any(c in name for c in "/\\") or name.startswith(".") or any(ord(c) < 32 for c in name):
        return (f"'name' {name[:60]!r} is a label and also the default database file <name>.db in the working "
                "folder: no path separators, leading dot or control characters (set options.db for another "
                "location)")
    return None


def _find_reference(name: str, base: Path) -> Path | None:
    for cand in (base / name, reference_data_dir() / name, reference_data_dir() / f"{name}.csv", Path(name)):
        if cand.is_file():
            return cand.resolve()
    return None


def _check_sources(raw: Any, lines: dict, base: Path, problems: list) -> list[StructureSource]:
    from ase.data import atomic_numbers

    from ..structures import load_structure

    out: list[StructureSource] = []
    if raw is None:
        return out
    if not isinstance(raw, list) or not raw:
        problems.append((_line(lines, "structures"), "'structures' must be a non-empty list of sources"))
        return out

    def check_name(n: Any, ln: int | None) -> None:
        if not isinstance(n, str):
            problems.append((ln, f"structure name must be a string, got {n!r}"))
            return
        try:
            load_structure(n)
        except (ValueError, FileNotFoundError) as exc:
            problems.append((ln, str(exc)))

    def check_element(e: Any, ln: int | None) -> bool:
        if not isinstance(e, str) or e not in atomic_numbers or e == "X":
            problems.append((ln, f"unknown element {e!r}"))
            return False
        return True

    for i, entry in enumerate(raw):
        ln = _line(lines, "structures", i)
        if isinstance(entry, str):
            entry = {"file": entry} if _is_pathlike(entry, base) else {"name": entry}
        if not isinstance(entry, dict):
            problems.append((ln, f"structure source must be a name, a path or a mapping, got {entry!r}"))
            continue
        kinds = [k for k in _SOURCE_KINDS if k in entry]
        if len(kinds) != 1:
            problems.append((ln, f"structure source needs exactly one of {', '.join(_SOURCE_KINDS)}; got keys {sorted(entry)}"))
            continue
        kind = kinds[0]
        extra = set(entry) - {kind} - _SOURCE_EXTRA[kind]
        for k in sorted(extra):
            problems.append((_line(lines, "structures", i, k), f"unknown key {k!r} for a {kind!r} source (allowed: {', '.join(sorted(_SOURCE_EXTRA[kind])) or 'none'})"))
        val = entry[kind]
        opts = {k: v for k, v in entry.items() if k != kind}
        vln = _line(lines, "structures", i, kind)
        if kind == "name":
            check_name(val, vln)
        elif kind == "names":
            if not isinstance(val, list) or not val:
                problems.append((vln, "'names' must be a non-empty list"))
            else:
                for j, n in enumerate(val):
                    check_name(n, _line(lines, "structures", i, kind, j))
        elif kind == "file":
            if not (base / str(val)).is_file() and not Path(str(val)).is_file():
                problems.append((vln, f"structure file {val!r} does not exist (relative to {base})"))
        elif kind == "glob":
            pattern = str(val) if Path(str(val)).is_absolute() else str(base / str(val))
            if not _glob.glob(pattern):
                problems.append((vln, f"glob {val!r} matches no file (relative to {base})"))
        elif kind == "db":
            if not (base / str(val)).is_file() and "://" not in str(val):
                problems.append((vln, f"structure database {val!r} does not exist"))
        elif kind == "library":
            from .sources import library_problems

            for msg in library_problems(val, entry.get("exclude")):
                problems.append((vln, msg))
        elif kind == "prototype":
            if val in ELEMENT_PROTOTYPES:
                els = entry.get("elements")
                if not isinstance(els, list) or not els:
                    problems.append((vln, f"prototype {val!r} needs 'elements: [..]'"))
                else:
                    for j, e in enumerate(els):
                        check_element(e, _line(lines, "structures", i, "elements", j))
            elif val in BINARY_PROTOTYPES:
                pairs = entry.get("pairs")
                if not isinstance(pairs, list) or not pairs:
                    problems.append((vln, f"prototype {val!r} needs 'pairs: [[A, B], ...]'"))
                else:
                    for j, pr in enumerate(pairs):
                        pln = _line(lines, "structures", i, "pairs", j)
                        if not isinstance(pr, list) or len(pr) != 2:
                            problems.append((pln, f"pair {pr!r} must be [A, B]"))
                        else:
                            for e in pr:
                                check_element(e, pln)
            else:
                problems.append((vln, f"unknown prototype {val!r}; choose from {', '.join(ELEMENT_PROTOTYPES + BINARY_PROTOTYPES)}"))
            if "a" in entry and (isinstance(entry["a"], bool) or not isinstance(entry["a"], (int, float)) or entry["a"] <= 0):
                problems.append((_line(lines, "structures", i, "a"), f"lattice constant a must be a positive number (Angstrom), got {entry['a']!r}"))
        out.append(StructureSource(kind, val, ln or 0, opts))
    return out


def _is_pathlike(s: str, base: Path) -> bool:
    from ..structures import _looks_like_path

    return _looks_like_path(s) or (base / s).is_file()


def _check_properties(raw: Any, lines: dict, problems: list, skip_unavailable: bool):
    out: list[PropertyRequest] = []
    skipped: list[tuple[str, str]] = []
    if raw is None:
        return out, skipped
    items: list[tuple[str, Any, tuple]] = []
    if isinstance(raw, dict):
        items = [(k, v, ("properties", k)) for k, v in raw.items()]
    elif isinstance(raw, list):
        for i, e in enumerate(raw):
            if isinstance(e, str):
                items.append((e, None, ("properties", i)))
            elif isinstance(e, dict) and len(e) == 1:
                k, v = next(iter(e.items()))
                items.append((k, v, ("properties", i, k)))
            else:
                problems.append((_line(lines, "properties", i), f"property entry must be a name or a one-key mapping, got {e!r}"))
    else:
        problems.append((_line(lines, "properties"), "'properties' must be a mapping or a list"))
    if not items and not problems:
        problems.append((_line(lines, "properties"), "no properties requested"))
    for name, params, path in items:
        ln = _line(lines, *path)
        params = {} if params is None else params
        if not isinstance(params, dict):
            problems.append((ln, f"parameters of property {name!r} must be a mapping, got {params!r}"))
            continue
        try:
            spec = get_property(str(name))
        except PropertyUnavailable as exc:
            if skip_unavailable and name in _unavailable():
                skipped.append((str(name), str(exc)))
                continue
            problems.append((ln, str(exc)))
            continue
        for pname, msg in spec.check_params(params):
            problems.append((_line(lines, *path, pname) if pname else ln, msg))
        if name == "energy" and (params.get("relax") or params.get("relax_cell")) and not is_available("relax"):
            problems.append((ln, f"property 'energy' with relax needs 'relax', which is not available: {_unavailable()['relax']}"))
        out.append(PropertyRequest(str(name), dict(params), ln or 0))
    return out, skipped
