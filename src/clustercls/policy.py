"""Enforcement policy: the cluster labels, which are protected, threshold choice, and the
per-listing decision."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A cluster name becomes a column name (`p_<cluster>`) in every output and a key in the
# metadata and MLflow params, so it is held to what all of those accept unquoted.
_CLUSTER_NAME = re.compile(r"[a-z][a-z0-9_]*")

BLOCK, REVIEW, ALLOW = "block", "review", "allow"


class ThresholdRules(BaseModel):
    """How the enforcement thresholds are chosen.

    They are chosen on out-of-source predictions: every training title scored by a model
    that never saw its source group (leave-one-source-out), because production meets
    marketplaces the model never saw and scores on familiar titles are overconfident
    there. The hand-labelled titles are the independent check of the result.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    block_precision: float = Field(
        0.99, gt=0, le=1, description="share of blocked listings that are protected"
    )
    block_confidence: float = Field(
        0.95,
        gt=0,
        lt=1,
        description="block_precision must hold for the one-sided Wilson lower bound at this "
        "confidence, not only for the measured share",
    )
    group_block_precision: float = Field(
        0.97, gt=0, le=1, description="block precision every held-out group must keep"
    )
    group_min_blocks: int = Field(
        50, ge=1, description="groups with fewer blocks than this are reported, not checked"
    )
    review_recall: float = Field(
        0.95,
        gt=0,
        le=1,
        description="share of protected listings that block or review must catch; review "
        "goes by the total protected probability, so a protected listing whose top "
        "cluster is `other` still reaches a reviewer",
    )
    max_review_rate: float = Field(
        0.15, gt=0, le=1, description="review share of all listings above which training warns"
    )
    min_support: int = Field(
        20, ge=1, description="fewer protected titles predicted as a cluster: fallback_block"
    )
    fallback_block: float = Field(0.995, gt=0, le=1)


class ServingRules(BaseModel):
    """How scoring treats titles the model cannot read, and when a run's summary warns.

    Defaults equal `data/policy.toml`'s, so a model trained before these rules existed
    serves under them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_familiarity: float = Field(
        0.5,
        ge=0,
        le=1,
        description="a title with a smaller share of words the model knows is unfamiliar: "
        "never blocked, a block becomes review",
    )
    max_unfamiliar_share: float = Field(
        0.10, ge=0, le=1, description="a run with more unfamiliar titles than this warns"
    )
    max_cluster_shift: float = Field(
        0.30,
        gt=0,
        le=1,
        description="a run whose cluster shares are further than this from the training "
        "data's (total variation distance) warns",
    )
    min_rows_compared: int = Field(
        100, ge=1, description="fewer judgeable titles than this: shares reported, no warnings"
    )


class Policy(BaseModel):
    """The versioned enforcement policy (`data/policy.toml`).

    It owns the label set: every labelled file is checked against `clusters`, training
    fits on them and stores them with the model, and no module names a cluster.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    clusters: tuple[str, ...] = Field(
        description="every label, sorted (scikit-learn's `classes_` order, so the column "
        "order of every probability matrix)"
    )
    protected: tuple[str, ...] = Field(description="clusters closed to cross-border sellers")
    negative: str = Field(
        description="the label of a listing in no cluster the policy names; never protected, "
        "and what an empty title is given"
    )
    thresholds: ThresholdRules = Field(default_factory=ThresholdRules)
    serving: ServingRules = Field(default_factory=ServingRules)

    @field_validator("clusters")
    @classmethod
    def _sorted_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in value if not _CLUSTER_NAME.fullmatch(c)]
        if bad:
            raise ValueError(f"cluster names are lowercase letters, digits and _, not {bad}")
        repeated = sorted({c for c in value if value.count(c) > 1})
        if repeated:
            raise ValueError(f"clusters listed twice: {repeated}")
        if len(value) < 2:
            raise ValueError("a classifier needs at least two clusters")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _labels_agree(self) -> Policy:
        unknown = sorted(set(self.protected) - set(self.clusters))
        if unknown or not self.protected:
            raise ValueError(
                f"protected must be a non-empty subset of clusters {list(self.clusters)}"
                + (f"; unknown: {unknown}" if unknown else "")
            )
        if self.negative not in self.clusters:
            raise ValueError(f"negative '{self.negative}' is not one of {list(self.clusters)}")
        if self.negative in self.protected:
            raise ValueError(f"negative '{self.negative}' cannot be protected")
        return self


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file.

    Args:
        path: The TOML policy file.

    Returns:
        The validated policy.
    """
    with Path(path).open("rb") as fh:
        return Policy.model_validate(tomllib.load(fh))


def serving_rules(metadata: Mapping) -> ServingRules:
    """The serving rules a saved model was trained with (defaults for an older model)."""
    return ServingRules.model_validate(metadata["policy"].get("serving", {}))


def negative_label(metadata: Mapping) -> str:
    """The negative label of a saved model, from its metadata.

    Models record it (`negative`) since the policy names it; for one trained before, it is
    its one label that is not protected, as every policy of that time had it.

    Args:
        metadata: A model's metadata (`labels`, `protected`, and `negative` when recorded).

    Returns:
        The label an empty title is given.

    Raises:
        ValueError: If an older model's labels do not leave exactly one unprotected label.
    """
    if "negative" in metadata:
        return str(metadata["negative"])
    rest = [c for c in metadata["labels"] if c not in set(metadata["protected"])]
    if len(rest) != 1:
        raise ValueError(f"model metadata names no negative label, and {rest} are unprotected")
    return rest[0]


def wilson_lower_bound(hits: np.ndarray, n: np.ndarray, confidence: float) -> np.ndarray:
    """One-sided Wilson score lower bound of a proportion `hits / n`.

    Args:
        hits: Successes.
        n: Trials (> 0).
        confidence: One-sided confidence level, e.g. 0.95.

    Returns:
        The lower bound per element.
    """
    from scipy.stats import norm

    z = float(norm.ppf(confidence))
    n = np.asarray(n, dtype=float)
    p = np.asarray(hits, dtype=float) / n
    centre = p + z * z / (2 * n)
    margin = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - margin) / (1 + z * z / n)


def protected_probability(proba: np.ndarray, classes: list[str], protected) -> np.ndarray:
    """Total probability of the protected clusters per row."""
    columns = [classes.index(c) for c in protected if c in classes]
    return proba[:, columns].sum(axis=1)


def _block_scores(proba: np.ndarray, classes: list[str], cluster: str) -> np.ndarray:
    """A row's score for blocking as `cluster`: its probability where it is the top cluster."""
    top = proba.argmax(axis=1)
    return np.where(top == classes.index(cluster), proba[:, classes.index(cluster)], 0.0)


