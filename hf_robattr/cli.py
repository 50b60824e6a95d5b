"""The ``hf-robattr`` command line: ``card`` (re)writes a run's model card, ``push`` uploads the run folder."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def _card(args: argparse.Namespace) -> int:
    from .hub import save_model_card

    fields = {name: getattr(args, name) for name in ("model_id", "model_name", "license") if getattr(args, name)}
    if args.tags:
        fields["tags"] = args.tags
    try:
        path = save_model_card(args.output_dir, template=args.template, **fields)
    except (FileNotFoundError, ValueError, TypeError) as error:
        print(f"hf-robattr card: error: {error}", file=sys.stderr)
        return 1
    print(f"Model card written to {path}")
    return 0


def _push(args: argparse.Namespace) -> int:
    from .hub import HubPushError, push_to_hub

    try:
        url = push_to_hub(
            args.output_dir, args.repo_id, token=args.token, private=args.private, revision=args.revision
        )
    except (HubPushError, FileNotFoundError, ValueError) as error:
        print(f"hf-robattr push: error: {error}", file=sys.stderr)
        return 1
    print(f"Pushed {args.output_dir} to {url}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hf-robattr``."""
    parser = argparse.ArgumentParser(
        prog="hf-robattr", description="Model cards and Hub uploads for hf_robattr training runs."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    card = commands.add_parser("card", help="(re)generate OUTPUT_DIR/README.md and its pictures from results.json")
    card.add_argument("output_dir", metavar="OUTPUT_DIR", help="a finished run folder with results.json")
    card.add_argument("--model_id", "--model-id", help="the Hub repo id ORG/NAME used in the usage snippet")
    card.add_argument("--model_name", "--model-name", help="the card title")
    card.add_argument("--license", help="the model license (default apache-2.0)")
    card.add_argument("--tags", nargs="*", default=None, help="extra Hub tags")
    card.add_argument("--template", help="a Jinja template to use instead of the packaged one")
    card.set_defaults(handler=_card)

    push = commands.add_parser("push", help="create REPO_ID on the Hub and upload OUTPUT_DIR to it")
    push.add_argument("output_dir", metavar="OUTPUT_DIR", help="a complete run folder (card, config, weights)")
    push.add_argument("repo_id", metavar="REPO_ID", help="ORG/NAME")
    push.add_argument("--token", help="a Hub token with write access (default: HF_TOKEN or the stored login)")
    push.add_argument("--private", action="store_true", default=None, help="create the repo private")
    push.add_argument("--revision", help="the branch to push to")
    push.set_defaults(handler=_push)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hf-robattr``; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
