"""benchmarks/demo_startup.py: a folder the demo refuses makes the timing fail with the demo's exit status."""

import pytest
from script_modules import load_script


def test_a_folder_without_a_model_fails_instead_of_timing(tmp_path):
    bench = load_script("benchmarks/demo_startup.py", "demo_startup")
    with pytest.raises(RuntimeError, match="exited with status 2 before serving its page"):
        bench.startup_seconds(str(tmp_path), timeout=300)  # a guard only: a busy machine is slow to start Python
