"""``mlip-props`` command line: one property of one structure, campaigns, reports, the demo.

Subcommands (``mlip-props SUBCOMMAND -h`` for options):

* ``calc PROPERTY --potential SPEC --structure FILE_OR_NAME [--param k=v ...] [--json]``
* ``run CAMPAIGN.yaml [--db results.db] [--scheduler tcp://host:port | --workers N] [--report DIR]``
* ``validate CAMPAIGN.yaml`` — check a campaign file without running it
* ``report results.db --out report/ [--reference file.csv ...]``
* ``export results.db --out results.csv`` — the pandas DataFrame as CSV (or ``.json``/``.parquet``)
* ``properties`` — registered properties, their parameters, and the unavailable ones
* ``demo [--out DIR] [--universal]`` — the fcc-metals campaign with the embedded EMT potential, and
  its report; ``--universal``: six crystals (Si, MgO, GaN, Mg, Cu, NaCl) with SevenNet-0 instead

Exit codes: 0 success; 1 unexpected error (a bug, or a fault of a compiled library such as a
Rust panic, reported in one line); 2 bad input (usage, invalid campaign file or parameter value,
unknown property/potential/structure/element, a structure or parameter a property refuses with
``ValueError``, missing file or output folder, a file that is not a results database, a damaged
database); 3 the run finished but some rows are recorded as failed; 4 some work was lost (Dask
workers died beyond their retries: rerun to complete); 130 interrupted.

Extension hook: every subcommand is a pair (configure(parser), handler(args) -> exit code)
registered with :func:`register_subcommand`. Modules listed in :data:`PLUGIN_MODULES` (e.g. the
fitting package's ``mlip_props.fitting.cli``) are imported when present and their
``register_subcommands(register_subcommand)`` function adds ``fit``, ``sample``, ``learn``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FAILED_ROWS, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

#: modules that may add subcommands through ``register_subcommands(register_subcommand)``
PLUGIN_MODULES: list[str] = ["mlip_props.fitting.cli", "mlip_props.fitting.learn_cli"]

_SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}

log = logging.getLogger("mlip_props.cli")


class UsageError(Exception):
    """Bad input from the user: reported without a traceback, exit code 2."""


def register_subcommand(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None],
                        handler: Callable[[argparse.Namespace], int]) -> None:
    """Add (or replace) subcommand ``name``: ``configure`` adds its arguments, ``handler`` runs it
    and returns the exit code. This is the hook for ``fit``, ``sample`` and ``learn``."""
    _SUBCOMMANDS[name] = (help, configure, handler)


def _check_results_file(path: str) -> None:
    """``UsageError`` unless ``path`` is a URL or an existing SQLite file (read for a report or an export)."""
    if "://" in path:
        return
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"results database {path!r} does not exist")
    with open(p, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise UsageError(f"{path!r} is not a results database (not an SQLite file)")


def _check_output_folder(path: Path) -> None:
    """``UsageError`` when the folder an output file goes into does not exist."""
    folder = path.expanduser().parent
    if not folder.is_dir():
        raise UsageError(f"output folder {str(folder)!r} does not exist (create it first)")


def _say(args: argparse.Namespace, *msg: Any) -> None:
    if not getattr(args, "quiet", False):
        print(*msg, flush=True)


# ----------------------------------------------------------------------------------------- calc
def _parse_kv(items: list[str]) -> dict[str, Any]:
    import yaml

    out = {}
    for it in items or []:
        if "=" not in it:
            raise UsageError(f"--param {it!r}: expected key=value")
        k, v = it.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


_TRUST_HELP = ("allow a model file that is pickled code (mace:PATH) to be unpickled: loading it runs whatever "
               "code it names, so only for files you made or trust")


def _configure_calc(p: argparse.ArgumentParser) -> None:
    p.add_argument("property", help="property name (see `mlip-props properties`)")
    p.add_argument("--potential", "-p", default="emt", help="potential spec (default: emt)")
    p.add_argument("--structure", "-s", required=True, help="structure file or name (Cu, Cu:hcp, N2, H2O ...)")
    p.add_argument("--param", "-P", action="append", default=[], metavar="KEY=VALUE",
                   help="property parameter (repeatable), value parsed as YAML")
    p.add_argument("--json", action="store_true", help="print the result dictionary as JSON (units in the keys)")
    p.add_argument("--trust-model-file", action="store_true", help=_TRUST_HELP)


def _cmd_calc(args: argparse.Namespace) -> int:
    from .campaign.registry import PropertyUnavailable, get_property
    from .potentials import load_potential
    from .structures import load_structure

    try:
        spec = get_property(args.property)
    except PropertyUnavailable as exc:
        raise UsageError(str(exc)) from exc
    params = _parse_kv(args.param)
    problems = spec.check_params(params)
    if problems:
        raise UsageError("; ".join(m for _, m in problems))
    try:
        atoms = load_structure(args.structure)
        pot = load_potential(args.potential, trusted=args.trust_model_file)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc
    t0 = time.perf_counter()
    res = spec(pot, atoms, **params)
    d = res.to_dict() if hasattr(res, "to_dict") else res
    if args.json:
        print(json.dumps(d, indent=1))
    else:
        _say(args, f"{args.property} of {args.structure} with {args.potential} ({time.perf_counter() - t0:.2f} s):")
        for k, v in d.items():
            s = json.dumps(v)
            _say(args, f"  {k}: {s if len(s) < 100 else s[:97] + '...'}")
    return EXIT_OK


# ----------------------------------------------------------------------------------------- run
def _configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("campaign", help="campaign YAML file, or the name of a shipped campaign (e.g. fcc_metals)")
    p.add_argument("--db", help="results database (file or ase.db URL; default from the campaign)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scheduler", help="Dask distributed scheduler address, e.g. tcp://10.0.0.5:8786")
    g.add_argument("--workers", type=int, help="start a local Dask cluster with N worker processes")
    p.add_argument("--batch-size", type=int, help="structures per batch (overrides the campaign)")
    p.add_argument("--retry-failed", action="store_true", help="recompute rows recorded as failed")
    p.add_argument("--skip-unavailable", action="store_true",
                   help="drop properties not available in this installation instead of rejecting the campaign")
    p.add_argument("--report", metavar="DIR", help="write the report into DIR after the run")
    p.add_argument("--trust-model-file", action="store_true", help=_TRUST_HELP)


def campaign_path(spec: str) -> Path:
    """A campaign given on the command line: an existing file, else the name of a shipped
    campaign (``fcc_metals``, ``fcc_metals.yaml``, ``fcc-metals``; see :mod:`mlip_props.data`)."""
    from .data import campaign_file

    p = Path(spec).expanduser()
    if p.is_file() or p.name != spec:
        return p
    try:
        return campaign_file(spec)
    except FileNotFoundError as exc:
        raise UsageError(f"campaign file {spec!r} does not exist, and {exc}") from None


def _load(spec: str, skip_unavailable: bool, trust_model_file: bool = False):
    from .campaign.schema import CampaignError, load_campaign

    try:
        return load_campaign(campaign_path(spec), skip_unavailable=skip_unavailable,
                             trust_model_file=trust_model_file)
    except (CampaignError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc


def _run(args: argparse.Namespace, camp, db: str | None, report_dir: str | None) -> int:
    from .campaign.runner import run_campaign

    for name, why in camp.skipped_properties:
        _say(args, f"skipping unavailable property {name!r}: {why}")
    s = run_campaign(camp, db, scheduler=args.scheduler, workers=args.workers, batch_size=args.batch_size,
                     retry_failed=True if args.retry_failed else None, progress=not args.quiet)
    _say(args, f"campaign {camp.name}: {s.n_work} rows ({s.n_structures} structures x {len(camp.properties)} "
               f"properties); {s.n_already} already present, {s.n_done} computed, {s.n_failed} failed, "
               f"{s.n_lost} lost; {s.elapsed_s:.1f} s; database {s.db}")
    if report_dir:
        from .campaign.report import build_report

        rep = build_report(s.db, report_dir, reference=camp.reference or None)
        _say(args, f"report: {rep.markdown} (HTML: {rep.html})")
    if s.n_lost:
        return EXIT_INCOMPLETE
    from .campaign.database import ResultsDB

    n_failed_total = ResultsDB(s.db).count(status="failed", campaign=camp.name)
    return EXIT_FAILED_ROWS if n_failed_total else EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    camp = _load(args.campaign, args.skip_unavailable, getattr(args, "trust_model_file", False))
    report = args.report or camp.options.get("report")  # relative to the current directory
    return _run(args, camp, args.db, report)


def _configure_validate(p: argparse.ArgumentParser) -> None:
    p.add_argument("campaign", help="campaign YAML file, or the name of a shipped campaign")
    p.add_argument("--skip-unavailable", action="store_true", help="accept properties not installed (listed)")
    p.add_argument("--trust-model-file", action="store_true", help=_TRUST_HELP)


def _cmd_validate(args: argparse.Namespace) -> int:
    from .campaign.sources import expand_sources

    camp = _load(args.campaign, args.skip_unavailable, getattr(args, "trust_model_file", False))
    items = expand_sources(camp)
    bad = sum(it.error is not None for it in items)
    _say(args, f"{args.campaign}: valid; {len(items)} structures ({bad} unreadable, will be recorded as failed) x "
               f"{len(camp.properties)} properties ({', '.join(p.name for p in camp.properties)})")
    for name, why in camp.skipped_properties:
        _say(args, f"  unavailable (skipped): {name}: {why}")
    return EXIT_OK


# ----------------------------------------------------------------------------------------- report/export
def _configure_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("db", help="results database")
    p.add_argument("--out", "-o", default="report", help="output folder (default: report/)")
    p.add_argument("--reference", action="append",
                   help="reference CSV file or shipped table, e.g. elements_fcc (repeatable; default: all shipped)")
    p.add_argument("--title", help="report title")


def _cmd_report(args: argparse.Namespace) -> int:
    from .campaign.report import build_report

    _check_results_file(args.db)
    rep = build_report(args.db, args.out, reference=args.reference, title=args.title)
    _say(args, f"report: {rep.markdown} (HTML: {rep.html}; {len(rep.figures)} figures)")
    for k, c in rep.comparisons.items():
        s = c["stats"]
        _say(args, f"  {c['label']}: n={s['n']} MAE={s['MAE']:.4g} {c['unit']} RMSE={s['RMSE']:.4g} {c['unit']} R2={s['R2']:.4g}")
    return EXIT_OK


def _configure_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("db", help="results database")
    p.add_argument("--out", "-o", required=True, help="output file: .csv, .json or .parquet")
    p.add_argument("--select", help="ase.db selection, e.g. 'property=energy,status=done'")


def _cmd_export(args: argparse.Namespace) -> int:
    from .campaign.database import to_dataframe

    _check_results_file(args.db)
    out = Path(args.out)
    _check_output_folder(out)
    unreadable: list[str] = []
    df = to_dataframe(args.db, args.select, unreadable=unreadable)
    for u in unreadable:
        print(f"mlip-props export: skipped unreadable {u}", file=sys.stderr)
    if out.suffix == ".json":
        df.to_json(out, orient="records", indent=1)
    elif out.suffix == ".parquet":
        df.to_parquet(out)
    else:
        df.to_csv(out, index=False)
    _say(args, f"{len(df)} rows -> {out}")
    return EXIT_OK


def _configure_properties(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def _cmd_properties(args: argparse.Namespace) -> int:
    from .campaign.registry import available_properties, unavailable_properties

    av, un = available_properties(), unavailable_properties()
    if args.json:
        print(json.dumps({"available": {n: {k: repr(v.default) for k, v in s.params.items()} for n, s in av.items()},
                          "unavailable": un}, indent=1))
        return EXIT_OK
    for n, s in sorted(av.items()):
        ps = ", ".join(f"{k}={'<required>' if v.required else repr(v.default)}" for k, v in s.params.items())
        print(f"{n:12s} {s.description}\n{'':12s} params: {ps or '-'}")
    for n, why in sorted(un.items()):
        print(f"{n:12s} UNAVAILABLE: {why}")
    return EXIT_OK


# ----------------------------------------------------------------------------------------- demo
def demo_campaign_path(universal: bool = False) -> Path:
    """The campaign ``mlip-props demo`` runs: the shipped ``fcc_metals.yaml``; with ``universal``,
    ``universal_demo.yaml`` (Si, MgO, GaN, Mg, Cu, NaCl with SevenNet-0 in float32: relax, EOS,
    elastic constants, phonons)."""
    from .data import campaign_file

    return campaign_file("universal_demo" if universal else "fcc_metals")


def _configure_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", "-o", default="mlip-props-demo", help="output folder (default: ./mlip-props-demo)")
    p.add_argument("--workers", type=int, help="run on a local Dask cluster with N workers")
    p.add_argument("--scheduler", help=argparse.SUPPRESS)
    p.add_argument("--universal", action="store_true",
                   help="Si, MgO, GaN, Mg, Cu, NaCl with SevenNet-0 (needs the sevenn extra; minutes to an hour on a "
                        "small CPU)")
    p.set_defaults(batch_size=None, retry_failed=False)


def _cmd_demo(args: argparse.Namespace) -> int:
    if getattr(args, "universal", False):
        import importlib.util

        if importlib.util.find_spec("sevenn") is None:
            print("mlip-props demo --universal: skipped: SevenNet-0 needs the sevenn package, which is not installed "
                  "(pip install 'mlip-props[pretrained]', with your torch held by a constraints file)", file=sys.stderr)
            return EXIT_OK
    camp = _load(str(demo_campaign_path(getattr(args, "universal", False))), skip_unavailable=True)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _say(args, f"mlip-props demo: {camp.description or camp.name}")
    t0 = time.perf_counter()
    code = _run(args, camp, str(out / "results.db"), str(out / "report"))
    _say(args, f"demo finished in {time.perf_counter() - t0:.1f} s. Open {out / 'report' / 'report.html'} "
               f"(Markdown: {out / 'report' / 'report.md'})")
    return EXIT_OK if code == EXIT_FAILED_ROWS else code


# ----------------------------------------------------------------------------------------- main
register_subcommand("calc", "one property of one structure", _configure_calc, _cmd_calc)
register_subcommand("run", "run a campaign file (resumable)", _configure_run, _cmd_run)
register_subcommand("validate", "check a campaign file", _configure_validate, _cmd_validate)
register_subcommand("report", "report of a results database against experiment", _configure_report, _cmd_report)
register_subcommand("export", "export a results database as a table", _configure_export, _cmd_export)
register_subcommand("properties", "list the available properties", _configure_properties, _cmd_properties)
register_subcommand("demo", "fcc metals with EMT vs experiment, with report", _configure_demo, _cmd_demo)


def _load_plugins() -> None:
    for mod in PLUGIN_MODULES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name and mod.startswith(exc.name):
                continue  # plug-in not installed / not written yet
            raise
        fn = getattr(m, "register_subcommands", None)
        if fn is not None:
            fn(register_subcommand)


def build_parser() -> argparse.ArgumentParser:
    _load_plugins()
    from . import __version__

    parser = argparse.ArgumentParser(prog="mlip-props", description="Materials properties from interatomic potentials.")
    parser.add_argument("--version", action="version", version=f"mlip-props {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_mutually_exclusive_group()
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bars, errors only")
    g.add_argument("--verbose", "-v", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, configure, handler) in _SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_, parents=[common], description=help_)
        configure(sp)
        sp.set_defaults(_handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_handler", None):
        parser.print_help()
        return EXIT_USAGE
    level = logging.WARNING if args.quiet or not args.verbose else (logging.INFO if args.verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for attr in ("scheduler", "workers", "batch_size", "retry_failed"):
        if not hasattr(args, attr):
            setattr(args, attr, None)
    try:
        return int(args._handler(args))
    except UsageError as exc:
        print(f"mlip-props {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head`: not an error
        return EXIT_OK
    except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        # the suite's bad-input errors: a ValueError names the structure or parameter and the problem
        if args.verbose > 1:
            raise
        print(f"mlip-props {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001
        if args.verbose:
            raise
        print(f"mlip-props {args.command}: {type(exc).__name__}: {exc} (run with -v for the traceback)", file=sys.stderr)
        return EXIT_ERROR
    except BaseException as exc:  # noqa: BLE001 - e.g. a Rust PanicException, which is not an Exception
        if isinstance(exc, (SystemExit, GeneratorExit)):
            raise
        print(f"mlip-props {args.command}: a compiled library failed: {type(exc).__name__}: {exc} "
              "(check the parameters; run with -v for the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
