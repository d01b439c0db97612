"""Text normalisation for marketplace listing titles (Indonesian, English or mixed).

Titles are noisy in ways that hurt a bag-of-words classifier: promo shouting
("READY STOCK!!! COD"), upload timestamps, sizes and weights in a dozen spellings,
and deliberate obfuscation by sellers dodging keyword filters ("k3m3ja",
"b a t i k", Cyrillic look-alike letters, zero-width characters). ``normalize``
folds all of these into a small lowercase ASCII alphabet so that variants of the
same product collapse onto the same tokens. Heavy leetspeak ("k3r1p1k s1ngk0ng",
"4r4b1k4") is read back with a list of known words (``resources/known_words.txt``):
a token is rewritten only when its reading is a known word, so model codes stay.

The module does no I/O at import; regexes and translation tables are built once
here because ``normalize`` runs on every title in training and at serving time.
"""

from __future__ import annotations

import csv
import functools
import html
import importlib
import io
import itertools
import math
import os
import re
import sys
import types
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Self

import numpy as np
from nltk.tokenize import RegexpTokenizer
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = [
    "TextNormalizer",
    "detect_lang",
    "is_normalised",
    "load_known_words",
    "load_noise_phrases",
    "load_stopwords",
    "normalize",
    "tokenize",
]

# Placeholder tokens for units. They contain no digits, so no unit pattern can
# match them again; this is what keeps normalize() idempotent around units.
UNIT_MASS = "unitmass"
UNIT_VOL = "unitvol"
UNIT_LEN = "unitlen"
UNIT_COUNT = "unitcount"
UNIT_SIZE = "unitsize"

# Raw input is cut before processing so one pathological multi-megabyte cell
# cannot stall a batch. The limit is generous: the output keeps at most
# max_length characters and the pipeline expands text by at most ~4x ("1l" ->
# "unitvol"), so only a title buried behind thousands of noise characters could
# lose words to this cut.
_RAW_LIMIT_FACTOR = 8
_RAW_LIMIT_MIN = 1000

# ---------------------------------------------------------------------------
# Character folding (only reached for titles with non-ASCII characters)
# ---------------------------------------------------------------------------

# Letters from other scripts that render like Latin ones. Sellers swap them in
# ("kоpі" with Cyrillic о/і) to get past keyword filters while staying readable.
# Keys are lowercase because the text is casefolded first; the Cyrillic keys
# include lowercase forms of letters whose *capital* looks Latin (в/В, н/Н, т/Т,
# м/М, к/К), since sellers often type the capital.
_CONFUSABLES: dict[int, int | str] = str.maketrans(
    # Cyrillic, then Greek, then Latin letters with no decomposition to a base letter;
    # position i of the first string maps to position i of the second.
    "авеёєіїјкмнорстуүхѕԁԛԝӏһьпгοαει\u03baνρτυχϲϳβηıȷłøđħŧðɑɡꞵ",
    "abeeeiijkmhopctyyxsdqwlhbnroaeikvptuxcjbnijlodhtdagb",
)
# Letters that fold to two Latin letters cannot go in the paired strings above.
_CONFUSABLES.update(str.maketrans({"æ": "ae", "œ": "oe", "þ": "th"}))

# Non-ASCII punctuation that carries meaning for the unit patterns (dimension
# "×", inch marks, dashes) is mapped to its ASCII form instead of a space.
# Trademark-like signs are removed outright: NFKD would otherwise turn "™"
# into the letters "tm" and invent a token.
_SYMBOLS: dict[int, int | str] = str.maketrans(
    "×✕✖″“”„′‘’‚–—‑‐−⁄【】〔〕™℠©®℅",
    "xxx\"\"\"\"''''-----/[][]     ",
)

# Invisible characters are deleted (not spaced) because sellers insert them
# *inside* words: "bat\u200bik" must become "batik".
_INVISIBLE = frozenset("\u00ad\u180e\u200b\u200c\u200d\u2060\ufeff")


