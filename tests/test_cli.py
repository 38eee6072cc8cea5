"""Tests of the faultreg command line: exit status, output files and error lines.

Most commands run in their own Python process, as a user runs them. Each new process spends
seconds importing torch, so most bad-input cases of the torch-based commands call
``faultreg.cli.main`` in this process instead. One such case per command still runs as a process.

Every bad-input case must exit with status 2, print exactly one ``faultreg <command>: error:``
line that names the bad value, print no traceback, and leave no output or temporary file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import yaml

from faultreg.cli import main
from faultreg.config import validate_config
from faultreg.crossbar import HEALTHY, SA0, SA1
from faultreg.report import HISTORY_COLUMNS, INFERENCE_COLUMNS
from faultreg.studies import study_maps

SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"
SUBCOMMANDS = [
    "fault-map", "study-maps", "train", "inject", "cost", "aggregate", "figure", "claims", "summary",
    "calibrate-endurance", "check-config",
]

# A model small enough to train in about a second: MLP 784-8-10 on 100 MNIST images.
TINY_CONFIG = {
    "dataset": {"name": "mnist_subset", "max_train_images": 100, "max_test_images": 50},
    "model": {"architecture": "mlp", "hidden_units": [8]},
    "crossbar": {"weight_bits": 8, "bits_per_cell": 2},
    "faults": {"rates": [0.0, 0.1], "maps_per_rate": 2, "training_rates": [0.1], "training_chips": 2},
    "training": {"epochs": 1, "batch_size": 64, "device": "cpu", "threads": 1},
    "evaluation": {"batch_size": 50},
}

# Cells of the tiny model by hand: weights (784 * 8 + 8 * 10) times 2 sign groups times
# 8 / 2 = 4 cells per weight and group.
TINY_WEIGHTS = 784 * 8 + 8 * 10
TINY_CELLS = TINY_WEIGHTS * 2 * 4


class Outcome(NamedTuple):
    """Exit status and captured output of one faultreg command."""

    returncode: int
    stdout: str
    stderr: str


def run_faultreg(*arguments: object, cwd: Path) -> Outcome:
    """Run faultreg in a new Python process."""
    command = [sys.executable, "-m", "faultreg.cli", *(str(argument) for argument in arguments)]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    return Outcome(result.returncode, result.stdout, result.stderr)


def call_faultreg(capsys, *arguments: object) -> Outcome:
    """Run faultreg.cli.main in this process. Log records go to pytest's log capture, not to stderr."""
    capsys.readouterr()
    status = main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return Outcome(status, captured.out, captured.err)


def write_config(folder: Path, changes: dict | None = None, name: str = "tiny.yaml") -> Path:
    """Write TINY_CONFIG with ``changes`` merged into its sections. A scalar, such as seed, replaces the entry."""
    config = json.loads(json.dumps(TINY_CONFIG))
    for section, values in (changes or {}).items():
        if isinstance(values, dict):
            config.setdefault(section, {}).update(values)
        else:
            config[section] = values
    path = folder / name
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def error_lines(result: Outcome, command: str) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith(f"faultreg {command}: error:")]


def assert_input_error(result: Outcome, command: str, value: str) -> None:
    lines = error_lines(result, command)
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert value in lines[0]
    assert "Traceback" not in result.stderr


def assert_nothing_written(*paths: Path) -> None:
    for path in paths:
        assert not path.exists(), f"{path} was written"
        folder = path.parent
        leftovers = [name for name in os.listdir(folder) if name.endswith(".tmp")] if folder.is_dir() else []
        assert leftovers == [], f"temporary files left in {folder}: {leftovers}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny config, chips A and B at rate 0.1, and a model trained on chip A."""
    folder = tmp_path_factory.mktemp("cli")
    config = write_config(folder)
    chip_a = folder / "maps" / "rate0.1_map0.npz"
    chip_b = folder / "maps" / "rate0.1_map1.npz"
    for index, path in enumerate([chip_a, chip_b]):
        result = run_faultreg("fault-map", "--config", config, "--rate", 0.1, "--map-index", index, "--output", path, cwd=folder)
        assert result.returncode == 0, result.stderr

    # One job trains seeds 0 and 1 on each chip: four runs in two run folders.
    runs = {"chip_a": folder / "models" / "chip_a", "chip_b": folder / "models" / "chip_b"}
    result = run_faultreg(
        "train", "--config", config, "--method", "baseline", "--seed", 0, 1, "--fault-map", chip_a, chip_b,
        "--run-dir", runs["chip_a"], runs["chip_b"],
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr
    return {
        "folder": folder, "config": config, "chip_a": chip_a, "chip_b": chip_b, "runs": runs,
        "checkpoint": runs["chip_a"] / "seed0" / "model.pt",
    }


def map_sha256(path: Path) -> str:
    """Return the hash that the map's summary file records."""
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))["sha256"]


