"""Tests of faultreg.cost against hand calculations from the numbers in data/isaac.yaml.

Per-unit numbers used below, as power (mW), area (mm²) and count:

    per IMA:  ADC 2, 0.0012, 8               DAC 0.00390625, 1.66015625e-7, 1024
              S&H 9.7e-6, 3.90625e-8, 1024   crossbar 0.3, 2.5e-5, 8
              shift-and-add 0.05, 6e-5, 4    input register 1.24, 0.0021, 1
              output register (256 B) 0.23, 0.00077, 1
    per tile: eDRAM 20.7, 0.083, 1           bus 7, 0.090, 1
              router 42, 0.150, 0.25         sigmoid 0.26, 0.0003, 2
              shift-and-add 0.05, 6e-5, 1    max-pool 0.4, 0.00024, 1
              output register 1.68, 0.0032, 1

A tile has 12 IMAs, so 96 crossbars.
"""

from __future__ import annotations

import copy
import logging
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
import yaml

from faultreg import cost
from faultreg.errors import ConfigError

COST_SECTION = {"preset": "isaac", "spare_columns": 8, "remap_table_entries": 128}
CROSSBAR_SECTION = {"weight_bits": 16, "bits_per_cell": 2, "rows": 128, "columns": 128, "range_mode": "fixed"}

# Hand sums of the components listed in the module docstring.
IMA_AREA_MM2 = 0.0096 + 0.00017 + 0.00004 + 0.0002 + 0.00024 + 0.0021 + 0.00077  # 0.01312
IMA_POWER_MW = 16 + 4 + 0.0099328 + 2.4 + 0.2 + 1.24 + 0.23  # 24.0799328
TILE_AREA_MM2 = 12 * 0.01312 + 0.083 + 0.090 + 0.0375 + 0.0006 + 0.00006 + 0.00024 + 0.0032  # 0.37204
TILE_POWER_MW = 12 * 24.0799328 + 20.7 + 7 + 10.5 + 0.52 + 0.05 + 0.4 + 1.68  # 329.8091936

UNIT_SUFFIXES = ("_mw", "_mm2", "_pj", "_um2", "_bytes", "_pct")
COUNT_KEYS = {"count_per_ima", "count_per_tile", "rows", "columns", "bits_per_cell", "bits"}


@pytest.fixture(scope="module")
def library() -> dict:
    return cost.load_component_library("isaac")


def with_power_only_from(library: dict, kept: set[str]) -> dict:
    """Return a copy of the library in which every component outside ``kept`` draws 0 mW."""
    changed = copy.deepcopy(library)
    for name, component in changed["components"].items():
        if name not in kept:
            component["power_mw"] = 0.0
    return changed


