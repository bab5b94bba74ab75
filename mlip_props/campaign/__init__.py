"""Campaigns: many structures x properties, a results database, resume, Dask scale-out, reports.

>>> from mlip_props.campaign import load_campaign, run_campaign, build_report, to_dataframe
>>> camp = load_campaign("my_campaign.yaml")                    # validated, errors name the line
>>> summary = run_campaign(camp, "results.db")                  # resumable; scheduler="tcp://..."
>>> df = to_dataframe("results.db")                             # pandas, one row per result
>>> build_report("results.db", "report/")                       # Markdown + HTML + PNG vs experiment

See docs/campaigns.md.
"""
from .database import ResultsDB, to_dataframe
from .registry import available_properties, get_property, register_property, unavailable_properties
from .report import build_report
from .runner import RunSummary, run_campaign
from .schema import Campaign, CampaignError, load_campaign, parse_campaign

__all__ = [
    "Campaign", "CampaignError", "load_campaign", "parse_campaign", "run_campaign", "RunSummary", "ResultsDB",
    "to_dataframe", "build_report", "register_property", "get_property", "available_properties",
    "unavailable_properties",
]
