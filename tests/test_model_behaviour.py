"""Model behaviour on the real shared data: minimum functionality and invariances.

These train one model per session on the real sources (about a minute) and skip when the
shared data is not beside the repo.
"""

from __future__ import annotations

import pytest

OBVIOUS = {
    "fashion_textile": [
        "Kemeja Batik Pria Lengan Panjang",
        "Gamis Syari Wanita Jumbo",
        "Sepatu Sneakers Pria Casual",
        "Men's Slim Fit Cotton Casual Shirt",
        "Women's Printed Kurta",
        "Kaos Kaki Bayi Motif Lucu",
        "Ransel Laptop Pria Anti Air",
    ],
    "food_beverage": [
        "Kopi Bubuk Arabika Gayo 250gr",
        "Keripik Singkong Pedas Balado",
        "Sambal Bawang Botol Homemade",
        "Organic Green Tea Bags 25 pcs",
        "Dark Chocolate Bar 70% Cocoa",
        "Beras Pandan Wangi 5 kg",
    ],
    "craft": [
        "Lukisan Kaligrafi Arab Hiasan Dinding",
        "Abstract Acrylic Painting on Canvas Original",
        "Patung Kayu Ukiran Bali",
        "Hiasan Dinding Rotan Anyaman",
        "Handcrafted Brass Elephant Figurine Showpiece",
    ],
    "other": [
        "Samsung Galaxy A52 Garansi Resmi",
        "Flashdisk Sandisk 32GB USB 3.0",
        "Charger Fast Charging 20W Type C",
        "Dish Washing Liquid Lemon 500 ml",
        "Smart Watch Fitness Tracker Heart Rate",
        "Mesin Jahit Portable Mini",
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


def test_real_model_meets_its_floor(real_model_dir) -> None:
    """Guards against a regression in the data or the mapping, not a target."""
    import json

    metrics = json.loads((real_model_dir / "metadata.json").read_text())["metrics"]
    assert metrics["random_macro_f1"] >= 0.93
    assert metrics["hand_protected_vs_other_f1"] >= 0.90
