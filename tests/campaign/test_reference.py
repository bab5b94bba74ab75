"""reference_data loader: units and duplicates checked on load; the shipped fcc table is consistent."""
from __future__ import annotations

import pytest

from mlip_props.campaign.reference import load_all_references, load_reference, unit_of
from mlip_props.campaign.schema import reference_data_dir

HEADER = "element,structure,a_A,a_source\n"


def test_elements_fcc_loads_and_is_consistent():
    t = load_reference(reference_data_dir() / "elements_fcc.csv")
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
    bad = {k: v for k, v in load_all_references().items() if isinstance(v, Exception)}
    assert "elements_fcc" not in bad
