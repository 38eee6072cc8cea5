"""Load and validate study configurations.

The JSON schema in ``schemas/config.schema.yaml`` is the single definition of every key, its
default and its meaning; the workflow's ``workflow/schemas/config.schema.yaml`` is a link to it.
This module fills the defaults, validates, and adds the checks that span several keys.
"""

from __future__ import annotations

import copy
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from faultreg.errors import ConfigError

SCHEMA_RESOURCE = "schemas/config.schema.yaml"


def load_schema() -> dict[str, Any]:
    """Return the packaged configuration schema as a dict."""
    text = resources.files("faultreg").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _fill_defaults(instance: dict[str, Any], schema: dict[str, Any]) -> None:
    """Insert schema defaults into ``instance`` in place, recursing into nested objects."""
    properties = schema.get("properties", {})
    for key, subschema in properties.items():
        if key not in instance and "default" in subschema:
            instance[key] = copy.deepcopy(subschema["default"])
        if isinstance(instance.get(key), dict) and subschema.get("type") == "object":
            _fill_defaults(instance[key], subschema)

    entry_schema = schema.get("additionalProperties")
    if isinstance(entry_schema, dict) and entry_schema.get("type") == "object":
        for key, value in instance.items():
            if key not in properties and isinstance(value, dict):
                _fill_defaults(value, entry_schema)


def _format_validation_error(error: jsonschema.ValidationError) -> str:
    location = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    message = f"invalid config value at {location}: {error.message}"
    if error.validator == "type" and isinstance(error.instance, str) and _parses_as_number(error.instance):
        # PyYAML follows YAML 1.1, which reads 1e-4 as a string; 1.0e-4 is a float.
        message += "; YAML needs a decimal point in exponent notation, e.g. 1.0e-4 instead of 1e-4"
    return message


