"""The workflow stages as library calls: fault maps, training, fault-injected inference.

Each function takes the validated config and explicit file paths, writes its outputs only when
they are complete, and is what the matching ``faultreg`` subcommand (and so each Snakemake
rule) runs.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from faultreg.chip import CrossbarChip, StorageSettings, storage_for_method
from faultreg.datasets import Dataset, load_dataset
from faultreg.errors import ConfigError, FaultregError
from faultreg.crossbar import states_to_weight_layout
from faultreg.endurance import EnduranceSettings, WearTracker
from faultreg.faults import FaultMap, FaultMapSpec, generate_fault_map, load_fault_map, save_fault_map
from faultreg.inference import evaluate
from faultreg.io import atomic_path, write_text_atomic
from faultreg.models import build_model, crossbar_layers, initialize_weights, layer_geometries, set_dropout_generator
from faultreg.regularizers import DropConnect, FaultInjection
from faultreg.repair import RepairSettings, effective_map
from faultreg.seeding import torch_generator
from faultreg.studies import study_maps
from faultreg.training import train_on_chip

logger = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


def resolve_device(setting: str) -> torch.device:
    """Return the torch device for the ``training.device`` setting (auto, cpu or cuda).

    NOTE: the CUDA path keeps masks, lifetimes and generators on the model's device, but the
    test suite and benchmarks so far ran on CPUs only.
    """
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def _configure_threads(training: dict[str, Any]) -> None:
    torch.set_num_threads(int(training["threads"]))


def fault_map_spec(
    config: dict[str, Any],
    fault_rate: float,
    map_index: int,
    sa1_share: float | None = None,
    slice_positions: tuple[int, ...] | None = None,
    target_layers: tuple[str, ...] | None = None,
) -> FaultMapSpec:
    """Return the spec of map ``map_index`` at ``fault_rate``, with optional study overrides.

    ``sa1_share``, ``slice_positions`` and ``target_layers`` replace the ``faults`` section's
    values when given.
    """
    model = build_model(config["model"])
    crossbar = config["crossbar"]
    faults = config["faults"]
    if slice_positions is None and faults["slice_positions"] is not None:
        slice_positions = tuple(faults["slice_positions"])
    if target_layers is None and faults["layers"] is not None:
        target_layers = tuple(faults["layers"])
    return FaultMapSpec(
        fault_rate=float(fault_rate),
        sa1_share=float(faults["sa1_share"] if sa1_share is None else sa1_share),
        map_index=int(map_index),
        root_seed=int(config["seed"]),
        weight_bits=int(crossbar["weight_bits"]),
        bits_per_cell=int(crossbar["bits_per_cell"]),
        layers=tuple(layer_geometries(model)),
        encoding=str(crossbar["encoding"]),
        crossbar_rows=int(crossbar["rows"]),
        crossbar_columns=int(crossbar["columns"]),
        pattern=str(faults["pattern"]),
        cluster_size=int(faults["cluster_size"]),
        slice_positions=slice_positions,
        target_layers=target_layers,
    )


def make_fault_map(config: dict[str, Any], fault_rate: float, map_index: int, output: Path) -> dict[str, Any]:
    """Draw fault map ``map_index`` at ``fault_rate`` for the configured model and save it."""
    return save_fault_map(generate_fault_map(fault_map_spec(config, fault_rate, map_index)), output)


def make_study_maps(config: dict[str, Any], study: str, folder: Path) -> list[Path]:
    """Draw every fault map of ``study`` (stuck_type or sensitivity) into ``folder``.

    File names come from :mod:`faultreg.studies`, relative to ``folder`` (the model's map
    folder). Returns the paths written.
    """
    written = []
    planned = study_maps(config, study)
    for entry in tqdm(planned, desc=f"{study} maps", unit="map", mininterval=5.0, leave=False):
        spec = fault_map_spec(
            config,
            entry.fault_rate,
            entry.map_index,
            sa1_share=entry.sa1_share,
            slice_positions=entry.slice_positions,
            target_layers=entry.target_layers,
        )
        path = Path(folder) / entry.relative_path
        save_fault_map(generate_fault_map(spec), path)
        written.append(path)
    logger.info("wrote %d %s maps under %s", len(written), study, folder)
    return written


def _method_settings(config: dict[str, Any], method_name: str) -> dict[str, Any]:
    methods = config["methods"]
    if method_name not in methods:
        raise ConfigError(f"method {method_name!r} is not in the config's methods {sorted(methods)}; add it under methods")
    return methods[method_name]


def _tensors(dataset: Dataset, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.from_numpy(dataset.train_images).to(device),
        torch.from_numpy(dataset.train_labels).to(device),
        torch.from_numpy(dataset.test_images).to(device),
        torch.from_numpy(dataset.test_labels).to(device),
    )


def _prepare_training(
    config: dict[str, Any],
    method: dict[str, Any],
    training_seed: int,
    fault_map: FaultMap | None,
    dataset: Dataset | None = None,
) -> tuple[Dataset, tuple[torch.Tensor, ...], CrossbarChip]:
    """Load the data (unless given) and build the seeded model on its chip, as every training run starts."""
    _configure_threads(config["training"])
    device = resolve_device(config["training"]["device"])
    root_seed = int(config["seed"])

    if dataset is None:
        dataset = load_dataset(config["dataset"], root_seed)
    tensors = _tensors(dataset, device)

    model = build_model(config["model"], dropout=float(method["dropout"]))
    initialize_weights(model, torch_generator(root_seed, "weight_init", training_seed))
    model.to(device)
    set_dropout_generator(model, torch_generator(root_seed, "dropout", training_seed, device=device))

    storage = storage_for_method(config["crossbar"], method)
    chip = CrossbarChip(model, storage, mask_stuck_gradients=method["gradient"] == "mask_stuck")
    if fault_map is not None:
        chip.install_fault_map(fault_map, RepairSettings.from_method(method))
    if method["dropconnect"] > 0:
        chip.dropconnect = DropConnect(float(method["dropconnect"]), torch_generator(root_seed, "dropconnect", training_seed, device=device))
    if method["fault_injection_rate"] > 0:
        chip.fault_injection = FaultInjection(
            float(method["fault_injection_rate"]),
            float(method["fault_injection_sa1_share"]),
            storage.cell_format,
            torch_generator(root_seed, "fault_injection", training_seed, device=device),
        )
    return dataset, tensors, chip


def calibrate_endurance(config: dict[str, Any], method_name: str, training_seed: int, target_share: float) -> dict[str, Any]:
    """Find the mean lifetime that wears out ``target_share`` of the cells in one training run.

    Runs a fault-free pilot training of the method that counts writes but wears nothing out.
    Then picks the log-normal mean, at the configured coefficient of variation, at which the
    expected share of cells whose lifetime falls below their write count is ``target_share``. Wear
    changes the training it acts on, so the share of an actual run differs somewhat; check it
    in the run's faulty-cell fraction.
    """
    if not 0.0 < target_share < 1.0:
        raise ConfigError(f"target share {target_share} must lie strictly between 0 and 1")
    method = _method_settings(config, method_name)
    root_seed = int(config["seed"])
    _, (train_images, train_labels, test_images, test_labels), chip = _prepare_training(config, method, training_seed, None)
    endurance = config["endurance"]
    counter = WearTracker(
        chip,
        EnduranceSettings(math.inf, float(endurance["coefficient_of_variation"]), float(endurance["sa1_share"])),
        torch_generator(root_seed, "endurance", training_seed, 0),
    )
    train_on_chip(
        chip, train_images, train_labels, test_images, test_labels,
        method=method,
        protocol=config["training"],
        batch_generator=torch_generator(root_seed, "batch_order", training_seed),
        description=f"{method_name} (write-count pilot, seed {training_seed})",
        wear=counter,
    )
    writes = torch.cat([counts.reshape(-1) for counts in counter.writes.values()]).double().cpu()
    mean_writes = solve_mean_lifetime(writes, float(endurance["coefficient_of_variation"]), target_share)
    result = {
        "method": method_name,
        "training_seed": int(training_seed),
        "target_worn_share": target_share,
        "coefficient_of_variation": float(endurance["coefficient_of_variation"]),
        "mean_writes": mean_writes,
        "cells": int(writes.numel()),
        "cells_never_written": int(torch.count_nonzero(writes == 0)),
        "median_writes": float(writes.median()),
        "max_writes": float(writes.max()),
    }
    logger.info("mean_writes %.4g wears out about %.1f %% of the cells", mean_writes, 100 * target_share)
    return result


def solve_mean_lifetime(writes: torch.Tensor, coefficient_of_variation: float, target_share: float) -> float:
    """Return the log-normal mean lifetime at which the expected worn share equals the target.

    A cell with ``w`` writes wears out when its lifetime L < w, with probability
    Phi((ln w - mu) / sigma) for ln L ~ N(mu, sigma**2). The expected share is the mean of that
    over cells; it falls as the mean grows, so bisection on log(mean) finds the target.
    """
    sigma = math.sqrt(math.log1p(coefficient_of_variation**2))
    written = writes[writes > 0]
    share_written = written.numel() / writes.numel()
    if target_share >= share_written:
        raise ConfigError(
            f"only {100 * share_written:.1f} % of the cells were written in the pilot run, so no lifetime wears out "
            f"{100 * target_share:.1f} %; choose a smaller target share"
        )
    log_writes = torch.log(written)

    def expected_share(log_mean: float) -> float:
        mu = log_mean - sigma**2 / 2
        if sigma == 0.0:
            return float((log_writes > mu).double().sum()) / writes.numel()
        return float(torch.special.ndtr((log_writes - mu) / sigma).sum()) / writes.numel()

    low, high = math.log(1e-3), math.log(float(written.max()) * 1e3)
    for _ in range(200):
        middle = (low + high) / 2
        if expected_share(middle) > target_share:
            low = middle
        else:
            high = middle
    return math.exp((low + high) / 2)


def train_runs(
    config: dict[str, Any],
    method_name: str,
    training_seeds: list[int],
    fault_map_paths: list[Path | None],
    run_dirs: list[Path],
    wear: bool = False,
) -> list[dict[str, Any]]:
    """Train ``method_name`` once per (chip, seed) and write each run to ``run_dir/seed{s}/``.

    ``fault_map_paths`` and ``run_dirs`` pair up: the runs on chip ``fault_map_paths[i]`` (None
    trains fault-free) go to ``run_dirs[i]``. ``wear`` turns write endurance on for these runs
    even when ``endurance.enabled`` is false. The data set is read once for all runs. Returns the
    metrics of every run.
    """
    if len(fault_map_paths) != len(run_dirs):
        raise ConfigError(f"got {len(fault_map_paths)} fault maps but {len(run_dirs)} run folders; give one folder per map")
    if not training_seeds:
        raise ConfigError("no training seed given; pass at least one --seed")
    dataset = load_dataset(config["dataset"], int(config["seed"]))
    results = []
    for fault_map_path, run_dir in zip(fault_map_paths, run_dirs):
        for seed in training_seeds:
            folder = Path(run_dir) / f"seed{seed}"
            results.append(
                train_model(
                    config, method_name, seed, fault_map_path,
                    folder / "model.pt", folder / "metrics.json", folder / "history.csv",
                    wear=wear, dataset=dataset,
                )
            )
    return results


def train_model(
    config: dict[str, Any],
    method_name: str,
    training_seed: int,
    fault_map_path: Path | None,
    checkpoint_path: Path,
    metrics_path: Path,
    history_path: Path,
    wear: bool = False,
    dataset: Dataset | None = None,
) -> dict[str, Any]:
    """Train one method, fault-free or on the chip in ``fault_map_path``, and save the results.

    Writes the checkpoint (.pt), the run's metrics (.json) and its per-step history (.csv).
    ``wear`` turns write endurance on even when ``endurance.enabled`` is false. Returns the
    metrics.
    """
    method = _method_settings(config, method_name)
    root_seed = int(config["seed"])
    fault_map = load_fault_map(fault_map_path) if fault_map_path is not None else None
    dataset, tensors, chip = _prepare_training(config, method, training_seed, fault_map, dataset)
    train_images, train_labels, test_images, test_labels = tensors
    model, storage, device = chip.model, chip.storage, train_images.device
    wear = wear or bool(config["endurance"]["enabled"])

    if fault_map is None:
        description = "fault-free"
        training_faults, training_fault_rate, training_sa1_share, map_index = "none", 0.0, None, None
    else:
        spec = fault_map.spec
        description = f"rate {spec.fault_rate:g}, SA1 share {spec.sa1_share:g}, chip {spec.map_index}"
        training_faults, training_fault_rate, training_sa1_share, map_index = "same_chip", spec.fault_rate, spec.sa1_share, spec.map_index

    repair = RepairSettings.from_method(method)
    before_epoch = None
    if fault_map is not None and repair is not None and repair.needs_weights:
        if wear:
            raise ConfigError(
                f"method {method_name!r} uses row remapping, which redoes its row assignment every epoch and would "
                "undo the cells worn out so far; train it without endurance (endurance.enabled false, no --wear)"
            )

        def before_epoch(epoch: int) -> None:
            if epoch > 0:
                chip.install_fault_map(fault_map, repair)

    tracker = None
    if wear:
        chip_key = 0 if map_index is None else map_index + 1
        tracker = WearTracker(
            chip,
            EnduranceSettings.from_config(config["endurance"]),
            torch_generator(root_seed, "endurance", training_seed, chip_key),
        )
        description += ", with wear"

    description = f"{method_name} ({description}, seed {training_seed})"
    logger.info("training %s %s on %s with %d images on %s", config["model"]["architecture"], description, dataset.name, len(train_labels), device)
    outcome = train_on_chip(
        chip, train_images, train_labels, test_images, test_labels,
        method=method,
        protocol=config["training"],
        batch_generator=torch_generator(root_seed, "batch_order", training_seed),
        description=description,
        wear=tracker,
        before_epoch=before_epoch,
    )
    faulty_cells, cells = chip.faulty_cell_counts()
    saturated = saturated_weight_fraction(chip)

    metrics = {
        "dataset": dataset.name,
        "model": config["model"]["architecture"],
        "method": method_name,
        "training_faults": training_faults,
        "training_fault_rate": training_fault_rate,
        "training_sa1_share": training_sa1_share,
        "map_index": map_index,
        "map_hash": chip.fault_map_hash,
        "wear": wear,
        "training_seed": int(training_seed),
        "diverged": outcome.diverged,
        "diverged_step": outcome.diverged_step,
        "steps": outcome.steps,
        "epochs_completed": outcome.epochs_completed,
        "final_loss": outcome.final_loss,
        "final_test_accuracy": outcome.epochs[-1]["test_accuracy"] if outcome.epochs else None,
        "max_abs_weight": outcome.max_abs_weight,
        "wall_time_s": round(outcome.wall_time_s, 3),
        "final_faulty_cell_fraction": faulty_cells / cells,
        "saturated_weight_fraction": saturated,
        "worn_cells": tracker.worn_cells if tracker is not None else 0,
        "slice_writes": tracker.total_writes() if tracker is not None else None,
        "device": str(device),
        "storage": storage.to_dict(),
    }
    checkpoint = {
        "format_version": CHECKPOINT_VERSION,
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "model_settings": config["model"],
        "method_settings": method,
        "metadata": metrics,
        "worn_cell_states": worn_cell_states(chip, fault_map) if tracker is not None else {},
    }

    history_columns = ["step", "epoch", "loss", "max_abs_weight", "max_abs_stored_weight", "faulty_cell_fraction"]
    history = pd.DataFrame(outcome.history, columns=history_columns)
    epochs = pd.DataFrame(outcome.epochs, columns=["epoch", "test_accuracy", "loss"])
    for key in HISTORY_KEYS:
        history.insert(len(history.columns), key, metrics[key])

    with atomic_path(checkpoint_path) as temporary:
        torch.save(checkpoint, temporary)
    with atomic_path(history_path) as temporary:
        history.to_csv(temporary, index=False)
    metrics["epochs"] = epochs.to_dict(orient="records")
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")
    return metrics


# Run keys repeated on every history row, so concatenated histories stay tidy.
HISTORY_KEYS = (
    "dataset", "model", "method", "training_faults", "training_fault_rate",
    "training_sa1_share", "map_index", "wear", "training_seed",
)


def saturated_weight_fraction(chip: CrossbarChip) -> float | None:
    """Return the share of crossbar master weights beyond the range R their cells can store.

    Those weights saturate at the full-scale code when written. None when a weight is not finite.
    """
    beyond = 0
    total = 0
    for name, module in crossbar_layers(chip.model):
        weight = module.weight.detach()
        if not torch.isfinite(weight).all():
            return None
        weight_range = chip.storage.range_for(weight)
        beyond += int(torch.count_nonzero(weight.abs() > weight_range))
        total += weight.numel()
    return beyond / total


def worn_cell_states(chip: CrossbarChip, fault_map: FaultMap | None) -> dict[str, dict[str, torch.Tensor]]:
    """Return the cells that wore out during training, per layer, in weight layout.

    Each entry contains the flat indices into the layer's ``(groups, slices, *weight_shape)``
    states and the stuck states, so evaluation on the same chip can restore the wear.
    """
    worn = {}
    for name in chip.layer_names:
        final = chip.layer_states(name).cpu()
        if fault_map is None:
            initial = torch.zeros_like(final)
        else:
            initial = torch.from_numpy(states_to_weight_layout(fault_map.states[name], tuple(final.shape[2:])))
        indices = torch.nonzero((final != initial).reshape(-1)).reshape(-1)
        worn[name] = {"indices": indices, "states": final.reshape(-1)[indices]}
    return worn


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`train_model`."""
    if not Path(path).is_file():
        raise FaultregError(f"checkpoint not found: {path}; train it first with 'faultreg train' or 'snakemake train'")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several unrelated types for a damaged file
        raise FaultregError(f"checkpoint {path} is unreadable ({error}); delete it and train again") from error
    if checkpoint.get("format_version") != CHECKPOINT_VERSION:
        raise FaultregError(f"checkpoint {path} has format version {checkpoint.get('format_version')}, expected {CHECKPOINT_VERSION}; train it again")
    return checkpoint


