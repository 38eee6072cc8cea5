"""Hand-computed checks of the cell storage model and stuck-at faults.

All cases use 16-bit codes in 2-bit cells (eight slices per group) and the range
R = 65535 / 4096, so one code unit is exactly 2**-12 and every value below is exact.
"""

import numpy as np
import pytest
import torch

from faultreg.crossbar import (
    HEALTHY,
    NEGATIVE_GROUP,
    POSITIVE_GROUP,
    SA0,
    SA1,
    CellFormat,
    apply_stuck_masks,
    decode,
    encode,
    masks_from_states,
    masks_to_weight_layout,
    matrix_shape,
    slice_values,
    straight_through,
)

FORMAT = CellFormat(weight_bits=16, bits_per_cell=2)
RANGE = 65535 / 4096  # one code unit = 1/4096


def read_back(weight: float, group: int, position: int, state: int) -> float:
    """Store one weight, make one cell stuck, and return the weight the crossbar reads."""
    states = np.full((1, 1, 2, FORMAT.slices), HEALTHY, dtype=np.int8)
    states[0, 0, group, position] = state
    and_mask, or_mask = masks_from_states(states, FORMAT)
    codes = encode(torch.tensor([[weight]]), FORMAT, RANGE)
    faulty = apply_stuck_masks(codes, torch.from_numpy(and_mask), torch.from_numpy(or_mask))
    return float(decode(faulty, FORMAT, RANGE, dtype=torch.float64)[0, 0])


def test_format_geometry():
    assert FORMAT.slices == 8
    assert FORMAT.max_code == 65535
    assert FORMAT.slice_max == 3
    assert FORMAT.slice_mask(0) == 0b11
    assert FORMAT.slice_mask(7) == 0b11 << 14


def test_format_rejects_partial_cells():
    with pytest.raises(ValueError, match="multiple"):
        CellFormat(weight_bits=16, bits_per_cell=3)


def test_encode_splits_sign_over_groups():
    codes = encode(torch.tensor([0.25, -0.25, 0.0]), FORMAT, RANGE)
    assert codes[POSITIVE_GROUP].tolist() == [1024, 0, 0]
    assert codes[NEGATIVE_GROUP].tolist() == [0, 1024, 0]


def test_slices_of_a_code():
    # 1027 = 1024 + 3 = 4**5 + 3, so slice 5 is 1 and slice 0 is 3.
    assert slice_values(1027, FORMAT) == [3, 0, 0, 0, 0, 1, 0, 0]


def test_encode_saturates_beyond_range():
    codes = encode(torch.tensor([100.0, -100.0]), FORMAT, RANGE)
    assert codes[POSITIVE_GROUP, 0] == 65535
    assert codes[NEGATIVE_GROUP, 1] == 65535


def test_sa1_top_slice_positive_weight():
    # 0.25 -> code 1024; SA1 sets bits 14-15: 1024 + 49152 = 50176 -> 12.25.
    assert read_back(0.25, POSITIVE_GROUP, 7, SA1) == 12.25


def test_sa1_top_slice_of_negative_group():
    # A negative weight lives in G-; SA1 on its top cell gives -(1024 + 49152) / 4096.
    assert read_back(-0.25, NEGATIVE_GROUP, 7, SA1) == -12.25


def test_sa1_in_opposite_group_flips_sign():
    # -0.25 has G+ = 0; SA1 on the G+ top cell gives (49152 - 1024) / 4096 = 11.75.
    assert read_back(-0.25, POSITIVE_GROUP, 7, SA1) == 11.75


def test_sa0_bottom_slice_clears_low_bits():
    # 0.25 + 3/4096 -> code 1027 with bottom slice 3; SA0 clears it back to 1024.
    assert read_back(0.25 + 3 / 4096, POSITIVE_GROUP, 0, SA0) == 0.25


def test_sa0_bottom_slice_negative_weight():
    assert read_back(-(0.25 + 3 / 4096), NEGATIVE_GROUP, 0, SA0) == -0.25


def test_sa1_bottom_slice_adds_three_units():
    # 1024 | 3 = 1027 -> 0.250732421875.
    assert read_back(0.25, POSITIVE_GROUP, 0, SA1) == 1027 / 4096