def _fold_char(ch: str) -> str:
    """Map one already NFKD-decomposed, casefolded character to ASCII.

    Args:
        ch: A single character.

    Returns:
        Replacement text: ASCII letters/digits/punctuation, "" or " ".
    """
    cp = ord(ch)
    if cp < 128:
        return ch
    if ch in _INVISIBLE:
        return ""
    mapped = _CONFUSABLES.get(cp, _SYMBOLS.get(cp))
    if mapped is not None:
        return mapped if isinstance(mapped, str) else chr(mapped)
    cat = unicodedata.category(ch)
    # Combining marks carry the diacritics NFKD split off ("é" -> "e" + U+0301);
    # Cf are format controls (bidi marks, joiners). Both are invisible.
    if cat in ("Mn", "Me", "Mc", "Cf"):
        return ""
    if cat == "Nd":
        return str(unicodedata.digit(ch, 0))
    # Letters from scripts we cannot read, symbols, emoji, other punctuation,
    # separators and controls all become word breaks.
    return " "


class _FoldTable(dict):  # type: ignore[type-arg]
    """Lazily filled ``str.translate`` table: each code point is resolved once.

    Building a table over all of Unicode at import would cost a second; most
    titles use a few dozen distinct non-ASCII characters, so memoising per
    character keeps the per-title cost at C speed after warm-up.
    """

    _MAX_ENTRIES = 200_000

    def __missing__(self, cp: int) -> str:
        value = _fold_char(chr(cp))
        if len(self) < self._MAX_ENTRIES:
            self[cp] = value
        return value


_FOLD_TABLE = _FoldTable()

# ---------------------------------------------------------------------------
# Regexes (all applied to lowercase text)
# ---------------------------------------------------------------------------

_TAG_RE = re.compile(r"</?[a-z!][^<>]{0,200}>", re.IGNORECASE)

# Upload dates/timestamps (20170821, 2019-08-21, 12:30:05) say nothing about the
# product and otherwise leave model-code-like residue.
_TIMESTAMP_RE = re.compile(
    r"\d(?<![a-z0-9]\d)"
    r"(?:(?:(?<=1)9|(?<=2)0)\d\d([-/.]?)(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12]\d|3[01])"
    r"(?:[ t]?\d\d[:.]?\d\d(?:[:.]?\d\d)?)?(?![a-z0-9])"
    r"|\d?:\d\d(?::\d\d)?(?![a-z0-9]))"
)

_LEET_MAP = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_LEET_HINT_RE = re.compile(r"[a-z][0-9@$]+[a-z]")
_LEET_CANDIDATE_RE = re.compile(r"[a-z0-9@$]*[a-z][0-9@$]+[a-z][a-z0-9@$]*")
# Leet runs are single characters, or "00" ("g00d"): longer runs such as the
# "441" of "x441ub" or the "55" of "a55ty" are model numbers.
_LEET_SHAPE_RE = re.compile(r"^[a-z]+(?:(?:00|[013457@$])[a-z]+)+$")
_VOWELS = frozenset("aeiouy")
_LEET_VOWEL_CHARS = frozenset("0134@")
_VOWEL_RUN_RE = re.compile(r"[aeiouy]{3}")
_CONSONANT_RUN_RE = re.compile(r"[bcdfghjklmnpqrstvwxz]{4}")
_TECH_SUFFIX_RE = re.compile(r"(?:gb|tb|mb|kb|hz|mah|mp|px)$")

