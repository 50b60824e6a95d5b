"""The run folder with its card is a valid Hub model repo."""

import filecmp
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results
from tiny_models import tiny_text_bert

import hf_robattr
from hf_robattr.hub import RobAttrModelCardData, build_model_card, save_model_card, template_path


PICTURE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def test_card_is_a_valid_hub_repo(run_dir, expected_robustness):
    path = save_model_card(run_dir, model_id="robattr-org/tiny-kernel-vit")
    assert path == run_dir / "README.md"
    card = ModelCard.load(path)
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "image-classification"
    assert "kernel-attention" in card.data.tags

    metadata = metadata_load(path)
    model_name, results = model_index_to_eval_results(metadata["model-index"])
    assert model_name == "tiny-kernel-vit"
    scores = {r.metric_name: r.metric_value for r in results if r.metric_type == "attribution_robustness"}
    assert scores == expected_robustness  # means only: the _std spreads stay in the text table
    accuracy = [r for r in results if r.metric_type == "accuracy"]
    assert [r.metric_value for r in accuracy] == [0.875]
    assert all(r.dataset_split == "test" and r.task_type == "image-classification" for r in results)
    robustness_args = next(r.metric_args for r in results if r.metric_type == "attribution_robustness")
    assert robustness_args["attack"] == "topk" and robustness_args["num_examples"] == 16

    pictures = PICTURE.findall(card.text)
    assert "training_curves.png" in pictures
    for picture in pictures:
        assert (run_dir / picture).is_file(), picture


def test_card_text_carries_the_run(run_dir):
    text = ModelCard.load(save_model_card(run_dir)).text
    for expected in (
        "RobAttrViTForImageClassification",
        "| Attention | kernel |",
        "| Kernel feature map | elu |",
        "| Optimizer | sgd |",
        "| Learning rate | 0.1 |",
        "| Total batch size | 16 |",
        "| Regularizer | input_grad_norm |",
        "| Regularizer weight | 0.01 |",
        "`digits`",
        "| Accuracy | 0.875 |",
        "| Measure | saliency | rollout |",
        "| topk_intersection | 0.62 ± 0.05 | 0.48 ± 0.07 |",
        "| kendall_tau | 0.41 | 0.2 |",
        "16 examples",
        "trust_remote_code=True",
        'evaluate.load("attribution_robustness")',
        "methods=['saliency', 'rollout'], attack='topk', epsilon=0.05",
        "2605.29983",
    ):
        assert expected in text, expected
    assert "\n\n\n\n" not in text


def test_pictures_are_written_and_shown(run_dir):
    hf_robattr.plot_attribution_maps(torch.rand(2, 8, 8), torch.rand(2, 8, 8), run_dir / "attribution_maps.png")
    text = ModelCard.load(save_model_card(run_dir)).text
    assert set(PICTURE.findall(text)) == {"attribution_maps.png", "training_curves.png"}


def test_no_training_picture_without_logged_robustness(run_dir, results):
    results["log_history"] = [{"loss": 1.0, "step": 1}]
    (run_dir / "results.json").write_text(json.dumps(results))
    text = ModelCard.load(save_model_card(run_dir)).text
    assert PICTURE.findall(text) == []
    assert not (run_dir / "training_curves.png").exists()


