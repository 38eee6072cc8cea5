"""The ``faultreg`` command line: one subcommand per workflow stage.

Every Snakemake rule runs one of these subcommands, so each stage also runs by hand, e.g.::

    faultreg fault-map --config config.yaml --rate 0.1 --map-index 0 --output map.npz
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

from faultreg import __version__
from faultreg.config import parse_config_json, read_config_files, validate_config, validate_workflow_config
from faultreg.errors import ConfigError, FaultregError

logger = logging.getLogger("faultreg")


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--config",
        type=Path,
        nargs="+",
        default=None,
        help="YAML config files, merged in order as snakemake merges --configfile into config.yaml "
        "(default: config.yaml in the current folder)",
    )
    source.add_argument("--config-json", default=None, help="config as a JSON string; the workflow passes only the sections a stage reads")


def _add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: training.threads of the config)")


def _config_from(arguments: argparse.Namespace) -> dict[str, Any]:
    if arguments.config_json is not None:
        return parse_config_json(arguments.config_json)
    return validate_config(read_config_files(arguments.config or [Path("config.yaml")]))


def _command_fault_map(arguments: argparse.Namespace) -> None:
    from faultreg.stages import make_fault_map

    make_fault_map(_config_from(arguments), arguments.rate, arguments.map_index, arguments.output)


def _with_threads(config: dict[str, Any], threads: int | None) -> dict[str, Any]:
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads {threads} must be at least 1")
        config["training"]["threads"] = threads
    return config


def _command_study_maps(arguments: argparse.Namespace) -> None:
    from faultreg.stages import make_study_maps

    make_study_maps(_config_from(arguments), arguments.study, arguments.folder)


def _command_train(arguments: argparse.Namespace) -> None:
    from faultreg.stages import train_runs

    maps = list(arguments.fault_map) or [None]
    train_runs(
        _with_threads(_config_from(arguments), arguments.threads),
        method_name=arguments.method,
        training_seeds=arguments.seed,
        fault_map_paths=maps,
        run_dirs=arguments.run_dir,
        wear=arguments.wear,
    )


def _command_inject(arguments: argparse.Namespace) -> None:
    from faultreg.stages import inject_faults

    inject_faults(_with_threads(_config_from(arguments), arguments.threads), arguments.checkpoint, arguments.fault_map, arguments.output)


def _command_cost(arguments: argparse.Namespace) -> None:
    from faultreg.cost import build_method_table, build_overhead_table, write_overhead_table

    config = _config_from(arguments)
    table = build_overhead_table(config["cost"], config["crossbar"])
    if (arguments.methods_csv is None) != (arguments.methods_markdown is None):
        raise ConfigError("give --methods-csv and --methods-markdown together, or neither")
    if arguments.methods_csv is not None:
        methods = build_method_table(config["methods"], config["cost"], config["crossbar"])
        write_overhead_table(methods, arguments.methods_csv, arguments.methods_markdown)
    write_overhead_table(table, arguments.csv, arguments.markdown)


def _command_aggregate(arguments: argparse.Namespace) -> None:
    from faultreg.report import StudyContext, aggregate

    config = _config_from(arguments)
    aggregate(
        inference_csvs=arguments.inference,
        training_metrics=arguments.training,
        histories=arguments.history,
        tables_dir=arguments.tables_dir,
        settings=config["report"],
        context=StudyContext.from_config(config),
    )


def _command_figure(arguments: argparse.Namespace) -> None:
    from faultreg.figures import draw_figure

    draw_figure(arguments.name, arguments.tables_dir, arguments.figures_dir, _config_from(arguments))


def _command_claims(arguments: argparse.Namespace) -> None:
    from faultreg.claims import write_claims

    write_claims(arguments.tables_dir, arguments.cost, _config_from(arguments), arguments.csv, arguments.markdown)


def _command_summary(arguments: argparse.Namespace) -> None:
    from faultreg.report import write_summary

    config = _config_from(arguments)
    write_summary(arguments.tables_dir, arguments.figure, arguments.cost, arguments.claims, arguments.output, config["report"])


def _command_calibrate_endurance(arguments: argparse.Namespace) -> None:
    from faultreg.stages import calibrate_endurance

    result = calibrate_endurance(
        _with_threads(_config_from(arguments), arguments.threads), arguments.method, arguments.seed, arguments.target_share
    )
    print(json.dumps(result, indent=2))


def _command_check_config(arguments: argparse.Namespace) -> None:
    if arguments.config_json is not None:
        config = parse_config_json(arguments.config_json)
    else:
        config = validate_workflow_config(read_config_files(arguments.config or [Path("config.yaml")]))
    print(json.dumps(config, indent=2, sort_keys=True))


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``faultreg`` command."""
    parser = argparse.ArgumentParser(
        prog="faultreg",
        description="Run one stage of the faultreg study: fault maps, training, fault-injected inference, cost model or aggregation.",
    )
    parser.add_argument("--version", action="version", version=f"faultreg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fault_map = commands.add_parser("fault-map", help="draw one stuck-at fault map (one simulated chip) and save it")
    _add_config_arguments(fault_map)
    fault_map.add_argument("--rate", type=float, required=True, help="fraction of faulty cells, in [0, 1]")
    fault_map.add_argument("--map-index", type=int, required=True, help="chip number; chip j at a higher rate contains the faults of chip j at a lower rate")
    fault_map.add_argument("--output", type=Path, required=True, help="map file to write (.npz); its summary goes to the same name with .json")
    fault_map.set_defaults(handler=_command_fault_map)

    study = commands.add_parser("study-maps", help="draw every fault map of one study (stuck_type or sensitivity)")
    _add_config_arguments(study)
    study.add_argument("--study", required=True, choices=["stuck_type", "sensitivity"], help="which study's maps to draw")
    study.add_argument(
        "--folder", type=Path, required=True, help="the model's map folder, e.g. results/faultmaps/mlp; maps go to a subfolder named after the study"
    )
    study.set_defaults(handler=_command_study_maps)

    train = commands.add_parser("train", help="train one method on one or more chips (or fault-free) with one or more seeds")
    _add_config_arguments(train)
    train.add_argument("--method", required=True, help="name of an entry under methods in the config")
    train.add_argument("--seed", type=int, nargs="+", required=True, help="training seeds (weight initialization, batch order, dropout)")
    train.add_argument("--fault-map", type=Path, nargs="*", default=[], help="chips to train on, one run folder each; omit to train fault-free")
    train.add_argument(
        "--run-dir",
        type=Path,
        nargs="+",
        required=True,
        help="one folder per chip (one in all when fault-free); each seed writes seed<s>/model.pt, metrics.json and history.csv in it",
    )
    train.add_argument("--wear", action="store_true", help="wear cells out as training writes them (settings of the endurance section)")
    _add_threads_argument(train)
    train.set_defaults(handler=_command_train)

    inject = commands.add_parser("inject", help="evaluate trained models on faulty chips")
    _add_config_arguments(inject)
    inject.add_argument(
        "--checkpoint",
        type=Path,
        nargs="+",
        required=True,
        help="model checkpoints from 'faultreg train'; a fault-free model meets every map, a chip-trained one only its own chip",
    )
    inject.add_argument("--fault-map", type=Path, nargs="+", required=True, help="fault maps to evaluate on")
    inject.add_argument("--output", type=Path, required=True, help="CSV of accuracy rows to write")
    _add_threads_argument(inject)
    inject.set_defaults(handler=_command_inject)

    cost = commands.add_parser("cost", help="write the area and power overhead table of every mitigation")
    _add_config_arguments(cost)
    cost.add_argument("--csv", type=Path, required=True, help="CSV table to write")
    cost.add_argument("--markdown", type=Path, required=True, help="Markdown table to write")
    cost.add_argument("--methods-csv", type=Path, default=None, help="table T1 to write: what each configured method adds (CSV)")
    cost.add_argument("--methods-markdown", type=Path, default=None, help="table T1 as Markdown")
    cost.set_defaults(handler=_command_cost)

    aggregate = commands.add_parser("aggregate", help="collect result files into tidy tables and the accuracy and divergence summaries")
    _add_config_arguments(aggregate)
    aggregate.add_argument("--inference", type=Path, nargs="+", required=True, help="inference CSVs from 'faultreg inject'")
    aggregate.add_argument("--training", type=Path, nargs="+", required=True, help="metrics JSONs from 'faultreg train'")
    aggregate.add_argument("--history", type=Path, nargs="*", default=[], help="history CSVs from 'faultreg train'")
    aggregate.add_argument("--tables-dir", type=Path, required=True, help="folder for CSV and Markdown tables")
    aggregate.set_defaults(handler=_command_aggregate)

    figure = commands.add_parser("figure", help="draw one figure (PNG/PDF plus its CSV) from the aggregated tables")
    _add_config_arguments(figure)
    figure.add_argument("--name", required=True, help="exploding_weights, accuracy_vs_fault_rate, stuck_type, sensitivity, clip_sweep or endurance")
    figure.add_argument("--tables-dir", type=Path, required=True, help="folder with the tables of 'faultreg aggregate'")
    figure.add_argument("--figures-dir", type=Path, required=True, help="folder for the figure files")
    figure.set_defaults(handler=_command_figure)

    claims = commands.add_parser("claims", help="write the claims table with measured numbers and verdicts")
    _add_config_arguments(claims)
    claims.add_argument("--tables-dir", type=Path, required=True, help="folder with the tables of 'faultreg aggregate'")
    claims.add_argument("--cost", type=Path, required=True, help="cost CSV from 'faultreg cost'")
    claims.add_argument("--csv", type=Path, required=True, help="claims CSV to write")
    claims.add_argument("--markdown", type=Path, required=True, help="claims Markdown to write")
    claims.set_defaults(handler=_command_claims)

    summary = commands.add_parser("summary", help="write the Markdown summary that links every table and figure")
    _add_config_arguments(summary)
    summary.add_argument("--tables-dir", type=Path, required=True, help="folder with the tables of 'faultreg aggregate'")
    summary.add_argument("--claims", type=Path, required=True, help="claims CSV from 'faultreg claims'")
    summary.add_argument("--cost", type=Path, required=True, help="cost CSV from 'faultreg cost'")
    summary.add_argument("--figure", type=Path, nargs="*", default=[], help="figure files to link")
    summary.add_argument("--output", type=Path, required=True, help="Markdown summary to write")
    summary.set_defaults(handler=_command_summary)

    calibrate = commands.add_parser(
        "calibrate-endurance",
        help="find the endurance.mean_writes that wears out a chosen share of cells in one training run",
    )
    _add_config_arguments(calibrate)
    calibrate.add_argument("--method", default="baseline", help="method whose writes to count (default: baseline)")
    calibrate.add_argument("--seed", type=int, default=0, help="training seed of the pilot run")
    calibrate.add_argument("--target-share", type=float, required=True, help="fraction of cells to wear out, e.g. 0.1")
    _add_threads_argument(calibrate)
    calibrate.set_defaults(handler=_command_calibrate_endurance)

    check = commands.add_parser(
        "check-config",
        help="validate a config as the workflow runs it and print it with every default filled in",
    )
    _add_config_arguments(check)
    check.set_defaults(handler=_command_check_config)

    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status (2 for invalid input)."""
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if arguments.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Callable[[argparse.Namespace], None] = arguments.handler
    try:
        handler(arguments)
    except FaultregError as error:
        print(f"faultreg {arguments.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
