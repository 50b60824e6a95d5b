"""``results.json``: the :class:`~hf_robattr.study.analysis.Analysis` as strict JSON, and back.

Top level (what readers of the study rely on)::

    "claims"        [{"claim": 1|2|3, "model", "verdict", "test", "estimate", "ci": [lo, hi], "p", "untested"
                      (why no test was run: "no variation" / "no residual variation ...", else ""), ...}, ...]
    "interaction"   [{"family", "method", "estimate", "ci", "p", "kernel": {...}, "softmax": {...}}, ...]
    "preconditions" {run key: {"cls_entropy_ratio", "cls_cv", "evidence_recall", "evidence_chance", "degenerate"}}
    "eval_set"      {"rule", "size" (the first arm's), "arms": [{"arm", "split", "pool_size", "size", "models"}]}
    "grid"          [{"arm", "attention_type", "regime", "optimizer", "lr", "batch_size", "regularizer",
                      "regularizer_weight", "seeds", "status_counts"}, ...]
    "analysis"      the whole analysis (every table of the report), from which the report is rendered

Study v3 (``settings.analysis == "v3"``) adds, from :class:`~hf_robattr.study.analysis_v3.V3Findings`:
``"manipulation_check"`` (per model: curvature slopes on lr/B, passed, the reason where not), ``"lack_of_fit"`` (per
model, method and co-primary measure: the F test, lr and B separately where rejected), ``"error_rates"`` (each rule
on simulated data at the runs' spread: the true slope, the spread, the share of each verdict), ``"margins"``,
``"positive_controls"``, ``"fit_outcomes"``, ``"excluded"`` (per arm and fit outcome, the runs kept out of the
claims), ``"covariate"`` (each claim slope with and without the loss at the stop) and ``"budget_contrasts"`` (the
fixed-budget arm beside its matched-fit twin). Its claims have a fourth verdict, ``"untested"`` (the reason in
``"untested"``), and a ``"note"`` where a tested verdict stays inconclusive for a stated reason.

NaN is written as ``null`` (strict JSON) and read back as NaN; floats round-trip exactly, so the report rendered
from a reloaded ``results.json`` is the report rendered from the runs, byte for byte.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

from .analysis import Analysis
from .summaries import RunSummary


__all__ = ["EVAL_SET_RULE", "from_jsonable", "load_results", "results_payload", "save_results", "to_jsonable"]

EVAL_SET_RULE = (
    "per arm: the first eval_pool test examples (the same pool for every model), kept where every usable model of "
    "the arm (every main run with status ok: both attention types, every regime) classifies them correctly; "
    "robustness values are means over that set, label-flip rates reported beside them"
)


# The v3 checks that results.json also holds at its top level (issue 25.7).
V3_TOP_LEVEL = (
    "manipulation_check",
    "lack_of_fit",
    "error_rates",
    "margins",
    "positive_controls",
    "fit_outcomes",
    "excluded",
    "covariate",
    "budget_contrasts",
)


def to_jsonable(value: Any) -> Any:
    """Dataclasses -> dicts, tuples -> lists, non-finite floats -> ``None`` (recursively). A dataclass field marked
    ``metadata={"omit_none": True}`` is left out while it is ``None`` (a field added later, so that older files keep their
    bytes; :func:`from_jsonable` gives a missing field its default, and reads a present ``null`` there as NaN)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.metadata.get("omit_none") and getattr(value, f.name) is None)
        }
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@functools.cache
def _type_hints(kind: type) -> dict[str, Any]:
    # resolving the string annotations compiles each one: a results file holds ~10^4 dataclass instances
    return typing.get_type_hints(kind)


