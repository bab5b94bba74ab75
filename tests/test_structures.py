"""mlip_props.structures.load_structure: names, files, and clear errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.io import write

from mlip_props.structures import load_structure, load_structures, parse_name


def test_element_defaults_are_ase_reference_states():
    cu = load_structure("Cu")
    assert cu.get_chemical_formula() == "Cu" and cu.pbc.all()
    assert cu.get_volume() == pytest.approx(3.61**3 / 4)  # fcc, Kittel's a = 3.61 A
    si = load_structure("Si")
    assert len(si) == 2 and si.get_volume() / 2 == pytest.approx(5.43**3 / 8)


def test_other_crystal_keeps_the_volume_per_atom():
    v = load_structure("Cu").get_volume()
    for s in ("Cu:hcp", "Cu:bcc", "Cu:sc"):
        a = load_structure(s)
        assert a.get_volume() / len(a) == pytest.approx(v, rel=1e-10), s
    hcp = load_structure("Cu:hcp")
    c_over_a = hcp.cell.lengths()[2] / hcp.cell.lengths()[0]
    assert c_over_a == pytest.approx(math.sqrt(8 / 3))


def test_explicit_parameters_and_repeat():
    a = load_structure("Cu:bcc:a=2.9")
    assert a.get_volume() == pytest.approx(2.9**3 / 2)
    big = load_structure("Cu:fcc:a=3.6:repeat=2x2x2")
    assert len(big) == 8 and big.get_volume() == pytest.approx(8 * 3.6**3 / 4)
    assert len(load_structure("Cu:fcc:cubic=true")) == 4
    assert parse_name("Cu:bcc:a=2.9,cubic=true") == ("Cu", "bcc", {"a": 2.9, "cubic": True})


def test_molecules_and_dimers():
    n2 = load_structure("N2")
    assert not n2.pbc.any() and n2.get_distance(0, 1) == pytest.approx(molecule("N2").get_distance(0, 1))
    h2o = load_structure("H2O")
    assert sorted(h2o.get_chemical_symbols()) == ["H", "H", "O"]
    cu2 = load_structure("Cu2")
    assert cu2.get_distance(0, 1) == pytest.approx(2 * 1.32)  # 2 x covalent radius (Cordero 2008)


def test_files(tmp_path):
    frames = [bulk("Cu", "fcc", a=3.6 + 0.01 * k) for k in range(3)]
    write(tmp_path / "t.extxyz", frames)
    assert load_structure(tmp_path / "t.extxyz").cell[0, 1] == pytest.approx(3.62 / 2)  # last frame
    assert len(load_structures(str(tmp_path / "t.extxyz"))) == 3
    write(tmp_path / "POSCAR", frames[0], format="vasp")
    assert np.allclose(load_structure(str(tmp_path / "POSCAR")).cell, frames[0].cell)
    write(tmp_path / "cu.cif", bulk("Cu", "fcc", a=3.6, cubic=True))
    c = load_structure(str(tmp_path / "cu.cif"))  # read by pymatgen
    assert len(c) == 4 and c.get_volume() == pytest.approx(3.6**3, rel=1e-6)


@pytest.mark.parametrize("spec, exc, words", [
    ("Xx", ValueError, ["unknown structure", "Xx"]),
    ("cu", ValueError, ["did you mean", "Cu"]),
    ("Cu:foo", ValueError, ["unknown crystal structure"]),
    ("Cu:fcc:zz=1", ValueError, ["unknown parameter"]),
    ("missing_file.xyz", FileNotFoundError, ["does not exist"]),
])
def test_errors(spec, exc, words):
    with pytest.raises(exc) as ei:
        load_structure(spec)
    for w in words:
        assert w in str(ei.value)


def test_empty_and_unreadable_files(tmp_path):
    (tmp_path / "e.xyz").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_structure(str(tmp_path / "e.xyz"))
    (tmp_path / "q.xyz").write_text("1\n\nQq 0 0 0\n")
    with pytest.raises(ValueError, match="could not read"):
        load_structure(str(tmp_path / "q.xyz"))
    (tmp_path / "bad.cif").write_text("data_x\n_cell_length_a nonsense\n")
    with pytest.raises(ValueError, match="CIF"):
        load_structure(str(tmp_path / "bad.cif"))


# --- the reference-solid library (solids.csv, elements_fcc.csv) -------------------------------------------------

import spglib  # noqa: E402
from ase.formula import Formula  # noqa: E402
from ase.neighborlist import neighbor_list  # noqa: E402

from mlip_props import structures  # noqa: E402
from mlip_props.campaign.reference import load_reference  # noqa: E402
from mlip_props.structure_library import solid_entries  # noqa: E402

ENTRIES = solid_entries()
#: lattice centring of each space group used -> primitive cells per conventional cell (R: hexagonal axes)
CENTRING = {225: 4, 216: 4, 227: 4, 229: 2, 221: 1, 194: 1, 186: 1, 136: 1, 167: 3, 139: 2, 141: 2}


def _conventional_volume(e) -> float:
    if e.prototype in ("hcp", "wurtzite", "corundum"):
        return math.sqrt(3) / 2 * e.a_A**2 * e.c_A
    if e.prototype in ("rutile", "beta-Sn", "bct"):
        return e.a_A**2 * e.c_A
    return e.a_A**3


def _nearest_neighbour_A(e) -> float | None:
    """Shortest interatomic distance of the ideal prototype, from its geometry (None: not derived here)."""
    a, c, p = e.a_A, e.c_A, e.internal_parameters
    return {
        "fcc": a / math.sqrt(2), "bcc": a * math.sqrt(3) / 2, "diamond": a * math.sqrt(3) / 4,
        "zincblende": a * math.sqrt(3) / 4, "rocksalt": a / 2, "CsCl": a * math.sqrt(3) / 2,
        "fluorite": a * math.sqrt(3) / 4, "perovskite": a / 2,
        "hcp": min(a, math.sqrt(a * a / 3 + c * c / 4)) if c else None,
        "wurtzite": min(p.get("u", 0) * c, math.sqrt(a * a / 3 + ((0.5 - p.get("u", 0)) * c) ** 2)) if c else None,
        "rutile": min(math.sqrt(2) * p.get("x", 0) * a, math.sqrt(2 * ((0.5 - p.get("x", 0)) * a) ** 2 + c * c / 4))
        if c else None,
        # beta-Sn: 4 neighbours at (0, 1/2, 1/4) of the conventional cell, 2 at c; bct: 4 at a, 8 at the body centre
        "beta-Sn": min(math.sqrt(a * a / 4 + c * c / 16), c) if c else None,
        "bct": min(a, c, math.sqrt(a * a / 2 + c * c / 4)) if c else None,
        # spinel (origin choice 2): the tetrahedral A (1/8,1/8,1/8) - X (x,x,x) bond along [111]
        # (MgAl2O4: Mg-O 1.92 A, the shortest pair in the cell)
        "spinel": a * math.sqrt(3) * (p.get("x_anion", 0) - 0.125),
    }.get(e.prototype)


@pytest.mark.parametrize("name", list(ENTRIES))
def test_reference_solid_symmetry_cell_and_distances(name):
    e = ENTRIES[name]
    atoms = structures.get(name)
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    assert spglib.get_symmetry_dataset(cell, symprec=1e-5).number == e.space_group_number, name
    assert len(atoms) == e.atoms_per_primitive_cell == len(spglib.find_primitive(cell, symprec=1e-5)[2]), name
    assert atoms.symbols.formula.reduce()[0].count() == Formula(e.chemical_formula).reduce()[0].count(), name
    # the conventional cell spglib finds has the table's lattice parameters
    lat, _, nums = spglib.standardize_cell(cell, to_primitive=False, no_idealize=True, symprec=1e-5)
    lengths = np.linalg.norm(lat, axis=1)
    assert lengths[0] == pytest.approx(e.a_A, rel=1e-9), name
    if e.c_A:
        assert lengths[2] == pytest.approx(e.c_A, rel=1e-9), name
    assert len(nums) == CENTRING[e.space_group_number] * len(atoms)
    assert atoms.get_volume() * CENTRING[e.space_group_number] == pytest.approx(_conventional_volume(e), rel=1e-9)
    d = neighbor_list("d", atoms, 6.0)
    assert d.min() > 1.5, f"{name}: atoms {d.min():.3f} A apart"
    expect = _nearest_neighbour_A(e)
    if expect is not None:
        assert d.min() == pytest.approx(expect, rel=1e-9), name


def test_corundum_bond_lengths_from_its_internal_parameters():
    """Al2O3: each Al has two shells of 3 O (1.855 and 1.972 A, Lewis et al. 1982). Both are recomputed
    here from a, c, z(Al), x(O) with the 18e orbit of R-3c written out by hand (hexagonal axes),
    independently of ase.spacegroup, and compared with the built cell."""
    e = ENTRIES["Al2O3-corundum"]
    a, c, z, x = e.a_A, e.c_A, e.internal_parameters["z_cation"], e.internal_parameters["x_anion"]
    hexcell = np.array([[a, 0, 0], [-a / 2, a * math.sqrt(3) / 2, 0], [0, 0, c]])
    orbit = np.array([[x, 0, 0.25], [0, x, 0.25], [-x, -x, 0.25], [-x, 0, 0.75], [0, -x, 0.75], [x, x, 0.75]])
    centring = np.array([[0, 0, 0], [2 / 3, 1 / 3, 1 / 3], [1 / 3, 2 / 3, 2 / 3]])
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    oxygens = (orbit[:, None, None] + centring[None, :, None] + shifts[None, None]).reshape(-1, 3) @ hexcell
    d_hand = np.sort(np.linalg.norm(oxygens - np.array([0, 0, z]) @ hexcell, axis=1))[:6]
    assert np.ptp(d_hand[:3]) < 1e-9 and np.ptp(d_hand[3:]) < 1e-9 and d_hand[3] - d_hand[0] > 0.05
    atoms = structures.get("Al2O3-corundum")
    i, j, d = neighbor_list("ijd", atoms, 2.1)
    al_o = d[(atoms.numbers[i] == 13) & (atoms.numbers[j] == 8)]
    assert len(al_o) == 6 * 4  # 4 Al, each with 6 O within 2.1 A
    assert np.allclose(np.unique(al_o.round(9)),
                       [d_hand[0], d_hand[3]], atol=1e-8)
    assert 1.84 < d_hand[0] < 1.87 and 1.96 < d_hand[3] < 1.99  # the two Al-O shells of corundum


def test_tables_pass_the_reference_checks_and_name_library_entries():
    solids = load_reference("solids")
    assert solids.key == "name" and solids.units["a_A"] == "Å" and solids.units["temperature_K"] == "K"
    for _, row in solids.frame.iterrows():  # every row has a measurement temperature and a primary source
        assert row["temperature_K"] > 0 and str(row["source"]).strip()
        second = row["a_second_A"]
        if second == second:  # a second compilation agrees within 2 % (2-decimal tables, 5 K alkali values)
            assert abs(second - row["a_A"]) / row["a_A"] < 0.02, row["name"]
    assert set(solids.frame["prototype"]) >= {"fcc", "bcc", "hcp", "diamond", "zincblende", "wurtzite", "rocksalt",
                                              "CsCl", "fluorite", "rutile", "perovskite", "corundum"} - {"fcc"}
    el = load_reference("elastic_constants")
    assert el.key == "name"
    for _, row in el.frame.iterrows():
        assert row["name"] in ENTRIES, row["name"]
        C = {k: row[f"{k}_GPa"] for k in ("C11", "C12", "C13", "C33", "C44", "C66")}
        given = {k for k, v in C.items() if v == v}
        system = row["crystal_system"]
        # every independent constant of the Laue class is given, and no dependent one
        assert given == {"cubic": {"C11", "C12", "C44"}, "hexagonal": {"C11", "C12", "C13", "C33", "C44"},
                         "tetragonal": {"C11", "C12", "C13", "C33", "C44", "C66"}}[system], row["name"]
        assert ENTRIES[row["name"]].space_group_number in {"cubic": range(195, 231), "hexagonal": range(168, 195),
                                                           "tetragonal": range(89, 143)}[system], row["name"]
        if system == "cubic":  # Born stability of a cubic crystal
            assert C["C11"] > abs(C["C12"]) and C["C11"] + 2 * C["C12"] > 0 and C["C44"] > 0, row["name"]
        else:  # hexagonal and 4/mmm tetragonal: the same three conditions, plus C66 > 0 where independent
            assert C["C11"] > abs(C["C12"]) and (C["C11"] + C["C12"]) * C["C33"] > 2 * C["C13"] ** 2 and C["C44"] > 0
            assert system == "hexagonal" or C["C66"] > 0, row["name"]
        for k in given:
            s = row[f"{k}_second_GPa"]
            if s == s:  # where a second compilation is given it agrees within 5 %
                assert abs(s - C[k]) / C[k] < 0.05, (row["name"], k)


def test_library_names_aliases_and_existing_names():
    assert structures.get("MgO").get_volume() == pytest.approx(4.2112**3 / 4)  # unique formula -> MgO-rocksalt
    assert load_structure("MgO").get_volume() == pytest.approx(structures.get("MgO-rocksalt").get_volume())
    w = load_structure("GaN-wurtzite")
    assert w.cell.cellpar()[:3] == pytest.approx([3.190, 3.190, 5.189])
    assert load_structure("gan-wurtzite").get_volume() == pytest.approx(w.get_volume())
    assert len(load_structure("TiO2-rutile:repeat=2x1x1")) == 12
    # element and molecule names keep their meaning: ASE's reference crystal, the G2 molecule
    assert load_structure("Fe").get_volume() == pytest.approx(2.87**3 / 2)
    assert structures.get("Fe").get_volume() == pytest.approx(2.8665**3 / 2)
    assert not load_structure("NaCl").pbc.any()
    assert structures.get("NaCl").pbc.all() and load_structure("NaCl-rocksalt").pbc.all()
    assert load_structure("Cu-fcc").get_volume() == pytest.approx(load_structure("Cu").get_volume())


@pytest.mark.parametrize("spec, words", [
    ("GaN-wurzite", ["unknown structure", "close matches", "GaN-wurtzite"]),
    ("MgO2", ["close matches", "MgO"]),
    ("GaN-wurtzite:a=3.2", ["only 'repeat'"]),
    ("MgO:hcp", ["own prototype"]),
])
def test_library_errors(spec, words):
    with pytest.raises(ValueError) as ei:
        load_structure(spec)
    for w in words:
        assert w in str(ei.value), str(ei.value)


def test_get_unknown_lists_close_matches():
    with pytest.raises(ValueError, match="close matches: TiO2-rutile"):
        structures.get("TiO2-rutil")


def test_cli_calc_takes_a_library_name(capsys):
    import json

    from mlip_props.cli import EXIT_OK, main

    assert main(["calc", "energy", "-p", "emt", "-s", "Al-fcc", "--json"]) == EXIT_OK
    d = json.loads(capsys.readouterr().out)
    assert d["volume_A3_per_atom"] == pytest.approx(4.05**3 / 4)


def test_library_ignores_a_reference_folder_override(tmp_path, monkeypatch):
    """A folder of comparison tables given by $MLIP_PROPS_REFERENCE_DATA does not change what a name builds."""
    from mlip_props import structure_library

    monkeypatch.setenv("MLIP_PROPS_REFERENCE_DATA", str(tmp_path))
    structure_library._entries.cache_clear()  # read the tables again, under the override
    assert structures.get("GaN-wurtzite").cell.cellpar()[2] == pytest.approx(5.189)
    with pytest.raises(ValueError, match="unknown structure"):
        load_structure("Xx")
