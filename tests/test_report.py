"""Tests of the report stage on small hand-built inputs with hand-computed expected values.

:func:`faultreg.report.aggregate` writes the tables, :func:`faultreg.figures.draw_figure` the
figures and :func:`faultreg.report.write_summary` the Markdown summary. The tests call them in
that order, as the workflow does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from faultreg.config import validate_config
from faultreg.errors import ConfigError, FaultregError
from faultreg.figures import draw_figure
from faultreg.report import (
    HISTORY_COLUMNS,
    INFERENCE_COLUMNS,
    StudyContext,
    aggregate,
    load_inference,
    main_rows,
    t_interval,
    write_summary,
)

SETTINGS = {"confidence_level": 0.95, "formats": ["png", "pdf"], "headline_rate": 0.1, "dpi": 60}
MAIN_SHARE = 0.8378
# clip_c0.25 is a method of the clip-value sweep, so its rows stay out of the main summary.
CONTEXT = StudyContext(main_sa1_share=MAIN_SHARE, sweep_methods={"clip_c0.25": 0.25})
CLIP_VALUES = {"clip": 0.5, "clip_c0.25": 0.25}

# t quantiles from statistical tables: t(0.975, 2) and t(0.975, 1).
T_975_DF2 = 4.302653
T_975_DF1 = 12.706205

COST_ROWS = [
    ("ecc_an_code", "hardware", 0.0167, 4.5, 12.3, 4.7, "check columns", "Feinberg et al. 2018"),
    ("spare_columns", "hardware", 0.0089, 2.4, 3.1, 1.2, "8 spare columns", "ISAAC components"),
    ("row_remapping", "hardware", 0.0021, 0.6, 0.9, 0.3, "128-entry table", "ISAAC components"),
    ("weight_clipping", "software", 0.0003, 0.08, 0.1, 0.04, "comparator per update", "ISAAC components"),
    ("dropout", "software", 0.0004, 0.11, 0.2, 0.08, "mask generator", "ISAAC components"),
]
COST_COLUMNS = ["mitigation", "kind", "extra_area_mm2_per_tile", "area_overhead_pct", "extra_power_mw_per_tile",
                "power_overhead_pct", "basis", "source"]

CLAIM_COLUMNS = ["claim", "comparison", "setting", "fault_rate", "n_pairs", "mean", "ci_low", "ci_high", "threshold",
                 "verdict", "measured"]
CLAIM_ROWS = [
    ("1a. Training on faulty ReRAM without mitigation collapses", "fault-free minus on-chip baseline", "same_chip",
     0.1, 2, 0.38, 0.2, 0.56, 0.5, "inconclusive", "drop 38.0 pp [20.0, 56.0]"),
    ("4. Software methods beat hardware fixes on cost", "largest software vs smallest hardware overhead", "cost",
     None, 0, None, None, None, None, "held", "software at most +0.11 % area"),
]

AGGREGATE_KEYS = ("inference_csvs", "training_metrics", "histories", "tables_dir", "settings", "context")


def inference_row(method: str, faults: str, rate: float, seed: int, chip: int, accuracy: float,
                  diverged: bool = False, sa1_share: float = MAIN_SHARE, fault_slices: str = "all",
                  fault_layers: str = "all") -> dict:
    """Return one inference CSV row. same_chip rows also use ``rate`` and ``sa1_share`` as training values."""
    same_chip = faults == "same_chip"
    return {
        "dataset": "mnist_subset",
        "model": "mlp",
        "method": method,
        "training_faults": faults,
        "training_fault_rate": rate if same_chip else 0.0,
        "training_sa1_share": sa1_share if same_chip else None,
        "training_map_index": chip if same_chip else None,
        "wear": False,
        "training_seed": seed,
        "fault_rate": rate,
        "sa1_share": sa1_share,
        "fault_slices": fault_slices,
        "fault_layers": fault_layers,
        "map_index": chip,
        "map_hash": f"h{rate:g}-{sa1_share:g}-{fault_slices}-{chip}",
        "accuracy": accuracy,
        "nonfinite_fraction": 0.0,
        "diverged": diverged,
        "n_test": 1000,
        "clip_value": CLIP_VALUES.get(method),
    }


def fault_free_rows() -> list[dict]:
    """Return rows of models trained without faults, on chips 0-2 at rates 0, 0.1 and 0.2.

    baseline at 10 %: 0.80, 0.90, 1.00 (mean 0.9, s = 0.1). clip seed 0 diverged.
    """
    accuracies = {
        ("baseline", 0.0): [0.98, 0.98, 0.98],
        ("baseline", 0.1): [0.80, 0.90, 1.00],
        ("baseline", 0.2): [0.40, 0.50, 0.60],
        ("clip", 0.0): [0.97, 0.97, 0.97],
        ("clip", 0.1): [0.94, 0.95, 0.96],
        ("clip", 0.2): [0.90, 0.91, 0.92],
    }
    rows = []
    for (method, rate), values in accuracies.items():
        for chip, accuracy in enumerate(values):
            rows.append(inference_row(method, "none", rate, 0, chip, accuracy, diverged=method == "clip"))
    return rows


def same_chip_rows() -> list[dict]:
    """Return baseline trained on chips 0 and 1 at 10 % (0.5, 0.7) and clip on chip 0 only (n = 1)."""
    return [
        inference_row("baseline", "same_chip", 0.1, 0, 0, 0.5),
        inference_row("baseline", "same_chip", 0.1, 0, 1, 0.7, diverged=True),
        inference_row("clip", "same_chip", 0.1, 0, 0, 0.93),
    ]


def study_rows() -> list[dict]:
    """Return rows of the other studies at 10 %, each of which would change a main summary row.

    An SA1-only map, a map with faults in slice 7 of layers.1 only, a clip-sweep method, and a
    baseline trained and evaluated on an SA0-only chip.
    """
    return [
        inference_row("baseline", "none", 0.1, 0, 0, 0.20, sa1_share=1.0),
        inference_row("baseline", "none", 0.1, 0, 0, 0.30, fault_slices="7", fault_layers="layers.1"),
        inference_row("clip_c0.25", "none", 0.1, 0, 0, 0.85),
        inference_row("baseline", "same_chip", 0.1, 0, 0, 0.10, sa1_share=0.0),
    ]


def training_record(method: str, faults: str, rate: float, chip: int | None, diverged: bool, **optional) -> dict:
    """Return a training metrics record. ``optional`` adds keys that older metrics files lack."""
    record = {
        "dataset": "mnist_subset",
        "model": "mlp",
        "method": method,
        "training_faults": faults,
        "training_fault_rate": rate,
        "map_index": chip,
        "training_seed": 0,
        "diverged": diverged,
        "diverged_step": 40 if diverged else None,
        "steps": 100,
        "epochs_completed": 2,
        "final_loss": None if diverged else 0.12,
        "max_abs_weight": None if diverged else 1.5,
        "wall_time_s": 3.0,
    }
    record.update(optional)
    return record


def training_records() -> list[dict]:
    """Return six training runs. The clip fault-free record has no optional key, like older files.

    Baseline: fault-free, fault-free with wear, chips 0 and 1 (chip 1 diverged, chip 0 has 2 % of
    its weights saturated). Clip: fault-free (diverged) and chip 0.
    """
    return [
        training_record("baseline", "none", 0.0, None, False, training_sa1_share=None, wear=False,
                        final_test_accuracy=0.98, saturated_weight_fraction=0.0, worn_cells=0, slice_writes=None),
        training_record("baseline", "none", 0.0, None, False, training_sa1_share=None, wear=True,
                        final_test_accuracy=0.91, saturated_weight_fraction=0.0, worn_cells=120, slice_writes=5000,
                        final_faulty_cell_fraction=0.05),
        training_record("clip", "none", 0.0, None, True),
        training_record("baseline", "same_chip", 0.1, 0, False, training_sa1_share=MAIN_SHARE, wear=False,
                        saturated_weight_fraction=0.02),
        training_record("baseline", "same_chip", 0.1, 1, True, training_sa1_share=MAIN_SHARE, wear=False,
                        saturated_weight_fraction=None),
        training_record("clip", "same_chip", 0.1, 0, False, training_sa1_share=MAIN_SHARE, wear=False,
                        saturated_weight_fraction=0.0),
    ]


def history_rows(method: str, faults: str, chip: int | None, weights: list[float], wear: bool = False) -> list[dict]:
    """Return a history with one row per step. Step s has max |w| ``weights[s - 1]`` and loss 1 / s."""
    same_chip = faults == "same_chip"
    return [
        {
            "step": step,
            "epoch": 1,
            "loss": 1.0 / step,
            "max_abs_weight": weight,
            "max_abs_stored_weight": min(weight, 16.0),
            "faulty_cell_fraction": 0.1 if same_chip else 0.0,
            "dataset": "mnist_subset",
            "model": "mlp",
            "method": method,
            "training_faults": faults,
            "training_fault_rate": 0.1 if same_chip else 0.0,
            "training_sa1_share": MAIN_SHARE if same_chip else None,
            "map_index": chip,
            "wear": wear,
            "training_seed": 0,
        }
        for step, weight in enumerate(weights, start=1)
    ]


def histories() -> list[list[dict]]:
    """Return four histories of two steps each.

    log10 max |w| of baseline on chips 0 and 1 at step 2: 1 and 3 (mean 2, s = sqrt(2)).
    """
    return [
        history_rows("baseline", "none", None, [0.5, 2.0]),
        history_rows("baseline", "none", None, [0.5, 500.0], wear=True),
        history_rows("baseline", "same_chip", 0, [1.0, 10.0]),
        history_rows("baseline", "same_chip", 1, [10.0, 1000.0]),
    ]


def write_inputs(folder: Path, rows_per_file: list[list[dict]]) -> dict:
    """Write inference CSVs, training metrics, histories and a cost table.

    Returns aggregate()'s arguments plus the paths of the figure and summary steps.
    """
    folder.mkdir(parents=True, exist_ok=True)
    csvs = []
    for position, rows in enumerate(rows_per_file):
        path = folder / f"inference_{position}.csv"
        pd.DataFrame(rows, columns=list(INFERENCE_COLUMNS)).to_csv(path, index=False)
        csvs.append(path)

    metrics = []
    for position, record in enumerate(training_records()):
        path = folder / f"training_{position}.json"
        path.write_text(json.dumps(record), encoding="utf-8")
        metrics.append(path)

    history_paths = []
    for position, rows in enumerate(histories()):
        path = folder / f"history_{position}.csv"
        pd.DataFrame(rows, columns=list(HISTORY_COLUMNS)).to_csv(path, index=False)
        history_paths.append(path)

    cost_table = folder / "cost.csv"
    pd.DataFrame(COST_ROWS, columns=COST_COLUMNS).to_csv(cost_table, index=False)
    results = folder / "results"
    return {
        "inference_csvs": csvs,
        "training_metrics": metrics,
        "histories": history_paths,
        "tables_dir": results / "tables",
        "settings": dict(SETTINGS),
        "context": CONTEXT,
        "cost_table": cost_table,
        "claims_csv": results / "tables" / "claims.csv",
        "figures_dir": results / "figures",
        "summary_path": results / "summary.md",
    }


def run_aggregate(inputs: dict) -> None:
    aggregate(**{key: inputs[key] for key in AGGREGATE_KEYS})


def figure_config(settings: dict) -> dict:
    """Return a validated config with these report settings. Its faults.sa1_share is the default 0.8378."""
    return validate_config({"report": settings})


def write_claims_csv(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(CLAIM_ROWS, columns=CLAIM_COLUMNS).to_csv(path, index=False)


def run_summary(inputs: dict, figure_paths: list[Path]) -> str:
    write_claims_csv(inputs["claims_csv"])
    return write_summary(inputs["tables_dir"], figure_paths, inputs["cost_table"], inputs["claims_csv"],
                         inputs["summary_path"], inputs["settings"])


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Aggregate both settings and the study rows once, then draw the figure and write the summary."""
    inputs = write_inputs(tmp_path_factory.mktemp("full"), [fault_free_rows(), same_chip_rows(), study_rows()])
    run_aggregate(inputs)
    figures = draw_figure("accuracy_vs_fault_rate", inputs["tables_dir"], inputs["figures_dir"],
                          figure_config(SETTINGS))
    inputs["figure_paths"] = [path for path in figures if path.suffix != ".csv"]
    run_summary(inputs, inputs["figure_paths"])
    return inputs


