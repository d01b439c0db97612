"""Character folding: any cell value to lowercase ASCII (HTML undone, Unicode folded,
look-alike letters mapped to Latin, invisible characters dropped), the text the cleaning
passes start from. Only titles with non-ASCII characters reach the tables."""

from __future__ import annotations

import html
import math
import re
import unicodedata

# Raw input is cut before processing so one pathological multi-megabyte cell
# cannot stall a batch. The limit is generous: the output keeps at most
# max_length characters and the pipeline expands text by at most ~4x ("1l" ->
# "unitvol"), so only a title buried behind thousands of noise characters could
# lose words to this cut.
_RAW_LIMIT_FACTOR = 8
_RAW_LIMIT_MIN = 1000


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


_TAG_RE = re.compile(r"</?[a-z!][^<>]{0,200}>", re.IGNORECASE)


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
