"""``ArmProtocol.min_fit_examples``: the two-sided matched fit applies only after a minimum of training examples.
It is validated, reaches the training arguments, and leaves the fingerprint of every arm that does not set it (and
so the records already stored for them) unchanged."""

from dataclasses import replace

import pytest
from stored_fingerprints import STORED_FINGERPRINTS

from hf_robattr.study import get_settings
from hf_robattr.study.grid import Cell, RunSpec
from hf_robattr.study.protocol import ArmProtocol
from hf_robattr.study.report import _fit_rule
from hf_robattr.study.run import training_arguments


# The arms that do not set the field keep their stored fingerprints. Only the cpu scale's minilm arm sets it, and
# ci's minilm arm has other fingerprints since it is truncated to 2 layers (tests/study/test_pretrained_layers.py).
PINNED = {key: pins for key, pins in STORED_FINGERPRINTS.items() if key not in {("cpu", "minilm"), ("ci", "minilm")}}
BAND = {"arm": "a", "model": "vit", "dataset": "marked_objects", "fit_rule": "band", "fit_tolerance": 0.1}


@pytest.mark.parametrize(("scale", "arm"), list(PINNED), ids=[f"{s}-{a}" for s, a in PINNED])
def test_fingerprints_of_arms_without_a_minimum_are_unchanged(scale, arm):
    protocol = get_settings(scale).protocol(arm)
    assert protocol.min_fit_examples == 0
    assert (protocol.fingerprint("softmax"), protocol.fingerprint("kernel")) == PINNED[scale, arm]


def test_a_minimum_changes_the_fingerprint():
    protocol = ArmProtocol(**BAND)
    assert replace(protocol, min_fit_examples=3200).fingerprint() != protocol.fingerprint()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({**BAND, "min_fit_examples": -1}, "min_fit_examples must be >= 0", id="negative"),
        pytest.param(
            {**BAND, "fit_rule": "target", "min_fit_examples": 100}, "only to fit_rule 'band'", id="one-sided"
        ),
        pytest.param(
            {**BAND, "fit_rule": "budget", "budget_examples": 800, "min_fit_examples": 100},
            "only to fit_rule 'band'",
            id="budget",
        ),
    ],
)
def test_bad_minimum_is_refused(options, message):
    with pytest.raises(ValueError, match=message):
        ArmProtocol(**options)


@pytest.mark.parametrize("minimum", [0, 3200])
def test_the_minimum_reaches_the_training_arguments(tmp_path, minimum):
    protocol = ArmProtocol(**BAND, min_fit_examples=minimum)
    spec = RunSpec(Cell("a", "softmax", "sgd", 0.1, 16), 0, protocol)
    args = training_arguments(spec, str(tmp_path))
    assert (args.target_min_examples, args.target_loss_band) == (minimum, 0.1)


def test_the_cpu_minilm_arm_trains_at_least_one_epoch_at_a_matched_fit(tmp_path):
    minilm = get_settings("cpu").protocol("minilm")
    train_examples = int(minilm.dataset_size * 0.8)
    assert (minilm.fit_rule, minilm.budget_examples, minilm.min_fit_examples) == ("band", None, train_examples)
    assert minilm.max_epochs * train_examples > minilm.min_fit_examples and minilm.snapshot_every_examples >= 1
    for batch in (8, 16, 32):
        spec = RunSpec(Cell("minilm", "kernel", "sgd", 0.1, batch), 0, minilm)
        args = training_arguments(spec, str(tmp_path))
        assert args.target_min_examples == train_examples and args.max_steps == -1
        assert train_examples % batch == 0  # the first check falls exactly on the end of the first epoch


def test_the_report_states_the_minimum_only_where_it_is_set():
    cpu = get_settings("cpu")
    assert "from 3200 training examples on" in _fit_rule(cpu.protocol("minilm"))
    assert "training examples on" not in _fit_rule(cpu.protocol("vit"))
