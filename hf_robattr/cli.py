"""The ``hf-robattr`` command line: ``card`` (re)writes a run's model card, ``push`` uploads the run folder (and a
demo Space), ``push-metric`` publishes the ``attribution_robustness`` metric as a Space, ``demo`` opens the
attribution explorer.

Only the standard library is imported here; each command imports what it needs when it runs, so ``--help`` and
argument errors answer at once. A user error (a bad folder, a malformed ``results.json``, an unreachable Hub) is
reported as one line on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence


USAGE_ERROR = 2


class CommandError(Exception):
    """A user error of a command, reported as one line (exit status 2)."""


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "bad input", not "bug": reported in one line."""
    errors: list[type[BaseException]] = [CommandError, FileNotFoundError, NotADirectoryError, PermissionError]
    errors += [ValueError, TypeError, ImportError, OSError]
    if "hf_robattr.hub_upload" in sys.modules:  # loaded by any upload: HubPushError, MetricSpaceError
        errors.append(sys.modules["hf_robattr.hub_upload"].HubUploadError)
    return tuple(errors)


def _port(value: str) -> int:
    """A TCP port number, 1-65535 (argparse reports anything else as a usage error, exit status 2)."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number 1-65535, got {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 1-65535, got {port}")
    return port


def _card(args: argparse.Namespace) -> str:
    from .hub import save_model_card

    fields = {name: getattr(args, name) for name in ("model_id", "model_name", "license") if getattr(args, name)}
    if args.tags:
        fields["tags"] = args.tags
    path = save_model_card(args.output_dir, template=args.template, **fields)
    return f"Model card written to {path}"


def _push(args: argparse.Namespace) -> str:
    from .hub import push_to_hub
    from .hub.space import default_space_id, space_url

    if (args.space_id or args.space_requirement) and not args.space:
        raise CommandError("`--space_id` and `--space_requirement` need `--space` (they describe the demo Space).")
    url = push_to_hub(
        args.output_dir,
        args.repo_id,
        token=args.token,
        private=args.private,
        revision=args.revision,
        space=args.space,
        space_id=args.space_id,
        space_requirement=args.space_requirement,
    )
    message = f"Pushed {args.output_dir} to {url}"
    if args.space:
        from huggingface_hub import HfApi

        from .hub.push import full_repo_id

        # A bare NAME went to the token user's namespace, and so did its Space.
        repo_id = args.space_id or default_space_id(full_repo_id(HfApi(token=args.token), args.repo_id))
        message += f"\nDemo Space: {space_url(repo_id)}"
    return message


def _push_metric(args: argparse.Namespace) -> str:
    from .metrics import push_metric_space, write_metric_space

    if args.local_dir:
        script = write_metric_space(args.local_dir, args.repo_id, overwrite=args.overwrite)
        return f"Metric Space written to {script.parent}; upload it with: hf-robattr push-metric {args.repo_id}"
    url = push_metric_space(args.repo_id, token=args.token, private=args.private)
    return f"Pushed the metric Space to {url}\nLoad it with: evaluate.load({args.repo_id!r})"


def _demo(args: argparse.Namespace) -> str:
    from .extras import install_hint
    from .model_folders import local_source_problem

    for source in filter(None, [args.model, args.model2]):  # a wrong folder fails before Gradio and torch load
        problem = local_source_problem(source)
        if problem:
            raise CommandError(problem)
    try:
        import gradio  # noqa: F401
    except ImportError as error:
        raise CommandError(f"the demo needs Gradio ({error}); install it with: {install_hint('demo')}") from error
    from .demo import launch_demo, load_demo_model
    from .demo.app import mixed_kinds_error

    models = [load_demo_model(source) for source in [args.model, args.model2] if source]
    mixed = mixed_kinds_error(models)
    if mixed:
        raise CommandError(mixed)
    launch_demo(models, server_name=args.host, server_port=args.port, share=args.share)
    return "Demo closed."


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hf-robattr``."""
    parser = argparse.ArgumentParser(
        prog="hf-robattr",
        description="Model cards, Hub uploads and an attribution explorer for hf_robattr training runs.",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="on an error, print the full traceback (for bug reports)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    card = commands.add_parser(
        "card", help="(re)generate OUTPUT_DIR/README.md and its training-curve picture from results.json"
    )
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
    push.add_argument(
        "--space", action="store_true", help="also create a Gradio Space running the attribution explorer on it"
    )
    push.add_argument("--space_id", "--space-id", help="the Space's ORG/NAME (default: REPO_ID-demo)")
    push.add_argument(
        "--space_requirement",
        "--space-requirement",
        help="the pip requirement that installs hf_robattr in the Space (default: this version with the demo extra; "
        "e.g. a git+https:// URL)",
    )
    push.set_defaults(handler=_push)

    metric = commands.add_parser(
        "push-metric",
        help="publish the attribution_robustness metric as the Hub Space REPO_ID (evaluate.load(REPO_ID))",
    )
    metric.add_argument(
        "repo_id", metavar="REPO_ID", help="ORG/NAME, NAME a Python identifier (ORG/attribution_robustness)"
    )
    metric.add_argument("--token", help="a Hub token with write access (default: HF_TOKEN or the stored login)")
    metric.add_argument("--private", action="store_true", default=None, help="create the Space private")
    metric.add_argument("--local_dir", "--local-dir", help="only write the Space's files into this folder")
    metric.add_argument(
        "--overwrite",
        action="store_true",
        help="with --local_dir: write into a folder that holds a model or another README.md (replacing them)",
    )
    metric.set_defaults(handler=_push_metric)

    demo = commands.add_parser(
        "demo", help="open the attribution explorer (Gradio: the `demo` extra) on one or two models"
    )
    demo.add_argument("model", metavar="MODEL", help="a run folder or a Hub model id")
    demo.add_argument("model2", metavar="MODEL2", nargs="?", help="a second model, shown side by side")
    demo.add_argument("--port", type=_port, default=None, help="the local port (default: 7860 or the next free one)")
    demo.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    demo.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hf-robattr``; returns the exit status (0 success, 2 a user error)."""
    args = build_parser().parse_args(argv)  # argparse reports usage errors itself, exit status 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    handler: Callable[[argparse.Namespace], str] = args.handler
    try:
        message = handler(args)
    except KeyboardInterrupt:
        return 130
    except _user_errors() as error:
        if args.traceback:
            raise
        print(f"hf-robattr {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return USAGE_ERROR
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
