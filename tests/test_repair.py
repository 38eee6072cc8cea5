"""Repair oracles: hand-built layers with known results, and closed forms on drawn maps."""

import numpy as np
import pytest
from scipy import stats

from faultreg.crossbar import HEALTHY, SA0, SA1, CellFormat
from faultreg.faults import FaultMapSpec, LayerGeometry, generate_fault_map
from faultreg.mapping import LayerMapping
from faultreg.repair import (
    RepairSettings,
    effective_map,
    repair_duplication,
    repair_ecc,
    repair_row_remapping,
    repair_spare_columns,
)

# 4-bit weights in two 2-bit cells, one group: two cells per weight.
SMALL_FORMAT = CellFormat(4, 2, "sign_magnitude")


def test_ecc_counts_check_cells():
    states = np.zeros((1, 2, 1, 2), dtype=np.int8)
    states[0, 0, 0, 1] = SA1  # weight 0: one faulty data cell
    states[0, 1, 0, 0] = SA0  # weight 1: one faulty data cell and one faulty check cell
    check = np.zeros((1, 2, 3), dtype=np.int8)
    check[0, 1, 2] = SA1
    repaired = repair_ecc(states, RepairSettings("ecc", correctable_cells=1, check_cells=3, codeword_weights=1), check)
    assert np.all(repaired[0, 0] == HEALTHY)
    assert repaired[0, 1, 0, 0] == SA0
    assert np.array_equal(states[0, 1], repaired[0, 1])


def test_ecc_with_zero_correction_changes_nothing_faulty():
    states = np.full((2, 2, 1, 2), SA1, dtype=np.int8)
    settings = RepairSettings("ecc", correctable_cells=0, check_cells=0, codeword_weights=1)
    repaired = repair_ecc(states, settings, np.zeros((2, 2, 0), dtype=np.int8))
    assert np.array_equal(repaired, states)


def test_ecc_codewords_span_adjacent_weights_of_a_row():
    # One row of 5 weights in codewords of 2: weights (0, 1), (2, 3) and (4) alone.
    states = np.zeros((1, 5, 1, 2), dtype=np.int8)
    states[0, 0, 0, 0] = SA1  # codeword 0: one faulty cell, corrected
    states[0, 2, 0, 1] = SA0  # codeword 1: two faulty cells, left as they are
    states[0, 3, 0, 0] = SA1
    states[0, 4, 0, :] = SA1  # codeword 2: two faulty cells in its single weight
    check = np.zeros((1, 3, 1), dtype=np.int8)
    repaired = repair_ecc(states, RepairSettings("ecc", correctable_cells=1, check_cells=1, codeword_weights=2), check)
    assert np.all(repaired[0, :2] == HEALTHY)
    assert np.array_equal(repaired[0, 2:], states[0, 2:])


def test_ecc_faulty_check_cell_uses_the_budget():
    states = np.zeros((1, 2, 1, 2), dtype=np.int8)
    states[0, 1, 0, 0] = SA1
    check = np.full((1, 1, 1), SA0, dtype=np.int8)
    repaired = repair_ecc(states, RepairSettings("ecc", correctable_cells=1, check_cells=1, codeword_weights=2), check)
    assert repaired[0, 1, 0, 0] == SA1


def test_spare_columns_replace_worst_columns_while_better():
    # One layer of 4 rows x 2 outputs x 2 cells = 4 physical columns, on one 4 x 4 crossbar.
    mapping = LayerMapping(4, 2, SMALL_FORMAT, crossbar_rows=4, crossbar_columns=4)
    physical = np.zeros((4, 4), dtype=np.int8)
    physical[:3, 0] = SA1  # 3 faulty cells
    physical[:1, 2] = SA0  # 1 faulty cell
    physical[:2, 3] = SA1  # 2 faulty cells
    states = physical.reshape(4, 2, 1, 2)
    spares = np.zeros((1, 4, 2), dtype=np.int8)
    spares[0, 3, 0] = SA0  # spare 0: 1 faulty cell
    spares[0, :2, 1] = SA1  # spare 1: 2 faulty cells
    repaired = repair_spare_columns(states, mapping, spares).reshape(4, 4)
    # Column 0 (3 faults) takes spare 0 (1 fault). Column 3 (2 faults) keeps its cells, since
    # spare 1 has as many faults.
    assert np.array_equal(repaired[:, 0], spares[0, :, 0])
    assert np.array_equal(repaired[:, 1:], physical[:, 1:])


def test_spare_columns_act_per_crossbar():
    # 2 rows x 4 outputs x 2 cells = 8 physical columns on two 2 x 4 crossbars.
    mapping = LayerMapping(2, 4, SMALL_FORMAT, crossbar_rows=2, crossbar_columns=4)
    physical = np.zeros((2, 8), dtype=np.int8)
    physical[:, 1] = SA1
    physical[:, 6] = SA0
    spares = np.zeros((2, 2, 1), dtype=np.int8)
    repaired = repair_spare_columns(physical.reshape(2, 4, 1, 2), mapping, spares).reshape(2, 8)
    assert np.all(repaired == HEALTHY)


