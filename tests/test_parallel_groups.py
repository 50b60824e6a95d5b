"""The suite's scheduling: under ``-n 2 --dist loadgroup`` every test module runs whole on one worker, so its
module fixtures are built once (with pytest 9 and xdist 3.8 the groups were silently ignored, and the study's
ci-scale fixture was built twice)."""

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
MODULES = ["tests/robustness/test_similarity.py", "tests/robustness/test_config.py"]


def test_each_module_runs_on_one_worker():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", "-v", *MODULES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    workers = defaultdict(set)
    for worker, module in re.findall(r"\[(gw\d+)\].* PASSED (tests/[^:]+)::", result.stdout):
        workers[module].add(worker)
    assert set(workers) == set(MODULES), result.stdout[-3000:]
    assert all(len(names) == 1 for names in workers.values()), dict(workers)
