"""Tests of the study figures on small hand-built tidy tables.

Each figure is drawn from CSV tables written under the names that ``faultreg aggregate`` uses,
and the numbers in the figure's CSV are compared with means computed by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from faultreg.errors import FaultregError
from faultreg.figures import FIGURES, draw_figure, load_tables, pareto_front, share_label

from study_tables import SHARE, accuracy_row, history_row, study_config, training_row, write_tables

SEEDS = (0, 1)
MAPS = (0, 1)
# (seed, map) in the order of the value lists below.
PAIRS = [(seed, map_index) for seed in SEEDS for map_index in MAPS]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- Synthetic tables ----------------------------------------------------------------------

# Values per (seed, map) in PAIRS order, each followed by its hand-computed mean.
BASELINE_INFERENCE = [0.50, 0.60, 0.40, 0.70]  # 0.55
CLIP_INFERENCE = [0.90, 0.92, 0.94, 0.96]  # 0.93
BASELINE_CHIP = [0.10, 0.20, 0.15, 0.15]  # 0.15
BASELINE_SA0 = [0.80, 0.84, 0.86, 0.90]  # 0.85
BASELINE_SA1 = [0.20, 0.30, 0.25, 0.25]  # 0.25
CLIP_SA1 = [0.91, 0.93, 0.95, 0.97]  # 0.94
BASELINE_SA1_CHIP = [0.05, 0.07, 0.09, 0.11]  # 0.08

# (method, layer, slice position): accuracies in PAIRS order.
SENSITIVITY = {
    ("baseline", "layers.0", 0): [0.90, 0.92, 0.94, 0.96],  # 0.93
    ("baseline", "layers.0", 7): [0.10, 0.20, 0.30, 0.40],  # 0.25
    ("baseline", "layers.2", 0): [0.97, 0.97, 0.97, 0.97],  # 0.97
    ("baseline", "layers.2", 7): [0.50, 0.60, 0.70, 0.80],  # 0.65
    ("clip", "layers.0", 0): [0.95, 0.95, 0.96, 0.96],  # 0.955
    ("clip", "layers.0", 7): [0.85, 0.87, 0.89, 0.91],  # 0.88
    ("clip", "layers.2", 0): [0.96, 0.96, 0.96, 0.96],  # 0.96
    ("clip", "layers.2", 7): [0.90, 0.80, 0.90, 0.80],  # 0.85
}
SENSITIVITY_MEANS = {
    ("baseline", "layers.0", 0): 0.93, ("baseline", "layers.0", 7): 0.25,
    ("baseline", "layers.2", 0): 0.97, ("baseline", "layers.2", 7): 0.65,
    ("clip", "layers.0", 0): 0.955, ("clip", "layers.0", 7): 0.88,
    ("clip", "layers.2", 0): 0.96, ("clip", "layers.2", 7): 0.85,
}

# Clip sweep: rate 0 has one map (seeds 0 and 1), rate 0.1 has two (PAIRS order).
SWEEP_CLEAN = {"clip_c0.25": [0.90, 0.92], "clip_c0.5": [0.96, 0.98], "clip_c1": [0.97, 0.97]}
SWEEP_FAULTY = {"clip_c0.25": [0.80, 0.82, 0.84, 0.86], "clip_c0.5": [0.90, 0.91, 0.92, 0.93], "clip_c1": [0.50, 0.60, 0.55, 0.65]}
SWEEP_MEANS = {(0.0, 0.25): 0.91, (0.0, 0.5): 0.97, (0.0, 1.0): 0.97, (0.1, 0.25): 0.83, (0.1, 0.5): 0.915, (0.1, 1.0): 0.575}


def figure_runs() -> list[dict]:
    rows = []
    for seed, value in zip(SEEDS, (0.96, 0.98)):
        rows.append(accuracy_row("baseline", value, seed=seed))
    for position, (seed, map_index) in enumerate(PAIRS):
        def add(method: str, values: list[float], **where: object) -> None:
            rows.append(accuracy_row(method, values[position], seed=seed, map_index=map_index, **where))

        add("baseline", BASELINE_INFERENCE, rate=0.1)
        add("clip", CLIP_INFERENCE, rate=0.1)
        add("baseline", BASELINE_CHIP, rate=0.1, faults="same_chip")
        add("clip", [0.94] * 4, rate=0.1, faults="same_chip")
        add("baseline", BASELINE_SA0, rate=0.1, share=0.0)
        add("baseline", BASELINE_SA1, rate=0.1, share=1.0)
        add("clip", CLIP_SA1, rate=0.1, share=1.0)
        add("baseline", BASELINE_SA1_CHIP, rate=0.1, share=1.0, faults="same_chip")
        # Rows every figure must leave out: a share outside the stuck-type study, a clip-sweep
        # method, a method outside the study's training methods.
        add("baseline", [0.0] * 4, rate=0.1, share=0.5)
        add("clip_c0.25", [0.0] * 4, rate=0.1, share=1.0)
        add("dropout", [0.0] * 4, rate=0.1, share=1.0, faults="same_chip")
        for (method, layer, position_of_slice), values in SENSITIVITY.items():
            add(method, values, rate=0.1, slices=str(position_of_slice), layers=layer)
        # Sensitivity rows of a method outside the study and at another rate.
        add("dropout", [0.0] * 4, rate=0.1, slices="0", layers="layers.0")
        add("baseline", [0.0] * 4, rate=0.05, slices="0", layers="layers.0")
        for method, values in SWEEP_FAULTY.items():
            add(method, values, rate=0.1)
        # A clip-sweep rate outside studies.clip_sweep.rates.
        add("clip_c0.5", [0.0] * 4, rate=0.05)
    for method, values in SWEEP_CLEAN.items():
        for seed, value in zip(SEEDS, values):
            rows.append(accuracy_row(method, value, seed=seed))
    return rows


# Endurance: final accuracy and slice writes after training with wear, per seed.
FINAL_ACCURACY = {"baseline": [0.90, 0.94], "clip": [0.95, 0.97], "dropout": [0.91, 0.93]}  # 0.92, 0.96, 0.92
SLICE_WRITES = {"baseline": [100.0, 300.0], "clip": [50.0, 50.0], "dropout": [120.0, 80.0]}  # 200, 50, 100


# Short fault-free runs: every training row of the figures has these values.
SHORT_RUN = {"steps": 20, "epochs_completed": 1, "final_loss": 0.3, "final_faulty_cell_fraction": 0.0}


def figure_training() -> list[dict]:
    rows = []
    for method in FINAL_ACCURACY:
        for seed in SEEDS:
            rows.append(training_row(method, seed, wear=True, final_test_accuracy=FINAL_ACCURACY[method][seed],
                                     slice_writes=SLICE_WRITES[method][seed], **SHORT_RUN))
            # Runs without wear must not enter the endurance figure.
            rows.append(training_row(method, seed, wear=False, final_test_accuracy=0.1, slice_writes=1e6, **SHORT_RUN))
    return rows


# Max |w| at step 20 on the main chips, per (seed, chip): log10 values 1, 3, 2, 2, so the
# geometric mean is 100 while the arithmetic mean would be 302.5.
CHIP_MAX_ABS_WEIGHT = [10.0, 1000.0, 100.0, 100.0]
CHIP_LOSS = [1.0, 4.0, 2.0, 2.0]  # geometric mean 2, arithmetic mean 2.25
# Worn-cell fraction at step 10 per seed.
WORN_AT_STEP_10 = {"baseline": [0.02, 0.04], "clip": [0.01, 0.01], "dropout": [0.03, 0.05]}  # 0.03, 0.01, 0.04


def figure_history() -> list[dict]:
    rows = []
    # Fault-free baseline: max |w| 1 and 4 at step 20 (geometric mean 2), loss 0.3 and 0.5.
    for seed, (weight, loss) in enumerate([(1.0, 0.3), (4.0, 0.5)]):
        rows.append(history_row("baseline", seed, 0, max_abs_weight=0.5, loss=2.3))
        rows.append(history_row("baseline", seed, 10, max_abs_weight=1.0, loss=0.6))
        rows.append(history_row("baseline", seed, 20, max_abs_weight=weight, loss=loss))
    chip = {"faults": "same_chip", "rate": 0.1, "share": SHARE}
    for position, (seed, map_index) in enumerate(PAIRS):
        rows.append(history_row("baseline", seed, 0, max_abs_weight=0.5, loss=2.3, chip=map_index, **chip))
        rows.append(history_row("baseline", seed, 20, max_abs_weight=CHIP_MAX_ABS_WEIGHT[position],
                                loss=CHIP_LOSS[position], chip=map_index, **chip))
        # The clip run on (seed 1, chip 1) diverged at step 20: its infinite max |w| and NaN loss drop out.
        diverged = position == 3
        rows.append(history_row("clip", seed, 20, max_abs_weight=math.inf if diverged else 0.5,
                                loss=math.nan if diverged else 0.4, chip=map_index, **chip))
        # Rows outside the figure: another SA1 share, another rate, a method not drawn.
        rows.append(history_row("baseline", seed, 20, max_abs_weight=1e9, chip=map_index, faults="same_chip", rate=0.1, share=1.0))
        rows.append(history_row("baseline", seed, 20, max_abs_weight=1e9, chip=map_index, faults="same_chip", rate=0.05, share=SHARE))
        rows.append(history_row("dropout", seed, 20, max_abs_weight=1e9, chip=map_index, **chip))
    for method, values in WORN_AT_STEP_10.items():
        for seed, worn in zip(SEEDS, values):
            rows.append(history_row(method, seed, 0, max_abs_weight=1e9, faulty_cell_fraction=0.0, wear=True))
            rows.append(history_row(method, seed, 10, max_abs_weight=1e9, faulty_cell_fraction=worn, wear=True))
    rows.append(history_row("l2", 0, 10, faulty_cell_fraction=0.9, wear=True))
    return rows


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Draw every figure once from the synthetic tables."""
    folder = tmp_path_factory.mktemp("figures")
    tables = write_tables(folder / "tables", figure_runs(), figure_training(), figure_history())
    figures_dir = folder / "figures"
    config = study_config()
    paths = {name: draw_figure(name, tables, figures_dir, config) for name in FIGURES}
    return {"dir": figures_dir, "paths": paths}