def test_row_remapping_puts_small_rows_on_faulty_rows():
    mapping = LayerMapping(3, 1, SMALL_FORMAT, crossbar_rows=4, crossbar_columns=4)
    physical = np.zeros((3, 2), dtype=np.int8)
    physical[0, :] = SA1  # physical row 0: 2 faults
    physical[2, 0] = SA0  # physical row 2: 1 fault
    magnitude = np.array([[5.0, 5.0], [1.0, 1.0], [3.0, 3.0]])
    remapped = repair_row_remapping(physical.reshape(3, 1, 1, 2), mapping, magnitude).reshape(3, 2)
    # Logical row 1 (smallest) sits on physical row 0, row 2 on physical row 2, row 0 on the
    # healthy physical row 1.
    assert np.array_equal(remapped[1], physical[0])
    assert np.array_equal(remapped[2], physical[2])
    assert np.all(remapped[0] == HEALTHY)


def test_duplication_reads_the_copy_with_fewer_faults():
    first = np.zeros((1, 3, 1, 2), dtype=np.int8)
    second = np.zeros((1, 3, 1, 2), dtype=np.int8)
    first[0, 0, 0, :] = SA1  # weight 0: 2 faults here, 1 in the copy
    second[0, 0, 0, 0] = SA0
    first[0, 1, 0, 0] = SA0  # weight 1: 1 fault in each, the first copy wins the tie
    second[0, 1, 0, 1] = SA1
    second[0, 2, 0, 0] = SA1  # weight 2: healthy in the first copy
    chosen = repair_duplication(first, second)
    assert np.array_equal(chosen[0, 0], second[0, 0])
    assert np.array_equal(chosen[0, 1], first[0, 1])
    assert np.all(chosen[0, 2] == HEALTHY)


def drawn_map(rate: float, map_index: int = 0):
    spec = FaultMapSpec(
        fault_rate=rate, sa1_share=0.8, map_index=map_index, root_seed=7, weight_bits=16, bits_per_cell=2,
        layers=(LayerGeometry("layer", rows=200, columns=100),), encoding="differential",
        crossbar_rows=128, crossbar_columns=128,
    )
    return generate_fault_map(spec)


def test_ecc_leaves_the_binomial_tail():
    # 16 data cells per weight and no check cells: with k = 1 a weight keeps its faulty cells
    # only when it has two or more, so the expected faulty cells per weight are
    # 16 p - P(X = 1) for X ~ Binomial(16, p).
    rate = 0.05
    fault_map = drawn_map(rate)
    repaired = effective_map(fault_map, RepairSettings("ecc", correctable_cells=1, check_cells=0, codeword_weights=1))
    weights = 200 * 100
    expected = weights * (16 * rate - stats.binom.pmf(1, 16, rate))
    faulty = np.count_nonzero(repaired.states["layer"])
    # Per-weight counts are independent with variance below 16 * 16 * p, a loose 6-sigma bound.
    assert abs(faulty - expected) < 6 * np.sqrt(weights * 16 * 16 * rate)
    assert faulty < np.count_nonzero(fault_map.states["layer"])


def test_check_cells_lower_the_corrected_share():
    rate = 0.1
    fault_map = drawn_map(rate)
    without = effective_map(fault_map, RepairSettings("ecc", correctable_cells=2, check_cells=0, codeword_weights=1))
    with_checks = effective_map(fault_map, RepairSettings("ecc", correctable_cells=2, check_cells=8, codeword_weights=1))
    assert np.count_nonzero(with_checks.states["layer"]) > np.count_nonzero(without.states["layer"])


@pytest.mark.parametrize("kind", ["ecc", "spare_columns", "duplication"])
def test_repairs_never_add_faults_and_are_deterministic(kind):
    fault_map = drawn_map(0.05)
    settings = RepairSettings(kind)
    first = effective_map(fault_map, settings)
    second = effective_map(fault_map, settings)
    assert np.array_equal(first.states["layer"], second.states["layer"])
    assert np.count_nonzero(first.states["layer"]) < np.count_nonzero(fault_map.states["layer"])
    assert first.spec == fault_map.spec


def test_duplication_faulty_weights_follow_the_product_rule():
    # A weight stays faulty only when both copies have a faulty cell in it: the faulty-weight
    # share is q**2 with q = 1 - (1 - p)**16.
    rate = 0.02
    fault_map = drawn_map(rate)
    repaired = effective_map(fault_map, RepairSettings("duplication"))
    faulty_weights = np.count_nonzero(np.any(repaired.states["layer"] != HEALTHY, axis=(2, 3)))
    q = 1 - (1 - rate) ** 16
    low, high = stats.binom.ppf(1e-6, 20_000, q**2), stats.binom.isf(1e-6, 20_000, q**2)
    assert low <= faulty_weights <= high


def test_row_remapping_needs_weights():
    with pytest.raises(ValueError, match="weights"):
        effective_map(drawn_map(0.05), RepairSettings("row_remapping"))