INFERENCE_COLUMNS = [
    "dataset", "model", "method", "training_faults", "training_fault_rate", "training_sa1_share",
    "training_map_index", "wear", "training_seed", "fault_rate", "sa1_share", "fault_slices",
    "fault_layers", "map_index", "map_hash", "accuracy", "nonfinite_fraction", "diverged", "n_test",
    "weight_bits", "bits_per_cell", "encoding", "range_mode", "clip_value",
]


def _restore_wear(chip: CrossbarChip, worn: dict[str, dict[str, torch.Tensor]]) -> None:
    """Add the cells a model wore out in training to the chip it was trained on."""
    for name, cells in worn.items():
        if cells["indices"].numel() == 0:
            continue
        states = chip.layer_states(name).clone()
        states.view(-1)[cells["indices"].to(states.device)] = cells["states"].to(states.device)
        chip.set_layer_states(name, states)


def _restriction_label(values: tuple[Any, ...] | None) -> str:
    """Return 'all' for an unrestricted map, else the targeted slice positions or layers joined by '+'."""
    return "all" if values is None else "+".join(str(value) for value in values)


def _load_evaluation_chip(checkpoint_path: Path, dataset: Dataset, device: torch.device) -> tuple[dict[str, Any], CrossbarChip]:
    """Return a checkpoint and a chip carrying its model, checking that the data sets agree."""
    checkpoint = load_checkpoint(checkpoint_path)
    metadata = checkpoint["metadata"]
    if dataset.name != metadata["dataset"]:
        raise ConfigError(f"checkpoint {checkpoint_path} was trained on {metadata['dataset']} but the config selects {dataset.name}")
    model = build_model(checkpoint["model_settings"], dropout=float(checkpoint["method_settings"]["dropout"]))
    model.load_state_dict(checkpoint["state_dict"])
    model.to(device)
    return checkpoint, CrossbarChip(model, StorageSettings.from_dict(metadata["storage"]))


