"""Feature extraction: TF-IDF over word and character n-grams of normalised titles."""

from __future__ import annotations

import math
import re
from functools import cache, partial

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from clustercls.config import FeatureConfig
from clustercls.lexicon import LexiconFeatures
from clustercls.text import (
    TITLE_BREAK,
    TokenTable,
    all_normalised,
    compiled_module,
    load_stopwords,
    tokenize,
)


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


# Normalised text is drawn from this alphabet (see `text.normalize`). Characters get codes
# 0..36 (space first) and anything else, the document separator included, code 37, so an
# n-gram is a base-38 number: distinct n-grams of one length get distinct integers.
_ALPHABET = " 0123456789abcdefghijklmnopqrstuvwxyz"
_BASE = len(_ALPHABET) + 1
_SPACE, _SEPARATOR = 0, _BASE - 1
_CODES = np.full(256, _SEPARATOR, dtype=np.int64)
_CODES[np.frombuffer(_ALPHABET.encode(), dtype=np.uint8)] = np.arange(len(_ALPHABET))
# n-grams up to this length are looked up in a dense table indexed by their key.
_DENSE_MAX_N = 4
_MAX_N = 9  # 38**9 < 2**63
_FIRST = np.zeros(1, dtype=np.intp)  # `reduceat` over one run from the start
_FEW_DOCS = 16
# Words whose char n-gram columns small calls keep, first come first kept: about 280
# bytes each for a word of ordinary length, so at most about 20 MB. Longer words (junk,
# codes) are looked up every time, so they cannot blow the bound up.
_WORD_CACHE_SIZE = 1 << 16
_CACHED_WORD_MAX = 24


