"""What adaptation achieves on every unseen marketplace, from models trained with
`[evaluation] adaptation = true`.

Such a training run adapts every leave-one-source-out fold to its held-out group's titles
(labels unseen), as `clustercls adapt` would, and keeps both tables in the model's
`evaluation.json`: the plain folds' and the adapted folds', with the decisions the model's
own thresholds (chosen on the plain scores) achieve on each. This script puts them side by
side, one pair of rows per model, so settings of `[adapt]` can be compared:

    .venv/bin/clustercls train --config adapt.toml --models-dir /tmp/adapted --no-tracking
    .venv/bin/python benchmarks/adaptation_report.py /tmp/adapted/<version>=label ... \\
        --markdown benchmarks/results/adaptation.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clustercls.config import TrainConfig
from clustercls.policy import load_policy


def _row(name: str, loso: dict, decisions: dict, min_blocks: int) -> dict:
    groups = loso["per_group"]
    pvo = {g: m["protected_vs_other"]["f1"] for g, m in groups.items()}
    worst = min(pvo, key=pvo.get)
    checked = {
        g: r["block_precision"]
        for g, r in decisions["per_group"].items()
        if r["blocks"] >= min_blocks
    }
    lowest = min(checked, key=checked.get) if checked else None
    pooled = decisions["pooled"]
    return {
        "name": name,
        "mean_pvo": loso["mean_protected_vs_other_f1"],
        "worst": f"{worst} {pvo[worst]:.4f}",
        "macro": loso["mean_macro_f1"],
        "macro_supported": loso["mean_macro_f1_supported"],
        "block_precision": pooled["block_precision"],
        "caught": pooled["caught"],
        "review_rate": pooled["review_rate"],
        "lowest": f"{lowest} {checked[lowest]:.4f}" if lowest else "-",
        "per_group_pvo": pvo,
        "per_group_caught": {g: r["caught"] for g, r in decisions["per_group"].items()},
    }


def rows(folder: Path, label: str) -> list[dict]:
    """The plain and adapted rows of one model trained with adaptation measured."""
    evaluation = json.loads((folder / "evaluation.json").read_text())
    if "leave_one_source_out_adapted" not in evaluation:
        raise SystemExit(f"{folder}: trained without `[evaluation] adaptation = true`")
    metadata = json.loads((folder / "metadata.json").read_text())
    config = TrainConfig.model_validate(metadata["config"])
    min_blocks = load_policy(config.policy).thresholds.group_min_blocks
    adapt = config.adapt
    settings = f"p >= {adapt.min_confidence}, weight {adapt.weight}, " + (
        f"protected mix {adapt.protected_mix_strength:g}" if adapt.protected_mix else "no mix"
    )
    return [
        _row(
            f"{label}: plain",
            evaluation["leave_one_source_out"],
            evaluation["decisions"]["out_of_source"],
            min_blocks,
        ),
        _row(
            f"{label}: adapted ({settings})",
            evaluation["leave_one_source_out_adapted"],
            evaluation["decisions_adapted"],
            min_blocks,
        ),
    ]


def markdown(table: list[dict]) -> str:
    lines = [
        "# Adaptation on unseen marketplaces",
        "",
        "Written by `benchmarks/adaptation_report.py` from models trained with "
        "`[evaluation] adaptation = true`. Decisions use each model's own thresholds "
        "(chosen on its plain out-of-source scores); lowest group block precision is over "
        "the groups with enough blocks to judge.",
        "",
        "| run | LOSO mean prot-vs-other F1 | worst group | mean macro-F1 "
        "| macro-F1 (clusters >= 20) | block precision | caught | review rate "
        "| lowest group block precision |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['name']} | {r['mean_pvo']:.4f} | {r['worst']} | {r['macro']:.4f} "
            f"| {r['macro_supported']:.4f} | {r['block_precision']:.4f} | {r['caught']:.4f} "
            f"| {r['review_rate']:.2%} | {r['lowest']} |"
        )
    groups = sorted(table[0]["per_group_pvo"])
    for key, title in [
        ("per_group_pvo", "Protected-vs-other F1 per held-out group"),
        ("per_group_caught", "Protected titles caught (blocked or reviewed) per held-out group"),
    ]:
        lines += ["", f"## {title}", "", "| group | " + " | ".join(r["name"] for r in table) + " |"]
        lines.append("|---|" + "---:|" * len(table))
        lines += [
            f"| {g} | " + " | ".join(f"{r[key].get(g, float('nan')):.4f}" for r in table) + " |"
            for g in groups
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model folder, optionally =label")
    parser.add_argument("--markdown", default="", help="also write the table here")
    args = parser.parse_args()
    table = []
    for given in args.models:
        folder, _, label = given.partition("=")
        table += rows(Path(folder), label or Path(folder).name)
    text = markdown(table)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