def figure_table(drawn: dict, name: str) -> pd.DataFrame:
    return pd.read_csv(drawn["dir"] / f"{name}.csv")


def only_row(frame: pd.DataFrame, **where: object) -> pd.Series:
    """Return the single row whose columns equal ``where`` (floats compared with isclose)."""
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        if isinstance(value, float):
            mask &= np.isclose(frame[column].astype(float), value)
        else:
            mask &= frame[column] == value
    assert int(mask.sum()) == 1, f"{int(mask.sum())} rows match {where}"
    return frame[mask].iloc[0]


# --- Files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_files_written(drawn: dict, name: str) -> None:
    png, csv = drawn["dir"] / f"{name}.png", drawn["dir"] / f"{name}.csv"
    assert drawn["paths"][name] == [png, csv]
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert png.stat().st_size > 5_000
    assert len(figure_table(drawn, name)) > 0


def test_unknown_figure_name_raises(tmp_path: Path) -> None:
    with pytest.raises(FaultregError, match="unknown figure 'heatmap'"):
        draw_figure("heatmap", tmp_path, tmp_path / "figures", study_config())
    assert not (tmp_path / "figures").exists()


def test_load_tables_names_missing_file(tmp_path: Path) -> None:
    write_tables(tmp_path, [accuracy_row("baseline", 0.9, seed=0)], [], [])
    (tmp_path / "training_history.csv").unlink()
    with pytest.raises(FaultregError, match="training_history.csv"):
        load_tables(tmp_path)