def summary_row(inputs: dict, setting: str, method: str, rate: float) -> pd.Series:
    summary = pd.read_csv(inputs["tables_dir"] / "accuracy_summary.csv")
    match = summary[(summary["setting"] == setting) & (summary["method"] == method)
                    & (summary["fault_rate"].sub(rate).abs() < 1e-12)]
    assert len(match) == 1
    return match.iloc[0]


def test_t_interval_hand_values() -> None:
    mean, std, low, high = t_interval([0.80, 0.90, 1.00], 0.95)
    half_width = 0.1 * T_975_DF2 / math.sqrt(3)
    assert mean == pytest.approx(0.9)
    assert std == pytest.approx(0.1)
    assert low == pytest.approx(0.9 - half_width, abs=1e-6)
    assert high == pytest.approx(0.9 + half_width, abs=1e-6)
    assert half_width == pytest.approx(0.248414, abs=1e-6)


def test_t_interval_single_and_constant() -> None:
    mean, std, low, high = t_interval([0.7], 0.95)
    assert mean == 0.7
    assert math.isnan(std)
    assert math.isnan(low)
    assert math.isnan(high)
    assert t_interval([0.1, 0.1, 0.1], 0.95) == pytest.approx((0.1, 0.0, 0.1, 0.1))


def test_summary_ci_matches_hand_interval(full_run: dict) -> None:
    # The SA1-only (0.20) and slice-7 (0.30) rows at 10 % are not part of this group.
    row = summary_row(full_run, "inference_only", "baseline", 0.1)
    assert row["n"] == 3
    assert row["mean_accuracy"] == pytest.approx(0.9)
    assert row["std"] == pytest.approx(0.1)
    assert row["ci_low"] == pytest.approx(0.9 - 0.248414, abs=1e-6)
    assert row["ci_high"] == pytest.approx(0.9 + 0.248414, abs=1e-6)