def raw_library() -> dict:
    text = resources.files("faultreg").joinpath("data/isaac.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


# ---- library file ---------------------------------------------------------------------------


def test_library_header(library: dict) -> None:
    assert library["preset"] == "isaac"
    assert library["technology_nm"] == 32
    assert library["clock_ghz"] == 1.2
    assert isinstance(library["version"], int)
    assert library["hierarchy"]["imas_per_tile"] == 12


def test_components_have_units_and_sources() -> None:
    components = raw_library()["components"]
    for name, component in components.items():
        assert isinstance(component["power_mw"], (int, float)), name
        assert isinstance(component["area_mm2"], (int, float)), name
        assert component["power_mw"] >= 0, name
        assert component["area_mm2"] >= 0, name
        assert isinstance(component["source"], str) and component["source"].strip(), name
        assert isinstance(component["spec"], str) and component["spec"].strip(), name
        assert isinstance(component["verified"], bool), name
        assert ("count_per_ima" in component) != ("count_per_tile" in component), name
        for key, value in component.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert key.endswith(UNIT_SUFFIXES) or key in COUNT_KEYS, f"{name}.{key} has no unit"


def test_library_lists_tile_components() -> None:
    names = set(raw_library()["components"])
    expected = {"adc", "dac", "sample_hold", "crossbar", "shift_add", "edram", "bus", "router",
                "input_register", "output_register", "sigmoid", "maxpool"}
    assert expected <= names


def test_adc_scaling_table() -> None:
    scaling = raw_library()["adc_resolution_scaling"]
    assert scaling["source"].strip()
    points = scaling["points"]
    assert [point["bits"] for point in points] == list(range(4, 11))
    energies = [point["conversion_energy_pj"] for point in points]
    areas = [point["area_um2"] for point in points]
    assert energies == sorted(energies)
    assert areas == sorted(areas)


def test_adc_scaling_matches_adc_component(library: dict) -> None:
    eight_bit = next(point for point in library["adc_resolution_scaling"]["points"] if point["bits"] == 8)
    adc = library["components"]["adc"]
    # 1200 um² = 0.0012 mm²; 2 mW at 1.2 GS/s = 1.667 pJ per conversion.
    assert eight_bit["area_um2"] * 1e-6 == pytest.approx(adc["area_mm2"])
    assert eight_bit["conversion_energy_pj"] == pytest.approx(adc["power_mw"] / 1.2, abs=0.005)


def test_ecc_bound_in_library(library: dict) -> None:
    bound = library["ecc_an_code"]
    assert bound["area_overhead_pct"] == 4.5
    assert bound["energy_overhead_pct"] == 4.7
    assert "Feinberg" in bound["source"]


def test_unknown_preset_rejected() -> None:
    with pytest.raises(ConfigError, match="'puma'.*valid presets: isaac"):
        cost.load_component_library("puma")


@pytest.mark.parametrize("field", ["power_mw", "area_mm2", "source", "spec", "verified"])
def test_missing_component_field_rejected(library: dict, field: str) -> None:
    broken = copy.deepcopy(library)
    del broken["components"]["adc"][field]
    with pytest.raises(ConfigError, match=f"'adc'.*'{field}'"):
        cost.validate_component_library(broken, "isaac")


def test_missing_count_rejected(library: dict) -> None:
    broken = copy.deepcopy(library)
    del broken["components"]["dac"]["count_per_ima"]
    with pytest.raises(ConfigError, match="'dac'.*count_per_ima or count_per_tile"):
        cost.validate_component_library(broken, "isaac")


def test_non_numeric_power_rejected(library: dict) -> None:
    broken = copy.deepcopy(library)
    broken["components"]["edram"]["power_mw"] = "20.7 mW"
    with pytest.raises(ConfigError, match="'edram'.*power_mw must be a number"):
        cost.validate_component_library(broken, "isaac")


def test_empty_source_rejected(library: dict) -> None:
    broken = copy.deepcopy(library)
    broken["components"]["router"]["source"] = "  "
    with pytest.raises(ConfigError, match="'router'.*source"):
        cost.validate_component_library(broken, "isaac")


def test_missing_top_level_field_rejected(library: dict) -> None:
    broken = copy.deepcopy(library)
    del broken["ecc_an_code"]
    with pytest.raises(ConfigError, match="'ecc_an_code'"):
        cost.validate_component_library(broken, "isaac")


# ---- baseline tile --------------------------------------------------------------------------


def test_ima_totals_hand_sum(library: dict) -> None:
    ima = cost.ima_totals(library=library)
    assert ima.area_mm2 == pytest.approx(0.01312)
    assert ima.power_mw == pytest.approx(24.0799328)
    assert ima.area_mm2 == pytest.approx(IMA_AREA_MM2)
    assert ima.power_mw == pytest.approx(IMA_POWER_MW)


def test_tile_totals_hand_sum(library: dict) -> None:
    tile = cost.tile_totals(library=library)
    assert tile.area_mm2 == pytest.approx(0.37204)
    assert tile.power_mw == pytest.approx(329.8091936)
    assert tile.area_mm2 == pytest.approx(TILE_AREA_MM2)
    assert tile.power_mw == pytest.approx(TILE_POWER_MW)


def test_tile_totals_near_published(library: dict) -> None:
    tile = cost.tile_totals(library=library)
    published = library["published_totals"]
    assert tile.area_mm2 == pytest.approx(published["tile_area_mm2"], rel=0.005)
    assert tile.power_mw == pytest.approx(published["tile_power_mw"], rel=0.005)


def test_default_library_loaded_when_omitted(library: dict) -> None:
    assert cost.tile_totals() == cost.tile_totals(library=library)


# ---- mitigations ----------------------------------------------------------------------------


def test_baseline_and_none_are_zero(library: dict) -> None:
    assert cost.baseline(library=library) == (0.0, 0.0)
    assert cost.none(library=library) == (0.0, 0.0)


def test_ecc_hand_calc(library: dict) -> None:
    extra = cost.an_code_ecc(library=library)
    assert extra.area_mm2 == pytest.approx(0.045 * 0.37204)  # 0.0167418 mm²
    assert extra.power_mw == pytest.approx(0.047 * 329.8091936)  # 15.5010321 mW


def test_spare_columns_adc_term(library: dict) -> None:
    adc_only = with_power_only_from(library, {"adc"})
    extra = cost.spare_columns(8, 128, library=adc_only)
    # 8/128 x 16 mW per IMA x 12 IMAs.
    assert extra.power_mw == pytest.approx(12.0)


def test_spare_columns_crossbar_term(library: dict) -> None:
    crossbar_only = with_power_only_from(library, {"crossbar"})
    extra = cost.spare_columns(8, 128, library=crossbar_only)
    # 8/128 x 0.3 mW x 96 crossbars.
    assert extra.power_mw == pytest.approx(1.8)


def test_spare_columns_sample_hold_term(library: dict) -> None:
    sample_hold_only = with_power_only_from(library, {"sample_hold"})
    extra = cost.spare_columns(8, 128, library=sample_hold_only)
    # 8/128 x 9.7e-6 mW x 1024 per IMA x 12 IMAs.
    assert extra.power_mw == pytest.approx(0.0074496)


def test_spare_columns_remap_register_term(library: dict) -> None:
    register_only = with_power_only_from(library, {"output_register"})
    extra = cost.spare_columns(8, 128, library=register_only)
    # 96 crossbars x 8 spares x (7 index bits + 1 valid bit) = 6144 bits = 768 B = 3 registers.
    assert extra.power_mw == pytest.approx(3 * 0.23)


def test_spare_columns_hand_calc(library: dict) -> None:
    extra = cost.spare_columns(8, 128, library=library)
    # Area: cells 8/128 x 96 x 2.5e-5 + S&H 8/128 x 12 x 0.00004 + register 3 x 0.00077.
    assert extra.area_mm2 == pytest.approx(0.00015 + 0.00003 + 0.00231)
    # Power: cells 1.8 + ADC 12 + S&H 0.0074496 + register 0.69.
    assert extra.power_mw == pytest.approx(1.8 + 12.0 + 0.0074496 + 0.69)


def test_spare_columns_default_columns(library: dict) -> None:
    assert cost.spare_columns(8, library=library) == cost.spare_columns(8, 128, library=library)


def test_spare_columns_zero_is_free(library: dict) -> None:
    assert cost.spare_columns(0, 128, library=library) == (0.0, 0.0)


def test_spare_columns_negative_rejected(library: dict) -> None:
    with pytest.raises(ConfigError, match="spare_columns must be >= 0, got -1"):
        cost.spare_columns(-1, 128, library=library)


def test_spare_columns_non_integer_rejected(library: dict) -> None:
    with pytest.raises(ConfigError, match="spare_columns must be an integer"):
        cost.spare_columns(2.5, 128, library=library)


def test_row_remapping_hand_calc(library: dict) -> None:
    extra = cost.row_remapping(128, 128, library=library)
    # Table: 96 crossbars x 128 entries x 7 bits = 86016 bits = 10752 B = 42 registers of 256 B.
    # Controller: 12 shift-and-add units, 0.00072 mm² and 0.6 mW.
    assert extra.area_mm2 == pytest.approx(42 * 0.00077 + 0.00072)  # 0.03306 mm²
    assert extra.power_mw == pytest.approx(42 * 0.23 + 0.6)  # 10.26 mW


def test_row_remapping_zero_entries_is_free(library: dict) -> None:
    assert cost.row_remapping(0, 128, library=library) == (0.0, 0.0)


def test_row_remapping_more_entries_than_rows_rejected(library: dict) -> None:
    with pytest.raises(ConfigError, match="remap_table_entries is 129 but a crossbar has 128 rows"):
        cost.row_remapping(129, 128, library=library)


def test_row_remapping_negative_rejected(library: dict) -> None:
    with pytest.raises(ConfigError, match="remap_table_entries must be >= 0"):
        cost.row_remapping(-4, 128, library=library)


def test_weight_clipping_hand_calc(library: dict) -> None:
    extra = cost.weight_clipping(library=library)
    assert extra.area_mm2 == pytest.approx(12 * 6e-5)  # 0.00072 mm²
    assert extra.power_mw == pytest.approx(12 * 0.05)  # 0.6 mW


def test_dropout_hand_calc(library: dict) -> None:
    extra = cost.dropout(library=library)
    # 96 crossbars x (16 LFSR + 8 threshold bits) = 2304 bits = 288 B = 1.125 registers of 256 B.
    assert extra.area_mm2 == pytest.approx(1.125 * 0.00077)  # 0.00086625 mm²
    assert extra.power_mw == pytest.approx(1.125 * 0.23)  # 0.25875 mW


def test_regularizers_below_one_percent(library: dict) -> None:
    tile = cost.tile_totals(library=library)
    assert cost.weight_clipping(library=library).area_mm2 < 0.01 * tile.area_mm2
    assert cost.dropout(library=library).area_mm2 < 0.01 * tile.area_mm2
    assert cost.weight_clipping(library=library).power_mw < 0.01 * tile.power_mw
    assert cost.dropout(library=library).power_mw < 0.01 * tile.power_mw


# ---- overhead table -------------------------------------------------------------------------


def test_overhead_table_layout() -> None:
    table = cost.build_overhead_table(COST_SECTION, CROSSBAR_SECTION)
    assert list(table.columns) == list(cost.OVERHEAD_COLUMNS)
    assert list(table["mitigation"]) == ["ecc_an_code", "spare_columns", "row_remapping", "weight_clipping", "dropout"]
    assert list(table["kind"]) == ["hardware", "hardware", "hardware", "software", "software"]
    assert table["basis"].str.len().min() > 0
    assert table["source"].str.len().min() > 0


def test_overhead_table_tile_totals() -> None:
    table = cost.build_overhead_table(COST_SECTION, CROSSBAR_SECTION)
    assert table.attrs["tile_area_mm2"] == pytest.approx(0.37204)
    assert table.attrs["tile_power_mw"] == pytest.approx(329.8091936)


def test_overhead_table_ecc_row_is_published_bound() -> None:
    table = cost.build_overhead_table(COST_SECTION, CROSSBAR_SECTION).set_index("mitigation")
    assert table.loc["ecc_an_code", "area_overhead_pct"] == pytest.approx(4.5)
    assert table.loc["ecc_an_code", "power_overhead_pct"] == pytest.approx(4.7)


def test_overhead_table_percentages() -> None:
    table = cost.build_overhead_table(COST_SECTION, CROSSBAR_SECTION).set_index("mitigation")
    assert table.loc["spare_columns", "extra_power_mw_per_tile"] == pytest.approx(14.4974496)
    assert table.loc["spare_columns", "power_overhead_pct"] == pytest.approx(100 * 14.4974496 / 329.8091936)
    assert table.loc["row_remapping", "area_overhead_pct"] == pytest.approx(100 * 0.03306 / 0.37204)
    assert table.loc["weight_clipping", "area_overhead_pct"] < 1
    assert table.loc["dropout", "area_overhead_pct"] < 1


def test_overhead_table_uses_configured_sizes() -> None:
    table = cost.build_overhead_table({**COST_SECTION, "spare_columns": 0, "remap_table_entries": 0}, CROSSBAR_SECTION)
    table = table.set_index("mitigation")
    assert table.loc["spare_columns", "extra_area_mm2_per_tile"] == 0
    assert table.loc["row_remapping", "extra_power_mw_per_tile"] == 0


def test_overhead_table_negative_spares_rejected() -> None:
    with pytest.raises(ConfigError, match="cost.spare_columns must be >= 0"):
        cost.build_overhead_table({**COST_SECTION, "spare_columns": -8}, CROSSBAR_SECTION)


def test_overhead_table_unknown_preset_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown cost preset 'neurosim'"):
        cost.build_overhead_table({**COST_SECTION, "preset": "neurosim"}, CROSSBAR_SECTION)


def test_overhead_table_missing_key_rejected() -> None:
    section = {key: value for key, value in COST_SECTION.items() if key != "remap_table_entries"}
    with pytest.raises(ConfigError, match="'remap_table_entries'"):
        cost.build_overhead_table(section, CROSSBAR_SECTION)


def test_overhead_table_geometry_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="faultreg.cost"):
        cost.build_overhead_table(COST_SECTION, {**CROSSBAR_SECTION, "rows": 256, "columns": 256})
    assert "256x256" in caplog.text


