"""Model behaviour on the real shared data: minimum functionality and invariances.

These train one model per session on the real sources (about a minute) and skip when the
shared data is not beside the repo.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from tests.conftest import HAND_LABELLED

OBVIOUS = {
    "fashion_textile": [
        "Kemeja Batik Pria Lengan Panjang",
        "Gamis Syari Wanita Jumbo",
        "Sepatu Sneakers Pria Casual",
        "Men's Slim Fit Cotton Casual Shirt",
        "Women's Printed Kurta",
        "Kaos Kaki Bayi Motif Lucu",
        "Ransel Laptop Pria Anti Air",
        "Kalung Choker Wanita Korea",
        # A brand and a model code, nothing else (lexicon v7).
        "Timex Weekender TW2R42500",
        # Sportswear brands with a model line, nothing else (lexicon v8).
        "Nike Air Force 1 07 CW2288-111",
        "Skechers Go Walk 6",
    ],
    "food_beverage": [
        "Kopi Bubuk Arabika Gayo 250gr",
        "Keripik Singkong Pedas Balado",
        "Sambal Bawang Botol Homemade",
        "Organic Green Tea Bags 25 pcs",
        "Dark Chocolate Bar 70% Cocoa",
        "Beras Pandan Wangi 5 kg",
        "Amplang Bandeng Renyah 250gr",
    ],
    "craft": [
        "Lukisan Kaligrafi Arab Hiasan Dinding",
        "Abstract Acrylic Painting on Canvas Original",
        "Patung Kayu Ukiran Bali",
        "Hiasan Dinding Rotan Anyaman",
        "Handcrafted Brass Elephant Figurine Showpiece",
        # Wall art named by its medium (lexicon v5), in both languages.
        "Mountain Landscape Photography Print 8x10",
        "Poster Kayu Aesthetic Dekorasi Kamar",
        # Decor and art named as the held-out marketplaces name it (lexicon v6).
        "Hiasan Meja Kayu Jati Minimalis",
        "Watercolor Illustration Wall Art A4",
        # A carved box stays craft, though a jewellery box is other (lexicon v11).
        "Kotak Perhiasan Ukir Jepara",
    ],
    "other": [
        "Samsung Galaxy A52 Garansi Resmi",
        "Flashdisk Sandisk 32GB USB 3.0",
        "Charger Fast Charging 20W Type C",
        "Dish Washing Liquid Lemon 500 ml",
        "Smart Watch Fitness Tracker Heart Rate",
        "Mesin Jahit Portable Mini",
        # Instruments are other, also when carved: the policy's craft is decor, not bongos.
        "Hand Carved Wooden Bongo Drum Percussion",
        "Bongo Kayu Ukir Perkusi Tradisional",
        # A plain jewellery box is storage (a carved one is craft, above).
        "Kotak Perhiasan Kayu Minimalis Susun",
        # Look-alikes of food and jewellery (lexicon v6): live ornamental fish are pets,
        # gold bars and coins are bullion, not worn.
        "Ikan Cupang Halfmoon Jantan",
        "Logam Mulia 5 gr Sertifikat",
        "Yellow Gold Coin 24k 2 gm",
        # Diapers sold as "pants" and toothpaste named by its brand (lexicon v7).
        "Mamy Poko Pants L 28",
        "Pepsodent 190g",
        # The same brands' equipment is not worn (lexicon v8 names the brands fashion).
        "Nike Basketball Size 7",
        "Adidas Yoga Mat 4mm",
    ],
}


@pytest.mark.parametrize(
    ("title", "cluster"),
    [(t, c) for c, titles in OBVIOUS.items() for t in titles],
    ids=lambda v: str(v)[:30],
)
def test_obvious_titles(real_model, title, cluster) -> None:
    assert real_model.predict([title])["cluster"].iloc[0] == cluster


ALL_TITLES = [t for titles in OBVIOUS.values() for t in titles]


@pytest.mark.parametrize(
    "perturb",
    [
        lambda t: t.upper(),
        lambda t: t.lower(),
        lambda t: f"READY STOCK {t} COD",
        lambda t: f"[PROMO] {t} termurah!!!",
        lambda t: f"{t} 100% ORIGINAL 20170821",
        lambda t: f"🔥🔥 {t} ✨",
        lambda t: t.replace(" ", "  "),
        lambda t: f"{t}\u200b",
    ],
    ids=[
        "upper",
        "lower",
        "ready-stock-cod",
        "promo-termurah",
        "original-date",
        "emoji",
        "spaces",
        "zero-width",
    ],
)
def test_promo_and_casing_do_not_change_the_cluster(real_model, perturb) -> None:
    base = real_model.predict(ALL_TITLES)["cluster"].tolist()
    perturbed = real_model.predict([perturb(t) for t in ALL_TITLES])["cluster"].tolist()
    assert perturbed == base


@pytest.mark.parametrize(
    ("plain", "obfuscated"),
    [
        ("kemeja batik pria", "k3m3ja b4tik pria"),
        ("batik tulis", "b a t i k tulis"),
        ("kopi arabika", "k.o.p.i arabika"),
        ("kopi bubuk", "k\u043ep\u0456 bubuk"),  # Cyrillic о and і
    ],
)
def test_obfuscation_does_not_change_the_cluster(real_model, plain, obfuscated) -> None:
    a, b = real_model.predict([plain, obfuscated])["cluster"]
    assert a == b


# Obfuscation spread over whole titles, as sellers use it to slip past keyword rules. On the
# obvious and the hand-labelled titles, each trick may cost at most MAX_DROP of accuracy, of
# protected recall (protected titles predicted in some protected cluster, not `other`) and
# of protected titles caught (blocked or sent to review).
MAX_DROP = 0.03
_DIGIT_FOR = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5"}
# Cyrillic and Greek letters that look Latin, for lowercase and capital letters.
_LOOKALIKE = dict(
    zip(
        "aeopcxyisjktuvABEKMHOPCTX",
        "\u0430\u0435\u043e\u0440\u0441\u0445\u0443\u0456\u0455\u0458\u03ba\u03c4\u03c5\u03bd"
        "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425",
        strict=True,
    )
)
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


def _digits_for_half_the_vowels_and_s(title: str, rng: random.Random) -> str:
    return "".join(
        _DIGIT_FOR[c.lower()] if c.lower() in _DIGIT_FOR and rng.random() < 0.5 else c
        for c in title
    )


def _spelled_out(title: str, sep: str) -> str:
    # Every other word, so that two spelled-out words never run into one.
    words = title.split(" ")
    return " ".join(
        sep.join(w) if i % 2 == 0 and len(w) >= 3 and w.isalpha() else w
        for i, w in enumerate(words)
    )


TRICKS = {
    "digits": _digits_for_half_the_vowels_and_s,
    "spaced": lambda t, rng: _spelled_out(t, " "),
    "dotted": lambda t, rng: _spelled_out(t, "."),
    "lookalike": lambda t, rng: "".join(
        _LOOKALIKE[c] if c in _LOOKALIKE and rng.random() < 0.5 else c for c in t
    ),
    "zero-width": lambda t, rng: "".join(
        c + rng.choice(_ZERO_WIDTH) if c.isalpha() and rng.random() < 0.5 else c for c in t
    ),
    "full-width": lambda t, rng: "".join(
        "\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in t
    ),
}


# Brand-and-code titles that name no product, in the shapes sellers use: no marketplace in
# the training data has these words, so nothing in them says what is sold.
BRAND_AND_CODE = [
    "Zorvex KT-4471 Vanta",
    "QLM-88 Brixo Pro X2",
    "Glarnix Vexo 5500",
    "Trumbel ZX-9 Kordan",
    "Yxlo Brandt Quenta 77",
    "XR-2200 Nuvex Pro",
    "Brixo 7781-K",
    "Kordan ZT 55 Max",
    "VANTA QX9 ORIGINAL 100%",
    "Nuvex-3300 Series B",
]


def test_brand_and_code_titles_are_never_blocked(real_model) -> None:
    out = real_model.predict(BRAND_AND_CODE)
    assert "block" not in set(out["decision"]), out[["cluster", "confidence", "decision"]]
    # Most are flagged: the model knows too few of their words to be trusted with a block.
    assert out["unfamiliar"].sum() >= len(BRAND_AND_CODE) // 2


@pytest.fixture(scope="module")
def labelled_titles() -> tuple[list[str], np.ndarray]:
    """The obvious titles and the hand-labelled ones (sure labels only), with clusters."""
    hand = pd.read_csv(HAND_LABELLED, dtype=str, keep_default_na=False)
    hand = hand[~hand["unsure"].isin(["1", "true", "True"])]
    titles = ALL_TITLES + hand["title"].tolist()
    truth = [c for c, ts in OBVIOUS.items() for _ in ts] + hand["cluster"].tolist()
    return titles, np.array(truth)


def _scores(model, titles: list[str], truth: np.ndarray) -> dict[str, float]:
    predicted = model.predict(titles)
    cluster = predicted["cluster"].to_numpy()
    protected = truth != "other"
    return {
        "accuracy": (cluster == truth).mean(),
        "protected recall": (cluster[protected] != "other").mean(),
        "protected caught": (predicted["decision"].to_numpy()[protected] != "allow").mean(),
    }


@pytest.mark.parametrize("trick", list(TRICKS))
def test_obfuscation_costs_at_most_three_points(real_model, labelled_titles, trick) -> None:
    titles, truth = labelled_titles
    rng = random.Random(0)
    obfuscated = [TRICKS[trick](t, rng) for t in titles]
    assert obfuscated != titles
    clean = _scores(real_model, titles, truth)
    tricked = _scores(real_model, obfuscated, truth)
    for name, value in clean.items():
        assert tricked[name] >= value - MAX_DROP, (name, value, tricked[name])


def test_real_model_meets_its_floor(real_model_dir) -> None:
    """Guards against a regression in the data or the mapping, not a target."""
    import json

    metrics = json.loads((real_model_dir / "metadata.json").read_text())["metrics"]
    assert metrics["random_macro_f1"] >= 0.93
    assert metrics["hand_protected_vs_other_f1"] >= 0.90
