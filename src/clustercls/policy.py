"""Enforcement policy: protected clusters, threshold choice, and the per-listing decision."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from clustercls.config import CLUSTERS

BLOCK, REVIEW, ALLOW = "block", "review", "allow"


class ThresholdRules(BaseModel):
    """How thresholds are chosen on hand-labelled, held-out titles."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    block_precision: float = Field(0.99, gt=0, le=1)
    review_recall: float = Field(0.95, gt=0, le=1)
    review_floor: float = Field(0.2, ge=0, lt=1)
    min_support: int = Field(20, ge=1)
    fallback_block: float = Field(0.995, gt=0, le=1)


class Policy(BaseModel):
    """The versioned enforcement policy (`data/policy.toml`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    protected: tuple[str, ...]
    thresholds: ThresholdRules = Field(default_factory=ThresholdRules)

    @field_validator("protected")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - set(CLUSTERS)
        if unknown or not value:
            raise ValueError(f"protected clusters must be a non-empty subset of {CLUSTERS}")
        return value


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file.

    Args:
        path: The TOML policy file.

    Returns:
        The validated policy.
    """
    with Path(path).open("rb") as fh:
        return Policy.model_validate(tomllib.load(fh))


def choose_thresholds(
    y_true: np.ndarray, proba: np.ndarray, classes: list[str], policy: Policy
) -> dict[str, dict]:
    """Choose each protected cluster's block and review thresholds on held-out labels.

    A listing is flagged for cluster c when c is its most probable cluster; its score is
    that probability. `block` is the lowest score from which precision stays at or above
    `block_precision` for every higher threshold too, so that raising it never lowers
    precision below target. `review` is the highest score that still flags `review_recall`
    of the cluster's true titles, never above `block` nor below `review_floor`.

    Args:
        y_true: Hand labels.
        proba: Calibrated probabilities, columns in `classes` order.
        classes: Column labels of `proba`.
        policy: Thresholding rules and protected clusters.

    Returns:
        Per protected cluster: `block`, `review`, and the measured precision/recall behind them.
    """
    rules = policy.thresholds
    y_true = np.asarray(y_true)
    pred = np.asarray(classes)[proba.argmax(axis=1)]
    out = {}
    for cluster in policy.protected:
        score = np.where(pred == cluster, proba[:, classes.index(cluster)], 0.0)
        positive = y_true == cluster
        support = int(positive.sum())
        block = rules.fallback_block
        basis = "fallback: too few hand-labelled positives"
        if support >= rules.min_support:
            block, basis = _block_threshold(
                score, positive, rules.block_precision, rules.fallback_block
            )
        recall_scores = np.sort(score[positive & (score > 0)])[::-1]
        needed = int(np.ceil(rules.review_recall * support))
        review = (
            recall_scores[needed - 1] if 0 < needed <= len(recall_scores) else rules.review_floor
        )
        review = float(min(max(review, rules.review_floor), block))
        out[cluster] = {
            "block": round(float(block), 4),
            "review": round(review, 4),
            "support": support,
            "basis": basis,
            **_rates(score, positive, block, "at_block"),
            **_rates(score, positive, review, "at_review"),
        }
    return out


def _block_threshold(
    score: np.ndarray, positive: np.ndarray, target: float, fallback: float
) -> tuple[float, str]:
    order = np.argsort(-score, kind="stable")
    s, hit = score[order], positive[order]
    flagged = s > 0
    s, hit = s[flagged], hit[flagged]
    if not len(s):
        return fallback, "fallback: nothing predicted in this cluster"
    precision = np.cumsum(hit) / np.arange(1, len(hit) + 1)
    # Only cut between distinct scores: a threshold keeps every tie above it.
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    ok = (precision >= target) & last_of_tie
    # The deepest cut such that every shallower cut also meets the target.
    failing = np.flatnonzero(last_of_tie & (precision < target))
    limit = failing[0] if len(failing) else len(s)
    candidates = np.flatnonzero(ok[:limit])
    if not len(candidates):
        return fallback, f"fallback: precision {target} not reached at any threshold"
    return float(s[candidates[-1]]), f"precision >= {target} on hand-labelled titles"


def _rates(score: np.ndarray, positive: np.ndarray, threshold: float, suffix: str) -> dict:
    flagged = score >= threshold
    tp = int((flagged & positive).sum())
    return {
        f"precision_{suffix}": round(tp / flagged.sum(), 4) if flagged.any() else None,
        f"recall_{suffix}": round(tp / positive.sum(), 4) if positive.any() else None,
        f"flagged_{suffix}": int(flagged.sum()),
    }


def decide(
    cluster: np.ndarray,
    confidence: np.ndarray,
    thresholds: dict[str, dict],
    judgeable: np.ndarray | None = None,
    cross_border: np.ndarray | None = None,
) -> np.ndarray:
    """Turn predictions into enforcement decisions.

    Args:
        cluster: Predicted cluster per listing.
        confidence: Its calibrated probability.
        thresholds: Per protected cluster `block` and `review` thresholds.
        judgeable: False where the title could not be judged (empty, invalid): `review`.
        cross_border: False for domestic sellers, who are never restricted: `allow`.

    Returns:
        `block`, `review` or `allow` per listing.
    """
    cluster = np.asarray(cluster, dtype=object)
    confidence = np.asarray(confidence, dtype=float)
    block_at = np.array([thresholds.get(c, {}).get("block", np.inf) for c in cluster], dtype=float)
    review_at = np.array(
        [thresholds.get(c, {}).get("review", np.inf) for c in cluster], dtype=float
    )
    decision = np.full(len(cluster), ALLOW, dtype=object)
    decision[confidence >= review_at] = REVIEW
    decision[confidence >= block_at] = BLOCK
    if judgeable is not None:
        decision[~np.asarray(judgeable, dtype=bool)] = REVIEW
    if cross_border is not None:
        decision[~np.asarray(cross_border, dtype=bool)] = ALLOW
    return decision