# "3-in-1" and "3 in 1" are written as "3in1" so they tokenise like "2in1"
# instead of losing their numbers with the other bare numbers.
_IN_ONE_RE = re.compile(r"(\d)(?<![a-z0-9.,]\d)\s*-?\s*in\s*-?\s*(\d)(?![a-z0-9])")
# Specs such as "16 gb" / "16gb" or "1 pk" / "1pk" are joined so both spellings give one
# token; they are not product-type units, so they keep their number.
_TECH_UNIT_RE = re.compile(
    r"(\d(?<![a-z0-9.,]\d)\d*)\s+(gb|tb|mb|kb|mah|mp|ghz|mhz|khz|hz|w|watt|v|volt|pk)(?![a-z0-9])"
)
_NUM = r"\d+(?:[.,]\d+)*"
# A number that starts a token: no letter, digit, "." or "," before it. The digit comes
# first and the look-behind after it, so the regex engine jumps from digit to digit
# instead of trying every position (3x faster on long titles; same matches).
_DIGIT_FIRST = r"\d(?<![a-z0-9.,]\d)"
_NUM_FIRST = rf"{_DIGIT_FIRST}\d*(?:[.,]\d+)*"
_UNIT_END = r"(?![a-z0-9])"
# "2 x 250gr" / "20x4.2gr": a multiplier prefix belongs to the unit it counts.
_TIMES_NUM = rf"\s*[x*]\s*{_NUM}"
_MASS = r"(?:kg|kgs|kilo(?:gram)?s?|gr|grm|grs|gram|grams|gramm|mg|ons|oz|ounces?|lbs?|pounds?)"

_COUNT_WORD_LED = (
    rf"(?<![a-z0-9])(?:isi|contents?|pack\s+of|set\s+of|box\s+of)\s*:?\s*{_NUM}{_UNIT_END}"
)
_COUNT_DIGIT_LED = (
    rf"{_NUM_FIRST}\s*(?:pcs|pc|pieces?|pcs\.|biji|buah|bh|lembar|lbr|sachets?|"
    rf"sct|packs?|pak|pax|ct|count|pasang|pairs?|lusin|kodi|rolls?|box|boxes|dus|"
    rf"btl|botol|pouch|tablets?|caps?){_UNIT_END}"
)

_UNIT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Volume first so "fl oz" is not read as mass "oz".
    (
        re.compile(
            rf"{_NUM_FIRST}(?:{_TIMES_NUM})?\s*(?:fl\.?\s*oz|ml|mls|millilit(?:er|re)s?|"
            rf"lit(?:er|re)s?|ltr|lt|l|cc|gal(?:lon)?s?){_UNIT_END}"
        ),
        UNIT_VOL,
    ),
    # "g" alone only after >= 2 digits: "4g"/"5g" are network generations, not grams.
    (
        re.compile(
            rf"(?:{_NUM_FIRST}\s*[x*]\s*(?:{_NUM}\s*{_MASS}|\d{{2,}}(?:[.,]\d+)?\s*g)"
            rf"|{_NUM_FIRST}\s*{_MASS}|{_DIGIT_FIRST}\d+(?:[.,]\d+)?\s*g){_UNIT_END}"
        ),
        UNIT_MASS,
    ),
    # Dimensions "30x20 cm", "30 x 20 x 10", then single lengths "15cm", '55"'.
    (
        re.compile(
            rf"{_NUM_FIRST}(?:\s*(?:cm|mm|m|inch|\"))?(?:\s*[x*]\s*{_NUM}){{1,2}}"
            rf"(?:\s*(?:cm|mm|m|mtr|meter|metre|inch(?:es)?|inci|in|ft|\"))?{_UNIT_END}"
            rf"|{_NUM_FIRST}\s*(?:cm|mm|km|m|mtr|meters?|metres?|inch(?:es|i)?|inc|"
            rf"yards?|yds?|ft|feet){_UNIT_END}"
            rf"|{_NUM_FIRST}(?:\"|'')"
        ),
        UNIT_LEN,
    ),
    (re.compile(rf"{_COUNT_WORD_LED}|{_COUNT_DIGIT_LED}"), UNIT_COUNT),
    (
        re.compile(
            rf"(?<![a-z0-9])(?:size|sz|uk|ukuran)\s*[:.]?\s*{_NUM}(?:\s*[-/]\s*{_NUM})*{_UNIT_END}"
        ),
        UNIT_SIZE,
    ),
)

