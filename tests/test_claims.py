"""Tests of the claims table on small hand-built tidy tables with hand-computed verdicts.

Every table is written as CSV and read back with :func:`faultreg.figures.load_tables`, as
``faultreg claims`` reads the output of ``faultreg aggregate``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from faultreg.claims import (
    CLAIM_COLUMNS,
    HELD,
    INCONCLUSIVE,
    NOT_HELD,
    ClaimBuilder,
    format_claims_markdown,
    paired,
    verdict_above,
    verdict_below,
    verdict_gain,
    write_claims,
)
from faultreg.cost import build_overhead_table, write_overhead_table
from faultreg.errors import FaultregError
from faultreg.figures import load_tables
from faultreg.report import COST_COLUMNS, read_cost_table

from study_tables import SHARE, accuracy_row, study_config, training_row, write_tables

SEEDS = (0, 1, 2)
CHIPS = (0, 1)


def write_shipped_costs(folder: Path, config: dict) -> Path:
    """Write the cost table of the shipped ISAAC model and return the CSV path."""
    table = build_overhead_table(config["cost"], config["crossbar"])
    path = folder / "cost_overheads.csv"
    write_overhead_table(table, path, folder / "cost_overheads.md")
    return path


def hand_interval(differences: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Return mean, low and high of a two-sided t interval computed from the textbook formula."""
    n = len(differences)
    mean = sum(differences) / n
    std = math.sqrt(sum((value - mean) ** 2 for value in differences) / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n)
    return mean, mean - half, mean + half


# --- Verdicts and pairing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0.6, 0.9, HELD), (0.1, 0.4, NOT_HELD), (0.4, 0.6, INCONCLUSIVE), (0.5, 0.7, INCONCLUSIVE),
     (0.3, 0.5, INCONCLUSIVE), (math.nan, math.nan, INCONCLUSIVE)],
)
def test_verdict_above(low: float, high: float, expected: str) -> None:
    assert verdict_above(low, high, 0.5) == expected


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0.0, 0.01, HELD), (0.03, 0.05, NOT_HELD), (0.01, 0.03, INCONCLUSIVE), (0.02, 0.04, INCONCLUSIVE),
     (math.nan, math.nan, INCONCLUSIVE)],
)
def test_verdict_below(low: float, high: float, expected: str) -> None:
    assert verdict_below(low, high, 0.02) == expected


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.01, 0.05, HELD),  # surely a gain
        (0.001, 0.01, HELD),  # a sure gain counts even when it is smaller than the margin
        (-0.05, 0.01, NOT_HELD),  # surely less than the 0.02 margin
        (0.0, 0.01, NOT_HELD),  # low is not above zero, high is below the margin
        (-0.01, 0.03, INCONCLUSIVE),
        (math.nan, math.nan, INCONCLUSIVE),
    ],
)
def test_verdict_gain(low: float, high: float, expected: str) -> None:
    assert verdict_gain(low, high, 0.02) == expected


def test_paired_drops_rows_on_one_side_only() -> None:
    first = pd.DataFrame({"training_seed": [0, 1, 2], "accuracy": [0.9, 0.8, 0.7], "map_index": [5, 5, 5]})
    second = pd.DataFrame({"training_seed": [3, 2, 1], "accuracy": [0.1, 0.6, 0.5]})
    # Seed 0 is only in first and seed 3 only in second: seed 1 gives 0.8 - 0.5, seed 2 gives 0.7 - 0.6.
    differences = paired(first, second, ["training_seed"])
    assert differences == pytest.approx([0.3, 0.1])
    assert differences.dtype == np.float64


def test_paired_multiple_keys_and_value() -> None:
    first = pd.DataFrame({
        "training_seed": [0, 0, 1, 1],
        "map_index": [0, 1, 0, 1],
        "final_faulty_cell_fraction": [0.10, 0.20, 0.30, 0.40],
    })
    second = pd.DataFrame({
        "training_seed": [0, 1, 1],
        "map_index": [1, 1, 2],
        "final_faulty_cell_fraction": [0.05, 0.15, 0.99],
    })
    differences = paired(first, second, ["training_seed", "map_index"], value="final_faulty_cell_fraction")
    # Key (0, 1) gives 0.20 - 0.05 and key (1, 1) gives 0.40 - 0.15. Keys (0, 0), (1, 0) and (1, 2) have no partner.
    assert sorted(differences) == pytest.approx([0.15, 0.25])


