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
    names = "".join(f"  - name: {el}:fcc:a={3.5 + 0.01 * i:.2f}\n" for i in range(8) for el in ("Cu", "Ag"))
    p = tmp / "kill.yaml"
    p.write_text(f"name: kill\npotential: emt\nstructures:\n{names}properties:\n"
                 "  energy: {relax: true, relax_cell: true, fmax: 0.01}\n  relax: {fmax: 0.01}\n"
                 "options:\n  batch_size: 2\n")
    return p


def _cmd(camp: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "mlip_props.cli", "run", str(camp), "--db", str(db), "-q"]


# A pre-imported parent that forks one `mlip-props run` child per request: each child is a real
# separate process (killed with SIGKILL below) without paying the torch import each time. The
# parent only imports; it never runs torch ops before forking.
_FORK_SERVER = r"""
import os, sys
import mlip_props.cli, mlip_props.campaign.runner, mlip_props.campaign.builtin, mlip_props.properties.relax
for line in sys.stdin:
    argv = line.split()
    pid = os.fork()
    if pid == 0:
        code = mlip_props.cli.main(argv)
        os._exit(code)
    print(pid, flush=True)
    os.waitpid(pid, 0)
    print("exited", flush=True)
"""


class ForkServer:
    def __init__(self) -> None:
        self.p = subprocess.Popen([sys.executable, "-c", _FORK_SERVER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

    def start(self, argv: list[str]) -> int:
        self.p.stdin.write(" ".join(argv) + "\n")
        self.p.stdin.flush()
        return int(self.p.stdout.readline())

    def wait(self) -> None:
        assert self.p.stdout.readline().strip() == "exited"

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait(30)


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
    assert s.n_done == 32
    ref = rows_by_key(ref_db)

    rng = random.Random(12345)
    kills = 0
    server = ForkServer()
    try:
        for _ in range(N_KILLS):
            before = _n_rows(db)
            if before == len(ref):
                break
            pid = server.start(["run", str(camp), "--db", str(db), "-q"])
            t0 = time.time()
            # wait until this run has committed something, then kill it a random moment later
            while _n_rows(db) <= before and time.time() - t0 < 120:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.25))
            try:
                os.kill(pid, signal.SIGKILL)
                kills += 1
            except ProcessLookupError:  # it had finished
                pass
            server.wait()
            counts = key_counts(db)
            assert all(c == 1 for c in counts.values()), "duplicate row after a kill"
    finally:
        server.close()
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
