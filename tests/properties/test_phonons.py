"""Phonons: against an independent phonopy + ASE EMT calculation, route (a) vs route (b),
acoustic-sum-rule checks, imaginary modes, phonopy files."""
import numpy as np
import pytest
from ase.build import bulk

from mlip_props import load_potential
from mlip_props.backend import Potential
from mlip_props.properties.phonons import asr_violation, choose_supercell, perpendicular_widths, phonons

X_FCC = [0.5, 0.5, 0.0]  # in the basis of ase.build.bulk's fcc primitive cell
L_FCC = [0.5, 0.5, 0.5]


def _lj():
    return load_potential("lj:epsilon=0.0104,sigma=3.4")


@pytest.fixture(scope="module")
def emt_cu():
    return phonons(load_potential("emt"), bulk("Cu", "fcc", a=3.6))


def test_emt_cu_x_and_l_match_independent_phonopy(emt_cu, emt_cu_reference):
    ref = emt_cu_reference  # tests/properties/conftest.py: phonopy + ASE EMT, no mlip_props code
    ref.run_qpoints([X_FCC, L_FCC])
    fx, fl = ref.qpoints.frequencies
    assert emt_cu.method == "displacement"  # oracle -> finite displacements
    assert np.allclose(emt_cu.high_symmetry_frequencies_THz["X"], fx, rtol=5e-3)
    assert np.allclose(emt_cu.high_symmetry_frequencies_THz["L"], fl, rtol=5e-3)
    mine = emt_cu.frequencies_at([X_FCC, L_FCC])
    assert np.allclose(mine, [fx, fl], rtol=5e-3)
    # fcc: X has a doubly degenerate TA branch below LA; L TA < LA
    assert fx[0] == pytest.approx(fx[1], rel=1e-6) and fx[2] > fx[1]
    assert not emt_cu.imaginary_modes and emt_cu.n_imaginary_modes == 0


def test_supercell_is_at_least_min_length(emt_cu):
    assert min(emt_cu.supercell_widths_A) >= 10.0
    cu = bulk("Cu", "fcc", a=3.6)
    s = choose_supercell(cu, 10.0)
    widths = perpendicular_widths(s.T @ cu.cell[:])
    assert widths.min() >= 10.0
    assert round(abs(np.linalg.det(s))) <= 5**3  # never worse than the diagonal 5x5x5


def test_routes_agree_for_torch_potential_and_asr_exact():
    ar = bulk("Ar", "fcc", a=5.26)
    a, b = phonons(_lj(), [ar, ar.copy()], method="displacement")[0], phonons(_lj(), ar, method="hessian")
    assert b.method == "hessian" and a.method == "displacement"
    for lab in ("X", "L"):
        assert np.allclose(a.high_symmetry_frequencies_THz[lab], b.high_symmetry_frequencies_THz[lab], rtol=5e-3)
    assert b.asr_violation_eV_A2 < 1e-8  # translational invariance by construction
    assert max(abs(x) for x in b.gamma_acoustic_raw_THz) < 1e-3


class FieldLJ(Potential):
    """LJ argon plus a position-dependent external field 1/2 k |r|^2: breaks translational invariance."""

    def __init__(self, k: float):
        lj = _lj()
        super().__init__(cutoff=lj.cutoff)
        self.lj = lj
        self.k = k

    def forward(self, graph):
        return self.lj(graph) + 0.5 * self.k * (graph.positions ** 2).sum(-1)


def test_broken_translational_invariance_is_reported_and_enforced():
    k = 0.02  # eV/A^2
    r = phonons(FieldLJ(k), bulk("Ar", "fcc", a=5.26), relaxation=False)
    assert r.asr_violation_eV_A2 == pytest.approx(k, rel=1e-6)  # sum_j Phi_ij = k delta_ab
    # Gamma acoustic: nu = sqrt(k/m)/(2 pi), with k in eV/A^2 and m in amu -> THz
    from ase import units

    m = bulk("Ar").get_masses()[0]
    nu = np.sqrt(k * units._e / (m * units._amu) * 1e20) / (2 * np.pi) / 1e12
    assert np.allclose(r.gamma_acoustic_raw_THz, nu, rtol=1e-3)
    assert max(abs(x) for x in r.gamma_acoustic_THz) < 1e-3
    assert r.asr_violation_enforced_eV_A2 < 1e-8
    assert asr_violation(r.force_constants_eV_A2) < 1e-8


