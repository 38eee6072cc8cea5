"""Hardware fault repairs as oracles: the chip a repaired design behaves like, on the same map.

Each repair takes a fabrication :class:`~faultreg.faults.FaultMap` and returns the *effective*
map: the cell states the weights see once the repair has done its best with full knowledge of
the faults (as after a post-fabrication test). The effective map keeps the original geometry,
so training and inference use it like any other map, and methods stay paired on the same chip.
The extra cells a repair adds (spare columns, check cells, a second copy) fail like the array
they extend. They are drawn at the map's fault rate and SA1 share from their own seeded
generator, keyed by the map index and layer.

* ``ecc``: ``codeword_weights`` adjacent weights of one crossbar row (inputs times outputs,
  row-major) form one codeword, their ``groups * slices`` data cells each plus ``check_cells``
  check cells. A codeword with at most ``correctable_cells`` faulty cells, check cells
  included, reads back correctly; a codeword with more is left as it is. This abstracts an
  arithmetic code such as the AN codes of Feinberg, Wang and Ipek (HPCA 2018) to its correction
  capability per codeword.
* ``spare_columns``: each crossbar has ``spares`` spare bit lines. The columns with the most
  faulty cells are replaced, worst first, by the spares with the fewest, while a spare has fewer
  faulty cells than the column it replaces.
* ``row_remapping``: within each crossbar, logical rows (inputs) are permuted over the physical
  word lines so that the rows whose weights carry the least magnitude sit on the word lines with
  the most faulty cells. It needs the weights, so it is recomputed whenever they change enough
  to matter (the training loop redoes it every epoch).
* ``duplication``: every crossbar has a full second copy with its own faults, and each weight
  is read from the copy where it has fewer faulty cells (ties go to the first copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from faultreg.crossbar import HEALTHY
from faultreg.faults import FaultMap, LayerGeometry, draw_layer_states
from faultreg.mapping import LayerMapping
from faultreg.patterns import draw_crossbars
from faultreg.seeding import numpy_generator

REPAIRS = ("ecc", "spare_columns", "row_remapping", "duplication")

# Keys of the repair's generator after (map index, layer index): one per kind of extra cell.
SPARE_KEY, CHECK_KEY, COPY_FAULT_KEY, COPY_TYPE_KEY = 0, 1, 2, 3


@dataclass(frozen=True)
class RepairSettings:
    """One repair and its parameters (see the module docstring for what each does)."""

    kind: str
    correctable_cells: int = 1
    check_cells: int = 5
    codeword_weights: int = 8
    spares: int = 8

    def __post_init__(self) -> None:
        if self.kind not in REPAIRS:
            raise ValueError(f"unknown repair {self.kind!r}; use one of {', '.join(REPAIRS)}")
        if self.codeword_weights < 1:
            raise ValueError(f"a codeword needs at least one weight, got codeword_weights {self.codeword_weights}")
        if self.correctable_cells < 0 or self.check_cells < 0 or self.spares < 0:
            raise ValueError(
                f"repair parameters must not be negative: correctable_cells {self.correctable_cells}, "
                f"check_cells {self.check_cells}, spares {self.spares}"
            )

    @property
    def needs_weights(self) -> bool:
        """Whether the effective map depends on the stored weights (row remapping)."""
        return self.kind == "row_remapping"

    @classmethod
    def from_method(cls, method: dict[str, Any]) -> "RepairSettings | None":
        """Return the repair of a method config entry, or None when it has none."""
        repair = method.get("repair")
        if not repair:
            return None
        return cls(
            kind=str(repair),
            correctable_cells=int(method.get("ecc_correctable_cells", 1)),
            check_cells=int(method.get("ecc_check_cells", 5)),
            codeword_weights=int(method.get("ecc_codeword_weights", 8)),
            spares=int(method.get("spares_per_crossbar", 8)),
        )


def _physical(states: np.ndarray) -> np.ndarray:
    """Return a layer's states as its physical array, shape (rows, physical columns)."""
    rows = states.shape[0]
    return states.reshape(rows, -1)


