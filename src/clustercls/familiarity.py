"""Familiarity: how much of a title the model knows, so that titles it cannot read (a brand
and a code, another market's words) are never blocked on a confident-looking score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clustercls.text import TITLE_BREAK, UNIT_PLACEHOLDERS, TokenTable, load_stopwords

WORD_BLOCK = "word"
"""Name of the feature block whose vocabulary holds the words the model knows."""

# What each token is to familiarity: a word the model does not know, one it knows, one
# that does not count (stopword, unit placeholder), the break between two titles.
_UNKNOWN_WORD, _KNOWN_WORD, _NOT_COUNTED, _TITLE_BREAK = 0, 1, 2, 3
_KINDS = 4
_FEW_TITLES = 16


def familiarity(pipeline, titles: Sequence[object] | pd.Series) -> np.ndarray:
    """Share of each title's words that the model knows as words.

    A title's words are its normalised tokens without stopwords and unit placeholders; a
    word is known when it is a unigram of the model's word vocabulary. A title with no
    words (empty, only numbers or quantities) scores 0: nothing in it is known. A low
    share means the model reads the title from fragments (brand names, part numbers,
    another market's words), where its confidence is least to be trusted.
    `Model.predict` reports the same values, rounded to 4 decimals, as `familiarity`.

    Args:
        pipeline: A fitted clustercls pipeline: the normaliser first, the classifier
            last, the feature steps between them.
        titles: Raw titles.

    Returns:
        One float in [0, 1] per title, in order; 1 for every title when the model has
        no word vocabulary to compare with.
    """
    texts = list(pipeline.steps[0][1].transform(list(titles)))
    return familiarity_of(texts, TokenKinds.of(pipeline))


class TokenKinds(dict):
    """Token -> kind; a token it does not hold is an unknown word. Looked up with
    `__getitem__`, whose misses alone reach Python: faster than `get(token, default)`.
    A call's titles are looked up all at once through `table()`."""

    def __missing__(self, token: str) -> int:
        return _UNKNOWN_WORD

    def table(self) -> TokenTable:
        """These kinds as a `TokenTable` splitting on single spaces (built on first use:
        the kinds must not change after it)."""
        table = self.__dict__.get("_table")
        if table is None:
            table = self._table = TokenTable(self, _UNKNOWN_WORD, any_whitespace=False)
        return table

    @classmethod
    def of(cls, pipeline) -> TokenKinds | None:
        """Every token familiarity tells apart, with its kind: the word vocabulary's
        unigrams are known, stopwords and unit placeholders do not count. None when no
        feature step has a word block."""
        vocabulary = word_vocabulary(pipeline)
        if vocabulary is None:
            return None
        kinds = cls({term: _KNOWN_WORD for term in vocabulary if " " not in term})
        kinds.update(dict.fromkeys(load_stopwords(), _NOT_COUNTED))
        # Unit placeholders stand for quantities: they say nothing of what the product is.
        kinds.update(dict.fromkeys(UNIT_PLACEHOLDERS, _NOT_COUNTED))
        # Titles are split on single spaces (faster than on any whitespace, and
        # normalised text has no other): an empty title, or a stray double space, gives
        # empty tokens.
        kinds[""] = _NOT_COUNTED
        kinds[TITLE_BREAK] = _TITLE_BREAK
        return kinds


def word_vocabulary(pipeline) -> dict[str, int] | None:
    """The vocabulary of the `word` block of the pipeline's feature steps, if any."""
    for _, step in pipeline.steps[1:-1]:
        for name, block in getattr(step, "transformer_list", []):
            if name == WORD_BLOCK and hasattr(block, "vocabulary_"):
                return block.vocabulary_
    return None


def familiarity_of(normalised: list[str], kinds: TokenKinds | None) -> np.ndarray:
    """Familiarity of normalised titles (see `familiarity`)."""
    n = len(normalised)
    if kinds is None:
        return np.ones(n)
    kind = kinds.__getitem__
    if n > _FEW_TITLES:
        # One lookup per token of the whole call, then one count per (title, kind).
        found = kinds.table().ids(normalised)
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
