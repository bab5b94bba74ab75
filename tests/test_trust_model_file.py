"""A model file that is pickled code is unpickled only on the user's explicit opt-in, never on a
campaign file's say-so (MACE files: loading runs code stored in the file)."""
import pytest

from mlip_props.campaign.schema import CampaignError, parse_campaign
from mlip_props.cli import main

CAMPAIGN = """
name: trust
potential: {potential}
structures:
  - names: [Cu]
properties:
  energy: {{}}
"""


def test_calc_refuses_a_pickled_model_file_without_the_flag(tmp_path, capsys):
    path = tmp_path / "model.pt"
    path.write_bytes(b"not read")
    code = main(["calc", "energy", "-p", f"mace:{path}", "-s", "Cu"])
    err = capsys.readouterr().err
    assert code == 2 and "--trust-model-file" in err and "runs code" in err


def test_with_the_flag_the_file_is_looked_for(tmp_path, capsys):
    code = main(["calc", "energy", "-p", f"mace:{tmp_path / 'absent.pt'}", "-s", "Cu", "--trust-model-file"])
    err = capsys.readouterr().err
    assert code == 2 and "not found" in err and "--trust-model-file" not in err


@pytest.mark.parametrize("potential", ["'mace:path=m.pt,trusted=true'", "{name: mace, path: m.pt, trusted: true}"])
def test_a_campaign_file_cannot_trust_a_model_itself(tmp_path, potential):
    with pytest.raises(CampaignError, match="cannot trust a model file itself"):
        parse_campaign(CAMPAIGN.format(potential=potential), base_dir=tmp_path)


def test_the_runner_is_given_the_users_opt_in(tmp_path):
    text = CAMPAIGN.format(potential=f"'mace:{tmp_path / 'absent.pt'}'")
    with pytest.raises(CampaignError, match="--trust-model-file"):
        parse_campaign(text, base_dir=tmp_path)
    with pytest.raises(CampaignError, match="not found"):
        parse_campaign(text, base_dir=tmp_path, trust_model_file=True)
    camp = parse_campaign(CAMPAIGN.format(potential="emt"), base_dir=tmp_path, trust_model_file=True)
    assert camp.trust_model_file is True
    from mlip_props.campaign import runner

    seen = []
    original = runner._potential
    runner._potential = lambda spec, trusted=False: seen.append(trusted) or original(spec, trusted)
    try:
        runner.run_campaign(camp, str(tmp_path / "r.db"), progress=False)
    finally:
        runner._potential = original
    assert seen and all(seen)


def test_a_model_file_argument_resolves_and_its_content_is_the_identity(tmp_path):
    from mlip_props.campaign.potential_spec import potential_identity, resolve_potential_spec

    (tmp_path / "m.pt").write_bytes(b"first weights")
    spec = resolve_potential_spec("mace:m.pt", tmp_path)
    assert spec == f"mace:{tmp_path / 'm.pt'}"
    assert resolve_potential_spec("mace:path=m.pt,head=pbe", tmp_path) == f"mace:path={tmp_path / 'm.pt'},head=pbe"
    assert resolve_potential_spec("lj:epsilon=0.01,sigma=3.4", tmp_path) == "lj:epsilon=0.01,sigma=3.4"
    first = potential_identity(spec)[1]
    (tmp_path / "m.pt").write_bytes(b"other weights")
    assert potential_identity(spec)[1] != first
