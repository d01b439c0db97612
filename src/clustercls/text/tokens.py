"""Tokens, stopwords and a title's language."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from importlib import resources
from itertools import repeat

import numpy as np
from nltk.tokenize import RegexpTokenizer

from clustercls.text.clean import TITLE_BREAK, is_normalised
from clustercls.text.native import compiled_module
from clustercls.text.normaliser import normalize

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


@functools.cache
def compiled_token_lookup():  # type: ignore[no-untyped-def]
    """``clustercls._tokens``, or None where it is not built or turned off."""
    return compiled_module("_tokens")


class TokenTable:
    """One integer per token of a call's titles, looked up in a fixed table: what the
    block paths of the word n-gram counts, the lexicon scan and familiarity start from.

    `ids(docs)` is ``[mapping.get(t, default) for t in f" {TITLE_BREAK} ".join(docs).split()]``
    (or ``.split(" ")`` with ``any_whitespace=False``) as int64: the break token between
    titles is looked up like any other, so a caller that maps it to a value of its own
    tells the titles apart again. The compiled twin (``clustercls._tokens``) hashes
    tokens in place instead of making each a str for a dict: on a word vocabulary of
    100,000+ entries the lookup was a third of the word features' time. It is built on
    first use and never pickled; tests and the fuzz run compare it with the Python path.

    Args:
        mapping: Token -> value (int64). Read at construction; later changes to it are
            not seen.
        default: Value of a token the mapping does not hold.
        any_whitespace: Split as ``str.split()`` (True) or ``str.split(" ")`` (False).
    """

    def __init__(self, mapping: Mapping[str, int], default: int, any_whitespace: bool = True):
        self.mapping = dict(mapping)
        self.default = int(default)
        self.any_whitespace = any_whitespace
        self._compiled: object | None = None

    def __getstate__(self) -> dict:
        # The compiled table is a pointer into this process's memory.
        return {**self.__dict__, "_compiled": None}

    def _table(self, module) -> object:
        """This table in the compiled module (built on first use)."""
        if self._compiled is None:
            self._compiled = module.build(list(self.mapping), list(self.mapping.values()))
        return self._compiled

    def ids(self, docs: Sequence[str]) -> np.ndarray:
        """Each token's value, in order, the break token's between titles.

        Args:
            docs: Titles (str); any other value goes to the Python path, which raises
                as ``str.join`` does.

        Returns:
            int64 array, one entry per token.
        """
        module = compiled_token_lookup()
        if module is not None:
            table = self._table(module)
            found = module.lookup(table, docs, TITLE_BREAK, self.default, self.any_whitespace)
            if found is not None:
                return np.frombuffer(found, dtype=np.int64)
        joined = f" {TITLE_BREAK} ".join(docs)
        tokens = joined.split() if self.any_whitespace else joined.split(" ")
        # map() with two iterables calls `dict.get(token, default)` without a Python frame.
        return np.fromiter(
            map(self.mapping.get, tokens, repeat(self.default)), np.int64, len(tokens)
        )


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