def test_bcc_cu_emt_is_dynamically_unstable():
    r = phonons(load_potential("emt"), bulk("Cu", "bcc", a=2.87), asr_enforcement="phonopy")
    assert r.imaginary_modes
    assert r.n_imaginary_modes > 0
    assert r.lowest_frequency_THz < -0.5


def test_phonopy_files_and_plot(emt_cu, tmp_path):
    import phonopy

    files = emt_cu.write(tmp_path)
    assert files["band"].is_file()
    again = phonopy.load(files["phonopy_params"])
    again.run_qpoints([X_FCC])
    assert np.allclose(again.qpoints.frequencies[0], emt_cu.high_symmetry_frequencies_THz["X"], rtol=1e-6)
    emt_cu.plot(tmp_path / "band.png")
    assert (tmp_path / "band.png").stat().st_size > 1000
    d = emt_cu.to_dict()
    assert "phonopy_object" not in d and d["band_labels"]


def test_bad_input_names_structure():
    from ase import Atoms

    with pytest.raises(ValueError, match="structure 1"):
        phonons(_lj(), [bulk("Ar", "fcc", a=5.26), Atoms("Ar2", positions=[[0, 0, 0], [0, 0, 3.8]])])


def test_batched_analysis_equals_phonopys_own_loops(tmp_path):
    """Band path, tetrahedron DOS and mean group velocities computed in batches equal phonopy's
    own per-q routines (auto_band_structure, run_mesh + run_total_dos, group velocities); the
    Hessian route's phonopy object (built on demand) and its files carry the same phonons."""
    import phonopy

    ar = bulk("Ar", "fcc", a=5.26)
    r = phonons(_lj(), ar, relaxation=False, mesh=[8, 8, 8], group_velocity_mesh=[5, 5, 5])
    assert r.method == "hessian"
    again = phonopy.load(r.write(tmp_path)["phonopy_params"])
    again.run_qpoints([X_FCC, L_FCC])
    assert np.allclose(again.qpoints.frequencies, r.frequencies_at([X_FCC, L_FCC]), atol=1e-8)
    ph = r.phonopy_object
    ph.auto_band_structure(npoints=51)
    for mine, ref in zip(r.band_frequencies_THz, ph.band_structure.frequencies):
        assert np.allclose(mine, ref, atol=1e-6)
    for mine, ref in zip(r.band_distances_inv_A, ph.band_structure.distances):
        assert np.allclose(mine, ref, atol=1e-12)
    ph.run_mesh([8, 8, 8], is_gamma_center=True)
    ph.run_total_dos()
    assert np.allclose(r.dos_frequencies_THz, ph.total_dos.frequency_points)
    assert np.allclose(r.dos_states_per_THz, ph.total_dos.dos, atol=1e-10 * max(ph.total_dos.dos))
    # group velocities are symmetrised over each q's little group: phonopy needs its symmetry
    from phonopy import Phonopy

    full = Phonopy(ph.unitcell, supercell_matrix=ph.supercell_matrix, primitive_matrix=ph.primitive_matrix)
    full.force_constants = ph.force_constants
    full.run_mesh([5, 5, 5], is_gamma_center=True, with_group_velocities=True)
    v = np.linalg.norm(full.mesh.group_velocities, axis=-1)
    w = full.mesh.weights
    assert np.allclose(r.mean_group_velocity_m_s, (v * w[:, None]).sum(0) / w.sum() * 100.0, rtol=1e-6)


