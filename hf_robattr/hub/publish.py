"""The calls a training recipe needs after :func:`~hf_robattr.training.run_pipeline`: write the card, push when the
run asked for it, and say what it made. Publishing only: the pipeline took the push over from the ``Trainer`` and
recorded it (``RunResult.push_requested``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..results_io import check_hub_model_id, is_repo_id
from ..training import RunResult
from .card import save_model_card
from .push import push_to_hub
from .summary import run_folder_summary, training_headline


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
        repo_id: the push target, ``ORG/NAME`` or ``NAME`` (in the namespace of the token's user, as the Hub takes
            it). ``ORG/NAME`` is loaded by the card's usage snippet; a bare ``NAME`` titles the card, whose snippet
            loads the folder until the push names the repo with its namespace.
        push: upload with :func:`~hf_robattr.hub.push_to_hub` (a failure raises ``HubPushError``; the folder
            stays complete, so ``hf-robattr push OUTPUT_DIR REPO_ID`` can retry).
        token: the Hub token (default ``HF_TOKEN`` or the stored login).
        private: create the repo private.

    Returns:
        The path of the card.
    """
    if push and not repo_id:
        raise ValueError("`push=True` needs `repo_id` ('NAME' or 'ORG/NAME').")
    fields = {}
    if repo_id:
        check_hub_model_id(repo_id, "`repo_id`")
        fields = {"model_id": repo_id} if is_repo_id(repo_id) else {"model_name": repo_id}
    card = save_model_card(output_dir, model=model, inputs=inputs, tokenizer=tokenizer, **fields)
    if push:
        push_to_hub(output_dir, repo_id, token=token, private=private)
    return card


def publish_run_result(run: RunResult, args: Any, *, tokenizer: Any = None) -> Path | None:
    """:func:`publish_run` for a finished :func:`~hf_robattr.training.run_pipeline` run, on the main process only.

    The card's pictures explain a few test inputs of ``run`` (none for a diverged run); ``args`` (the training
    arguments) give the output folder and the Hub settings (``--hub_token``, ``--hub_private_repo``). The folder is pushed when the run asked
    for it (``run.push_requested``, to ``--hub_model_id``). Calling it again writes the same card (and pushes the
    same folder again). Returns the card's path (``None`` on the other processes).
    """
    if not run.is_main_process:
        return None
    explained = not run.record.training.diverged  # a diverged model's maps are NaN: no picture
    return publish_run(
        args.output_dir,
        model=run.model if explained else None,
        inputs=run.data.sample_inputs() if explained else None,
        tokenizer=tokenizer,
        repo_id=run.record.hub.repo_id if run.push_requested else args.hub_model_id,
        push=run.push_requested,
        token=args.hub_token,
        private=args.hub_private_repo,
    )


def run_summary(run: RunResult, args: Any) -> str | None:
    """The lines a training recipe prints last (on the main process; ``None`` elsewhere): where the model,
    ``results.json`` and the card are, the test accuracy and robustness headline, and the next commands (push, the
    explorer, and for a softmax model the conversion to kernel attention)."""
    if not run.is_main_process:
        return None
    return run_folder_summary(
        args.output_dir,
        training_headline(run.record),
        pushed_repo=run.record.hub.repo_id if run.push_requested else None,
        convert=run.record.model.attention_type == "softmax",
    )
