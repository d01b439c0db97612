"""Feature extraction: TF-IDF over word and character n-grams of normalised titles."""

from __future__ import annotations

import re
from functools import partial

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from clustercls.config import FeatureConfig
from clustercls.text import load_stopwords, tokenize


def char_wb_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """Character n-grams inside space-padded words, exactly as scikit-learn's `char_wb`.

    Same n-grams in the same order as `TfidfVectorizer(analyzer="char_wb")` produces, built
    with list comprehensions instead of a per-character while loop: about twice as fast,
    and serving speed is bounded by this function.

    Args:
        text: Normalised text.
        ngram_range: Smallest and largest n.

    Returns:
        The n-grams.
    """
    low, high = ngram_range
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            if n >= length:
                # scikit-learn emits the whole padded word once and stops growing n.
                grams.append(padded)
                break
            grams.extend([padded[i : i + n] for i in range(length - n + 1)])
    return grams


# Normalised text is drawn from this alphabet (see `text.normalize`). Each character gets a
# 6-bit code, so an n-gram of up to 9 characters packs into one int64 key.
_ALPHABET = " 0123456789abcdefghijklmnopqrstuvwxyz"
_SPACE, _SENTINEL, _BITS = 0, 63, 6
_CODES = np.full(256, _SENTINEL, dtype=np.int64)
_CODES[np.frombuffer(_ALPHABET.encode(), dtype=np.uint8)] = np.arange(len(_ALPHABET))


_FEW_DOCS = 16


def _csr_counts(indices: list[int], indptr: list[int], n_features: int, dtype):
    """A documents x vocabulary count matrix from flat column indices and row pointers."""
    counts = sp.csr_matrix(
        (
            np.ones(len(indices), dtype=dtype),
            np.asarray(indices, dtype=np.int64),
            np.asarray(indptr, dtype=np.int64),
        ),
        shape=(len(indptr) - 1, n_features),
    )
    counts.sum_duplicates()
    return counts


def _is_clean(docs: list[str]) -> bool:
    """True when every document is normalised text: `[a-z0-9 ]`, single spaces, no ends."""
    return all(isinstance(d, str) and not _NOT_CLEAN.search(d) for d in docs)


_NOT_CLEAN = re.compile(r"[^a-z0-9 ]|^ | $|  ")


