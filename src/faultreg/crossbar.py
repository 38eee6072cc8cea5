"""Storage of weights in multi-level ReRAM cells, and the effect of stuck cells on them.

A weight ``w`` becomes an unsigned fixed-point code of ``weight_bits`` bits. The code is cut into
``weight_bits / bits_per_cell`` slices; slice ``j`` (``j = 0`` is the least significant) lives
in its own cell and carries ``2**(bits_per_cell * j)``. ISAAC stores 16-bit weights in eight
2-bit cells (Shafiee et al., "ISAAC", ISCA 2016). The range ``R`` is the weight value of the
all-ones code; weights beyond it saturate.

Three sign encodings are modeled (``CellFormat.encoding``):

* ``differential``: two cell groups, G+ and G-. A positive weight is written to G+ with zeros
  in G-, a negative one the other way round, ``Q = round(|w| / step)`` with
  ``step = R / (2**weight_bits - 1)``. The crossbar subtracts the two column currents, so the
  weight read back is ``(Q+ - Q-) * step``.
* ``offset``: one cell group stores the offset-binary code ``Q = round(w / step) + Z`` with
  ``Z = 2**(weight_bits - 1)`` and ``step = R / Z``, and the periphery subtracts the offset
  (for example with a reference column), so the weight read back is ``(Q - Z) * step``. Codes
  span [-R, R - step] and zero is exact. A zero weight sits at mid-scale, so the top cell of
  every weight is programmed.
* ``sign_magnitude``: one cell group stores ``Q = round(|w| / step)`` as in the differential
  case, and the sign bit is kept in the digital periphery, where it is not faulty.

Stuck-at faults, in conductance terms, are the same under every encoding:

* SA0: the cell is stuck in the high-resistance state (minimum conductance), so its slice reads
  0 whatever was written. Differential and sign-magnitude: the weight loses that slice's
  magnitude in its group. Offset: the weight moves toward -R.
* SA1: the cell is stuck in the low-resistance state (maximum conductance), so its slice reads
  ``2**bits_per_cell - 1``. Differential: an SA1 in G- pulls even a positive weight negative.
  Offset: the weight moves toward +R. Sign-magnitude: the magnitude grows with the weight's own
  sign (a zero weight counts as positive).

Faults act on the integer codes through two masks per weight and group, built once per fault
map: ``faulty = (code & and_mask) | or_mask``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

# Cell states in a fault map.
HEALTHY = 0
SA0 = 1
SA1 = 2

# Index of each cell group along the first axis of codes and masks. Offset and sign-magnitude
# encodings have only group 0.
POSITIVE_GROUP = 0
NEGATIVE_GROUP = 1

ENCODINGS = ("differential", "offset", "sign_magnitude")


@dataclass(frozen=True)
class CellFormat:
    """Fixed-point code of a weight and its split over multi-level cells."""

    weight_bits: int = 16
    bits_per_cell: int = 2
    encoding: str = "differential"

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}; use one of {', '.join(ENCODINGS)}")
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
    def groups(self) -> int:
        """Cell groups per weight: 2 for a differential pair, else 1."""
        return 2 if self.encoding == "differential" else 1

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

    @property
    def offset_code(self) -> int:
        """Code of weight zero under the offset encoding, ``2**(weight_bits - 1)``."""
        return 1 << (self.weight_bits - 1)

    def step(self, weight_range: float | torch.Tensor) -> float | torch.Tensor:
        """Weight value of one code unit for range ``weight_range``.

        Magnitude codes (differential, sign-magnitude) spread ``2**weight_bits - 1`` steps over
        [0, R]; offset-binary codes spread ``2**weight_bits`` steps over [-R, R).
        """
        if self.encoding == "offset":
            return weight_range / self.offset_code
        return weight_range / self.max_code


def encode(weight: torch.Tensor, cell_format: CellFormat, weight_range: float | torch.Tensor) -> torch.Tensor:
    """Return the int32 codes of ``weight`` as a tensor of shape ``(groups, *weight.shape)``.

    For the differential pair, index 0 along the first axis is the G+ group and index 1 the G-
    group. A NaN weight cannot be programmed and is written as weight 0; an infinite one
    saturates at the end of the code range.
    """
    step = cell_format.step(weight_range)
    full_scale = float(cell_format.max_code)
    detached = weight.detach()

    if cell_format.encoding == "offset":
        scaled = torch.nan_to_num(detached / step, nan=0.0, posinf=full_scale, neginf=-full_scale)
        codes = torch.round(scaled) + cell_format.offset_code
        return codes.clamp_(0, cell_format.max_code).to(torch.int32).unsqueeze(0)

    if cell_format.encoding == "sign_magnitude":
        scaled = torch.nan_to_num(detached.abs() / step, nan=0.0, posinf=full_scale)
        return torch.round(scaled).clamp_(0, cell_format.max_code).to(torch.int32).unsqueeze(0)

    # Signed code first, then split: the positive part goes to G+, the negative part to G-.
    # Rounding is symmetric (half to even), so each part equals round(|w| / step).
    scaled = torch.nan_to_num(detached / step, nan=0.0, posinf=full_scale, neginf=-full_scale)
    signed = torch.round(scaled).clamp_(-cell_format.max_code, cell_format.max_code).to(torch.int32)
    return torch.stack((signed.clamp(min=0), signed.neg().clamp_(min=0)))


def decode(
    codes: torch.Tensor,
    cell_format: CellFormat,
    weight_range: float | torch.Tensor,
    dtype: torch.dtype = torch.float32,
    written: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return the weight that codes of shape ``(groups, ...)`` stand for.

    ``written`` is the weight that was written. Only the sign-magnitude encoding needs it,
    because its sign bit sits in the digital periphery; without it the sign is taken as positive.
    """
    step = cell_format.step(weight_range)
    if cell_format.encoding == "differential":
        return (codes[POSITIVE_GROUP] - codes[NEGATIVE_GROUP]).to(dtype) * step
    if cell_format.encoding == "offset":
        return (codes[0] - cell_format.offset_code).to(dtype) * step
    magnitude = codes[0].to(dtype) * step
    if written is None:
        return magnitude
    return torch.where(written.detach() < 0, -magnitude, magnitude)