def choose_thresholds(
    y_true: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
    policy: Policy,
    groups: np.ndarray | None = None,
    blockable: np.ndarray | None = None,
    screen: np.ndarray | None = None,
) -> dict:
    """Choose the block thresholds per protected cluster and the review threshold.

    `block[c]`: a listing whose top cluster is c is blocked when its probability reaches
    it. It is the lowest threshold at which the blocked titles are protected (any
    protected cluster: blocking a fashion listing as craft still stops a protected
    listing) with precision >= `block_precision`, for the measured share and for its
    Wilson lower bound at `block_confidence`. Then,
    group by group, a group with at least `group_min_blocks` blocks must keep
    `group_block_precision`; the threshold rises until they all do.

    `review`: a listing not blocked goes to review when its total protected probability
    reaches it: the highest threshold at which block and review together catch
    `review_recall` of the protected titles.

    Args:
        y_true: Labels.
        proba: Calibrated probabilities, columns in `classes` order.
        classes: Column labels of `proba`.
        policy: Thresholding rules and protected clusters.
        groups: Optional held-out group per row, for the group check.
        blockable: Optional; False for titles serving never blocks (unfamiliar ones): they
            reach block's precision nothing and only review can catch them.
        screen: Optional probabilities the review screens on, where they are not `proba`
            (a model adapted to a marketplace's full mix: `classifier.proba_and_screen`).

    Returns:
        `block` (per protected cluster), `review`, and per cluster the `basis` of its
        block threshold and the support behind it.
    """
    rules = policy.thresholds
    y_true = np.asarray(y_true, dtype=object)
    is_protected = np.isin(y_true, list(policy.protected))
    block: dict[str, float] = {}
    details: dict[str, dict] = {}
    can_block = np.ones(len(y_true), dtype=bool) if blockable is None else np.asarray(blockable)
    for cluster in policy.protected:
        if cluster not in classes:
            continue
        score = np.where(can_block, _block_scores(proba, classes, cluster), 0.0)
        flagged = score > 0
        support = int((flagged & is_protected).sum())
        if support < rules.min_support:
            block[cluster] = rules.fallback_block
            details[cluster] = {
                "basis": "fallback: too few protected titles predicted",
                "support": support,
            }
            continue
        value, basis = _block_threshold(score, is_protected, groups, rules)
        block[cluster] = round(value, 4)
        details[cluster] = {"basis": basis, "support": support}

    # Blocks alone: no review threshold yet.
    blocked = {"block": block, "review": np.inf}
    caught = decide_scores(proba, classes, blocked, policy.protected, can_block) == BLOCK
    p_protected = protected_probability(
        proba if screen is None else screen, classes, policy.protected
    )
    needed = int(np.ceil(rules.review_recall * is_protected.sum()))
    missing = needed - int((caught & is_protected).sum())
    if missing <= 0:
        review = max(block.values(), default=1.0)
    else:
        candidates = np.sort(p_protected[is_protected & ~caught])[::-1]
        review = float(candidates[min(missing, len(candidates)) - 1]) if len(candidates) else 0.0
    return {
        "block": block,
        "review": round(float(np.floor(review * 1e4) / 1e4), 4),
        "per_cluster": details,
    }


