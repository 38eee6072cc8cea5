"""A model running on a faulty chip: stored weights, range modes, gradients and training."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from faultreg.chip import CrossbarChip, StorageSettings, storage_for_method
from faultreg.config import validate_config
from faultreg.crossbar import SA0, SA1, CellFormat
from faultreg.faults import FaultMap, FaultMapSpec, generate_fault_map
from faultreg.models import build_model, initialize_weights, layer_geometries
from faultreg.seeding import torch_generator
from faultreg.stages import train_model

FIXED = StorageSettings(CellFormat(16, 2), range_mode="fixed", weight_range=65535 / 4096)


def tiny_linear() -> nn.Module:
    model = nn.Sequential(nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.25, 0.5, -0.25], [0.0, 1.0, -1.0]]))
        model[0].bias.zero_()
    return model


def single_fault_map(model: nn.Module, row: int, column: int, group: int, position: int, state: int) -> FaultMap:
    spec = FaultMapSpec(0.0, 0.5, 0, 0, 16, 2, tuple(layer_geometries(model)))
    fault_map = generate_fault_map(spec)
    fault_map.states["0"][row, column, group, position] = state
    return fault_map


def test_no_map_gives_quantized_weights():
    model = tiny_linear()
    with torch.no_grad():
        model[0].weight.add_(1e-5)
    stored = CrossbarChip(model, FIXED).stored_weights()["0.weight"]
    expected = torch.round(model[0].weight.detach() * 4096) / 4096
    assert torch.equal(stored, expected)


def test_zero_rate_map_equals_fault_free_chip():
    model = build_model({"architecture": "lenet5"})
    initialize_weights(model, torch_generator(1, "weight_init", 0))
    spec = FaultMapSpec(0.0, 0.8378, 0, 1, 16, 2, tuple(layer_geometries(model)))
    faulty = CrossbarChip(model, FIXED, generate_fault_map(spec))
    clean = CrossbarChip(model, FIXED)
    images = torch.rand(4, 1, 28, 28, generator=torch_generator(1, "data_split"))
    for name, weight in clean.stored_weights().items():
        assert torch.equal(faulty.stored_weights()[name], weight)
    assert torch.equal(faulty(images), clean(images))


def test_sa1_hits_the_addressed_weight():
    model = tiny_linear()
    # Crossbar row 1 (input 1), column 0 (output 0), G+ top cell: weight[0, 1] = 0.5 -> 12.5.
    chip = CrossbarChip(model, FIXED, single_fault_map(model, 1, 0, 0, 7, SA1))
    stored = chip.stored_weights()["0.weight"]
    assert stored.tolist() == [[0.25, 12.5, -0.25], [0.0, 1.0, -1.0]]


def test_sa0_on_negative_weight_of_conv_layer():
    model = nn.Sequential(nn.Conv2d(1, 2, kernel_size=2, bias=False))
    with torch.no_grad():
        model[0].weight.fill_(-0.25)
    spec = FaultMapSpec(0.0, 0.5, 0, 0, 16, 2, tuple(layer_geometries(model)))
    fault_map = generate_fault_map(spec)
    # -0.25 is code 1024 in G-, so slice 5 is 1 and SA0 there leaves 0. Row 3 is kernel (1, 1).
    fault_map.states["0"][3, 1, 1, 5] = SA0
    stored = CrossbarChip(model, FIXED, fault_map).stored_weights()["0.weight"]
    assert stored[1, 0, 1, 1] == 0.0
    assert torch.count_nonzero(stored == -0.25) == 7


def test_clip_range_bounds_stuck_cell_error():
    model = tiny_linear()
    storage = StorageSettings(CellFormat(16, 2), range_mode="clip", weight_range=16.0, clip_value=0.5)
    chip = CrossbarChip(model, storage, single_fault_map(model, 0, 0, 0, 7, SA1))
    # R = 0.5: 0.25 -> round(0.25 * 65535 / 0.5) = 32768 (0b10 << 14); SA1 top -> 49152.
    assert chip.stored_weights()["0.weight"][0, 0] == pytest.approx(49152 * 0.5 / 65535, abs=0)


def test_max_abs_range_uses_largest_weight():
    model = tiny_linear()
    storage = StorageSettings(CellFormat(16, 2), range_mode="max_abs", weight_range=16.0)
    stored = CrossbarChip(model, storage).stored_weights()["0.weight"]
    # R = 1.0, so 1.0 and -1.0 are full-scale codes and read back exactly.
    assert stored[1].tolist() == [0.0, 1.0, -1.0]


def test_gradient_passes_straight_to_master():
    model = tiny_linear()
    chip = CrossbarChip(model, FIXED, single_fault_map(model, 1, 0, 0, 7, SA1))
    inputs = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    chip(inputs).sum().backward()
    # d(sum of outputs)/dW[o, i] = sum over the batch of input i, whatever is stored.
    assert model[0].weight.grad.tolist() == [[5.0, 7.0, 9.0], [5.0, 7.0, 9.0]]


def test_method_overrides_range_mode():
    crossbar = {"weight_bits": 16, "bits_per_cell": 2, "encoding": "differential", "range_mode": "fixed", "weight_range": 16.0}
    storage = storage_for_method(crossbar, {"clip_value": 0.5, "range_mode": "clip"})
    assert storage.range_mode == "clip"
    assert storage.clip_value == 0.5
    assert storage_for_method(crossbar, {"clip_value": None, "range_mode": None}).range_mode == "fixed"


def test_clip_range_without_clip_value_rejected():
    with pytest.raises(ValueError, match="clip_value"):
        StorageSettings(CellFormat(16, 2), range_mode="clip", weight_range=16.0)


def tiny_config(**method):
    return validate_config(
        {
            "dataset": {"max_train_images": 200, "max_test_images": 100},
            "model": {"hidden_units": [16]},
            "training": {"epochs": 2, "log_every": 1},
            "methods": {"baseline": {}, "trial": method},
        }
    )


def run_training(tmp_path, config, name, method="trial", seed=0, fault_map=None):
    paths = {key: tmp_path / f"{name}.{suffix}" for key, suffix in [("checkpoint", "pt"), ("metrics", "json"), ("history", "csv")]}
    metrics = train_model(config, method, seed, fault_map, paths["checkpoint"], paths["metrics"], paths["history"])
    return metrics, torch.load(paths["checkpoint"], weights_only=True), paths


def test_training_is_deterministic(tmp_path):
    config = tiny_config(dropout=0.3)
    first, first_checkpoint, _ = run_training(tmp_path, config, "first")
    second, second_checkpoint, _ = run_training(tmp_path, config, "second")
    assert first["final_loss"] == second["final_loss"]
    for name, tensor in first_checkpoint["state_dict"].items():
        assert torch.equal(tensor, second_checkpoint["state_dict"][name])


def test_training_seed_changes_weights(tmp_path):
    config = tiny_config()
    _, first, _ = run_training(tmp_path, config, "first", seed=0)
    _, second, _ = run_training(tmp_path, config, "second", seed=1)
    assert not torch.equal(first["state_dict"]["layers.1.weight"], second["state_dict"]["layers.1.weight"])


def test_clipping_bounds_master_weights(tmp_path):
    config = tiny_config(clip_value=0.02, range_mode="clip")
    metrics, checkpoint, paths = run_training(tmp_path, config, "clipped")
    largest = max(float(tensor.abs().max()) for name, tensor in checkpoint["state_dict"].items() if name.endswith("weight"))
    assert largest <= 0.02
    assert metrics["max_abs_weight"] <= 0.02
    assert json.loads(paths["metrics"].read_text())["storage"]["range_mode"] == "clip"


def test_training_on_chip_records_map(tmp_path):
    from faultreg.stages import make_fault_map

    config = tiny_config()
    map_path = tmp_path / "chip.npz"
    info = make_fault_map(config, 0.1, 2, map_path)
    metrics, _, paths = run_training(tmp_path, config, "faulty", fault_map=map_path)
    assert metrics["training_faults"] == "same_chip"
    assert metrics["training_fault_rate"] == 0.1
    assert metrics["map_index"] == 2
    assert metrics["map_hash"] == info["sha256"]
    history = paths["history"].read_text().splitlines()
    assert history[0].startswith("step,epoch,loss,max_abs_weight,max_abs_stored_weight")
    assert len(history) - 1 == metrics["steps"]
    assert np.isfinite(metrics["final_loss"])


def test_mask_stuck_zeroes_faulty_weight_gradient():
    model = tiny_linear()
    # Stuck cell under weight[0, 1] (row 1, column 0): only that gradient is zeroed.
    chip = CrossbarChip(model, FIXED, single_fault_map(model, 1, 0, 1, 3, SA0), mask_stuck_gradients=True)
    inputs = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    chip(inputs).sum().backward()
    assert model[0].weight.grad.tolist() == [[5.0, 0.0, 9.0], [5.0, 7.0, 9.0]]


def test_offset_encoding_chip_round_trip():
    model = tiny_linear()
    storage = StorageSettings(CellFormat(16, 2, "offset"), range_mode="fixed", weight_range=8.0)
    spec = FaultMapSpec(0.0, 0.5, 0, 0, 16, 2, tuple(layer_geometries(model)), encoding="offset")
    fault_map = generate_fault_map(spec)
    assert fault_map.states["0"].shape == (3, 2, 1, 8)
    fault_map.states["0"][0, 1, 0, 7] = SA0  # weight[1, 0] = 0.0 -> code 32768 -> 0 -> -8.0
    stored = CrossbarChip(model, storage, fault_map).stored_weights()["0.weight"]
    assert stored.tolist() == [[0.25, 0.5, -0.25], [-8.0, 1.0, -1.0]]


def test_map_encoding_mismatch_rejected():
    from faultreg.errors import FaultMapError

    model = tiny_linear()
    spec = FaultMapSpec(0.0, 0.5, 0, 0, 16, 2, tuple(layer_geometries(model)), encoding="offset")
    with pytest.raises(FaultMapError, match="offset"):
        CrossbarChip(model, FIXED, generate_fault_map(spec))


def test_add_stuck_cells_matches_full_rebuild():
    from faultreg.crossbar import SA0, SA1, stuck_masks

    model = torch.nn.Sequential(torch.nn.Linear(6, 4))
    storage = StorageSettings(CellFormat(16, 2, "differential"), "fixed", 1.0)
    chip = CrossbarChip(model, storage)
    generator = torch.Generator().manual_seed(5)
    states = chip.layer_states("0")
    indices = torch.randperm(states.numel(), generator=generator)[:40]
    stuck = torch.where(torch.rand(40, generator=generator) < 0.7, SA1, SA0).to(torch.int8)
    chip.add_stuck_cells("0", indices[:25], stuck[:25])
    chip.add_stuck_cells("0", indices[25:], stuck[25:])

    expected = torch.zeros_like(states)
    expected.view(-1)[indices] = stuck
    and_mask, or_mask = chip._masks["0"]
    expected_and, expected_or = stuck_masks(expected, storage.cell_format)
    assert torch.equal(chip.layer_states("0"), expected)
    assert torch.equal(and_mask, expected_and)
    assert torch.equal(or_mask, expected_or)
    healthy = (expected == 0).all(dim=1).all(dim=0).to(torch.float32)
    assert torch.equal(chip._healthy["0"], healthy)
