"""Leave-one-source-out table of modelling ideas.

Each idea is a change to the training configuration; this script fits it once per held-out
source group and prints one row per idea: mean and worst-group protected-vs-other F1 and
macro-F1, and the mean over groups of macro-F1 over supported clusters. Folds run in parallel
(`--n-jobs`), and `--groups` limits the table to a few groups while an idea is still being
shaped.

With every group held out (no `--groups`), each row also says what enforcement would do
with the idea's own out-of-source scores: its thresholds, chosen by the function training
chooses them with (same rules, same unfamiliar titles never blocked), and the pooled block
precision, block recall, protected titles caught and review rate they achieve, with the
lowest block precision of a group with enough blocks to be checked. Those, not F1, say
whether an idea brings the review rate down.

    .venv/bin/python benchmarks/loso_ideas.py --ideas default,no_lexicon --markdown docs/loso_ideas.md

Ideas are named in `IDEAS`; each maps to `TrainConfig` overrides, so whatever is kept is
what `clustercls train` then runs. Ideas that are not a setting (self-training, vocabularies
kept to n-grams several sources share) are fit functions in `cross_domain_ideas.py`.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

from cross_domain_ideas import FIT_IDEAS

from clustercls.config import TrainConfig
from clustercls.data import load_dataset, load_source_config
from clustercls.evaluate import MIN_CLUSTER_TITLES, loso_metrics, out_of_source_scores
from clustercls.fit import fit_pipeline
from clustercls.policy import Policy, load_policy
from clustercls.train import _choose_decisions

_NO_LEXICON = {"features": {"lexicon": False}, "model": {"lexicon_documents": 0.0}}
IDEAS: dict[str, dict] = {
    # The defaults: lexicon features and lexicon documents.
    "default": {},
    "no_lexicon": _NO_LEXICON,
    "lexicon_features_only": {"model": {"lexicon_documents": 0.0}},
    "lexicon_documents_only": {"features": {"lexicon": False}},
    "lexicon_no_head": {"features": {"lexicon_head": False}},
    # English terms also matched with their last word plural (lexicon_v9.md).
    "lexicon_plurals": {"features": {"lexicon_plurals": True}},
    # Two-word terms matched only as written (the default matches them across one word too;
    # loso_ideas_gap.md measured that as `lexicon_gap` when it was off).
    "lexicon_no_gap": {"features": {"lexicon_gap": False}},
    "concepts_only_and_documents": {"features": {"lexicon_clusters": False, "lexicon_head": False}},
    "lexicon_half_weight": {
        "features": {"lexicon_weight": 0.5},
        "model": {"lexicon_documents": 0.5},
    },
    "lexicon_double_weight": {
        "features": {"lexicon_weight": 2.0},
        "model": {"lexicon_documents": 2.0},
    },
    "sources_equal": {"model": {"source_weight": 1.0}},
    "sources_quarter": {"model": {"source_weight": 0.25}},
    # Thinned copies of the titles (`ModelConfig.word_dropout`, lexicon terms kept; the
    # default is `_half_cv2`): off, with calibration on 3 folds (the default before), and
    # at a quarter or all of the titles copied.
    "no_word_dropout": {"model": {"word_dropout": 0.0}},
    "dropout_keep_terms_half": {
        "model": {"word_dropout": 0.3, "word_dropout_copies": 0.5, "calibration_cv": 3}
    },
    "dropout_keep_terms_half_cv2": {
        "model": {"word_dropout": 0.3, "word_dropout_copies": 0.5, "calibration_cv": 2}
    },
    # Other draws of the same copies: how much of a group's figure is the draw.
    **{
        f"dropout_keep_terms_half_cv2_seed{seed}": {
            "model": {
                "word_dropout": 0.3,
                "word_dropout_copies": 0.5,
                "calibration_cv": 2,
                "word_dropout_seed": seed,
            }
        }
        for seed in (1, 2, 3, 4)
    },
    "dropout_keep_terms_quarter_cv2": {
        "model": {"word_dropout": 0.3, "word_dropout_copies": 0.25, "calibration_cv": 2}
    },
    "dropout_keep_terms_all_cv2": {
        "model": {"word_dropout": 0.3, "word_dropout_copies": 1.0, "calibration_cv": 2}
    },
    # A heavier thinning of the same half of the titles.
    "dropout_keep_terms_half_p05_cv2": {
        "model": {"word_dropout": 0.5, "word_dropout_copies": 0.5, "calibration_cv": 2}
    },
    # Regularisation of the default linear SVM (C=0.4).
    "C_0.2": {"model": {"C": 0.2}},
    "C_1.0": {"model": {"C": 1.0}},
    # The default C predates the thinned copies, which add rows and regularise by themselves.
    "C_0.6": {"model": {"C": 0.6}},
    # Logistic regression at the C model selection gives it (ModelConfig's C=0.4 is an SVM
    # value, far too strong a penalty for a log-loss), with the default temperature
    # calibration: one model on all rows, the argmax kept.
    "logreg": {"model": {"classifier": "logreg", "C": 5.0}},
    # Cluster balancing off (the default balances clusters).
    "class_weight_none": {"model": {"class_weight": None}},
    # n-gram ranges: word bigrams may carry one shop's phrasing; single characters its script.
    "word_unigrams": {"features": {"word_ngram_range": (1, 1)}},
    "char_1_5": {"features": {"char_ngram_range": (1, 5)}},
    # Vocabulary size: n-grams met in few titles are mostly one shop's names and codes.
    "min_df_5": {"features": {"min_df": 5}},
    "min_df_1": {"features": {"min_df": 1}},
    "char_features_100k": {"features": {"max_features_char": 100_000}},
    # Settings no run had measured: longer or shorter n-grams, raw term counts, and the
    # calibration averaged over models fitted on part of the data each.
    "word_1_3": {"features": {"word_ngram_range": (1, 3)}},
    "char_3_5": {"features": {"char_ngram_range": (3, 5)}},
    "char_2_6": {"features": {"char_ngram_range": (2, 6)}},
    "sublinear_tf_off": {"features": {"sublinear_tf": False}},
    "calibration_ensemble": {"model": {"calibration_ensemble": True}},
    # The lexicon's one-term documents weighted as two or four sources: the policy's
    # product names, look-alikes among them, pull harder against a marketplace's words.
    "lexicon_documents_2": {"model": {"lexicon_documents": 2.0}},
    "lexicon_documents_4": {"model": {"lexicon_documents": 4.0}},
    # Label noise: 3-7% of the `other` titles a held-out model calls protected are
    # mislabelled (docs/label_review.md, seventh pass); the hinge weighs them less.
    "hinge": {"model": {"loss": "hinge"}},
    "hinge_C_1.0": {"model": {"loss": "hinge", "C": 1.0}},
    "hinge_C_2.0": {"model": {"loss": "hinge", "C": 2.0}},
    # scikit-learn's own tolerance, the default until 2026-12-02 (now 1e-2).
    "svc_tol_0.0001": {"model": {"tol": 1e-4}},
}


def _config(overrides: dict) -> TrainConfig:
    base = TrainConfig().model_dump()
    for section, values in overrides.items():
        base[section] = {**base[section], **values}
    return TrainConfig.model_validate(base)


def _decisions(scores, policy: Policy) -> dict:
    """Thresholds chosen on the idea's out-of-source scores as training chooses them, and
    what they achieve: pooled, and the lowest block precision of a checked group."""
    thresholds, achieved = _choose_decisions(
        scores, None, None, None, list(policy.clusters), policy, lambda _msg: None
    )
    rates = achieved["out_of_source"]
    checked = {
        g: r["block_precision"]
        for g, r in rates["per_group"].items()
        if r["blocks"] >= policy.thresholds.group_min_blocks
    }
    worst = min(checked, key=checked.get) if checked else None
    return {
        "thresholds": {"block": thresholds["block"], "review": thresholds["review"]},
        "pooled": rates["pooled"],
        "worst_block_group": worst,
        "worst_group_block_precision": checked[worst] if worst else None,
        "per_group": rates["per_group"],
    }


def _summary(loso: dict) -> dict:
    groups = loso["per_group"]
    pvo = {g: m["protected_vs_other"]["f1"] for g, m in groups.items()}
    macro = {g: m["macro_f1"] for g, m in groups.items()}
    worst = min(pvo, key=pvo.get)
    precision = {g: m["protected_vs_other"]["precision"] for g, m in groups.items()}
    recall = {g: m["protected_vs_other"]["recall"] for g, m in groups.items()}
    return {
        "per_group_protected_precision": precision,
        "per_group_protected_recall": recall,
        "mean_protected_vs_other_f1": loso["mean_protected_vs_other_f1"],
        "mean_macro_f1": loso["mean_macro_f1"],
        "mean_macro_f1_supported": loso["mean_macro_f1_supported"],
        "worst_group": worst,
        "worst_protected_vs_other_f1": pvo[worst],
        "worst_macro_f1": min(macro.values()),
        "per_group_protected_vs_other_f1": pvo,
        "per_group_macro_f1": macro,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ideas",
        default=",".join(IDEAS),
        help=f"comma-separated: {', '.join([*IDEAS, *FIT_IDEAS])}",
    )
    parser.add_argument("--dataset", default="data/processed/dataset.parquet")
    parser.add_argument("--groups", default="", help="only these held-out groups (comma list)")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", default="", help="also write the table as JSON here")
    parser.add_argument("--markdown", default="", help="also write the table as Markdown here")
    parser.add_argument("--scores-dir", default="", help="keep each idea's out-of-source scores")
    args = parser.parse_args()

    dataset = load_dataset(Path(args.dataset))
    groups = {
        s.name: s.group
        for s in load_source_config(TrainConfig().data.source_config).sources.values()
    }
    holdout = args.groups.split(",") if args.groups else None
    table = {}
    for name in args.ideas.split(","):
        config = _config(IDEAS.get(name, {}))
        if name in FIT_IDEAS:
            fit = FIT_IDEAS[name](dataset, groups)
        else:
            fit = partial(fit_pipeline, features=config.features, model=config.model)
        start = time.perf_counter()
        scores = out_of_source_scores(
            fit,
            dataset,
            groups,
            n_jobs=args.n_jobs,
            holdout=holdout,
        )
        if args.scores_dir:
            Path(args.scores_dir).mkdir(parents=True, exist_ok=True)
            scores.assign(title=dataset.loc[scores.index, "title"]).to_parquet(
                Path(args.scores_dir) / f"{name}.parquet"
            )
        policy = load_policy(config.policy)
        loso = loso_metrics(scores, policy.clusters, policy.protected)
        table[name] = {**_summary(loso), "seconds": round(time.perf_counter() - start, 1)}
        if holdout is None:
            # Thresholds need every group held out: a few groups are not what training sees.
            table[name]["decisions"] = _decisions(scores, policy)
        row = table[name]
        print(
            f"{name:24s} mean pvo F1 {row['mean_protected_vs_other_f1']:.4f}  "
            f"macro {row['mean_macro_f1']:.4f}  macro>={MIN_CLUSTER_TITLES} "
            f"{row['mean_macro_f1_supported']:.4f}  worst {row['worst_group']} "
            f"{row['worst_protected_vs_other_f1']:.4f}  worst macro {row['worst_macro_f1']:.4f}  "
            f"({row['seconds']} s)",
            flush=True,
        )
        if "decisions" in row:
            print("   ", _decisions_line(row["decisions"]), flush=True)
        print("   ", json.dumps(row["per_group_protected_vs_other_f1"]), flush=True)
        # Written after every idea: a run of several ideas takes an hour, and one that
        # fails late keeps the rows of those before it.
        if args.out:
            Path(args.out).write_text(json.dumps(table, indent=2, default=float))
        if args.markdown:
            Path(args.markdown).write_text(markdown(table, holdout or sorted(set(groups.values()))))


def _thresholds_text(thresholds: dict) -> str:
    block = " ".join(f"{c} {v:.4f}" for c, v in thresholds["block"].items())
    return f"block {block}, review {thresholds['review']:.4f}"


def _decisions_line(decisions: dict) -> str:
    pooled = decisions["pooled"]
    worst = decisions["worst_group_block_precision"]
    return (
        f"{_thresholds_text(decisions['thresholds'])}; block P {_fmt(pooled['block_precision'])} "
        f"R {_fmt(pooled['block_recall'])}  caught {_fmt(pooled['caught'])}  "
        f"review rate {_fmt(pooled['review_rate'])}  worst group block P "
        f"{decisions['worst_block_group']} {_fmt(worst)}"
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def markdown(table: dict, groups: list[str]) -> str:
    """The table as Markdown: one row per idea, then the decisions its own out-of-source
    scores get (when every group was held out), then protected-vs-other F1 per group."""
    lines = [
        "| idea | LOSO mean prot-vs-other F1 | LOSO mean macro-F1 "
        f"| LOSO mean macro-F1 (clusters >= {MIN_CLUSTER_TITLES} titles) | worst group "
        "| worst prot-vs-other F1 | worst macro-F1 | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in table.items():
        lines.append(
            f"| {name} | {row['mean_protected_vs_other_f1']:.4f} | {row['mean_macro_f1']:.4f} "
            f"| {_fmt(row['mean_macro_f1_supported'])} "
            f"| {row['worst_group']} | {row['worst_protected_vs_other_f1']:.4f} "
            f"| {row['worst_macro_f1']:.4f} | {row['seconds']} |"
        )
    decided = {name: row["decisions"] for name, row in table.items() if "decisions" in row}
    if decided:
        lines += [
            "",
            "| idea | thresholds | block precision | block recall | caught | review rate "
            "| worst group block precision |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, d in decided.items():
            pooled = d["pooled"]
            worst = d["worst_block_group"]
            lines.append(
                f"| {name} | {_thresholds_text(d['thresholds'])} "
                f"| {_fmt(pooled['block_precision'])} | {_fmt(pooled['block_recall'])} "
                f"| {_fmt(pooled['caught'])} | {_fmt(pooled['review_rate'])} "
                f"| {_fmt(d['worst_group_block_precision'])}{f' ({worst})' if worst else ''} |"
            )
    lines += ["", "| idea | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for name, row in table.items():
        f1 = row["per_group_protected_vs_other_f1"]
        lines.append(
            f"| {name} | " + " | ".join(f"{f1.get(g, float('nan')):.4f}" for g in groups) + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
