"""Shared fixtures: tiny synthetic sources, a tiny trained model, and the real shared data.

The tiny sources are generated here (never copied from the shared data) so the code tests
run anywhere. Tests that need the real data skip when `../shared` is absent.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest

LAYERS = ("code", "data", "model")
"""Test layers: `code` (units, CLI end to end on tiny data), `data` (the project's data and
resource files), `model` (a model trained on the real data)."""

# A module's layer when its tests name none; a test in another layer says so itself.
_MODULE_LAYERS = {"test_mapping": "data", "test_model_behaviour": "model"}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test exactly one layer, so `-m <layer>` runs each layer alone."""
    for item in items:
        own = [m.name for m in item.iter_markers() if m.name in LAYERS]
        if len(own) > 1:
            raise pytest.UsageError(f"{item.nodeid}: more than one layer marker ({own})")
        if not own:
            module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
            item.add_marker(_MODULE_LAYERS.get(module, "code"))


REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLUSTERCLS_SHARED", REPO.parent / "shared"))
SHARED_SOURCES = SHARED / "data" / "sources"
HAND_LABELLED = SHARED / "data" / "hand_labelled.csv"
POLICY_FILE = REPO / "data" / "policy.toml"

# Product nouns per cluster, Indonesian and English, with (source, category) pairs that the
# repo's category map sends to that cluster.
_NOUNS = {
    "fashion_textile": [
        "kemeja",
        "kaos",
        "celana",
        "dress",
        "hijab",
        "gamis",
        "jaket",
        "rok",
        "shirt",
        "jeans",
    ],
    "food_beverage": [
        "kopi",
        "teh",
        "keripik",
        "sambal",
        "madu",
        "kue",
        "coffee",
        "tea",
        "cookies",
        "honey",
    ],
    "craft": [
        "lukisan",
        "kaligrafi",
        "patung",
        "hiasan dinding",
        "ukiran",
        "painting",
        "figurine",
        "wall art",
        "vas",
        "miniatur",
    ],
    "other": [
        "charger",
        "kabel",
        "speaker",
        "laptop",
        "sabun",
        "shampoo",
        "phone",
        "mouse",
        "keyboard",
        "powerbank",
    ],
}
_MODIFIERS = [
    "premium",
    "motif bunga",
    "asli",
    "jumbo",
    "mini",
    "klasik",
    "modern",
    "handmade",
    "lokal",
    "special",
]
_PLACES = ["bali", "jogja", "bandung", "solo", "garut", "india", "jakarta", "surabaya"]
_SOURCES = {
    "tokopedia_umkm": {
        "fashion_textile": "fashion-pria/atasan-pria/kemeja-pria",
        "food_beverage": "makanan-minuman/makanan-ringan/keripik",
        "craft": "rumah-tangga/dekorasi/hiasan-dinding",
        "other": "handphone-tablet/handphone/android-os",
    },
    "flipkart": {
        "fashion_textile": "Clothing",
        "craft": "Home Decor & Festive Needs",
        "other": "Computers",
    },
    "bigbasket": {
        "food_beverage": "Beverages",
        "other": "Cleaning & Household",
    },
}


def make_titles(cluster: str, n: int, seed: int) -> list[str]:
    """Deterministic synthetic titles for one cluster."""
    rng = random.Random(seed)
    combos = list(itertools.product(_NOUNS[cluster], _MODIFIERS, _PLACES))
    rng.shuffle(combos)
    return [f"{noun.title()} {mod} {place.title()}" for noun, mod, place in combos[:n]]


def write_tiny_sources(folder: Path, per_category: int = 40) -> Path:
    """Write small source CSVs (`title, category`) the repo's mapping understands."""
    folder.mkdir(parents=True, exist_ok=True)
    for s_index, (source, categories) in enumerate(_SOURCES.items()):
        rows = []
        for c_index, (cluster, category) in enumerate(categories.items()):
            for title in make_titles(cluster, per_category, seed=100 * s_index + c_index):
                rows.append({"title": title, "category": category})
        pd.DataFrame(rows).to_csv(folder / f"{source}.csv", index=False)
    return folder