# ---- writing --------------------------------------------------------------------------------


def test_write_overhead_table(tmp_path: Path) -> None:
    table = cost.build_overhead_table(COST_SECTION, CROSSBAR_SECTION)
    csv_path = tmp_path / "tables" / "overhead.csv"
    markdown_path = tmp_path / "tables" / "overhead.md"
    cost.write_overhead_table(table, csv_path, markdown_path)

    assert csv_path.is_file()
    assert markdown_path.is_file()
    assert sorted(path.name for path in csv_path.parent.iterdir()) == ["overhead.csv", "overhead.md"]
    read_back = pd.read_csv(csv_path)
    assert list(read_back.columns) == list(cost.OVERHEAD_COLUMNS)
    assert read_back["extra_power_mw_per_tile"].tolist() == pytest.approx(table["extra_power_mw_per_tile"].tolist())
    markdown = markdown_path.read_text(encoding="utf-8")
    assert markdown.startswith("| mitigation")
    assert "ecc_an_code" in markdown


def test_write_failure_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = cost.build_overhead_table(COST_SECTION, CROSSBAR_SECTION)

    def failing_to_csv(self: pd.DataFrame, path: Path, **kwargs: object) -> None:
        Path(path).write_text("mitigation,kind\necc_an_", encoding="utf-8")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", failing_to_csv)
    with pytest.raises(OSError, match="disk full"):
        cost.write_overhead_table(table, tmp_path / "overhead.csv", tmp_path / "overhead.md")
    assert list(tmp_path.iterdir()) == []


