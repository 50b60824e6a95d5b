"""Pilot for the MiniLM arm's matched fit (issue 25, item 3): the true training loss over epochs per cell.

Each run is a cell of study v3's ``minilm`` arm (``CPU``) trained through the study's own
:func:`~hf_robattr.study.run.training_arguments` and :func:`~hf_robattr.training.run_pipeline`, from the pretrained
checkpoint (softmax) or its kernel conversion (made once under ``--output_dir``), with no robustness scoring. The
arm's fit rule is replaced by a two-sided band around an unreachable target, so training runs for ``--epochs`` and
the true training loss (eval mode, on the arm's ``fit_examples`` training examples, as the study's callback measures
it) is recorded every ``--check_every`` examples. Results are appended to ``<output_dir>/pilot.jsonl``.

Example: ``nice -n 5 python benchmarks/minilm_fit_pilot.py --cells softmax:0.025:32:5 kernel:0.1:8:2``
(``attention:lr:B:epochs``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from hf_robattr.study.grid import Cell, RunSpec
from hf_robattr.study.prepare import prepare_start_points, start_key
from hf_robattr.study.run import _prepared_data, data_arguments, model_arguments, training_arguments
from hf_robattr.study.scale_cpu import CPU
from hf_robattr.training import run_pipeline


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The pilot's command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", required=True, help="attention:lr:B:epochs, one per run")
    parser.add_argument("--check_every", type=int, default=800, help="training examples between loss checks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output_dir", default="minilm_fit_pilot")
    parser.add_argument(
        "--kernel_checkpoint", default=None, help="a converted checkpoint for the kernel cells (default: convert)"
    )
    return parser.parse_args(argv)


def run_cell(args: argparse.Namespace, attention: str, lr: float, batch: int, epochs: float) -> dict:
    """Train one cell for ``epochs`` and return its loss checks ``[[examples, loss], ...]`` and timings."""
    base, _ = CPU.arm("minilm")
    # an unreachable target: the band callback checks every check_every examples and never stops early
    protocol = replace(
        base,
        fit_rule="band",
        budget_examples=None,
        min_fit_examples=0,  # the study's arm checks from the end of epoch 1 on; the pilot measures before it too
        target_loss=1e-12,
        fit_tolerance=0.1,
        fit_every_examples=args.check_every,
        snapshot_every_examples=0,
        max_epochs=epochs,
    )
    if attention == "kernel" and args.kernel_checkpoint:
        checkpoint = args.kernel_checkpoint
    else:
        points = prepare_start_points(CPU, ("minilm",), args.output_dir, attention_types=(attention,))
        checkpoint = points[start_key("minilm", attention)].checkpoint
    spec = RunSpec(Cell("minilm", attention, "sgd", lr, batch), args.seed, protocol)
    data = _prepared_data(protocol, checkpoint)
    start, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as output:
        result = run_pipeline(
            model_arguments(protocol, attention, checkpoint),
            data_arguments(protocol),
            training_arguments(spec, output),
            save_model=False,
            data=data,
        )
    training = result.training
    return {
        "attention": attention,
        "learning_rate": lr,
        "batch_size": batch,
        "epochs": epochs,
        "seed": args.seed,
        "checks": training.get("fit_checks"),
        "diverged": training.get("diverged"),
        "wall_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
    }


def main(argv: list[str] | None = None) -> None:
    """Run every ``--cells`` entry in order, appending each result as it ends."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    for entry in args.cells:
        attention, lr, batch, epochs = entry.split(":")
        record = run_cell(args, attention, float(lr), int(batch), float(epochs))
        with open(Path(args.output_dir) / "pilot.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        print(json.dumps({k: v for k, v in record.items() if k != "checks"}), flush=True)


if __name__ == "__main__":
    main()