@pytest.mark.parametrize("method", ["displacement", "hessian"])
def test_plan_analysed_per_member_equals_member_alone(method):
    """One plan, one committee evaluation: member m's column analysed by the plan gives the same
    phonons as the ordinary workflow run with member m alone on the same cell."""
    from pathlib import Path

    import mlip_props
    from mlip_props.properties.plan import evaluate_plans
    from mlip_props.properties.phonons import plan_phonons
    from mlip_props.potentials.committee import CommitteeMean

    committee = load_potential(str(Path(mlip_props.__file__).parent / "data" / "cu_committee.pt"))
    cu = bulk("Cu", "fcc", a=3.61)
    opts = dict(method=method, supercell=2, mesh=[6, 6, 6], group_velocity_mesh=[3, 3, 3], band_npoints=11)
    plan = plan_phonons(CommitteeMean(committee), [cu], relaxation=False, **opts)
    answers = evaluate_plans(committee, [plan])[0]
    assert answers.n_members == committee.n_members == 4
    per_member = [plan.analyse(a)[0] for a in answers.members()]
    def squared(f):  # sign(f) f^2, THz^2: the dynamical-matrix eigenvalue (at Gamma the acoustic
        return np.sign(f) * np.asarray(f) ** 2  # frequencies are sqrt-amplified round-off)

    spread = []
    for m in (0, 3):
        alone = phonons(committee.member(m), cu, relaxation=False, **opts)
        mine = per_member[m]
        assert mine.method == alone.method == method
        np.testing.assert_allclose(mine.force_constants_eV_A2, alone.force_constants_eV_A2, rtol=0, atol=1e-10)
        for a, b in zip(mine.band_frequencies_THz, alone.band_frequencies_THz):
            np.testing.assert_allclose(squared(a), squared(b), rtol=0, atol=1e-10)
        assert mine.band_labels == alone.band_labels
        for lab, f in alone.high_symmetry_frequencies_THz.items():
            np.testing.assert_allclose(squared(mine.high_symmetry_frequencies_THz[lab]), squared(f), rtol=0, atol=1e-10)
        np.testing.assert_allclose(squared(mine.mesh_object.frequencies), squared(alone.mesh_object.frequencies),
                                   rtol=0, atol=1e-10)  # the DOS mesh
        spread.append(np.asarray(mine.high_symmetry_frequencies_THz["X"]))
    assert np.abs(spread[0] - spread[1]).max() > 1e-3  # the members differ: the test can tell them apart


@pytest.mark.parametrize("options, name", [
    ({"mesh": [-1, 2, 2]}, "mesh"), ({"mesh": [4, 4]}, "mesh"), ({"displacement_A": 0.0}, "displacement_A"),
    ({"min_length_A": -3.0}, "min_length_A"), ({"band_npoints": 1}, "band_npoints"),
    ({"group_velocity_mesh": float("nan")}, "group_velocity_mesh"), ({"symprec": 0.0}, "symprec")])
def test_bad_phonon_parameters_are_refused_by_name(options, name):
    """Checked before phonopy sees them (a negative mesh number aborts phonopy's compiled code)."""
    from mlip_props import load_potential

    with pytest.raises(ValueError, match=f"parameter '{name}"):
        phonons(load_potential("sw"), bulk("Si", "diamond", a=5.43), relaxation=False, **options)


def test_negative_temperatures_are_refused():
    from mlip_props import load_potential
    from mlip_props.properties.thermal import harmonic_thermal

    with pytest.raises(ValueError, match=r"temperatures_K\[0\]"):
        harmonic_thermal(load_potential("sw"), bulk("Si", "diamond", a=5.43), relaxation=False,
                         temperatures_K=[-5.0, 300.0])


def test_symmetry_reduced_hessian_rows_equal_all_rows():
    """The Hessian route evaluates rows of the symmetry-independent primitive atoms only; the
    others, rotated copies by a space-group operation, equal the directly computed rows."""
    from phonopy.structure.symmetry import Symmetry

    from mlip_props.properties.phonons import hessian_rows, plan_phonons
    from mlip_props.properties.phonons.force_constants import row_expansion

    pot = load_potential("lj:epsilon=0.1,sigma=2.3")
    for atoms, n_independent in ((bulk("GaN", "wurtzite", a=3.19, c=5.19), 2), (bulk("Si", "diamond", a=5.43), 1),
                                 (bulk("Mg", "hcp", a=3.21, c=5.21), 1)):
        plan = plan_phonons(pot, atoms, relaxation=False, min_length_A=8.0)
        h = plan.harmonic[0]
        assert len(plan.hessian_rows[0]) == n_independent
        expansion = row_expansion(h, Symmetry(h.primitive, 1e-5))
        sc = plan.structures[0]
        full = hessian_rows(pot, [sc], [h.primitive.p2s_map])[0]
        part = hessian_rows(pot, [sc], [plan.hessian_rows[0]])[0]
        assert np.abs(expansion.expand(part) - full).max() < 1e-10 * np.abs(full).max()
    plan = plan_phonons(pot, bulk("MgO", "rocksalt", a=4.21), relaxation=False, min_length_A=8.0)
    assert len(plan.hessian_rows[0]) == 2  # both atoms independent: nothing to save
