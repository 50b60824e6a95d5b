"""Time ``hf-robattr demo RUN_FOLDER`` from launch to the first HTTP 200 of its page (issue 16 target: under 15 s).

    python benchmarks/demo_startup.py outputs/vit [--repeats 2]

The demo loads its models before it serves the page, so the time covers loading them too.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    """A free local TCP port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def startup_seconds(folder: str, timeout: float = 120.0) -> float:
    """Seconds from starting the demo on ``folder`` to its page answering 200 (the demo is stopped afterwards)."""
    port = free_port()
    start = time.perf_counter()
    command = [sys.executable, "-m", "hf_robattr.cli", "demo", folder, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"the demo exited with status {process.returncode} before serving its page")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"the demo did not serve its page within {timeout:.0f} s")
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a run folder (e.g. the README's main job, outputs/vit)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    times = [startup_seconds(args.folder) for _ in range(args.repeats)]
    print(f"demo start-up: {', '.join(f'{t:.1f} s' for t in times)} (load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