# A word-led alternative ("isi 12", "size: 40") starts with a look-behind, so the regex
# engine tries it at every position: on a long title that costs more than the rest of the
# rule. Without any of these words in the text it cannot match, and the rule is the same
# as its digit-led part (None: as nothing). A test checks each shortcut.
_UNIT_WORD_SHORTCUTS: dict[str, tuple[tuple[str, ...], re.Pattern[str] | None]] = {
    UNIT_COUNT: (("isi", "content", "pack", "set", "box"), re.compile(_COUNT_DIGIT_LED)),
    UNIT_SIZE: (("size", "sz", "uk"), None),
}

# "all size"/"free size" carry no digit, so they are matched outside the digit-gated rules.
_SIZE_WORD_RE = re.compile(r"(?<![a-z0-9])(?:all|free|one)\s*size(?![a-z0-9])")
_DIGIT_RE = re.compile(r"\d")
_NON_ALNUM_RE = re.compile(r"[^a-z0-9]+")
_APOSTROPHE_RE = re.compile(r"(?<=[a-z])'(?=[a-z])")

# Runs of >= 3 single letters ("b a t i k", "k.o.p.i") are almost always a word
# spelled out to dodge filters or an abbreviation ("u s a", "b.p.a"); joining
# both is harmless. Dotted/dashed runs are joined before spaced ones so that
# "b a t i k k.o.p.i" gives two words, not "batikkopi".
_DOTTED_RE = re.compile(r"(?<![a-z0-9])[a-z](?:[.\-][a-z]){2,}(?![a-z0-9])")
_DOTTED_SEP_RE = re.compile(r"[.\-]")
# A dotted run holds a separator, a letter and a separator in a row; this finds one without
# the look-behind that makes the full pattern try every position.
_DOTTED_HINT_RE = re.compile(r"[.\-][a-z][.\-]")
_SPACED_RE = re.compile(r"(?<![a-z0-9])[a-z](?: [a-z]){2,}(?![a-z0-9])")


@dataclass(frozen=True)
class NoisePhrases:
    """Promo and marketplace boilerplate removed from titles (`resources/noise_phrases.csv`).

    Each row is a regex over clean lowercase text, the tokens a match can start with, a
    few examples and a note. Exceptions are lookaheads where the same word is part of a
    product or place ("ready to eat" is food, "cod liver oil" fish, "cape cod" a place).
    "baru", "import" and "premium" are deliberately absent: the policy uses them.

    Attributes:
        rows: The file's rows, in order (the order of the regex's alternatives).
        regex: One regex matching any phrase as whole tokens.
        first_tokens: Every token a match can start with. Scanning for the phrases
            costs more than the rest of a cleaning pass on a clean title, and 95% of
            titles hold none of these tokens; a test checks each row's examples.
    """

    rows: tuple[dict[str, str], ...]
    regex: re.Pattern[str]
    first_tokens: frozenset[str]


@functools.cache
def load_noise_phrases() -> NoisePhrases:
    """Read the noise phrases shipped with the package (once per process)."""
    text = (
        resources.files("clustercls")
        .joinpath("resources", "noise_phrases.csv")
        .read_text(encoding="utf-8")
    )
    rows = tuple(csv.DictReader(io.StringIO(text)))
    alternatives = "|".join(row["pattern"] for row in rows)
    return NoisePhrases(
        rows=rows,
        regex=re.compile(r"(?<![a-z0-9])(?:" + alternatives + r")(?![a-z0-9])"),
        first_tokens=frozenset(t for row in rows for t in row["first_tokens"].split()),
    )


# Where a date, spec or unit pattern can start: a digit with no letter or digit before it,
# or a digit after a count/size word ("isi12", "uk 40", "size:38").
_NUMBER_HINT_RE = re.compile(
    r"\d(?<![a-z0-9]\d)|(?:isi|contents?|of|size|sz|uk|ukuran)\s*[:.]?\s*\d"
)
# A run of >= 3 single letters has a letter with a space on each side.
_SPACED_HINT_RE = re.compile(r" [a-z] ")
_BARE_NUMBER_RE = re.compile(r"\d(?<![a-z0-9]\d)\d*(?![a-z0-9])")
_NOT_ALPHABET_RE = re.compile(r"[^a-z0-9 ]")


