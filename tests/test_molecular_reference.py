"""The molecular reference tables (diatomics.csv, molecular_vibrations.csv, molecular_geometries.csv) and the two
molecule campaigns that use them: units, positive values, a source for every value, physical consistency of the
constants (Morse estimate of D_e, 3N-6 modes, symmetry-label degeneracies, geometries against ASE's independent G2
structures) and every campaign structure builds and has a reference row."""
from __future__ import annotations

import math

import numpy as np
import pytest
from ase.data import covalent_radii
from ase.formula import Formula

from mlip_props.campaign.reference import load_reference
from mlip_props.campaign.schema import load_campaign
from mlip_props.campaign.sources import expand_sources
from mlip_props.data import campaign_file
from mlip_props.structures import load_structure

CM1_PER_EV = 8065.543937  # CODATA 2018: 1 eV / (h c) in cm^-1
SOURCE_COLUMNS = ("primary_source",)


@pytest.fixture(scope="module")
def diatomics():
    return load_reference("diatomics")


@pytest.fixture(scope="module")
def vibrations():
    return load_reference("molecular_vibrations")


@pytest.fixture(scope="module")
def geometries():
    return load_reference("molecular_geometries")


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == ""


def test_at_least_40_molecules_with_units_and_sources(diatomics, vibrations):
    n = diatomics.frame["molecule"].nunique() + vibrations.frame["molecule"].nunique()
    assert n >= 40, n
    assert diatomics.units == {"r_e_A": "Å", "omega_e_cm1": "cm⁻¹", "omega_e_x_e_cm1": "cm⁻¹", "D0_eV": "eV",
                               "De_derived_eV": "eV"}
    assert vibrations.units["frequency_cm1"] == "cm⁻¹"
    for table in (diatomics, vibrations):
        df = table.frame
        for col in SOURCE_COLUMNS + ("cross_check",):
            assert not df[col].map(_blank).any(), (table.path.name, col)
        # the header says what the cross_check words mean and gives the temperature / state
        text = " ".join(table.comments).lower()
        assert "temperature" in text and "cross_check" in text


def test_diatomic_constants_are_physical(diatomics):
    df = diatomics.frame
    assert (df["r_e_A"] > 0.5).all() and (df["r_e_A"] < 3.5).all()
    assert (df["omega_e_cm1"] > 100).all() and (df["omega_e_cm1"] < 4500).all()
    assert (df["omega_e_x_e_cm1"] > 0).all()
    # the anharmonic correction is small: omega_e x_e / omega_e is 0.3 % (Br2) to 2.8 % (H2)
    ratio = df["omega_e_x_e_cm1"] / df["omega_e_cm1"]
    assert (ratio > 0.001).all() and (ratio < 0.03).all(), df.loc[~((ratio > 0.001) & (ratio < 0.03)), "molecule"]
    d0 = df["D0_eV"].dropna()
    assert (d0 > 0).all()
    # De_derived = D0 + (omega_e/2 - omega_e x_e/4) hc where both are given (arithmetic of the file)
    both = df.dropna(subset=["D0_eV", "De_derived_eV"])
    zpe = (both["omega_e_cm1"] / 2 - both["omega_e_x_e_cm1"] / 4) / CM1_PER_EV
    np.testing.assert_allclose(both["De_derived_eV"], both["D0_eV"] + zpe, atol=2e-4)
    # Morse estimate D_e ~ omega_e^2 / (4 omega_e x_e): for covalent molecules it brackets the measured D_e
    # within a factor 0.8-1.6 (a wrong omega_e x_e by a factor 2 would fail)
    morse = both["omega_e_cm1"] ** 2 / (4 * both["omega_e_x_e_cm1"]) / CM1_PER_EV
    r = morse / both["De_derived_eV"]
    assert ((r > 0.8) & (r < 1.6)).all(), dict(zip(both["molecule"], r.round(2)))


