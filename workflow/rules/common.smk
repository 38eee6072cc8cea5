# Config validation, result paths and input functions shared by every stage.

import json

import faultreg.config
from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")
# faultreg's own validation fills nested defaults (method entries) and checks the rules that
# span several keys, with messages that name the key to fix.
config.update(faultreg.config.validate_config(config))
if "baseline" not in config["methods"]:
    raise faultreg.config.ConfigError(
        "methods has no 'baseline' entry; add 'baseline: {}' so every regularizer is "
        "compared with unregularized training"
    )

DATASET = config["dataset"]["name"]
MODEL = config["model"]["architecture"]
FAULT_RATES = [float(rate) for rate in config["faults"]["rates"]]
TRAINING_RATES = [float(rate) for rate in config["faults"]["training_rates"]]
MAPS_PER_RATE = config["faults"]["maps_per_rate"]
TRAINING_CHIPS = config["faults"]["training_chips"]
TRAINING_SEEDS = config["training"]["seeds"]
METHODS = list(config["methods"])
REGULARIZED_METHODS = [name for name in METHODS if name != "baseline"]

FAULT_MAP = "results/faultmaps/{model}/rate{rate}_map{map}.npz"
CHECKPOINT = "results/training/{dataset}/{model}/{method}/{condition}/seed{seed}/model.pt"
METRICS = "results/training/{dataset}/{model}/{method}/{condition}/seed{seed}/metrics.json"
HISTORY = "results/training/{dataset}/{model}/{method}/{condition}/seed{seed}/history.csv"
INFERENCE = "results/inference/{dataset}/{model}/{method}/{condition}/seed{seed}.csv"
COST_CSV = "results/tables/cost_overheads.csv"
COST_MARKDOWN = "results/tables/cost_overheads.md"
FIGURE_NAMES = ["accuracy_vs_fault_rate"]
FIGURE_FORMATS = config["report"]["formats"]


wildcard_constraints:
    dataset=r"[a-z_]+",
    model=r"[a-z0-9]+",
    method=r"[a-z][a-z0-9_]*",
    rate=r"[0-9.e-]+",
    map=r"\d+",
    seed=r"\d+",
    condition=r"fault_free|rate[0-9.e-]+_chip\d+",


def rate_label(rate):
    """Return the file-name form of a fault rate, e.g. 0.05 -> '0.05'."""
    return format(float(rate), "g")


def config_json(*sections, methods=None):
    """Return the named config sections as canonical JSON for a rule's params.

    Passing only the sections a stage reads means that editing any other section leaves the
    rule's params, and so its outputs, untouched. ``methods`` restricts the methods section to
    the named entries.
    """
    subset = {section: config[section] for section in sections}
    if methods is not None:
        subset["methods"] = {name: config["methods"][name] for name in methods}
    return json.dumps(subset, sort_keys=True, separators=(",", ":"))


def fault_map_path(rate, map_index):
    return FAULT_MAP.format(model=MODEL, rate=rate_label(rate), map=map_index)


def all_fault_maps():
    return [fault_map_path(rate, index) for rate in FAULT_RATES for index in range(MAPS_PER_RATE)]


def training_conditions():
    """Return every training condition: fault-free, then each (rate, chip)."""
    conditions = ["fault_free"]
    for rate in TRAINING_RATES:
        conditions += [f"rate{rate_label(rate)}_chip{chip}" for chip in range(TRAINING_CHIPS)]
    return conditions


def run_paths(pattern):
    return expand(
        pattern,
        dataset=DATASET,
        model=MODEL,
        method=METHODS,
        condition=training_conditions(),
        seed=TRAINING_SEEDS,
    )


def all_checkpoints():
    return run_paths(CHECKPOINT)


def all_metrics():
    return run_paths(METRICS)


def all_inference_tables():
    return run_paths(INFERENCE)


def parse_condition(condition):
    """Return (rate label, chip index) of a faulty condition, or None for fault_free."""
    if condition == "fault_free":
        return None
    rate_part, chip_part = condition.split("_chip")
    return rate_part[len("rate"):], int(chip_part)


def training_fault_map(wildcards):
    """Input function: the chip a run trains on, or nothing for fault-free training."""
    parsed = parse_condition(wildcards.condition)
    if parsed is None:
        return []
    rate, chip = parsed
    return [FAULT_MAP.format(model=wildcards.model, rate=rate, map=chip)]


def evaluation_fault_maps(wildcards):
    """Input function: every map for a fault-free model, its own chip for a chip-trained one."""
    if parse_condition(wildcards.condition) is None:
        return [
            FAULT_MAP.format(model=wildcards.model, rate=rate_label(rate), map=index)
            for rate in FAULT_RATES
            for index in range(MAPS_PER_RATE)
        ]
    return training_fault_map(wildcards)


def training_fault_map_argument(wildcards, input):
    """Params function: the --fault-map option of a training run, empty when fault-free."""
    return f"--fault-map {input.fault_map}" if input.fault_map else ""


def evaluation_fault_map_arguments(wildcards, input):
    """Params function: one --fault-map option per map a model is evaluated on."""
    return " ".join(f"--fault-map {path}" for path in input.fault_maps)


# Config sections a training run reads; the method entry is added per rule.
TRAINING_SECTIONS = ("seed", "dataset", "model", "crossbar", "training", "endurance")


def figure_files():
    return expand("results/figures/{name}.{ext}", name=FIGURE_NAMES, ext=FIGURE_FORMATS)


def final_outputs():
    return figure_files() + [
        "results/summary.md",
        "results/tables/accuracy_summary.csv",
        COST_CSV,
    ]
