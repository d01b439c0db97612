"""Fitting: the pipeline (normalisation, features, calibrated classifier) and the row
weights it is fitted with. Training, leave-one-source-out folds and adaptation all fit
through `fit_pipeline`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.pipeline import Pipeline

from clustercls.classifier import make_classifier
from clustercls.config import FeatureConfig, ModelConfig
from clustercls.features import build_features
from clustercls.lexicon import LexiconFeatures, load_lexicon
from clustercls.text import TextNormalizer


def build_pipeline(features: FeatureConfig, model: ModelConfig) -> Pipeline:
    """The full model: normalisation, TF-IDF features, calibrated classifier.

    Normalisation lives inside the pipeline so training and serving cannot drift apart.

    Args:
        features: Feature settings.
        model: Classifier settings.

    Returns:
        An unfitted pipeline taking raw titles.
    """
    return Pipeline(
        [
            ("normalize", TextNormalizer(max_length=features.max_length)),
            ("features", build_features(features)),
            ("classifier", make_classifier(model)),
        ]
    )


def sample_weights(frame: pd.DataFrame, config: ModelConfig) -> np.ndarray:
    """Row weights that balance clusters and/or sources, normalised to mean 1.

    Source balance keeps one huge single-topic source (22,000 air conditioners and DJ
    controllers) from defining what `other` looks like for every marketplace.

    Args:
        frame: Training rows with `cluster` and `source` columns.
        config: Which balancing to apply.

    Returns:
        One weight per row.
    """
    weight = np.ones(len(frame))
    if config.class_weight == "balanced":
        weight /= frame.groupby("cluster")["cluster"].transform("size").to_numpy()
    if config.source_weight:
        size = frame.groupby("source")["source"].transform("size").to_numpy()
        weight /= size.astype(float) ** config.source_weight
    return weight / weight.mean()


def with_lexicon_documents(frame: pd.DataFrame, factor: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Training rows plus each lexicon term as a one-term title of its cluster.

    The terms form one more source (`lexicon`), balanced like the others, then scaled by
    `factor`: words the marketplaces barely use get a weight of their own.

    Returns:
        The rows and a per-row multiplier for their sample weights.
    """
    terms = load_lexicon().rows
    extra = pd.DataFrame({"title": terms["term"], "cluster": terms["cluster"], "source": "lexicon"})
    rows = pd.concat([frame[["title", "cluster", "source"]], extra], ignore_index=True)
    scale = np.where(rows["source"].to_numpy() == "lexicon", factor, 1.0)
    return rows, scale


THINNED_SOURCE = "(thinned)"
"""The source name of the thinned copies `with_thinned_copies` adds."""


def thin_titles(titles, p: float, seed: int) -> list[str]:
    """Titles normalised, then each word dropped with probability `p`, except the words of
    the policy lexicon's terms (and at least one word of every title).

    The copies keep the product ("kemeja", "rattan basket") and lose some of the context a
    source writes around it, so the product words carry the label on their own: on a
    marketplace no source covers, the product words are what stays. Dropping the product
    words too was measured: it teaches the context words the label instead, and F1 fell
    (benchmarks/results/loso_ideas_dropout.md).

    Args:
        titles: Raw titles.
        p: Probability of dropping a word outside a lexicon term.
        seed: Seed of the draws: the same titles and seed give the same copies.

    Returns:
        One thinned, normalised title per title (normalisation is idempotent, so the
        pipeline's own normalisation leaves it as it is).
    """
    rng = np.random.default_rng(seed)
    lexicon = LexiconFeatures(head=False).fit()
    out = []
    for text in TextNormalizer().fit(None).transform(list(titles)):
        words = text.split()
        keep = rng.random(len(words)) >= p
        if words:
            named = {word for term in lexicon.matches(text) for word in term.split()}
            keep |= np.fromiter((word in named for word in words), dtype=bool, count=len(words))
            if not keep.any():
                keep[rng.integers(len(words))] = True
        out.append(" ".join(word for word, k in zip(words, keep, strict=True) if k))
    return out


def with_thinned_copies(frame: pd.DataFrame, model: ModelConfig) -> pd.DataFrame:
    """Training rows plus thinned copies (`thin_titles`) of `model.word_dropout_copies` of
    them, as one more source (`THINNED_SOURCE`; `weighted_rows` weighs it by
    `model.word_dropout_weight`)."""
    copied = frame.sample(frac=model.word_dropout_copies, random_state=model.word_dropout_seed)
    extra = pd.DataFrame(
        {
            "title": thin_titles(copied["title"], model.word_dropout, model.word_dropout_seed),
            "cluster": copied["cluster"].to_numpy(),
            "source": THINNED_SOURCE,
        }
    )
    return pd.concat([frame[["title", "cluster", "source"]], extra], ignore_index=True)


def weighted_rows(
    frame: pd.DataFrame, model: ModelConfig, source_scale: dict[str, float] | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows a pipeline is fitted on (`title`, `cluster`, `source`; the lexicon's
    documents added when the model uses them) and their sample weights.

    `source_scale` multiplies the weights of the named sources' rows (after balancing),
    as adaptation weighs the titles it adopts.
    """
    scale: float | np.ndarray = 1.0
    rows = frame[["title", "cluster", "source"]]
    if model.word_dropout:
        rows = with_thinned_copies(rows, model)
        source_scale = {THINNED_SOURCE: model.word_dropout_weight, **(source_scale or {})}
    if model.lexicon_documents:
        rows, scale = with_lexicon_documents(rows, model.lexicon_documents)
    if source_scale:
        scale = scale * rows["source"].map(source_scale).fillna(1.0).to_numpy()
    return rows, sample_weights(rows, model) * scale


def fit_pipeline(
    frame: pd.DataFrame,
    features: FeatureConfig,
    model: ModelConfig,
    source_scale: dict[str, float] | None = None,
) -> Pipeline:
    """Build and fit the pipeline on training rows (`title`, `cluster`, `source`),
    weighted as `weighted_rows` weighs them."""
    rows, weights = weighted_rows(frame, model, source_scale)
    return fit_rows(build_pipeline(features, model), rows, weights)


def fit_rows(pipeline: Pipeline, rows: pd.DataFrame, weights: np.ndarray) -> Pipeline:
    """Fit `pipeline` on the rows and weights `weighted_rows` returns."""
    # Plain arrays: scikit-learn's cross-validated calibration indexes y by position, and
    # a subset frame's index is not 0..n-1.
    titles, clusters = rows["title"].to_numpy(), rows["cluster"].to_numpy()
    thinned = (rows["source"] == THINNED_SOURCE).to_numpy()
    if not thinned.any():
        return pipeline.fit(titles, clusters, classifier__sample_weight=weights)
    X, order = fit_features(pipeline[:-1], titles, thinned)
    pipeline.steps[-1][1].fit(X, clusters[order], sample_weight=weights[order])
    return pipeline


def fit_features(
    front: Pipeline, titles: np.ndarray, thinned: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Fit the feature steps `front` on the titles that are not thinned copies, and
    transform all of them.

    A copy repeats n-grams of its original: counted in the vocabulary, every n-gram of a
    single title would pass `min_df` (and the bigrams a dropped word leaves would enter
    it). So the feature steps are fitted on the other rows; the copies are only
    transformed.

    Returns:
        The feature matrix, originals first, and the row of `titles` each of its rows is.
    """
    X = sp.vstack(
        [front.fit_transform(titles[~thinned]), front.transform(titles[thinned])], format="csr"
    )
    return X, np.concatenate([np.flatnonzero(~thinned), np.flatnonzero(thinned)])