def test_paired_without_common_rows_is_empty() -> None:
    first = pd.DataFrame({"training_seed": [0], "accuracy": [0.9]})
    second = pd.DataFrame({"training_seed": [1], "accuracy": [0.8]})
    assert paired(first, second, ["training_seed"]).size == 0


# --- A full synthetic study ----------------------------------------------------------------

# Fault-free baseline per seed, and baseline trained on chip (seed, chip) at 10 %.
FREE = {0: 0.95, 1: 0.96, 2: 0.94}
BASELINE_CHIP = {(0, 0): 0.10, (0, 1): 0.12, (1, 0): 0.11, (1, 1): 0.09, (2, 0): 0.10, (2, 1): 0.08}
# Drops FREE - BASELINE_CHIP: 0.85, 0.83, 0.85, 0.87, 0.84, 0.86 (mean 0.85).
COLLAPSE_DROPS = [0.85, 0.83, 0.85, 0.87, 0.84, 0.86]
# Clip on chip: shortfalls 0.00, 0.01, 0.005, 0.01, 0.00, 0.01, all below the 0.02 margin.
CLIP_CHIP = {(0, 0): 0.95, (0, 1): 0.94, (1, 0): 0.955, (1, 1): 0.95, (2, 0): 0.94, (2, 1): 0.93}
CLIP_SHORTFALLS = [0.0, 0.01, 0.005, 0.01, 0.0, 0.01]
# Clip trained fault-free and evaluated on map (seed, map) at 10 %: about 0.80, 15 pp short.
CLIP_INFERENCE = {(0, 0): 0.80, (0, 1): 0.81, (1, 0): 0.79, (1, 1): 0.80, (2, 0): 0.82, (2, 1): 0.78}
BASELINE_INFERENCE = {(0, 0): 0.50, (0, 1): 0.55, (1, 0): 0.45, (1, 1): 0.52, (2, 0): 0.48, (2, 1): 0.50}
DROPOUT_GAINS = {(0, 0): 0.10, (0, 1): 0.14, (1, 0): 0.12, (1, 1): 0.08, (2, 0): 0.11, (2, 1): 0.13}


