"""Study fault maps and the study settings of the config."""

import numpy as np
import pytest

from faultreg.config import clip_sweep_methods, validate_config, validate_workflow_config
from faultreg.crossbar import HEALTHY, SA0, SA1
from faultreg.errors import ConfigError
from faultreg.faults import generate_fault_map, load_fault_map
from faultreg.stages import fault_map_spec, make_study_maps
from faultreg.studies import figure_names, sensitivity_maps, stuck_type_map_path, stuck_type_maps

SMALL = {
    "model": {"hidden_units": [8]},
    "crossbar": {"rows": 32, "columns": 32},
    "faults": {"rates": [0.0, 0.1], "maps_per_rate": 2, "training_rates": [0.1], "training_chips": 2},
    "methods": {"baseline": {}, "clip": {"clip_value": 0.5, "range_mode": "clip"}},
    "studies": {"stuck_type": {"rates": [0.1], "sa1_shares": [0.0, 0.8378, 1.0]}},
}


def test_stuck_type_maps_skip_the_main_share():
    config = validate_workflow_config(SMALL)
    names = [entry.relative_path for entry in stuck_type_maps(config)]
    # Two shares besides the main one, one rate, two maps each.
    assert names == [
        "stuck_type/sa1_0_rate0.1_map0.npz", "stuck_type/sa1_0_rate0.1_map1.npz",
        "stuck_type/sa1_1_rate0.1_map0.npz", "stuck_type/sa1_1_rate0.1_map1.npz",
    ]
    assert stuck_type_map_path(config, 0.8378, 0.1, 1) == "rate0.1_map1.npz"
    assert stuck_type_map_path(config, 1.0, 0.1, 1) == "stuck_type/sa1_1_rate0.1_map1.npz"


def test_stuck_type_shares_keep_the_fault_sites():
    config = validate_workflow_config(SMALL)
    main = generate_fault_map(fault_map_spec(config, 0.1, 0))
    sa0 = generate_fault_map(fault_map_spec(config, 0.1, 0, sa1_share=0.0))
    sa1 = generate_fault_map(fault_map_spec(config, 0.1, 0, sa1_share=1.0))
    for name, states in main.states.items():
        faulty = states != HEALTHY
        assert faulty.any()
        assert np.array_equal(sa0.states[name] != HEALTHY, faulty)
        assert np.array_equal(sa1.states[name] != HEALTHY, faulty)
        assert np.all(sa0.states[name][faulty] == SA0)
        assert np.all(sa1.states[name][faulty] == SA1)


def test_sensitivity_maps_one_slice_one_layer(tmp_path):
    config = validate_workflow_config({**SMALL, "studies": {"sensitivity": {"rate": 0.2}}})
    entries = sensitivity_maps(config)
    # MLP [8]: two layers, eight slices, two maps.
    assert len(entries) == 2 * 8 * 2
    written = make_study_maps(config, "sensitivity", tmp_path)
    assert sorted(written) == sorted(tmp_path / entry.relative_path for entry in entries)
    target = next(entry for entry in entries if entry.target_layers == ("layers.1",) and entry.slice_positions == (7,) and entry.map_index == 0)
    fault_map = load_fault_map(tmp_path / target.relative_path)
    main = generate_fault_map(fault_map_spec({**config, "faults": {**config["faults"]}}, 0.2, 0))
    layer = fault_map.states["layers.1"]
    # Only slice 7 of layers.1 is faulty, and there it matches the main map at the same rate.
    assert np.all(layer[..., :7] == HEALTHY)
    assert np.array_equal(layer[..., 7], main.states["layers.1"][..., 7])
    assert np.all(fault_map.states["layers.4"] == HEALTHY)
    faulty_share = np.mean(layer[..., 7] != HEALTHY)
    assert 0.15 < faulty_share < 0.25


def test_clip_sweep_methods_copy_the_base_method():
    config = validate_workflow_config({**SMALL, "studies": {"clip_sweep": {"clip_values": [0.25, 1.0]}}})
    assert clip_sweep_methods(config) == {"clip_c0.25": 0.25, "clip_c1": 1.0}
    assert config["methods"]["clip_c0.25"]["clip_value"] == 0.25
    assert config["methods"]["clip_c0.25"]["range_mode"] == "clip"
    assert config["methods"]["clip_c1"]["clip_value"] == 1.0


def test_clip_sweep_off_adds_nothing():
    config = validate_workflow_config({**SMALL, "studies": {"clip_sweep": {"enabled": False}}})
    assert sorted(config["methods"]) == ["baseline", "clip"]
    assert "clip_sweep" not in figure_names(config)


