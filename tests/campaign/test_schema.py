"""Campaign files are validated before any work starts, and every error names its line."""
from __future__ import annotations

import json
from pathlib import Path

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


@pytest.mark.parametrize("value, words", [
    ("{fmaxx: 1}", ["fmaxx", "fmax_eV_A"]),
    ("{fmax_eV_A: -1}", ["fmax_eV_A", "positive"]),
    ("{cell: maybe}", ["cell", "true/false"]),
    ("3", ["true/false or a mapping"]),
])
def test_relaxation_parameter_errors_name_the_setting(tmp_campaign, value, words):
    text = GOOD.replace("  energy: {relax: false}", f"  eos:\n    relaxation: {value}")
    with pytest.raises(CampaignError) as ei:
        load_campaign(tmp_campaign(text))
    msg = str(ei.value)
    assert "c.yaml:10:" in msg and "relaxation" in msg, msg
    for w in words:
        assert w in msg, msg


def test_relaxation_parameter_takes_a_bool_or_settings():
    from mlip_props.properties.relax import resolve_relaxation

    spec = registry.get_property("eos")
    assert spec.params["relaxation"].kind == "relaxation"
    for ok in (True, False, None, {"fmax_eV_A": 1e-3, "cell": False, "max_steps": 100}, {"ions": None}):
        assert spec.check_params({"relaxation": ok}) == [], ok
    assert resolve_relaxation({"fmax_eV_A": 1e-3}).fmax_eV_A == 1e-3


def test_import_errors_are_bugs_unless_an_optional_extra_is_missing(monkeypatch):
    from mlip_props.campaign.builtin import BuiltinProperty

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_UNAVAILABLE", dict(registry._UNAVAILABLE))
    monkeypatch.setattr(registry, "_TRIED", set(registry._TRIED))

    def missing(module):
        def load():
            raise ImportError(f"No module named {module!r}", name=module)
        return load

    registry.load_builtin(BuiltinProperty("quantum", missing("pyscf"), "needs pyscf", extra="qm"))
    assert "mlip-props[qm]" in registry.unavailable_properties()["quantum"]
    with pytest.raises(registry.PropertyUnavailable, match="mlip-props\\[qm\\]"):
        registry.get_property("quantum")
    # a module of the core dependencies, or a typo inside a property module: raised, not hidden
    with pytest.raises(ImportError, match="scipyy"):
        registry.load_builtin(BuiltinProperty("typo", missing("scipyy"), "bug", extra="qm"))
    with pytest.raises(ImportError, match="pyscf"):
        registry.load_builtin(BuiltinProperty("core", missing("pyscf"), "no extra declared"))

    def buggy():
        raise NameError("name 'np' is not defined")

    with pytest.raises(NameError):
        registry.load_builtin(BuiltinProperty("buggy", buggy, "bug"))
    assert "typo" not in registry._UNAVAILABLE and "buggy" not in registry._REGISTRY


def test_every_builtin_property_registers_with_its_plan():
    from mlip_props.campaign.builtin import BUILTIN_PROPERTIES

    available = registry.available_properties()
    assert [e.name for e in BUILTIN_PROPERTIES if e.name not in available] == []
    assert registry.unavailable_properties() == {}
    assert available["vibrations"].plan.__name__ == "plan_vibrations"
    assert available["eos"].plan.__name__ == "plan_eos" and available["diatomic"].plan is None


@pytest.mark.parametrize("name, message", [
    ("../../x", "no path separators"),
    ("a/b", "no path separators"),
    ("..", "leading dot"),
    ("x" * 5000, "at most 120 characters"),
    ("  ", "must not be empty"),
])
def test_campaign_name_cannot_leave_the_working_folder(tmp_path, name, message):
    from mlip_props.campaign.schema import CampaignError, load_campaign

    c = tmp_path / "c.yaml"
    c.write_text(f"name: {json.dumps(name)}\npotential: emt\nstructures: [Cu]\nproperties: [energy]\n")
    with pytest.raises(CampaignError, match=message):
        load_campaign(c)


def test_default_database_stays_in_the_working_folder(tmp_path, monkeypatch):
    from mlip_props.campaign.runner import default_db_path
    from mlip_props.campaign.schema import Campaign

    monkeypatch.chdir(tmp_path)
    camp = Campaign(name="../../x", potential="emt", sources=[], properties=[], options={}, reference=[],
                    base_dir=tmp_path)
    assert Path(default_db_path(camp)).parent == tmp_path