# --- Numbers behind each figure ------------------------------------------------------------


def test_sensitivity_means_per_cell(drawn: dict) -> None:
    table = figure_table(drawn, "sensitivity")
    assert len(table) == len(SENSITIVITY_MEANS)
    assert set(table["method"]) == {"baseline", "clip"}
    for (method, layer, position), mean in SENSITIVITY_MEANS.items():
        row = only_row(table, method=method, layer=layer, slice_position=position)
        assert row["n"] == 4
        assert row["mean"] == pytest.approx(mean)
    constant = only_row(table, method="baseline", layer="layers.2", slice_position=0)
    assert constant["std"] == 0.0
    assert constant["ci_low"] == pytest.approx(0.97)


def test_clip_sweep_means_from_method_names(drawn: dict) -> None:
    table = figure_table(drawn, "clip_sweep")
    # Rate 0.05 is not in studies.clip_sweep.rates and the SA1-only row is not at the main share.
    assert len(table) == len(SWEEP_MEANS)
    for (rate, clip_value), mean in SWEEP_MEANS.items():
        row = only_row(table, fault_rate=rate, clip_value=clip_value)
        assert row["n"] == (2 if rate == 0.0 else 4)
        assert row["mean"] == pytest.approx(mean)


def test_stuck_type_means_per_method_and_share(drawn: dict) -> None:
    table = figure_table(drawn, "stuck_type")
    expected = {
        ("none", "baseline", 0.0): 0.85,
        ("none", "baseline", SHARE): 0.55,
        ("none", "baseline", 1.0): 0.25,
        ("none", "clip", SHARE): 0.93,
        ("none", "clip", 1.0): 0.94,
        ("same_chip", "baseline", SHARE): 0.15,
        ("same_chip", "baseline", 1.0): 0.08,
        ("same_chip", "clip", SHARE): 0.94,
    }
    # The 5 % panel has no runs, so it is drawn empty and adds no rows.
    assert len(table) == len(expected)
    assert np.allclose(table["fault_rate"], 0.1)
    for (setting, method, share), mean in expected.items():
        row = only_row(table, setting=setting, method=method, sa1_share=share)
        assert row["n"] == 4
        assert row["mean"] == pytest.approx(mean)


