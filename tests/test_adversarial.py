"""Adversarial battery: bad structures x properties, bad numeric parameters x properties, CLI calls x exit codes.

Every bad input must be refused with a ``ValueError`` whose message names the structure or the
parameter; none may surface as a foreign exception or come back as a result."""
from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from mlip_props import evaluate
from mlip_props.cli import EXIT_USAGE, main
from mlip_props.potentials import load_potential
from mlip_props.properties.diatomic import diatomic
from mlip_props.properties.elastic import elastic_tensor
from mlip_props.properties.eos import equation_of_state
from mlip_props.properties.phonons import phonons
from mlip_props.properties.relax import relax
from mlip_props.properties.thermal.qha import quasi_harmonic
from mlip_props.properties.vibrations import vibrations
from mlip_props.structures import load_structure
from mlip_props.validation import check_number


def _nan_positions():
    a = bulk("Cu", cubic=True)
    a.positions[2, 1] = np.nan
    return a


def _coincident():
    a = bulk("Cu", cubic=True)
    a.positions[1] = a.positions[0]
    return a


def _thin_cell():
    return Atoms("Cu", cell=np.diag([1e-5, 3.0, 3.0]), pbc=True)


def _singular_cell():
    return Atoms("Cu2", positions=[[0, 0, 0], [1, 1, 1]], cell=[[1, 0, 0], [2, 0, 0], [0, 0, 3]], pbc=True)


def _empty():
    return Atoms(cell=np.eye(3) * 3.6, pbc=True)


def _unknown_element():
    return bulk("Fe")  # not in EMT's elements


BAD_STRUCTURES = {
    "nan positions": (_nan_positions, "non-finite"),
    "coincident atoms": (_coincident, "coincide|too close"),
    "thin cell": (_thin_cell, "thick"),
    "singular cell": (_singular_cell, "singular|zero-volume"),
    "no atoms": (_empty, "no atoms"),
    "unknown element": (_unknown_element, "not supported"),
}

PERIODIC_PROPERTIES = {
    "evaluate": lambda pot, s: evaluate(pot, s, ("energy", "forces", "stress")),
    "relax": lambda pot, s: relax(pot, s),
    "eos": lambda pot, s: equation_of_state(pot, s),
    "elastic": lambda pot, s: elastic_tensor(pot, s),
    "eos unrelaxed": lambda pot, s: equation_of_state(pot, s, relaxation=False),
    "elastic unrelaxed": lambda pot, s: elastic_tensor(pot, s, relaxation=False),
}

#: without a relaxation the references are first evaluated inside the plan's joint call: its error
#: must still name the input structure, not the expanded point ("structure 11" of an 11-point EOS)
_CASES = [pytest.param(case, prop)
          for case in sorted(BAD_STRUCTURES) for prop in sorted(PERIODIC_PROPERTIES)]


@pytest.fixture(scope="module")
def emt():
    return load_potential("emt")


@pytest.mark.parametrize("case, prop", _CASES)
def test_bad_structure_is_refused_naming_it(emt, prop, case):
    make, message = BAD_STRUCTURES[case]
    structures = [bulk("Cu"), make()]  # the bad one second: the message must say "structure 1"
    with pytest.raises(ValueError, match=rf"structure 1\b.*({message})"):
        PERIODIC_PROPERTIES[prop](emt, structures)


@pytest.mark.parametrize("prop", ["eos", "elastic"])
def test_molecule_for_a_periodic_property_is_refused(emt, prop):
    with pytest.raises(ValueError, match="structure 0"):
        PERIODIC_PROPERTIES[prop](emt, [molecule("N2")])


def test_periodic_cell_for_vibrations_is_refused(emt):
    with pytest.raises(ValueError, match="structure 0: vibrations"):
        vibrations(emt, bulk("Cu", cubic=True))


NAN, INF = math.nan, math.inf

