"""Evaluation: per-cluster and protected-vs-other metrics, per language, and
leave-one-source-out runs that show how the model does on a marketplace it never saw."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.pipeline import Pipeline

from clustercls.classifier import pipeline_proba_and_screen
from clustercls.policy import SCREEN_PREFIX
from clustercls.text import detect_lang, normalize


def _r(value: float) -> float:
    return round(float(value), 4)


def protected_vs_other(y_true, y_pred, protected: Sequence[str]) -> dict:
    """Binary precision/recall/F1 of "in any protected cluster" against every other label.

    This is the enforcement question: would the listing be stopped at all? A cluster the
    policy names but does not protect counts with the negative label, not as protected.

    Args:
        y_true: True clusters.
        y_pred: Predicted clusters.
        protected: The policy's protected clusters.
    """
    protected = list(protected)
    t = np.isin(np.asarray(y_true, dtype=object), protected)
    p = np.isin(np.asarray(y_pred, dtype=object), protected)
    precision, recall, f1, _ = precision_recall_fscore_support(
        t, p, average="binary", pos_label=True, zero_division=0
    )
    return {"precision": _r(precision), "recall": _r(recall), "f1": _r(f1), "support": int(t.sum())}


MIN_CLUSTER_TITLES = 20
"""A cluster with fewer true titles in a set is left out of `macro_f1_supported`."""


def classification_metrics(
    y_true, y_pred, langs=None, *, labels: Sequence[str], protected: Sequence[str]
) -> dict:
    """Metrics of one evaluation set.

    Args:
        y_true: True clusters.
        y_pred: Predicted clusters.
        langs: Optional language per row; adds a per-language breakdown.
        labels: Cluster labels (the model's or the policy's), in confusion-matrix order.
        protected: The protected clusters, for `protected_vs_other`.

    Returns:
        JSON-ready dict: `n`, `accuracy`, `macro_f1` (over clusters present in `y_true`),
        `macro_f1_supported` (over clusters with at least `MIN_CLUSTER_TITLES` titles in
        `y_true`: in a held-out source one relabelled title makes its cluster present, and
        that cluster's F1, read off one title and every false positive, then weighs as
        much as a cluster of thousands), `per_cluster` precision/recall/F1/support, `protected_vs_other`, `confusion_matrix`
        (rows true, columns predicted, in `labels` order), and `per_language` if given.
    """
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    present = [c for c in labels if (y_true == c).any()]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(labels), zero_division=0
    )
    supported = [f for f, s in zip(f1, support, strict=True) if s >= MIN_CLUSTER_TITLES]
    out = {
        "n": len(y_true),
        "accuracy": _r(accuracy_score(y_true, y_pred)),
        "macro_f1": _r(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))
        if present
        else None,
        "macro_f1_supported": _r(float(np.mean(supported))) if supported else None,
        "per_cluster": {
            c: {"precision": _r(p), "recall": _r(r), "f1": _r(f), "support": int(s)}
            for c, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "protected_vs_other": protected_vs_other(y_true, y_pred, protected),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=list(labels)).tolist(),
        "labels": list(labels),
    }
    if langs is not None:
        langs = np.asarray(langs, dtype=object)
        out["per_language"] = {
            str(lang): {
                "n": int(mask.sum()),
                "macro_f1": _r(
                    f1_score(
                        y_true[mask],
                        y_pred[mask],
                        labels=[c for c in labels if (y_true[mask] == c).any()],
                        average="macro",
                        zero_division=0,
                    )
                ),
                "protected_vs_other_f1": protected_vs_other(y_true[mask], y_pred[mask], protected)[
                    "f1"
                ],
            }
            for lang in sorted(set(langs))
            for mask in [langs == lang]
        }
    return out


def evaluate_hand_labelled(
    pipeline: Pipeline, hand: pd.DataFrame, protected: Sequence[str]
) -> tuple[dict, np.ndarray]:
    """Score a fitted pipeline on the hand-labelled titles.

    Args:
        pipeline: A fitted pipeline; its `classes_` are the labels scored.
        hand: The hand-labelled titles (`load_hand_labelled`).
        protected: The protected clusters.

    Returns:
        Metrics on all rows and on rows the labeller was sure of, and the probability
        matrix (columns in `pipeline.classes_` order).
    """
    proba = pipeline.predict_proba(hand["title"])
    labels = list(pipeline.classes_)
    pred = np.asarray(labels, dtype=object)[proba.argmax(axis=1)]
    sure = ~hand["unsure"].to_numpy()
    langs = [detect_lang(normalize(t)) for t in hand["title"]]
    given = {"labels": labels, "protected": protected}
    metrics = {
        "all": classification_metrics(hand["cluster"], pred, langs, **given),
        "sure": classification_metrics(hand["cluster"][sure], pred[sure], **given),
        "per_source_macro_f1": {
            str(src): classification_metrics(part["cluster"], pred[part.index], **given)["macro_f1"]
            for src, part in hand.groupby("source")
        },
    }
    return metrics, proba


def evaluate_probes(
    pipeline: Pipeline, probes: pd.DataFrame, protected: Sequence[str]
) -> tuple[dict, np.ndarray]:
    """Score a fitted pipeline on the policy probes (`data.load_policy_probes`).

    Returns:
        Per part (`dev`, `held`): `classification_metrics` of its titles, with
        `per_error_class` (`n`, `accuracy`) added; and the probability matrix (columns in
        `pipeline.classes_` order).
    """
    proba = pipeline.predict_proba(probes["title"])
    labels = list(pipeline.classes_)
    pred = np.asarray(labels, dtype=object)[proba.argmax(axis=1)]
    truth = probes["cluster"].to_numpy(dtype=object)
    metrics = {}
    for part in sorted(set(probes["part"])):
        rows = probes["part"].to_numpy() == part
        metrics[part] = classification_metrics(
            truth[rows], pred[rows], labels=labels, protected=protected
        )
        kinds = probes["error_class"].to_numpy()[rows]
        right = truth[rows] == pred[rows]
        metrics[part]["per_error_class"] = {
            str(kind): {
                "n": int((kinds == kind).sum()),
                "accuracy": _r(right[kinds == kind].mean()),
            }
            for kind in sorted(set(kinds))
        }
    return metrics, proba


def evaluate_artifact(
    model_dir: Path,
    dataset: pd.DataFrame | None,
    hand: pd.DataFrame | None,
    probes: pd.DataFrame | None = None,
) -> dict:
    """Re-score a saved model on the test split, the hand-labelled titles and the probes.

    Loads the model through the same verified path prediction uses, so this also checks
    that the saved artifact reproduces the numbers recorded at training time.

    Args:
        model_dir: A saved model folder.
        dataset: The processed dataset (its `test` split is scored), or None.
        hand: Hand-labelled titles, or None.
        probes: Policy probes (`data.load_policy_probes`), or None.

    Returns:
        `random_split`, `hand_labelled` and `policy_probes` metrics for what was given.
    """
    from clustercls.artifact import load_artifact

    artifact = load_artifact(model_dir)
    pipeline, protected = artifact.pipeline, artifact.metadata["protected"]
    out: dict = {"model": Path(model_dir).name}
    if dataset is not None:
        test = dataset[dataset["split"] == "test"]
        out["random_split"] = classification_metrics(
            test["cluster"],
            pipeline.predict(test["title"]),
            test["lang"],
            labels=list(pipeline.classes_),
            protected=protected,
        )
    if hand is not None:
        out["hand_labelled"], _ = evaluate_hand_labelled(pipeline, hand, protected)
    if probes is not None:
        out["policy_probes"], _ = evaluate_probes(pipeline, probes, protected)
    return out


def _fit_score(
    fit: Callable[[pd.DataFrame], Pipeline],
    train: pd.DataFrame,
    test: pd.DataFrame,
    adapt: Callable[[pd.DataFrame, Pipeline, list], Pipeline] | None = None,
) -> list[tuple[list[str], np.ndarray, np.ndarray | None, np.ndarray]]:
    from clustercls.familiarity import familiarity

    pipeline = fit(train)
    titles = test["title"].tolist()
    fitted = [pipeline] if adapt is None else [pipeline, adapt(train, pipeline, titles)]
    scored = []
    for p in fitted:
        proba, screen = pipeline_proba_and_screen(p, titles)
        known = familiarity(p, titles)
        scored.append((list(p.classes_), proba, None if screen is proba else screen, known))
    return scored


def _holdout(frame: pd.DataFrame, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    test = frame[frame["group_"] == name]
    # A near-duplicate of a held-out title listed on another marketplace would leak it.
    train = frame[(frame["group_"] != name) & ~frame["dup_group"].isin(set(test["dup_group"]))]
    return train, test


def out_of_source_scores(
    fit: Callable[[pd.DataFrame], Pipeline],
    dataset: pd.DataFrame,
    groups: dict[str, str],
    n_jobs: int = 2,
    progress: Callable[[str], None] | None = None,
    holdout: list[str] | None = None,
) -> pd.DataFrame:
    """Score every title with a model that never saw its source group.

    Each source group is held out in turn: a model is fitted on the other groups (minus
    near-duplicates of the held-out titles) and scores the held-out titles. These are the
    scores enforcement thresholds are chosen on: production meets marketplaces the model
    never saw, and in-distribution scores are overconfident there.

    Args:
        fit: Fits a fresh model on a frame of training rows (picklable: folds run in
            worker processes).
        dataset: Processed dataset (all splits are used: the held-out group is the test).
        groups: Source name -> group name.
        n_jobs: Folds fitted in parallel.
        progress: Optional callback told how many groups are held out.
        holdout: Hold out only these groups (default all); every other row, of a listed
            source or not, is always trained on.

    Returns:
        One row per title of a held-out group, in dataset order: `group`, `source`,
        `cluster` (the label), `lang`, `predicted`, `familiarity` (share of the title's
        words the fold's model knows, see `clustercls.familiarity.familiarity`) and one
        `p_<label>` column per label.
    """
    return _scores(fit, None, dataset, groups, n_jobs, progress, holdout)[0]


def out_of_source_scores_adapted(
    fit: Callable[[pd.DataFrame], Pipeline],
    adapt: Callable[[pd.DataFrame, Pipeline, list], Pipeline],
    dataset: pd.DataFrame,
    groups: dict[str, str],
    n_jobs: int = 2,
    progress: Callable[[str], None] | None = None,
    holdout: list[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`out_of_source_scores`, and the same titles scored by each fold's model adapted to
    them: `adapt(train rows, fold model, held-out titles)` (labels unseen) returns it.

    Returns:
        The out-of-source scores and the adapted ones, both as `out_of_source_scores`;
        the adapted ones also hold `screen_<label>` columns when the review screens on
        other probabilities than `p_<label>` (`classifier.FullMixClassifier`).
    """
    base, adapted = _scores(fit, adapt, dataset, groups, n_jobs, progress, holdout)
    return base, adapted


def _scores(fit, adapt, dataset, groups, n_jobs, progress, holdout) -> list[pd.DataFrame]:
    frame = dataset.assign(group_=dataset["source"].map(groups))
    names = sorted(frame["group_"].dropna().unique())
    if holdout is not None:
        names = [g for g in names if g in set(holdout)]
    if progress:
        progress(f"leave-one-source-out over {len(names)} groups")
    results = Parallel(n_jobs=n_jobs)(
        delayed(_fit_score)(fit, *_holdout(frame, g), adapt) for g in names
    )
    outputs = []
    for k in range(1 if adapt is None else 2):
        parts = []
        for name, fitted in zip(names, results, strict=True):
            classes, proba, screen, known = fitted[k]
            test = frame[frame["group_"] == name]
            part = pd.DataFrame(
                {
                    "group": name,
                    "source": test["source"].to_numpy(),
                    "cluster": test["cluster"].to_numpy(),
                    "lang": test["lang"].to_numpy(),
                    "predicted": np.asarray(classes, dtype=object)[proba.argmax(axis=1)],
                    "familiarity": known,
                },
                index=test.index,
            )
            for i, label in enumerate(classes):
                part[f"p_{label}"] = proba[:, i]
            if screen is not None:
                for i, label in enumerate(classes):
                    part[f"{SCREEN_PREFIX}{label}"] = screen[:, i]
            parts.append(part)
        scored = pd.concat(parts)
        for column in [c for c in scored.columns if c.startswith(SCREEN_PREFIX)]:
            # A fold with no mix to adapt to screens on its own probabilities.
            label = column.removeprefix(SCREEN_PREFIX)
            scored[column] = scored[column].fillna(scored[f"p_{label}"])
        outputs.append(scored.loc[frame.index[frame.index.isin(scored.index)]])
    return outputs


BOOTSTRAP_SAMPLES = 1000
"""Resamples behind the 95% intervals of the leave-one-source-out figures."""
BOOTSTRAP_SEED = 0


def bootstrap_f1s(
    confusion: np.ndarray,
    labels: Sequence[str],
    protected: Sequence[str],
    rng: np.random.Generator,
    samples: int = BOOTSTRAP_SAMPLES,
) -> tuple[np.ndarray, np.ndarray]:
    """Macro-F1 and protected-vs-other F1 of resamples of one set of titles.

    Each resample draws as many titles as the set has, with replacement, which comes down
    to drawing counts over the cells of its confusion matrix. Each resample's macro-F1 is
    over the clusters present in it, as `classification_metrics` computes it for a set.

    Args:
        confusion: Rows true, columns predicted, in `labels` order.
        labels: The clusters of the matrix.
        protected: The protected clusters.
        rng: The random generator (seeded by the caller: the same seed, the same draws).
        samples: How many resamples.

    Returns:
        Per resample its macro-F1, and its protected-vs-other F1.
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    k, n = confusion.shape[0], int(confusion.sum())
    counts = rng.multinomial(n, confusion.ravel() / n, size=samples).reshape(samples, k, k)
    hits = np.einsum("sii->si", counts)
    sizes = counts.sum(axis=2) + counts.sum(axis=1)
    f1 = np.divide(2 * hits, sizes, out=np.zeros(hits.shape), where=sizes > 0)
    # A cluster of a few titles may be missing from a resample: like any set of titles,
    # each resample's macro-F1 is over the clusters it holds.
    present = counts.sum(axis=2) > 0
    is_protected = np.isin(np.asarray(labels, dtype=object), list(protected))
    caught = counts[:, is_protected][:, :, is_protected].sum(axis=(1, 2))
    either = counts[:, is_protected].sum(axis=(1, 2)) + counts[:, :, is_protected].sum(axis=(1, 2))
    pvo = np.divide(2 * caught, either, out=np.zeros(samples), where=either > 0)
    return (f1 * present).sum(axis=1) / present.sum(axis=1), pvo


def _interval(samples: np.ndarray) -> list[float]:
    return [_r(np.quantile(samples, 0.025)), _r(np.quantile(samples, 0.975))]


def loso_metrics(scores: pd.DataFrame, labels: Sequence[str], protected: Sequence[str]) -> dict:
    """Per held-out group metrics of out-of-source scores, their means and the worst group.

    Args:
        scores: From `out_of_source_scores`.
        labels: The cluster labels, in confusion-matrix order.
        protected: The protected clusters.

    Returns:
        `per_group` metrics (see `classification_metrics`, plus the group's `sources`), the
        means over groups of macro-F1 and of protected-vs-other F1 (over groups where it
        is defined: a group with protected titles), and `worst_group`: the group with the
        lowest protected-vs-other F1 and its figures. Each F1 of a group, each mean and the
        worst group's figures come with a 95% interval (`..._interval`, `[low, high]`):
        how far they move when each group's titles are resampled (`bootstrap_f1s`, seeded),
        which is how far apart two runs must be before the table can tell them apart.
    """
    per_group = {}
    for name, test in scores.groupby("group", sort=True):
        metrics = classification_metrics(
            test["cluster"], test["predicted"], test["lang"], labels=labels, protected=protected
        )
        metrics["sources"] = sorted(test["source"].unique())
        per_group[name] = metrics
    defined = {
        name: m["protected_vs_other"]["f1"]
        for name, m in per_group.items()
        if m["protected_vs_other"]["support"]
    }
    worst = min(defined, key=defined.get) if defined else None
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    macro_draws, pvo_draws = {}, {}
    for name, m in per_group.items():
        macro_draws[name], pvo_draws[name] = bootstrap_f1s(
            m["confusion_matrix"], m["labels"], protected, rng
        )
        m["macro_f1_interval"] = _interval(macro_draws[name])
        if name in defined:
            m["protected_vs_other"]["f1_interval"] = _interval(pvo_draws[name])
    return {
        "per_group": per_group,
        "mean_macro_f1": _r(np.mean([m["macro_f1"] for m in per_group.values()])),
        "mean_macro_f1_interval": _interval(np.mean(list(macro_draws.values()), axis=0)),
        "mean_protected_vs_other_f1_interval": _interval(
            np.mean([pvo_draws[name] for name in defined], axis=0)
        )
        if defined
        else None,
        "mean_macro_f1_supported": _r(
            np.mean([v for m in per_group.values() if (v := m["macro_f1_supported"]) is not None])
        ),
        "mean_protected_vs_other_f1": _r(np.mean(list(defined.values()))) if defined else None,
        "worst_group": {
            "group": worst,
            "protected_vs_other_f1": defined[worst],
            "protected_vs_other_f1_interval": per_group[worst]["protected_vs_other"]["f1_interval"],
            "macro_f1": per_group[worst]["macro_f1"],
        }
        if worst
        else None,
        "worst_macro_f1": _r(min(m["macro_f1"] for m in per_group.values())),
    }


def leave_one_source_out(
    fit: Callable[[pd.DataFrame], Pipeline],
    dataset: pd.DataFrame,
    groups: dict[str, str],
    labels: Sequence[str],
    protected: Sequence[str],
    n_jobs: int = 2,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Hold out each source group in turn: train on the rest, test on it.

    `out_of_source_scores` followed by `loso_metrics`; see those.
    """
    scores = out_of_source_scores(fit, dataset, groups, n_jobs, progress)
    return loso_metrics(scores, labels, protected)


def plot_confusion(matrix: list[list[int]], labels: list[str], path: Path, title: str = "") -> Path:
    """Save a confusion matrix as a PNG (rows: true cluster, columns: predicted).

    Args:
        matrix: Counts, rows true, columns predicted.
        labels: Cluster names in matrix order.
        path: Output PNG path.
        title: Optional figure title.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix)
    row_share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.imshow(row_share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{counts[i, j]}\n{row_share[i, j]:.0%}",
                ha="center",
                va="center",
                color="white" if row_share[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def format_summary(evaluation: dict) -> str:
    """A plain-text summary of an evaluation: headline metrics and the per-source table."""
    lines = []
    split = evaluation.get("random_split")
    if split:
        lines.append(
            f"random split      macro-F1 {split['macro_f1']:.4f}  protected-vs-other F1 "
            f"{split['protected_vs_other']['f1']:.4f}  (n={split['n']})"
        )
    hand = evaluation.get("hand_labelled")
    if hand:
        lines.append(
            f"hand-labelled     macro-F1 {hand['all']['macro_f1']:.4f}  protected-vs-other F1 "
            f"{hand['all']['protected_vs_other']['f1']:.4f}  (n={hand['all']['n']})"
        )
    for part, probed in evaluation.get("policy_probes", {}).items():
        kinds = probed["per_error_class"]
        worst = min(kinds, key=lambda kind: kinds[kind]["accuracy"])
        lines.append(
            f"policy probes, {part:<5}accuracy {probed['accuracy']:.4f}  protected-vs-other F1 "
            f"{probed['protected_vs_other']['f1']:.4f}  (n={probed['n']}); worst kind {worst} "
            f"{kinds[worst]['accuracy']:.4f}"
        )
    for key, heading in (
        ("leave_one_source_out", "leave-one-source-out (train without the group, test on it):"),
        (
            "leave_one_source_out_adapted",
            "leave-one-source-out, each fold adapted to the group's unlabelled titles "
            "(clustercls adapt):",
        ),
    ):
        if evaluation.get(key):
            lines += _loso_lines(evaluation[key], heading)
    decisions = evaluation.get("decisions")
    thresholds = evaluation.get("thresholds")
    if decisions and thresholds:
        for name, chosen in [
            ("decisions", thresholds),
            ("adapted models", evaluation.get("thresholds_adapted")),
        ]:
            if not chosen:
                continue
            block = ", ".join(f"{c} {t:.4f}" for c, t in chosen["block"].items())
            screened = " before the marketplace mix" if chosen.get("review_on") else ""
            lines.append(
                f"{name} (thresholds chosen on {chosen.get('chosen_on', '?')}): block at "
                f"{block}; review at protected p{screened} >= {chosen['review']:.4f}"
            )
        lines.append(
            f"  {'set':<22}{'n':>7}{'blocks':>8}{'block-P':>9}{'block-R':>9}"
            f"{'caught':>8}{'review':>8}"
        )
        for r in decisions_table(evaluation).itertuples(index=False):
            name = r.set if r.group == "pooled" else f"  {r.group}"
            lines.append(
                f"  {name:<22}{r.n:>7}{r.blocks:>8}{_fmt(r.block_precision):>9}"
                f"{_fmt(r.block_recall):>9}{_fmt(r.caught):>8}{_fmt(r.review_rate):>8}"
            )
    return "\n".join(lines)


def _loso_lines(loso: dict, heading: str) -> list[str]:
    lines = [
        heading,
        f"  {'group':<22}{'n':>7}{'macro-F1':>10}{'prot-F1':>9}{'prot-P':>8}{'prot-R':>8}"
        f"{f'macro>={MIN_CLUSTER_TITLES}':>11}",
    ]
    for name, m in loso["per_group"].items():
        pvo = m["protected_vs_other"]
        lines.append(
            f"  {name:<22}{m['n']:>7}{m['macro_f1']:>10.4f}{pvo['f1']:>9.4f}"
            f"{pvo['precision']:>8.4f}{pvo['recall']:>8.4f}"
            f"{_fmt(m.get('macro_f1_supported')):>11}"
        )
    lines.append(
        f"  {'mean':<22}{'':>7}{loso['mean_macro_f1']:>10.4f}"
        f"{loso['mean_protected_vs_other_f1'] or float('nan'):>9.4f}{'':>16}"
        f"{_fmt(loso.get('mean_macro_f1_supported')):>11}"
    )
    lines.append(
        f"  (macro>={MIN_CLUSTER_TITLES}: macro-F1 over the clusters with at least "
        f"{MIN_CLUSTER_TITLES} titles in the group)"
    )
    worst = loso.get("worst_group")
    if worst:
        lines.append(
            f"  worst group: {worst['group']} (protected-vs-other F1 "
            f"{worst['protected_vs_other_f1']:.4f}, macro-F1 {worst['macro_f1']:.4f})"
        )
    # Models evaluated before the intervals existed have none to print.
    spread = [
        (label, interval)
        for label, interval in [
            ("mean macro-F1", loso.get("mean_macro_f1_interval")),
            ("mean prot-F1", loso.get("mean_protected_vs_other_f1_interval")),
            ("worst group's prot-F1", (worst or {}).get("protected_vs_other_f1_interval")),
        ]
        if interval
    ]
    if spread:
        lines.append(
            "  95% intervals, each group's titles resampled: "
            + "; ".join(f"{label} {low:.4f}-{high:.4f}" for label, (low, high) in spread)
        )
    return lines


def _fmt(value: float | None) -> str:
    # A rate with nothing to count is None in the evaluation, NaN once in a frame.
    return "-" if value is None or value != value else f"{value:.4f}"


def precision_recall_by_cluster(
    y_true, proba: np.ndarray, classes: list[str], clusters
) -> dict[str, pd.DataFrame]:
    """Precision and recall of "flag as cluster c" at every confidence threshold.

    A title is flagged for c when c is its most probable cluster and its probability
    reaches the threshold: the rule the enforcement decisions use.

    Args:
        y_true: True clusters.
        proba: Probabilities, columns in `classes` order.
        classes: Column labels of `proba`.
        clusters: The clusters to compute curves for.

    Returns:
        Per cluster, a frame with `threshold`, `precision`, `recall`, highest threshold first.
    """
    y_true = np.asarray(y_true)
    pred = np.asarray(classes)[proba.argmax(axis=1)]
    out = {}
    for cluster in clusters:
        score = np.where(pred == cluster, proba[:, classes.index(cluster)], 0.0)
        positive = y_true == cluster
        order = np.argsort(-score, kind="stable")
        flagged = score[order] > 0
        hits = np.cumsum(positive[order])[flagged]
        n = np.arange(1, flagged.sum() + 1)
        out[cluster] = pd.DataFrame(
            {
                "threshold": score[order][flagged],
                "precision": hits / n,
                "recall": hits / max(positive.sum(), 1),
            }
        )
    return out


def plot_precision_recall(
    curves: dict[str, pd.DataFrame], thresholds: dict[str, dict], path: Path | None = None
):
    """Plot each cluster's precision-recall curve with its block threshold marked.

    (`review` goes by the total protected probability, not by one cluster's curve.)

    Args:
        curves: From `precision_recall_by_cluster`.
        thresholds: A model's chosen thresholds (`block` per cluster).
        path: Where to save a PNG, or None.

    Returns:
        The matplotlib figure.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 4), squeeze=False)
    for ax, (cluster, curve) in zip(axes[0], curves.items(), strict=True):
        ax.plot(curve["recall"], curve["precision"], lw=1.5)
        limit = thresholds.get("block", {}).get(cluster)
        at = curve[curve["threshold"] >= limit] if limit is not None else curve.head(0)
        if len(at):
            point = at.iloc[-1]
            ax.plot(point["recall"], point["precision"], "o", ms=8, label=f"block {limit:.2f}")
        ax.set(title=cluster, xlabel="recall", ylabel="precision", ylim=(0, 1.02), xlim=(0, 1.02))
        ax.legend(loc="lower left")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def decisions_table(evaluation: dict) -> pd.DataFrame:
    """What the enforcement decisions achieved, pooled and per group, one row each: out of
    source (the basis of the thresholds), out of source with each fold adapted to its
    held-out titles (when measured: under the thresholds chosen on them, and under the
    plain ones), on the hand-labelled titles (the check) and on the policy probes."""
    rows = []
    decisions = evaluation.get("decisions", {})
    sets = [
        ("out-of-source", decisions.get("out_of_source")),
        # With `evaluation.adaptation`: adapted folds' scores under the thresholds chosen
        # on them (what `clustercls adapt` serves with), and under the plain ones.
        ("adapted", evaluation.get("decisions_adapted")),
        ("adapted, plain thr.", evaluation.get("decisions_adapted_plain_thresholds")),
        ("hand-labelled", decisions.get("hand_labelled")),
        # Titles written for the policy's hard cases, per part and kind of error.
        ("policy probes", decisions.get("policy_probes")),
    ]
    for label, part in sets:
        if not part:
            continue
        named = [("pooled", part["pooled"]), *part.get("per_group", {}).items()]
        rows += [{"set": label, "group": name, **rates} for name, rates in named]
    columns = ["set", "group", "n", "protected", "blocks", "block_precision", "block_recall"]
    return pd.DataFrame(rows, columns=[*columns, "caught", "review_rate"])


def plot_block_curves(
    sets: dict[str, tuple[np.ndarray, np.ndarray]],
    classes: list[str],
    thresholds: dict,
    protected,
    path: Path | None = None,
):
    """Precision and recall of blocking, against the block threshold, per protected cluster.

    A listing is blocked as cluster c when c is its top cluster and its probability
    reaches the threshold; precision counts the blocked listings that are protected,
    recall the protected listings of cluster c that are blocked.

    Args:
        sets: Name -> (labels, probabilities in `classes` order), e.g. out-of-source and
            hand-labelled predictions.
        classes: Column labels of the probabilities.
        thresholds: A model's chosen thresholds (`block` per cluster), marked.
        protected: The protected clusters.
        path: Where to save a PNG, or None.

    Returns:
        The matplotlib figure.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clusters = [c for c in protected if c in classes]
    fig, axes = plt.subplots(1, len(clusters), figsize=(4.5 * len(clusters), 3.8), squeeze=False)
    grid = np.linspace(0.3, 1.0, 141)
    for ax, cluster in zip(axes[0], clusters, strict=True):
        for (name, (y_true, proba)), style in zip(sets.items(), ("-", "--"), strict=False):
            y_true = np.asarray(y_true, dtype=object)
            top = proba.argmax(axis=1) == classes.index(cluster)
            score = np.where(top, proba[:, classes.index(cluster)], 0.0)
            is_protected = np.isin(y_true, list(protected))
            blocked = score[None, :] >= grid[:, None]
            n = blocked.sum(axis=1)
            precision = np.where(
                n > 0, (blocked & is_protected).sum(axis=1) / np.maximum(n, 1), np.nan
            )
            recall = (blocked & (y_true == cluster)).sum(axis=1) / max((y_true == cluster).sum(), 1)
            ax.plot(grid, precision, style, color="tab:blue", label=f"precision, {name}")
            ax.plot(grid, recall, style, color="tab:orange", label=f"recall, {name}")
        limit = thresholds.get("block", {}).get(cluster)
        if limit is not None:
            ax.axvline(limit, color="grey", lw=1)
        ax.set(title=cluster, xlabel="block threshold", ylim=(0, 1.02))
    axes[0][0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def loso_table(evaluation: dict) -> pd.DataFrame:
    """The leave-one-source-out results of an evaluation as one row per held-out group."""
    groups = evaluation.get("leave_one_source_out", {}).get("per_group", {})
    return pd.DataFrame(
        [
            {
                "held-out group": name,
                "n": m["n"],
                "macro-F1": m["macro_f1"],
                "protected-vs-other F1": m["protected_vs_other"]["f1"],
                "precision": m["protected_vs_other"]["precision"],
                "recall": m["protected_vs_other"]["recall"],
            }
            for name, m in groups.items()
        ],
        columns=["held-out group", "n", "macro-F1", "protected-vs-other F1", "precision", "recall"],
    )


def summary_metrics(evaluation: dict) -> dict[str, float]:
    """The headline numbers of an evaluation, flat, for metadata and MLflow."""
    out = {
        "random_macro_f1": evaluation["random_split"]["macro_f1"],
        "random_protected_vs_other_f1": evaluation["random_split"]["protected_vs_other"]["f1"],
    }
    if "hand_labelled" in evaluation:
        out["hand_macro_f1"] = evaluation["hand_labelled"]["all"]["macro_f1"]
        out["hand_protected_vs_other_f1"] = evaluation["hand_labelled"]["all"][
            "protected_vs_other"
        ]["f1"]
    for part, probed in evaluation.get("policy_probes", {}).items():
        out[f"probes_{part}_accuracy"] = probed["accuracy"]
        out[f"probes_{part}_protected_vs_other_f1"] = probed["protected_vs_other"]["f1"]
    loso = evaluation.get("leave_one_source_out")
    if loso:
        out["loso_mean_macro_f1"] = loso["mean_macro_f1"]
        out["loso_mean_protected_vs_other_f1"] = loso["mean_protected_vs_other_f1"]
        if loso.get("worst_group"):
            out["loso_worst_protected_vs_other_f1"] = loso["worst_group"]["protected_vs_other_f1"]
        out["loso_worst_macro_f1"] = loso["worst_macro_f1"]
        for name, metrics in loso["per_group"].items():
            out[f"loso_{name}_macro_f1"] = metrics["macro_f1"]
            out[f"loso_{name}_protected_vs_other_f1"] = metrics["protected_vs_other"]["f1"]
    adapted = evaluation.get("leave_one_source_out_adapted")
    if adapted:
        out["loso_adapted_mean_macro_f1"] = adapted["mean_macro_f1"]
        out["loso_adapted_mean_protected_vs_other_f1"] = adapted["mean_protected_vs_other_f1"]
        if adapted.get("worst_group"):
            out["loso_adapted_worst_protected_vs_other_f1"] = adapted["worst_group"][
                "protected_vs_other_f1"
            ]
    return out


def _shares(values: pd.Series, labels: list[str]) -> dict[str, float]:
    counts = values.value_counts(normalize=True)
    return {label: round(float(counts.get(label, 0.0)), 4) for label in labels}


def serving_reference(
    test_familiarity: np.ndarray,
    scores: pd.DataFrame | None,
    classes: list[str],
    achieved: dict,
    train_set: pd.DataFrame,
    min_familiarity: float,
) -> dict:
    """What inputs looked like in training, for a batch run to compare its input with.

    `training`: the cluster shares of the training labels. `out_of_source`: what the
    model predicted and decided on marketplaces it never saw (the leave-one-source-out
    scores), the shares a new marketplace is expected to come near.
    """
    low = min_familiarity
    reference: dict = {
        "training": {
            "cluster_share": _shares(train_set["cluster"], classes),
            # Measured on the random test split: titles like the training data.
            "unfamiliar_share": round(float((test_familiarity < low).mean()), 4),
        }
    }
    if scores is not None:
        pooled = achieved["out_of_source"]["pooled"]
        block = pooled["blocks"] / pooled["n"]
        reference["out_of_source"] = {
            "cluster_share": _shares(scores["predicted"], classes),
            "decision_share": {
                "block": round(block, 4),
                "review": pooled["review_rate"],
                "allow": round(1 - block - pooled["review_rate"], 4),
            },
            "unfamiliar_share": round(float((scores["familiarity"] < low).mean()), 4),
        }
    return reference
