"""Read what each check's commands printed and wrote, and decide pass or fail with the numbers that back it.

Each judge returns an :class:`Outcome` or raises :class:`CheckFailed`; ``gpu`` says whether the GPU targets apply
(in the CPU smoke mode only the plumbing and the numerics are judged, never speed).
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from gpu_proc import Run
from gpu_tables import find_table, number, parse_tables
from launch_probe import PREFIX


QUANTUS_TARGET = 10.0  # issue 15: the scoring core >= 10x Quantus on the GPU, at equal values
EQUAL_REL, EQUAL_ABS = 1e-3, 1e-5  # "equal values": every per-example difference within one of these
LINEAR_SLOPE = 1.2  # kernel attention time linear in N (the attention benchmark's own target)
BF16_MAX_GAP = 0.10  # bf16 loss curve within 10% (mean relative gap) of the fp32 curve
VIT_MIN_ACCURACY = 0.9  # the README's default ViT recipe run reaches ~99% test accuracy


@dataclass
class Outcome:
    """One table row's verdict: a short result, the numbers behind it, and pass or fail."""

    result: str
    numbers: str
    passed: bool


class CheckFailed(Exception):
    """A check failed for a reason that fits in one line (``numbers`` keeps what was measured before it failed)."""

    def __init__(self, result: str, numbers: str = "") -> None:
        super().__init__(result)
        self.result, self.numbers = result, numbers


def require_success(*runs: Run) -> None:
    """Raise :class:`CheckFailed` with the command's own error line when any of ``runs`` failed."""
    for run in runs:
        if run.returncode != 0:
            raise CheckFailed(f"exit {run.returncode}: {run.last_error()}")


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def cuda_tests(run: Run, junit: Path, num_files: int, gpu: bool) -> Outcome:
    """pytest over the suite's CUDA tests: all pass; on a GPU none may skip for want of CUDA."""
    if run.returncode == 5:
        raise CheckFailed(f"no CUDA test selected in {num_files} test files that mention CUDA")
    if not junit.exists():
        raise CheckFailed(f"pytest exit {run.returncode}: {run.last_error()}")
    cases = ET.parse(junit).getroot().iter("testcase")
    failed, skipped, passed = [], [], 0
    for case in cases:
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        name = case.get("name", "?")
        if outcome is None:
            passed += 1
        elif outcome.tag == "skipped":
            skipped.append((name, outcome.get("message", "")))
        else:
            # pytest's "E ..." lines hold the assertion or the exception; the first one says most.
            detail = [line[1:].strip() for line in (outcome.text or "").splitlines() if line.startswith("E ")]
            detail = detail or [outcome.get("message", "")]
            failed.append(f"{name} ({detail[0][:150]})" if detail[0] else name)
    total = passed + len(skipped) + len(failed)
    numbers = (
        f"{total} CUDA test{'s' * (total != 1)} in {num_files} file{'s' * (num_files != 1)}: "
        f"{passed} passed, {len(skipped)} skipped, {len(failed)} failed"
    )
    if total == 0:
        raise CheckFailed("no CUDA test selected", numbers)
    if failed:
        raise CheckFailed("failed: " + ", ".join(failed[:3]), numbers)
    cuda_skips = [name for name, reason in skipped if re.search(r"cuda|gpu", reason, re.IGNORECASE)]
    if gpu and cuda_skips:
        raise CheckFailed("skipped although a GPU is present: " + ", ".join(cuda_skips[:5]), numbers)
    if run.returncode != 0:
        raise CheckFailed(f"pytest exit {run.returncode}: {run.last_error()}", numbers)
    if skipped:
        reasons = sorted({reason for _, reason in skipped})
        return Outcome("no failure; skipped: " + "; ".join(reasons)[:200], numbers, True)
    return Outcome("all passed", numbers, True)


def _equal(row: dict[str, str]) -> bool:
    return number(row["max rel diff"]) <= EQUAL_REL or number(row["max abs diff"]) <= EQUAL_ABS


