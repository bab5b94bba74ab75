"""The transition property: EMT Cu crossing against an independent ASE enthalpy computation, the
committee spread against per-member crossings computed independently with ASE, and bad input."""
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from ase.units import GPa
from scipy.optimize import brentq

from mlip_props import load_potential
from mlip_props.backend import evaluate
from mlip_props.data import DATA_DIR
from mlip_props.properties.phase_diagram import pt_phase_diagram
from mlip_props.properties.transitions import transition

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small tensors: a second thread only contends

A_CU = 3.61
FCC = bulk("Cu", "fcc", a=A_CU)
HCP = bulk("Cu", "hcp", a=A_CU / np.sqrt(2), c=A_CU / np.sqrt(2) * 1.633)
#: 1e-3 GPa of residual stress: volumes within ~1e-5 of the target pressure's, enthalpies within
#: ~1e-9 eV/atom (second order), far below what moves a crossing; 1e-4 GPa (the default) takes
#: several times more FIRE steps
RELAX = {"smax_GPa": 1e-3}


def _ase_hv(atoms, p_gpa, calc):
    """(H, V) per atom (eV, A^3) after an ASE cell relaxation at p_gpa (FrechetCellFilter + BFGS)."""
    at = atoms.copy()
    at.calc = calc
    BFGS(FrechetCellFilter(at, scalar_pressure=p_gpa * GPa), logfile=None).run(fmax=1e-5, steps=3000)
    n = len(at)
    return (at.get_potential_energy() + p_gpa * GPa * at.get_volume()) / n, at.get_volume() / n


def _hermite_root(p0, p1, d0, d1, s0, s1):
    """Root in [p0, p1] of the cubic with values d0, d1 and slopes s0, s1 at p0, p1 (numpy.roots)."""
    h = p1 - p0
    # d(t) = h00 d0 + h10 h s0 + h01 d1 + h11 h s1, t in [0, 1]; as a cubic in t:
    c3 = 2 * d0 + h * s0 - 2 * d1 + h * s1
    c2 = -3 * d0 - 2 * h * s0 + 3 * d1 - h * s1
    c1 = h * s0
    c0 = d0
    ts = [t.real for t in np.roots([c3, c2, c1, c0]) if abs(t.imag) < 1e-9 and -1e-9 <= t.real <= 1 + 1e-9]
    return p0 + h * ts[0]


def _independent_crossing(low, high, pressures, calc):
    """First sign change of H_high - H_low on the grid, refined by the cubic Hermite root with slopes
    dH/dP = V (eV/atom per GPa), from ASE relaxations; None without a sign change."""
    hv_lo = [_ase_hv(low, p, calc) for p in pressures]
    hv_hi = [_ase_hv(high, p, calc) for p in pressures]
    d = np.array([b[0] - a[0] for a, b in zip(hv_lo, hv_hi)])
    s = np.array([(b[1] - a[1]) * GPa for a, b in zip(hv_lo, hv_hi)])
    for k in range(len(pressures) - 1):
        if np.sign(d[k]) != np.sign(d[k + 1]):
            return _hermite_root(pressures[k], pressures[k + 1], d[k], d[k + 1], s[k], s[k + 1])
    return None


def test_emt_cu_crossing_matches_ase_and_pt_phase_diagram():
    grid = [30.0, 35.0, 40.0]
    r = transition(load_potential("emt"), FCC, polymorphs=["Cu:hcp", "Cu:bcc"], pressures_GPa=grid, relaxation=RELAX)
    assert r.relax_converged and r.space_group_changed == []
    assert r.phases == ["input (space group 225)", "Cu:hcp", "Cu:bcc"]
    # EMT Cu: hcp (an EMT artefact) below fcc at low pressure, fcc above ~35 GPa; bcc never lowest
    assert not r.input_phase_lowest_at_first_pressure
    assert len(r.transitions_T0) == 1
    assert (r.low_pressure_phase, r.high_pressure_phase) == ("Cu:hcp", "input (space group 225)")
    assert np.all(r.enthalpy_eV_per_atom[2] > r.enthalpy_eV_per_atom[:2].max(axis=0))
    # independent: ASE relaxations on the same grid, the cubic Hermite root written here
    p_ind = _independent_crossing(HCP, FCC, grid, EMT())
    assert r.transition_pressure_GPa == pytest.approx(p_ind, abs=0.02)
    # and the true crossing of the ASE enthalpies (brentq on relaxations at each trial pressure):
    # the spline on a 5 GPa grid is within 0.3 GPa of it (Delta V fcc-hcp is only ~0.01 A^3/atom)
    p_true = brentq(lambda p: _ase_hv(FCC, p, EMT())[0] - _ase_hv(HCP, p, EMT())[0], 30.0, 40.0, xtol=0.01)
    assert r.transition_pressure_GPa == pytest.approx(p_true, abs=0.3)
    # the same crossing as pt_phase_diagram's static analysis on the same grid
    pd = pt_phase_diagram(load_potential("emt"), {"fcc": FCC, "hcp": HCP}, pressures_GPa=grid, relaxation=RELAX)
    assert pd.transitions_T0[0]["pressure_GPa"] == pytest.approx(r.transition_pressure_GPa, abs=1e-4)


