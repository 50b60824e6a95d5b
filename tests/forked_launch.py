"""``accelerate launch --multi_gpu --num_processes N script ...`` on the CPU, as accelerate runs it, with the ranks
forked from a ``forkserver`` that already imported torch and transformers.

The launch is accelerate's own up to the point where processes start: its argument parser and checks
(``_validate_launch_command``), its environment (``prepare_multi_gpu_env``: ``ACCELERATE_*``, the port), its
translation into torchrun's arguments (``_filter_args``) and torchrun's ``config_from_args``; torch's elastic agent
then starts the ranks with their ``RANK``/``WORLD_SIZE``/``MASTER_*`` variables, as ``torchrun`` does. Only the
entry point differs: a function that runs the script as ``__main__`` in a process forked from a preloaded
``forkserver``, instead of a new interpreter that spends ~8 CPU-seconds importing torch, transformers and
accelerate. ``tests/metrics/test_distributed.py`` and the GPU check's smoke run keep the real command.
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from unittest import mock


PRELOAD = ["torch", "transformers", "datasets", "accelerate", "hf_robattr.training"]
# What the elastic agent sets in each rank (kept over the launch environment the rank function restores).
_RANK_PREFIXES = ("TORCHELASTIC_", "TORCH_NCCL_")
_RANK_NAMES = {"LOCAL_RANK", "RANK", "GROUP_RANK", "ROLE_RANK", "ROLE_NAME", "LOCAL_WORLD_SIZE", "WORLD_SIZE"}
_RANK_NAMES |= {"GROUP_WORLD_SIZE", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}


@dataclass
class Launched:
    """The outcome of a launch, shaped like ``subprocess.CompletedProcess``: every rank's output, rank by rank."""

    returncode: int
    stdout: str
    stderr: str


def free_port() -> int:
    """A TCP port that is free now (so parallel test workers do not collide on a fixed one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_rank(environment: dict[str, str], script: str, argv: list[str], cwd: str) -> None:
    """One rank: the launch's environment (a forked process inherits the forkserver's) with the agent's rank
    variables kept, torch's threads as ``OMP_NUM_THREADS`` says (torch was imported before it was set), then the
    script as ``__main__``."""
    ranks = {k: v for k, v in os.environ.items() if k in _RANK_NAMES or k.startswith(_RANK_PREFIXES)}
    os.environ.clear()
    os.environ.update({**environment, **ranks})
    os.chdir(cwd)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    sys.argv = [script, *argv]
    sys.path.insert(0, str(Path(script).parent))
    runpy.run_path(script, run_name="__main__")


def _timed_out(signum, frame):
    from torch.distributed.elastic.multiprocessing.api import SignalException

    # the agent stops its workers on a SignalException (on any other exception it would leave them running)
    raise SignalException("the launch ran past its time limit", signal.Signals(signum))


def accelerate_launch(
    script: str | Path,
    argv: list[str],
    *,
    num_processes: int = 2,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: int = 600,
) -> Launched:
    """Launch ``script argv`` on ``num_processes`` CPU ranks (gloo), as ``accelerate launch --multi_gpu
    --num_processes N --num_machines 1 --mixed_precision no --dynamo_backend no`` would; ``env`` is added to this
    process's environment for the ranks. A rank that fails, or a launch past ``timeout`` seconds, gives a non-zero
    ``returncode``."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import prepare_multi_gpu_env
    from accelerate.utils.launch import _filter_args
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    command = ["--multi_gpu", "--num_processes", str(num_processes), "--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args([*command, str(script), *argv]))
    logs = tempfile.mkdtemp(prefix="forked-launch-")
    with mock.patch.dict(os.environ, env or {}):  # torchrun's config sets OMP_NUM_THREADS when it is unset
        environment = prepare_multi_gpu_env(args)
        torch_args = ["--training_script", args.training_script, "--training_script_args", args.training_script_args]
        config, _, _ = torchrun.config_from_args(_filter_args(args, torchrun.get_args_parser(), torch_args))
        environment = {**environment, **{k: v for k, v in os.environ.items() if k == "OMP_NUM_THREADS"}}
    config.start_method = "forkserver"
    config.logs_specs = DefaultLogsSpecs(log_dir=logs, redirects=Std.ALL)
    multiprocessing.set_forkserver_preload(PRELOAD)  # no effect once this process's forkserver runs
    returncode, failure = 0, ""
    previous = signal.signal(signal.SIGALRM, _timed_out)
    signal.alarm(timeout)
    try:
        elastic_launch(config, _run_rank)(environment, str(script), list(argv), str(cwd or os.getcwd()))
    except (ChildFailedError, SignalException) as error:
        returncode, failure = 1, str(error)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    outputs = {name: sorted(Path(logs).rglob(f"{name}.log")) for name in ("stdout", "stderr")}
    stdout, stderr = ("".join(p.read_text(errors="replace") for p in outputs[name]) for name in ("stdout", "stderr"))
    return Launched(returncode, stdout, stderr + failure)


def start_ranks(function, args: tuple, nprocs: int = 2) -> None:
    """``torch.multiprocessing.spawn(function, args, nprocs)``, the processes forked from the preloaded forkserver
    (``function`` gets the rank first; a failing rank raises here, as with ``spawn``)."""
    import torch.multiprocessing

    multiprocessing.set_forkserver_preload(PRELOAD)
    torch.multiprocessing.start_processes(function, args=args, nprocs=nprocs, start_method="forkserver")
