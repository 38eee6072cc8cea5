"""Write endurance: lifetime distribution, slice-write counting, wear-out and its bookkeeping."""

import math

import pandas as pd
import pytest
import torch
from torch import nn

from faultreg.chip import CrossbarChip, StorageSettings
from faultreg.config import validate_config
from faultreg.crossbar import HEALTHY, NEGATIVE_GROUP, POSITIVE_GROUP, SA1, CellFormat
from faultreg.endurance import EnduranceSettings, WearTracker
from faultreg.stages import inject_faults, make_fault_map, train_model

STORAGE = StorageSettings(CellFormat(16, 2), range_mode="fixed", weight_range=65535 / 4096)


def one_weight_chip(value: float) -> tuple[nn.Module, CrossbarChip]:
    model = nn.Sequential(nn.Linear(1, 1, bias=False))
    with torch.no_grad():
        model[0].weight.fill_(value)
    return model, CrossbarChip(model, STORAGE)


def tracker(chip: CrossbarChip, mean_writes: float = 1e9, sa1_share: float = 1.0) -> WearTracker:
    return WearTracker(chip, EnduranceSettings(mean_writes, 0.0, sa1_share), torch.Generator().manual_seed(0))


def set_weight(model: nn.Module, value: float) -> None:
    with torch.no_grad():
        model[0].weight.fill_(value)


def test_lifetime_distribution_moments():
    settings = EnduranceSettings(mean_writes=500.0, coefficient_of_variation=0.3, sa1_share=0.8)
    mu, sigma = settings.log_normal_parameters()
    # Closed form of the log-normal: mean exp(mu + sigma**2 / 2), CV sqrt(exp(sigma**2) - 1).
    assert math.exp(mu + sigma**2 / 2) == pytest.approx(500.0)
    assert math.sqrt(math.expm1(sigma**2)) == pytest.approx(0.3)

    model = nn.Sequential(nn.Linear(100, 100, bias=False))
    wear = WearTracker(CrossbarChip(model, STORAGE), settings, torch.Generator().manual_seed(1))
    lifetimes = wear.lifetimes["0"].double()
    samples = lifetimes.numel()  # 160,000 cells
    assert abs(float(lifetimes.mean()) - 500.0) <= 5 * 150.0 / math.sqrt(samples)
    assert float(lifetimes.std() / lifetimes.mean()) == pytest.approx(0.3, rel=0.02)


def test_only_changed_slices_count():
    model, chip = one_weight_chip(0.25)  # G+ code 1024: slice 5 is 1
    wear = tracker(chip)

    set_weight(model, 0.25 + 1 / 4096)  # code 1025: only slice 0 changes
    wear.record_write()
    writes = wear.writes["0"][:, :, 0, 0]
    assert writes[POSITIVE_GROUP].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert writes[NEGATIVE_GROUP].tolist() == [0] * 8

    set_weight(model, -0.25)  # G+ 1025 -> 0 (slices 0 and 5), G- 0 -> 1024 (slice 5)
    wear.record_write()
    writes = wear.writes["0"][:, :, 0, 0]
    assert writes[POSITIVE_GROUP].tolist() == [2, 0, 0, 0, 0, 1, 0, 0]
    assert writes[NEGATIVE_GROUP].tolist() == [0, 0, 0, 0, 0, 1, 0, 0]
    assert wear.total_writes() == 4


def test_rewriting_same_value_is_free():
    model, chip = one_weight_chip(0.3)
    wear = tracker(chip)
    wear.record_write()
    wear.record_write()
    assert wear.total_writes() == 0


def test_cell_past_lifetime_becomes_stuck():
    model, chip = one_weight_chip(0.25)
    wear = tracker(chip)
    wear.lifetimes["0"][POSITIVE_GROUP, 0, 0, 0] = 0.5  # slice 0 of G+ survives no write

    set_weight(model, 0.25 + 1 / 4096)
    assert wear.record_write() == 1

    states = chip.layer_states("0")[:, :, 0, 0]
    assert states[POSITIVE_GROUP, 0] == SA1
    assert int(torch.count_nonzero(states != HEALTHY)) == 1
    # Slice 0 now reads 3 whatever is written: 0.25 reads back as (1024 + 3) / 4096.
    set_weight(model, 0.25)
    assert chip.stored_weights()["0.weight"].item() == 1027 / 4096