class _Member(Calculator):
    """ASE calculator of one committee member, written here (mlip_props.backend.evaluate per call)."""

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, potential, m):
        super().__init__()
        self.potential, self.m = potential, m

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        res = evaluate(self.potential, [self.atoms], ("energy", "forces", "stress"))
        self.results = {"energy": float(res.energies_eV[0, self.m]), "forces": np.asarray(res.forces_eV_A[0][self.m]),
                        "stress": np.asarray(res.stress_eV_A3[0, self.m])}


def test_committee_spread_equals_spread_of_independent_member_crossings():
    pot = load_potential(str(DATA_DIR / "cu_committee.pt"))
    grid = [0.0, 12.0]  # one interval: the test's cubic Hermite root and the property's use the same data
    r = transition(pot, FCC, polymorphs=["Cu:hcp"], pressures_GPa=grid, relaxation=RELAX)  # relaxed per member
    assert r.n_members == 4 and r.committee_relaxation == "member" and r.relax_converged
    ind = [_independent_crossing(HCP, FCC, grid, _Member(pot, m)) for m in range(4)]
    assert [x is None for x in r.transition_pressure_GPa_members] == [x is None for x in ind]
    got = [x for x in ind if x is not None]
    assert len(got) >= 2  # a spread to compare
    assert np.allclose([x for x in r.transition_pressure_GPa_members if x is not None], got, atol=0.02)
    assert r.n_members_with_transition == len(got)
    assert r.transition_pressure_GPa == pytest.approx(np.mean(got), abs=0.02)
    assert r.transition_pressure_GPa_std == pytest.approx(np.std(got), abs=0.02)
    assert r.transition_pressure_GPa_std > 0.1
    d = r.to_dict()
    assert d["transition_pressure_GPa_std"] == r.transition_pressure_GPa_std
    # the cheap route: members read at the mean-relaxed cells, far from their own equilibrium here
    q = transition(pot, FCC, polymorphs=["Cu:hcp"], pressures_GPa=grid, relaxation=RELAX, committee_relaxation="mean")
    per = [x for x in q.transition_pressure_GPa_members if x is not None]
    assert q.transition_pressure_GPa_std == pytest.approx(np.std(per), rel=1e-12)
    assert q.member_residual_pressure_GPa_max > 0.5
    assert q.transition_pressure_GPa_mean_potential == pytest.approx(r.transition_pressure_GPa_mean_potential,
                                                                     abs=1e-6)


def test_bad_input_names_the_structure():
    with pytest.raises(ValueError, match="structure 0: no high-pressure polymorph of Cu"):
        transition(load_potential("emt"), FCC, pressures_GPa=[0, 5])
    with pytest.raises(ValueError, match="at least two distinct pressures"):
        transition(load_potential("emt"), FCC, polymorphs=["Cu:hcp"], pressures_GPa=[5])
    with pytest.raises(ValueError, match="none of the polymorphs"):
        transition(load_potential("emt"), FCC, polymorphs=["Si-betaSn"], pressures_GPa=[0, 5])
    with pytest.raises(ValueError, match="committee_relaxation"):
        transition(load_potential("emt"), FCC, polymorphs=["Cu:hcp"], committee_relaxation="both")