def test_hydride_frequencies_scale_with_reduced_mass(diatomics):
    """omega_e = sqrt(k/mu)/(2 pi c): the H-X stretches sit far above the heavy-atom ones, and among the hydrogen
    halides the force constant k = mu omega^2 falls from HF to HBr (bond weakens down the group)."""
    from ase.data import atomic_masses, atomic_numbers

    df = diatomics.frame.set_index("molecule")

    def k(name, a, b):
        m1, m2 = atomic_masses[atomic_numbers[a]], atomic_masses[atomic_numbers[b]]
        return m1 * m2 / (m1 + m2) * df.loc[name, "omega_e_cm1"] ** 2

    assert k("HF", "H", "F") > k("HCl", "H", "Cl") > k("HBr", "H", "Br")
    assert min(df.loc[["HF", "HCl", "HBr", "OH"], "omega_e_cm1"]) > max(df.loc[["Cl2", "Br2", "P2", "S2"], "omega_e_cm1"])


def test_every_polyatomic_has_all_its_modes(vibrations):
    """The degeneracies of each molecule add up to 3N-6 (3N-5 when linear) of the structure built by name, and each
    symmetry label carries its degeneracy (e/eg/eu/pi 2, t2 3, the rest 1)."""
    df = vibrations.frame
    assert (df["frequency_cm1"] > 100).all() and (df["frequency_cm1"] < 4000).all()
    assert (df["phase"] == "gas").all()
    want = {"e": 2, "eg": 2, "eu": 2, "pi": 2, "pi_u": 2, "pi_g": 2, "t2": 3}
    for _, row in df.iterrows():
        assert row["degeneracy"] == want.get(row["symmetry"], 1), (row["molecule"], row["mode"])
    for mol, rows in df.groupby("molecule"):
        atoms = load_structure("SH2" if mol == "H2S" else mol)
        pos = atoms.positions - atoms.positions[0]
        linear = len(atoms) > 2 and np.linalg.matrix_rank(pos, tol=1e-3) == 1
        n_modes = 3 * len(atoms) - (5 if linear else 6)
        assert rows["degeneracy"].sum() == n_modes, (mol, rows["degeneracy"].sum(), n_modes)
        assert rows["mode"].tolist() == [f"nu{i}" for i in range(1, len(rows) + 1)], mol


def _bonded(atoms, i, j) -> bool:
    zi, zj = atoms.numbers[i], atoms.numbers[j]
    return atoms.get_distance(i, j) < 1.25 * (covalent_radii[zi] + covalent_radii[zj])


def test_geometries_agree_with_the_independent_g2_structures(geometries):
    """ASE's G2 geometries (MP2/6-31G(d) optimisations, an independent source) lie within 0.03 A and 2.5 deg of the
    experimental values; the rows name their geometry type and a source."""
    df = geometries.frame
    assert set(geometries.units) == {"r_A", "angle_deg"}
    assert df["geometry_type"].isin(["r_e", "r_0", "not stated"]).all()
    assert not df["primary_source"].map(_blank).any()
    for _, row in df.iterrows():
        atoms = load_structure(row["molecule"])
        names = row["atoms"].split("-")
        sym = atoms.get_chemical_symbols()
        has_r, has_a = not _blank(row["r_A"]), not _blank(row["angle_deg"])
        assert has_r != has_a, row["quantity"]
        assert row["quantity"] == (f"r({row['atoms']})" if has_r else f"angle({row['atoms']})")
        if has_r:
            a, b = names
            d = [atoms.get_distance(i, j) for i in range(len(atoms)) for j in range(len(atoms))
                 if i != j and sym[i] == a and sym[j] == b and _bonded(atoms, i, j)]
            assert d, row["quantity"]
            assert 0.7 < row["r_A"] < 2.5 and abs(np.mean(d) - row["r_A"]) < 0.03, (row["molecule"], np.mean(d))
        else:
            a, c, b = names
            ang = [atoms.get_angle(i, k, j) for k in range(len(atoms)) if sym[k] == c
                   for i in range(len(atoms)) for j in range(i + 1, len(atoms))
                   if sym[i] == a and sym[j] == b and _bonded(atoms, i, k) and _bonded(atoms, j, k)]
            assert ang, row["quantity"]
            assert 90 < row["angle_deg"] < 180 and abs(np.mean(ang) - row["angle_deg"]) < 2.5, (row["molecule"], ang)