def apply_stuck_masks(codes: torch.Tensor, and_mask: torch.Tensor, or_mask: torch.Tensor) -> torch.Tensor:
    """Return the codes as the faulty cells read them: SA0 bits cleared, SA1 bits set."""
    return torch.bitwise_or(torch.bitwise_and(codes, and_mask), or_mask)


def slice_values(code: int, cell_format: CellFormat) -> list[int]:
    """Return the slice values of one code, least significant slice first."""
    return [(code >> (cell_format.bits_per_cell * position)) & cell_format.slice_max for position in range(cell_format.slices)]


def stuck_masks(states: torch.Tensor, cell_format: CellFormat) -> tuple[torch.Tensor, torch.Tensor]:
    """Build the AND and OR masks of a layer from its cell states.

    ``states`` has shape ``(groups, slices, ...)`` with values HEALTHY, SA0 or SA1. Returns two
    int32 tensors of shape ``(groups, ...)``: the AND mask has zeros on the bits of SA0 cells and
    the OR mask has ones on the bits of SA1 cells.
    """
    if states.ndim < 2 or tuple(states.shape[:2]) != (cell_format.groups, cell_format.slices):
        raise ValueError(
            f"cell states must start with dimensions ({cell_format.groups}, {cell_format.slices}) "
            f"for {cell_format.encoding} encoding, got {tuple(states.shape)}"
        )
    clear_bits = torch.zeros((states.shape[0], *states.shape[2:]), dtype=torch.int32, device=states.device)
    set_bits = torch.zeros_like(clear_bits)
    for position in range(cell_format.slices):
        bits = cell_format.slice_mask(position)
        cell_states = states[:, position]
        clear_bits |= (cell_states == SA0).to(torch.int32) * bits
        set_bits |= (cell_states == SA1).to(torch.int32) * bits
    return cell_format.max_code & ~clear_bits, set_bits


