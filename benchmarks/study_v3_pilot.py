"""Pilot for study v3 (issue 25, items 1-2): does ``marked_objects`` make a tiny ViT's attention mean something,
and does plain SGD's lr/B move the curvature the trained model ends at?

Each run goes through the study's own machinery: an :class:`~hf_robattr.study.ArmProtocol` of the ViT arm on
``marked_objects``, a :class:`~hf_robattr.study.grid.RunSpec` per cell and seed, the study's
:func:`~hf_robattr.study.run.training_arguments` and :func:`~hf_robattr.training.run_pipeline` (the model trained
from scratch, or from ``--init_checkpoint``), then on the first ``--eval_pool`` test examples the study's
preconditions (last-layer [CLS]-row entropy / log N, raw-attention evidence recall and its chance rate), the
pipeline's final diagnostics (Hessian trace with its standard error, top eigenvalue), and with ``--score`` the
study's robustness scorer. Every phase is timed in CPU seconds of this process.

Phases:

- ``task``: the untrained model's preconditions and one training run per attention type and ``--optimizer`` at
  the first learning rate and batch size (does the task need and get attention?);
- ``warm``: the shared early checkpoint per attention type (AdamW until ``--warm_target_loss``), for
  ``--init_checkpoint WARM_DIR/{attention}``;
- ``grid``: plain SGD (momentum 0) over ``--learning_rates`` x ``--batch_sizes`` x ``--seeds`` x attention types,
  for a fixed budget of ``--budget_examples`` training examples, or until ``--target_loss`` (matched fit, at most
  ``--max_epochs``).

Run one training at a time, e.g. ``nice -n 5 python benchmarks/study_v3_pilot.py --phase grid --output
pilot.json``; ``--quick`` is a smoke run of a few seconds per run whose numbers mean nothing. Results are appended
to the JSON as each run ends, so an interrupted pilot keeps what it finished (and ``--resume`` skips those runs).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from hf_robattr.attribution import frozen_eval, prepare_inputs
from hf_robattr.attribution.attention import forward_with_attentions
from hf_robattr.data import embedded, make_marked_objects, model_inputs
from hf_robattr.study.grid import Cell, RunSpec
from hf_robattr.study.measure import preconditions, robustness
from hf_robattr.study.pool import SPLIT_SEED, evaluation_pool
from hf_robattr.study.protocol import ArmProtocol
from hf_robattr.study.run import data_arguments, model_arguments, training_arguments
from hf_robattr.training import load_processor, prepare_data, run_pipeline
from hf_robattr.training.diagnostics import diagnose, diagnostics_batch
from hf_robattr.training.modeling import build_classifier


DATASET = "marked_objects"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The pilot's command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=("task", "warm", "grid"), default="grid")
    parser.add_argument("--output", default="study_v3_pilot.json", help="JSON file of per-run results (appended).")
    parser.add_argument("--resume", action="store_true", help="Skip runs whose key is already in --output.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: tiny data and budgets, 1 cell.")
    parser.add_argument("--attention_types", nargs="+", default=["softmax", "kernel"])
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "adamw"), help="Optimizer of --phase task.")
    parser.add_argument("--learning_rates", nargs="+", type=float, default=[0.025, 0.1, 0.4])
    parser.add_argument("--batch_sizes", nargs="+", type=int, default=[8, 32, 128])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--diagonal_only", action="store_true", help="Grid: only cells whose lr/B equals another's.")
    parser.add_argument(
        "--budget_examples", type=int, default=64000, help="Fixed budget (ignored with --target_loss)."
    )
    parser.add_argument("--target_loss", type=float, default=None, help="Matched fit instead of a fixed budget.")
    parser.add_argument("--max_epochs", type=float, default=40.0, help="Cap of a matched-fit run.")
    parser.add_argument("--max_grad_norm", type=float, default=1.0, help="Gradient clipping (0: off).")
    parser.add_argument(
        "--init_checkpoint",
        default=None,
        help="Train every run from this saved model folder ('{attention}' is replaced by the attention type).",
    )
    parser.add_argument(
        "--warm_dir", default="v3-warm", help="--phase warm: the checkpoints go to WARM_DIR/{attention}."
    )
    parser.add_argument("--warm_target_loss", type=float, default=1.2, help="--phase warm: stop at this loss.")
    parser.add_argument("--warm_learning_rate", type=float, default=1e-3, help="--phase warm: AdamW's lr (B 32).")
    parser.add_argument("--dataset_size", type=int, default=4000)
    parser.add_argument("--marker", default="frame")
    parser.add_argument("--distractors", default="random", help="marked_objects' distractors option.")
    parser.add_argument("--num_objects", type=int, default=4)
    parser.add_argument("--object_size", type=int, default=8)
    parser.add_argument("--noise", type=float, default=0.08)
    parser.add_argument("--eval_pool", type=int, default=96)
    parser.add_argument("--initializer_range", type=float, default=0.02, help="Std of the initial weights.")
    parser.add_argument("--num_hidden_layers", type=int, default=4, help="ViT depth (ArmProtocol's default: 4).")
    parser.add_argument("--hessian_examples", type=int, default=256)
    parser.add_argument("--hessian_probes", type=int, default=10)
    parser.add_argument("--hessian_max_probes", type=int, default=40)
    parser.add_argument("--power_iterations", type=int, default=20)
    parser.add_argument("--score", action="store_true", help="Also score robustness with the study's scorer.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared).")
    parser.add_argument("--table", action="store_true", help="Print --output's runs as a Markdown table; train none.")
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset_size, args.budget_examples, args.eval_pool = 200, 320, 16
        args.hessian_examples, args.hessian_probes, args.hessian_max_probes, args.power_iterations = 16, 2, 4, 2
        args.learning_rates, args.batch_sizes, args.seeds = args.learning_rates[:1], args.batch_sizes[:1], [0]
        args.max_epochs = min(args.max_epochs, 2.0)
    return args


def register_dataset(args: argparse.Namespace) -> None:
    """Point ``marked_objects`` at the requested options in this process (the pipeline passes only its size)."""
    options = {"marker": args.marker, "num_objects": args.num_objects, "object_size": args.object_size,
               "distractors": args.distractors}  # fmt: skip
    embedded.EMBEDDED_DATASETS[DATASET] = functools.partial(make_marked_objects, **options, noise=args.noise)
    embedded._cached_embedded_dataset.cache_clear()


def build_protocol(args: argparse.Namespace) -> ArmProtocol:
    """The ViT arm's protocol on ``marked_objects`` (model sizes: :class:`ArmProtocol`'s defaults but the depth and
    initializer range, which are options)."""
    quick = {"attack_steps": 2, "ig_steps": 2, "ig_examples": 4, "sensitivity_samples": 2} if args.quick else {}
    return ArmProtocol(
        arm="vit",
        model="vit",
        dataset=DATASET,
        dataset_size=args.dataset_size,
        target_loss=args.target_loss if args.target_loss is not None else 0.02,
        max_epochs=args.max_epochs,
        eval_pool=args.eval_pool,
        initializer_range=args.initializer_range,
        num_hidden_layers=args.num_hidden_layers,
        hessian_examples=args.hessian_examples,
        hessian_probes=args.hessian_probes,
        hessian_max_probes=args.hessian_max_probes,
        power_iterations=args.power_iterations,
        fit_examples=min(1024, args.dataset_size // 2),
        **quick,
    )


@torch.no_grad()
def layer_attention(model: torch.nn.Module, pool: Any, patch_size: int) -> dict[str, list[float]]:
    """Per layer, the study's preconditions on the [CLS] row: entropy / log N (head- and example-averaged) and raw
    attention's evidence recall (top-|evidence| patches of the head-averaged row that lie in the mask)."""
    with frozen_eval(model):
        prepared = prepare_inputs(model, pool.inputs)
        _, attentions = forward_with_attentions(model, prepared, prepared.features)
    evidence = F.avg_pool2d(pool.evidence.float().unsqueeze(1), patch_size).flatten(1) >= 0.5
    entropies, recalls = [], []
    for layer in attentions:
        row = layer[:, :, 0, :].float()
        row = row / row.sum(dim=-1, keepdim=True)
        entropy = -(row * row.clamp_min(1e-30).log()).sum(dim=-1)
        entropies.append(float((entropy / math.log(row.shape[-1])).mean()))
        patches = row.mean(dim=1)[:, 1:]
        hits = [float(evidence[i, patches[i].topk(int(evidence[i].sum())).indices].float().mean())
                for i in range(len(patches)) if evidence[i].any()]  # fmt: skip
        recalls.append(sum(hits) / len(hits))
    return {"layer_cls_entropy_ratio": entropies, "layer_evidence_recall": recalls}


