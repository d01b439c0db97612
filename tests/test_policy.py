"""Policy: threshold choice and every decision path."""

from __future__ import annotations

import numpy as np
import pytest

from clustercls.policy import (
    Policy,
    ThresholdRules,
    choose_thresholds,
    decide,
    decision_rates,
    load_policy,
    negative_label,
    wilson_lower_bound,
)
from tests.conftest import REPO

CLASSES = ["craft", "fashion_textile", "food_beverage", "other"]
LABELS = {"clusters": CLASSES, "negative": "other"}


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
    assert policy.clusters == tuple(CLASSES)
    assert set(policy.protected) == {"craft", "fashion_textile", "food_beverage"}
    assert policy.negative == "other"
    assert policy.thresholds.block_precision == 0.99


def test_policy_rejects_unknown_cluster() -> None:
    with pytest.raises(ValueError, match="subset"):
        Policy(version="x", **LABELS, protected=("toys",))


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"clusters": ["craft", "other"], "protected": []}, "non-empty subset"),
        ({"clusters": ["craft", "other", "craft"]}, "listed twice"),
        ({"clusters": ["craft", "Other"], "negative": "Other"}, "lowercase"),
        ({"clusters": ["craft"], "negative": "craft"}, "at least two"),
        ({"negative": "none"}, "negative 'none' is not one of"),
        ({"negative": "craft"}, "negative 'craft' cannot be protected"),
    ],
    ids=[
        "no-protected",
        "repeated",
        "not-a-name",
        "one-cluster",
        "unknown-negative",
        "protected-negative",
    ],
)
def test_policy_label_set_is_checked(labels: dict, message: str) -> None:
    given = {"clusters": CLASSES, "protected": ["craft"], "negative": "other", **labels}
    with pytest.raises(ValueError, match=message):
        Policy(version="x", **given)


def test_clusters_are_kept_sorted_whatever_the_file_order() -> None:
    # Sorted is scikit-learn's `classes_` order: the column order of every probability matrix.
    policy = Policy(
        version="x", clusters=["toys", "other", "craft"], protected=["toys"], negative="other"
    )
    assert policy.clusters == ("craft", "other", "toys")


def test_negative_label_of_a_model() -> None:
    meta = {"labels": CLASSES, "protected": ["craft", "fashion_textile"], "negative": "other"}
    assert negative_label(meta) == "other"
    # Older models record only labels and protected: the one unprotected label.
    older = {"labels": CLASSES, "protected": ["craft", "fashion_textile", "food_beverage"]}
    assert negative_label(older) == "other"
    with pytest.raises(ValueError, match="no negative label"):
        negative_label({"labels": CLASSES, "protected": ["craft"]})


def test_block_threshold_is_lowest_score_with_target_precision() -> None:
    # 400 protected titles scored 0.99..0.59, one `other` at 0.585, then more protected.
    scores = (
        [("food_beverage", 0.99 - 0.001 * i) for i in range(400)]
        + [("food_beverage", 0.585)]
        + [("food_beverage", 0.58 - 0.001 * i) for i in range(10)]
    )
    y = np.array(["food_beverage"] * 400 + ["other"] + ["food_beverage"] * 10)
    policy = Policy(
        version="t",
        **LABELS,
        protected=("food_beverage",),
        thresholds=ThresholdRules(block_precision=0.99, block_confidence=0.95, min_support=5),
    )
    chosen = choose_thresholds(y, _proba(scores), CLASSES, policy)
    # Every cut above the `other` title has measured precision 1; its Wilson lower bound
    # reaches 0.99 only after about 270 titles, and a cut below the `other` title would
    # still measure >= 0.99 but not for its bound (410/411 at n=411 is below it).
    assert chosen["block"]["food_beverage"] == pytest.approx(0.591)
    assert "Wilson" in chosen["per_cluster"]["food_beverage"]["basis"]


def test_wilson_bound_needs_enough_titles() -> None:
    bound = wilson_lower_bound(np.array([50, 300, 1000]), np.array([50, 300, 1000]), 0.95)
    assert bound[0] < 0.99 < bound[1] < bound[2] < 1.0


def test_block_threshold_rises_until_every_large_group_keeps_its_precision() -> None:
    # Group b's 60 titles sit just below group a's 400 and a third of them are `other`.
    scores = [("craft", 0.99 - 0.0001 * i) for i in range(400)] + [
        ("craft", 0.94 - 0.0001 * i) for i in range(60)
    ]
    y = np.array(["craft"] * 400 + ["other", "craft", "craft"] * 20)
    groups = np.array(["a"] * 400 + ["b"] * 60)
    policy = Policy(
        version="t",
        **LABELS,
        protected=("craft",),
        thresholds=ThresholdRules(
            block_precision=0.9, group_block_precision=0.97, group_min_blocks=50, min_support=5
        ),
    )
    pooled = choose_thresholds(y, _proba(scores), CLASSES, policy)["block"]["craft"]
    checked = choose_thresholds(y, _proba(scores), CLASSES, policy, groups)["block"]["craft"]
    assert pooled < 0.94
    # Group b keeps fewer than 50 blocks above the checked threshold, or none at all.
    assert checked > pooled
    assert (np.array([s for _, s in scores])[groups == "b"] >= checked).sum() < 50


def test_review_catches_protected_titles_whose_top_cluster_is_other() -> None:
    # Protected titles the model puts in `other` at 0.6 still carry 0.4 protected.
    proba = np.array([[0.1, 0.2, 0.1, 0.6]] * 20 + [[0.0, 0.0, 0.05, 0.95]] * 80)
    y = np.array(["fashion_textile"] * 20 + ["other"] * 80)
    policy = Policy(version="t", **LABELS, protected=("craft", "fashion_textile", "food_beverage"))
    chosen = choose_thresholds(y, proba, CLASSES, policy)
    assert chosen["review"] == pytest.approx(0.4)
    rates = decision_rates(y, proba, CLASSES, chosen, policy.protected)["pooled"]
    assert rates["caught"] == 1.0
    assert rates["review_rate"] == 0.2
    assert rates["blocks"] == 0


