"""Area and power cost of fault mitigations on an ISAAC-like ReRAM accelerator tile.

The baseline is one tile assembled from a component library (``data/<preset>.yaml``): per-unit
power (mW) and area (mm²) times the number of units per IMA or per tile. Each mitigation function
returns what the method adds to one tile. Hardware repairs (AN-code ECC, spare columns, row
remapping) are compared there with the small logic that training regularizers need on chip
(weight clipping, dropout).

Component numbers come from ISAAC (Shafiee et al., ISCA 2016) as encoded in the PUMA simulator
(``include/constants.py``) and Accelergy's ``hwcomponents_library/library/isaac.py``. The ECC
bound comes from Feinberg, Wang and Ipek, HPCA 2018. The data file states the source of every
number and marks values that were not confirmed.
"""

from __future__ import annotations

import copy
import logging
import numbers
import os
from importlib import resources
from typing import Any, Mapping, NamedTuple

import pandas as pd
import yaml

from faultreg.config import available_cost_presets
from faultreg.errors import ConfigError
from faultreg.io import atomic_path

logger = logging.getLogger(__name__)

REQUIRED_TOP_LEVEL_FIELDS = (
    "version",
    "preset",
    "technology_nm",
    "clock_ghz",
    "hierarchy",
    "components",
    "adc_resolution_scaling",
    "ecc_an_code",
)
REQUIRED_COMPONENT_FIELDS = ("spec", "power_mw", "area_mm2", "source", "verified")
COUNT_FIELDS = ("count_per_ima", "count_per_tile")

# Components that the mitigation models below price their additions with.
CROSSBAR = "crossbar"
ADC = "adc"
SAMPLE_HOLD = "sample_hold"
# Remap tables and LFSR state are priced per byte of the smallest register of the library, the
# 256 B IMA output register, because each table is a few to a few hundred bytes per crossbar.
STORAGE = "output_register"
# Small control and saturation logic is sized as one 16-bit shift-and-add unit.
LOGIC = "shift_add"
DAC = "dac"
MODEL_COMPONENTS = (CROSSBAR, ADC, DAC, SAMPLE_HOLD, STORAGE, LOGIC)

SPARE_VALID_BITS = 1
REMAP_CONTROLLERS_PER_IMA = 1
CLIPPING_UNITS_PER_IMA = 1
DROPOUT_LFSR_BITS = 16
DROPOUT_THRESHOLD_BITS = 8
ECC_LOGIC_UNITS_PER_IMA = 2

ECC_SOURCE = "Feinberg, Wang, Ipek, HPCA 2018 (published upper bound)"
COMPONENT_SOURCE = "Estimate from ISAAC components (Shafiee et al., ISCA 2016; PUMA constants.py; Accelergy isaac.py)"

OVERHEAD_COLUMNS = (
    "mitigation",
    "kind",
    "extra_area_mm2_per_tile",
    "area_overhead_pct",
    "extra_power_mw_per_tile",
    "power_overhead_pct",
    "basis",
    "source",
)
MARKDOWN_FLOAT_FORMAT = ".4g"


class AreaPower(NamedTuple):
    """Area (mm²) and average power at full throughput (mW) of hardware, or of an addition to it."""

    area_mm2: float
    power_mw: float


# ---- component library ----------------------------------------------------------------------


def load_component_library(preset: str = "isaac") -> dict[str, Any]:
    """Read and validate the packaged component library of ``preset``.

    Raises :class:`ConfigError` for an unknown preset, listing the valid ones, and for a library
    file with a missing or invalid field, naming it.
    """
    presets = available_cost_presets()
    if preset not in presets:
        raise ConfigError(
            f"unknown cost preset {preset!r} (valid presets: {', '.join(presets)}); "
            "add src/faultreg/data/<preset>.yaml with the fields of isaac.yaml to define one"
        )

    resource = resources.files("faultreg").joinpath(f"data/{preset}.yaml")
    library = yaml.safe_load(resource.read_text(encoding="utf-8"))
    validate_component_library(library, preset)
    logger.debug("loaded component library %s version %s", preset, library["version"])
    return library


