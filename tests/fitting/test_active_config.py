"""Active-learning settings: validated once, never changed by the loop; the per-round pick budget."""
import dataclasses

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.morse import MorsePotential

from mlip_props.backend import OraclePotential
from mlip_props.fitting import preset
from mlip_props.fitting.active import ActiveLearningConfig, learn

MORSE = dict(epsilon=0.5, r0=2.5, rho0=4.0, rcut1=1.5, rcut2=1.8)


def test_config_is_frozen_and_overrides_give_a_validated_copy():
    cfg = ActiveLearningConfig(lower_eV_A=0.1, upper_eV_A=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lower_eV_A = 0.2
    new = cfg.with_overrides(upper_eV_A=2.0, max_per_round=3)
    assert (new.upper_eV_A, new.max_per_round, new.lower_eV_A) == (2.0, 3, 0.1)
    assert (cfg.upper_eV_A, cfg.max_per_round) == (0.5, 8)
    with pytest.raises(ValueError, match="unknown active-learning setting"):
        cfg.with_overrides(to_dict=None)  # a method, not a setting
    with pytest.raises(ValueError, match="lower <= upper"):
        cfg.with_overrides(lower_eV_A=1.0)  # the combination is checked, not each field alone
    with pytest.raises(ValueError, match="lower <= upper"):
        ActiveLearningConfig(lower_eV_A=0.5, upper_eV_A=0.1)


def test_picks_allowed_schedule_repeats_last_entry_and_budget_caps():
    cfg = ActiveLearningConfig(max_per_round=5, max_oracle_calls=20, per_round_schedule=[2, 0, 7])
    assert [cfg.picks_allowed(k, 0) for k in range(5)] == [2, 0, 5, 5, 5]  # max_per_round caps the 7
    assert cfg.picks_allowed(3, 17) == 3 and cfg.picks_allowed(3, 20) == 0 and cfg.picks_allowed(3, 25) == 0
    assert ActiveLearningConfig(max_per_round=4).picks_allowed(9, 0) == 4


def test_learn_leaves_the_given_config_unchanged(tmp_path):
    """Overrides apply to this run only: the caller's config object keeps its values, and the
    checkpoint records the settings the run used."""
    import json

    cfg = ActiveLearningConfig(committee=2, hidden=(4,), initial_epochs=5, include_isolated=False,
                               oracle_properties=("energy", "forces"),
                               descriptor=preset(["Cu"], cutoff=4.5, n_radial=3, zetas=(1,),
                                                 angular_etas=(0.01,)).to_dict())
    before = cfg.to_dict()
    seeds = [Atoms("Cu3", positions=np.array([[0, 0, 0], [2.5, 0, 0], [1.2, 2.1, 0.0]]) + 0.05 * k)
             for k in range(2)]
    oracle = OraclePotential(lambda: MorsePotential(**MORSE), name="morse")
    res = learn(seeds, oracle, [], tmp_path, config=cfg, max_rounds=0, seed=7)
    assert cfg.to_dict() == before
    used = json.loads((tmp_path / "state.json").read_text())["config"]
    assert used["seed"] == 7 and used["max_rounds"] == 0 and cfg.seed == 0
    assert res.rounds == 0 and res.n_labelled == 2
