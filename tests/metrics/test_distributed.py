"""The 2-process CPU launch (accelerate) gives the same numbers as one process: every rank scores its shard and
every rank gets the whole result."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from forked_launch import free_port
from metric_cases import FAST_OPTIONS, TinyImageClassifier

import hf_robattr


SCRIPT = Path(__file__).with_name("distributed_script.py")


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    env.pop("HF_HUB_OFFLINE", None)  # the load-by-name hook needs no network either way
    return env


def _one_process_result() -> dict:
    """What ``distributed_script.py`` computes in one process, computed here (the same model, inputs and options;
    one thread, as the launch's ranks): a fresh interpreter for it cost ~8 CPU-s of imports."""
    torch.manual_seed(0)
    model = TinyImageClassifier().eval()
    pixel_values = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    return hf_robattr.AttributionRobustness().compute(model=model, inputs=pixel_values, **FAST_OPTIONS)


@pytest.mark.slow
def test_two_process_launch_matches_one_process(tmp_path):
    launched = tmp_path / "launched"
    launched.mkdir()
    env = _env(tmp_path)
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), str(SCRIPT), str(launched),
    ]  # fmt: skip
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]

    expected = json.loads(json.dumps({"result": _one_process_result()}))  # as the ranks wrote theirs
    for rank in (0, 1):
        got = json.loads((launched / f"rank{rank}.json").read_text())
        assert got["world_size"] == 2
        same = json.dumps(got["result"], sort_keys=True) == json.dumps(expected["result"], sort_keys=True)
        assert same, f"rank {rank} differs from the single-process run"
        assert "epsilon" in got["error"], got["error"]
