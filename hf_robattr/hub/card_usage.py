"""Edit a written card's "## Usage" snippet, without the card's heavy renderer: ``hf-robattr push`` rewrites it to
load the pushed repo, and imports only this."""

from __future__ import annotations

import re


__all__ = ["card_with_repo_id"]


def card_with_repo_id(text: str, repo_id: str) -> str:
    """The card text ``text`` with its "## Usage" section loading ``repo_id`` (a card written before the repo id was
    known loads the run folder); the rest is unchanged."""
    start = text.find("\n## Usage")
    if start < 0:
        return text
    end = text.find("\n## ", start + 1)
    end = len(text) if end < 0 else end
    usage = re.sub(r'(from_pretrained\(|model=)"[^"]*"', lambda m: f'{m.group(1)}"{repo_id}"', text[start:end])
    return text[:start] + usage + text[end:]