def _inference_row(checkpoint: dict[str, Any], chip: CrossbarChip, fault_map: FaultMap, accuracy: float, nonfinite: float, n_test: int) -> dict[str, Any]:
    """Return the tidy row of one model evaluated on one map."""
    metadata = checkpoint["metadata"]
    storage = chip.storage
    spec = fault_map.spec
    return {
        "dataset": metadata["dataset"],
        "model": metadata["model"],
        "method": metadata["method"],
        "training_faults": metadata["training_faults"],
        "training_fault_rate": metadata["training_fault_rate"],
        "training_sa1_share": metadata.get("training_sa1_share"),
        "training_map_index": metadata["map_index"],
        "wear": bool(metadata.get("wear", False)),
        "training_seed": metadata["training_seed"],
        "fault_rate": spec.fault_rate,
        "sa1_share": spec.sa1_share,
        "fault_slices": _restriction_label(spec.slice_positions),
        "fault_layers": _restriction_label(spec.target_layers),
        "map_index": spec.map_index,
        "map_hash": chip.fault_map_hash,
        "accuracy": accuracy,
        "nonfinite_fraction": nonfinite,
        "diverged": bool(metadata["diverged"]),
        "n_test": n_test,
        "weight_bits": storage.cell_format.weight_bits,
        "bits_per_cell": storage.cell_format.bits_per_cell,
        "encoding": storage.cell_format.encoding,
        "range_mode": storage.range_mode,
        "clip_value": checkpoint["method_settings"].get("clip_value"),
    }


