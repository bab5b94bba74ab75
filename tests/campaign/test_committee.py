"""Committee campaigns: the database stores the committee std columns and the report shows them
(error bars and mean ± std) with exactly the database's numbers; reports without committee rows
carry no error bars."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mlip_props.campaign import build_report, load_campaign, run_campaign, to_dataframe
from mlip_props.campaign.report import QUANTITIES, Quantity, parity_figure
from mlip_props.campaign.schema import CampaignError, parse_campaign, reference_data_dir
from mlip_props.data import DATA_DIR, campaign_file

from .conftest import run_and_report

WORKFLOW = campaign_file("cu_committee_uncertainty")
MODEL = DATA_DIR / "cu_committee.pt"


@pytest.fixture(scope="module")
def committee_run(tmp_path_factory, one_torch_thread):
    tmp = tmp_path_factory.mktemp("committee")
    camp = load_campaign(WORKFLOW)
    return run_and_report(camp, tmp, "committee")


def test_database_stores_std_columns(committee_run):
    summary, _, row = committee_run
    assert summary.n_done == 1 and summary.n_failed == 0
    res = row.data["result"]
    assert row.n_members == 4 and res["converged"]
    # searchable key-value columns equal the stored result, and are finite and non-zero
    for col in ("bulk_modulus_GPa_std", "v0_A3_per_atom_std", "B_GPa_std", "C11_GPa_std", "C12_GPa_std",
                "C44_GPa_std", "nu_X_0_THz_std", "nu_X_2_THz_std", "nu_L_0_THz_std", "nu_L_2_THz_std",
                "Cv_300K_J_molK_std"):
        assert row.get(col) == res[col] and np.isfinite(res[col]) and res[col] > 0, col
    c_std = np.array(res["C_GPa_std"])
    assert res["C11_GPa_std"] == c_std[0, 0] and res["C44_GPa_std"] == c_std[3, 3]
    assert res["bulk_modulus_GPa_std"] == pytest.approx(np.std(res["bulk_modulus_GPa_members"]), rel=1e-12)
    np.testing.assert_allclose(c_std, np.std(res["C_GPa_members"], axis=0), rtol=1e-12, atol=1e-12)
    x_std = np.array(res["high_symmetry_frequencies_THz_std"]["X"])
    assert res["nu_X_2_THz_std"] == pytest.approx(x_std[2], rel=1e-12)
    df = to_dataframe(summary.db)
    for col in ("bulk_modulus_GPa_std", "C_GPa_std", "cv_J_molK_std", "high_symmetry_frequencies_THz_std"):
        assert col in df.columns


def _db_std(res: dict, key: str, pair: dict) -> float:
    """The committee std a report pair must show, computed here from the database row."""
    if key == "lattice_constant":
        return float(np.std([(4 * v) ** (1 / 3) for v in res["v0_A3_per_atom_members"]]))
    if key == "bulk_modulus":
        return res["bulk_modulus_GPa_std"]
    if key in ("C11", "C12", "C44"):
        i, j = {"C11": (0, 0), "C12": (0, 1), "C44": (3, 3)}[key]
        return res["C_GPa_std"][i][j]
    if key == "cv298":
        return float(np.std([np.interp(298.15, res["temperatures_K"], c) for c in res["cv_J_molK_members"]]))
    if key == "phonon_frequencies":
        point = pair["via"].split("[")[1].rstrip("]")
        mean = np.array(res["high_symmetry_frequencies_THz"][point])
        k = int(np.argmin(np.abs(mean - pair["predicted"])))
        assert mean[k] == pair["predicted"]
        return res["high_symmetry_frequencies_THz_std"][point][k]
    raise KeyError(key)


def test_report_error_bars_equal_database_std(committee_run):
    _, rep, row = committee_run
    res = row.data["result"]
    data = json.loads(rep.json.read_text())
    md = rep.markdown.read_text()
    keys = {"lattice_constant", "bulk_modulus", "C11", "C12", "C44", "cv298", "phonon_frequencies"}
    assert keys <= set(data["comparisons"])
    qs = {q.key: q for q in QUANTITIES}
    for key in keys:
        comp = data["comparisons"][key]
        for p in comp["pairs"]:
            want = _db_std(res, key, p)
            assert p["predicted_std"] == pytest.approx(want, rel=1e-12, abs=1e-15), (key, p["label"])
            assert p["via"].startswith(("committee.", "(4 x committee."))
            assert f"| {p['label']} | {p['predicted']:.6g} ± {p['predicted_std']:.6g} |" in md
        # the figure's error bars are the same numbers
        q = qs.get(key) or Quantity(key, comp["label"], comp["unit"], (), lambda r, s: None)
        fig, ax = parity_figure(q, comp["pairs"], comp["stats"], "p")
        bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
        assert len(bars) == 1
        segs = bars[0].lines[2][0].get_segments()
        assert len(segs) == len(comp["pairs"])
        for seg, p in zip(segs, comp["pairs"]):
            assert (seg[1, 1] - seg[0, 1]) / 2 == pytest.approx(p["predicted_std"], rel=1e-12)
            assert (seg[1, 1] + seg[0, 1]) / 2 == pytest.approx(p["predicted"], rel=1e-12)
    assert res["bulk_modulus_GPa"] == data["comparisons"]["bulk_modulus"]["pairs"][0]["predicted"]
    # table of the committee row: mean ± std, and the shaded-band figure
    assert f"{res['C44_GPa']:.6g} ± {res['C44_GPa_std']:.6g}" in md
    assert any(f.name.startswith("committee_") for f in rep.figures)
    assert rep.html.read_text().count("<img") == len(rep.figures)


def test_report_without_committee_rows_has_no_error_bars(tmp_path, one_torch_thread):
    (tmp_path / "e.yaml").write_text("name: plain\npotential: emt\nstructures:\n  - names: [Cu, Al]\n"
                                     "properties:\n  eos: {}\n")
    run_campaign(load_campaign(tmp_path / "e.yaml"), str(tmp_path / "e.db"), progress=False)
    rep = build_report(tmp_path / "e.db", tmp_path / "rep")
    data = json.loads(rep.json.read_text())
    assert "bulk_modulus" in data["comparisons"]
    for comp in data["comparisons"].values():
        assert all("predicted_std" not in p for p in comp["pairs"])
        fig, ax = parity_figure(Quantity("x", "x", "u", (), lambda r, s: None), comp["pairs"], comp["stats"], "p")
        assert not [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    md = rep.markdown.read_text()
    assert "±" not in md and "committee standard deviation" not in md and "Results: committee" not in md
    assert not any(f.name.startswith("committee_") for f in rep.figures)


def test_committee_property_needs_a_committee(tmp_path):
    text = "name: x\npotential: emt\nstructures: [Cu]\nproperties:\n  committee: {}\n"
    with pytest.raises(CampaignError, match=r":5: property 'committee' needs a committee potential"):
        parse_campaign(text, base_dir=tmp_path)
    with pytest.raises(CampaignError, match="has no parameter 'bogus'"):
        parse_campaign(f"name: x\npotential: {MODEL}\nstructures: [Cu]\nproperties:\n  committee: {{bogus: 1}}\n")
    camp = parse_campaign(f"name: x\npotential: {MODEL}\nstructures: [Cu]\nproperties:\n"
                          "  committee: {properties: [eos, elastic], summary_points: [X]}\n")
    assert camp.properties[0].params["properties"] == ["eos", "elastic"]


def test_diatomic_committee_std_becomes_error_bars(tmp_path):
    """A diatomic row carrying committee std (``bond_length_A_std``, ``omega_e_cm1_std``) gets error
    bars; the same row without them none (rows written straight into the database)."""
    from ase import Atoms

    from mlip_props.campaign.database import ResultsDB, RowRecord

    def report_of(result: dict, name: str):
        db = ResultsDB(tmp_path / f"{name}.db")
        db.write_batch([RowRecord("k1", "N2", "diatomic", {}, "done", Atoms("N2", positions=[[0, 0, 0], [0, 0, 1.1]]),
                                  result, meta={"potential": "p"})])
        rep = build_report(tmp_path / f"{name}.db", tmp_path / name, reference=[reference_data_dir() / "diatomics.csv"])
        return json.loads(rep.json.read_text())["comparisons"], rep.markdown.read_text()

    base = {"bond_length_A": 1.1, "omega_e_cm1": 2300.0, "D0_eV": 9.5, "dissociation_energy_eV": 9.6}
    comps, md = report_of(dict(base, bond_length_A_std=0.0125, omega_e_cm1_std=37.5, n_members=4), "c")
    assert comps["bond_length"]["pairs"][0]["predicted_std"] == 0.0125
    assert comps["omega_e"]["pairs"][0]["predicted_std"] == 37.5
    assert "predicted_std" not in comps["D0"]["pairs"][0]
    assert "| N2 | 1.1 ± 0.0125 |" in md
    comps, md = report_of(dict(base, bond_length_A_std=None, omega_e_cm1_std=None), "plain")
    assert all("predicted_std" not in p for c in comps.values() for p in c["pairs"]) and "±" not in md
