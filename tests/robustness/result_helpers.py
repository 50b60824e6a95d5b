"""Compare whole scoring results: the nested ``baselines`` are flattened into numbers, the ``saturated`` entry
becomes one ``"saturated:{key}" -> kind`` comparison per flagged measure."""

from typing import Any


def flat_numbers(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with nested entries flattened: ``"baselines/{key}@{kind}"`` numbers and ``"saturated:{key}"`` kinds
    (``per_sample`` and ``epsilon_calibration`` are left out: compare them on their own)."""
    flat: dict[str, Any] = {}
    for key, value in result.items():
        if key == "baselines":
            flat.update({f"baselines/{k}@{kind}": v for k, kinds in value.items() for kind, v in kinds.items()})
        elif key == "saturated":
            flat.update({f"saturated:{k}": v["kind"] for k, v in value.items()})
        elif not isinstance(value, dict):
            flat[key] = value
    return flat