def test_clip_sweep_missing_base_method():
    with pytest.raises(ConfigError, match="base_method"):
        validate_workflow_config({**SMALL, "studies": {"clip_sweep": {"base_method": "nosuch"}}})


def test_clip_sweep_name_clash():
    methods = {**SMALL["methods"], "clip_c0.25": {"clip_value": 0.3}}
    with pytest.raises(ConfigError, match="rename"):
        validate_workflow_config({**SMALL, "methods": methods, "studies": {"clip_sweep": {"clip_values": [0.25, 1.0]}}})


def test_stuck_type_rate_must_be_a_fault_rate():
    with pytest.raises(ConfigError, match="studies.stuck_type.rates"):
        validate_workflow_config({**SMALL, "studies": {"stuck_type": {"rates": [0.3]}}})


def test_stuck_type_training_rate_must_be_trained():
    with pytest.raises(ConfigError, match="training_rate"):
        validate_workflow_config({**SMALL, "studies": {"stuck_type": {"rates": [0.1], "training_rate": 0.05}}})


def test_given_study_method_must_exist():
    with pytest.raises(ConfigError, match="studies.endurance.methods"):
        validate_workflow_config({**SMALL, "studies": {"endurance": {"methods": ["baseline", "nosuch"]}}})


def test_default_study_methods_skip_missing_methods():
    # The default endurance methods name dropout, which SMALL does not configure.
    config = validate_workflow_config(SMALL)
    assert "dropout" in config["studies"]["endurance"]["methods"]


def test_exploding_weights_rate_must_be_trained():
    with pytest.raises(ConfigError, match="exploding_weights"):
        validate_workflow_config({**SMALL, "faults": {**SMALL["faults"], "rates": [0.0, 0.05, 0.1], "training_rates": [0.05]}, "studies": {"stuck_type": {"enabled": False}}})


def test_figure_names_follow_enabled_studies():
    config = validate_workflow_config({**SMALL, "studies": {"sensitivity": {"enabled": False}}})
    assert figure_names(config) == ["exploding_weights", "accuracy_vs_fault_rate", "stuck_type", "clip_sweep", "endurance", "tradeoff"]


def test_method_regularizer_ranges():
    with pytest.raises(ConfigError, match="dropconnect"):
        validate_config({"methods": {"baseline": {}, "dc": {"dropconnect": 1.0}}})
    with pytest.raises(ConfigError, match="fault_injection_rate"):
        validate_config({"methods": {"baseline": {}, "fi": {"fault_injection_rate": -0.1}}})


def test_method_training_rates_must_be_trained():
    methods = {**SMALL["methods"], "ecc": {"repair": "ecc", "training_rates": [0.05]}}
    with pytest.raises(ConfigError, match="methods.ecc.training_rates"):
        validate_workflow_config({**SMALL, "methods": methods})
    methods["ecc"]["training_rates"] = [0.1]
    assert validate_workflow_config({**SMALL, "methods": methods})["methods"]["ecc"]["training_rates"] == [0.1]


def test_ecc_needs_enough_check_cells():
    # 8 weights x 16 cells + 4 check cells = 132 cells: one error among 132 x 3 wrong values plus
    # none needs log2(397) = 8.6, so 9 bits, but 4 two-bit cells hold only 8.
    methods = {**SMALL["methods"], "ecc": {"repair": "ecc", "ecc_check_cells": 4}}
    with pytest.raises(ConfigError, match="needs at least 9 check bits"):
        validate_workflow_config({**SMALL, "methods": methods})
    methods["ecc"]["ecc_check_cells"] = 5
    assert validate_workflow_config({**SMALL, "methods": methods})["methods"]["ecc"]["ecc_check_cells"] == 5
    methods["ecc"] = {"repair": "ecc", "ecc_check_cells": 0, "ecc_correctable_cells": 0}
    assert validate_workflow_config({**SMALL, "methods": methods})


def test_spare_columns_must_match_cost_model():
    methods = {**SMALL["methods"], "spares": {"repair": "spare_columns", "spares_per_crossbar": 16}}
    with pytest.raises(ConfigError, match="cost.spare_columns is 8"):
        validate_workflow_config({**SMALL, "methods": methods})


def test_unknown_cost_preset_stops_validation():
    with pytest.raises(ConfigError, match="cost.preset is 'nosuch'"):
        validate_workflow_config({**SMALL, "cost": {"preset": "nosuch", "remap_table_entries": 32}})
