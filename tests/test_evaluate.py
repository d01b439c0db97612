"""Evaluation metrics and leave-one-source-out on tiny data."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from clustercls.data import build_dataset, load_source_config
from clustercls.evaluate import (
    bootstrap_f1s,
    classification_metrics,
    format_summary,
    leave_one_source_out,
    out_of_source_scores,
    protected_vs_other,
)
from clustercls.fit import fit_pipeline
from clustercls.policy import load_policy
from tests.conftest import POLICY_FILE, REPO, tiny_config

POLICY = load_policy(POLICY_FILE)
LABELS = {"labels": POLICY.clusters, "protected": POLICY.protected}


def test_protected_vs_other_ignores_which_protected_cluster() -> None:
    # A craft title called fashion is still correctly stopped: binary metrics are perfect.
    result = protected_vs_other(
        ["craft", "other", "food_beverage"],
        ["fashion_textile", "other", "food_beverage"],
        POLICY.protected,
    )
    assert result == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}


def test_an_unprotected_cluster_counts_with_the_negative_label() -> None:
    # A policy cluster that is neither protected nor the negative label: calling a
    # listing `toys` instead of `other` stops nothing, so it is no protected-vs-other error.
    result = protected_vs_other(
        ["toys", "other", "craft", "toys"], ["other", "toys", "craft", "craft"], ["craft"]
    )
    assert result == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}


def test_classification_metrics_by_hand() -> None:
    y_true = ["craft", "craft", "other", "other", "food_beverage", "fashion_textile"]
    y_pred = ["craft", "other", "other", "craft", "food_beverage", "fashion_textile"]
    m = classification_metrics(y_true, y_pred, langs=["id", "id", "en", "en", "id", "en"], **LABELS)
    assert m["per_cluster"]["craft"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["macro_f1"] == pytest.approx((0.5 + 1 + 1 + 0.5) / 4, abs=1e-4)
    assert m["confusion_matrix"][0] == [1, 0, 0, 1]
    assert m["protected_vs_other"]["precision"] == pytest.approx(0.75)
    assert set(m["per_language"]) == {"id", "en"}


def test_leave_one_source_out_on_tiny_data(tmp_path, tiny_sources) -> None:
    config = tiny_config(tmp_path, tiny_sources, None)
    dataset = build_dataset(config.data).frame
    groups = {
        s.name: s.group for s in load_source_config(REPO / "data/sources.toml").sources.values()
    }
    result = leave_one_source_out(
        partial(fit_pipeline, features=config.features, model=config.model),
        dataset,
        groups,
        POLICY.clusters,
        POLICY.protected,
        n_jobs=1,
    )
    assert set(result["per_group"]) == {"tokopedia_umkm", "flipkart", "bigbasket"}
    for name, metrics in result["per_group"].items():
        assert metrics["n"] == int((dataset["source"] == name).sum())
        assert metrics["sources"] == [name]
    defined = [
        m["protected_vs_other"]["f1"]
        for m in result["per_group"].values()
        if m["protected_vs_other"]["support"]
    ]
    assert result["mean_protected_vs_other_f1"] == pytest.approx(np.mean(defined), abs=1e-4)
    worst = result["worst_group"]
    assert worst["protected_vs_other_f1"] == min(defined)
    summary = format_summary({"leave_one_source_out": result})
    assert f"worst group: {worst['group']}" in summary
    # Every figure sits inside its resampling interval.
    low, high = worst["protected_vs_other_f1_interval"]
    assert low <= worst["protected_vs_other_f1"] <= high
    low, high = result["mean_macro_f1_interval"]
    assert low <= result["mean_macro_f1"] <= high
    for metrics in result["per_group"].values():
        low, high = metrics["macro_f1_interval"]
        assert low <= metrics["macro_f1"] <= high
    assert "95% intervals, each group's titles resampled" in summary


CLUSTERS = ["craft", "fashion_textile", "food_beverage", "other"]
# Rows true, columns predicted: some craft read as other, some other read as food.
CONFUSION = np.array([[40, 0, 0, 10], [0, 30, 0, 0], [0, 0, 20, 0], [5, 0, 8, 87]])


def test_bootstrap_draws_scatter_around_the_figures_and_narrow_with_more_titles() -> None:
    truth = np.repeat(np.repeat(CLUSTERS, 4), CONFUSION.ravel())
    predicted = np.repeat(np.tile(CLUSTERS, 4), CONFUSION.ravel())
    figures = classification_metrics(truth, predicted, labels=CLUSTERS, protected=CLUSTERS[:3])
    rng = np.random.default_rng(7)
    macro, pvo = bootstrap_f1s(CONFUSION, CLUSTERS, CLUSTERS[:3], rng, samples=4000)
    assert macro.mean() == pytest.approx(figures["macro_f1"], abs=0.01)
    assert pvo.mean() == pytest.approx(figures["protected_vs_other"]["f1"], abs=0.01)
    many_macro, many_pvo = bootstrap_f1s(CONFUSION * 100, CLUSTERS, CLUSTERS[:3], rng, samples=4000)
    assert many_macro.std() < macro.std() / 5 and many_pvo.std() < pvo.std() / 5
    # The same seed draws the same resamples.
    again = bootstrap_f1s(CONFUSION, CLUSTERS, CLUSTERS[:3], np.random.default_rng(7), samples=4000)
    assert np.array_equal(again[0], macro)


def test_bootstrap_of_a_perfect_set_never_moves() -> None:
    macro, pvo = bootstrap_f1s(
        np.diag([5, 3, 0, 9]), CLUSTERS, CLUSTERS[:3], np.random.default_rng(0)
    )
    assert (macro == 1.0).all() and (pvo == 1.0).all()


def test_out_of_source_scores_hold_out_only_the_chosen_groups(tmp_path, tiny_sources) -> None:
    config = tiny_config(tmp_path, tiny_sources, None)
    dataset = build_dataset(config.data).frame
    groups = {
        s.name: s.group for s in load_source_config(REPO / "data/sources.toml").sources.values()
    }
    trained_on: list[list[str]] = []

    def fit(train):
        trained_on.append(sorted(train["source"].unique()))
        return fit_pipeline(train, features=config.features, model=config.model)

    scores = out_of_source_scores(fit, dataset, groups, n_jobs=1, holdout=["flipkart"])
    # The other groups are trained on even though they are not held out themselves.
    assert trained_on == [["bigbasket", "tokopedia_umkm"]]
    assert scores.index.equals(dataset.index[dataset["source"] == "flipkart"])
    assert set(scores["group"]) == {"flipkart"}
    assert scores["familiarity"].between(0, 1).all()
    proba = scores[[c for c in scores.columns if c.startswith("p_")]].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert (
        scores["predicted"].to_numpy()
        == np.array(sorted(set(dataset["cluster"])))[proba.argmax(axis=1)]
    ).all()


def test_macro_f1_supported_leaves_out_clusters_of_a_few_titles() -> None:
    from clustercls.evaluate import MIN_CLUSTER_TITLES, classification_metrics

    labels = ["craft", "food_beverage", "other"]
    n = MIN_CLUSTER_TITLES
    # Food and other are read well; one craft title, and five food titles called craft.
    y_true = ["food_beverage"] * (2 * n) + ["other"] * (2 * n) + ["craft"]
    y_pred = ["food_beverage"] * (2 * n - 5) + ["craft"] * 5 + ["other"] * (2 * n) + ["craft"]
    out = classification_metrics(y_true, y_pred, labels=labels, protected=["craft", "food"])
    f1 = {c: m["f1"] for c, m in out["per_cluster"].items()}
    assert f1["craft"] < 0.3 < f1["food_beverage"]
    assert out["macro_f1"] == pytest.approx(sum(f1.values()) / 3, abs=1e-4)
    assert out["macro_f1_supported"] == pytest.approx(
        (f1["food_beverage"] + f1["other"]) / 2, abs=1e-4
    )
    # With no cluster that large there is nothing to average.
    small = classification_metrics(["craft"], ["craft"], labels=labels, protected=["craft"])
    assert small["macro_f1_supported"] is None
