"""Reference-table loader: units and duplicates checked on load; shipped tables found by name inside
the package; the shipped fcc table is consistent."""
from __future__ import annotations

import pytest

from pathlib import Path

import mlip_props
from mlip_props.campaign.reference import (load_all_references, load_reference, reference_data_dir, reference_file,
                                           reference_names, unit_of)

HEADER = "element,structure,a_A,a_source\n"


def test_elements_fcc_loads_and_is_consistent():
    t = load_reference("elements_fcc")
    df = t.frame.set_index("element")
    assert sorted(df.index) == sorted(["Al", "Cu", "Ni", "Ag", "Au", "Pd", "Pt"])
    assert t.units["a_A"] == "Å" and t.units["C44_GPa"] == "GPa"
    for el, r in df.iterrows():
        # Kittel's 2-decimal values are the 4-decimal compilation rounded (within 0.006 A)
        assert abs(r["a_A"] - r["a_second_A"]) < 0.006, el
        # Born stability of a cubic crystal: C11 > |C12|, C11 + 2 C12 > 0, C44 > 0
        assert r["C11_GPa"] > abs(r["C12_GPa"]) and r["C44_GPa"] > 0
        # isothermal B vs adiabatic (C11 + 2 C12)/3: within 8 % (Pd's compilations differ most)
        b_c = (r["C11_GPa"] + 2 * r["C12_GPa"]) / 3
        assert abs(b_c - r["B_GPa"]) / r["B_GPa"] < 0.08, el
        # the two elastic compilations agree within 4 %
        for c in ("C11", "C12", "C44"):
            assert abs(r[f"{c}_GPa"] - r[f"{c}_second_GPa"]) / r[f"{c}_GPa"] < 0.04, (el, c)
        assert r["a_T_K"] == 298 and r["C_T_K"] == 300
        assert r["a_source"] and r["C_source"] and r["B_source"]


def test_duplicates_rejected(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(HEADER + "Cu,fcc,3.61,Kittel\nCu,fcc,3.62,other\n")
    with pytest.raises(ValueError, match="duplicate"):
        load_reference(p)
    p.write_text(HEADER + "Cu,fcc,3.61,Kittel\nCu,bcc,2.87,other\n")  # different structure: fine
    assert len(load_reference(p).frame) == 2


def test_units_and_sources_checked(tmp_path):
    p = tmp_path / "u.csv"
    p.write_text("element,a,a_source\nCu,3.61,Kittel\n")
    with pytest.raises(ValueError, match="no unit suffix"):
        load_reference(p)
    p.write_text("element,a_A,a_source\nCu,3.61,\n")
    with pytest.raises(ValueError, match="has no source"):
        load_reference(p)
    p.write_text("element,a_A\nCu,3.61\n")
    with pytest.raises(ValueError, match="no source column"):
        load_reference(p)
    p.write_text("element,a_A,a_source\nCu,three,Kittel\nAg,4.09,Kittel\n")
    with pytest.raises(ValueError, match="not a number"):
        load_reference(p)


def test_unit_suffixes():
    assert unit_of("omega_e_cm1") == "cm⁻¹" and unit_of("cv_J_mol_K") == "J/(mol K)"
    assert unit_of("v0_A3_per_atom") == "Å³/atom" and unit_of("poisson_ratio") == ""
    assert unit_of("mystery") is None


def test_all_shipped_reference_files_load():
    tables = load_all_references()
    bad = {k: v for k, v in tables.items() if isinstance(v, Exception)}
    assert not bad
    assert sorted(tables) == reference_names() and "elements_fcc" in tables


def test_shipped_tables_live_in_the_package_and_load_by_name():
    shipped = Path(mlip_props.__file__).resolve().parent / "data" / "reference"
    assert reference_data_dir() == shipped
    by_path = load_reference(shipped / "elements_fcc.csv")
    for name in ("elements_fcc", "elements_fcc.csv"):
        assert reference_file(name) == shipped / "elements_fcc.csv"
        t = load_reference(name)
        assert t.path == by_path.path and t.frame.equals(by_path.frame)
    with pytest.raises(FileNotFoundError, match="elements_fcc"):  # the message lists the shipped tables
        load_reference("no_such_table")
    with pytest.raises(FileNotFoundError, match="does not exist"):  # a path is not looked up by name
        load_reference(shipped / "sub" / "elements_fcc.csv")


def test_reference_folder_override(tmp_path, monkeypatch):
    (tmp_path / "mine.csv").write_text(HEADER + "Cu,fcc,3.60,my measurement\n")
    monkeypatch.setenv("MLIP_PROPS_REFERENCE_DATA", str(tmp_path))
    assert reference_data_dir() == tmp_path and reference_names() == ["mine"]
    assert load_reference("mine").value("Cu", "a_A") == (3.60, "my measurement")
    assert list(load_all_references()) == ["mine"]
