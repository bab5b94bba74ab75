"""Shipped data: campaign files found by name inside the package, their references and model files
resolve there too, and the command line takes a shipped campaign by name as well as by path."""
from __future__ import annotations

from pathlib import Path

import pytest

import mlip_props
from mlip_props.campaign.schema import load_campaign
from mlip_props.cli import EXIT_OK, EXIT_USAGE, main
from mlip_props.data import (DATA_DIR, campaign_file, campaign_names, campaigns_dir, reference_data_dir,
                             reference_names)

PACKAGE = Path(mlip_props.__file__).resolve().parent


def test_data_folders_are_inside_the_package():
    assert DATA_DIR == PACKAGE / "data"
    assert campaigns_dir() == PACKAGE / "data" / "workflows"
    assert reference_data_dir() == PACKAGE / "data" / "reference"
    assert "fcc_metals" in campaign_names() and "elements_fcc" in reference_names()
    assert (DATA_DIR / "cu_committee.pt").is_file()


@pytest.mark.parametrize("name", ["fcc_metals", "fcc_metals.yaml", "fcc-metals"])
def test_campaign_found_by_name(name):
    assert campaign_file(name) == campaigns_dir() / "fcc_metals.yaml"


def test_unknown_campaign_lists_the_shipped_ones():
    with pytest.raises(FileNotFoundError, match="fcc_metals"):
        campaign_file("no_such_campaign")
    with pytest.raises(FileNotFoundError, match="a path"):
        campaign_file("../reference/elements_fcc")


@pytest.mark.parametrize("name", campaign_names())
def test_every_shipped_campaign_validates_with_its_files_in_the_package(name):
    import importlib.util

    import yaml

    spec = yaml.safe_load(campaign_file(name).read_text()).get("potential")
    family = spec.split(":")[0].strip() if isinstance(spec, str) else None
    installed = family not in ("sevenn", "chgnet", "mace") or importlib.util.find_spec(family) is not None
    # without the model's extra the file is still validated, without loading the potential
    camp = load_campaign(campaign_file(name), skip_unavailable=True, check_potential=installed)
    for ref in camp.reference:  # reference tables named in the campaign resolve to the shipped ones
        assert Path(ref).parent == reference_data_dir(), ref
    pot = camp.potential
    if isinstance(pot, str) and pot.endswith(".pt"):  # model files relative to the campaign file
        assert (campaign_file(name).parent / pot).resolve().is_file()