@pytest.fixture
def repo_cwd(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in the repo root, where the CLI and the default config paths expect to be."""
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture
def tiny_sources(tmp_path: Path) -> Path:
    """A folder of tiny synthetic source files."""
    return write_tiny_sources(tmp_path / "sources")


@pytest.fixture
def tiny_hand_labelled(tmp_path: Path) -> Path:
    """A small hand-labelled file with titles not in the tiny sources."""
    rows = []
    for cluster in _NOUNS:
        for title in make_titles(cluster, 12, seed=999):
            rows.append(
                {
                    "id": f"h{len(rows)}",
                    "title": title + " Edisi Baru",
                    "source": "tokopedia_umkm",
                    "category": "x",
                    "cluster": cluster,
                    "unsure": 0,
                }
            )
    path = tmp_path / "hand_labelled.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_tiny_probes(path: Path) -> Path:
    """Policy probes for the tiny sources: both parts, two kinds of error, every cluster,
    titles that no tiny source holds."""
    rows = [
        {
            "title": f"{title} Model Lama",
            "cluster": cluster,
            "error_class": "brand_code" if i % 2 else "lookalike",
            "part": "dev" if i < 3 else "held",
            "note": "a tiny probe",
        }
        for cluster in _NOUNS
        for i, title in enumerate(make_titles(cluster, 6, seed=31))
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def tiny_config(tmp_path: Path, sources: Path, hand: Path | None, **data_overrides):
    """A training config that writes everything under tmp_path and runs in seconds."""
    from clustercls.config import (
        DataConfig,
        EvalConfig,
        FeatureConfig,
        ModelConfig,
        TrackingConfig,
        TrainConfig,
    )

    settings = {
        "sources_dir": sources,
        "source_config": REPO / "data/sources.toml",
        "category_map": REPO / "data/category_map.csv",
        "title_rules": REPO / "data/title_rules.csv",
        "corrections": tmp_path / "corrections.csv",
        "policy": POLICY_FILE,
        "hand_labelled": hand,
        "policy_probes": None,
        "processed_dir": tmp_path / "processed",
    }
    data = DataConfig(**{**settings, **data_overrides})
    return TrainConfig(
        data=data,
        features=FeatureConfig(min_df=1, max_features_word=5000, max_features_char=5000),
        model=ModelConfig(calibration_cv=2),
        evaluation=EvalConfig(n_jobs=1),
        tracking=TrackingConfig(enabled=False),
        policy=data.policy,
        models_dir=tmp_path / "models",
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained once per session on the tiny sources (seconds)."""
    from clustercls.data import build_dataset, write_dataset
    from clustercls.train import train

    root = tmp_path_factory.mktemp("tiny")
    sources = write_tiny_sources(root / "sources")
    rows = [
        {
            "id": f"h{i}",
            "title": t + " Edisi Baru",
            "source": "flipkart",
            "category": "x",
            "cluster": c,
            "unsure": 0,
        }
        for c in _NOUNS
        for i, t in enumerate(make_titles(c, 12, seed=7))
    ]
    hand = root / "hand.csv"
    pd.DataFrame(rows).to_csv(hand, index=False)
    config = tiny_config(root, sources, hand, policy_probes=write_tiny_probes(root / "probes.csv"))
    write_dataset(build_dataset(config.data), config.data.processed_dir)
    return train(config).model_dir


@pytest.fixture
def tiny_model(tiny_model_dir: Path, tmp_path: Path):
    """A loaded copy of the tiny model (copied so a test may tamper with it)."""
    from clustercls.predict import load_model

    target = tmp_path / tiny_model_dir.name
    shutil.copytree(tiny_model_dir, target)
    return load_model(target)


def reset_compiled_parts() -> None:
    """Forget which compiled parts this process picked, so the next call looks again
    (after the pure-Python switch is set or cleared)."""
    from clustercls import features
    from clustercls.text import native, tokens

    native._native_settle.cache_clear()
    native._native_settle_plain_many.cache_clear()
    features._compiled_char_counter.cache_clear()
    tokens.compiled_token_lookup.cache_clear()


def needs_shared() -> pytest.MarkDecorator:
    """Skip a test when the shared data is not beside the repo."""
    return pytest.mark.skipif(not SHARED_SOURCES.is_dir(), reason=f"{SHARED_SOURCES} not present")


@pytest.fixture(scope="session")
def real_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained once per session on the real shared data (about a minute)."""
    if not SHARED_SOURCES.is_dir():
        pytest.skip(f"{SHARED_SOURCES} not present")
    from clustercls.config import DataConfig, EvalConfig, TrackingConfig, TrainConfig
    from clustercls.data import build_dataset, write_dataset
    from clustercls.train import train

    root = tmp_path_factory.mktemp("real")
    data = DataConfig(
        sources_dir=SHARED_SOURCES,
        source_config=REPO / "data/sources.toml",
        category_map=REPO / "data/category_map.csv",
        title_rules=REPO / "data/title_rules.csv",
        corrections=REPO / "data/corrections.csv",
        policy=POLICY_FILE,
        hand_labelled=HAND_LABELLED,
        processed_dir=root / "processed",
    )
    config = TrainConfig(
        data=data,
        evaluation=EvalConfig(leave_one_source_out=False),
        tracking=TrackingConfig(enabled=False),
        policy=POLICY_FILE,
        models_dir=root / "models",
    )
    write_dataset(build_dataset(data), data.processed_dir)
    return train(config).model_dir


@pytest.fixture(scope="session")
def real_model(real_model_dir: Path):
    """The real-data model, loaded."""
    from clustercls.predict import load_model

    return load_model(real_model_dir)


@pytest.fixture(scope="session")
def real_dataset(real_model_dir: Path) -> pd.DataFrame:
    """The processed dataset the real-data model was trained on."""
    from clustercls.data import load_dataset

    return load_dataset(real_model_dir.parents[1] / "processed" / "dataset.parquet")
