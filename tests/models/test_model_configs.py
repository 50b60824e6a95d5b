"""RobAttr configs: saved fields, and validation on every path a value can take (constructor, ``from_pretrained``
keyword arguments, attribute assignment, a hand-edited ``config.json``, model build and save)."""

import json

import pytest
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import AutoConfig, AutoModel

from hf_robattr.models import (
    RobAttrBertConfig,
    RobAttrBertModel,
    RobAttrViTConfig,
    RobAttrViTModel,
)


CONFIG_CLASSES = [pytest.param(RobAttrViTConfig, id="vit"), pytest.param(RobAttrBertConfig, id="bert")]
MODEL_CLASSES = {RobAttrViTConfig: RobAttrViTModel, RobAttrBertConfig: RobAttrBertModel}
TINY = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}

TYPE_ERRORS = (ValueError, StrictDataclassFieldValidationError)
# One row per bad value: field, value, exception, words the message must contain.
BAD_VALUES = [
    pytest.param("attention_type", "kernal", ValueError, "attention_type must be one of ['softmax', 'kernel'], got 'kernal'", id="type-typo"),
    pytest.param("attention_type", "bogus", ValueError, "attention_type must be one of", id="type-bogus"),
    pytest.param("kernel_feature_map", "cosine", ValueError, "kernel_feature_map must be one of ['elu', 'favor', 'hedgehog', 'relu'], got 'cosine'", id="map"),
    pytest.param("kernel_eps", 0.0, ValueError, "kernel_eps must be a finite float > 0, got 0.0", id="eps-zero"),
    pytest.param("kernel_eps", -1e-3, ValueError, "kernel_eps must be a finite float > 0, got -0.001", id="eps-negative"),
    pytest.param("kernel_eps", float("nan"), ValueError, "kernel_eps must be a finite float > 0, got nan", id="eps-nan"),
    pytest.param("kernel_eps", float("inf"), ValueError, "kernel_eps must be a finite float > 0, got inf", id="eps-inf"),
    pytest.param("kernel_num_features", 0, ValueError, "kernel_num_features must be a positive int or None", id="features-zero"),
    pytest.param("kernel_num_features", -4, ValueError, "kernel_num_features must be a positive int or None", id="features-negative"),
    pytest.param("kernel_num_features", True, ValueError, "kernel_num_features must be a positive int or None (the map's default), got True", id="features-bool"),
    pytest.param("kernel_redraw_interval", -1, ValueError, "kernel_redraw_interval must be an int >= 0", id="redraw-negative"),
    # wrong types: huggingface_hub's strict dataclass check (on assignment) or ours (in the constructor)
    pytest.param("kernel_shared_qk_map", "yes", TYPE_ERRORS, "kernel_shared_qk_map", id="shared-str"),
    pytest.param("kernel_eps", "small", TYPE_ERRORS, "kernel_eps", id="eps-str"),
    pytest.param("attention_type", 1, TYPE_ERRORS, "attention_type", id="type-int"),
    # HF's own sizes: transformers does not check them (num_attention_heads=0 was a ZeroDivisionError in the model)
    pytest.param("num_attention_heads", 0, ValueError, "num_attention_heads must be an int >= 1, got 0", id="heads-zero"),
    pytest.param("hidden_size", 0, ValueError, "hidden_size must be an int >= 1, got 0", id="hidden-zero"),
    pytest.param("hidden_size", -16, ValueError, "hidden_size must be an int >= 1, got -16", id="hidden-negative"),
    pytest.param("num_hidden_layers", 0, ValueError, "num_hidden_layers must be an int >= 1, got 0", id="layers-zero"),
    pytest.param("intermediate_size", -1, ValueError, "intermediate_size must be an int >= 1, got -1", id="mlp-negative"),
    pytest.param("hidden_dropout_prob", 1.5, ValueError, "hidden_dropout_prob must be a probability in [0, 1], got 1.5", id="dropout"),
    pytest.param("layer_norm_eps", 0.0, ValueError, "layer_norm_eps must be a finite float > 0, got 0.0", id="ln-eps"),
]  # fmt: skip


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
@pytest.mark.parametrize(("field", "value", "error", "words"), BAD_VALUES)
def test_bad_values_are_refused_by_the_constructor(config_class, field, value, error, words):
    with pytest.raises(error) as raised:
        config_class(**{field: value})
    assert words in str(raised.value)


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
@pytest.mark.parametrize(("field", "value", "error", "words"), BAD_VALUES)
def test_bad_values_are_refused_on_assignment(config_class, field, value, error, words):
    config = config_class(attention_type="kernel")
    before = getattr(config, field)
    with pytest.raises(error) as raised:
        setattr(config, field, value)
    assert words in str(raised.value)
    assert getattr(config, field) == before or (field == "kernel_eps" and before != before)