@torch.no_grad()
def train_loss(model: torch.nn.Module, data: Any, count: int) -> float:
    """Eval-mode cross-entropy on the first ``count`` training examples (what matched fit measures)."""
    rows = [data.train[i] for i in range(min(count, len(data.train)))]
    batch = model_inputs(data.collator(rows), labels=True)
    with frozen_eval(model):
        logits = torch.cat([model(pixel_values=p).logits for p in batch["pixel_values"].split(256)])
    return float(F.cross_entropy(logits, batch["labels"]))


def measure(
    model: torch.nn.Module, protocol: ArmProtocol, seed: int, score: bool, processor: Any = None
) -> dict[str, Any]:
    """Preconditions (last layer and every layer) on the test pool, and optionally the study's robustness scores
    summarised as pool means (main radius)."""
    pool = evaluation_pool(protocol, processor)
    with frozen_eval(model):
        predicted = torch.cat([model(**{k: v[i : i + 128] for k, v in pool.inputs.items()}).logits.argmax(-1)
                               for i in range(0, len(pool), 128)])  # fmt: skip
    out: dict[str, Any] = {
        "pool_accuracy": float((predicted == pool.labels).float().mean()),
        "preconditions": preconditions(model, pool, protocol),
        **layer_attention(model, pool, protocol.patch_size),
    }
    if score:
        start = time.process_time()
        values = robustness(model, pool, protocol, seed)
        out["cpu_seconds_score"] = time.process_time() - start
        out["robustness_means"] = {k: _nanmean(v) for k, v in values.items() if "|0.05|" in k}
    return out


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def untrained_record(args: argparse.Namespace, protocol: ArmProtocol, attention: str, seed: int) -> dict[str, Any]:
    """The preconditions of a freshly initialised model (what the task must *not* pass)."""
    torch.manual_seed(seed)
    margs = model_arguments(protocol, attention, None)
    model = build_classifier(margs, label_names=["0", "1", "2", "3"], processor=None)
    return {"key": f"untrained-{attention}-s{seed}", "kind": "untrained", "attention_type": attention, "seed": seed,
            **measure(model, protocol, seed, score=False)}  # fmt: skip