@pytest.fixture(scope="module")
def pipeline(workspace):
    """Run every stage after the workspace's training, each as its own process.

    The stages are a fault-free training run, inject, cost, aggregate, one figure, claims and the summary.
    """
    folder, config = workspace["folder"], workspace["config"]
    fault_free = folder / "models" / "fault_free"
    results = folder / "results"

    paths = {
        "fault_free": fault_free,
        "rows": folder / "inference" / "baseline.csv",
        "tables": results / "tables",
        "figures": results / "figures",
        "cost": results / "tables" / "cost_overheads.csv",
        "claims": results / "tables" / "claims.csv",
        "summary": results / "summary.md",
    }
    checkpoints = [fault_free / "seed0" / "model.pt"] + [
        workspace["runs"][chip] / f"seed{seed}" / "model.pt" for chip in ("chip_a", "chip_b") for seed in (0, 1)
    ]
    metrics = [path.with_name("metrics.json") for path in checkpoints]
    histories = [path.with_name("history.csv") for path in checkpoints]

    steps = [
        ("train", "--method", "baseline", "--seed", 0, "--run-dir", fault_free),
        ("inject", "--checkpoint", *checkpoints, "--fault-map", workspace["chip_a"], workspace["chip_b"],
         "--output", paths["rows"]),
        ("cost", "--csv", paths["cost"], "--markdown", paths["cost"].with_suffix(".md")),
        ("aggregate", "--inference", paths["rows"], "--training", *metrics, "--history", *histories,
         "--tables-dir", paths["tables"]),
        ("figure", "--name", "accuracy_vs_fault_rate", "--tables-dir", paths["tables"], "--figures-dir", paths["figures"]),
        ("claims", "--tables-dir", paths["tables"], "--cost", paths["cost"], "--csv", paths["claims"],
         "--markdown", paths["claims"].with_suffix(".md")),
        ("summary", "--tables-dir", paths["tables"], "--claims", paths["claims"], "--cost", paths["cost"],
         "--figure", paths["figures"] / "accuracy_vs_fault_rate.png", "--output", paths["summary"]),
    ]

    for command, *arguments in steps:
        result = run_faultreg(command, "--config", config, *arguments, cwd=folder)
        assert result.returncode == 0, f"{command}: {result.stderr}"
    return paths


# Version and help


def test_version(tmp_path):
    result = run_faultreg("--version", cwd=tmp_path)

    assert result.returncode == 0
    assert result.stdout.strip() == "faultreg 0.1.0"


def test_help_lists_subcommands(tmp_path):
    result = run_faultreg("--help", cwd=tmp_path)

    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_subcommand_help(tmp_path, subcommand):
    result = run_faultreg(subcommand, "--help", cwd=tmp_path)

    assert result.returncode == 0
    assert f"usage: faultreg {subcommand}" in result.stdout
    assert "--config-json" in result.stdout