def test_markdown_failure_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = cost.build_overhead_table(COST_SECTION, CROSSBAR_SECTION)

    def failing_to_markdown(self: pd.DataFrame, *args: object, **kwargs: object) -> str:
        raise ImportError("tabulate is missing")

    monkeypatch.setattr(pd.DataFrame, "to_markdown", failing_to_markdown)
    with pytest.raises(ImportError):
        cost.write_overhead_table(table, tmp_path / "overhead.csv", tmp_path / "overhead.md")
    assert list(tmp_path.iterdir()) == []


def test_write_failure_keeps_previous_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = cost.build_overhead_table(COST_SECTION, CROSSBAR_SECTION)
    csv_path = tmp_path / "overhead.csv"
    markdown_path = tmp_path / "overhead.md"
    csv_path.write_text("old csv\n", encoding="utf-8")
    markdown_path.write_text("old markdown\n", encoding="utf-8")

    def failing_write_text(self: Path, *args: object, **kwargs: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", failing_write_text)
    with pytest.raises(OSError, match="disk full"):
        cost.write_overhead_table(table, csv_path, markdown_path)
    monkeypatch.undo()

    assert csv_path.read_text(encoding="utf-8") == "old csv\n"
    assert markdown_path.read_text(encoding="utf-8") == "old markdown\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["overhead.csv", "overhead.md"]


# ---- costs of the repairs and regularizers the methods use -----------------------------------


def test_ecc_check_columns_hand_calc(library: dict) -> None:
    extra = cost.ecc_check_columns(5, 8, 16, library=library)
    fraction = 5 / 128
    # Area: cells f x 96 x 2.5e-5, S&H f x 12 x 0.00004, encoder and decoder 2 x 12 x 6e-5.
    assert extra.area_mm2 == pytest.approx(fraction * 0.0024 + fraction * 0.00048 + 24 * 6e-5)
    # Power: cells f x 28.8, ADC f x 192, S&H f x 0.1191936, logic 24 x 0.05.
    assert extra.power_mw == pytest.approx(fraction * (28.8 + 192 + 0.1191936) + 1.2)


def test_ecc_check_columns_within_published_bound(library: dict) -> None:
    # Feinberg, Wang and Ipek (HPCA 2018) bound AN-code ECC below 4.5 % area and 4.7 % energy.
    extra = cost.ecc_check_columns(5, 8, 16, library=library)
    assert 100 * extra.area_mm2 / TILE_AREA_MM2 < 4.5
    assert 100 * extra.power_mw / TILE_POWER_MW < 4.7


def test_ecc_without_check_cells_is_free(library: dict) -> None:
    assert cost.ecc_check_columns(0, 8, 16, library=library) == cost.AreaPower(0.0, 0.0)


def test_duplication_hand_calc(library: dict) -> None:
    extra = cost.duplication(16, library=library)
    # Copies: cells 96 x 2.5e-5, S&H 12 x 0.00004, DACs 12 x 0.00017; select table 96 x 1024
    # bits = 12288 B = 48 output registers.
    assert extra.area_mm2 == pytest.approx(0.0024 + 0.00048 + 12 * 0.00017 + 48 * 0.00077)
    # Power: cells 28.8, ADC 192, S&H 0.1191936, DACs 48, select table 48 x 0.23.
    assert extra.power_mw == pytest.approx(28.8 + 192 + 0.1191936 + 48 + 48 * 0.23)


def test_dropconnect_and_fault_injection_hand_calc(library: dict) -> None:
    dropconnect = cost.dropconnect(library=library)
    # 96 crossbars x (16 + 8 + 128) bits = 14592 bits = 1824 B = 7.125 output registers.
    assert dropconnect.area_mm2 == pytest.approx(7.125 * 0.00077)
    assert dropconnect.power_mw == pytest.approx(7.125 * 0.23)
    injection = cost.fault_injection(library=library)
    # Plus one 8-bit SA1-share register per crossbar: 96 B = 0.375 registers.
    assert injection.area_mm2 == pytest.approx(7.5 * 0.00077)


def test_method_components_follow_the_method_entry(library: dict) -> None:
    crossbar = {**CROSSBAR_SECTION, "encoding": "differential"}
    both = cost.method_components({"clip_value": 0.5, "dropout": 0.3}, crossbar, library=library)
    assert [name for name, _ in both] == ["weight_clipping", "dropout"]
    assert cost.method_components({"weight_decay": 5e-4}, crossbar, library=library) == []
    ecc = cost.method_components({"repair": "ecc", "ecc_check_cells": 5, "ecc_codeword_weights": 8}, crossbar, library=library)
    assert ecc == [("ecc_check_columns", cost.ecc_check_columns(5, 8, 16, library=library))]
    # One group of 8 cells per weight in the offset encoding.
    offset = cost.method_components({"repair": "duplication"}, {**crossbar, "encoding": "offset"}, library=library)
    assert offset == [("duplication", cost.duplication(8, library=library))]


def test_method_table_levels_and_percentages() -> None:
    crossbar = {**CROSSBAR_SECTION, "encoding": "differential"}
    methods = {"baseline": {}, "clip_dropout": {"clip_value": 0.5, "dropout": 0.3}, "spares": {"repair": "spare_columns", "spares_per_crossbar": 8}}
    table = cost.build_method_table(methods, COST_SECTION, crossbar).set_index("method")
    assert table.loc["baseline", "kind"] == "none"
    assert table.loc["baseline", "extra_area_mm2_per_tile"] == 0.0
    assert table.loc["clip_dropout", "kind"] == "software"
    assert table.loc["spares", "kind"] == "hardware"
    spares = cost.spare_columns(8, 128)
    row = table.loc["spares"]
    assert row["extra_power_mw_per_tile"] == pytest.approx(spares.power_mw)
    assert row["extra_power_mw_per_ima"] == pytest.approx(spares.power_mw / 12)
    assert row["extra_power_mw_per_crossbar"] == pytest.approx(spares.power_mw / 96)
    assert row["extra_power_mw_per_chip"] == pytest.approx(spares.power_mw * 168)
    assert row["power_overhead_pct_tile"] == pytest.approx(100 * spares.power_mw / TILE_POWER_MW)
    assert row["power_overhead_pct_ima"] == pytest.approx(100 * spares.power_mw / 12 / IMA_POWER_MW)


def test_cli_writes_method_table(tmp_path: Path) -> None:
    from faultreg.cli import main

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"methods": {"baseline": {}, "ecc": {"repair": "ecc"}}}))
    arguments = ["cost", "--config", str(config), "--csv", str(tmp_path / "c.csv"), "--markdown", str(tmp_path / "c.md")]
    assert main([*arguments, "--methods-csv", str(tmp_path / "m.csv"), "--methods-markdown", str(tmp_path / "m.md")]) == 0
    table = pd.read_csv(tmp_path / "m.csv").set_index("method")
    assert list(table.index) == ["baseline", "ecc"]
    assert table.loc["ecc", "components"] == "ecc_check_columns"
    assert "| ecc " in (tmp_path / "m.md").read_text()


