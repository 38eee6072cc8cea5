"""Builders of small synthetic tidy tables and a study config for the claims and figure tests.

The rows have the columns that ``faultreg aggregate`` writes, and :func:`write_tables` stores
them under the file names that :func:`faultreg.figures.load_tables` reads. Every test module
keeps its own values; this module only fixes the shape of a row.

The folder has no ``__init__.py``, so pytest puts it on ``sys.path`` when it imports a test
module from it, and the tests import this module as ``study_tables``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from faultreg.config import validate_workflow_config
from faultreg.report import HISTORY_COLUMNS, INFERENCE_COLUMNS, OPTIONAL_TRAINING_KEYS, TRAINING_KEYS

# The main SA1 share of the study config, and the default share of every row.
SHARE = 0.8


def study_config(seeds: Sequence[int] | None = None) -> dict:
    """Return a validated config: main share 0.8, chips trained at 10 %, a three-value clip sweep.

    ``seeds`` sets ``training.seeds``. Without it the config has no training section, so the
    default seeds apply.
    """
    config: dict = {
        "faults": {"rates": [0.0, 0.05, 0.1], "sa1_share": SHARE, "maps_per_rate": 2,
                   "training_rates": [0.1], "training_chips": 2},
    }
    if seeds is not None:
        config["training"] = {"seeds": list(seeds)}
    config.update({
        "methods": {"baseline": {}, "clip": {"clip_value": 0.5, "range_mode": "clip"}, "dropout": {"dropout": 0.3}},
        "studies": {
            "exploding_weights": {"rate": 0.1, "methods": ["baseline", "clip"]},
            "stuck_type": {"sa1_shares": [0.0, SHARE, 1.0], "rates": [0.05, 0.1], "training_rate": 0.1,
                           "training_methods": ["baseline", "clip"]},
            "sensitivity": {"rate": 0.1, "methods": ["baseline", "clip"]},
            "clip_sweep": {"clip_values": [0.25, 0.5, 1.0], "rates": [0.0, 0.1]},
            "endurance": {"methods": ["baseline", "clip", "dropout"]},
        },
        "report": {"formats": ["png"], "dpi": 50, "headline_rate": 0.1},
    })
    return validate_workflow_config(config)


def accuracy_row(method: str, accuracy: float, *, seed: int, map_index: int = 0, rate: float = 0.0,
                 faults: str = "none", share: float = SHARE, training_share: float | None = None,
                 slices: str = "all", layers: str = "all", clip_value: float | None = None) -> dict:
    """Return one row of accuracy_runs.csv.

    A same_chip row was trained on the chip it is evaluated on, at ``rate`` and at
    ``training_share``, which defaults to ``share``. Other rows have no training faults.

    Without ``clip_value``, the method ``clip`` gets 0.5 and every other method an empty value.
    Clip-sweep rows are empty too, so their clip values come from the method names.
    """
    same_chip = faults == "same_chip"
    if not same_chip:
        training_share = math.nan
    elif training_share is None:
        training_share = share
    if clip_value is None:
        clip_value = 0.5 if method == "clip" else math.nan
    return {
        "dataset": "mnist_subset",
        "model": "mlp",
        "method": method,
        "training_faults": faults,
        "training_fault_rate": rate if same_chip else 0.0,
        "training_sa1_share": training_share,
        "training_map_index": map_index if same_chip else math.nan,
        "wear": False,
        "training_seed": seed,
        "fault_rate": rate,
        "sa1_share": share,
        "fault_slices": slices,
        "fault_layers": layers,
        "map_index": map_index,
        "map_hash": f"{rate:g}-{share:g}-{slices}-{layers}-{map_index}",
        "accuracy": accuracy,
        "nonfinite_fraction": 0.0,
        "diverged": False,
        "n_test": 1000,
        "clip_value": clip_value,
    }


def training_row(method: str, seed: int, max_abs_weight: float = 1.0, *, faults: str = "none", rate: float = 0.0,
                 chip: int | None = None, share: float | None = None, wear: bool = False, diverged: bool = False,
                 steps: int = 100, epochs_completed: int = 2, final_loss: float = 0.2,
                 final_faulty_cell_fraction: float = math.nan, final_test_accuracy: float = math.nan,
                 slice_writes: float = math.nan) -> dict:
    """Return one row of training_runs.csv.

    ``chip`` and ``share`` are the training chip and its SA1 share, empty for a run trained
    without fabrication faults. A diverged run has an empty final loss.
    """
    return {
        "dataset": "mnist_subset",
        "model": "mlp",
        "method": method,
        "training_faults": faults,
        "training_fault_rate": rate,
        "map_index": chip,
        "training_seed": seed,
        "diverged": diverged,
        "diverged_step": 30 if diverged else None,
        "steps": steps,
        "epochs_completed": epochs_completed,
        "final_loss": math.nan if diverged else final_loss,
        "max_abs_weight": max_abs_weight,
        "wall_time_s": 1.0,
        "saturated_weight_fraction": 0.0,
        "final_faulty_cell_fraction": final_faulty_cell_fraction,
        "final_test_accuracy": final_test_accuracy,
        "training_sa1_share": share,
        "wear": wear,
        "worn_cells": 0,
        "slice_writes": slice_writes,
    }


def history_row(method: str, seed: int, step: int, *, max_abs_weight: float = 1.0, loss: float = 1.0,
                faulty_cell_fraction: float = 0.5, faults: str = "none", rate: float = 0.0,
                chip: int | None = None, share: float | None = None, wear: bool = False) -> dict:
    """Return one logged step of training_history.csv.

    ``max_abs_stored_weight`` is ``max_abs_weight`` capped at 16.
    """
    return {
        "step": step, "epoch": 0, "loss": loss, "max_abs_weight": max_abs_weight,
        "max_abs_stored_weight": min(max_abs_weight, 16.0), "faulty_cell_fraction": faulty_cell_fraction,
        "dataset": "mnist_subset", "model": "mlp", "method": method, "training_faults": faults,
        "training_fault_rate": rate, "training_sa1_share": share, "map_index": chip, "wear": wear,
        "training_seed": seed,
    }


# Table T1 rows of the study config's methods: overhead per tile in percent of area and power.
METHOD_COSTS = pd.DataFrame({
    "method": ["baseline", "clip", "dropout"],
    "area_overhead_pct_tile": [0.0, 0.2, 0.25],
    "power_overhead_pct_tile": [0.0, 0.18, 0.08],
})


def write_tables(folder: Path, runs: list[dict], training: list[dict], history: list[dict] | None = None) -> Path:
    """Write the tidy tables and table T1 under the names load_tables reads and return ``folder``.

    Without ``history`` the history table has its header and no rows. Table T1 is
    :data:`METHOD_COSTS`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(runs, columns=list(INFERENCE_COLUMNS)).to_csv(folder / "accuracy_runs.csv", index=False)
    pd.DataFrame(training, columns=[*TRAINING_KEYS, *OPTIONAL_TRAINING_KEYS]).to_csv(folder / "training_runs.csv", index=False)
    pd.DataFrame(history or [], columns=list(HISTORY_COLUMNS)).to_csv(folder / "training_history.csv", index=False)
    METHOD_COSTS.to_csv(folder / "method_costs.csv", index=False)
    return folder
