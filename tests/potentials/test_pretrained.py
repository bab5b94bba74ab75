"""Pretrained universal potentials behind the oracle adapter: ``"chgnet-ase"`` and ``"sevenn-ase"``
(CHGNet and SevenNet-0 through their own ASE calculators; the native batched ``"chgnet"`` and
``"sevenn"`` are tested in ``test_chgnet.py``, ``test_sevenn.py`` and ``test_universal_battery.py``).

Skipped when the package is not installed (the default dev install does not pull them in).
Where installed, the weights ship inside the package, so nothing here touches the network.
Checks: the adapter returns what the package's own ASE calculator returns, forces are minus the
central finite-difference gradient of the energy, and the stress is the finite-strain derivative
of the energy per volume. Both models run in float32, so the tolerances are float32-sized: with
a 0.01 A step the energy noise (~1e-5 eV) and the O(h^2) error stay well below 0.02 eV/A.
"""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

import mlip_props

#: spec -> (module that must import, module and class of the package's own ASE calculator, kwargs)
PRETRAINED = {
    "chgnet-ase": ("chgnet", "chgnet.model.dynamics", "CHGNetCalculator", {}),
    "sevenn-ase": ("sevenn", "sevenn.calculator", "SevenNetCalculator", {"model": "7net-0"}),
}
VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
H_A = 0.01  # displacement step, Angstrom
EPS = 2e-3  # strain step


@pytest.fixture(scope="module", params=sorted(PRETRAINED))
def pretrained(request):
    module, calc_module, calc_class, kwargs = PRETRAINED[request.param]
    pytest.importorskip(module)
    pot = mlip_props.load_potential(request.param)
    calc_cls = getattr(__import__(calc_module, fromlist=[calc_class]), calc_class)
    return request.param, pot, lambda: calc_cls(**kwargs)


def _silicon() -> "object":
    si = bulk("Si", "diamond", a=5.43)
    si.rattle(0.05, seed=3)
    return si


def test_adapter_matches_own_calculator(pretrained):
    name, pot, own = pretrained
    si = _silicon()
    res = mlip_props.evaluate(pot, [si], ("energy", "forces", "stress"))
    ref = si.copy()
    ref.calc = own()
    assert res.energies_eV[0] == pytest.approx(ref.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(res.forces_eV_A[0], ref.get_forces(), atol=1e-6)
    np.testing.assert_allclose(res.stress_eV_A3[0], ref.get_stress(voigt=True), atol=1e-7)
    # physically sensible: a crystal, not a gas (diamond Si binds by ~4.6 eV/atom; DFT totals ~ -5.4)
    assert -7.0 < res.energies_eV[0] / len(si) < -4.0
    # the model is built once and reused for every structure
    assert pot.calculator() is pot.calculator()


def test_forces_and_stress_are_energy_derivatives(pretrained):
    name, pot, _ = pretrained
    si = _silicon()
    structures = [si]
    comps = [(0, 0), (0, 1), (1, 2)]  # (atom, direction)
    for k, c in comps:
        for sign in (1.0, -1.0):
            b = si.copy()
            b.positions[k, c] += sign * H_A
            structures.append(b)
    strains = [0, 3]  # xx and yz
    for v in strains:
        a, b_ = VOIGT[v]
        for sign in (1.0, -1.0):
            e = np.zeros((3, 3))
            e[a, b_] = e[b_, a] = sign * EPS
            b = si.copy()
            b.set_cell(si.cell[:] @ (np.eye(3) + e), scale_atoms=True)
            structures.append(b)
    res = mlip_props.evaluate(pot, structures, ("energy", "forces", "stress"))  # one call, all points
    e = res.energies_eV
    f = res.forces_eV_A[0]
    assert np.abs(f).max() > 0.2  # the rattle gives real forces to compare
    for n, (k, c) in enumerate(comps):
        fd = -(e[1 + 2 * n] - e[2 + 2 * n]) / (2 * H_A)
        assert f[k, c] == pytest.approx(fd, abs=0.02), f"{name}: F[{k},{c}]"
    off = 1 + 2 * len(comps)
    vol = si.get_volume()
    for n, v in enumerate(strains):
        # dE/d(eps_v) for the symmetric strain; off-diagonal Voigt components appear twice
        de = (e[off + 2 * n] - e[off + 2 * n + 1]) / (2 * EPS)
        fd = de / vol / (1 if v < 3 else 2)
        assert res.stress_eV_A3[0, v] == pytest.approx(fd, abs=1e-3), f"{name}: stress[{v}]"
