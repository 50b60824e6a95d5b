"""Saved RobAttr folders load with ``trust_remote_code=True`` in a process where hf_robattr cannot be imported."""

import ast
import json
import os
import subprocess
import sys
import textwrap

import torch

from hf_robattr.models import (
    RobAttrBertConfig,
    RobAttrBertForSequenceClassification,
    RobAttrViTConfig,
    RobAttrViTForImageClassification,
)


# Runs in the subprocess: blocks hf_robattr before anything is imported, loads each folder through the Auto class
# named in the case, and writes its logits.
_CHILD = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "hf_robattr" or name.startswith("hf_robattr."):
                raise ModuleNotFoundError(f"blocked: {name}")
            return None

    sys.meta_path.insert(0, _Block())
    import torch
    import transformers

    try:
        import hf_robattr  # noqa: F401
        sys.exit("hf_robattr was importable")
    except ModuleNotFoundError:
        pass

    cases = json.load(open(sys.argv[1]))
    results = {}
    for name, case in cases.items():
        auto = getattr(transformers, case["auto_class"])
        model = auto.from_pretrained(case["path"], trust_remote_code=True).eval()
        assert type(model).__name__ == case["class_name"], type(model)
        assert "hf_robattr" not in type(model).__module__, type(model).__module__
        inputs = torch.load(case["inputs"])
        with torch.no_grad():
            results[name] = model(**inputs).logits.tolist()
    assert not any(m == "hf_robattr" or m.startswith("hf_robattr.") for m in sys.modules)
    json.dump(results, open(sys.argv[2], "w"))
    """
)


# Sibling files every saved folder needs besides the family's configuration and modeling files.
_SHARED_CODE = {
    "configuration_robattr_common.py",
    "modeling_robattr_common.py",
    "kernel_attention.py",
    "feature_maps.py",
}
_ALLOWED_IMPORTS = set(sys.stdlib_module_names) | {"torch", "transformers", "huggingface_hub"}


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_saved_folders_load_as_remote_code_without_hf_robattr(
    tmp_path, vit_kwargs, bert_kwargs, pixel_values, text_batch
):
    torch.manual_seed(0)
    vit = RobAttrViTForImageClassification(
        RobAttrViTConfig(attention_type="kernel", kernel_feature_map="hedgehog", **vit_kwargs)
    ).eval()
    with torch.no_grad():
        vit.vit.layers[0].attention.feature_map.query_weight.add_(0.5)
    legacy_config = RobAttrViTConfig(
        attention_type="kernel", kernel_feature_map="hedgehog", kernel_shared_qk_map=True, **vit_kwargs
    )
    vit_legacy = RobAttrViTForImageClassification(legacy_config).eval()
    with torch.no_grad():
        vit_legacy.vit.layers[1].attention.feature_map.weight.add_(0.5)
    vit_softmax = RobAttrViTForImageClassification(RobAttrViTConfig(**vit_kwargs)).eval()
    bert = RobAttrBertForSequenceClassification(
        RobAttrBertConfig(attention_type="kernel", kernel_feature_map="favor", **bert_kwargs)
    ).eval()
    torch.save({"pixel_values": pixel_values}, tmp_path / "images.pt")
    torch.save(dict(text_batch), tmp_path / "text.pt")

    cases, expected = {}, {}
    for name, model, auto_class, inputs in [
        ("vit_kernel", vit, "AutoModelForImageClassification", "images.pt"),
        ("vit_kernel_legacy", vit_legacy, "AutoModelForImageClassification", "images.pt"),
        ("vit_softmax", vit_softmax, "AutoModelForImageClassification", "images.pt"),
        ("bert_kernel", bert, "AutoModelForSequenceClassification", "text.pt"),
    ]:
        folder = tmp_path / name
        model.save_pretrained(folder)
        auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
        assert auto_class in auto_map and "AutoConfig" in auto_map and "AutoModel" in auto_map
        family = "vit" if "vit" in name else "bert"
        assert {f.name for f in folder.glob("*.py")} == _SHARED_CODE | {
            f"configuration_robattr_{family}.py",
            f"modeling_robattr_{family}.py",
        }
        for code_file in folder.glob("*.py"):
            assert _imports(code_file) <= _ALLOWED_IMPORTS, code_file
        if name == "vit_kernel_legacy":  # a Hedgehog folder saved before kernel_shared_qk_map existed
            config = json.loads((folder / "config.json").read_text())
            del config["kernel_shared_qk_map"]
            (folder / "config.json").write_text(json.dumps(config))
        cases[name] = {
            "path": str(folder),
            "auto_class": auto_class,
            "class_name": type(model).__name__,
            "inputs": str(tmp_path / inputs),
        }
        with torch.no_grad():
            expected[name] = model(**torch.load(tmp_path / inputs)).logits
    (tmp_path / "cases.json").write_text(json.dumps(cases))

    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "cases.json"), str(tmp_path / "out.json")],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads((tmp_path / "out.json").read_text())
    for name, logits in expected.items():
        assert (torch.tensor(got[name]) - logits).abs().max() <= 1e-5, name
