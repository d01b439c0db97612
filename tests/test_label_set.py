"""The policy owns the label set: no module names a cluster, and a cluster added to
`data/policy.toml` (and the mapping) goes through build, training, evaluation and
prediction without a code change."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from clustercls.cli import app
from clustercls.policy import load_policy
from tests.conftest import POLICY_FILE, REPO

SRC = REPO / "src" / "clustercls"

# A made-up cluster, neither protected nor the negative label, with words no mapping
# rule and no lexicon term knows.
TOYS = "toys"
_TOY_NOUNS = ["lego", "yoyo", "kelereng", "gasing", "layangan", "congklak", "rubik", "beyblade"]
_TOY_WORDS = ["premium", "jumbo", "mini", "klasik", "modern", "lokal", "anak", "seri"]
_TOY_CATEGORY = "mainan-uji/permainan-anak"

runner = CliRunner()


def test_no_module_names_a_cluster() -> None:
    # Labels come from the policy file; a quoted cluster name in code is one that a
    # policy change would silently miss. Subpackages count too; resource files (the
    # lexicon) are data and stay.
    names = "|".join(re.escape(c) for c in load_policy(POLICY_FILE).clusters)
    literal = re.compile(rf"\"({names})\"|'({names})'")
    found = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if literal.search(line)
    ]
    assert not found, "cluster names written in code:\n" + "\n".join(found)


def _toy_titles(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    combos = [(a, b, c) for a in _TOY_NOUNS for b in _TOY_WORDS for c in _TOY_WORDS if b != c]
    rng.shuffle(combos)
    return [f"{a.title()} {b} {c}" for a, b, c in combos[:n]]


@pytest.fixture
def five_cluster_project(tmp_path, tiny_sources, tiny_hand_labelled, monkeypatch) -> Path:
    """A scratch project whose policy adds `toys`, mapped from one category per source."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "data", root / "data", ignore=shutil.ignore_patterns("processed"))
    policy = root / "data" / "policy.toml"
    text = policy.read_text()
    clusters = re.search(r"^clusters = \[.*\]$", text, flags=re.MULTILINE)
    assert clusters, "data/policy.toml lists its clusters on one line"
    # Listed last, out of order: the policy sorts them.
    policy.write_text(text.replace(clusters.group(0), clusters.group(0)[:-1] + f', "{TOYS}"]'))
    with (root / "data" / "category_map.csv").open("a") as fh:
        for source in ("tokopedia_umkm", "flipkart"):
            fh.write(f"{source},{_TOY_CATEGORY},{TOYS},made-up cluster of a test\n")
    for seed, source in enumerate(("tokopedia_umkm", "flipkart")):
        path = tiny_sources / f"{source}.csv"
        toys = pd.DataFrame({"title": _toy_titles(40, seed), "category": _TOY_CATEGORY})
        pd.concat([pd.read_csv(path), toys]).to_csv(path, index=False)
    hand = pd.read_csv(tiny_hand_labelled)
    hand_toys = pd.DataFrame(
        {
            "id": [f"t{i}" for i in range(12)],
            "title": [t + " Edisi Baru" for t in _toy_titles(12, seed=99)],
            "source": "tokopedia_umkm",
            "category": "x",
            "cluster": TOYS,
            "unsure": 0,
        }
    )
    # Where the data build and training look for the hand-labelled titles by default.
    shared = tmp_path / "shared"
    (shared / "data").mkdir(parents=True)
    pd.concat([hand, hand_toys]).to_csv(shared / "data" / "hand_labelled.csv", index=False)
    monkeypatch.chdir(root)
    monkeypatch.setenv("CLUSTERCLS_SOURCES", str(tiny_sources))
    monkeypatch.setenv("CLUSTERCLS_SHARED", str(shared))
    return root


def _invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_a_fifth_cluster_needs_no_code_change(five_cluster_project: Path) -> None:
    from clustercls.predict import load_model

    root = five_cluster_project
    _invoke("data", "build")
    dataset = pd.read_parquet(root / "data/processed/dataset.parquet")
    assert (dataset["cluster"] == TOYS).sum() > 50

    trained = _invoke("train", "--no-loso", "--no-tracking")
    model_dir = root / trained.stdout.strip().splitlines()[-1]
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert meta["labels"] == sorted(["craft", "fashion_textile", "food_beverage", "other", TOYS])
    assert meta["negative"] == "other" and TOYS not in meta["protected"]
    evaluation = json.loads((model_dir / "evaluation.json").read_text())
    assert evaluation["random_split"]["per_cluster"][TOYS]["f1"] > 0.8
    assert evaluation["hand_labelled"]["all"]["per_cluster"][TOYS]["recall"] > 0.8

    evaluated = _invoke("evaluate", "--model", str(model_dir))
    assert "random split" in evaluated.output and "hand-labelled" in evaluated.output

    titles = ["Lego Klasik Edisi Terbatas", "Beyblade Jumbo Anak Baru", "", "Kopi Asli Bali"]
    pd.DataFrame({"title": titles}).to_csv(root / "listings.csv", index=False)
    _invoke("predict", "-i", "listings.csv", "-o", "scored.csv", "--model", str(model_dir))
    scored = pd.read_csv(root / "scored.csv", keep_default_na=False)
    assert scored["cluster"].tolist() == [TOYS, TOYS, "other", "food_beverage"]
    # Not protected: a toy is never blocked, and an empty title gets the negative label
    # the model recorded (two labels are unprotected here, so it cannot be guessed).
    assert "block" not in scored["decision"].tolist()[:2]

    with load_model(model_dir) as model:
        frame = model.predict(titles)
    assert f"p_{TOYS}" in frame.columns
    assert [c for c in frame.columns if c.startswith("p_")] == [f"p_{c}" for c in meta["labels"]]
    assert (frame[f"p_{TOYS}"].iloc[:2] > 0.5).all()
