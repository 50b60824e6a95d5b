"""ConversionConfig: every bad setting is refused where the config is built, naming the field and what is allowed."""

import json

import pytest

from hf_robattr.conversion import ConversionConfig
from hf_robattr.models import FEATURE_MAPS


@pytest.mark.parametrize(
    "settings, message",
    [
        pytest.param({"feature_map": "hedgehogg"}, "feature_map must be one of", id="unknown-map"),
        pytest.param({"recovery": "qlora"}, "recovery must be one of", id="unknown-recovery"),
        pytest.param({"lr_scheduler_type": "step"}, "lr_scheduler_type must be one of", id="unknown-schedule"),
        pytest.param({"batch_size": 0}, "batch_size must be an int >= 1", id="zero-batch"),
        pytest.param({"batch_size": 8.0}, "batch_size must be an int", id="float-batch"),
        pytest.param({"transfer_steps": -1}, "transfer_steps must be an int >= 0", id="negative-steps"),
        pytest.param({"transfer_learning_rate": 0.0}, "transfer_learning_rate must be a finite number > 0", id="lr0"),
        pytest.param({"recovery_learning_rate": float("nan")}, "recovery_learning_rate", id="nan-lr"),
        pytest.param({"output_weight": -1.0}, "output_weight must be a finite number >= 0", id="negative-weight"),
        pytest.param({"warmup_ratio": 1.0}, "warmup_ratio must be in", id="warmup"),
        pytest.param({"num_features": 0}, "num_features must be an int >= 1", id="features0"),
        pytest.param(
            {"lora_target_modules": "query"}, "lora_target_modules must be a non-empty list", id="str-targets"
        ),
        pytest.param({"feature_map": "elu", "transfer_qk_lora_rank": 0}, "needs query/key adapters", id="elu-no-rank"),
        pytest.param({"output_weight": 0.0}, "Stage 2 needs a loss", id="no-recovery-loss"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message) as error:
        ConversionConfig(**settings)
    if "hedgehogg" in str(settings):
        assert str(sorted(FEATURE_MAPS)) in str(error.value) and "'hedgehogg'" in str(error.value)


def test_unknown_setting_lists_the_valid_ones():
    with pytest.raises(TypeError, match=r"Unknown conversion setting\(s\) \['transfer_step'\]; valid settings"):
        ConversionConfig.from_dict({"transfer_step": 3})


def test_defaults_resolve_by_feature_map_and_mode():
    assert ConversionConfig().effective_qk_lora_rank == 0  # hedgehog trains its own maps
    assert ConversionConfig(feature_map="favor").effective_qk_lora_rank == 8  # parameter-free: q/k adapters
    assert ConversionConfig(recovery="full").effective_recovery_learning_rate == 2e-5
    assert ConversionConfig(batch_size=32).effective_recovery_batch_size == 16
    assert not ConversionConfig(recovery="none").runs_recovery and not ConversionConfig(transfer_steps=0).runs_transfer


def test_round_trips_through_json():
    config = ConversionConfig(feature_map="relu", lora_target_modules=["query", "value"], seed=3)
    again = ConversionConfig.from_dict(json.loads(config.to_json()))
    assert again == config
    assert config.non_default() == {"feature_map": "relu", "lora_target_modules": ["query", "value"], "seed": 3}
