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


@pytest.mark.parametrize("text,message", [
    ("element,a,a_source\nCu,3.61,Kittel\n", "no unit suffix"),
    ("element,a_A,a_source\nCu,3.61,\n", "has no source"),
    ("element,a_A\nCu,3.61\n", "no source column"),
    ("element,a_A,a_source\nCu,three,Kittel\nAg,4.09,Kittel\n", "not a number"),
], ids=["unit", "source_value", "source_column", "number"])
def test_units_and_sources_checked(tmp_path, text, message):
    p = tmp_path / "u.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=message):
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


def test_second_value_takes_its_unit_from_the_unit_column(tmp_path):
    p = tmp_path / "k.csv"
    p.write_text("material,value,unit,second_value,primary_source,second_source\nSi,148,W/(m K),125,A,B\n")
    t = load_reference(p)
    assert t.units["value"] == t.units["second_value"] == "per row (unit column)"
    p.write_text("material,value,second_value,primary_source\nSi,148,125,A\n")  # no unit column: rejected
    with pytest.raises(ValueError, match="second_value"):
        load_reference(p)


# --- report quantities beyond the fcc metals: non-cubic a and c, C13/C33/C66, cubic compound prototypes ---------

def _relax_row(atoms):
    from mlip_props.properties.result import jsonable
    return {"params": {"relax_cell": True}, "result": {"atoms": jsonable(atoms), "converged": True,
                                                       "volume_A3_per_atom": atoms.get_volume() / len(atoms)}}


@pytest.mark.parametrize("name", ["Mg-hcp", "GaN-wurtzite", "TiO2-rutile", "Al2O3-corundum", "Sn-betaSn", "In-bct"])
def test_noncubic_a_and_c_from_the_relaxed_cell(name):
    """A rotated, strained (c/a changed) cell of each non-cubic prototype: the report reads back a and c
    of its conventional cell, computed here independently from the strain applied."""
    import numpy as np

    from mlip_props import structures
    from mlip_props.campaign.report.quantities import QUANTITIES
    from mlip_props.structure_library import solid_entry

    e = solid_entry(name)
    at = structures.get(name)
    sa, sc = 1.013, 0.991  # in-plane and axial strain (symmetry kept: c stays along z)
    at.set_cell(at.cell[:] @ np.diag([sa, sa, sc]), scale_atoms=True)
    th = 0.3  # a rigid rotation must not change the lengths
    rot = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
    at.set_cell(at.cell[:] @ rot.T, scale_atoms=True)
    res = {"relax": [_relax_row(at)]}
    q = {x.key: x for x in QUANTITIES}
    a = q["lattice_constant"].predict(res, e.prototype)
    c = q["lattice_constant_c"].predict(res, e.prototype)
    assert a[0] == pytest.approx(sa * e.a_A, rel=1e-9) and c[0] == pytest.approx(sc * e.c_A, rel=1e-9), (a, c)
    assert "spglib" in a[1] and "spglib" in c[1]
    # without a cell-relaxed row there is no prediction (a volume alone cannot give a and c)
    assert q["lattice_constant"].predict({"relax": [{**_relax_row(at), "params": {}}]}, e.prototype) is None
    assert q["lattice_constant_c"].predict(res, "fcc") is None  # c is not predicted for cubic crystals


@pytest.mark.parametrize("name, n", [("MgO-rocksalt", 8), ("GaAs-zincblende", 8), ("CsCl-B2", 2),
                                     ("CaF2-fluorite", 12), ("SrTiO3-perovskite", 5), ("MgAl2O4-spinel", 56)])
def test_cubic_compound_lattice_constant_from_the_volume_per_atom(name, n):
    from mlip_props import structures
    from mlip_props.campaign.report.quantities import CELL_ATOMS, QUANTITIES
    from mlip_props.structure_library import solid_entry

    e = solid_entry(name)
    at = structures.get(name)
    assert CELL_ATOMS[e.prototype] == n
    v = at.get_volume() / len(at)  # the primitive cell of the table: a^3 / n per atom
    res = {"eos": [{"params": {}, "result": {"v0_A3_per_atom": v}}]}
    got = next(q for q in QUANTITIES if q.key == "lattice_constant").predict(res, e.prototype)
    assert got[0] == pytest.approx(e.a_A, rel=1e-12)


def test_elastic_quantities_and_voigt_bulk_modulus():
    """C13, C33, C66 are read at their Voigt indices; a non-cubic B from the tensor is the Voigt average
    (computed here from the table's hexagonal Mg constants with C66 = (C11 - C12)/2), a cubic one stays
    (C11 + 2 C12)/3."""
    import numpy as np

    from mlip_props.campaign.report.quantities import QUANTITIES

    t = load_reference("elastic_constants").frame.set_index("name").loc["Mg-hcp"]
    c11, c12, c13, c33, c44 = (t[f"{k}_GPa"] for k in ("C11", "C12", "C13", "C33", "C44"))
    C = np.zeros((6, 6))
    C[0, 0] = C[1, 1] = c11
    C[2, 2] = c33
    C[0, 1] = C[1, 0] = c12
    C[0, 2] = C[2, 0] = C[1, 2] = C[2, 1] = c13
    C[3, 3] = C[4, 4] = c44
    C[5, 5] = (c11 - c12) / 2
    res = {"elastic": [{"params": {}, "result": {"C_GPa": C.tolist()}}]}
    q = {x.key: x for x in QUANTITIES}
    assert q["C13"].predict(res, "hcp")[0] == c13 and q["C33"].predict(res, "hcp")[0] == c33
    assert q["C66"].predict(res, "hcp")[0] == pytest.approx((c11 - c12) / 2)
    # Voigt bulk modulus of a hexagonal crystal: (2 C11 + C33 + 2 C12 + 4 C13) / 9
    assert q["bulk_modulus"].predict(res, "hcp")[0] == pytest.approx((2 * c11 + c33 + 2 * c12 + 4 * c13) / 9)
    assert q["bulk_modulus"].predict(res, "fcc")[0] == pytest.approx((c11 + 2 * c12) / 3)


def test_solids_table_pairs_a_library_structure_with_its_prototype():
    """Through the report's pairing, a wurtzite label is matched with its solids.csv row and its a and c
    come from the relaxed cell (not from a fcc (4 V)^(1/3), which is what a missing structure would give)."""
    from mlip_props import structures
    from mlip_props.campaign.report.comparison import quantity_pairs
    from mlip_props.campaign.report.quantities import QUANTITIES

    solids = load_reference("solids")
    assert (solids.frame["structure"] == solids.frame["prototype"]).all()
    at = structures.get("GaN-wurtzite")
    preds = {"GaN-wurtzite": {"relax": [_relax_row(at)]}}
    q = {x.key: x for x in QUANTITIES}
    (pa,) = quantity_pairs(q["lattice_constant"], preds, [solids])
    (pc,) = quantity_pairs(q["lattice_constant_c"], preds, [solids])
    assert pa["predicted"] == pytest.approx(3.190) and pa["reference"] == 3.190
    assert pc["predicted"] == pytest.approx(5.189) and pc["reference"] == 5.189 and pc["source"] == "ST-1977"