def test_review_threshold_is_chosen_on_the_screen_where_there_is_one() -> None:
    # A marketplace mix moved these protected titles to `other` at 0.9; the model's own
    # scores, which the review screens on, still give them 0.4 protected.
    moved = np.array([[0.05, 0.03, 0.02, 0.9]] * 20 + [[0.0, 0.0, 0.01, 0.99]] * 80)
    screen = np.array([[0.1, 0.2, 0.1, 0.6]] * 20 + [[0.0, 0.0, 0.05, 0.95]] * 80)
    y = np.array(["fashion_textile"] * 20 + ["other"] * 80)
    policy = Policy(version="t", **LABELS, protected=("craft", "fashion_textile", "food_beverage"))
    chosen = choose_thresholds(y, moved, CLASSES, policy, screen=screen)
    assert chosen["review"] == pytest.approx(0.4)
    rates = decision_rates(y, moved, CLASSES, chosen, policy.protected, screen=screen)
    assert rates["pooled"]["caught"] == 1.0 and rates["pooled"]["review_rate"] == 0.2
    # On the moved scores alone the same threshold catches none of them.
    assert decision_rates(y, moved, CLASSES, chosen, policy.protected)["pooled"]["caught"] == 0


def test_too_few_positives_falls_back() -> None:
    policy = Policy(
        version="t",
        **LABELS,
        protected=("craft",),
        thresholds=ThresholdRules(min_support=20, fallback_block=0.995),
    )
    chosen = choose_thresholds(
        np.array(["craft"] * 5), _proba([("craft", 0.9)] * 5), CLASSES, policy
    )
    assert chosen["block"]["craft"] == 0.995
    assert chosen["per_cluster"]["craft"]["basis"].startswith("fallback")


THRESHOLDS = {"block": {"food_beverage": 0.9, "craft": 0.95}, "review": 0.5}


@pytest.mark.parametrize(
    ("cluster", "confidence", "protected", "judgeable", "cross_border", "expected"),
    [
        ("food_beverage", 0.95, 0.97, True, True, "block"),
        ("food_beverage", 0.90, 0.92, True, True, "block"),
        ("food_beverage", 0.70, 0.75, True, True, "review"),
        ("food_beverage", 0.40, 0.45, True, True, "allow"),
        ("other", 0.99, 0.01, True, True, "allow"),
        ("other", 0.45, 0.55, True, True, "review"),
        ("food_beverage", 0.99, 0.99, False, True, "review"),
        ("food_beverage", 0.99, 0.99, True, False, "allow"),
        ("other", 0.0, 0.0, False, False, "allow"),
        ("craft", 0.94, 0.96, True, True, "review"),
    ],
    ids=[
        "block",
        "at-block",
        "review",
        "below-review",
        "other",
        "other-top-but-protected-mass",
        "not-judgeable",
        "domestic",
        "domestic-not-judgeable",
        "craft-review",
    ],
)
def test_decision_paths(cluster, confidence, protected, judgeable, cross_border, expected) -> None:
    got = decide(
        np.array([cluster]),
        np.array([confidence]),
        np.array([protected]),
        THRESHOLDS,
        np.array([judgeable]),
        np.array([cross_border]),
    )
    assert got.tolist() == [expected]


def test_unfamiliar_titles_are_never_blocked() -> None:
    cluster = np.array(["food_beverage", "food_beverage", "food_beverage", "other", "craft"])
    confidence = np.array([0.95, 0.95, 0.70, 0.99, 0.97])
    protected = np.array([0.97, 0.97, 0.75, 0.01, 0.98])
    judgeable = np.array([True, True, True, True, False])
    cross_border = np.array([True, False, True, True, True])
    unfamiliar = np.array([True, True, True, True, True])
    # Without the flag the same rows decide as they always did.
    assert decide(cluster, confidence, protected, THRESHOLDS, judgeable, cross_border).tolist() == [
        "block",
        "allow",
        "review",
        "allow",
        "review",
    ]
    # A block becomes review; every other decision stays (domestic, review, allow, the
    # review of a title that cannot be judged).
    got = decide(cluster, confidence, protected, THRESHOLDS, judgeable, cross_border, unfamiliar)
    assert got.tolist() == ["review", "allow", "review", "allow", "review"]
    familiar = decide(
        cluster, confidence, protected, THRESHOLDS, judgeable, cross_border, ~unfamiliar
    )
    assert familiar.tolist()[0] == "block"


def test_serving_rules_default_to_the_policy_file() -> None:
    from clustercls.policy import ServingRules

    # A model trained before the [serving] section gets these defaults: they must be the
    # file's values.
    assert load_policy(REPO / "data/policy.toml").serving == ServingRules()


def test_titles_that_cannot_be_blocked_count_as_reviews() -> None:
    proba = _proba([("craft", 0.99)] * 4)
    y = np.array(["craft", "craft", "craft", "other"])
    thresholds = {"block": {"craft": 0.9}, "review": 0.5}
    policy = Policy(version="t", **LABELS, protected=("craft",))
    blockable = np.array([True, False, True, False])
    rates = decision_rates(y, proba, CLASSES, thresholds, policy.protected, blockable=blockable)
    pooled = rates["pooled"]
    assert pooled["blocks"] == 2
    assert pooled["block_precision"] == 1.0
    assert pooled["review_rate"] == 0.5
    assert pooled["caught"] == 1.0
