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
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from clustercls.artifact import Artifact, ArtifactError, latest_model_dir, load_artifact
from clustercls.classifier import FullMixClassifier, proba_and_screen
from clustercls.explain import NO_EXPLANATION, Explainer
from clustercls.familiarity import TokenKinds, familiarity_of
from clustercls.parallel import WorkerPool, usable_cores
from clustercls.policy import decide, negative_label, serving_rules
from clustercls.schema import OUTPUT
from clustercls.text import raw_limit

__all__ = ["Model", "compiled_parts", "load_model"]

PARALLEL_MIN_ROWS = 10_000
"""A call splits its titles over worker processes only when each part gets this many."""

OWN_PART_WEIGHT = 1.17
"""The part of a split call this process scores itself, relative to a worker's: a worker
also unpickles its titles and pickles its rows back, which this process then waits for.
With equal parts it waited 0.10 s per 100,000 distinct titles on two cores; with this
weight the parts end together (82,700 -> 85,400 titles/s)."""

BLOCK_ROWS = 2048
"""Rows scored at once inside one process. Blocks of 8,192 were no faster and raised the
CLI's peak memory on 1,000,000 distinct titles from 828 to 985 MiB (two processes): the
per-block n-gram arrays are the largest transient allocation."""

OK = "ok"
STATUSES = ("ok", "empty_title", "missing_title", "non_text", "invalid_text", "truncated")
"""Per-row statuses. Every status but `ok` forces the `review` decision."""


def _status_and_text(value: object, limit: int | None) -> tuple[str, object]:
    """Classify one raw input value and return what the pipeline scores.

    `limit` is how many characters of a title the normaliser reads (`text.raw_limit`):
    a longer title is scored on those, as the pipeline scores it, and marked `truncated`.
    """
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
    if limit is not None and len(value) > limit:
        return "truncated", value
    return OK, value


def _statuses(values: list, limit: int | None) -> tuple[np.ndarray, list]:
    """Each value's status and the text the pipeline scores (see `_status_and_text`).

    The usual block (every value a str within the limit, none holding U+FFFD) is all
    `ok` and scored as it is: told in three passes over the block, not one call per title.
    """
    if all(type(v) is str for v in values) and (
        limit is None or max(map(len, values), default=0) <= limit
    ):
        if "\ufffd" not in "".join(values):
            return np.full(len(values), OK, dtype=object), values
    checked = [_status_and_text(v, limit) for v in values]
    return np.array([s for s, _ in checked], dtype=object), [t for _, t in checked]


def compiled_parts() -> dict[str, bool]:
    """Which compiled twins this process scores with: the normaliser's cleaning passes,
    the char n-gram counter and the token lookup (word n-grams, lexicon, familiarity).
    Without them results are the same and scoring about half as fast (not built, or
    `CLUSTERCLS_PURE_PYTHON` set); the batch command reports it.

    Returns:
        ``{"normaliser": bool, "char n-grams": bool, "token lookup": bool}``.
    """
    from clustercls.features import _compiled_char_counter
    from clustercls.text.native import _native_settle
    from clustercls.text.tokens import compiled_token_lookup

    return {
        "normaliser": _native_settle() is not None,
        "char n-grams": _compiled_char_counter() is not None,
        "token lookup": compiled_token_lookup() is not None,
    }


