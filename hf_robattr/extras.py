"""How to install hf_robattr's optional extras (``demo``, ``ray``, ``docs``, ``test``): the package is not on PyPI,
so an extra comes from a clone or from the Git URL, never from ``pip install 'hf_robattr[extra]'``."""

from __future__ import annotations


__all__ = ["install_hint"]


def install_hint(extra: str) -> str:
    """The command that installs ``extra``, for error messages and help texts."""
    return f"pip install -e '.[{extra}]' in a clone of hf_robattr (or pip install 'hf_robattr[{extra}] @ git+URL')"
