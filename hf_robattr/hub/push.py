"""Upload a finished run folder to the Hugging Face Hub (create the repo, then upload the folder)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import huggingface_hub
from huggingface_hub import CommitOperationAdd, HfApi

from ..hub_upload import HubUploadError, upload_token
from ..model_folders import missing_model_files
from ..results_io import check_hub_model_id, check_repo_id
from .card_usage import card_with_repo_id
from .space import card_with_space_link, default_space_id, space_url, write_space


logger = logging.getLogger(__name__)

REQUIRED_FILES = ("README.md", "config.json")
# Trainer checkpoints, local caches and pickles (training arguments, optimizer/RNG states) are not part of the model
# repo: a pickle runs code when a user loads it, and ``training_args.bin`` can hold the Hub token.
IGNORE_PATTERNS = [
    "checkpoint-*",
    "checkpoint-*/**",
    "**/__pycache__/**",
    "*.lock",
    ".cache/**",
    "training_args.bin",
    "*.pt",
    "*.pth",
    "*.pkl",
    "*.pickle",
]
_SCAN_CHUNK = 1 << 20


class HubPushError(HubUploadError):
    """A push to the Hub failed (no token, offline, no network, refused); the local folder is left as it was."""


def files_to_upload(folder: Path) -> list[Path]:
    """The files of ``folder`` that :func:`push_to_hub` uploads (everything but :data:`IGNORE_PATTERNS`)."""
    from huggingface_hub.utils import filter_repo_objects

    relative = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
    return [folder / name for name in filter_repo_objects(relative, ignore_patterns=IGNORE_PATTERNS)]


def files_holding(secret: str, files: list[Path]) -> list[Path]:
    """The files among ``files`` whose bytes contain ``secret`` (read in chunks; overlapping chunk borders)."""
    needle = secret.encode()
    found = []
    for path in files:
        with open(path, "rb") as handle:
            tail = b""
            while chunk := handle.read(_SCAN_CHUNK):
                if needle in tail + chunk:
                    found.append(path)
                    break
                tail = chunk[-len(needle) :]
    return found


def check_output_dir(output_dir: str | Path) -> Path:
    """Check that ``output_dir`` is a complete model repo: a card, a config and weights."""
    folder = Path(output_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"`output_dir`={str(output_dir)!r} is not a directory.")
    missing = missing_model_files(folder, REQUIRED_FILES)
    if missing:
        raise FileNotFoundError(
            f"`output_dir`={str(output_dir)!r} is not a complete model repo: missing {missing}. Save the model with "
            "`save_pretrained` and write the card with `hf-robattr card OUTPUT_DIR` first."
        )
    return folder


def full_repo_id(api: HfApi, repo_id: str) -> str:
    """``repo_id`` with its namespace: a bare ``NAME`` goes to the namespace of ``api``'s token user (asked with
    ``whoami``, the namespace ``create_repo`` itself would use), ``ORG/NAME`` stays as it is."""
    return repo_id if "/" in repo_id else f"{api.whoami()['name']}/{repo_id}"


def push_to_hub(
    output_dir: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload hf_robattr model",
    endpoint: str | None = None,
    space: bool = False,
    space_id: str | None = None,
    space_requirement: str | None = None,
) -> str:
    """Create ``repo_id`` on the Hub (if needed) and upload ``output_dir`` to it; with ``space=True`` also a Space.

    Exactly the files of :func:`files_to_upload` are sent, in one commit: Trainer checkpoints, caches and pickles
    stay local, and nothing is sent when one of them holds the token.

    Args:
        output_dir: a complete run folder (``README.md``, ``config.json``, weights; see :func:`check_output_dir`).
        repo_id: ``ORG/NAME``, or ``NAME`` in the namespace of the token's user (as ``huggingface_hub`` takes it).
        token: a Hub token with write access; default: ``HF_TOKEN`` or the stored login.
        private: create the repo (and the Space) private (only when it does not exist yet).
        revision: the branch to push to; default the main branch.
        commit_message: the commit message.
        endpoint: the Hub endpoint; default ``HF_ENDPOINT`` or https://huggingface.co.
        space: also create a Gradio Space running the attribution explorer on ``repo_id``
            (see :func:`~hf_robattr.hub.space.write_space`); the uploaded card then links to it, and so does the
            local ``README.md`` once the push succeeded.
        space_id: the Space's ``ORG/NAME`` (default ``REPO_ID-demo``, in the namespace of ``repo_id``).
        space_requirement: the pip requirement installing hf_robattr in the Space (default: this version with the
            ``demo`` extra).

    Returns:
        The URL of the model commit (it names the repo with its namespace).

    Raises:
        HubPushError: when there is no token, the Hub is unreachable or refuses the upload. Nothing local changes,
            so the push can be retried with ``hf-robattr push OUTPUT_DIR REPO_ID``.
    """
    repo_id = check_hub_model_id(repo_id, "`repo_id`")
    if space_id is not None and not space:
        raise ValueError("`space_id` is set but `space=False`; pass `space=True` to create the Space.")
    if space_id is not None:
        check_repo_id(space_id, "space_id", "a Hub Space id")
    elif space:
        check_hub_model_id(default_space_id(repo_id), "`space_id` (default REPO_ID-demo)")
    folder = check_output_dir(output_dir)
    retry = f"The local folder {str(folder)!r} is complete; retry with `hf-robattr push {folder} {repo_id}`."
    token = upload_token(token, f"to {repo_id}", error=HubPushError, retry=retry)
    files = files_to_upload(folder)
    leaking = files_holding(token, files)
    if leaking:
        raise HubPushError(
            f"Refusing to push {str(folder)!r} to {repo_id}: {[str(p.relative_to(folder)) for p in leaking]} contain "
            "your Hub token. Remove the token from those files (or delete them) and push again."
        )
    api = HfApi(endpoint=endpoint, token=token)
    card_path = folder / "README.md"
    card = card_path.read_text(encoding="utf-8")
    try:
        repo_id = full_repo_id(api, repo_id)
        if space:
            space_id = space_id or default_space_id(repo_id)
        # a card written before the repo id was known loads the folder
        linked_card = card_with_repo_id(card, repo_id)
        linked_card = card_with_space_link(linked_card, space_id) if space else linked_card
        operations = [
            CommitOperationAdd(
                path_in_repo=path.relative_to(folder).as_posix(),
                path_or_fileobj=linked_card.encode("utf-8") if path == card_path else path,
            )
            for path in files
        ]
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.create_commit(
            repo_id=repo_id, operations=operations, commit_message=commit_message, revision=revision
        )
        if space:
            _push_space(api, space_id, repo_id, private=private, requirement=space_requirement)
    except Exception as error:  # huggingface_hub raises HTTP, connection, auth and validation errors
        where = endpoint or huggingface_hub.constants.ENDPOINT
        raise HubPushError(f"Pushing {str(folder)!r} to {repo_id} on {where} failed: {error}. {retry}") from error
    if linked_card != card:
        card_path.write_text(linked_card, encoding="utf-8")  # the local card now matches the pushed one
    url = str(getattr(commit, "commit_url", commit))
    logger.info("Pushed %s to %s", folder, url)
    return url


def _push_space(api: HfApi, space_id: str, repo_id: str, *, private: bool | None, requirement: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="hf_robattr_space_") as folder:
        write_space(folder, repo_id, requirement=requirement)
        api.create_repo(space_id, private=private, exist_ok=True, repo_type="space", space_sdk="gradio")
        api.upload_folder(
            repo_id=space_id,
            repo_type="space",
            folder_path=folder,
            commit_message=f"Attribution explorer for {repo_id} (hf_robattr)",
        )
    logger.info("Created the demo Space %s", space_url(space_id))