def test_row_remapping_moves_faults_to_small_weights():
    fault_map = drawn_map(0.05)
    generator = np.random.default_rng(3)
    weight = generator.normal(size=(200, 100))
    repaired = effective_map(fault_map, RepairSettings("row_remapping"), {"layer": weight})
    before = np.any(fault_map.states["layer"] != HEALTHY, axis=(2, 3))
    after = np.any(repaired.states["layer"] != HEALTHY, axis=(2, 3))
    # The same number of faulty cells, now on weights of smaller total magnitude.
    assert np.count_nonzero(repaired.states["layer"]) == np.count_nonzero(fault_map.states["layer"])
    assert np.abs(weight)[after].sum() < np.abs(weight)[before].sum()


def test_unknown_repair_rejected():
    with pytest.raises(ValueError, match="unknown repair"):
        RepairSettings("magic")


def small_study(tmp_path):
    from faultreg.config import validate_config

    return validate_config({
        "dataset": {"max_train_images": 200, "max_test_images": 100},
        "model": {"hidden_units": [16]},
        "training": {"epochs": 2, "batch_size": 50, "seeds": [0]},
        "methods": {
            "baseline": {},
            "ecc": {"repair": "ecc", "ecc_codeword_weights": 1, "ecc_check_cells": 3},
            "remap": {"repair": "row_remapping"},
        },
    })


@pytest.mark.parametrize("method", ["ecc", "remap"])
def test_repaired_training_and_inference_pair_by_chip(tmp_path, method):
    from faultreg.stages import inject_faults, make_fault_map, train_runs

    config = small_study(tmp_path)
    map_path = tmp_path / "chip.npz"
    make_fault_map(config, 0.1, 0, map_path)
    metrics = train_runs(config, method, [0], [map_path], [tmp_path / method])[0]
    baseline = train_runs(config, "baseline", [0], [map_path], [tmp_path / "baseline"])[0]
    # Both runs name the fabricated chip, so they pair up although the repaired run saw fewer faults.
    assert metrics["map_hash"] == baseline["map_hash"]
    assert metrics["final_faulty_cell_fraction"] <= baseline["final_faulty_cell_fraction"]
    if method == "ecc":
        # Per weight, 16 data and 3 check cells: only a weight with one faulty data cell and no
        # faulty check cell is corrected, so 16 p (1 - p)**18 of the 16 p faulty data cells per
        # weight go, 15 % at p = 0.1.
        expected = baseline["final_faulty_cell_fraction"] * (1 - 0.9**18)
        assert metrics["final_faulty_cell_fraction"] == pytest.approx(expected, rel=0.1)

    rows = inject_faults(config, [tmp_path / method / "seed0" / "model.pt"], [map_path], tmp_path / "rows.csv")
    assert len(rows) == 1
    assert rows["map_hash"].iloc[0] == baseline["map_hash"]
    if method == "ecc":
        # Inference installs the same repaired chip that the last epoch was evaluated on. Row
        # remapping decides again with the final weights, so its chip may differ.
        assert rows["accuracy"].iloc[0] == metrics["final_test_accuracy"]


def test_row_remapping_with_wear_rejected(tmp_path):
    from faultreg.errors import ConfigError
    from faultreg.stages import make_fault_map, train_runs

    config = small_study(tmp_path)
    map_path = tmp_path / "chip.npz"
    make_fault_map(config, 0.1, 0, map_path)
    with pytest.raises(ConfigError, match="row remapping"):
        train_runs(config, "remap", [0], [map_path], [tmp_path / "remap"], wear=True)


def test_inject_repairs_each_map_once_with_same_rows(tmp_path):
    import torch

    from faultreg.datasets import load_dataset
    from faultreg.faults import load_fault_map
    from faultreg.inference import evaluate
    from faultreg.stages import _load_evaluation_chip, inject_faults, make_fault_map, train_runs

    config = small_study(tmp_path)
    maps = [tmp_path / "a.npz", tmp_path / "b.npz"]
    make_fault_map(config, 0.02, 0, maps[0])
    make_fault_map(config, 0.05, 1, maps[1])
    train_runs(config, "ecc", [0, 1], [None], [tmp_path / "ecc"])
    checkpoints = [tmp_path / "ecc" / f"seed{seed}" / "model.pt" for seed in (0, 1)]
    rows = inject_faults(config, checkpoints, maps, tmp_path / "rows.csv")

    # Checkpoint-major order, and each accuracy equals a separate repair and evaluation.
    assert rows["training_seed"].tolist() == [0, 0, 1, 1]
    assert rows["fault_rate"].tolist() == [0.02, 0.05, 0.02, 0.05]
    data = load_dataset(config["dataset"], config["seed"])
    images, labels = torch.from_numpy(data.test_images), torch.from_numpy(data.test_labels)
    for row, (checkpoint_path, map_path) in zip(rows.itertuples(), [(c, m) for c in checkpoints for m in maps]):
        _, chip = _load_evaluation_chip(checkpoint_path, data, torch.device("cpu"))
        chip.install_fault_map(load_fault_map(map_path), RepairSettings("ecc", correctable_cells=1, check_cells=3, codeword_weights=1))
        accuracy, _ = evaluate(chip, images, labels, config["evaluation"]["batch_size"])
        assert row.accuracy == accuracy
