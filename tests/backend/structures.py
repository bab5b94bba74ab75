"""Test structures in reduced units (nearest neighbours ~1), scaled to a potential's length scale."""
import numpy as np
from ase import Atoms
from ase.build import bulk


def cluster(scale: float, symbol: str = "Cu", seed: int = 0) -> Atoms:
    """A 5-atom non-periodic cluster (distorted trigonal bipyramid)."""
    rng = np.random.default_rng(seed)
    pos = np.array([[0, 0, 0], [1, 0, 0], [0.5, 0.87, 0], [0.5, 0.29, 0.82], [0.5, 0.29, -0.82]], float)
    pos += rng.normal(scale=0.05, size=pos.shape)
    return Atoms(symbol * 5, positions=pos * scale)


def small_cell(scale: float, symbol: str = "Cu", seed: int = 1) -> Atoms:
    """Conventional fcc cell (4 atoms), rattled: its edge (1.41 scale) is shorter than typical cutoffs."""
    a = bulk(symbol, "fcc", a=np.sqrt(2) * scale, cubic=True)
    a.rattle(0.03 * scale, seed=seed)
    return a


def triclinic_cell(scale: float, symbol: str = "Cu", seed: int = 2) -> Atoms:
    """A skewed triclinic cell with 3 atoms at generic positions."""
    cell = np.array([[1.6, 0.0, 0.0], [0.7, 1.5, 0.0], [0.5, 0.4, 1.45]]) * scale
    frac = np.array([[0.0, 0.0, 0.0], [0.37, 0.52, 0.11], [0.71, 0.19, 0.63]])
    frac += np.random.default_rng(seed).normal(scale=0.01, size=frac.shape)
    return Atoms(symbol * 3, scaled_positions=frac, cell=cell, pbc=True)