class _KeyIndex:
    """Column of each n-gram key, per length n (-1 for unknown keys).

    n <= 4: a dense array indexed by the key (38**4 int32 entries: 8 MB). n = 5: the
    4-character prefix picks a row of a dense (prefixes x 38) array, the last character
    the column (about 5 MB for 33,000 prefixes). Longer n: a pandas hash index. Array
    lookups cost a few nanoseconds and no per-call setup, which single titles feel.
    """

    def __init__(self, terms_by_n: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        self.dense: dict[int, np.ndarray] = {}
        self.two_level: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.hashed: dict[int, tuple[pd.Index, np.ndarray]] = {}
        for n, (keys, columns) in terms_by_n.items():
            if n <= _DENSE_MAX_N:
                table = np.full(_BASE**n, -1, dtype=np.int32)
                table[keys] = columns
                self.dense[n] = table
            elif n == _DENSE_MAX_N + 1:
                prefixes, rows = np.unique(keys // _BASE, return_inverse=True)
                rank = np.full(_BASE ** (n - 1), -1, dtype=np.int32)
                rank[prefixes] = np.arange(len(prefixes))
                table = np.full((max(len(prefixes), 1), _BASE), -1, dtype=np.int32)
                table[rows, keys % _BASE] = columns
                self.two_level[n] = (rank, table)
            else:
                self.hashed[n] = (pd.Index(keys), columns.astype(np.int32))

    def lookup(self, n: int, keys: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Columns of `keys` of length-n n-grams; -1 where unknown or not `valid`."""
        if n in self.dense:
            cols = self.dense[n][keys]
            cols[~valid] = -1
            return cols
        if n in self.two_level:
            rank, table = self.two_level[n]
            row = rank[keys // _BASE]
            cols = table[np.maximum(row, 0), keys % _BASE]
            cols[(row < 0) | ~valid] = -1
            return cols
        cols = np.full(len(keys), -1, dtype=np.int32)
        if n in self.hashed:
            index, columns = self.hashed[n]
            where = np.flatnonzero(valid)
            pos = index.get_indexer(keys[where])
            found = pos >= 0
            cols[where[found]] = columns[pos[found]]
        return cols


def _joined_codes(docs: list[str]) -> np.ndarray:
    """The character codes of clean documents, each padded with spaces and closed by a
    separator, so that no n-gram may cross from one document into the next."""
    joined = "|".join([f" {d} " for d in docs]).encode("ascii")
    return _CODES[np.frombuffer(joined, dtype=np.uint8)]


def _char_wb_keys(c: np.ndarray, ngram_range: tuple[int, int]):
    """Per n in `ngram_range` (from 2 up): n, the base-38 key of the n-gram starting at
    each position of `c`, and whether it is a char_wb n-gram."""
    low, high = ngram_range
    key, valid = c, c != _SEPARATOR
    for n in range(2, high + 1):
        last = c[n - 1 :]
        key = key[:-1] * _BASE + last
        # A char_wb n-gram stays inside one space-padded word: no separator, no space
        # strictly inside, and (n = 2) not two spaces, the whole of an empty title.
        inner_ok = (c[:-1] != _SPACE) | (last != _SPACE) if n == 2 else c[n - 2 : -1] != _SPACE
        valid = valid[:-1] & (last != _SEPARATOR) & inner_ok
        if n >= low:
            yield n, key, valid


def _word_keys(ids: np.ndarray, ok: np.ndarray, n_base: int, high: int):
    """Per n from 1 to `high`: n, the base-`n_base` key of the word n-gram starting at each
    position of `ids`, and whether all its words are `ok` (known, not a title break)."""
    key, valid = ids, ok
    yield 1, key, valid
    for n in range(2, high + 1):
        key = key[:-1] * n_base + ids[n - 1 :]
        valid = valid[:-1] & ok[n - 1 :]
        yield n, key, valid


def _position_major_csr(
    cols: list[np.ndarray], row_of: np.ndarray, n_docs: int, n_features: int, dtype
) -> sp.csr_matrix:
    """Counts matrix from per-n column arrays aligned on start positions.

    `cols[j][p]` is the column of the n-gram of the j-th length starting at position p
    (-1 for none); `row_of[p]` the document of position p. Entries are laid out position
    by position, so rows come out in order and no global sort is needed.
    """
    stacked = np.full((len(row_of), len(cols)), -1, dtype=np.int32)
    for j, c in enumerate(cols):
        stacked[: len(c), j] = c
    flat = stacked.ravel()
    hit = np.flatnonzero(flat >= 0)
    rows = row_of[hit // len(cols)]
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_docs), out=indptr[1:])
    return _csr_counts(flat[hit], indptr, n_features, dtype)


def _csr_counts(indices, indptr, n_features: int, dtype) -> sp.csr_matrix:
    """A documents x vocabulary count matrix from flat column indices and row pointers."""
    index_dtype = _index_dtype(len(indices), n_features)
    counts = sp.csr_matrix(
        (
            np.ones(len(indices), dtype=dtype),
            np.asarray(indices, dtype=index_dtype),
            np.asarray(indptr, dtype=index_dtype),
        ),
        shape=(len(indptr) - 1, n_features),
    )
    counts.sum_duplicates()
    return counts


def _index_dtype(nnz: int, n_features: int) -> type:
    """int32 where it holds every index, as scipy would pick: handing scipy index arrays
    of its own choice halves its constructor's checks (a single title feels them)."""
    return np.int32 if max(nnz, n_features) < np.iinfo(np.int32).max else np.int64


class FastTfidfVectorizer(TfidfVectorizer):
    """A `TfidfVectorizer` that counts n-grams of new normalised text with numpy.

    scikit-learn builds n-grams one Python string at a time and looks each up in a dict,
    which bounds serving speed. For normalised text (alphabet `[a-z0-9 ]`, single
    spaces) this class counts all titles of a call at once:

    - `char_wb`: every character becomes a base-38 digit, the n-grams inside space-padded
      words become integers rolled over the whole call, and their columns come from a
      dense table (n <= 4) or a hash index (longer n);
    - `word` (with `text.tokenize`, which is `split` minus stopwords there): each token
      becomes an integer id, and the n-grams of ids are looked up the same way.

    The counts equal scikit-learn's and the TF-IDF weights agree to float32 rounding
    (tests check both, on real titles too). Fitting counts the training titles the same
    way (`_fit_counts`) and leaves the rest of the fit (vocabulary order, `min_df`,
    `max_features`, IDF) to scikit-learn; the fitted vectoriser is identical. The lookup
    tables are derived from `vocabulary_` on first use and never pickled. Text outside
    the alphabet, and settings the fast paths do not mimic, take scikit-learn's path.
    """

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_lookup_cache", None)
        state.pop("_word_cache", None)
        return state

    def _fast_chars(self) -> bool:
        return (
            self.analyzer == "char_wb"
            and self.preprocessor is None
            and not self.lowercase
            and self.strip_accents is None
            # n = 1 would count the padding spaces; a smallest n above 3 makes scikit-learn
            # emit short padded words whole, shorter than n: windows cannot mimic either.
            and 2 <= self.ngram_range[0] <= 3
            and self.ngram_range[1] <= _MAX_N
        )

    def _fast_words(self) -> bool:
        return (
            self.analyzer == "word"
            and self.tokenizer is tokenize
            and self.preprocessor is None
            and not self.lowercase
            and self.stop_words is None
        )

    def build_analyzer(self):
        """scikit-learn's analyzer, or `char_wb_ngrams` (same n-grams, built faster)."""
        if self._fast_chars():
            return partial(char_wb_ngrams, ngram_range=self.ngram_range)
        return super().build_analyzer()

    def _lookup(self):
        """The n-gram lookup tables for the fitted vocabulary (built once, then cached),
        or None when the vocabulary does not fit the fast path."""
        cache = getattr(self, "_lookup_cache", None)
        if cache is None or cache[0] is not self.vocabulary_:
            tables = self._char_lookup() if self._fast_chars() else self._word_lookup()
            cache = self._lookup_cache = (self.vocabulary_, tables)
        return cache[1]

    def _char_lookup(self) -> _KeyIndex | None:
        terms = list(self.vocabulary_)
        if not all(len(t) <= _MAX_N and not _NOT_ALPHABET.search(t) for t in terms):
            return None
        by_n: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        lengths = np.fromiter(map(len, terms), dtype=np.int64, count=len(terms))
        columns = np.fromiter(map(self.vocabulary_.__getitem__, terms), np.int64, len(terms))
        codes = _CODES[np.frombuffer("".join(terms).encode("ascii"), dtype=np.uint8)]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        for n in np.unique(lengths):
            pick = np.flatnonzero(lengths == n)
            digits = codes[starts[pick, None] + np.arange(n)]
            by_n[int(n)] = (digits @ (_BASE ** np.arange(n - 1, -1, -1)), columns[pick])
        return _KeyIndex(by_n)

    def _word_lookup(self) -> tuple[TokenTable, np.ndarray, dict] | None:
        high = self.ngram_range[1]
        split = [t.split(" ") for t in self.vocabulary_]
        token_ids: dict[str, int] = {}
        for words in split:
            for w in words:
                token_ids.setdefault(w, len(token_ids))
        n_tokens = len(token_ids) + 1
        if n_tokens ** max(high, 1) >= 2**62:
            return None
        unigram = np.full(n_tokens, -1, dtype=np.int32)
        grams: dict[int, tuple[list[int], list[int]]] = {}
        for words, column in zip(split, self.vocabulary_.values(), strict=True):
            if len(words) == 1:
                unigram[token_ids[words[0]]] = column
            else:
                key = 0
                for w in words:
                    key = key * n_tokens + token_ids[w]
                keys, cols = grams.setdefault(len(words), ([], []))
                keys.append(key)
                cols.append(column)
        index = {
            n: (pd.Index(np.asarray(k, dtype=np.int64)), np.asarray(c, dtype=np.int32))
            for n, (k, c) in grams.items()
        }
        # Stopwords are dropped before n-grams are formed (as `tokenize` does) and the
        # document separator breaks every n-gram.
        lookup = dict(token_ids)
        lookup.update(dict.fromkeys(load_stopwords(), _STOPWORD))
        lookup[TITLE_BREAK] = _DOC_BREAK
        return TokenTable(lookup, _UNKNOWN), unigram, index

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
            np.multiply(data, self.idf_[counts.indices], out=data, casting="unsafe")
        if self.norm == "l2" and len(data) and counts.shape[0] == 1:
            # One title (a single-title call): the arithmetic below for one row, without
            # the per-row bookkeeping that costs more than the row itself.
            total = np.add.reduceat(np.square(data, dtype=np.float64), _FIRST)[0]
            if total > 0:  # idf >= 1, so only weights of 0 could make it 0
                data *= np.dtype(self.dtype).type(1.0 / math.sqrt(total))
        elif self.norm == "l2" and len(data):
            # Row sums over the rows' runs of entries; an empty row has no run, keeps
            # norm 0 and is left alone.
            per_row = np.diff(counts.indptr)
            filled = per_row > 0
            squares = np.zeros(counts.shape[0])
            squares[filled] = np.add.reduceat(
                np.square(data, dtype=np.float64), counts.indptr[:-1][filled]
            )
            scale = np.ones(counts.shape[0], dtype=self.dtype)
            np.divide(1.0, np.sqrt(squares), out=scale, where=filled, casting="unsafe")
            data *= np.repeat(scale, per_row)
        return counts

    def _count_vocab(self, raw_documents, fixed_vocab):
        docs = raw_documents if isinstance(raw_documents, list) else list(raw_documents)
        if not fixed_vocab:
            counted = self._fit_counts(docs)
            return counted if counted is not None else super()._count_vocab(docs, fixed_vocab)
        fast = self._fast_chars() or self._fast_words()
        # The compiled counter checks the alphabet itself (spacing does not matter to
        # char_wb, which splits on whitespace) and stands aside for anything else.
        if fast and self._fast_chars() and (counts := self._count_chars_compiled(docs)) is not None:
            return self.vocabulary_, counts
        if not fast or not all_normalised(docs):
            return super()._count_vocab(docs, fixed_vocab)
        if len(docs) <= _FEW_DOCS:
            # A title has a dozen word n-grams and ~150 character ones: dict lookups beat
            # numpy's per-call setup.
            few = self._count_few_chars if self._fast_chars() else self._count_few_words
            return self.vocabulary_, few(docs)
        lookup = self._lookup()
        if lookup is None:
            return super()._count_vocab(docs, fixed_vocab)
        if self._fast_chars():
            return self.vocabulary_, self._count_chars(docs, lookup)
        return self.vocabulary_, self._count_words(docs, *lookup)

    def _fit_counts(self, docs: list[str]) -> tuple[dict, sp.csr_matrix] | None:
        """The vocabulary and counts scikit-learn's fit counts, counted with numpy.

        Fitting counts every n-gram of the training titles; scikit-learn does it one
        Python string at a time, which took a third of a training fit, repeated by every
        leave-one-source-out fold. Terms get ids in the order scikit-learn first meets
        them and each row lists its terms by id, as scikit-learn's matrix does: the
        vocabulary, the IDF weights and even the order of each row's entries come out
        identical, so the fitted model does too (a test checks it). None where the fast
        paths do not apply: scikit-learn then counts.
        """
        if not docs or not (self._fast_chars() or self._fast_words()) or not all_normalised(docs):
            return None
        found = self._char_grams(docs) if self._fast_chars() else self._word_grams(docs)
        if found is None:
            return None
        gram, start, row_of, major_of, n_base, decode = found
        if not len(gram):
            return None  # scikit-learn raises its "empty vocabulary" error
        # One sort of (n-gram, position) pairs groups each n-gram's occurrences and puts
        # its first one in front: numpy's sort is vectorised, its stable argsort is not.
        span = int(start.max()) + 1
        if int(gram.max()) >= np.iinfo(np.int64).max // span:
            return None
        pairs = gram * span + start
        del gram, start
        pairs.sort()
        gram = pairs // span
        position = pairs - gram * span
        del pairs
        new = np.empty(len(gram), dtype=bool)
        new[0] = True
        np.not_equal(gram[1:], gram[:-1], out=new[1:])
        unique, first = gram[new], position[new]
        del gram
        # scikit-learn meets n-grams word by word (titles, for word n-grams), n by n,
        # left to right, and numbers each when first met.
        by_first = np.lexsort((first, unique % n_base, major_of[first]))
        rank = np.empty(len(unique), dtype=np.int64)
        rank[by_first] = np.arange(len(unique))
        n_terms = len(unique)
        ids = rank[np.cumsum(new) - 1]
        del new
        cells, counts = np.unique(row_of[position] * n_terms + ids, return_counts=True)
        del ids, position
        row, column = np.divmod(cells, n_terms)
        index_dtype = np.int32 if len(cells) <= np.iinfo(np.int32).max else np.int64
        indptr = np.zeros(len(docs) + 1, dtype=index_dtype)
        np.cumsum(np.bincount(row, minlength=len(docs)), out=indptr[1:])
        counts = sp.csr_matrix(
            (counts.astype(self.dtype), column.astype(index_dtype), indptr),
            shape=(len(docs), n_terms),
        )
        counts.has_sorted_indices = True
        terms = decode(unique[by_first])
        return dict(zip(terms, range(n_terms), strict=True)), counts

    def _char_grams(self, docs: list[str]):
        """Every char_wb n-gram of clean documents as an integer (base-38 key, then n),
        with its start position; per position its document and word; the base n is
        written in; and a function turning integers back into n-grams."""
        c = _joined_codes(docs)
        row_of = np.cumsum(c == _SEPARATOR)
        # An n-gram belongs to the word its first character starts or pads.
        word_of = np.cumsum(c == _SPACE)
        starts, grams = [], []
        for n, key, valid in _char_wb_keys(c, self.ngram_range):
            where = np.flatnonzero(valid)
            starts.append(where)
            grams.append(key[where] * (_MAX_N + 1) + n)
        letters = np.frombuffer(_ALPHABET.encode("ascii"), dtype=np.uint8)

        def decode(values: np.ndarray) -> list[str]:
            out = np.empty(len(values), dtype=object)
            lengths, keys = values % (_MAX_N + 1), values // (_MAX_N + 1)
            for n in np.unique(lengths):
                pick = np.flatnonzero(lengths == n)
                digits = keys[pick, None] // _BASE ** np.arange(n - 1, -1, -1) % _BASE
                raw = np.ascontiguousarray(letters[digits]).view(f"S{n}").ravel()
                out[pick] = [b.decode("ascii") for b in raw.tolist()]
            return out.tolist()

        return np.concatenate(grams), np.concatenate(starts), row_of, word_of, _MAX_N + 1, decode

    def _word_grams(self, docs: list[str]):
        """Every word n-gram of clean documents as an integer (token ids in base T, then
        n), with its start position; per position its document (twice: titles are what
        scikit-learn's word analyzer goes through); the base n is written in; and a
        function turning integers back into n-grams. None where keys would overflow."""
        tokens = f" {TITLE_BREAK} ".join(docs).split()
        codes, uniques = pd.factorize(np.asarray(tokens, dtype=object))
        uniques = np.asarray(uniques, dtype=object)
        stop = pd.Index(uniques).isin(list(load_stopwords()))
        codes = codes[~stop[codes]]
        brk = codes == (np.flatnonzero(uniques == TITLE_BREAK)[:1].tolist() or [-1])[0]
        low, high = self.ngram_range
        n_tokens = len(uniques)
        if n_tokens**high * (high + 1) >= 2**62:
            return None
        row_of = np.cumsum(brk)
        starts, grams = [], []
        for n, key, valid in _word_keys(codes.astype(np.int64), ~brk, n_tokens, high):
            if n >= low:
                where = np.flatnonzero(valid)
                starts.append(where)
                grams.append(key[where] * (high + 1) + n)

        def decode(values: np.ndarray) -> list[str]:
            out = np.empty(len(values), dtype=object)
            lengths, keys = values % (high + 1), values // (high + 1)
            for n in np.unique(lengths):
                pick = np.flatnonzero(lengths == n)
                parts = [
                    uniques[keys[pick] // n_tokens ** (n - 1 - i) % n_tokens] for i in range(n)
                ]
                out[pick] = [" ".join(t) for t in zip(*parts, strict=True)]
            return out.tolist()

        return np.concatenate(grams), np.concatenate(starts), row_of, row_of, high + 1, decode

    def _count_chars_compiled(self, docs: list[str]) -> sp.csr_matrix | None:
        """char_wb counts from the compiled counter (``clustercls._ngrams``), for any
        number of documents: the same canonical matrix as `_count_chars`, about twice as
        fast. None where it is not built or the n-gram range goes beyond its tables."""
        count = _compiled_char_counter()
        low, high = self.ngram_range
        if count is None or high > _DENSE_MAX_N + 1:
            return None
        index = self._lookup()
        if index is None:
            return None
        tables = []
        for n in range(low, high + 1):
            table = index.dense.get(n) if n <= _DENSE_MAX_N else index.two_level.get(n)
            if table is None:
                return None
            tables.append(table)
        try:
            total = sum(map(len, docs))
        except TypeError:  # not all strings: the other paths report it
            return None
        capacity = (high - low + 1) * (2 * total + 2 * len(docs))
        indptr = np.empty(len(docs) + 1, dtype=np.int64)
        indices = np.empty(capacity, dtype=np.int32)
        data = np.empty(capacity, dtype=np.int32)
        n_features = len(self.vocabulary_)
        nnz = count(docs, low, high, tuple(tables), n_features, indptr, indices, data)
        if nnz is None:
            return None
        counts = sp.csr_matrix(
            (
                data[:nnz].astype(self.dtype),
                indices[:nnz],
                indptr.astype(_index_dtype(nnz, n_features), copy=False),
            ),
            shape=(len(docs), n_features),
        )
        counts.has_canonical_format = True
        return counts

    def _count_few_words(self, docs: list[str]) -> sp.csr_matrix:
        """Word n-gram counts by dict lookup, one document at a time."""
        analyze = partial(_word_ngrams, stop=load_stopwords(), ngram_range=self.ngram_range)
        lookup = self.vocabulary_.get
        indices: list[int] = []
        indptr = [0]
        for doc in docs:
            indices.extend([j for j in map(lookup, analyze(doc)) if j is not None])
            indptr.append(len(indices))
        return _csr_counts(indices, indptr, len(self.vocabulary_), self.dtype)

    def _count_few_chars(self, docs: list[str]) -> sp.csr_matrix:
        """char_wb counts word by word: a word's n-grams never depend on its neighbours,
        and titles share most of their words, so each word's columns are looked up once
        and kept (up to `_WORD_CACHE_SIZE` words of at most `_CACHED_WORD_MAX`
        characters; never pickled)."""
        cache = getattr(self, "_word_cache", None)
        if cache is None or cache[0] is not self.vocabulary_ or cache[1] != self.ngram_range:
            cache = self._word_cache = (self.vocabulary_, self.ngram_range, {})
        columns_of = cache[2]
        lookup = self.vocabulary_.get
        parts: list[np.ndarray] = []
        indptr = [0]
        for doc in docs:
            end = indptr[-1]
            for word in doc.split():
                columns = columns_of.get(word)
                if columns is None:
                    grams = char_wb_ngrams(word, self.ngram_range)
                    found = [j for j in map(lookup, grams) if j is not None]
                    columns = np.array(found, dtype=np.int32)
                    if len(word) <= _CACHED_WORD_MAX and len(columns_of) < _WORD_CACHE_SIZE:
                        columns_of[word] = columns
                parts.append(columns)
                end += len(columns)
            indptr.append(end)
        indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        return _csr_counts(indices, indptr, len(self.vocabulary_), self.dtype)

    def _count_chars(self, docs: list[str], index: _KeyIndex) -> sp.csr_matrix:
        """char_wb counts of clean documents, all at once."""
        c = _joined_codes(docs)
        row_of = np.cumsum(c == _SEPARATOR)
        cols = [index.lookup(n, key, valid) for n, key, valid in _char_wb_keys(c, self.ngram_range)]
        return _position_major_csr(cols, row_of, len(docs), len(self.vocabulary_), self.dtype)

    def _count_words(
        self, docs: list[str], lookup: TokenTable, unigram: np.ndarray, index: dict
    ) -> sp.csr_matrix:
        """Word n-gram counts of clean documents, all at once."""
        ids = lookup.ids(docs)
        ids = ids[ids != _STOPWORD]
        row_of = np.cumsum(ids == _DOC_BREAK)
        known = ids >= 0
        low, high = self.ngram_range
        n_tokens = len(unigram)
        cols = []
        if low == 1:
            cols.append(np.where(known, unigram[np.where(known, ids, 0)], -1))
        for n, key, valid in _word_keys(ids, known, n_tokens, high):
            if n < max(low, 2):
                continue
            found = np.full(len(key), -1, dtype=np.int32)
            if n in index:
                keys, columns = index[n]
                where = np.flatnonzero(valid)
                pos = keys.get_indexer(key[where])
                hit = pos >= 0
                found[where[hit]] = columns[pos[hit]]
            cols.append(found)
        return _position_major_csr(cols, row_of, len(docs), len(self.vocabulary_), self.dtype)


@cache
def _compiled_char_counter():  # type: ignore[no-untyped-def]
    """``clustercls._ngrams.count_char_wb``, or None where it is not built or turned off."""
    module = compiled_module("_ngrams")
    return None if module is None else module.count_char_wb


# Token ids below zero: a stopword (dropped), a token outside the vocabulary, the break
# between two documents.
_STOPWORD, _UNKNOWN, _DOC_BREAK = -2, -1, -3
_NOT_ALPHABET = re.compile(r"[^a-z0-9 ]")


def _word_ngrams(doc: str, stop: frozenset[str], ngram_range: tuple[int, int]) -> list[str]:
    """Word n-grams of clean text, as scikit-learn forms them from `tokenize`'s tokens."""
    low, high = ngram_range
    tokens = [t for t in doc.split() if t not in stop]
    grams = list(tokens) if low == 1 else []
    for n in range(max(low, 2), high + 1):
        grams.extend([" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)])
    return grams


class TitleFeatures(FeatureUnion, auto_wrap_output_keys=None):
    """`FeatureUnion` of the title's feature blocks, stacked without per-call overhead.

    scikit-learn's `transform` dispatches each block through joblib and stacks the
    blocks through COO: for one title that costs more than computing the features.
    Without transformer weights this transform calls the blocks in turn and stacks their
    CSR output directly; the matrix is the same (a test checks it). Fitting, feature
    names and every other setting are scikit-learn's, except `set_output`: the output is
    always sparse, and scikit-learn's per-call output wrapping is left out.
    """

    def transform(self, X, **params):
        """The blocks' features of `X`, side by side in `transformer_list` order."""
        steps = [step for _, step in self.transformer_list]
        if params or self.transformer_weights is not None or any(isinstance(s, str) for s in steps):
            return super().transform(X, **params)
        blocks = [step.transform(X) for step in steps]
        return hstack_csr([b if type(b) is sp.csr_matrix else sp.csr_matrix(b) for b in blocks])

    def block_columns(self, name: str) -> slice | None:
        """The columns of block `name` in the output, or None if it has no such block."""
        start = 0
        for block, step in self.transformer_list:
            if isinstance(step, str):
                if step == "drop":
                    continue
                return None  # passthrough: its width depends on the input
            width = len(step.vocabulary_) if hasattr(step, "vocabulary_") else None
            if width is None:
                width = len(step.get_feature_names_out())
            if block == name:
                return slice(start, start + width)
            start += width
        return None


def hstack_csr(blocks: list[sp.csr_matrix]) -> sp.csr_matrix:
    """Column-wise concatenation of CSR blocks with the same rows (what FeatureUnion
    returns): scipy's CSR stacking, and for one row (a single-title call) the row's
    entries put one after another, which costs a quarter of scipy's setup."""
    first = blocks[0]
    if len(blocks) == 1:
        return first
    if first.shape[0] != 1:
        return sp.hstack(blocks, format="csr")
    n_columns = sum(b.shape[1] for b in blocks)
    offsets = np.cumsum([0, *(b.shape[1] for b in blocks[:-1])])
    data = np.concatenate([b.data for b in blocks])
    indices = np.concatenate([b.indices + o for b, o in zip(blocks, offsets, strict=True)])
    index_dtype = _index_dtype(len(data), n_columns)
    return sp.csr_matrix(
        (data, indices.astype(index_dtype), np.array([0, len(data)], dtype=index_dtype)),
        shape=(1, n_columns),
    )


def build_features(config: FeatureConfig) -> TitleFeatures:
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
    # Explanations and familiarity find the word block by its name, `word`.
    blocks = [("word", word), ("char", char)]
    if config.lexicon:
        blocks.append(
            (
                "lexicon",
                LexiconFeatures(
                    weight=config.lexicon_weight,
                    head=config.lexicon_head,
                    clusters=config.lexicon_clusters,
                    plurals=config.lexicon_plurals,
                    gap=config.lexicon_gap,
                ),
            )
        )
    return TitleFeatures(blocks)
