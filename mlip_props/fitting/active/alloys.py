"""Binary fcc alloys for active learning: random solid solutions, the ordered fcc prototypes and an
explorer that proposes both, strained and rattled, every round.

* :func:`fcc_solid_solution` — a cubic fcc supercell of ``4 reps^3`` sites holding exactly
  ``round(x N)`` atoms of the first element, placed uniformly at random (a random solid solution;
  special quasirandom structures, A. Zunger et al., Phys. Rev. Lett. 65, 353 (1990), pick the
  arrangement whose pair correlations match the random alloy; here several random draws stand in
  for that). The lattice constant follows Vegard's law between the elements' fcc constants.
* :func:`ordered_fcc` — the ordered fcc superstructures L1_2 (A3B, Cu3Au type), L1_0 (AB, CuAu
  type) and A1 (pure fcc), conventional cubic cell repeated ``reps`` times.
* :class:`AlloyExplorer` — per round: one fresh random solid solution at each composition of
  ``compositions`` and every ordered cell, each under a random symmetric strain (+-``max_strain``,
  plus an isotropic part of the same range) and a Gaussian rattle of ``rattle`` A. Frames are
  scored by the loop (no MD here; :class:`~mlip_props.fitting.explore.MDExplorer` takes the same
  cells as its ``base`` for dynamics).

Units: Angstrom; compositions as the atomic fraction x of the first element.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, reference_states

from ..explore import Explorer, Proposal, strain_cell

#: fractional positions of the 4 sites of the conventional fcc cell
FCC_SITES = np.array([[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
PROTOTYPES = ("A1", "L1_2", "L1_0")


def fcc_lattice_constant(symbol: str, lattice_constants: Mapping[str, float] | None = None) -> float:
    """fcc lattice constant of ``symbol`` (A): from ``lattice_constants`` if given there, else ASE's
    reference state (experimental, :data:`ase.data.reference_states`) when that is fcc."""
    if lattice_constants and symbol in lattice_constants:
        return float(lattice_constants[symbol])
    if symbol not in atomic_numbers:
        raise ValueError(f"unknown element {symbol!r}")
    ref = reference_states[atomic_numbers[symbol]]
    if not ref or ref.get("symmetry") != "fcc":
        raise ValueError(f"{symbol} is not fcc in ASE's reference states; give its lattice constant")
    return float(ref["a"])


def vegard_lattice_constant(elements: Sequence[str], x: float,
                            lattice_constants: Mapping[str, float] | None = None) -> float:
    """Vegard's law a(x) = x a_A + (1 - x) a_B (A) for the binary (A, B) = ``elements``."""
    a_a, a_b = (fcc_lattice_constant(s, lattice_constants) for s in elements)
    return float(x) * a_a + (1.0 - float(x)) * a_b


def _check_pair(elements: Sequence[str]) -> tuple[str, str]:
    if len(elements) != 2 or elements[0] == elements[1]:
        raise ValueError(f"need two different elements, got {list(elements)}")
    for s in elements:
        if s not in atomic_numbers:
            raise ValueError(f"unknown element {s!r}")
    return str(elements[0]), str(elements[1])


def fcc_solid_solution(elements: Sequence[str], x: float, reps: int = 2, rng: np.random.Generator | int | None = 0,
                       a: float | None = None, lattice_constants: Mapping[str, float] | None = None) -> Atoms:
    """A random fcc solid solution A_x B_(1-x): cubic cell of ``4 reps^3`` sites, exactly
    ``round(x N)`` of them A (chosen uniformly at random by ``rng``, a Generator or a seed), the
    rest B; lattice constant ``a`` (A) or Vegard's law. ``info["x"]`` is the realised fraction."""
    ea, eb = _check_pair(elements)
    if not 0.0 <= float(x) <= 1.0:
        raise ValueError(f"composition x must be in [0, 1], got {x}")
    if int(reps) < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    a = float(a) if a is not None else vegard_lattice_constant((ea, eb), x, lattice_constants)
    r = int(reps)
    shifts = np.array([[i, j, k] for i in range(r) for j in range(r) for k in range(r)], float)
    frac = (shifts[:, None, :] + FCC_SITES[None, :, :]).reshape(-1, 3) / r
    n = len(frac)
    n_a = int(round(float(x) * n))
    syms = np.array([eb] * n, dtype=object)
    syms[rng.choice(n, size=n_a, replace=False)] = ea
    at = Atoms(list(syms), scaled_positions=frac, cell=np.eye(3) * a * r, pbc=True)
    at.info["config_type"] = f"solid_solution_x{n_a / n:.3f}"
    at.info["x"] = n_a / n
    return at


