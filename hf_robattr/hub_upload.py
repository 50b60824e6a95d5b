"""What every upload to the Hugging Face Hub checks before it starts: that ``huggingface_hub`` is online and a token
is at hand (:func:`upload_token`), and the error it raises otherwise (:class:`HubUploadError`).

A leaf module: it imports only the standard library and ``huggingface_hub``, so ``hub`` (a run folder and its demo
Space) and ``metrics`` (the metric's Space), which sit side by side in the layers, share one check without importing
each other.
"""

from __future__ import annotations

import huggingface_hub


__all__ = ["HubUploadError", "upload_token"]


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
