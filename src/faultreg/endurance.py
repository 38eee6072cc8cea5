"""Write endurance: cells that wear out and become stuck during on-chip training.

Every cell gets a lifetime in writes drawn from a log-normal distribution with the configured
mean and coefficient of variation. After each optimizer step the new weights are written to
the chip. A cell counts one write when the value of its own slice changes, because writing the
same slice value again needs no programming pulse. A healthy cell whose write count exceeds its
lifetime becomes stuck: SA1 with probability ``sa1_share``, else SA0. The initial programming of
the chip is not counted.

Real ReRAM endures about 1e6 to 1e12 writes, far more than a short simulated run makes. So
``mean_writes`` is a scaled-down lifetime, chosen so that the share of cells that wear out by
the end of training matches the scenario under study; ``faultreg calibrate-endurance``
computes it for a target share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from faultreg.chip import CrossbarChip
from faultreg.crossbar import HEALTHY, SA0, SA1, encode
from faultreg.models import crossbar_layers


@dataclass(frozen=True)
class EnduranceSettings:
    """Log-normal cell lifetime: mean and coefficient of variation in writes."""

    mean_writes: float
    coefficient_of_variation: float
    sa1_share: float

    def __post_init__(self) -> None:
        if self.mean_writes <= 0:
            raise ValueError(f"mean_writes {self.mean_writes} must be positive")
        if self.coefficient_of_variation < 0:
            raise ValueError(f"coefficient of variation {self.coefficient_of_variation} must not be negative")
        if not 0.0 <= self.sa1_share <= 1.0:
            raise ValueError(f"sa1_share {self.sa1_share} is outside [0, 1]")

    def log_normal_parameters(self) -> tuple[float, float]:
        """Return (mu, sigma) of ln(lifetime) that give the configured mean and CV."""
        sigma_squared = math.log1p(self.coefficient_of_variation**2)
        return math.log(self.mean_writes) - sigma_squared / 2, math.sqrt(sigma_squared)

    @classmethod
    def from_config(cls, endurance: dict[str, Any]) -> "EnduranceSettings":
        """Build settings from the ``endurance`` config section."""
        return cls(float(endurance["mean_writes"]), float(endurance["coefficient_of_variation"]), float(endurance["sa1_share"]))


INT32_MAX = torch.iinfo(torch.int32).max


class WearTracker:
    """Count slice writes per cell of a chip and turn worn-out cells stuck.

    Lifetimes and stuck types are drawn on the CPU from ``generator`` so that the same seed
    gives the same wear on every device.
    """

    def __init__(self, chip: CrossbarChip, settings: EnduranceSettings, generator: torch.Generator) -> None:
        self.chip = chip
        self.settings = settings
        self.generator = generator
        self.cell_format = chip.storage.cell_format
        mu, sigma = settings.log_normal_parameters()

        self._slice_shifts = torch.arange(self.cell_format.slices, dtype=torch.int32) * self.cell_format.bits_per_cell
        self.lifetimes: dict[str, torch.Tensor] = {}
        self._thresholds: dict[str, torch.Tensor] = {}
        self.writes: dict[str, torch.Tensor] = {}
        self.last_codes: dict[str, torch.Tensor] = {}
        self.worn_cells = 0
        for name, module in crossbar_layers(chip.model):
            states = chip.layer_states(name)
            normal = torch.randn(states.shape, generator=generator, dtype=torch.float64)
            self.lifetimes[name] = torch.exp(mu + sigma * normal).to(torch.float32).to(states.device)
            self.writes[name] = torch.zeros(states.shape, dtype=torch.int32, device=states.device)
            self.last_codes[name] = self._codes(module.weight)

    def _wear_thresholds(self, name: str) -> torch.Tensor:
        """Return the write count at which each cell of layer ``name`` wears out.

        A cell wears out at its first write count above its lifetime L, floor(L) + 1. Cells that
        are already stuck never count, so they get the largest int32. Built at the first write,
        so lifetimes set after construction still apply.
        """
        threshold = torch.floor(self.lifetimes[name].double()).add(1).clamp(max=INT32_MAX).to(torch.int32)
        states = self.chip.layer_states(name)
        return torch.where(states == HEALTHY, threshold, torch.full_like(threshold, INT32_MAX))

    def _codes(self, weight: torch.Tensor) -> torch.Tensor:
        return encode(weight, self.cell_format, self.chip.storage.range_for(weight))

    def record_write(self) -> int:
        """Write the current master weights, count slice changes and wear cells out.

        Returns the number of cells that became stuck in this write.
        """
        new_faults = 0
        with torch.no_grad():
            for name, module in crossbar_layers(self.chip.model):
                codes = self._codes(module.weight)
                changed_bits = torch.bitwise_xor(codes, self.last_codes[name])
                self.last_codes[name] = codes
                # Slice j of every cell changed when any of its bits did: shape (groups, slices, ...).
                shifts = self._slice_shifts.to(codes.device).reshape((1, -1) + (1,) * (codes.dim() - 1))
                slice_changed = (torch.bitwise_right_shift(changed_bits.unsqueeze(1), shifts) & self.cell_format.slice_max) != 0
                writes = self.writes[name]
                writes += slice_changed.to(torch.int32)

                if name not in self._thresholds:
                    self._thresholds[name] = self._wear_thresholds(name)
                thresholds = self._thresholds[name]
                worn = torch.nonzero((slice_changed & (writes >= thresholds)).view(-1)).view(-1)
                count = worn.numel()
                if count:
                    type_draw = torch.rand(count, generator=self.generator).to(writes.device)
                    stuck = torch.where(type_draw < self.settings.sa1_share, SA1, SA0).to(torch.int8)
                    self.chip.add_stuck_cells(name, worn, stuck)
                    thresholds.view(-1)[worn] = INT32_MAX
                    new_faults += count
        self.worn_cells += new_faults
        return new_faults

    def total_writes(self) -> int:
        """Return the slice writes counted so far over all cells."""
        return sum(int(writes.sum()) for writes in self.writes.values())
