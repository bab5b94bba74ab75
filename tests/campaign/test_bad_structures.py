"""100 bad structures mixed into a campaign are each recorded as failed with a clear error; the good
ones complete. Also: a property that raises for some structures of a batch is bisected so the
others still complete."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

import ase.db
from mlip_props.campaign import registry
from mlip_props.campaign.runner import run_campaign
from mlip_props.campaign.schema import load_campaign

from .conftest import rows_by_key


def _bad_db(path):
    """25 overlapping-atom, 25 zero-volume, 25 NaN-position structures in an ASE database."""
    with ase.db.connect(str(path), use_lock_file=False) as db:
        for k in range(25):
            a = bulk("Cu", "fcc", a=3.6, cubic=True)
            a.positions[1] = a.positions[0] + [0.05 + 0.001 * k, 0, 0]
            db.write(a, kind="overlap")
        for k in range(25):
            a = bulk("Cu", "fcc", a=3.6)
            a.cell[2] = a.cell[0] * (1 + 0 * k)  # linearly dependent cell vectors: zero volume
            db.write(a, kind="zero_volume")
        for k in range(25):
            a = bulk("Cu", "fcc", a=3.6, cubic=True)
            a.positions[k % 4, k % 3] = np.nan
            db.write(a, kind="nanpos")


def test_bad_structures_are_recorded_and_good_ones_complete(tmp_path):
    _bad_db(tmp_path / "bad.db")
    (tmp_path / "files").mkdir()
    for k in range(13):  # unknown element symbols
        (tmp_path / "files" / f"unknown_{k:02d}.xyz").write_text(f"2\n\nQq 0 0 0\nCu 0 0 {2.0 + 0.1 * k}\n")
    for k in range(12):  # empty files
        (tmp_path / "files" / f"empty_{k:02d}.xyz").write_text("")
    good = "".join(f"  - name: {el}:fcc:a={a:.2f}\n" for el in ("Cu", "Au", "Pt") for a in (3.6, 3.7, 3.8, 3.9, 4.0))
    (tmp_path / "c.yaml").write_text(
        f"name: bad\npotential: emt\nstructures:\n{good}  - db: bad.db\n  - glob: 'files/*.xyz'\n"
        "  - name: Fe\n"  # an element EMT does not know
        "properties:\n  energy: {}\noptions:\n  batch_size: 8\n")
    camp = load_campaign(tmp_path / "c.yaml")
    s = run_campaign(camp, str(tmp_path / "r.db"), progress=False)
    rows = rows_by_key(tmp_path / "r.db")
    assert len(rows) == 15 + 75 + 25 + 1
    by_label = {r["label"]: r for r in rows.values()}
    expect = {"overlap": "overlap", "zero_volume": "zero-volume", "nanpos": "non-finite"}
    with ase.db.connect(str(tmp_path / "bad.db"), use_lock_file=False) as db:
        for row in db.select():
            r = by_label[f"bad.db@{row.id}"]
            assert r["status"] == "failed"
            assert expect[row.kind] in r["error"], r["error"]
    for k in range(13):
        r = by_label[f"files/unknown_{k:02d}.xyz"]
        assert r["status"] == "failed" and "could not read" in r["error"] and "Qq" in r["error"], r["error"]
    for k in range(12):
        r = by_label[f"files/empty_{k:02d}.xyz"]
        assert r["status"] == "failed" and "is empty" in r["error"], r["error"]
    assert by_label["Fe"]["status"] == "failed" and "Fe not supported" in by_label["Fe"]["error"]
    goods = [r for r in rows.values() if r["label"].split(":")[0] in ("Cu", "Au", "Pt")]
    assert len(goods) == 15 and all(r["status"] == "done" for r in goods)
    # physical sanity of the good rows: on the a-grid each metal's energy is lowest at the grid
    # point nearest its EMT/experimental lattice constant (Cu 3.6, Pt 3.9, Au 4.0 of 3.6..4.0 A)
    for el, a_min in (("Cu", 3.6), ("Pt", 3.9), ("Au", 4.0)):
        es = {float(r["label"].split("a=")[1]): r["result"]["energy_eV_per_atom"] for r in goods if r["label"].startswith(el)}
        assert min(es, key=es.get) == pytest.approx(a_min), (el, es)
    assert s.n_failed == 101 and s.n_done == 15
    # a rerun computes nothing and duplicates nothing
    s2 = run_campaign(camp, str(tmp_path / "r.db"), progress=False)
    assert s2.n_computed == 0 and len(rows_by_key(tmp_path / "r.db")) == 116


def test_failing_property_is_bisected(tmp_path, monkeypatch):
    calls = []

    def fragile(potential, structures, *, limit_A: float = 3.75):
        calls.append(len(structures))
        for k, a in enumerate(structures):
            if a.cell.lengths()[0] > limit_A:
                raise ValueError(f"structure {k}: cell too long for this property")
        return [{"volume_A3": float(a.get_volume())} for a in structures]

    monkeypatch.setitem(registry._REGISTRY, "fragile", registry.PropertySpec("fragile", fragile,
                                                                             registry.schema_from_signature(fragile)))
    names = "".join(f"  - name: Cu:sc:a={a:.2f}\n" for a in np.linspace(3.5, 4.0, 8))
    (tmp_path / "c.yaml").write_text(f"name: frag\npotential: emt\nstructures:\n{names}properties:\n"
                                     "  fragile: {limit_A: 3.75}\noptions:\n  batch_size: 8\n")
    run_campaign(load_campaign(tmp_path / "c.yaml"), str(tmp_path / "r.db"), progress=False)
    rows = rows_by_key(tmp_path / "r.db")
    for r in rows.values():
        a = float(r["label"].split("a=")[1])
        if a > 3.75:
            assert r["status"] == "failed" and "cell too long" in r["error"] and r["label"] in r["error"]
        else:
            assert r["status"] == "done" and r["result"]["volume_A3"] == pytest.approx(a**3)
    assert calls[0] == 8 and len(calls) > 2


def test_atoms_without_cell_are_fine(tmp_path):
    (tmp_path / "c.yaml").write_text("name: mol\npotential: emt\nstructures:\n  - names: [N2, CO, H2O]\n"
                                     "properties:\n  energy: {}\n")
    s = run_campaign(load_campaign(tmp_path / "c.yaml"), str(tmp_path / "r.db"), progress=False)
    assert s.n_done == 3