def full_runs() -> list[dict]:
    """Return accuracy rows in which every claim's verdict is plain from the numbers."""
    rows = []
    for seed in SEEDS:
        rows.append(accuracy_row("baseline", FREE[seed], seed=seed))
        rows.append(accuracy_row("clip", 0.955, seed=seed))
        # Clip sweep at rate 0 (clean accuracy): c = 0.25 is clearly worse than c = 0.5.
        rows.append(accuracy_row("clip_c0.25", 0.90, seed=seed, clip_value=0.25))
        rows.append(accuracy_row("clip_c0.5", 0.96 + 0.001 * seed, seed=seed, clip_value=0.5))
        rows.append(accuracy_row("clip_c1", 0.965, seed=seed, clip_value=1.0))
        for chip in CHIPS:
            key = (seed, chip)
            rows.append(accuracy_row("baseline", BASELINE_CHIP[key], seed=seed, map_index=chip, rate=0.1, faults="same_chip"))
            rows.append(accuracy_row("clip", CLIP_CHIP[key], seed=seed, map_index=chip, rate=0.1, faults="same_chip"))
            rows.append(accuracy_row("baseline", BASELINE_INFERENCE[key], seed=seed, map_index=chip, rate=0.1))
            rows.append(accuracy_row("clip", CLIP_INFERENCE[key], seed=seed, map_index=chip, rate=0.1))
            rows.append(accuracy_row("dropout", BASELINE_INFERENCE[key] + DROPOUT_GAINS[key], seed=seed, map_index=chip, rate=0.1))
            # Clip sweep at 10 %: c = 1 loses the protection of c = 0.5.
            rows.append(accuracy_row("clip_c0.25", 0.88, seed=seed, map_index=chip, rate=0.1, clip_value=0.25))
            rows.append(accuracy_row("clip_c0.5", 0.93, seed=seed, map_index=chip, rate=0.1, clip_value=0.5))
            rows.append(accuracy_row("clip_c1", 0.60, seed=seed, map_index=chip, rate=0.1, clip_value=1.0))
            # Stuck type at the largest study rate: SA0 only is far better than SA1 only. Clip has
            # no SA0-only rows, so its stuck-type claim is skipped.
            rows.append(accuracy_row("baseline", 0.90 + 0.01 * chip, seed=seed, map_index=chip, rate=0.1, share=0.0))
            rows.append(accuracy_row("baseline", 0.30 - 0.01 * seed, seed=seed, map_index=chip, rate=0.1, share=1.0))
            rows.append(accuracy_row("clip", 0.85, seed=seed, map_index=chip, rate=0.1, share=1.0))
            # At 5 % the order is reversed, so the claim must use the largest rate, 10 %.
            rows.append(accuracy_row("baseline", 0.10, seed=seed, map_index=chip, rate=0.05, share=0.0))
            rows.append(accuracy_row("baseline", 0.90, seed=seed, map_index=chip, rate=0.05, share=1.0))
            # Sensitivity: the top slice hurts baseline more, but for clip the bottom slice hurts more.
            for layer in ("layers.0", "layers.2"):
                rows.append(accuracy_row("baseline", 0.95 - 0.01 * chip, seed=seed, map_index=chip, rate=0.1, slices="0", layers=layer))
                rows.append(accuracy_row("baseline", 0.20 + 0.01 * seed, seed=seed, map_index=chip, rate=0.1, slices="7", layers=layer))
                rows.append(accuracy_row("clip", 0.90, seed=seed, map_index=chip, rate=0.1, slices="0", layers=layer))
                rows.append(accuracy_row("clip", 0.95 - 0.01 * seed, seed=seed, map_index=chip, rate=0.1, slices="7", layers=layer))
    return rows


# Fault-free baseline max |w| per seed; on the main chips it grows 100x on chip 0 and 1000x on chip 1.
FREE_MAX_ABS_WEIGHT = {0: 1.0, 1: 2.0, 2: 1.0}
BASELINE_WORN = [0.10, 0.11, 0.09]
CLIP_WORN = [0.05, 0.06, 0.04]
DROPOUT_WORN = [0.12, 0.10, 0.11]


def full_training() -> list[dict]:
    rows = []
    for seed in SEEDS:
        free = FREE_MAX_ABS_WEIGHT[seed]
        rows.append(training_row("baseline", seed, free))
        rows.append(training_row("clip", seed, 0.5))
        for chip, growth in zip(CHIPS, (100.0, 1000.0)):
            rows.append(training_row("baseline", seed, growth * free, faults="same_chip", rate=0.1, chip=chip, share=SHARE))
            rows.append(training_row("clip", seed, 0.5, faults="same_chip", rate=0.1, chip=chip, share=SHARE))
            # Stuck-type chips (another SA1 share) and wear runs must not enter claim 1b.
            rows.append(training_row("baseline", seed, 1e-3, faults="same_chip", rate=0.1, chip=chip, share=1.0))
        rows.append(training_row("baseline", seed, 1e6, wear=True, final_faulty_cell_fraction=BASELINE_WORN[seed]))
        rows.append(training_row("clip", seed, 0.5, wear=True, final_faulty_cell_fraction=CLIP_WORN[seed]))
        rows.append(training_row("dropout", seed, 3.0, wear=True, final_faulty_cell_fraction=DROPOUT_WORN[seed]))
    return rows


# Claim-id prefix and verdict, in the order ClaimBuilder.all() lists them.
EXPECTED_VERDICTS = [
    ("1a.", HELD),
    ("1b.", HELD),
    ("2a.", HELD),
    ("2b.", NOT_HELD),
    ("2c.", HELD),
    ("3. dropout adds fault tolerance over baseline (faults at inference only)", HELD),
    ("3. dropout adds fault tolerance over baseline (trained on the faulty chip)", INCONCLUSIVE),
    ("4a. Software methods beat hardware fixes on area", HELD),
    ("4a. Software methods beat hardware fixes on power", HELD),
    ("5. SA1 faults hurt baseline", HELD),
    ("6. Faults in the most significant slice hurt baseline", HELD),
    ("6. Faults in the most significant slice hurt clip", NOT_HELD),
    ("7. Clip sweep: too small a clip", HELD),
    ("7. Clip sweep: too large a clip", HELD),
    ("8. clip wears", HELD),
    ("8. dropout wears", INCONCLUSIVE),
]


