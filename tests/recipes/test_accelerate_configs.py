"""The ``accelerate launch`` configs in ``recipes/`` read as their comments say, by accelerate's own launch parser and
checks: DDP across GPUs, DDP across CPU processes, FSDP2. Their runs are tested elsewhere (the GPU check runs the DDP
and FSDP configs on a GPU; on a CPU its smoke run launches the FSDP config, which takes the same MULTI_CPU path as
the DDP one)."""

import re
from pathlib import Path

import pytest
from accelerate.commands.launch import _validate_launch_command, launch_command_parser


RECIPES = Path(__file__).resolve().parents[2] / "recipes"
# config -> what `accelerate launch --config_file CONFIG` turns on: (multi_gpu, use_fsdp)
CONFIGS = {
    "accelerate_ddp.yaml": (True, False),
    "accelerate_ddp_cpu.yaml": (True, False),
    "accelerate_fsdp.yaml": (False, True),
}


def _launch_args(config: str, *extra: str):
    argv = ["--config_file", str(RECIPES / config), *extra, str(RECIPES / "train_vit.py"), "--output_dir", "x"]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    return args


def test_every_config_in_recipes_is_known_here():
    assert sorted(path.name for path in RECIPES.glob("accelerate_*.yaml")) == sorted(CONFIGS)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_accelerate_reads_each_config_as_its_comment_says(config):
    multi_gpu, use_fsdp = CONFIGS[config]
    args = _launch_args(config)
    assert (bool(args.multi_gpu), bool(args.use_fsdp)) == (multi_gpu, use_fsdp)
    assert args.num_processes == 2 and args.num_machines == 1 and args.mixed_precision == "no"
    assert _launch_args(config, "--num_processes", "1").num_processes == 1  # the GPU check's one-process launch
    if use_fsdp:
        assert args.fsdp_version == 2 and args.fsdp_state_dict_type == "FULL_STATE_DICT"  # a normal safetensors save


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_the_commands_in_each_config_name_files_that_exist(config):
    text = (RECIPES / config).read_text()
    commands = re.findall(r"accelerate launch .*?(recipes/\S+\.py)", text)
    assert commands, f"{config} shows no command"
    for recipe in commands:
        assert (RECIPES.parent / recipe).is_file(), recipe
    for named in re.findall(r"--config_file (\S+)", text):
        assert named == f"recipes/{config}"