def test_model_loads_with_remote_code_without_hf_robattr(run_dir, tmp_path):
    save_model_card(run_dir)
    code = f"""
import sys
sys.modules["hf_robattr"] = None  # any import of hf_robattr now fails
import torch
from transformers import AutoModelForImageClassification
model = AutoModelForImageClassification.from_pretrained({str(run_dir)!r}, trust_remote_code=True)
logits = model(pixel_values=torch.rand(2, 1, 8, 8)).logits
assert logits.shape == (2, 3), logits.shape
assert not any(name.startswith("hf_robattr.") for name in sys.modules)
print(type(model).__module__)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "modeling_robattr_vit" in result.stdout


def test_templates_are_identical():
    packaged = template_path()
    repository = Path(__file__).resolve().parents[2] / "model_cards" / packaged.name
    assert filecmp.cmp(packaged, repository, shallow=False), (
        "edit model_cards/ and copy it to hf_robattr/hub/templates/"
    )


def test_custom_template(run_dir, tmp_path):
    template = tmp_path / "mine.md"
    template.write_text("---\n{{ card_data }}\n---\n\n# {{ title }}\n\n{{ results_section }}\n")
    data = RobAttrModelCardData.from_output_dir(run_dir, model_name="mine")
    card = build_model_card(data, run_dir, template=template)
    assert card.text.lstrip().startswith("# mine")
    assert card.data.eval_results


def test_card_data_errors(tmp_path):
    with pytest.raises(ValueError, match="model_id"):
        RobAttrModelCardData(model_id="no-slash")
    with pytest.raises(ValueError, match="task"):
        RobAttrModelCardData(task="translation")
    with pytest.raises(FileNotFoundError, match=r"results\.json"):
        RobAttrModelCardData.from_output_dir(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        RobAttrModelCardData.from_output_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="output_dir"):
        save_model_card(tmp_path / "missing")


def test_text_model_card(run_dir, results):
    results["model"]["architecture"] = "RobAttrBertForSequenceClassification"
    results["model"]["attention_type"] = "softmax"
    results["dataset"]["name"] = "stanfordnlp/sst2"
    data = RobAttrModelCardData.from_results(results, model_id="org/bert", language="en")
    card = build_model_card(data, run_dir)
    assert card.data.pipeline_tag == "text-classification"
    assert card.data.datasets == ["stanfordnlp/sst2"]
    assert "AutoModelForSequenceClassification" in card.text
    assert "Kernel feature map" not in card.text
    assert "https://huggingface.co/datasets/stanfordnlp/sst2" in card.text


def test_text_card_usage_snippet_loads_the_tokenizer_with_remote_code(run_dir, results):
    """The tokenizer line passes ``trust_remote_code=True`` too: without it the snippet stops at a prompt."""
    results["model"]["architecture"] = "RobAttrBertForSequenceClassification"
    usage = _usage(build_model_card(RobAttrModelCardData.from_results(results, model_id="org/bert"), run_dir).text)
    assert 'AutoTokenizer.from_pretrained("org/bert", trust_remote_code=True)' in usage
    loading = [line for line in usage.splitlines() if ".from_pretrained(" in line]
    assert len(loading) == 2 and all("trust_remote_code=True" in line for line in loading)


def test_attribution_picture_from_model_and_samples(run_dir):
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(run_dir)
    samples = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    text = ModelCard.load(save_model_card(run_dir, model=model, inputs=samples)).text
    assert "attribution_maps.png" in PICTURE.findall(text)
    assert (run_dir / "attribution_maps.png").stat().st_size > 1000


def test_a_failed_picture_still_writes_the_card(run_dir, results, caplog):
    from transformers import AutoModelForImageClassification

    results["robustness_config"]["k"] = 10_000  # more than the map has: the core refuses
    (run_dir / "results.json").write_text(json.dumps(results))
    model = AutoModelForImageClassification.from_pretrained(run_dir)
    with caplog.at_level("WARNING"):
        path = save_model_card(run_dir, model=model, inputs=torch.rand(2, 1, 8, 8))
    assert "Could not draw the attribution picture" in caplog.text and "`k`" in caplog.text
    assert "attribution_maps.png" not in PICTURE.findall(ModelCard.load(path).text)
    with pytest.raises(ValueError, match="both `model` and `inputs`"):
        save_model_card(run_dir, model=model)


def test_text_attribution_picture(tmp_path):
    from hf_robattr.hub.attribution_picture import draw_attribution_picture

    tokenizer = hf_robattr.build_offline_tokenizer()
    model = tiny_text_bert(tokenizer)
    batch = dict(tokenizer(["good film", "bad bad film"], padding=True, return_tensors="pt"))
    config = {"methods": ["saliency"], "attack": "topk", "epsilon": 0.1, "num_steps": 2, "k": 2}
    path = draw_attribution_picture(model, batch, tmp_path / "maps.png", config, tokenizer=tokenizer)
    assert path.stat().st_size > 1000


def test_metric_output_shape_is_accepted():
    # robustness straight from the metric: "num_samples" counts the examples, no "_std" keys needed
    data = RobAttrModelCardData(
        robustness={"saliency/spearman": 0.5, "num_samples": 8}, dataset={"name": "digits", "eval_split": "test"}
    )
    assert data.num_examples == 8
    [result] = data.eval_results
    assert result.metric_name == "saliency/spearman" and result.metric_args == {"num_examples": 8}


def _usage(text: str) -> str:
    return text[text.index("## Usage") :].split("\n## ", 1)[0]


def test_usage_loads_the_repo_id_when_known_else_the_folder_and_says_what_to_install(run_dir):
    with_id = _usage(ModelCard.load(save_model_card(run_dir, model_id="robattr-org/tiny-kernel-vit")).text)
    assert 'from_pretrained("robattr-org/tiny-kernel-vit", trust_remote_code=True)' in with_id
    folder = _usage(ModelCard.load(save_model_card(run_dir)).text)
    assert f'from_pretrained("{run_dir}", trust_remote_code=True)' in folder and "ORG/NAME" not in folder
    # every install line can be satisfied: the model needs PyPI packages only, images pillow; hf_robattr is not on PyPI
    assert 'pip install torch "transformers>=5" pillow' in folder
    assert f'pipeline("image-classification", model="{run_dir}", trust_remote_code=True)' in folder
    assert "pip install hf_robattr`" not in folder and "(`pip install hf_robattr`)" not in folder
    assert "hf_robattr is not on PyPI: install it from its source" in folder


def test_a_git_install_gives_a_requirement_others_can_install(monkeypatch):
    from hf_robattr.hub import space

    class Installed:
        def __init__(self, origin):
            self.origin = origin

        def read_text(self, name):
            return json.dumps(self.origin) if name == "direct_url.json" else None

    git = {"url": "https://github.com/org/hf_robattr.git", "vcs_info": {"vcs": "git", "commit_id": "abc123"}}
    monkeypatch.setattr(space, "distribution", lambda name: Installed(git))
    assert space.source_requirement() == "hf_robattr @ git+https://github.com/org/hf_robattr.git@abc123"
    assert space.default_requirement() == "hf_robattr[demo] @ git+https://github.com/org/hf_robattr.git@abc123"
    local = {"url": "file:///home/me/hf_robattr", "dir_info": {"editable": True}}
    monkeypatch.setattr(space, "distribution", lambda name: Installed(local))
    assert space.source_requirement() is None  # a folder on this machine: nothing another machine can install


def test_pushing_rewrites_a_folder_usage_snippet_to_the_repo_id(run_dir):
    from hf_robattr.hub.card_usage import card_with_repo_id

    text = ModelCard.load(save_model_card(run_dir)).text
    pushed = card_with_repo_id(text, "org/tiny")
    assert 'from_pretrained("org/tiny", trust_remote_code=True)' in _usage(pushed)
    assert 'model="org/tiny"' in _usage(pushed) and str(run_dir) not in _usage(pushed)
    assert pushed.replace(_usage(pushed), "") == text.replace(_usage(text), "")  # nothing else changes


SATURATED = {
    "rollout/topk_intersection": {
        "kind": "ceiling",
        "examples": 15,
        "scored": 16,
        "mean": 0.99,
        "baseline": None,
        "why": "15 of 16 examples score the perfect 1",
    }
}


def test_saturated_measures_are_marked_in_the_card_and_the_end_summary(run_dir, results):
    from hf_robattr.hub.summary import training_headline

    results["robustness_saturated"] = SATURATED
    results["robustness_config"]["epsilon"] = "auto"
    results["robustness_config"]["epsilon_calibration"] = {"value": 0.0123, "rule": "the smallest radius at which"}
    card = build_model_card(RobAttrModelCardData.from_results(results), run_dir)
    row = next(line for line in card.text.splitlines() if line.startswith("| topk_intersection |"))
    saliency_cell, rollout_cell = row.split("|")[2:4]
    assert "(saturated)" in rollout_cell and "(saturated)" not in saliency_cell
    assert (
        "**Saturated measures** (marked in the table): `rollout/topk_intersection` at its ceiling (15 of 16"
        in card.text
    )
    assert "calibrated (`epsilon='auto'`) to 0.0123: the smallest radius at which." in card.text
    headline = "\n".join(training_headline(results))
    assert "rollout: top-k intersection" in headline and "higher is more robust; saturated)" in headline
    assert "saliency: top-k intersection 0.620 (higher is more robust)" in headline
    assert "Saturated measures" in headline and "epsilon auto = 0.0123" in headline


def test_a_card_without_saturation_says_nothing_about_it(run_dir, results):
    card = build_model_card(RobAttrModelCardData.from_results(results), run_dir)
    assert "saturated" not in card.text.lower()


def test_the_training_rows_read_the_run_records_fields():
    """The rows read the record's attributes: every row shows on a full record, and a record whose field was
    renamed fails by name instead of losing its row."""
    import dataclasses
    import types

    from hf_robattr.hub.card_sections import training_rows
    from hf_robattr.training import TrainingRecord

    values = {spec.name: 1 for spec in dataclasses.fields(TrainingRecord) if spec.name not in ("extra", "matched_fit")}
    values.update(optimizer="sgd", regularizer="input_grad_norm")
    rows = training_rows(TrainingRecord(**values))
    assert len(rows) == 18 and rows[0] == ("Optimizer", "sgd") and ("Regularizer weight", 1) in rows
    assert training_rows(TrainingRecord()) == []
    assert ("Regularizer weight", 1) not in training_rows(TrainingRecord(**{**values, "regularizer": "none"}))
    renamed = types.SimpleNamespace(**{key: value for key, value in values.items() if key != "seed"}, random_seed=1)
    with pytest.raises(AttributeError, match="seed"):
        training_rows(renamed)