def from_jsonable(kind: Any, value: Any) -> Any:
    """The inverse of :func:`to_jsonable` for a value of type ``kind`` (dataclasses, containers, optionals)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(kind)):
            return None
        return from_jsonable(options[0], value)
    if dataclasses.is_dataclass(kind):
        hints = _type_hints(kind)
        # fields a file written before they existed lacks take their defaults
        fields = {
            f.name: _field_from_jsonable(f, hints[f.name], value[f.name])
            for f in dataclasses.fields(kind)
            if f.init and f.name in value
        }
        return kind(**fields)
    if kind is float:
        return math.nan if value is None else float(value)
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], v) for v in value)
        return tuple(from_jsonable(a, v) for a, v in zip(args, value))
    if origin is list:
        (arg,) = typing.get_args(kind)
        return [from_jsonable(arg, v) for v in value]
    if origin is dict:
        _, arg = typing.get_args(kind)
        return {k: from_jsonable(arg, v) for k, v in value.items()}
    return value


def _field_from_jsonable(spec: dataclasses.Field, kind: Any, value: Any) -> Any:
    # an omit_none field is absent while None, so a null that is present was a non-finite float
    if value is None and spec.metadata.get("omit_none"):
        return math.nan
    return from_jsonable(kind, value)


def _grid(analysis: Analysis) -> list[dict[str, Any]]:
    cells: dict[tuple, dict[str, Any]] = {}
    for run in analysis.runs:
        key = (
            run.arm,
            run.attention_type,
            run.regime,
            run.optimizer,
            run.learning_rate,
            run.batch_size,
            run.regularizer,
            run.regularizer_weight,
            run.role,
        )
        row = cells.setdefault(
            key,
            {
                "arm": run.arm,
                "attention_type": run.attention_type,
                "regime": run.regime,
                "optimizer": run.optimizer,
                "lr": run.learning_rate,
                "batch_size": run.batch_size,
                "log2_lr_over_batch": run.log2_strength,
                "regularizer": run.regularizer,
                "regularizer_weight": run.regularizer_weight,
                "role": run.role,
                "seeds": [],
                "status_counts": {},
            },
        )
        row["seeds"].append(run.seed)
        row["status_counts"][run.status] = row["status_counts"].get(run.status, 0) + 1
    return list(cells.values())


def _preconditions(runs: list[RunSummary]) -> dict[str, Any]:
    return {r.key: to_jsonable(r.preconditions) for r in runs if r.preconditions is not None}


def results_payload(analysis: Analysis) -> dict[str, Any]:
    """The ``results.json`` document of ``analysis`` (see the module docstring)."""
    eval_sets = to_jsonable(analysis.eval_sets)
    v3 = {}
    if analysis.v3 is not None:  # study v3: its checks at the top level too (v2's files keep their keys)
        v3 = {name: to_jsonable(getattr(analysis.v3, name)) for name in V3_TOP_LEVEL}
    return {
        "scale": analysis.settings.scale,
        "complete": analysis.complete,
        "claims": [{**to_jsonable(c), "ci": to_jsonable(list(c.ci)), "untested": c.untested} for c in analysis.claims],
        "interaction": to_jsonable(analysis.interactions),
        "preconditions": _preconditions(analysis.runs),
        "eval_set": {"rule": EVAL_SET_RULE, "size": eval_sets[0]["size"] if eval_sets else 0, "arms": eval_sets},
        "grid": _grid(analysis),
        **v3,
        "analysis": to_jsonable(analysis),
    }


def save_results(analysis: Analysis, path: str | Path) -> Path:
    """Write ``results.json`` (``.json.gz``: gzipped, with a fixed timestamp so equal analyses give equal
    files)."""
    path = Path(path)
    text = json.dumps(results_payload(analysis), indent=1, allow_nan=False)
    if path.suffix == ".gz":
        with open(path, "wb") as raw, gzip.GzipFile(filename="results.json", fileobj=raw, mode="wb", mtime=0) as out:
            out.write(text.encode("utf-8"))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_results(path: str | Path) -> Analysis:
    """The :class:`Analysis` stored in a ``results.json`` or ``results.json.gz``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        payload = json.load(handle)
    if not isinstance(payload, dict) or "analysis" not in payload:
        raise ValueError(f"{path} is not a study results.json (no 'analysis' section).")
    return from_jsonable(Analysis, payload["analysis"])
