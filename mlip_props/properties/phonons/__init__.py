"""Harmonic phonons through the batched backend, with phonopy doing the lattice dynamics.

Method (Togo & Tanaka, Scr. Mater. 108, 1 (2015); Togo et al., J. Phys.: Condens. Matter 35,
353001 (2023) for phonopy; Born & Huang, *Dynamical Theory of Crystal Lattices* (1954)):

1. every structure is relaxed (one batched :func:`~mlip_props.properties.relax.relax` call,
   cell included by default, space-group symmetry kept; on the committee mean for a committee);
2. a supercell is chosen whose three perpendicular widths all reach ``min_length_A`` (the
   smallest of: a diagonal multiple of the given cell, of its primitive cell, or of its
   conventional cell — the last two are non-diagonal in the given cell's basis);
3. the second-order force constants Phi_{i a, j b} = d^2 E / du_{i a} du_{j b} (eV/A^2, phonopy's
   layouts, atoms in phonopy's supercell order) come from either

   * ``"hessian"``: the analytic Hessian of each perfect supercell by autograd, only the rows of
     the primitive-cell atoms (the backend's row engine,
     :mod:`mlip_props.backend.hessian_rows`: forces of all supercells in one batched pass, then
     3 Hessian-vector products per symmetry-independent primitive atom, batched over all
     structures; the other primitive atoms' rows are rotated copies by a space-group operation)
     — phonopy's compact force constants (n_primitive, N, 3, 3), which phonopy uses directly
     (the other rows follow from the supercell's lattice translations); or
   * ``"displacement"``: phonopy's symmetry-reduced finite displacements (+-, 0.01 A), all
     displaced supercells of all structures (and the perfect ones, whose residual forces are
     subtracted) in ONE backend call;

   ``"auto"`` takes the Hessian for torch potentials and displacements for oracles;
4. the acoustic sum rule sum_j Phi_{i a, j b} = 0 (translational invariance) is checked on the
   raw force constants, then enforced (symfc's projector when symfc is installed, else
   phonopy's iterative symmetrisation) and the three Gamma acoustic frequencies are reported
   before and after (``asr_enforcement="auto"``: symfc for finite displacements, phonopy's
   iterative symmetrisation for Hessians);
5. band structure along the seekpath standard path (Hinuma et al., Comput. Mater. Sci. 128,
   140 (2017); phonopy's ``auto_band_structure`` path), all its dynamical matrices from
   phonopy's batched builder in one call and diagonalised together; total DOS on a
   Gamma-centred mesh (linear tetrahedron method, phonopy's weights), mean group velocities on
   a coarser mesh, imaginary modes (frequencies below ``-imaginary_tolerance_THz``; phonopy's
   convention: imaginary frequencies are returned as negative numbers). Meshes are reduced by
   the primitive cell's point group even where the supercell symmetry search is skipped.
   The imaginary-mode tolerance knows the precision: 0.05 THz for float64 force constants,
   max(0.05 THz, 3 x the measured noise) for float32 models (the raw sum-rule violation as a
   frequency, ``asr_noise_THz``);
6. LO-TO splitting (:mod:`.nac`): a polar crystal (at least two elements, not all metals) without
   Born charges is flagged ``lo_to_missing``; ``nac_params`` (Born charges, eps_inf) switch on
   phonopy's non-analytical correction.

Plan -> evaluate -> analyse: :func:`plan_phonons` does steps 1-2 and returns a
:class:`PhononPlan` (the supercells to evaluate); :meth:`PhononPlan.analyse` does steps 3-5 from
one potential's answers (``answers.member(m)`` for member m of a committee); :func:`phonons` is
both, with one backend evaluation.

Modules: :mod:`.cells` (ASE <-> phonopy, supercell choice), :mod:`.force_constants` (force
constants, acoustic sum rule, :class:`HarmonicModel`), :mod:`.nac` (LO-TO), :mod:`.plan`,
:mod:`.analysis` (bands, meshes, DOS, group velocities), :mod:`.result`, :mod:`.io_plots` (phonopy files, figures).

Work done once per structure: one spglib search of the input cell (primitive matrix and
conventional cell for the supercell), one of the primitive cell (mesh reduction), one inside
seekpath (band path); no supercell symmetry search on the Hessian route.

Units: frequencies THz (1 THz = 33.356 cm^-1 = 4.1357 meV), force constants eV/A^2, masses amu,
group velocities m/s.
"""
from .analysis import (THZ_A_TO_M_S, AnalysisOptions, HarmonicSystem, analyse_harmonic, band_distances, band_path,
                       group_velocities, mean_group_velocity_m_s, mesh_object, sampling_mesh, tetrahedron_dos)
from .cells import (choose_supercell, parse_supercell, perpendicular_widths, primitive_matrix_from_dataset,
                    reduced_formula, symmetry_dataset, to_ase_atoms, to_phonopy_atoms)
from .force_constants import (AcousticSumRuleCheck, HarmonicModel, asr_violation, enforce_acoustic_sum_rule,
                              frequencies_at_qpoints, gamma_acoustic_frequencies, hessian_rows, resolve_enforcement,
                              symfc_available)
from .nac import is_polar, resolve_nac_params
from .io_plots import (REFERENCE_DIR, band_axis, band_path_ticks, max_frequency_difference_THz, plot_band_structure,
                       reference_frequencies, save_or_return, write_phonopy_files)
from .plan import PHONON_RELAXATION, Method, PhononPlan, phonons, plan_phonons
from .result import PhononResult

__all__ = [
    "phonons", "plan_phonons", "PhononPlan", "PhononResult", "PHONON_RELAXATION", "Method",
    "AnalysisOptions", "HarmonicSystem", "analyse_harmonic", "AcousticSumRuleCheck", "HarmonicModel",
    "to_ase_atoms", "to_phonopy_atoms", "reduced_formula", "perpendicular_widths", "symmetry_dataset",
    "primitive_matrix_from_dataset", "choose_supercell", "parse_supercell", "asr_violation",
    "enforce_acoustic_sum_rule", "resolve_enforcement", "symfc_available", "gamma_acoustic_frequencies",
    "frequencies_at_qpoints", "hessian_rows", "band_path", "band_distances", "mesh_object", "sampling_mesh",
    "group_velocities", "mean_group_velocity_m_s", "tetrahedron_dos", "THZ_A_TO_M_S", "REFERENCE_DIR",
    "write_phonopy_files", "reference_frequencies", "band_path_ticks", "band_axis", "save_or_return",
    "plot_band_structure", "max_frequency_difference_THz", "is_polar", "resolve_nac_params",
]