def ordered_fcc(prototype: str, elements: Sequence[str], reps: int = 1, a: float | None = None,
                lattice_constants: Mapping[str, float] | None = None) -> Atoms:
    """Ordered fcc superstructure of (A, B) = ``elements``: ``"L1_2"`` A3B (B on the cube corners,
    A on the face centres), ``"L1_0"`` AB (alternating (001) planes of A and B; c/a = 1 start),
    ``"A1"`` pure A; conventional cubic cell repeated ``reps`` times; ``a`` (A) or Vegard's law."""
    ea, eb = _check_pair(elements)
    if prototype == "L1_2":
        syms, x = [eb, ea, ea, ea], 0.75
    elif prototype == "L1_0":
        syms, x = [ea, eb, eb, ea], 0.5  # z = 0: (0,0,0), (.5,.5,0) -> A; z = 1/2: (0,.5,.5), (.5,0,.5) -> B
    elif prototype == "A1":
        syms, x = [ea] * 4, 1.0
    else:
        raise ValueError(f"unknown fcc prototype {prototype!r}; choose from {PROTOTYPES}")
    a = float(a) if a is not None else vegard_lattice_constant((ea, eb), x, lattice_constants)
    at = Atoms(syms, scaled_positions=FCC_SITES, cell=np.eye(3) * a, pbc=True).repeat(int(reps))
    at.info["config_type"] = f"{prototype}_{at.get_chemical_formula(mode='metal', empirical=True)}"
    return at


def cu_au_ordered_cells(reps: int = 2, lattice_constants: Mapping[str, float] | None = None) -> dict[str, Atoms]:
    """fcc Cu, fcc Au, L1_2 Cu3Au, L1_0 CuAu and L1_2 CuAu3, each the cubic cell repeated ``reps``
    times (2: 32 atoms), keyed by formula."""
    lc = lattice_constants
    return {"Cu": ordered_fcc("A1", ("Cu", "Au"), reps, lattice_constants=lc),
            "Au": ordered_fcc("A1", ("Au", "Cu"), reps, lattice_constants=lc),
            "Cu3Au": ordered_fcc("L1_2", ("Cu", "Au"), reps, lattice_constants=lc),
            "CuAu": ordered_fcc("L1_0", ("Cu", "Au"), reps, lattice_constants=lc),
            "CuAu3": ordered_fcc("L1_2", ("Au", "Cu"), reps, lattice_constants=lc)}


def strain_and_rattle(atoms: Atoms, rng: np.random.Generator, max_strain: float, rattle: float) -> Atoms:
    """A copy under a random symmetric strain (components uniform in +-max_strain/2 off the
    diagonal, plus an isotropic part uniform in +-max_strain) and a Gaussian rattle (A)."""
    e = rng.uniform(-max_strain, max_strain, (3, 3))
    e = 0.25 * (e + e.T) + np.eye(3) * rng.uniform(-max_strain, max_strain)
    b = strain_cell(atoms, e)
    b.positions = b.positions + rng.normal(0.0, rattle, b.positions.shape)
    return b


class AlloyExplorer(Explorer):
    """Random fcc solid solutions of ``elements`` at every fraction in ``compositions`` (``n_per_x``
    fresh draws each round) and the ``ordered`` cells (a list of Atoms, e.g. the values of
    :func:`cu_au_ordered_cells`), each strained (+-``max_strain``) and rattled (``rattle`` A).
    Deterministic given the loop's per-round generator."""

    name = "alloy"

    def __init__(self, elements: Sequence[str], compositions: Sequence[float] = (0.25, 0.5, 0.75), reps: int = 2,
                 n_per_x: int = 1, ordered: Sequence[Atoms] = (), max_strain: float = 0.04, rattle: float = 0.08,
                 lattice_constants: Mapping[str, float] | None = None):
        self.elements = _check_pair(elements)
        self.compositions = [float(x) for x in compositions]
        if any(not 0.0 <= x <= 1.0 for x in self.compositions):
            raise ValueError(f"compositions must lie in [0, 1], got {self.compositions}")
        self.reps, self.n_per_x = int(reps), int(n_per_x)
        self.ordered = [a.copy() for a in ordered]
        self.max_strain, self.rattle = float(max_strain), float(rattle)
        self.lattice_constants = dict(lattice_constants or {})

    def propose(self, model: Any, round_index: int, rng: np.random.Generator,
                thresholds: tuple[float, float]) -> Proposal:
        out = []
        for x in self.compositions:
            for _ in range(self.n_per_x):
                ss = fcc_solid_solution(self.elements, x, self.reps, rng, lattice_constants=self.lattice_constants)
                b = strain_and_rattle(ss, rng, self.max_strain, self.rattle)
                b.info["config_type"] = ss.info["config_type"]
                out.append(b)
        for at in self.ordered:
            b = strain_and_rattle(at, rng, self.max_strain, self.rattle)
            b.info["config_type"] = at.info.get("config_type", "ordered")
            out.append(b)
        for b in out:
            b.calc = None
        return Proposal(out)