def _pack(codes: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    """Integer keys of the n-grams starting at `starts` (length n folded into the key)."""
    key = np.full(len(starts), n, dtype=np.int64)
    for j in range(n):
        key = (key << _BITS) | codes[starts + j]
    return key


class FastTfidfVectorizer(TfidfVectorizer):
    """A `TfidfVectorizer` that turns new text into `char_wb` features with numpy.

    scikit-learn builds character n-grams one Python string slice at a time, which bounds
    serving speed. For `analyzer="char_wb"` over normalised text (alphabet `[a-z0-9 ]`)
    this class packs every n-gram into an integer key, all titles at once, and finds its
    column by binary search in the sorted keys of the fitted vocabulary. Word n-grams of
    normalised text skip the regex tokenizer, and the TF-IDF weighting is a few array
    operations. The counts equal scikit-learn's and the weights agree to float32 rounding
    (tests check both, on real titles too); fitting is scikit-learn's own, and text outside
    the alphabet falls back to its path.
    """

    def _fast(self) -> bool:
        return (
            self.analyzer == "char_wb"
            and self.preprocessor is None
            and not self.lowercase
            and self.strip_accents is None
            # n = 1 would count the padding spaces; a smallest n above 3 makes scikit-learn
            # emit short padded words whole, shorter than n: windows cannot mimic either.
            and 2 <= self.ngram_range[0] <= 3
            and self.ngram_range[1] <= 9
        )

    def build_analyzer(self):
        """scikit-learn's analyzer, or `char_wb_ngrams` (same n-grams, built faster)."""
        if self._fast():
            return partial(char_wb_ngrams, ngram_range=self.ngram_range)
        return super().build_analyzer()

    def fit(self, raw_documents, y=None):
        """Fit as scikit-learn does, then index the vocabulary by packed key."""
        super().fit(raw_documents, y)
        self._index_vocabulary()
        return self

    def fit_transform(self, raw_documents, y=None):
        """Fit-transform as scikit-learn does, then index the vocabulary by packed key."""
        out = super().fit_transform(raw_documents, y)
        self._index_vocabulary()
        return out

    def _index_vocabulary(self) -> None:
        self.packed_keys_ = None
        if not self._fast():
            return
        terms = list(self.vocabulary_)
        if not all(len(t) <= 9 and set(t) <= set(_ALPHABET) for t in terms):
            return
        codes = _CODES[np.frombuffer("".join(terms).encode(), dtype=np.uint8)]
        lengths = np.fromiter((len(t) for t in terms), dtype=np.int64, count=len(terms))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        keys = np.empty(len(terms), dtype=np.int64)
        for n in np.unique(lengths):
            pick = lengths == n
            keys[pick] = _pack(codes, starts[pick], int(n))
        columns = np.fromiter(
            (self.vocabulary_[t] for t in terms), dtype=np.int64, count=len(terms)
        )
        order = np.argsort(keys)
        self.packed_keys_ = keys[order]
        self.packed_columns_ = columns[order]

    def transform(self, raw_documents):
        """TF-IDF of new documents, as scikit-learn's `transform` computes it.

        The weighting is done here in a few array operations: scikit-learn's validation
        layers cost more than the arithmetic when one title is scored at a time.
        """
        if not (hasattr(self, "idf_") and self.norm in ("l2", None) and not self.binary):
            return super().transform(raw_documents)
        _, counts = self._count_vocab(raw_documents, fixed_vocab=True)
        counts = counts.astype(self.dtype, copy=False)
        data = counts.data
        if self.sublinear_tf:
            np.log(data, out=data)
            data += 1
        if self.use_idf:
            data *= self.idf_[counts.indices].astype(self.dtype, copy=False)
        if self.norm == "l2":
            rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
            norms = np.sqrt(
                np.bincount(
                    rows, weights=np.square(data, dtype=np.float64), minlength=counts.shape[0]
                )
            )
            norms[norms == 0] = 1.0
            data /= norms[rows].astype(self.dtype, copy=False)
        return counts

    def _count_lookup(self, docs: list[str]):
        """Count vocabulary hits with the analyzer in Python: cheapest for a few documents."""
        analyze = self.build_analyzer()
        lookup = self.vocabulary_.get
        indices: list[int] = []
        indptr = [0]
        for doc in docs:
            indices.extend([j for j in map(lookup, analyze(doc)) if j is not None])
            indptr.append(len(indices))
        return self.vocabulary_, _csr_counts(indices, indptr, len(self.vocabulary_), self.dtype)

    def _fast_words(self) -> bool:
        return (
            self.analyzer == "word"
            and self.tokenizer is tokenize
            and self.preprocessor is None
            and not self.lowercase
            and self.stop_words is None
        )

    def _count_words(self, docs: list[str]):
        """Word n-gram counts for normalised text: `tokenize` there is `split` minus
        stopwords, so the n-grams are built without the regex tokenizer."""
        stop = load_stopwords()
        lookup = self.vocabulary_.get
        low, high = self.ngram_range
        indices: list[int] = []
        indptr = [0]
        for doc in docs:
            tokens = [t for t in doc.split() if t not in stop]
            grams = tokens if low == 1 else []
            for n in range(max(low, 2), high + 1):
                grams = grams + [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
            indices.extend([j for j in map(lookup, grams) if j is not None])
            indptr.append(len(indices))
        return self.vocabulary_, _csr_counts(indices, indptr, len(self.vocabulary_), self.dtype)

    def _count_vocab(self, raw_documents, fixed_vocab):
        docs = raw_documents if isinstance(raw_documents, list) else list(raw_documents)
        if fixed_vocab and self._fast_words() and _is_clean(docs):
            return self._count_words(docs)
        if not fixed_vocab or getattr(self, "packed_keys_", None) is None:
            return super()._count_vocab(docs, fixed_vocab)
        if len(docs) <= _FEW_DOCS and _is_clean(docs):
            # numpy's per-call overhead outweighs its speed on a handful of titles.
            return self._count_lookup(docs)
        try:
            joined = "|".join(f" {d} " for d in docs).encode("ascii")
        except (UnicodeEncodeError, TypeError):
            return super()._count_vocab(docs, fixed_vocab)
        codes = _CODES[np.frombuffer(joined, dtype=np.uint8)]
        # Every padded title ends with "|" (the last one implicitly), so position -> row.
        row_of = np.cumsum(np.r_[0, codes[:-1] == _SENTINEL])
        space = np.r_[0, np.cumsum(codes == _SPACE)]
        sentinel = np.r_[0, np.cumsum(codes == _SENTINEL)]
        if sentinel[-1] != len(docs) - 1 or (codes[codes != _SENTINEL] > len(_ALPHABET)).any():
            return super()._count_vocab(docs, fixed_vocab)
        rows, cols = [], []
        low, high = self.ngram_range
        for n in range(low, high + 1):
            starts = np.arange(len(codes) - n + 1)
            # A char_wb n-gram stays inside one space-padded word: no sentinel anywhere,
            # no space strictly inside, and not made of spaces alone (an empty title).
            ok = (sentinel[starts + n] == sentinel[starts]) & (
                space[starts + n - 1] == space[starts + 1]
            )
            ok &= (space[starts + n] - space[starts]) < n
            starts = starts[ok]
            keys = _pack(codes, starts, n)
            pos = np.searchsorted(self.packed_keys_, keys).clip(max=len(self.packed_keys_) - 1)
            hit = self.packed_keys_[pos] == keys
            rows.append(row_of[starts[hit]])
            cols.append(self.packed_columns_[pos[hit]])
        rows_all, cols_all = np.concatenate(rows), np.concatenate(cols)
        counts = sp.coo_matrix(
            (np.ones(len(rows_all), dtype=self.dtype), (rows_all, cols_all)),
            shape=(len(docs), len(self.vocabulary_)),
        ).tocsr()
        counts.sum_duplicates()
        return self.vocabulary_, counts


def build_features(config: FeatureConfig) -> FeatureUnion:
    """Build the word + character TF-IDF union.

    Words carry the product noun ("kemeja", "kopi"); character n-grams inside word
    boundaries carry morphology and survive spelling variants and residual obfuscation that
    normalisation missed ("kmeja", "kopii").

    Args:
        config: Feature settings.

    Returns:
        An unfitted FeatureUnion expecting normalised strings.
    """
    word = FastTfidfVectorizer(
        analyzer="word",
        tokenizer=tokenize,
        token_pattern=None,
        lowercase=False,
        ngram_range=config.word_ngram_range,
        min_df=config.min_df,
        max_features=config.max_features_word,
        sublinear_tf=config.sublinear_tf,
        dtype=np.float32,
    )
    char = FastTfidfVectorizer(
        analyzer="char_wb",
        lowercase=False,
        ngram_range=config.char_ngram_range,
        min_df=config.min_df,
        max_features=config.max_features_char,
        sublinear_tf=config.sublinear_tf,
        dtype=np.float32,
    )
    # float32 halves the matrices' memory; linear models lose nothing measurable from it.
    return FeatureUnion([("word", word), ("char", char)])