@pytest.fixture(scope="module")
def full_claims(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("claims")
    config = study_config(SEEDS)
    tables = write_tables(folder / "tables", full_runs(), full_training())
    cost_csv = write_shipped_costs(folder, config)
    csv_path, markdown_path = folder / "out" / "claims.csv", folder / "out" / "claims.md"
    frame = write_claims(tables, cost_csv, config, csv_path, markdown_path)
    return {"frame": frame, "csv": csv_path, "markdown": markdown_path, "cost_csv": cost_csv}


def claim_row(frame: pd.DataFrame, prefix: str) -> pd.Series:
    match = frame[frame["claim"].str.startswith(prefix)]
    assert len(match) == 1, f"{len(match)} claims start with {prefix!r}"
    return match.iloc[0]


def test_full_study_verdicts(full_claims: dict) -> None:
    frame = full_claims["frame"]
    assert len(frame) == len(EXPECTED_VERDICTS)
    for position, (prefix, verdict) in enumerate(EXPECTED_VERDICTS):
        row = frame.iloc[position]
        assert row["claim"].startswith(prefix), (position, row["claim"])
        assert row["verdict"] == verdict, (prefix, row["verdict"], row["measured"])


def test_collapse_interval_by_hand(full_claims: dict) -> None:
    row = claim_row(full_claims["frame"], "1a.")
    # Six pairs (3 seeds x 2 chips). Deviations from 0.85: 0, -0.02, 0, 0.02, -0.01, 0.01, so
    # s^2 = 0.001 / 5 and the half-width is t(0.975, 5) * sqrt(0.0002) / sqrt(6).
    half = stats.t.ppf(0.975, 5) * math.sqrt(0.0002) / math.sqrt(6)
    assert row["n_pairs"] == 6
    assert row["mean"] == pytest.approx(0.85)
    assert row["ci_low"] == pytest.approx(0.85 - half)
    assert row["ci_high"] == pytest.approx(0.85 + half)
    assert (row["mean"], row["ci_low"], row["ci_high"]) == pytest.approx(hand_interval(COLLAPSE_DROPS))
    assert row["threshold"] == pytest.approx(0.5)
    assert row["setting"] == "same_chip"
    assert row["fault_rate"] == pytest.approx(0.1)
    assert "95.0 % fault-free" in row["measured"]  # mean of 0.95, 0.96, 0.94
    assert "10.0 % on the chip" in row["measured"]  # mean of BASELINE_CHIP


def test_weight_growth_main_chips_only(full_claims: dict) -> None:
    row = claim_row(full_claims["frame"], "1b.")
    # log10 growth is 2 on chip 0 and 3 on chip 1 for every seed.
    # Pairing the 1e-3 runs on SA1-only chips or the 1e6 wear runs would change n and the mean.
    assert row["n_pairs"] == 6
    assert row["mean"] == pytest.approx(2.5)
    assert (row["mean"], row["ci_low"], row["ci_high"]) == pytest.approx(hand_interval([2, 3, 2, 3, 2, 3]))
    assert "0 of 6 runs diverged" in row["measured"]
    assert "x316" in row["measured"]  # 10 ** 2.5


def test_clip_shortfall_on_chip_and_at_inference(full_claims: dict) -> None:
    on_chip = claim_row(full_claims["frame"], "2a.")
    assert on_chip["n_pairs"] == 6
    assert (on_chip["mean"], on_chip["ci_low"], on_chip["ci_high"]) == pytest.approx(hand_interval(CLIP_SHORTFALLS))
    assert on_chip["ci_high"] < 0.02
    assert on_chip["threshold"] == pytest.approx(0.02)
    inference = claim_row(full_claims["frame"], "2b.")
    # Shortfalls FREE[seed] - CLIP_INFERENCE: 0.15, 0.14, 0.17, 0.16, 0.12, 0.16.
    assert inference["setting"] == "none"
    assert inference["n_pairs"] == 6
    assert inference["mean"] == pytest.approx(0.90 / 6)
    assert inference["ci_low"] > 0.02


def test_dropout_gain_and_missing_chip_runs(full_claims: dict) -> None:
    frame = full_claims["frame"]
    gain = claim_row(frame, "3. dropout adds fault tolerance over baseline (faults at inference only)")
    assert gain["n_pairs"] == 6
    assert gain["mean"] == pytest.approx(sum(DROPOUT_GAINS.values()) / 6)
    missing = claim_row(frame, "3. dropout adds fault tolerance over baseline (trained on the faulty chip)")
    assert missing["n_pairs"] == 0
    assert math.isnan(missing["mean"])
    assert math.isnan(missing["ci_low"])
    assert "no pairs" in missing["measured"]
    # No dropconnect, fault_injection or clip_dropout runs: those comparisons are skipped.
    assert not frame["claim"].str.contains("dropconnect|fault_injection|clip_dropout").any()


def test_cost_claims_hold_with_shipped_cost_model(full_claims: dict) -> None:
    frame = full_claims["frame"]
    costs = read_cost_table(full_claims["cost_csv"])
    assert set(costs["kind"]) == {"software", "hardware"}
    clipping = claim_row(frame, "2c.")
    assert clipping["setting"] == "cost"
    assert clipping["verdict"] == HELD
    comparison = claim_row(frame, "4a. Software methods beat hardware fixes on area")
    assert comparison["verdict"] == HELD
    assert comparison["n_pairs"] == 0


def test_study_claims_numbers(full_claims: dict) -> None:
    frame = full_claims["frame"]
    stuck = claim_row(frame, "5. SA1 faults hurt baseline")
    # At 10 %, SA0 only gives 0.90 + 0.01 chip and SA1 only 0.30 - 0.01 seed, so the mean is 0.905 - 0.29.
    assert stuck["n_pairs"] == 6
    assert stuck["mean"] == pytest.approx(0.905 - 0.29)
    assert stuck["fault_rate"] == pytest.approx(0.1)
    assert not frame["claim"].str.startswith("5. SA1 faults hurt clip").any()

    sensitivity = claim_row(frame, "6. Faults in the most significant slice hurt baseline")
    # 3 seeds x 2 maps x 2 layers. Slice 0 has mean 0.945 and slice 7 mean 0.21.
    assert sensitivity["n_pairs"] == 12
    assert sensitivity["mean"] == pytest.approx(0.945 - 0.21)

    small = claim_row(frame, "7. Clip sweep: too small a clip")
    assert small["comparison"].startswith("clip_c0.5 minus clip_c0.25")
    assert small["fault_rate"] == 0.0
    assert small["n_pairs"] == 3
    assert small["mean"] == pytest.approx(0.061)
    large = claim_row(frame, "7. Clip sweep: too large a clip")
    assert large["comparison"].startswith("clip_c0.5 minus clip_c1")
    assert large["n_pairs"] == 6
    assert large["mean"] == pytest.approx(0.33)

    slower = claim_row(frame, "8. clip wears")
    assert slower["n_pairs"] == 3
    assert slower["mean"] == pytest.approx(0.05)
    dropout = claim_row(frame, "8. dropout wears")
    # Differences -0.02, 0.01, -0.02: the interval straddles zero.
    assert (dropout["mean"], dropout["ci_low"], dropout["ci_high"]) == pytest.approx(hand_interval([-0.02, 0.01, -0.02]))


def test_claims_csv_round_trip(full_claims: dict) -> None:
    written = pd.read_csv(full_claims["csv"])
    assert list(written.columns) == CLAIM_COLUMNS
    assert len(written) == len(EXPECTED_VERDICTS)
    assert list(written["verdict"]) == [verdict for _, verdict in EXPECTED_VERDICTS]
    # Cost claims have no fault rate, and the empty field reads back as NaN.
    assert written.loc[written["setting"] == "cost", "fault_rate"].isna().all()


def markdown_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def unescaped_cells(line: str) -> list[str]:
    """Split a Markdown table row on the pipes that are not escaped with a backslash."""
    return re.split(r"(?<!\\)\|", line)[1:-1]


def test_claims_markdown_table_shape(full_claims: dict) -> None:
    text = full_claims["markdown"].read_text(encoding="utf-8")
    assert text.startswith("# Claims and verdicts")
    assert "95 % Student t" in text
    rows = markdown_rows(text)
    # Header, separator and one row per claim, each with five cells.
    assert len(rows) == 2 + len(EXPECTED_VERDICTS)
    for line in rows:
        assert len(unescaped_cells(line)) == 5, line
    # Claim 1b's measured text contains "max |w|", which must be escaped.
    assert "max \\|w\\|" in text
    assert "**not held**" in text


def test_markdown_escapes_pipes_in_claim_and_measured() -> None:
    frame = pd.DataFrame([
        {"claim": "x | y", "comparison": "a | b", "setting": "none", "fault_rate": 0.05, "n_pairs": 4,
         "mean": 0.1, "ci_low": 0.0, "ci_high": 0.2, "threshold": 0.0, "verdict": HELD, "measured": "|w| = 3"},
        {"claim": "cost", "comparison": "c", "setting": "cost", "fault_rate": math.nan, "n_pairs": 0,
         "mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "threshold": math.nan,
         "verdict": INCONCLUSIVE, "measured": "none"},
    ], columns=CLAIM_COLUMNS)
    text = format_claims_markdown(frame, 0.9)
    assert "90 % Student t" in text
    rows = markdown_rows(text)
    assert len(rows) == 4
    for line in rows:
        assert len(unescaped_cells(line)) == 5, line
    first = [cell.strip() for cell in unescaped_cells(rows[2])]
    assert first == ["x \\| y", "5 %", "\\|w\\| = 3", "4", "**held**"]
    second = [cell.strip() for cell in unescaped_cells(rows[3])]
    # No fault rate and no pairs give empty cells.
    assert second == ["cost", "", "none", "", "**inconclusive**"]


# --- Hand intervals at small n -------------------------------------------------------------


def builder_for(folder: Path, runs: list[dict], training: list[dict], costs: pd.DataFrame | None = None) -> ClaimBuilder:
    tables = load_tables(write_tables(folder, runs, training))
    if costs is None:
        costs = pd.DataFrame(columns=list(COST_COLUMNS))
    return ClaimBuilder(tables, costs, study_config(SEEDS))


def test_clip_interval_with_three_pairs(tmp_path: Path) -> None:
    runs = []
    # One chip per seed: shortfalls 0.01, 0.03, 0.02 (mean 0.02, s = 0.01).
    for seed, (free, on_chip) in enumerate([(0.95, 0.94), (0.96, 0.93), (0.94, 0.92)]):
        runs.append(accuracy_row("baseline", free, seed=seed))
        runs.append(accuracy_row("clip", on_chip, seed=seed, rate=0.1, faults="same_chip"))
    claim = builder_for(tmp_path, runs, []).clipping()[0]
    half = stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)
    assert half == pytest.approx(0.024841, abs=1e-6)
    assert claim.n_pairs == 3
    assert claim.mean == pytest.approx(0.02)
    assert claim.ci_low == pytest.approx(0.02 - half)
    assert claim.ci_high == pytest.approx(0.02 + half)
    # The interval [-0.005, 0.045] straddles the 0.02 margin.
    assert claim.verdict == INCONCLUSIVE


