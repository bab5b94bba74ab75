"""The report's numbers equal those computed from the database directly; plots exist, open, and have
labelled axes with units."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from PIL import Image

import ase.db
from mlip_props.campaign.report import build_report
from mlip_props.campaign.runner import run_campaign
from mlip_props.campaign.reference import reference_file
from mlip_props.campaign.schema import load_campaign

METALS = ["Al", "Cu", "Ni", "Ag", "Au", "Pd", "Pt"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rep")
    (tmp / "c.yaml").write_text(
        "name: rep\npotential: emt\nstructures:\n  - names: [Al, Cu, Ni, Ag, Au, Pd, Pt]\n"
        "  - prototype: L1_2\n    pairs: [[Cu, Au], [Au, Cu]]\n  - prototype: L1_0\n    pairs: [[Cu, Au]]\n"
        "  - name: Fe\n"
        "properties:\n  energy: {relax: true, relax_cell: true, fmax: 0.001}\n")
    run_campaign(load_campaign(tmp / "c.yaml"), str(tmp / "r.db"), progress=False)
    rep = build_report(tmp / "r.db", tmp / "out", reference=["elements_fcc"])
    return tmp, rep


def _experimental_a():
    with open(reference_file("elements_fcc")) as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    return {r["element"]: float(r["a_A"]) for r in rows}


def test_report_numbers_equal_database_numbers(report):
    tmp, rep = report
    exp = _experimental_a()
    pred = {}
    with ase.db.connect(str(tmp / "r.db"), use_lock_file=False) as db:
        for row in db.select(property="energy", status="done"):
            if row.label in METALS:
                pred[row.label] = (4 * row.data["result"]["volume_A3_per_atom"]) ** (1 / 3)  # fcc: 4 atoms/cubic cell
    data = json.loads(rep.json.read_text())
    pairs = {p["label"]: p for p in data["comparisons"]["lattice_constant"]["pairs"]}
    assert set(pairs) == set(METALS)
    for el in METALS:
        assert pairs[el]["predicted"] == pytest.approx(pred[el], rel=1e-12)
        assert pairs[el]["reference"] == exp[el]
    x = np.array([exp[el] for el in METALS])
    y = np.array([pred[el] for el in METALS])
    stats = data["comparisons"]["lattice_constant"]["stats"]
    assert stats["MAE"] == pytest.approx(np.mean(np.abs(y - x)), rel=1e-12)
    assert stats["RMSE"] == pytest.approx(np.sqrt(np.mean((y - x) ** 2)), rel=1e-12)
    r2 = 1 - np.sum((y - x) ** 2) / np.sum((x - x.mean()) ** 2)
    assert stats["R2"] == pytest.approx(r2, rel=1e-12)
    # EMT reproduces the fcc lattice constants to ~1.5 % (Jacobsen et al. 1996)
    assert np.all(np.abs(y - x) / x < 0.02)
    md = rep.markdown.read_text()
    for el in METALS:
        assert re.search(rf"\| {el} \| {pred[el]:.6g} \| {exp[el]:.6g} \|", md), el
    assert f"MAE = {stats['MAE']:.4g} Å" in md
    assert "Fe not supported" in md  # failed rows listed
    assert rep.html.read_text().count("<img") == len(rep.figures)


def test_hull_from_database(report):
    tmp, rep = report
    data = json.loads(rep.json.read_text())
    hull = data["hull_Au-Cu_energy"]
    e = {}
    with ase.db.connect(str(tmp / "r.db"), use_lock_file=False) as db:
        for row in db.select(property="energy", status="done"):
            e[row.label] = (row.data["result"]["energy_eV"], row.natoms, row.symbols)
    ecu = e["Cu"][0] / e["Cu"][1]
    eau = e["Au"][0] / e["Au"][1]
    for p in hull:
        tot, n, syms = e[p["label"]]
        xcu = syms.count("Cu") / n
        ef = tot / n - (xcu * ecu + (1 - xcu) * eau)
        assert p["formation_energy_eV_per_atom"] == pytest.approx(ef, abs=1e-10)
        assert p["e_above_hull_eV_per_atom"] >= -1e-9
    # EMT orders Cu3Au (L1_2) below the elements: it is on the hull
    cu3au = next(p for p in hull if p["label"] == "Cu3Au:L1_2")
    assert cu3au["formation_energy_eV_per_atom"] < 0 and cu3au["e_above_hull_eV_per_atom"] == pytest.approx(0, abs=1e-9)


def test_plots_exist_open_and_have_labelled_axes(report):
    _, rep = report
    assert len(rep.figures) >= 2
    for f in rep.figures:
        assert f.stat().st_size > 0
        im = Image.open(f)
        assert im.size[0] > 200 and im.size[1] > 200
        arr = np.asarray(im.convert("L"))
        assert arr.std() > 1  # not blank
        info = im.info
        for ax in ("xlabel", "ylabel"):
            assert info.get(ax), (f, ax)
            assert re.search(r"\(.+\)", info[ax]), (f, info[ax])  # a unit in parentheses