def _block_threshold(
    score: np.ndarray, positive: np.ndarray, groups: np.ndarray | None, rules: ThresholdRules
) -> tuple[float, str]:
    order = np.argsort(-score, kind="stable")
    s, hit = score[order], positive[order]
    kept = s > 0
    s, hit = s[kept], hit[kept]
    n = np.arange(1, len(hit) + 1)
    hits = np.cumsum(hit)
    precision = hits / n
    bound = wilson_lower_bound(hits, n, rules.block_confidence)
    # Only cut between distinct scores: a threshold keeps every tie above it. The margin
    # is the bound: a cut is good when even the pessimistic end of its precision's
    # confidence interval reaches the target, which a handful of titles never does.
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    candidates = np.flatnonzero(
        last_of_tie & (precision >= rules.block_precision) & (bound >= rules.block_precision)
    )
    if not len(candidates):
        return rules.fallback_block, (
            f"fallback: precision {rules.block_precision} (lower bound) not reached"
        )
    basis = (
        f"precision >= {rules.block_precision} (Wilson {rules.block_confidence:.0%} lower bound) "
        "on out-of-source predictions"
    )
    if groups is None:
        return float(s[candidates[-1]]), basis
    names, g = np.unique(np.asarray(groups, dtype=object)[order][kept], return_inverse=True)
    # Per group, blocks and protected blocks at every cut, as running counts.
    member = g[None, :] == np.arange(len(names))[:, None]
    blocks = np.cumsum(member, axis=1)
    good = np.cumsum(member & hit[None, :], axis=1)
    ok = (blocks < rules.group_min_blocks) | (good >= rules.group_block_precision * blocks)
    passing = candidates[ok[:, candidates].all(axis=0)]
    if len(passing):
        # The deepest such cut: every group with enough blocks keeps its precision there.
        return float(s[passing[-1]]), basis + f", every group >= {rules.group_block_precision}"
    return float(s[candidates[0]]), basis + ", a group stays below its target at every cut"


def decide_scores(
    proba: np.ndarray,
    classes: list[str],
    thresholds: dict,
    protected,
    blockable: np.ndarray | None = None,
    screen: np.ndarray | None = None,
) -> np.ndarray:
    """`decide` on probability rows, as serving applies it (every title judgeable and
    cross-border): the one decision rule that thresholds are chosen and measured with.
    `screen`: the probabilities the review screens on, where they are not `proba`."""
    top = proba.argmax(axis=1)
    unfamiliar = None if blockable is None else ~np.asarray(blockable, dtype=bool)
    return decide(
        np.asarray(classes, dtype=object)[top],
        proba[np.arange(len(proba)), top],
        protected_probability(proba if screen is None else screen, classes, protected),
        thresholds,
        unfamiliar=unfamiliar,
    )


def decision_rates(
    y_true: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
    thresholds: dict,
    protected,
    groups: np.ndarray | None = None,
    blockable: np.ndarray | None = None,
    screen: np.ndarray | None = None,
) -> dict:
    """What the decisions achieve on labelled titles, pooled and per group.

    Returns:
        `pooled` (and `per_group` when groups are given): `n`, `blocks`,
        `block_precision` (blocked titles that are protected), `block_recall` (protected
        titles blocked), `caught` (protected titles blocked or reviewed) and `review_rate`
        (share of all titles sent to review). With `blockable`, titles marked False are
        never blocked and a block becomes review, as serving treats unfamiliar titles;
        with `screen`, the review screens on those probabilities (`decide_scores`).
    """
    y_true = np.asarray(y_true, dtype=object)
    positive = np.isin(y_true, list(protected))
    decision = decide_scores(proba, classes, thresholds, protected, blockable, screen)
    block, review = decision == BLOCK, decision == REVIEW

    def rates(mask: np.ndarray) -> dict:
        b, r, p = block[mask], review[mask], positive[mask]
        return {
            "n": int(mask.sum()),
            "protected": int(p.sum()),
            "blocks": int(b.sum()),
            "block_precision": round(float(p[b].mean()), 4) if b.any() else None,
            "block_recall": round(float(b[p].mean()), 4) if p.any() else None,
            "caught": round(float((b | r)[p].mean()), 4) if p.any() else None,
            "review_rate": round(float(r.mean()), 4) if mask.any() else None,
        }

    out = {"pooled": rates(np.ones(len(y_true), dtype=bool))}
    if groups is not None:
        groups = np.asarray(groups, dtype=object)
        out["per_group"] = {str(g): rates(groups == g) for g in sorted(set(groups))}
    return out