def test_dropout_interval_with_four_pairs(tmp_path: Path) -> None:
    runs = []
    gains = {(0, 0): 0.05, (0, 1): 0.07, (1, 0): 0.06, (1, 1): 0.10}
    for (seed, chip), gain in gains.items():
        runs.append(accuracy_row("baseline", 0.5, seed=seed, map_index=chip, rate=0.1))
        runs.append(accuracy_row("dropout", 0.5 + gain, seed=seed, map_index=chip, rate=0.1))
    claim = builder_for(tmp_path, runs, []).dropout_style()[0]
    # Mean 0.07. Deviations -0.02, 0, -0.01, 0.03 give s^2 = 0.0014 / 3.
    half = stats.t.ppf(0.975, 3) * math.sqrt(0.0014 / 3) / 2
    assert claim.setting == "none"
    assert claim.n_pairs == 4
    assert claim.mean == pytest.approx(0.07)
    assert claim.ci_low == pytest.approx(0.07 - half)
    assert claim.ci_high == pytest.approx(0.07 + half)
    assert claim.verdict == HELD


def test_single_pair_has_no_interval(tmp_path: Path) -> None:
    runs = [
        accuracy_row("baseline", 0.95, seed=0),
        accuracy_row("baseline", 0.10, seed=0, rate=0.1, faults="same_chip"),
    ]
    claim = builder_for(tmp_path, runs, []).collapse()[0]
    assert claim.n_pairs == 1
    assert claim.mean == pytest.approx(0.85)
    assert math.isnan(claim.ci_low)
    assert claim.verdict == INCONCLUSIVE
    assert "one pair, no interval" in claim.measured


