"""The policy's knowledge as features: a versioned lexicon of product terms.

`resources/lexicon.csv` lists product terms in Indonesian and English (`term, lang,
concept, cluster, note`), each with the policy line it implements. A title that contains a
term gets that term's concept and cluster as features. The same concept in both languages
shares one feature ("kemeja" and "shirt" both fire `concept=shirt`), and every term of a
cluster fires the same `cluster=` feature, so what the model learns from the words the
training sources do contain carries to the words they barely contain, and from one
language or marketplace to another. They are features the classifier weighs, never
overrides: a look-alike ("rak sepatu", a shoe rack) has a concept of its own, and the
longest term that matches at a position wins over the shorter ones inside it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

LEXICON_COLUMNS = ("term", "lang", "concept", "cluster", "note")
MAX_TERM_WORDS = 4


@dataclass(frozen=True)
class Lexicon:
    """A parsed lexicon: one row per term, and the checksum of the file it came from."""

    rows: pd.DataFrame
    sha256: str


def default_lexicon_path() -> Path:
    """The lexicon shipped with the package."""
    return Path(str(resources.files("clustercls").joinpath("resources", "lexicon.csv")))


def load_lexicon(path: Path | str | None = None) -> Lexicon:
    """Read and validate a lexicon file.

    Args:
        path: A CSV with the columns of `LEXICON_COLUMNS` (`#` lines are comments);
            default the packaged `resources/lexicon.csv`.

    Returns:
        The rows (terms lower-cased and whitespace-collapsed) and the file's checksum.

    Raises:
        ValueError: On a missing column, an empty term or concept, a term of more than
            `MAX_TERM_WORDS` words, or a term listed twice.
    """
    path = Path(path) if path is not None else default_lexicon_path()
    raw = path.read_bytes()
    rows = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False)
    missing = [c for c in LEXICON_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    rows = rows[list(LEXICON_COLUMNS)].copy()
    rows["term"] = rows["term"].str.lower().str.split().str.join(" ")
    bad = rows[(rows["term"] == "") | (rows["concept"].str.strip() == "")]
    if len(bad):
        raise ValueError(f"{path}: row {bad.index[0] + 2} has an empty term or concept")
    long = rows[rows["term"].str.count(" ") >= MAX_TERM_WORDS]
    if len(long):
        raise ValueError(f"{path}: term {long['term'].iloc[0]!r} has more than 4 words")
    repeated = rows[rows["term"].duplicated()]
    if len(repeated):
        raise ValueError(f"{path}: term {repeated['term'].iloc[0]!r} is listed twice")
    return Lexicon(rows=rows.reset_index(drop=True), sha256=hashlib.sha256(raw).hexdigest())


class LexiconFeatures(TransformerMixin, BaseEstimator):
    """Concept and cluster indicators of the lexicon terms a normalised title contains.

    Each title is scanned left to right; at each word the longest lexicon term starting
    there matches, and scanning continues after it (so "tas bekal", a lunch bag, fires
    its own concept and not also that of "tas"). Every match sets `concept=<concept>` and
    `cluster=<cluster>`; with `head=True` the first match of the title also sets
    `head_cluster=<cluster>` (Indonesian titles usually start with the product noun).

    Args:
        path: Lexicon file; None for the packaged one. Read at `fit`: the fitted
            transformer keeps the terms, so a saved model does not depend on the file.
        weight: Value of each indicator (the classifier's regularisation sees features
            at this scale).
        head: Add the `head_cluster=` indicators.
        clusters: Add the `cluster=` indicators (off: concepts only).
    """

    def __init__(
        self, path: str | None = None, weight: float = 1.0, head: bool = True, clusters: bool = True
    ) -> None:
        self.path = path
        self.weight = weight
        self.head = head
        self.clusters = clusters

    def fit(self, X=None, y=None) -> LexiconFeatures:
        """Read the lexicon and fix the feature columns.

        Args:
            X: Ignored (the columns come from the lexicon, not the data).
            y: Ignored.

        Returns:
            self.
        """
        lexicon = load_lexicon(self.path)
        rows = lexicon.rows
        concepts = sorted(rows["concept"].unique())
        clusters = sorted(rows["cluster"].unique())
        names = [f"concept={c}" for c in concepts] + [f"cluster={c}" for c in clusters]
        if self.head:
            names += [f"head_cluster={c}" for c in clusters]
        column = {name: i for i, name in enumerate(names)}
        self.terms_ = {
            term: (column[f"concept={concept}"], column[f"cluster={cluster}"], cluster)
            for term, concept, cluster in rows[["term", "concept", "cluster"]].itertuples(
                index=False
            )
        }
        self.head_columns_ = {c: column[f"head_cluster={c}"] for c in clusters} if self.head else {}
        # Per term, the columns it sets and its cluster: what `transform` looks up.
        self.columns_ = {
            term: ((c, k) if self.clusters else (c,), name)
            for term, (c, k, name) in self.terms_.items()
        }
        # Longest phrase length per first word: most words start no term and cost one lookup.
        self.first_words_: dict[str, int] = {}
        for term in self.terms_:
            words = term.split(" ")
            self.first_words_[words[0]] = max(self.first_words_.get(words[0], 0), len(words))
        self.feature_names_ = np.asarray(names, dtype=object)
        self.lexicon_sha256_ = lexicon.sha256
        return self

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the indicator columns (`concept=...`, `cluster=...`, `head_cluster=...`)."""
        check_is_fitted(self, "terms_")
        return self.feature_names_.copy()

    def matches(self, text: str) -> list[str]:
        """The lexicon terms found in one normalised title, in order."""
        check_is_fitted(self, "terms_")
        return self._terms_in(text.split())

    def _terms_in(self, words: list[str]) -> list[str]:
        """The terms among `words`: at each word the longest term starting there, then
        on after it (this runs for every title served, beside the compiled counts)."""
        first_words, terms = self.first_words_, self.terms_
        # Most words start no term: find the few that do in one pass.
        starts = [i for i, word in enumerate(words) if word in first_words]
        found: list[str] = []
        n, after = len(words), 0
        for i in starts:
            if i < after:
                continue  # inside a longer term already matched
            for size in range(min(first_words[words[i]], n - i), 0, -1):
                term = words[i] if size == 1 else " ".join(words[i : i + size])
                if term in terms:
                    found.append(term)
                    after = i + size
                    break
        return found

    def transform(self, X) -> sp.csr_matrix:
        """Indicator matrix of normalised titles.

        Args:
            X: Normalised titles (strings).

        Returns:
            A CSR matrix, one row per title, `len(get_feature_names_out())` columns, float32.
        """
        check_is_fitted(self, "terms_")
        columns, head_columns = self.columns_, self.head_columns_
        indptr = [0]
        indices: list[int] = []
        for text in X:
            found = self._terms_in(text.split())
            if found:
                row: set[int] = set()
                for term in found:
                    row.update(columns[term][0])
                if head_columns:
                    row.add(head_columns[columns[found[0]][1]])
                indices.extend(sorted(row))
            indptr.append(len(indices))
        return sp.csr_matrix(
            (
                np.full(len(indices), self.weight, dtype=np.float32),
                np.asarray(indices, dtype=np.int32),
                np.asarray(indptr, dtype=np.int32),
            ),
            shape=(len(indptr) - 1, len(self.feature_names_)),
        )
