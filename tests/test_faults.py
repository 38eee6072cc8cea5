"""Fault maps: statistics against closed-form expectations, determinism, storage and checks."""

import json
import math

import numpy as np
import pytest
import torch

from faultreg.crossbar import HEALTHY, SA0, SA1, CellFormat, apply_stuck_masks, decode, encode, masks_from_states
from faultreg.errors import FaultMapError
from faultreg.faults import FaultMapSpec, LayerGeometry, check_geometry, generate_fault_map, load_fault_map, save_fault_map

LAYERS = (LayerGeometry("first", 300, 200), LayerGeometry("second", 200, 10))


def make_spec(rate=0.1, sa1_share=0.8378, map_index=0, seed=7, weight_bits=16, bits_per_cell=2, layers=LAYERS):
    return FaultMapSpec(
        fault_rate=rate,
        sa1_share=sa1_share,
        map_index=map_index,
        root_seed=seed,
        weight_bits=weight_bits,
        bits_per_cell=bits_per_cell,
        layers=layers,
    )


def binomial_bound(trials: int, probability: float, sigmas: float = 5.0) -> float:
    """Half-width of a normal-approximation bound on a binomial count (5 sigma: p < 6e-7)."""
    return sigmas * math.sqrt(trials * probability * (1.0 - probability))


def test_zero_rate_map_has_no_faults():
    counts = generate_fault_map(make_spec(rate=0.0)).counts()
    assert counts["sa0"] == 0
    assert counts["sa1"] == 0


def test_full_rate_map_is_all_faulty():
    counts = generate_fault_map(make_spec(rate=1.0)).counts()
    assert counts["sa0"] + counts["sa1"] == counts["cells"]


def test_cell_count_per_layer():
    fault_map = generate_fault_map(make_spec())
    # 16-bit weights in 2-bit cells: 8 cells per group, 2 groups.
    assert fault_map.states["first"].shape == (300, 200, 2, 8)
    assert fault_map.counts()["cells"] == (300 * 200 + 200 * 10) * 16


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.2])
def test_fault_share_within_binomial_bound(rate):
    counts = generate_fault_map(make_spec(rate=rate)).counts()
    faulty = counts["sa0"] + counts["sa1"]
    expected = counts["cells"] * rate
    assert abs(faulty - expected) <= binomial_bound(counts["cells"], rate)


@pytest.mark.parametrize("sa1_share", [0.0, 0.5, 0.8378, 1.0])
def test_sa1_share_within_binomial_bound(sa1_share):
    counts = generate_fault_map(make_spec(rate=0.2, sa1_share=sa1_share)).counts()
    faulty = counts["sa0"] + counts["sa1"]
    assert abs(counts["sa1"] - faulty * sa1_share) <= binomial_bound(faulty, sa1_share) + 1e-9


def test_same_spec_gives_same_map():
    first = generate_fault_map(make_spec())
    second = generate_fault_map(make_spec())
    assert first.content_hash() == second.content_hash()
    for name in first.states:
        assert np.array_equal(first.states[name], second.states[name])


def test_other_chip_gives_other_map():
    first = generate_fault_map(make_spec(map_index=0))
    second = generate_fault_map(make_spec(map_index=1))
    assert first.content_hash() != second.content_hash()
    assert not np.array_equal(first.states["first"], second.states["first"])


def test_other_root_seed_gives_other_map():
    assert generate_fault_map(make_spec(seed=1)).content_hash() != generate_fault_map(make_spec(seed=2)).content_hash()


def test_higher_rate_contains_lower_rate_faults():
    low = generate_fault_map(make_spec(rate=0.02))
    high = generate_fault_map(make_spec(rate=0.05))
    for name in low.states:
        low_faulty = low.states[name] != HEALTHY
        assert np.all(high.states[name][low_faulty] == low.states[name][low_faulty])
        assert np.count_nonzero(high.states[name] != HEALTHY) > np.count_nonzero(low_faulty)


def test_invalid_spec_values_rejected():
    with pytest.raises(FaultMapError, match="fault_rate 1.5"):
        make_spec(rate=1.5)
    with pytest.raises(FaultMapError, match="sa1_share -0.1"):
        make_spec(sa1_share=-0.1)
    with pytest.raises(FaultMapError, match="map_index -1"):
        make_spec(map_index=-1)