BAD_PARAMETERS = [
    # (property, call, parameter named in the message)
    ("eos", lambda p: equation_of_state(p, bulk("Cu"), n_points=-3), "n_points"),
    ("eos", lambda p: equation_of_state(p, bulk("Cu"), n_points=NAN), "n_points"),
    ("eos", lambda p: equation_of_state(p, bulk("Cu"), n_points=7.5), "n_points"),
    ("eos", lambda p: equation_of_state(p, bulk("Cu"), volume_range=NAN), "volume_range"),
    ("eos", lambda p: equation_of_state(p, bulk("Cu"), volume_range=-0.1), "volume_range"),
    ("eos", lambda p: equation_of_state(p, bulk("Cu"), relaxation={"max_steps": -1}), "max_steps"),
    ("eos", lambda p: equation_of_state(p, bulk("Cu"), relaxation={"pressure_GPa": NAN}), "pressure_GPa"),
    ("elastic", lambda p: elastic_tensor(p, bulk("Cu"), strains=[NAN, 0.01]), "strains"),
    ("elastic", lambda p: elastic_tensor(p, bulk("Cu"), strains=[0.5, 0.01]), "strains"),
    ("elastic", lambda p: elastic_tensor(p, bulk("Cu"), max_residual_stress_GPa=-1.0), "max_residual_stress_GPa"),
    ("elastic", lambda p: elastic_tensor(p, bulk("Cu"), symprec=NAN), "symprec"),
    ("relax", lambda p: relax(p, bulk("Cu"), fmax=-0.01), "fmax"),
    ("relax", lambda p: relax(p, bulk("Cu"), fmax=NAN), "fmax"),
    ("relax", lambda p: relax(p, bulk("Cu"), max_steps=-5), "max_steps"),
    ("relax", lambda p: relax(p, bulk("Cu"), max_steps=2.5), "max_steps"),
    ("relax", lambda p: relax(p, bulk("Cu"), relax_cell=True, pressure_GPa=INF), "pressure_GPa"),
    ("relax", lambda p: relax(p, bulk("Cu"), relax_cell=True, smax_GPa=0.0), "smax_GPa"),
    ("vibrations", lambda p: vibrations(p, molecule("N2"), temperature_K=-5.0), "temperature_K"),
    ("vibrations", lambda p: vibrations(p, molecule("N2"), temperature_K=NAN), "temperature_K"),
    ("vibrations", lambda p: vibrations(p, molecule("N2"), pressure_Pa=0.0), "pressure_Pa"),
    ("vibrations", lambda p: vibrations(p, molecule("N2"), symmetry_number=0), "symmetry_number"),
    ("vibrations", lambda p: vibrations(p, molecule("N2"), spin=-1.0), "spin"),
    ("vibrations", lambda p: vibrations(p, molecule("N2"), max_newton_steps=-1), "max_newton_steps"),
    ("diatomic", lambda p: diatomic(p, "Cu2", r_min_A=-1.0), "r_min_A"),
    ("diatomic", lambda p: diatomic(p, "Cu2", r_max_A=NAN), "r_max_A"),
    ("diatomic", lambda p: diatomic(p, "Cu2", n_points=3), "n_points"),
    ("diatomic", lambda p: diatomic(p, "Cu2", n_refine=2.5), "n_refine"),
    ("diatomic", lambda p: diatomic(p, "Cu2", tol_A=0.0), "tol_A"),
    ("diatomic", lambda p: diatomic(p, "Cu2", max_passes=-1), "max_passes"),
    # QHA: refused before the relaxations start
    ("qha", lambda p: quasi_harmonic(p, bulk("Cu"), temperatures_K=[-10.0, 0.0, 10.0]), "temperatures_K"),
    ("qha", lambda p: quasi_harmonic(p, bulk("Cu"), temperatures_K=[300.0, 200.0, 100.0]), "temperatures_K"),
    ("qha", lambda p: quasi_harmonic(p, bulk("Cu"), temperatures_K=[0.0, NAN, 20.0]), "temperatures_K"),
    ("qha", lambda p: quasi_harmonic(p, bulk("Cu"), pressure_GPa=NAN), "pressure_GPa"),
    ("qha", lambda p: quasi_harmonic(p, bulk("Cu"), pressure_GPa=INF), "pressure_GPa"),
    ("qha", lambda p: quasi_harmonic(p, bulk("Cu"), volume_factors=[0.0, 0.9, 1.0, 1.1, 1.2]), "volume_factors"),
    ("qha", lambda p: quasi_harmonic(p, bulk("Cu"), volume_factors=[NAN, 0.9, 1.0, 1.1, 1.2]), "volume_factors"),
    ("qha", lambda p: quasi_harmonic(p, bulk("Cu"), volume_factors=[1.0] * 7), "volume_factors"),
    ("qha", lambda p: quasi_harmonic(p, bulk("Cu"), volume_factors=[0.98, 1.0, 1.02]), "volume_factors"),
    ("qha", lambda p: quasi_harmonic(p, bulk("Cu"), eos="parabola"), "eos"),
    ("qha", lambda p: quasi_harmonic(p, bulk("Cu"), mesh=[-1, 2, 2]), "mesh"),
    # potential specs
    ("potential", lambda p: load_potential("lj:epsilon=nan"), "epsilon"),
    ("potential", lambda p: load_potential("lj:sigma=-2.3"), "sigma"),
    ("potential", lambda p: load_potential("morse:D=inf,a=1.3,r0=2.6"), "'D'"),
    ("potential", lambda p: load_potential("morse:D=0.3,a=0,r0=2.6"), "'a'"),
    ("potential", lambda p: load_potential({"name": "lj", "cutoff": -1.0}), "cutoff"),
    ("potential", lambda p: load_potential("lj:cutoff=5,switch_width=6"), "switch_width"),
    ("potential", lambda p: load_potential("morse:D=0.3,a=1.3,r0=2.6+zbl:cutoff=nan"), "cutoff"),
    # lattice parameters of structure names
    ("structure", lambda p: load_structure("Cu:fcc:a=-3.6"), "'a'"),
    ("structure", lambda p: load_structure("Cu:fcc:a=nan"), "'a'"),
    ("structure", lambda p: load_structure("Cu:hcp:covera=-1.6"), "covera"),
    ("structure", lambda p: load_structure("Cu:fcc:repeat=0x1x1"), "repeat"),
    ("structure", lambda p: load_structure("N2:vacuum=-3"), "vacuum"),
]


