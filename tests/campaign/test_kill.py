"""Crash safety: a campaign killed with SIGKILL at 5 random moments and restarted each time ends with
every row present exactly once and equal to an uninterrupted run."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlip_props.campaign.runner import run_campaign
from mlip_props.campaign.schema import load_campaign

from .conftest import key_counts, rows_by_key

N_KILLS = 5


def _campaign(tmp: Path) -> Path:
    names = "".join(f"  - name: {el}:fcc:a={3.5 + 0.01 * i:.2f}\n" for i in range(8) for el in ("Cu", "Ag", "Ni"))
    p = tmp / "kill.yaml"
    p.write_text(f"name: kill\npotential: emt\nstructures:\n{names}properties:\n"
                 "  energy: {relax: true, relax_cell: true, fmax: 0.002}\n  relax: {fmax: 0.01}\n"
                 "options:\n  batch_size: 2\n")
    return p


def _cmd(camp: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "mlip_props.cli", "run", str(camp), "--db", str(db), "-q"]


def _n_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return sum(key_counts(db).values())
    except Exception:  # table not created yet / locked
        return 0


def test_sigkill_at_random_moments_then_resume(tmp_path):
    camp = _campaign(tmp_path)
    ref_db, db = tmp_path / "ref.db", tmp_path / "killed.db"
    # the uninterrupted reference runs in this process (same code path as the CLI)
    s = run_campaign(load_campaign(camp), str(ref_db), progress=False)
    assert s.n_done == 48
    ref = rows_by_key(ref_db)

    rng = random.Random(12345)
    kills = 0
    for _ in range(N_KILLS):
        before = _n_rows(db)
        if before == len(ref):
            break
        proc = subprocess.Popen(_cmd(camp, db), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        # wait until this run has committed something, then kill it a random moment later
        while proc.poll() is None and _n_rows(db) <= before and time.time() - t0 < 120:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.25))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        counts = key_counts(db)
        assert all(c == 1 for c in counts.values()), "duplicate row after a kill"
    assert kills >= 3, "the campaign finished too fast to be killed"
    assert _n_rows(db) < len(ref)

    r = subprocess.run(_cmd(camp, db), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    counts = key_counts(db)
    assert set(counts) == set(ref) and set(counts.values()) == {1}
    got = rows_by_key(db)
    for k, row in ref.items():
        assert got[k]["status"] == row["status"] == "done"
        assert got[k]["result"] == row["result"], row["label"]