def test_summary_same_chip_interval(full_run: dict) -> None:
    # 0.5 and 0.7: mean 0.6, s = sqrt(0.02), half-width = 12.706205 * sqrt(0.02) / sqrt(2).
    # The run on the SA0-only chip (0.10) belongs to the stuck-type study, not to this group.
    row = summary_row(full_run, "training_and_inference", "baseline", 0.1)
    assert row["n"] == 2
    assert row["mean_accuracy"] == pytest.approx(0.6)
    assert row["ci_high"] - row["mean_accuracy"] == pytest.approx(T_975_DF1 * 0.1, abs=1e-5)


def test_summary_single_run_and_zero_variance(full_run: dict) -> None:
    single = summary_row(full_run, "training_and_inference", "clip", 0.1)
    assert single["n"] == 1
    assert math.isnan(single["ci_low"])
    assert math.isnan(single["ci_high"])
    constant = summary_row(full_run, "inference_only", "baseline", 0.0)
    assert constant["std"] == 0.0
    assert constant["ci_low"] == pytest.approx(0.98)
    assert constant["ci_high"] == pytest.approx(0.98)


def test_summary_setting_labels(full_run: dict) -> None:
    summary = pd.read_csv(full_run["tables_dir"] / "accuracy_summary.csv")
    inference_only = summary[summary["setting"] == "inference_only"]
    training = summary[summary["setting"] == "training_and_inference"]
    assert set(summary["setting"]) == {"inference_only", "training_and_inference"}
    assert len(inference_only) == 6
    assert len(training) == 2
    assert list(training["fault_rate"]) == [0.1, 0.1]
    assert list(summary["method"])[:3] == ["baseline"] * 3
    assert "clip_c0.25" not in set(summary["method"])


