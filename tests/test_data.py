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
    camp = load_campaign(campaign_file(name), skip_unavailable=True)
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
