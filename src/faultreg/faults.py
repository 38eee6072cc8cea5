"""Fabrication-time stuck-at fault maps: drawing, saving, loading and checking them.

A fault map is one simulated chip: the state (healthy, SA0 or SA1) of every cell that stores a
weight of the model. Each layer is placed on crossbars (see :mod:`faultreg.mapping`) and its
faults are drawn crossbar by crossbar in the spec's spatial pattern (see
:mod:`faultreg.patterns`); a faulty site is SA1 with probability ``sa1_share``, else SA0.
Faults can be restricted to some slice positions or some layers for sensitivity studies. Then
``fault_rate`` is the fraction of faulty cells among the eligible ones.

Each layer's draws use their own generators keyed by (root seed, map index, layer index), and
the same uniform numbers decide the states at every rate. So chip ``j`` at rate 0.05 has every
fault that chip ``j`` has at rate 0.02, and curves over fault rates are paired.

Files store only the faulty cells (flat index and state per layer) with the spec and a SHA-256
of both, which is checked on loading.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faultreg.crossbar import HEALTHY, SA0, SA1, CellFormat
from faultreg.mapping import LayerMapping
from faultreg.patterns import PATTERNS, draw_crossbars
from faultreg.errors import FaultMapError
from faultreg.io import atomic_path, write_text_atomic
from faultreg.seeding import numpy_generator

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2


@dataclass(frozen=True)
class LayerGeometry:
    """A weight matrix in crossbar layout: ``rows`` fan-in inputs by ``columns`` outputs."""

    name: str
    rows: int
    columns: int


@dataclass(frozen=True)
class FaultMapSpec:
    """Everything that determines a fault map; the same spec always gives the same map."""

    fault_rate: float
    sa1_share: float
    map_index: int
    root_seed: int
    weight_bits: int
    bits_per_cell: int
    layers: tuple[LayerGeometry, ...] = field(default_factory=tuple)
    encoding: str = "differential"
    crossbar_rows: int = 128
    crossbar_columns: int = 128
    pattern: str = "independent"
    cluster_size: int = 3
    slice_positions: tuple[int, ...] | None = None
    target_layers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise FaultMapError(f"fault pattern {self.pattern!r} is unknown; use one of {', '.join(PATTERNS)}")
        if self.cluster_size < 1:
            raise FaultMapError(f"cluster_size {self.cluster_size} must be at least 1")
        slices = self.weight_bits // self.bits_per_cell
        for position in self.slice_positions or ():
            if not 0 <= position < slices:
                raise FaultMapError(
                    f"slice position {position} does not exist: {self.weight_bits}-bit weights in "
                    f"{self.bits_per_cell}-bit cells have positions 0 (least significant) to {slices - 1}"
                )
        layer_names = [layer.name for layer in self.layers]
        for name in self.target_layers or ():
            if name not in layer_names:
                raise FaultMapError(f"target layer {name!r} is not a crossbar layer of the model; its layers are {layer_names}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise FaultMapError(f"fault_rate {self.fault_rate} is outside [0, 1]; give the fraction of faulty cells")
        if not 0.0 <= self.sa1_share <= 1.0:
            raise FaultMapError(f"sa1_share {self.sa1_share} is outside [0, 1]; give the fraction of faults that are SA1")
        if self.map_index < 0:
            raise FaultMapError(f"map_index {self.map_index} is negative; chips are numbered from 0")

    @property
    def cell_format(self) -> CellFormat:
        """Cell format the map was drawn for."""
        return CellFormat(self.weight_bits, self.bits_per_cell, self.encoding)

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as plain JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "FaultMapSpec":
        """Rebuild a spec from :meth:`to_dict` output."""
        layers = tuple(LayerGeometry(**layer) for layer in values["layers"])
        restored = {**values, "layers": layers}
        for key in ("slice_positions", "target_layers"):
            if restored.get(key) is not None:
                restored[key] = tuple(restored[key])
        return cls(**restored)

    def layer_mapping(self, layer: LayerGeometry) -> LayerMapping:
        """Return the crossbar tiling of ``layer`` under this spec."""
        return LayerMapping(layer.rows, layer.columns, self.cell_format, self.crossbar_rows, self.crossbar_columns)


class FaultMap:
    """Cell states of one chip.

    A map comes either from dense per-layer int8 arrays of shape ``(rows, columns, groups,
    slices)``, as :func:`generate_fault_map` draws them, or from the faulty cells alone (flat
    indices into those arrays and their states), as :func:`load_fault_map` reads them. The other
    form is derived on first use. Dense arrays derived from faulty cells are read-only, so the
    two forms cannot drift apart.
    """

    def __init__(
        self,
        spec: FaultMapSpec,
        states: dict[str, np.ndarray] | None = None,
        cells: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        verified_hash: str | None = None,
    ) -> None:
        if (states is None) == (cells is None):
            raise ValueError("give a fault map either dense states or faulty cells")
        self.spec = spec
        self._states = states
        self._cells = cells
        self.verified_hash = verified_hash

    def layer_shape(self, layer: LayerGeometry) -> tuple[int, int, int, int]:
        """Return the state array shape of ``layer``: (rows, columns, groups, slices)."""
        cell_format = self.spec.cell_format
        return (layer.rows, layer.columns, cell_format.groups, cell_format.slices)

    @property
    def states(self) -> dict[str, np.ndarray]:
        """Dense cell states per layer, shape (rows, columns, groups, slices)."""
        if self._states is None:
            dense = {}
            for layer in self.spec.layers:
                array = np.zeros(self.layer_shape(layer), dtype=np.int8)
                indices, values = self._cells[layer.name]
                array.reshape(-1)[indices] = values
                array.setflags(write=False)
                dense[layer.name] = array
            self._states = dense
        return self._states

    def sha256(self) -> str:
        """Return the hash checked when the map was loaded, or compute it for an in-memory map."""
        return self.verified_hash if self.verified_hash is not None else self.content_hash()

    def faulty_cells(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the flat indices (int64) and states (int8) of a layer's faulty cells."""
        if self._cells is not None:
            return self._cells[name]
        flat = self._states[name].reshape(-1)
        indices = np.flatnonzero(flat).astype(np.int64)
        return indices, flat[indices].astype(np.int8)

    def content_hash(self) -> str:
        """Return the SHA-256 of the spec and every layer's faulty cells, in layer order."""
        digest = hashlib.sha256()
        digest.update(json.dumps(self.spec.to_dict(), sort_keys=True).encode("utf-8"))
        for layer in self.spec.layers:
            indices, values = self.faulty_cells(layer.name)
            digest.update(layer.name.encode("utf-8"))
            digest.update(np.asarray(self.layer_shape(layer), dtype=np.int64).tobytes())
            digest.update(indices.tobytes())
            digest.update(values.tobytes())
        return digest.hexdigest()

    def counts(self) -> dict[str, int]:
        """Return the number of cells, SA0 cells and SA1 cells over all layers."""
        cells = sum(int(np.prod(self.layer_shape(layer))) for layer in self.spec.layers)
        sa0 = sa1 = 0
        for layer in self.spec.layers:
            _, values = self.faulty_cells(layer.name)
            sa0 += int(np.count_nonzero(values == SA0))
            sa1 += int(np.count_nonzero(values == SA1))
        return {"cells": cells, "sa0": sa0, "sa1": sa1}


