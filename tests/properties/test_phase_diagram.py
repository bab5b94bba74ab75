"""Composition hull against an independent pymatgen computation from ASE energies, and the
T = 0 transition pressure of two polymorphs against an independent ASE enthalpy scan."""
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from ase.units import GPa

from mlip_props import load_potential
from mlip_props.properties.phase_diagram import convex_hull, pt_phase_diagram


def _cu_au_structures():
    a = 3.9
    cu3au = bulk("Cu", "fcc", a=a, cubic=True)
    cu3au.symbols[0] = "Au"  # L1_2
    cuau3 = bulk("Au", "fcc", a=a, cubic=True)
    cuau3.symbols[0] = "Cu"  # L1_2
    cuau = bulk("Cu", "fcc", a=a, cubic=True)
    cuau.symbols[[2, 3]] = "Au"  # L1_0: alternating (001) planes
    return [bulk("Cu", "fcc", a=3.6), bulk("Au", "fcc", a=4.08), cu3au, cuau, cuau3]


def test_cu_au_hull_matches_independent_pymatgen():
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    structs = _cu_au_structures()
    res = convex_hull(load_potential("emt"), structs)
    entries = []
    for s in structs:
        at = s.copy()
        at.calc = EMT()
        BFGS(FrechetCellFilter(at), logfile=None).run(fmax=1e-5, steps=1000)
        entries.append(PDEntry(Composition(at.get_chemical_formula()), at.get_potential_energy()))
    pd = PhaseDiagram(entries)
    ef = [pd.get_form_energy_per_atom(e) for e in entries]
    eah = [pd.get_e_above_hull(e) for e in entries]
    assert all(res.relax_converged)
    assert res.formulas == ["Cu", "Au", "Cu3Au", "CuAu", "CuAu3"]
    assert np.allclose(res.formation_energies_eV_per_atom, ef, atol=2e-4)
    assert np.allclose(res.e_above_hull_eV_per_atom, eah, atol=2e-4)
    assert res.formation_energies_eV_per_atom[2] < 0  # Cu3Au is an ordered compound
    assert set(res.stable_formulas) >= {"Cu", "Au"}


def _ase_enthalpy(atoms, p_gpa):
    at = atoms.copy()
    at.calc = EMT()
    BFGS(FrechetCellFilter(at, scalar_pressure=p_gpa * GPa), logfile=None).run(fmax=1e-4, steps=2000)
    return (at.get_potential_energy() + p_gpa * GPa * at.get_volume()) / len(at)


def test_static_transition_pressure_matches_independent_scan(tmp_path):
    a = 4.09
    fcc = bulk("Ag", "fcc", a=a)
    hcp = bulk("Ag", "hcp", a=a / np.sqrt(2), c=a / np.sqrt(2) * 1.633)
    res = pt_phase_diagram(load_potential("emt"), {"fcc": fcc, "hcp": hcp}, pressures_GPa=[6.0, 8.0, 10.0, 12.0],
                           relaxation={"smax_GPa": 1e-3})
    assert res.relax_converged
    assert len(res.transitions_T0) == 1
    t = res.transitions_T0[0]
    assert (t["low_pressure_phase"], t["high_pressure_phase"]) == ("fcc", "hcp")
    # independent: ASE relaxations on a 0.5 GPa grid, linear interpolation of the sign change
    ps = np.arange(8.5, 10.01, 0.5)
    dh = np.array([_ase_enthalpy(hcp, p) - _ase_enthalpy(fcc, p) for p in ps])
    k = int(np.nonzero(np.diff(np.sign(dh)))[0][0])
    p_ref = ps[k] + 0.5 * dh[k] / (dh[k] - dh[k + 1])
    assert t["pressure_GPa"] == pytest.approx(p_ref, abs=0.1)
    res.plot(tmp_path / "pt.png")
    assert (tmp_path / "pt.png").is_file()


def test_qha_pt_diagram_lj_fcc_hcp(tmp_path):
    lj = load_potential("lj:epsilon=0.0104,sigma=3.4")
    a = 5.26
    fcc = bulk("Ar", "fcc", a=a)
    hcp = bulk("Ar", "hcp", a=a / np.sqrt(2), c=a / np.sqrt(2) * 1.633)
    res = pt_phase_diagram(lj, {"fcc": fcc, "hcp": hcp}, pressures_GPa=np.linspace(0.0, 2.0, 5),
                           temperatures_K=np.arange(0, 61, 5.0), mesh=[8, 8, 8], relaxation={"smax_GPa": 1e-3})
    assert res.gibbs_eV_per_atom.shape[:2] == (2, 5)
    assert np.isfinite(res.gibbs_eV_per_atom[:, :, 0]).all()
    # G(T=0, P) exceeds the static enthalpy by the zero-point energy (positive)
    assert np.all(res.gibbs_eV_per_atom[:, :, 0] > res.static_enthalpy_eV_per_atom)
    res.plot(tmp_path / "pt.png")
