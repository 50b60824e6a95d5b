"""What a recipe's ``main()`` needs around the pipeline: arguments from the command line or a JSON file, logging."""

from __future__ import annotations

import difflib
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

import datasets
import transformers
from transformers import HfArgumentParser, TrainingArguments


__all__ = ["parse_arguments", "setup_logging"]

logger = logging.getLogger(__name__)


def parse_arguments(
    parser: HfArgumentParser, argv: list[str] | None = None, *, defaults: Mapping[str, Any] | None = None
) -> tuple[Any, ...]:
    """Parse CLI flags, or a single ``.json`` path holding all arguments (the transformers examples' convention).

    ``defaults`` replace the dataclasses' own defaults for this parser (a recipe's choices, e.g. BERT's
    ``optimizer="adamw"``), for flags and JSON files alike. Every dataclass validates itself when built, so a bad
    value fails here, before any data or model is loaded: called with ``argv`` (from Python) it raises the
    ``ValueError``/``TypeError`` naming the flag; reading ``sys.argv`` (a recipe run from a shell) it prints the
    usage and that message and exits with status 2, as argparse does. An unknown flag (named, with the closest
    valid one) or a value argparse cannot read always exits with status 2. Unknown keys in a JSON file are an error
    too (``ValueError``).
    """
    if argv is None:
        try:
            return parse_arguments(parser, sys.argv[1:], defaults=defaults)
        except (ValueError, TypeError) as error:  # the dataclasses' checks: a usage error on a command line
            parser.error(str(error))  # prints the usage, exits with status 2
    defaults = dict(defaults or {})
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_dict({**defaults, **_read_json_arguments(parser, argv[0])}, allow_extra_keys=False)
    parser.set_defaults(**defaults)
    # before the dataclasses validate: a misspelt --output_dir must be named as such, not as a missing one
    _, unknown = parser.parse_known_args(args=argv)
    if unknown:
        parser.error(_unknown_arguments_message(parser, unknown))  # prints the usage, exits with status 2
    return parser.parse_args_into_dataclasses(args=argv)


def _read_json_arguments(parser: HfArgumentParser, path: str) -> dict[str, Any]:
    """The arguments object of a JSON file, its keys checked against the parser's (with the closest valid one)."""
    try:
        with open(os.path.abspath(path), encoding="utf-8") as handle:
            values = json.load(handle)
    except FileNotFoundError:
        raise ValueError(
            f"{path}: no such file (a single .json argument is read as the file of all arguments)."
        ) from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}.") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object of arguments, got {type(values).__name__}.")
    names = [action.dest for action in parser._actions if action.dest != "help"]
    unknown = [key for key in values if key not in names]
    if unknown:
        raise ValueError(f"{path} has unknown keys {unknown}{_closest_hints(unknown, names)}.")
    if isinstance(values.get("resume_from_checkpoint"), bool):  # JSON's true/false for the flag's "true"/none
        values["resume_from_checkpoint"] = "last" if values["resume_from_checkpoint"] else None
    return values


def _unknown_arguments_message(parser: HfArgumentParser, unknown: list[str]) -> str:
    """What argparse says of unrecognized arguments, with the closest valid flag for each unknown one."""
    flags = [option for action in parser._actions for option in action.option_strings if option.startswith("--")]
    names = [argument.split("=", 1)[0] for argument in unknown]
    return f"unrecognized arguments: {' '.join(unknown)}" + _closest_hints(
        [n for n in names if n.startswith("-")], flags
    )


def _closest_hints(names: list[str], valid: list[str]) -> str:
    """`` (NAME: did you mean VALID?; ...)`` for each name with a close valid one, or nothing."""
    hints = [
        f"{name}: did you mean {close[0]}?" for name in names if (close := difflib.get_close_matches(name, valid, n=1))
    ]
    return f" ({'; '.join(hints)})" if hints else ""


def setup_logging(training_args: TrainingArguments) -> None:
    """Log to stdout; INFO on the main process, WARNING elsewhere (``--log_level`` overrides)."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    logging.getLogger("hf_robattr").setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
