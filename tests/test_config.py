"""Tests of faultreg.config: defaults, schema errors, cross-section checks and file loading.

Expected defaults are copied by hand from schemas/config.schema.yaml, so a changed default
fails here until this file is updated on purpose.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from faultreg.config import load_config, merge_configs, parse_config_json, validate_config, validate_workflow_config
from faultreg.errors import ConfigError

SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"

METHOD_DEFAULTS = {
    "clip_value": None,
    "dropout": 0.0,
    "dropconnect": 0.0,
    "weight_decay": 0.0,
    "range_mode": None,
    "fault_injection_rate": 0.0,
    "fault_injection_sa1_share": 0.8378,
    "repair": None,
    "ecc_correctable_cells": 1,
    "ecc_codeword_weights": 8,
    "ecc_check_cells": 5,
    "spares_per_crossbar": 8,
    "training_rates": None,
    "gradient": "straight_through",
}


def _config_error_message(config: object) -> str:
    with pytest.raises(ConfigError) as caught:
        validate_config(config)
    return str(caught.value)


# Shipped and empty configs


def test_shipped_config_validates():
    config = load_config(SHIPPED_CONFIG)

    assert config["crossbar"]["weight_bits"] == 16
    sweep = {"clip_c0.0625", "clip_c0.125", "clip_c0.25", "clip_c0.5", "clip_c1", "clip_c2", "clip_c4"}
    assert set(config["methods"]) == {
        "baseline", "clip", "clip_fixed", "dropout", "dropconnect", "l2", "clip_dropout", "fault_injection",
        "ecc", "spare_columns", "row_remapping", "duplication",
    } | sweep
    assert config["methods"]["clip_fixed"]["range_mode"] == "fixed"
    assert config["methods"]["fault_injection"]["fault_injection_rate"] == 0.05
    assert config["methods"]["clip"]["clip_value"] == 0.5


def test_shipped_config_gets_unlisted_defaults():
    config = load_config(SHIPPED_CONFIG)

    # config.yaml leaves these keys out, so they must come from the schema.
    assert config["dataset"]["max_train_images"] is None
    assert config["dataset"]["max_test_images"] is None
    assert config["methods"]["baseline"] == METHOD_DEFAULTS
    assert config["methods"]["dropout"]["clip_value"] is None


def test_empty_config_gets_defaults():
    config = validate_config({})

    assert config["seed"] == 20260101
    assert config["dataset"]["name"] == "mnist_subset"
    assert config["dataset"]["test_fraction"] == 0.2
    assert config["model"]["architecture"] == "mlp"
    assert config["model"]["hidden_units"] == [256, 128]
    assert config["crossbar"]["weight_bits"] == 16
    assert config["crossbar"]["bits_per_cell"] == 2
    assert config["crossbar"]["range_mode"] == "fixed"
    assert config["crossbar"]["weight_range"] == 16.0
    assert config["faults"]["rates"] == [0.0, 0.01, 0.02, 0.05, 0.1, 0.2]
    assert config["faults"]["maps_per_rate"] == 5
    assert config["faults"]["sa1_share"] == 0.8378
    assert config["faults"]["training_rates"] == [0.01, 0.02, 0.05, 0.1, 0.2]
    assert config["faults"]["training_chips"] == 5
    assert config["training"]["epochs"] == 5
    assert config["training"]["learning_rate"] == 0.05
    assert config["training"]["seeds"] == [0, 1, 2]
    assert config["evaluation"]["batch_size"] == 1000
    assert config["report"]["headline_rate"] == 0.1
    assert config["report"]["formats"] == ["png", "pdf"]


def test_empty_config_has_baseline_method():
    config = validate_config({})

    assert config["methods"] == {"baseline": METHOD_DEFAULTS}


def test_empty_config_has_every_section():
    config = validate_config({})

    sections = {
        "seed", "results_dir", "run_methods", "dataset", "model", "crossbar", "faults", "endurance", "training", "methods",
        "studies", "evaluation", "cost", "report",
    }
    assert set(config) == sections


def test_validate_leaves_input_unchanged():
    original = {"crossbar": {"weight_bits": 8}}

    validate_config(original)

    assert original == {"crossbar": {"weight_bits": 8}}


def test_method_entry_gets_defaults():
    config = validate_config({"methods": {"baseline": {}, "clip": {"clip_value": 0.5}}})

    clip = config["methods"]["clip"]
    assert clip["clip_value"] == 0.5
    assert clip["dropout"] == 0.0
    assert clip["weight_decay"] == 0.0
    assert clip["range_mode"] is None


def test_given_methods_replace_default():
    config = validate_config({"methods": {"clip": {"clip_value": 0.5}}})

    assert "baseline" not in config["methods"]


# Invalid values: each message must name the key path and the value


def test_unknown_top_level_key():
    message = _config_error_message({"sead": 1})

    assert "(top level)" in message
    assert "sead" in message


def test_unknown_nested_key():
    message = _config_error_message({"crossbar": {"bits": 8}})

    assert "crossbar" in message
    assert "'bits'" in message


def test_weight_bits_not_allowed():
    message = _config_error_message({"crossbar": {"weight_bits": 12}})

    assert "crossbar.weight_bits" in message
    assert "12" in message


def test_bits_per_cell_not_allowed():
    message = _config_error_message({"crossbar": {"bits_per_cell": 3}})

    assert "crossbar.bits_per_cell" in message
    assert "3" in message


def test_negative_fault_rate():
    message = _config_error_message({"faults": {"rates": [0.0, -0.1], "training_rates": []}})

    assert "faults.rates.1" in message
    assert "-0.1" in message


def test_fault_rate_above_one():
    message = _config_error_message({"faults": {"rates": [0.0, 1.5], "training_rates": []}})

    assert "faults.rates.1" in message
    assert "1.5" in message


def test_sa1_share_above_one():
    message = _config_error_message({"faults": {"sa1_share": 1.5}})

    assert "faults.sa1_share" in message
    assert "1.5" in message


def test_training_rate_not_in_rates():
    message = _config_error_message({"faults": {"rates": [0.0, 0.1], "training_rates": [0.3]}})

    assert "faults.training_rates" in message
    assert "0.3" in message


def test_default_training_rates_follow_rates():
    config = validate_config({"faults": {"rates": [0.0, 0.1, 0.3]}})

    assert config["faults"]["training_rates"] == [0.1, 0.3]


def test_yaml_exponent_string_gets_hint():
    message = _config_error_message({"methods": {"baseline": {}, "l2": {"weight_decay": "1e-4"}}})

    assert "methods.l2.weight_decay" in message
    assert "1.0e-4" in message


def test_training_chips_above_maps():
    message = _config_error_message({"faults": {"maps_per_rate": 2, "training_chips": 3}})

    assert "faults.training_chips" in message
    assert "3" in message
    assert "faults.maps_per_rate" in message


def test_training_chips_without_training_rates():
    config = validate_config({"faults": {"maps_per_rate": 2, "training_chips": 3, "training_rates": []}})

    assert config["faults"]["training_chips"] == 3


def test_headline_rate_not_in_rates():
    message = _config_error_message({"faults": {"rates": [0.0, 0.1], "training_rates": [0.1]}, "report": {"headline_rate": 0.3}})

    assert "report.headline_rate" in message
    assert "0.3" in message


def test_clip_method_without_clip_value():
    message = _config_error_message({"methods": {"baseline": {}, "clip": {"range_mode": "clip"}}})

    assert "methods.clip" in message
    assert "clip_value" in message


def test_clip_crossbar_without_clip_value():
    message = _config_error_message({"crossbar": {"range_mode": "clip"}, "methods": {"baseline": {}}})

    assert "methods.baseline" in message
    assert "clip_value" in message


def test_dropout_of_one():
    message = _config_error_message({"methods": {"baseline": {"dropout": 1.0}}})

    assert "methods.baseline.dropout" in message
    assert "1.0" in message


def test_method_name_upper_case():
    message = _config_error_message({"methods": {"baseline": {}, "Clip": {"clip_value": 0.5}}})

    assert "methods" in message
    assert "'Clip'" in message


def test_epochs_zero():
    message = _config_error_message({"training": {"epochs": 0}})

    assert "training.epochs" in message
    assert "0" in message


def test_section_not_mapping():
    message = _config_error_message({"crossbar": [8, 2]})

    assert "crossbar" in message
    assert "[8, 2]" in message


def test_config_list_rejected():
    message = _config_error_message([{"seed": 1}])

    assert "mapping" in message
    assert "list" in message


# Partial configs, as workflow rules pass them


def test_partial_report_skips_rate_check():
    config = validate_config({"report": {"headline_rate": 0.3}})

    assert config["report"]["headline_rate"] == 0.3


def test_partial_report_with_faults_rejected():
    message = _config_error_message({"faults": {"rates": [0.0, 0.01, 0.02, 0.05, 0.1, 0.2]}, "report": {"headline_rate": 0.3}})

    assert "report.headline_rate" in message
    assert "0.3" in message


def test_partial_faults_skips_headline_check():
    # The default headline_rate 0.1 is not in these rates, but report is absent.
    config = validate_config({"faults": {"rates": [0.0, 0.2], "training_rates": [0.2]}})

    assert config["faults"]["rates"] == [0.0, 0.2]


def test_partial_crossbar_clip_accepted():
    # The fault-map and cost rules pass crossbar without methods. The default baseline entry
    # has no clip_value, and that default must not reject the subset.
    config = validate_config({"crossbar": {"range_mode": "clip"}})

    assert config["crossbar"]["range_mode"] == "clip"


def test_partial_clip_with_methods_rejected():
    message = _config_error_message({"crossbar": {"range_mode": "clip"}, "methods": {"clip": {"dropout": 0.1}}})

    assert "methods.clip" in message
    assert "clip_value" in message


def test_clip_crossbar_with_method_override():
    config = validate_config(
        {"crossbar": {"range_mode": "clip"}, "methods": {"baseline": {"range_mode": "fixed"}, "clip": {"clip_value": 0.5}}}
    )

    assert config["methods"]["baseline"]["range_mode"] == "fixed"


# Files and JSON text


def test_load_missing_file(tmp_path):
    missing = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as caught:
        load_config(missing)

    assert "not found" in str(caught.value)
    assert str(missing) in str(caught.value)


def test_load_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("crossbar: {weight_bits: 8\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert "not valid YAML" in str(caught.value)
    assert str(path) in str(caught.value)


def test_load_binary_file(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81 not text")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(path) in str(caught.value)


def test_load_yaml_list(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- seed: 1\n- crossbar: {}\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert "list" in str(caught.value)


@pytest.mark.parametrize("text", ["[]\n", "false\n", "0\n"])
def test_load_falsy_yaml_rejected(tmp_path, text):
    # Only an empty file means "all defaults". An empty list or a scalar is a mistake.
    path = tmp_path / "falsy.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError):
        load_config(path)


def test_load_empty_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# only a comment\n", encoding="utf-8")

    config = load_config(path)

    assert config["crossbar"]["weight_bits"] == 16


def test_load_nested_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"training": {"epochs": 0}}), encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert "training.epochs" in str(caught.value)


def test_json_invalid():
    with pytest.raises(ConfigError) as caught:
        parse_config_json('{"crossbar": {"weight_bits": 8,}}')

    assert "--config-json" in str(caught.value)
    assert "not valid JSON" in str(caught.value)


def test_json_valid_subset():
    config = parse_config_json(json.dumps({"crossbar": {"weight_bits": 8}}))

    assert config["crossbar"]["weight_bits"] == 8
    assert config["crossbar"]["bits_per_cell"] == 2


def test_json_array_rejected():
    with pytest.raises(ConfigError) as caught:
        parse_config_json("[1, 2]")

    assert "list" in str(caught.value)


def test_merge_configs_like_snakemake():
    base = {"faults": {"rates": [0.0, 0.1], "sa1_share": 0.5}, "methods": {"baseline": {}, "clip": {"clip_value": 1.0}}}
    override = {"faults": {"rates": [0.2]}, "methods": {"clip": {"dropout": 0.1}}}

    merged = merge_configs(base, override)

    assert merged["faults"] == {"rates": [0.2], "sa1_share": 0.5}
    assert merged["methods"] == {"baseline": {}, "clip": {"clip_value": 1.0, "dropout": 0.1}}
    assert base["faults"]["rates"] == [0.0, 0.1]


def test_workflow_config_needs_baseline():
    with pytest.raises(ConfigError, match="baseline"):
        validate_workflow_config({"methods": {"clip": {"clip_value": 0.5}}})


def test_run_methods_must_name_methods():
    with pytest.raises(ConfigError, match="dropout"):
        validate_workflow_config({"run_methods": ["baseline", "dropout"]})


def test_run_methods_must_keep_baseline():
    with pytest.raises(ConfigError, match="leaves out baseline"):
        validate_workflow_config({"methods": {"baseline": {}, "l2": {"weight_decay": 0.01}}, "run_methods": ["l2"]})


def test_run_methods_selects_subset():
    config = validate_workflow_config({"methods": {"baseline": {}, "l2": {"weight_decay": 0.01}}, "run_methods": ["baseline"]})

    assert config["run_methods"] == ["baseline"]


def test_remap_entries_above_rows_rejected():
    message = _config_error_message({"crossbar": {"rows": 64}, "cost": {"remap_table_entries": 128}})

    assert "cost.remap_table_entries" in message
    assert "64" in message