def test_all_diverged_chip_runs_count_as_exploding(tmp_path: Path) -> None:
    training = [training_row("baseline", seed, 1.0) for seed in SEEDS]
    training += [
        training_row("baseline", seed, math.inf, faults="same_chip", rate=0.1, chip=0, share=SHARE, diverged=True)
        for seed in SEEDS
    ]
    runs = [accuracy_row("baseline", 0.95, seed=seed) for seed in SEEDS]
    claim = builder_for(tmp_path, runs, training).collapse()[1]
    # An infinite max |w| gives no finite log ratio, but every run diverged.
    assert claim.n_pairs == 0
    assert claim.verdict == HELD
    assert "3 of 3 runs diverged" in claim.measured


# --- Missing runs --------------------------------------------------------------------------


def test_missing_runs_inconclusive_or_skipped(tmp_path: Path) -> None:
    config = study_config(SEEDS)
    # Only the fault-free baseline, no training metrics, and a cost table without hardware rows
    # or weight clipping.
    runs = [accuracy_row("baseline", FREE[seed], seed=seed) for seed in SEEDS]
    tables = write_tables(tmp_path / "tables", runs, [])
    # Without table T1 the cost claims fall back to the per-mitigation table below.
    (tables / "method_costs.csv").unlink()
    cost_csv = tmp_path / "costs.csv"
    pd.DataFrame([("dropout", "software", 0.0004, 0.1, 0.2, 0.05, "mask generator", "estimate")],
                 columns=list(COST_COLUMNS)).to_csv(cost_csv, index=False)
    csv_path, markdown_path = tmp_path / "claims.csv", tmp_path / "claims.md"

    frame = write_claims(tables, cost_csv, config, csv_path, markdown_path)

    expected = ["1a.", "1b.", "2a.", "2b.", "2c.", "4a.", "7. Clip sweep: too small", "7. Clip sweep: too large"]
    assert len(frame) == len(expected)
    for row, prefix in zip(frame.itertuples(index=False), expected):
        assert row.claim.startswith(prefix)
        assert row.verdict == INCONCLUSIVE, (row.claim, row.measured)
    assert claim_row(frame, "2c.")["measured"] == "not in the cost table"
    assert claim_row(frame, "1a.")["n_pairs"] == 0
    assert csv_path.is_file()
    assert markdown_path.is_file()
    assert len(markdown_rows(markdown_path.read_text(encoding="utf-8"))) == 2 + len(expected)


