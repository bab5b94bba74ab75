"""The report's cross-check between properties: the EOS bulk modulus against the Reuss bulk modulus
of the elastic tensor (the same curvature of E(V) at V0, computed two ways)."""
import json

import numpy as np
import pytest

from mlip_props.campaign.report.consistency import bulk_modulus_cross_checks, reuss_bulk_modulus_GPa

from .conftest import run_and_report, write_campaign


def _hydrostatic_bulk_modulus(c: np.ndarray, p_GPa: float = 1.0) -> float:
    """p / (-dV/V) for a hydrostatic stress -p (Voigt strains from solving C eps = sigma)."""
    eps = np.linalg.solve(c, -p_GPa * np.array([1.0, 1, 1, 0, 0, 0]))
    return p_GPa / -eps[:3].sum()


def test_reuss_bulk_modulus_is_the_hydrostatic_response():
    cubic = np.zeros((6, 6))
    cubic[:3, :3] = 115.0
    cubic[np.arange(3), np.arange(3)] = 172.0
    cubic[np.arange(3, 6), np.arange(3, 6)] = 90.0
    assert reuss_bulk_modulus_GPa(cubic) == pytest.approx((172.0 + 2 * 115.0) / 3, rel=1e-12)
    hexagonal = np.array([[59.4, 25.6, 21.4, 0, 0, 0], [25.6, 59.4, 21.4, 0, 0, 0], [21.4, 21.4, 61.6, 0, 0, 0],
                          [0, 0, 0, 16.4, 0, 0], [0, 0, 0, 0, 16.4, 0], [0, 0, 0, 0, 0, 16.9]])  # Mg-like
    b = reuss_bulk_modulus_GPa(hexagonal)
    assert b == pytest.approx(_hydrostatic_bulk_modulus(hexagonal), rel=1e-10)
    voigt = (hexagonal[:3, :3].trace() + 2 * (hexagonal[0, 1] + hexagonal[0, 2] + hexagonal[1, 2])) / 9
    assert b < voigt  # Reuss <= Voigt, strictly for an anisotropic crystal
    assert reuss_bulk_modulus_GPa(np.zeros((6, 6))) is None and reuss_bulk_modulus_GPa([[1.0]]) is None
    assert reuss_bulk_modulus_GPa(np.full((6, 6), np.nan)) is None


def test_cross_check_flags_a_gap_beyond_the_tolerance():
    c = np.diag([172.0, 172.0, 172.0, 90.0, 90.0, 90.0])
    c[:3, :3] += 115.0 * (1 - np.eye(3))
    preds = {"Cu": {"eos": [{"params": {}, "result": {"bulk_modulus_GPa": 140.0}}],
                    "elastic": [{"params": {}, "result": {"C_GPa": c.tolist()}}]},
             "X": {"eos": [{"params": {}, "result": {"bulk_modulus_GPa": 100.0}}],
                   "elastic": [{"params": {}, "result": {"C_GPa": (c * 1.5).tolist()}}]},
             "only_eos": {"eos": [{"params": {}, "result": {"bulk_modulus_GPa": 100.0}}]}}
    checks = {r["label"]: r for r in bulk_modulus_cross_checks(preds)}
    assert set(checks) == {"Cu", "X"}
    assert checks["Cu"]["B_elastic_reuss_GPa"] == pytest.approx(134.0)
    assert checks["Cu"]["relative_difference_pct"] == pytest.approx(100 * (134.0 / 140.0 - 1))
    assert checks["Cu"]["consistent"] and not checks["X"]["consistent"]  # +4.3 % vs +101 %


def test_emt_campaign_bulk_moduli_agree_in_report(tmp_path):
    """EMT Cu: the EOS B0 and (C11 + 2 C12)/3 of its elastic tensor, both from the database rows,
    agree within 3 %, and the report's section says so with those numbers."""
    from mlip_props.campaign.schema import load_campaign

    path = write_campaign(tmp_path / "c.yaml", "name: xc\npotential: emt\nstructures:\n  - names: [Cu]\n"
                          "properties:\n  eos: {}\n  elastic: {}\n")
    _, rep, eos_row = run_and_report(load_campaign(path), tmp_path, "eos")
    data = json.loads(rep.json.read_text())
    import ase.db

    with ase.db.connect(str(tmp_path / "results.db"), use_lock_file=False) as db:
        c = np.asarray(next(db.select(property="elastic")).data["result"]["C_GPa"])
    b_eos = eos_row.data["result"]["bulk_modulus_GPa"]
    (check,) = data["cross_checks"]["bulk_modulus"]
    assert check["label"] == "Cu" and check["consistent"]
    assert check["B_eos_GPa"] == pytest.approx(b_eos)
    assert check["B_elastic_reuss_GPa"] == pytest.approx((c[0, 0] + 2 * c[0, 1]) / 3, rel=1e-6)
    assert abs(check["B_elastic_reuss_GPa"] / b_eos - 1) < 0.03
    assert "Cross-checks between properties" in rep.markdown.read_text()
