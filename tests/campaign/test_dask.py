"""Dask scale-out: a 2-worker LocalCluster gives the same rows as the in-process runner, and the
work of a worker killed mid-run is retried."""
from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write

from mlip_props.campaign.runner import run_campaign
from mlip_props.campaign.schema import load_campaign

from .conftest import key_counts, rows_by_key

distributed = pytest.importorskip("distributed")


def _frames(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.55 + 0.002 * (k % 50), cubic=True)
        a.rattle(0.05, seed=int(rng.integers(1 << 30)))
        out.append(a)
    return out


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    cl = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cl)
    yield client
    client.close()
    cl.close()


def test_200_structures_inprocess_equals_dask(tmp_path, cluster):
    write(tmp_path / "many.extxyz", _frames(200))
    (tmp_path / "c.yaml").write_text(
        "name: many\npotential: 'lj:epsilon=0.4,sigma=2.3'\nstructures:\n  - file: many.extxyz\n"
        "properties:\n  energy: {}\noptions:\n  batch_size: 25\n")
    camp = load_campaign(tmp_path / "c.yaml")
    s1 = run_campaign(camp, str(tmp_path / "inproc.db"), progress=False)
    s2 = run_campaign(camp, str(tmp_path / "dask.db"), scheduler=cluster, progress=False)
    assert s1.n_done == s2.n_done == 200 and s1.n_failed == s2.n_failed == 0
    a, b = rows_by_key(tmp_path / "inproc.db"), rows_by_key(tmp_path / "dask.db")
    assert set(a) == set(b) and len(a) == 200
    for k in a:
        assert a[k]["result"] == b[k]["result"], a[k]["label"]  # identical, not merely close
    e = np.array([a[k]["result"]["energy_eV_per_atom"] for k in a])
    assert np.ptp(e) > 1e-3  # the structures really differ


@pytest.mark.slow
def test_dead_worker_work_is_retried(tmp_path, cluster):
    names = "".join(f"  - name: {el}:fcc:a={3.4 + 0.02 * i:.2f}\n" for i in range(6) for el in ("Cu", "Ni"))
    (tmp_path / "c.yaml").write_text(
        f"name: retry\npotential: emt\nstructures:\n{names}properties:\n"
        "  energy: {relax: true, relax_cell: true, fmax: 0.001}\noptions:\n  batch_size: 2\n")
    camp = load_campaign(tmp_path / "c.yaml")
    ref = run_campaign(camp, str(tmp_path / "ref.db"), progress=False)
    pids = list(cluster.run(os.getpid).values())
    db = tmp_path / "dask.db"
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("s", run_campaign(camp, str(db), scheduler=cluster, progress=False)))
    th.start()
    t0 = time.time()
    while time.time() - t0 < 60 and not (db.exists() and sum(key_counts(db).values()) >= 2):
        time.sleep(0.02)
    os.kill(pids[0], signal.SIGKILL)
    th.join(120)
    assert not th.is_alive()
    s = out["s"]
    assert s.n_lost == 0 and s.n_done == ref.n_done == 12
    assert set(key_counts(db).values()) == {1}
    a, b = rows_by_key(tmp_path / "ref.db"), rows_by_key(db)
    assert set(a) == set(b)
    for k in a:
        assert a[k]["result"] == b[k]["result"]
    cluster.wait_for_workers(2, timeout=60)
