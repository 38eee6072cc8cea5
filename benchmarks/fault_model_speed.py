"""Measure the cost of the crossbar fault model against plain PyTorch.

For each model this script times four things. Drawing a fault map. Applying it, which builds
the masks and reads every weight back through the stuck cells once. One clean test-set
evaluation of the plain model. One SGD step of the plain model and one on the faulty chip. It
prints a Markdown table and, with --output, writes the numbers as JSON.

Targets of the fault model: applying a map costs at most 5 % of one clean test-set evaluation,
and a faulty training step at most 1.3 times a clean one. Maps are applied as the workflow
applies them: loaded from a file that lists only the faulty cells.

Run from the repository root, e.g.::

    python benchmarks/fault_model_speed.py --models lenet5 resnet18 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from faultreg.chip import CrossbarChip, StorageSettings
from faultreg.crossbar import CellFormat
from faultreg.datasets import load_dataset
from faultreg.faults import FaultMapSpec, generate_fault_map, load_fault_map, save_fault_map
from faultreg.models import build_model, crossbar_layers, initialize_weights, layer_geometries


def median_seconds(action: Callable[[], object], repeats: int, synchronize: Callable[[], None]) -> float:
    """Return the median wall time of ``action`` over ``repeats`` runs, after one warm-up run."""
    action()
    synchronize()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(architecture: str, test_images: torch.Tensor, train_images: torch.Tensor, train_labels: torch.Tensor, device: torch.device, repeats: int) -> dict[str, float]:
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    model = build_model({"architecture": architecture, "hidden_units": [256, 128]})
    initialize_weights(model, torch.Generator().manual_seed(0))
    model.to(device)
    weights = sum(module.weight.numel() for _, module in crossbar_layers(model))

    storage = StorageSettings(CellFormat(16, 2), range_mode="fixed", weight_range=16.0)
    spec = FaultMapSpec(0.1, 0.8378, 0, 0, 16, 2, tuple(layer_geometries(model)))
    build_map = median_seconds(lambda: generate_fault_map(spec), max(1, repeats // 2), synchronize)
    # The workflow loads maps from files, which list only the faulty cells.
    with tempfile.TemporaryDirectory() as folder:
        save_fault_map(generate_fault_map(spec), Path(folder) / "map.npz")
        fault_map = load_fault_map(Path(folder) / "map.npz")

    chip = CrossbarChip(model, storage)

    def apply_map() -> None:
        chip.install_fault_map(fault_map)
        chip.stored_weights()

    apply = median_seconds(apply_map, repeats, synchronize)

    model.eval()

    def clean_evaluation() -> None:
        with torch.no_grad():
            for start in range(0, test_images.shape[0], 1000):
                model(test_images[start : start + 1000])

    evaluation = median_seconds(clean_evaluation, repeats, synchronize)

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step(forward: Callable[[torch.Tensor], torch.Tensor]) -> None:
        loss = F.cross_entropy(forward(train_images), train_labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    clean_step = median_seconds(lambda: step(model), repeats, synchronize)
    chip.train()
    faulty_step = median_seconds(lambda: step(chip), repeats, synchronize)

    return {
        "crossbar_weights": weights,
        "cells": fault_map.counts()["cells"],
        "build_map_s": build_map,
        "apply_map_s": apply,
        "clean_evaluation_s": evaluation,
        "apply_over_evaluation": apply / evaluation,
        "clean_step_s": clean_step,
        "faulty_step_s": faulty_step,
        "faulty_over_clean_step": faulty_step / clean_step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "resnet18"], help="architectures to time")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch in images")
    parser.add_argument("--test-images", type=int, default=1000, help="test images per clean evaluation")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median reported)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="device to run on")
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the numbers")
    arguments = parser.parse_args()

    torch.set_num_threads(arguments.threads)
    if arguments.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(arguments.device)
    dataset = load_dataset({"name": "mnist_subset", "test_fraction": 0.2, "max_train_images": None, "max_test_images": None}, 0)
    test_images = torch.from_numpy(dataset.test_images[: arguments.test_images]).to(device)
    train_images = torch.from_numpy(dataset.train_images[: arguments.batch_size]).to(device)
    train_labels = torch.from_numpy(dataset.train_labels[: arguments.batch_size]).to(device)

    results = {}
    for architecture in arguments.models:
        results[architecture] = measure(architecture, test_images, train_images, train_labels, device, arguments.repeats)

    print(f"device {device}, {arguments.threads} threads, batch {arguments.batch_size}, {test_images.shape[0]} test images, torch {torch.__version__}\n")
    print("| model | weights | build map (s) | apply map (s) | clean eval (s) | apply / eval | clean step (s) | faulty step (s) | faulty / clean step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for architecture, numbers in results.items():
        print(
            f"| {architecture} | {numbers['crossbar_weights']:,} | {numbers['build_map_s']:.3f} | {numbers['apply_map_s']:.4f} | "
            f"{numbers['clean_evaluation_s']:.3f} | {numbers['apply_over_evaluation']:.3f} | {numbers['clean_step_s']:.4f} | "
            f"{numbers['faulty_step_s']:.4f} | {numbers['faulty_over_clean_step']:.2f} |"
        )
    if arguments.output is not None:
        arguments.output.write_text(json.dumps({"device": str(device), "threads": arguments.threads, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
