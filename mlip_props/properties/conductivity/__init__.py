"""Lattice thermal conductivity through the batched backend, with phono3py doing the
three-phonon physics (``kappa`` extra: ``pip install mlip-props[kappa]``).

Method (Togo, Chaput & Tanaka, Phys. Rev. B 91, 094306 (2015) for phono3py; Tamura, Phys. Rev.
B 27, 858 (1983) for isotope scattering):

1. every structure is relaxed (one batched relaxation, cell included, space group kept);
2. phono3py builds the fc3 supercell (and the fc2 supercell when it differs) and its
   symmetry-reduced finite displacements: single displacements for fc2, pairs for fc3, pairs
   farther apart than ``cutoff_pair_distance_A`` left out (their fc3 is zero);
3. the energies and forces of ALL displaced supercells of all structures (and the perfect
   supercells, whose residual forces are subtracted) come from ONE backend call, chunked by
   the backend's memory budget;
4. phono3py's finite-difference solver gives fc2 (eV/A^2) and fc3 (eV/A^3); their
   translational invariance (the sum rules sum_j Phi_ij = 0, sum_k Phi_ijk = 0) is measured on
   the raw constants, then enforced by phono3py's symmetrisation and measured again;
5. on a Gamma-centred q-mesh: harmonic phonons (imaginary modes: no kappa, and the result
   says why), then kappa (W/(m K)) in the relaxation-time approximation or by the direct
   solution of the linearised Boltzmann equation (tetrahedron method; isotope scattering of the
   natural abundances on by default), with the enforced constants, with the raw ones (the
   effect of the sum-rule violation on kappa), and on a denser mesh (the convergence check).

With ``fc3_method="hessian"`` (torch potentials) steps 2-4 use phono3py's single displacements
only: analytic Hessians of the perfect and singly displaced supercells give fc2 directly and fc3
by central differences (:mod:`.hessian_fc3`).

Plan -> evaluate -> analyse: :func:`plan_conductivity` does steps 1-2 and returns a
:class:`ConductivityPlan`; :meth:`ConductivityPlan.analyse` does steps 4-5 from one potential's
forces (``answers.member(m)`` for member m of a committee); :meth:`ConductivityPlan.analyse_committee`
adds each member's kappa, their mean and spread; :func:`thermal_conductivity` is plan, one
evaluation and the analysis.

Modules: :mod:`.plan`, :mod:`.kappa` (force constants, sum rules, kappa on a mesh),
:mod:`.hessian_fc3` (fc3 from Hessians), :mod:`.committee` (the committee fields),
:mod:`.result`.
"""
from .kappa import (SUM_RULE_ENFORCEMENT, KappaRun, denser_mesh, fc3_sum_rule_violation, is_metal, kappa_on_mesh,
                    may_be_metallic)
from .committee import committee_fields
from .hessian_fc3 import fc_from_hessians
from .plan import (CONDUCTIVITY_RELAXATION, ConductivityOptions, ConductivityPlan, FC3Method, Method,
                   plan_conductivity, thermal_conductivity)
from .result import ConductivityResult

__all__ = [
    "thermal_conductivity", "plan_conductivity", "ConductivityPlan", "ConductivityResult", "ConductivityOptions",
    "CONDUCTIVITY_RELAXATION", "Method", "SUM_RULE_ENFORCEMENT", "KappaRun", "kappa_on_mesh", "denser_mesh",
    "fc3_sum_rule_violation", "is_metal", "may_be_metallic", "FC3Method", "fc_from_hessians", "committee_fields",
]
