"""What adaptation achieves on every unseen marketplace, from models trained with
`[evaluation] adaptation = true`.

Such a training run adapts every leave-one-source-out fold to its held-out group's titles
(labels unseen), as `clustercls adapt` would, and keeps both tables in the model's
`evaluation.json` and both folds' scores beside it. This script puts them side by side,
with the decisions each set of thresholds achieves, so settings of `[adapt]` can be
compared:

    .venv/bin/clustercls train --config benchmarks/configs/adaptation_mix_only.toml \\
        --models-dir runs --no-tracking
    .venv/bin/clustercls train --config benchmarks/configs/adaptation.toml \\
        --models-dir runs --no-tracking
    .venv/bin/python benchmarks/adaptation_report.py runs/<first>="protected mix" \\
        runs/<second>="self-training + protected mix" \\
        --markdown benchmarks/results/adaptation.md

The first is a default training run (about 8 minutes on 2 cores); the second, with
self-training, doubles the leave-one-source-out time (13-14 minutes on 2 cores). The
plain rows of every model after the first are left out when they equal the first's (same
data, same plain settings).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from clustercls.config import stored_config
from clustercls.policy import load_policy, scores_decision_rates
from clustercls.train import _choose_decisions


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
    """Three rows for one model trained with adaptation measured: plain folds under the
    plain thresholds, adapted folds under the same thresholds, and adapted folds under
    thresholds chosen on them as training chooses them (what `clustercls adapt` serves
    with). The decisions are recomputed from the saved scores, so runs of any version
    compare alike."""
    evaluation = json.loads((folder / "evaluation.json").read_text())
    if "leave_one_source_out_adapted" not in evaluation:
        raise SystemExit(f"{folder}: trained without `[evaluation] adaptation = true`")
    metadata = json.loads((folder / "metadata.json").read_text())
    config = stored_config(metadata["config"])
    policy = load_policy(config.policy)
    labels = list(policy.clusters)
    plain_thresholds = metadata["policy"]["chosen_thresholds"]
    adapted = pd.read_parquet(folder / "adapted_out_of_source_scores.parquet")
    chosen, _ = _choose_decisions(adapted, None, None, None, labels, policy, lambda _m: None)

    def rates(scores: pd.DataFrame, thresholds: dict) -> dict:
        return scores_decision_rates(scores, labels, thresholds, policy)

    adapt = config.adapt
    settings = (
        f"p >= {adapt.min_confidence}, weight {adapt.weight}, "
        if adapt.self_training
        else "no self-training, "
    ) + (
        "no mix"
        if not adapt.protected_mix
        else f"mix of every cluster {adapt.full_mix_strength:g}"
        if adapt.mix_scope == "all"
        else f"protected mix {adapt.protected_mix_strength:g}"
    )
    plain = pd.read_parquet(folder / "out_of_source_scores.parquet")
    loso, loso_adapted = (
        evaluation["leave_one_source_out"],
        evaluation["leave_one_source_out_adapted"],
    )
    min_blocks = policy.thresholds.group_min_blocks
    return [
        _row(f"{label}: plain", loso, rates(plain, plain_thresholds), min_blocks),
        _row(
            f"{label}: adapted ({settings}), plain thresholds",
            loso_adapted,
            rates(adapted, plain_thresholds),
            min_blocks,
        ),
        _row(
            f"{label}: adapted ({settings}), thresholds chosen on adapted folds",
            loso_adapted,
            rates(adapted, chosen),
            min_blocks,
        ),
    ]


def probe_row(folder: Path, label: str) -> dict | None:
    """The model's accuracy on the policy probes, per part and kind of error (None when
    its training run scored none)."""
    probed = json.loads((folder / "evaluation.json").read_text()).get("policy_probes")
    if not probed:
        return None
    return {
        "name": label,
        **{
            f"{part} {kind}": figures["accuracy"]
            for part, result in probed.items()
            for kind, figures in [("all", result), *result["per_error_class"].items()]
        },
    }


TITLE = "Adaptation on unseen marketplaces"


def markdown(table: list[dict], title: str = TITLE, probes: list[dict] | None = None) -> str:
    lines = [
        f"# {title}",
        "",
        "Written by `benchmarks/adaptation_report.py` from models trained with "
        "`[evaluation] adaptation = true`. Plain thresholds are chosen on the plain "
        "out-of-source scores, adapted ones on the adapted folds' scores (the same rule); "
        "lowest group block precision is over the groups with enough blocks to judge "
        "(the policy's `group_min_blocks`).",
        "",
        "| # | run | LOSO mean prot-vs-other F1 | worst group | mean macro-F1 "
        "| macro-F1 (clusters >= 20) | block precision | caught | review rate "
        "| lowest group block precision |",
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for i, r in enumerate(table, 1):
        lines.append(
            f"| {i} | {r['name']} | {r['mean_pvo']:.4f} | {r['worst']} | {r['macro']:.4f} "
            f"| {r['macro_supported']:.4f} | {r['block_precision']:.4f} | {r['caught']:.4f} "
            f"| {r['review_rate']:.2%} | {r['lowest']} |"
        )
    groups = sorted(table[0]["per_group_pvo"])
    for key, title in [
        ("per_group_pvo", "Protected-vs-other F1 per held-out group (columns: rows above)"),
        ("per_group_caught", "Protected titles caught (blocked or reviewed) per held-out group"),
    ]:
        lines += ["", f"## {title}", ""]
        lines.append("| group | " + " | ".join(str(i) for i in range(1, len(table) + 1)) + " |")
        lines.append("|---|" + "---:|" * len(table))
        lines += [
            f"| {g} | " + " | ".join(f"{r[key].get(g, float('nan')):.4f}" for r in table) + " |"
            for g in groups
        ]
    if probes:
        columns = [c for c in probes[0] if c != "name"]
        lines += [
            "",
            "## Policy probes: accuracy per part and kind of error (`data/policy_probes.csv`)",
            "",
            "| model | " + " | ".join(columns) + " |",
            "|---|" + "---:|" * len(columns),
        ]
        lines += [
            f"| {r['name']} | "
            + " | ".join(f"{r.get(c, float('nan')):.4f}" for c in columns)
            + " |"
            for r in probes
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model folder, optionally =label")
    parser.add_argument("--markdown", default="", help="also write the table here")
    parser.add_argument("--title", default=TITLE, help="the Markdown heading")
    args = parser.parse_args()
    table: list[dict] = []
    probes: list[dict] = []
    for given in args.models:
        folder, _, label = given.partition("=")
        if (probed := probe_row(Path(folder), label or Path(folder).name)) is not None:
            probes.append(probed)
        plain, *adapted = rows(Path(folder), label or Path(folder).name)
        same = table and {k: v for k, v in plain.items() if k != "name"} == {
            k: v for k, v in table[0].items() if k != "name"
        }
        table += adapted if same else [plain, *adapted]
    text = markdown(table, args.title, probes)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
