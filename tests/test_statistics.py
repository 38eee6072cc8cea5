"""Monte-Carlo fault maps against the closed-form mean and variance of the weight error.

For independent faults, a cell is SA0 with probability p0 = rate * (1 - share) and SA1 with
p1 = rate * share. Let slice j carry weight u_j = 2**(b * j) code units and hold a value X
uniform on {0, ..., M}, M = 2**b - 1, so that E[X] = M / 2 and E[X**2] = M (2M + 1) / 6.
SA0 changes the slice by -X and SA1 by M - X, so the error of slice j has

    mean      u_j * M / 2 * (p1 - p0)
    variance  u_j**2 * (p0 + p1) * M (2M + 1) / 6  -  mean**2.

A code drawn uniformly from all 2**B values has independent uniform slices, so the weight
error is the sum over slices. For a positive weight in a differential pair, the G- group
stores 0, and each of its cells adds -u_j * M with probability p1.
"""

import math

import numpy as np
import pytest
import torch

from faultreg.crossbar import CellFormat, apply_stuck_masks, decode, masks_from_states
from faultreg.faults import FaultMapSpec, LayerGeometry, generate_fault_map

ROWS, COLUMNS = 400, 500  # 200,000 weights


def slice_error_moments(rate: float, share: float, bits: int, unit: float) -> tuple[float, float]:
    p0, p1 = rate * (1 - share), rate * share
    top = 2**bits - 1
    mean = unit * top / 2 * (p1 - p0)
    second_moment = unit**2 * (p0 + p1) * top * (2 * top + 1) / 6
    return mean, second_moment - mean**2


def stored_minus_written(cell_format: CellFormat, rate: float, share: float) -> tuple[torch.Tensor, int]:
    """Draw uniform positive codes, apply one fault map and return the errors in code units."""
    spec = FaultMapSpec(rate, share, 0, 11, cell_format.weight_bits, cell_format.bits_per_cell,
                        (LayerGeometry("layer", ROWS, COLUMNS),), encoding=cell_format.encoding)
    states = generate_fault_map(spec).states["layer"]
    and_mask, or_mask = masks_from_states(states, cell_format)
    generator = torch.Generator().manual_seed(5)
    magnitude = torch.randint(0, cell_format.max_code + 1, (ROWS, COLUMNS), generator=generator, dtype=torch.int32)
    codes = magnitude.unsqueeze(0)
    if cell_format.groups == 2:
        codes = torch.stack((magnitude, torch.zeros_like(magnitude)))
    faulty = apply_stuck_masks(codes, torch.from_numpy(and_mask), torch.from_numpy(or_mask))
    # With R = max_code one code unit is 1.0, so errors come out in code units.
    errors = decode(faulty, cell_format, float(cell_format.max_code), torch.float64) - magnitude.double()
    return errors, magnitude.numel()


@pytest.mark.parametrize("bits_per_cell", [1, 2, 4])
@pytest.mark.parametrize("rate, share", [(0.1, 0.8378), (0.05, 0.5), (0.2, 0.0)])
def test_one_group_error_matches_closed_form(bits_per_cell, rate, share):
    cell_format = CellFormat(16, bits_per_cell, "sign_magnitude")
    errors, samples = stored_minus_written(cell_format, rate, share)

    moments = [slice_error_moments(rate, share, bits_per_cell, 2.0 ** (bits_per_cell * j)) for j in range(cell_format.slices)]
    expected_mean = sum(mean for mean, _ in moments)
    expected_variance = sum(variance for _, variance in moments)

    assert abs(float(errors.mean()) - expected_mean) <= 5 * math.sqrt(expected_variance / samples)
    assert float(errors.var()) == pytest.approx(expected_variance, rel=0.06)


def test_differential_pair_error_matches_closed_form():
    rate, share, bits = 0.1, 0.8378, 2
    cell_format = CellFormat(16, bits, "differential")
    errors, samples = stored_minus_written(cell_format, rate, share)

    expected_mean = expected_variance = 0.0
    p1 = rate * share
    for j in range(cell_format.slices):
        unit = 2.0 ** (bits * j)
        mean, variance = slice_error_moments(rate, share, bits, unit)
        # The empty G- cell subtracts unit * M when it is SA1 (SA0 leaves its 0 unchanged).
        negative_jump = unit * (2**bits - 1)
        expected_mean += mean - negative_jump * p1
        expected_variance += variance + negative_jump**2 * p1 * (1 - p1)

    assert abs(float(errors.mean()) - expected_mean) <= 5 * math.sqrt(expected_variance / samples)
    assert float(errors.var()) == pytest.approx(expected_variance, rel=0.06)


def test_top_slice_dominates_error_variance():
    rate, share, bits = 0.1, 0.8378, 2
    variances = [slice_error_moments(rate, share, bits, 2.0 ** (bits * j))[1] for j in range(8)]
    # Each slice up multiplies the variance by 4**2 = 16.
    assert variances[7] / variances[6] == pytest.approx(16.0)
    assert variances[7] / sum(variances) > 0.9


def test_realized_rates_cover_every_cell_state():
    spec = FaultMapSpec(0.1, 0.8378, 0, 11, 16, 2, (LayerGeometry("layer", ROWS, COLUMNS),))
    states = generate_fault_map(spec).states["layer"]
    cells = states.size
    faulty = np.count_nonzero(states)
    sa1 = np.count_nonzero(states == 2)
    assert abs(faulty - 0.1 * cells) <= 5 * math.sqrt(cells * 0.1 * 0.9)
    assert abs(sa1 - 0.8378 * faulty) <= 5 * math.sqrt(faulty * 0.8378 * 0.1622)
