"""The claims table: each published claim, the numbers measured on this run and a verdict.

Every comparison is paired: two methods are compared on the same training seed and the same
fault map (or the same chip for on-chip training), and the interval is a two-sided Student t
interval of the per-pair differences. A verdict compares that interval with the claim's
threshold:

* held: the whole interval lies on the claimed side of the threshold;
* not held: the whole interval lies on the other side;
* inconclusive: the interval straddles the threshold, or a needed run is missing.

Cost claims compare fixed numbers of the cost model, so they are held or not held outright.

The ``mean``, ``ci_low``, ``ci_high`` and ``threshold`` columns are in the unit that the
``comparison`` column names: a fraction of test images, a fraction of cells, a log10 ratio or a
percentage of the tile. The ``measured`` text gives them in percent and percentage points.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from faultreg.config import stuck_type_rates
from faultreg.figures import load_tables
from faultreg.report import BASELINE, ReportSettings, StudyContext, _csv_bytes, main_rows, read_cost_table, t_interval, write_outputs

logger = logging.getLogger(__name__)

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"
CLAIM_COLUMNS = ["claim", "comparison", "setting", "fault_rate", "n_pairs", "mean", "ci_low", "ci_high", "threshold", "verdict", "measured"]
# Below this fault-free accuracy (chance plus 5 percentage points for ten classes) a method did
# not learn, so comparing its fault tolerance with another method's means nothing.
LEARNED_ACCURACY = 0.15



@dataclass
class Claim:
    """One row of the claims table."""

    claim: str
    comparison: str
    setting: str
    fault_rate: float | None
    threshold: float | None
    verdict: str
    measured: str
    n_pairs: int = 0
    mean: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CLAIM_COLUMNS}


def verdict_above(low: float, high: float, threshold: float) -> str:
    """Verdict for a claim that the true difference exceeds ``threshold``."""
    if math.isnan(low):
        return INCONCLUSIVE
    if low > threshold:
        return HELD
    if high < threshold:
        return NOT_HELD
    return INCONCLUSIVE


def verdict_below(low: float, high: float, threshold: float) -> str:
    """Verdict for a claim that the true difference is below ``threshold``."""
    if math.isnan(low):
        return INCONCLUSIVE
    if high < threshold:
        return HELD
    if low > threshold:
        return NOT_HELD
    return INCONCLUSIVE


def verdict_gain(low: float, high: float, margin: float) -> str:
    """Verdict for "adds tolerance": held when the gain is surely positive, not held when it is surely below ``margin``."""
    if math.isnan(low):
        return INCONCLUSIVE
    if low > 0.0:
        return HELD
    if high < margin:
        return NOT_HELD
    return INCONCLUSIVE


def paired(first: pd.DataFrame, second: pd.DataFrame, keys: list[str], value: str = "accuracy") -> np.ndarray:
    """Return ``first - second`` of ``value`` over the rows that share ``keys``."""
    merged = first[keys + [value]].merge(second[keys + [value]], on=keys, suffixes=("_first", "_second"))
    return (merged[f"{value}_first"] - merged[f"{value}_second"]).to_numpy(dtype=float)


def _interval(differences: np.ndarray, level: float) -> tuple[int, float, float, float]:
    differences = differences[np.isfinite(differences)]
    if differences.size == 0:
        return 0, math.nan, math.nan, math.nan
    mean, _, low, high = t_interval(differences, level)
    return int(differences.size), mean, low, high


def _pp(value: float) -> str:
    """Format a fraction in percent: one decimal, two below 0.05 so a tiny nonzero value is not shown as 0.0."""
    if value is None or math.isnan(value):
        return "n/a"
    if value != 0 and abs(100 * value) < 0.05:
        return f"{100 * value:.2f}"
    return f"{100 * value:.1f}"


def _ci_text(mean: float, low: float, high: float, unit: str = "pp") -> str:
    if math.isnan(mean):
        return "no pairs"
    if math.isnan(low):
        return f"{_pp(mean)} {unit} (one pair, no interval)"
    return f"{_pp(mean)} {unit} [{_pp(low)}, {_pp(high)}]"


class ClaimBuilder:
    """Compute every claim from the tidy tables of one run."""

    def __init__(self, tables: Mapping[str, pd.DataFrame], costs: pd.DataFrame, config: Mapping[str, Any]) -> None:
        self.settings = ReportSettings.from_mapping(config["report"])
        self.context = StudyContext.from_config(config)
        self.thresholds = config["report"]["claims"]
        self.studies = config["studies"]
        self.config = config
        self.level = self.settings.confidence_level
        self.tables = tables
        self.runs = tables["runs"]
        self.main = main_rows(self.runs, self.context)
        self.training = tables["training"]
        self.costs = costs
        exploding_rate = self.studies["exploding_weights"]["rate"]
        self.rate = float(exploding_rate if exploding_rate is not None else self.settings.headline_rate)

    # Selections -------------------------------------------------------------------------------

    def fault_free_accuracy(self, method: str) -> pd.DataFrame:
        """Accuracy of each seed's fault-free model on the fault-free chip."""
        rows = self.main[(self.main["method"] == method) & (self.main["training_faults"] == "none") & (self.main["fault_rate"] == 0.0)]
        return rows[["training_seed", "accuracy"]]

    def inference_rows(self, method: str, rate: float) -> pd.DataFrame:
        rows = self.main[(self.main["method"] == method) & (self.main["training_faults"] == "none") & np.isclose(self.main["fault_rate"], rate)]
        return rows

    def chip_rows(self, method: str, rate: float) -> pd.DataFrame:
        rows = self.main[(self.main["method"] == method) & (self.main["training_faults"] == "same_chip") & np.isclose(self.main["fault_rate"], rate)]
        return rows

    def methods(self) -> set[str]:
        return set(self.runs["method"])

    def not_learned(self, method: str) -> str | None:
        """Return a note when ``method`` did not learn fault-free (mean accuracy below LEARNED_ACCURACY), else None."""
        accuracy = self.fault_free_accuracy(method)["accuracy"]
        if accuracy.empty or accuracy.mean() >= LEARNED_ACCURACY:
            return None
        return f"{method} did not learn even fault-free ({_pp(accuracy.mean())} %), so this comparison is not meaningful; "

    def _unless_not_learned(self, claim: Claim, *methods: str) -> Claim:
        """Mark ``claim`` inconclusive when one of ``methods`` did not learn fault-free."""
        notes = [note for note in (self.not_learned(method) for method in methods) if note]
        if notes:
            claim.verdict = INCONCLUSIVE
            claim.measured = "".join(notes) + claim.measured
        return claim

    # Claims -----------------------------------------------------------------------------------

    def collapse(self) -> list[Claim]:
        """Claim 1: unmitigated training on a faulty chip collapses, and its weights explode."""
        drop_threshold = float(self.thresholds["collapse_drop"])
        reference = self.fault_free_accuracy(BASELINE)
        chip = self.chip_rows(BASELINE, self.rate)
        n, mean, low, high = _interval(paired(reference, chip, ["training_seed"]), self.level)
        claims = [
            Claim(
                "1a. Training on faulty ReRAM without mitigation collapses",
                "baseline fault-free minus baseline trained and evaluated on the faulty chip (accuracy as a fraction)",
                "same_chip", self.rate, drop_threshold, verdict_above(low, high, drop_threshold),
                f"accuracy {_pp(reference['accuracy'].mean())} % fault-free, {_pp(chip['accuracy'].mean())} % on the chip; "
                f"drop {_ci_text(mean, low, high)}; collapse means a drop above {_pp(drop_threshold)} pp",
                n, mean, low, high,
            )
        ]

        training = self.training[~self.training["wear"].astype(bool) & (self.training["method"] == BASELINE)]
        fault_free = training[training["training_faults"] == "none"][["training_seed", "max_abs_weight"]]
        on_chip = training[
            (training["training_faults"] == "same_chip")
            & np.isclose(training["training_fault_rate"], self.rate)
            & np.isclose(training["training_sa1_share"].astype(float), self.context.main_sa1_share)
        ]
        diverged = int(on_chip["diverged"].sum())
        growth = np.log10(on_chip[["training_seed", "max_abs_weight"]].merge(fault_free, on="training_seed", suffixes=("_chip", "_free")).pipe(
            lambda frame: frame["max_abs_weight_chip"] / frame["max_abs_weight_free"]
        ).to_numpy(dtype=float))
        n, mean, low, high = _interval(growth, self.level)
        verdict = verdict_above(low, high, 0.0)
        if diverged and diverged == len(on_chip):
            verdict = HELD
        ratio = "no pairs" if n == 0 else (
            f"x{10 ** mean:.3g} [x{10 ** low:.3g}, x{10 ** high:.3g}]" if not math.isnan(low) else f"x{10 ** mean:.3g} (one pair)"
        )
        claims.append(
            Claim(
                "1b. ... through exploding weights",
                "log10 of final max |w| on the faulty chip over fault-free max |w| (same seed)",
                "same_chip", self.rate, 0.0, verdict,
                f"max |w| grew {ratio} (geometric mean over chips and seeds); {diverged} of {len(on_chip)} runs diverged (NaN or inf)",
                n, mean, low, high,
            )
        )
        return claims

    def clipping(self) -> list[Claim]:
        """Claim 2: weight clipping restores near fault-free accuracy at almost no hardware cost."""
        margin = float(self.thresholds["near_fault_free_margin"])
        reference = self.fault_free_accuracy(BASELINE)
        claims = []
        for setting, rows in (("same_chip", self.chip_rows("clip", self.rate)), ("none", self.inference_rows("clip", self.rate))):
            n, mean, low, high = _interval(paired(reference, rows, ["training_seed"]), self.level)
            where = "trained and evaluated on the faulty chip" if setting == "same_chip" else "trained fault-free, faults at inference only"
            claims.append(
                Claim(
                    f"2{'a' if setting == 'same_chip' else 'b'}. Weight clipping restores near fault-free accuracy ({where})",
                    "baseline fault-free minus clip on faulty chips (accuracy as a fraction)",
                    setting, self.rate, margin, verdict_below(low, high, margin),
                    f"clip {_pp(rows['accuracy'].mean())} % vs fault-free baseline {_pp(reference['accuracy'].mean())} %; "
                    f"shortfall {_ci_text(mean, low, high)}; near means below {_pp(margin)} pp",
                    n, mean, low, high,
                )
            )
        claims.append(self._software_cost("weight_clipping", "2c. ... at almost no hardware cost", limit_pct=1.0))
        return claims

    def _software_cost(self, mitigation: str, claim: str, limit_pct: float) -> Claim:
        methods = self.tables.get("method_costs")
        if methods is not None and "clip" in set(methods["method"]):
            row = methods[methods["method"] == "clip"]
            area, power = float(row["area_overhead_pct_tile"].iloc[0]), float(row["power_overhead_pct_tile"].iloc[0])
            verdict = HELD if max(area, power) < limit_pct else NOT_HELD
            return Claim(
                claim, "clip area and power overhead per tile (percent of the tile), table T1", "cost", None, limit_pct, verdict,
                f"+{area:.3g} % area, +{power:.3g} % power per ISAAC tile; almost none means below {limit_pct:g} %",
            )
        row = self.costs[self.costs["mitigation"] == mitigation]
        if row.empty:
            return Claim(claim, f"{mitigation} area and power overhead (%)", "cost", None, limit_pct, INCONCLUSIVE, "not in the cost table")
        area, power = float(row["area_overhead_pct"].iloc[0]), float(row["power_overhead_pct"].iloc[0])
        verdict = HELD if max(area, power) < limit_pct else NOT_HELD
        return Claim(
            claim, f"{mitigation} area and power overhead per tile (%)", "cost", None, limit_pct, verdict,
            f"+{area:.3g} % area, +{power:.3g} % power per ISAAC tile; almost none means below {limit_pct:g} %",
            extra={"area": area, "power": power},
        )

    def dropout_style(self) -> list[Claim]:
        """Claim 3: dropout-style regularizers add fault tolerance (paired gain over their reference)."""
        margin = float(self.thresholds["near_fault_free_margin"])
        comparisons = [("dropout", BASELINE), ("dropconnect", BASELINE), ("fault_injection", BASELINE), ("clip_dropout", "clip")]
        claims = []
        for method, reference in comparisons:
            if method not in self.methods() or reference not in self.methods():
                continue
            for setting in ("none", "same_chip"):
                if setting == "none":
                    first, second, keys = self.inference_rows(method, self.rate), self.inference_rows(reference, self.rate), ["training_seed", "map_index"]
                else:
                    first, second, keys = self.chip_rows(method, self.rate), self.chip_rows(reference, self.rate), ["training_seed", "map_index"]
                n, mean, low, high = _interval(paired(first, second, keys), self.level)
                where = "faults at inference only" if setting == "none" else "trained on the faulty chip"
                claims.append(self._unless_not_learned(
                    Claim(
                        f"3. {method} adds fault tolerance over {reference} ({where})",
                        f"{method} minus {reference} on the same seeds and maps (accuracy as a fraction)",
                        setting, self.rate, 0.0, verdict_gain(low, high, margin),
                        f"{method} {_pp(first['accuracy'].mean())} % vs {reference} {_pp(second['accuracy'].mean())} %; "
                        f"gain {_ci_text(mean, low, high)}; not held means a gain below {_pp(margin)} pp",
                        n, mean, low, high,
                    ),
                    method, reference,
                ))
        return claims

    def cost_comparison(self) -> list[Claim]:
        """Claim 4a: software methods cost less area, and less power, than every hardware fix.

        Uses table T1 (the configured methods, each priced from its own settings) when the
        tables folder has it, else the per-mitigation cost table. Area and power get one row
        each, because a design can win on one and lose on the other.
        """
        methods = self.tables.get("method_costs")
        kinds = set(methods["kind"]) if methods is not None and "kind" in methods.columns else set()
        if {"software", "hardware"} <= kinds:
            software = methods[methods["kind"] == "software"].rename(columns={"method": "name", "area_overhead_pct_tile": "area", "power_overhead_pct_tile": "power"})
            hardware = methods[methods["kind"] == "hardware"].rename(columns={"method": "name", "area_overhead_pct_tile": "area", "power_overhead_pct_tile": "power"})
            source = "table T1 (configured methods)"
        else:
            software = self.costs[self.costs["kind"] == "software"].rename(columns={"mitigation": "name", "area_overhead_pct": "area", "power_overhead_pct": "power"})
            hardware = self.costs[self.costs["kind"] == "hardware"].rename(columns={"mitigation": "name", "area_overhead_pct": "area", "power_overhead_pct": "power"})
            source = "the per-mitigation cost table"
        if software.empty or hardware.empty:
            return [Claim("4a. Software methods beat hardware fixes on cost", "overheads", "cost", None, None, INCONCLUSIVE, f"{source} lacks software or hardware rows")]
        claims = []
        for quantity in ("area", "power"):
            worst = software.sort_values(quantity).iloc[-1]
            best = hardware.sort_values(quantity).iloc[0]
            verdict = HELD if float(worst[quantity]) < float(best[quantity]) else NOT_HELD
            claims.append(
                Claim(
                    f"4a. Software methods beat hardware fixes on {quantity}",
                    f"largest software vs smallest hardware {quantity} overhead per tile (percent of the tile)",
                    "cost", None, None, verdict,
                    f"software at most +{float(worst[quantity]):.3g} % ({worst['name']}), hardware at least "
                    f"+{float(best[quantity]):.3g} % ({best['name']}), from {source}. Claim 4b compares their accuracy",
                )
            )
        return claims

    def accuracy_against_repairs(self) -> list[Claim]:
        """Claim 4b: clipping is at least as accurate as each hardware repair on the same chips.

        A non-inferiority comparison: held when clipping is surely no more than the margin below
        the repair, not held when it is surely more than the margin below.
        """
        margin = float(self.thresholds["near_fault_free_margin"])
        repairs = [name for name, method in self.config.get("methods", {}).items() if method.get("repair")]
        claims = []
        for repair in repairs:
            if repair not in self.methods() or "clip" not in self.methods():
                continue
            for setting in ("same_chip", "none"):
                select = self.chip_rows if setting == "same_chip" else self.inference_rows
                first, second = select("clip", self.rate), select(repair, self.rate)
                n, mean, low, high = _interval(paired(first, second, ["training_seed", "map_index"]), self.level)
                where = "trained on the faulty chip" if setting == "same_chip" else "faults at inference only"
                claims.append(self._unless_not_learned(
                    Claim(
                        f"4b. Clipping is at least as accurate as {repair} ({where})",
                        f"clip minus {repair} on the same seeds and chips (accuracy as a fraction)",
                        setting, self.rate, -margin, verdict_above(low, high, -margin),
                        f"clip {_pp(first['accuracy'].mean())} % vs {repair} {_pp(second['accuracy'].mean())} %; "
                        f"difference {_ci_text(mean, low, high)}; at least as accurate means above -{_pp(margin)} pp",
                        n, mean, low, high,
                    ),
                    "clip", repair,
                ))
        return claims

    def stuck_type(self) -> list[Claim]:
        """Study claim: SA1 faults hurt more than SA0 faults at the same sites."""
        study = self.studies["stuck_type"]
        if not study["enabled"] or not {0.0, 1.0} <= {float(share) for share in study["sa1_shares"]}:
            return []
        runs = self.runs[(self.runs["fault_slices"] == "all") & (self.runs["fault_layers"] == "all") & (self.runs["training_faults"] == "none")]
        claims = []
        rate = float(max(stuck_type_rates(self.config)))
        for method in (BASELINE, "clip"):
            rows = runs[(runs["method"] == method) & np.isclose(runs["fault_rate"], rate)]
            sa0, sa1 = rows[np.isclose(rows["sa1_share"], 0.0)], rows[np.isclose(rows["sa1_share"], 1.0)]
            if sa0.empty or sa1.empty:
                continue
            n, mean, low, high = _interval(paired(sa0, sa1, ["training_seed", "map_index"]), self.level)
            claims.append(
                Claim(
                    f"5. SA1 faults hurt {method} more than SA0 faults at the same cells",
                    "accuracy with SA0 only minus SA1 only (pp)",
                    "none", rate, 0.0, verdict_above(low, high, 0.0),
                    f"SA0 only {_pp(sa0['accuracy'].mean())} %, SA1 only {_pp(sa1['accuracy'].mean())} %; difference {_ci_text(mean, low, high)}",
                    n, mean, low, high,
                )
            )
        return claims

    def sensitivity(self) -> list[Claim]:
        """Study claim: faults in the most significant slice hurt more than in the least significant one."""
        study = self.studies["sensitivity"]
        if not study["enabled"]:
            return []
        runs = self.runs[(self.runs["training_faults"] == "none") & (self.runs["fault_slices"] != "all") & (self.runs["fault_layers"] != "all")]
        if runs.empty:
            return []
        positions = runs["fault_slices"].astype(int)
        low_rows = runs[positions == positions.min()]
        high_rows = runs[positions == positions.max()]
        claims = []
        for method in (BASELINE, "clip"):
            first, second = low_rows[low_rows["method"] == method], high_rows[high_rows["method"] == method]
            if first.empty or second.empty:
                continue
            n, mean, low, high = _interval(paired(first, second, ["training_seed", "map_index", "fault_layers"]), self.level)
            claims.append(
                Claim(
                    f"6. Faults in the most significant slice hurt {method} more than in the least significant one",
                    "accuracy with faults in slice 0 minus in the top slice, same layer, seed and map (pp)",
                    "none", float(study["rate"]), 0.0, verdict_above(low, high, 0.0),
                    f"slice {positions.min()} {_pp(first['accuracy'].mean())} %, slice {positions.max()} {_pp(second['accuracy'].mean())} %; "
                    f"difference {_ci_text(mean, low, high)}",
                    n, mean, low, high,
                )
            )
        return claims

    def clip_sweep(self) -> list[Claim]:
        """Study claims: too small a clip costs clean accuracy, too large a clip loses protection."""
        sweep = self.context.sweep_methods
        if len(sweep) < 3:
            return []
        runs = self.runs[
            self.runs["method"].isin(list(sweep)) & (self.runs["training_faults"] == "none")
            & (self.runs["fault_slices"] == "all") & (self.runs["fault_layers"] == "all")
            & np.isclose(self.runs["sa1_share"], self.context.main_sa1_share)
        ]

        values = sorted(sweep.values())
        names = {value: name for name, value in sweep.items()}
        base_rows = self.runs[self.runs["method"] == self.studies["clip_sweep"]["base_method"]]["clip_value"].dropna()
        base_value = float(base_rows.iloc[0]) if not base_rows.empty else values[len(values) // 2]
        smallest, largest = names[values[0]], names[values[-1]]
        middle = names[min(values, key=lambda value: abs(value - base_value))]

        claims = []
        for label, probe, rate in (("too small a clip lowers clean accuracy", smallest, 0.0), ("too large a clip loses protection", largest, self.rate)):
            first = runs[(runs["method"] == middle) & np.isclose(runs["fault_rate"], rate)]
            second = runs[(runs["method"] == probe) & np.isclose(runs["fault_rate"], rate)]
            n, mean, low, high = _interval(paired(first, second, ["training_seed", "map_index"]), self.level)
            claims.append(
                Claim(
                    f"7. Clip sweep: {label}",
                    f"{middle} minus {probe} (accuracy as a fraction)",
                    "none", rate, 0.0, verdict_above(low, high, 0.0),
                    f"{middle} {_pp(first['accuracy'].mean())} %, {probe} {_pp(second['accuracy'].mean())} %; difference {_ci_text(mean, low, high)}",
                    n, mean, low, high,
                )
            )
        return claims

    def endurance(self) -> list[Claim]:
        """Study claim: regularized training wears cells out more slowly than plain training."""
        study = self.studies["endurance"]
        worn = self.training[self.training["wear"].astype(bool) & (self.training["training_faults"] == "none")]
        if not study["enabled"] or worn.empty:
            return []
        reference = worn[worn["method"] == BASELINE]
        claims = []
        for method in study["methods"]:
            if method == BASELINE:
                continue
            rows = worn[worn["method"] == method]
            if rows.empty or reference.empty:
                continue
            differences = paired(reference, rows, ["training_seed"], value="final_faulty_cell_fraction")
            n, mean, low, high = _interval(differences, self.level)
            claims.append(
                Claim(
                    f"8. {method} wears cells out more slowly than baseline",
                    "worn-cell fraction of baseline minus method after training (fraction of cells)",
                    "wear", None, 0.0, verdict_above(low, high, 0.0),
                    f"baseline {_pp(reference['final_faulty_cell_fraction'].mean())} % of cells worn, {method} "
                    f"{_pp(rows['final_faulty_cell_fraction'].mean())} %; difference {_ci_text(mean, low, high)}",
                    n, mean, low, high,
                )
            )
        return claims

    def all(self) -> list[Claim]:
        return (
            self.collapse() + self.clipping() + self.dropout_style() + self.cost_comparison()
            + self.accuracy_against_repairs() + self.stuck_type() + self.sensitivity() + self.clip_sweep() + self.endurance()
        )


def format_claims_markdown(claims: pd.DataFrame, level: float) -> str:
    """Render the claims as a Markdown table with a short legend."""
    lines = [
        "# Claims and verdicts",
        "",
        f"Differences are paired (same training seed and fault map); intervals are {100 * level:g} % Student t "
        "intervals of the paired differences, in percentage points (pp). Verdict: held when the interval lies "
        "wholly on the claimed side of the threshold, not held when wholly on the other side, inconclusive otherwise.",
        "",
        "",
    ]
    table = pd.DataFrame({
        "Claim": claims["claim"].str.replace("|", "\\|", regex=False),
        "Fault rate": claims["fault_rate"].map(lambda value: "" if pd.isna(value) else f"{100 * value:g} %"),
        "Measured": claims["measured"].str.replace("|", "\\|", regex=False),
        "n": claims["n_pairs"].map(lambda value: "" if not value else str(int(value))),
        "Verdict": claims["verdict"].map(lambda value: f"**{value}**"),
    })
    return "\n".join(lines) + table.to_markdown(index=False, disable_numparse=True) + "\n"


def write_claims(tables_dir: Path, cost_table: Path, config: Mapping[str, Any], csv_path: Path, markdown_path: Path) -> pd.DataFrame:
    """Compute the claims from the tidy tables and write them as CSV and Markdown."""
    builder = ClaimBuilder(load_tables(tables_dir), read_cost_table(Path(cost_table)), config)
    claims = pd.DataFrame([claim.row() for claim in builder.all()], columns=CLAIM_COLUMNS)
    write_outputs({
        Path(csv_path): _csv_bytes(claims),
        Path(markdown_path): format_claims_markdown(claims, builder.level).encode("utf-8"),
    })
    logger.info("Wrote %d claims: %s", len(claims), claims["verdict"].value_counts().to_dict())
    return claims
