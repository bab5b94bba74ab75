"""Conductivity rows of a campaign: a committee potential's row keeps each member's kappa, their mean
and spread (the joint route analyses the members, not only the committee-mean potential), with the
numbers of the one-call function; the report's conductivity table shows kappa ± std, the mesh
convergence and the sum rules of every row; the shipped conductivity workflow validates."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("phono3py")

from mlip_props.campaign import build_report, load_campaign, run_campaign  # noqa: E402
from mlip_props.campaign.report.builder import RESULT_COLUMNS  # noqa: E402
from mlip_props.data import DATA_DIR, campaign_file  # noqa: E402
from mlip_props.potentials import load_potential  # noqa: E402
from mlip_props.properties.conductivity import ConductivityResult, thermal_conductivity  # noqa: E402
from mlip_props.structures import load_structure  # noqa: E402

from .conftest import rows_by_key, write_campaign  # noqa: E402

MODEL = DATA_DIR / "cu_committee.pt"
#: a 27-atom fcc supercell (3x3x3 primitive, widths 6.2 A > the 5 A cutoff), a coarse mesh: seconds
OPTIONS = {"supercell": 3, "mesh": 4, "convergence_mesh": False, "raw_kappa": False}


@pytest.fixture(scope="module")
def committee_row(tmp_path_factory, one_torch_thread):
    tmp = tmp_path_factory.mktemp("kappa_committee")
    path = write_campaign(tmp / "k.yaml", f"""
name: kappa-committee
potential: {MODEL}
structures:
  - name: Cu
properties:
  conductivity: {{supercell: 3, mesh: 4, convergence_mesh: false, raw_kappa: false}}
options: {{batch_size: 1}}
""")
    camp = load_campaign(path)
    summary = run_campaign(camp, str(tmp / "k.db"), progress=False)
    assert summary.n_done == 1 and summary.n_failed == 0
    (row,) = rows_by_key(tmp / "k.db").values()
    report = build_report(tmp / "k.db", tmp / "rep")
    return row["result"], report


def test_committee_row_keeps_members_mean_and_spread(committee_row):
    res, _ = committee_row
    assert res["n_members"] == 4
    members = np.array(res["kappa_average_W_mK_members"], dtype=float)  # (M, n_T)
    assert members.shape == (4, 1) and np.all(members > 0)
    # mean and population std over the members, from the members' own numbers
    np.testing.assert_allclose(res["kappa_average_W_mK_member_mean"], members.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(res["kappa_average_W_mK_std"], members.std(axis=0), rtol=1e-12)
    tensors = np.array(res["kappa_W_mK_members"], dtype=float)
    np.testing.assert_allclose(res["kappa_W_mK_std"], tensors.std(axis=0), rtol=1e-12, atol=1e-12)
    # members differ (a committee whose members disagree) and the spread is a real spread
    assert res["kappa_average_W_mK_std"][0] > 1e-3 * res["kappa_average_W_mK_member_mean"][0]


def test_committee_row_equals_the_one_call_function(committee_row, one_torch_thread):
    res, _ = committee_row
    direct = thermal_conductivity(load_potential(str(MODEL)), load_structure("Cu"), **OPTIONS)
    for key in ("kappa_average_W_mK", "kappa_average_W_mK_members", "kappa_average_W_mK_std",
                "kappa_average_W_mK_member_mean"):
        np.testing.assert_allclose(res[key], getattr(direct, key), rtol=1e-6, err_msg=key)


def test_report_table_shows_kappa_std_mesh_and_sum_rules(committee_row):
    res, report = committee_row
    md = report.markdown.read_text()
    section = md[md.index("Results: conductivity"):]
    header = next(line for line in section.splitlines() if line.startswith("|"))
    for col in ("kappa_average_W_mK", "mesh_change_rel", "converged", "sum_rule_kappa_change_rel",
                "fc2_sum_rule_violation_raw_eV_A2", "fc2_sum_rule_violation_enforced_eV_A2",
                "fc3_sum_rule_violation_raw_eV_A3", "fc3_sum_rule_violation_enforced_eV_A3"):
        assert col in header, col
    assert "4x4x4" in section and " ± " in section


def test_result_columns_are_result_fields():
    fields = set(ConductivityResult.__dataclass_fields__)
    assert set(RESULT_COLUMNS["conductivity"]) <= fields


def test_shipped_conductivity_workflow_validates():
    camp = load_campaign(campaign_file("conductivity_vs_experiment"), check_potential=False)
    assert [p.name for p in camp.properties] == ["conductivity"]
    assert "thermal_conductivity.csv" in " ".join(str(r) for r in camp.reference)
