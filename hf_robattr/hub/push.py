"""Upload a finished run folder to the Hugging Face Hub (create the repo, then upload the folder)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import huggingface_hub
from huggingface_hub import HfApi


logger = logging.getLogger(__name__)

REQUIRED_FILES = ("README.md", "config.json")
WEIGHT_PATTERNS = ("*.safetensors", "*.bin")
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
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class HubPushError(RuntimeError):
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
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not any(any(folder.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        missing.append("model weights (*.safetensors)")
    if missing:
        raise FileNotFoundError(
            f"`output_dir`={str(output_dir)!r} is not a complete model repo: missing {missing}. Save the model with "
            "`save_pretrained` and write the card with `hf-robattr card OUTPUT_DIR` first."
        )
    return folder


def push_to_hub(
    output_dir: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload hf_robattr model",
    endpoint: str | None = None,
) -> str:
    """Create ``repo_id`` on the Hub (if needed) and upload ``output_dir`` to it.

    Args:
        output_dir: a complete run folder (``README.md``, ``config.json``, weights; see :func:`check_output_dir`).
        repo_id: ``ORG/NAME``.
        token: a Hub token with write access; default: ``HF_TOKEN`` or the stored login.
        private: create the repo private (only when it does not exist yet).
        revision: the branch to push to; default the main branch.
        commit_message: the commit message.
        endpoint: the Hub endpoint; default ``HF_ENDPOINT`` or https://huggingface.co.

    Returns:
        The URL of the commit.

    Raises:
        HubPushError: when there is no token, the Hub is unreachable or refuses the upload. Nothing local changes,
            so the push can be retried with ``hf-robattr push OUTPUT_DIR REPO_ID``.
    """
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id):
        raise ValueError(f"`repo_id` must look like 'ORG/NAME', got {repo_id!r}.")
    folder = check_output_dir(output_dir)
    retry = f"The local folder {str(folder)!r} is complete; retry with `hf-robattr push {folder} {repo_id}`."
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise HubPushError(f"Cannot push to {repo_id}: HF_HUB_OFFLINE is set. Unset it to upload. {retry}")
    token = token or huggingface_hub.get_token()
    if not token:
        raise HubPushError(
            f"Cannot push to {repo_id}: no Hugging Face token. Set HF_TOKEN, pass `token=`, or run `hf auth login`. "
            f"{retry}"
        )
    leaking = files_holding(token, files_to_upload(folder))
    if leaking:
        raise HubPushError(
            f"Refusing to push {str(folder)!r} to {repo_id}: {[str(p.relative_to(folder)) for p in leaking]} contain "
            "your Hub token. Remove the token from those files (or delete them) and push again."
        )
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            revision=revision,
            commit_message=commit_message,
            ignore_patterns=IGNORE_PATTERNS,
        )
    except Exception as error:  # huggingface_hub raises HTTP, connection, auth and validation errors
        where = endpoint or huggingface_hub.constants.ENDPOINT
        raise HubPushError(f"Pushing {str(folder)!r} to {repo_id} on {where} failed: {error}. {retry}") from error
    url = str(getattr(commit, "commit_url", commit))
    logger.info("Pushed %s to %s", folder, url)
    return url
