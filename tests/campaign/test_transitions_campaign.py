"""The transition property in a campaign: the committee row stores every member's crossing with
their mean and std, and the report's transition section shows the database's numbers; the
experimental onset is looked up by the row's material and transition."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlip_props.campaign.reference import load_reference
from mlip_props.campaign.report.transitions import transition_rows
from mlip_props.campaign.schema import parse_campaign
from mlip_props.data import DATA_DIR

from .conftest import run_and_report

CAMPAIGN = f"""
name: cu-transition
potential: {DATA_DIR / "cu_committee.pt"}
structures:
  - name: Cu
properties:
  transition: {{polymorphs: ["Cu:hcp"], pressures_GPa: [0, 12], committee_relaxation: mean,
               relaxation: {{smax_GPa: 0.001}}}}
reference: [phase_transitions.csv]
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_torch_thread):
    tmp = tmp_path_factory.mktemp("transition")
    camp = parse_campaign(CAMPAIGN, base_dir=tmp)
    return run_and_report(camp, tmp, "transition")


def test_committee_row_stores_member_crossings(run):
    summary, _, row = run
    assert summary.n_done == 1 and summary.n_failed == 0
    res = row.data["result"]
    assert res["n_members"] == 4 and res["committee_relaxation"] == "mean"
    per = [x for x in res["transition_pressure_GPa_members"] if x is not None]
    assert len(per) >= 2 and res["n_members_with_transition"] == len(per)
    assert res["transition_pressure_GPa"] == pytest.approx(np.mean(per), rel=1e-12)
    assert res["transition_pressure_GPa_std"] == pytest.approx(np.std(per), rel=1e-12)
    assert res["transition_pressure_GPa_std"] > 0


def test_report_section_shows_the_database_numbers(run):
    _, rep, row = run
    res = row.data["result"]
    data = json.loads(rep.json.read_text())
    (shown,) = data["transitions"]
    assert shown["predicted_GPa"] == res["transition_pressure_GPa"]
    assert shown["predicted_std_GPa"] == res["transition_pressure_GPa_std"]
    assert shown["experimental"] is None  # no Cu row in phase_transitions.csv
    md = rep.markdown.read_text()
    assert "Pressure-induced transitions" in md and "hysteresis" in md
    assert f"{shown['n_members_with_transition']}/4" in md and " ± " in md
    assert any(p.name == "transitions_enthalpy.png" and p.is_file() for p in rep.figures)


def test_experimental_onset_looked_up_by_material_and_transition():
    result = {"material": "Si", "transition": "diamond -> beta-Sn (Si-II)", "transition_pressure_GPa": 9.0,
              "phases": ["Si-diamond", "Si-betaSn"], "pressures_GPa": [0.0, 20.0], "low_pressure_phase": "Si-diamond",
              "high_pressure_phase": "Si-betaSn", "enthalpy_eV_per_atom": [[0.0, 0.0], [0.1, -0.1]],
              "relax_converged": True, "space_group_changed": [], "input_phase_lowest_at_first_pressure": True}
    done = pd.DataFrame({"property": ["transition"], "label": ["Si-diamond"], "_result": [result]})
    (row,) = transition_rows(done, [load_reference("phase_transitions")])
    assert row["experimental"]["value"] == 11.7 and row["experimental"]["unit"] == "GPa"
    assert "10.3-12.6" in row["experimental"]["range"] and "Olijnyk" in row["experimental"]["source"]
    assert row["checks"] == []
