"""The cleaning passes: timestamps, promo noise, units and spaced or dotted letters, run to
a fixed point on folded text. Their compiled twin (`native`) mirrors them line for line."""

from __future__ import annotations

import csv
import functools
import io
import re
from dataclasses import dataclass
from importlib import resources

# Placeholder tokens for units. They contain no digits, so no unit pattern can
# match them again; this is what keeps normalize() idempotent around units.
UNIT_MASS = "unitmass"
UNIT_VOL = "unitvol"
UNIT_LEN = "unitlen"
UNIT_COUNT = "unitcount"
UNIT_SIZE = "unitsize"
UNIT_PLACEHOLDERS = frozenset({UNIT_MASS, UNIT_VOL, UNIT_LEN, UNIT_COUNT, UNIT_SIZE})
"""Every placeholder `normalize` puts in place of a quantity."""

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

TITLE_BREAK = "|"
"""A token outside the normalised alphabet, so never a normalised title's word: the block
paths (word counts, lexicon, familiarity) join a call's titles with it, look every word up
in one pass and tell the titles apart again where it falls."""


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


_ALPHABET_AND_BREAK = b"abcdefghijklmnopqrstuvwxyz0123456789 \n"


def all_normalised(texts: list) -> bool:
    """`all(map(is_normalised, texts))`, checked on the texts joined by newlines (outside
    the alphabet, so a text holding one fails the count): one scan instead of one call
    per text, which serving does for every block of titles. The alphabet is checked by
    deleting it from the ASCII bytes, twice as fast as a regex search."""
    try:
        joined = "\n".join(texts)
    except TypeError:  # not all strings
        return all(map(is_normalised, texts))
    return (
        joined.isascii()
        and not joined.encode("ascii").translate(None, _ALPHABET_AND_BREAK)
        and joined.count("\n") == max(len(texts) - 1, 0)
        and "  " not in joined
        and " \n" not in joined
        and "\n " not in joined
        and joined[:1] != " "
        and joined[-1:] != " "
    )


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
