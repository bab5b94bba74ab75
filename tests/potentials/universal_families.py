"""The universal-model families (CHGNet, SevenNet-0, MACE model files) as the shared physical
battery (``test_universal_battery.py``) sees them: their test structures and, per check, what
it is run on and with which tolerance (each tolerance with the measurement that sized it).

The potentials and the reference results of each family's own ASE calculator are fixtures of
``conftest.py`` (``<family>_pot``, ``<family>_reference``), skipped where the package is not
installed; what is specific to one family stays in its own file (``test_chgnet.py``,
``test_sevenn.py``, ``test_mace.py``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule


@dataclass(frozen=True)
class AseCheck:
    """Energies, forces and stress against the family's own ASE calculator."""

    dtypes: tuple[torch.dtype, ...]
    energy_eV: float  # |E - E_ref| (per atom with energy_per_atom) at most
    energy_per_atom: bool
    forces_atol_eV_A: float
    stress_atol_eV_A3: float
    #: the comparison is not of zeros: max |F| (eV/A) / max |sigma| (eV/A^3) above these
    min_forces_eV_A: dict[str, float] = field(default_factory=dict)
    min_stress_eV_A3: dict[str, float] = field(default_factory=dict)
    #: physically sensible total energies per atom (eV), (low, high)
    energy_per_atom_eV: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class DerivativeCheck:
    """Forces = minus the central-difference gradient, stress = the finite-strain derivative of
    E per volume (float64, :func:`mlip_props.testing.force_error` / ``stress_error``)."""

    force_names: tuple[str, ...]
    force_h_A: float
    force_tol: float
    stress_names: tuple[str, ...]
    stress_h: float
    stress_tol: float
    relative: bool  # tolerances relative to the largest component, else in eV/A and eV/A^3
    min_stress_eV_A3: float | None = None  # the stress compared is not zero


@dataclass(frozen=True)
class HessianCheck:
    """The analytic float64 Hessian: symmetric, = the central-difference Jacobian of the forces,
    rows summing to zero; tolerances are functions of scale = max |H| (eV/A^2)."""

    names: tuple[str, ...]
    h_A: float
    fd_atol: Callable[[float], float]
    fd_rtol: float
    asr_tol: Callable[[float], float]
    min_scale_eV_A2: float
    asym_rel: float = 1e-10


@dataclass(frozen=True)
class BatchCheck:
    """Each picked structure alone = inside a mixed batch (:func:`mlip_props.testing.batch_consistency_errors`)."""

    batches: Callable[[dict[str, Atoms]], list[tuple[list[Atoms], list[int]]]]
    dtype: torch.dtype
    tol: dict[str, float | None]  # energy_eV, forces_eV_A, stress_eV_A3 (None: not compared)


@dataclass(frozen=True)
class Family:
    name: str
    structures: dict[str, Atoms]
    ase: AseCheck
    derivatives: DerivativeCheck | None
    hessian: HessianCheck
    batch: BatchCheck
    unknown_element: Atoms  # evaluated as structure 1, after the first structure
    unknown_symbol: str
    #: the family's potential computing in float32 whatever the batch's dtype (None: no such option)
    fixed_float32: Callable[[], object] | None = None
    #: structures whose autograd-saved memory per edge is compared with ``bytes_per_edge``
    bytes_per_edge_structures: tuple[Callable[[], Atoms], ...] = ()


def _rattled(out: dict[str, Atoms]) -> dict[str, Atoms]:
    for k, a in enumerate(out.values()):  # off equilibrium: real forces and stresses to compare
        a.rattle(0.02 if len(a) == 3 else 0.05, seed=k)
    return out


def _rattled_copies(pool: list[Atoms], n: int, seed: int = 0) -> list[Atoms]:
    """``n`` copies cycling through ``pool``, each rattled by 0.03 A with its own seed."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = pool[k % len(pool)].copy()
        a.rattle(0.03, seed=int(rng.integers(1 << 30)))
        out.append(a)
    return out


def _fixed_float32(module: str, cls: str) -> Callable[[], object]:
    """The family's potential class built with ``dtype="float32"`` (imported when called)."""
    return lambda: getattr(importlib.import_module(module), cls)(dtype="float32")


#: models computing in float32 (CHGNet, SevenNet-0) against their own calculators, in float32 and
#: float64: float32 tolerances
FLOAT32_MODEL_ASE = dict(dtypes=(torch.float32, torch.float64), energy_eV=1e-4, energy_per_atom=True,
                         forces_atol_eV_A=1e-3, stress_atol_eV_A3=1e-4)