def test_sa0_in_unused_group_has_no_effect():
    assert read_back(0.25, NEGATIVE_GROUP, 7, SA0) == 0.25


def test_sa0_top_slice_of_large_weight():
    # 12.25 -> code 50176 = 0b11_00_01_00_00_00_00_00; SA0 on slice 7 leaves 1024 -> 0.25.
    assert read_back(12.25, POSITIVE_GROUP, 7, SA0) == 0.25


def test_top_slice_error_dwarfs_bottom_slice_error():
    top_error = abs(read_back(0.0, POSITIVE_GROUP, 7, SA1))
    bottom_error = abs(read_back(0.0, POSITIVE_GROUP, 0, SA1))
    assert top_error == 49152 / 4096
    assert bottom_error == 3 / 4096
    assert top_error / bottom_error == 16384


def test_healthy_cells_give_quantized_weight():
    weights = torch.tensor([0.1, -0.37, 1e-5, 3.0], dtype=torch.float64)
    stored = decode(encode(weights, FORMAT, RANGE), FORMAT, RANGE, dtype=torch.float64)
    expected = torch.round(weights * 4096) / 4096
    assert torch.equal(stored, expected)


def test_nan_weight_writes_zero_code():
    codes = encode(torch.tensor([float("nan"), float("inf")]), FORMAT, RANGE)
    assert codes[:, 0].tolist() == [0, 0]
    assert codes[POSITIVE_GROUP, 1] == 65535


def test_masks_layout_for_conv_weight():
    # Conv weight (out=2, in=3, 2, 2): crossbar row = flattened (in, kh, kw), column = out.
    weight_shape = (2, 3, 2, 2)
    rows, columns = matrix_shape(weight_shape)
    assert (rows, columns) == (12, 2)
    states = np.zeros((rows, columns, 2, FORMAT.slices), dtype=np.int8)
    states[7, 1, POSITIVE_GROUP, 7] = SA1  # row 7 = (in 1, kh 1, kw 1)
    _, or_mask = masks_from_states(states, FORMAT)
    layout = masks_to_weight_layout(or_mask, weight_shape)
    assert layout.shape == (2, 2, 3, 2, 2)
    assert layout[POSITIVE_GROUP, 1, 1, 1, 1] == 49152
    assert np.count_nonzero(layout) == 1


def test_masks_reject_wrong_slice_count():
    with pytest.raises(ValueError, match="shape"):
        masks_from_states(np.zeros((2, 2, 2, 4), dtype=np.int8), FORMAT)


def test_straight_through_gradient_is_identity():
    master = torch.tensor([0.3, -0.2], requires_grad=True)
    stored = torch.tensor([12.0, -0.5])
    output = straight_through(master, stored)
    assert torch.equal(output.detach(), stored)
    (output * torch.tensor([2.0, 3.0])).sum().backward()
    assert master.grad.tolist() == [2.0, 3.0]


@pytest.mark.parametrize("bits_per_cell, expected", [(1, 32768), (2, 49152), (4, 61440)])
def test_top_cell_value_per_cell_width(bits_per_cell, expected):
    # The top cell stores the highest bits_per_cell bits of the 16-bit code.
    cell_format = CellFormat(16, bits_per_cell)
    assert cell_format.slice_mask(cell_format.slices - 1) == expected


# Offset binary: R = 8 gives step 8 / 2**15 = 1/4096 and zero at code 32768.
OFFSET = CellFormat(16, 2, "offset")
OFFSET_RANGE = 8.0
# Sign-magnitude: same magnitude code as the differential pair, sign kept digitally.
SIGN_MAGNITUDE = CellFormat(16, 2, "sign_magnitude")


def read_back_with(cell_format: CellFormat, weight_range: float, weight: float, position: int, state: int) -> float:
    """Like read_back, for one-group encodings."""
    states = np.full((1, 1, 1, cell_format.slices), HEALTHY, dtype=np.int8)
    states[0, 0, 0, position] = state
    and_mask, or_mask = masks_from_states(states, cell_format)
    written = torch.tensor([[weight]], dtype=torch.float64)
    codes = encode(written, cell_format, weight_range)
    faulty = apply_stuck_masks(codes, torch.from_numpy(and_mask), torch.from_numpy(or_mask))
    return float(decode(faulty, cell_format, weight_range, dtype=torch.float64, written=written)[0, 0])


