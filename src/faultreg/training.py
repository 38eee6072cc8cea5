"""On-chip training with one protocol for every method.

Each step runs the forward pass on the chip's stored (possibly faulty) weights, lets the
gradient pass straight through to the master weights, takes an SGD step and then applies the
method's weight clipping. Dropout acts inside the model; DropConnect and fault injection act
on the weights the chip reads (:mod:`faultreg.regularizers`). A non-finite loss or master weight ends the run and marks it as
diverged: divergence is a result to report, not an error.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from faultreg.chip import CrossbarChip
from faultreg.endurance import WearTracker
from faultreg.inference import evaluate
from faultreg.models import crossbar_layers

logger = logging.getLogger(__name__)


@dataclass
class TrainingOutcome:
    """Result of a training run: per-step history, per-epoch accuracy and final state."""

    history: list[dict[str, float]] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)
    diverged: bool = False
    diverged_step: int | None = None
    steps: int = 0
    epochs_completed: int = 0
    final_loss: float | None = None
    max_abs_weight: float | None = None
    wall_time_s: float = 0.0


def max_abs_weight(chip: CrossbarChip, stored: bool = False) -> float:
    """Return the largest |w| over all crossbar weights, master or as stored on the chip."""
    if stored:
        weights = list(chip.stored_weights().values())
    else:
        weights = [module.weight.detach() for _, module in crossbar_layers(chip.model)]
    return max(float(weight.abs().max()) for weight in weights)


def faulty_cell_fraction(chip: CrossbarChip) -> float:
    """Return the share of the chip's weight cells that are stuck, fabrication and wear together."""
    faulty, cells = chip.faulty_cell_counts()
    return faulty / cells


def clip_weights(chip: CrossbarChip, clip_value: float) -> None:
    """Clamp every crossbar master weight to [-clip_value, clip_value] in place."""
    with torch.no_grad():
        for _, module in crossbar_layers(chip.model):
            module.weight.clamp_(-clip_value, clip_value)


class MomentumSGD:
    """Stochastic gradient descent with heavy-ball momentum and L2 weight decay.

    The update is the one of ``torch.optim.SGD`` without dampening or Nesterov momentum:
    ``g = grad + weight_decay * w``, ``v = momentum * v + g``, ``w = w - learning_rate * v``,
    with ``v`` starting at zero. It is written out because the torch optimizer imports its
    compiler stack on first use, which adds more than a second to every short training job.
    """

    def __init__(self, parameters: list[torch.nn.Parameter], learning_rate: float, momentum: float, weight_decay: float = 0.0) -> None:
        self.parameters = list(parameters)
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.velocities = [torch.zeros_like(parameter) for parameter in self.parameters]

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for parameter, velocity in zip(self.parameters, self.velocities):
            if parameter.grad is None:
                continue
            gradient = parameter.grad
            if self.weight_decay:
                gradient = gradient.add(parameter, alpha=self.weight_decay)
            velocity.mul_(self.momentum).add_(gradient)
            parameter.sub_(velocity, alpha=self.learning_rate)


def train_on_chip(
    chip: CrossbarChip,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    method: dict[str, Any],
    protocol: dict[str, Any],
    batch_generator: torch.Generator,
    description: str = "training",
    wear: WearTracker | None = None,
    before_epoch: Callable[[int], None] | None = None,
) -> TrainingOutcome:
    """Train ``chip.model`` in place and return its history.

    ``method`` is one entry of the ``methods`` config section. Its clip_value and weight_decay
    act here, while its dropout is already part of the model. ``protocol`` is the ``training``
    section (epochs, batch_size, learning_rate, momentum, log_every). ``batch_generator`` is a
    CPU generator for the mini-batch order. ``wear``, if given, counts the writes of every step
    and turns worn-out cells stuck. ``before_epoch``, if given, is called with the epoch index
    before each epoch (row remapping redoes its assignment there). Tensors must already be on
    the model's device.
    """
    outcome = TrainingOutcome()
    started = time.perf_counter()
    clip_value = method.get("clip_value")
    optimizer = MomentumSGD(
        list(chip.model.parameters()),
        learning_rate=protocol["learning_rate"],
        momentum=protocol["momentum"],
        weight_decay=method.get("weight_decay", 0.0),
    )
    if clip_value is not None:
        clip_weights(chip, clip_value)

    num_images = train_images.shape[0]
    batch_size = protocol["batch_size"]
    steps_per_epoch = math.ceil(num_images / batch_size)
    progress = tqdm(total=protocol["epochs"] * steps_per_epoch, desc=description, unit="step", mininterval=5.0, leave=False)

    for epoch in range(protocol["epochs"]):
        if before_epoch is not None:
            before_epoch(epoch)
        chip.train()
        order = torch.randperm(num_images, generator=batch_generator).to(train_images.device)

        for start in range(0, num_images, batch_size):
            batch = order[start : start + batch_size]

            logits = chip(train_images[batch])
            loss = F.cross_entropy(logits, train_labels[batch])
            loss_value = loss.detach().item()
            if not math.isfinite(loss_value):
                _mark_diverged(outcome, outcome.steps + 1, f"loss is {loss_value}")
                break

            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            if clip_value is not None:
                clip_weights(chip, clip_value)

            if wear is not None:
                wear.record_write()

            outcome.steps += 1
            largest = max_abs_weight(chip)
            if not math.isfinite(largest):
                _mark_diverged(outcome, outcome.steps, f"a master weight became {largest}")
                break

            outcome.final_loss = loss_value
            if outcome.steps % protocol["log_every"] == 0 or outcome.steps == 1:
                outcome.history.append(
                    {
                        "step": outcome.steps,
                        "epoch": epoch + 1,
                        "loss": loss_value,
                        "max_abs_weight": largest,
                        "max_abs_stored_weight": max_abs_weight(chip, stored=True),
                        "faulty_cell_fraction": faulty_cell_fraction(chip),
                    }
                )
            progress.update(1)

        if outcome.diverged:
            break

        accuracy, _ = evaluate(chip, test_images, test_labels, batch_size=1000)
        outcome.epochs.append({"epoch": epoch + 1, "test_accuracy": accuracy, "loss": outcome.final_loss})
        outcome.epochs_completed = epoch + 1
        logger.info("%s: epoch %d, loss %.4f, test accuracy %.4f", description, epoch + 1, outcome.final_loss, accuracy)

    progress.close()
    largest = max_abs_weight(chip)
    outcome.max_abs_weight = largest if math.isfinite(largest) else None
    outcome.wall_time_s = time.perf_counter() - started
    return outcome


def _mark_diverged(outcome: TrainingOutcome, step: int, reason: str) -> None:
    outcome.diverged = True
    outcome.diverged_step = step
    outcome.final_loss = None
    logger.warning("training diverged at step %d: %s", outcome.diverged_step, reason)
