"""The calls a training recipe needs: take the push over from the Trainer, write the card and push, and say what it
made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..training import RunResult
from .card import save_model_card
from .push import push_to_hub
from .summary import run_folder_summary, training_headline


def defer_hub_push(args: Any) -> bool:
    """Turn off the ``Trainer``'s own push and return whether ``--push_to_hub`` was asked for.

    With ``push_to_hub=True`` a ``Trainer`` creates the repo when it is built (so an offline run fails before
    training), uploads every checkpoint, and replaces ``README.md`` with its generic card. Call this on the
    training arguments before building the ``Trainer``, then :func:`publish_run` (or
    :func:`publish_run_result`) once the run folder is complete.
    """
    requested = bool(getattr(args, "push_to_hub", False))
    if requested and not getattr(args, "hub_model_id", None):
        raise ValueError("`--push_to_hub` needs `--hub_model_id ORG/NAME`: the Hub repo to create and upload to.")
    args.push_to_hub = False
    return requested


def publish_run(
    output_dir: str | Path,
    *,
    model: Any = None,
    inputs: Any = None,
    tokenizer: Any = None,
    repo_id: str | None = None,
    push: bool = False,
    token: str | None = None,
    private: bool | None = None,
) -> Path:
    """Write ``OUTPUT_DIR/README.md`` with its pictures, then upload the folder when ``push`` is true.

    Args:
        output_dir: the finished run folder (model files and ``results.json``).
        model: the trained model; with ``inputs`` the card gets attribution maps, clean beside attacked.
        inputs: a few test samples (pixel values or a tokenized batch).
        tokenizer: for text models, labels the attribution picture with tokens.
        repo_id: ``ORG/NAME``, used in the card's usage snippet and as the push target.
        push: upload with :func:`~hf_robattr.hub.push_to_hub` (a failure raises ``HubPushError``; the folder
            stays complete, so ``hf-robattr push OUTPUT_DIR REPO_ID`` can retry).
        token: the Hub token (default ``HF_TOKEN`` or the stored login).
        private: create the repo private.

    Returns:
        The path of the card.
    """
    if push and not repo_id:
        raise ValueError("`push=True` needs `repo_id` ('ORG/NAME').")
    fields = {"model_id": repo_id} if repo_id else {}
    card = save_model_card(output_dir, model=model, inputs=inputs, tokenizer=tokenizer, **fields)
    if push:
        push_to_hub(output_dir, repo_id, token=token, private=private)
    return card


def publish_run_result(run: RunResult, args: Any, push: bool, *, tokenizer: Any = None) -> Path | None:
    """:func:`publish_run` for a finished :func:`~hf_robattr.training.run_pipeline` run, on the main process only.

    The card's pictures explain a few test inputs of ``run``; ``args`` (the training arguments) give the output
    folder and the Hub settings (``--hub_model_id``, ``--hub_token``, ``--hub_private_repo``); ``push`` is what
    :func:`defer_hub_push` returned. Returns the card's path (``None`` on the other processes).
    """
    if not run.is_main_process:
        return None
    return publish_run(
        args.output_dir,
        model=run.model,
        inputs=run.data.sample_inputs(),
        tokenizer=tokenizer,
        repo_id=args.hub_model_id,
        push=push,
        token=args.hub_token,
        private=args.hub_private_repo,
    )


def run_summary(run: RunResult, args: Any, pushed: bool) -> str | None:
    """The lines a training recipe prints last (on the main process; ``None`` elsewhere): where the model,
    ``results.json`` and the card are, the test accuracy and robustness headline, and the next commands (push, the
    explorer, and for a softmax model the conversion to kernel attention). ``pushed`` is what
    :func:`defer_hub_push` returned."""
    if not run.is_main_process:
        return None
    return run_folder_summary(
        args.output_dir,
        training_headline(run.results),
        pushed_repo=args.hub_model_id if pushed else None,
        convert=(run.results.get("model") or {}).get("attention_type") == "softmax",
    )
