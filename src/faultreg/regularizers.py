"""Training-time perturbations of the weights a chip reads: DropConnect and fault injection.

Both act only while the chip is in training mode, on the weights as they are read back from the
cells, and draw every mask from their own seeded ``torch.Generator``. At inference the chip reads
its weights unperturbed.

* :class:`DropConnect` (Wan et al., "Regularization of neural networks using DropConnect",
  ICML 2013) zeroes each weight with probability ``p`` and scales the kept ones by
  ``1 / (1 - p)``, with one mask per mini-batch. Wan et al. draw a mask per example and use a
  Gaussian moment-matching rule at inference. The per-batch mask with inverted scaling is the
  common cheaper form, and it leaves inference unchanged.
* :class:`FaultInjection` forces a fresh random set of cells stuck at every mini-batch, on top
  of the chip's real faults: each cell is stuck with probability ``rate``, SA1 with probability
  ``sa1_share`` and SA0 otherwise. It is DropConnect at the level of cells: the network learns
  not to rely on any one cell, with the damage model of the hardware it will meet.
"""

from __future__ import annotations

import math

import torch

from faultreg.crossbar import CellFormat


class DropConnect:
    """Drop each crossbar weight with probability ``probability`` (no unit) per mini-batch."""

    def __init__(self, probability: float, generator: torch.Generator) -> None:
        if not 0.0 <= probability < 1.0:
            raise ValueError(f"DropConnect probability {probability} is outside [0, 1)")
        self.probability = probability
        self.generator = generator

    def keep_scale(self, weight: torch.Tensor) -> torch.Tensor:
        """Return the mask times ``1 / (1 - p)``: 0 for a dropped weight, ``1 / (1 - p)`` for a kept one."""
        keep = 1.0 - self.probability
        mask = torch.rand(weight.shape, generator=self.generator, device=weight.device, dtype=weight.dtype) < keep
        return mask.to(weight.dtype) / keep


def bernoulli_positions(total: int, probability: float, generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """Return the sorted distinct indices in ``range(total)`` hit by independent Bernoulli(p) trials.

    Draws the gaps between hits instead of one number per index: a gap is geometric on
    {1, 2, ...}, ``floor(ln U / ln(1 - p)) + 1`` for U uniform on (0, 1]. The cost grows with the
    number of hits, ``total * p``, not with ``total``.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability {probability} is outside [0, 1]")
    if total <= 0 or probability == 0.0:
        return torch.zeros(0, dtype=torch.int64, device=device)
    if probability == 1.0:
        return torch.arange(total, device=device)

    expected = total * probability
    batch = int(expected + 6.0 * math.sqrt(expected) + 16)
    log_miss = math.log1p(-probability)
    pieces = []
    last = -1.0
    while True:
        uniform = 1.0 - torch.rand(batch, generator=generator, device=device, dtype=torch.float64)
        gaps = torch.floor(torch.log(uniform) / log_miss) + 1.0
        positions = last + torch.cumsum(gaps, dim=0)
        pieces.append(positions[positions < total])
        if positions[-1] >= total:
            break
        last = float(positions[-1])
    return torch.cat(pieces).to(torch.int64)


class FaultInjection:
    """Force random cells stuck at each mini-batch, on top of the chip's fabrication faults.

    ``rate`` is the probability (no unit) that a cell is injected; ``sa1_share`` the probability
    that an injected cell is SA1. A cell that is really stuck keeps its real state.
    """

    def __init__(self, rate: float, sa1_share: float, cell_format: CellFormat, generator: torch.Generator) -> None:
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"fault injection rate {rate} is outside [0, 1)")
        if not 0.0 <= sa1_share <= 1.0:
            raise ValueError(f"fault injection SA1 share {sa1_share} is outside [0, 1]")
        self.rate = rate
        self.sa1_share = sa1_share
        self.cell_format = cell_format
        self.generator = generator

    def draw_masks(self, weight_shape: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Return fresh AND and OR masks, shape ``(groups, *weight_shape)``, of injected cells only."""
        cell_format = self.cell_format
        weights = math.prod(weight_shape)
        size = cell_format.groups * weights
        # Cells are indexed in the (groups, slices, weights) layout of the chip's cell states.
        cells = bernoulli_positions(size * cell_format.slices, self.rate, self.generator, device)
        is_sa1 = torch.rand(cells.shape, generator=self.generator, device=device, dtype=torch.float64) < self.sa1_share

        group = cells // (cell_format.slices * weights)
        position = (cells // weights) % cell_format.slices
        weight_index = cells % weights
        target = group * weights + weight_index + size * is_sa1.to(torch.int64)
        bits = torch.bitwise_left_shift(
            torch.full_like(position, cell_format.slice_max), position * cell_format.bits_per_cell
        ).to(torch.int32)
        # The cells are distinct and own distinct bits of their code, so summing equals OR-ing.
        sums = torch.zeros(2 * size, dtype=torch.int32, device=device).index_add_(0, target, bits)
        shape = (cell_format.groups, *weight_shape)
        return (cell_format.max_code - sums[:size]).reshape(shape), sums[size:].reshape(shape)

    def combine(
        self,
        weight_shape: tuple[int, ...],
        device: torch.device,
        and_mask: torch.Tensor | None,
        or_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the chip's masks with this mini-batch's injected cells added.

        Real SA0 bits stay cleared (the injected OR bits are masked by the real AND mask) and
        real SA1 bits stay set (the OR mask is applied after the AND mask).
        """
        injected_and, injected_or = self.draw_masks(weight_shape, device)
        if and_mask is None or or_mask is None:
            return injected_and, injected_or
        return torch.bitwise_and(and_mask, injected_and), torch.bitwise_or(or_mask, torch.bitwise_and(injected_or, and_mask))
