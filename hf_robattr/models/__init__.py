"""hf_robattr.models (filled in by its issue)."""

__all__: list[str] = []