class Model:
    """A loaded clustercls model with its policy thresholds.

    Scoring is the saved pipeline's own: its first step normalises, the steps between
    build the features, its last step gives the probabilities (`Pipeline.predict_proba`
    step by step, a test checks the two agree). The model adds what enforcement needs
    around it: statuses, repeated titles scored once, decisions, reasons, familiarity.

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
        # What an empty title gets, as recorded at training time (`policy.negative_label`).
        self.negative: str = negative_label(self.metadata)
        self._normalizer = self.pipeline.steps[0][1]
        self._feature_steps = [step for _, step in self.pipeline.steps[1:-1]]
        self._classifier = self.pipeline.steps[-1][1]
        # What `reason` calls the probability the review screens on.
        self._screen_name = (
            "protected p before the marketplace mix"
            if isinstance(self._classifier, FullMixClassifier)
            else "protected p"
        )
        self._raw_limit = (
            raw_limit(self._normalizer.max_length)
            if hasattr(self._normalizer, "max_length")
            else None
        )
        # Rules from the model's own copy of the policy (a model trained before they
        # existed gets the defaults), so `policy_version` names what decided.
        self.serving = serving_rules(self.metadata)
        self._threshold_texts = (
            f"{self.thresholds['review']:.2f}",
            {c: f"{t:.2f}" for c, t in self.thresholds["block"].items()},
        )
        self._explanation: Explainer | None = None
        self._explanation_built = False
        self._kinds: TokenKinds | None = None
        self._kinds_built = False
        self._pool = WorkerPool(self)
        output = OUTPUT.predict_columns(self.labels)
        # Names as a tuple to iterate (an Index of pandas strings iterates slowly) and as
        # the Index the frames are given.
        self._column_names = tuple(name for name, _ in output)
        self._columns = pd.Index(self._column_names)
        self._text_columns = tuple(name for name, dtype in output if dtype == "string")

    def __repr__(self) -> str:
        return f"Model(version={self.version!r}, policy_version={self.policy_version!r})"

    def close(self) -> None:
        """Stop this model's worker processes; a later large call starts them again.

        Long-running jobs that load a newer model call this on the old one (or use the
        model as a context manager) so its workers do not outlive it.
        """
        self._pool.shutdown()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def prepare(self) -> None:
        """Build what scoring derives from the fitted pipeline on first use (explanation
        weights, familiarity's word table, the estimators' lookup tables), so that worker
        processes forked afterwards share it instead of each building its own."""
        self._explainer()
        self._word_kinds()
        self._proba([""])

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
            weights = np.array([1.0] * (jobs - 1) + [OWN_PART_WEIGHT])
            bounds = np.concatenate([[0], np.cumsum(weights) / weights.sum() * len(values)])
            bounds = bounds.round().astype(int)
            parts = [
                (values[a:b], None if flags is None else flags[a:b])
                for a, b in pairwise(bounds[:-1])
            ]
            futures = self._pool.map_parts(parts)
            start = bounds[-2]
            own = self._predict_serial(values[start:], None if flags is None else flags[start:])
            return pd.concat([*(f.result() for f in futures), own], ignore_index=True)
        return self._predict_serial(values, flags)

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
        status, texts = _statuses(values, self._raw_limit)
        # `predict` already dropped repeated inputs; different raw titles can still
        # normalise alike ("KOPI!!" and "kopi"), and each normal form is scored once.
        normalised = self._normalize(texts)
        status[(status == OK) & (normalised == "")] = "empty_title"
        status[(status == "truncated") & (normalised == "")] = "empty_title"
        first, inverse = _first_occurrences(list(normalised), None)
        unique_texts = list(normalised[first])
        unique_proba, unique_features, unique_screen = self._scored(unique_texts)
        unique_best = unique_proba.argmax(axis=1)
        explainer = self._explainer()
        if explainer is None:
            unique_grams = np.full(len(first), NO_EXPLANATION, dtype=object)
            unique_json = np.full(len(first), "[]", dtype=object)
        else:
            unique_grams, unique_json = explainer.top_ngram_lists(unique_features, unique_best, k=3)
        unique_familiarity = familiarity_of(unique_texts, self._word_kinds())
        proba, best = unique_proba[inverse], unique_best[inverse]
        grams, top_json = unique_grams[inverse], unique_json[inverse]
        familiarity = unique_familiarity[inverse]
        unfamiliar = familiarity < self.serving.min_familiarity
        cluster = np.asarray(self.labels, dtype=object)[best]
        confidence = proba[np.arange(len(values)), best]
        empty = normalised == ""
        cluster[empty] = self.negative
        confidence[empty] = 0.0
        proba[empty] = 0.0
        judgeable = status == OK
        # The review screens on the classifier's own probabilities: the same as `proba`
        # but for a model adapted to a marketplace's full mix (`FullMixClassifier`).
        protected = unique_screen[:, self._protected_columns].sum(axis=1)[inverse]
        protected[empty] = 0.0
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
        columns = {name: data[name] for name in self._column_names}
        return _frame(columns, self._columns, self._text_columns)

    def _word_kinds(self) -> TokenKinds | None:
        """The token kinds familiarity looks up (built on first use)."""
        if not self._kinds_built:
            self._kinds = TokenKinds.of(self.pipeline)
            self._kinds_built = True
        return self._kinds

    def _normalize(self, titles: list) -> np.ndarray:
        """The pipeline's first step: raw titles to normalised text."""
        return np.asarray(self._normalizer.transform(titles), dtype=object)

    def _proba(self, normalised: list[str]) -> tuple[np.ndarray, sp.spmatrix]:
        """Probabilities of normalised titles, and their features: the pipeline's
        feature steps and classifier, run as `Pipeline.predict_proba` runs them."""
        proba, features, _ = self._scored(normalised)
        return proba, features

    def _scored(self, normalised: list[str]) -> tuple[np.ndarray, sp.spmatrix, np.ndarray]:
        """`_proba`, and the probabilities the review screens on
        (`classifier.proba_and_screen`)."""
        if len(normalised) == 0:
            empty = np.zeros((0, len(self.labels)))
            return empty, sp.csr_matrix((0, 0)), empty
        features = normalised
        for step in self._feature_steps:
            features = step.transform(features)
        proba, screen = proba_and_screen(self._classifier, features)
        return proba, features, screen

    def _explainer(self) -> Explainer | None:
        """The model's explainer (built on first use), or None when it has no word
        n-grams with linear weights: predictions then carry no n-grams."""
        if not self._explanation_built:
            self._explanation = Explainer.of(self.pipeline)
            self._explanation_built = True
        return self._explanation

    def _require_explainer(self) -> Explainer:
        """`_explainer()`, for the callers that need it.

        Raises:
            ArtifactError: If the model has no word n-grams with linear weights.
        """
        explanation = self._explainer()
        if explanation is None:
            raise ArtifactError("the model's classifier exposes no linear weights to explain with")
        return explanation

    def _reason(
        self, cluster, p, protected, decision, status, grams, cross_border, familiarity
    ) -> str:
        if status != OK:
            return f"title not judgeable ({status}): sent to review"
        if not cross_border:
            return f"{cluster} p={p:.2f}; domestic seller, not restricted; {grams}"
        # The thresholds as text are formatted once per model, not once per title.
        review, block_at = self._threshold_texts
        block = block_at.get(cluster)
        if decision == "block":
            rule = f"{cluster} p={p:.2f} >= block threshold {block}"
        elif (
            block is not None
            and p >= self.thresholds["block"][cluster]
            and familiarity < self.serving.min_familiarity
        ):
            least = self.serving.min_familiarity
            rule = (
                f"{cluster} p={p:.2f} >= block threshold {block}, but the title is "
                f"unfamiliar (familiarity {familiarity:.2f}: share of its words the model "
                f"knows, below {least:.2f}): review, never block"
            )
        elif decision == "review":
            rule = f"{cluster} p={p:.2f}; {self._screen_name}={protected:.2f} >= review threshold {review}"
            if block is not None:
                rule += f", below block {block}"
        else:
            rule = f"{cluster} p={p:.2f}; {self._screen_name}={protected:.2f} < review threshold {review}"
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
        explainer = self._require_explainer()
        normalised = list(self._normalize([title]))
        proba, features = self._proba(normalised)
        best = proba.argmax(axis=1)
        top = explainer.top_ngrams(sp.csr_matrix(features), best, k)[0]
        return pd.DataFrame(
            {
                "ngram": [g for g, _ in top],
                "weight": [round(w, 4) for _, w in top],
                "cluster": self.labels[best[0]],
            }
        )


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


def _first_occurrences(values: list, flags: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first occurrence of each distinct value (with its flag), and each
    value's position among them. Unhashable values are all treated as distinct."""
    if flags is None:
        try:
            # Titles that are all distinct even by Python equality (1 == 1.0 == True) are
            # distinct by type too: told by one C-level pass, the common case of a large
            # call, instead of the loop below.
            if len(dict.fromkeys(values)) == len(values):
                return np.arange(len(values)), np.arange(len(values))
        except TypeError:
            return np.arange(len(values)), np.arange(len(values))
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
        from clustercls.registry import download_registered_model

        return Model(load_artifact(download_registered_model(str(path_or_uri))), n_jobs)
    return Model(load_artifact(Path(path_or_uri)), n_jobs)
