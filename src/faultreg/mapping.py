"""Placement of a layer's cells on physical crossbar arrays.

A layer's weight matrix in crossbar layout has one row per input (``in_features``, or
``in_channels * kernel_h * kernel_w`` for a convolution, as in im2col) and one logical column
per output. Each logical column expands into ``groups * slices`` physical columns, the cells of
one weight side by side: physical column ``p = (output * groups + group) * slices + slice``. The
resulting ``rows x physical_columns`` array is cut into crossbars of ``crossbar_rows x
crossbar_columns`` cells, row blocks first. Every cell so has an address (crossbar, row,
column), and spatial fault patterns act on these real positions.

The cell states of a layer, shape ``(rows, columns, groups, slices)``, are the same numbers as
the physical array: ``states.reshape(rows, physical_columns)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from faultreg.crossbar import CellFormat


@dataclass(frozen=True)
class LayerMapping:
    """Crossbar tiling of one layer's ``rows x columns`` weight matrix."""

    rows: int
    columns: int
    cell_format: CellFormat
    crossbar_rows: int = 128
    crossbar_columns: int = 128

    def __post_init__(self) -> None:
        if min(self.rows, self.columns, self.crossbar_rows, self.crossbar_columns) < 1:
            raise ValueError(
                f"layer {self.rows}x{self.columns} on {self.crossbar_rows}x{self.crossbar_columns} crossbars: "
                "every size must be positive"
            )

    @property
    def cells_per_weight(self) -> int:
        """Cells of one weight over all its groups and slices."""
        return self.cell_format.groups * self.cell_format.slices

    @property
    def physical_columns(self) -> int:
        """Bit lines the layer occupies before tiling."""
        return self.columns * self.cells_per_weight

    @property
    def row_tiles(self) -> int:
        """Crossbars stacked along the rows (their partial sums are added digitally)."""
        return math.ceil(self.rows / self.crossbar_rows)

    @property
    def column_tiles(self) -> int:
        """Crossbars side by side along the physical columns."""
        return math.ceil(self.physical_columns / self.crossbar_columns)

    @property
    def crossbars(self) -> int:
        """Crossbars the layer occupies."""
        return self.row_tiles * self.column_tiles

    def cell_address(self, row: int, column: int, group: int, position: int) -> tuple[int, int, int]:
        """Return (crossbar, row in crossbar, column in crossbar) of one cell.

        Crossbars are numbered row block by row block: ``crossbar = row_tile * column_tiles +
        column_tile``.
        """
        physical_column = (column * self.cell_format.groups + group) * self.cell_format.slices + position
        row_tile, local_row = divmod(row, self.crossbar_rows)
        column_tile, local_column = divmod(physical_column, self.crossbar_columns)
        return row_tile * self.column_tiles + column_tile, local_row, local_column

    def states_from_crossbars(self, grids: np.ndarray) -> np.ndarray:
        """Return layer cell states from per-crossbar grids.

        ``grids`` has shape ``(crossbars, crossbar_rows, crossbar_columns)``, numbered as in
        :meth:`cell_address`. Cells of the last row and column tiles that hold no weight are
        dropped. Returns shape ``(rows, columns, groups, slices)``.
        """
        expected = (self.crossbars, self.crossbar_rows, self.crossbar_columns)
        if grids.shape != expected:
            raise ValueError(f"crossbar grids must have shape {expected}, got {grids.shape}")
        tiled = grids.reshape(self.row_tiles, self.column_tiles, self.crossbar_rows, self.crossbar_columns)
        physical = tiled.transpose(0, 2, 1, 3).reshape(
            self.row_tiles * self.crossbar_rows, self.column_tiles * self.crossbar_columns
        )
        used = physical[: self.rows, : self.physical_columns]
        return np.ascontiguousarray(used).reshape(self.rows, self.columns, self.cell_format.groups, self.cell_format.slices)


def tiled_linear(inputs: torch.Tensor, weight: torch.Tensor, crossbar_rows: int) -> torch.Tensor:
    """Compute ``inputs @ weight.T`` one crossbar row block at a time, adding the partial sums.

    ``weight`` has shape ``(out_features, in_features)``. Each block of ``crossbar_rows`` inputs
    drives one crossbar row tile; the digital periphery adds the tiles' column outputs. Column
    tiling only splits the outputs, so it needs no separate step here.
    """
    output = torch.zeros(inputs.shape[0], weight.shape[0], dtype=inputs.dtype, device=inputs.device)
    for start in range(0, weight.shape[1], crossbar_rows):
        output = output + inputs[:, start : start + crossbar_rows] @ weight[:, start : start + crossbar_rows].T
    return output


def tiled_conv2d(images: torch.Tensor, weight: torch.Tensor, crossbar_rows: int, stride: int = 1, padding: int = 0) -> torch.Tensor:
    """Compute a Conv2d (no bias) as im2col followed by :func:`tiled_linear` on crossbar row tiles."""
    out_channels, _, kernel_h, kernel_w = weight.shape
    columns = F.unfold(images, (kernel_h, kernel_w), stride=stride, padding=padding)
    batch, fan_in, positions = columns.shape
    patches = columns.transpose(1, 2).reshape(batch * positions, fan_in)
    outputs = tiled_linear(patches, weight.reshape(out_channels, fan_in), crossbar_rows)
    out_h = (images.shape[2] + 2 * padding - kernel_h) // stride + 1
    out_w = (images.shape[3] + 2 * padding - kernel_w) // stride + 1
    return outputs.reshape(batch, positions, out_channels).transpose(1, 2).reshape(batch, out_channels, out_h, out_w)
