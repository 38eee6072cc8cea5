"""Placement of cells on crossbars, tiled evaluation, and spatial fault patterns."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from faultreg.chip import CrossbarChip, StorageSettings
from faultreg.crossbar import HEALTHY, SA0, SA1, CellFormat
from faultreg.errors import FaultMapError
from faultreg.faults import FaultMapSpec, LayerGeometry, generate_fault_map
from faultreg.mapping import LayerMapping, tiled_conv2d, tiled_linear
from faultreg.models import layer_geometries
from faultreg.patterns import cluster_corner_probability, draw_crossbars
from faultreg.seeding import numpy_generator

FORMAT = CellFormat(16, 2)


def test_layer_tiling_counts():
    # 300 inputs x 10 outputs x 16 cells per weight = 160 physical columns.
    mapping = LayerMapping(300, 10, FORMAT, 128, 128)
    assert mapping.physical_columns == 160
    assert mapping.row_tiles == 3
    assert mapping.column_tiles == 2
    assert mapping.crossbars == 6


def test_cell_address_by_hand():
    mapping = LayerMapping(300, 10, FORMAT, 128, 128)
    # Physical column (8 * 2 + 1) * 8 + 3 = 139 -> column tile 1, column 11; row 130 -> tile 1, row 2.
    assert mapping.cell_address(130, 8, 1, 3) == (1 * 2 + 1, 2, 11)
    assert mapping.cell_address(0, 0, 0, 0) == (0, 0, 0)


def test_states_follow_cell_address():
    mapping = LayerMapping(300, 10, FORMAT, 128, 128)
    grids = np.zeros((6, 128, 128), dtype=np.int8)
    grids[3, 2, 11] = SA1
    states = mapping.states_from_crossbars(grids)
    assert states.shape == (300, 10, 2, 8)
    assert states[130, 8, 1, 3] == SA1
    assert np.count_nonzero(states) == 1


def test_unused_crossbar_cells_dropped():
    mapping = LayerMapping(300, 10, FORMAT, 128, 128)
    grids = np.zeros((6, 128, 128), dtype=np.int8)
    grids[5, 127, 127] = SA0  # row 2 * 128 + 127 = 383 > 299, so the cell stores no weight
    assert np.count_nonzero(mapping.states_from_crossbars(grids)) == 0


def test_tiled_conv_matches_untiled_exactly():
    # 1 -> 32 channels, 3x3 kernel on 28x28: 9 rows per weight column, crossbars of 4 rows.
    generator = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (2, 1, 28, 28), generator=generator).double() / 256
    conv = nn.Conv2d(1, 32, kernel_size=3, padding=1, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-2048, 2048, conv.weight.shape, generator=generator).double() / 4096)
    storage = StorageSettings(CellFormat(16, 2), range_mode="fixed", weight_range=65535 / 4096)
    model = nn.Sequential(conv)
    spec = FaultMapSpec(0.0, 0.5, 0, 0, 16, 2, tuple(layer_geometries(model)), crossbar_rows=4, crossbar_columns=16)
    chip = CrossbarChip(model, storage, generate_fault_map(spec))
    stored = chip.stored_weights()["0.weight"]

    tiled = tiled_conv2d(images, stored, crossbar_rows=4, padding=1)
    untiled = chip(images)

    assert spec.layer_mapping(spec.layers[0]).crossbars == 3 * 32
    assert torch.equal(tiled, untiled)
    assert torch.equal(untiled, F.conv2d(images, conv.weight, padding=1))


def test_tiled_linear_matches_matmul():
    inputs = torch.arange(20, dtype=torch.float64).reshape(2, 10) / 8
    weight = torch.arange(30, dtype=torch.float64).reshape(3, 10) / 16
    assert torch.equal(tiled_linear(inputs, weight, crossbar_rows=4), inputs @ weight.T)


def draw(pattern, rate, crossbars=200, rows=32, columns=32, sa1_share=0.8, seed=0, cluster_size=3):
    return draw_crossbars(
        pattern, crossbars, rows, columns, rate, sa1_share,
        fault_draws=numpy_generator(seed, "fault_map", 0, 0, 0),
        type_draws=numpy_generator(seed, "fault_map", 0, 0, 1),
        cluster_size=cluster_size,
    )


def test_row_pattern_sticks_whole_rows():
    grids = draw("rows", 0.1)
    faulty_rows = (grids != HEALTHY).any(axis=2)
    assert np.all((grids != HEALTHY).all(axis=2) == faulty_rows)
    assert np.all(grids.min(axis=2) == grids.max(axis=2))  # one state per row
    lines = faulty_rows.size
    assert abs(faulty_rows.sum() - 0.1 * lines) <= 5 * math.sqrt(lines * 0.1 * 0.9)


def test_column_pattern_sticks_whole_columns():
    grids = draw("columns", 0.1)
    faulty_columns = (grids != HEALTHY).any(axis=1)
    assert np.all((grids != HEALTHY).all(axis=1) == faulty_columns)
    assert np.all(grids.min(axis=1) == grids.max(axis=1))


def test_clustered_pattern_keeps_fault_rate():
    rate, size = 0.1, 3
    grids = draw("clustered", rate, crossbars=400, cluster_size=size)
    # Each cell is faulty with probability 1 - (1 - q)**9 = rate. Clusters correlate cells, so
    # the bound counts clusters: about cells * q corners of up to 9 cells each.
    cells = grids.size
    corners = cells * cluster_corner_probability(rate, size)
    realized = np.count_nonzero(grids) / cells
    assert abs(realized - rate) <= 5 * size**2 * math.sqrt(corners) / cells


def test_clustered_faults_have_faulty_neighbours():
    grids = draw("clustered", 0.05, crossbars=200)
    faulty = grids != HEALTHY
    right_neighbour_faulty = faulty[:, :, :-1] & faulty[:, :, 1:]
    # Independent cells would give P(neighbour faulty | faulty) = 0.05; 3x3 clusters give 2/3.
    conditional = right_neighbour_faulty.sum() / faulty[:, :, :-1].sum()
    assert conditional > 0.5


def test_clustered_pattern_draws_both_states():
    grids = draw("clustered", 0.01, crossbars=50, sa1_share=0.5, cluster_size=2)
    assert set(np.unique(grids)) == {HEALTHY, SA0, SA1}
    assert np.count_nonzero(grids == SA0) > 0
    assert np.count_nonzero(grids == SA1) > 0


@pytest.mark.parametrize("pattern", ["independent", "rows", "columns", "clustered"])
def test_patterns_nest_across_rates(pattern):
    low = draw(pattern, 0.02)
    high = draw(pattern, 0.05)
    faulty_low = low != HEALTHY
    assert np.all(high[faulty_low] == low[faulty_low])
    assert np.count_nonzero(high) > np.count_nonzero(low)


def test_chunking_does_not_change_draws():
    whole = draw("independent", 0.1, crossbars=40)
    assert np.array_equal(whole[:16], draw("independent", 0.1, crossbars=16))


def spec_with(**changes):
    layers = (LayerGeometry("first", 100, 20), LayerGeometry("second", 20, 10))
    values = dict(fault_rate=0.2, sa1_share=0.8, map_index=0, root_seed=5, weight_bits=16, bits_per_cell=2, layers=layers)
    return FaultMapSpec(**{**values, **changes})


def test_slice_restriction_limits_faults():
    fault_map = generate_fault_map(spec_with(slice_positions=(7,)))
    states = fault_map.states["first"]
    assert np.count_nonzero(states[..., :7]) == 0
    eligible = states[..., 7].size
    faulty = np.count_nonzero(states[..., 7])
    assert abs(faulty - 0.2 * eligible) <= 5 * math.sqrt(eligible * 0.2 * 0.8)


def test_layer_restriction_limits_faults():
    fault_map = generate_fault_map(spec_with(target_layers=("second",)))
    assert np.count_nonzero(fault_map.states["first"]) == 0
    assert np.count_nonzero(fault_map.states["second"]) > 0


def test_restricted_faults_match_unrestricted_cells():
    full = generate_fault_map(spec_with())
    restricted = generate_fault_map(spec_with(target_layers=("second",), slice_positions=(0, 7)))
    kept = full.states["second"][..., [0, 7]]
    assert np.array_equal(restricted.states["second"][..., [0, 7]], kept)


def test_invalid_restrictions_rejected():
    with pytest.raises(FaultMapError, match="slice position 8"):
        spec_with(slice_positions=(8,))
    with pytest.raises(FaultMapError, match="'third'"):
        spec_with(target_layers=("third",))
    with pytest.raises(FaultMapError, match="pattern 'stripes'"):
        spec_with(pattern="stripes")


def test_spec_round_trips_through_dict():
    spec = spec_with(pattern="clustered", slice_positions=(6, 7), target_layers=("first",))
    assert FaultMapSpec.from_dict(spec.to_dict()) == spec