def test_summary_counts_diverged_runs_not_rows(full_run: dict) -> None:
    # clip seed 0 diverged once and was evaluated on three chips: one run, not three.
    assert summary_row(full_run, "inference_only", "clip", 0.2)["diverged_runs"] == 1
    assert summary_row(full_run, "inference_only", "baseline", 0.2)["diverged_runs"] == 0
    assert summary_row(full_run, "training_and_inference", "baseline", 0.1)["diverged_runs"] == 1


def test_markdown_table_in_percent(full_run: dict) -> None:
    text = (full_run["tables_dir"] / "accuracy_summary.md").read_text(encoding="utf-8")
    assert "Mean accuracy (%)" in text
    assert "| 90.0 " in text  # baseline mean at 10 %
    assert "| 65.2 " in text  # 90 - 24.8414 rounded to one decimal
    assert "n/a" in text  # clip same_chip has n = 1
    assert "| 98.0 " in text  # fault-free baseline, stored as 0.98
    assert "clip_c0.25" not in text


def test_main_rows_selects_main_sweep(full_run: dict) -> None:
    runs = load_inference(full_run["inference_csvs"])
    assert len(runs) == 18 + 3 + 4
    assert len(main_rows(runs, CONTEXT)) == 18 + 3
    # Without a clip sweep, clip_c0.25 is an ordinary method of the main sweep.
    assert len(main_rows(runs, StudyContext(main_sa1_share=MAIN_SHARE, sweep_methods={}))) == 18 + 3 + 1
    # With SA1-only as the main share, only the SA1-only row of a fault-free model is left.
    sa1_only = main_rows(runs, StudyContext(main_sa1_share=1.0, sweep_methods={}))
    assert list(sa1_only["accuracy"]) == [0.20]


