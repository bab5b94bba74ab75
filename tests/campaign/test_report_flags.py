"""The report shows every row's physical-check flags and marks flagged pairs; unreadable rows are named."""
import json
import sqlite3

import pytest
from ase.build import bulk

from mlip_props.campaign.database import DatabaseDamagedError, ResultsDB, RowRecord, to_dataframe
from mlip_props.campaign.report import build_report
from mlip_props.campaign.report.flags import quality_flags, row_flags


def _eos_row(label, symbol, a, converged, key):
    v0 = a**3 / 4  # fcc: 4 atoms per cubic cell
    result = {"v0_A3_per_atom": v0, "bulk_modulus_GPa": 140.0, "converged": converged, "v0_inside_range": True}
    return RowRecord(key, label, "eos", {}, "done", bulk(symbol, "fcc", a=a), result=result,
                     meta={"potential": "emt", "campaign": "flags"})


@pytest.fixture
def flagged_db(tmp_path):
    path = tmp_path / "r.db"
    db = ResultsDB(path)
    db.write_batch([_eos_row("Cu:fcc", "Cu", 3.60, False, "k1"), _eos_row("Ag:fcc", "Ag", 4.09, True, "k2"),
                    _eos_row("Au:fcc", "Au", 4.07, True, "k3")])
    return path


def test_row_flags_read_every_check():
    assert row_flags({"converged": True, "imaginary_modes": False}) == []
    assert row_flags({"converged": False, "born_stable": False, "v0_inside_range": False,
                      "residual_stress_ok": False, "n_imaginary": 2}, {"dtype": "float32"}) == [
        "unconverged", "Born-unstable", "v0 outside range", "residual stress", "imaginary modes", "float32"]


def test_unconverged_rows_are_flagged_in_tables_plots_and_json(flagged_db, tmp_path):
    rep = build_report(flagged_db, tmp_path / "rep")
    md = rep.markdown.read_text()
    cu_rows = [line for line in md.splitlines() if line.startswith("| Cu:fcc")]
    assert cu_rows and all(line.rstrip(" |").endswith("unconverged") for line in cu_rows)
    ag_rows = [line for line in md.splitlines() if line.startswith("| Ag:fcc")]
    assert ag_rows and all(line.rstrip(" |").endswith("-") for line in ag_rows)
    assert "unconverged" in rep.html.read_text()
    data = json.loads(rep.json.read_text())
    pairs = data["comparisons"]["lattice_constant"]["pairs"]
    assert {p["label"]: p["flags"] for p in pairs} == {"Ag:fcc": [], "Au:fcc": [], "Cu:fcc": ["unconverged"]}
    clean = data["comparisons"]["lattice_constant"]["stats_unflagged"]
    assert clean["n"] == 2
    # the statistics without the flagged pair are those of the other two pairs
    others = [abs(p["difference"]) for p in pairs if not p["flags"]]
    assert clean["MAE"] == pytest.approx(sum(others) / 2, rel=1e-12)
    assert data["properties"]["eos"]["flagged"] == 1
    assert "1 of 3 pairs come from flagged results" in md


def test_diatomic_curve_checks_are_flags():
    good = {"bond_length_converged": True, "repulsive_wall_ok": True, "n_spurious_minima": 0, "smooth": True,
            "long_range_flat": True}
    assert row_flags(good) == []
    # a universal model's H-Cl curve with a deep well at 0.56 A besides the real bond: the global minimum
    # is not the bond, and the second minimum says so
    assert row_flags({**good, "n_spurious_minima": 1}) == ["spurious minima"]
    assert row_flags({**good, "repulsive_wall_ok": False, "smooth": False, "long_range_flat": False}) == [
        "no repulsive wall", "kinked curve", "tail not flat"]


