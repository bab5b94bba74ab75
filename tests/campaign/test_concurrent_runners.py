"""Two `mlip-props run` processes started together on one database split the rows between them."""
import re
import subprocess
import sys

from .conftest import key_counts

N = 24


def test_two_runners_share_the_rows(tmp_path):
    names = "".join(f"  - name: Cu:fcc:a={3.5 + 0.005 * i:.3f}\n" for i in range(N))
    camp = tmp_path / "share.yaml"
    camp.write_text(f"name: share\npotential: emt\nstructures:\n{names}properties:\n"
                    "  relax: {fmax: 0.001, relax_cell: true}\noptions:\n  batch_size: 1\n")
    db = tmp_path / "share.db"
    cmd = [sys.executable, "-m", "mlip_props.cli", "run", str(camp), "--db", str(db)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    computed = [int(re.search(r"(\d+) computed", o[0]).group(1)) for o in outs]
    counts = key_counts(db)
    assert len(counts) == N and set(counts.values()) == {1}
    # no row computed twice: the two runs together computed each row once
    assert sum(computed) == N, computed
    print("rows computed by each runner:", computed)
