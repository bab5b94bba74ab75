"""`mlip-props sample` and `mlip-props fit` from the command line."""
from ase.io import read

from mlip_props.cli import main
from mlip_props.potentials import load_potential


def test_sample_then_fit_writes_a_loadable_committee(tmp_path):
    data, model = tmp_path / "cu.extxyz", tmp_path / "cu.pt"
    assert main(["sample", "Cu", "--n", "12", "--out", str(data), "--max-atoms", "4", "--quiet",
                 "--strategies", "rattle", "strain"]) == 0
    frames = read(data, ":")
    assert len(frames) >= 12 and all("forces" in a.arrays or a.calc is not None for a in frames)
    assert main(["fit", str(data), "--out", str(model), "--committee", "2", "--epochs", "3", "--hidden", "8",
                 "--quiet"]) == 0
    assert load_potential(str(model)).n_members == 2


def test_fit_reports_missing_data_and_bad_weights(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nope.extxyz"), "--out", str(tmp_path / "m.pt")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "nope.extxyz"), "--out", "m.pt", "--weights", "energy"]) == 2
