"""`normalize` (one title) and `TextNormalizer` (the pipeline's first step)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from clustercls.text.fold import _fold, raw_limit
from clustercls.text.leet import _MIX_HINT_RE, _read_leet_words
from clustercls.text.native import _native_settle, _native_settle_plain_many, _settle_any


def normalize(title: object, max_length: int = 300) -> str:
    """Normalise a listing title to lowercase ASCII words for classification.

    Steps: HTML unescape and tag stripping; Unicode compatibility folding
    (NFKD, so diacritics can be dropped), casefolding; removal of zero-width
    and control characters; look-alike Cyrillic/Greek letters mapped to Latin;
    de-obfuscation (leetspeak, also heavy leetspeak read back as known words;
    spaced and dotted letters); timestamps, promo and marketplace boilerplate and
    emoji removed; units replaced by placeholders (``unitmass``, ``unitvol``,
    ``unitlen``, ``unitcount``, ``unitsize``); bare numbers dropped; whitespace
    collapsed; truncation at a word boundary.

    The function is pure, never raises, and is idempotent:
    ``normalize(normalize(x)) == normalize(x)``. Output contains only
    ``[a-z0-9 ]``, has no leading, trailing or double spaces, and is at most
    ``max_length`` characters.

    Args:
        title: Any value. ``str`` is used as is, bytes are decoded as UTF-8
            (invalid bytes replaced), ``None`` and NaN give ``""`` and anything
            else goes through ``str()``.
        max_length: Maximum length of the result; values below 1 give ``""``.

    Returns:
        The normalised title, possibly ``""``.

    Examples:
        >>> normalize("READY STOCK!!! Kemeja Batik Pria COD")
        'kemeja batik pria'
        >>> normalize("K0pi Bubuk 250gr")
        'kopi bubuk unitmass'
    """
    try:
        limit = int(max_length)
    except (TypeError, ValueError, OverflowError):
        limit = 300
    if limit < 1:
        return ""
    s = _fold(title, limit)
    if _MIX_HINT_RE.search(s) is None:
        # No letter beside a digit, "@" or "$": nothing to read, and the cleaning passes
        # make such a pair only by joining a number with "in" or a spec unit ("3in1",
        # "16gb"), which the reading keeps. So the output is a fixed point of both steps.
        return _settle_any(s, limit)
    read = _read_leet_words(s)
    settled = _settle_any(read, limit)
    if read is s and len(settled) < limit and not ("'" in s or "@" in s or "$" in s):
        # Nothing was read, and the cleaning passes made no token to read: besides the
        # joins above they make new tokens only by joining letters across "'", splitting
        # at "@" and "$" and cutting a word at the limit.
        return settled
    s = settled
    # Here the cleaning passes may have made a new leet token; going on until both steps
    # leave the text alone keeps normalize idempotent. This ends: each reading swaps a
    # digit for a letter, and the cleaning passes add no digit.
    while True:
        read = _read_leet_words(s)
        if read == s:
            return s
        s = _settle_any(read, limit)


def normalize_many(titles: Iterable[Any], max_length: int = 300) -> list[str]:
    """`[normalize(t, max_length) for t in titles]`, with the common title's path taken
    in one loop (a test checks the two agree).

    Most titles are plain ASCII text with no markup. `normalize` lower-cases them and
    hands them to the cleaning passes, first reading their leet tokens when a letter
    stands beside a digit ("500ml", "rtx3060": one title in six). This loop does the
    same without the calls `normalize` makes to get there (a fifth of normalising). Every
    other title, any title whose reading changes it, and every title when the compiled
    passes are not built go through `normalize` itself. Where they are built, the titles
    with no leet to read (most of them) are settled by one compiled call for the whole
    list (`_cleaner.settle_plain_many`: this loop's first branch, in C), and the loop
    runs for the rest.
    """
    settle = _native_settle()
    try:
        limit = int(max_length)
    except (TypeError, ValueError, OverflowError):
        limit = 0
    if settle is None or not 1 <= limit <= sys.maxsize:
        return [normalize(title, max_length) for title in titles]
    raw, mix = raw_limit(limit), _MIX_HINT_RE.search
    titles = titles if isinstance(titles, list) else list(titles)
    settled_plain = _native_settle_plain_many()(titles, limit, min(raw, sys.maxsize))
    out: list[str] = []
    append = out.append
    for title, plain in zip(titles, settled_plain, strict=True):
        if plain is not None:
            append(plain)
            continue
        if type(title) is str and title.isascii() and "&" not in title and "<" not in title:
            # `_fold` of such a title, and `normalize`'s first branch after it.
            text = title[:raw].lower()
            if mix(text) is None:
                if (settled := settle(text, limit)) is not None:
                    append(settled)
                    continue
            elif _read_leet_words(text) is text and not ("'" in text or "@" in text or "$" in text):
                # `normalize`'s second branch when its reading changes nothing.
                settled = settle(text, limit)
                if settled is not None and len(settled) < limit:
                    append(settled)
                    continue
        append(normalize(title, max_length))
    return out


class TextNormalizer(TransformerMixin, BaseEstimator):
    """Stateless scikit-learn transformer applying :func:`normalize` to each title.

    Accepts a list, tuple, 1-D numpy array, pandas Series, or a single-column
    2-D array/DataFrame of arbitrary values (None, NaN, bytes, numbers) and
    returns a 1-D numpy object array of normalised strings, same length and order.

    Args:
        max_length: Maximum length of each normalised title.

    Example:
        >>> TextNormalizer().fit_transform(["Kemeja B4tik", None]).tolist()
        ['kemeja batik', '']
    """

    def __init__(self, max_length: int = 300) -> None:
        self.max_length = max_length

    def fit(self, X: Iterable[Any], y: Any = None) -> Self:
        """Validate parameters; there is nothing to learn.

        Args:
            X: Titles (ignored apart from the parameter check).
            y: Ignored.

        Returns:
            self.
        """
        self._check_params()
        return self

    def transform(self, X: Iterable[Any]) -> np.ndarray:
        """Normalise every title.

        Args:
            X: Titles as list, tuple, 1-D array, Series, or one-column 2-D input.

        Returns:
            A 1-D numpy array of dtype object holding str values.

        Raises:
            ValueError: If ``X`` is a single string or has more than one column,
                or ``max_length`` is invalid.
        """
        self._check_params()
        values = _as_1d_object_array(X)
        out = np.empty(values.shape[0], dtype=object)
        out[:] = normalize_many(values.tolist(), int(self.max_length))
        return out

    def _check_params(self) -> None:
        if (
            isinstance(self.max_length, bool)
            or not isinstance(self.max_length, (int, np.integer))
            or self.max_length < 1
        ):
            raise ValueError(f"max_length must be a positive integer, got {self.max_length!r}")

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        """Declare 1-D string input and that fitting is optional."""
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        tags.input_tags.allow_nan = True
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = []
        return tags


def _as_1d_object_array(X: Any) -> np.ndarray:
    if isinstance(X, (str, bytes)):
        raise ValueError("Iterable over raw text documents expected, string object received.")
    if hasattr(X, "to_numpy"):  # pandas Series / DataFrame
        arr = X.to_numpy(dtype=object)
    elif isinstance(X, np.ndarray):
        arr = X.astype(object, copy=False)
    else:
        items = list(X)
        arr = np.empty(len(items), dtype=object)
        # Element-wise assignment: np.asarray would turn equal-length inner
        # sequences (or strings of bytes) into extra dimensions.
        for i, item in enumerate(items):
            arr[i] = item
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"Expected a 1-D sequence of titles or one column, got shape {arr.shape}.")
    return arr
