"""Text normalisation for marketplace listing titles (Indonesian, English or mixed).

Titles are noisy in ways that hurt a bag-of-words classifier: promo shouting
("READY STOCK!!! COD"), upload timestamps, sizes and weights in a dozen spellings,
and deliberate obfuscation by sellers dodging keyword filters ("k3m3ja",
"b a t i k", Cyrillic look-alike letters, zero-width characters). ``normalize``
folds all of these into a small lowercase ASCII alphabet so that variants of the
same product collapse onto the same tokens. Heavy leetspeak ("k3r1p1k s1ngk0ng",
"4r4b1k4") is read back with a list of known words (``resources/known_words.txt``):
a token is rewritten only when its reading is a known word, so model codes stay.

The package does no I/O at import; regexes and translation tables are built once at import
because ``normalize`` runs on every title in training and at serving time. Its parts, in the
order a title meets them: ``fold`` (characters), ``leet`` (leetspeak read as words),
``clean`` (the cleaning passes), ``native`` (their compiled twin), ``normaliser``
(``normalize`` and the pipeline step), ``tokens`` (tokens, stopwords, language).
"""

from clustercls.text.clean import (
    TITLE_BREAK,
    UNIT_COUNT,
    UNIT_LEN,
    UNIT_MASS,
    UNIT_PLACEHOLDERS,
    UNIT_SIZE,
    UNIT_VOL,
    NoisePhrases,
    all_normalised,
    is_normalised,
    load_noise_phrases,
)
from clustercls.text.fold import raw_limit
from clustercls.text.leet import load_known_words
from clustercls.text.native import PURE_PYTHON_ENV, compiled_module
from clustercls.text.normaliser import TextNormalizer, normalize, normalize_many
from clustercls.text.tokens import TokenTable, detect_lang, load_stopwords, tokenize

__all__ = [
    "PURE_PYTHON_ENV",
    "TITLE_BREAK",
    "UNIT_COUNT",
    "UNIT_LEN",
    "UNIT_MASS",
    "UNIT_PLACEHOLDERS",
    "UNIT_SIZE",
    "UNIT_VOL",
    "NoisePhrases",
    "TextNormalizer",
    "TokenTable",
    "all_normalised",
    "compiled_module",
    "detect_lang",
    "is_normalised",
    "load_known_words",
    "load_noise_phrases",
    "load_stopwords",
    "normalize",
    "normalize_many",
    "raw_limit",
    "tokenize",
]
