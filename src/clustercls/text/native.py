"""The compiled twins: loading `clustercls._cleaner` (configured with the cleaning passes'
patterns) and falling back to Python where it is not built or cannot vouch for a text."""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from typing import Any

from clustercls.text.clean import (
    _APOSTROPHE_RE,
    _BARE_NUMBER_RE,
    _CONSONANT_RUN_RE,
    _DOTTED_HINT_RE,
    _DOTTED_RE,
    _IN_ONE_RE,
    _LEET_CANDIDATE_RE,
    _LEET_HINT_RE,
    _LEET_SHAPE_RE,
    _NON_ALNUM_RE,
    _NUMBER_HINT_RE,
    _SIZE_WORD_RE,
    _SPACED_HINT_RE,
    _SPACED_RE,
    _TECH_SUFFIX_RE,
    _TECH_UNIT_RE,
    _TIMESTAMP_RE,
    _UNIT_RULES,
    _UNIT_WORD_SHORTCUTS,
    _VOWEL_RUN_RE,
    UNIT_SIZE,
    _settle,
    load_noise_phrases,
)


def _settle_any(s: str, limit: int) -> str:
    """`_settle` by its compiled twin where built (and able to vouch for `s`), else in
    Python."""
    settle = _native_settle()
    if settle is not None:
        # A limit beyond any string's length is no limit; C wants it in a machine word.
        settled = settle(s, min(limit, sys.maxsize))
        if settled is not None:
            return settled
    return _settle(s, limit)


PURE_PYTHON_ENV = "CLUSTERCLS_PURE_PYTHON"
"""Set to 1 to run the Python cleaning passes even where the compiled ones are built."""


def compiled_module(name: str) -> Any:
    """The compiled module ``clustercls.<name>``, or None where it is not built or
    `PURE_PYTHON_ENV` is set (every compiled part has a Python twin with the same output).

    Args:
        name: The module's name inside the package, such as ``"_cleaner"``.

    Returns:
        The module, or None.
    """
    if os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0"):
        return None
    try:
        return importlib.import_module(f"clustercls.{name}")
    except ImportError:
        return None


def _pcre2(pattern: re.Pattern[str]) -> str:
    """A pattern of this module in PCRE2 syntax: the same but for ``\\s``, which in Python
    (str patterns) also matches the separators U+001C..U+001F."""
    return pattern.pattern.replace("\\s", "[\\s\\x1c-\\x1f]")


@functools.cache
def _native_settle():  # type: ignore[no-untyped-def]
    """The compiled `_settle` (``clustercls._cleaner``), configured with this module's
    patterns; None where it is not built or `PURE_PYTHON_ENV` is set.

    It returns None itself for text it cannot vouch for, and `normalize` then runs
    `_settle`. Its steps mirror `_clean_pass` line for line: a change to one needs the
    same change to the other, and the tests comparing the two on every source title and
    on generated text fail until both agree.
    """
    _cleaner = compiled_module("_cleaner")
    if _cleaner is None:
        return None
    patterns = (
        _NUMBER_HINT_RE, _TIMESTAMP_RE, _LEET_HINT_RE, _LEET_CANDIDATE_RE, _LEET_SHAPE_RE,
        _CONSONANT_RUN_RE, _VOWEL_RUN_RE, _TECH_SUFFIX_RE, _IN_ONE_RE, _TECH_UNIT_RE,
        _SIZE_WORD_RE, _DOTTED_HINT_RE, _DOTTED_RE, _SPACED_HINT_RE, _SPACED_RE,
        _APOSTROPHE_RE, _NON_ALNUM_RE, load_noise_phrases().regex, _BARE_NUMBER_RE,
    )  # fmt: skip
    rules = []
    for pattern, placeholder in _UNIT_RULES:
        words, fallback = _UNIT_WORD_SHORTCUTS.get(placeholder, ((), None))
        rules.append(
            (
                _pcre2(pattern),
                f" {placeholder} ",
                tuple(words),
                None if fallback is None else _pcre2(fallback),
            )
        )
    try:
        _cleaner.configure(
            tuple(map(_pcre2, patterns)),
            tuple(rules),
            f" {UNIT_SIZE} ",
            tuple(sorted(load_noise_phrases().first_tokens)),
        )
    except ValueError:
        # A pattern this PCRE2 cannot compile: the Python passes serve, as if unbuilt.
        return None
    return _cleaner.settle


@functools.cache
def _native_settle_plain_many():  # type: ignore[no-untyped-def]
    """``_cleaner.settle_plain_many`` where the compiled `settle` serves (configured by
    `_native_settle`), else None."""
    if _native_settle() is None:
        return None
    return compiled_module("_cleaner").settle_plain_many