def _tiles(mapping: LayerMapping):
    """Yield (crossbar index, row slice, column slice) of every crossbar of a layer."""
    physical_rows, physical_columns = mapping.rows, mapping.physical_columns
    for row_tile in range(mapping.row_tiles):
        rows = slice(row_tile * mapping.crossbar_rows, min((row_tile + 1) * mapping.crossbar_rows, physical_rows))
        for column_tile in range(mapping.column_tiles):
            columns = slice(
                column_tile * mapping.crossbar_columns, min((column_tile + 1) * mapping.crossbar_columns, physical_columns)
            )
            yield row_tile * mapping.column_tiles + column_tile, rows, columns


def _draw_independent(shape: tuple[int, int, int], fault_map: FaultMap, generator_keys: tuple[int, ...]) -> np.ndarray:
    """Draw states of extra cells that fail independently at the map's rate and SA1 share."""
    spec = fault_map.spec
    return draw_crossbars(
        "independent", shape[0], shape[1], shape[2], spec.fault_rate, spec.sa1_share,
        fault_draws=numpy_generator(spec.root_seed, "repair", spec.map_index, *generator_keys, 0),
        type_draws=numpy_generator(spec.root_seed, "repair", spec.map_index, *generator_keys, 1),
    )


def repair_ecc(states: np.ndarray, settings: RepairSettings, check_states: np.ndarray) -> np.ndarray:
    """Return the states of one layer after ECC, given the states of its check cells.

    ``states`` has shape (rows, columns, groups, slices). Codeword ``k`` of row ``r`` contains
    the weights ``k * W`` to ``k * W + W - 1`` of that row (W = ``settings.codeword_weights``; the
    last codeword of a row may be shorter), and ``check_states`` has shape (rows, codewords per
    row, check cells). A codeword whose faulty data and check cells number at most
    ``settings.correctable_cells`` reads back healthy.
    """
    rows, columns = states.shape[:2]
    width = settings.codeword_weights
    codewords = -(-columns // width)
    faulty_weights = np.count_nonzero(states != HEALTHY, axis=(2, 3))
    padded = np.zeros((rows, codewords * width), dtype=np.int64)
    padded[:, :columns] = faulty_weights
    faulty = padded.reshape(rows, codewords, width).sum(axis=2) + np.count_nonzero(check_states != HEALTHY, axis=2)
    corrected = np.repeat(faulty <= settings.correctable_cells, width, axis=1)[:, :columns]
    repaired = states.copy()
    repaired[corrected] = HEALTHY
    return repaired


def repair_spare_columns(states: np.ndarray, mapping: LayerMapping, spare_states: np.ndarray) -> np.ndarray:
    """Return the states of one layer after replacing its worst columns with spare columns.

    ``spare_states`` has shape (crossbars, crossbar rows, spares): the spare bit lines of every
    crossbar, numbered as in :meth:`LayerMapping.cell_address`.
    """
    repaired = states.copy()
    physical = _physical(repaired)
    for crossbar, rows, columns in _tiles(mapping):
        block = physical[rows, columns]
        spares = spare_states[crossbar, : block.shape[0], :]
        column_faults = np.count_nonzero(block != HEALTHY, axis=0)
        spare_faults = np.count_nonzero(spares != HEALTHY, axis=0)
        # Worst columns first (stable, so ties keep the lower index); best spares first.
        worst = np.argsort(-column_faults, kind="stable")
        best = np.argsort(spare_faults, kind="stable")
        for column, spare in zip(worst, best):
            if spare_faults[spare] >= column_faults[column]:
                break
            block[:, column] = spares[:, spare]
    return repaired


def repair_row_remapping(states: np.ndarray, mapping: LayerMapping, weight_magnitude: np.ndarray) -> np.ndarray:
    """Return the states one layer's weights see after remapping rows within each crossbar.

    ``weight_magnitude`` has shape (rows, physical columns): the |w| that each physical cell
    position carries (the weight's magnitude repeated over its cells). Per crossbar, the logical
    row with the smallest total magnitude goes to the physical row with the most faulty cells,
    and so on. The returned states are indexed by logical row.
    """
    remapped = states.copy()
    physical = _physical(states)
    result = _physical(remapped)
    for _, rows, columns in _tiles(mapping):
        block = physical[rows, columns]
        row_faults = np.count_nonzero(block != HEALTHY, axis=1)
        importance = weight_magnitude[rows, columns].sum(axis=1)
        # Most faulty physical rows first; least important logical rows first (stable ties).
        physical_order = np.argsort(-row_faults, kind="stable")
        logical_order = np.argsort(importance, kind="stable")
        assigned = np.empty_like(physical_order)
        assigned[logical_order] = physical_order
        result[rows, columns] = block[assigned]
    return remapped


def repair_duplication(states: np.ndarray, copy_states: np.ndarray) -> np.ndarray:
    """Return the states of one layer read from the better of two copies, weight by weight.

    Both arrays have shape (rows, columns, groups, slices). A weight takes the second copy only
    when it has strictly fewer faulty cells there.
    """
    first = np.count_nonzero(states != HEALTHY, axis=(2, 3))
    second = np.count_nonzero(copy_states != HEALTHY, axis=(2, 3))
    return np.where((second < first)[:, :, None, None], copy_states, states)


def effective_map(fault_map: FaultMap, settings: RepairSettings, weights: dict[str, np.ndarray] | None = None) -> FaultMap:
    """Return the map the weights see once ``settings`` has repaired ``fault_map``.

    ``weights`` (row remapping only) maps each layer name to its weight in crossbar layout,
    shape (rows, columns): inputs on rows, outputs on columns.
    """
    if settings.needs_weights and weights is None:
        raise ValueError("row remapping needs the layer weights to decide which rows move")
    spec = fault_map.spec
    repaired = {}
    for layer_index, layer in enumerate(spec.layers):
        states = fault_map.states[layer.name]
        mapping = spec.layer_mapping(layer)
        repaired[layer.name] = _repair_layer(fault_map, settings, layer, layer_index, states, mapping, weights)
    return FaultMap(spec=spec, states=repaired)


def _repair_layer(
    fault_map: FaultMap,
    settings: RepairSettings,
    layer: LayerGeometry,
    layer_index: int,
    states: np.ndarray,
    mapping: LayerMapping,
    weights: dict[str, np.ndarray] | None,
) -> np.ndarray:
    if settings.kind == "ecc":
        codewords = -(-layer.columns // settings.codeword_weights)
        if settings.check_cells == 0:
            check = np.zeros((layer.rows, codewords, 0), dtype=np.int8)
        else:
            check = _draw_independent((layer.rows, codewords, settings.check_cells), fault_map, (layer_index, CHECK_KEY))
        return repair_ecc(states, settings, check)

    if settings.kind == "spare_columns":
        if settings.spares == 0:
            return states.copy()
        spares = _draw_independent((mapping.crossbars, mapping.crossbar_rows, settings.spares), fault_map, (layer_index, SPARE_KEY))
        return repair_spare_columns(states, mapping, spares)

    if settings.kind == "row_remapping":
        magnitude = np.abs(np.asarray(weights[layer.name], dtype=np.float64))
        per_cell = np.repeat(magnitude, mapping.cells_per_weight, axis=1)
        return repair_row_remapping(states, mapping, per_cell)

    spec = fault_map.spec
    copy = draw_layer_states(
        spec,
        layer,
        fault_draws=numpy_generator(spec.root_seed, "repair", spec.map_index, layer_index, COPY_FAULT_KEY),
        type_draws=numpy_generator(spec.root_seed, "repair", spec.map_index, layer_index, COPY_TYPE_KEY),
    )
    return repair_duplication(states, copy)