def inject_faults(config: dict[str, Any], checkpoint_paths: list[Path], fault_map_paths: list[Path], output: Path) -> pd.DataFrame:
    """Evaluate trained models on fault maps and write one tidy row per (model, map) to ``output``.

    A model trained fault-free is evaluated on every given map. A model trained on a faulty chip
    is evaluated only on the given map of that chip (same SHA-256), with the cells it wore out in
    training restored. That map must be among the given ones. Each map file is read once, and a
    repair that does not depend on the weights is applied once per map for all fault-free models.
    Rows come in the order of the checkpoints, then of the maps.
    """
    if not fault_map_paths:
        raise ConfigError("no fault maps given; pass at least one --fault-map")
    if not checkpoint_paths:
        raise ConfigError("no checkpoint given; pass at least one --checkpoint")
    _configure_threads(config["training"])
    device = resolve_device(config["training"]["device"])

    dataset = load_dataset(config["dataset"], int(config["seed"]))
    test_images = torch.from_numpy(dataset.test_images).to(device)
    test_labels = torch.from_numpy(dataset.test_labels).to(device)
    n_test = int(test_labels.shape[0])
    batch_size = config["evaluation"]["batch_size"]
    fault_maps = {Path(path): load_fault_map(path) for path in fault_map_paths}
    paths_by_hash = {fault_map.sha256(): path for path, fault_map in fault_maps.items()}
    rows: dict[int, list[dict[str, Any]]] = {index: [] for index in range(len(checkpoint_paths))}

    # Chip-trained models meet one map each, so they are loaded, evaluated and dropped in turn.
    # Fault-free models (one per seed) stay loaded while the loop below walks the maps.
    fault_free = []
    for index, checkpoint_path in enumerate(tqdm(checkpoint_paths, desc="models", unit="model", mininterval=5.0, leave=False)):
        checkpoint, chip = _load_evaluation_chip(checkpoint_path, dataset, device)
        map_hash = checkpoint["metadata"]["map_hash"]
        if map_hash is None:
            fault_free.append((index, checkpoint, chip))
            continue
        if map_hash not in paths_by_hash:
            raise ConfigError(
                f"model {checkpoint_path} was trained on the chip with hash {map_hash[:12]}, "
                "which is none of the given maps; pass the map it was trained on"
            )
        fault_map = fault_maps[paths_by_hash[map_hash]]
        chip.install_fault_map(fault_map, RepairSettings.from_method(checkpoint["method_settings"]))
        _restore_wear(chip, checkpoint.get("worn_cell_states", {}))
        accuracy, nonfinite = evaluate(chip, test_images, test_labels, batch_size)
        rows[index].append(_inference_row(checkpoint, chip, fault_map, accuracy, nonfinite, n_test))
        logger.info("evaluated %s on its own chip: accuracy %.4f", checkpoint_path, accuracy)

    for path, fault_map in tqdm(fault_maps.items(), desc="maps", unit="map", mininterval=5.0, leave=False):
        repaired: dict[RepairSettings, FaultMap] = {}
        for index, checkpoint, chip in fault_free:
            repair = RepairSettings.from_method(checkpoint["method_settings"])
            if repair is not None and not repair.needs_weights:
                if repair not in repaired:
                    repaired[repair] = effective_map(fault_map, repair)
                chip.install_fault_map(fault_map, repair, repaired=repaired[repair])
            else:
                chip.install_fault_map(fault_map, repair)
            accuracy, nonfinite = evaluate(chip, test_images, test_labels, batch_size)
            rows[index].append(_inference_row(checkpoint, chip, fault_map, accuracy, nonfinite, n_test))
            logger.debug("%s on map %s: accuracy %.4f", checkpoint["metadata"]["method"], path, accuracy)
    logger.info("evaluated %d fault-free models on %d maps", len(fault_free), len(fault_maps))

    table = pd.DataFrame([row for index in range(len(checkpoint_paths)) for row in rows[index]], columns=INFERENCE_COLUMNS)
    with atomic_path(output) as temporary:
        table.to_csv(temporary, index=False)
    return table
