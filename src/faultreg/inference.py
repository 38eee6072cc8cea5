"""Inference on a chip: test accuracy with the weights as the cells read them."""

from __future__ import annotations

import torch

from faultreg.chip import CrossbarChip


def evaluate(chip: CrossbarChip, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """Return (accuracy, non-finite fraction) of ``chip`` on the given test set.

    A test image whose logits contain NaN or inf counts as misclassified: such an output has
    no defined class. The second value is the share of those images.
    """
    chip.eval()
    correct = 0
    nonfinite = 0
    with torch.no_grad():
        parameters = chip.stored_weights()
        for start in range(0, images.shape[0], batch_size):
            logits = chip.run(parameters, images[start : start + batch_size])
            batch_labels = labels[start : start + batch_size]
            finite = torch.isfinite(logits).all(dim=1)
            predictions = logits.argmax(dim=1)
            correct += int(((predictions == batch_labels) & finite).sum())
            nonfinite += int((~finite).sum())
    total = images.shape[0]
    return correct / total, nonfinite / total
