"""Exit codes of the command line: 2 for every user error, 1 only for an unexpected fault."""
import pytest
from ase.build import bulk

from mlip_props.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from mlip_props.campaign import registry


class FakePanic(BaseException):
    """Stands in for pyo3's PanicException, which derives from BaseException, not Exception."""


@pytest.fixture
def nan_xyz(tmp_path):
    p = tmp_path / "nan.xyz"
    p.write_text("2\n\nCu 0 0 0\nCu nan 0 0\n")
    return p


@pytest.mark.parametrize("argv, message", [
    (["calc", "eos", "-s", "Cu", "-P", "n_points=-3"], "n_points"),
    (["calc", "eos", "-s", "Cu", "-P", "volume_range=.nan"], "volume_range"),
    (["calc", "elastic", "-s", "N2"], "periodic"),
    (["calc", "eos", "-s", "Fe"], "Fe not supported"),
    (["calc", "eos", "-s", "Cu:fcc:repeat=0x1x1"], "every repeat must be an integer >= 1"),
    (["calc", "phonons", "-s", "Cu", "-P", "mesh=[-1,2,2]"], "positive integers"),
])
def test_user_errors_exit_2(argv, message, capsys):
    assert main(argv + ["-q"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_nan_in_structure_file_exits_2(nan_xyz, capsys):
    assert main(["calc", "energy", "-s", str(nan_xyz), "-q"]) == EXIT_USAGE
    assert "non-finite" in capsys.readouterr().err


def test_non_database_file_and_missing_output_folder_exit_2(tmp_path, capsys):
    text = tmp_path / "notes.db"
    text.write_text("just text\n")
    assert main(["report", str(text), "--out", str(tmp_path / "rep"), "-q"]) == EXIT_USAGE
    assert "not a results database" in capsys.readouterr().err
    from mlip_props.campaign.database import ResultsDB, RowRecord

    db = tmp_path / "r.db"
    ResultsDB(db).write_batch([RowRecord("k", "Cu", "energy", {}, "done", bulk("Cu"), result={"energy_eV": -1.0})])
    assert main(["export", str(db), "--out", str(tmp_path / "missing" / "x.csv"), "-q"]) == EXIT_USAGE
    assert "output folder" in capsys.readouterr().err
    assert main(["export", str(db), "--out", str(tmp_path / "x.csv"), "-q"]) == EXIT_OK


def test_phonon_mesh_list_form_is_accepted():
    spec = registry.get_property("phonons")
    assert spec.check_params({"mesh": [8, 8, 8]}) == []
    assert spec.check_params({"mesh": 30.0}) == []
    assert spec.check_params({"mesh": [8, 0, 8]}) and spec.check_params({"mesh": [8.5, 8, 8]})


def test_library_panic_is_a_clear_error_not_a_crash(capsys):
    def panics(potential, structures):
        raise FakePanic("capacity overflow")

    registry.register_property("panics_for_test", panics, params={})
    try:
        assert main(["calc", "panics_for_test", "-s", "Cu", "-q"]) == EXIT_ERROR
    finally:
        registry._REGISTRY.pop("panics_for_test", None)
    err = capsys.readouterr().err
    assert "a compiled library failed: FakePanic: capacity overflow" in err


def test_runner_records_a_library_panic_as_a_failed_row():
    from mlip_props.campaign.runner import BatchTask, run_batch

    def panics(potential, structures):
        raise FakePanic("capacity overflow")

    registry.register_property("panics_for_test", panics, params={})
    try:
        task = BatchTask("emt", [("k1", "Cu", bulk("Cu"), None, "panics_for_test", {}),
                                 ("k2", "Ag", bulk("Ag"), None, "panics_for_test", {})], 0.5, "b0")
        out = run_batch(task)
    finally:
        registry._REGISTRY.pop("panics_for_test", None)
    assert [o.status for o in out] == ["failed", "failed"]
    assert all("FakePanic: capacity overflow" in o.error for o in out)


def test_keyboard_interrupt_still_interrupts():
    def interrupted(potential, structures):
        raise KeyboardInterrupt

    registry.register_property("interrupt_for_test", interrupted, params={})
    from mlip_props.campaign.runner import BatchTask, run_batch

    try:
        with pytest.raises(KeyboardInterrupt):
            run_batch(BatchTask("emt", [("k1", "Cu", bulk("Cu"), None, "interrupt_for_test", {})], 0.5, "b0"))
    finally:
        registry._REGISTRY.pop("interrupt_for_test", None)


def test_run_on_a_damaged_database_exits_2_naming_it(tmp_path, capsys):
    camp = tmp_path / "c.yaml"
    camp.write_text("name: c\npotential: emt\nstructures: [Cu]\nproperties: [energy]\n")
    db = tmp_path / "damaged.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)
    assert main(["run", str(camp), "--db", str(db), "-q"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "damaged.db" in err and "new database" in err
