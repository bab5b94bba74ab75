"""mlip-props command line: calc --json, run/validate/report/export, exit codes, the console script."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from mlip_props.cli import EXIT_FAILED_ROWS, EXIT_OK, EXIT_USAGE, main, register_subcommand


def test_calc_json(capsys):
    assert main(["calc", "energy", "-p", "emt", "-s", "Cu", "--json"]) == EXIT_OK
    d = json.loads(capsys.readouterr().out)
    assert d["n_atoms"] == 1 and d["energy_eV_per_atom"] == pytest.approx(d["energy_eV"])
    assert d["volume_A3_per_atom"] == pytest.approx(3.61**3 / 4)


def test_calc_relax_param(capsys):
    assert main(["calc", "energy", "-s", "Cu:fcc:a=3.7", "-P", "relax_cell=true", "--json"]) == EXIT_OK
    d = json.loads(capsys.readouterr().out)
    # EMT's Cu lattice constant is 3.59 A (Jacobsen et al. 1996): the cell relaxed from 3.7 A
    assert (4 * d["volume_A3_per_atom"]) ** (1 / 3) == pytest.approx(3.59, abs=0.01) and d["converged"]


@pytest.mark.parametrize("argv", [
    ["calc", "nope", "-s", "Cu"],
    ["calc", "energy", "-s", "Xx"],
    ["calc", "energy", "-s", "Cu", "-P", "fmaxx=1"],
    ["calc", "energy", "-s", "Cu", "-p", "not-a-potential"],
    ["report", "does-not-exist.db"],
])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == EXIT_USAGE
    assert "error" in capsys.readouterr().err


def test_run_validate_report_export(tmp_path, capsys):
    c = tmp_path / "c.yaml"
    c.write_text("name: t\npotential: emt\nstructures:\n  - names: [Cu, Au, Fe]\nproperties:\n  energy: {}\n")
    assert main(["validate", str(c)]) == EXIT_OK
    db = tmp_path / "r.db"
    assert main(["run", str(c), "--db", str(db), "-q", "--report", str(tmp_path / "rep")]) == EXIT_FAILED_ROWS  # Fe
    assert (tmp_path / "rep" / "report.md").is_file()
    assert main(["run", str(c), "--db", str(db), "-q"]) == EXIT_FAILED_ROWS  # resumed: nothing new
    assert main(["report", str(db), "--out", str(tmp_path / "rep2"), "-q"]) == EXIT_OK
    out = tmp_path / "r.csv"
    assert main(["export", str(db), "--out", str(out), "-q"]) == EXIT_OK
    import pandas as pd

    df = pd.read_csv(out)
    assert len(df) == 3 and set(df["status"]) == {"done", "failed"}
    c.write_text("name: t\npotential: emt\nstructures:\n  - names: [Cu]\nproperties:\n  energy: {bad: 1}\n")
    capsys.readouterr()
    assert main(["validate", str(c)]) == EXIT_USAGE
    assert f"{c}:6:" in capsys.readouterr().err


def test_properties_lists_energy(capsys):
    assert main(["properties", "--json"]) == EXIT_OK
    d = json.loads(capsys.readouterr().out)
    assert "energy" in d["available"] and "relax" in d["available"]["energy"]


def test_subcommand_hook(capsys):
    calls = []
    register_subcommand("hello", "test hook", lambda p: p.add_argument("--n", type=int, default=1),
                        lambda a: calls.append(a.n) or 0)
    try:
        assert main(["hello", "--n", "3"]) == 0 and calls == [3]
    finally:
        from mlip_props import cli

        cli._SUBCOMMANDS.pop("hello")


def test_console_script():
    exe = shutil.which("mlip-props")
    cmd = [exe] if exe else [sys.executable, "-m", "mlip_props.cli"]
    r = subprocess.run(cmd + ["--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "calc" in r.stdout and "demo" in r.stdout


@pytest.mark.slow
def test_demo_under_5_minutes(tmp_path):
    import time

    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "mlip_props.cli", "demo", "--out", str(tmp_path), "-q"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert time.time() - t0 < 300
    assert (tmp_path / "report" / "report.html").is_file()