def test_offset_codes_of_signed_weights():
    codes = encode(torch.tensor([0.0, 0.25, -0.25]), OFFSET, OFFSET_RANGE)
    assert codes.shape == (1, 3)
    assert codes[0].tolist() == [32768, 33792, 31744]


def test_offset_sa1_top_slice():
    # 0.25 -> 33792 = 0b10_00_01_00... (slice 7 is 2); SA1 makes it 3: 50176 -> (50176 - 32768) / 4096.
    assert read_back_with(OFFSET, OFFSET_RANGE, 0.25, 7, SA1) == 4.25


def test_offset_sa0_top_slice():
    # Clearing slice 7 of 33792 leaves 1024 -> (1024 - 32768) / 4096 = -7.75.
    assert read_back_with(OFFSET, OFFSET_RANGE, 0.25, 7, SA0) == -7.75


def test_offset_zero_weight_faults():
    assert read_back_with(OFFSET, OFFSET_RANGE, 0.0, 7, SA0) == -8.0
    assert read_back_with(OFFSET, OFFSET_RANGE, 0.0, 0, SA1) == 3 / 4096


def test_offset_healthy_round_trip():
    weights = torch.tensor([0.0, 0.1, -0.37, 7.9], dtype=torch.float64)
    stored = decode(encode(weights, OFFSET, OFFSET_RANGE), OFFSET, OFFSET_RANGE, dtype=torch.float64)
    assert torch.equal(stored, torch.round(weights * 4096) / 4096)


def test_offset_saturates_below_top():
    stored = decode(encode(torch.tensor([100.0, -100.0]), OFFSET, OFFSET_RANGE), OFFSET, OFFSET_RANGE, dtype=torch.float64)
    assert stored.tolist() == [8.0 - 1 / 4096, -8.0]


def test_sign_magnitude_sa1_keeps_sign():
    assert read_back_with(SIGN_MAGNITUDE, RANGE, -0.25, 7, SA1) == -12.25
    assert read_back_with(SIGN_MAGNITUDE, RANGE, 0.25, 7, SA1) == 12.25


def test_sign_magnitude_zero_reads_positive():
    assert read_back_with(SIGN_MAGNITUDE, RANGE, 0.0, 7, SA1) == 12.0


def test_sign_magnitude_sa0_bottom_slice():
    assert read_back_with(SIGN_MAGNITUDE, RANGE, -(0.25 + 3 / 4096), 0, SA0) == -0.25


def test_one_group_encodings_have_one_group():
    assert OFFSET.groups == 1
    assert SIGN_MAGNITUDE.groups == 1
    assert FORMAT.groups == 2


def test_masks_from_cells_match_dense_masks():
    from faultreg.crossbar import dense_states_from_cells, masks_from_cells, states_to_weight_layout, stuck_masks

    generator = np.random.default_rng(4)
    rows, columns = 12, 5
    states = generator.choice([HEALTHY, SA0, SA1], size=(rows, columns, 2, 8), p=[0.7, 0.1, 0.2]).astype(np.int8)
    states[3, 2] = HEALTHY  # one weight with no stuck cell
    weight_shape = (columns, 3, 2, 2)  # a conv weight with fan-in 3 * 2 * 2 = 12 rows

    dense = torch.from_numpy(states_to_weight_layout(states, weight_shape))
    flat = states.reshape(-1)
    indices = np.flatnonzero(flat)
    values = flat[indices]

    assert torch.equal(dense_states_from_cells(torch.from_numpy(indices), torch.from_numpy(values), FORMAT, weight_shape), dense)
    expected_and, expected_or = stuck_masks(dense, FORMAT)
    and_mask, or_mask, healthy = masks_from_cells(indices, values, FORMAT, weight_shape)
    assert np.array_equal(and_mask, expected_and.numpy())
    assert np.array_equal(or_mask, expected_or.numpy())
    assert np.array_equal(healthy, (dense == HEALTHY).all(dim=1).all(dim=0).numpy())
    # Row 3 = (in 0, kh 1, kw 1) of output 2.
    assert bool(healthy[2, 0, 1, 1])
