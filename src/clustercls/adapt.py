"""Adaptation to a marketplace the model never saw: its own mix of clusters, and
optionally self-training on its own titles.

Marketplaces differ most in what they sell. The model scores the marketplace's titles and
its classifier is wrapped in `FullMixClassifier` (`AdaptConfig.mix_scope = "all"`): the
marketplace's mix of every cluster, estimated on its titles, moves the probabilities, so
on a marketplace with almost no craft a title that looks like craft is more likely one of
its many other goods; the review still screens on the model's own probabilities, so what
the model alone sends to review still goes there. With `mix_scope = "protected"` it is
`ProtectedMixClassifier`: only the mix among the protected clusters moves, and a title's
probability of being protected at all stays the model's.

With `AdaptConfig.self_training`, the pipeline is first fitted again: the titles the model
is sure of (top probability >= `AdaptConfig.min_confidence`) join the training rows with
the cluster it gave them, as one more source weighted `AdaptConfig.weight`, so the
marketplace's own words get weights from the titles the model already reads well. That
refit costs a full fit, and measured on every held-out group it does not beat the mix
alone, so it is off by default.

Leave-one-source-out measures it the same way (`evaluation.adaptation`, on by default):
each held-out group's own titles, labels unseen, adapt the fold's model, and the
thresholds adapted models serve with are chosen on those scores, as plain ones are on
plain folds' scores. A base model trained without that measurement, or with other
`[adapt]` settings, lends its adapted models its own thresholds, with a warning
(docs/training.md, "Adapting to a new marketplace").
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from clustercls.artifact import load_artifact, save_artifact
from clustercls.classifier import (
    FullMixClassifier,
    ProtectedMixClassifier,
    pipeline_proba_and_screen,
)
from clustercls.config import (
    AdaptConfig,
    FeatureConfig,
    ModelConfig,
    stored_adapt,
    stored_config,
)
from clustercls.data import DataError, fingerprint, load_dataset, load_hand_labelled
from clustercls.evaluate import (
    classification_metrics,
    evaluate_hand_labelled,
    serving_reference,
    summary_metrics,
)
from clustercls.familiarity import familiarity
from clustercls.fit import fit_pipeline, weighted_rows
from clustercls.policy import hand_decision_rates, serving_rules

# The source name of adopted titles: not a valid source name (sources.toml names are
# identifiers), so it never merges with a real source when rows are balanced by source.
ADAPTED_SOURCE = "(adapted)"


class AdaptError(DataError):
    """The adaptation cannot run: no titles, or a base model that does not match the data."""


def adopted_titles(
    pipeline: Pipeline, titles: Sequence[object], min_confidence: float
) -> pd.DataFrame:
    """The titles the model is sure of, with the cluster it gives them.

    Args:
        pipeline: A fitted pipeline (raw titles in).
        titles: Unlabelled titles of the marketplace.
        min_confidence: Top probability a title needs to be adopted.

    Returns:
        `title`, `cluster` and `source` (`ADAPTED_SOURCE`) of the adopted titles, in
        input order.
    """
    values = np.asarray(list(titles), dtype=object)
    if not len(values):
        return pd.DataFrame({"title": [], "cluster": [], "source": []})
    proba = pipeline.predict_proba(values)
    pick = proba.max(axis=1) >= min_confidence
    return pd.DataFrame(
        {
            "title": values[pick],
            "cluster": np.asarray(pipeline.classes_, dtype=object)[proba.argmax(axis=1)][pick],
            "source": ADAPTED_SOURCE,
        }
    )


def with_mix(
    pipeline: Pipeline,
    titles: Sequence[object],
    settings: AdaptConfig,
    protected: Sequence[str],
    prior: np.ndarray | None = None,
) -> Pipeline:
    """`pipeline` with its classifier wrapped in a `FullMixClassifier`, or with
    `settings.mix_scope = "protected"` a `ProtectedMixClassifier`, fitted on `titles` (the
    same fitted steps, shared, not copied).

    Args:
        pipeline: A fitted pipeline (raw titles in).
        titles: The marketplace's distinct titles.
        settings: The scope of the mix and its strength (pseudo-titles at the training mix).
        protected: The protected clusters.
        prior: The class mix the pipeline was fitted at (`training_mix`).
    """
    *steps, (name, classifier) = pipeline.steps
    features = Pipeline(steps).transform(list(titles))
    frozen = FrozenEstimator(classifier)
    if settings.mix_scope == "all":
        mix = FullMixClassifier(frozen, strength=settings.full_mix_strength, prior=prior)
    else:
        mix = ProtectedMixClassifier(
            frozen,
            protected=tuple(protected),
            strength=settings.protected_mix_strength,
            prior=prior,
        )
    return Pipeline([*steps, (name, mix.fit(features))])


def training_mix(pipeline: Pipeline, rows: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
    """The class mix a fitted pipeline's probabilities are at on its own training rows:
    their weighted mean probability. Weights and calibration both shape it (balanced
    clusters, then balanced sources), so it is measured, not assumed; on titles like the
    training rows, the mix then moves nothing."""
    return weights @ pipeline.predict_proba(rows["title"].to_numpy()) / weights.sum()


def fit_adapted(
    train: pd.DataFrame,
    pipeline: Pipeline,
    titles: Sequence[object],
    features: FeatureConfig,
    model: ModelConfig,
    settings: AdaptConfig,
    protected: Sequence[str],
) -> tuple[Pipeline, pd.DataFrame]:
    """With `settings.self_training`, fit a fresh pipeline on the training rows plus the
    titles `pipeline` adopts (else keep `pipeline`, which `train` must be the rows of); then,
    with `settings.protected_mix`, give it the titles' mix (`with_mix`).

    Returns:
        The adapted pipeline and the adopted rows (none without self-training).
    """
    rows = train[["title", "cluster", "source"]]
    scale = None
    fitted = pipeline
    adopted = adopted_titles(pipeline, [], settings.min_confidence)
    if settings.self_training:
        adopted = adopted_titles(pipeline, titles, settings.min_confidence)
        rows = pd.concat([rows, adopted], ignore_index=True)
        scale = {ADAPTED_SOURCE: settings.weight}
        fitted = fit_pipeline(rows, features, model, source_scale=scale)
    if settings.protected_mix and len(titles) and _has_a_mix(settings, protected):
        prior = training_mix(fitted, *weighted_rows(rows, model, scale))
        fitted = with_mix(fitted, titles, settings, protected, prior)
    return fitted, adopted


def _has_a_mix(settings: AdaptConfig, protected: Sequence[str]) -> bool:
    """A mix among the protected clusters needs two of them (the mix of every cluster
    always has `other` beside them)."""
    return settings.mix_scope == "all" or len(set(protected)) >= 2


def mix_shares(pipeline: Pipeline, protected: Sequence[str]) -> dict:
    """The mix an adapted pipeline serves with, as an adaptation records it:
    `protected_shares`, the shares among the protected clusters (None without a mix), and
    with a mix of every cluster `all_shares`."""
    classifier = pipeline.steps[-1][1]
    if not isinstance(classifier, ProtectedMixClassifier | FullMixClassifier):
        return {"protected_shares": None}
    mix = dict(zip(map(str, classifier.classes_), map(float, classifier.mix_), strict=True))
    # Floored: a mix of every cluster may leave the protected ones next to nothing.
    total = max(sum(mix[c] for c in protected), 1e-12)
    record: dict = {"protected_shares": {c: round(mix[c] / total, 4) for c in protected}}
    if isinstance(classifier, FullMixClassifier):
        record["all_shares"] = {c: round(m, 4) for c, m in mix.items()}
    return record


def measured_for(base_metadata: dict, settings: AdaptConfig) -> dict | None:
    """What the base model's training measured for models adapted with `settings`
    (thresholds chosen on adapted folds, what they achieved, the out-of-source reference),
    or None when it measured no adaptation or other settings."""
    measured = base_metadata["policy"].get("for_adapted")
    if measured and _what_moves(stored_adapt(measured.get("adapt", {}))) == _what_moves(
        settings.model_dump(mode="json")
    ):
        return measured
    return None


def _unmeasured(base_metadata: dict, settings: AdaptConfig) -> str:
    """Why `measured_for` found nothing, for the warning: the settings that differ."""
    recorded = base_metadata["policy"].get("for_adapted")
    if not recorded:
        return "it was trained with `[evaluation] adaptation = false`"
    trained = _what_moves(stored_adapt(recorded.get("adapt", {})))
    here = _what_moves(settings.model_dump(mode="json"))
    # A setting that only one side weighs (min_confidence with self-training on one side)
    # follows from one that both do; name those first.
    both = trained.keys() & here.keys()
    keys = [k for k in sorted(both) if trained[k] != here[k]] or sorted(
        trained.keys() ^ here.keys()
    )
    differ = ", ".join(
        f"{key} = {trained.get(key, '(unset)')} (here {here.get(key, '(unset)')})" for key in keys
    )
    return (
        f"its training measured {differ}; train with these settings to measure them, e.g. "
        "benchmarks/configs/adaptation.toml for self-training"
    )


def _what_moves(settings: dict) -> dict:
    """The settings that change an adapted model: without self-training no title is
    adopted, so its threshold and weight change nothing, nor the mix's scope and
    strengths without the mix, nor the strength of the scope not used. Any other setting,
    one added later included, must match."""
    ignored = set()
    if not settings.get("self_training"):
        ignored |= {"min_confidence", "weight"}
    if not settings.get("protected_mix"):
        ignored |= {"mix_scope", "protected_mix_strength", "full_mix_strength"}
    elif settings.get("mix_scope") == "all":
        ignored.add("protected_mix_strength")
    else:
        ignored.add("full_mix_strength")
    return {k: v for k, v in settings.items() if k not in ignored}


@dataclass(frozen=True)
class FoldAdapter:
    """`fit_adapted` for leave-one-source-out folds: (train rows, fold model, held-out
    titles) -> adapted model, on the distinct titles as the command takes them. A class,
    not a closure, so folds can run in worker processes."""

    features: FeatureConfig
    model: ModelConfig
    settings: AdaptConfig
    protected: tuple[str, ...]

    def __call__(self, train: pd.DataFrame, pipeline: Pipeline, titles: list) -> Pipeline:
        distinct = list(dict.fromkeys(titles))
        return fit_adapted(
            train, pipeline, distinct, self.features, self.model, self.settings, self.protected
        )[0]


@dataclass
class AdaptResult:
    """What an adaptation produced."""

    model_dir: Path
    metadata: dict
    evaluation: dict


def read_titles(path: Path) -> list:
    """The distinct non-empty titles of an input file (any format `predict` reads)."""
    from clustercls.batch import read_chunks

    seen: dict = {}
    for chunk in read_chunks(Path(path), 200_000):
        for title in chunk["title"].tolist():
            if isinstance(title, str) and title.strip():
                seen.setdefault(title, None)
    return list(seen)


def adapt_model(
    base_dir: Path,
    titles_path: Path,
    dataset_path: Path,
    min_confidence: float | None = None,
    weight: float | None = None,
    protected_mix: bool | None = None,
    mix_scope: str | None = None,
    models_dir: Path | None = None,
    self_training: bool | None = None,
    hand_labelled: Path | None = None,
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> AdaptResult:
    """Adapt a trained model to a marketplace's titles and save it as a new version.

    The adapted model is the base model's own fit (by default), or with self-training its
    pipeline fitted again on the same training rows plus the marketplace titles the base
    model is sure of; with `protected_mix` it serves with the marketplace's mix (`with_mix`).
    It keeps the base model's labels and policy, and serves with the thresholds the base
    model's training chose on adapted folds when it measured these settings
    (`measured_for`), else the base model's own; the base model's metrics stay in the
    metadata as `base_metrics`, and it records where it came from.

    Args:
        base_dir: The trained model to adapt (verified like any model that is loaded); not
            itself an adapted one.
        titles_path: The marketplace's titles (a `title` column; CSV, Parquet or JSONL).
        dataset_path: The processed dataset the base model was trained on.
        min_confidence: Adoption threshold; default the base model's `adapt` setting.
        weight: Weight of the adopted titles; default the base model's `adapt` setting.
        protected_mix: Serve with the marketplace's mix; default the base model's
            `adapt` setting.
        mix_scope: "all" or "protected" (`AdaptConfig.mix_scope`); default the base
            model's `adapt` setting.
        self_training: Refit on the adopted titles; default the base model's `adapt`
            setting.
        models_dir: Where the new version goes; default the base model's parent folder.
        hand_labelled: Hand-labelled titles: never adopted (they stay out of training),
            and the adapted model is checked on them.
        name: A name for the marketplace, recorded in the metadata.
        progress: Optional callback for progress messages.

    Raises:
        AdaptError: When the base model is itself adapted, the dataset is not the one it
            was trained on, the file has no title, nothing would adapt (no self-training
            and fewer than two protected clusters), or, with self-training, no title is
            there to adopt.
    """
    say = progress or (lambda _msg: None)
    base = load_artifact(Path(base_dir))
    if "adaptation" in base.metadata:
        raise AdaptError(
            f"model {base.version} is already adapted (from "
            f"{base.metadata['adaptation']['base_version']}): adapt its base model instead"
        )
    config = stored_config(base.metadata["config"])
    given = {
        "self_training": self_training,
        "min_confidence": min_confidence,
        "weight": weight,
        "protected_mix": protected_mix,
        "mix_scope": mix_scope,
    }
    settings = AdaptConfig.model_validate(
        {**config.adapt.model_dump(), **{k: v for k, v in given.items() if v is not None}}
    )
    config = config.model_copy(update={"adapt": settings})
    if not settings.self_training and not _has_a_mix(settings, base.metadata["protected"]):
        raise AdaptError(
            f"model {base.version} has fewer than two protected clusters, so there is no "
            "mix among them to adapt: adapt it with self-training or `--mix-scope all`"
        )

    dataset = load_dataset(Path(dataset_path))
    expected = base.metadata.get("data", {}).get("fingerprint")
    if not expected or fingerprint(dataset) != expected:
        raise AdaptError(
            f"{dataset_path} is not the dataset model {base.version} was trained on "
            f"(its content fingerprint differs from the model's {expected}): rebuild it with "
            "the model's source config, or adapt a model trained on this dataset"
        )
    labels = list(base.pipeline.classes_)
    hand = load_hand_labelled(hand_labelled, labels) if hand_labelled else None
    titles = read_titles(titles_path)
    if hand is not None:
        # The yardstick stays out of training, also when a marketplace lists the same title.
        normalise = base.pipeline.steps[0][1].transform
        known = set(normalise(hand["title"].tolist()))
        titles = [t for t, n in zip(titles, normalise(titles), strict=True) if n not in known]
    if not titles:
        raise AdaptError(f"{titles_path}: no non-empty title to adapt to")
    train_set = dataset[dataset["split"] == "train"]
    test_set = dataset[dataset["split"] == "test"]
    protected = base.metadata["protected"]
    measured = measured_for(base.metadata, settings)
    plain = base.metadata["policy"]["chosen_thresholds"]
    thresholds = measured["chosen_thresholds"] if measured else plain
    if measured is None:
        say(
            f"warning: {base.version} has no thresholds chosen on adapted folds with these "
            f"settings ({_unmeasured(base.metadata, settings)}): the adapted model keeps its "
            "plain thresholds, whose block precision on adapted titles is not what they "
            "were chosen for"
        )
    say(f"scoring {len(titles)} distinct titles with {base.version}")
    start = time.perf_counter()
    pipeline, adopted = fit_adapted(
        train_set, base.pipeline, titles, config.features, config.model, settings, protected
    )
    if settings.self_training and adopted.empty:
        raise AdaptError(
            f"{titles_path}: the model is sure of none of its {len(titles)} titles "
            f"(top probability >= {settings.min_confidence}): nothing to adapt to"
        )
    if settings.self_training:
        say(f"adopted {len(adopted)} of them; fitted in {time.perf_counter() - start:.0f} s")

    evaluation: dict = {
        "random_split": classification_metrics(
            test_set["cluster"],
            pipeline.predict(test_set["title"]),
            test_set["lang"],
            labels=labels,
            protected=protected,
        )
    }
    evaluation["thresholds"] = thresholds
    if hand is not None:
        evaluation["hand_labelled"], hand_proba = evaluate_hand_labelled(pipeline, hand, protected)
        _, hand_screen = pipeline_proba_and_screen(pipeline, hand["title"])
        # The thresholds it serves with, checked on titles no fold saw.
        evaluation["decisions"] = {
            "hand_labelled": hand_decision_rates(
                hand,
                hand_proba,
                familiarity(pipeline, hand["title"]),
                labels,
                thresholds,
                protected,
                serving_rules(base.metadata).min_familiarity,
                screen=hand_screen,
            )
        }
    digest = hashlib.sha256("\n".join(map(str, titles)).encode("utf-8", "replace")).hexdigest()
    adaptation = {
        "base_version": base.version,
        "name": name or Path(titles_path).stem,
        "titles": len(titles),
        "titles_sha256": digest,
        "adopted": len(adopted),
        "adopted_per_cluster": {c: int((adopted["cluster"] == c).sum()) for c in labels},
        # The marketplace's estimated mix (None: no mix): among the protected clusters,
        # and of every cluster when that is the mix it serves with.
        **mix_shares(pipeline, protected),
        "thresholds_chosen_on": thresholds.get("chosen_on"),
        **settings.model_dump(mode="json"),
    }
    evaluation["adaptation"] = adaptation
    metadata = {
        key: value
        for key, value in base.metadata.items()
        if key not in {"version", "created", "libraries", "code", "model_file", "sha256"}
    }
    metadata["config"] = config.model_dump(mode="json")
    policy = {k: v for k, v in metadata["policy"].items() if k != "for_adapted"}
    metadata["policy"] = {**policy, "chosen_thresholds": thresholds}
    if measured:
        metadata["policy"]["achieved"] = measured["achieved"]
    # Its own numbers; the base model's (out-of-source ones included, which its thresholds
    # were chosen on) stay beside them.
    metadata["metrics"] = summary_metrics(evaluation)
    metadata["base_metrics"] = base.metadata.get("metrics", {})
    metadata["data"] = {**metadata.get("data", {}), "rows_adopted": len(adopted)}
    # What a batch run compares its input with: the training side is this model's own
    # (its vocabulary decides which titles are unfamiliar); the out-of-source side is the
    # measurement of adapted folds when there is one, else the base model's.
    metadata["reference"] = {
        **base.metadata.get("reference", {}),
        **({"out_of_source": measured["reference_out_of_source"]} if measured else {}),
        "training": serving_reference(
            familiarity(pipeline, test_set["title"]),
            None,
            labels,
            {},
            train_set,
            serving_rules(base.metadata).min_familiarity,
        )["training"],
    }
    metadata["adaptation"] = adaptation
    model_dir = save_artifact(pipeline, metadata, Path(models_dir or Path(base_dir).parent))
    (model_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2, default=str))
    say(f"saved {model_dir}")
    return AdaptResult(model_dir=model_dir, metadata=metadata, evaluation=evaluation)
