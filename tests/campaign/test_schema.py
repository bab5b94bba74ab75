"""Campaign files are validated before any work starts, and every error names its line."""
from __future__ import annotations

import pytest

from mlip_props.campaign import registry
from mlip_props.campaign.schema import CampaignError, load_campaign, parse_campaign

GOOD = """\
name: ok
potential: emt
structures:
  - names: [Cu, Al]
  - name: Cu:hcp
  - prototype: L1_2
    pairs: [[Cu, Au]]
properties:
  energy: {relax: false}
options:
  batch_size: 4
"""


def test_valid_campaign_parses(tmp_campaign):
    c = load_campaign(tmp_campaign(GOOD))
    assert c.name == "ok" and [p.name for p in c.properties] == ["energy"]
    assert c.options["batch_size"] == 4 and len(c.sources) == 3


@pytest.mark.parametrize("bad_line, line_no, words", [
    ("  energy: {relax: false, fmaxx: 1}", 9, ["fmaxx", "allowed"]),
    ("  energy: {fmax: hello}", 9, ["fmax", "number"]),
    ("  nonsense_property: {}", 9, ["unknown property", "nonsense_property"]),
])
def test_property_errors_name_the_line(tmp_campaign, bad_line, line_no, words):
    text = GOOD.replace("  energy: {relax: false}", bad_line)
    with pytest.raises(CampaignError) as ei:
        load_campaign(tmp_campaign(text))
    msg = str(ei.value)
    assert f"c.yaml:{line_no}:" in msg, msg
    for w in words:
        assert w in msg


def test_structure_errors_name_the_line(tmp_campaign):
    text = GOOD.replace("  - name: Cu:hcp", "  - name: Qq:fcc\n  - file: does_not_exist.xyz")
    with pytest.raises(CampaignError) as ei:
        load_campaign(tmp_campaign(text))
    probs = dict(ei.value.problems)
    assert "Qq" in probs[5]
    assert "does not exist" in probs[6]


def test_unknown_element_in_prototype_and_bad_option(tmp_campaign):
    text = GOOD.replace("[[Cu, Au]]", "[[Cu, Zz]]").replace("batch_size: 4", "batch_size: -1")
    with pytest.raises(CampaignError) as ei:
        load_campaign(tmp_campaign(text))
    probs = dict(ei.value.problems)
    assert "unknown element 'Zz'" in probs[7]
    assert "batch_size" in probs[11]


def test_unavailable_property_is_named(monkeypatch, tmp_campaign):
    registry._load_known()
    monkeypatch.setitem(registry._UNAVAILABLE, "futureprop", "module mlip_props.properties.future cannot be imported")
    text = GOOD.replace("  energy: {relax: false}", "  energy: {}\n  futureprop: {}")
    with pytest.raises(CampaignError) as ei:
        load_campaign(tmp_campaign(text))
    assert "c.yaml:10:" in str(ei.value) and "not available in this installation" in str(ei.value)
    c = load_campaign(tmp_campaign(text), skip_unavailable=True)
    assert [p.name for p in c.properties] == ["energy"] and c.skipped_properties[0][0] == "futureprop"


def test_yaml_syntax_error_and_duplicate_key_lines():
    with pytest.raises(CampaignError) as ei:
        parse_campaign("name: x\npotential: emt\nstructures: [Cu\nproperties: {}\n")
    assert ei.value.problems[0][0] is not None
    with pytest.raises(CampaignError) as ei:
        parse_campaign("name: x\npotential: emt\nname: y\nstructures: [Cu]\nproperties: {energy: {}}\n")
    assert (3, "duplicate key 'name'") in ei.value.problems


def test_bad_potential_is_reported(tmp_campaign):
    with pytest.raises(CampaignError) as ei:
        load_campaign(tmp_campaign(GOOD.replace("potential: emt", "potential: not-a-potential")))
    assert "c.yaml:2:" in str(ei.value)


def test_validation_happens_before_any_work(tmp_campaign, tmp_path):
    from mlip_props.cli import main

    text = GOOD.replace("  energy: {relax: false}", "  energy: {relax: false}\n  nope: {}").replace(
        "batch_size: 4", f"batch_size: 4\n  db: {tmp_path / 'r.db'}")
    assert main(["run", str(tmp_campaign(text)), "-q"]) == 2
    assert not (tmp_path / "r.db").exists()