def test_all_tables_written(full_run: dict) -> None:
    tables = full_run["tables_dir"]
    expected = [
        "accuracy_runs.csv",
        "accuracy_summary.csv",
        "accuracy_summary.md",
        "training_runs.csv",
        "training_history.csv",
        "divergence.csv",
        "divergence.md",
    ]
    for name in expected:
        assert (tables / name).is_file(), name
        assert (tables / name).stat().st_size > 0, name
    # The fixture writes claims.csv by hand, and aggregate writes no other file.
    assert sorted(path.name for path in tables.iterdir()) == sorted(expected + ["claims.csv"])
    leftovers = [path for path in tables.parent.rglob("*") if path.name.endswith(".tmp")]
    assert leftovers == []


def test_aggregate_draws_no_figure(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    run_aggregate(inputs)
    assert not inputs["figures_dir"].exists()
    assert not inputs["summary_path"].exists()
    assert sorted(path.suffix for path in inputs["tables_dir"].iterdir()) == [".csv"] * 5 + [".md"] * 2


def test_figure_files(full_run: dict) -> None:
    figures = full_run["figures_dir"]
    assert sorted(path.name for path in figures.iterdir()) == [
        "accuracy_vs_fault_rate.csv", "accuracy_vs_fault_rate.pdf", "accuracy_vs_fault_rate.png",
    ]
    assert (figures / "accuracy_vs_fault_rate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (figures / "accuracy_vs_fault_rate.pdf").read_bytes()[:5] == b"%PDF-"
    figure_table = pd.read_csv(figures / "accuracy_vs_fault_rate.csv")
    summary = pd.read_csv(full_run["tables_dir"] / "accuracy_summary.csv")
    # The training panel starts at rate 0 with the fault-free models of the methods trained on
    # chips: baseline (0.98 on three chips) and clip (0.97).
    start = figure_table[(figure_table["setting"] == "training_and_inference") & (figure_table["fault_rate"] == 0.0)]
    assert list(start["method"]) == ["baseline", "clip"]
    assert list(start["n"]) == [3, 3]
    assert list(start["mean_accuracy"]) == pytest.approx([0.98, 0.97])
    # The other rows are those of the accuracy summary, so the study rows stay out.
    assert len(figure_table) == 8 + 2
    keys = ["setting", "method", "fault_rate"]
    rest = figure_table.drop(start.index).sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(rest, summary.sort_values(keys).reset_index(drop=True), check_dtype=False)


def test_exploding_weights_figure(full_run: dict, tmp_path: Path) -> None:
    settings = {**SETTINGS, "formats": ["png"]}
    paths = draw_figure("exploding_weights", full_run["tables_dir"], tmp_path, figure_config(settings))
    assert sorted(path.name for path in paths) == ["exploding_weights.csv", "exploding_weights.png"]
    data = pd.read_csv(tmp_path / "exploding_weights.csv")
    weights = data[data["quantity"] == "log10_max_abs_weight"]
    # The run with wear (max |w| 500 at step 2) is left out of the fault-free curve.
    fault_free = weights[weights["curve"] == "baseline, fault-free"].sort_values("step")
    assert list(fault_free["n"]) == [1, 1]
    assert list(fault_free["mean"]) == pytest.approx([math.log10(0.5), math.log10(2.0)])
    # Chips 0 and 1 at step 2: log10 of 10 and 1000 is 1 and 3, s = sqrt(2), so the half-width
    # is t(0.975, 1) * sqrt(2) / sqrt(2).
    on_chip = weights[(weights["curve"] == "baseline, 10 % faulty cells") & (weights["step"] == 2)].iloc[0]
    assert on_chip["n"] == 2
    assert on_chip["mean"] == pytest.approx(2.0)
    assert on_chip["ci_high"] - on_chip["mean"] == pytest.approx(T_975_DF1, abs=1e-5)
    # clip has no history, so it has no curve.
    assert set(data["curve"]) == {"baseline, fault-free", "baseline, 10 % faulty cells"}


def test_runs_and_training_tables(full_run: dict) -> None:
    runs = pd.read_csv(full_run["tables_dir"] / "accuracy_runs.csv", dtype={"fault_slices": str})
    assert len(runs) == 18 + 3 + 4
    assert set(runs.columns) == set(INFERENCE_COLUMNS)
    sensitivity = runs[runs["fault_slices"] != "all"].iloc[0]
    assert sensitivity["fault_slices"] == "7"
    assert sensitivity["fault_layers"] == "layers.1"
    assert sensitivity["accuracy"] == pytest.approx(0.30)
    baseline = runs[runs["method"] == "baseline"]
    clip = runs[runs["method"] == "clip"]
    assert baseline["clip_value"].isna().all()
    assert (clip["clip_value"] == 0.5).all()
    assert runs[runs["method"] == "clip_c0.25"]["clip_value"].tolist() == [0.25]
    same_chip = runs[runs["training_faults"] == "same_chip"]
    assert sorted(same_chip["training_map_index"]) == [0, 0, 0, 1]
    assert runs[runs["training_faults"] == "none"]["training_sa1_share"].isna().all()
    assert not runs["wear"].any()

    training = pd.read_csv(full_run["tables_dir"] / "training_runs.csv")
    assert len(training) == 6
    assert training["wear"].sum() == 1
    worn = training[training["wear"]].iloc[0]
    assert worn["worn_cells"] == 120
    assert worn["slice_writes"] == 5000
    assert worn["final_test_accuracy"] == pytest.approx(0.91)
    # The clip fault-free record predates the optional keys, so they read as empty and wear as false.
    old = training[(training["method"] == "clip") & (training["training_faults"] == "none")].iloc[0]
    assert math.isnan(old["final_test_accuracy"])
    assert math.isnan(old["training_sa1_share"])
    assert not old["wear"]


def test_divergence_table(full_run: dict) -> None:
    divergence = pd.read_csv(full_run["tables_dir"] / "divergence.csv")
    # baseline fault-free with and without wear, baseline on chips, clip fault-free, clip on a chip.
    assert len(divergence) == 5
    same_chip_baseline = divergence[(divergence["method"] == "baseline")
                                    & (divergence["training_faults"] == "same_chip")].iloc[0]
    assert same_chip_baseline["runs"] == 2
    assert same_chip_baseline["diverged_runs"] == 1
    assert same_chip_baseline["saturated_runs"] == 1
    assert same_chip_baseline["training_sa1_share"] == pytest.approx(MAIN_SHARE)
    assert same_chip_baseline["max_abs_weight"] == pytest.approx(1.5)
    fault_free_baseline = divergence[(divergence["method"] == "baseline") & (divergence["training_faults"] == "none")]
    assert sorted(fault_free_baseline["wear"]) == [False, True]
    assert list(fault_free_baseline["runs"]) == [1, 1]
    assert fault_free_baseline["training_sa1_share"].isna().all()
    text = (full_run["tables_dir"] / "divergence.md").read_text(encoding="utf-8")
    assert "| 0.8378 " in text
    assert "| yes " in text


def test_history_table(full_run: dict) -> None:
    history = pd.read_csv(full_run["tables_dir"] / "training_history.csv")
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert len(history) == 4 * 2
    assert history["wear"].sum() == 2
    assert sorted(history["max_abs_weight"]) == [0.5, 0.5, 1.0, 2.0, 10.0, 10.0, 500.0, 1000.0]


def test_summary_mentions_methods_and_rate(full_run: dict) -> None:
    text = full_run["summary_path"].read_text(encoding="utf-8")
    assert "mnist_subset, mlp" in text
    assert "10 % faulty cells" in text
    assert "| baseline " in text
    assert "| clip " in text
    assert text.index("| baseline ") < text.index("| clip ")
    assert "90.0 ± 24.8 % (n = 3)" in text
    assert "98.0 ± 0.0 % (n = 3)" in text  # fault-free baseline
    assert "clip_c0.25" not in text
    # Diverged: baseline chip 1 of four baseline runs, clip fault-free of two. Saturated: baseline chip 0.
    assert "baseline 1 of 4, clip 1 of 2" in text
    assert "store: baseline 1 of 4, clip 0 of 2." in text
    assert "ecc_an_code +4.5 % area" in text
    assert "weight_clipping +0.08 % area" in text
    assert "(tables/accuracy_summary.md)" in text
    assert "(figures/accuracy_vs_fault_rate.png)" in text
    assert "![accuracy vs fault rate](figures/accuracy_vs_fault_rate.png)" in text


def test_summary_lists_claims(full_run: dict) -> None:
    text = full_run["summary_path"].read_text(encoding="utf-8")
    assert "([claims.md](tables/claims.md))" in text
    assert "- 1a. Training on faulty ReRAM without mitigation collapses: **inconclusive**. " \
           "drop 38.0 pp [20.0, 56.0]." in text
    assert "- 4. Software methods beat hardware fixes on cost: **held**. software at most +0.11 % area." in text
    assert text.index("## Claims") < text.index("## Cost per tile") < text.index("## Files")


def test_headline_rate_fallback(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    inputs["settings"]["headline_rate"] = 0.05
    run_aggregate(inputs)
    text = run_summary(inputs, [])
    assert "headline fault rate 5 % was not measured" in text
    assert "largest measured rate, 20 %" in text
    assert "50.0 ± 24.8 % (n = 3)" in text
    assert inputs["summary_path"].read_text(encoding="utf-8") == text


def test_no_same_chip_rows_still_draws(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    settings = {**SETTINGS, "formats": ["png"]}
    run_aggregate(inputs)
    paths = draw_figure("accuracy_vs_fault_rate", inputs["tables_dir"], inputs["figures_dir"], figure_config(settings))
    png = inputs["figures_dir"] / "accuracy_vs_fault_rate.png"
    assert png in paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = pd.read_csv(inputs["tables_dir"] / "accuracy_summary.csv")
    assert set(summary["setting"]) == {"inference_only"}
    assert "not run" in run_summary(inputs, [png])


def test_no_training_metrics_given(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    inputs["training_metrics"] = []
    inputs["histories"] = []
    run_aggregate(inputs)
    divergence = pd.read_csv(inputs["tables_dir"] / "divergence.csv")
    assert divergence.empty
    assert "runs" in divergence.columns
    history = pd.read_csv(inputs["tables_dir"] / "training_history.csv")
    assert history.empty
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert "no training metrics given" in run_summary(inputs, [])


def test_outputs_ignore_input_order(tmp_path: Path) -> None:
    forward = write_inputs(tmp_path / "forward", [fault_free_rows(), same_chip_rows(), study_rows()])
    backward = write_inputs(tmp_path / "backward",
                            [study_rows()[::-1], same_chip_rows()[::-1], fault_free_rows()[::-1]])
    backward["training_metrics"].reverse()
    backward["histories"].reverse()
    settings = {**SETTINGS, "formats": ["png", "svg"]}
    for inputs in (forward, backward):
        run_aggregate(inputs)
        draw_figure("accuracy_vs_fault_rate", inputs["tables_dir"], inputs["figures_dir"], figure_config(settings))
    for name in ("accuracy_runs.csv", "accuracy_summary.csv", "training_runs.csv", "divergence.csv"):
        assert (forward["tables_dir"] / name).read_bytes() == (backward["tables_dir"] / name).read_bytes()
    for name in ("accuracy_vs_fault_rate.png", "accuracy_vs_fault_rate.svg", "accuracy_vs_fault_rate.csv"):
        assert (forward["figures_dir"] / name).read_bytes() == (backward["figures_dir"] / name).read_bytes()


def assert_nothing_written(inputs: dict) -> None:
    assert not inputs["tables_dir"].exists()
    assert not inputs["figures_dir"].exists()
    assert not inputs["summary_path"].exists()


def test_error_missing_column(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [])
    rows = [{key: value for key, value in row.items() if key not in ("accuracy", "map_hash", "fault_slices")}
            for row in fault_free_rows()]
    path = tmp_path / "old_format.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    inputs["inference_csvs"] = [path]
    with pytest.raises(FaultregError) as caught:
        run_aggregate(inputs)
    message = str(caught.value)
    assert "old_format.csv" in message
    assert "fault_slices, map_hash, accuracy" in message
    assert_nothing_written(inputs)


def test_error_missing_file(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    absent = tmp_path / "absent.csv"
    inputs["inference_csvs"].append(absent)
    with pytest.raises(FaultregError, match="absent.csv"):
        run_aggregate(inputs)
    assert_nothing_written(inputs)


def test_error_missing_cost_table(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    run_aggregate(inputs)
    inputs["cost_table"] = tmp_path / "no_cost.csv"
    with pytest.raises(FaultregError, match="no_cost.csv"):
        run_summary(inputs, [])
    assert not inputs["summary_path"].exists()


def test_error_missing_claims_table(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    run_aggregate(inputs)
    absent = tmp_path / "no_claims.csv"
    with pytest.raises(FaultregError, match="no_claims.csv"):
        write_summary(inputs["tables_dir"], [], inputs["cost_table"], absent, inputs["summary_path"],
                      inputs["settings"])
    assert not inputs["summary_path"].exists()


def test_error_figure_before_aggregate(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    with pytest.raises(FaultregError, match="accuracy_runs.csv"):
        draw_figure("accuracy_vs_fault_rate", inputs["tables_dir"], inputs["figures_dir"], figure_config(SETTINGS))
    assert_nothing_written(inputs)


def test_error_no_inference_csv(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [])
    with pytest.raises(FaultregError, match="No inference CSV given"):
        run_aggregate(inputs)
    assert_nothing_written(inputs)


def test_error_all_inference_csvs_empty(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    header_only = inputs["inference_csvs"][0]
    header_only.write_text(header_only.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    zero_bytes = tmp_path / "zero.csv"
    zero_bytes.write_bytes(b"")
    inputs["inference_csvs"].append(zero_bytes)
    with pytest.raises(FaultregError, match="empty") as caught:
        run_aggregate(inputs)
    assert "zero.csv" in str(caught.value)
    assert_nothing_written(inputs)


def test_error_training_metrics_key(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    broken = inputs["training_metrics"][0]
    record = json.loads(broken.read_text(encoding="utf-8"))
    del record["diverged"]
    broken.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(FaultregError) as caught:
        run_aggregate(inputs)
    assert broken.name in str(caught.value)
    assert "diverged" in str(caught.value)
    assert_nothing_written(inputs)


def test_error_history_column(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    broken = inputs["histories"][2]
    pd.read_csv(broken).drop(columns=["faulty_cell_fraction", "wear"]).to_csv(broken, index=False)
    with pytest.raises(FaultregError) as caught:
        run_aggregate(inputs)
    assert broken.name in str(caught.value)
    assert "faulty_cell_fraction, wear" in str(caught.value)
    assert_nothing_written(inputs)


def test_error_empty_history(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    inputs["histories"][0].write_bytes(b"")
    with pytest.raises(FaultregError, match="history_0.csv is empty"):
        run_aggregate(inputs)
    assert_nothing_written(inputs)


def test_error_duplicate_inference_csv(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    inputs["inference_csvs"].append(inputs["inference_csvs"][0])
    with pytest.raises(FaultregError, match="passed twice"):
        run_aggregate(inputs)
    assert_nothing_written(inputs)


def test_error_accuracy_out_of_range(tmp_path: Path) -> None:
    rows = fault_free_rows()
    rows[4]["accuracy"] = 1.5
    inputs = write_inputs(tmp_path, [rows])
    with pytest.raises(FaultregError) as caught:
        run_aggregate(inputs)
    assert "accuracy" in str(caught.value)
    assert "line 6" in str(caught.value)
    assert_nothing_written(inputs)


def test_error_wear_not_boolean(tmp_path: Path) -> None:
    rows = fault_free_rows()
    rows[2]["wear"] = "sometimes"
    inputs = write_inputs(tmp_path, [rows])
    with pytest.raises(FaultregError) as caught:
        run_aggregate(inputs)
    assert "column wear is not true or false in 1 row(s), first on line 4" in str(caught.value)
    assert_nothing_written(inputs)


def test_error_invalid_confidence_level(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path, [fault_free_rows()])
    inputs["settings"]["confidence_level"] = 1.5
    with pytest.raises(ConfigError, match="confidence_level"):
        run_aggregate(inputs)
    assert_nothing_written(inputs)
