"""gradio_client drives /explain on a tiny trained ViT and BERT: the maps and per-example scores equal the scoring
core's (`evaluate_attribution_robustness` on the same example and settings, held against scipy's Kendall tau and a
naive top-k count, over the word tokens for text); bad input gets a message, never a traceback."""

import json

import numpy as np
import pytest
import scipy.stats
import torch


gradio_client = pytest.importorskip("gradio_client")
pytest.importorskip("gradio")

from demo_helpers import serve  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import (  # noqa: E402
    AutoImageProcessor,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from hf_robattr import RobustnessConfig, attribute, evaluate_attribution_robustness  # noqa: E402
from hf_robattr.demo import DEMO_MEASURES, build_app  # noqa: E402


def _client(folder):
    app = build_app(folder)
    client = gradio_client.Client(serve(app), verbose=False)
    yield client
    client.close()
    app.close()


@pytest.fixture(scope="module")
def image_client(vit_run):
    yield from _client(vit_run)


@pytest.fixture(scope="module")
def text_client(bert_run):
    yield from _client(bert_run)


def run_config(folder) -> RobustnessConfig:
    section = json.loads((folder / "results.json").read_text())["robustness_config"]
    section.pop("num_examples", None)  # bookkeeping of older runs
    return RobustnessConfig.from_dict(section)


def naive_topk(clean: np.ndarray, attacked: np.ndarray, k: int | float) -> float:
    count = k if isinstance(k, int) else max(1, round(k * clean.size))
    top = lambda m: set(np.argsort(-np.abs(m).ravel(), kind="stable")[:count].tolist())  # noqa: E731
    return len(top(clean) & top(attacked)) / count


def check_against_the_core(record, model, inputs, config):
    expected = evaluate_attribution_robustness(model, inputs, config, return_per_sample=True, progress=False)
    method = config.methods[0]
    for measure in DEMO_MEASURES:
        want = expected["per_sample"][f"{method}/{measure}"][0]
        got = record["scores"][measure]
        assert (got is None and np.isnan(want)) or got == pytest.approx(want, rel=1e-5, abs=1e-7), measure
    clean, attacked = np.array(record["clean_map"]), np.array(record["attacked_map"])
    reference = attribute(model, inputs, method=method)[0].detach().numpy()
    # Text maps are the scored maps: the word tokens' values, 0 at [CLS]/[SEP] (special tokens are not scored).
    words = np.array([token not in record.get("special_tokens", ()) for token in record.get("tokens", [])] or [True])
    np.testing.assert_allclose(clean, np.where(words, reference, 0.0), rtol=1e-5, atol=1e-7)
    if "tokens" in record:
        assert not words.all()
        clean, attacked = clean[words], attacked[words]
    # the attacked map is the one the core scored: independent recomputations of its scores agree
    tau = scipy.stats.kendalltau(np.abs(clean).ravel(), np.abs(attacked).ravel()).statistic
    assert tau == pytest.approx(record["scores"]["kendall_tau"], abs=1e-5)
    assert naive_topk(clean, attacked, config.k) == pytest.approx(record["scores"]["topk_intersection"])
    assert record["label_preserving_point_found"] is True
    assert record["prediction"] == model.config.id2label[int(model(**_kwargs(inputs)).logits.argmax())]


def _kwargs(inputs):
    return {"pixel_values": inputs} if isinstance(inputs, torch.Tensor) else inputs


def test_image_explain_equals_the_core(image_client, vit_run, tmp_path):
    api = image_client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert "/explain" in api
    picture_file = tmp_path / "upload.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(picture_file)  # not the model's size
    picture, scores = image_client.predict(
        gradio_client.handle_file(str(picture_file)), "saliency", "topk", 0.05, api_name="/explain"
    )
    assert Image.open(picture).size[0] > 300
    assert any("resized from 40x48" in note for note in scores["notes"])
    [record] = scores["models"]
    assert scores["settings"]["epsilon"] == 0.05 and scores["settings"]["method"] == "saliency"

    model = AutoModelForImageClassification.from_pretrained(vit_run).eval()
    processor = AutoImageProcessor.from_pretrained(vit_run)
    pixels = torch.as_tensor(
        processor(images=[Image.open(picture_file).convert("RGB")], return_tensors="pt")["pixel_values"]
    )
    config = run_config(vit_run).replace(methods=("saliency",), attack="topk", epsilon=0.05)
    check_against_the_core(record, model, pixels, config)


def test_text_explain_equals_the_core(text_client, bert_run):
    sentence = "a brilliant film with a tedious ending"
    _picture, scores = text_client.predict(
        sentence, "integrated_gradients", "topk", 0.1, "linf", 3, 2, api_name="/explain"
    )
    [record] = scores["models"]
    assert record["tokens"][0] == "[CLS]" and "brilliant" in record["tokens"]
    model = AutoModelForSequenceClassification.from_pretrained(bert_run).eval()
    inputs = dict(AutoTokenizer.from_pretrained(bert_run)([sentence], return_tensors="pt"))
    config = run_config(bert_run).replace(methods=("integrated_gradients",), epsilon=0.1, k=3, num_steps=2)
    check_against_the_core(record, model, inputs, config)


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        pytest.param("", "The text is empty", id="empty"),
        pytest.param("   \n ", "The text is empty", id="blank"),
    ],
)
def test_bad_text_gets_a_message(text_client, argument, message):
    with pytest.raises(gradio_client.exceptions.AppError, match=message) as error:
        text_client.predict(argument, "saliency", "topk", 0.1, api_name="/explain")
    assert "Traceback" not in str(error.value)


def test_bad_image_and_settings_get_a_message(image_client, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n but not really an image")
    with pytest.raises(gradio_client.exceptions.AppError, match=r"Could not read 'corrupt\.png' as an image"):
        image_client.predict(gradio_client.handle_file(str(corrupt)), "saliency", "topk", 0.05, api_name="/explain")
    good = tmp_path / "good.png"
    Image.new("RGB", (32, 32), (120, 30, 200)).save(good)
    with pytest.raises(gradio_client.exceptions.AppError, match="epsilon"):
        image_client.predict(gradio_client.handle_file(str(good)), "saliency", "topk", -1.0, api_name="/explain")