def draw_layer_states(
    spec: FaultMapSpec,
    layer: LayerGeometry,
    fault_draws: np.random.Generator,
    type_draws: np.random.Generator,
) -> np.ndarray:
    """Draw the states of one layer under ``spec`` from the given generators.

    Applies the spec's pattern, rate and SA1 share, and its restriction to target layers and
    slice positions. Returns shape ``(rows, columns, groups, slices)``.
    """
    mapping = spec.layer_mapping(layer)
    if spec.target_layers is not None and layer.name not in spec.target_layers:
        return np.zeros((layer.rows, layer.columns, mapping.cell_format.groups, mapping.cell_format.slices), dtype=np.int8)

    grids = draw_crossbars(
        spec.pattern,
        mapping.crossbars,
        spec.crossbar_rows,
        spec.crossbar_columns,
        spec.fault_rate,
        spec.sa1_share,
        fault_draws=fault_draws,
        type_draws=type_draws,
        cluster_size=spec.cluster_size,
    )
    layer_states = mapping.states_from_crossbars(grids)
    if spec.slice_positions is not None:
        excluded = [position for position in range(mapping.cell_format.slices) if position not in spec.slice_positions]
        layer_states[..., excluded] = HEALTHY
    return layer_states


def generate_fault_map(spec: FaultMapSpec) -> FaultMap:
    """Draw the cell states of ``spec`` with generators derived from its seed and map index."""
    states: dict[str, np.ndarray] = {}
    for layer_index, layer in enumerate(spec.layers):
        states[layer.name] = draw_layer_states(
            spec,
            layer,
            fault_draws=numpy_generator(spec.root_seed, "fault_map", spec.map_index, layer_index, 0),
            type_draws=numpy_generator(spec.root_seed, "fault_map", spec.map_index, layer_index, 1),
        )
    return FaultMap(spec=spec, states=states)


def summary(fault_map: FaultMap) -> dict[str, Any]:
    """Return the spec, hash and realized fault counts of a map, as written beside it."""
    counts = fault_map.counts()
    cells = max(counts["cells"], 1)
    faulty = counts["sa0"] + counts["sa1"]
    return {
        "format_version": FORMAT_VERSION,
        "spec": fault_map.spec.to_dict(),
        "sha256": fault_map.content_hash(),
        "cells": counts["cells"],
        "sa0_cells": counts["sa0"],
        "sa1_cells": counts["sa1"],
        "realized_fault_rate": faulty / cells,
        "realized_sa1_share": counts["sa1"] / faulty if faulty else None,
    }