def _parses_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Return a validated copy of ``config`` with every default filled in.

    Raises :class:`ConfigError` naming the first invalid key, or a cross-key inconsistency
    (a training rate missing from ``faults.rates``, more training chips than maps, a method
    whose ``range_mode`` is clip without a ``clip_value``).
    """
    if not isinstance(config, dict):
        raise ConfigError(f"config must be a mapping of sections, got {type(config).__name__}")

    schema = load_schema()
    filled = copy.deepcopy(config)
    _fill_defaults(filled, schema)

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda error: list(error.absolute_path))
    if errors:
        raise ConfigError(_format_validation_error(errors[0]))

    faults = filled["faults"]
    if faults["training_rates"] is None:
        faults["training_rates"] = [rate for rate in faults["rates"] if rate > 0]
    # A stage's config subset already carries the sweep methods it needs. A full config gets
    # them here when its methods include the sweep's base method.
    if {"methods", "studies"} <= set(config) and filled["studies"]["clip_sweep"]["base_method"] in filled["methods"]:
        _add_clip_sweep_methods(filled)

    _check_cross_references(filled, given_sections=set(config))
    return filled


def _check_cross_references(config: dict[str, Any], given_sections: set[str]) -> None:
    """Check rules that span sections, skipping those that involve a section not given.

    Workflow stages receive only the sections they read. A default that replaces an absent
    section must not make a stage reject an otherwise valid subset.
    """
    faults = config["faults"]
    rates = [float(rate) for rate in faults["rates"]]

    if "faults" not in given_sections:
        faults = {**faults, "training_rates": []}

    for rate in faults["training_rates"]:
        if float(rate) not in rates:
            raise ConfigError(
                f"faults.training_rates contains {rate}, which is not in faults.rates {rates}; "
                "add it to faults.rates so the trained chips are fault maps of the study"
            )

    if faults["training_rates"] and faults["training_chips"] > faults["maps_per_rate"]:
        raise ConfigError(
            f"faults.training_chips is {faults['training_chips']} but faults.maps_per_rate is "
            f"{faults['maps_per_rate']}; training chip j is fault map j, so raise maps_per_rate "
            "or lower training_chips"
        )

    headline = config["report"]["headline_rate"]
    if {"faults", "report"} <= given_sections and float(headline) not in rates:
        raise ConfigError(
            f"report.headline_rate is {headline}, which is not in faults.rates {rates}; "
            "pick one of the evaluated rates"
        )

    entries, rows = config["cost"]["remap_table_entries"], config["crossbar"]["rows"]
    if {"cost", "crossbar"} <= given_sections and entries > rows:
        raise ConfigError(
            f"cost.remap_table_entries is {entries} but a crossbar has {rows} rows (crossbar.rows); "
            f"set remap_table_entries to at most {rows}"
        )

    for name, method in config["methods"].items():
        range_mode = method["range_mode"] or config["crossbar"]["range_mode"]
        if "methods" in given_sections and range_mode == "clip" and method["clip_value"] is None:
            raise ConfigError(
                f"methods.{name} stores weights with range_mode 'clip' but has no clip_value; "
                f"set methods.{name}.clip_value or choose range_mode fixed or max_abs"
            )

    if config["crossbar"]["range_mode"] == "clip" and "methods" in given_sections:
        missing = [name for name, method in config["methods"].items() if method["clip_value"] is None and method["range_mode"] is None]
        if missing:
            raise ConfigError(
                f"crossbar.range_mode is 'clip' but methods {missing} have no clip_value; "
                "give them a clip_value or a range_mode override"
            )


def clip_sweep_name(clip_value: float) -> str:
    """Return the method name of one clip-sweep value, e.g. 0.25 -> 'clip_c0.25'."""
    return f"clip_c{float(clip_value):g}"


def clip_sweep_methods(config: dict[str, Any]) -> dict[str, float]:
    """Return {method name: clip value} of the clip sweep, empty when the study is off."""
    sweep = config["studies"]["clip_sweep"]
    if not sweep["enabled"]:
        return {}
    return {clip_sweep_name(value): float(value) for value in sweep["clip_values"]}


def _add_clip_sweep_methods(config: dict[str, Any]) -> None:
    """Add one method per clip-sweep value, a copy of the base method with that clip value."""
    sweep = config["studies"]["clip_sweep"]
    if not sweep["enabled"]:
        return
    methods = config["methods"]
    base_name = sweep["base_method"]
    if base_name not in methods:
        raise ConfigError(
            f"studies.clip_sweep.base_method is {base_name!r}, which is not under methods {sorted(methods)}; "
            "name a configured method or set studies.clip_sweep.enabled to false"
        )
    for name, clip_value in clip_sweep_methods(config).items():
        entry = {**methods[base_name], "clip_value": clip_value}
        if name in methods and methods[name] != entry:
            raise ConfigError(
                f"methods.{name} is configured by hand but the clip sweep generates a method of that name; "
                "rename your method"
            )
        methods[name] = entry


def _check_studies(config: dict[str, Any], written: dict[str, Any]) -> None:
    """Check that every study refers to rates and methods the main study provides.

    ``written`` is the config as written, before defaults, to tell given method lists from defaults.
    """
    studies, faults = config["studies"], config["faults"]
    rates = [float(rate) for rate in faults["rates"]]
    training_rates = [float(rate) for rate in faults["training_rates"]]
    methods = config["methods"]

    def require(condition: bool, message: str) -> None:
        if not condition:
            raise ConfigError(message)

    exploding = studies["exploding_weights"]
    exploding_rate = exploding["rate"] if exploding["rate"] is not None else config["report"]["headline_rate"]
    require(
        not training_rates or float(exploding_rate) in training_rates,
        f"studies.exploding_weights.rate is {exploding_rate} (null takes report.headline_rate), which is not in "
        f"faults.training_rates {training_rates}; set it to one of those rates",
    )
    stuck = studies["stuck_type"]
    if stuck["enabled"]:
        stuck_rates = stuck_type_rates(config)
        outside = [rate for rate in stuck_rates if rate not in rates]
        require(
            not outside,
            f"studies.stuck_type.rates {outside}"
            + (" (null takes report.headline_rate)" if stuck["rates"] is None else "")
            + f" are not in faults.rates {rates}; add them there or set other rates",
        )
        training_rate = stuck["training_rate"]
        if training_rate is not None and stuck["training_methods"]:
            require(
                float(training_rate) in training_rates and float(training_rate) in stuck_rates,
                f"studies.stuck_type.training_rate is {training_rate}, which must be in faults.training_rates "
                f"{training_rates} and in studies.stuck_type.rates {stuck_rates}; pick such a rate or set it to null",
            )
            require(
                config["faults"]["training_chips"] <= config["faults"]["maps_per_rate"],
                "faults.training_chips exceeds faults.maps_per_rate; lower training_chips",
            )
    for name, method in methods.items():
        outside = [rate for rate in method["training_rates"] or [] if float(rate) not in training_rates]
        require(
            not outside,
            f"methods.{name}.training_rates {outside} are not in faults.training_rates {training_rates}; "
            "add them there or remove them",
        )
    tradeoff = studies["tradeoff"]
    if tradeoff["enabled"] and tradeoff["rates"] is not None:
        outside = [rate for rate in tradeoff["rates"] if float(rate) not in rates]
        require(not outside, f"studies.tradeoff.rates {outside} are not in faults.rates {rates}; add them there or remove them")
    sweep = studies["clip_sweep"]
    if sweep["enabled"] and sweep["rates"] is not None:
        outside = [rate for rate in sweep["rates"] if float(rate) not in rates]
        require(not outside, f"studies.clip_sweep.rates {outside} are not in faults.rates {rates}; add them there or remove them")
    # A method list given in the config must name configured methods. The default lists name
    # the methods of config.yaml, and methods a scenario does not configure are skipped.
    for study, key in (
        ("exploding_weights", "methods"),
        ("stuck_type", "training_methods"),
        ("sensitivity", "methods"),
        ("endurance", "methods"),
    ):
        if key not in written.get("studies", {}).get(study, {}):
            continue
        unknown = [name for name in studies[study][key] if name not in methods]
        require(
            not unknown,
            f"studies.{study}.{key} names {unknown}, which are not under methods {sorted(methods)}; add them or remove them",
        )


def available_cost_presets() -> list[str]:
    """Return the names of the component libraries shipped as ``data/<preset>.yaml``."""
    folder = resources.files("faultreg").joinpath("data")
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def _check_repairs_and_cost(config: dict[str, Any]) -> None:
    """Check the cost preset and that each repair is a design that can exist.

    An ECC codeword of n cells that corrects k stuck cells, each of which can read any of its
    2**b - 1 wrong values, needs distinct syndromes for every such error pattern: at least
    log2(sum over i <= k of C(n, i) (2**b - 1)**i) check bits (the Hamming bound).
    """
    preset = config["cost"]["preset"]
    presets = available_cost_presets()
    if preset not in presets:
        raise ConfigError(
            f"cost.preset is {preset!r}, but the component libraries are {presets}; "
            "pick one or add src/faultreg/data/<preset>.yaml"
        )
    crossbar = config["crossbar"]
    bits = int(crossbar["bits_per_cell"])
    groups = 2 if crossbar["encoding"] == "differential" else 1
    cells_per_weight = groups * int(crossbar["weight_bits"]) // bits
    for name, method in config["methods"].items():
        if method["repair"] == "ecc":
            check_cells, correctable = method["ecc_check_cells"], method["ecc_correctable_cells"]
            cells = method["ecc_codeword_weights"] * cells_per_weight + check_cells
            patterns = sum(math.comb(cells, errors) * (2**bits - 1) ** errors for errors in range(correctable + 1))
            needed = math.log2(patterns)
            if check_cells * bits < needed:
                raise ConfigError(
                    f"methods.{name}: correcting {correctable} stuck cell(s) in a codeword of {cells} cells needs at least "
                    f"{math.ceil(needed)} check bits, but ecc_check_cells {check_cells} holds {check_cells * bits}; "
                    f"raise ecc_check_cells to {math.ceil(needed / bits)} or lower ecc_correctable_cells"
                )
        if method["repair"] == "spare_columns" and method["spares_per_crossbar"] != config["cost"]["spare_columns"]:
            raise ConfigError(
                f"methods.{name}.spares_per_crossbar is {method['spares_per_crossbar']} but cost.spare_columns is "
                f"{config['cost']['spare_columns']}; set them equal so the cost table prices the simulated design"
            )


def stuck_type_rates(config: dict[str, Any]) -> list[float]:
    """Return the fault rates of the stuck-type study (report.headline_rate when not set)."""
    rates = config["studies"]["stuck_type"]["rates"]
    return [float(config["report"]["headline_rate"])] if rates is None else [float(rate) for rate in rates]


def stuck_type_training_rate(config: dict[str, Any]) -> float | None:
    """Return the rate of stuck-type training, or None when the study trains nothing."""
    stuck = config["studies"]["stuck_type"]
    if not stuck["enabled"] or not stuck["training_methods"]:
        return None
    if stuck["training_rate"] is not None:
        return float(stuck["training_rate"])
    headline = float(config["report"]["headline_rate"])
    trained = [float(rate) for rate in config["faults"]["training_rates"]]
    return headline if headline in trained and headline in stuck_type_rates(config) else None


def study_methods(config: dict[str, Any], names: list[str]) -> list[str]:
    """Return the entries of a study's method list that the workflow runs (see run_methods)."""
    selected = config["run_methods"] or [name for name in config["methods"] if name not in clip_sweep_methods(config)]
    return [name for name in names if name in selected]


