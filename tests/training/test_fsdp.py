"""FSDP2 sharding of the RobAttr models, on CPU with gloo and 2 ranks.

``recipes/accelerate_fsdp.yaml`` wraps every module named in the model's ``_no_split_modules`` with ``fully_shard``
(TRANSFORMER_BASED_WRAP). Accelerate will not run FSDP without GPUs, so this test applies the same wrapping with
torch directly: one SGD step of the sharded model, each rank on half the batch, must equal one unsharded step on
the whole batch.
"""

import pytest
import torch
import torch.distributed as dist
from forked_launch import start_ranks
from tiny_models import TINY_BERT, tiny_bert, tiny_robattr_vit
from torch.distributed.fsdp import fully_shard


def _model(name: str, attention_type: str) -> torch.nn.Module:
    if name == "vit":
        return tiny_robattr_vit(attention_type=attention_type).train()
    from hf_robattr.models import RobAttrBertConfig, RobAttrBertForSequenceClassification

    no_dropout = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}  # the halves draw other masks
    model = tiny_bert(
        RobAttrBertConfig, RobAttrBertForSequenceClassification, attention_type=attention_type, **no_dropout
    )
    return model.train()


def _batch(model: torch.nn.Module, name: str) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, model.config.num_labels, (4,), generator=generator)
    if name == "vit":
        size = model.config.image_size
        return {"pixel_values": torch.randn(4, 3, size, size, generator=generator), "labels": labels}
    input_ids = torch.randint(0, TINY_BERT["vocab_size"], (4, 6), generator=generator)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}


def _sgd_step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(**batch).loss.backward()
    optimizer.step()


CASES = [(name, attention_type) for name in ("vit", "bert") for attention_type in ("softmax", "kernel")]


def _run(rank: int, world_size: int, rendezvous: str, errors: dict, moved: dict) -> None:
    """Every case in one pair of processes (starting them costs more than the steps)."""
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    try:
        for case in CASES:
            name, attention_type = case
            reference, sharded = _model(name, attention_type), _model(name, attention_type)
            batch = _batch(reference, name)
            for module in sharded.modules():
                if type(module).__name__ in sharded._no_split_modules:
                    fully_shard(module)
            fully_shard(sharded)
            half = slice(rank * 2, rank * 2 + 2)
            _sgd_step(sharded, {key: value[half] for key, value in batch.items()})
            before = {key: value.clone() for key, value in reference.state_dict().items()}
            _sgd_step(reference, batch)
            moved[case, rank] = max(
                (reference.state_dict()[key] - value).abs().max().item() for key, value in before.items()
            )
            gathered = {key: value.full_tensor() for key, value in sharded.state_dict().items()}
            errors[case, rank] = max(
                (gathered[key] - value).abs().max().item() for key, value in reference.state_dict().items()
            )
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def sharded_steps(tmp_path_factory):
    rendezvous = str(tmp_path_factory.mktemp("fsdp") / "rendezvous")  # a file, not a port: no race for a port
    manager = torch.multiprocessing.Manager()
    errors, moved = manager.dict(), manager.dict()
    start_ranks(_run, (2, rendezvous, errors, moved), nprocs=2)
    return dict(errors), dict(moved)


@pytest.mark.parametrize("name", ["vit", "bert"])
@pytest.mark.parametrize("attention_type", ["softmax", "kernel"])
def test_fully_sharded_step_equals_single_process_step(name, attention_type, sharded_steps):
    errors, moved = sharded_steps
    case = (name, attention_type)
    assert sorted(rank for key, rank in errors if key == case) == [0, 1]
    assert min(moved[case, rank] for rank in (0, 1)) > 1e-3  # the step changed the weights
    assert max(errors[case, rank] for rank in (0, 1)) < 1e-6
