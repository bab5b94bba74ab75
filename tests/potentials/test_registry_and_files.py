import numpy as np
import pytest
import torch
from ase.build import bulk

from mlip_props import evaluate, load_potential, save_potential
from mlip_props.potentials import ZBL, LennardJones, Morse, SumPotential, load_model_file


def test_specs_build_the_right_potentials():
    lj = load_potential("lj:epsilon=0.4,sigma=2.3")
    assert isinstance(lj, LennardJones) and lj.epsilon == 0.4 and lj.sigma == 2.3
    assert lj.cutoff == pytest.approx(6.9)
    s = load_potential("morse:D=0.34,a=1.36,r0=2.87 + zbl")
    assert isinstance(s, SumPotential) and isinstance(s.terms[1], ZBL)
    d = load_potential({"name": "morse", "D": 0.34, "a": 1.36, "r0": 2.87})
    assert isinstance(d, Morse) and d.r0 == 2.87
    assert load_potential(lj) is lj
    assert load_potential("emt").name == "emt"


def test_model_file_round_trip(tmp_path):
    pot = SumPotential(Morse(D=0.34, a=1.36, r0=2.87), ZBL())
    path = save_potential(pot, tmp_path / "m.pt", metadata={"note": "test"})
    back = load_potential(str(path))
    a = bulk("Cu", "fcc", a=3.5, cubic=True)
    a.rattle(0.05, seed=1)
    e0 = evaluate(pot, [a], ("energy",)).energies_eV[0]
    e1 = evaluate(back, [a], ("energy",)).energies_eV[0]
    assert e1 == pytest.approx(e0, rel=1e-14)
    assert back.metadata == {"note": "test"} and len(back.file_hash) == 64


def test_missing_corrupt_and_foreign_model_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_potential(str(tmp_path / "missing.pt"))
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ValueError, match="not a readable mlip-props model file"):
        load_model_file(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not an mlip-props model file"):
        load_model_file(foreign)
    truncated = tmp_path / "truncated.pt"
    good = save_potential(LennardJones(), tmp_path / "good.pt")
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable"):
        load_model_file(truncated)


def test_pretrained_names_give_clear_error_without_extra():
    import importlib.util

    if importlib.util.find_spec("chgnet") is not None:
        pytest.skip("chgnet is installed")
    with pytest.raises(ValueError, match="needs the 'pretrained' extra"):
        load_potential("chgnet").calculator()
