"""The result of a lattice thermal conductivity calculation of one structure."""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import ClassVar

from ase import Atoms

from ..result import PropertyResult


@dataclass(frozen=True)
class ConductivityResult(PropertyResult):
    """Lattice thermal conductivity of one structure from three-phonon (and isotope) scattering.

    Tensors are per temperature, in Voigt order xx, yy, zz, yz, xz, xy, W/(m K); averages are
    one third of the trace. ``kappa_W_mK`` is the solution of the requested ``method``
    (``"rta"``: relaxation-time approximation; ``"lbte"``: direct solution of the linearised
    Boltzmann equation) with the sum rules enforced on fc2 and fc3; ``kappa_rta_W_mK`` the RTA
    solution of the same run. ``kappa_no_sum_rule_W_mK``: the same method with the raw force
    constants (no enforcement), so that ``sum_rule_kappa_change_rel`` (relative change of the
    average at each temperature, enforced vs raw) shows what the violation does to the answer.

    Sum rules (translational invariance) on the raw force constants and after phono3py's
    symmetrisation: ``fc2_sum_rule_violation_*_eV_A2`` = max |sum_j Phi_ij^ab| and
    ``fc3_sum_rule_violation_*_eV_A3`` = max over the two free indices of
    |sum_k Phi_ijk^abc| and |sum_j Phi_ijk^abc|.

    Mesh convergence: kappa repeated on ``convergence_mesh``; ``mesh_change_rel`` is the largest
    relative change of the average over the temperatures and ``converged`` whether it is within
    ``convergence_tolerance_rel``. ``kappa_*`` are ``None`` when the harmonic phonons have
    imaginary modes on the mesh (``imaginary_modes``; ``min_frequency_THz``): then no kappa is
    defined and ``notes`` says so. ``is_metal``: the structure contains only metallic elements,
    whose electronic contribution to kappa is not included (a note says so); ``may_be_metallic``:
    not all-metal but a transition metal with non-metals other than O, halogens and H (TiN, TiC,
    WC: :func:`.kappa.may_be_metallic`), a note says the electronic part would be missing if it is
    a metal. ``lo_to_missing``: a polar crystal (:func:`mlip_props.properties.phonons.nac.is_polar`)
    whose harmonic phonons have no non-analytical (LO-TO) correction, as in every kappa here
    (the potentials have no Born charges): the report flags it "no LO-TO".

    ``fc3_method``: how fc3 was obtained (``"forces"``: force differences of phono3py's pair
    displacements; ``"hessian"``: central differences of analytic Hessians of singly displaced
    supercells, fc2 the analytic Hessian). ``timings_s``: seconds of this structure's analysis
    (``force_constants``, ``sum_rules``, ``kappa``, ``kappa_convergence_mesh``,
    ``kappa_raw_force_constants``; the planning and the backend call are shared by all structures
    and not included).

    Committee potentials (``n_members`` members; ``None`` otherwise): ``kappa_W_mK`` and the
    other main fields are those of the committee-mean potential; ``kappa_W_mK_members``
    (M, n_T, 6) and ``kappa_average_W_mK_members`` (M, n_T) each member's own kappa on ``mesh``
    (its own fc2 and fc3 from the same evaluation, sum rules enforced; ``None`` for a member
    with imaginary modes, ``min_frequency_THz_members``), ``kappa_W_mK_member_mean`` /
    ``kappa_average_W_mK_member_mean`` their mean and ``kappa_W_mK_std`` /
    ``kappa_average_W_mK_std`` their standard deviation over members (ddof 0), W/(m K).
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = (
        "kappa_average_W_mK", "kappa_rta_average_W_mK", "kappa_no_sum_rule_average_W_mK", "sum_rule_kappa_change_rel",
        "mesh_change_rel", "fc2_sum_rule_violation_raw_eV_A2", "fc3_sum_rule_violation_raw_eV_A3",
        "n_displaced_supercells", "min_frequency_THz", "kappa_average_W_mK_std", "lo_to_missing")

    atoms: Atoms
    formula: str
    n_atoms_primitive: int
    method: str
    temperatures_K: list
    kappa_W_mK: list | None
    kappa_average_W_mK: list | None
    kappa_rta_W_mK: list | None
    kappa_rta_average_W_mK: list | None
    kappa_no_sum_rule_W_mK: list | None
    kappa_no_sum_rule_average_W_mK: list | None
    sum_rule_kappa_change_rel: list | None
    mesh: list
    convergence_mesh: list | None
    kappa_convergence_mesh_average_W_mK: list | None
    mesh_change_rel: float | None
    convergence_tolerance_rel: float
    converged: bool
    fc2_supercell_matrix: list
    fc3_supercell_matrix: list
    n_fc2_supercell_atoms: int
    n_fc3_supercell_atoms: int
    cutoff_pair_distance_A: float | None
    displacement_A: float
    n_fc3_displaced_supercells: int
    n_fc2_displaced_supercells: int
    n_displaced_supercells: int
    fc2_sum_rule_violation_raw_eV_A2: float
    fc2_sum_rule_violation_enforced_eV_A2: float
    fc3_sum_rule_violation_raw_eV_A3: float
    fc3_sum_rule_violation_enforced_eV_A3: float
    sum_rule_enforcement: str
    scattering: list
    isotope: bool
    imaginary_modes: bool
    min_frequency_THz: float
    is_metal: bool
    relaxed: bool
    relax_converged: bool | None
    notes: list
    fc3_method: str = "forces"
    timings_s: dict = field(default_factory=dict)
    n_members: int | None = None
    kappa_W_mK_members: list | None = None
    kappa_average_W_mK_members: list | None = None
    min_frequency_THz_members: list | None = None
    kappa_W_mK_member_mean: list | None = None
    kappa_average_W_mK_member_mean: list | None = None
    kappa_W_mK_std: list | None = None
    kappa_average_W_mK_std: list | None = None
    may_be_metallic: bool = False
    lo_to_missing: bool = False
