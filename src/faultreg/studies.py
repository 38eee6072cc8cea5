"""Fault maps of the studies beyond the main rate sweep, and where their files go.

* stuck-type maps: the main maps' fault sites with another SA1 share. The fault-site draws do
  not depend on the share (see :mod:`faultreg.patterns`), so chip j at share 0 and chip j at
  share 1 have the same faulty cells, SA0 in one and SA1 in the other.
* sensitivity maps: the main map at the study rate with every fault removed except those in
  one slice position of one layer. The rate is the faulty fraction of the targeted cells.

The workflow and the ``faultreg study-maps`` command both take file names from here, so each
map has one name wherever it is built or read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faultreg.config import stuck_type_rates



def rate_label(rate: float) -> str:
    """Return the file-name form of a rate or share, e.g. 0.05 -> '0.05'."""
    return format(float(rate), "g")


@dataclass(frozen=True)
class StudyMap:
    """One fault map of a study: its file name under the model's map folder and its spec changes."""

    relative_path: str
    fault_rate: float
    map_index: int
    sa1_share: float | None = None
    slice_positions: tuple[int, ...] | None = None
    target_layers: tuple[str, ...] | None = None


def main_map_name(rate: float, map_index: int) -> str:
    """File name of main map ``map_index`` at ``rate``."""
    return f"rate{rate_label(rate)}_map{map_index}.npz"


def stuck_type_map_name(sa1_share: float, rate: float, map_index: int) -> str:
    """File name of a stuck-type map."""
    return f"stuck_type/sa1_{rate_label(sa1_share)}_rate{rate_label(rate)}_map{map_index}.npz"


def stuck_type_maps(config: dict[str, Any]) -> list[StudyMap]:
    """Return the stuck-type maps that are not main maps (the main share reuses the main maps)."""
    study = config["studies"]["stuck_type"]
    if not study["enabled"]:
        return []
    main_share = float(config["faults"]["sa1_share"])
    maps = []
    for share in study["sa1_shares"]:
        if float(share) == main_share:
            continue
        for rate in stuck_type_rates(config):
            for index in range(config["faults"]["maps_per_rate"]):
                maps.append(StudyMap(stuck_type_map_name(share, rate, index), float(rate), index, sa1_share=float(share)))
    return maps


def stuck_type_map_path(config: dict[str, Any], sa1_share: float, rate: float, map_index: int) -> str:
    """Return the name of the map of chip ``map_index`` at ``rate`` with ``sa1_share``, main or study."""
    if float(sa1_share) == float(config["faults"]["sa1_share"]):
        return main_map_name(rate, map_index)
    return stuck_type_map_name(sa1_share, rate, map_index)


def layer_names(model_settings: dict[str, Any]) -> list[str]:
    """Return the names of the crossbar layers of the configured model, in forward order."""
    from faultreg.models import build_model, crossbar_layers  # torch loads only when needed

    return [name for name, _ in crossbar_layers(build_model(model_settings))]


def sensitivity_map_name(layer: str, position: int, map_index: int) -> str:
    """File name of a sensitivity map."""
    return f"sensitivity/{layer}_slice{position}_map{map_index}.npz"


def sensitivity_maps(config: dict[str, Any]) -> list[StudyMap]:
    """Return one map per (layer, slice position, map index) of the sensitivity study."""
    study = config["studies"]["sensitivity"]
    if not study["enabled"]:
        return []
    slices = int(config["crossbar"]["weight_bits"]) // int(config["crossbar"]["bits_per_cell"])
    maps = []
    for layer in layer_names(config["model"]):
        for position in range(slices):
            for index in range(config["faults"]["maps_per_rate"]):
                maps.append(
                    StudyMap(
                        sensitivity_map_name(layer, position, index),
                        float(study["rate"]),
                        index,
                        slice_positions=(position,),
                        target_layers=(layer,),
                    )
                )
    return maps


STUDY_MAPS = {"stuck_type": stuck_type_maps, "sensitivity": sensitivity_maps}


def study_maps(config: dict[str, Any], study: str) -> list[StudyMap]:
    """Return the maps of ``study`` (stuck_type or sensitivity)."""
    if study not in STUDY_MAPS:
        raise ValueError(f"unknown study {study!r}; use one of {', '.join(STUDY_MAPS)}")
    return STUDY_MAPS[study](config)


def figure_names(config: dict[str, Any]) -> list[str]:
    """Return the figures the workflow draws: the two main figures plus one per enabled study."""
    studies = config["studies"]
    names = ["exploding_weights", "accuracy_vs_fault_rate"]
    names += [name for name in ("stuck_type", "sensitivity", "clip_sweep", "endurance", "tradeoff") if studies[name]["enabled"]]
    return names