def scoring(run: Run, gpu: bool) -> Outcome:
    """``benchmarks/robustness_throughput.py``: equal values to Quantus and captum; on a GPU >= 10x Quantus."""
    require_success(run)
    tables = parse_tables(run.text())
    columns = ("core s", "speed-up", "max abs diff", "max rel diff")
    quantus = [row for row in find_table(tables, "Quantus s", *columns) if row["max rel diff"]]
    captum = find_table(tables, "captum s", *columns)
    total = next((row for row in find_table(tables, "Quantus s", *columns) if not row["max rel diff"]), None)
    name = lambda row: next(iter(row.values()))  # noqa: E731 (first column: the metric's name)
    speedups = {name(row): number(row["speed-up"]) for row in quantus}
    worst_rel = max(number(row["max rel diff"]) for row in quantus + captum)
    numbers = (
        "Quantus "
        + ", ".join(f"{metric} {value:.2f}x" for metric, value in speedups.items())
        + (f" (all three {number(total['speed-up']):.2f}x)" if total else "")
        + f"; captum {number(captum[0]['speed-up']):.2f}x; max rel diff {worst_rel:.1e}"
    )
    unequal = [name(row) for row in quantus + captum if not _equal(row)]
    if unequal:
        raise CheckFailed(
            f"values differ (rel > {EQUAL_REL:g} and abs > {EQUAL_ABS:g}): {', '.join(unequal)}", numbers
        )
    if not gpu:
        return Outcome(
            "values equal to Quantus and captum (speed not judged at smoke sizes on the CPU)", numbers, True
        )
    slowest = min(speedups.values())
    if not slowest >= QUANTUS_TARGET:
        raise CheckFailed(f"target >= {QUANTUS_TARGET:g}x Quantus missed (slowest {slowest:.2f}x)", numbers)
    return Outcome(f"target >= {QUANTUS_TARGET:g}x Quantus at equal values: met", numbers, True)


def attention(run: Run, lengths: list[int], gpu: bool) -> Outcome:
    """``benchmarks/attention_scaling.py``: every length measured; on a GPU, kernel time linear in N."""
    require_success(run)
    text = run.text()
    rows = {int(number(row["N"])): row for row in find_table(parse_tables(text), "N", "SDPA (ms)", "kernel (ms)")}
    missing = [n for n in lengths if n not in rows]
    if missing:
        raise CheckFailed(f"no row for N = {missing}")
    n = max(lengths)
    row = rows[n]
    sdpa, kernel = number(row["SDPA (ms)"]), number(row["kernel (ms)"])
    numbers = f"N={n}: SDPA {sdpa:.2f} ms, kernel {kernel:.2f} ms ({sdpa / kernel:.1f}x)"
    if "SDPA peak (MiB)" in row:
        numbers += f"; peak {number(row['SDPA peak (MiB)']):.0f} vs {number(row['kernel peak (MiB)']):.0f} MiB"
    slope = re.search(r"kernel ([-\d.]+), SDPA ([-\d.]+)", text)
    if slope:
        numbers += f"; log-log slope kernel {slope.group(1)}, SDPA {slope.group(2)}"
    model = re.search(r"whole-model ratio ([\d.]+)x", text)
    if model:
        numbers += f"; whole ViT {model.group(1)}x"
    times = [number(r[c]) for r in rows.values() for c in ("SDPA (ms)", "kernel (ms)")]
    if not all(math.isfinite(t) and t > 0 for t in times):
        raise CheckFailed("a time is missing or not positive", numbers)
    if not gpu:
        return Outcome(f"N = {min(lengths)}...{n} measured (scaling not judged at smoke sizes)", numbers, True)
    if not slope or float(slope.group(1)) > LINEAR_SLOPE:
        raise CheckFailed(f"kernel time not linear in N (slope > {LINEAR_SLOPE})", numbers)
    return Outcome(f"N up to {n} measured; kernel time linear in N", numbers, True)


def probe_state(run: Run) -> dict:
    """The accelerate state line that ``launch_probe.py`` printed after the recipe."""
    lines = [line for line in run.text().splitlines() if line.startswith(PREFIX)]
    if not lines:
        raise CheckFailed("the recipe ended without the launch probe's state line")
    return json.loads(lines[-1][len(PREFIX) :])


def _results(output_dir: Path) -> dict:
    path = output_dir / "results.json"
    if not path.exists():
        raise CheckFailed(f"no {path.name} in {output_dir}")
    results = json.loads(path.read_text())
    values = [results["eval"].get("loss"), *results.get("robustness", {}).values()]
    bad = [v for v in values if not _finite(v)]
    if bad or not results.get("robustness"):
        raise CheckFailed(f"results.json: eval loss or robustness not finite or missing ({bad[:3]})")
    return results


