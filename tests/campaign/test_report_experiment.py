"""The report against experiment: statistics per crystal system equal an independent computation,
the section on the physics the comparison ignores, the library source of campaign files, and the
shipped campaign files against experiment."""
from __future__ import annotations

import csv
import importlib.util
import json
import math

import numpy as np
import pytest

from mlip_props.campaign.runner import run_campaign
from mlip_props.campaign.schema import CampaignError, load_campaign, parse_campaign
from mlip_props.campaign.sources import crystal_system, expand_sources, library_names
from mlip_props.data import campaign_file, reference_file
from mlip_props.structure_library import get, solid_entries, solid_names

from .conftest import rows_by_key

# one Lennard-Jones potential for every element: fast, and it relaxes fcc and hcp cells to distinct
# lattice constants, which is all the statistics need
_CAMPAIGN = """
name: lj-solids
potential: "lj:epsilon=0.4,sigma=2.3"
structures:
  - names: [Cu-fcc, Ni-fcc, Al-fcc, Mg-hcp, Zn-hcp]
properties:
  relax: {relax_cell: true}
options: {batch_size: 5}
reference: [solids.csv, elements_fcc.csv]
"""


def _csv_rows(name: str) -> list[dict[str, str]]:
    lines = [ln for ln in reference_file(name).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return list(csv.DictReader(lines))


@pytest.fixture(scope="module")
def lj_report(tmp_path_factory):
    from mlip_props.campaign.report import build_report

    tmp = tmp_path_factory.mktemp("lj")
    camp = parse_campaign(_CAMPAIGN, base_dir=tmp)
    s = run_campaign(camp, str(tmp / "r.db"), progress=False)
    assert s.n_failed == 0
    rep = build_report(tmp / "r.db", tmp / "report", reference=camp.reference)
    return rep, rows_by_key(tmp / "r.db")


def test_crystal_system_of_space_group_numbers():
    assert [crystal_system(n) for n in (1, 2, 3, 15, 16, 74, 75, 142, 143, 167, 168, 194, 195, 230)] == [
        "triclinic", "triclinic", "monoclinic", "monoclinic", "orthorhombic", "orthorhombic", "tetragonal",
        "tetragonal", "trigonal", "trigonal", "hexagonal", "hexagonal", "cubic", "cubic"]
    with pytest.raises(ValueError, match="231"):
        crystal_system(231)


def test_spglib_crystal_system_of_every_library_solid_matches_its_table():
    from mlip_props.campaign.report.experiment import crystal_system_of

    got = {n: crystal_system_of(get(n)) for n in solid_names()}
    want = {n: crystal_system(e.space_group_number) for n, e in solid_entries().items()}
    assert got == want
    assert set(got.values()) == {"cubic", "hexagonal", "tetragonal", "trigonal"}


def test_per_crystal_system_statistics_equal_an_independent_computation(lj_report):
    rep, rows = lj_report
    # independent: a (and c) from the relaxed cells in the database, references from the CSV files
    solids = {r["name"]: r for r in _csv_rows("solids.csv")}
    fcc = {r["element"]: r for r in _csv_rows("elements_fcc.csv")}
    pred: dict[str, list[tuple[float, float]]] = {"cubic": [], "hexagonal": []}
    for r in rows.values():
        at = r["result"]["atoms"]
        cell = np.asarray(at["cell_A"], dtype=float)
        if r["label"].endswith("-fcc"):  # primitive fcc: a = sqrt(2) x |a1|, and (4 V)^(1/3) the same
            a = (4 * abs(np.linalg.det(cell))) ** (1 / 3)
            assert a == pytest.approx(math.sqrt(2) * np.linalg.norm(cell[0]), rel=1e-6)
            pred["cubic"].append((a, float(fcc[r["label"].split("-")[0]]["a_A"])))
        else:  # hcp: the primitive cell is the conventional one
            ref = solids[r["label"]]
            pred["hexagonal"].append((float(np.linalg.norm(cell[0])), float(ref["a_A"])))
    comp = rep.comparisons["lattice_constant"]
    for system, pairs in pred.items():
        err = np.array([p - e for p, e in pairs])
        ref = np.array([e for _, e in pairs])
        st = comp["stats_by_crystal_system"][system]
        assert st["n"] == len(pairs)
        assert st["MAE"] == pytest.approx(np.abs(err).mean(), rel=1e-6)
        assert st["RMSE"] == pytest.approx(np.sqrt((err ** 2).mean()), rel=1e-6)
        assert st["MAPE_pct"] == pytest.approx(100 * np.abs(err / ref).mean(), rel=1e-6)
        r2 = 1 - (err ** 2).sum() / ((ref - ref.mean()) ** 2).sum()
        assert st["R2"] == pytest.approx(r2, rel=1e-6)
    # every pair carries its crystal system and its reference row's source
    assert {p["label"]: p["crystal_system"] for p in comp["pairs"]} == {
        "Cu-fcc": "cubic", "Ni-fcc": "cubic", "Al-fcc": "cubic", "Mg-hcp": "hexagonal", "Zn-hcp": "hexagonal"}
    srcs = {p["label"]: p["source"] for p in comp["pairs"]}
    assert srcs["Mg-hcp"] == solids["Mg-hcp"]["source"] and srcs["Cu-fcc"] == fcc["Cu"]["a_source"]
    # c of the hcp crystals against solids.csv, and the overview table of the Markdown
    c = rep.comparisons["lattice_constant_c"]
    assert sorted(p["label"] for p in c["pairs"]) == ["Mg-hcp", "Zn-hcp"]
    md = rep.markdown.read_text()
    assert "## Accuracy against experiment" in md and "| quantity | cubic | hexagonal |" in md


def test_largest_deviations_and_ignored_physics_sections(lj_report):
    rep, _ = lj_report
    data = json.loads(rep.json.read_text())
    pairs = [p for c in data["comparisons"].values() for p in c["pairs"]]
    worst = data["largest_deviations"]
    assert len(worst) == min(15, len(pairs))
    assert abs(worst[0]["relative_difference_pct"]) == pytest.approx(
        max(abs(p["relative_difference_pct"]) for p in pairs))
    md = rep.markdown.read_text()
    assert "## Largest deviations" in md
    assert "## What the comparison ignores" in md
    topics = [i["topic"] for i in data["ignored_physics"]]
    for t in ("Zero-point motion and thermal expansion", "LO-TO splitting", "Magnetism",
              "Electronic thermal conductivity"):
        assert t in topics and f"{t}:" in md
    magnetism = next(i["text"] for i in data["ignored_physics"] if i["topic"] == "Magnetism")
    assert "Ni-fcc (ferromagnetic)" in magnetism and "Cu-fcc" not in magnetism
    zpe = data["ignored_physics"][0]["text"]
    assert "298-298 K" in zpe  # the a_T_K / temperature_K of the compared rows


def test_library_source_selects_by_crystal_system_and_prototype(tmp_path):
    text = "name: x\npotential: emt\nstructures:\n  - library: [hexagonal, rutile]\n    exclude: [Mg]\n" \
           "properties:\n  energy: {}\n"
    camp = parse_campaign(text, base_dir=tmp_path)
    labels = [it.label for it in expand_sources(camp)]
    entries = solid_entries()
    want = [n for n, e in entries.items() if (e.prototype == "rutile" or 168 <= e.space_group_number <= 194)
            and n != "Mg-hcp"]
    assert labels == want and "GaN-wurtzite" in labels and "TiO2-rutile" in labels
    assert library_names("all") == solid_names()
    bad = "name: x\npotential: emt\nstructures:\n  - library: [cubc]\n    exclude: [Xx-fcc]\nproperties:\n  energy: {}\n"
    with pytest.raises(CampaignError) as exc:
        parse_campaign(bad, base_dir=tmp_path)
    assert "c.yaml" not in str(exc.value) and ":4: library selector 'cubc'" in str(exc.value)
    assert "unknown reference solid 'Xx-fcc'" in str(exc.value)


@pytest.mark.parametrize("name", ["solids_vs_experiment", "molecules_vs_experiment", "polyatomics_vs_experiment",
                                  "universal_demo"])
def test_shipped_campaigns_against_experiment_validate(name):
    # the potential (SevenNet-0 loads in ~10 s): tests/test_data.py validates every shipped campaign with it
    camp = load_campaign(campaign_file(name), check_potential=False)
    items = expand_sources(camp)
    assert items and all(it.error is None for it in items)
    if name == "solids_vs_experiment":
        assert [it.label for it in items] == solid_names() and len(items) == 70
        assert [p.name for p in camp.properties] == ["relax", "eos", "elastic", "phonons", "thermal"]
    if name in ("molecules_vs_experiment", "polyatomics_vs_experiment"):  # every molecule has reference rows
        table = "diatomics.csv" if name.startswith("molecules") else "molecular_vibrations.csv"
        keys = {r["molecule"] for r in _csv_rows(table)}
        assert {it.label for it in items} <= keys


def test_universal_demo_without_sevenn_says_so(monkeypatch, capsys, tmp_path):
    from mlip_props import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "sevenn" else real(n, *a))
    assert cli.main(["demo", "--universal", "--out", str(tmp_path / "d")]) == 0
    assert "skipped: SevenNet-0 needs the sevenn package" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_electronic_conductivity_item_names_metals_and_maybe_metallic_compounds():
    from mlip_props.campaign.report.experiment import ignored_physics

    labels = ["Cu-fcc", "TiN-rocksalt", "MgO-rocksalt", "Si-diamond"]
    comparisons = {"kappa_lattice": {"pairs": [{"label": lab} for lab in labels]}}
    items = dict(ignored_physics(comparisons, labels, [], {}))
    text = items["Electronic thermal conductivity"]
    assert "Metals among the compared: Cu-fcc." in text
    maybe = text.split("May be metallic")[1]
    assert "TiN-rocksalt" in maybe and "MgO" not in maybe and "Si-diamond" not in maybe
    # no kappa compared: neither list
    none = dict(ignored_physics({}, labels, [], {}))["Electronic thermal conductivity"]
    assert "No conductivity was compared" in none and "May be metallic" not in none
