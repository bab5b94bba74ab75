"""Potentials: analytic torch potentials, sums, model files, and the name registry."""
from .base import PairPotential, SumPotential, smooth_switch
from .pair import ZBL, LennardJones, Morse
from .registry import known_potentials, load_potential, register_potential
from .serialization import load_model_file, register_model_class, save_potential
from .stillinger_weber import StillingerWeber  # noqa: E402,F401  (registers "sw")
from . import pyscf_oracle  # noqa: E402,F401  (registers "pyscf"; pyscf itself is imported lazily)

for _cls in (LennardJones, Morse, ZBL, SumPotential):
    register_model_class(_cls)

__all__ = [
    "PairPotential", "SumPotential", "smooth_switch", "LennardJones", "Morse", "ZBL",
    "load_potential", "register_potential", "known_potentials",
    "save_potential", "load_model_file", "register_model_class",
]
