"""Files shipped inside the package, and the one place that finds them.

* ``reference/*.csv``: experimental reference tables with their sources (read and checked by
  :func:`mlip_props.campaign.reference.load_reference`);
* ``workflows/*.yaml``: the shipped campaign files (``mlip-props run fcc_metals`` finds one by
  name; ``mlip-props demo`` runs ``fcc_metals``);
* ``cu_committee.pt``: a committee of 4 networks fitted to EMT copper.

These live under the installed package, so they are there after ``pip install`` of the wheel as
well as in a source checkout. This module imports nothing from the rest of mlip_props, so every
layer may use it.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR", "reference_data_dir", "reference_file", "reference_names", "campaigns_dir",
           "campaign_names", "campaign_file"]

#: folder of the shipped data files
DATA_DIR = Path(__file__).resolve().parent

_REFERENCE_ENV = "MLIP_PROPS_REFERENCE_DATA"
_CAMPAIGN_SUFFIXES = (".yaml", ".yml")


def reference_data_dir() -> Path:
    """Folder of the reference CSV files: the shipped ``reference/`` folder, or the folder named
    by the environment variable ``$MLIP_PROPS_REFERENCE_DATA`` when it is set."""
    env = os.environ.get(_REFERENCE_ENV)
    return Path(env) if env else DATA_DIR / "reference"


def reference_names() -> list[str]:
    """Names (file stems) of the reference tables in :func:`reference_data_dir`, sorted."""
    return sorted(p.stem for p in reference_data_dir().glob("*.csv"))


def reference_file(name: str | os.PathLike) -> Path:
    """Path of a reference table given by name (``"elements_fcc"`` or ``"elements_fcc.csv"``),
    looked up in :func:`reference_data_dir`. ``FileNotFoundError`` lists the tables there."""
    stem = Path(name).name
    for cand in (reference_data_dir() / stem, reference_data_dir() / f"{stem}.csv"):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"no reference table {str(name)!r} in {reference_data_dir()} "
                            f"(tables: {', '.join(reference_names()) or 'none'})")


def campaigns_dir() -> Path:
    """Folder of the shipped campaign files."""
    return DATA_DIR / "workflows"


def campaign_names() -> list[str]:
    """Names (file stems) of the shipped campaign files, sorted."""
    return sorted(p.stem for p in campaigns_dir().iterdir() if p.suffix in _CAMPAIGN_SUFFIXES)


def campaign_file(name: str | os.PathLike) -> Path:
    """Path of a shipped campaign file given by name: ``"fcc_metals"``, ``"fcc_metals.yaml"`` or
    the campaign's hyphenated name ``"fcc-metals"``. ``FileNotFoundError`` lists the shipped ones."""
    stem = str(name)
    if Path(stem).name != stem:
        raise FileNotFoundError(f"{stem!r} is a path, not a shipped campaign name")
    for base in dict.fromkeys((stem, stem.replace("-", "_"))):
        for cand in [campaigns_dir() / base] + [campaigns_dir() / f"{base}{s}" for s in _CAMPAIGN_SUFFIXES]:
            if cand.is_file() and cand.suffix in _CAMPAIGN_SUFFIXES:
                return cand
    raise FileNotFoundError(f"no shipped campaign {stem!r} (shipped: {', '.join(campaign_names())})")
