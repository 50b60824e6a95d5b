"""``benchmarks/robustness_throughput.py``'s options: ``--samples`` (the Quantus comparison's sample count, which
the GPU check's smoke run lowers to 10) is passed to Quantus and refused below 1 by name. The script's tables are
checked by the smoke run (``test_gpu_check.py``)."""

import sys

import pytest
from script_modules import load_script


@pytest.fixture(scope="module")
def throughput():
    return load_script("benchmarks/robustness_throughput.py", "robustness_throughput")


@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_sample_count_below_one_is_refused_by_name(throughput, monkeypatch, capsys, value):
    monkeypatch.setattr(sys, "argv", ["robustness_throughput.py", "--samples", value])
    with pytest.raises(SystemExit) as stop:
        throughput.main()
    assert stop.value.code == 2
    assert f"--samples must be at least 1, got {value}" in capsys.readouterr().err


def test_quantus_gets_the_sample_count(throughput, monkeypatch):
    """The Quantus metrics are built with ``nr_samples`` = ``--samples``, the count of the noise replayed to them."""
    built = {}

    class Recording:
        def __init__(self, nr_samples, **kwargs):
            built[type(self).__name__] = nr_samples

        def __call__(self, **kwargs):
            return [0.0, 0.0]

    for name in ("MaxSensitivity", "LocalLipschitzEstimate", "RelativeInputStability"):
        monkeypatch.setattr(throughput.quantus, name, type(name, (Recording,), {}))
    model, x, targets = throughput.build(batch=2, image_size=8)
    table = throughput.quantus_table(model, x, targets, repeats=1, chunk=64, samples=3)
    assert built == dict.fromkeys(("MaxSensitivity", "LocalLipschitzEstimate", "RelativeInputStability"), 3)
    assert "Quantus metric (3 samples, batch 2)" in table[0]
