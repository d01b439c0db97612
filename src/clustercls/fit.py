"""Fitting: the pipeline (normalisation, features, calibrated classifier) and the row
weights it is fitted with. Training, leave-one-source-out folds and adaptation all fit
through `fit_pipeline`."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from clustercls.classifier import make_classifier
from clustercls.config import FeatureConfig, ModelConfig
from clustercls.features import build_features
from clustercls.lexicon import load_lexicon
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
    # Plain arrays: scikit-learn's cross-validated calibration indexes y by position, and
    # a subset frame's index is not 0..n-1.
    return build_pipeline(features, model).fit(
        rows["title"].to_numpy(),
        rows["cluster"].to_numpy(),
        classifier__sample_weight=weights,
    )
