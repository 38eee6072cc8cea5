"""A real Snakemake run of the whole workflow on a tiny scenario in a temporary folder."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPOSITORY = Path(__file__).resolve().parents[1]

TINY_SCENARIO = {
    "dataset": {"max_train_images": 200, "max_test_images": 100},
    "model": {"hidden_units": [16]},
    "faults": {"rates": [0.0, 0.1], "maps_per_rate": 2, "training_rates": [0.1], "training_chips": 1},
    "training": {"epochs": 1, "batch_size": 50, "seeds": [0, 1]},
    "methods": {"baseline": {}, "clip": {"clip_value": 0.5, "range_mode": "clip"}, "l2": {"weight_decay": 0.01}},
    "run_methods": ["baseline", "clip"],
    "studies": {
        "stuck_type": {"sa1_shares": [0.0, 0.8378], "training_methods": ["baseline"]},
        "sensitivity": {"methods": ["baseline"]},
        "clip_sweep": {"clip_values": [0.25, 1.0]},
        "endurance": {"methods": ["baseline", "clip"]},
    },
    "report": {"headline_rate": 0.1, "formats": ["png"]},
}
FIGURES = ["exploding_weights", "accuracy_vs_fault_rate", "stuck_type", "sensitivity", "clip_sweep", "endurance", "tradeoff"]
NO_STUDIES = {name: {"enabled": False} for name in ["stuck_type", "sensitivity", "clip_sweep", "endurance"]}


def snakemake(workdir: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPOSITORY / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(workdir / "config.yaml"),
        "--cores", "2",
        *arguments,
    ]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=environment, timeout=900)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY_SCENARIO))
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


@pytest.mark.workflow
def test_run_writes_every_result(finished_run):
    results = finished_run / "results"
    for name in FIGURES:
        assert (results / "figures" / f"{name}.png").stat().st_size > 10_000, name
        assert (results / "figures" / f"{name}.csv").is_file(), name
    summary = (results / "summary.md").read_text()
    assert "baseline" in summary
    assert "(tables/claims.md)" in summary
    for table in ["accuracy_runs.csv", "accuracy_summary.csv", "accuracy_summary.md", "cost_overheads.csv",
                  "divergence.csv", "claims.csv", "claims.md", "training_history.csv", "method_costs.csv"]:
        assert (results / "tables" / table).is_file(), table
    maps = results / "faultmaps" / "mlp"
    # One map at rate 0 (every fault-free chip is the same) and two at rate 0.1.
    assert sorted(path.name for path in maps.glob("*.npz")) == ["rate0.1_map0.npz", "rate0.1_map1.npz", "rate0_map0.npz"]
    # SA0-only copies of the two rate-0.1 maps; 2 layers x 8 slices x 2 maps for sensitivity.
    assert sorted(path.name for path in (maps / "stuck_type").glob("*.npz")) == ["sa1_0_rate0.1_map0.npz", "sa1_0_rate0.1_map1.npz"]
    assert len(list((maps / "sensitivity").glob("*.npz"))) == 32
    # run_methods leaves l2 out; the clip sweep adds its two methods.
    assert sorted(path.name for path in (results / "training" / "mnist_subset" / "mlp").iterdir()) == [
        "baseline", "clip", "clip_c0.25", "clip_c1",
    ]
    assert sorted(path.name for path in (results / "training" / "mnist_subset" / "mlp" / "baseline").iterdir()) == [
        "fault_free", "rate0.1_chip0", "sa1_0_rate0.1_chip0", "wear",
    ]
    assert len(list((finished_run / "logs").rglob("*.log"))) >= 20
    assert len(list((finished_run / "benchmarks").rglob("*.tsv"))) >= 20


@pytest.mark.workflow
def test_run_accuracy_rows(finished_run):
    with open(finished_run / "results" / "tables" / "accuracy_runs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    counts = {}
    for row in rows:
        counts[row["method"]] = counts.get(row["method"], 0) + 1
    # Per seed (two seeds): fault-free baseline and clip meet 3 main, 2 stuck-type and 32
    # sensitivity maps. Baseline also has its main chip and its SA0-only chip, clip its main
    # chip, and the sweep methods meet the 3 main maps.
    assert counts == {"baseline": 2 * (37 + 2), "clip": 2 * (37 + 1), "clip_c0.25": 2 * 3, "clip_c1": 2 * 3}
    same_chip = [row for row in rows if row["training_faults"] == "same_chip"]
    assert sorted((row["method"], row["sa1_share"], row["training_seed"]) for row in same_chip) == [
        ("baseline", "0.0", "0"), ("baseline", "0.0", "1"), ("baseline", "0.8378", "0"), ("baseline", "0.8378", "1"),
        ("clip", "0.8378", "0"), ("clip", "0.8378", "1"),
    ]
    assert all(float(row["fault_rate"]) == 0.1 and row["map_index"] == "0" for row in same_chip)
    # Methods are compared on the same chips: identical map hashes per map.
    hashes = {}
    for row in rows:
        key = (row["fault_rate"], row["sa1_share"], row["fault_slices"], row["fault_layers"], row["map_index"])
        hashes.setdefault(key, set()).add(row["map_hash"])
    assert all(len(values) == 1 for values in hashes.values())


@pytest.mark.workflow
def test_claims_table_has_verdicts(finished_run):
    with open(finished_run / "results" / "tables" / "claims.csv", newline="") as handle:
        claims = list(csv.DictReader(handle))
    assert {claim["verdict"] for claim in claims} <= {"held", "not held", "inconclusive"}
    assert any(claim["claim"].startswith("1a.") for claim in claims)
    assert any(claim["claim"].startswith("4a.") and claim["verdict"] == "held" for claim in claims)


@pytest.mark.workflow
def test_finished_run_has_nothing_to_do(finished_run):
    result = snakemake(finished_run, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.workflow
def test_figures_target_redraws_without_training(finished_run):
    figure = finished_run / "results" / "figures" / "accuracy_vs_fault_rate.png"
    checkpoints = sorted((finished_run / "results" / "training").rglob("model.pt"))
    before = {path: path.stat().st_mtime_ns for path in checkpoints}
    figure.unlink()

    result = snakemake(finished_run, "figures")

    assert result.returncode == 0, result.stderr[-3000:]
    assert figure.is_file()
    assert {path: path.stat().st_mtime_ns for path in checkpoints} == before
    log = result.stdout + result.stderr
    assert "rule figure:" in log
    for stage in ["train_fault_free", "train_on_faulty_chips", "train_with_wear", "inject", "fault_map"]:
        assert f"rule {stage}:" not in log


@pytest.mark.workflow
def test_report_bundles_results(finished_run):
    result = snakemake(finished_run, "--report", "report.zip")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (finished_run / "report.zip").stat().st_size > 10_000


@pytest.mark.workflow
def test_missing_idx_file_stops_dry_run(tmp_path):
    idx_dir = tmp_path / "mnist"
    idx_dir.mkdir()
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte.gz"]:
        (idx_dir / name).write_bytes(b"")
    scenario = {**TINY_SCENARIO, "dataset": {"name": "mnist", "idx_dir": str(idx_dir)}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(scenario))

    result = snakemake(tmp_path, "-n")

    assert result.returncode != 0
    assert "t10k-labels-idx1-ubyte" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_invalid_config_stops_before_any_job(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**TINY_SCENARIO, "crossbar": {"bits_per_cell": 3}}))
    result = snakemake(tmp_path, "-n")
    assert result.returncode != 0
    assert "bits_per_cell" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_workflow_lint_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--snakefile", str(REPOSITORY / "Snakefile")],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Lints for" not in result.stdout + result.stderr


@pytest.mark.workflow
def test_fault_model_options_run_end_to_end(tmp_path):
    scenario = {
        **TINY_SCENARIO,
        "crossbar": {"encoding": "offset", "bits_per_cell": 4, "weight_bits": 8, "rows": 64, "columns": 64, "weight_range": 4.0},
        "faults": {**TINY_SCENARIO["faults"], "pattern": "clustered", "cluster_size": 2},
        "endurance": {"enabled": True, "mean_writes": 2},
        "cost": {"remap_table_entries": 64},
        "methods": {"baseline": {"gradient": "mask_stuck"}, "clip": {"clip_value": 0.5, "range_mode": "clip"}},
        "run_methods": None,
        "studies": NO_STUDIES,
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(scenario))

    result = snakemake(tmp_path)

    assert result.returncode == 0, result.stderr[-5000:]
    with open(tmp_path / "results" / "tables" / "accuracy_runs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # Two methods and two seeds: fault-free models on 3 maps, chip-trained models on their chip.
    assert len(rows) == 2 * 2 * (3 + 1)
    assert {row["encoding"] for row in rows} == {"offset"}
    with open(tmp_path / "results" / "tables" / "training_runs.csv", newline="") as handle:
        training = list(csv.DictReader(handle))
    assert all(float(run["final_faulty_cell_fraction"]) > 0 for run in training)
    summary = (tmp_path / "results" / "faultmaps" / "mlp" / "rate0.1_map0.json").read_text()
    assert '"pattern": "clustered"' in summary
    assert '"encoding": "offset"' in summary


@pytest.mark.workflow
def test_results_dir_moves_every_output(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**TINY_SCENARIO, "results_dir": "out/tiny"}))
    result = snakemake(tmp_path, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "out/tiny/faultmaps/mlp/rate0.1_map0.npz" in log
    assert "out/tiny/summary.md" in log
    assert " results/" not in log