def test_exploding_weights_geometric_mean(drawn: dict) -> None:
    table = figure_table(drawn, "exploding_weights")
    assert set(table["curve"]) == {"baseline, fault-free", "baseline, 10 % faulty cells", "clip, 10 % faulty cells"}
    on_chip = only_row(table, curve="baseline, 10 % faulty cells", quantity="log10_max_abs_weight", step=20)
    geometric_mean = math.prod(CHIP_MAX_ABS_WEIGHT) ** (1 / len(CHIP_MAX_ABS_WEIGHT))
    assert on_chip["n"] == 4
    assert on_chip["mean"] == pytest.approx(2.0)
    assert 10 ** on_chip["mean"] == pytest.approx(geometric_mean)
    assert geometric_mean == pytest.approx(100.0)
    fault_free = only_row(table, curve="baseline, fault-free", quantity="log10_max_abs_weight", step=20)
    assert 10 ** fault_free["mean"] == pytest.approx(2.0)  # sqrt(1 * 4)
    # The loss is also averaged as log10, so the curve shows its geometric mean.
    loss = only_row(table, curve="baseline, 10 % faulty cells", quantity="log10_loss", step=20)
    assert 10 ** loss["mean"] == pytest.approx(2.0)
    diverged = only_row(table, curve="clip, 10 % faulty cells", quantity="log10_max_abs_weight", step=20)
    assert diverged["n"] == 3
    assert 10 ** diverged["mean"] == pytest.approx(0.5)
    assert only_row(table, curve="clip, 10 % faulty cells", quantity="log10_loss", step=20)["n"] == 3
    # The 1e9 rows (wear, another share or rate, dropout) would lift some mean to 9.
    assert table.loc[table["quantity"] == "log10_max_abs_weight", "mean"].max() == pytest.approx(2.0)


def test_endurance_final_accuracy_and_wear_curve(drawn: dict) -> None:
    table = figure_table(drawn, "endurance")
    finals = table[table["quantity"] == "final_test_accuracy"]
    assert sorted(finals["method"]) == ["baseline", "clip", "dropout"]
    for method, mean in {"baseline": 0.92, "clip": 0.96, "dropout": 0.92}.items():
        row = only_row(finals, method=method)
        assert row["n"] == 2
        assert row["mean"] == pytest.approx(mean)
        assert math.isnan(row["step"])
    writes = table[table["quantity"] == "slice_writes"]
    assert only_row(writes, method="baseline")["mean"] == pytest.approx(200.0)
    assert only_row(writes, method="dropout")["mean"] == pytest.approx(100.0)
    curves = table[table["quantity"] == "faulty_cell_fraction"]
    assert set(curves["method"]) == {"baseline", "clip", "dropout"}
    for method, mean in {"baseline": 0.03, "clip": 0.01, "dropout": 0.04}.items():
        assert only_row(curves, method=method, step=10.0)["mean"] == pytest.approx(mean)
        assert only_row(curves, method=method, step=0.0)["mean"] == 0.0


