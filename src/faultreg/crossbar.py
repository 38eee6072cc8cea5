"""How a weight is stored in multi-level ReRAM cells, and what stuck cells do to it.

Storage model (differential pair, ISAAC-style bit slicing):

* A weight ``w`` is written as the unsigned fixed-point code ``Q = round(|w| / step)`` of
  ``weight_bits`` bits, with ``step = R / (2**weight_bits - 1)`` so that the all-ones code
  stands for the range ``R`` (weights beyond ``R`` saturate).
* Two cell groups hold the sign: a positive weight is written to the G+ group and zeros to
  the G- group, a negative weight the other way round. The crossbar subtracts the two column
  currents, so the stored weight is ``(Q+ - Q-) * step``.
* Each code is cut into ``weight_bits / bits_per_cell`` slices of ``bits_per_cell`` bits; slice
  ``j`` (``j = 0`` is the least significant) lives in its own cell and carries
  ``2**(bits_per_cell * j)``. ISAAC stores 16-bit weights in eight 2-bit cells (Shafiee et al.,
  "ISAAC", ISCA 2016).

Stuck-at faults, in conductance terms:

* SA0: the cell is stuck in the high-resistance state (minimum conductance), so its slice reads
  0 whatever was written.
* SA1: the cell is stuck in the low-resistance state (maximum conductance), so its slice reads
  ``2**bits_per_cell - 1``.

With differential pairs an SA1 in the G- group of a positive weight pulls it negative, which is
why both groups carry fault maps. Faults act on the integer codes through two masks per weight
and group, built once per fault map: ``faulty = (code & and_mask) | or_mask``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Cell states in a fault map.
HEALTHY = 0
SA0 = 1
SA1 = 2

# Index of each cell group along the first axis of codes and masks.
POSITIVE_GROUP = 0
NEGATIVE_GROUP = 1
GROUPS = 2


@dataclass(frozen=True)
class CellFormat:
    """Fixed-point code of a weight and its split over multi-level cells."""

    weight_bits: int = 16
    bits_per_cell: int = 2

    def __post_init__(self) -> None:
        if self.bits_per_cell < 1 or self.weight_bits < 1:
            raise ValueError(f"weight_bits and bits_per_cell must be positive, got {self.weight_bits} and {self.bits_per_cell}")
        if self.weight_bits % self.bits_per_cell:
            raise ValueError(
                f"weight_bits {self.weight_bits} is not a multiple of bits_per_cell {self.bits_per_cell}; "
                "each cell must hold a whole slice"
            )
        if self.weight_bits > 30:
            raise ValueError(f"weight_bits {self.weight_bits} exceeds 30, the widest code the int32 masks hold")

    @property
    def slices(self) -> int:
        """Cells per weight in one group."""
        return self.weight_bits // self.bits_per_cell

    @property
    def max_code(self) -> int:
        """The all-ones code, which stands for the range R."""
        return (1 << self.weight_bits) - 1

    @property
    def slice_max(self) -> int:
        """Value of a slice whose cell reads all ones (an SA1 cell)."""
        return (1 << self.bits_per_cell) - 1

    def slice_mask(self, position: int) -> int:
        """Bits of the code held by the cell at slice ``position`` (0 is least significant)."""
        if not 0 <= position < self.slices:
            raise ValueError(f"slice position {position} is outside 0..{self.slices - 1}")
        return self.slice_max << (self.bits_per_cell * position)

    def step(self, weight_range: float | torch.Tensor) -> float | torch.Tensor:
        """Weight value of one code unit for range ``weight_range``."""
        return weight_range / self.max_code


def encode(weight: torch.Tensor, cell_format: CellFormat, weight_range: float | torch.Tensor) -> torch.Tensor:
    """Return the int32 codes of ``weight`` as a tensor of shape ``(2, *weight.shape)``.

    Index 0 along the first axis is the G+ group and index 1 the G- group. A NaN weight cannot be
    programmed and is written as code 0; an infinite one saturates at the full-scale code.
    """
    step = cell_format.step(weight_range)
    scaled = torch.nan_to_num(weight.detach().abs() / step, nan=0.0, posinf=float(cell_format.max_code))
    magnitude = torch.round(scaled).clamp_(0, cell_format.max_code).to(torch.int32)
    zero = torch.zeros_like(magnitude)
    positive = torch.where(weight > 0, magnitude, zero)
    negative = torch.where(weight < 0, magnitude, zero)
    return torch.stack((positive, negative))


def decode(codes: torch.Tensor, cell_format: CellFormat, weight_range: float | torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Return the weight that codes of shape ``(2, ...)`` stand for: ``(Q+ - Q-) * step``."""
    difference = (codes[POSITIVE_GROUP] - codes[NEGATIVE_GROUP]).to(dtype)
    return difference * cell_format.step(weight_range)


