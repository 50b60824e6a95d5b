"""Publish the metric as a Hub Space, so that anyone loads it with ``evaluate.load("ORG/attribution_robustness")``.

``evaluate`` loads a community module ``ORG/NAME`` by downloading ``NAME.py`` from the Space ``ORG/NAME`` (then its
module cache). :func:`write_metric_space` writes such a Space into a folder: the packaged metric script under that
name, its metric card as the Space's ``README.md``, and a static ``index.html`` page (a static Space builds nothing
and runs nothing). :func:`push_metric_space` creates the Space and uploads the folder.

The script imports hf_robattr (it is a thin wrapper over the scoring core), so whoever loads the Space needs
hf_robattr installed; evaluate says so by name when it is missing. Loading ``ORG/NAME`` runs that Space's code:
load Spaces you trust, pinned with ``revision=`` to a commit you have read.
"""

from __future__ import annotations

import html
import logging
import re
import shutil
import tempfile
from pathlib import Path

import huggingface_hub
from huggingface_hub import HfApi, SpaceCard

from ..hub_upload import HubUploadError, check_space_folder, upload_token
from ..results_io import is_repo_id
from .loading import METRIC_NAME, metric_path


__all__ = ["MetricSpaceError", "push_metric_space", "write_metric_space"]

logger = logging.getLogger(__name__)

_REPO_ID = re.compile(r"^[\w.-]+/([A-Za-z_][A-Za-z0-9_]*)$")


class MetricSpaceError(HubUploadError):
    """Publishing the metric Space failed (offline, no token, the Hub refused); nothing local changed."""


def _space_name(repo_id: str | None) -> str:
    if repo_id is None:
        return METRIC_NAME
    match = _REPO_ID.match(repo_id) if is_repo_id(repo_id) else None
    if match is None:
        raise ValueError(
            f"`repo_id` must look like 'ORG/NAME' with NAME a Python identifier (evaluate imports the Space's NAME.py "
            f"as a module), e.g. 'your-org/{METRIC_NAME}'; got {repo_id!r}."
        )
    return match.group(1)


def _card(repo_id: str | None) -> SpaceCard:
    card = SpaceCard((Path(metric_path()).parent / "README.md").read_text(encoding="utf-8"))
    for key, value in {
        "sdk": "static",
        "app_file": "index.html",
        "emoji": "🛡️",
        "colorFrom": "indigo",
        "colorTo": "red",
        "pinned": False,
    }.items():
        setattr(card.data, key, value)
    loading = f'evaluate.load("{repo_id}")' if repo_id else 'evaluate.load("ORG/NAME")'
    card.text = card.text.replace(
        "## How to Use\n",
        "## How to Use\n\n"
        f"From this Space: `{loading}` (needs hf_robattr installed: the script is a thin wrapper over its scoring "
        "core). Loading a Space runs its code; pin `revision=` to a commit you have read.\n",
        1,
    )
    return card


def _index_html(card: SpaceCard, repo_id: str | None) -> str:
    title = html.escape(str(getattr(card.data, "title", METRIC_NAME)))
    description = html.escape(" ".join(str(getattr(card.data, "description", "")).split()))
    loading = html.escape(f'evaluate.load("{repo_id or "ORG/NAME"}")')
    return (
        '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>'
        f"{title}</title></head>\n<body>\n<h1>{title}</h1>\n<p>{description}</p>\n"
        f"<p>Load it with <code>{loading}</code> (hf_robattr must be installed). The metric card is this Space's "
        "<code>README.md</code>.</p>\n</body>\n</html>\n"
    )


def write_metric_space(folder: str | Path, repo_id: str | None = None, *, overwrite: bool = False) -> Path:
    """Write the metric's Space into ``folder`` (created if missing): ``NAME.py`` (the packaged script),
    ``README.md`` (its metric card, with the Space settings) and ``index.html``.

    Args:
        folder: the folder to write. A folder holding a model (``config.json``, weights) or a ``README.md`` other
            than a metric Space card is refused, unless ``overwrite``.
        repo_id: the Space ``ORG/NAME`` it will be pushed to (names the script ``NAME.py`` and fills the card's
            loading line); default: ``attribution_robustness.py`` and a placeholder.
        overwrite: write even into a folder with a model or a foreign ``README.md`` (which is replaced).

    Returns:
        The path of the script.

    Raises:
        ValueError: ``repo_id`` is not ``ORG/NAME`` with ``NAME`` a Python identifier.
        FileExistsError: ``folder`` holds a model or a foreign ``README.md`` and ``overwrite`` is not set.
    """
    name = _space_name(repo_id)
    folder = Path(folder)
    check_space_folder(
        folder, argument="folder", sdk="static", app_file="index.html", overwrite=overwrite, kind="metric"
    )
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / f"{name}.py"
    shutil.copyfile(metric_path(), script)
    card = _card(repo_id)
    card.save(folder / "README.md")
    (folder / "index.html").write_text(_index_html(card, repo_id), encoding="utf-8")
    return script


def push_metric_space(
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    endpoint: str | None = None,
) -> str:
    """Create the Space ``repo_id`` (static, if needed) and upload :func:`write_metric_space`'s files to it.

    Args:
        repo_id: ``ORG/NAME``; others then load the metric with ``evaluate.load("ORG/NAME")``.
        token: a Hub token with write access; default ``HF_TOKEN`` or the stored login.
        private: create the Space private (only when it does not exist yet).
        endpoint: the Hub endpoint; default ``HF_ENDPOINT`` or https://huggingface.co.

    Returns:
        The URL of the commit.

    Raises:
        ValueError: ``repo_id`` is not ``ORG/NAME`` with ``NAME`` a Python identifier.
        MetricSpaceError: offline, no token, or the Hub refused.
    """
    _space_name(repo_id)
    token = upload_token(token, f"the metric Space {repo_id}", error=MetricSpaceError)
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="hf_robattr_metric_space_") as folder:
        write_metric_space(folder, repo_id)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="space", space_sdk="static")
            commit = api.upload_folder(
                repo_id=repo_id,
                repo_type="space",
                folder_path=folder,
                commit_message="Upload the attribution_robustness metric (hf_robattr)",
            )
        except Exception as error:  # huggingface_hub raises HTTP, connection, auth and validation errors
            where = endpoint or huggingface_hub.constants.ENDPOINT
            raise MetricSpaceError(f"Pushing the metric Space {repo_id} to {where} failed: {error}") from error
    url = str(getattr(commit, "commit_url", commit))
    logger.info("Pushed the metric Space %s: evaluate.load(%r)", url, repo_id)
    return url