def validate_workflow_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate a complete study config as the workflow runs it.

    On top of :func:`validate_config`, the workflow needs a ``baseline`` method to compare every
    regularizer with, and ``run_methods`` may only name configured methods.
    """
    validated = validate_config(config)
    methods = validated["methods"]
    if "baseline" not in methods:
        raise ConfigError(
            "methods has no 'baseline' entry; add 'baseline: {}' so every regularizer is "
            "compared with unregularized training"
        )
    selected = validated["run_methods"]
    if selected is not None:
        unknown = [name for name in selected if name not in methods]
        if unknown:
            raise ConfigError(f"run_methods names {unknown}, which are not under methods {sorted(methods)}; add them or remove them")
        if "baseline" not in selected:
            raise ConfigError(f"run_methods {selected} leaves out baseline; add baseline so regularizers have a reference")
    # The sweep is on by default with base_method clip. A config without a clip method skips it
    # (the workflow runs no sweep when its base method does not run), unless it sets the sweep itself.
    sweep_given = "clip_sweep" in config.get("studies", {})
    if validated["studies"]["clip_sweep"]["base_method"] in methods or sweep_given:
        _add_clip_sweep_methods(validated)
    _check_studies(validated, config if isinstance(config, dict) else {})
    _check_repairs_and_cost(validated)
    return validated


def merge_configs(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated with ``override``, merging nested mappings key by key.

    Lists and other values replace the base value. This is how Snakemake combines
    ``--configfile`` files with the workflow's ``configfile:``.
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_configs(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_config_files(paths: list[str | Path]) -> dict[str, Any]:
    """Read YAML config files and merge them in order, later files overriding earlier ones."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = merge_configs(merged, _read_yaml_config(Path(path)))
    return merged


def _read_yaml_config(config_path: Path) -> dict[str, Any]:
    if not config_path.is_file():
        raise ConfigError(f"config file not found: {config_path}; pass the path of a YAML file such as config.yaml")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {config_path} is not valid YAML: {error}") from error
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {config_path} must contain a mapping of sections, got {type(raw).__name__}")
    return raw


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and return it validated, with defaults filled in."""
    return validate_config(_read_yaml_config(Path(path)))


def parse_config_json(text: str) -> dict[str, Any]:
    """Parse the JSON config that workflow rules pass on the command line, then validate it."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--config-json is not valid JSON: {error}") from error
    return validate_config(raw)
