"""hf_robattr.hub (filled in by its issue)."""

__all__: list[str] = []
