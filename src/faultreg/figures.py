"""The study's figures, each drawn from the tidy tables of ``faultreg aggregate``.

Every figure function returns the matplotlib figure and the table of the numbers it shows;
:func:`draw_figure` writes both (the table as CSV next to the figure files). Intervals are
two-sided Student t intervals over runs (training seeds times fault maps) at the configured
level, as in the accuracy summary.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from faultreg.config import stuck_type_rates, stuck_type_training_rate  # noqa: E402
from faultreg.errors import FaultregError  # noqa: E402
from faultreg.report import (  # noqa: E402
    BASELINE,
    NUM_CLASSES,
    ReportSettings,
    StudyContext,
    _csv_bytes,
    method_order,
    plot_accuracy,
    render_figure,
    summarize_accuracy,
    main_rows,
    t_interval,
    write_outputs,
)

logger = logging.getLogger(__name__)

SETTING_LABELS = {"none": "faults at inference only", "same_chip": "trained and evaluated on the faulty chip"}


def _interval_rows(frame: pd.DataFrame, keys: list[str], value: str, level: float) -> pd.DataFrame:
    """Return n, mean and t interval of ``value`` per group of ``keys``."""
    rows = []
    for key, group in frame.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        values = group[value].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        mean, std, low, high = t_interval(values, level)
        rows.append({**dict(zip(keys, key)), "n": int(values.size), "mean": mean, "std": std, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=[*keys, "n", "mean", "std", "ci_low", "ci_high"])


def _palette(methods: list[str]) -> dict[str, Any]:
    return dict(zip(methods, sns.color_palette("colorblind" if len(methods) <= 10 else "husl", len(methods))))


def _band(ax: Any, x: pd.Series, table: pd.DataFrame, color: Any, label: str, scale: float = 1.0, **style: Any) -> None:
    ax.plot(x, scale * table["mean"], color=color, label=label, **style)
    finite = table["ci_low"].notna()
    if finite.any():
        ax.fill_between(x[finite], scale * table["ci_low"][finite], scale * table["ci_high"][finite], color=color, alpha=0.2, linewidth=0)


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="grey")


def _near_any(values: pd.Series, targets: Any) -> pd.Series:
    """Return a boolean mask of the ``values`` that are close to one of ``targets``.

    ``Series.apply`` returns a float Series when ``values`` is empty, and indexing a frame with
    that Series selects columns instead of rows.
    """
    matches = np.isclose(values.to_numpy(dtype=float)[:, None], np.asarray(targets, dtype=float)[None, :])
    return pd.Series(matches.any(axis=1), index=values.index)


# --- 1. Exploding weights ----------------------------------------------------------------------


def exploding_weights(tables: Mapping[str, pd.DataFrame], config: Mapping[str, Any], settings: ReportSettings, context: StudyContext) -> tuple[Figure, pd.DataFrame]:
    """Max |w| (log scale) and loss per step: fault-free baseline and each method on faulty chips."""
    history = tables["history"]
    study = config["studies"]["exploding_weights"]
    rate = float(study["rate"] if study["rate"] is not None else settings.headline_rate)
    main = history[~history["wear"].astype(bool)]
    curves = [(f"{BASELINE}, fault-free", main[(main["method"] == BASELINE) & (main["training_faults"] == "none")])]
    on_chip = main[
        (main["training_faults"] == "same_chip")
        & np.isclose(main["training_fault_rate"], rate)
        & np.isclose(main["training_sa1_share"].astype(float), context.main_sa1_share)
    ]
    for method in study["methods"]:
        curves.append((f"{method}, {100 * rate:g} % faulty cells", on_chip[on_chip["method"] == method]))

    frames = []
    for label, runs in curves:
        if runs.empty:
            continue
        runs = runs.assign(
            log10_max_abs_weight=np.log10(runs["max_abs_weight"].astype(float).clip(lower=1e-30)),
            log10_loss=np.log10(runs["loss"].astype(float).clip(lower=1e-30)),
        )
        for quantity in ("log10_max_abs_weight", "log10_loss"):
            table = _interval_rows(runs, ["step"], quantity, settings.confidence_level)
            frames.append(table.assign(curve=label, quantity=quantity))
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["curve", "quantity", "step", "n", "mean", "std", "ci_low", "ci_high"])
    data = data[["curve", "quantity", "step", "n", "mean", "std", "ci_low", "ci_high"]]

    figure = Figure(figsize=(11.0, 4.0), layout="constrained")
    axes = figure.subplots(1, 2, sharex=True)
    labels = [label for label, runs in curves if not runs.empty]
    colors = dict(zip(labels, sns.color_palette("colorblind", max(len(labels), 1))))
    for ax, quantity, title in zip(axes, ("log10_max_abs_weight", "log10_loss"), ("Largest |w| of the master weights", "Training loss")):
        ax.set_title(title)
        for label in labels:
            table = data[(data["curve"] == label) & (data["quantity"] == quantity)].sort_values("step")
            # Mean and interval of the log10 values, drawn on a log axis: a geometric mean over
            # runs. Wrong read weights give losses of 1e5 in the first steps, so a linear axis
            # would hide everything else.
            converted = table.assign(mean=10 ** table["mean"], ci_low=10 ** table["ci_low"], ci_high=10 ** table["ci_high"])
            _band(ax, converted["step"], converted, colors[label], label)
        ax.set_xlabel("Optimizer step")
        ax.set_yscale("log")
    axes[0].set_ylabel("max |w| (geometric mean over runs)")
    axes[1].axhline(math.log(NUM_CLASSES), color="grey", linestyle="--", linewidth=1.0, label=f"ln {NUM_CLASSES} (chance)")
    axes[1].set_ylabel("Cross-entropy loss (geometric mean over runs)")
    if labels:
        axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    else:
        _empty(axes[0], "no runs")
    figure.suptitle(f"Weights and loss during training ({100 * settings.confidence_level:g} % t intervals over chips and seeds)")
    return figure, data


# --- 2. Accuracy versus fault rate ---------------------------------------------------------------


def accuracy_vs_fault_rate(tables: Mapping[str, pd.DataFrame], config: Mapping[str, Any], settings: ReportSettings, context: StudyContext) -> tuple[Figure, pd.DataFrame]:
    """Accuracy against fault rate for every method, faults at inference only and during training.

    Training on a chip with no faulty cell is fault-free training, so the training panel starts
    at rate 0 with the fault-free models on the fault-free chip.
    """
    summary = summarize_accuracy(main_rows(tables["runs"], context), settings.confidence_level)
    trained = set(summary.loc[summary["setting"] == "training_and_inference", "method"])
    clean = summary[(summary["setting"] == "inference_only") & (summary["fault_rate"] == 0.0) & summary["method"].isin(trained)]
    summary = pd.concat([summary, clean.assign(setting="training_and_inference")], ignore_index=True)
    summary = summary.sort_values(["dataset", "model", "setting", "method", "fault_rate"], kind="mergesort").reset_index(drop=True)
    return plot_accuracy(summary, settings.confidence_level), summary


# --- 3. Stuck-at type ------------------------------------------------------------------------------


def share_label(share: float) -> str:
    """Return a readable SA0:SA1 label of an SA1 share, e.g. 0.5 -> 'SA0:SA1 = 1:1'."""
    if share <= 0.0:
        return "SA0 only"
    if share >= 1.0:
        return "SA1 only"
    return f"SA0:SA1 = 1:{share / (1.0 - share):.3g}"


def stuck_type(tables: Mapping[str, pd.DataFrame], config: Mapping[str, Any], settings: ReportSettings, context: StudyContext) -> tuple[Figure, pd.DataFrame]:
    """Accuracy by SA1 share at the study's rates (inference only) and at its training rate."""
    study = config["studies"]["stuck_type"]
    runs = tables["runs"]
    shares = sorted(float(share) for share in study["sa1_shares"])
    unrestricted = runs[(runs["fault_slices"] == "all") & (runs["fault_layers"] == "all") & ~runs["method"].isin(list(context.sweep_methods))]
    on_shares = unrestricted[_near_any(unrestricted["sa1_share"], shares)]

    rates = stuck_type_rates(config)
    inference = on_shares[(on_shares["training_faults"] == "none") & _near_any(on_shares["fault_rate"], rates)]
    panels = [("none", rate, inference[np.isclose(inference["fault_rate"], rate)]) for rate in rates]
    training_rate = stuck_type_training_rate(config)
    if training_rate is not None:
        rate = training_rate
        trained = on_shares[
            (on_shares["training_faults"] == "same_chip")
            & np.isclose(on_shares["fault_rate"], rate)
            & np.isclose(on_shares["training_sa1_share"].astype(float), on_shares["sa1_share"])
            & on_shares["method"].isin(study["training_methods"])
        ]
        panels.append(("same_chip", rate, trained))

    frames = []
    for setting, rate, rows in panels:
        table = _interval_rows(rows, ["method", "sa1_share"], "accuracy", settings.confidence_level)
        frames.append(table.assign(setting=setting, fault_rate=rate))
    data = pd.concat(frames, ignore_index=True)[["setting", "fault_rate", "method", "sa1_share", "n", "mean", "std", "ci_low", "ci_high"]]

    methods = method_order(data["method"]) if not data.empty else []
    colors = _palette(methods)
    figure = Figure(figsize=(4.2 * len(panels) + 2.0, 4.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(panels), sharey=True))
    positions = {share: index for index, share in enumerate(shares)}
    for ax, (setting, rate, _) in zip(axes, panels):
        panel = data[(data["setting"] == setting) & np.isclose(data["fault_rate"], rate)]
        present = [method for method in methods if method in set(panel["method"])]
        width = 0.8 / max(len(present), 1)
        for offset, method in enumerate(present):
            rows = panel[panel["method"] == method].sort_values("sa1_share")
            x = np.array([positions[min(shares, key=lambda share: abs(share - value))] for value in rows["sa1_share"]]) - 0.4 + width * (offset + 0.5)
            error = np.vstack([rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]]) * 100
            ax.errorbar(x, 100 * rows["mean"], yerr=np.nan_to_num(error), color=colors[method], marker="o", linestyle="none", capsize=3, label=method)
        ax.set_xticks(range(len(shares)), [share_label(share) for share in shares], rotation=20, ha="right")
        ax.axhline(100.0 / NUM_CLASSES, color="grey", linestyle="--", linewidth=1.0)
        ax.set_ylim(0.0, 101.0)
        ax.set_title(f"{100 * rate:g} % faulty cells, {SETTING_LABELS[setting]}", fontsize=9)
        if panel.empty:
            _empty(ax, "no runs")
    axes[0].set_ylabel("Test accuracy (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        more_handles, more_labels = ax.get_legend_handles_labels()
        for handle, label in zip(more_handles, more_labels):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if handles:
        axes[-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    figure.suptitle(f"Accuracy by stuck-at type (same fault sites for every split; {100 * settings.confidence_level:g} % t intervals)")
    return figure, data


# --- 4. Sensitivity by slice and layer ----------------------------------------------------------


def _layer_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def sensitivity(tables: Mapping[str, pd.DataFrame], config: Mapping[str, Any], settings: ReportSettings, context: StudyContext) -> tuple[Figure, pd.DataFrame]:
    """Heatmaps of accuracy with faults in one slice position of one layer, per method."""
    study = config["studies"]["sensitivity"]
    runs = tables["runs"]
    rows = runs[(runs["training_faults"] == "none") & (runs["fault_slices"] != "all") & (runs["fault_layers"] != "all")]
    rows = rows[np.isclose(rows["fault_rate"], float(study["rate"])) & rows["method"].isin(study["methods"])]
    rows = rows.assign(slice_position=rows["fault_slices"].astype(int), layer=rows["fault_layers"])
    data = _interval_rows(rows, ["method", "layer", "slice_position"], "accuracy", settings.confidence_level)

    methods = [method for method in study["methods"] if method in set(data["method"])]
    figure = Figure(figsize=(3.2 + 2.6 * max(len(methods), 1), 4.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, max(len(methods), 1), sharey=True))
    for ax, method in zip(axes, methods):
        panel = data[data["method"] == method]
        grid = panel.pivot(index="slice_position", columns="layer", values="mean").sort_index(ascending=False)
        grid = grid[sorted(grid.columns, key=_layer_key)]
        sns.heatmap(100 * grid, ax=ax, vmin=0, vmax=100, cmap="viridis", annot=True, fmt=".0f", cbar=ax is axes[-1],
                    cbar_kws={"label": "Test accuracy (%)"} if ax is axes[-1] else None, annot_kws={"fontsize": 7})
        ax.set_title(method)
        ax.set_xlabel("Layer")
        ax.set_ylabel("Faulty slice position (top: most significant)" if ax is axes[0] else "")
    if not methods:
        _empty(axes[0], "no runs")
    figure.suptitle(f"Accuracy with {100 * float(study['rate']):g} % of one slice position of one layer faulty (mean over maps and seeds)")
    return figure, data


# --- 5. Clip-value sweep ---------------------------------------------------------------------------


def clip_sweep(tables: Mapping[str, pd.DataFrame], config: Mapping[str, Any], settings: ReportSettings, context: StudyContext) -> tuple[Figure, pd.DataFrame]:
    """Accuracy against clip value c, one line per fault rate (faults at inference only)."""
    study = config["studies"]["clip_sweep"]
    runs = tables["runs"]
    rows = runs[
        runs["method"].isin(list(context.sweep_methods))
        & (runs["training_faults"] == "none")
        & (runs["fault_slices"] == "all")
        & (runs["fault_layers"] == "all")
        & np.isclose(runs["sa1_share"], context.main_sa1_share)
    ]
    rates = study["rates"] if study["rates"] is not None else sorted(rows["fault_rate"].unique())
    rows = rows[_near_any(rows["fault_rate"], [float(rate) for rate in rates])]
    rows = rows.assign(clip_value=rows["method"].map(context.sweep_methods))
    data = _interval_rows(rows, ["fault_rate", "clip_value"], "accuracy", settings.confidence_level)

    figure = Figure(figsize=(7.5, 4.4), layout="constrained")
    ax = figure.subplots()
    colors = dict(zip(sorted(data["fault_rate"].unique()), sns.color_palette("rocket_r", data["fault_rate"].nunique() or 1)))
    for rate, table in data.groupby("fault_rate", sort=True):
        table = table.sort_values("clip_value")
        _band(ax, table["clip_value"], table, colors[rate], f"{100 * rate:g} %", scale=100.0, marker="o")
    ax.set_xscale("log", base=2)
    ax.axhline(100.0 / NUM_CLASSES, color="grey", linestyle="--", linewidth=1.0)
    ax.set_ylim(0.0, 101.0)
    ax.set_xlabel("Clip value c (weights clamped to [-c, c]; stored range R = c)")
    ax.set_ylabel("Test accuracy (%)")
    if data.empty:
        _empty(ax, "no runs")
    else:
        ax.legend(title="Fault rate", loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.set_title(f"Clip-value sweep, trained fault-free, faults at inference ({100 * settings.confidence_level:g} % t intervals)", fontsize=9)
    return figure, data


# --- 6. Endurance ------------------------------------------------------------------------------------


def endurance(tables: Mapping[str, pd.DataFrame], config: Mapping[str, Any], settings: ReportSettings, context: StudyContext) -> tuple[Figure, pd.DataFrame]:
    """Faulty-cell fraction per step under wear, and the final accuracy, per method."""
    methods = config["studies"]["endurance"]["methods"]
    history = tables["history"]
    worn = history[history["wear"].astype(bool) & (history["training_faults"] == "none") & history["method"].isin(methods)]
    curves = _interval_rows(worn, ["method", "step"], "faulty_cell_fraction", settings.confidence_level).assign(quantity="faulty_cell_fraction")
    training = tables["training"]
    finals = training[training["wear"].astype(bool) & (training["training_faults"] == "none") & training["method"].isin(methods)]
    accuracy = _interval_rows(finals, ["method"], "final_test_accuracy", settings.confidence_level).assign(quantity="final_test_accuracy", step=np.nan)
    writes = _interval_rows(finals, ["method"], "slice_writes", settings.confidence_level).assign(quantity="slice_writes", step=np.nan)
    data = pd.concat([curves, accuracy, writes], ignore_index=True)[["quantity", "method", "step", "n", "mean", "std", "ci_low", "ci_high"]]

    present = [method for method in methods if method in set(data["method"])]
    colors = _palette(present)
    figure = Figure(figsize=(11.0, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1.0]})
    for method in present:
        table = curves[curves["method"] == method].sort_values("step")
        _band(left, table["step"], table, colors[method], method, scale=100.0)
    left.set_xlabel("Optimizer step")
    left.set_ylabel("Faulty cells (% of all cells)")
    left.set_title("Cells worn out by training writes")
    if present:
        left.legend(loc="upper left", frameon=False)
        bars = accuracy.set_index("method").reindex(present)
        error = np.nan_to_num(np.vstack([bars["mean"] - bars["ci_low"], bars["ci_high"] - bars["mean"]]) * 100)
        right.bar(range(len(present)), 100 * bars["mean"], yerr=error, color=[colors[method] for method in present], capsize=4)
        right.set_xticks(range(len(present)), present, rotation=20, ha="right")
    else:
        _empty(left, "no runs")
    right.axhline(100.0 / NUM_CLASSES, color="grey", linestyle="--", linewidth=1.0)
    right.set_ylim(0.0, 101.0)
    right.set_ylabel("Final test accuracy on the worn chip (%)")
    right.set_title("Accuracy after training with wear")
    figure.suptitle(f"Write endurance during training ({100 * settings.confidence_level:g} % t intervals over seeds)")
    return figure, data


# --- 7. Accuracy against hardware cost ---------------------------------------------------------


def pareto_front(cost: pd.Series, accuracy: pd.Series) -> pd.Series:
    """Return True for the points that no other point beats: as cheap or cheaper and as accurate or more, one strictly."""
    points = list(zip(cost.to_numpy(dtype=float), accuracy.to_numpy(dtype=float)))
    front = []
    for index, (own_cost, own_accuracy) in enumerate(points):
        dominated = any(
            other_cost <= own_cost and other_accuracy >= own_accuracy and (other_cost < own_cost or other_accuracy > own_accuracy)
            for position, (other_cost, other_accuracy) in enumerate(points)
            if position != index
        )
        front.append(not dominated)
    return pd.Series(front, index=cost.index)


def tradeoff(tables: Mapping[str, pd.DataFrame], config: Mapping[str, Any], settings: ReportSettings, context: StudyContext) -> tuple[Figure, pd.DataFrame]:
    """Accuracy retained at the study rates against the area and power each method adds.

    Retained accuracy is a run's accuracy over the fault-free accuracy of the baseline with the
    same training seed, so 100 % means no loss. Cost is the overhead per tile of table T1.
    """
    if "method_costs" not in tables:
        raise FaultregError("method_costs.csv is missing from the tables folder; write it with 'faultreg cost --methods-csv'")
    study = config["studies"]["tradeoff"]
    rates = [float(rate) for rate in (study["rates"] or [settings.headline_rate])]
    runs = main_rows(tables["runs"], context)
    costs = tables["method_costs"].set_index("method")
    reference = runs[(runs["method"] == BASELINE) & (runs["training_faults"] == "none") & (runs["fault_rate"] == 0.0)]
    reference = reference.set_index("training_seed")["accuracy"]
    retained = runs[runs["method"].isin(costs.index) & _near_any(runs["fault_rate"], rates)]
    retained = retained.assign(retained=retained["accuracy"] / retained["training_seed"].map(reference))
    data = _interval_rows(retained, ["training_faults", "fault_rate", "method"], "retained", settings.confidence_level)
    data = data.merge(costs[["area_overhead_pct_tile", "power_overhead_pct_tile"]], left_on="method", right_index=True)
    for axis in ("area", "power"):
        data[f"pareto_{axis}"] = False
        for _, group in data.groupby(["training_faults", "fault_rate"]):
            data.loc[group.index, f"pareto_{axis}"] = pareto_front(group[f"{axis}_overhead_pct_tile"], group["mean"])
    data = data.rename(columns={"training_faults": "setting"})

    panels = [(setting, rate) for rate in rates for setting in ("same_chip", "none")]
    methods = method_order(data["method"]) if not data.empty else []
    colors = _palette(methods)
    figure = Figure(figsize=(12.0, 4.0 * len(panels)), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(panels), 2, sharey=True))
    for row, (setting, rate) in zip(axes, panels):
        panel = data[(data["setting"] == setting) & np.isclose(data["fault_rate"], rate)]
        for ax, axis, label in zip(row, ("area", "power"), ("Area overhead per tile (%)", "Power overhead per tile (%)")):
            x = panel[f"{axis}_overhead_pct_tile"]
            for _, point in panel.iterrows():
                error = np.nan_to_num([[100 * (point["mean"] - point["ci_low"])], [100 * (point["ci_high"] - point["mean"])]])
                ax.errorbar(point[f"{axis}_overhead_pct_tile"], 100 * point["mean"], yerr=error, color=colors[point["method"]],
                            marker="o", capsize=3, linestyle="none")
                ax.annotate(point["method"], (point[f"{axis}_overhead_pct_tile"], 100 * point["mean"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
            front = panel[panel[f"pareto_{axis}"]].sort_values(f"{axis}_overhead_pct_tile")
            if not front.empty:
                ax.step(front[f"{axis}_overhead_pct_tile"], 100 * front["mean"], where="post", color="black",
                        linestyle="--", linewidth=1.0, label="Pareto front")
                ax.legend(loc="lower right", frameon=False, fontsize=8)
            if x.empty:
                _empty(ax, "no runs")
            # Overheads run from 0 (no hardware) to tens of percent, so the axis is linear near 0 and logarithmic above 0.1 %.
            ax.set_xscale("symlog", linthresh=0.1)
            ax.set_xlabel(label)
            ax.set_ylim(0.0, 110.0)
        row[0].set_ylabel(f"Accuracy retained at {100 * rate:g} % faults (%)")
        row[0].set_title(SETTING_LABELS[setting], loc="left", fontsize=9)
    figure.suptitle(
        f"Accuracy retained against hardware cost (100 % = fault-free baseline; {100 * settings.confidence_level:g} % t intervals)"
    )
    return figure, data


FIGURES: dict[str, Callable[..., tuple[Figure, pd.DataFrame]]] = {
    "exploding_weights": exploding_weights,
    "accuracy_vs_fault_rate": accuracy_vs_fault_rate,
    "stuck_type": stuck_type,
    "sensitivity": sensitivity,
    "clip_sweep": clip_sweep,
    "endurance": endurance,
    "tradeoff": tradeoff,
}


def load_tables(tables_dir: Path) -> dict[str, pd.DataFrame]:
    """Read the tidy tables that ``faultreg aggregate`` wrote to ``tables_dir``."""
    names = {"runs": "accuracy_runs.csv", "training": "training_runs.csv", "history": "training_history.csv"}
    tables = {}
    costs = Path(tables_dir) / "method_costs.csv"
    if costs.is_file():
        tables["method_costs"] = pd.read_csv(costs)
    for key, name in names.items():
        path = Path(tables_dir) / name
        if not path.is_file():
            raise FaultregError(f"{path} was not found; run 'faultreg aggregate' (or 'snakemake figures') first")
        tables[key] = pd.read_csv(path, dtype={"fault_slices": str, "fault_layers": str, "map_hash": str})
    return tables


def draw_figure(name: str, tables_dir: Path, figures_dir: Path, config: Mapping[str, Any]) -> list[Path]:
    """Draw figure ``name`` from the tables in ``tables_dir``; write it in every format plus its CSV."""
    if name not in FIGURES:
        raise FaultregError(f"unknown figure {name!r}; choose one of {', '.join(FIGURES)}")
    settings = ReportSettings.from_mapping(config["report"])
    context = StudyContext.from_config(config)
    figure, data = FIGURES[name](load_tables(tables_dir), config, settings, context)
    outputs = {Path(figures_dir) / f"{name}.{fmt}": render_figure(figure, fmt, settings.dpi) for fmt in settings.formats}
    outputs[Path(figures_dir) / f"{name}.csv"] = _csv_bytes(data)
    write_outputs(outputs)
    logger.info("Wrote figure %s (%s) to %s", name, ", ".join(settings.formats), figures_dir)
    return list(outputs)