def test_float32_is_shown_but_not_counted_as_a_failed_check(tmp_path):
    """A campaign of a float32 model: every row carries the float32 flag, but only a failed check counts as
    flagged (statistics without flagged pairs, the summary's column, the parity plot's red marks)."""
    path = tmp_path / "f32.db"
    rows = [_eos_row("Cu:fcc", "Cu", 3.60, False, "k1"), _eos_row("Ag:fcc", "Ag", 4.09, True, "k2"),
            _eos_row("Au:fcc", "Au", 4.07, True, "k3")]
    for r in rows:
        r.result["precision"] = "float32"
    ResultsDB(path).write_batch(rows)
    rep = build_report(path, tmp_path / "rep")
    md = rep.markdown.read_text()
    data = json.loads(rep.json.read_text())
    pairs = data["comparisons"]["lattice_constant"]["pairs"]
    assert {p["label"]: p["flags"] for p in pairs} == {
        "Ag:fcc": ["float32"], "Au:fcc": ["float32"], "Cu:fcc": ["unconverged", "float32"]}
    clean = data["comparisons"]["lattice_constant"]["stats_unflagged"]
    others = [abs(p["difference"]) for p in pairs if p["label"] != "Cu:fcc"]
    assert clean["n"] == 2 and clean["MAE"] == pytest.approx(sum(others) / 2, rel=1e-12)
    assert data["properties"]["eos"]["flagged"] == 1
    assert "1 of 3 pairs come from flagged results" in md
    assert "3 of 3 pairs were computed in single precision" in md
    assert quality_flags(["unconverged", "float32"]) == ["unconverged"] and quality_flags(["float32"]) == []


def test_damaged_database_is_refused_naming_file_and_recovery(flagged_db):
    with open(flagged_db, "r+b") as f:  # overwrite the second page (the schema's tables)
        f.seek(4096)
        f.write(b"\xff" * 4096)
    with pytest.raises(DatabaseDamagedError, match=r"r\.db.*mlip-props export.*new database"):
        ResultsDB(flagged_db)


def test_text_file_is_not_a_database(tmp_path):
    p = tmp_path / "notes.db"
    p.write_text("not a database\n" * 50)
    with pytest.raises(DatabaseDamagedError, match="cannot be read as SQLite"):
        ResultsDB(p)


def test_unreadable_row_is_skipped_and_named_by_export_and_report(flagged_db, tmp_path):
    con = sqlite3.connect(flagged_db)
    con.execute("UPDATE systems SET data = X'7b22726573756c74223affff' WHERE id = 2")
    con.commit()
    con.close()
    unreadable = []
    df = to_dataframe(flagged_db, unreadable=unreadable)
    assert sorted(df["label"]) == ["Au:fcc", "Cu:fcc"]
    assert len(unreadable) == 1 and unreadable[0].startswith("row 2:")
    rep = build_report(flagged_db, tmp_path / "rep")
    assert "Unreadable rows (1)" in rep.markdown.read_text()
    assert json.loads(rep.json.read_text())["unreadable_rows"] == unreadable


def test_overwritten_middle_page_refused_for_run_but_readable_rows_recovered(tmp_path):
    import numpy as np

    path = tmp_path / "big.db"
    rows = [RowRecord(f"k{i}", f"Cu#{i}", "eos", {}, "done", bulk("Cu"),
                      result={"v0_A3_per_atom": float(i), "curve": list(np.arange(300) + float(i))})
            for i in range(60)]
    ResultsDB(path).write_batch(rows)
    n_pages = path.stat().st_size // 4096
    with open(path, "r+b") as f:  # a page in the middle of the row data
        f.seek(4096 * (n_pages // 2 + 4))
        f.write(b"\xff" * 4096)
    with pytest.raises(DatabaseDamagedError, match="big.db"):
        ResultsDB(path)
    unreadable = []
    df = to_dataframe(path, unreadable=unreadable)
    assert 0 < len(unreadable) < 10 and len(df) + len(unreadable) == 60
    # every row that reads back is intact
    for _, r in df.iterrows():
        i = int(r["label"].split("#")[1])
        assert r["v0_A3_per_atom"] == float(i) and r["curve"][-1] == 299.0 + i
