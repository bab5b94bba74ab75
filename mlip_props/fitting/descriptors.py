"""Atom-centred symmetry functions (Behler-Parrinello), batched and differentiable in torch.

For atom i with neighbours j (edges i -> j of the backend's neighbour graph, any number of
structures at once):

* radial G2, resolved by the neighbour's element s::

    G2[i, s, k] = sum_{j in s} exp(-eta_k (r_ij - rs_k)^2) fc(r_ij)

* angular G4 (``angular_kind="g4"``) or G5 (``"g5"``), resolved by the unordered element pair
  (s_j, s_k), summed over unordered neighbour pairs j < k (j != k)::

    G4 = 2^(1-zeta) sum (1 + lambda cos theta_ijk)^zeta exp(-eta (r_ij^2 + r_ik^2 + r_jk^2))
         fc(r_ij) fc(r_ik) fc(r_jk)
    G5 = 2^(1-zeta) sum (1 + lambda cos theta_ijk)^zeta exp(-eta ((r_ij-rs)^2 + (r_ik-rs)^2))
         fc(r_ij) fc(r_ik)

Distances in Angstrom, eta in 1/Angstrom^2. References: J. Behler and M. Parrinello, Phys. Rev.
Lett. 98, 146401 (2007); J. Behler, J. Chem. Phys. 134, 074106 (2011) (G2/G4/G5); the shifted
angular form follows J. S. Smith et al., Chem. Sci. 8, 3192 (2017) (ANI).

Everything is computed with whole-batch tensor operations (no Python loop over atoms or
structures): radial terms over the edge list, angular terms over neighbour-pair "triplets"
built from the edge list in torch (as TorchANI's AEVComputer does), so descriptors are
differentiable (forces, stress, Hessians by autograd) on any device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from ase.data import atomic_numbers, chemical_symbols

from ..backend.neighbors import neighbor_pairs  # noqa: F401  (re-exported: angular terms use it)

CUTOFF_FUNCTIONS = ("cos", "poly")


def cutoff_function(r: torch.Tensor, rc: float, kind: str = "poly") -> torch.Tensor:
    """Smooth cutoff fc(r), 1 at r = 0 and 0 for r >= rc.

    ``"cos"``: 0.5 (cos(pi r / rc) + 1) (Behler 2011; C1 at rc). ``"poly"``: 1 - 10x^3 + 15x^4 - 6x^5
    with x = r / rc (C2 at rc, so Hessians are continuous; default).
    """
    x = (r / rc).clamp(0.0, 1.0)
    if kind == "cos":
        return 0.5 * (torch.cos(math.pi * x) + 1.0)
    if kind == "poly":
        return 1.0 - x**3 * (10.0 - 15.0 * x + 6.0 * x * x)
    raise ValueError(f"unknown cutoff function {kind!r}; choose from {CUTOFF_FUNCTIONS}")




@dataclass
class SymmetryFunctionConfig:
    """Parameters of a symmetry-function set (JSON-serialisable; stored in model files).

    ``elements``: chemical symbols (order defines the feature layout). ``radial``: list of
    (eta [1/A^2], rs [A]); ``angular``: list of (eta [1/A^2], zeta [positive int], lambda [+-1],
    rs [A]). ``cutoff``/``angular_cutoff`` in Angstrom.
    """

    elements: list[str]
    cutoff: float = 5.0
    angular_cutoff: float = 3.5
    radial: list[tuple[float, float]] = field(default_factory=list)
    angular: list[tuple[float, int, float, float]] = field(default_factory=list)
    angular_kind: str = "g5"
    cutoff_function: str = "poly"

    def to_dict(self) -> dict[str, Any]:
        return {
            "elements": list(self.elements), "cutoff": float(self.cutoff),
            "angular_cutoff": float(self.angular_cutoff),
            "radial": [[float(a), float(b)] for a, b in self.radial],
            "angular": [[float(e), int(z), float(l), float(rs)] for e, z, l, rs in self.angular],
            "angular_kind": self.angular_kind, "cutoff_function": self.cutoff_function,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SymmetryFunctionConfig":
        return cls(
            elements=list(d["elements"]), cutoff=float(d["cutoff"]), angular_cutoff=float(d["angular_cutoff"]),
            radial=[(float(a), float(b)) for a, b in d["radial"]],
            angular=[(float(e), int(z), float(l), float(rs)) for e, z, l, rs in d["angular"]],
            angular_kind=d.get("angular_kind", "g5"), cutoff_function=d.get("cutoff_function", "poly"),
        )


def preset(
    elements: Sequence[str],
    cutoff: float = 5.0,
    angular_cutoff: float = 3.5,
    n_radial: int = 8,
    r_min: float = 0.8,
    zetas: Sequence[int] = (1, 2, 4),
    angular_etas: Sequence[float] = (0.005, 0.05),
    angular_kind: str = "g5",
    cutoff_function: str = "poly",
) -> SymmetryFunctionConfig:
    """A systematic grid: ``n_radial`` shifted Gaussians with centres rs evenly spaced on
    [r_min, cutoff] and widths eta = 1 / (2 d^2) (d the centre spacing), so neighbouring
    Gaussians overlap at about one standard deviation; angular terms for every (eta, zeta,
    lambda = +-1) in the grid (rs = 0). Units: Angstrom, 1/Angstrom^2.
    """
    if n_radial < 1:
        raise ValueError("n_radial must be >= 1")
    if not 0 < r_min < cutoff:
        raise ValueError(f"need 0 < r_min < cutoff, got r_min={r_min}, cutoff={cutoff}")
    if n_radial == 1:
        centres, d = [r_min], cutoff - r_min
    else:
        d = (cutoff - r_min) / (n_radial - 1)
        centres = [r_min + k * d for k in range(n_radial)]
    eta = 1.0 / (2.0 * d * d)
    radial = [(eta, rs) for rs in centres]
    angular = [(float(e), int(z), float(l), 0.0) for e in angular_etas for z in zetas for l in (1.0, -1.0)]
    return SymmetryFunctionConfig(
        elements=list(elements), cutoff=cutoff, angular_cutoff=angular_cutoff, radial=radial,
        angular=angular, angular_kind=angular_kind, cutoff_function=cutoff_function,
    )


class SymmetryFunctions(torch.nn.Module):
    """Behler-Parrinello symmetry functions of every atom of a batch (see module docstring).

    ``forward(numbers, edge_index, edge_vectors)`` -> (N, n_features) descriptors. Edges longer
    than ``cutoff`` are ignored. Parameters live in buffers so ``.to(device, dtype)`` moves them.
    """

    def __init__(self, config: SymmetryFunctionConfig):
        super().__init__()
        self.config = config
        if config.angular_kind not in ("g4", "g5"):
            raise ValueError(f"angular_kind must be 'g4' or 'g5', got {config.angular_kind!r}")
        if config.cutoff_function not in CUTOFF_FUNCTIONS:
            raise ValueError(f"unknown cutoff function {config.cutoff_function!r}")
        if config.angular and config.angular_cutoff > config.cutoff:
            raise ValueError("angular_cutoff must not exceed cutoff")
        for e, z, l, _ in config.angular:
            if int(z) < 1 or int(z) != z:
                raise ValueError(f"angular zeta must be a positive integer, got {z}")
            if l not in (1.0, -1.0):
                raise ValueError(f"angular lambda must be +1 or -1, got {l}")
        self.cutoff = float(config.cutoff)
        self.angular_cutoff = float(config.angular_cutoff)
        zs = [atomic_numbers[s] for s in config.elements]
        self.n_species = len(zs)
        table = torch.full((max(zs) + 1,), -1, dtype=torch.long)
        table[torch.tensor(zs)] = torch.arange(len(zs))
        self.register_buffer("species_of_z", table, persistent=False)
        rad = torch.tensor(config.radial, dtype=torch.float64).reshape(-1, 2)
        ang = torch.tensor(config.angular, dtype=torch.float64).reshape(-1, 4)
        self.register_buffer("r_eta", rad[:, 0].clone(), persistent=False)
        self.register_buffer("r_rs", rad[:, 1].clone(), persistent=False)
        self.register_buffer("a_eta", ang[:, 0].clone(), persistent=False)
        # angular terms factorise into an angle part (zeta, lambda) and a radial part (eta, rs):
        # compute each distinct factor once per neighbour pair and multiply (as ANI does)
        akeys = sorted({(int(z), float(l)) for _, z, l, _ in config.angular})
        rkeys = sorted({(float(e), float(rs) if config.angular_kind == "g5" else 0.0) for e, _, _, rs in config.angular})
        self._ang_keys = akeys
        self.register_buffer("a_col", torch.tensor([akeys.index((int(z), float(l))) for _, z, l, _ in config.angular],
                                                   dtype=torch.long), persistent=False)
        self.register_buffer("a_row", torch.tensor(
            [rkeys.index((float(e), float(rs) if config.angular_kind == "g5" else 0.0)) for e, _, _, rs in config.angular],
            dtype=torch.long), persistent=False)
        self.register_buffer("u_eta", torch.tensor([k[0] for k in rkeys], dtype=torch.float64).reshape(-1),
                             persistent=False)
        self.register_buffer("u_rs", torch.tensor([k[1] for k in rkeys], dtype=torch.float64).reshape(-1),
                             persistent=False)
        s = self.n_species
        pair = torch.zeros(s, s, dtype=torch.long)
        k = 0
        for a in range(s):  # element-pair lookup table (elements, not data)
            for b in range(a, s):
                pair[a, b] = pair[b, a] = k
                k += 1
        self.n_pairs = k
        self.register_buffer("pair_index", pair, persistent=False)

    @property
    def n_radial(self) -> int:
        return int(self.r_eta.numel())

    @property
    def n_angular(self) -> int:
        return int(self.a_eta.numel())

    @property
    def n_features(self) -> int:
        return self.n_species * self.n_radial + self.n_pairs * self.n_angular

    def feature_names(self) -> list[str]:
        el = self.config.elements
        names = [f"G2[{el[s]}](eta={e:.4g},rs={rs:.3g})" for s in range(self.n_species) for e, rs in self.config.radial]
        pairs = [(el[a], el[b]) for a in range(self.n_species) for b in range(a, self.n_species)]
        kind = self.config.angular_kind.upper()
        names += [f"{kind}[{p}-{q}](eta={e:.4g},zeta={z},lambda={l:+.0f},rs={rs:.3g})"
                  for p, q in pairs for e, z, l, rs in self.config.angular]
        return names

    def species(self, numbers: torch.Tensor) -> torch.Tensor:
        """Species index (0..n_species-1) of atomic numbers; ValueError for unknown elements."""
        table = self.species_of_z.to(numbers.device)
        bad = (numbers >= table.numel()) | (numbers < 0)
        sp = torch.where(bad, torch.full_like(numbers, -1), table[numbers.clamp(0, table.numel() - 1)])
        if bool((sp < 0).any()):
            z = int(numbers[torch.nonzero(sp < 0)[0, 0]])
            raise ValueError(f"element {chemical_symbols[z]} is not in the descriptor's elements {self.config.elements}")
        return sp

    def forward(self, numbers: torch.Tensor, edge_index: torch.Tensor, edge_vectors: torch.Tensor) -> torch.Tensor:
        n = int(numbers.shape[0])
        dt, dev = edge_vectors.dtype, edge_vectors.device
        sp = self.species(numbers)
        r = edge_vectors.norm(dim=-1)
        keep = r < self.cutoff
        ei, vec, r = edge_index[:, keep], edge_vectors[keep], r[keep]
        i, j = ei
        fc = cutoff_function(r, self.cutoff, self.config.cutoff_function)
        # ---- radial G2 over edges: (E, n_radial) scattered to (N * n_species, n_radial)
        dr = r[:, None] - self.r_rs.to(dt)
        g2 = torch.exp(-self.r_eta.to(dt) * dr * dr) * fc[:, None]
        rad = torch.zeros(n * self.n_species, self.n_radial, dtype=dt, device=dev)
        rad = rad.index_add(0, i * self.n_species + sp[j], g2).reshape(n, self.n_species * self.n_radial)
        if self.n_angular == 0:
            return rad
        # ---- angular terms over neighbour pairs of the (shorter) angular edges
        ka = torch.nonzero(r < self.angular_cutoff).squeeze(1)
        e1, e2 = neighbor_pairs(i[ka], n)
        e1, e2 = ka[e1], ka[e2]
        v1, v2 = vec[e1], vec[e2]
        r1, r2 = r[e1], r[e2]
        cos = (v1 * v2).sum(-1) / (r1 * r2)
        fca = self.config.cutoff_function
        f1 = cutoff_function(r1, self.angular_cutoff, fca)
        f2 = cutoff_function(r2, self.angular_cutoff, fca)
        # angle factors 2^(1-zeta) (1 + lambda cos)^zeta for integer zeta by repeated
        # multiplication: pow's double backward gives 0 * inf at 1 + lambda cos = 0 (collinear
        # neighbours, e.g. in perfect fcc); products stay finite.
        zmax = max(z for z, _ in self._ang_keys)
        powers: dict[float, list[torch.Tensor]] = {}
        for lam in sorted({l for _, l in self._ang_keys}):  # lambda = +1 / -1
            p = [1.0 + lam * cos]
            for _ in range(zmax - 1):
                p.append(p[-1] * p[0])
            powers[lam] = p
        ang_u = torch.stack([powers[l][z - 1] * 2.0 ** (1 - z) for z, l in self._ang_keys], dim=1)
        eta = self.u_eta.to(dt)
        if self.config.angular_kind == "g4":
            r3 = (v2 - v1).norm(dim=-1)
            f3 = cutoff_function(r3, self.angular_cutoff, fca)
            rad_u = torch.exp(-eta * (r1 * r1 + r2 * r2 + r3 * r3)[:, None]) * (f1 * f2 * f3)[:, None]
        else:
            rs = self.u_rs.to(dt)
            d1, d2 = r1[:, None] - rs, r2[:, None] - rs
            rad_u = torch.exp(-eta * (d1 * d1 + d2 * d2)) * (f1 * f2)[:, None]
        # outer product of the distinct factors (T, n_rad_u * n_ang_u); the requested terms are
        # picked as columns AFTER the scatter (from the small per-atom array: cheaper than
        # gathering columns of the per-pair array)
        nu = ang_u.shape[1]
        terms = (rad_u[:, :, None] * ang_u[:, None, :]).reshape(rad_u.shape[0], rad_u.shape[1] * nu)
        centre = i[e1]
        slot = centre * self.n_pairs + self.pair_index[sp[j[e1]], sp[j[e2]]]
        ang = torch.zeros(n * self.n_pairs, terms.shape[1], dtype=dt, device=dev).index_add(0, slot, terms)
        ang = ang.index_select(1, self.a_row * nu + self.a_col).reshape(n, self.n_pairs * self.n_angular)
        return torch.cat([rad, ang], dim=1)


def compute_descriptors(
    structures: Any, config: SymmetryFunctionConfig, dtype: torch.dtype = torch.float64, device: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Descriptors of many structures at once: returns ((N, F) descriptors, (N,) structure index)."""
    from ..backend import Batch, build_neighbor_graph, edge_vectors

    batch = Batch.from_structures(list(structures) if not hasattr(structures, "positions") else [structures],
                                  dtype=dtype, device=device)
    sf = SymmetryFunctions(config).to(batch.device)
    graph = build_neighbor_graph(batch, config.cutoff)
    return sf(batch.numbers, graph.edge_index, edge_vectors(batch, graph)), batch.structure_index
