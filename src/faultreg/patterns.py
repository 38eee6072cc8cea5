"""Spatial patterns of fabrication faults on crossbar arrays.

Each function fills the cell states (HEALTHY, SA0 or SA1) of a batch of crossbars, shape
``(crossbars, rows, columns)``. Two generators drive every pattern: ``fault_draws`` decides
where faults are and ``type_draws`` whether each is SA0 or SA1. Both decisions compare one
uniform number per site with a threshold that grows with the fault rate, so the faults of a
chip at a lower rate are a subset of its faults at a higher rate, for every pattern.

``fault_rate`` is the expected fraction of faulty cells in every pattern:

* ``independent``: each cell fails on its own with probability ``fault_rate``.
* ``rows``: each word line (row of one crossbar) is stuck as a whole with probability
  ``fault_rate``; all its cells take the same stuck state.
* ``columns``: the same for bit lines (columns of one crossbar).
* ``clustered``: faults come in ``cluster_size x cluster_size`` squares of one stuck state.
  Cluster corners fall on each site of a grid padded by ``cluster_size - 1`` with probability
  ``q = 1 - (1 - fault_rate)**(1 / cluster_size**2)``, so every cell is covered by at least one
  cluster with probability ``fault_rate``. Where clusters overlap, the cluster whose corner
  drew the smaller uniform number sets the state. That corner is present at every higher rate,
  so overlapping cells keep their state as the rate grows.
"""

from __future__ import annotations

import numpy as np

from faultreg.crossbar import HEALTHY, SA0, SA1

PATTERNS = ("independent", "rows", "columns", "clustered")

# Crossbars drawn per call of the generators; it bounds memory (16 x 128 x 128 doubles = 2 MiB
# per draw array) and does not change the numbers drawn.
CHUNK_CROSSBARS = 16


def _stuck_states(faulty: np.ndarray, type_draw: np.ndarray, sa1_share: float) -> np.ndarray:
    states = np.full(faulty.shape, HEALTHY, dtype=np.int8)
    states[faulty & (type_draw < sa1_share)] = SA1
    states[faulty & (type_draw >= sa1_share)] = SA0
    return states


def draw_crossbars(
    pattern: str,
    crossbars: int,
    rows: int,
    columns: int,
    fault_rate: float,
    sa1_share: float,
    fault_draws: np.random.Generator,
    type_draws: np.random.Generator,
    cluster_size: int = 3,
) -> np.ndarray:
    """Return int8 cell states of shape ``(crossbars, rows, columns)`` for ``pattern``."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown fault pattern {pattern!r}; use one of {', '.join(PATTERNS)}")
    if cluster_size < 1:
        raise ValueError(f"cluster_size {cluster_size} must be at least 1")

    grids = np.empty((crossbars, rows, columns), dtype=np.int8)
    for start in range(0, crossbars, CHUNK_CROSSBARS):
        count = min(CHUNK_CROSSBARS, crossbars - start)
        grids[start : start + count] = _draw_chunk(
            pattern, count, rows, columns, fault_rate, sa1_share, fault_draws, type_draws, cluster_size
        )
    return grids


def _draw_chunk(
    pattern: str,
    count: int,
    rows: int,
    columns: int,
    fault_rate: float,
    sa1_share: float,
    fault_draws: np.random.Generator,
    type_draws: np.random.Generator,
    cluster_size: int,
) -> np.ndarray:
    if pattern == "independent":
        shape = (count, rows, columns)
        return _stuck_states(fault_draws.random(shape) < fault_rate, type_draws.random(shape), sa1_share)

    if pattern == "rows":
        line_states = _stuck_states(fault_draws.random((count, rows)) < fault_rate, type_draws.random((count, rows)), sa1_share)
        return np.repeat(line_states[:, :, np.newaxis], columns, axis=2)

    if pattern == "columns":
        line_states = _stuck_states(
            fault_draws.random((count, columns)) < fault_rate, type_draws.random((count, columns)), sa1_share
        )
        return np.repeat(line_states[:, np.newaxis, :], rows, axis=1)

    return _clustered_chunk(count, rows, columns, fault_rate, sa1_share, fault_draws, type_draws, cluster_size)


def cluster_corner_probability(fault_rate: float, cluster_size: int) -> float:
    """Return the corner probability q that makes a cell faulty with probability ``fault_rate``."""
    return 1.0 - (1.0 - fault_rate) ** (1.0 / cluster_size**2)


def _clustered_chunk(
    count: int,
    rows: int,
    columns: int,
    fault_rate: float,
    sa1_share: float,
    fault_draws: np.random.Generator,
    type_draws: np.random.Generator,
    cluster_size: int,
) -> np.ndarray:
    # Corners live on a grid padded above and left, so clusters reach edge cells as often as
    # interior ones: cell (r, c) is covered by corners (r - i, c - j) for i, j < cluster_size.
    pad = cluster_size - 1
    shape = (count, rows + pad, columns + pad)
    corner_draw = fault_draws.random(shape)
    corner_states = _stuck_states(
        corner_draw < cluster_corner_probability(fault_rate, cluster_size),
        type_draws.random(shape),
        sa1_share,
    )

    states = np.zeros((count, rows, columns), dtype=np.int8)
    winning_draw = np.full((count, rows, columns), np.inf)
    for row_offset in range(cluster_size):
        for column_offset in range(cluster_size):
            # Corner (r + pad - row_offset, c + pad - column_offset) in padded coordinates.
            window = (
                slice(None),
                slice(pad - row_offset, pad - row_offset + rows),
                slice(pad - column_offset, pad - column_offset + columns),
            )
            present = corner_states[window] != HEALTHY
            wins = present & (corner_draw[window] < winning_draw)
            states[wins] = corner_states[window][wins]
            winning_draw[wins] = corner_draw[window][wins]
    return states
