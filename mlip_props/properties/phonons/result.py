"""The result of a harmonic phonon calculation of one structure."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
from ase import Atoms

from ..result import PropertyResult, jsonable
from .force_constants import HarmonicModel, frequencies_at_qpoints


@dataclass(frozen=True)
class PhononResult(PropertyResult):
    """Harmonic phonons of one structure.

    Frequencies in THz (imaginary ones as negative numbers, phonopy's convention), force
    constants eV/A^2, distances along the band path in 1/A (phonopy: 2 pi not included),
    DOS in states/THz per primitive cell, group velocities m/s (``mean_group_velocity_m_s``:
    |v| per branch averaged over the group-velocity mesh).

    Acoustic sum rule: ``asr_violation_eV_A2`` is max |sum_j Phi_ij| of the RAW force constants,
    ``gamma_acoustic_raw_THz`` the three Gamma acoustic frequencies from them;
    ``asr_violation_enforced_eV_A2`` and ``gamma_acoustic_THz`` after ``asr_enforcement``.
    All later quantities (bands, DOS, thermal properties) use the enforced force constants.
    ``asr_noise_THz``: the frequency sqrt(raw violation / lightest mass) / 2 pi -- for a float32 model
    the rounding noise of the dynamical matrix in frequency units.

    Imaginary modes: frequencies below ``-imaginary_tolerance_THz`` (the tolerance used: the
    user's, or 0.05 THz in float64 and max(0.05, 3 ``asr_noise_THz``) in float32).

    LO-TO splitting: ``polar`` (the composition rule of :mod:`.nac`, or the user's ``polar=``),
    ``lo_to_included`` (Born charges and eps_inf were given: phonopy's non-analytical correction
    is in every frequency), ``lo_to_missing`` = polar and not included (a report flag),
    ``lo_to_note`` says what that means; ``born_charge_sum_e``: max |sum_k Z*_k| of the given
    charges (charge neutrality; ``None`` without charges).
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = (
        "high_symmetry_frequencies_THz", "imaginary_modes", "n_imaginary_modes", "lowest_frequency_THz",
        "asr_violation_eV_A2", "asr_violation_enforced_eV_A2", "relax_converged", "lo_to_missing",)

    atoms: Atoms
    formula: str
    method: str
    n_atoms_primitive: int
    supercell_matrix: list
    n_supercell_atoms: int
    supercell_widths_A: list
    displacement_A: float | None
    n_displaced_supercells: int
    relaxed: bool
    relax_converged: bool | None
    asr_violation_eV_A2: float
    asr_violation_enforced_eV_A2: float
    gamma_acoustic_raw_THz: list
    gamma_acoustic_THz: list
    asr_enforcement: str
    band_labels: list
    band_distances_inv_A: list
    band_frequencies_THz: list
    band_qpoints: list
    high_symmetry_frequencies_THz: dict
    mesh: list
    dos_frequencies_THz: list
    dos_states_per_THz: list
    mean_group_velocity_m_s: list
    imaginary_modes: bool
    n_imaginary_modes: int
    lowest_frequency_THz: float
    imaginary_tolerance_THz: float
    asr_noise_THz: float
    polar: bool
    lo_to_included: bool
    lo_to_missing: bool
    lo_to_note: str
    born_charge_sum_e: float | None
    #: internal, not serialised: the lattice-dynamics object the numbers came from (a phonopy
    #: ``Phonopy``, or a :class:`HarmonicModel` on the Hessian route, whose ``Phonopy`` twin
    #: ``phonopy_object`` builds on first use), the phonopy ``Symmetry`` of the primitive cell
    #: (mesh reduction), the run DOS ``Mesh`` (re-used by the thermal sums when they ask for
    #: the same mesh) and phonopy's band-path labels and connections (for ``band.yaml``)
    harmonic: Any = field(default=None, repr=False, compare=False)
    primitive_symmetry: Any = field(default=None, repr=False, compare=False)
    mesh_object: Any = field(default=None, repr=False, compare=False)
    band_path: Any = field(default=None, repr=False, compare=False)
    _phonopy: Any = field(default=None, repr=False, compare=False)

    _INTERNAL = ("harmonic", "primitive_symmetry", "mesh_object", "band_path", "_phonopy")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in self._INTERNAL}

    @property
    def phonopy_object(self):
        """The phonopy ``Phonopy`` object with the enforced force constants, for further work in
        phonopy (built on first use on the Hessian route, then kept)."""
        if self._phonopy is None and self.harmonic is not None:
            h = self.harmonic
            object.__setattr__(self, "_phonopy", h.to_phonopy() if isinstance(h, HarmonicModel) else h)
        return self._phonopy

    @property
    def force_constants_eV_A2(self) -> np.ndarray:
        """Enforced force constants, phonopy full layout (N, N, 3, 3), eV/A^2 (the Hessian route
        keeps phonopy's compact (n_primitive, N, 3, 3) array in the phonopy object; it is
        expanded here by the supercell translations)."""
        fc = np.asarray(self.harmonic.force_constants)
        if fc.shape[0] != fc.shape[1]:
            from phonopy.harmonic.force_constants import compact_fc_to_full_fc

            fc = compact_fc_to_full_fc(self.harmonic.primitive, fc)
        return fc

    def frequencies_at(self, qpoints: Sequence[Sequence[float]],
                       q_direction: Sequence[float] | None = None) -> np.ndarray:
        """Frequencies (THz, ascending) at q-points in reduced coordinates of the primitive
        reciprocal lattice (phonopy's primitive cell), shape (n_q, 3 n_atoms_primitive).
        ``q_direction`` (same coordinates): the direction of approach to Gamma, which the
        non-analytical correction needs at q = 0 (LO-TO splitting; without it Gamma is TO only)."""
        return frequencies_at_qpoints(self.harmonic, np.atleast_2d(qpoints), q_direction)

    def write(self, output_dir: str | Path) -> dict[str, Path]:
        """Write phonopy's ``phonopy_params.yaml`` (structure, supercell, force constants) and
        ``band.yaml`` into ``output_dir``, so users can go on in phonopy."""
        from .io_plots import write_phonopy_files

        return write_phonopy_files(self, output_dir)

    def plot(self, filename: str | Path | None = None, reference: bool = True):
        """Band structure + DOS figure; experimental points from the shipped reference table overlaid."""
        from .io_plots import plot_band_structure

        return plot_band_structure(self, filename, reference=reference)
