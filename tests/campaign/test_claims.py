"""Runners sharing one database claim rows before computing them; a dead runner's claim expires."""
import time

from mlip_props.campaign.database import ResultsDB
from mlip_props.campaign.runner import plan_work, run_campaign
from mlip_props.campaign.schema import load_campaign
from mlip_props.campaign.sources import expand_sources
from mlip_props.campaign.runner import resolve_potential_spec, potential_identity

CAMPAIGN = """\
name: claims
potential: emt
structures:
  - names: [Cu, Ag, Au, Ni, Pd, Pt]
properties: [energy]
options: {batch_size: 2, claim_ttl_s: 600}
"""


def _campaign(tmp_path):
    """The campaign of CAMPAIGN (written to a file and loaded) and the path of its database."""
    c = tmp_path / "c.yaml"
    c.write_text(CAMPAIGN)
    return load_campaign(c), tmp_path / "r.db"


def _keys(camp):
    _, pot_hash = potential_identity(resolve_potential_spec(camp.potential, camp.base_dir))
    return [w.key for w in plan_work(camp, expand_sources(camp), pot_hash)]


def test_rows_claimed_by_another_runner_are_left_to_it(tmp_path):
    camp, db = _campaign(tmp_path)
    keys = _keys(camp)
    other = ResultsDB(db)
    assert other.claim(keys[:2], "other-runner", ttl_s=600) == keys[:2]
    s = run_campaign(camp, str(db), progress=False)
    assert s.n_done == 4  # the other runner's two rows are not computed twice
    assert ResultsDB(db).keys() == set(keys[2:])
    # the other runner's claim stands; a third claimant gets nothing already written or claimed
    assert ResultsDB(db).claim(keys, "third", ttl_s=600) == []


def test_claim_of_a_killed_runner_expires(tmp_path):
    camp, db = _campaign(tmp_path)
    keys = _keys(camp)
    ResultsDB(db).claim(keys[:2], "killed-runner", ttl_s=0.01)
    time.sleep(0.05)
    s = run_campaign(camp, str(db), progress=False)
    assert s.n_done == 6 and ResultsDB(db).keys() == set(keys)


def test_own_claims_are_released_after_writing(tmp_path):
    camp, db = _campaign(tmp_path)
    run_campaign(camp, str(db), progress=False)
    import sqlite3

    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM mlip_props_claims").fetchone()[0] == 0


def test_claim_of_a_dead_process_on_this_host_is_void_at_once(tmp_path):
    import socket
    import subprocess
    import sys

    camp, db = _campaign(tmp_path)
    keys = _keys(camp)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = f"{socket.gethostname()}:{int(dead.stdout)}:0"
    ResultsDB(db).claim(keys[:2], owner, ttl_s=600)  # the process has exited: its claim holds nothing
    s = run_campaign(camp, str(db), progress=False)
    assert s.n_done == 6