def is_normalised(text: object) -> bool:
    """Whether `text` looks like output of :func:`normalize`.

    Args:
        text: Any value.

    Returns:
        True for a str of ``[a-z0-9 ]`` with single spaces and no space at either end.
    """
    # Plain string tests: a regex alternation says the same three times slower.
    return (
        isinstance(text, str)
        and _NOT_ALPHABET_RE.search(text) is None
        and "  " not in text
        and text[:1] != " "
        and text[-1:] != " "
    )


# ---------------------------------------------------------------------------
# normalize
# ---------------------------------------------------------------------------


def _coerce(title: object) -> str:
    """Turn any cell value into a str without raising."""
    if isinstance(title, str):
        return title
    if title is None:
        return ""
    if isinstance(title, (bytes, bytearray, memoryview)):
        return bytes(title).decode("utf-8", errors="replace")
    if isinstance(title, float):
        return "" if math.isnan(title) else str(title)
    try:
        # NaN-likes (numpy floats, pd.NaT, Decimal("NaN")) are unequal to
        # themselves; pd.NA raises on bool(), which also means "missing".
        if title != title:
            return ""
        return str(title)
    except Exception:
        return ""


def _deleet_token(match: re.Match[str]) -> str:
    token = match.group()
    # A token is read as leetspeak only if every digit/@/$ sits between letters,
    # they are at most half the token, it has >= 4 chars and maps to letters
    # only: model codes and sizes ("mp3", "rtx3060", "a52s", "i5", "250gr",
    # "2in1", "b2b") fail these shape tests. Codes that pass the shape test
    # ("sm5w", "mi4i", "r7pa", "ram4gb") are rejected because the result would
    # not be pronounceable: no real vowel, a digit standing for a vowel between
    # two vowels (or for a consonant between two consonants), 4-consonant or
    # 3-vowel runs, or a storage/frequency suffix. A miss leaves a rare token
    # unchanged; a false hit only renames a code consistently.
    if len(token) < 4 or not _LEET_SHAPE_RE.match(token):
        return token
    plain = token.translate(_LEET_MAP)
    leet_positions = [i for i, ch in enumerate(token) if ch != plain[i]]
    if (
        len(leet_positions) * 2 > len(token)
        or not any(ch in _VOWELS for ch in token)
        or _CONSONANT_RUN_RE.search(plain)
        or _VOWEL_RUN_RE.search(plain)
        or _TECH_SUFFIX_RE.search(token)
    ):
        return token
    for i in leet_positions:
        neighbours_vowel = (plain[i - 1] in _VOWELS, plain[i + 1] in _VOWELS)
        if token[i] in _LEET_VOWEL_CHARS:
            if all(neighbours_vowel):
                return token
        elif not any(neighbours_vowel):
            return token
    return plain


# ---------------------------------------------------------------------------
# Vocabulary-aware de-leet (on folded text, before the cleaning passes)
# ---------------------------------------------------------------------------

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


def _join_spaced(match: re.Match[str]) -> str:
    return match.group().replace(" ", "")


def _join_dotted(match: re.Match[str]) -> str:
    return _DOTTED_SEP_RE.sub("", match.group())