@pytest.mark.parametrize("name, table, n_atoms", [("molecules_vs_experiment", "diatomics", (2,)),
                                                  ("polyatomics_vs_experiment", "molecular_vibrations", tuple(range(3, 9)))])
def test_campaign_molecules_build_and_have_reference_rows(name, table, n_atoms):
    camp = load_campaign(campaign_file(name), check_potential=False)
    items = expand_sources(camp)
    ref = load_reference(table).frame
    keys = set(ref["molecule"])
    assert all(it.error is None for it in items)
    labels = [it.label for it in items]
    assert len(labels) == len(set(labels)) and set(labels) <= keys
    for it in items:
        atoms = it.atoms
        assert len(atoms) in n_atoms, it.label
        # the structure is the molecule the row names (same composition)
        assert Formula(atoms.get_chemical_formula()).count() == Formula(it.label).count(), it.label
    # every buildable molecule of the table is in the campaign (HBr, LiCl, AlCl, AlBr have no structure by name)
    missing = [m for m in keys - set(labels) if m not in ("HBr", "LiCl", "AlCl", "AlBr")]
    assert not missing, missing


def test_report_pairs_relaxed_geometries_with_the_geometry_table(geometries):
    """geometry_pairs reads the relaxed atoms of a vibrations row and pairs every geometry row of the molecule
    with the mean bonded distance / angle, computed here independently with ASE."""
    from ase.build import molecule

    from mlip_props.campaign.report.comparison import geometry_pairs
    from mlip_props.properties.result import jsonable

    h2o, h2co = molecule("H2O"), molecule("H2CO")
    h2o.positions[1] += [0.0, 0.05, 0.02]  # unequal O-H bonds: the pair holds their mean
    preds = {lab: {"vibrations": [{"result": {"atoms": jsonable(a), "relax_converged": True}, "params": {}}]}
             for lab, a in (("H2O", h2o), ("H2CO", h2co))}
    r = {p["label"]: p for p in geometry_pairs(preds, [geometries], "r_A")}
    a = {p["label"]: p for p in geometry_pairs(preds, [geometries], "angle_deg")}
    assert set(r) == {"H2O r(O-H)", "H2CO r(C-H)", "H2CO r(C-O)"} and set(a) == {"H2O angle(H-O-H)", "H2CO angle(H-C-H)"}
    assert r["H2O r(O-H)"]["predicted"] == pytest.approx((h2o.get_distance(0, 1) + h2o.get_distance(0, 2)) / 2, abs=1e-12)
    assert r["H2O r(O-H)"]["reference"] == 0.958 and r["H2O r(O-H)"]["reference_file"] == "molecular_geometries.csv"
    c = [i for i, s in enumerate(h2co.get_chemical_symbols()) if s == "C"][0]
    o = [i for i, s in enumerate(h2co.get_chemical_symbols()) if s == "O"][0]
    hs = [i for i, s in enumerate(h2co.get_chemical_symbols()) if s == "H"]
    assert r["H2CO r(C-O)"]["predicted"] == pytest.approx(h2co.get_distance(c, o), abs=1e-12)
    assert a["H2CO angle(H-C-H)"]["predicted"] == pytest.approx(h2co.get_angle(hs[0], c, hs[1]), abs=1e-9)
    assert a["H2O angle(H-O-H)"]["predicted"] == pytest.approx(h2o.get_angle(1, 0, 2), abs=1e-9)
    # a molecule without a vibrations row, or without rows in the table, gives no pair
    assert geometry_pairs({"CH4": preds["H2O"]}, [geometries], "r_A") == []
