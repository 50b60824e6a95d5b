"""No file a run writes holds the Hub token, checkpoints included, and no pickle of the arguments is written."""

import json
from pathlib import Path

from recipe_helpers import QUICK


SECRET = "hf_SECRETtokenNeverWritten0123"


def test_run_folder_holds_no_token_and_no_args_pickle(recipes, tmp_path):
    argv = [
        "--output_dir",
        str(tmp_path),
        *QUICK,
        "--save_strategy",
        "steps",
        "--save_steps",
        "2",
        "--keep_checkpoints",
    ]
    recipes["train_vit"].main([*argv, "--hub_token", SECRET])
    files = [path for path in Path(tmp_path).rglob("*") if path.is_file()]
    assert any(path.parent.name.startswith("checkpoint-") for path in files), "the run wrote no checkpoint"
    leaking = [str(path) for path in files if SECRET.encode() in path.read_bytes()]
    assert leaking == []
    assert not list(Path(tmp_path).rglob("training_args.bin"))
    for saved in [tmp_path / "training_args.json", *Path(tmp_path).glob("checkpoint-*/training_args.json")]:
        arguments = json.loads(saved.read_text())
        assert arguments["hub_token"] == "<HUB_TOKEN>" and arguments["output_dir"] == str(tmp_path)