def test_cli_method_table_needs_both_paths(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from faultreg.cli import main

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"methods": {"baseline": {}}}))
    arguments = ["cost", "--config", str(config), "--csv", str(tmp_path / "c.csv"), "--markdown", str(tmp_path / "c.md")]
    assert main([*arguments, "--methods-csv", str(tmp_path / "m.csv")]) == 2
    assert "--methods-markdown" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()
    assert not (tmp_path / "c.csv").exists()


def test_adc_resolution_scaling_hand_calc(library: dict) -> None:
    scaled = cost.with_adc_resolution(library, 6)
    adc = scaled["components"]["adc"]
    # 627 um2 at 6 bits; power 2 mW x 1.20 pJ / 1.67 pJ at the same conversion rate.
    assert adc["area_mm2"] == pytest.approx(626.91e-6)
    assert adc["power_mw"] == pytest.approx(2.0 * 1.20 / 1.67)
    assert library["components"]["adc"]["power_mw"] == 2.0
    unchanged = cost.with_adc_resolution(library, 8)["components"]["adc"]
    assert unchanged["power_mw"] == pytest.approx(2.0)
    assert unchanged["area_mm2"] == pytest.approx(0.0012)


def test_adc_resolution_without_point_rejected(library: dict) -> None:
    with pytest.raises(ConfigError, match="adc_bits is 12"):
        cost.with_adc_resolution(library, 12)


def test_overhead_table_follows_adc_bits() -> None:
    eight = cost.build_overhead_table(COST_SECTION, CROSSBAR_SECTION)
    four = cost.build_overhead_table({**COST_SECTION, "adc_bits": 4}, CROSSBAR_SECTION)
    # A cheaper ADC makes the tile smaller, so the same ECC bound costs less in absolute terms.
    assert four.attrs["tile_power_mw"] < eight.attrs["tile_power_mw"]
    assert four.attrs["tile_power_mw"] == pytest.approx(TILE_POWER_MW - 96 * 2.0 * (1 - 0.79 / 1.67))