def test_write_claims_needs_the_tables(tmp_path: Path) -> None:
    config = study_config(SEEDS)
    cost_csv = write_shipped_costs(tmp_path, config)
    with pytest.raises(FaultregError, match="accuracy_runs.csv"):
        write_claims(tmp_path / "absent", cost_csv, config, tmp_path / "claims.csv", tmp_path / "claims.md")
    assert not (tmp_path / "claims.csv").exists()


def test_clip_against_repairs_non_inferiority(tmp_path: Path) -> None:
    config = study_config(SEEDS)
    config["methods"]["ecc"] = {**config["methods"]["baseline"], "repair": "ecc"}
    config["methods"]["duplication"] = {**config["methods"]["baseline"], "repair": "duplication"}
    runs = []
    for seed in SEEDS:
        for chip in CHIPS:
            # clip 0.90 on every chip; ecc 0.80 (clip far ahead); duplication 0.95 (clip 5 pp behind).
            runs.append(accuracy_row("clip", 0.90 + 0.001 * seed, seed=seed, map_index=chip, rate=0.1, faults="same_chip"))
            runs.append(accuracy_row("ecc", 0.80 - 0.002 * chip, seed=seed, map_index=chip, rate=0.1, faults="same_chip"))
            runs.append(accuracy_row("duplication", 0.95 + 0.001 * chip, seed=seed, map_index=chip, rate=0.1, faults="same_chip"))
    folder = write_tables(tmp_path, runs, [])
    builder = ClaimBuilder(load_tables(folder), pd.DataFrame(columns=list(COST_COLUMNS)), config)
    claims = {claim.claim: claim for claim in builder.accuracy_against_repairs()}
    ecc = claims["4b. Clipping is at least as accurate as ecc (trained on the faulty chip)"]
    duplication = claims["4b. Clipping is at least as accurate as duplication (trained on the faulty chip)"]
    assert ecc.verdict == HELD
    assert ecc.n_pairs == len(SEEDS) * len(CHIPS)
    assert duplication.verdict == NOT_HELD
    assert duplication.threshold == pytest.approx(-0.02)
    # No inference-only rows: those comparisons have no pairs.
    assert claims["4b. Clipping is at least as accurate as ecc (faults at inference only)"].verdict == INCONCLUSIVE


