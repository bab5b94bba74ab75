"""Results database: one row per key, enforced by SQLite; failed rows replaced on retry; DataFrame export."""
from __future__ import annotations

import sqlite3

import pytest
from ase.build import bulk

from mlip_props.campaign.database import ResultsDB, RowRecord, to_dataframe


def _rec(key, status="done", e=-1.0):
    return RowRecord(key, f"lab-{key}", "energy", {"relax": False}, status, bulk("Cu"),
                     {"energy_eV": e, "forces_eV_A": [[0.0, 0.0, 0.0]]} if status == "done" else None,
                     None if status == "done" else "ValueError: boom", "name:Cu",
                     {"params_hash": "x", "potential": "emt", "potential_hash": "h", "mlip_props_version": "0.1.0",
                      "host": "h1", "campaign": "c"})


def test_unique_rows_and_retry(tmp_path):
    db = ResultsDB(tmp_path / "r.db")
    assert db.write_batch([_rec("a"), _rec("b", "failed")]) == 2
    assert db.write_batch([_rec("a", e=-2.0)]) == 0  # present: never duplicated, never overwritten
    with pytest.raises(sqlite3.IntegrityError):  # the database itself refuses a second row with the key
        db.db.write(bulk("Cu"), work_key="a")
    assert db.count() == 2
    assert db.write_batch([_rec("b", "done", e=-3.0)], replace_failed=True) == 1
    df = to_dataframe(tmp_path / "r.db").set_index("work_key")
    assert len(df) == 2 and df.loc["b", "status"] == "done" and df.loc["b", "energy_eV"] == -3.0
    assert df.loc["a", "energy_eV"] == -1.0 and df.loc["a", "forces_eV_A"] == [[0.0, 0.0, 0.0]]
    for col in ("potential_hash", "mlip_props_version", "host", "params", "ctime", "error"):
        assert col in df.columns
    assert db.keys_among(["a", "b", "zz"]) == {"a", "b"}