def test_cli_takes_a_shipped_campaign_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no campaign file here: the name is looked up in the package
    assert main(["validate", "molecules_vibrations"]) == EXIT_OK
    assert "valid; 4 structures" in capsys.readouterr().out
    assert main(["validate", "no_such_campaign"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no_such_campaign" in err and "fcc_metals" in err
    # a file in the current directory wins over a shipped campaign of the same name
    (tmp_path / "fcc_metals").write_text("name: mine\npotential: emt\nstructures:\n  - names: [Cu]\n"
                                         "properties:\n  energy: {}\n")
    assert main(["validate", "fcc_metals"]) == EXIT_OK
    assert "1 structures" in capsys.readouterr().out


# --- physical consistency of the shipped reference tables ---------------------------------------------------------

import math  # noqa: E402

import numpy as np  # noqa: E402

from mlip_props.campaign.reference import load_all_references, load_reference  # noqa: E402


def test_every_shipped_table_loads_with_units_temperatures_and_sources():
    tables = load_all_references()
    bad = {k: v for k, v in tables.items() if isinstance(v, Exception)}
    assert not bad, bad  # every numeric column has a unit, every value a source, no duplicate keys
    for name in ("thermal_conductivity", "phonons_high_symmetry", "phase_transitions", "solids", "elastic_constants"):
        t = tables[name]
        assert any(c.endswith("_source") or c == "source" for c in t.frame.columns), name
        temps = [c for c in t.frame.columns if c.endswith("_T_K") or c == "temperature_K"]
        if name != "phase_transitions":  # transitions give the other variable in 'condition'
            assert temps, name
            for c in temps:
                assert (t.frame[c].dropna() >= 0).all() and t.frame[c].notna().all(), (name, c)


def test_thermal_conductivity_table():
    t = load_reference("thermal_conductivity").frame
    assert t["material"].nunique() >= 15
    assert set(t["unit"]) == {"W/(m K)"} and (t["value"] > 0).all()
    assert ((t["temperature_K"] > 250) & (t["temperature_K"] < 350)).all()  # near room temperature
    assert t["isotopologue"].notna().all() and t["direction"].notna().all()
    assert t["cross_check"].notna().all()  # each row says what was (or was not) cross-checked
    # isotope scattering: the 12C-enriched diamond conducts better than the natural one
    c = t[t["material"] == "C"].set_index("isotopologue")["value"]
    assert c.filter(like="12C").iloc[0] > c["natural"]
    # Slack's rules: diamond > cubic BN-like light covalent crystals > heavy ionic ones; here the ordering
    # C > Si > Ge > NaCl of the rows, which a wrong unit (W/(cm K)) or a swapped row would break
    v = t[t["isotopologue"] == "natural"].set_index("material")["value"]
    assert v["C"] > v["Si"] > v["Ge"] > v["NaCl"]
    # where a second value is given it is within the stated disagreement (at most 25 %)
    both = t.dropna(subset=["second_value"])
    assert (abs(both["second_value"] - both["value"]) / both["value"] < 0.25).all()


def test_phonon_table_covers_15_materials_and_is_ordered():
    t = load_reference("phonons_high_symmetry").frame
    assert t["material"].nunique() >= 15 and t["method"].notna().all()
    assert (t["frequency_THz"] > 0).all() and t["temperature_K"].notna().all()
    for (mat, point), g in t.groupby(["material", "point"]):
        f = g.set_index("branch")["frequency_THz"]
        if "T" in f and "L" in f and g["structure"].iloc[0] in ("fcc", "bcc"):
            assert f["T"] < f["L"], (mat, point)  # the longitudinal branch is the highest at X and L
        if point == "N":  # bcc N: the longitudinal mode is the highest of the three
            assert f["L"] == f.max(), mat
    # bcc H and P are triply degenerate: one row each; Gamma of diamond-type crystals: one optical row
    bcc = t[t["structure"] == "bcc"]
    assert (bcc[bcc["point"].isin(["H", "P"])]["branch"] == "all").all()
    # homology of Si and Ge (Nilsson & Nelin 1972): omega_Gamma^2 = k/M with a Ge force constant k somewhat
    # below Si's; M omega^2 of the zone-centre optical mode, Ge over Si, lies in (0.75, 1). A row in cm^-1, or
    # one of the two at the wrong point, falls outside.
    g = t[t["point"] == "Gamma"].set_index("material")["frequency_THz"]
    k_ratio = 72.630 * g["Ge"] ** 2 / (28.0855 * g["Si"] ** 2)
    assert 0.75 < k_ratio < 1.0, k_ratio
    # LO > TO at Gamma in polar GaAs (LO-TO splitting)
    ga = t[(t["material"] == "GaAs") & (t["point"] == "Gamma")].set_index("branch")["frequency_THz"]
    assert ga["LO"] > ga["TO"]


def test_phase_transitions_table():
    t = load_reference("phase_transitions").frame
    assert t["material"].nunique() >= 10
    p = t[t["quantity"] == "pressure"]
    assert set(p["unit"]) == {"GPa"} and ((p["value"] > 0) & (p["value"] < 100)).all()
    assert set(t[t["quantity"] == "temperature"]["unit"]) == {"K"}
    assert t["uncertainty"].notna().all() and t["condition"].notna().all()
    v = p.set_index("material")["value"]
    # the alkali-halide B1 -> B2 pressure falls with cation size (NaCl far above KCl)
    assert v["NaCl"] > 10 * v["KCl"]
    # the group-IV trend: Si transforms at a higher pressure than Ge (both diamond -> beta-Sn)
    assert v["Si"] > v["Ge"]


def test_bulk_modulus_from_cubic_constants_matches_the_tabulated_one():
    """B = (C11 + 2 C12)/3 of the adiabatic constants vs Kittel's isothermal B_GPa: the adiabatic value is
    larger by 1 + alpha^2 B V T / C_v (about 1-5 % for metals at 300 K); Pd's known 7 % discrepancy sets the
    tolerance at 8 %. B_second_GPa is stated to be (C11 + 2 C12)/3 of the second set: exact to rounding."""
    t = load_reference("elements_fcc").frame
    b_c = (t["C11_GPa"] + 2 * t["C12_GPa"]) / 3
    rel = (b_c - t["B_GPa"]) / t["B_GPa"]
    assert (rel.abs() < 0.08).all(), dict(zip(t["element"], rel.round(3)))
    assert (rel > -0.02).all()  # adiabatic >= isothermal, within 2 % (Ni: Kittel C of Alers et al. 1960, -1.3 %)
    b2 = (t["C11_second_GPa"] + 2 * t["C12_second_GPa"]) / 3
    assert np.allclose(b2, t["B_second_GPa"], atol=0.06)


def test_new_reference_files_are_package_data():
    """Every shipped table is covered by the package-data glob in pyproject.toml (so the wheel carries it)."""
    import tomllib

    cfg = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    globs = cfg["tool"]["setuptools"]["package-data"]["mlip_props.data"]
    for name in reference_names():
        assert any(Path("reference", f"{name}.csv").match(g) for g in globs), name


def test_debye_temperature_from_elastic_constants_matches_the_calorimetric_one():
    """Cross-table check: the Debye temperature computed here from the room-temperature elastic constants
    and lattice constant (Voigt-Reuss-Hill moduli, mean sound velocity v_m = [(2/v_t^3 + 1/v_l^3)/3]^(-1/3),
    theta = (h/k_B) (3/(4 pi V_atom))^(1/3) v_m; O. L. Anderson, J. Phys. Chem. Solids 24, 909 (1963)) agrees
    with Kittel's calorimetric theta_0 within 7 % (room-temperature constants are a few % softer than at 0 K,
    which is why theta(elastic) comes out low for Al and Au). A unit slip (GPa vs kbar, A vs nm) or a row
    swap between the tables breaks it."""
    from ase.data import atomic_masses, atomic_numbers

    h, kB, NA = 6.62607015e-34, 1.380649e-23, 6.02214076e23

    def theta(c11, c12, c44, a_A, element, atoms_per_cell):
        c11, c12, c44 = (x * 1e9 for x in (c11, c12, c44))
        v_atom = (a_A * 1e-10) ** 3 / atoms_per_cell
        rho = atomic_masses[atomic_numbers[element]] * 1e-3 / NA / v_atom
        b = (c11 + 2 * c12) / 3
        g = ((c11 - c12 + 3 * c44) / 5 + 5 * (c11 - c12) * c44 / (4 * c44 + 3 * (c11 - c12))) / 2
        vl, vt = math.sqrt((b + 4 * g / 3) / rho), math.sqrt(g / rho)
        vm = ((2 / vt**3 + 1 / vl**3) / 3) ** (-1 / 3)
        return h / kB * (3 / (4 * math.pi * v_atom)) ** (1 / 3) * vm

    fcc = load_reference("elements_fcc").frame.set_index("element")
    cub = load_reference("elastic_constants").frame.set_index("name")
    solids = load_reference("solids").frame.set_index("name")
    deb = load_reference("debye_temperatures").frame.set_index("material")
    checked = 0
    for el, row in deb.iterrows():
        if el in fcc.index:
            r = fcc.loc[el]
            t = theta(r["C11_GPa"], r["C12_GPa"], r["C44_GPa"], r["a_second_A"], el, 4)
        else:  # Si: the diamond-structure row of elastic_constants.csv, 8 atoms per cubic cell
            r = cub.loc[f"{el}-diamond"]
            t = theta(r["C11_GPa"], r["C12_GPa"], r["C44_GPa"], solids.loc[f"{el}-diamond", "a_A"], el, 8)
        assert abs(t / row["theta_D_K"] - 1) < 0.07, (el, t, row["theta_D_K"])
        checked += 1
    assert checked == len(deb) >= 6
