"""Tests of the report stage on small hand-built inputs with hand-computed expected values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from faultreg.errors import FaultregError
from faultreg.report import aggregate, t_interval

SETTINGS = {"confidence_level": 0.95, "formats": ["png", "pdf"], "headline_rate": 0.1, "dpi": 60}

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


def inference_row(method: str, faults: str, rate: float, seed: int, chip: int, accuracy: float,
                  diverged: bool = False) -> dict:
    """Return one inference CSV row; same_chip rows use ``rate`` as the training fault rate too."""
    return {
        "dataset": "mnist_subset",
        "model": "mlp",
        "method": method,
        "training_faults": faults,
        "training_fault_rate": rate if faults == "same_chip" else 0.0,
        "training_seed": seed,
        "fault_rate": rate,
        "sa1_share": 0.8378,
        "map_index": chip,
        "map_hash": f"h{rate:g}-{chip}",
        "accuracy": accuracy,
        "nonfinite_fraction": 0.0,
        "diverged": diverged,
        "n_test": 1000,
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


def training_record(method: str, faults: str, rate: float, chip: int | None, diverged: bool) -> dict:
    return {
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


def write_inputs(folder: Path, rows_per_file: list[list[dict]]) -> dict:
    """Write inference CSVs, training metrics and a cost table, and return aggregate()'s arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    csvs = []
    for position, rows in enumerate(rows_per_file):
        path = folder / f"inference_{position}.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        csvs.append(path)

    records = [
        training_record("baseline", "none", 0.0, None, False),
        training_record("clip", "none", 0.0, None, True),
        training_record("baseline", "same_chip", 0.1, 0, False),
        training_record("baseline", "same_chip", 0.1, 1, True),
        training_record("clip", "same_chip", 0.1, 0, False),
    ]
    metrics = []
    for position, record in enumerate(records):
        path = folder / f"training_{position}.json"
        path.write_text(json.dumps(record), encoding="utf-8")
        metrics.append(path)

    cost_table = folder / "cost.csv"
    pd.DataFrame(COST_ROWS, columns=["mitigation", "kind", "extra_area_mm2_per_tile", "area_overhead_pct",
                                     "extra_power_mw_per_tile", "power_overhead_pct", "basis",
                                     "source"]).to_csv(cost_table, index=False)
    results = folder / "results"
    return {
        "inference_csvs": csvs,
        "training_metrics": metrics,
        "cost_table": cost_table,
        "tables_dir": results / "tables",
        "figures_dir": results / "figures",
        "summary_path": results / "summary.md",
        "settings": dict(SETTINGS),
    }


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Aggregate both settings once; the tests below read its outputs."""
    arguments = write_inputs(tmp_path_factory.mktemp("full"), [fault_free_rows(), same_chip_rows()])
    aggregate(**arguments)
    return arguments


def summary_row(arguments: dict, setting: str, method: str, rate: float) -> pd.Series:
    summary = pd.read_csv(arguments["tables_dir"] / "accuracy_summary.csv")
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
    row = summary_row(full_run, "inference_only", "baseline", 0.1)
    assert row["n"] == 3
    assert row["mean_accuracy"] == pytest.approx(0.9)
    assert row["std"] == pytest.approx(0.1)
    assert row["ci_low"] == pytest.approx(0.9 - 0.248414, abs=1e-6)
    assert row["ci_high"] == pytest.approx(0.9 + 0.248414, abs=1e-6)


def test_summary_same_chip_interval(full_run: dict) -> None:
    # 0.5 and 0.7: mean 0.6, s = sqrt(0.02), half-width = 12.706205 * sqrt(0.02) / sqrt(2).
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


def test_all_outputs_written(full_run: dict) -> None:
    tables = full_run["tables_dir"]
    figures = full_run["figures_dir"]
    expected = [
        tables / "accuracy_runs.csv",
        tables / "accuracy_summary.csv",
        tables / "accuracy_summary.md",
        tables / "training_runs.csv",
        tables / "divergence.csv",
        tables / "divergence.md",
        figures / "accuracy_vs_fault_rate.png",
        figures / "accuracy_vs_fault_rate.pdf",
        full_run["summary_path"],
    ]
    for path in expected:
        assert path.is_file(), path
        assert path.stat().st_size > 0, path
    assert (figures / "accuracy_vs_fault_rate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (figures / "accuracy_vs_fault_rate.pdf").read_bytes()[:5] == b"%PDF-"
    leftovers = [path for path in tables.parent.rglob("*") if path.name.endswith(".tmp")]
    assert leftovers == []


def test_runs_and_training_tables(full_run: dict) -> None:
    runs = pd.read_csv(full_run["tables_dir"] / "accuracy_runs.csv")
    assert len(runs) == 18 + 3
    training = pd.read_csv(full_run["tables_dir"] / "training_runs.csv")
    assert len(training) == 5
    divergence = pd.read_csv(full_run["tables_dir"] / "divergence.csv")
    same_chip_baseline = divergence[(divergence["method"] == "baseline")
                                    & (divergence["training_faults"] == "same_chip")].iloc[0]
    assert same_chip_baseline["runs"] == 2
    assert same_chip_baseline["diverged_runs"] == 1


def test_summary_mentions_methods_and_rate(full_run: dict) -> None:
    text = full_run["summary_path"].read_text(encoding="utf-8")
    assert "mnist_subset, mlp" in text
    assert "10 % faulty cells" in text
    assert "| baseline " in text
    assert "| clip " in text
    assert text.index("| baseline ") < text.index("| clip ")
    assert "90.0 ± 24.8 % (n = 3)" in text
    assert "98.0 ± 0.0 % (n = 3)" in text  # fault-free baseline
    assert "baseline 1 of 3, clip 1 of 2" in text
    assert "ecc_an_code +4.5 % area" in text
    assert "weight_clipping +0.08 % area" in text
    assert "(tables/accuracy_summary.md)" in text
    assert "(figures/accuracy_vs_fault_rate.png)" in text


def test_headline_rate_fallback(tmp_path: Path) -> None:
    arguments = write_inputs(tmp_path, [fault_free_rows()])
    arguments["settings"]["headline_rate"] = 0.05
    arguments["settings"]["formats"] = ["png"]
    aggregate(**arguments)
    text = arguments["summary_path"].read_text(encoding="utf-8")
    assert "headline fault rate 5 % was not measured" in text
    assert "largest measured rate, 20 %" in text
    assert "50.0 ± 24.8 % (n = 3)" in text


def test_no_same_chip_rows_still_draws(tmp_path: Path) -> None:
    arguments = write_inputs(tmp_path, [fault_free_rows()])
    arguments["settings"]["formats"] = ["png"]
    aggregate(**arguments)
    png = arguments["figures_dir"] / "accuracy_vs_fault_rate.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = pd.read_csv(arguments["tables_dir"] / "accuracy_summary.csv")
    assert set(summary["setting"]) == {"inference_only"}
    assert "not run" in arguments["summary_path"].read_text(encoding="utf-8")


def test_no_training_metrics_given(tmp_path: Path) -> None:
    arguments = write_inputs(tmp_path, [fault_free_rows()])
    arguments["training_metrics"] = []
    arguments["settings"]["formats"] = ["png"]
    aggregate(**arguments)
    divergence = pd.read_csv(arguments["tables_dir"] / "divergence.csv")
    assert divergence.empty
    assert "runs" in divergence.columns
    assert "no training metrics given" in arguments["summary_path"].read_text(encoding="utf-8")


def test_outputs_ignore_input_order(tmp_path: Path) -> None:
    forward = write_inputs(tmp_path / "forward", [fault_free_rows(), same_chip_rows()])
    backward = write_inputs(tmp_path / "backward", [same_chip_rows()[::-1], fault_free_rows()[::-1]])
    for arguments in (forward, backward):
        arguments["settings"]["formats"] = ["png", "svg"]
        aggregate(**arguments)
    for name in ("accuracy_runs.csv", "accuracy_summary.csv", "training_runs.csv"):
        assert (forward["tables_dir"] / name).read_bytes() == (backward["tables_dir"] / name).read_bytes()
    for name in ("accuracy_vs_fault_rate.png", "accuracy_vs_fault_rate.svg"):
        assert (forward["figures_dir"] / name).read_bytes() == (backward["figures_dir"] / name).read_bytes()


def assert_nothing_written(arguments: dict) -> None:
    assert not arguments["tables_dir"].exists()
    assert not arguments["figures_dir"].exists()
    assert not arguments["summary_path"].exists()


def test_error_missing_column(tmp_path: Path) -> None:
    rows = [{key: value for key, value in row.items() if key not in ("accuracy", "map_hash")}
            for row in fault_free_rows()]
    arguments = write_inputs(tmp_path, [rows])
    with pytest.raises(FaultregError) as caught:
        aggregate(**arguments)
    message = str(caught.value)
    assert "inference_0.csv" in message
    assert "accuracy" in message
    assert "map_hash" in message
    assert_nothing_written(arguments)


def test_error_missing_file(tmp_path: Path) -> None:
    arguments = write_inputs(tmp_path, [fault_free_rows()])
    absent = tmp_path / "absent.csv"
    arguments["inference_csvs"].append(absent)
    with pytest.raises(FaultregError, match="absent.csv"):
        aggregate(**arguments)
    assert_nothing_written(arguments)


def test_error_missing_cost_table(tmp_path: Path) -> None:
    arguments = write_inputs(tmp_path, [fault_free_rows()])
    arguments["cost_table"] = tmp_path / "no_cost.csv"
    with pytest.raises(FaultregError, match="no_cost.csv"):
        aggregate(**arguments)
    assert_nothing_written(arguments)


def test_error_no_inference_csv(tmp_path: Path) -> None:
    arguments = write_inputs(tmp_path, [])
    with pytest.raises(FaultregError, match="No inference CSV given"):
        aggregate(**arguments)
    assert_nothing_written(arguments)


def test_error_all_inference_csvs_empty(tmp_path: Path) -> None:
    arguments = write_inputs(tmp_path, [fault_free_rows()])
    header_only = arguments["inference_csvs"][0]
    header_only.write_text(header_only.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    zero_bytes = tmp_path / "zero.csv"
    zero_bytes.write_bytes(b"")
    arguments["inference_csvs"].append(zero_bytes)
    with pytest.raises(FaultregError, match="empty") as caught:
        aggregate(**arguments)
    assert "zero.csv" in str(caught.value)
    assert_nothing_written(arguments)


def test_error_training_metrics_key(tmp_path: Path) -> None:
    arguments = write_inputs(tmp_path, [fault_free_rows()])
    broken = arguments["training_metrics"][0]
    record = json.loads(broken.read_text(encoding="utf-8"))
    del record["diverged"]
    broken.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(FaultregError) as caught:
        aggregate(**arguments)
    assert broken.name in str(caught.value)
    assert "diverged" in str(caught.value)
    assert_nothing_written(arguments)


def test_error_duplicate_inference_csv(tmp_path: Path) -> None:
    arguments = write_inputs(tmp_path, [fault_free_rows()])
    arguments["inference_csvs"].append(arguments["inference_csvs"][0])
    with pytest.raises(FaultregError, match="passed twice"):
        aggregate(**arguments)
    assert_nothing_written(arguments)


def test_error_accuracy_out_of_range(tmp_path: Path) -> None:
    rows = fault_free_rows()
    rows[4]["accuracy"] = 1.5
    arguments = write_inputs(tmp_path, [rows])
    with pytest.raises(FaultregError) as caught:
        aggregate(**arguments)
    assert "accuracy" in str(caught.value)
    assert "line 6" in str(caught.value)
    assert_nothing_written(arguments)