def masks_from_states(states: np.ndarray, cell_format: CellFormat) -> tuple[np.ndarray, np.ndarray]:
    """Build the masks of cell states in crossbar layout, as numpy arrays.

    ``states`` has shape ``(rows, columns, groups, slices)``: the layer's weight matrix in
    crossbar layout (fan-in rows, one column block per output), then the cell group, then the
    slice position. Returns two int32 arrays of shape ``(groups, rows, columns)``.
    """
    expected_tail = (cell_format.groups, cell_format.slices)
    if states.ndim != 4 or states.shape[2:] != expected_tail:
        raise ValueError(
            f"cell states must have shape (rows, columns, {cell_format.groups}, {cell_format.slices}) "
            f"for {cell_format.encoding} encoding, got {states.shape}"
        )
    by_group = torch.from_numpy(np.ascontiguousarray(states.transpose(2, 3, 0, 1)))
    and_mask, or_mask = stuck_masks(by_group, cell_format)
    return and_mask.numpy(), or_mask.numpy()


# Layers with more faulty cells than this build their masks with torch, whose operations use
# every CPU thread. Smaller layers use numpy, because its per-call cost is a fraction of torch's.
TORCH_MASK_CELLS = 1 << 20


def masks_from_cells(
    indices: np.ndarray,
    values: np.ndarray,
    cell_format: CellFormat,
    weight_shape: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build the AND and OR masks and the healthy-weight mask of a layer from its faulty cells.

    ``indices`` are flat indices into the layer's ``(rows, columns, groups, slices)`` states (the
    order of fault map files) and ``values`` their stuck states. Returns int32 masks of shape
    ``(groups, *weight_shape)`` and a bool array of ``weight_shape`` that is True where no cell
    of the weight is stuck, all as numpy arrays.
    """
    columns = weight_shape[0]
    rows = math.prod(weight_shape[1:])
    groups, slices = cell_format.groups, cell_format.slices
    indices = indices.astype(np.int32 if rows * columns * groups * slices < 2**31 else np.int64, copy=False)
    size = groups * rows * columns
    index_type = np.int32 if 2 * size < 2**31 else np.int64
    # Stuck cells are SA0 (1) or SA1 (2), so values - 1 is 1 exactly for SA1 cells.
    is_sa1 = values.astype(index_type) - 1
    if indices.size > TORCH_MASK_CELLS:
        indices, is_sa1 = torch.from_numpy(indices), torch.from_numpy(is_sa1)
        module = torch
    else:
        module = np

    # The index is ((row * columns + column) * groups + group) * slices + position. Slices and
    # groups are powers of two, so it splits with shifts and masks. The operators below work
    # on numpy arrays and torch tensors alike.
    position = indices & (slices - 1)
    cell_group = indices >> (slices.bit_length() - 1)
    group = cell_group & (groups - 1)
    matrix_index = cell_group >> (groups.bit_length() - 1)  # row * columns + column
    row = matrix_index // columns
    column = matrix_index - row * columns
    # Targets in the weight tensor's layout (groups, out = columns, fan-in = rows), so the masks
    # need no transpose afterwards. SA1 cells go to a second block of the same length, so one
    # accumulation serves both masks.
    target = group * (rows * columns) + column * rows + row + size * is_sa1
    bits = cell_format.slice_max << (position * cell_format.bits_per_cell)

    # Each cell owns distinct bits of its code, so summing the bits of the stuck cells of one
    # weight and group equals OR-ing them.
    if module is torch:
        # index_add_ on int32 uses every thread; torch.bincount with weights does not.
        sums = torch.zeros(2 * size, dtype=torch.int32).index_add_(0, target, bits.to(torch.int32)).numpy()
    else:
        # np.bincount sums float64 weights, exact below 2**53.
        sums = np.bincount(target, weights=bits.astype(np.float64), minlength=2 * size).astype(np.int32)
    clear_bits, set_bits = sums[:size], sums[size:]

    shape = (groups, *weight_shape)
    and_mask = (cell_format.max_code - clear_bits).reshape(shape)
    or_mask = set_bits.reshape(shape)
    # Every stuck cell leaves a nonzero bit in its group's clear or set sum.
    healthy = ((clear_bits | set_bits).reshape(shape) == 0).all(axis=0)
    return and_mask, or_mask, healthy


def dense_states_from_cells(indices: torch.Tensor, values: torch.Tensor, cell_format: CellFormat, weight_shape: tuple[int, ...]) -> torch.Tensor:
    """Return the int8 states ``(groups, slices, *weight_shape)`` of a layer from its faulty cells."""
    columns = weight_shape[0]
    rows = math.prod(weight_shape[1:])
    logical = torch.zeros(rows * columns * cell_format.groups * cell_format.slices, dtype=torch.int8, device=indices.device)
    logical[indices] = values
    by_group = logical.reshape(rows, columns, cell_format.groups, cell_format.slices).permute(2, 3, 1, 0)
    return by_group.contiguous().reshape(cell_format.groups, cell_format.slices, *weight_shape)


def states_to_weight_layout(states: np.ndarray, weight_shape: tuple[int, ...]) -> np.ndarray:
    """Reorder states ``(rows, columns, groups, slices)`` into ``(groups, slices, *weight_shape)``."""
    rows, columns, groups, slices = states.shape
    by_group = states.transpose(2, 3, 1, 0)  # (groups, slices, out, fan-in)
    return np.ascontiguousarray(by_group).reshape((groups, slices, *weight_shape))


def matrix_shape(weight_shape: tuple[int, ...]) -> tuple[int, int]:
    """Return (rows, columns) of a weight in crossbar layout.

    A Linear weight ``(out, in)`` puts inputs on rows and outputs on columns. A Conv2d weight
    ``(out, in, kh, kw)`` unrolls ``in * kh * kw`` onto rows, as in im2col.
    """
    out_features = weight_shape[0]
    fan_in = int(np.prod(weight_shape[1:]))
    return fan_in, out_features


def masks_to_weight_layout(mask: np.ndarray, weight_shape: tuple[int, ...]) -> np.ndarray:
    """Reorder a ``(groups, rows, columns)`` mask into ``(groups, *weight_shape)``, the weight tensor's layout."""
    groups = mask.shape[0]
    out_features = weight_shape[0]
    return np.ascontiguousarray(np.swapaxes(mask, 1, 2)).reshape((groups, out_features, *weight_shape[1:]))


class _StraightThrough(torch.autograd.Function):
    """Forward the stored weight; pass the gradient to the master weight, optionally masked."""

    @staticmethod
    def forward(ctx, master: torch.Tensor, stored: torch.Tensor, gradient_mask: torch.Tensor | None) -> torch.Tensor:  # type: ignore[override]
        ctx.gradient_mask = gradient_mask
        return stored

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        if ctx.gradient_mask is None:
            return grad_output, None, None
        return grad_output * ctx.gradient_mask, None, None


def straight_through(master: torch.Tensor, stored: torch.Tensor, gradient_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Return ``stored`` in the forward pass and pass the gradient straight to ``master``.

    With ``gradient_mask`` (1 for weights to update, 0 for weights to freeze) the gradient is
    multiplied by it, as fault-aware training does for weights with stuck cells.
    """
    return _StraightThrough.apply(master, stored, gradient_mask)
