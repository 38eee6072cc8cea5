"""Fabrication-time stuck-at fault maps: drawing, saving, loading and checking them.

A fault map is one simulated chip: the state (healthy, SA0 or SA1) of every cell that stores a
weight of the model. Cells fail independently with probability ``fault_rate``; a faulty cell is
SA1 with probability ``sa1_share``, else SA0.

Each layer's draw uses its own generator keyed by (root seed, map index, layer index), and the
same two uniform numbers per cell decide the state at every rate. So chip ``j`` at rate 0.05 has
every fault that chip ``j`` has at rate 0.02, and curves over fault rates are paired.
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
from faultreg.errors import FaultMapError
from faultreg.io import atomic_path, write_text_atomic
from faultreg.seeding import numpy_generator

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


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

    def __post_init__(self) -> None:
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
        return cls(**{**values, "layers": layers})


@dataclass
class FaultMap:
    """Cell states of one chip: per layer an int8 array of shape (rows, columns, groups, slices)."""

    spec: FaultMapSpec
    states: dict[str, np.ndarray]

    def content_hash(self) -> str:
        """Return the SHA-256 of the spec and every layer's states, in layer order."""
        digest = hashlib.sha256()
        digest.update(json.dumps(self.spec.to_dict(), sort_keys=True).encode("utf-8"))
        for layer in self.spec.layers:
            array = np.ascontiguousarray(self.states[layer.name], dtype=np.int8)
            digest.update(layer.name.encode("utf-8"))
            digest.update(np.asarray(array.shape, dtype=np.int64).tobytes())
            digest.update(array.tobytes())
        return digest.hexdigest()

    def counts(self) -> dict[str, int]:
        """Return the number of cells, SA0 cells and SA1 cells over all layers."""
        cells = sum(int(array.size) for array in self.states.values())
        sa0 = sum(int(np.count_nonzero(array == SA0)) for array in self.states.values())
        sa1 = sum(int(np.count_nonzero(array == SA1)) for array in self.states.values())
        return {"cells": cells, "sa0": sa0, "sa1": sa1}


def generate_fault_map(spec: FaultMapSpec) -> FaultMap:
    """Draw the cell states of ``spec`` with generators derived from its seed and map index."""
    groups = spec.cell_format.groups
    slices = spec.cell_format.slices
    states: dict[str, np.ndarray] = {}
    for layer_index, layer in enumerate(spec.layers):
        generator = numpy_generator(spec.root_seed, "fault_map", spec.map_index, layer_index)
        shape = (layer.rows, layer.columns, groups, slices)
        fault_draw = generator.random(shape)
        type_draw = generator.random(shape)
        layer_states = np.full(shape, HEALTHY, dtype=np.int8)
        faulty = fault_draw < spec.fault_rate
        layer_states[faulty & (type_draw < spec.sa1_share)] = SA1
        layer_states[faulty & (type_draw >= spec.sa1_share)] = SA0
        states[layer.name] = layer_states
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
    arrays = {f"layer_{index}": fault_map.states[layer.name] for index, layer in enumerate(fault_map.spec.layers)}
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
            spec = FaultMapSpec.from_dict(json.loads(str(archive["spec_json"])))
            stored_hash = str(archive["sha256"])
            states = {layer.name: archive[f"layer_{index}"] for index, layer in enumerate(spec.layers)}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, zlib.error, EOFError, json.JSONDecodeError) as error:
        raise FaultMapError(f"fault map {source} is unreadable or incomplete ({error}); delete it and generate it again") from error

    fault_map = FaultMap(spec=spec, states=states)
    actual_hash = fault_map.content_hash()
    if actual_hash != stored_hash:
        raise FaultMapError(
            f"fault map {source} does not match its hash (stored {stored_hash[:12]}, computed {actual_hash[:12]}); "
            "the file was changed or corrupted, so delete it and generate it again"
        )
    return fault_map


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