def test_zero_weight_error_matches_closed_form():
    """Mean and variance of the read-back of w = 0 under independent SA1 faults.

    With w = 0 both groups store code 0, so only SA1 cells matter. Cell j of either group is
    SA1 with probability q = rate * sa1_share and then adds +-3 * 4**j code units (+ for G+,
    - for G-). Summing independent cells: mean 0, variance 2 * q * (1 - q) * sum_j (3 * 4**j)**2.
    """
    rate, sa1_share = 0.1, 0.8378
    cell_format = CellFormat(16, 2)
    layers = (LayerGeometry("layer", 500, 400),)
    fault_map = generate_fault_map(make_spec(rate=rate, sa1_share=sa1_share, layers=layers))
    and_mask, or_mask = masks_from_states(fault_map.states["layer"], cell_format)
    codes = encode(torch.zeros(500, 400), cell_format, 65535.0)  # one code unit = 1.0
    errors = decode(apply_stuck_masks(codes, torch.from_numpy(and_mask), torch.from_numpy(or_mask)), cell_format, 65535.0, torch.float64)

    q = rate * sa1_share
    expected_variance = 2 * q * (1 - q) * sum((3 * 4**j) ** 2 for j in range(8))
    samples = errors.numel()
    standard_error = math.sqrt(expected_variance / samples)
    assert abs(float(errors.mean())) <= 5 * standard_error
    # The sample variance of this heavy-tailed sum stays within 5 % at 200,000 samples.
    assert float(errors.var()) == pytest.approx(expected_variance, rel=0.05)


def test_save_and_load_round_trip(tmp_path):
    fault_map = generate_fault_map(make_spec())
    path = tmp_path / "chip.npz"
    info = save_fault_map(fault_map, path)
    loaded = load_fault_map(path)
    assert loaded.spec == fault_map.spec
    assert loaded.content_hash() == fault_map.content_hash()
    sidecar = json.loads((tmp_path / "chip.json").read_text())
    assert sidecar["sha256"] == info["sha256"] == fault_map.content_hash()
    assert sidecar["sa0_cells"] + sidecar["sa1_cells"] == int(sum(np.count_nonzero(a) for a in fault_map.states.values()))


def test_tampered_map_fails_hash_check(tmp_path):
    fault_map = generate_fault_map(make_spec())
    path = tmp_path / "chip.npz"
    save_fault_map(fault_map, path)
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["layer_0_states"][0] = SA0 if arrays["layer_0_states"][0] == SA1 else SA1
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    with pytest.raises(FaultMapError, match="does not match its hash"):
        load_fault_map(path)


def test_truncated_map_rejected(tmp_path):
    path = tmp_path / "chip.npz"
    save_fault_map(generate_fault_map(make_spec()), path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(FaultMapError, match="unreadable"):
        load_fault_map(path)


def test_missing_map_rejected(tmp_path):
    with pytest.raises(FaultMapError, match="not found"):
        load_fault_map(tmp_path / "absent.npz")


def test_geometry_mismatch_rejected():
    fault_map = generate_fault_map(make_spec())
    with pytest.raises(FaultMapError, match="layers"):
        check_geometry(fault_map, [LayerGeometry("first", 300, 201), LAYERS[1]], CellFormat(16, 2))
    with pytest.raises(FaultMapError, match="bits per cell"):
        check_geometry(fault_map, list(LAYERS), CellFormat(16, 4))


def test_map_outside_layer_rejected(tmp_path):
    path = tmp_path / "chip.npz"
    save_fault_map(generate_fault_map(make_spec()), path)
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["layer_1_indices"][-1] = 200 * 10 * 16  # one past the last cell of layer "second"
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    with pytest.raises(FaultMapError, match="outside layer second"):
        load_fault_map(path)


def test_stored_map_lists_only_faulty_cells(tmp_path):
    fault_map = generate_fault_map(make_spec(rate=0.01))
    path = tmp_path / "chip.npz"
    save_fault_map(fault_map, path)
    with np.load(path) as archive:
        listed = sum(archive[f"layer_{index}_indices"].size for index in range(2))
    counts = fault_map.counts()
    assert listed == counts["sa0"] + counts["sa1"]
