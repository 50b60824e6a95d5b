#!/usr/bin/env python
"""Run a recipe in this process exactly as ``python RECIPE ARGS...`` would, then print one line saying which
accelerate state (distributed type, backend, processes, device) it ran under.

    accelerate launch --config_file recipes/accelerate_fsdp.yaml benchmarks/gpu/launch_probe.py recipes/train_vit.py ...

gpu_check reads the ``GPU_CHECK_STATE {json}`` line to tell that a DDP or FSDP config really ran as DDP or FSDP, on
the GPU. Only the main process prints it.
"""

from __future__ import annotations

import json
import os
import runpy
import sys


PREFIX = "GPU_CHECK_STATE "


def describe_state() -> dict[str, object]:
    """The accelerate state the recipe ran under, read after the run (the recipe's Trainer set it up)."""
    from accelerate.state import AcceleratorState, PartialState

    # Read the shared state as the run left it: constructing a state object here could set up a new one.
    partial = PartialState._shared_state
    accelerator = AcceleratorState._shared_state
    distributed_type = accelerator.get("distributed_type", partial.get("distributed_type"))
    device = partial.get("device")
    return {
        "distributed_type": getattr(distributed_type, "value", str(distributed_type)),
        "backend": partial.get("backend"),
        "num_processes": partial.get("num_processes"),
        "device": str(device),
        "mixed_precision": str(accelerator.get("_mixed_precision", "")),
        "accelerate_use_fsdp": os.environ.get("ACCELERATE_USE_FSDP", "false"),
    }


def main() -> None:
    """Run ``sys.argv[1]`` as ``__main__`` with the remaining arguments, then print the state line."""
    if len(sys.argv) < 2:
        raise SystemExit("usage: launch_probe.py RECIPE [ARGS...]")
    script = os.path.abspath(sys.argv[1])
    sys.argv = [script, *sys.argv[2:]]
    sys.path[0] = os.path.dirname(script)  # as `python RECIPE` sets it (not this folder)
    runpy.run_path(script, run_name="__main__")
    if int(os.environ.get("RANK", "0")) == 0:
        print(PREFIX + json.dumps(describe_state()), flush=True)


if __name__ == "__main__":
    main()