@pytest.mark.parametrize("prop, call, name", BAD_PARAMETERS,
                         ids=[f"{p}-{n}-{k}" for k, (p, _, n) in enumerate(BAD_PARAMETERS)])
def test_bad_numeric_parameter_is_refused_naming_it(emt, prop, call, name):
    with pytest.raises(ValueError, match=name):
        call(emt)


def test_negative_lattice_constant_is_refused_not_built_left_handed():
    with pytest.raises(ValueError, match=r"structure 'Cu:fcc:a=-3.6': parameter 'a': -3.6 is out of range "
                                         r"\(allowed: > 0\)"):
        load_structure("Cu:fcc:a=-3.6")
    assert np.linalg.det(load_structure("Cu:fcc:a=3.6").cell) > 0  # the valid one is right-handed


#: each too big to compute: refused in well under a second, naming the structure and the knob
SIZE_CASES = [
    ("dense Hessian", lambda p: evaluate(load_potential("lj"), [molecule("N2"), bulk("Cu", cubic=True)],
                                         ("energy", "hessian")), "MLIP_PROPS_MAX_HESSIAN_GIB"),
    ("repeat", lambda p: load_structure("Cu:fcc:repeat=300x300x300"), "MLIP_PROPS_MAX_ATOMS"),
    ("supercell", lambda p: phonons(p, bulk("Cu"), supercell=40, relaxation=False), "MLIP_PROPS_MAX_SUPERCELL_ATOMS"),
    ("min_length_A", lambda p: phonons(p, bulk("Cu"), min_length_A=200.0, relaxation=False),
     "MLIP_PROPS_MAX_SUPERCELL_ATOMS"),
    ("cutoff", lambda p: evaluate(load_potential("lj:cutoff=1000"), bulk("Cu"), ("energy",)),
     "MLIP_PROPS_MAX_NEIGHBOR_GIB"),
    ("thin cell", lambda p: evaluate(load_potential("lj"), Atoms("Cu", cell=np.diag([10.0, 3000.0, 3000.0]), pbc=True),
                                     ("energy",)), "vesin"),
]
_SIZE_MARKS: dict = {}


