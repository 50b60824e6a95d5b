"""Run by test_distributed.py: score a tiny model with the metric, in one process or under a 2-process launch.

Usage: python distributed_script.py OUT_DIR  (each rank writes OUT_DIR/rank{N}.json)
"""

import json
import sys
from pathlib import Path

import evaluate
import torch
from accelerate import Accelerator
from metric_cases import FAST_OPTIONS, TinyImageClassifier  # beside this script: on sys.path when it runs

import hf_robattr  # noqa: F401  (makes the metric loadable by name)


def main() -> None:
    out_dir = Path(sys.argv[1])
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = accelerator.prepare(TinyImageClassifier().eval())  # DDP-wrapped under the launch
    pixel_values = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    metric = evaluate.load("attribution_robustness")
    result = metric.compute(model=model, inputs=pixel_values, **FAST_OPTIONS)
    try:  # an error must reach every rank instead of leaving them waiting
        metric.compute(model=model, inputs=pixel_values, epsilon=-1.0, progress=False)
        error = None
    except (ValueError, RuntimeError) as caught:
        error = f"{type(caught).__name__}: {caught}"
    (out_dir / f"rank{accelerator.process_index}.json").write_text(
        json.dumps({"world_size": accelerator.num_processes, "result": result, "error": error})
    )
    accelerator.wait_for_everyone()
    accelerator.end_training()  # destroys the process group: gloo aborts at exit otherwise (now and then)


if __name__ == "__main__":
    main()