def test_accuracy_vs_fault_rate_uses_main_sweep(drawn: dict) -> None:
    table = figure_table(drawn, "accuracy_vs_fault_rate")
    inference = only_row(table, setting="inference_only", method="baseline", fault_rate=0.1)
    assert inference["n"] == 4
    assert inference["mean_accuracy"] == pytest.approx(0.55)
    on_chip = only_row(table, setting="training_and_inference", method="baseline", fault_rate=0.1)
    assert on_chip["n"] == 4
    assert on_chip["mean_accuracy"] == pytest.approx(0.15)
    assert not table["method"].str.startswith("clip_c").any()


@pytest.mark.parametrize("name", [name for name in FIGURES if name != "accuracy_vs_fault_rate"])
def test_no_matching_rows_draws_empty(tmp_path: Path, name: str) -> None:
    # Only fault-free main-sweep rows, no training metrics and no history.
    runs = [accuracy_row("baseline", 0.95, seed=seed) for seed in SEEDS]
    tables = write_tables(tmp_path / "tables", runs, [], [])
    paths = draw_figure(name, tables, tmp_path / "figures", study_config())
    png = tmp_path / "figures" / f"{name}.png"
    assert paths == [png, tmp_path / "figures" / f"{name}.csv"]
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    table = pd.read_csv(tmp_path / "figures" / f"{name}.csv")
    assert table.empty
    assert {"n", "mean", "ci_low", "ci_high"} <= set(table.columns)


@pytest.mark.parametrize("name", ["stuck_type", "clip_sweep"])
def test_only_sensitivity_rows_draws(tmp_path: Path, name: str) -> None:
    # No row has faults in every slice and layer, so the first selection is already empty.
    runs = [accuracy_row("baseline", 0.9, seed=seed, rate=0.1, slices="0", layers="layers.0") for seed in SEEDS]
    tables = write_tables(tmp_path / "tables", runs, [], [])
    draw_figure(name, tables, tmp_path / "figures", study_config())
    assert pd.read_csv(tmp_path / "figures" / f"{name}.csv").empty


def test_share_label() -> None:
    assert share_label(0.0) == "SA0 only"
    assert share_label(1.0) == "SA1 only"
    assert share_label(0.5) == "SA0:SA1 = 1:1"
    assert share_label(0.8) == "SA0:SA1 = 1:4"


def test_pareto_front_by_hand() -> None:
    cost = pd.Series([0.0, 0.2, 1.0, 5.0, 0.2])
    accuracy = pd.Series([0.10, 0.90, 0.85, 0.95, 0.90])
    # Point 2 is beaten by point 1 (cheaper, more accurate). Points 1 and 4 tie, so neither beats
    # the other and both stay on the front.
    assert pareto_front(cost, accuracy).tolist() == [True, True, False, True, True]


def test_tradeoff_retained_accuracy_and_costs(tmp_path: Path) -> None:
    config = study_config()
    runs = []
    for seed in SEEDS:
        runs.append(accuracy_row("baseline", 0.9, seed=seed))
        runs.append(accuracy_row("baseline", 0.09 + 0.01 * seed, seed=seed, rate=0.1, faults="same_chip"))
        runs.append(accuracy_row("clip", 0.81 + 0.01 * seed, seed=seed, rate=0.1, faults="same_chip"))
    folder = write_tables(tmp_path, runs, [])
    draw_figure("tradeoff", folder, tmp_path / "figures", config)
    data = pd.read_csv(tmp_path / "figures" / "tradeoff.csv")
    chip = data[data["setting"] == "same_chip"].set_index("method")
    # Retained accuracy: run accuracy over the seed's fault-free baseline accuracy of 0.9.
    assert chip.loc["baseline", "mean"] == pytest.approx(np.mean([0.09, 0.10]) / 0.9)
    assert chip.loc["clip", "mean"] == pytest.approx(np.mean([0.81, 0.82]) / 0.9)
    assert chip.loc["clip", "area_overhead_pct_tile"] == pytest.approx(0.2)
    assert bool(chip.loc["clip", "pareto_area"])
    assert bool(chip.loc["baseline", "pareto_area"])


def test_tradeoff_needs_method_costs(tmp_path: Path) -> None:
    folder = write_tables(tmp_path, [accuracy_row("baseline", 0.9, seed=0)], [])
    (folder / "method_costs.csv").unlink()
    with pytest.raises(FaultregError, match="method_costs.csv"):
        draw_figure("tradeoff", folder, tmp_path / "figures", study_config())