SCREEN_PREFIX = "screen_"
"""Saved scores hold the probabilities the review screens on in `screen_<cluster>`
columns when they are not the `p_<cluster>` ones (models adapted to a full mix)."""


def screen_of(scores, classes: list[str]) -> np.ndarray | None:
    """The `screen_<cluster>` columns of saved scores, or None where they have none."""
    columns = [f"{SCREEN_PREFIX}{c}" for c in classes]
    if not set(columns) <= set(scores.columns):
        return None
    return scores[columns].to_numpy()


def scores_decision_rates(scores, classes: list[str], thresholds: dict, policy: Policy) -> dict:
    """`decision_rates` of saved out-of-source scores (a frame with `cluster`, `group`,
    `familiarity` and `p_<cluster>` columns, as training writes them, and the
    `screen_<cluster>` columns where the review screens on other probabilities), per
    group, with unfamiliar titles never blocked as serving does."""
    return decision_rates(
        scores["cluster"].to_numpy(),
        scores[[f"p_{c}" for c in classes]].to_numpy(),
        classes,
        thresholds,
        policy.protected,
        scores["group"].to_numpy(),
        blockable=scores["familiarity"].to_numpy() >= policy.serving.min_familiarity,
        screen=screen_of(scores, classes),
    )


def hand_decision_rates(
    hand,
    proba: np.ndarray,
    familiarity: np.ndarray,
    classes: list[str],
    thresholds: dict,
    protected,
    min_familiarity: float,
    screen: np.ndarray | None = None,
) -> dict:
    """`decision_rates` of hand-labelled titles (a frame with `cluster`, `source` and
    `unsure`) scored `proba` with `familiarity`, per source: titles the labeller was unsure
    of are left out, and unfamiliar ones are never blocked as serving does (`screen` as
    in `decision_rates`)."""
    sure = ~hand["unsure"].to_numpy()
    return decision_rates(
        hand["cluster"].to_numpy()[sure],
        proba[sure],
        classes,
        thresholds,
        protected,
        hand["source"].to_numpy()[sure],
        blockable=familiarity[sure] >= min_familiarity,
        screen=None if screen is None else screen[sure],
    )


def decide(
    cluster: np.ndarray,
    confidence: np.ndarray,
    protected_proba: np.ndarray,
    thresholds: dict,
    judgeable: np.ndarray | None = None,
    cross_border: np.ndarray | None = None,
    unfamiliar: np.ndarray | None = None,
) -> np.ndarray:
    """Turn predictions into enforcement decisions.

    Args:
        cluster: Predicted (top) cluster per listing.
        confidence: Its calibrated probability.
        protected_proba: Total probability of the protected clusters per listing.
        thresholds: `block` (per protected cluster) and `review` (on `protected_proba`).
        judgeable: False where the title could not be judged (empty, invalid, unreadable):
            never blocked, `review`.
        cross_border: False for domestic sellers, who are never restricted: `allow`.
        unfamiliar: True where the model knows too few of the title's words to be trusted
            with a block (`ServingRules.min_familiarity`): a `block` becomes `review`,
            other decisions stay.

    Returns:
        `block`, `review` or `allow` per listing.
    """
    cluster = np.asarray(cluster, dtype=object)
    confidence = np.asarray(confidence, dtype=float)
    limits = thresholds["block"]
    block_at = np.array([limits.get(c, np.inf) for c in cluster], dtype=float)
    decision = np.full(len(cluster), ALLOW, dtype=object)
    decision[np.asarray(protected_proba, dtype=float) >= thresholds["review"]] = REVIEW
    decision[confidence >= block_at] = BLOCK
    if unfamiliar is not None:
        decision[np.asarray(unfamiliar, dtype=bool) & (decision == BLOCK)] = REVIEW
    if judgeable is not None:
        decision[~np.asarray(judgeable, dtype=bool)] = REVIEW
    if cross_border is not None:
        decision[~np.asarray(cross_border, dtype=bool)] = ALLOW
    return decision