def test_console_script_version(tmp_path):
    script = Path(sys.executable).parent / "faultreg"
    if not script.is_file():
        pytest.skip("the faultreg console script is not installed next to this Python")

    result = subprocess.run([str(script), "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0
    assert result.stdout.strip() == "faultreg 0.1.0"


def test_no_subcommand_rejected(tmp_path):
    result = run_faultreg(cwd=tmp_path)

    assert result.returncode == 2
    assert "COMMAND" in result.stderr


# check-config


def test_check_config_shipped(tmp_path):
    result = run_faultreg("check-config", "--config", SHIPPED_CONFIG, cwd=tmp_path)
    config = json.loads(result.stdout)

    assert result.returncode == 0
    assert config["crossbar"]["weight_bits"] == 16
    assert config["faults"]["sa1_share"] == 0.8378
    # Keys that config.yaml leaves out must appear with their schema defaults.
    assert config["dataset"]["max_train_images"] is None
    assert config["methods"]["baseline"] == {
        "clip_value": None, "dropout": 0.0, "weight_decay": 0.0, "range_mode": None, "dropconnect": 0.0,
        "fault_injection_rate": 0.0, "fault_injection_sa1_share": 0.8378, "gradient": "straight_through",
        "repair": None, "ecc_correctable_cells": 1, "ecc_codeword_weights": 8, "ecc_check_cells": 5,
        "spares_per_crossbar": 8, "training_rates": None,
    }


def test_check_config_default_path(tmp_path):
    # Without --config the command reads config.yaml from the current folder.
    (tmp_path / "config.yaml").write_text("crossbar: {weight_bits: 8}\n", encoding="utf-8")

    result = run_faultreg("check-config", cwd=tmp_path)

    assert result.returncode == 0
    assert json.loads(result.stdout)["crossbar"]["weight_bits"] == 8


def test_check_config_no_file(tmp_path):
    result = run_faultreg("check-config", cwd=tmp_path)

    assert_input_error(result, "check-config", "config.yaml")


def test_check_config_invalid_json(tmp_path):
    result = run_faultreg("check-config", "--config-json", "{crossbar: 8}", cwd=tmp_path)

    assert_input_error(result, "check-config", "not valid JSON")


def test_check_config_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("crossbar: [8,\n", encoding="utf-8")

    result = run_faultreg("check-config", "--config", path, cwd=tmp_path)

    assert_input_error(result, "check-config", str(path))


# fault-map


def test_fault_map_writes_files(workspace):
    chip_a = workspace["chip_a"]
    summary = json.loads(chip_a.with_suffix(".json").read_text(encoding="utf-8"))
    layers = [(layer["rows"], layer["columns"]) for layer in summary["spec"]["layers"]]

    assert chip_a.is_file()
    assert summary["cells"] == TINY_CELLS
    assert layers == [(784, 8), (8, 10)]
    assert summary["spec"]["fault_rate"] == 0.1
    assert summary["spec"]["map_index"] == 0
    assert summary["spec"]["weight_bits"] == 8
    assert summary["spec"]["bits_per_cell"] == 2
    assert summary["sa0_cells"] + summary["sa1_cells"] == round(summary["realized_fault_rate"] * TINY_CELLS)


def test_fault_map_realized_rate(workspace):
    summary = json.loads(workspace["chip_a"].with_suffix(".json").read_text(encoding="utf-8"))
    faulty = summary["sa0_cells"] + summary["sa1_cells"]

    # Faulty cells are binomial(TINY_CELLS, 0.1): standard deviation of the rate is
    # sqrt(0.1 * 0.9 / 50816) = 0.00133, so five of them is 0.0067.
    rate_bound = 5 * math.sqrt(0.1 * 0.9 / TINY_CELLS)
    assert abs(summary["realized_fault_rate"] - 0.1) < rate_bound

    # Of about 5,080 faulty cells, SA1 ones are binomial with share 0.8378.
    share_bound = 5 * math.sqrt(0.8378 * 0.1622 / faulty)
    assert abs(summary["realized_sa1_share"] - 0.8378) < share_bound


def test_fault_map_rerun_identical(tmp_path):
    config = write_config(tmp_path)
    output = tmp_path / "map.npz"
    arguments = ("fault-map", "--config", config, "--rate", 0.05, "--map-index", 1, "--output", output)

    first = run_faultreg(*arguments, cwd=tmp_path)
    first_hash = file_sha256(output.with_suffix(".json"))
    second = run_faultreg(*arguments, cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert file_sha256(output.with_suffix(".json")) == first_hash


def test_fault_map_invalid_config(tmp_path):
    config = write_config(tmp_path, {"crossbar": {"weight_bits": 12}})
    output = tmp_path / "out" / "map.npz"

    result = run_faultreg("fault-map", "--config", config, "--rate", 0.1, "--map-index", 0, "--output", output, cwd=tmp_path)

    assert_input_error(result, "fault-map", "crossbar.weight_bits")
    assert "12" in error_lines(result, "fault-map")[0]
    assert_nothing_written(output, output.with_suffix(".json"))


def test_fault_map_missing_config(tmp_path, capsys):
    missing = tmp_path / "absent.yaml"
    output = tmp_path / "out" / "map.npz"

    result = call_faultreg(capsys, "fault-map", "--config", missing, "--rate", 0.1, "--map-index", 0, "--output", output)

    assert_input_error(result, "fault-map", str(missing))
    assert_nothing_written(output, output.with_suffix(".json"))


def test_fault_map_rate_above_one(tmp_path, capsys):
    config = write_config(tmp_path)
    output = tmp_path / "out" / "map.npz"

    result = call_faultreg(capsys, "fault-map", "--config", config, "--rate", 1.5, "--map-index", 0, "--output", output)

    assert_input_error(result, "fault-map", "1.5")
    assert_nothing_written(output, output.with_suffix(".json"))


def test_fault_map_negative_index(tmp_path, capsys):
    config = write_config(tmp_path)
    output = tmp_path / "out" / "map.npz"

    result = call_faultreg(capsys, "fault-map", "--config", config, "--rate", 0.1, "--map-index", -1, "--output", output)

    assert_input_error(result, "fault-map", "-1")
    assert_nothing_written(output, output.with_suffix(".json"))


def test_fault_map_json_output(tmp_path, capsys):
    # The summary goes to the output name with .json, so this output would be overwritten.
    config = write_config(tmp_path)
    output = tmp_path / "out" / "map.json"

    result = call_faultreg(capsys, "fault-map", "--config", config, "--rate", 0.1, "--map-index", 0, "--output", output)

    assert_input_error(result, "fault-map", str(output))
    assert_nothing_written(output)


# train


def test_train_two_seeds_two_maps(workspace):
    runs = workspace["runs"]
    folders = sorted(path.relative_to(workspace["folder"] / "models").as_posix()
                     for run_dir in runs.values() for path in run_dir.iterdir())

    assert folders == ["chip_a/seed0", "chip_a/seed1", "chip_b/seed0", "chip_b/seed1"]
    for chip, map_index in (("chip_a", 0), ("chip_b", 1)):
        for seed in (0, 1):
            folder = runs[chip] / f"seed{seed}"
            metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
            history = pd.read_csv(folder / "history.csv")
            assert sorted(os.listdir(folder)) == ["history.csv", "metrics.json", "model.pt"]
            assert metrics["training_seed"] == seed
            assert metrics["map_index"] == map_index
            assert metrics["map_hash"] == map_sha256(workspace[chip])
            assert metrics["training_faults"] == "same_chip"
            assert metrics["training_fault_rate"] == 0.1
            assert metrics["training_sa1_share"] == 0.8378
            assert metrics["wear"] is False
            # One epoch of 100 images at batch size 64 is ceil(100 / 64) = 2 steps. The history
            # logs step 1 and every 10th step, so it has one row.
            assert metrics["steps"] == 2
            assert metrics["epochs_completed"] == 1
            assert list(history.columns) == list(HISTORY_COLUMNS)
            assert list(history["step"]) == [1]
            assert list(history["map_index"]) == [map_index]
            assert list(history["training_seed"]) == [seed]


@pytest.mark.parametrize(
    ("chips", "run_dirs", "problem"),
    [
        (["chip_a", "chip_b"], 1, "got 2 fault maps but 1 run folders"),
        ([], 2, "got 1 fault maps but 2 run folders"),  # fault-free training takes one folder
    ],
    ids=["two_maps_one_folder", "fault_free_two_folders"],
)
def test_train_map_count_mismatch(workspace, tmp_path, capsys, chips, run_dirs, problem):
    folders = [tmp_path / f"run{index}" for index in range(run_dirs)]
    map_arguments = ["--fault-map", *(workspace[chip] for chip in chips)] if chips else []

    result = call_faultreg(
        capsys,
        "train", "--config", workspace["config"], "--method", "baseline", "--seed", 0, *map_arguments,
        "--run-dir", *folders,
    )

    assert_input_error(result, "train", problem)
    assert "one folder per map" in error_lines(result, "train")[0]
    for folder in folders:
        assert not folder.exists()


def test_train_unknown_method(tmp_path, capsys):
    config = write_config(tmp_path)
    out = tmp_path / "out"

    result = call_faultreg(
        capsys,
        "train", "--config", config, "--method", "nosuch", "--seed", 0, "--run-dir", out,
    )

    assert_input_error(result, "train", "nosuch")
    assert_nothing_written(out / "seed0" / "model.pt", out / "seed0" / "metrics.json", out / "seed0" / "history.csv")


def test_train_with_wear(tmp_path, capsys):
    # A mean lifetime of 1 write wears out most cells that the two steps write.
    config = write_config(tmp_path, {"endurance": {"mean_writes": 1.0}})
    out = tmp_path / "wear"

    result = call_faultreg(capsys, "train", "--config", config, "--method", "baseline", "--seed", 3, "--run-dir", out, "--wear")
    metrics = json.loads((out / "seed3" / "metrics.json").read_text(encoding="utf-8"))
    history = pd.read_csv(out / "seed3" / "history.csv")

    assert result.returncode == 0, result.stderr
    assert metrics["wear"] is True
    assert metrics["training_faults"] == "none"
    assert metrics["map_index"] is None
    assert metrics["training_sa1_share"] is None
    assert history["wear"].tolist() == [True]
    # The chip starts without faults, so every faulty cell at the end wore out in training.
    assert metrics["worn_cells"] > 0
    assert metrics["final_faulty_cell_fraction"] == pytest.approx(metrics["worn_cells"] / TINY_CELLS)
    # Each step writes every cell at most once.
    assert 0 < metrics["slice_writes"] <= 2 * TINY_CELLS


def test_train_divergence_recorded(tmp_path):
    # A learning rate of 1e8 does not make this run diverge. Because range_mode fixed clamps
    # the stored weights to +-16, the loss stays finite (about 5e7 after two steps). The master
    # weights reach about 1e14, far below the float32 maximum of 3.4e38. At 1e30 the second
    # SGD step pushes the master weights past that maximum, to inf.
    config = write_config(tmp_path, {"training": {"learning_rate": 1e30}})
    out = tmp_path / "out"

    result = run_faultreg(
        "train", "--config", config, "--method", "baseline", "--seed", 0, "--run-dir", out,
        cwd=tmp_path,
    )
    text = (out / "seed0" / "metrics.json").read_text(encoding="utf-8")
    metrics = json.loads(text)

    assert result.returncode == 0, result.stderr
    assert '"diverged": true' in text
    assert metrics["diverged"] is True
    assert type(metrics["diverged_step"]) is int
    # Step 1 runs on freshly initialized weights, so its loss is finite, and one epoch of
    # 100 images at batch size 64 has ceil(100 / 64) = 2 steps.
    assert metrics["diverged_step"] == 2
    assert (out / "seed0" / "model.pt").is_file()
    assert (out / "seed0" / "history.csv").is_file()


# inject


def test_inject_on_training_chip(workspace, tmp_path):
    # Control for the rejections below: the chip a model was trained on is accepted.
    output = tmp_path / "rows.csv"

    result = run_faultreg(
        "inject", "--config", workspace["config"], "--checkpoint", workspace["checkpoint"],
        "--fault-map", workspace["chip_a"], "--output", output, cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert len(output.read_text(encoding="utf-8").splitlines()) == 2


def test_inject_other_chip(workspace, tmp_path):
    # The model trained on chip A meets only chip B: no given map has the hash of its chip.
    output = tmp_path / "out" / "rows.csv"

    result = run_faultreg(
        "inject", "--config", workspace["config"], "--checkpoint", workspace["checkpoint"],
        "--fault-map", workspace["chip_b"], "--output", output, cwd=tmp_path,
    )

    assert_input_error(result, "inject", str(workspace["checkpoint"]))
    line = error_lines(result, "inject")[0]
    assert map_sha256(workspace["chip_a"])[:12] in line
    assert "none of the given maps" in line
    assert_nothing_written(output)


def test_inject_same_index_other_seed(workspace, tmp_path, capsys):
    # Chip 0 at rate 0.1 drawn from another root seed has the spec of chip A but other cells,
    # so its hash differs and the chip-A model is not evaluated on it.
    other_seed = write_config(tmp_path, {"seed": 7})
    lookalike = tmp_path / "maps" / "rate0.1_map0.npz"
    output = tmp_path / "out" / "rows.csv"
    drawn = call_faultreg(capsys, "fault-map", "--config", other_seed, "--rate", 0.1, "--map-index", 0, "--output", lookalike)

    result = call_faultreg(
        capsys,
        "inject", "--config", workspace["config"], "--checkpoint", workspace["checkpoint"],
        "--fault-map", lookalike, "--output", output,
    )

    assert drawn.returncode == 0, drawn.stderr
    assert map_sha256(lookalike) != map_sha256(workspace["chip_a"])
    assert_input_error(result, "inject", str(workspace["checkpoint"]))
    assert "none of the given maps" in error_lines(result, "inject")[0]
    assert_nothing_written(output)


def test_inject_fault_free_meets_every_map(workspace, pipeline):
    rows = pd.read_csv(pipeline["rows"], dtype={"fault_slices": str, "fault_layers": str})
    hashes = {map_sha256(workspace["chip_a"]): 0, map_sha256(workspace["chip_b"]): 1}
    fault_free = rows[rows["training_faults"] == "none"]
    on_chip = rows[rows["training_faults"] == "same_chip"]

    # The fault-free model meets chips A and B, and each chip-trained model meets only its own chip.
    assert len(rows) == 2 + 4
    assert set(INFERENCE_COLUMNS) <= set(rows.columns)
    assert sorted(fault_free["map_index"]) == [0, 1]
    assert fault_free["training_map_index"].isna().all()
    assert fault_free["training_sa1_share"].isna().all()
    assert sorted(zip(on_chip["training_map_index"], on_chip["training_seed"])) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert (on_chip["map_index"] == on_chip["training_map_index"]).all()
    assert (on_chip["training_sa1_share"] == 0.8378).all()
    assert [hashes[value] for value in rows["map_hash"]] == list(rows["map_index"])
    assert (rows["fault_slices"] == "all").all()
    assert (rows["fault_layers"] == "all").all()
    assert not rows["wear"].any()
    assert rows["clip_value"].isna().all()  # baseline has no clip value
    assert (rows["n_test"] == 50).all()
    # Accuracy is a count of correct images out of 50.
    correct = rows["accuracy"] * 50
    assert np.allclose(correct, correct.round())


def test_inject_missing_checkpoint(workspace, tmp_path, capsys):
    missing = tmp_path / "absent.pt"
    output = tmp_path / "out" / "rows.csv"

    result = call_faultreg(
        capsys,
        "inject", "--config", workspace["config"], "--checkpoint", missing,
        "--fault-map", workspace["chip_a"], "--output", output,
    )

    assert_input_error(result, "inject", str(missing))
    assert_nothing_written(output)


def test_inject_garbage_map(workspace, tmp_path, capsys):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a numpy archive\n" * 8)
    output = tmp_path / "out" / "rows.csv"

    result = call_faultreg(
        capsys,
        "inject", "--config", workspace["config"], "--checkpoint", workspace["checkpoint"],
        "--fault-map", garbage, "--output", output,
    )

    assert_input_error(result, "inject", str(garbage))
    assert_nothing_written(output)


def test_inject_truncated_map(workspace, tmp_path, capsys):
    truncated = tmp_path / "truncated.npz"
    data = workspace["chip_a"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    output = tmp_path / "out" / "rows.csv"

    result = call_faultreg(
        capsys,
        "inject", "--config", workspace["config"], "--checkpoint", workspace["checkpoint"],
        "--fault-map", truncated, "--output", output,
    )

    assert_input_error(result, "inject", str(truncated))
    assert_nothing_written(output)


def test_inject_damaged_map(workspace, tmp_path, capsys):
    damaged = tmp_path / "damaged.npz"
    data = bytearray(workspace["chip_a"].read_bytes())
    # Invert bytes inside the compressed states of the first layer. The zip directory at the
    # end stays intact, so the archive opens and fails only while inflating.
    for position in range(1000, 1100):
        data[position] ^= 0xFF
    damaged.write_bytes(bytes(data))
    output = tmp_path / "out" / "rows.csv"

    result = call_faultreg(
        capsys,
        "inject", "--config", workspace["config"], "--checkpoint", workspace["checkpoint"],
        "--fault-map", damaged, "--output", output,
    )

    assert_input_error(result, "inject", str(damaged))
    assert_nothing_written(output)


def test_inject_map_hash_mismatch(workspace, tmp_path, capsys):
    # A map file whose cells no longer match the hash stored in it is rejected on loading.
    tampered = tmp_path / "tampered.npz"
    with np.load(workspace["chip_a"], allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    states = arrays["layer_0_states"].copy()
    # Swap the stuck state of the first listed faulty cell (SA0 is 1, SA1 is 2).
    states[0] = 1 if states[0] == 2 else 2
    arrays["layer_0_states"] = states
    np.savez_compressed(tampered, **arrays)
    output = tmp_path / "out" / "rows.csv"

    result = call_faultreg(
        capsys,
        "inject", "--config", workspace["config"], "--checkpoint", workspace["checkpoint"],
        "--fault-map", tampered, "--output", output,
    )

    assert_input_error(result, "inject", str(tampered))
    assert "hash" in error_lines(result, "inject")[0]
    assert_nothing_written(output)


def test_check_config_merges_files(tmp_path, capsys):
    # The scenario replaces the rate lists, sets training_rates back to null (every nonzero rate)
    # and adds one method; everything else comes from config.yaml.
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({
        "faults": {"rates": [0.0, 0.05, 0.1], "training_rates": None},
        "methods": {"extra": {"dropout": 0.2}},
        "run_methods": ["baseline", "clip", "extra"],
    }))

    result = call_faultreg(capsys, "check-config", "--config", SHIPPED_CONFIG, scenario)
    config = json.loads(result.stdout)

    assert result.returncode == 0, result.stderr
    assert config["faults"]["rates"] == [0.0, 0.05, 0.1]
    assert config["faults"]["training_rates"] == [0.05, 0.1]
    assert config["faults"]["maps_per_rate"] == 5  # kept from config.yaml
    assert {"baseline", "clip", "dropout", "l2", "clip_dropout", "extra"} <= set(config["methods"])
    assert config["methods"]["extra"]["dropout"] == 0.2
    assert config["methods"]["clip"]["clip_value"] == 0.5  # kept from config.yaml
    assert config["run_methods"] == ["baseline", "clip", "extra"]


def test_check_config_requires_baseline(tmp_path, capsys):
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump({"methods": {"clip": {"clip_value": 0.5, "range_mode": "clip"}}}))

    result = call_faultreg(capsys, "check-config", "--config", config_path)

    assert result.returncode == 2
    assert "baseline" in result.stderr


# study-maps


STUDY_CHANGES = {"studies": {"stuck_type": {"sa1_shares": [0.0, 1.0], "rates": [0.1]}, "sensitivity": {"rate": 0.1}}}


def load_states(path: Path) -> dict:
    from faultreg.faults import load_fault_map

    return load_fault_map(path).states


def test_study_maps_stuck_type(workspace, tmp_path):
    # The study config adds only the studies section, so its maps share the fault sites of chip A.
    config = write_config(tmp_path, STUDY_CHANGES, name="study.yaml")
    folder = tmp_path / "maps"

    result = run_faultreg("study-maps", "--config", config, "--study", "stuck_type", "--folder", folder, cwd=tmp_path)
    planned = [entry.relative_path for entry in study_maps(validate_config(yaml.safe_load(config.read_text())), "stuck_type")]

    assert result.returncode == 0, result.stderr
    # Two shares times one rate times two chips.
    assert planned == [
        "stuck_type/sa1_0_rate0.1_map0.npz",
        "stuck_type/sa1_0_rate0.1_map1.npz",
        "stuck_type/sa1_1_rate0.1_map0.npz",
        "stuck_type/sa1_1_rate0.1_map1.npz",
    ]
    for name in planned:
        assert (folder / name).is_file(), name
        assert (folder / name).with_suffix(".json").is_file(), name
    assert len(os.listdir(folder / "stuck_type")) == 2 * len(planned)

    main = load_states(workspace["chip_a"])
    sa0_only = load_states(folder / "stuck_type" / "sa1_0_rate0.1_map0.npz")
    sa1_only = load_states(folder / "stuck_type" / "sa1_1_rate0.1_map0.npz")
    assert list(sa0_only) == list(main)
    for layer, states in main.items():
        faulty = states != HEALTHY
        assert np.array_equal(sa0_only[layer] != HEALTHY, faulty)
        assert np.array_equal(sa1_only[layer] != HEALTHY, faulty)
        assert np.all(sa0_only[layer][faulty] == SA0)
        assert np.all(sa1_only[layer][faulty] == SA1)


def test_study_maps_sensitivity(workspace, tmp_path, capsys):
    config = write_config(tmp_path, STUDY_CHANGES, name="study.yaml")
    folder = tmp_path / "maps"

    result = call_faultreg(capsys, "study-maps", "--config", config, "--study", "sensitivity", "--folder", folder)
    planned = [entry.relative_path for entry in study_maps(validate_config(yaml.safe_load(config.read_text())), "sensitivity")]

    assert result.returncode == 0, result.stderr
    # Two layers times 8 / 2 = 4 slice positions times two chips.
    assert len(planned) == 2 * 4 * 2
    assert planned[:2] == ["sensitivity/layers.1_slice0_map0.npz", "sensitivity/layers.1_slice0_map1.npz"]
    for name in planned:
        assert (folder / name).is_file(), name
    # The map keeps the faults of chip A in slice 3 of layers.1 and removes all others.
    main = load_states(workspace["chip_a"])
    targeted = load_states(folder / "sensitivity" / "layers.1_slice3_map0.npz")
    for layer, states in main.items():
        expected = np.zeros_like(states)
        if layer == "layers.1":
            expected[..., 3] = states[..., 3]
        assert np.array_equal(targeted[layer], expected), layer
    assert np.count_nonzero(targeted["layers.1"]) > 0


# aggregate, figure, claims and summary


def test_aggregate_tables(pipeline):
    tables = pipeline["tables"]
    rows = pd.read_csv(pipeline["rows"])
    runs = pd.read_csv(tables / "accuracy_runs.csv")
    training = pd.read_csv(tables / "training_runs.csv")
    history = pd.read_csv(tables / "training_history.csv")
    summary = pd.read_csv(tables / "accuracy_summary.csv")

    assert len(runs) == 6
    assert len(training) == 5  # one fault-free run and four chip-trained runs
    assert len(history) == 5  # step 1 of each run
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert (tables / "divergence.md").is_file()
    assert sorted(zip(summary["setting"], summary["n"])) == [("inference_only", 2), ("training_and_inference", 4)]
    for setting, faults in (("inference_only", "none"), ("training_and_inference", "same_chip")):
        mean = summary.loc[summary["setting"] == setting, "mean_accuracy"].iloc[0]
        assert mean == pytest.approx(rows.loc[rows["training_faults"] == faults, "accuracy"].mean())


def test_figure_command(pipeline):
    names = sorted(os.listdir(pipeline["figures"]))
    table = pd.read_csv(pipeline["figures"] / "accuracy_vs_fault_rate.csv")

    assert names == ["accuracy_vs_fault_rate.csv", "accuracy_vs_fault_rate.pdf", "accuracy_vs_fault_rate.png"]
    assert (pipeline["figures"] / "accuracy_vs_fault_rate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(table["n"]) == [2, 4]


def test_claims_command(pipeline):
    claims = pd.read_csv(pipeline["claims"]).set_index("claim")
    collapse = claims.loc["1a. Training on faulty ReRAM without mitigation collapses"]
    explosion = claims.loc["1b. ... through exploding weights"]

    assert set(claims["verdict"]) <= {"held", "not held", "inconclusive"}
    # No model was evaluated at fault rate 0, so the collapse claim has no fault-free reference.
    assert collapse["n_pairs"] == 0
    assert collapse["verdict"] == "inconclusive"
    # Max |w| pairs seed 0 on chips A and B with the fault-free seed 0. Seed 1 has no fault-free run.
    assert explosion["n_pairs"] == 2
    assert pipeline["claims"].with_suffix(".md").read_text(encoding="utf-8").startswith("# Claims and verdicts")


def test_summary_command(pipeline):
    text = pipeline["summary"].read_text(encoding="utf-8")

    assert text.startswith("# faultreg results\n")
    assert "## mnist_subset, mlp" in text
    assert "Test accuracy at 10 % faulty cells" in text
    assert "(n = 2)" in text  # fault-free model on chips A and B
    assert "(n = 4)" in text  # two seeds on each of two chips
    assert "| not run " in text  # no model was evaluated at fault rate 0
    assert "- 1a. Training on faulty ReRAM without mitigation collapses: **inconclusive**." in text
    assert "- [claims.md](tables/claims.md)" in text
    assert "![accuracy vs fault rate](figures/accuracy_vs_fault_rate.png)" in text


def test_aggregate_missing_inference(workspace, tmp_path, capsys):
    absent = tmp_path / "absent.csv"
    metrics = workspace["runs"]["chip_a"] / "seed0" / "metrics.json"
    tables = tmp_path / "tables"

    result = call_faultreg(
        capsys, "aggregate", "--config", workspace["config"], "--inference", absent, "--training", metrics,
        "--tables-dir", tables,
    )

    assert_input_error(result, "aggregate", str(absent))
    assert not tables.exists()


def test_figure_unknown_name(pipeline, workspace, tmp_path, capsys):
    figures = tmp_path / "figures"

    result = call_faultreg(
        capsys, "figure", "--config", workspace["config"], "--name", "nosuch", "--tables-dir", pipeline["tables"],
        "--figures-dir", figures,
    )

    assert_input_error(result, "figure", "'nosuch'")
    assert "accuracy_vs_fault_rate" in error_lines(result, "figure")[0]
    assert not figures.exists()


def test_claims_before_aggregate(workspace, pipeline, tmp_path, capsys):
    empty = tmp_path / "tables"
    empty.mkdir()
    output = tmp_path / "out" / "claims.csv"

    result = call_faultreg(
        capsys, "claims", "--config", workspace["config"], "--tables-dir", empty, "--cost", pipeline["cost"],
        "--csv", output, "--markdown", output.with_suffix(".md"),
    )

    assert_input_error(result, "claims", str(empty / "accuracy_runs.csv"))
    assert_nothing_written(output, output.with_suffix(".md"))


def test_summary_missing_claims(workspace, pipeline, tmp_path, capsys):
    absent = tmp_path / "no_claims.csv"
    output = tmp_path / "out" / "summary.md"

    result = call_faultreg(
        capsys, "summary", "--config", workspace["config"], "--tables-dir", pipeline["tables"], "--claims", absent,
        "--cost", pipeline["cost"], "--output", output,
    )

    assert_input_error(result, "summary", str(absent))
    assert_nothing_written(output)
