"""The category map and title rules: the project's reading of LABELLING.md.

Self-contained: builds the mapping from the repo's `data/*.csv` only (never the shared data).
The example titles are written for these tests in the style of each source; they check the
policy's hard cases (watches, party supplies vs decor, craft supplies vs tools, bags, baby
clothing vs gear, pet food, supplements vs herbal tea, art prints, home textiles, cosmetics
named after food, cigarettes and kitchen tools in food sections, woven items).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from clustercls.data import DROP, DataError, Mapping, load_mapping
from clustercls.policy import load_policy

REPO = Path(__file__).resolve().parents[1]
CATEGORY_MAP = REPO / "data" / "category_map.csv"
TITLE_RULES = REPO / "data" / "title_rules.csv"
SOURCES_TOML = REPO / "data" / "sources.toml"
CLUSTERS = load_policy(REPO / "data" / "policy.toml").clusters

F, D, C, O = "fashion_textile", "food_beverage", "craft", "other"


@pytest.fixture(scope="module")
def mapping() -> Mapping:
    return load_mapping(CATEGORY_MAP, TITLE_RULES, CLUSTERS)


def source_names() -> set[str]:
    with SOURCES_TOML.open("rb") as fh:
        return set(tomllib.load(fh)["sources"])


# --------------------------------------------------------------------------- hard cases

CASES = [
    # watches: analogue/fashion watch = fashion_textile; smartwatch / fitness band = other
    ("amazon_india", "accessories > Watches", "Fossil Analog Brown Dial Men's Watch", F),
    (
        "amazon_india",
        "accessories > Watches",
        'boAt Smart Watch with Bluetooth Calling, 1.83" HD Display, SpO2',
        O,
    ),
    (
        "amazon_india",
        "kids' fashion > Kids' Watches",
        "Digital LED Wrist Smart Watch LED Band for Kids, Cartoon Dial",
        F,
    ),
    (
        "amazon_india",
        "tv, audio & cameras > All Electronics",
        "Smart Watch Fitness Band with Heart Rate Monitor",
        O,
    ),
    ("flipkart", "Watches", "Sonata 7128SL01 Analog Watch - For Men", F),
    ("flipkart", "Wearable Smart Devices", "Mi Smart Band 4 Replacement Strap", O),
    ("tokopedia_2019", "fashion", "Jam Tangan Pria Casio Analog Tali Kulit Coklat", F),
    ("tokopedia_2019", "fashion", "Smartwatch Jam Tangan Pintar Bluetooth Notifikasi WA", O),
    ("prdect_id", "Kids and Baby Fashion", "Jam Tangan Anak Smartwatch GPS Bisa Telepon - Pink", O),
    ("prdect_id", "Kids and Baby Fashion", "Jam Tangan Anak Karakter Analog Anti Air - Biru", F),
    # party supplies (other) vs ornaments on display (craft)
    ("prdect_id", "Party Supplies and Craft", "Balon Foil Angka 32 inch Gold - 7", O),
    ("prdect_id", "Party Supplies and Craft", "Lilin Ulang Tahun Angka Glitter - 5", O),
    ("prdect_id", "Party Supplies and Craft", "Cat Akrilik 12 Warna 12ml untuk Melukis Kanvas", C),
    (
        "tokopedia_umkm",
        "perlengkapan-pesta/dekorasi-pesta/banner",
        "Banner Happy Birthday Gold Glitter",
        O,
    ),
    (
        "tokopedia_umkm",
        "perlengkapan-pesta/hadiah/kartu-ucapan",
        "Kartu Ucapan Ulang Tahun Custom Nama",
        O,
    ),
    (
        "tokopedia_umkm",
        "perlengkapan-pesta/hadiah/gantungan-kunci",
        "Gantungan Kunci Rajut Handmade Boneka Kelinci",
        C,
    ),
    (
        "tokopedia_umkm",
        "perlengkapan-pesta/bunga/buket-bunga",
        "Buket Bunga Rajut Mawar Handmade Kado Wisuda",
        C,
    ),
    (
        "tokopedia_umkm",
        "perlengkapan-pesta/bunga/buket-bunga",
        "Buket Snack Coklat Wisuda Murah",
        D,
    ),
    (
        "tokopedia_umkm",
        "perlengkapan-pesta/persiapan-pernikahan/souvenir-pernikahan",
        "Souvenir Pernikahan Miniatur Ukiran Kayu Jepara",
        C,
    ),
    (
        "flipkart",
        "Home Decor & Festive Needs",
        "Lal Haveli Brass Elephant Handicraft Showpiece - 12 cm",
        C,
    ),
    ("flipkart", "Home Decor & Festive Needs", "Digilight 300 inch Multicolor Rice Lights", O),
    ("flipkart", "Home Decor & Festive Needs", "Aroma Scented Candle Set of 3", O),
    ("flipkart", "Home Decor & Festive Needs", "Quartz Analog 30 cm Dia Wall Clock", O),
    ("flipkart", "Home Decor & Festive Needs", "Happy Birthday Greeting Card", O),
    (
        "amazon_india",
        "home & kitchen > Home Décor",
        "Resin Buddha Figurine Showpiece for Living Room",
        C,
    ),
    (
        "amazon_india",
        "home & kitchen > Home Décor",
        "Ayatul Kursi Islamic Calligraphy Wall Clock, Acrylic Gold",
        C,
    ),
    (
        "amazon_india",
        "home & kitchen > Home Décor",
        "Digital Alarm Table Clock with Temperature Display",
        O,
    ),
    (
        "amazon_india",
        "home & kitchen > Home Décor",
        "Sandalwood Incense Sticks Agarbatti 100 Sticks",
        O,
    ),
    (
        "amazon_india",
        "home & kitchen > Home Décor",
        "Vinyl Wall Sticker Floral Decal 60 x 90 cm",
        O,
    ),
    (
        "tokopedia_umkm",
        "rumah-tangga/dekorasi/jam-dinding",
        "Jam Dinding Souvenir Kaligrafi Ayat Kursi Kayu",
        C,
    ),
    (
        "tokopedia_umkm",
        "rumah-tangga/dekorasi/jam-dinding",
        "Jam Dinding Digital LED Remote Suhu Tanggal",
        O,
    ),
    (
        "tokopedia_umkm",
        "rumah-tangga/dekorasi/hiasan-dinding",
        "Hiasan Dinding Kaligrafi Allah Muhammad Akrilik",
        C,
    ),
    (
        "tokopedia_umkm",
        "rumah-tangga/dekorasi/hiasan-dinding",
        "Lampu Hias Dinding LED Bulan Aesthetic",
        O,
    ),
    # craft supplies (craft) vs tools and machines (other)
    (
        "amazon_india",
        "home & kitchen > Sewing & Craft Supplies",
        "Acrylic Paint Set 24 Colours 12ml Tubes",
        C,
    ),
    (
        "amazon_india",
        "home & kitchen > Sewing & Craft Supplies",
        "Polymer Clay Set 24 Colours Oven Bake",
        C,
    ),
    (
        "amazon_india",
        "home & kitchen > Sewing & Craft Supplies",
        "Hot Melt Glue Gun 20W with 10 Glue Sticks",
        O,
    ),
    (
        "amazon_india",
        "home & kitchen > Sewing & Craft Supplies",
        "Double Sided Mounting Tape Heavy Duty 5m",
        O,
    ),
    (
        "tokopedia_umkm",
        "office-stationery/peralatan-jahit/perlengkapan-jahit",
        "Benang Rajut Milk Cotton 50gr Warna Pastel",
        C,
    ),
    (
        "tokopedia_umkm",
        "office-stationery/peralatan-jahit/perlengkapan-jahit",
        "Mesin Jahit Mini Portable 12 Pola",
        O,
    ),
    (
        "tokopedia_umkm",
        "office-stationery/peralatan-jahit/mesin-jahit",
        "Mesin Jahit Butterfly Portable",
        O,
    ),
    (
        "tokopedia_umkm",
        "office-stationery/kerajinan-tangan/ring-d",
        "Manik Manik Kristal 6mm isi 100 Bahan Gelang",
        C,
    ),
    (
        "tokopedia_umkm",
        "office-stationery/peralatan-jahit/kain-dan-bahan",
        "Kain Katun Jepang Meteran Motif Bunga",
        F,
    ),
    (
        "tokopedia_umkm",
        "office-stationery/peralatan-jahit/kain-dan-bahan",
        "Kain Flanel Korea 45x45 untuk Kerajinan",
        C,
    ),
    (
        "tokopedia_umkm",
        "mainan-hobi/mainan-anak-anak/plastisin-lilin-mainan",
        "Clay Kit Anak DIY Kerajinan Tangan 24 Warna",
        C,
    ),
    # bags and luggage (fashion_textile) vs a sleeve/case made for one device (other)
    ("amazon_india", "bags & luggage > Backpacks", "Skybags Unisex 30L Laptop Backpack Black", F),
    (
        "amazon_india",
        "accessories > Bags & Luggage",
        "Neoprene Laptop Sleeve 13 inch for MacBook Air",
        O,
    ),
    (
        "amazon_india",
        "bags & luggage > Travel Accessories",
        "Hanging Toiletry Bag for Women Travel Kit",
        F,
    ),
    (
        "amazon_india",
        "bags & luggage > Travel Accessories",
        "TSA Approved 3 Digit Combination Padlock",
        O,
    ),
    (
        "tokopedia_umkm",
        "komputer-laptop/aksesoris-komputer-laptop/tas-laptop",
        "Tas Laptop Ransel 15 inch Waterproof",
        F,
    ),
    (
        "tokopedia_umkm",
        "komputer-laptop/aksesoris-komputer-laptop/tas-laptop",
        "Softcase Sleeve Laptop 14 inch Bludru",
        O,
    ),
    ("flipkart", "Bags, Wallets & Belts", "Wildcraft 30 L Backpack", F),
    # woven/carved items stay craft even when a bag or box
    (
        "tokopedia_umkm",
        "fashion-wanita/tas-wanita/hand-bag-wanita",
        "Tas Anyaman Rotan Bali Bulat Handmade",
        C,
    ),
    (
        "tokopedia_umkm",
        "fashion-wanita/tas-wanita/hand-bag-wanita",
        "Tas Selempang Wanita Kulit Sintetis Korea",
        F,
    ),
    (
        "tokopedia_umkm",
        "rumah-tangga/tempat-penyimpanan/keranjang",
        "Keranjang Anyaman Pandan Serbaguna Tutup",
        C,
    ),
    (
        "tokopedia_umkm",
        "rumah-tangga/tempat-penyimpanan/keranjang",
        "Keranjang Plastik Susun Tempat Baju",
        O,
    ),
    # baby clothing (fashion_textile) vs baby gear (other); baby food (food_beverage)
    ("flipkart", "Baby Care", "Mom & Me Baby Girl's Bodysuit", F),
    ("flipkart", "Baby Care", "Carter's Baby Boy's Romper", F),
    ("flipkart", "Baby Care", "Offspring Solid Single Blanket Pink", O),
    ("flipkart", "Baby Care", "Piyo Piyo Four Stage Waterproof Bib", O),
    ("flipkart", "Baby Care", "MyKid Cotton Nappy Set of 5", O),
    ("prdect_id", "Mother and Baby", "Jumper Bayi Lengan Panjang Motif Beruang - 6-12 Bulan", F),
    ("prdect_id", "Mother and Baby", "Popok Bayi Celana Merries Pants L 30", O),
    ("prdect_id", "Mother and Baby", "Gendongan Bayi Hipseat Carrier - Abu", O),
    ("prdect_id", "Mother and Baby", "Susu Formula Pertumbuhan 1-3 Tahun Vanila 800gr", D),
    (
        "amazon_india",
        "toys & baby products > Diapers",
        "Huggies Wonder Pants Medium Baby Diaper Pants, 50 count",
        O,
    ),
    (
        "amazon_india",
        "toys & baby products > Baby Products",
        "Cerelac Baby Cereal with Milk Wheat Apple 300g",
        D,
    ),
    (
        "amazon_india",
        "toys & baby products > Baby Products",
        "Newborn Baby Romper Cotton Pack of 3",
        F,
    ),
    ("instacart", "babies", "Organic Stage 2 Apple Pear Baby Food Pouch", D),
    ("instacart", "babies", "Sensitive Baby Wipes Unscented 64 ct", O),
    # pet food is other
    ("instacart", "pets", "Grain Free Salmon Recipe Dry Cat Food", O),
    (
        "tokopedia_umkm",
        "makanan-minuman/makanan-ringan/keripik",
        "Makanan Kucing Rasa Ikan Tuna 1kg Repack",
        O,
    ),
    (
        "amazon_india",
        "grocery & gourmet foods > All Grocery & Gourmet Foods",
        "Pedigree Adult Dry Dog Food Chicken 3kg",
        O,
    ),
    # supplements/vitamins/capsules (other) vs herbal tea and honey (food_beverage)
    ("bigbasket", "Beverages", "Green Tea - Tulsi Ginger, 25 Bags", D),
    ("bigbasket", "Beverages", "Whey Protein Powder - Double Chocolate", O),
    ("bigbasket", "Beauty & Hygiene", "Ashwagandha Capsules - 60 Veg Caps", O),
    ("amazon_india", "beauty & health > Diet & Nutrition", "Whey Protein Powder Chocolate 1kg", O),
    (
        "amazon_india",
        "beauty & health > Diet & Nutrition",
        "Multivitamin Tablets for Men, 60 Tablets",
        O,
    ),
    ("amazon_india", "beauty & health > Diet & Nutrition", "Organic Wild Forest Honey 500g", D),
    (
        "tokopedia_umkm",
        "kesehatan/obat-obatan/obat-herbal",
        "Teh Herbal Bunga Rosella Kering 100gr",
        D,
    ),
    ("tokopedia_umkm", "kesehatan/obat-obatan/obat-herbal", "Kapsul Herbal Daun Sirsak isi 60", O),
    ("tokopedia_umkm", "makanan-minuman/minuman/teh", "Teh Hijau Pelangsing Kapsul isi 30", O),
    (
        "tokopedia_umkm",
        "makanan-minuman/minuman/kopi-kemasan",
        "Kopi Kapsul Arabika Compatible Nespresso isi 10",
        D,
    ),
    ("instacart", "personal care", "Vitamin D3 2000 IU Softgels", O),
    ("instacart", "personal care", "Chocolate Nutrition Shake 6 Pack", D),
    # art prints and paintings (craft); digital tools and stationery (other)
    ("etsy_art", "painting", "Original Oil Painting Sunset Seascape on Canvas 16x20", C),
    ("etsy_art", "photography", "Black and White Mountain Photography Print, Wall Art", C),
    ("etsy_art", "prints", "Printable Wall Art Quote 8x10 Instant Download", C),
    ("etsy_art", "photography", "Spring Garden Digital Backdrop Instant Download", O),
    ("etsy_art", "photography", "50 Bokeh Photoshop Overlays", O),
    ("etsy_art", "prints", "Watercolor Fox Greeting Card, Blank Inside", O),
    # home textiles are other; a worn sarung is fashion_textile
    (
        "amazon_india",
        "home & kitchen > Bedroom Linen",
        "Cotton Double Bedsheet with 2 Pillow Covers",
        O,
    ),
    ("flipkart", "Home Furnishing", "Cotton Bath Towel Set of 2", O),
    (
        "tokopedia_umkm",
        "rumah-tangga/ruang-tamu-keluarga/gorden",
        "Gorden Blackout Polos 140x220 Ring",
        O,
    ),
    (
        "tokopedia_umkm",
        "rumah-tangga/ruang-tamu-keluarga/bantal-sofa",
        "Sarung Bantal Sofa Motif Bunga 40x40",
        O,
    ),
    (
        "tokopedia_umkm",
        "fashion-muslim/perlengkapan-ibadah/sarung",
        "Kain Sarung Tenun Samarinda Pria Dewasa",
        F,
    ),
    # cosmetics named after food are other
    (
        "tokopedia_umkm",
        "makanan-minuman/makanan-ringan/cokelat",
        "Lip Balm Strawberry Coklat Pelembab Bibir",
        O,
    ),
    (
        "tokopedia_umkm",
        "makanan-minuman/susu-olahan-susu/susu-bubuk-dewasa",
        "Sabun Susu Kambing Etawa 100gr",
        O,
    ),
    # cigarettes and tobacco in food sections are other ("kretek" crackers stay food)
    ("tokopedia_food", "makanan-minuman", "Rokok Kretek Filter 12 Batang", O),
    ("tokopedia_umkm", "makanan-minuman/minuman/kopi", "Cerutu Jember Premium Box isi 10", O),
    (
        "tokopedia_umkm",
        "makanan-minuman/makanan-kering/kerupuk",
        "Kerupuk Kretek Ikan Tenggiri Khas Bangka 250gr",
        D,
    ),
    ("bigbasket", "Gourmet & World Food", "Cigarette Rolling Paper - King Size", O),
    # kitchen tools and bottles in food sections are other ("Kopi Cap Teko" is coffee)
    ("tokopedia_umkm", "makanan-minuman/minuman/kopi", "Dripper V60 Keramik Free Kertas Filter", O),
    (
        "tokopedia_umkm",
        "makanan-minuman/minuman/air-mineral",
        "Botol Minum Tumbler 500ml Anti Bocor",
        O,
    ),
    (
        "tokopedia_umkm",
        "makanan-minuman/minuman/kopi-bubuk",
        "Kopi Bubuk Cap Teko 250gr Robusta",
        D,
    ),
    ("tokopedia_food", "makanan-minuman", "Hario V60 Paper Filter 100 Sheets", O),
    (
        "amazon_india",
        "grocery & gourmet foods > Coffee, Tea & Beverages",
        "French Press Coffee Maker 600ml Glass",
        O,
    ),
    # sports: jersey / sports shoes = fashion_textile; equipment = other
    ("tokopedia_2019", "olahraga", "Sepatu Futsal Specs Original Hitam", F),
    ("tokopedia_2019", "olahraga", "Jersey Bola Timnas Indonesia Home", F),
    ("tokopedia_2019", "olahraga", "Raket Badminton Yonex Free Tas Senar Kaos", O),
    ("tokopedia_2019", "olahraga", "Dumbbell Vinyl 2 kg Sepasang", O),
    ("amazon_india", "sports & fitness > Cricket", "Kashmir Willow Cricket Bat Full Size", O),
    (
        "amazon_india",
        "sports & fitness > All Sports, Fitness & Outdoors",
        "Men's Running Shoes Lightweight Mesh",
        F,
    ),
    ("amazon_india", "sports & fitness > Yoga", "TPE Yoga Mat 6mm with Carry Bag", O),
    # stray fashion listings inside electronics categories
    (
        "tokopedia_electronics",
        "Film Musik > Alat Musik Digital > Launchpad",
        "Kalung Rantai Liontin Hati untuk Wanita",
        F,
    ),
    (
        "tokopedia_electronics",
        "Film Musik > Alat Musik Digital > Launchpad",
        "Novation Launchpad Mini MK3",
        O,
    ),
    (
        "tokopedia_electronics",
        "Elektronik > Alat Pendingin Ruangan > Ac Portable",
        "Kipas Angin Kalung Leher Portable USB",
        O,
    ),
    (
        "tokopedia_electronics",
        "Film Musik > Drum Perkusi > Aksesoris Drum Perkusi",
        "Tama Stand Hi-Hat Double Braced",
        O,
    ),
    (
        "tokopedia_electronics",
        "Film Musik > Alat Musik Digital > Dj Controller",
        "Tas Ransel Pioneer DJ DDJ-400 Softcase",
        O,
    ),
    # flipkart categories that are stray product names
    ("flipkart", "Libas Printed Women's Straight Kurta", "Libas Printed Women's Straight Kurta", F),
    ("flipkart", "Olvin Aviator Sunglasses", "Olvin Aviator Sunglasses", F),
    ("flipkart", "SJ Bushnell 122/1000M Binoculars (36 mm, Black)", "SJ Bushnell Binoculars", O),
    ("flipkart", "ABEEZ Boys, Men, Girls (Black, Pack of 1)", "ABEEZ Boys, Men, Girls", DROP),
    # policy hard cases and look-alikes
    (
        "tokopedia_umkm",
        "makanan-minuman/hampers-parsel-dan-paket-makanan/hampers-parcel-kue-kering",
        "Paket Hampers Kue Lebaran Isi 4 Toples",
        D,
    ),
    ("tokopedia_2019", "fashion", "Rak Sepatu Susun 5 Plastik", O),
    ("prdect_id", "Muslim Fashion", "Sajadah Travel Lipat Motif Turki", O),
    ("prdect_id", "Beauty", "Jepit Rambut Jedai Korea 6 pcs", F),
    ("prdect_id", "Precious Metal", "Logam Mulia Antam 5 gram", O),
    # bullion in a jewellery store is not worn; a coin made into a pendant is
    (
        "amazon_india",
        "accessories > Gold & Diamond Jewellery",
        "Malabar Gold & Diamonds 24k (999) 2 gm Yellow Gold Coin",
        O,
    ),
    (
        "amazon_india",
        "accessories > Gold & Diamond Jewellery",
        "Euphoria 24kt (999) 2 gram Yellow Gold Coin cum Pendant",
        F,
    ),
    ("amazon_india", "stores > Amazon Fashion", "Refinery 24k (999.9) 2 gm Yellow Gold Bar", O),
    ("lazada_2019", "beli-smart-tv", "Samsung 43 inch Smart TV Full HD", O),
    ("tokopedia_seblak", "keyword:seblak", "Kerupuk Seblak Pedas Daun Jeruk 250gr", D),
    ("instacart", "alcohol", "California Cabernet Sauvignon Red Wine", D),
]


@pytest.mark.parametrize(("source", "category", "title", "expected"), CASES)
def test_policy_cases(
    mapping: Mapping, source: str, category: str, title: str, expected: str
) -> None:
    cluster, rule = mapping.map_one(source, category, title)
    assert cluster == expected, f"{source} | {category} | {title!r} -> {cluster} via {rule}"


def test_cases_use_known_sources() -> None:
    assert {case[0] for case in CASES} <= source_names()


def test_unknown_category_is_not_guessed(mapping: Mapping) -> None:
    # A new top-level breadcrumb must be mapped by a person, not defaulted to `other`:
    # the data build then stops with the file and row.
    assert mapping.map_one(
        "tokopedia_umkm", "kategori-baru/sub/leaf", "Barang Murah Ready Stock"
    ) == (None, "")
    assert mapping.map_one("no_such_source", "whatever", "Kemeja Batik") == (None, "")
    # A new leaf under a known top level is covered by that level's glob.
    cluster, rule = mapping.map_one(
        "tokopedia_umkm", "buku/buku-baru/leaf", "Kumpulan Cerita Pendek"
    )
    assert cluster == O
    assert re.fullmatch(r"category_map\.csv:\d+", rule)


# --------------------------------------------------------------------------- structure


def test_every_cluster_is_a_policy_label_or_drop(mapping: Mapping) -> None:
    allowed = {*CLUSTERS, DROP}
    assert {r.cluster for r in mapping.category_rules} <= allowed
    assert {r.cluster for r in mapping.title_rules} <= allowed


def test_every_regex_compiles_and_every_row_has_a_note(mapping: Mapping) -> None:
    for rule in mapping.title_rules:
        assert isinstance(rule.pattern, re.Pattern)
        re.compile(rule.pattern.pattern)
        assert rule.note, f"title_rules.csv:{rule.line} has no note"
    for crule in mapping.category_rules:
        assert crule.note, f"category_map.csv:{crule.line} has no note"


def test_rule_sources_are_configured(mapping: Mapping) -> None:
    names = source_names() | {"*"}
    assert {r.source for r in mapping.category_rules} <= names
    assert {r.source for r in mapping.title_rules} <= names


def test_every_configured_source_has_a_category_row(mapping: Mapping) -> None:
    assert source_names() <= {r.source for r in mapping.category_rules}


def test_no_duplicate_category_rows(mapping: Mapping) -> None:
    keys = [(r.source, r.category.casefold()) for r in mapping.category_rules]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates


def _example_category(pattern: str) -> str:
    """A concrete category string the glob matches (wildcards filled with filler text)."""
    return re.sub(r"\[[^\]]*\]", "x", pattern).replace("*", "qq").replace("?", "q")


def test_every_category_row_is_reachable(mapping: Mapping) -> None:
    unreachable = []
    for crule in mapping.category_rules:
        source = crule.source if crule.source != "*" else "source_without_rows"
        hit = mapping.category_rule(source, _example_category(crule.category))
        if hit is None or hit.line != crule.line:
            unreachable.append(f"category_map.csv:{crule.line} {crule.source},{crule.category}")
    assert not unreachable, unreachable


# Categories of the small sources (from the sources' category columns, not their titles):
# each must map to a policy cluster without relying on a title rule.
KNOWN_CATEGORIES = {
    "tokopedia_2019": ["fashion", "elektronik", "handphone", "olahraga", "pertukangan"],
    "lazada_2019": [
        "beli-harddisk-eksternal",
        "jual-flash-drives",
        "beli-smart-tv",
        "shop-televisi-digital",
        "beli-laptop",
    ],
    "tokopedia_food": ["makanan-minuman"],
    "tokopedia_seblak": ["keyword:seblak"],
    "etsy_art": ["painting", "photography", "prints"],
    "bigbasket": [
        "Beauty & Hygiene",
        "Gourmet & World Food",
        "Kitchen, Garden & Pets",
        "Snacks & Branded Foods",
        "Cleaning & Household",
        "Foodgrains, Oil & Masala",
        "Bakery, Cakes & Dairy",
        "Beverages",
        "Baby Care",
        "Fruits & Vegetables",
        "Eggs, Meat & Fish",
    ],
    "instacart": [
        "snacks",
        "dairy eggs",
        "frozen",
        "beverages",
        "pantry",
        "produce",
        "bakery",
        "household",
        "canned goods",
        "personal care",
        "dry goods pasta",
        "deli",
        "breakfast",
        "meat seafood",
        "babies",
        "international",
        "alcohol",
        "pets",
        "missing",
        "other",
        "bulk",
    ],
    "prdect_id": [
        "Computers and Laptops",
        "Men's Fashion",
        "Gaming",
        "Electronics",
        "Books",
        "Camera",
        "Household",
        "Toys and Hobbies",
        "Food and Drink",
        "Office & Stationery",
        "Kitchen",
        "Automotive",
        "Muslim Fashion",
        "Mother and Baby",
        "Beauty",
        "Sport",
        "Women's Fashion",
        "Animal Care",
        "Party Supplies and Craft",
        "Kids and Baby Fashion",
        "Phones and Tablets",
        "Body Care",
        "Other Products",
        "Carpentry",
        "Health",
        "Movies and Music",
        "Tour and Travel",
        "Precious Metal",
        "Property",
    ],
    "tokopedia_electronics": [
        "Elektronik > Alat Pendingin Ruangan > Ac Portable",
        "Elektronik > Alat Pendingin Ruangan > Ac Reflektor",
        "Elektronik > Audio > Amplifier",
        "Elektronik > Audio > Earphone",
        "Film Musik > Alat Musik Digital > Dj Controller",
        "Film Musik > Alat Musik Digital > Launchpad",
        "Film Musik > Drum Perkusi > Aksesoris Drum Perkusi",
        "Film Musik > Drum Perkusi > Alat Perkusi Orkestra",
    ],
}


@pytest.mark.parametrize("source", sorted(KNOWN_CATEGORIES))
def test_known_categories_map_to_a_cluster(mapping: Mapping, source: str) -> None:
    for category in KNOWN_CATEGORIES[source]:
        rule = mapping.category_rule(source, category)
        assert rule is not None and rule.cluster in CLUSTERS, (source, category)


# --------------------------------------------------------------------------- errors

HEADER_MAP = "source,category,cluster,note\n"
HEADER_RULES = "source,category,pattern,cluster,note\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_label_outside_policy_names_file_and_line(tmp_path: Path) -> None:
    cmap = _write(
        tmp_path, "category_map.csv", HEADER_MAP + "# comment\nx,a,other,ok\nx,b,textiles,typo\n"
    )
    rules = _write(tmp_path, "title_rules.csv", HEADER_RULES)
    with pytest.raises(
        DataError, match=r"category_map\.csv:4: label 'textiles' is not in the policy"
    ):
        load_mapping(cmap, rules, CLUSTERS)


def test_title_rule_label_outside_policy_names_file_and_line(tmp_path: Path) -> None:
    cmap = _write(tmp_path, "category_map.csv", HEADER_MAP + "x,*,other,ok\n")
    rules = _write(tmp_path, "title_rules.csv", HEADER_RULES + 'x,*,"\\bkopi\\b",food,typo\n')
    with pytest.raises(DataError, match=r"title_rules\.csv:2: label 'food'"):
        load_mapping(cmap, rules, CLUSTERS)


def test_bad_regex_names_file_and_line(tmp_path: Path) -> None:
    cmap = _write(tmp_path, "category_map.csv", HEADER_MAP + "x,*,other,ok\n")
    rules = _write(tmp_path, "title_rules.csv", HEADER_RULES + '# c\nx,*,"(unclosed",other,bad\n')
    with pytest.raises(DataError, match=r"title_rules\.csv:3: bad regex"):
        load_mapping(cmap, rules, CLUSTERS)


def test_missing_column_and_wrong_field_count(tmp_path: Path) -> None:
    rules = _write(tmp_path, "title_rules.csv", HEADER_RULES)
    no_cluster = _write(tmp_path, "no_cluster.csv", "source,category,note\nx,*,n\n")
    with pytest.raises(DataError, match="missing columns"):
        load_mapping(no_cluster, rules, CLUSTERS)
    short_row = _write(tmp_path, "short.csv", HEADER_MAP + "x,*,other\n")
    with pytest.raises(DataError, match=r"short\.csv:2: expected 4 fields, got 3"):
        load_mapping(short_row, rules, CLUSTERS)
    with pytest.raises(DataError, match="not found"):
        load_mapping(tmp_path / "absent.csv", rules, CLUSTERS)


def test_first_matching_title_rule_wins_and_category_specificity(tmp_path: Path) -> None:
    cmap = _write(
        tmp_path,
        "category_map.csv",
        HEADER_MAP
        + "*,*,other,any\nx,*,food_beverage,x any\nx,a/*,craft,glob\nx,a/b,fashion_textile,exact\n",
    )
    rules = _write(
        tmp_path,
        "title_rules.csv",
        HEADER_RULES
        + 'x,a/*,"\\bkopi\\b",food_beverage,first\n*,*,"\\b(kopi|tas)\\b",other,second\n',
    )
    m = load_mapping(cmap, rules, CLUSTERS)
    assert m.map_one("x", "a/b", "Kopi Bubuk") == ("food_beverage", "title_rules.csv:2")
    assert m.map_one("x", "z", "Tas  KOPI") == ("other", "title_rules.csv:3")
    assert m.map_one("x", "A/B", "Kemeja")[0] == "fashion_textile"
    assert m.map_one("x", "a/c", "Kemeja")[0] == "craft"
    assert m.map_one("x", "q", "Kemeja")[0] == "food_beverage"
    assert m.map_one("y", "q", "Kemeja")[0] == "other"
