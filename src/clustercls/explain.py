"""Explanations: which word n-grams pushed a title towards its cluster.

Optional per model: they need a feature step with a `word` block and a classifier with
linear weights. Without them a model still predicts, and its reason says that no n-gram
explanation is available.
"""

from __future__ import annotations

from functools import cache
from itertools import pairwise
from json.encoder import encode_basestring_ascii

import numpy as np
import scipy.sparse as sp

from clustercls.familiarity import WORD_BLOCK

NO_EXPLANATION = "no n-gram explanation available (the model has no linear weights)"
_FEW_TITLES = 16
_DECIMALS = 4
_TABLED = 100_000  # weights below 10 (10**_DECIMALS * 10): nearly every contribution


class Explainer:
    """Word n-gram names and their per-class weights, read off a fitted pipeline.

    Explanations use the word block only: a reviewer or a seller can read "kemeja" or
    "kopi bubuk", not " kop" or "ja ".

    Args:
        names: The word n-grams, in the order of their columns.
        columns: Where the word block sits among the feature columns.
        weights: Classes x word n-grams; n-grams of one letter (leftover sizes such as
            "s" or "m") are given weight 0, they explain nothing.
    """

    def __init__(self, names: np.ndarray, columns: slice, weights: np.ndarray) -> None:
        readable = np.array([len(n) >= 2 for n in names], dtype=bool)
        self.names = names
        self.columns = columns
        self.weights = weights * readable
        # The names as JSON strings and as the reason quotes them, made once per model
        # (before workers fork, so they share them).
        self.quoted = np.array(list(map(encode_basestring_ascii, names.tolist())), dtype=object)
        self.in_reason = np.array([f"'{name}'" for name in names.tolist()], dtype=object)

    @classmethod
    def of(cls, pipeline) -> Explainer | None:
        """The explainer of a fitted pipeline, or None when it has no word block or its
        classifier no linear weights."""
        classifier = pipeline.steps[-1][1]
        n_classes = len(classifier.classes_)
        for _, step in pipeline.steps[1:-1]:
            columns = step.block_columns(WORD_BLOCK) if hasattr(step, "block_columns") else None
            if columns is None:
                continue
            word = dict(step.transformer_list)[WORD_BLOCK]
            names = np.asarray(word.get_feature_names_out(), dtype=object)
            weights = linear_weights(classifier, n_classes)
            if weights is None or weights.shape[1] < columns.stop:
                return None
            return cls(names, columns, weights[:, columns])
        return None

    def ranked(
        self, features: sp.csr_matrix, best: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row, the k word n-grams with the largest positive contribution to its
        cluster: their rows (ascending), word indices and contributions (descending per
        row)."""
        if type(features) is not sp.csr_matrix:
            features = sp.csr_matrix(features)
        row = np.repeat(np.arange(features.shape[0]), np.diff(features.indptr))
        word = (features.indices >= self.columns.start) & (features.indices < self.columns.stop)
        row, cols = row[word], features.indices[word] - self.columns.start
        contrib = features.data[word] * self.weights[best[row], cols]
        positive = contrib > 0
        row, cols, contrib = row[positive], cols[positive], contrib[positive]
        rank = rank_by_sorting if features.shape[0] <= _FEW_TITLES else rank_by_passes
        keep = rank(row, contrib, k)
        return row[keep], cols[keep], contrib[keep]

    def top_ngrams(
        self, features: sp.csr_matrix, best: np.ndarray, k: int
    ) -> list[list[tuple[str, float]]]:
        """Per row, the k strongest word n-grams with their contributions."""
        rows, cols, contrib = self.ranked(features, best, k)
        out: list[list[tuple[str, float]]] = [[] for _ in range(features.shape[0])]
        for r, name, value in zip(rows, self.names[cols], contrib, strict=True):
            out[r].append((name, float(value)))
        return out

    def top_ngram_lists(
        self, features: sp.csr_matrix, best: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the k strongest word n-grams twice: for the reason ("top n-grams:
        'kemeja', 'batik'", or "none") and as the `top_ngrams` JSON, [ngram, weight]
        pairs (as `schema.format_top_ngrams` writes them)."""
        if features.shape[0] == 1 and type(features) is sp.csr_matrix:
            return self._top_ngram_lists_one(features, int(best[0]), k)
        rows, cols, contrib = self.ranked(features, best, k)
        quoted = self.in_reason[cols].tolist()
        # JSON text by formatting: json.dumps per row costs more than the scoring. A
        # Python float's repr is valid JSON, and names are quoted once per model.
        pairs = [
            f"[{name}, {weight}]"
            for name, weight in zip(self.quoted[cols].tolist(), rounded_reprs(contrib), strict=True)
        ]
        bounds = np.searchsorted(rows, np.arange(features.shape[0] + 1)).tolist()
        grams = np.empty(features.shape[0], dtype=object)
        grams[:] = [
            "top n-grams: " + (", ".join(quoted[a:b]) or "none") for a, b in pairwise(bounds)
        ]
        top = np.empty(features.shape[0], dtype=object)
        top[:] = ["[" + ", ".join(pairs[a:b]) + "]" for a, b in pairwise(bounds)]
        return grams, top

    def _top_ngram_lists_one(
        self, features: sp.csr_matrix, best: int, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """`top_ngram_lists` of a single title (a single-title call): the same
        contributions, order and text (a test checks it), ranked and written in Python,
        where numpy's per-call cost outweighs a dozen n-grams."""
        indices = features.indices
        word = (indices >= self.columns.start) & (indices < self.columns.stop)
        cols = indices[word] - self.columns.start
        values = (features.data[word] * self.weights[best, cols]).tolist()
        cols = cols.tolist()
        # Largest first, exact ties in position order, as `rank_by_sorting` keeps them.
        order = sorted((i for i, v in enumerate(values) if v > 0), key=lambda i: -values[i])[:k]
        in_reason, quoted = self.in_reason, self.quoted
        grams = np.empty(1, dtype=object)
        grams[0] = "top n-grams: " + (", ".join([in_reason[cols[i]] for i in order]) or "none")
        weights = _rounded_repr_list([values[i] for i in order])
        top = np.empty(1, dtype=object)
        top[0] = (
            "["
            + ", ".join([f"[{quoted[cols[i]]}, {w}]" for i, w in zip(order, weights, strict=True)])
            + "]"
        )
        return grams, top


def _rounded_repr_list(values: list[float]) -> list[str]:
    """`rounded_reprs` of a few Python floats, without numpy: `round` rounds half to even
    like numpy's `rint`, and the product and quotient are the same IEEE operations."""
    scale = 10**_DECIMALS
    try:
        steps = [round(v * scale) for v in values]
    except (OverflowError, ValueError):  # inf or nan: numpy says what it says
        steps = [-1]
    if all(0 <= step < _TABLED for step in steps):
        return [repr(step / scale) for step in steps]
    return rounded_reprs(np.asarray(values, dtype=np.float64))


@cache
def _repr_table() -> np.ndarray:
    """`repr(k / 10**4)` for every k below `_TABLED` (built on first use, about 6 MB)."""
    scale = 10**_DECIMALS
    return np.array([repr(k / scale) for k in range(_TABLED)], dtype=object)


def rounded_reprs(values: np.ndarray) -> list[str]:
    """`repr(v)` of each value of `np.round(values, 4)`, looked up instead of formatted:
    numpy rounds by `rint(x * 10**4) / 10**4`, so a non-negative value below 10 is the
    table's entry `rint(x * 10**4)`. Formatting floats one by one cost more than the rest
    of an explanation."""
    steps = np.rint(np.asarray(values, dtype=np.float64) * 10**_DECIMALS)
    inside = (steps >= 0) & (steps < _TABLED)
    if inside.all():
        return _repr_table()[steps.astype(np.int64)].tolist()
    return [repr(v) for v in np.round(values, _DECIMALS).tolist()]


def linear_weights(classifier, n_classes: int) -> np.ndarray | None:
    """The linear weights (classes x features) of a classifier, averaged over the folds of
    a calibrated one, or None when it (or a fold's estimator) has no weights of one row
    per class."""
    # A marketplace's mix (`ProtectedMixClassifier`, `FullMixClassifier`) moves
    # probabilities, not the words' weights: the words that argue for a cluster are the
    # inner classifier's.
    classifier = getattr(classifier, "base_classifier_", classifier)
    folds = getattr(classifier, "calibrated_classifiers_", None)
    estimators = [fold.estimator for fold in folds] if folds else [classifier]
    coefs = [getattr(estimator, "coef_", None) for estimator in estimators]
    if any(c is None or np.ndim(c) != 2 or c.shape[0] != n_classes for c in coefs):
        return None
    if len({c.shape for c in coefs}) != 1:
        return None
    return np.mean(coefs, axis=0)


# Both rankings keep, per row (rows ascending), the k largest contributions in descending
# order, exact ties in position order, by exact comparisons: a combined float key would
# round near-equal contributions together, and a title's reason would then depend on its
# row in the call. A test checks that they agree.


def rank_by_sorting(row: np.ndarray, contrib: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest contributions per row: one sort (few titles, where
    numpy's per-call cost outweighs the sort)."""
    order = np.lexsort((-contrib, row))
    ranked_rows = row[order]
    rank = np.arange(len(order)) - np.searchsorted(ranked_rows, ranked_rows, side="left")
    return order[rank < k]


def rank_by_passes(row: np.ndarray, contrib: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest (positive) contributions per row: k passes, each taking
    per row the first entry equal to the row's largest remaining contribution. A few
    array operations per pass instead of sorting the block: a title has about a dozen
    positive n-grams, and the sort cost more than scoring them."""
    if not len(row):
        return np.zeros(0, dtype=np.int64)
    opens = np.ones(len(row), dtype=bool)
    np.not_equal(row[1:], row[:-1], out=opens[1:])
    starts, segment = np.flatnonzero(opens), np.cumsum(opens) - 1
    left = contrib.copy()  # positive until taken, then 0
    picked = []
    for _ in range(k):
        largest = np.maximum.reduceat(left, starts)
        hit = np.flatnonzero((left == largest[segment]) & (left > 0))
        if not len(hit):
            break
        first = np.ones(len(hit), dtype=bool)
        np.not_equal(segment[hit[1:]], segment[hit[:-1]], out=first[1:])
        taken = hit[first]
        picked.append(taken)
        left[taken] = 0.0
    keep = np.concatenate(picked)
    # Rows ascending; within a row, the order of the passes.
    return keep[np.argsort(row[keep], kind="stable")]
