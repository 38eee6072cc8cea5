"""A model running on a (possibly faulty) crossbar chip.

The model keeps full-precision master weights, as a digital weight-update unit would. Every
forward pass writes each Linear and Conv2d weight into its cells (quantize, slice, differential
pair), reads it back through the chip's stuck cells and computes with what it reads. Gradients
pass straight through the read to the master weights, so each optimizer step is written back
through the same stuck cells on the next pass. Biases stay in the digital periphery and are
never faulty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from faultreg.crossbar import (
    HEALTHY,
    SA1,
    CellFormat,
    apply_stuck_masks,
    decode,
    dense_states_from_cells,
    encode,
    masks_from_cells,
    straight_through,
    stuck_masks,
)
from faultreg.faults import FaultMap, check_geometry
from faultreg.models import crossbar_layers, layer_geometries
from faultreg.regularizers import DropConnect, FaultInjection
from faultreg.repair import RepairSettings, effective_map


@dataclass(frozen=True)
class StorageSettings:
    """Mapping of weights to codes: cell format plus the range R of the all-ones code.

    ``range_mode`` is ``fixed`` (R = ``weight_range``), ``max_abs`` (R = the layer's maximum
    |w| at each write) or ``clip`` (R = ``clip_value``, the range matched to weight clipping).
    """

    cell_format: CellFormat
    range_mode: str
    weight_range: float
    clip_value: float | None = None

    def __post_init__(self) -> None:
        if self.range_mode not in ("fixed", "max_abs", "clip"):
            raise ValueError(f"unknown range_mode {self.range_mode!r}; use fixed, max_abs or clip")
        if self.range_mode == "clip" and (self.clip_value is None or self.clip_value <= 0):
            raise ValueError(f"range_mode 'clip' needs a positive clip_value, got {self.clip_value}")
        if self.range_mode == "fixed" and self.weight_range <= 0:
            raise ValueError(f"weight_range must be positive, got {self.weight_range}")

    def range_for(self, weight: torch.Tensor) -> float | torch.Tensor:
        """Return R for writing ``weight``."""
        if self.range_mode == "fixed":
            return self.weight_range
        if self.range_mode == "clip":
            return float(self.clip_value)
        largest = weight.detach().abs().max()
        return torch.where(largest > 0, largest, torch.ones_like(largest))

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as plain values for checkpoints and result rows."""
        return {
            "weight_bits": self.cell_format.weight_bits,
            "bits_per_cell": self.cell_format.bits_per_cell,
            "encoding": self.cell_format.encoding,
            "range_mode": self.range_mode,
            "weight_range": self.weight_range,
            "clip_value": self.clip_value,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "StorageSettings":
        """Rebuild settings from :meth:`to_dict` output."""
        return cls(
            cell_format=CellFormat(int(values["weight_bits"]), int(values["bits_per_cell"]), str(values["encoding"])),
            range_mode=str(values["range_mode"]),
            weight_range=float(values["weight_range"]),
            clip_value=None if values.get("clip_value") is None else float(values["clip_value"]),
        )


def storage_for_method(crossbar: dict[str, Any], method: dict[str, Any]) -> StorageSettings:
    """Combine the ``crossbar`` config section with one method's overrides."""
    return StorageSettings(
        cell_format=CellFormat(crossbar["weight_bits"], crossbar["bits_per_cell"], crossbar["encoding"]),
        range_mode=method.get("range_mode") or crossbar["range_mode"],
        weight_range=float(crossbar["weight_range"]),
        clip_value=method.get("clip_value"),
    )


class CrossbarChip(nn.Module):
    """Run ``model`` with its crossbar weights stored in cells, faulty or not.

    Without a fault map the chip still quantizes, so a fault-free chip and a chip whose map has
    no faulty cell compute the same numbers.
    """

    def __init__(
        self,
        model: nn.Module,
        storage: StorageSettings,
        fault_map: FaultMap | None = None,
        mask_stuck_gradients: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.storage = storage
        self.mask_stuck_gradients = mask_stuck_gradients
        self.layer_names = [name for name, _ in crossbar_layers(model)]
        # The model's layers do not change after construction, so the lookup is built once.
        self._crossbar_modules = dict(crossbar_layers(model))
        # Per layer, the faulty cells as numpy (flat indices into the (rows, columns, groups,
        # slices) states of the fault map, stuck states), or the dense (groups, slices,
        # *weight_shape) states once endurance or a caller needs them.
        self._faulty: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._dense: dict[str, torch.Tensor] = {}
        self._masks: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._healthy: dict[str, torch.Tensor] = {}
        self.fault_map_hash: str | None = None
        # Training-time perturbations of the read weights; both are off at inference.
        self.dropconnect: DropConnect | None = None
        self.fault_injection: FaultInjection | None = None
        if fault_map is not None:
            self.install_fault_map(fault_map)

    def _modules_by_name(self) -> dict[str, nn.Module]:
        return self._crossbar_modules

    def _states_shape(self, name: str) -> tuple[int, ...]:
        cell_format = self.storage.cell_format
        return (cell_format.groups, cell_format.slices, *self._modules_by_name()[name].weight.shape)

    def install_fault_map(
        self, fault_map: FaultMap, repair: RepairSettings | None = None, repaired: FaultMap | None = None
    ) -> None:
        """Take the faulty cells of ``fault_map`` and build their masks once, on the model's device.

        Works from the list of faulty cells, so its cost grows with the number of faults, not
        with the number of cells. With ``repair``, the chip gets the map the repair leaves
        (row remapping decides with the model's current weights), while ``fault_map_hash`` stays
        the hash of the fabricated map, so repaired and unrepaired runs pair up by chip.
        ``repaired`` is that map when the caller already computed it for another model.
        """
        check_geometry(fault_map, layer_geometries(self.model), self.storage.cell_format)
        installed = fault_map
        if repaired is not None:
            installed = repaired
        elif repair is not None:
            weights = None
            if repair.needs_weights:
                modules = self._modules_by_name()
                weights = {name: self._crossbar_layout(modules[name].weight) for name in self.layer_names}
            installed = effective_map(fault_map, repair, weights)
        for name in self.layer_names:
            self._set_faulty_cells(name, *installed.faulty_cells(name))
        self.fault_map_hash = fault_map.sha256()

    @staticmethod
    def _crossbar_layout(weight: torch.Tensor) -> np.ndarray:
        """Return a weight as its (fan-in rows, output columns) crossbar matrix, as numpy."""
        return weight.detach().reshape(weight.shape[0], -1).T.cpu().numpy()

    def clear_faults(self) -> None:
        """Make every cell healthy again, as on a fault-free chip."""
        for name in self.layer_names:
            self._set_faulty_cells(name, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8))
        self.fault_map_hash = None

    def _set_faulty_cells(self, name: str, indices: np.ndarray, values: np.ndarray) -> None:
        """Install faulty cells given as flat indices into ``(rows, columns, groups, slices)`` states."""
        weight = self._modules_by_name()[name].weight
        and_mask, or_mask, healthy = masks_from_cells(indices, values, self.storage.cell_format, tuple(weight.shape))
        self._faulty[name] = (indices, values)
        self._dense.pop(name, None)
        self._masks[name] = (torch.from_numpy(and_mask).to(weight.device), torch.from_numpy(or_mask).to(weight.device))
        self._healthy[name] = torch.from_numpy(healthy).to(device=weight.device, dtype=weight.dtype)

    def layer_states(self, name: str) -> torch.Tensor:
        """Return the int8 cell states of layer ``name``, shape ``(groups, slices, *weight_shape)``.

        A chip that never had a fault map gets all-healthy states on first use.
        """
        if name not in self._faulty and name not in self._dense:
            self.clear_faults()
        if name not in self._dense:
            indices, values = self._faulty[name]
            weight = self._modules_by_name()[name].weight
            self._dense[name] = dense_states_from_cells(
                torch.from_numpy(indices).to(weight.device),
                torch.from_numpy(values).to(weight.device),
                self.storage.cell_format,
                tuple(weight.shape),
            )
        return self._dense[name]

    def set_layer_states(self, name: str, states: torch.Tensor) -> None:
        """Replace the cell states of layer ``name`` and rebuild its masks."""
        weight = self._modules_by_name()[name].weight
        self._dense[name] = states
        self._faulty.pop(name, None)
        self._masks[name] = stuck_masks(states, self.storage.cell_format)
        # A weight is healthy when none of its cells, in any group or slice, is stuck.
        self._healthy[name] = (states == HEALTHY).all(dim=1).all(dim=0).to(weight.dtype)

    def add_stuck_cells(self, name: str, indices: torch.Tensor, stuck: torch.Tensor) -> None:
        """Make cells of layer ``name`` stuck in place, updating only the masks they touch.

        ``indices`` are distinct flat indices into :meth:`layer_states` and ``stuck`` their new
        states (SA0 or SA1). Wear tracking calls this at every step for the few cells that fail
        there, which a full rebuild of the masks would make slow.
        """
        states = self.layer_states(name)
        states.view(-1)[indices] = stuck
        cell_format = self.storage.cell_format
        weights = states[0, 0].numel()
        group = indices // (cell_format.slices * weights)
        position = (indices // weights) % cell_format.slices
        weight = indices % weights
        bits = torch.bitwise_left_shift(torch.full_like(position, cell_format.slice_max), position * cell_format.bits_per_cell)
        target = group * weights + weight
        # Each cell owns distinct bits of its code, so summing the bits per weight equals OR-ing.
        is_sa1 = stuck == SA1
        size = cell_format.groups * weights
        clear = torch.zeros(size, dtype=torch.int64, device=states.device).index_add_(0, target[~is_sa1], bits[~is_sa1])
        set_bits = torch.zeros(size, dtype=torch.int64, device=states.device).index_add_(0, target[is_sa1], bits[is_sa1])
        and_mask, or_mask = self._masks[name]
        and_mask &= ~clear.to(torch.int32).reshape(and_mask.shape)
        or_mask |= set_bits.to(torch.int32).reshape(or_mask.shape)
        self._healthy[name].view(-1)[weight] = 0.0

    def faulty_cell_counts(self) -> tuple[int, int]:
        """Return (faulty cells, all cells) over every crossbar layer."""
        faulty = 0
        cells = 0
        for name in self.layer_names:
            if name in self._dense:
                faulty += int(torch.count_nonzero(self._dense[name]))
            elif name in self._faulty:
                faulty += int(self._faulty[name][0].size)
            cells += math.prod(self._states_shape(name))
        return faulty, cells

    def stored_weight(
        self, name: str, weight: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Return ``weight`` as the chip reads it back from layer ``name``'s cells.

        ``masks`` replaces the layer's own stuck-cell masks, as fault injection does.
        """
        weight_range = self.storage.range_for(weight)
        codes = encode(weight, self.storage.cell_format, weight_range)
        if masks is None:
            masks = self._masks.get(name)
        if masks is not None:
            codes = apply_stuck_masks(codes, *masks)
        return decode(codes, self.storage.cell_format, weight_range, dtype=weight.dtype, written=weight)

    def stored_weights(self) -> dict[str, torch.Tensor]:
        """Return every crossbar weight as read back, keyed like ``state_dict``."""
        modules = self._modules_by_name()
        with torch.no_grad():
            return {f"{name}.weight": self.stored_weight(name, modules[name].weight) for name in self.layer_names}

    def run(self, parameters: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        """Run the model on ``images`` with crossbar weights from ``parameters``.

        Inference reads the weights once with :meth:`stored_weights` and reuses them for every
        batch, which gives the same outputs as :meth:`forward` without re-encoding per batch.
        """
        return functional_call(self.model, parameters, (images,))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        modules = self._modules_by_name()
        parameters = {}
        for name in self.layer_names:
            master = modules[name].weight
            with torch.no_grad():
                masks = self._masks.get(name)
                if self.training and self.fault_injection is not None:
                    masks = self.fault_injection.combine(tuple(master.shape), master.device, *(masks or (None, None)))
                stored = self.stored_weight(name, master, masks)

            gradient_mask = self._healthy.get(name) if self.mask_stuck_gradients else None
            if self.training and self.dropconnect is not None:
                keep_scale = self.dropconnect.keep_scale(master)
                stored = stored * keep_scale
                gradient_mask = keep_scale if gradient_mask is None else gradient_mask * keep_scale
            parameters[f"{name}.weight"] = straight_through(master, stored, gradient_mask)
        return functional_call(self.model, parameters, (images,))