@pytest.mark.parametrize("case, call, knob", [pytest.param(*c, marks=_SIZE_MARKS.get(c[0], ())) for c in SIZE_CASES],
                         ids=[c[0] for c in SIZE_CASES])
def test_too_big_is_refused_with_the_knob(emt, monkeypatch, case, call, knob):
    from mlip_props.backend.guards import LIMITS, SizeLimitError

    for env in LIMITS:
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("MLIP_PROPS_MAX_HESSIAN_GIB", "1e-6")  # so that the Hessian case stays small if it runs
    with pytest.raises(SizeLimitError, match=knob):
        call(emt)


def test_check_number_names_parameter_and_range():
    assert check_number("n", 5, minimum=5, integer=True) == 5
    assert check_number("n", 6.0, minimum=5, integer=True) == 6
    assert check_number("x", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"parameter 'x': 0.5 is out of range \(allowed: > 0 and < 0.5\)"):
        check_number("x", 0.5, minimum=0, maximum=0.5, exclusive_minimum=True, exclusive_maximum=True)
    with pytest.raises(ValueError, match=r"parameter 'T'.*finite"):
        check_number("T", math.nan, minimum=0)
    with pytest.raises(ValueError, match=r"parameter 'n': expected an integer"):
        check_number("n", True, integer=True)
    with pytest.raises(ValueError, match=r"parameter 'n': expected an integer"):
        check_number("n", 2.5, integer=True)
    with pytest.raises(ValueError, match="a number is required"):
        check_number("x", None)


CLI_CASES = [
    ["calc", "eos", "-s", "Cu", "-P", "n_points=-3"],
    ["calc", "eos", "-s", "Cu", "-P", "volume_range=.nan"],
    ["calc", "relax", "-s", "Cu", "-P", "max_steps=-1"],
    ["calc", "elastic", "-s", "N2"],
    ["calc", "vibrations", "-s", "N2", "-P", "temperature_K=-10"],
    ["calc", "eos", "-s", "Fe"],
    ["calc", "eos", "-s", "Cu:fcc:repeat=0x1x1"],
    ["calc", "eos", "-s", "Cu:fcc:a=-3.6"],
    ["calc", "energy", "-s", "Cu:fcc:repeat=300x300x300"],
    ["calc", "energy", "-s", "Cu", "-p", "lj:epsilon=nan"],
    ["calc", "energy", "-s", "Cu", "-p", "lj:cutoff=1000"],
    ["calc", "phonons", "-s", "Cu", "-P", "supercell=40"],
    ["calc", "phonons", "-s", "Cu", "-P", "mesh=[-1,2,2]"],
    ["calc", "nosuchproperty", "-s", "Cu"],
    ["calc", "energy", "-s", "no_such_file.xyz"],
    ["report", "no_such.db"],
    ["validate", "no_such_campaign.yaml"],
]


@pytest.mark.parametrize("argv", CLI_CASES,
                         ids=[" ".join(a.values[0] if hasattr(a, "values") else a) for a in CLI_CASES])
def test_cli_user_error_exits_2(argv, capsys):
    assert main(argv + ["-q"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
