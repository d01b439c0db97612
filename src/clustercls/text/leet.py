"""Reading heavy leetspeak back as words: a token is rewritten only when its reading is a
known word (`resources/known_words.txt`), so model codes stay."""

from __future__ import annotations

import functools
import itertools
import re
import types
from collections.abc import Iterable, Mapping
from importlib import resources

from clustercls.text.clean import _UNIT_RULES

# What a leet character may stand for; "1" is tried as "i" and as "l".
_LEET_LETTERS = {"0": "o", "1": "il", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
_LEET_CHARS = "".join(_LEET_LETTERS)
_LEET_FIRST_READING = str.maketrans({ch: letters[0] for ch, letters in _LEET_LETTERS.items()})
_DROP_LEET = str.maketrans(dict.fromkeys(_LEET_CHARS))
# At most this many readings of one token are looked up (four "1"s give 16).
_MAX_READINGS = 16
# A digit, "@" or "$" beside a letter: titles without one skip the step. Starting with a
# character class lets the regex engine skip to candidates (3x faster than "[a-z][0-9]|...").
_MIX_HINT_RE = re.compile(r"[0-9@$](?:(?<=[a-z].)|(?=[a-z]))")
# The tokens the step reads: runs of letters, digits, "@" and "$".
_LEET_TOKEN_RE = re.compile(r"[a-z0-9@$]+")
# The only tokens it can rewrite: letters and leet characters alone, at least one of each
# (any other digit keeps a token as it is). Model codes ("x123", "16gb") fail this one
# search, which spares them the per-token work.
_READABLE_TOKEN_RE = re.compile(
    r"(?<![a-z0-9@$])(?=[a-z013457@$]*[a-z])(?=[a-z013457@$]*[013457@$])"
    r"[a-z013457@$]+(?![a-z0-9@$])"
)
# A leet character between two letters ("k3meja"): strong evidence of leetspeak.
_LEET_INSIDE_RE = re.compile(r"[a-z][0-9@$]+[a-z]")
# Weak evidence (a short token, or digits only at its ends as in "kop1", "5epatu") needs
# a word at least this common: its number of distinct source titles in the word list.
_COMMON_WORD_TITLES = 50
# A number with a unit stays even when its reading is a word: units ("5ml"), specs and
# "3in1" as the cleaning passes join them ("10w", "1pk"), amperes, inches and ordinals
# ("1amp", "14in", "4nd").
_NUMBER_WITH_UNIT = (
    *(pattern for pattern, _ in _UNIT_RULES),
    re.compile(
        r"\d+(?:gb|tb|mb|kb|mah|mp|ghz|mhz|khz|hz|w|watt|v|volt|pk|amps?|in\d*|st|nd|rd|th)"
    ),
)


@functools.lru_cache(maxsize=1)
def load_known_words() -> Mapping[str, int]:
    """Load the known words shipped with the package (``resources/known_words.txt``).

    Returns:
        Each known word (lowercase ASCII letters, length >= 3) with the number of
        distinct normalised source titles it occurs in.
    """
    text = (
        resources.files("clustercls")
        .joinpath("resources", "known_words.txt")
        .read_text(encoding="utf-8")
    )
    words: dict[str, int] = {}
    for line in text.splitlines():
        word, _, count = line.partition(" ")
        if count.isdigit() and word.isalpha():  # comment lines start with "#"
            words[word] = int(count)
    return types.MappingProxyType(words)


def _leet_readings(token: str) -> Iterable[str]:
    """The letter strings a leet token may stand for, most likely first."""
    if "1" not in token:
        return (token.translate(_LEET_FIRST_READING),)
    options = [_LEET_LETTERS.get(ch, ch) for ch in token]
    return ("".join(p) for p in itertools.islice(itertools.product(*options), _MAX_READINGS))


def _read_leet_token(token: str, words: Mapping[str, int]) -> str:
    """`token` (letters mixed with leet characters) as a known word, or unchanged.

    The token becomes its reading that is the commonest known word, unless a rule
    below keeps it (model codes, sizes, and codes whose reading is a word by chance):

    - a digit that is no leet character keeps it ("rtx3060", "ip68", "2in1");
    - a reading must be a known word ("i5", "mp3", "a52s", "note10" have none);
    - a token of 3 characters needs one leet character and a common word ("t3h" ->
      "teh"; "m10" -> "mio", "4th" -> "ath" stay);
    - a longer token with no leet character between two letters ("kop1", "5epatu")
      needs more letters than leet characters, or as many and a common word ("pr14"
      -> "pria"; "gu10", "al00" stay), and stays when its letters alone are a word at
      least as common ("kit4", "1ball");
    - a number with a unit stays ("5ml", read "sml").
    """
    letters = token.translate(_DROP_LEET)
    if not letters.isalpha():
        return token  # another digit, or no letter at all
    n_leet = len(token) - len(letters)
    best, best_count = token, 0
    for reading in _leet_readings(token):
        count = words.get(reading, 0)
        if count > best_count:
            best, best_count = reading, count
    if not best_count:
        return token
    if len(token) < 4:
        if n_leet != 1 or best_count < _COMMON_WORD_TITLES:
            return token
    elif _LEET_INSIDE_RE.search(token) is None:
        if len(letters) < n_leet or (len(letters) == n_leet and best_count < _COMMON_WORD_TITLES):
            return token
        if words.get(token.strip(_LEET_CHARS), 0) >= best_count:
            return token
    if token[0].isdigit() and any(p.fullmatch(token) for p in _NUMBER_WITH_UNIT):
        return token
    return best


@functools.lru_cache(maxsize=1 << 14)
def _leet_readings_in(piece: str) -> tuple[tuple[str, str], ...]:
    """The (token, reading) pairs of the tokens `_read_leet_token` rewrites in `piece`
    (text between whitespace). Cached: model codes ("16gb", "i5") recur in title after
    title."""
    words = load_known_words()
    pairs = []
    for token in _LEET_TOKEN_RE.findall(piece):
        if not token.isalpha():
            reading = _read_leet_token(token, words)
            if reading != token:
                pairs.append((token, reading))
    return tuple(pairs)


def _read_leet_words(s: str) -> str:
    """Folded text with its leet tokens read back as known words (see `_read_leet_token`).

    Both the Python and the compiled cleaning passes start from its output, so they
    stay twins; titles without a letter beside a digit, "@" or "$" pay one search.
    """
    if _MIX_HINT_RE.search(s) is None or _READABLE_TOKEN_RE.search(s) is None:
        return s
    changes: dict[str, str] = {}
    for piece in s.split():
        if not piece.isalpha():
            changes.update(_leet_readings_in(piece))
    if not changes:
        return s
    return _LEET_TOKEN_RE.sub(lambda m: changes.get(m.group(), m.group()), s)
