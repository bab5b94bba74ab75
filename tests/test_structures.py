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