def _clean_pass(s: str) -> str:
    """One pass of the token-level cleaning on folded lowercase text.

    ``_cleaner.c`` repeats these steps in C, in this order (see `_native_settle`).
    """
    # Cheap presence checks skip whole regex scans; after the first pass the
    # text is clean and usually digit-free, so the confirming pass is short.
    has_digit = _DIGIT_RE.search(s) is not None
    # Dates, "3 in 1", specs and units all need a number that starts a token or follows
    # a count/size word; digits inside model codes ("gls18i3") cannot start any of them.
    numbers = has_digit and _NUMBER_HINT_RE.search(s) is not None
    if numbers:
        s = _TIMESTAMP_RE.sub(" ", s)
    if (has_digit or "@" in s or "$" in s) and _LEET_HINT_RE.search(s):
        s = _LEET_CANDIDATE_RE.sub(_deleet_token, s)
    if numbers:
        s = _IN_ONE_RE.sub(r"\1in\2", s)
        s = _TECH_UNIT_RE.sub(r"\1\2", s)
        for pattern, placeholder in _UNIT_RULES:
            shortcut = _UNIT_WORD_SHORTCUTS.get(placeholder)
            if shortcut is not None and not any(word in s for word in shortcut[0]):
                pattern = shortcut[1]
                if pattern is None:
                    continue
            s = pattern.sub(f" {placeholder} ", s)
    if "size" in s:
        s = _SIZE_WORD_RE.sub(f" {UNIT_SIZE} ", s)
    if ("." in s or "-" in s) and _DOTTED_HINT_RE.search(s):
        s = _DOTTED_RE.sub(_join_dotted, s)
    if _SPACED_HINT_RE.search(s):
        s = _SPACED_RE.sub(_join_spaced, s)
    if "'" in s:
        s = _APOSTROPHE_RE.sub("", s)
    if not is_normalised(s):
        s = " ".join(_NON_ALNUM_RE.sub(" ", s).split())
    noise = load_noise_phrases()
    if not noise.first_tokens.isdisjoint(s.split()):
        s = noise.regex.sub(" ", s)
    if has_digit:
        s = _BARE_NUMBER_RE.sub(" ", s)
    return " ".join(s.split())


def _truncate(s: str, max_length: int) -> str:
    if len(s) <= max_length:
        return s
    cut = s.rfind(" ", 0, max_length + 1)
    # Cut at the last word boundary; a single word longer than the limit is cut
    # hard, because returning "" would lose more than a partial word.
    return s[:cut] if cut > 0 else s[:max_length].rstrip()


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


def raw_limit(max_length: int) -> int:
    """How many characters of a raw title `normalize(title, max_length)` reads: the rest
    cannot reach its output, and cutting first bounds the work a hostile title costs.
    Serving marks longer titles `truncated`."""
    return max(_RAW_LIMIT_MIN, _RAW_LIMIT_FACTOR * max_length)


def _fold(title: object, limit: int) -> str:
    """Any cell value as lowercase ASCII: HTML undone, Unicode folded; what the cleaning
    passes (`_settle` or its compiled twin) start from."""
    s = _coerce(title)
    s = s[: raw_limit(limit)]
    if "&" in s:
        # Listings scraped from HTML are sometimes escaped twice ("&amp;amp;").
        s = html.unescape(html.unescape(s))
    if "<" in s:
        s = _TAG_RE.sub(" ", s)
    if s.isascii():
        return s.lower()
    s = s.translate(_SYMBOLS)
    s = unicodedata.normalize("NFKD", s).casefold()
    s = s.translate(_FOLD_TABLE)
    # Fold output can contain ASCII capitals from compatibility forms.
    return s.lower()


def _settle(s: str, limit: int) -> str:
    """The cleaning passes of folded lowercase text, run to their fixed point."""
    # Each cleaning step can expose work for another (dropping "ready" between
    # single letters creates a spaced-letter run), so iterate to a fixed point.
    # This terminates: every changing pass lowers the digit count or, failing
    # that, the length; and the fixed point is what makes normalize idempotent.
    prev = None
    while s != prev:
        prev = s
        s = _truncate(_clean_pass(s), limit)
    return s


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


# ---------------------------------------------------------------------------
# Tokens and stopwords
# ---------------------------------------------------------------------------

_TOKENIZER = RegexpTokenizer(r"[a-z0-9]+")


@functools.lru_cache(maxsize=1)
def load_stopwords() -> frozenset[str]:
    """Load the curated Indonesian + English stopword list shipped with the package.

    Returns:
        The stopwords as a frozenset of lowercase ASCII words.
    """
    text = (
        resources.files("clustercls")
        .joinpath("resources", "stopwords.txt")
        .read_text(encoding="utf-8")
    )
    words = set()
    for line in text.splitlines():
        word = line.split("#", 1)[0].strip().lower()
        if word:
            words.add(word)
    return frozenset(words)


