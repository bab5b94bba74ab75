"""The atoms of a diatomic: pair specifications ("N2", "CO", ("H", "Cl")) and isotope masses.

Reduced masses use the most abundant isotopes (NIST "Atomic Weights and Isotopic Compositions",
AME2016 masses) unless the user names other isotopes ("D", "13C") or gives masses in amu.
"""
from __future__ import annotations

import re
from typing import Any

from ase.data import atomic_masses, atomic_numbers

from ..backend.batch import to_atoms
from ..backend.inputs import is_single_structure

#: symbol -> mass (amu) of the most abundant isotope (NIST "Atomic Weights and Isotopic
#: Compositions", AME2016 masses). Elements not listed fall back to the standard atomic weight.
MOST_ABUNDANT_ISOTOPE_AMU: dict[str, float] = {
    "H": 1.00782503223, "He": 4.00260325413, "Li": 7.0160034366, "Be": 9.012183065,
    "B": 11.00930536, "C": 12.0, "N": 14.00307400443, "O": 15.99491461957, "F": 18.99840316273,
    "Ne": 19.9924401762, "Na": 22.9897692820, "Mg": 23.985041697, "Al": 26.98153853,
    "Si": 27.97692653465, "P": 30.97376199842, "S": 31.9720711744, "Cl": 34.968852682,
    "Ar": 39.9623831237, "K": 38.9637064864, "Ca": 39.962590863, "Br": 78.9183376,
    "Kr": 83.9114977282, "I": 126.9044719, "Xe": 131.9041550856, "Cs": 132.905451961,
}
#: named isotopes accepted in ``masses`` (amu).
NAMED_ISOTOPES_AMU: dict[str, float] = {
    "D": 2.01410177812, "T": 3.0160492779, "13C": 13.00335483507, "15N": 15.00010889888,
    "18O": 17.99915961286, "37Cl": 36.965902602,
}


def isotope_mass(symbol: str) -> tuple[float, bool]:
    """Mass (amu) of the most abundant isotope of ``symbol`` (or of a named isotope such as "D")
    and whether it came from the isotope table (``False``: standard atomic weight)."""
    if symbol in NAMED_ISOTOPES_AMU:
        return NAMED_ISOTOPES_AMU[symbol], True
    if symbol in MOST_ABUNDANT_ISOTOPE_AMU:
        return MOST_ABUNDANT_ISOTOPE_AMU[symbol], True
    if symbol not in atomic_numbers:
        raise ValueError(f"unknown element {symbol!r}")
    return float(atomic_masses[atomic_numbers[symbol]]), False


_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")


def parse_pair(spec: Any, index: int = 0) -> tuple[str, str]:
    """"N2", "CO", "HCl", "H-F", ("C", "O") or a two-atom structure (ASE ``Atoms``, pymatgen
    ``Molecule``; its elements, not its geometry) -> a pair of element symbols; ValueError otherwise."""
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and all(isinstance(s, str) for s in spec):
        syms = [s.strip() for s in spec]
    elif is_single_structure(spec):
        syms = to_atoms(spec).get_chemical_symbols()
        if len(syms) != 2:
            raise ValueError(f"structure {index}: {len(syms)} atoms ({''.join(syms)}); a diatomic needs 2")
    elif isinstance(spec, str):
        text = spec.replace("-", "").replace(" ", "")
        if not text or _TOKEN.sub("", text):
            raise ValueError(f"pair {index}: cannot parse {spec!r} as a diatomic (e.g. 'N2', 'CO', ('H', 'Cl'))")
        syms = []
        for sym, count in _TOKEN.findall(text):
            syms += [sym] * (int(count) if count else 1)
    else:
        raise ValueError(f"pair {index}: expected a formula like 'N2' or a tuple of two symbols, got {spec!r}")
    if len(syms) != 2:
        raise ValueError(f"pair {index}: {spec!r} has {len(syms)} atoms, a diatomic needs 2")
    for s in syms:
        if s not in atomic_numbers or atomic_numbers[s] == 0:
            raise ValueError(f"pair {index}: unknown element {s!r} in {spec!r}")
    return syms[0], syms[1]


def pair_name(a: str, b: str) -> str:
    """"N2" for a homonuclear pair, "CO" otherwise."""
    return f"{a}2" if a == b else f"{a}{b}"

def pair_masses(syms: list[tuple[str, str]], masses: Any,
                single: bool) -> tuple[list[tuple[float, float]], list[list[str]]]:
    """Masses (amu) of each pair's atoms (``masses``: per pair two masses or isotope names, or
    ``None`` for the most abundant isotopes) and a note per pair where a standard atomic weight
    stands in for a missing isotope mass."""
    if masses is None:
        mass_list = [None] * len(syms)
    elif single:
        mass_list = [masses]
    else:
        mass_list = list(masses)
        if len(mass_list) != len(syms):
            raise ValueError(f"masses: got {len(mass_list)} entries for {len(syms)} pairs")
    pair_masses, notes_all = [], []
    for i, ((a, b), m) in enumerate(zip(syms, mass_list)):
        notes: list[str] = []
        if m is None:
            ms = []
            for s in (a, b):
                v, ok = isotope_mass(s)
                if not ok:
                    notes.append(f"no isotope mass for {s}: standard atomic weight {v:.4f} amu used")
                ms.append(v)
        else:
            if len(m) != 2:
                raise ValueError(f"pair {i}: masses need two entries, got {m!r}")
            ms = [isotope_mass(x)[0] if isinstance(x, str) else float(x) for x in m]
            if min(ms) <= 0:
                raise ValueError(f"pair {i}: masses must be positive, got {ms}")
        pair_masses.append((ms[0], ms[1]))
        notes_all.append(notes)
    return pair_masses, notes_all