def apply_stuck_masks(codes: torch.Tensor, and_mask: torch.Tensor, or_mask: torch.Tensor) -> torch.Tensor:
    """Return the codes as the faulty cells read them: SA0 bits cleared, SA1 bits set."""
    return torch.bitwise_or(torch.bitwise_and(codes, and_mask), or_mask)


def slice_values(code: int, cell_format: CellFormat) -> list[int]:
    """Return the slice values of one code, least significant slice first."""
    return [(code >> (cell_format.bits_per_cell * position)) & cell_format.slice_max for position in range(cell_format.slices)]


def masks_from_states(states: np.ndarray, cell_format: CellFormat) -> tuple[np.ndarray, np.ndarray]:
    """Build the AND and OR masks of a layer from its cell states.

    ``states`` has shape ``(rows, columns, 2, slices)`` with values HEALTHY, SA0 or SA1: the
    layer's weight matrix in crossbar layout (fan-in rows, one column block per output), then
    the cell group, then the slice position. Returns two int32 arrays of shape
    ``(2, rows, columns)``: the AND mask has zeros on the bits of SA0 cells and the OR mask
    has ones on the bits of SA1 cells.
    """
    expected_tail = (GROUPS, cell_format.slices)
    if states.ndim != 4 or states.shape[2:] != expected_tail:
        raise ValueError(f"cell states must have shape (rows, columns, {GROUPS}, {cell_format.slices}), got {states.shape}")

    full = np.int64(cell_format.max_code)
    clear_bits = np.zeros(states.shape[:3], dtype=np.int64)
    set_bits = np.zeros(states.shape[:3], dtype=np.int64)
    for position in range(cell_format.slices):
        mask = np.int64(cell_format.slice_mask(position))
        cell_states = states[..., position]
        clear_bits |= np.where(cell_states == SA0, mask, 0)
        set_bits |= np.where(cell_states == SA1, mask, 0)

    and_mask = (full & ~clear_bits).astype(np.int32)
    or_mask = set_bits.astype(np.int32)
    return np.moveaxis(and_mask, 2, 0), np.moveaxis(or_mask, 2, 0)


def matrix_shape(weight_shape: tuple[int, ...]) -> tuple[int, int]:
    """Return (rows, columns) of a weight in crossbar layout.

    A Linear weight ``(out, in)`` puts inputs on rows and outputs on columns. A Conv2d weight
    ``(out, in, kh, kw)`` unrolls ``in * kh * kw`` onto rows, as in im2col.
    """
    out_features = weight_shape[0]
    fan_in = int(np.prod(weight_shape[1:]))
    return fan_in, out_features


def masks_to_weight_layout(mask: np.ndarray, weight_shape: tuple[int, ...]) -> np.ndarray:
    """Reorder a ``(2, rows, columns)`` mask into ``(2, *weight_shape)``, the weight tensor's layout."""
    out_features = weight_shape[0]
    return np.ascontiguousarray(np.swapaxes(mask, 1, 2)).reshape((GROUPS, out_features, *weight_shape[1:]))


class _StraightThrough(torch.autograd.Function):
    """Forward the stored weight; pass the gradient unchanged to the master weight."""

    @staticmethod
    def forward(ctx, master: torch.Tensor, stored: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return stored

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad_output, None


def straight_through(master: torch.Tensor, stored: torch.Tensor) -> torch.Tensor:
    """Return ``stored`` in the forward pass with the gradient of identity to ``master``."""
    return _StraightThrough.apply(master, stored)
