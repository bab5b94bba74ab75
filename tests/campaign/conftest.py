"""Helpers for the campaign tests: small campaign files and DB readers independent of the runner."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import ase.db
import pytest


def write_campaign(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def rows_by_key(db_path: str | Path) -> dict[str, dict]:
    """work_key -> {status, label, property, result, error} read straight from ase.db."""
    out = {}
    with ase.db.connect(str(db_path), use_lock_file=False) as db:
        for row in db.select():
            out[row.work_key] = {"status": row.status, "label": row.label, "property": row.property,
                                 "result": row.data.get("result"), "error": row.data.get("error", ""),
                                 "params": json.loads(row.data.get("params", "{}"))}
    return out


def run_and_report(campaign, folder: Path, property_name: str):
    """Run ``campaign`` into ``folder/results.db``, build its report (with the campaign's reference
    tables) in ``folder/rep``; returns (run summary, report, the first ase.db row of ``property_name``)."""
    from mlip_props.campaign import build_report, run_campaign

    db_path = folder / "results.db"
    summary = run_campaign(campaign, str(db_path), progress=False)
    rep = build_report(db_path, folder / "rep", reference=campaign.reference)
    with ase.db.connect(str(db_path), use_lock_file=False) as db:
        row = next(db.select(property=property_name))
    return summary, rep, row


def key_counts(db_path: str | Path) -> dict[str, int]:
    con = sqlite3.connect(str(db_path))
    try:
        return dict(con.execute("SELECT value, COUNT(*) FROM text_key_values WHERE key='work_key' GROUP BY value"))
    finally:
        con.close()


@pytest.fixture
def tmp_campaign(tmp_path):
    def make(text: str, name: str = "c.yaml") -> Path:
        return write_campaign(tmp_path / name, text)
    return make
