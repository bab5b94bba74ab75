"""The report reads only declared result fields: a renamed field fails here, not silently in a report."""
import dataclasses

from mlip_props.campaign.builtin import EnergyResult
from mlip_props.campaign.report.quantities import READS, committee_views
from mlip_props.properties.elastic import ElasticResult
from mlip_props.properties.eos import EOSResult
from mlip_props.properties.phonons import PhononResult
from mlip_props.properties.relax import RelaxResult
from mlip_props.properties.thermal import ThermalResult
from mlip_props.properties.uncertainty import CommitteePropertiesResult

CLASSES = {"eos": EOSResult, "relax": RelaxResult, "energy": EnergyResult, "elastic": ElasticResult,
           "phonons": PhononResult, "thermal": ThermalResult}


def test_report_reads_declared_fields():
    for prop, names in READS.items():
        missing = set(names) - set(CLASSES[prop].REPORT_FIELDS)
        assert not missing, f"the report reads {sorted(missing)} of {prop}, which its result does not declare"


def test_committee_results_use_the_single_potential_names():
    """A committee row's mean, std and members sit under the single-potential field names."""
    fields = {f.name for f in dataclasses.fields(CommitteePropertiesResult)}
    for prop in ("eos", "elastic", "phonons", "thermal"):
        for name in READS[prop]:
            if name == "temperatures_K":
                assert name in fields
                continue
            assert {name, name + "_std"} <= fields, (prop, name)
    row = {"v0_A3_per_atom": 11.8, "v0_A3_per_atom_std": 0.1, "v0_A3_per_atom_members": [11.7, 11.9],
           "temperatures_K": [0.0, 300.0], "cv_J_molK": [0.0, 24.0], "cv_J_molK_std": [0.0, 0.2],
           "C_GPa": None, "C_GPa_std": [[0.0] * 6] * 6}
    views = committee_views(row)
    assert set(views) == {"eos", "thermal"}
    assert views["eos"] == {"v0_A3_per_atom": 11.8, "v0_A3_per_atom_std": 0.1, "v0_A3_per_atom_members": [11.7, 11.9]}
    assert views["thermal"]["cv_J_molK_std"] == [0.0, 0.2] and views["thermal"]["temperatures_K"] == [0.0, 300.0]