def _cubic(symbol: str, structure: str, a: float) -> Callable[[], Atoms]:
    def build() -> Atoms:
        atoms = bulk(symbol, structure, a=a, cubic=True)
        atoms.rattle(0.05, seed=1)
        return atoms

    return build


# ---------------------------------------------------------------------------------------------
# CHGNet 0.3.0 (the weights ship in the chgnet wheel)
# ---------------------------------------------------------------------------------------------
CHGNET_STRUCTURES = _rattled({
    "Si": bulk("Si", "diamond", a=5.43),
    "MgO": bulk("MgO", "rocksalt", a=4.21),
    "GaN": bulk("GaN", "wurtzite", a=3.19, c=5.19),
    "Cu111": fcc111("Cu", size=(2, 2, 2), vacuum=4.0),  # pbc (True, True, False), 8 A gap
    "H2O": molecule("H2O"),
})


def _chgnet_batches(structures: dict[str, Atoms]) -> list[tuple[list[Atoms], list[int]]]:
    """16 mixed structures (crystals, the slab, molecules, an isolated He atom without any
    edge), the target first, in the middle and last; a leak between structures would show at
    the eV/A scale."""
    pool = list(structures.values()) + [molecule("CH4"), Atoms("He", positions=[[0.0, 0.0, 0.0]])]
    others = _rattled_copies(pool, 15)
    return [(others[:pos] + [structures[name]] + others[pos:], [pos])
            for name, pos in (("GaN", 0), ("Cu111", 7), ("H2O", 15))]


CHGNET = Family(
    name="chgnet",
    structures=CHGNET_STRUCTURES,
    # the slab and the molecule against the calculator on the same atoms made periodic with
    # more vacuum than the 6 A cutoff (conftest.chgnet_reference)
    ase=AseCheck(**FLOAT32_MODEL_ASE, min_forces_eV_A={"GaN": 0.1, "Cu111": 0.1, "H2O": 0.1},
                 min_stress_eV_A3={"GaN": 1e-2},
                 energy_per_atom_eV={"Si": (-6.5, -4.5)}),  # bound diamond Si (MPtrj PBE total ~ -5.4 eV/atom)
    # h = 1e-5 A / strain 1e-5. The O(h^2) truncation is measured: relative 1.2e-6 / 1.1e-8 (Si
    # forces), 3.1e-6 / 3.1e-8 (GaN stress) at h = 1e-4 / 1e-5, so 1e-6 relative is a bound a
    # wrong derivative fails
    derivatives=DerivativeCheck(force_names=("Si", "MgO", "H2O"), force_h_A=1e-5, force_tol=1e-6,
                                stress_names=("GaN",), stress_h=1e-5, stress_tol=1e-6, relative=True),
    # CHGNet's energy surface has large high-order derivatives: in rattled Si the FD Jacobian's
    # error relative to the largest force constant is 0.17, 0.071, 8.8e-3, 8.0e-4, 8.9e-5, 8.9e-7
    # at h = 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5 A (clean h^2; CHGNet's own calculator's forces give
    # the same FD error), hence the small step and a tolerance relative to max |H|
    hessian=HessianCheck(names=("Si", "H2O"), h_A=1e-5, fd_atol=lambda s: 1e-5 * max(s, 1e-6), fd_rtol=0.0,
                         asr_tol=lambda s: 1e-9, min_scale_eV_A2=1.0),
    batch=BatchCheck(batches=_chgnet_batches, dtype=torch.float64,
                     tol={"energy_eV": 1e-9, "forces_eV_A": 1e-9, "stress_eV_A3": 1e-9}),
    unknown_element=Atoms("Am2", positions=[[0, 0, 0], [1.8, 1.8, 1.8]], cell=[3.6, 3.6, 3.6], pbc=True),  # Z = 95
    unknown_symbol="Am",
    fixed_float32=_fixed_float32("mlip_props.potentials.chgnet", "CHGNetPotential"),
    # few angles per edge (diamond Si) and many (fcc Cu)
    bytes_per_edge_structures=(_cubic("Si", "diamond", 5.43), _cubic("Cu", "fcc", 3.6)),
)


# ---------------------------------------------------------------------------------------------
# SevenNet-0 (the checkpoint ships in the sevenn wheel)
# ---------------------------------------------------------------------------------------------
SEVENN_STRUCTURES = _rattled({  # covalent, ionic, polar, metallic, a molecule, a slab
    "Si": bulk("Si", "diamond", a=5.43),
    "MgO": bulk("MgO", "rocksalt", a=4.21),
    "GaN": bulk("GaN", "wurtzite", a=3.19, c=5.19),
    "Mg": bulk("Mg", "hcp", a=3.21, c=5.21),
    "H2O": molecule("H2O"),
    "Cu111": fcc111("Cu", size=(2, 2, 3), vacuum=6.0, periodic=True),
})