def endurance_config(**endurance):
    return validate_config(
        {
            "dataset": {"max_train_images": 200, "max_test_images": 100},
            "model": {"hidden_units": [16]},
            "training": {"epochs": 2, "log_every": 1},
            "endurance": {"enabled": True, **endurance},
            "methods": {"baseline": {}},
        }
    )


def train(tmp_path, config, name, fault_map=None):
    paths = [tmp_path / f"{name}.{suffix}" for suffix in ("pt", "json", "csv")]
    metrics = train_model(config, "baseline", 0, fault_map, *paths)
    return metrics, paths


def test_training_wears_cells_out(tmp_path):
    metrics, paths = train(tmp_path, endurance_config(mean_writes=3, coefficient_of_variation=0.3), "worn")
    history = pd.read_csv(paths[2])
    fractions = history["faulty_cell_fraction"].tolist()
    assert fractions[0] >= 0.0
    assert all(later >= earlier for earlier, later in zip(fractions, fractions[1:]))
    assert fractions[-1] > fractions[0]
    assert metrics["worn_cells"] > 0
    assert metrics["final_faulty_cell_fraction"] == pytest.approx(fractions[-1], abs=1e-3)


def test_wear_is_deterministic(tmp_path):
    config = endurance_config(mean_writes=5)
    first, _ = train(tmp_path, config, "first")
    second, _ = train(tmp_path, config, "second")
    assert first["worn_cells"] == second["worn_cells"]
    assert first["final_loss"] == second["final_loss"]


def test_same_chip_evaluation_restores_wear(tmp_path):
    config = endurance_config(mean_writes=4)
    map_path = tmp_path / "chip.npz"
    make_fault_map(config, 0.05, 0, map_path)
    metrics, paths = train(tmp_path, config, "chip", fault_map=map_path)
    assert metrics["worn_cells"] > 0

    rows = inject_faults(config, [paths[0]], [map_path], tmp_path / "rows.csv")

    # The last epoch's accuracy was measured on the worn chip; inference must see the same chip.
    assert rows["accuracy"].iloc[0] == metrics["final_test_accuracy"]


def test_solve_mean_lifetime_hits_target_share():
    from faultreg.stages import solve_mean_lifetime

    # Half the cells were written 100 times, half 10,000 times. With CV 0 every lifetime equals
    # the mean, so any mean from 100 up to 10,000 wears out exactly the busy half. Bisection
    # returns the lower edge.
    writes = torch.tensor([100.0] * 50 + [10_000.0] * 50)
    mean = solve_mean_lifetime(writes, 0.0, 0.5)
    assert mean == pytest.approx(100.0, rel=1e-6)

    # With CV 0.3, a target of 25 % puts the mean where the busy half wears out with probability
    # 1/2 and the quiet half almost never: lifetime median exp(mu) = 10,000 writes.
    sigma = math.sqrt(math.log1p(0.3**2))
    mean = solve_mean_lifetime(writes, 0.3, 0.25)
    assert math.log(mean) - sigma**2 / 2 == pytest.approx(math.log(10_000.0), abs=1e-3)


def test_solve_mean_lifetime_rejects_unreachable_share():
    from faultreg.errors import ConfigError
    from faultreg.stages import solve_mean_lifetime

    writes = torch.tensor([0.0] * 90 + [5.0] * 10)
    with pytest.raises(ConfigError, match="10.0 % of the cells"):
        solve_mean_lifetime(writes, 0.3, 0.2)


def test_calibrated_run_wears_about_target_share(tmp_path):
    from faultreg.stages import calibrate_endurance

    config = endurance_config()
    result = calibrate_endurance(config, "baseline", 0, 0.05)
    calibrated = validate_config({**config, "endurance": {**config["endurance"], "mean_writes": result["mean_writes"]}})
    metrics, _ = train(tmp_path, calibrated, "calibrated")
    # Wear feeds back on training, so the realized share only approximates the target.
    assert 0.02 <= metrics["final_faulty_cell_fraction"] <= 0.10
