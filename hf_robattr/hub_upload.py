"""What every upload to the Hugging Face Hub checks before it starts: that ``huggingface_hub`` is online and a token
is at hand (:func:`upload_token`), and the error it raises otherwise (:class:`HubUploadError`).

A leaf module: it imports only the standard library and ``huggingface_hub``, so ``hub`` (a run folder and its demo
Space) and ``metrics`` (the metric's Space), which sit side by side in the layers, share one check without importing
each other.
"""

from __future__ import annotations

from pathlib import Path

import huggingface_hub


__all__ = ["MODEL_FILES", "HubUploadError", "check_space_folder", "upload_token"]


class HubUploadError(RuntimeError):
    """An upload to the Hub cannot start or failed (offline, no token, no network, refused); nothing local changed.
    Each uploader raises its own subclass (``HubPushError``, ``MetricSpaceError``)."""


def upload_token(
    token: str | None, target: str, *, error: type[HubUploadError] = HubUploadError, retry: str = ""
) -> str:
    """The token to upload with: ``token``, else ``HF_TOKEN`` or the stored login.

    Args:
        token: the token the caller was given, if any.
        target: what is pushed, for the message: ``"to ORG/NAME"``, ``"the metric Space ORG/NAME"``.
        error: the exception class to raise (the uploader's own :class:`HubUploadError`).
        retry: a sentence appended to the message (how to retry once the cause is fixed).

    Raises:
        error: ``huggingface_hub`` is offline (``HF_HUB_OFFLINE``), or no token was given, set or stored; the message
            says which, and how to provide what is missing.
    """
    after = f" {retry}" if retry else ""
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise error(f"Cannot push {target}: HF_HUB_OFFLINE is set. Unset it to upload.{after}")
    token = token or huggingface_hub.get_token()
    if not token:
        raise error(
            f"Cannot push {target}: no Hugging Face token. Set HF_TOKEN, pass `token=`, or run `hf auth login`.{after}"
        )
    return token


MODEL_FILES = ("config.json", "*.safetensors", "*.bin")
"""What marks a folder as holding a model: a Space written there would replace its card."""


def check_space_folder(
    folder: Path,
    *,
    argument: str,
    sdk: str,
    app_file: str,
    overwrite: bool,
    kind: str | None = None,
    model_files: tuple[str, ...] = MODEL_FILES,
) -> None:
    """Refuse to write a Space into ``folder`` when that would destroy something: a model (``model_files``: its
    config or weights; the Space's ``README.md`` would replace the model card), or a ``README.md`` that is not a
    Space card of the same kind (``sdk`` and ``app_file``, as the same writer sets them), unless ``overwrite``.
    ``kind`` names the Space in the messages (default: ``sdk``).

    Raises:
        FileExistsError: naming ``argument``, what was found and ``overwrite=True``.
    """
    if overwrite or not folder.is_dir():
        return
    kind = kind or sdk
    found = sorted({path.name for pattern in model_files for path in folder.glob(pattern) if path.is_file()})
    if found:
        raise FileExistsError(
            f"`{argument}`={str(folder)!r} holds a model ({', '.join(found)}): writing a Space there would replace "
            "its README.md (the model card). Write the Space into an empty folder, or pass overwrite=True."
        )
    readme = folder / "README.md"
    if readme.is_file():
        try:
            data = huggingface_hub.SpaceCard.load(readme).data
            ours = getattr(data, "sdk", None) == sdk and getattr(data, "app_file", None) == app_file
        except Exception:  # not a card at all: not ours either
            ours = False
        if not ours:
            raise FileExistsError(
                f"`{argument}`={str(folder)!r} has a README.md that is not a {kind} Space card written by hf_robattr; "
                "it would be overwritten. Write the Space into an empty folder, or pass overwrite=True."
            )
