"""Ideas that work on a model's saved out-of-source scores, measured without refitting.

`clustercls train` keeps every held-out title's probabilities in
`models/<version>/out_of_source_scores.parquet`. The ideas here change what is done with
those probabilities on an unseen marketplace, so each is scored group by group in seconds:

- `prior_em`: EM re-estimation of the cluster mix on the held-out group's distinct titles
  (Saerens et al. 2002), the probabilities re-weighted by the estimated prior over the
  training prior (uniform: clusters are balanced in training). `prior_em_200` adds 200
  pseudo-titles at the training mix to every EM step, so a small marketplace's estimate
  stays near the training mix; `prior_em_1000` adds 1,000.
- `protected_mix_em_50`: the same EM, but only for the mix among the protected clusters,
  weighted by each title's protected probability and shrunk by 50 pseudo-titles (also
  0, 20 and 200): each
  title keeps its probability of `other`, so the review decision (on the protected
  probability) is unchanged, and only which protected cluster it is moves towards the
  marketplace's own mix (a food marketplace's doubtful titles are food, not craft). It
  is `clustercls.classifier.ProtectedMixClassifier`, as `clustercls adapt` serves it,
  here without the refit that comes before it there, and at a uniform training mix (the
  saved scores do not say what their folds were fitted at; `adapt` measures it).
- `full_mix_1000`: the EM of `prior_em_1000` as `clustercls adapt` serves it
  (`clustercls.classifier.FullMixClassifier`): the cluster and the blocks follow the moved
  probabilities, the review screens on the model's own (`screen`); also at 500 and 2,000
  pseudo-titles. `prior_em_1000` is the same mix with the review on the moved ones.
- `cluster_bias`: one number per cluster added to the log-probabilities, chosen on the
  other groups' scores to maximise their mean macro-F1 (coordinate search, `other` fixed
  at 0), then applied to the held-out group: the rare clusters' false calls cost most of
  the macro-F1 where a cluster is rare, and a bias is the smallest change that trades
  them against recall. Needs no title of the marketplace, unlike the EM ideas.
- `stacker`: a gradient-boosted second stage on the out-of-source scores of the other
  groups, given the four log-probabilities, the familiarity score, the lexicon's cluster
  and head-cluster indicators and the title's length in words. It could learn when to
  trust the lexicon over the words ("blush" beside "peach"). Caveat: the other groups'
  scores come from models that saw the held-out group, a mild leak in the stacker's
  favour.

Decisions are measured twice: with the model's own thresholds (chosen on its plain
scores), and with thresholds chosen on each idea's scores by the rule training uses
(`policy.choose_thresholds`, the review on the screen where an idea has one), as training
chooses them for adapted models.

    .venv/bin/python benchmarks/score_ideas.py [--model models/<version>] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import f1_score

from clustercls.artifact import latest_model_dir
from clustercls.classifier import FullMixClassifier, ProtectedMixClassifier, mix_em, mixed
from clustercls.config import TrainConfig
from clustercls.data import load_dataset
from clustercls.lexicon import LexiconFeatures
from clustercls.policy import choose_thresholds, decision_rates, load_policy, screen_of
from clustercls.text import TextNormalizer

BIAS_GRID = np.linspace(-3.0, 1.0, 17)
MIX_STRENGTHS = (0, 20, 50, 200)
FULL_MIX_STRENGTHS = (500, 1000, 2000)
IDEAS = (
    "default",
    "prior_em",
    "prior_em_200",
    "prior_em_1000",
    *(f"protected_mix_em_{strength}" for strength in MIX_STRENGTHS),
    *(f"full_mix_{strength}" for strength in FULL_MIX_STRENGTHS),
    "cluster_bias",
    "stacker",
)


class _GivenScores(ClassifierMixin, BaseEstimator):
    """Saved probabilities seen as a fitted classifier's: its input rows are its output,
    so the serving estimators run on them unchanged."""

    def __init__(self, classes: list[str]) -> None:
        self.classes = classes

    def fit(self, X=None, y=None) -> _GivenScores:
        self.classes_ = np.asarray(self.classes)
        return self

    def predict_proba(self, X) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)


def _stack_features(scores: pd.DataFrame, titles: pd.Series, labels: list[str]) -> np.ndarray:
    normalised = TextNormalizer().fit(None).transform(list(titles))
    lexicon = LexiconFeatures().fit()
    names = list(lexicon.get_feature_names_out())
    keep = [i for i, n in enumerate(names) if n.startswith(("cluster=", "head_cluster="))]
    words = np.array([len(t.split()) for t in normalised])
    proba = scores[[f"p_{c}" for c in labels]].to_numpy()
    return np.column_stack(
        [
            np.log(np.clip(proba, 1e-6, 1.0)),
            scores["familiarity"].to_numpy(),
            lexicon.transform(normalised)[:, keep].toarray(),
            np.minimum(words, 30),
        ]
    )


def _stacker(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> HistGradientBoostingClassifier:
    # Each (group, cluster) cell weighted by 1/sqrt(size): big sources do not decide alone.
    cells = pd.crosstab(groups, y)
    weight = np.array([1.0 / np.sqrt(cells.loc[g, c]) for g, c in zip(groups, y, strict=True)])
    return HistGradientBoostingClassifier(max_iter=200, max_leaf_nodes=15, random_state=0).fit(
        X, y, sample_weight=weight * len(weight) / weight.sum()
    )


def _macro_f1(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Macro-F1 over the clusters present in `y`, from cluster indices (a fast
    `f1_score(y, pred, labels=present, average="macro")`)."""
    counts = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    true, called = counts.sum(axis=1), counts.sum(axis=0)
    return float((2 * np.diag(counts) / np.maximum(true + called, 1))[true > 0].mean())


