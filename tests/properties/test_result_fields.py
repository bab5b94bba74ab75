"""Every registered property declares the result fields a report may read, and each is a field of its
result class: a renamed field fails here instead of silently vanishing from reports."""
from __future__ import annotations

import dataclasses
import inspect
import re
import sys

import pytest

from mlip_props.campaign.registry import available_properties
from mlip_props.properties.result import PropertyResult


def result_classes(func) -> list[type]:
    """The PropertyResult classes named in ``func``'s return annotation (names looked up in the
    module that defines ``func``)."""
    ann = inspect.signature(func).return_annotation
    ann = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
    module = vars(sys.modules[func.__module__])
    found = [module.get(n) for n in set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", ann))]
    return [c for c in found if isinstance(c, type) and issubclass(c, PropertyResult)]


PROPERTIES = sorted(available_properties().items())


@pytest.mark.parametrize("name, spec", PROPERTIES, ids=[n for n, _ in PROPERTIES])
def test_report_fields_are_fields_of_the_result_class(name, spec):
    classes = result_classes(spec.func)
    assert classes, f"property {name!r}: its return annotation names no PropertyResult class"
    for cls in classes:
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = [f for f in cls.REPORT_FIELDS if f not in fields]
        assert not missing, f"{cls.__name__}.REPORT_FIELDS names {missing}, which are not fields of it"
        assert len(set(cls.REPORT_FIELDS)) == len(cls.REPORT_FIELDS), f"{cls.__name__}: a field is listed twice"


def test_declared_fields_for_molecules():
    from mlip_props.properties.diatomic import DiatomicResult
    from mlip_props.properties.vibrations import VibrationsResult

    assert "frequencies_cm1" in VibrationsResult.REPORT_FIELDS
    assert {"bond_length_A", "omega_e_cm1", "D0_eV", "bond_length_A_std"} <= set(DiatomicResult.REPORT_FIELDS)
    assert PropertyResult.REPORT_FIELDS == ()