def recipe(
    run: Run,
    output_dir: Path,
    gpu: bool,
    expect_type: str | None,
    min_accuracy: float = 0.0,
    checkpoints: bool = False,
) -> Outcome:
    """A recipe run: it ended well, wrote finite results, ran under the expected accelerate state on the GPU."""
    require_success(run)
    state = probe_state(run)
    results = _results(output_dir)
    accuracy = results["eval"].get("accuracy", math.nan)
    training = results.get("training", {})
    numbers = (
        f"{state['distributed_type']}, backend {state['backend']}, {state['num_processes']} process, "
        f"{state['device']}; {training.get('global_step')} steps in {training.get('train_runtime_s')} s; "
        f"test accuracy {accuracy:.3f}, loss {results['eval']['loss']:.3f}"
    )
    if not (output_dir / "model.safetensors").exists():
        raise CheckFailed("no model.safetensors written", numbers)
    if checkpoints and not list(output_dir.glob("checkpoint-*")):
        raise CheckFailed("no checkpoint-* folder written", numbers)
    if gpu and not str(state["device"]).startswith("cuda"):
        raise CheckFailed(f"ran on {state['device']}, not on the GPU", numbers)
    if gpu and expect_type and state["distributed_type"] != expect_type:
        raise CheckFailed(f"ran as {state['distributed_type']}, expected {expect_type}", numbers)
    if gpu and not accuracy >= min_accuracy:
        raise CheckFailed(f"test accuracy {accuracy:.3f} < {min_accuracy}", numbers)
    return Outcome("trained, saved, scored" + (" (checkpoints too)" if checkpoints else ""), numbers, True)


def _losses(results: dict) -> dict[int, float]:
    return {row["step"]: row["loss"] for row in results.get("log_history", []) if "loss" in row and "step" in row}


def bf16(fp32_run: Run, bf16_run: Run, fp32_dir: Path, bf16_dir: Path) -> Outcome:
    """The same kernel-attention run in fp32 and in bf16: every value finite, loss curves within 10%."""
    require_success(fp32_run, bf16_run)
    precision = probe_state(bf16_run).get("mixed_precision")
    if precision != "bf16":
        raise CheckFailed(f"the --bf16 run trained with mixed precision {precision!r}, not bf16")
    reference, low = _results(fp32_dir), _results(bf16_dir)
    curve32, curve16 = _losses(reference), _losses(low)
    steps = sorted(set(curve32) & set(curve16))
    if len(steps) < 2:
        raise CheckFailed(f"only {len(steps)} logged steps in common")
    nonfinite = [s for s in steps if not (_finite(curve32[s]) and _finite(curve16[s]))]
    gaps = [abs(curve16[s] - curve32[s]) for s in steps]
    gap = sum(gaps) / max(sum(abs(curve32[s]) for s in steps), 1e-12)
    worst = max(g / max(abs(curve32[s]), 1e-12) for g, s in zip(gaps, steps))
    numbers = (
        f"{len(steps)} logged steps; final loss fp32 {curve32[steps[-1]]:.4f}, bf16 {curve16[steps[-1]]:.4f}; "
        f"mean gap {gap:.2%} (largest {worst:.2%}); test accuracy {reference['eval'].get('accuracy', math.nan):.3f} "
        f"vs {low['eval'].get('accuracy', math.nan):.3f}"
    )
    if nonfinite:
        raise CheckFailed(f"non-finite loss at steps {nonfinite[:5]}", numbers)
    if not gap <= BF16_MAX_GAP:
        raise CheckFailed(f"bf16 loss curve {gap:.1%} from fp32 (> {BF16_MAX_GAP:.0%})", numbers)
    return Outcome(f"finite values, loss curves within {BF16_MAX_GAP:.0%}", numbers, True)


def study(run: Run, output_dir: Path) -> Outcome:
    """``reproduce_paper.py``: it ended well, stored its runs without errors and wrote the report."""
    require_success(run)
    records = [json.loads(path.read_text()) for path in sorted((output_dir / "runs").glob("*.json"))]
    errors = [record for record in records if record.get("status") == "error"]
    numbers = f"{len(records)} run{'s' * (len(records) != 1)} stored, {len(errors)} with an error"
    if not records:
        raise CheckFailed("no run stored", numbers)
    if errors:
        raise CheckFailed("a run failed: " + str(errors[0].get("error", "?"))[:200], numbers)
    if not (output_dir / "report.md").exists():
        raise CheckFailed("no report.md written", numbers)
    return Outcome("grid trained and scored; report.md written", numbers, True)
