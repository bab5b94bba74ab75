"""Reference "oracles": any ASE calculator behind the backend's evaluate interface.

Oracles are the expensive reference (EMT, pyscf, DFT codes, pretrained universal potentials)
that fitted potentials are trained on and compared with. They run structure by structure
outside autograd; Hessians come from central finite differences of the forces.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import chemical_symbols

from .batch import COINCIDENT_ATOMS_A, Batch, validate_atoms


class OracleError(RuntimeError):
    """An oracle calculation failed; the message names the structure and carries the oracle's own error."""


class OraclePotential:
    """Wrap an ASE calculator so :func:`mlip_props.evaluate` can use it like a torch potential.

    ``calculator``: a calculator instance, or a zero-argument factory returning one (preferred
    for calculators that keep state between structures). ``elements``: atomic numbers the
    oracle supports (``None``: any). ``hessian_delta``: displacement (Angstrom) of the central
    finite differences used for Hessians (the result is symmetrised, (H + H^T)/2).
    """

    is_oracle = True
    n_members = 1
    cutoff = None

    def __init__(
        self,
        calculator: Calculator | Callable[[], Calculator],
        name: str | None = None,
        elements: set[int] | None = None,
        hessian_delta: float = 0.005,
    ):
        self._calculator = calculator
        self.name = name or (type(calculator).__name__ if isinstance(calculator, Calculator) else "oracle")
        self.elements = None if elements is None else frozenset(int(z) for z in elements)
        self.hessian_delta = float(hessian_delta)
        self.n_calls = 0  # single-point calculations done (finite-difference points included)

    def __repr__(self) -> str:
        return f"OraclePotential({self.name!r})"

    def to(self, *args, **kwargs) -> "OraclePotential":  # oracles live on the CPU
        return self

    def calculator(self) -> Calculator:
        c = self._calculator
        return c if isinstance(c, Calculator) else c()

    # ----------------------------------------------------------------- checks
    def check_atoms(self, atoms: Atoms, index: int) -> None:
        """The structure checks of torch potentials (atoms, finite positions, a non-singular cell,
        no coincident atoms) and the oracle's elements; ``ValueError`` naming structure ``index``."""
        validate_atoms(atoms, index)
        _check_no_coincident_atoms(atoms, index)
        if self.elements is None:
            return
        bad = sorted(set(atoms.get_atomic_numbers().tolist()) - set(self.elements))
        if bad:
            known = ", ".join(chemical_symbols[z] for z in sorted(self.elements))
            raise ValueError(
                f"structure {index}: element(s) {', '.join(chemical_symbols[z] for z in bad)} not supported "
                f"by oracle {self.name} (supported: {known})"
            )

    def check_elements(self, batch: Batch) -> None:
        for k, a in enumerate(batch.to_atoms()):
            self.check_atoms(a, k)

    # ----------------------------------------------------------------- single points
    def single_point(self, atoms: Atoms, properties: Sequence[str], index: int = 0) -> dict[str, Any]:
        """Energy (eV), forces (eV/A), stress (Voigt eV/A^3) of one structure, as requested."""
        a = atoms.copy()
        a.calc = self.calculator()
        out: dict[str, Any] = {}
        try:
            out["energy"] = float(a.get_potential_energy())
            if "forces" in properties or "hessian" in properties:
                out["forces"] = np.array(a.get_forces(), dtype=float)
            if "stress" in properties:
                out["stress"] = np.array(a.get_stress(voigt=True), dtype=float) if a.pbc.all() else np.full(6, np.nan)
        except Exception as exc:
            raise OracleError(f"structure {index}: oracle {self.name} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            self.n_calls += 1
        self._check_finite(out, a, index)
        return out

    def _check_finite(self, out: dict[str, Any], atoms: Atoms, index: int) -> None:
        """``OracleError`` when the oracle answered a non-finite number (the stress of a structure that
        is not periodic in every direction is NaN by convention and not checked)."""
        for key, value in out.items():
            if key == "stress" and not atoms.pbc.all():
                continue
            if not np.all(np.isfinite(value)):
                raise OracleError(
                    f"structure {index}: oracle {self.name} returned a non-finite {key} (NaN or inf); "
                    "the structure is outside what the oracle can describe"
                )

    def finite_difference_hessian(self, atoms: Atoms, index: int = 0) -> np.ndarray:
        """Hessian d2E/dx dx' (3n x 3n, eV/A^2) by central differences of the forces, symmetrised."""
        n = len(atoms)
        h = np.zeros((3 * n, 3 * n))
        d = self.hessian_delta
        for k in range(3 * n):
            fs = []
            for sign in (1.0, -1.0):
                a = atoms.copy()
                pos = a.get_positions()
                pos[k // 3, k % 3] += sign * d
                a.set_positions(pos)
                fs.append(self.single_point(a, ("forces",), index)["forces"].reshape(-1))
            h[:, k] = -(fs[0] - fs[1]) / (2 * d)
        return 0.5 * (h + h.T)

    def compute(self, atoms_list: Sequence[Atoms], properties: Sequence[str], progress: bool = False) -> dict[str, Any]:
        """Results for many structures, in the layout of :class:`~mlip_props.backend.evaluate.EvaluationResult`."""
        for k, a in enumerate(atoms_list):
            self.check_atoms(a, k)
        energies, forces, stresses, hessians = [], [], [], []
        iterator = enumerate(atoms_list)
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, total=len(atoms_list), desc=f"oracle {self.name}")
        for k, a in iterator:
            sp = self.single_point(a, properties, k)
            energies.append(sp["energy"])
            if "forces" in properties:
                forces.append(sp["forces"])
            if "stress" in properties:
                stresses.append(sp["stress"])
            if "hessian" in properties:
                hessians.append(self.finite_difference_hessian(a, k))
        return {
            "energies_eV": np.array(energies),
            "forces_eV_A": forces if "forces" in properties else None,
            "stress_eV_A3": np.array(stresses) if "stress" in properties else None,
            "hessians_eV_A2": hessians if "hessian" in properties else None,
        }

    def evaluate_batch(self, batch: Batch, properties: Sequence[str]):
        """Tensor results for a :class:`Batch` (used by batched algorithms such as relaxation)."""
        from .evaluate import BatchOutput

        res = self.compute(batch.to_atoms(), properties)
        t = lambda x: torch.as_tensor(np.asarray(x), dtype=batch.dtype, device=batch.device)  # noqa: E731
        return BatchOutput(
            energies=t(res["energies_eV"]),
            forces=None if res["forces_eV_A"] is None else t(np.concatenate(res["forces_eV_A"])),
            stress=None if res["stress_eV_A3"] is None else t(res["stress_eV_A3"]),
            hessians=None if res["hessians_eV_A2"] is None else [t(h) for h in res["hessians_eV_A2"]],
        )


#: Radius (Angstrom) of the neighbour search for coincident atoms: small enough to be cheap, large
#: enough that the neighbour-list library's bins stay few (a radius of 1e-3 A overflows them).
_COINCIDENCE_SEARCH_A = 0.5


def _check_no_coincident_atoms(atoms: Atoms, index: int) -> None:
    """``ValueError`` naming structure ``index`` when two atoms (or an atom and a periodic image)
    are closer than ``COINCIDENT_ATOMS_A``, as the torch potentials' neighbour lists refuse them."""
    if len(atoms) < 2 and not atoms.pbc.any():
        return
    from .neighbors import structure_neighbors

    i, j, _shifts, d, _vectors = structure_neighbors(
        atoms.get_positions(), np.asarray(atoms.get_cell()), atoms.get_pbc(), _COINCIDENCE_SEARCH_A, half=True,
        index=index,
    )
    close = d < COINCIDENT_ATOMS_A
    if close.any():
        k = int(np.argmax(close))
        raise ValueError(f"structure {index}: atoms {int(i[k])} and {int(j[k])} coincide (distance {d[k]:.2e} A)")


def emt_oracle() -> OraclePotential:
    """ASE's effective-medium theory (Jacobsen, Stoltze, Norskov, Surf. Sci. 366, 394 (1996)):
    the embedded default oracle for Al, Cu, Ag, Au, Ni, Pd, Pt (and rough H, C, N, O)."""
    from ase.calculators.emt import EMT, parameters

    elements = {chemical_symbols.index(s) for s in parameters}
    return OraclePotential(EMT, name="emt", elements=elements)