def _sevenn_batches(structures: dict[str, Atoms]) -> list[tuple[list[Atoms], list[int]]]:
    """50 mixed structures (crystals, a slab, molecules; 2-12 atoms) in one float32 call; picked:
    the slab, Si, water, CH4 and the last (to float32 summation-order noise; a leak between
    structures would show at the eV/A scale)."""
    pool = [structures[n] for n in ("Si", "MgO", "GaN", "Mg", "H2O")] + [molecule("CH4"), molecule("NH3")]
    mixed = [structures["Cu111"].copy()] + _rattled_copies(pool, 49)
    return [(mixed, [0, 1, 5, 6, 49])]


SEVENN = Family(
    name="sevenn",
    structures=SEVENN_STRUCTURES,
    ase=AseCheck(**FLOAT32_MODEL_ASE, min_forces_eV_A={"GaN": 0.1}, min_stress_eV_A3={"Mg": 1e-3},
                 energy_per_atom_eV={"Si": (-6.5, -4.5)}),  # bound diamond Si (PBE total ~ -5.4 eV/atom)
    # h = 2.5e-4 A, strain 1e-4. The O(h^2) truncation is measured: 5e-5, 1.3e-5, 3.2e-6, 8e-7
    # eV/A for the stiffest water component at h = 2, 1, 0.5, 0.25 mA, so 1e-5 eV/A is a
    # tolerance a wrong force would not pass
    derivatives=DerivativeCheck(force_names=("Si", "H2O"), force_h_A=2.5e-4, force_tol=1e-5,
                                stress_names=("GaN",), stress_h=1e-4, stress_tol=1e-6, relative=False,
                                min_stress_eV_A3=1e-3),
    # h = 1e-3 A; O(h^2) truncation with force constants up to ~50 eV/A^2 in water
    hessian=HessianCheck(names=("Si", "H2O"), h_A=1e-3, fd_atol=lambda s: 2e-3, fd_rtol=1e-7,
                         asr_tol=lambda s: 1e-10 * s, min_scale_eV_A2=1.0),
    batch=BatchCheck(batches=_sevenn_batches, dtype=torch.float32,
                     tol={"energy_eV": 2e-5, "forces_eV_A": 2e-5, "stress_eV_A3": 1e-6}),
    unknown_element=bulk("Po", "sc", a=3.35),
    unknown_symbol="Po",
    fixed_float32=_fixed_float32("mlip_props.potentials.sevenn", "SevenNetPotential"),
    bytes_per_edge_structures=(_cubic("Si", "diamond", 5.43),),
)


# ---------------------------------------------------------------------------------------------
# MACE model files: a small ScaleShiftMACE with random weights (conftest.mace_model)
# ---------------------------------------------------------------------------------------------
def _mace_structures() -> dict[str, Atoms]:
    si = bulk("Si", "diamond", a=5.43)
    si.rattle(0.05, seed=1)
    water = molecule("H2O")
    water.rattle(0.05, seed=2)
    sio = bulk("SiO", "rocksalt", a=4.6) * (1, 1, 2)
    sio.rattle(0.05, seed=3)
    return {"Si": si, "H2O": water, "SiO": sio}


MACE_STRUCTURES = _mace_structures()


def _mace_batches(structures: dict[str, Atoms]) -> list[tuple[list[Atoms], list[int]]]:
    """The three structures four times over; the last copies compared with each alone."""
    return [(list(structures.values()) * 4, [9, 10, 11])]


MACE = Family(
    name="mace",
    structures=MACE_STRUCTURES,
    # the same module through mace-torch's own calculator, both float64
    ase=AseCheck(dtypes=(torch.float64,), energy_eV=1e-10, energy_per_atom=False,
                 forces_atol_eV_A=1e-10, stress_atol_eV_A3=1e-12,
                 min_forces_eV_A={"Si": 1e-3, "H2O": 1e-3, "SiO": 1e-3}),  # random weights still give real forces
    derivatives=None,
    hessian=HessianCheck(names=("Si", "H2O"), h_A=1e-4, fd_atol=lambda s: 1e-6 * max(s, 1.0), fd_rtol=1e-7,
                         asr_tol=lambda s: 1e-10 * s, min_scale_eV_A2=1e-3),
    batch=BatchCheck(batches=_mace_batches, dtype=torch.float64,
                     tol={"energy_eV": 1e-12, "forces_eV_A": 1e-12, "stress_eV_A3": None}),
    unknown_element=bulk("Cu", "fcc", a=3.6),
    unknown_symbol="Cu",
)

FAMILIES = {f.name: f for f in (CHGNET, SEVENN, MACE)}