@pytest.fixture(scope="module")
def saved_configs(tmp_path_factory):
    """A saved softmax config folder per config class."""
    folders = {}
    for config_class in (RobAttrViTConfig, RobAttrBertConfig):
        folder = tmp_path_factory.mktemp(config_class.model_type)
        config_class(**TINY).save_pretrained(folder)
        folders[config_class] = folder
    return folders


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
@pytest.mark.parametrize(("field", "value", "error", "words"), BAD_VALUES)
def test_bad_values_are_refused_as_from_pretrained_keywords(saved_configs, config_class, field, value, error, words):
    folder = saved_configs[config_class]
    for load in (config_class.from_pretrained, AutoConfig.from_pretrained):
        with pytest.raises(error) as raised:
            load(folder, **{field: value})
        assert words in str(raised.value)


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
def test_bad_values_are_refused_by_model_from_pretrained(tmp_path, config_class):
    model_class = MODEL_CLASSES[config_class]
    model_class(config_class(**TINY)).save_pretrained(tmp_path)
    for load in (model_class.from_pretrained, AutoModel.from_pretrained):
        with pytest.raises(ValueError, match=r"attention_type must be one of \['softmax', 'kernel'\], got 'kernal'"):
            load(tmp_path, attention_type="kernal")
        with pytest.raises(ValueError, match=r"kernel_eps must be a finite float > 0, got 0\.0"):
            load(tmp_path, attention_type="kernel", kernel_eps=0.0)


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
def test_a_hand_edited_config_json_is_refused(tmp_path, config_class):
    config_class(**TINY).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**saved, "attention_type": "bogus"}))
    with pytest.raises(ValueError, match=r"attention_type must be one of .* got 'bogus'"):
        AutoConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("config_class", "field", "value", "words"),
    [
        pytest.param(RobAttrViTConfig, "image_size", 0, "image_size must be an int >= 1 (or a pair of them), got 0", id="vit-image"),
        pytest.param(RobAttrViTConfig, "patch_size", (4, 0), "patch_size must be an int >= 1 (or a pair of them), got (4, 0)", id="vit-patch"),
        pytest.param(RobAttrViTConfig, "num_channels", 0, "num_channels must be an int >= 1, got 0", id="vit-channels"),
        pytest.param(RobAttrBertConfig, "vocab_size", 0, "vocab_size must be an int >= 1, got 0", id="bert-vocab"),
        pytest.param(RobAttrBertConfig, "max_position_embeddings", -1, "max_position_embeddings must be an int >= 1", id="bert-positions"),
    ],
)  # fmt: skip
def test_family_sizes_are_refused(config_class, field, value, words):
    with pytest.raises(ValueError) as raised:
        config_class(**{field: value})
    assert words in str(raised.value)


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
def test_heads_must_divide_the_hidden_size_in_the_constructor_and_in_config_json(config_class, tmp_path):
    message = r"hidden_size \(30\) must be a multiple of num_attention_heads \(4\)"
    with pytest.raises(ValueError, match=message):
        config_class(hidden_size=30, num_attention_heads=4)
    config_class(**TINY).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**saved, "hidden_size": 30, "num_attention_heads": 4}))
    with pytest.raises(ValueError, match=message):
        AutoConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
def test_zero_heads_is_a_config_error_not_a_division_by_zero_in_the_model(config_class):
    with pytest.raises(ValueError, match="num_attention_heads must be an int >= 1, got 0"):
        MODEL_CLASSES[config_class](config_class(**{**TINY, "num_attention_heads": 0}))


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
def test_a_typo_in_an_attention_key_warns_with_what_was_meant(config_class, tmp_path):
    with pytest.warns(
        UserWarning,
        match=r"unknown key 'attention_tpye'.*Did you mean 'attention_type'\? The model uses attention_type='softmax'",
    ):
        config = config_class(**TINY, attention_tpye="kernel")
    assert config.attention_type == "softmax"
    with pytest.warns(UserWarning, match=r"unknown key 'kernel_feture_map'.*Did you mean 'kernel_feature_map'"):
        config_class(kernel_feture_map="favor")
    with pytest.warns(
        UserWarning, match=r"unknown key 'attention_window'; it is kept but ignored\. The attention fields"
    ):
        config_class(attention_window=4)
    # the same typo in a hand-edited config.json, through the Auto classes
    config_class(**TINY).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["attention_type"]
    (tmp_path / "config.json").write_text(json.dumps({**saved, "attention_tpye": "kernel"}))
    with pytest.warns(UserWarning, match="Did you mean 'attention_type'"):
        AutoConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
def test_a_saved_config_reloads_without_an_unknown_key_warning(config_class, tmp_path, recwarn):
    config_class(**TINY, attention_type="kernel", id2label={0: "a", 1: "b"}).save_pretrained(tmp_path)
    AutoConfig.from_pretrained(tmp_path)
    config_class.from_pretrained(tmp_path, attn_implementation="eager")
    assert not [w for w in recwarn if "unknown key" in str(w.message)]


