"""Shared reference for the phonon and thermal tests: phonopy + ASE EMT for fcc Cu, written
independently of mlip_props (no mlip_props import here), computed once per test session."""
import numpy as np
import pytest

#: fcc primitive vectors (a/2)(0,1,1), (1,0,1), (1,1,0) in the conventional cell's coordinates
FCC_PRIMITIVE_MATRIX = [[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]


def emt_cu_phonopy(supercell=(3, 3, 3), distance: float = 0.01):
    """Phonopy object with EMT force constants for fcc Cu: ASE EMT relaxation of the lattice
    constant (BFGS on the cell, fmax 1e-6 eV/A), conventional 4-atom cell times ``supercell``,
    phonopy's symmetry-reduced displacements of ``distance`` A, EMT forces one displaced
    supercell at a time through ASE, phonopy's force-constant fit and symmetrisation. Its
    primitive cell is ase.build.bulk's fcc primitive cell, so q-points in reduced coordinates
    match those of mlip_props results for ``bulk("Cu", "fcc")``."""
    from ase import Atoms
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    prim = bulk("Cu", "fcc", a=3.6)
    prim.calc = EMT()
    BFGS(FrechetCellFilter(prim), logfile=None).run(fmax=1e-6)
    a = prim.cell.cellpar()[0] * np.sqrt(2)
    conv = bulk("Cu", "fcc", a=a, cubic=True)
    unit = PhonopyAtoms(symbols=conv.get_chemical_symbols(), cell=conv.cell[:],
                        scaled_positions=conv.get_scaled_positions(), masses=conv.get_masses())
    ph = Phonopy(unit, supercell_matrix=np.diag(supercell), primitive_matrix=FCC_PRIMITIVE_MATRIX)
    ph.generate_displacements(distance=distance)
    forces = []
    for sc in ph.supercells_with_displacements:
        at = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        at.calc = EMT()
        forces.append(at.get_forces())
    ph.forces = forces
    ph.produce_force_constants()
    ph.symmetrize_force_constants()
    return ph


@pytest.fixture(scope="session")
def emt_cu_reference():
    """Independent phonopy + ASE EMT Cu (conventional 3x3x3 supercell, 108 atoms); see
    :func:`emt_cu_phonopy`. Tests may run meshes/q-points on it but must not change its force
    constants."""
    return emt_cu_phonopy()
