"""The built wheel is complete: installed into a fresh virtual environment outside the checkout, it
runs a shipped campaign by name and a report against the shipped reference tables, from a
temporary directory.

Nothing is downloaded: the wheel is built with the already-installed setuptools (no build
isolation, no index) and installed without dependencies; the fresh environment sees the
dependencies (torch, ase, phonopy ...) of the running environment through a ``.pth`` file that
adds that environment's site-packages folder as a plain path, so its ``.pth`` hooks, among them
the editable install of the checkout, are not run and the checkout is not importable there.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import mlip_props

CHECKOUT = Path(mlip_props.__file__).resolve().parents[1]


def _run(argv: list, cwd: Path, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{argv}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, mlip-props script, environment variables) of a fresh venv holding the built wheel."""
    if not (CHECKOUT / "pyproject.toml").is_file():
        pytest.skip("needs a source checkout to build the wheel from")
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs to run inside a virtual environment (its site-packages hold the dependencies)")
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "MLIP_PROPS_REFERENCE_DATA")}
    env["PIP_NO_INDEX"] = "1"
    # build from a copy of the sources, so that the checkout gets no build/ or egg-info folders
    src = tmp / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / f, src / f)
    shutil.copytree(CHECKOUT / "mlip_props", src / "mlip_props", ignore=shutil.ignore_patterns("__pycache__"))
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", tmp / "dist", "./src"], tmp, env)
    (wheel,) = (tmp / "dist").glob("mlip_props-*.whl")
    venv = tmp / "venv"
    _run([Path(sys.base_prefix) / "bin" / "python3", "-m", "venv", "--without-pip", venv], tmp, env)
    py = venv / "bin" / "python"
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env)
                   .stdout.strip())
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))  # this environment's
    (purelib / "_dependencies_of_the_test_environment.pth").write_text("".join(f"{d}\n" for d in deps))
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", "--no-cache-dir",
          wheel], tmp, env)
    work = tmp / "work"  # outside the checkout; outputs go here
    work.mkdir()
    return py, venv / "bin" / "mlip-props", env, work, wheel


def test_wheel_carries_the_shipped_data(installed):
    *_, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    data = CHECKOUT / "mlip_props" / "data"
    shipped = [p for p in data.rglob("*") if p.is_file() and p.suffix in (".csv", ".yaml", ".pt")]
    assert {p.relative_to(data) for p in shipped} >= {Path("cu_committee.pt"), Path("reference/elements_fcc.csv"),
                                                      Path("workflows/fcc_metals.yaml")}
    for p in shipped:
        assert f"mlip_props/data/{p.relative_to(data).as_posix()}" in names, p


def test_installed_wheel_runs_a_campaign_and_a_report(installed):
    py, cli, env, work, _ = installed
    where = _run([py, "-c", "import mlip_props, mlip_props.data as d; print(mlip_props.__file__); "
                            "print(d.reference_data_dir())"], work, env).stdout.split()
    site_packages = py.parents[1] / "lib"
    assert Path(where[0]).is_relative_to(site_packages), where  # the installed copy, not the checkout
    assert Path(where[1]).is_relative_to(site_packages), where
    # a shipped campaign by name: Cu, Au and ordered Cu-Au compounds, cell-relaxed energies with EMT;
    # its report compares the elements' lattice constants with the shipped table (no 'reference' key:
    # every shipped table) and draws the Cu-Au hull
    out = _run([cli, "run", "cu_au_hull", "-q", "--db", "hull.db", "--report", "rep"], work, env).stdout
    data = json.loads((work / "rep" / "report.json").read_text())
    pairs = {p["label"]: p for p in data["comparisons"]["lattice_constant"]["pairs"]}
    assert set(pairs) == {"Cu", "Au"}, out
    import csv

    with open(CHECKOUT / "mlip_props" / "data" / "reference" / "elements_fcc.csv") as f:
        a_exp = {r["element"]: float(r["a_A"]) for r in csv.DictReader(ln for ln in f if not ln.startswith("#"))}
    for el in ("Cu", "Au"):
        assert pairs[el]["reference"] == a_exp[el] and pairs[el]["reference_file"] == "elements_fcc.csv"
        # EMT's lattice constants are within 1.5 % of experiment (Jacobsen et al. 1996)
        assert abs(pairs[el]["predicted"] - a_exp[el]) / a_exp[el] < 0.015
    assert "hull_Au-Cu_energy" in data
    # a report of the same database against one shipped table named on the command line
    _run([cli, "report", "hull.db", "--out", "rep2", "--reference", "elements_fcc", "-q"], work, env)
    data2 = json.loads((work / "rep2" / "report.json").read_text())
    assert data2["comparisons"]["lattice_constant"]["pairs"] == data["comparisons"]["lattice_constant"]["pairs"]
    # everything written went to the working directory, nothing into the installed package
    assert (work / "hull.db").is_file() and not list(Path(where[0]).parent.rglob("*.db"))