def train_record(args: argparse.Namespace, protocol: ArmProtocol, data: Any, cell: Cell, seed: int) -> dict[str, Any]:
    """Train one cell with one seed through the pipeline and measure it."""
    spec = RunSpec(cell, seed, protocol, curvature=False)  # the diagnostics are timed apart, below
    overrides: dict[str, Any] = {"max_grad_norm": args.max_grad_norm, "logging_steps": 20}
    if args.target_loss is None:
        overrides |= {"target_train_loss": None, "max_steps": max(1, args.budget_examples // cell.batch_size)}
    margs = model_arguments(protocol, cell.attention_type, checkpoint(args, cell.attention_type))
    start = time.process_time()
    with tempfile.TemporaryDirectory(prefix="v3-pilot-") as folder:
        targs = training_arguments(spec, folder, **overrides)
        result = run_pipeline(margs, data_arguments(protocol), targs, save_model=False, data=data)
        cpu_train = time.process_time() - start
        start = time.process_time()
        batch = diagnostics_batch(data.train, data.collator, targs.diagnostics_batch_size, targs.device)
        diagnostics = diagnose(result.model, batch, targs)  # the pipeline's --diagnostics_at_end, timed apart
        cpu_curvature = time.process_time() - start
    training = result.training
    history = result.trainer.state.log_history
    curve = [[row["step"], row["loss"]] for row in history if "loss" in row]
    record = {
        "key": f"{cell.slug}-s{seed}",
        "kind": "trained",
        "attention_type": cell.attention_type,
        "optimizer": cell.optimizer,
        "learning_rate": cell.learning_rate,
        "batch_size": cell.batch_size,
        "log2_lr_over_b": cell.log2_strength,
        "seed": seed,
        "steps": training.get("global_step"),
        "examples_seen": training.get("num_train_examples_seen"),
        "target_reached": training.get("target_reached"),
        "diverged": training.get("diverged"),
        "train_loss": train_loss(result.model, data, protocol.fit_examples),
        "test_accuracy": result.results.get("eval", {}).get("accuracy"),
        "hessian_trace": diagnostics.get("hessian_trace"),
        "hessian_top_eigenvalue": diagnostics.get("hessian_top_eigenvalue"),
        "wall_seconds_train": training.get("train_runtime_s"),
        "cpu_seconds_train": cpu_train,  # training + the pipeline's test-split evaluation
        "cpu_seconds_curvature": cpu_curvature,
        "attention_entropy_per_layer": (diagnostics.get("attention_entropy") or {}).get("per_layer"),
        "loss_curve": curve[:: max(1, len(curve) // 60)],
    }
    start = time.process_time()
    processor = result.data.processor if args.init_checkpoint else None
    record.update(measure(result.model, protocol, seed, args.score, processor))
    record["cpu_seconds_measure"] = time.process_time() - start
    return record


def checkpoint(args: argparse.Namespace, attention: str) -> str | None:
    """The folder a run of ``attention`` starts from (``None``: from scratch)."""
    return None if args.init_checkpoint is None else args.init_checkpoint.format(attention=attention)


def warm_record(args: argparse.Namespace, protocol: ArmProtocol, data: Any, attention: str) -> dict[str, Any]:
    """Train the shared early checkpoint of ``attention``: AdamW (B 32) from scratch until the eval-mode loss on the
    fit subset is <= ``--warm_target_loss`` (checked every 256 examples), saved to ``--warm_dir/{attention}``."""
    cell = Cell("vit", attention, "adamw", args.warm_learning_rate, 32)
    folder = str(Path(args.warm_dir) / attention)
    overrides = {"target_train_loss": args.warm_target_loss, "target_check_every_examples": 256,
                 "diagnostics_at_end": False, "overwrite_output_dir": True, "save_strategy": "no"}  # fmt: skip
    targs = training_arguments(RunSpec(cell, 0, protocol), folder, **overrides)
    start = time.process_time()
    result = run_pipeline(model_arguments(protocol, attention, None), data_arguments(protocol), targs, data=data)
    return {
        "key": f"warm-{attention}-s0",
        "kind": "warm",
        "attention_type": attention,
        "folder": folder,
        "steps": result.training.get("global_step"),
        "examples_seen": result.training.get("num_train_examples_seen"),
        "train_loss": result.training.get("train_loss_at_stop"),
        "cpu_seconds_train": time.process_time() - start,
        **measure(result.model, protocol, 0, False),
    }


def cells(args: argparse.Namespace) -> list[Cell]:
    """The cells of the phase (``task``: one cell per attention type)."""
    if args.phase == "task":
        lr, batch = args.learning_rates[0], args.batch_sizes[0]
        return [Cell("vit", a, args.optimizer, lr, batch) for a in args.attention_types]
    out = [Cell("vit", a, "sgd", lr, b) for a in args.attention_types for lr in args.learning_rates
           for b in args.batch_sizes]  # fmt: skip
    if args.diagonal_only:
        strengths = [c.log2_strength for c in out]
        out = [c for c in out if strengths.count(c.log2_strength) > len(args.attention_types)]
    return out


def _estimate(value: dict[str, float] | None) -> str:
    return "" if not value else f"{value['value']:.3g} ± {value['stderr']:.2g}"


def table(records: list[dict[str, Any]]) -> str:
    """One Markdown row per run: cell, fit, accuracy, preconditions, curvature and CPU seconds."""
    lines = [
        "| run | log2(lr/B) | steps | train loss | test acc | H/log N (last; min layer) | recall (last; max layer)"
        " / chance | Hessian trace ± se | top eig | CPU s train / curv / measure |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        pre, fmt = r["preconditions"], (lambda v: "" if v is None else f"{v:.3g}")
        entropy = f"{pre['cls_entropy_ratio']:.3f}; {min(r['layer_cls_entropy_ratio']):.3f}"
        recall = f"{pre['evidence_recall']:.3f}; {max(r['layer_evidence_recall']):.3f} / {pre['evidence_chance']:.3f}"
        seconds = " / ".join(
            fmt(r.get(k)) for k in ("cpu_seconds_train", "cpu_seconds_curvature", "cpu_seconds_measure")
        )
        lines.append(
            f"| {r['key']} | {fmt(r.get('log2_lr_over_b'))} | {r.get('steps') or ''} | {fmt(r.get('train_loss'))} | "
            f"{fmt(r.get('test_accuracy') or r.get('pool_accuracy'))} | {entropy} | {recall} | "
            f"{_estimate(r.get('hessian_trace'))} | {_estimate(r.get('hessian_top_eigenvalue'))} | {seconds} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the phase and append one JSON record per run to ``--output`` (or, with ``--table``, print it)."""
    args = parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.output).read_text())["runs"]))
        return
    torch.set_num_threads(args.threads)
    register_dataset(args)
    protocol = build_protocol(args)
    path = Path(args.output)
    records = json.loads(path.read_text())["runs"] if args.resume and path.exists() else []
    done = {r["key"] for r in records}
    header = {"args": vars(args), "protocol": asdict(protocol), "torch_threads": torch.get_num_threads()}
    margs = model_arguments(protocol, "softmax", checkpoint(args, "softmax"))
    data = prepare_data(margs, data_arguments(protocol), load_processor(margs), seed=SPLIT_SEED)
    todo: list[tuple[str, Any]] = []
    if args.phase == "task":
        todo += [("untrained", (a, s)) for a in args.attention_types for s in args.seeds]
    if args.phase == "warm":
        todo += [("warm", (a, 0)) for a in args.attention_types]
    else:
        todo += [("trained", (c, s)) for c in cells(args) for s in args.seeds]
    for kind, (what, seed) in todo:
        key = f"{kind}-{what}-s{seed}" if kind in ("untrained", "warm") else f"{what.slug}-s{seed}"
        if key in done:
            continue
        wall = time.perf_counter()
        if kind == "untrained":
            record = untrained_record(args, protocol, what, seed)
        elif kind == "warm":
            record = warm_record(args, protocol, data, what)
        else:
            record = train_record(args, protocol, data, what, seed)
        record["wall_seconds"] = time.perf_counter() - wall
        records.append(record)
        path.write_text(json.dumps({**header, "runs": records}, indent=1, default=str))
        summary = {k: record.get(k) for k in ("train_loss", "test_accuracy", "pool_accuracy", "wall_seconds")}
        trace = record.get("hessian_trace") or {}
        print(key, summary, record["preconditions"], "trace", trace.get("value"), trace.get("stderr"), flush=True)


if __name__ == "__main__":
    main()
