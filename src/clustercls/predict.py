"""Prediction: the small, pure API the enforcement job imports.

`load_model()` returns a `Model`; `Model.predict(titles)` returns one row per title, in
order, with the columns of `clustercls.schema.OUTPUT`: the cluster, calibrated
probabilities, the enforcement decision, a human-readable reason and its n-grams as
data, how familiar the title's words are to the model, and a per-row status. Nothing here
needs MLflow unless a `models:/` URI is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import pairwise
from json.encoder import encode_basestring_ascii
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit

from clustercls.artifact import Artifact, ArtifactError, latest_model_dir, load_artifact
from clustercls.policy import ServingRules, decide
from clustercls.schema import OUTPUT
from clustercls.text import (
    UNIT_COUNT,
    UNIT_LEN,
    UNIT_MASS,
    UNIT_SIZE,
    UNIT_VOL,
    load_stopwords,
    normalize,
)

MAX_TITLE_CHARS = 1000
"""Titles longer than this are cut before scoring and marked `truncated`."""

PARALLEL_MIN_ROWS = 10_000
"""A call splits its titles over worker processes only when each part gets this many."""

BLOCK_ROWS = 2048
"""Rows scored at once inside one process. Blocks of 8,192 were no faster and raised the
CLI's peak memory on 1,000,000 distinct titles from 828 to 985 MiB (two processes): the
per-block n-gram arrays are the largest transient allocation."""

OK = "ok"
STATUSES = ("ok", "empty_title", "missing_title", "non_text", "invalid_text", "truncated")
"""Per-row statuses. Every status but `ok` forces the `review` decision."""


def _status_and_text(value: object) -> tuple[str, str]:
    """Classify one raw input value and return the text to score."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "missing_title", ""
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return "invalid_text", bytes(value).decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return "non_text", ""
    if "\ufffd" in value:
        # U+FFFD is what a reader substitutes for undecodable bytes.
        return "invalid_text", value
    if len(value) > MAX_TITLE_CHARS:
        return "truncated", value[:MAX_TITLE_CHARS]
    return OK, value


