"""Smoke test of ``benchmarks/attention_scaling.py`` at tiny sizes, so that the script does not rot."""

import argparse
import json
import sys
from pathlib import Path

import pytest
from script_modules import load_script


SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "attention_scaling.py"


@pytest.fixture(scope="module")
def benchmark():
    """The benchmark script, imported as a module."""
    return load_script(SCRIPT, "attention_scaling")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak memory reads /proc/self")
def test_benchmark_runs_and_reports(benchmark, capsys):
    argv = ["--lengths", "32", "64", "--model-tokens", "17", "--min-seconds", "0", "--threads", "1"]
    assert benchmark.main([*argv, "--memory-only"]) == 0
    peaks = json.loads(capsys.readouterr().out.strip())
    assert set(peaks) == {"sdpa-32", "kernel-32", "sdpa-64", "kernel-64", "vit-softmax", "vit-kernel"}
    assert all(peak >= 0 for peak in peaks.values())

    args = argparse.Namespace(
        lengths=[32, 64], heads=4, head_dim=32, feature_map="elu", model_tokens=17, clock="cpu", device="cpu"
    )
    seconds = {
        name: benchmark.fastest_seconds(make(), 0.0, min_repeats=1)
        for name, make in benchmark.benchmark_steps(argparse.Namespace(**vars(args), min_seconds=0.0)).items()
    }
    benchmark.report(args, seconds, peaks)
    table = capsys.readouterr().out
    assert "| N | SDPA (ms) | kernel (ms) |" in table and "| 64 |" in table and "whole-model ratio" in table
    assert benchmark.loglog_slope([1, 2, 4], [3.0, 6.0, 12.0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("device", "message"),
    [("tpu", "--device must be cpu or cuda"), ("cuda", "no CUDA device")],
)
def test_bad_device_is_refused_by_name(benchmark, capsys, device, message):
    if device == "cuda" and __import__("torch").cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(["--device", device, "--lengths", "32"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
