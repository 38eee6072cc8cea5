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
import pytest
import yaml

from faultreg.cli import main

SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"
SUBCOMMANDS = ["fault-map", "train", "inject", "cost", "aggregate", "check-config"]

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


def write_config(folder: Path, changes: dict | None = None) -> Path:
    config = json.loads(json.dumps(TINY_CONFIG))
    for section, values in (changes or {}).items():
        config.setdefault(section, {}).update(values)
    path = folder / "tiny.yaml"
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

    checkpoint = folder / "models" / "chip_a.pt"
    result = run_faultreg(
        "train", "--config", config, "--method", "baseline", "--seed", 0, "--fault-map", chip_a,
        "--checkpoint", checkpoint, "--metrics", folder / "models" / "chip_a.json", "--history", folder / "models" / "chip_a.csv",
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr
    return {"folder": folder, "config": config, "chip_a": chip_a, "chip_b": chip_b, "checkpoint": checkpoint}


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
    assert config["methods"]["baseline"] == {"clip_value": None, "dropout": 0.0, "weight_decay": 0.0, "range_mode": None, "gradient": "straight_through"}


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


def test_train_unknown_method(tmp_path, capsys):
    config = write_config(tmp_path)
    out = tmp_path / "out"

    result = call_faultreg(
        capsys,
        "train", "--config", config, "--method", "nosuch", "--seed", 0,
        "--checkpoint", out / "m.pt", "--metrics", out / "m.json", "--history", out / "m.csv",
    )

    assert_input_error(result, "train", "nosuch")
    assert_nothing_written(out / "m.pt", out / "m.json", out / "m.csv")


def test_train_divergence_recorded(tmp_path):
    # A learning rate of 1e8 does not make this run diverge. Because range_mode fixed clamps
    # the stored weights to +-16, the loss stays finite (about 5e7 after two steps). The master
    # weights reach about 1e14, far below the float32 maximum of 3.4e38. At 1e30 the second
    # SGD step pushes the master weights past that maximum, to inf.
    config = write_config(tmp_path, {"training": {"learning_rate": 1e30}})
    out = tmp_path / "out"

    result = run_faultreg(
        "train", "--config", config, "--method", "baseline", "--seed", 0,
        "--checkpoint", out / "m.pt", "--metrics", out / "m.json", "--history", out / "m.csv",
        cwd=tmp_path,
    )
    text = (out / "m.json").read_text(encoding="utf-8")
    metrics = json.loads(text)

    assert result.returncode == 0, result.stderr
    assert '"diverged": true' in text
    assert metrics["diverged"] is True
    assert type(metrics["diverged_step"]) is int
    # Step 1 runs on freshly initialized weights, so its loss is finite, and one epoch of
    # 100 images at batch size 64 has ceil(100 / 64) = 2 steps.
    assert metrics["diverged_step"] == 2
    assert (out / "m.pt").is_file()
    assert (out / "m.csv").is_file()


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
    output = tmp_path / "out" / "rows.csv"

    result = run_faultreg(
        "inject", "--config", workspace["config"], "--checkpoint", workspace["checkpoint"],
        "--fault-map", workspace["chip_b"], "--output", output, cwd=tmp_path,
    )

    assert_input_error(result, "inject", str(workspace["chip_b"]))
    assert_nothing_written(output)


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
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({"faults": {"rates": [0.0, 0.1]}, "run_methods": ["baseline", "clip"]}))

    result = call_faultreg(capsys, "check-config", "--config", SHIPPED_CONFIG, scenario)
    config = json.loads(result.stdout)

    assert result.returncode == 0
    assert config["faults"]["rates"] == [0.0, 0.1]
    assert config["faults"]["training_rates"] == [0.1]
    assert config["faults"]["maps_per_rate"] == 5  # kept from config.yaml
    assert set(config["methods"]) == {"baseline", "clip", "dropout", "l2", "clip_dropout"}
    assert config["run_methods"] == ["baseline", "clip"]


def test_check_config_requires_baseline(tmp_path, capsys):
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump({"methods": {"clip": {"clip_value": 0.5, "range_mode": "clip"}}}))

    result = call_faultreg(capsys, "check-config", "--config", config_path)

    assert result.returncode == 2
    assert "baseline" in result.stderr
