"""High-pressure polymorphs: built by name with the right space group and composition, tied to a
reference solid and a row of phase_transitions.csv, and kept out of the reference-solid tables."""
import csv

import pytest
import spglib
from pymatgen.core import Composition

from mlip_props.campaign.sources import library_names
from mlip_props.data import DATA_DIR
from mlip_props.polymorph_library import get_polymorph, polymorph_entries, polymorph_entry, polymorphs_of
from mlip_props.structure_library import solid_entries, solid_names
from mlip_props.structures import load_structure

ENTRIES = list(polymorph_entries().values())


def _transition_rows():
    lines = [ln for ln in (DATA_DIR / "reference" / "phase_transitions.csv").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    return {(r["material"], r["transition"]) for r in csv.DictReader(lines)}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_polymorph_builds_with_space_group_and_composition(entry):
    atoms = load_structure(entry.name)  # through the one structure resolver
    ds = spglib.get_symmetry_dataset((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers), symprec=1e-4)
    assert ds.number == entry.space_group_number
    assert Composition(atoms.get_chemical_formula()).reduced_formula == Composition(entry.chemical_formula).reduced_formula
    low = solid_entries()[entry.low_pressure_phase]
    assert Composition(low.chemical_formula).reduced_formula == Composition(entry.chemical_formula).reduced_formula
    assert low.space_group_number != entry.space_group_number
    assert (entry.material, entry.transition) in _transition_rows()
    assert entry in polymorphs_of(entry.chemical_formula)
    # the starting cell is a guess, but a sane one: volume per atom between half and 1.1 times the low-pressure phase's at ambient
    v_low = load_structure(entry.low_pressure_phase).get_volume() / len(load_structure(entry.low_pressure_phase))
    assert 0.5 < atoms.get_volume() / len(atoms) / v_low < 1.1


def test_polymorph_geometry():
    si = get_polymorph("Si-betaSn")  # primitive bct cell of I4_1/amd with c/a of the conventional cell 0.552
    assert len(si) == 2
    assert si.get_volume() / 2 == pytest.approx(4.686**2 * 2.585 / 4, rel=1e-9)
    nacl = get_polymorph("NaCl-B2")
    assert nacl.get_volume() == pytest.approx(2.997**3, rel=1e-9)
    fe = get_polymorph("Fe-hcp")
    assert fe.cell.cellpar()[2] / fe.cell.cellpar()[0] == pytest.approx(3.96 / 2.47)


def test_polymorphs_are_not_reference_solids():
    names = set(polymorph_entries())
    assert not names & set(solid_names())
    assert not names & set(library_names("all"))


def test_unknown_polymorph_names_close_matches():
    with pytest.raises(ValueError, match="Si-betaSn"):
        polymorph_entry("Si-betasnn")
