"""Rows computed through the campaign's joint route state the precision their potential computed in."""
from mlip_props.campaign.database import ResultsDB
from mlip_props.campaign.runner import run_campaign
from mlip_props.campaign.schema import parse_campaign

CAMPAIGN = """
name: precision
potential: emt
structures:
  - names: [Cu]
properties:
  eos: {}
  elastic: {}
"""


def test_joint_rows_record_precision(tmp_path):
    summary = run_campaign(parse_campaign(CAMPAIGN, base_dir=tmp_path), str(tmp_path / "r.db"), progress=False)
    df = ResultsDB(summary.db).to_dataframe()
    assert sorted(df["property"]) == ["elastic", "eos"]
    assert list(df["precision"]) == ["float64", "float64"]  # an oracle computes in double precision
