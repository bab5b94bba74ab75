"""vesin-based neighbour graphs are exact: compared with ASE's neighbour list, pair by pair."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.neighborlist import neighbor_list

from mlip_props.backend import Batch, build_neighbor_graph, edge_vectors

from .structures import triclinic_cell


def _pairs(i, j, s, d):
    return sorted((int(a), int(b), tuple(int(x) for x in sh), round(float(r), 8)) for a, b, sh, r in zip(i, j, s, d))


CASES = {
    "fcc_primitive_cutoff_3x_cell": (bulk("Cu", "fcc", a=3.6), 7.5),
    "triclinic_skewed": (triclinic_cell(2.5), 6.0),
    "very_skewed": (Atoms("Cu2", scaled_positions=[[0, 0, 0], [0.3, 0.6, 0.2]],
                          cell=[[2.5, 0, 0], [2.3, 1.0, 0], [1.9, 0.8, 0.9]], pbc=True), 4.0),
    "molecule": (molecule("CH3CH2OH"), 2.5),
    "slab_mixed_pbc": (fcc111("Cu", size=(2, 2, 3), vacuum=5.0), 5.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_graph_equals_ase_neighbor_list(name):
    atoms, rc = CASES[name]
    batch = Batch.from_structures([atoms])
    g = build_neighbor_graph(batch, rc)
    vec = edge_vectors(batch, g).cpu().numpy()
    i, j = g.edge_index.cpu().numpy()
    mine = _pairs(i, j, g.shifts.cpu().numpy(), np.linalg.norm(vec, axis=1))
    ai, aj, aS, ad = neighbor_list("ijSd", atoms, rc)
    assert mine == _pairs(ai, aj, aS, ad)


def test_batched_graph_offsets_and_structures():
    a, b = bulk("Cu", "fcc", a=3.6), molecule("H2O")
    batch = Batch.from_structures([a, b, a])
    g = build_neighbor_graph(batch, 3.0)
    i, j = g.edge_index
    owner = batch.structure_index
    assert bool((owner[i] == g.edge_structure).all()) and bool((owner[j] == g.edge_structure).all())
    n0 = int((g.edge_structure == 0).sum())
    assert n0 == int((g.edge_structure == 2).sum()) == 12  # 12 nearest neighbours in fcc within 3 A
    assert int((g.edge_structure == 1).sum()) == 6  # H2O: all 3 pairs, both directions


def test_graph_cost_is_linear_in_atoms():
    small = bulk("Cu", "fcc", a=3.6).repeat((4, 4, 4))
    large = bulk("Cu", "fcc", a=3.6).repeat((8, 8, 8))
    es = build_neighbor_graph(Batch.from_structures([small]), 5.0).n_edges
    el = build_neighbor_graph(Batch.from_structures([large]), 5.0).n_edges
    assert el == 8 * es


def test_neighbour_lists_name_the_structure_with_coincident_atoms():
    from mlip_props.backend.neighbors import neighbor_lists

    frames = []
    for k in range(30):
        a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1 + k % 2, 1, 1))
        a.rattle(0.05, seed=k)
        frames.append(a)
    frames[23].positions[1] = frames[23].positions[0]
    args = ([a.positions for a in frames], [a.cell.array for a in frames], [a.pbc for a in frames], 5.0)
    with pytest.raises(ValueError, match="structure 23: atoms"):
        neighbor_lists(*args)


def test_shared_lists_choose_among_several_references():
    """A copy too far from the first reference shares the list of a later one it is close to;
    every sharing copy lies within skin/2 of its reference; references keep their own lists."""
    from mlip_props.backend.neighbors import _assign_references

    rng = np.random.default_rng(0)
    base = rng.uniform(0, 5, size=(4, 3))
    far = base + [0.4, 0.0, 0.0]  # 0.4 A from base: beyond 0.25 A
    pos = np.stack([base, far, base + 0.01, far + 0.02, base + 0.3, far - 0.01])
    owner = _assign_references(pos, 0.25**2, max_refs=16)
    assert owner.tolist() == [0, 1, 0, 1, 4, 1]
    d = np.linalg.norm(pos - pos[owner], axis=2).max(axis=1)
    assert (d < 0.25).all()
    # with one reference allowed, the copies of the far cell keep their own lists
    assert _assign_references(pos, 0.25**2, max_refs=1).tolist() == [0, 1, 0, 3, 4, 5]


def test_shared_list_correction_same_on_host_and_with_torch():
    """The GPU route of correcting shared lists (torch) equals the host route (numpy): same
    edges, vectors, shifts; coincident atoms named by both."""
    import torch

    from mlip_props.backend.batch import pack_structures
    from mlip_props.backend.neighbors import (_correct_and_trim_numpy, _correct_and_trim_torch,
                                              shared_neighbor_lists)

    base = bulk("Cu", "fcc", a=3.6, cubic=True)
    frames = []
    for k in range(4):
        a = base.copy()
        a.rattle(0.05, seed=k)
        frames.append(a)
    packed = pack_structures(frames)
    lists, disp, skin = shared_neighbor_lists(packed, 5.0, half=True)
    assert skin > 0 and len({id(x) for x in lists}) < len(lists)

    def raw():
        counts = np.array([len(nl[0]) for nl in lists])
        ei = np.stack([np.concatenate([nl[0] for nl in lists]), np.concatenate([nl[1] for nl in lists])])
        ei += np.repeat(packed.ptr[:-1], counts)
        return (ei, np.concatenate([nl[4] for nl in lists]), np.concatenate([nl[2] for nl in lists]),
                np.repeat(np.arange(len(lists)), counts))

    args = (disp, 5.0, packed.ptr, torch.float64, torch.device("cpu"))
    a = _correct_and_trim_numpy(*raw(), *args)
    b = _correct_and_trim_torch(*raw(), *args)
    for x, y in zip(a, b):
        assert np.allclose(np.asarray(x), y.cpu().numpy(), rtol=0, atol=1e-14)
    assert len(a[1]) < sum(len(nl[0]) for nl in lists)  # the skin's pairs were dropped
    d = disp.copy()
    d[1] = (packed.positions[0] - packed.positions[1])  # atom 1 of structure 0 onto atom 0
    for fn in (_correct_and_trim_numpy, _correct_and_trim_torch):
        with pytest.raises(ValueError, match="structure 0: atoms 0 and 1 coincide"):
            fn(*raw(), d, 5.0, packed.ptr, torch.float64, torch.device("cpu"))
