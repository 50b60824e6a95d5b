"""The generated Space runs: its app.py starts the explorer against a local run folder (no network) and serves
the /explain API. Also reports how long the start took (not asserted: no timed tests)."""

import os
import subprocess
import sys
import time
import urllib.request

import pytest


gradio_client = pytest.importorskip("gradio_client")

from demo_helpers import free_port  # noqa: E402

from hf_robattr.hub.space import MODEL_ENV, write_space  # noqa: E402


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 240.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            pytest.fail(f"app.py exited with {process.returncode}: {process.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"app.py did not answer on {url} within {timeout} s")


@pytest.mark.slow  # a fresh Python process imports torch, transformers and gradio
def test_space_app_starts_against_a_local_run(vit_run, tmp_path):
    space = write_space(tmp_path / "space", "org/not-on-the-hub")
    port = free_port()
    env = dict(
        os.environ,
        **{MODEL_ENV: str(vit_run)},
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
    )
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=space, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for(url, process)
        print(f"Space app.py answered after {time.monotonic() - started:.1f} s (python start, imports, model load)")
        client = gradio_client.Client(url, verbose=False)
        endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        assert "/explain" in endpoints
        page = urllib.request.urlopen(url, timeout=30).read().decode()
        assert "attribution explorer" in page and vit_run.name in page
        client.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