def compiled_parts() -> dict[str, bool]:
    """Which compiled twins this process scores with: the normaliser's cleaning passes
    and the char n-gram counter. Without them results are the same and scoring about half
    as fast (not built, or `CLUSTERCLS_PURE_PYTHON` set); the batch command reports it.

    Returns:
        ``{"normaliser": bool, "char n-grams": bool}``.
    """
    from clustercls.features import _compiled_char_counter
    from clustercls.text import _native_settle

    return {
        "normaliser": _native_settle() is not None,
        "char n-grams": _compiled_char_counter() is not None,
    }


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity and any container (cgroup) CPU quota
    taken into account, as joblib counts them."""
    import joblib

    return max(1, joblib.cpu_count())


UNIT_PLACEHOLDERS = frozenset({UNIT_MASS, UNIT_VOL, UNIT_LEN, UNIT_COUNT, UNIT_SIZE})
"""Tokens `normalize` puts in place of quantities: they say nothing of what the product is."""

# What each token is to familiarity: a word the model does not know, one it knows, one
# that does not count (stopword, unit placeholder), the break between two titles.
_UNKNOWN_WORD, _KNOWN_WORD, _NOT_COUNTED, _TITLE_BREAK = 0, 1, 2, 3
_KINDS = 4
_BREAK_TOKEN = "|"  # outside the normalised alphabet, so never a title's token
_FEW_TITLES = 16
_NO_EXPLANATION = "no n-gram explanation available (the model has no linear weights)"


def familiarity(pipeline, titles: Sequence[object] | pd.Series) -> np.ndarray:
    """Share of each title's words that the model knows as words.

    A title's words are its normalised tokens without stopwords and unit placeholders; a
    word is known when it is a unigram of the model's word vocabulary. A title with no
    words (empty, only numbers or quantities) scores 0: nothing in it is known. A low
    share means the model reads the title from fragments (brand names, part numbers,
    another market's words), where its confidence is least to be trusted.
    `Model.predict` reports the same values, rounded to 4 decimals, as `familiarity`.

    Args:
        pipeline: A fitted clustercls pipeline (steps `normalize` and `features`, whose
            first block, `word`, is the word TF-IDF).
        titles: Raw titles.

    Returns:
        One float in [0, 1] per title, in order.
    """
    texts = list(pipeline.named_steps["normalize"].transform(list(titles)))
    return _familiarity(texts, _word_kinds(pipeline.named_steps["features"]))


class _TokenKinds(dict):
    """Token -> kind; a token it does not hold is an unknown word. Looked up with
    `__getitem__`, whose misses alone reach Python: faster than `get(token, default)`."""

    def __missing__(self, token: str) -> int:
        return _UNKNOWN_WORD


def _word_kinds(features) -> _TokenKinds:
    """Every token familiarity tells apart, with its kind: the word vocabulary's unigrams
    are known, stopwords and unit placeholders do not count."""
    vocabulary = dict(features.transformer_list)["word"].vocabulary_
    kinds = _TokenKinds({term: _KNOWN_WORD for term in vocabulary if " " not in term})
    kinds.update(dict.fromkeys(load_stopwords(), _NOT_COUNTED))
    kinds.update(dict.fromkeys(UNIT_PLACEHOLDERS, _NOT_COUNTED))
    # Titles are split on single spaces (faster than on any whitespace, and normalised
    # text has no other): an empty title, or a stray double space, gives empty tokens.
    kinds[""] = _NOT_COUNTED
    kinds[_BREAK_TOKEN] = _TITLE_BREAK
    return kinds


def _familiarity(normalised: list[str], kinds: _TokenKinds) -> np.ndarray:
    """Familiarity of normalised titles (see `familiarity`)."""
    n = len(normalised)
    kind = kinds.__getitem__
    if n > _FEW_TITLES:
        # One dict lookup per token of the whole call (bytes() gathers the small ints in
        # C), then one count per (title, kind).
        tokens = f" {_BREAK_TOKEN} ".join(normalised).split(" ")
        found = np.frombuffer(bytes(map(kind, tokens)), dtype=np.int8)
        breaks = found == _TITLE_BREAK
        # A title holding the break token itself (never normalised text) would shift the
        # rows after it: such a call is counted title by title below.
        if breaks.sum() == n - 1:
            row = np.cumsum(breaks)
            counts = np.bincount(row * _KINDS + found, minlength=_KINDS * n).reshape(n, _KINDS)
            known = counts[:, _KNOWN_WORD]
            words = known + counts[:, _UNKNOWN_WORD]
            return np.divide(known, words, out=np.zeros(n), where=words > 0)
    out = np.zeros(n)
    # A few titles: list methods beat numpy's per-call setup.
    for i, text in enumerate(normalised):
        found = list(map(kind, text.split(" ")))
        known = found.count(_KNOWN_WORD)
        words = known + found.count(_UNKNOWN_WORD)
        if words:
            out[i] = known / words
    return out


class Model:
    """A loaded clustercls model with its policy thresholds.

    Args:
        artifact: A verified artifact from `clustercls.artifact.load_artifact`.
        n_jobs: Processes a large `predict` call is spread over (each loads and verifies
            the model once, then stays alive for later calls). 1 keeps everything in this
            process; None uses every usable core.
    """

    def __init__(self, artifact: Artifact, n_jobs: int | None = 1) -> None:
        self.artifact = artifact
        self.n_jobs = usable_cores() if n_jobs is None else max(1, int(n_jobs))
        self.pipeline = artifact.pipeline
        self.metadata = artifact.metadata
        self.labels: list[str] = list(self.pipeline.classes_)
        self.thresholds: dict = self.metadata["policy"]["chosen_thresholds"]
        self.protected: list[str] = list(self.metadata["protected"])
        self._protected_columns = [self.labels.index(c) for c in self.protected]
        self.version: str = self.metadata["version"]
        self.policy_version: str = self.metadata["policy_version"]
        self._normalizer = self.pipeline.named_steps["normalize"]
        self._features = self.pipeline.named_steps["features"]
        self._classifier = self.pipeline.named_steps["classifier"]
        # Rules from the model's own copy of the policy (a model trained before they
        # existed gets the defaults), so `policy_version` names what decided.
        self.serving = ServingRules.model_validate(self.metadata["policy"].get("serving", {}))
        self._explanation: tuple[np.ndarray, np.ndarray] | None = None
        self._explanation_built = False
        self._json_names: tuple[np.ndarray, np.ndarray] | None = None
        self._kinds: _TokenKinds | None = None
        self._fast = _FastCalibratedLinear.build(self._classifier, self.labels)
        self._pool = None
        self._pool_size = 0
        output = OUTPUT.predict_columns(self.labels)
        self._columns = pd.Index([name for name, _ in output])
        self._text_columns = tuple(name for name, dtype in output if dtype == "string")

    def __repr__(self) -> str:
        return f"Model(version={self.version!r}, policy_version={self.policy_version!r})"

    def close(self) -> None:
        """Stop this model's worker processes; a later large call starts them again.

        Long-running jobs that load a newer model call this on the old one (or use the
        model as a context manager) so its workers do not outlive it.
        """
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool, self._pool_size = None, 0
        key = str(self.artifact.path)
        if _WORKER_MODELS.get(key) is self:
            del _WORKER_MODELS[key]

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def predict(
        self, titles: Sequence[object] | pd.Series, cross_border: Iterable[bool] | None = None
    ) -> pd.DataFrame:
        """Classify titles and decide what enforcement does with each.

        Args:
            titles: Raw titles (any values: bad ones get a status, never an exception).
            cross_border: Optional per-title flag; False means a domestic seller, always
                `allow`.

        Returns:
            One row per title, in input order, with the columns of
            `clustercls.schema.OUTPUT` (`cluster`, `confidence`, `p_<cluster>` per
            cluster, `decision`, `reason`, `top_ngrams`, `familiarity`, `unfamiliar`,
            `status`).
        """
        values = list(titles)
        flags = None if cross_border is None else np.asarray(list(cross_border), dtype=bool)
        # Marketplaces repeat titles: each distinct (title, flag) is scored once per call.
        first, inverse = _first_occurrences(values, flags)
        if len(first) == len(values):
            return self._predict_distinct(values, flags)
        scored = self._predict_distinct(
            [values[i] for i in first], None if flags is None else flags[first]
        )
        return scored.take(inverse).reset_index(drop=True)

    def _predict_distinct(self, values: list, flags: np.ndarray | None) -> pd.DataFrame:
        jobs = min(self.n_jobs, len(values) // PARALLEL_MIN_ROWS)
        if jobs > 1:
            # This process scores the last part itself while jobs - 1 workers score the
            # rest: one model copy fewer in memory than handing every part out.
            bounds = np.linspace(0, len(values), jobs + 1).astype(int)
            executor = self._executor(jobs - 1)
            futures = [
                executor.submit(
                    _predict_in_worker,
                    str(self.artifact.path),
                    values[a:b],
                    None if flags is None else flags[a:b],
                )
                for a, b in pairwise(bounds[:-1])
            ]
            start = bounds[-2]
            own = self._predict_serial(values[start:], None if flags is None else flags[start:])
            return pd.concat([*(f.result() for f in futures), own], ignore_index=True)
        return self._predict_serial(values, flags)

    def _executor(self, workers: int):
        """Worker processes, started on first use and kept for later calls.

        Where the platform can fork, workers start as copies of this process with the
        model already loaded and verified: nothing is unpickled again, and the pages of
        the libraries and the model stay shared until written. Elsewhere loky starts
        fresh workers that load the model once each.
        """
        if self._pool is not None and self._pool_size < workers:
            self._pool.shutdown(wait=True)
            self._pool = None
        # A larger pool serves a smaller need: call sizes vary, and restarting workers
        # for each size would cost more than an idle one.
        if self._pool is None:
            import multiprocessing

            if "fork" in multiprocessing.get_all_start_methods():
                from concurrent.futures import ProcessPoolExecutor

                # Built before the fork, so the workers share them too.
                self._explainer()
                self._word_kinds()
                for _, step in self._features.transformer_list:
                    if hasattr(step, "_lookup"):
                        step._lookup()
                _WORKER_MODELS[str(self.artifact.path)] = self
                self._pool = ProcessPoolExecutor(
                    workers, mp_context=multiprocessing.get_context("fork")
                )
            else:
                from joblib.externals.loky import get_reusable_executor

                self._pool = get_reusable_executor(max_workers=workers)
            self._pool_size = workers
        return self._pool

    def _predict_serial(self, values: list, flags: np.ndarray | None) -> pd.DataFrame:
        if len(values) <= BLOCK_ROWS:
            return self._predict_block(values, flags)
        # Blocks bound the transient memory of the feature matrices whatever the call size.
        return pd.concat(
            [
                self._predict_block(
                    values[a : a + BLOCK_ROWS], None if flags is None else flags[a : a + BLOCK_ROWS]
                )
                for a in range(0, len(values), BLOCK_ROWS)
            ],
            ignore_index=True,
        )

    def _predict_block(self, values: list, flags: np.ndarray | None) -> pd.DataFrame:
        checked = [_status_and_text(v) for v in values]
        status = np.array([s for s, _ in checked], dtype=object)
        # `predict` already dropped repeated inputs; different raw titles can still
        # normalise alike ("KOPI!!" and "kopi"), and each normal form is scored once.
        normalised = self._normalize([t for _, t in checked])
        status[(status == OK) & (normalised == "")] = "empty_title"
        status[(status == "truncated") & (normalised == "")] = "empty_title"
        first, inverse = _first_occurrences(list(normalised), None)
        unique_texts = list(normalised[first])
        unique_proba, unique_features = self._proba(unique_texts)
        unique_best = unique_proba.argmax(axis=1)
        if self._explainer() is None:
            unique_grams = np.full(len(first), _NO_EXPLANATION, dtype=object)
            unique_json = np.full(len(first), "[]", dtype=object)
        else:
            unique_grams, unique_json = self._top_ngram_lists(unique_features, unique_best, k=3)
        unique_familiarity = _familiarity(unique_texts, self._word_kinds())
        proba, best = unique_proba[inverse], unique_best[inverse]
        grams, top_json = unique_grams[inverse], unique_json[inverse]
        familiarity = unique_familiarity[inverse]
        unfamiliar = familiarity < self.serving.min_familiarity
        cluster = np.asarray(self.labels, dtype=object)[best]
        confidence = proba[np.arange(len(values)), best]
        empty = normalised == ""
        cluster[empty] = "other"
        confidence[empty] = 0.0
        proba[empty] = 0.0
        judgeable = status == OK
        protected = proba[:, self._protected_columns].sum(axis=1)
        decision = decide(
            cluster, confidence, protected, self.thresholds, judgeable, flags, unfamiliar
        )
        # Python lists: formatting numpy scalars one by one costs twice as much.
        reason = [
            self._reason(c, p, q, d, s, g, x, f)
            for c, p, q, d, s, g, x, f in zip(
                cluster.tolist(),
                confidence.tolist(),
                protected.tolist(),
                decision.tolist(),
                status.tolist(),
                grams.tolist(),
                flags.tolist() if flags is not None else [True] * len(values),
                familiarity.tolist(),
                strict=True,
            )
        ]
        rounded = np.round(proba, 4)
        data = {
            "cluster": cluster,
            "confidence": np.round(confidence, 4),
            **{f"p_{label}": rounded[:, j] for j, label in enumerate(self.labels)},
            "decision": decision,
            "reason": reason,
            "top_ngrams": top_json,
            "familiarity": np.round(familiarity, 4),
            "unfamiliar": unfamiliar,
            "status": status,
        }
        # Ordered by the schema: a column it names that is not computed here fails loudly.
        columns = {name: data[name] for name in self._columns}
        return _frame(columns, self._columns, self._text_columns)

    def _word_kinds(self) -> _TokenKinds:
        """The token kinds `familiarity` looks up (built on first use)."""
        if self._kinds is None:
            self._kinds = _word_kinds(self._features)
        return self._kinds

    def _normalize(self, titles: list[str]) -> np.ndarray:
        """The pipeline's own normalisation step, minus scikit-learn's per-call wrapper
        (output-container inspection costs more than normalising one title)."""
        limit = self._normalizer.max_length
        return np.array([normalize(t, limit) for t in titles], dtype=object)

    def _proba(self, normalised: list[str]) -> tuple[np.ndarray, sp.csr_matrix]:
        """Probabilities of normalised titles, and their word TF-IDF block (explanations
        read the word n-grams only)."""
        if len(normalised) == 0:
            return np.zeros((0, len(self.labels))), sp.csr_matrix((0, 0))
        if self._features.transformer_weights is None:
            # FeatureUnion.transform adds per-call dispatch overhead that dominates
            # single-title latency; its output is the column-wise stack of these blocks.
            blocks = [step.transform(normalised) for _, step in self._features.transformer_list]
        else:
            blocks = [sp.csr_matrix(self._features.transform(normalised))]
        if self._fast is not None and len(blocks) > 1:
            return self._fast.predict_proba(blocks), blocks[0]
        features = _hstack_csr(blocks)
        proba = (self._fast or self._classifier).predict_proba(features)
        return proba, features

    def _explainer(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Word n-gram names and their class weights (built on first use), or None when
        the classifier has no linear weights: predictions then carry no n-grams.

        Explanations use the word block only: a reviewer or a seller can read "kemeja" or
        "kopi bubuk", not " kop" or "ja ". Word features come first in the union, so
        their columns are 0..len(names)-1.
        """
        if not self._explanation_built:
            word = dict(self._features.transformer_list)["word"]
            names = np.asarray(word.get_feature_names_out(), dtype=object)
            try:
                weights = _linear_weights(self._classifier, len(self.labels), len(names))
            except ArtifactError:
                weights = None
            if weights is not None:
                # One-letter tokens (leftover sizes such as "s" or "m") explain nothing.
                readable = np.array([len(n) >= 2 for n in names])
                self._explanation = names, weights[:, : len(names)] * readable
                self._quoted_names(names)
            self._explanation_built = True
        return self._explanation

    def _require_explainer(self) -> tuple[np.ndarray, np.ndarray]:
        """`_explainer()`, for the callers that need its weights.

        Raises:
            ArtifactError: If the classifier has no linear weights.
        """
        explanation = self._explainer()
        if explanation is None:
            raise ArtifactError("the model's classifier exposes no linear weights to explain with")
        return explanation

    def _ranked_ngrams(
        self, features: sp.csr_matrix, best: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row, the k word n-grams with the largest positive contribution to its
        cluster: their rows (ascending), columns and contributions (descending per row)."""
        _, weights = self._require_explainer()
        row = np.repeat(np.arange(features.shape[0]), np.diff(features.indptr))
        word = features.indices < weights.shape[1]
        row, cols = row[word], features.indices[word]
        contrib = features.data[word] * weights[best[row], cols]
        positive = contrib > 0
        row, cols, contrib = row[positive], cols[positive], contrib[positive]
        rank = _rank_by_sorting if features.shape[0] <= _FEW_TITLES else _rank_by_passes
        keep = rank(row, contrib, k)
        return row[keep], cols[keep], contrib[keep]

    def _top_ngrams(
        self, features: sp.csr_matrix, best: np.ndarray, k: int
    ) -> list[list[tuple[str, float]]]:
        """Per row, the k strongest word n-grams with their contributions."""
        names, _ = self._require_explainer()
        rows, cols, contrib = self._ranked_ngrams(features, best, k)
        out: list[list[tuple[str, float]]] = [[] for _ in range(features.shape[0])]
        for r, name, value in zip(rows, names[cols], contrib, strict=True):
            out[r].append((name, float(value)))
        return out

    def _top_ngram_lists(
        self, features: sp.csr_matrix, best: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the k strongest word n-grams twice: for the reason ("top n-grams:
        'kemeja', 'batik'", or "none") and as the `top_ngrams` JSON, [ngram, weight]
        pairs (as `schema.format_top_ngrams` writes them)."""
        names, _ = self._require_explainer()
        rows, cols, contrib = self._ranked_ngrams(features, best, k)
        picked = names[cols].tolist()
        quoted = [f"'{name}'" for name in picked]
        # JSON text by formatting: json.dumps per row costs more than the scoring. A
        # Python float's repr is valid JSON, and names are quoted once per model.
        pairs = [
            f"[{name}, {weight!r}]"
            for name, weight in zip(
                self._quoted_names(names)[cols].tolist(),
                np.round(contrib, 4).tolist(),
                strict=True,
            )
        ]
        bounds = np.searchsorted(rows, np.arange(features.shape[0] + 1)).tolist()
        grams = np.empty(features.shape[0], dtype=object)
        grams[:] = [
            "top n-grams: " + (", ".join(quoted[a:b]) or "none") for a, b in pairwise(bounds)
        ]
        top = np.empty(features.shape[0], dtype=object)
        top[:] = ["[" + ", ".join(pairs[a:b]) + "]" for a, b in pairwise(bounds)]
        return grams, top

    def _quoted_names(self, names: np.ndarray) -> np.ndarray:
        """The n-gram names as JSON strings (built once per names array, with the rest of
        the explainer: before workers fork, so they share it)."""
        if self._json_names is None or self._json_names[0] is not names:
            quoted = np.array(list(map(encode_basestring_ascii, names.tolist())), dtype=object)
            self._json_names = (names, quoted)
        return self._json_names[1]

    def _reason(
        self, cluster, p, protected, decision, status, grams, cross_border, familiarity
    ) -> str:
        if status != OK:
            return f"title not judgeable ({status}): sent to review"
        if not cross_border:
            return f"{cluster} p={p:.2f}; domestic seller, not restricted; {grams}"
        review = self.thresholds["review"]
        block = self.thresholds["block"].get(cluster)
        least = self.serving.min_familiarity
        if decision == "block":
            rule = f"{cluster} p={p:.2f} >= block threshold {block:.2f}"
        elif block is not None and p >= block and familiarity < least:
            rule = (
                f"{cluster} p={p:.2f} >= block threshold {block:.2f}, but the title is "
                f"unfamiliar (familiarity {familiarity:.2f}: share of its words the model "
                f"knows, below {least:.2f}): review, never block"
            )
        elif decision == "review":
            rule = (
                f"{cluster} p={p:.2f}; protected p={protected:.2f} >= review threshold {review:.2f}"
            )
            if block is not None:
                rule += f", below block {block:.2f}"
        else:
            rule = (
                f"{cluster} p={p:.2f}; protected p={protected:.2f} < review threshold {review:.2f}"
            )
        return f"{rule}; {grams}"

    def explain(self, title: str, k: int = 5) -> pd.DataFrame:
        """The n-grams that pushed a title most towards its predicted cluster.

        Args:
            title: A raw title.
            k: How many n-grams.

        Returns:
            Columns `ngram`, `weight` (feature value x class weight), strongest first, and
            the predicted `cluster` on every row.

        Raises:
            ArtifactError: If the model's classifier has no linear weights to explain with.
        """
        self._require_explainer()
        normalised = list(self._normalize([title]))
        proba, features = self._proba(normalised)
        best = proba.argmax(axis=1)
        top = self._top_ngrams(features, best, k)[0]
        return pd.DataFrame(
            {
                "ngram": [g for g, _ in top],
                "weight": [round(w, 4) for _, w in top],
                "cluster": self.labels[best[0]],
            }
        )


class _FastCalibratedLinear:
    """`CalibratedClassifierCV(linear model).predict_proba` in plain numpy, for sigmoid
    and temperature calibration.

    scikit-learn validates inputs at every layer (calibrated wrapper, each fold's
    calibrator, the estimator), which costs milliseconds per call: more than the
    arithmetic for a single title. This computes the same thing, one matrix product for
    all folds (a test checks it equals scikit-learn's output). Unlike scikit-learn's
    temperature calibrator it always reads the scores as logits: scikit-learn takes their
    log instead when every row of the call happens to look like probabilities, which
    would make one title's result depend on the others in its call.
    """

    def __init__(
        self, coef: np.ndarray, intercept: np.ndarray, method: str, params: dict, n_classes: int
    ) -> None:
        # Features x (folds * classes), C order: the rows of one feature block are a
        # contiguous slice, so blocks are multiplied without stacking them first.
        self.coef_t = np.ascontiguousarray(coef.T)
        self.intercept, self.method, self.params = intercept, method, params
        self.n_classes = n_classes

    @classmethod
    def build(cls, classifier, labels: list[str]) -> _FastCalibratedLinear | None:
        """The fast path for a fitted classifier, or None when it does not apply."""
        folds = getattr(classifier, "calibrated_classifiers_", None)
        method = getattr(classifier, "method", None)
        if not folds or method not in ("sigmoid", "temperature") or len(labels) < 3:
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

    def predict_proba(self, features: sp.csr_matrix | list[sp.csr_matrix]) -> np.ndarray:
        """Mean over folds of each fold's calibrated probabilities.

        Args:
            features: The feature matrix, or its column blocks in order.
        """
        blocks = features if isinstance(features, list) else [features]
        scores = np.zeros((blocks[0].shape[0], self.coef_t.shape[1]))
        offset = 0
        for block in blocks:
            scores += block @ self.coef_t[offset : offset + block.shape[1]]
            offset += block.shape[1]
        scores += self.intercept
        if self.method == "sigmoid":
            calibrated = expit(-(self.params["a"] * scores + self.params["b"]))
            per_fold = calibrated.reshape(scores.shape[0], -1, self.n_classes)
            total = per_fold.sum(axis=2, keepdims=True)
            uniform = np.full_like(per_fold, 1 / self.n_classes)
            per_fold = np.divide(per_fold, total, out=uniform, where=total != 0)
        else:
            logits = scores.reshape(scores.shape[0], -1, self.n_classes)
            per_fold = _softmax(self.params["beta"][None, :, None] * logits)
        # As scikit-learn: each fold's rounding overshoot is clipped, then folds averaged.
        per_fold[(per_fold > 1.0) & (per_fold <= 1.0 + 1e-5)] = 1.0
        return per_fold.mean(axis=1)


# Both rankings keep, per row (rows ascending), the k largest contributions in descending
# order, exact ties in position order, by exact comparisons: a combined float key would
# round near-equal contributions together, and a title's reason would then depend on its
# row in the call. A test checks that they agree.


def _rank_by_sorting(row: np.ndarray, contrib: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest contributions per row: one sort (few titles, where
    numpy's per-call cost outweighs the sort)."""
    order = np.lexsort((-contrib, row))
    ranked_rows = row[order]
    rank = np.arange(len(order)) - np.searchsorted(ranked_rows, ranked_rows, side="left")
    return order[rank < k]


def _rank_by_passes(row: np.ndarray, contrib: np.ndarray, k: int) -> np.ndarray:
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


def _softmax(x: np.ndarray) -> np.ndarray:
    """`scipy.special.softmax(x, axis=-1)`, by its own three steps but without its
    array-API dispatch, which costs a tenth of a single-title call (a test checks the two
    agree bit for bit)."""
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _frame(columns: dict[str, object], names: pd.Index, text: tuple[str, ...]) -> pd.DataFrame:
    """`pd.DataFrame(columns)` with `names` as its columns, built for speed.

    The constructor converts each text column to pandas' string dtype separately and
    builds a new column index: for a single title that is a quarter of a predict call.
    Here all text columns are converted in one go and the frame is assembled from the
    arrays directly; the result is the same frame (a test checks it), except that an
    empty call keeps the string dtype where pandas would infer object.
    """
    n = len(columns[text[0]])
    dtype = _string_dtype()
    plain = pd.api.types.is_object_dtype(dtype)
    if not plain:
        joined = pd.array(
            np.concatenate([np.asarray(columns[c], dtype=object) for c in text]), dtype=dtype
        )
        columns = {**columns, **{c: joined[i * n : (i + 1) * n] for i, c in enumerate(text)}}
    from_arrays = getattr(pd.DataFrame, "_from_arrays", None)
    if from_arrays is None:  # not public pandas API: fall back if it ever goes away
        return pd.DataFrame(columns, columns=names)
    arrays = [
        np.asarray(value, dtype=object) if plain and name in text else value
        for name, value in columns.items()
    ]
    return from_arrays(arrays, columns=names, index=pd.RangeIndex(n), verify_integrity=False)


@lru_cache(maxsize=1)
def _string_dtype():
    """The dtype pandas gives a column of Python strings (`str` from pandas 3, else object).

    Read once per process: asking per call costs as much as the conversion saves, and
    pandas deprecates switching string inference at run time.
    """
    return pd.Series(["x"]).dtype


def _hstack_csr(blocks: list[sp.csr_matrix]) -> sp.csr_matrix:
    """Column-wise concatenation of CSR blocks with the same rows (what FeatureUnion
    returns), without scipy's detour through COO."""
    first = blocks[0]
    if len(blocks) == 1:
        return first
    counts = np.stack([np.diff(b.indptr) for b in blocks])
    indptr = np.concatenate([[0], np.cumsum(counts.sum(axis=0))])
    data = np.empty(indptr[-1], dtype=np.result_type(*(b.dtype for b in blocks)))
    indices = np.empty(indptr[-1], dtype=np.int64)
    before = np.zeros(first.shape[0], dtype=np.int64)  # entries already placed per row
    offset = 0
    for block, count in zip(blocks, counts, strict=True):
        row_start = np.repeat(indptr[:-1] + before - block.indptr[:-1], count)
        positions = np.arange(block.nnz) + row_start
        data[positions] = block.data
        indices[positions] = block.indices + offset
        before += count
        offset += block.shape[1]
    return sp.csr_matrix((data, indices, indptr), shape=(first.shape[0], offset))


def _first_occurrences(values: list, flags: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first occurrence of each distinct value (with its flag), and each
    value's position among them. Unhashable values are all treated as distinct."""
    index: dict = {}
    first: list[int] = []
    inverse = np.empty(len(values), dtype=np.int64)
    # Keyed by type too: 1, 1.0 and True are equal in Python but not the same input.
    keys = (v if type(v) is str else (type(v), v) for v in values)
    if flags is not None:
        keys = zip(keys, flags.tolist(), strict=True)
    try:
        for i, key in enumerate(keys):
            j = index.get(key)
            if j is None:
                j = index[key] = len(first)
                first.append(i)
            inverse[i] = j
    except TypeError:
        return np.arange(len(values)), np.arange(len(values))
    return np.asarray(first, dtype=np.int64), inverse


_WORKER_MODELS: dict[str, Model] = {}


def _predict_in_worker(model_dir: str, values: list, flags: np.ndarray | None) -> pd.DataFrame:
    """Score one part of a large call in a worker process, loading the model once."""
    model = _WORKER_MODELS.get(model_dir)
    if model is None:
        model = _WORKER_MODELS[model_dir] = Model(load_artifact(Path(model_dir)))
    return model._predict_serial(values, flags)


def _linear_weights(classifier, n_classes: int, n_features: int) -> np.ndarray:
    """Average the linear weights of a calibrated classifier's folds (classes x features).

    Raises:
        ArtifactError: If the classifier (or a fold's estimator) has no weights of one
            row per class covering the word features.
    """
    folds = getattr(classifier, "calibrated_classifiers_", None)
    estimators = [fold.estimator for fold in folds] if folds else [classifier]
    coefs = [getattr(estimator, "coef_", None) for estimator in estimators]
    if any(
        c is None or np.ndim(c) != 2 or c.shape[0] != n_classes or c.shape[1] < n_features
        for c in coefs
    ):
        raise ArtifactError("the model's classifier exposes no linear weights to explain with")
    return np.mean(coefs, axis=0)


def load_model(
    path_or_uri: str | Path | None = None,
    models_dir: Path = Path("models"),
    n_jobs: int | None = None,
) -> Model:
    """Load a model for prediction.

    Args:
        path_or_uri: A model folder; a `models:/name@alias` or `models:/name/version` URI
            from the MLflow registry; or None for the newest folder under `models_dir`.
        models_dir: Where local models live.
        n_jobs: Processes large `predict` calls are spread over (see `Model`). The
            default, None, uses every usable core: the enforcement job's calls are large,
            and calls under `PARALLEL_MIN_ROWS` titles per process stay in this process
            whatever the setting. Pass 1 inside servers and other workers that must not
            fork.

    Returns:
        The verified model.

    Raises:
        ArtifactError: If the model is missing or fails verification.
    """
    if path_or_uri is None:
        return Model(load_artifact(latest_model_dir(models_dir)), n_jobs)
    if str(path_or_uri).startswith("models:/"):
        from clustercls.tracking import download_registered_model

        return Model(load_artifact(download_registered_model(str(path_or_uri))), n_jobs)
    return Model(load_artifact(Path(path_or_uri)), n_jobs)
