"""The classifier stage: a calibrated linear model whose `predict_proba` serving can afford.

Serving runs the saved pipeline itself, so the speed-up for scoring a few titles at a time
lives here, inside the estimator, and not beside it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from clustercls.config import ModelConfig


class FastCalibratedClassifierCV(CalibratedClassifierCV):
    """`CalibratedClassifierCV` whose `predict_proba` is computed in plain numpy for
    linear estimators with sigmoid or temperature calibration.

    Fitting is scikit-learn's own. scikit-learn validates inputs at every layer when it
    predicts (calibrated wrapper, each fold's calibrator, the estimator), which costs
    milliseconds per call: more than the arithmetic for a single title. For sparse input
    this class computes the same probabilities with one matrix product for all folds
    (a test checks they equal scikit-learn's). Unlike scikit-learn's temperature
    calibrator it always reads the scores as logits: scikit-learn takes their log instead
    when every row of the call happens to look like probabilities, which would make one
    title's result depend on the others in its call. Any other set-up (isotonic
    calibration, a non-linear estimator, two classes, dense input) takes scikit-learn's
    path. The numpy copy of the weights is derived on first use and never pickled.
    """

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_fast_cache", None)
        return state

    def predict_proba(self, X) -> np.ndarray:
        """Mean over folds of each fold's calibrated class probabilities.

        Args:
            X: Feature matrix (rows x features).

        Returns:
            Array (rows x classes) in `classes_` order.
        """
        fast = self._fast() if sp.issparse(X) else None
        if fast is None:
            return super().predict_proba(X)
        if X.shape[1] != fast.coef_t.shape[0]:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{fast.coef_t.shape[0]} features as input."
            )
        return fast.predict_proba(X)

    def _fast(self) -> _CalibratedLinear | None:
        """The numpy form of the fitted folds (built once per fit), or None when it does
        not apply or the model is not fitted."""
        folds = getattr(self, "calibrated_classifiers_", None)
        cache = getattr(self, "_fast_cache", None)
        if cache is None or cache[0] is not folds:
            built = _CalibratedLinear.build(self) if folds else None
            cache = self._fast_cache = (folds, built)
        return cache[1]


class _CalibratedLinear:
    """The arithmetic of `CalibratedClassifierCV(linear model).predict_proba`."""

    def __init__(
        self, coef: np.ndarray, intercept: np.ndarray, method: str, params: dict, n_classes: int
    ) -> None:
        # Features x (folds * classes), C order: one sparse-dense product scores all folds.
        self.coef_t = np.ascontiguousarray(coef.T)
        self.intercept, self.method, self.params = intercept, method, params
        self.n_classes = n_classes

    @classmethod
    def build(cls, classifier: CalibratedClassifierCV) -> _CalibratedLinear | None:
        """The fast form of a fitted classifier, or None when it does not apply."""
        folds = classifier.calibrated_classifiers_
        labels = list(classifier.classes_)
        method = classifier.method
        if method not in ("sigmoid", "temperature") or len(labels) < 3:
            return None
        expected = len(labels) if method == "sigmoid" else 1
        for fold in folds:
            estimator = fold.estimator
            if (
                not hasattr(estimator, "coef_")
                # Fit on all rows (no ensemble), scikit-learn hands it encoded labels.
                or list(estimator.classes_) not in (labels, list(range(len(labels))))
                or len(fold.calibrators) != expected
            ):
                return None
        coef = np.concatenate([f.estimator.coef_ for f in folds])  # (folds * classes, features)
        intercept = np.concatenate(
            [np.broadcast_to(f.estimator.intercept_, (len(labels),)) for f in folds]
        )
        if method == "sigmoid":
            params = {
                "a": np.concatenate([[c.a_ for c in f.calibrators] for f in folds]),
                "b": np.concatenate([[c.b_ for c in f.calibrators] for f in folds]),
            }
        else:
            params = {"beta": np.array([float(f.calibrators[0].beta_) for f in folds])}
        return cls(coef, intercept, method, params, len(labels))

    def predict_proba(self, features: sp.spmatrix) -> np.ndarray:
        scores = np.asarray(features @ self.coef_t) + self.intercept
        if self.method == "sigmoid":
            calibrated = expit(-(self.params["a"] * scores + self.params["b"]))
            per_fold = calibrated.reshape(scores.shape[0], -1, self.n_classes)
            total = per_fold.sum(axis=2, keepdims=True)
            uniform = np.full_like(per_fold, 1 / self.n_classes)
            per_fold = np.divide(per_fold, total, out=uniform, where=total != 0)
        else:
            logits = scores.reshape(scores.shape[0], -1, self.n_classes)
            per_fold = softmax(self.params["beta"][None, :, None] * logits)
        # As scikit-learn: each fold's rounding overshoot is clipped, then folds averaged.
        per_fold[(per_fold > 1.0) & (per_fold <= 1.0 + 1e-5)] = 1.0
        return per_fold.mean(axis=1)


def softmax(x: np.ndarray) -> np.ndarray:
    """`scipy.special.softmax(x, axis=-1)`, by its own three steps but without its
    array-API dispatch, which costs a tenth of a single-title call (a test checks the two
    agree bit for bit)."""
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def make_classifier(config: ModelConfig) -> FastCalibratedClassifierCV:
    """Build the calibrated linear classifier.

    A linear SVM's margins are not probabilities; the enforcement thresholds need
    probabilities, so the classifier is wrapped in cross-validated calibration.

    Args:
        config: Classifier settings.

    Returns:
        An unfitted `FastCalibratedClassifierCV`.
    """
    if config.classifier == "linear_svc":
        # liblinear's dual solver visits rows in a random order: fixed, so reruns agree.
        base = LinearSVC(
            C=config.C,
            loss=config.loss,
            class_weight=config.class_weight,
            tol=config.tol,
            random_state=0,
        )
    elif config.classifier == "logreg":
        base = LogisticRegression(C=config.C, class_weight=config.class_weight, max_iter=2000)
    else:
        base = SGDClassifier(
            loss="modified_huber",
            alpha=1e-5 / config.C,
            class_weight=config.class_weight,
            random_state=0,
        )
    return FastCalibratedClassifierCV(
        base,
        method=config.calibration,
        cv=config.calibration_cv,
        ensemble=config.calibration_ensemble,
    )


def mix_em(
    proba: np.ndarray,
    strength: float = 0.0,
    weight: np.ndarray | None = None,
    trained: np.ndarray | None = None,
    max_iter: int = 500,
    tol: float = 1e-8,
) -> np.ndarray:
    """The class mix of the titles behind `proba`, by EM (Saerens, Latinne and Decaestecker
    2002).

    Args:
        proba: Probabilities (titles x classes).
        strength: Pseudo-titles at the training mix added to every step, so that the
            estimate of a small marketplace stays near it.
        weight: How much each title counts (default 1).
        trained: The class mix the probabilities were fitted at (default uniform).
        max_iter: Most EM steps.
        tol: Stop when no share moves more than this.

    Returns:
        The estimated share of each class (sums to 1); the training mix when no title
        counts and no pseudo-title is added.
    """
    weight = np.ones(len(proba)) if weight is None else np.asarray(weight, dtype=np.float64)
    k = proba.shape[1]
    trained = np.full(k, 1.0 / k) if trained is None else np.asarray(trained) / np.sum(trained)
    if weight.sum() + strength <= 0:
        return trained.copy()
    prior = trained.copy()
    for _ in range(max_iter):
        moved = mixed(proba, prior / trained)
        new = (weight @ moved + strength * trained) / (weight.sum() + strength)
        if np.abs(new - prior).max() < tol:
            return new
        prior = new
    return prior


def mixed(proba: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """`proba` moved to another class mix, `ratio` being each class's new prior over the
    one it was fitted at (Bayes' rule; a constant ratio changes nothing)."""
    # Floored so a row with no probability left anywhere stays finite rather than 0/0.
    adjusted = np.maximum(proba * ratio, 1e-300)
    return adjusted / adjusted.sum(axis=1, keepdims=True)


class _MixClassifier(ClassifierMixin, BaseEstimator):
    """What the marketplace-mix wrappers share: a fitted `classifier` inside, whose
    probabilities `proba_and_screen` moves to the mix `fit` estimated."""

    def _classes(self) -> np.ndarray:
        """The inner classifier's classes, once it and `strength` are checked."""
        check_is_fitted(self.classifier)
        if not self.strength >= 0:
            raise ValueError(f"strength must be >= 0, got {self.strength}")
        return np.asarray(self.classifier.classes_)

    def _trained(self, classes: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """The training mix over the classes `keep` marks, from `prior` (None: uniform)."""
        prior = np.ones(len(classes)) if self.prior is None else np.asarray(self.prior, float)
        if prior.shape != classes.shape or not (prior[keep] > 0).all():
            raise ValueError(f"prior needs a positive share per class of {classes.tolist()}")
        return prior[keep] / prior[keep].sum()

    def proba_and_screen(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The probabilities of `X` moved to the mix, and those the review screens on."""
        raise NotImplementedError

    def predict_proba(self, X) -> np.ndarray:
        """The classifier's probabilities moved to the marketplace's mix (`mix_`).

        Args:
            X: Feature matrix (rows x features).

        Returns:
            Array (rows x classes) in `classes_` order.
        """
        return self.proba_and_screen(X)[0]

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    @property
    def base_classifier_(self):
        """The fitted classifier inside (unwrapped from `FrozenEstimator`): its linear
        weights explain a title's cluster as they do without the mix."""
        inner = self.classifier
        return inner.estimator if isinstance(inner, FrozenEstimator) else inner


class ProtectedMixClassifier(_MixClassifier):
    """A fitted classifier whose protected probability is shared out by a marketplace's
    own mix of protected clusters.

    Marketplaces differ most in what they sell: one is nearly all food, another all
    fashion. A title the classifier doubts between two protected clusters is, on a food
    marketplace, most likely food. `fit` estimates the marketplace's mix among the
    protected clusters from its unlabelled titles (EM, each title counted by its protected
    probability, shrunk towards the training mix by `strength` pseudo-titles), and
    `predict_proba` moves each title's protected probability to that mix. The probability
    of every other class is the classifier's own, so whether a title is protected at all,
    and with it every review and every catch, is never moved by the mix: only which
    protected cluster it is. `FullMixClassifier` moves the whole mix and keeps the review
    on the classifier's own probabilities instead.

    Args:
        classifier: A fitted classifier with `predict_proba` and `classes_`, used as it
            is: `fit` never fits it. Wrap it in `sklearn.frozen.FrozenEstimator` so that
            `clone` keeps it fitted.
        protected: The protected classes (the policy's); the others' probabilities are
            left as they are.
        strength: Pseudo-titles at the training mix added to the marketplace's titles.
        prior: The class mix the classifier's probabilities were fitted at, in its
            `classes_` order (`fit_adapted` measures it: the weighted mean probability
            over its training rows); None: uniform.
        max_iter: Most EM steps.
        tol: EM stops when no share moves more than this.

    Attributes:
        classes_: The classifier's classes.
        mix_: The estimated share of each class among the protected ones (0 for the
            others), in `classes_` order.
        ratio_: Each protected class's share in `mix_` over its share at training.
        protected_columns_: The columns of the protected classes.
        n_titles_: How many titles the mix was estimated on.
    """

    def __init__(
        self,
        classifier,
        protected: tuple[str, ...] = (),
        strength: float = 50.0,
        prior=None,
        max_iter: int = 500,
        tol: float = 1e-8,
    ) -> None:
        self.classifier = classifier
        self.protected = protected
        self.strength = strength
        self.prior = prior
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y=None) -> ProtectedMixClassifier:
        """Estimate the protected mix of the titles whose features are `X`.

        Args:
            X: Features of the marketplace's titles (distinct titles, so that a title
                listed a thousand times does not decide the mix alone).
            y: Ignored: the marketplace's titles have no labels.

        Returns:
            self
        """
        classes = self._classes()
        unknown = set(self.protected) - set(classes.tolist())
        if len(set(self.protected)) < 2 or unknown:
            raise ValueError(
                f"protected must name at least two of the classes {classes.tolist()}, got "
                f"{list(self.protected)}"
            )
        keep = np.isin(classes, list(self.protected))
        trained = self._trained(classes, keep)
        proba = self.classifier.predict_proba(X)
        # Each title's split among the protected clusters, counted by how protected it is.
        within = mixed(proba[:, keep], np.ones(keep.sum()))
        mix = np.zeros(len(classes))
        mix[keep] = mix_em(
            within,
            self.strength,
            weight=proba[:, keep].sum(axis=1),
            trained=trained,
            max_iter=self.max_iter,
            tol=self.tol,
        )
        self.classes_ = classes
        self.mix_ = mix
        self.ratio_ = mix[keep] / trained
        self.protected_columns_ = np.flatnonzero(keep)
        self.n_titles_ = int(proba.shape[0])
        return self

    def proba_and_screen(self, X) -> tuple[np.ndarray, np.ndarray]:
        """`predict_proba(X)`, and the probabilities the review screens on: the
        classifier's own (their protected total is the same as after the mix)."""
        check_is_fitted(self, "mix_")
        proba = np.asarray(self.classifier.predict_proba(X), dtype=np.float64)
        columns = self.protected_columns_
        share = proba[:, columns]
        out = proba.copy()
        out[:, columns] = mixed(share, self.ratio_) * share.sum(axis=1, keepdims=True)
        return out, proba


class FullMixClassifier(_MixClassifier):
    """A fitted classifier whose probabilities are moved to a marketplace's own mix of
    every cluster, `other` included, while the review keeps screening on its own.

    On a marketplace that sells almost no craft, a title the classifier calls craft at
    0.9 is more likely one of the marketplace's many other goods that look like craft
    (Saerens, Latinne and Decaestecker 2002): `fit` estimates the marketplace's mix by EM
    on its unlabelled titles, shrunk towards the training mix by `strength` pseudo-titles,
    and `predict_proba` moves every probability to it. The cluster, its probability and
    so the block follow the moved probabilities. Moved probabilities of being protected
    fall exactly where protected listings are rare, and a review threshold on them would
    let those listings through; so `proba_and_screen` also returns the classifier's own
    probabilities, and the review screens on their protected total: a title the
    classifier alone would send to review still goes there (docs/training.md, "Adapting
    to a new marketplace").

    Args:
        classifier: A fitted classifier with `predict_proba` and `classes_`, used as it
            is: `fit` never fits it. Wrap it in `sklearn.frozen.FrozenEstimator` so that
            `clone` keeps it fitted.
        strength: Pseudo-titles at the training mix added to the marketplace's titles.
        prior: The class mix the classifier's probabilities were fitted at, in its
            `classes_` order (`fit_adapted` measures it); None: uniform.
        max_iter: Most EM steps.
        tol: EM stops when no share moves more than this.

    Attributes:
        classes_: The classifier's classes.
        mix_: The estimated share of each class, in `classes_` order.
        ratio_: Each class's share in `mix_` over its share at training.
        n_titles_: How many titles the mix was estimated on.
    """

    def __init__(
        self, classifier, strength: float = 1000.0, prior=None, max_iter: int = 500, tol=1e-8
    ) -> None:
        self.classifier = classifier
        self.strength = strength
        self.prior = prior
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y=None) -> FullMixClassifier:
        """Estimate the mix of the titles whose features are `X`.

        Args:
            X: Features of the marketplace's titles (distinct titles, so that a title
                listed a thousand times does not decide the mix alone).
            y: Ignored: the marketplace's titles have no labels.

        Returns:
            self
        """
        classes = self._classes()
        trained = self._trained(classes, np.ones(len(classes), dtype=bool))
        proba = self.classifier.predict_proba(X)
        self.classes_ = classes
        self.mix_ = mix_em(
            proba, self.strength, trained=trained, max_iter=self.max_iter, tol=self.tol
        )
        self.ratio_ = self.mix_ / trained
        self.n_titles_ = int(proba.shape[0])
        return self

    def proba_and_screen(self, X) -> tuple[np.ndarray, np.ndarray]:
        """`predict_proba(X)`, and the probabilities the review screens on: the
        classifier's own, before the mix."""
        check_is_fitted(self, "mix_")
        proba = np.asarray(self.classifier.predict_proba(X), dtype=np.float64)
        return mixed(proba, self.ratio_), proba


def proba_and_screen(classifier, X) -> tuple[np.ndarray, np.ndarray]:
    """A fitted classifier's probabilities of `X`, and the probabilities the review
    screens on: the same for a plain classifier; for one adapted to a marketplace's mix,
    its own before the mix (`FullMixClassifier`).

    Args:
        classifier: A fitted classifier (the last step of a pipeline).
        X: Its input.

    Returns:
        Two arrays (rows x classes) in `classes_` order, possibly the same object.
    """
    both = getattr(classifier, "proba_and_screen", None)
    if both is not None:
        return both(X)
    proba = classifier.predict_proba(X)
    return proba, proba


def pipeline_proba_and_screen(pipeline, X) -> tuple[np.ndarray, np.ndarray]:
    """`proba_and_screen` of a fitted pipeline's classifier on the pipeline's input `X`
    (raw titles): its steps transform `X` as `Pipeline.predict_proba` does."""
    features = X
    for _, step in pipeline.steps[:-1]:
        features = step.transform(features)
    return proba_and_screen(pipeline.steps[-1][1], features)