def save_fault_map(fault_map: FaultMap, path: str | Path) -> dict[str, Any]:
    """Write the map to ``path`` (.npz) and its summary to the same name with .json.

    Both files appear only when complete. Returns the summary.
    """
    target = Path(path)
    if target.suffix != ".npz":
        # The summary goes to the same name with .json, so another suffix could overwrite the map.
        raise FaultMapError(f"fault map path {target} must end in .npz; its summary is written beside it as .json")
    info = summary(fault_map)
    arrays = {}
    for index, layer in enumerate(fault_map.spec.layers):
        indices, values = fault_map.faulty_cells(layer.name)
        arrays[f"layer_{index}_indices"] = indices
        arrays[f"layer_{index}_states"] = values
    arrays["spec_json"] = np.array(json.dumps(fault_map.spec.to_dict(), sort_keys=True))
    arrays["sha256"] = np.array(info["sha256"])
    arrays["format_version"] = np.array(FORMAT_VERSION)

    with atomic_path(target) as temporary:
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    write_text_atomic(target.with_suffix(".json"), json.dumps(info, indent=2, sort_keys=True) + "\n")
    logger.info(
        "wrote fault map %s: rate %.4g, map %d, %d SA0 and %d SA1 of %d cells",
        target, fault_map.spec.fault_rate, fault_map.spec.map_index, info["sa0_cells"], info["sa1_cells"], info["cells"],
    )
    return info


def load_fault_map(path: str | Path) -> FaultMap:
    """Read a map written by :func:`save_fault_map` and check it against its stored hash."""
    source = Path(path)
    if not source.is_file():
        raise FaultMapError(f"fault map not found: {source}; create it with 'faultreg fault-map' or 'snakemake fault_maps'")
    try:
        with np.load(source, allow_pickle=False) as archive:
            version = int(archive["format_version"])
            if version != FORMAT_VERSION:
                raise FaultMapError(
                    f"fault map {source} has format version {version}, but this faultreg reads version {FORMAT_VERSION}; "
                    "delete it and generate it again"
                )
            spec = FaultMapSpec.from_dict(json.loads(str(archive["spec_json"])))
            stored_hash = str(archive["sha256"])
            cells = {
                layer.name: _checked_cells(spec, layer, archive[f"layer_{index}_indices"], archive[f"layer_{index}_states"], source)
                for index, layer in enumerate(spec.layers)
            }
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error, EOFError, json.JSONDecodeError) as error:
        # numpy's own message may suggest allow_pickle, which a map file never needs, so only the error type is named.
        raise FaultMapError(
            f"fault map {source} is unreadable or incomplete ({type(error).__name__}); delete it and generate it again"
        ) from error

    fault_map = FaultMap(spec=spec, cells=cells)
    actual_hash = fault_map.content_hash()
    if actual_hash != stored_hash:
        raise FaultMapError(
            f"fault map {source} does not match its hash (stored {stored_hash[:12]}, computed {actual_hash[:12]}); "
            "the file was changed or corrupted, so delete it and generate it again"
        )
    fault_map.verified_hash = actual_hash
    return fault_map


def _checked_cells(spec: FaultMapSpec, layer: LayerGeometry, indices: np.ndarray, values: np.ndarray, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Check a layer's stored faulty cells and return them as (int64 indices, int8 states)."""
    size = layer.rows * layer.columns * spec.cell_format.groups * spec.cell_format.slices
    indices = np.asarray(indices, dtype=np.int64)
    values = np.asarray(values, dtype=np.int8)
    if indices.shape != values.shape or indices.ndim != 1:
        raise FaultMapError(f"fault map {source} has mismatched cell lists for layer {layer.name}; delete it and generate it again")
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        raise FaultMapError(f"fault map {source} lists cells outside layer {layer.name} ({size} cells); delete it and generate it again")
    if indices.size > 1 and not np.all(indices[1:] > indices[:-1]):
        raise FaultMapError(f"fault map {source} lists the cells of layer {layer.name} out of order; delete it and generate it again")
    if not np.isin(values, (SA0, SA1)).all():
        raise FaultMapError(f"fault map {source} has cell states other than SA0 and SA1 in layer {layer.name}; delete it and generate it again")
    return indices, values


def check_geometry(fault_map: FaultMap, layers: list[LayerGeometry], cell_format: CellFormat, source: str = "fault map") -> None:
    """Raise FaultMapError unless the map was drawn for these layers and this cell format."""
    spec = fault_map.spec
    if spec.cell_format != cell_format:
        raise FaultMapError(
            f"{source} was drawn for {spec.weight_bits}-bit {spec.encoding} weights with {spec.bits_per_cell} bits per cell, "
            f"but the model stores {cell_format.weight_bits}-bit {cell_format.encoding} weights "
            f"with {cell_format.bits_per_cell} bits per cell; "
            "regenerate the maps with the same crossbar settings"
        )
    if tuple(layers) != spec.layers:
        expected = [(layer.name, layer.rows, layer.columns) for layer in layers]
        found = [(layer.name, layer.rows, layer.columns) for layer in spec.layers]
        raise FaultMapError(
            f"{source} was drawn for layers {found}, but the model has layers {expected}; "
            "regenerate the maps for this model architecture"
        )