def with_adc_resolution(library: Mapping[str, Any], bits: int) -> dict[str, Any]:
    """Return a copy of ``library`` whose ADC has ``bits`` of resolution instead of its own.

    Area is the library's area point for ``bits`` (um2 converted to mm2). Power scales with the
    conversion energy at the same conversion rate: power(bits) = power * energy(bits) /
    energy(own bits), where the library's own ADC resolution is the point whose area matches
    the ADC component. Raises :class:`ConfigError` for a resolution without a point.
    """
    points = {int(point["bits"]): point for point in library["adc_resolution_scaling"]["points"]}
    if bits not in points:
        raise ConfigError(f"cost.adc_bits is {bits}, but the component library scales the ADC only for {sorted(points)} bits")
    adc = library["components"][ADC]
    own = min(points.values(), key=lambda point: abs(point["area_um2"] / 1e6 - adc["area_mm2"]))
    scaled = copy.deepcopy(dict(library))
    scaled["components"][ADC] = {
        **adc,
        "area_mm2": points[bits]["area_um2"] / 1e6,
        "power_mw": adc["power_mw"] * points[bits]["conversion_energy_pj"] / own["conversion_energy_pj"],
        "spec": f"{bits}-bit, scaled from: {adc['spec']}",
    }
    return scaled


def validate_component_library(library: Any, preset: str) -> None:
    """Raise :class:`ConfigError` naming the first missing or invalid field of a component library."""
    where = f"component library {preset!r}"
    if not isinstance(library, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(library).__name__}")
    for key in REQUIRED_TOP_LEVEL_FIELDS:
        if key not in library:
            raise ConfigError(f"{where} is missing the top-level field {key!r}")
    if library["preset"] != preset:
        raise ConfigError(f"{where} declares preset {library['preset']!r}, so rename the file or fix its preset field")

    _number(library, "technology_nm", where, positive=True)
    _number(library, "clock_ghz", where, positive=True)
    imas_per_tile = _field(library["hierarchy"], "imas_per_tile", f"{where}, hierarchy")
    _integer(imas_per_tile, f"{where}, hierarchy.imas_per_tile", minimum=1)

    components = library["components"]
    if not isinstance(components, dict) or not components:
        raise ConfigError(f"{where} must list its components as a non-empty mapping")
    for name, component in components.items():
        _validate_component(name, component, where)
    for name in MODEL_COMPONENTS:
        if name not in components:
            raise ConfigError(f"{where} is missing the component {name!r} that the mitigation models use")
    for key in ("rows", "columns"):
        size = _field(components[CROSSBAR], key, f"{where}, component {CROSSBAR!r}")
        _integer(size, f"{where}, crossbar.{key}", minimum=1)
    _number(components[STORAGE], "capacity_bytes", f"{where}, component {STORAGE!r}", positive=True)

    _validate_adc_scaling(library["adc_resolution_scaling"], where)
    _validate_ecc_bound(library["ecc_an_code"], where)


def _validate_component(name: str, component: Any, where: str) -> None:
    context = f"{where}, component {name!r}"
    if not isinstance(component, dict):
        raise ConfigError(f"{context} must be a mapping of fields")
    for key in REQUIRED_COMPONENT_FIELDS:
        _field(component, key, context)

    _number(component, "power_mw", context)
    _number(component, "area_mm2", context)
    _text(component, "spec", context)
    _text(component, "source", context)
    if not isinstance(component["verified"], bool):
        raise ConfigError(f"{context}: verified must be true or false, got {component['verified']!r}")

    counts = [key for key in COUNT_FIELDS if key in component]
    if len(counts) != 1:
        raise ConfigError(f"{context} needs exactly one of {' or '.join(COUNT_FIELDS)}, found {counts or 'none'}")
    _number(component, counts[0], context, positive=True)


def _validate_adc_scaling(scaling: Any, where: str) -> None:
    context = f"{where}, adc_resolution_scaling"
    if not isinstance(scaling, dict):
        raise ConfigError(f"{context} must be a mapping")
    _text(scaling, "source", context)
    points = _field(scaling, "points", context)
    if not isinstance(points, list) or not points:
        raise ConfigError(f"{context}.points must be a non-empty list")
    for index, point in enumerate(points):
        point_context = f"{context}.points[{index}]"
        if not isinstance(point, dict):
            raise ConfigError(f"{point_context} must be a mapping")
        _integer(_field(point, "bits", point_context), f"{point_context}.bits", minimum=1)
        _number(point, "conversion_energy_pj", point_context, positive=True)
        _number(point, "area_um2", point_context, positive=True)