def tokenize(text: str) -> list[str]:
    """Split normalised text into tokens, dropping stopwords.

    Args:
        text: Output of :func:`normalize`. Anything else is normalised first
            (normalize is idempotent, so this never changes clean input).

    Returns:
        Tokens in order of appearance, stopwords removed.
    """
    if not is_normalised(text):
        text = normalize(text)
    stop = load_stopwords()
    return [tok for tok in _TOKENIZER.tokenize(text) if tok not in stop]


# ---------------------------------------------------------------------------
# Language detection
# ---------------------------------------------------------------------------

# Function words plus the commonest marketplace words of each language. Words
# that normalize() removes ("murah", "original") would never be seen, and words
# shared by both markets ("set", "pack", "premium") would only add noise.
_ID_MARKERS = frozenset(
    """
    dan yang untuk dengan isi di ke dari atau tanpa buat bisa ada juga ini itu
    kain wanita pria anak anak2 bayi kopi baju celana kaos kemeja tas sepatu
    kue rasa khas asli hitam putih merah biru hijau kuning coklat warna ukuran
    pedas manis gurih ayam sapi ikan daging bubuk minyak gula garam tepung susu
    keripik kerupuk cemilan oleh perempuan cewek cowok laki dewasa polos motif
    tangan rumah dinding hiasan lampu kayu kulit besar kecil panjang pendek
    baru murni kemasan bahan kualitas harga paket kirim termasuk bagus lucu
    kecap sambal bumbu kacang pisang beras mie kering basah botol gelas piring
    kipas mesin alat kabel pengisi daya layar garansi resmi tahun thn bulan
    mobil motor perawatan pembersih penghilang pendingin penghangat ruangan
    mainan musik jadi kotak cuci hias lengkap komplit satuan buah biji lembar
    sabun sikat sendok panci wajan kompor setrika kulkas lemari kamar mandi
    dapur tempat wadah pakaian jilbab hijab gamis kerudung mukena bunga cokelat
    kaca besi plastik karet tebal tipis tinggi lebar enak lezat halal segar
    bawang cabe cabai udang telur nasi roti teh jahe kunyit madu gratis cocok
    semua jenis sepeda
    """.split()
)
_EN_MARKERS = frozenset(
    """
    the and for with of in on by from to your you women men kids boys girls
    womens mens boy girl set pack cotton black white red blue green brown
    pink grey gray yellow print printed round neck shirt sleeve solid
    organic natural fresh flavored flavour flavor chocolate cream sauce
    powder juice free whole sweet salted roasted cheese chicken beef butter
    wall art painting canvas decor home kitchen bottle cup bag case cover
    wireless portable stainless steel leather wooden handmade gift large small
    milk fruit dried salt sea face liquid mask medium crackers garden soap wash
    body hair jacket dress shoes ring necklace earrings pure dark made frozen
    baked tea
    """.split()
)


def detect_lang(text: str) -> str:
    """Guess the language of a title from small marker word lists.

    A light heuristic, not a language identifier: it counts Indonesian and
    English marker words (function words and common marketplace words) in
    the normalised text.

    Args:
        text: A title, raw or normalised.

    Returns:
        ``"id"`` or ``"en"`` when one language has at least twice the markers
        of the other, ``"mixed"`` when both are present in similar numbers,
        ``"unknown"`` when there are no markers.
    """
    tokens = _all_tokens(text)
    n_id = sum(1 for t in tokens if t in _ID_MARKERS)
    n_en = sum(1 for t in tokens if t in _EN_MARKERS)
    if n_id == 0 and n_en == 0:
        return "unknown"
    if n_id >= 2 * n_en:
        return "id"
    if n_en >= 2 * n_id:
        return "en"
    return "mixed"


def _all_tokens(text: object) -> list[str]:
    if not is_normalised(text):
        text = normalize(text)
    return text.split()


# ---------------------------------------------------------------------------
# scikit-learn transformer
# ---------------------------------------------------------------------------


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
        limit = self.max_length
        for i, value in enumerate(values):
            out[i] = normalize(value, limit)
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
