"""Policy: threshold choice and every decision path."""

from __future__ import annotations

import numpy as np
import pytest

from clustercls.policy import Policy, ThresholdRules, choose_thresholds, decide, load_policy
from tests.conftest import REPO

CLASSES = ["craft", "fashion_textile", "food_beverage", "other"]


def _proba(cluster_scores: list[tuple[str, float]]) -> np.ndarray:
    """Probability rows whose argmax is `cluster` with the given score."""
    rows = []
    for cluster, score in cluster_scores:
        row = np.full(4, (1 - score) / 3)
        row[CLASSES.index(cluster)] = score
        rows.append(row)
    return np.array(rows)


def test_repo_policy_is_valid() -> None:
    policy = load_policy(REPO / "data/policy.toml")
    assert set(policy.protected) == {"craft", "fashion_textile", "food_beverage"}
    assert policy.thresholds.block_precision == 0.99


def test_policy_rejects_unknown_cluster() -> None:
    with pytest.raises(ValueError, match="subset"):
        Policy(version="x", protected=("toys",))


def test_block_threshold_is_lowest_score_with_target_precision() -> None:
    # 30 true food titles scored 0.95..0.66, then one wrong one at 0.60, then more true.
    scores = (
        [("food_beverage", 0.95 - 0.01 * i) for i in range(30)]
        + [("food_beverage", 0.60)]
        + [("food_beverage", 0.55 - 0.01 * i) for i in range(10)]
    )
    y = np.array(["food_beverage"] * 30 + ["other"] + ["food_beverage"] * 10)
    policy = Policy(
        version="t",
        protected=("food_beverage",),
        thresholds=ThresholdRules(block_precision=0.99, review_recall=0.95, min_support=5),
    )
    chosen = choose_thresholds(y, _proba(scores), CLASSES, policy)["food_beverage"]
    # Cutting below the wrong title leaves precision 40/41 < 0.99; the block threshold
    # therefore stops just above it, at the 30th true title.
    assert chosen["block"] == pytest.approx(0.66)
    assert chosen["precision_at_block"] == 1.0
    assert chosen["review"] <= chosen["block"]
    assert chosen["recall_at_review"] >= 0.95


def test_too_few_positives_falls_back() -> None:
    policy = Policy(
        version="t",
        protected=("craft",),
        thresholds=ThresholdRules(min_support=20, fallback_block=0.995),
    )
    chosen = choose_thresholds(
        np.array(["craft"] * 5), _proba([("craft", 0.9)] * 5), CLASSES, policy
    )["craft"]
    assert chosen["block"] == 0.995
    assert chosen["basis"].startswith("fallback")


THRESHOLDS = {
    "food_beverage": {"block": 0.9, "review": 0.5},
    "craft": {"block": 0.95, "review": 0.3},
}


@pytest.mark.parametrize(
    ("cluster", "confidence", "judgeable", "cross_border", "expected"),
    [
        ("food_beverage", 0.95, True, True, "block"),
        ("food_beverage", 0.90, True, True, "block"),
        ("food_beverage", 0.70, True, True, "review"),
        ("food_beverage", 0.40, True, True, "allow"),
        ("other", 0.99, True, True, "allow"),
        ("food_beverage", 0.99, False, True, "review"),
        ("food_beverage", 0.99, True, False, "allow"),
        ("other", 0.0, False, False, "allow"),
        ("craft", 0.94, True, True, "review"),
    ],
    ids=[
        "block",
        "at-block",
        "review",
        "below-review",
        "other",
        "not-judgeable",
        "domestic",
        "domestic-not-judgeable",
        "craft-review",
    ],
)
def test_decision_paths(cluster, confidence, judgeable, cross_border, expected) -> None:
    got = decide(
        np.array([cluster]),
        np.array([confidence]),
        THRESHOLDS,
        np.array([judgeable]),
        np.array([cross_border]),
    )
    assert got.tolist() == [expected]