def _validate_ecc_bound(bound: Any, where: str) -> None:
    context = f"{where}, ecc_an_code"
    if not isinstance(bound, dict):
        raise ConfigError(f"{context} must be a mapping")
    _number(bound, "area_overhead_pct", context)
    _number(bound, "energy_overhead_pct", context)
    _text(bound, "source", context)


def _field(mapping: Any, key: str, context: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{context} must be a mapping")
    if key not in mapping:
        raise ConfigError(f"{context} is missing the field {key!r}")
    return mapping[key]


def _number(mapping: Mapping[str, Any], key: str, context: str, *, positive: bool = False) -> float:
    value = _field(mapping, key, context)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{context}: {key} must be a number, got {value!r}")
    if value < 0 or (positive and value == 0):
        requirement = "> 0" if positive else ">= 0"
        raise ConfigError(f"{context}: {key} must be {requirement}, got {value!r}")
    return float(value)


def _text(mapping: Mapping[str, Any], key: str, context: str) -> str:
    value = _field(mapping, key, context)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{context}: {key} must be a non-empty string, got {value!r}")
    return value


def _integer(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _resolve(library: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return load_component_library() if library is None else library


# ---- baseline tile --------------------------------------------------------------------------


def _units_per_tile(library: Mapping[str, Any], name: str) -> float:
    """Return how many units of component ``name`` one tile contains (fractional when shared)."""
    component = library["components"][name]
    if "count_per_ima" in component:
        return component["count_per_ima"] * library["hierarchy"]["imas_per_tile"]
    return component["count_per_tile"]


def _units_cost(library: Mapping[str, Any], name: str, units: float) -> AreaPower:
    component = library["components"][name]
    return AreaPower(component["area_mm2"] * units, component["power_mw"] * units)


def _crossbars_per_tile(library: Mapping[str, Any]) -> float:
    return _units_per_tile(library, CROSSBAR)


def ima_totals(*, library: Mapping[str, Any] | None = None) -> AreaPower:
    """Sum the area and power of the components of one IMA."""
    library = _resolve(library)
    area_mm2 = 0.0
    power_mw = 0.0
    for component in library["components"].values():
        if "count_per_ima" in component:
            area_mm2 += component["area_mm2"] * component["count_per_ima"]
            power_mw += component["power_mw"] * component["count_per_ima"]
    return AreaPower(area_mm2, power_mw)


def tile_totals(*, library: Mapping[str, Any] | None = None) -> AreaPower:
    """Sum the area and power of one tile: its IMAs plus the per-tile components."""
    library = _resolve(library)
    imas_per_tile = library["hierarchy"]["imas_per_tile"]
    ima = ima_totals(library=library)
    area_mm2 = ima.area_mm2 * imas_per_tile
    power_mw = ima.power_mw * imas_per_tile
    for component in library["components"].values():
        if "count_per_tile" in component:
            area_mm2 += component["area_mm2"] * component["count_per_tile"]
            power_mw += component["power_mw"] * component["count_per_tile"]
    return AreaPower(area_mm2, power_mw)


# ---- mitigations ----------------------------------------------------------------------------


def _index_bits(size: int) -> int:
    """Return the bits that address one of ``size`` rows or columns, ceil(log2(size))."""
    return (size - 1).bit_length()


def _storage_cost(library: Mapping[str, Any], bits: float) -> AreaPower:
    """Price ``bits`` of storage at the area and power per byte of the STORAGE register.

    Power scales with capacity at the register's own activity, so this is an estimate for a
    table read about as often as the output register.
    """
    register = library["components"][STORAGE]
    return _units_cost(library, STORAGE, bits / 8 / register["capacity_bytes"])


def baseline(*, library: Mapping[str, Any] | None = None) -> AreaPower:
    """Return the zero overhead of the unmodified tile (training without a mitigation)."""
    return AreaPower(0.0, 0.0)


none = baseline


def an_code_ecc(*, library: Mapping[str, Any] | None = None) -> AreaPower:
    """Return the extra area and power per tile of AN-code error correction.

    Applies the published upper bound of Feinberg, Wang and Ipek (HPCA 2018), below 4.5 % area
    and 4.7 % energy, to the whole baseline tile. The energy overhead is used as a power overhead,
    which is valid at equal throughput (the same operations per second draw 4.7 % more energy).
    """
    library = _resolve(library)
    bound = library["ecc_an_code"]
    tile = tile_totals(library=library)
    return AreaPower(
        tile.area_mm2 * bound["area_overhead_pct"] / 100,
        tile.power_mw * bound["energy_overhead_pct"] / 100,
    )


def _extra_bit_lines(library: Mapping[str, Any], fraction: float) -> AreaPower:
    """Return the cost per tile of ``fraction`` more bit lines on every crossbar.

    Adds that fraction of the crossbar cells (area and power) and of the sample-and-holds (one
    per column). ADC power grows by the same fraction but ADC area does not, because the ADC
    count stays fixed and each ADC, time-multiplexed over the columns, samples that much faster
    to keep the crossbar read cycle.
    """
    cells = _units_cost(library, CROSSBAR, _crossbars_per_tile(library) * fraction)
    samples = _units_cost(library, SAMPLE_HOLD, _units_per_tile(library, SAMPLE_HOLD) * fraction)
    adc_power_mw = _units_cost(library, ADC, _units_per_tile(library, ADC)).power_mw * fraction
    return AreaPower(cells.area_mm2 + samples.area_mm2, cells.power_mw + samples.power_mw + adc_power_mw)


def ecc_check_columns(
    check_cells: int, codeword_weights: int, cells_per_weight: int, *, library: Mapping[str, Any] | None = None
) -> AreaPower:
    """Return the extra area and power per tile of ECC with check cells stored beside the data.

    A codeword of ``codeword_weights`` weights of ``cells_per_weight`` cells each gets
    ``check_cells`` check cells on the same crossbar row, so every crossbar needs a fraction
    f = check_cells / (codeword_weights * cells_per_weight) more bit lines, priced as in
    :func:`spare_columns`. Assumption: each IMA gets an encoder on the write path and a syndrome
    decoder and corrector on the output path. Each is sized as one 16-bit shift-and-add unit,
    because an AN code encodes by one multiplication by A and decodes by a residue modulo A.
    """
    library = _resolve(library)
    check_cells = _integer(check_cells, "ecc_check_cells", minimum=0)
    codeword_weights = _integer(codeword_weights, "ecc_codeword_weights", minimum=1)
    cells_per_weight = _integer(cells_per_weight, "cells per weight", minimum=1)
    if check_cells == 0:
        return AreaPower(0.0, 0.0)
    columns = _extra_bit_lines(library, check_cells / (codeword_weights * cells_per_weight))
    logic = _units_cost(library, LOGIC, ECC_LOGIC_UNITS_PER_IMA * library["hierarchy"]["imas_per_tile"])
    return AreaPower(columns.area_mm2 + logic.area_mm2, columns.power_mw + logic.power_mw)


def duplication(cells_per_weight: int, *, library: Mapping[str, Any] | None = None) -> AreaPower:
    """Return the extra area and power per tile of a full second copy of every crossbar.

    The copy brings its own cells, row DACs and column sample-and-holds, and doubles the ADC
    conversions at a fixed ADC count (each ADC samples twice as fast). A select table with one
    bit per weight of each crossbar selects the copy to read, priced per byte of the output
    register. Assumption: the copies are read one after the other through the same ADCs, so no
    ADC is added. Reading them at once would instead double the ADC area.
    """
    library = _resolve(library)
    cells_per_weight = _integer(cells_per_weight, "cells per weight", minimum=1)
    crossbar = library["components"][CROSSBAR]
    copies = _extra_bit_lines(library, 1.0)
    dacs = _units_cost(library, DAC, _units_per_tile(library, DAC))
    select_bits = _crossbars_per_tile(library) * crossbar["rows"] * crossbar["columns"] / cells_per_weight
    select = _storage_cost(library, select_bits)
    return AreaPower(copies.area_mm2 + dacs.area_mm2 + select.area_mm2, copies.power_mw + dacs.power_mw + select.power_mw)


def dropconnect(*, library: Mapping[str, Any] | None = None) -> AreaPower:
    """Return the extra area and power per tile of DropConnect masks during on-chip training.

    Assumption: like :func:`dropout`, each crossbar gets one 16-bit LFSR and one 8-bit threshold
    register, here gating the read of each weight's cells instead of each input. It also gets a
    mask register of one bit per bit line. All of it is priced per byte of the output register.
    """
    library = _resolve(library)
    crossbar = library["components"][CROSSBAR]
    bits = _crossbars_per_tile(library) * (DROPOUT_LFSR_BITS + DROPOUT_THRESHOLD_BITS + crossbar["columns"])
    return _storage_cost(library, bits)


def fault_injection(*, library: Mapping[str, Any] | None = None) -> AreaPower:
    """Return the extra area and power per tile of injecting random stuck cells in training.

    Assumption: the same mask hardware as :func:`dropconnect`, whose mask forces the selected
    cells to the all-zero or all-one slice value on read, plus one 8-bit register per crossbar
    for the SA1 share.
    """
    library = _resolve(library)
    extra = _storage_cost(library, _crossbars_per_tile(library) * DROPOUT_THRESHOLD_BITS)
    masks = dropconnect(library=library)
    return AreaPower(masks.area_mm2 + extra.area_mm2, masks.power_mw + extra.power_mw)


def spare_columns(spares: int, columns: int | None = None, *, library: Mapping[str, Any] | None = None) -> AreaPower:
    """Return the extra area and power per tile of ``spares`` spare columns on every crossbar.

    With f = spares / columns, the model adds per crossbar:

    - f of the crossbar's cells, area and power;
    - f more ADC conversions: the ADC count stays fixed and each ADC, time-multiplexed over the
      columns, samples f faster to keep the crossbar read cycle, so ADC power grows by f and
      ADC area does not;
    - f more sample-and-hold circuits (one per column);
    - a remap register with one entry per spare column, each ceil(log2(columns)) bits plus one
      valid bit, priced per byte of the output register.

    ``columns`` defaults to the library's crossbar columns.

    NOTE: the wider analog column multiplexer in front of the ADC is not priced, because neither
    source gives it a number (PUMA sets its analog multiplexer to zero area and power).
    """
    library = _resolve(library)
    if columns is None:
        columns = library["components"][CROSSBAR]["columns"]
    spares = _integer(spares, "spare_columns", minimum=0)
    columns = _integer(columns, "crossbar columns", minimum=1)
    if spares == 0:
        return AreaPower(0.0, 0.0)

    fraction = spares / columns
    crossbars = _crossbars_per_tile(library)
    cells = _units_cost(library, CROSSBAR, crossbars * fraction)
    samples = _units_cost(library, SAMPLE_HOLD, _units_per_tile(library, SAMPLE_HOLD) * fraction)
    adc_power_mw = _units_cost(library, ADC, _units_per_tile(library, ADC)).power_mw * fraction
    remap_bits = crossbars * spares * (_index_bits(columns) + SPARE_VALID_BITS)
    remap = _storage_cost(library, remap_bits)
    return AreaPower(
        cells.area_mm2 + samples.area_mm2 + remap.area_mm2,
        cells.power_mw + samples.power_mw + adc_power_mw + remap.power_mw,
    )


def row_remapping(entries: int, rows: int | None = None, *, library: Mapping[str, Any] | None = None) -> AreaPower:
    """Return the extra area and power per tile of a row remapping table on every crossbar.

    Each crossbar gets a table of ``entries`` entries of ceil(log2(rows)) bits, priced per byte of
    the output register. NOTE: the test that finds the faulty rows (for example a march test at
    power-up) is not priced. Assumption: the remapping is applied while inputs are written into the
    IMA's input register, by one controller per IMA sized as one shift-and-add unit (a lookup
    plus an address substitution). Zero entries means no table and no controller.

    ``rows`` defaults to the library's crossbar rows. Raises :class:`ConfigError` when
    ``entries`` is negative or exceeds ``rows``, because a remapping table needs at most one
    entry per row.
    """
    library = _resolve(library)
    if rows is None:
        rows = library["components"][CROSSBAR]["rows"]
    entries = _integer(entries, "remap_table_entries", minimum=0)
    rows = _integer(rows, "crossbar rows", minimum=1)
    if entries > rows:
        raise ConfigError(f"remap_table_entries is {entries} but a crossbar has {rows} rows, so set it to at most {rows}")
    if entries == 0:
        return AreaPower(0.0, 0.0)

    table = _storage_cost(library, _crossbars_per_tile(library) * entries * _index_bits(rows))
    controllers = _units_cost(library, LOGIC, REMAP_CONTROLLERS_PER_IMA * library["hierarchy"]["imas_per_tile"])
    return AreaPower(table.area_mm2 + controllers.area_mm2, table.power_mw + controllers.power_mw)


def weight_clipping(*, library: Mapping[str, Any] | None = None) -> AreaPower:
    """Return the extra area and power per tile of clipping weights as they are written.

    Assumption: one comparator-and-saturation stage per IMA write lane, with one lane per IMA,
    sized as one 16-bit shift-and-add unit (a comparator and a multiplexer are smaller).
    """
    library = _resolve(library)
    return _units_cost(library, LOGIC, CLIPPING_UNITS_PER_IMA * library["hierarchy"]["imas_per_tile"])


def dropout(*, library: Mapping[str, Any] | None = None) -> AreaPower:
    """Return the extra area and power per tile of generating dropout masks on chip.

    Assumption: one mask generator per crossbar row group, where a group is the rows of one
    crossbar. A generator is a 16-bit LFSR plus an 8-bit threshold register that sets the drop
    probability, priced per bit of the output register. The mask zeroes dropped inputs as they
    are written into the input register, so no per-row latch is needed, and the XOR taps and
    the 8-bit comparison are neglected next to the flip-flops.
    """
    library = _resolve(library)
    bits = _crossbars_per_tile(library) * (DROPOUT_LFSR_BITS + DROPOUT_THRESHOLD_BITS)
    return _storage_cost(library, bits)


# ---- overhead table -------------------------------------------------------------------------


def build_overhead_table(cost: Mapping[str, Any], crossbar: Mapping[str, Any]) -> pd.DataFrame:
    """Build the per-tile area and power overhead of every mitigation as a DataFrame.

    ``cost`` is the config section with ``preset``, ``spare_columns`` and
    ``remap_table_entries``. ``crossbar`` is the config section whose ``rows`` and ``columns``
    are used, and other keys are ignored. Percentages are relative to the tile summed from the
    components, whose totals are stored in ``table.attrs`` as ``tile_area_mm2`` and
    ``tile_power_mw``. Raises :class:`ConfigError` for a missing or invalid value.
    """
    library = _library_for(cost)
    spares = _integer(_field(cost, "spare_columns", "cost section"), "cost.spare_columns", minimum=0)
    entries = _integer(_field(cost, "remap_table_entries", "cost section"), "cost.remap_table_entries", minimum=0)
    rows = _integer(_field(crossbar, "rows", "crossbar section"), "crossbar.rows", minimum=1)
    columns = _integer(_field(crossbar, "columns", "crossbar section"), "crossbar.columns", minimum=1)
    _warn_on_geometry_mismatch(library, rows, columns)

    tile = tile_totals(library=library)
    _log_tile_totals(library, tile)
    records = [
        _overhead_record("ecc_an_code", "hardware", an_code_ecc(library=library), tile, _ecc_basis(library), ECC_SOURCE),
        _overhead_record(
            "spare_columns",
            "hardware",
            spare_columns(spares, columns, library=library),
            tile,
            f"{spares} spare columns per {columns}-column crossbar: extra cells, sample-and-holds and ADC conversions "
            f"at a fixed ADC count, plus one {_index_bits(columns) + SPARE_VALID_BITS}-bit remap register entry per spare.",
            COMPONENT_SOURCE,
        ),
        _overhead_record(
            "row_remapping",
            "hardware",
            row_remapping(entries, rows, library=library),
            tile,
            f"{entries}-entry table of {_index_bits(rows)}-bit row indices per crossbar at output-register cost per byte, "
            "plus one controller per IMA sized as a shift-and-add unit.",
            COMPONENT_SOURCE,
        ),
        _overhead_record(
            "weight_clipping",
            "software",
            weight_clipping(library=library),
            tile,
            "One saturation stage on the write lane of each IMA, sized as one 16-bit shift-and-add unit.",
            COMPONENT_SOURCE,
        ),
        _overhead_record(
            "dropout",
            "software",
            dropout(library=library),
            tile,
            f"One {DROPOUT_LFSR_BITS}-bit LFSR and {DROPOUT_THRESHOLD_BITS}-bit threshold register per crossbar "
            "at output-register cost per bit, masking inputs as they enter the input register.",
            COMPONENT_SOURCE,
        ),
    ]
    table = pd.DataFrame.from_records(records, columns=list(OVERHEAD_COLUMNS))
    table.attrs["tile_area_mm2"] = tile.area_mm2
    table.attrs["tile_power_mw"] = tile.power_mw
    return table


def _library_for(cost: Mapping[str, Any]) -> dict[str, Any]:
    """Return the component library of the cost section, with its ADC resolution applied."""
    library = load_component_library(_field(cost, "preset", "cost section"))
    bits = cost.get("adc_bits")
    return library if bits is None else with_adc_resolution(library, int(bits))


def _ecc_basis(library: Mapping[str, Any]) -> str:
    bound = library["ecc_an_code"]
    return (
        f"Published bound of {bound['area_overhead_pct']} % area and {bound['energy_overhead_pct']} % energy "
        "applied to the whole tile, with energy taken as power at equal throughput."
    )


def _overhead_record(
    mitigation: str, kind: str, extra: AreaPower, tile: AreaPower, basis: str, source: str
) -> dict[str, Any]:
    return {
        "mitigation": mitigation,
        "kind": kind,
        "extra_area_mm2_per_tile": extra.area_mm2,
        "area_overhead_pct": 100 * extra.area_mm2 / tile.area_mm2,
        "extra_power_mw_per_tile": extra.power_mw,
        "power_overhead_pct": 100 * extra.power_mw / tile.power_mw,
        "basis": basis,
        "source": source,
    }


def _warn_on_geometry_mismatch(library: Mapping[str, Any], rows: int, columns: int) -> None:
    reference = library["components"][CROSSBAR]
    if (rows, columns) != (reference["rows"], reference["columns"]):
        logger.warning(
            "crossbar is %dx%d but the %s component numbers are for %dx%d arrays; only the spare "
            "fraction and the remap entry widths follow the configured size",
            rows,
            columns,
            library["preset"],
            reference["rows"],
            reference["columns"],
        )


def _log_tile_totals(library: Mapping[str, Any], tile: AreaPower) -> None:
    published = library.get("published_totals")
    if published is None:
        logger.info("%s tile from components: %.4f mm2, %.1f mW", library["preset"], tile.area_mm2, tile.power_mw)
        return
    logger.info(
        "%s tile from components: %.4f mm2, %.1f mW (published totals: %s mm2, %s mW)",
        library["preset"],
        tile.area_mm2,
        tile.power_mw,
        published["tile_area_mm2"],
        published["tile_power_mw"],
    )


def write_overhead_table(
    table: pd.DataFrame, csv_path: str | os.PathLike, markdown_path: str | os.PathLike
) -> None:
    """Write the overhead table as CSV (full precision) and as a Markdown table.

    Both files are written through temporary files and moved into place only after both are
    complete, so a failure while rendering or writing leaves neither new file behind.
    """
    markdown = table.to_markdown(index=False, floatfmt=MARKDOWN_FLOAT_FORMAT) + "\n"
    with atomic_path(csv_path) as csv_temporary, atomic_path(markdown_path) as markdown_temporary:
        # The temporary names end in .tmp, so the format and compression are given explicitly.
        table.to_csv(csv_temporary, index=False, compression=None, encoding="utf-8")
        markdown_temporary.write_text(markdown, encoding="utf-8")
    logger.info("wrote overhead table to %s and %s", csv_path, markdown_path)


# ---- cost of each configured method (table T1) ----------------------------------------------

METHOD_COLUMNS = (
    "method",
    "kind",
    "components",
    "area_overhead_pct_ima",
    "area_overhead_pct_tile",
    "power_overhead_pct_ima",
    "power_overhead_pct_tile",
    "extra_area_mm2_per_crossbar",
    "extra_area_mm2_per_ima",
    "extra_area_mm2_per_tile",
    "extra_area_mm2_per_chip",
    "extra_power_mw_per_crossbar",
    "extra_power_mw_per_ima",
    "extra_power_mw_per_tile",
    "extra_power_mw_per_chip",
)


def method_components(
    method: Mapping[str, Any], crossbar: Mapping[str, Any], *, library: Mapping[str, Any] | None = None
) -> list[tuple[str, AreaPower]]:
    """Return (component, cost per tile) of every piece of hardware a method entry needs.

    ``method`` is one entry of the ``methods`` config section and ``crossbar`` the crossbar
    section (encoding and cell sizes give the cells per weight, rows and columns the array).
    Weight decay needs no hardware: the digital weight-update unit applies it. Row remapping
    gets one table entry per crossbar row, because its oracle may move every row.
    """
    library = _resolve(library)
    groups = 2 if crossbar["encoding"] == "differential" else 1
    cells_per_weight = groups * int(crossbar["weight_bits"]) // int(crossbar["bits_per_cell"])
    parts: list[tuple[str, AreaPower]] = []
    if method.get("clip_value") is not None:
        parts.append(("weight_clipping", weight_clipping(library=library)))
    if method.get("dropout", 0.0) > 0:
        parts.append(("dropout", dropout(library=library)))
    if method.get("dropconnect", 0.0) > 0:
        parts.append(("dropconnect", dropconnect(library=library)))
    if method.get("fault_injection_rate", 0.0) > 0:
        parts.append(("fault_injection", fault_injection(library=library)))
    repair = method.get("repair")
    if repair == "ecc":
        checks = ecc_check_columns(
            method.get("ecc_check_cells", 5), method.get("ecc_codeword_weights", 8), cells_per_weight, library=library
        )
        parts.append(("ecc_check_columns", checks))
    elif repair == "spare_columns":
        parts.append(("spare_columns", spare_columns(method.get("spares_per_crossbar", 8), int(crossbar["columns"]), library=library)))
    elif repair == "row_remapping":
        rows = int(crossbar["rows"])
        parts.append(("row_remapping", row_remapping(rows, rows, library=library)))
    elif repair == "duplication":
        parts.append(("duplication", duplication(cells_per_weight, library=library)))
    return parts


def build_method_table(methods: Mapping[str, Mapping[str, Any]], cost: Mapping[str, Any], crossbar: Mapping[str, Any]) -> pd.DataFrame:
    """Build table T1: the area and power each method adds, per crossbar, IMA, tile and chip.

    Every addition is spread evenly over the crossbars and IMAs of a tile, so the per-crossbar
    and per-IMA numbers are the per-tile ones divided by their counts, and a chip has
    ``hierarchy.tiles_per_chip`` tiles. Percentages are relative to one IMA and to one tile
    (the same as to one chip, whose totals are tiles only).
    """
    library = _library_for(cost)
    ima, tile = ima_totals(library=library), tile_totals(library=library)
    imas = library["hierarchy"]["imas_per_tile"]
    crossbars = _crossbars_per_tile(library)
    tiles = library["hierarchy"].get("tiles_per_chip", 1)
    records = []
    for name, method in methods.items():
        parts = method_components(method, crossbar, library=library)
        area = sum(part.area_mm2 for _, part in parts)
        power = sum(part.power_mw for _, part in parts)
        hardware = method.get("repair") is not None
        software = any(component not in ("ecc_check_columns", "spare_columns", "row_remapping", "duplication") for component, _ in parts)
        if hardware and software:
            kind = "hardware and software"
        elif hardware:
            kind = "hardware"
        elif software:
            kind = "software"
        else:
            kind = "none"
        records.append({
            "method": name,
            "kind": kind,
            "components": " + ".join(component for component, _ in parts) or "none",
            "area_overhead_pct_ima": 100 * area / imas / ima.area_mm2,
            "area_overhead_pct_tile": 100 * area / tile.area_mm2,
            "power_overhead_pct_ima": 100 * power / imas / ima.power_mw,
            "power_overhead_pct_tile": 100 * power / tile.power_mw,
            "extra_area_mm2_per_crossbar": area / crossbars,
            "extra_area_mm2_per_ima": area / imas,
            "extra_area_mm2_per_tile": area,
            "extra_area_mm2_per_chip": area * tiles,
            "extra_power_mw_per_crossbar": power / crossbars,
            "extra_power_mw_per_ima": power / imas,
            "extra_power_mw_per_tile": power,
            "extra_power_mw_per_chip": power * tiles,
        })
    table = pd.DataFrame.from_records(records, columns=list(METHOD_COLUMNS))
    table.attrs.update({"ima_area_mm2": ima.area_mm2, "ima_power_mw": ima.power_mw, "tile_area_mm2": tile.area_mm2, "tile_power_mw": tile.power_mw})
    return table