def _cluster_bias(logp: np.ndarray, y: np.ndarray, groups: np.ndarray, fixed: int) -> np.ndarray:
    """Per-cluster offsets to the log-probabilities that maximise the mean macro-F1 over
    `groups`, by three rounds of coordinate search on a grid; cluster `fixed` stays at 0."""
    k = logp.shape[1]
    parts = [groups == g for g in np.unique(groups)]

    def mean_macro(bias: np.ndarray) -> float:
        pred = (logp + bias).argmax(axis=1)
        return float(np.mean([_macro_f1(y[p], pred[p], k) for p in parts]))

    bias = np.zeros(k)
    for _ in range(3):
        for c in (c for c in range(k) if c != fixed):
            trials = {v: mean_macro(np.where(np.arange(k) == c, v, bias)) for v in BIAS_GRID}
            best = max(trials, key=lambda v: (round(trials[v], 9), -abs(v)))
            bias[c] = best if trials[best] > mean_macro(bias) + 1e-9 else bias[c]
    return bias


def _metrics(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    present = sorted(set(y))
    macro = f1_score(y, pred, labels=present, average="macro", zero_division=0)
    return macro, f1_score(y != "other", pred != "other", zero_division=0)


def _markdown(frame: pd.DataFrame) -> str:
    cells = [
        [str(i), *(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row)]
        for i, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    ]
    head = ["idea", *map(str, frame.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="model folder (default: the newest)")
    parser.add_argument("--dataset", default="data/processed/dataset.parquet")
    parser.add_argument(
        "--scores",
        default="out_of_source_scores.parquet",
        help="which scores of the model folder: adapted_out_of_source_scores.parquet for "
        "the folds adapted by a training run with `[evaluation] adaptation = true`",
    )
    parser.add_argument("--markdown", default="", help="also write the table here")
    args = parser.parse_args()

    folder = Path(args.model) if args.model else latest_model_dir(Path("models"))
    scores = pd.read_parquet(folder / args.scores)
    dataset = load_dataset(Path(args.dataset))
    if len(dataset) != len(scores) or (dataset["source"].values != scores["source"].values).any():
        raise SystemExit("the scores do not belong to this dataset: build it as the model was")
    labels = [c.removeprefix("p_") for c in scores.columns if c.startswith("p_")]
    proba = scores[[f"p_{c}" for c in labels]].to_numpy()
    X = _stack_features(scores, dataset["title"], labels)
    y, groups = scores["cluster"].to_numpy(), scores["group"].to_numpy()

    titles = dataset["title"].to_numpy()
    given = _GivenScores(labels).fit()
    protected = tuple(load_policy(TrainConfig().policy).protected)
    rows, shifted = [], {name: np.empty_like(proba) for name in IDEAS}
    # The probabilities each idea's review screens on, where they are not its own.
    # Saved scores of a model adapted to a full mix screen on their own columns.
    given_screen = screen_of(scores, labels)
    own_screen = proba if given_screen is None else given_screen
    screens = {f"full_mix_{strength}": own_screen for strength in FULL_MIX_STRENGTHS}
    if given_screen is not None:
        screens["default"] = given_screen
    logp = np.log(np.clip(proba, 1e-12, 1.0))
    y_index = pd.Series(y).map({c: i for i, c in enumerate(labels)}).to_numpy()
    for group in sorted(set(groups)):
        part = groups == group
        bias = _cluster_bias(logp[~part], y_index[~part], groups[~part], labels.index("other"))
        distinct = np.unique(titles[part], return_index=True)[1]
        stacker = _stacker(X[~part], y[~part], groups[~part])
        ideas = {
            "default": proba[part],
            "prior_em": mixed(proba[part], mix_em(proba[part][distinct])),
            "prior_em_200": mixed(proba[part], mix_em(proba[part][distinct], 200.0)),
            "prior_em_1000": mixed(proba[part], mix_em(proba[part][distinct], 1000.0)),
            # As `clustercls adapt` serves it (without the refit).
            **{
                f"protected_mix_em_{strength}": ProtectedMixClassifier(
                    given, protected=protected, strength=float(strength)
                )
                .fit(proba[part][distinct])
                .predict_proba(proba[part])
                for strength in MIX_STRENGTHS
            },
            **{
                f"full_mix_{strength}": FullMixClassifier(given, strength=float(strength))
                .fit(proba[part][distinct])
                .predict_proba(proba[part])
                for strength in FULL_MIX_STRENGTHS
            },
            "cluster_bias": mixed(proba[part], np.exp(bias) / np.exp(bias).sum()),
            # The stacker's classes_ are sorted like the model's.
            "stacker": stacker.predict_proba(X[part]),
        }
        for idea, p in ideas.items():
            shifted[idea][part] = p
            macro, pvo = _metrics(y[part], np.asarray(labels)[p.argmax(axis=1)])
            rows.append({"idea": idea, "group": group, "macro_f1": macro, "pvo_f1": pvo})
    table = pd.DataFrame(rows)
    summary = table.groupby("idea", sort=False).agg(
        mean_pvo_f1=("pvo_f1", "mean"),
        worst_pvo_f1=("pvo_f1", "min"),
        mean_macro_f1=("macro_f1", "mean"),
        worst_macro_f1=("macro_f1", "min"),
    )
    summary["worst_group"] = [
        table[table.idea == i].set_index("group")["pvo_f1"].idxmin() for i in summary.index
    ]
    # What the model's own thresholds do with each idea's probabilities, and what
    # thresholds chosen on the idea's own scores do (as training chooses adapted ones).
    metadata = json.loads((folder / "metadata.json").read_text())
    policy = load_policy(TrainConfig.model_validate(metadata["config"]).policy)
    blockable = scores["familiarity"].to_numpy() >= policy.serving.min_familiarity
    caught_per_group: dict[str, dict] = {}
    chosen_summary = summary[[]].copy()
    for idea in summary.index:
        screen = screens.get(idea)
        own = choose_thresholds(y, shifted[idea], labels, policy, groups, blockable, screen)
        for target, thresholds in ((summary, metadata["policy"]["chosen_thresholds"]),
                                   (chosen_summary, own)):  # fmt: skip
            rates = decision_rates(
                y,
                shifted[idea],
                labels,
                thresholds,
                policy.protected,
                groups,
                blockable=blockable,
                screen=screen,
            )
            checked = {
                g: r["block_precision"]
                for g, r in rates["per_group"].items()
                if r["blocks"] >= policy.thresholds.group_min_blocks
            }
            caught = {g: r["caught"] for g, r in rates["per_group"].items()}
            if target is summary:
                caught_per_group[idea] = caught
            else:
                target.loc[idea, "mean_macro_f1"] = summary.loc[idea, "mean_macro_f1"]
                target.loc[idea, "review_threshold"] = thresholds["review"]
            target.loc[idea, "lowest_group_block_precision"] = min(checked.values())
            target.loc[idea, "block_precision"] = rates["pooled"]["block_precision"]
            target.loc[idea, "block_recall"] = rates["pooled"]["block_recall"]
            target.loc[idea, "caught"] = rates["pooled"]["caught"]
            target.loc[idea, "review_rate"] = rates["pooled"]["review_rate"]
            target.loc[idea, "lowest_caught"] = (
                f"{min(caught, key=caught.get)} {min(caught.values()):.4f}"
            )
    per_group = table.pivot(index="idea", columns="group", values="pvo_f1").loc[summary.index]
    text = (
        f"# score_ideas.py on {folder.name} ({args.scores})\n\n"
        + "Decisions in this first table use the model's thresholds (chosen on its plain "
        + "scores).\n\n"
        + _markdown(summary)
        + "\n\nWith thresholds chosen on each idea's own scores (`policy.choose_thresholds`, "
        + "the review on the model's own scores for `full_mix_*`), as training chooses "
        + "thresholds for adapted models:\n\n"
        + _markdown(chosen_summary)
        + "\n\nProtected-vs-other F1 per held-out group:\n\n"
        + _markdown(per_group)
        + "\n\nProtected titles caught (blocked or sent to review) per held-out group, "
        + "with the model's thresholds:\n\n"
        + _markdown(pd.DataFrame(caught_per_group).T)
        + "\n"
    )
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
