"""``--help`` of every recipe prints the help of every flag (argparse %-formats help strings: a bare % breaks it)."""

import pytest
from recipe_helpers import load_recipe


@pytest.mark.parametrize("name", ["train_vit", "train_bert", "convert_to_kernel", "reproduce_paper"])
def test_recipe_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_recipe(name).main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--output_dir" in out and "usage:" in out