# --- kernel attention is encoder-only ----------------------------------------------------------------------------

DECODER_FLAGS = [pytest.param("is_decoder", id="decoder"), pytest.param("add_cross_attention", id="cross-attention")]
# HF's BERT itself refuses cross-attention without is_decoder
DECODERS = [
    pytest.param({"is_decoder": True}, id="decoder"),
    pytest.param({"is_decoder": True, "add_cross_attention": True}, id="cross-attention"),
]


@pytest.mark.parametrize("flag", DECODER_FLAGS)
def test_kernel_bert_config_must_be_an_encoder(flag):
    with pytest.raises(ValueError, match=f"supports encoders only.*{flag}=True"):
        RobAttrBertConfig(attention_type="kernel", **{flag: True})


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
@pytest.mark.parametrize("flag", DECODER_FLAGS)
def test_a_decoder_flag_set_after_the_config_is_refused_when_the_model_is_built(config_class, flag, tmp_path):
    config = config_class(attention_type="kernel", **TINY)
    setattr(config, flag, True)  # ViT has no such field: set as an extra attribute, refused the same way
    with pytest.raises(ValueError, match=f"attention_type='kernel' supports encoders only.*{flag}=True"):
        MODEL_CLASSES[config_class](config)
    with pytest.raises(Exception, match="supports encoders only"):
        config.save_pretrained(tmp_path)
    assert not (tmp_path / "config.json").exists()


@pytest.mark.parametrize("decoder", DECODERS)
def test_a_softmax_decoder_checkpoint_cannot_be_loaded_with_kernel_attention(tmp_path, decoder):
    RobAttrBertModel(RobAttrBertConfig(**TINY, **decoder)).save_pretrained(tmp_path)
    assert RobAttrBertModel.from_pretrained(tmp_path).config.attention_type == "softmax"  # softmax decoders load
    loads = (AutoConfig.from_pretrained, RobAttrBertConfig.from_pretrained, RobAttrBertModel.from_pretrained)
    for load in (*loads, AutoModel.from_pretrained):
        with pytest.raises(ValueError, match=r"supports encoders only.*is_decoder=True"):
            load(tmp_path, attention_type="kernel")


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
def test_a_model_refuses_to_save_when_its_attention_type_was_changed_after_build(tmp_path, config_class):
    model = MODEL_CLASSES[config_class](config_class(**TINY))
    model.config.attention_type = "kernel"  # a valid value, but the built model has no feature maps
    with pytest.raises(ValueError, match=r"changed to 'kernel' after this model was built with 'softmax'"):
        model.save_pretrained(tmp_path)
    assert not list(tmp_path.iterdir())


# --- saved fields ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
def test_fields_are_saved_and_reloaded(config_class, tmp_path):
    config = config_class(
        attention_type="kernel", kernel_feature_map="favor", kernel_num_features=24, kernel_seed=7, kernel_eps=1e-5
    )
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == config_class.model_type
    assert saved["kernel_shared_qk_map"] is False  # always written: its absence marks a legacy Hedgehog folder
    assert "_attn_implementation" not in saved and "attn_implementation" not in saved
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert type(reloaded) is config_class
    for field in ("attention_type", "kernel_feature_map", "kernel_num_features", "kernel_seed", "kernel_eps"):
        assert getattr(reloaded, field) == getattr(config, field)


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
@pytest.mark.parametrize(
    ("saved", "shared"),
    [
        pytest.param({"attention_type": "kernel", "kernel_feature_map": "hedgehog"}, True, id="legacy-hedgehog"),
        pytest.param({"attention_type": "kernel", "kernel_feature_map": "elu"}, False, id="legacy-elu"),
        pytest.param({"attention_type": "softmax"}, False, id="softmax"),
        pytest.param(
            {"attention_type": "kernel", "kernel_feature_map": "hedgehog", "kernel_shared_qk_map": False},
            False,
            id="new-hedgehog",
        ),
    ],
)
def test_hedgehog_folders_saved_before_separate_maps_keep_their_shared_map(config_class, tmp_path, saved, shared):
    config_class(**TINY).save_pretrained(tmp_path)
    on_disk = json.loads((tmp_path / "config.json").read_text())
    on_disk.pop("kernel_shared_qk_map")
    (tmp_path / "config.json").write_text(json.dumps({**on_disk, **saved}))
    assert AutoConfig.from_pretrained(tmp_path).kernel_shared_qk_map is shared
    # loaded as Hedgehog: only a legacy Hedgehog folder keeps its shared map; anything else gets new separate maps
    swapped = config_class.from_pretrained(tmp_path, attention_type="kernel", kernel_feature_map="hedgehog")
    assert swapped.kernel_shared_qk_map is shared
