"""Every property result states the precision its potential computed in."""
import numpy as np
import pytest
import torch
from ase.build import bulk

from mlip_props.backend import evaluate
from mlip_props.backend.precision import compute_precision, dtype_name
from mlip_props.campaign.report.flags import row_flags
from mlip_props.potentials import load_potential
from mlip_props.properties.eos import equation_of_state
from mlip_props.properties.phonons import phonons
from mlip_props.properties.plan import analyse_members
from mlip_props.properties.eos import plan_eos
from mlip_props.properties.plan import evaluate_plans

ARGON = bulk("Ar", "fcc", a=5.26)


@pytest.fixture(scope="module")
def lj():
    return load_potential("lj:epsilon=0.0104,sigma=3.4,cutoff=8")


def test_evaluate_records_the_batch_precision(lj):
    assert evaluate(lj, [ARGON]).precision == "float64"
    r32 = evaluate(lj, [ARGON], dtype=torch.float32)
    assert r32.precision == "float32"
    # views keep it
    assert r32.select([0]).precision == "float32" and r32.member_mean().precision == "float32"
    assert evaluate(load_potential("emt"), [bulk("Cu")]).precision == "float64"  # oracles: double


def test_a_module_that_fixes_float32_wins_over_a_float64_batch(lj):
    class Fixed(torch.nn.Module):
        compute_dtype = "float32"

    wrapper = torch.nn.Module()
    wrapper.inner = Fixed()
    assert compute_precision(wrapper, torch.float64) == "float32"
    assert compute_precision(lj, torch.float64) == "float64"
    assert compute_precision(lj, None) == "float64"
    with pytest.raises(ValueError, match="unknown dtype"):
        dtype_name("float8")


def test_property_results_state_precision_and_float32_is_flagged(lj):
    r64 = equation_of_state(lj, ARGON)
    r32 = equation_of_state(lj, ARGON, dtype=torch.float32)
    assert (r64.precision, r32.precision) == ("float64", "float32")
    assert r32.to_dict()["precision"] == "float32"
    assert "float32" in row_flags(r32.to_dict()) and "float32" not in row_flags(r64.to_dict())
    # the float32 answer is a float32 answer: it differs from float64 by more than float64 rounding
    assert abs(r32.bulk_modulus_GPa - r64.bulk_modulus_GPa) > 1e-9 * abs(r64.bulk_modulus_GPa)
    ph = phonons(lj, ARGON, dtype=torch.float32)
    assert ph.precision == "float32"


def test_analyse_members_records_precision(lj):
    plan = plan_eos(lj, [ARGON])
    answers = evaluate_plans(lj, [plan])[0]
    (results,) = analyse_members(plan, answers)
    assert results[0].precision == "float64"
    assert np.isfinite(results[0].bulk_modulus_GPa)
