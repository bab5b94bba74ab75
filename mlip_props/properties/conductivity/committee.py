"""Committee spread of kappa: each member's kappa from its own column of ONE committee evaluation.

A committee potential's evaluation of a :class:`~.plan.ConductivityPlan` holds every member's
forces (and Hessians); :meth:`~.plan.ConductivityPlan.analyse_committee` turns member m's column
(``answers.member(m)``) into that member's fc2 and fc3 and its kappa on the main mesh, exactly as
a plain run with member m alone would, and :func:`committee_fields` reduces those kappas to the
result's committee fields: per member, their mean and their standard deviation over members
(population, ddof = 0, as in :mod:`mlip_props.properties.uncertainty`), W/(m K).

kappa is not linear in the force constants, so the members' mean kappa differs from the kappa of
the committee-mean potential (the result's ``kappa_W_mK``, whose force constants are the members'
mean force constants exactly); both are reported.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .kappa import KappaRun, voigt_average


def committee_fields(runs: Sequence[KappaRun]) -> tuple[dict[str, Any], list[str]]:
    """The committee fields of a :class:`~.result.ConductivityResult` from each member's
    :class:`~.kappa.KappaRun` (main mesh), and notes. Members with imaginary modes have no
    kappa: their entries are ``None`` and the mean and std are left out (``None``), with a note
    naming them."""
    n = len(runs)
    fields: dict[str, Any] = {"n_members": n,
                              "kappa_W_mK_members": [None if r.kappa_W_mK is None else np.asarray(r.kappa_W_mK).tolist()
                                                     for r in runs],
                              "kappa_average_W_mK_members": [None if r.kappa_W_mK is None
                                                             else voigt_average(r.kappa_W_mK).tolist() for r in runs],
                              "min_frequency_THz_members": [float(r.min_frequency_THz) for r in runs]}
    unstable = [m for m, r in enumerate(runs) if r.imaginary_modes]
    if unstable:
        return fields, [f"committee: member(s) {unstable} have imaginary harmonic modes and no kappa; the committee "
                        "mean and std of kappa are not defined"]
    k = np.array([r.kappa_W_mK for r in runs], dtype=float)  # (M, n_T, 6)
    avg = k[..., :3].mean(axis=-1)  # (M, n_T)
    fields.update(kappa_W_mK_member_mean=k.mean(axis=0).tolist(), kappa_W_mK_std=k.std(axis=0).tolist(),
                  kappa_average_W_mK_member_mean=avg.mean(axis=0).tolist(),
                  kappa_average_W_mK_std=avg.std(axis=0).tolist())
    return fields, []
