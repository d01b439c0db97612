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

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from clustercls.text import TITLE_BREAK, TokenTable

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


def plural(word: str) -> str:
    """The regular English plural of a word ("sheet" -> "sheets", "box" -> "boxes",
    "accessory" -> "accessories")."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if len(word) > 1 and word[-1] == "y" and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def english_plurals(rows: pd.DataFrame) -> pd.DataFrame:
    """Lexicon rows plus, for each English term, the term with its last word in the plural,
    as a row of the same concept and cluster.

    Titles name products in the plural as often as not ("Craft Felt Sheets", "Analogue
    Watches") and a term matches whole words only. Only regular plurals of words of three
    or more letters that do not already end in "s" are made, and a plural that is a term of
    the file itself keeps the file's row.
    """
    english = rows[rows["lang"] == "en"]
    split = english["term"].str.rsplit(" ", n=1)
    last = split.str[-1]
    usable = last.str.isalpha() & (last.str.len() >= 3) & ~last.str.endswith("s")
    variants = english[usable].assign(
        term=[" ".join([*head[:-1], plural(head[-1])]) for head in split[usable].tolist()],
        note=english.loc[usable, "term"].map(lambda t: f"plural of {t!r}"),
    )
    variants = variants[~variants["term"].isin(set(rows["term"]))]
    return pd.concat([rows, variants.drop_duplicates("term")], ignore_index=True)


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
        plurals: Also match English terms with their last word in the plural
            (`english_plurals`): the lexicon names "felt sheet", a title sells "felt sheets".
            Off by default: the leave-one-source-out table did not reward it
            (benchmarks/results/lexicon_v9.md).
        gap: Also match a two-word term with one other word between its words ("kopi
            robusta bubuk" names "kopi bubuk", "rak kayu sepatu" a shoe rack): Indonesian
            titles put a type or material inside the product's name. Such a match spans
            three words. It is taken only where no longer term is written out at its
            first word or at the word between ("tas bekal anak" stays a lunch bag, "baby
            dog clothes" dog clothes), and wins over a one-word term there.
    """

    # A model saved before `plurals` existed has no such attribute once unpickled and reads
    # this one, so its parameters still say what it was fitted with.
    plurals = False
    gap = False

    def __init__(
        self,
        path: str | None = None,
        weight: float = 1.0,
        head: bool = True,
        clusters: bool = True,
        plurals: bool = False,
        gap: bool = False,
    ) -> None:
        self.path = path
        self.weight = weight
        self.head = head
        self.clusters = clusters
        self.plurals = plurals
        self.gap = gap

    def fit(self, X=None, y=None) -> LexiconFeatures:
        """Read the lexicon and fix the feature columns.

        Args:
            X: Ignored (the columns come from the lexicon, not the data).
            y: Ignored.

        Returns:
            self.
        """
        lexicon = load_lexicon(self.path)
        rows = english_plurals(lexicon.rows) if self.plurals else lexicon.rows
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
        # Two-word terms by their first word, for matches with a word between (`gap`).
        self.gap_terms_: dict[str, frozenset[str]] = {}
        if self.gap:
            pairs: dict[str, set[str]] = {}
            for term in self.terms_:
                words = term.split(" ")
                if len(words) == 2:
                    pairs.setdefault(words[0], set()).add(words[1])
            self.gap_terms_ = {first: frozenset(last) for first, last in pairs.items()}
        self.feature_names_ = np.asarray(names, dtype=object)
        self.lexicon_sha256_ = lexicon.sha256
        # What `transform` looks up when it scans many titles at once (None when the
        # combined keys of the longest terms would not fit in 64 bits).
        self.tables_ = _TermTables.of(self)
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
        first_words, gap_terms = self.first_words_, getattr(self, "gap_terms_", {})
        # Most words start no term: find the few that do in one pass.
        starts = [i for i, word in enumerate(words) if word in first_words]
        found: list[str] = []
        n, after = len(words), 0
        for i in starts:
            if i < after:
                continue  # inside a longer term already matched
            term, matched = self._longest_at(words, i)
            if (
                matched <= 1
                and i + 2 < n
                and words[i + 2] in gap_terms.get(words[i], ())
                and self._longest_at(words, i + 1)[1] <= 1
            ):
                term, matched = f"{words[i]} {words[i + 2]}", 3
            if matched:
                found.append(term)
                after = i + matched
        return found

    def _longest_at(self, words: list[str], i: int) -> tuple[str, int]:
        """The longest term written out at word `i`, and its length in words (0: none)."""
        most = self.first_words_.get(words[i], 0)
        for size in range(min(most, len(words) - i), 0, -1):
            term = words[i] if size == 1 else " ".join(words[i : i + size])
            if term in self.terms_:
                return term, size
        return "", 0

    def transform(self, X) -> sp.csr_matrix:
        """Indicator matrix of normalised titles.

        Args:
            X: Normalised titles (strings).

        Returns:
            A CSR matrix, one row per title, `len(get_feature_names_out())` columns, float32.
        """
        check_is_fitted(self, "terms_")
        docs = X if isinstance(X, list) else list(X)
        if len(docs) > _FEW_TITLES:
            matrix = self._transform_block(docs)
            if matrix is not None:
                return matrix
        columns, head_columns = self.columns_, self.head_columns_
        indptr = [0]
        indices: list[int] = []
        for text in docs:
            found = self._terms_in(text.split())
            if found:
                row: set[int] = set()
                for term in found:
                    row.update(columns[term][0])
                if head_columns:
                    row.add(head_columns[columns[found[0]][1]])
                indices.extend(sorted(row))
            indptr.append(len(indices))
        return self._matrix(np.asarray(indices, dtype=np.int32), np.asarray(indptr), len(docs))

    def _matrix(self, indices: np.ndarray, indptr: np.ndarray, n_docs: int) -> sp.csr_matrix:
        return sp.csr_matrix(
            (
                np.full(len(indices), self.weight, dtype=np.float32),
                indices.astype(np.int32, copy=False),
                indptr.astype(np.int32, copy=False),
            ),
            shape=(n_docs, len(self.feature_names_)),
        )

    def _transform_block(self, docs: list[str]) -> sp.csr_matrix | None:
        """`transform` of many titles at once: the same matrix as title by title (a test
        checks it), with the words of the whole call looked up in one pass and each term
        length matched as arrays. None when a title holds the break token itself."""
        # A model fitted before the block path existed has no tables: title by title.
        tables = getattr(self, "tables_", None)
        if tables is None:
            return None
        try:
            ids = tables.lookup.ids(docs)
        except TypeError:
            return None
        breaks = ids == _BREAK
        if int(breaks.sum()) != len(docs) - 1:
            return None
        row_of = np.cumsum(breaks)
        known = ids >= 0
        # Per start position, the longest term there (-1: none), its length.
        term = np.full(len(ids), -1, dtype=np.int64)
        size = np.zeros(len(ids), dtype=np.int64)
        key, valid = ids, known
        for n in range(1, tables.max_words + 1):
            if n > 1:
                key = key[:-1] * tables.base + ids[n - 1 :]
                valid = valid[:-1] & known[n - 1 :]
            index = tables.by_size.get(n)
            if index is None:
                continue
            where = np.flatnonzero(valid)
            pos = index[0].get_indexer(key[where])
            hit = pos >= 0
            term[where[hit]] = index[1][pos[hit]]
            size[where[hit]] = n
        if getattr(self, "gap_terms_", None) and 2 in tables.by_size and len(ids) > 2:
            # A two-word term with one word between (not a title break), where at most a
            # one-word term starts at either word: `_terms_in` takes the same match.
            key = ids[:-2] * tables.base + ids[2:]
            valid = known[:-2] & known[2:] & (ids[1:-1] != _BREAK)
            valid &= (size[:-2] <= 1) & (size[1:-1] <= 1)
            where = np.flatnonzero(valid)
            index = tables.by_size[2]
            pos = index[0].get_indexer(key[where])
            hit = pos >= 0
            term[where[hit]] = index[1][pos[hit]]
            size[where[hit]] = 3
        starts = np.flatnonzero(term >= 0)
        ends = starts + size[starts]
        # A start inside a longer term matched before it is skipped. Overlaps are rare:
        # only when there are any is the scan walked one match at a time.
        if len(starts) > 1 and (starts[1:] < np.maximum.accumulate(ends)[:-1]).any():
            keep, after = [], 0
            for i, end in zip(starts.tolist(), ends.tolist(), strict=True):
                if i >= after:
                    keep.append(i)
                    after = end
            starts = np.asarray(keep, dtype=np.int64)
        matched, rows = term[starts], row_of[starts]
        row_parts = [np.repeat(rows, tables.columns.shape[1])]
        col_parts = [tables.columns[matched].ravel()]
        if self.head_columns_:
            first = np.ones(len(rows), dtype=bool)
            np.not_equal(rows[1:], rows[:-1], out=first[1:])
            row_parts.append(rows[first])
            col_parts.append(tables.head[matched[first]])
        width = len(self.feature_names_)
        cells = np.unique(np.concatenate(row_parts) * width + np.concatenate(col_parts))
        indptr = np.searchsorted(cells, np.arange(len(docs) + 1) * width)
        return self._matrix(cells % width, indptr, len(docs))


_FEW_TITLES = 16
"""Calls of at most this many titles are scanned title by title: numpy's per-call setup
costs more than the scan."""
_BREAK, _NOT_A_TERM_WORD = -2, -1


@dataclass(frozen=True)
class _TermTables:
    """What the block path of `LexiconFeatures.transform` looks up.

    Attributes:
        word_ids: Each word of a term -> id (the break token -> `_BREAK`); any other
            word is `_NOT_A_TERM_WORD`.
        base: Ids of an n-word term combine to sum(id_i * base ** (n - 1 - i)).
        max_words: Words in the longest term.
        by_size: Term length -> (index of combined keys, term number of each key).
        columns: Per term number, the columns it sets (concept, and cluster if on).
        head: Per term number, the `head_cluster=` column of its cluster.
    """

    word_ids: dict[str, int]
    base: int
    max_words: int
    by_size: dict[int, tuple[pd.Index, np.ndarray]]
    columns: np.ndarray
    head: np.ndarray

    @functools.cached_property
    def lookup(self) -> TokenTable:
        """`word_ids` as a `TokenTable` (built on first use, never pickled)."""
        return TokenTable(self.word_ids, _NOT_A_TERM_WORD)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("lookup", None)
        return state

    @classmethod
    def of(cls, features: LexiconFeatures) -> _TermTables | None:
        terms = list(features.terms_)
        split = [t.split(" ") for t in terms]
        word_ids: dict[str, int] = {}
        for words in split:
            for w in words:
                word_ids.setdefault(w, len(word_ids))
        base = len(word_ids) + 1
        if base ** max(map(len, split), default=1) >= 2**62:
            return None
        word_ids[TITLE_BREAK] = _BREAK
        keys: dict[int, tuple[list[int], list[int]]] = {}
        for number, words in enumerate(split):
            key = 0
            for w in words:
                key = key * base + word_ids[w]
            sizes = keys.setdefault(len(words), ([], []))
            sizes[0].append(key)
            sizes[1].append(number)
        by_size = {
            n: (pd.Index(np.asarray(k, dtype=np.int64)), np.asarray(t, dtype=np.int64))
            for n, (k, t) in keys.items()
        }
        columns = np.asarray([features.columns_[t][0] for t in terms], dtype=np.int64)
        head_of = features.head_columns_
        head = np.asarray([head_of.get(features.columns_[t][1], -1) for t in terms], dtype=np.int64)
        return cls(word_ids, base, max(by_size), by_size, columns, head)