def test_method_that_did_not_learn_is_inconclusive(tmp_path: Path) -> None:
    runs = []
    for seed in SEEDS:
        runs.append(accuracy_row("baseline", 0.95, seed=seed))
        # Dropout stuck at chance even fault-free: 10 %, below the 15 % learning bar.
        runs.append(accuracy_row("dropout", 0.10, seed=seed))
        for chip in CHIPS:
            runs.append(accuracy_row("baseline", 0.05 + 0.01 * chip, seed=seed, map_index=chip, rate=0.1))
            runs.append(accuracy_row("dropout", 0.30 + 0.01 * chip, seed=seed, map_index=chip, rate=0.1))
    claims = builder_for(tmp_path, runs, []).dropout_style()
    inference = next(claim for claim in claims if claim.setting == "none")
    # The gain of 25 pp would hold, but dropout never learned.
    assert inference.mean == pytest.approx(0.25)
    assert inference.verdict == INCONCLUSIVE
    assert inference.measured.startswith("dropout did not learn even fault-free (10.0 %)")


def test_small_differences_keep_two_decimals() -> None:
    from faultreg.claims import _pp

    assert _pp(-0.0002) == "-0.02"
    assert _pp(0.0) == "0.0"
    assert _pp(0.1234) == "12.3"


def test_cost_claims_use_table_t1_when_present(tmp_path: Path) -> None:
    runs = [accuracy_row("baseline", FREE[seed], seed=seed) for seed in SEEDS]
    tables = write_tables(tmp_path / "tables", runs, [])
    pd.DataFrame({
        "method": ["clip", "dropconnect", "ecc"],
        "kind": ["software", "software", "hardware"],
        "area_overhead_pct_tile": [0.19, 1.5, 0.42],
        "power_overhead_pct_tile": [0.18, 0.5, 2.98],
    }).to_csv(tables / "method_costs.csv", index=False)
    builder = ClaimBuilder(load_tables(tables), pd.DataFrame(columns=list(COST_COLUMNS)), study_config(SEEDS))
    area, power = builder.cost_comparison()
    # DropConnect's 1.5 % area exceeds ECC's 0.42 %, while every software power is below 2.98 %.
    assert area.verdict == NOT_HELD
    assert "dropconnect" in area.measured
    assert "ecc" in area.measured
    assert power.verdict == HELD
    clipping = builder.clipping()[-1]
    assert clipping.verdict == HELD
    assert clipping.measured.startswith("+0.19 % area, +0.18 % power")
