"""Reviewer workflow: confident learning, the HTML report, and importing verdicts."""

from __future__ import annotations

import json
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from clustercls.config import FeatureConfig, ModelConfig
from clustercls.data import build_dataset
from clustercls.evaluate import decisions_table
from clustercls.policy import load_policy
from clustercls.review import (
    QUEUE_COLUMNS,
    build_review,
    find_label_issues,
    import_queue,
    out_of_fold_proba,
)
from tests.conftest import POLICY_FILE, tiny_config, write_tiny_sources

CLUSTERS = load_policy(POLICY_FILE).clusters


def test_find_label_issues_by_hand() -> None:
    classes = ["a", "b"]
    labels = np.array(["a", "a", "a", "b", "b", "b"])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.7, 0.3]])
    issues = find_label_issues(labels, probs, classes)
    # Row 2 is labelled a but confidently b; row 5 is labelled b but reaches a's threshold.
    assert issues["index"].tolist() == [2, 5]
    assert issues["suspected_label"].tolist() == ["b", "a"]
    assert issues["margin"].is_monotonic_decreasing


def test_planted_label_errors_rank_on_top(tmp_path) -> None:
    sources = write_tiny_sources(tmp_path / "sources", per_category=120)
    dataset = build_dataset(tiny_config(tmp_path, sources, None).data).frame
    rng = np.random.default_rng(0)
    planted = rng.choice(len(dataset), size=20, replace=False)
    noisy = dataset.copy()
    for i in planted:
        noisy.loc[i, "cluster"] = next(c for c in CLUSTERS if c != dataset.loc[i, "cluster"])
    proba = out_of_fold_proba(
        noisy,
        FeatureConfig(min_df=1),
        ModelConfig(calibration_cv=2),
        CLUSTERS,
        n_splits=4,
        n_jobs=1,
    )
    issues = find_label_issues(noisy["cluster"].to_numpy(), proba, list(CLUSTERS))
    top = set(issues["index"].head(2 * len(planted)))
    found = len(top & set(planted)) / len(planted)
    assert found >= 0.8, f"only {found:.0%} of planted errors in the top {2 * len(planted)}"


@pytest.fixture(scope="module")
def report(tiny_model_dir, tmp_path_factory):
    from clustercls.data import load_dataset

    dataset = load_dataset(tiny_model_dir.parents[1] / "processed" / "dataset.parquet")
    return build_review(
        tiny_model_dir, dataset, tmp_path_factory.mktemp("review"), n_splits=3, n_jobs=1
    )


def test_report_is_self_contained_and_has_the_tables(report) -> None:
    page = report.report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), (
        "external reference in the report"
    )
    assert "http://" not in page and "https://" not in page
    for table in ("clusters", "loso", "decisions", "wrong", "suspects", "near", "sources"):
        assert f"<table id='{table}'>" in page, table
    assert page.count("data:image/png;base64,") == 2
    assert "alt='block threshold curves'" in page


def test_report_shows_the_decisions_per_group(report, tiny_model_dir) -> None:
    evaluation = json.loads((tiny_model_dir / "evaluation.json").read_text())
    page = report.report.read_text(encoding="utf-8")
    decisions = page[page.index("<table id='decisions'>") :]
    decisions = decisions[: decisions.index("</table>")]
    for group in evaluation["decisions"]["out_of_source"]["per_group"]:
        assert f"<td>{group}</td>" in decisions, group
    # One pooled row per set of decisions the evaluation holds: out of source, adapted
    # folds (under their own and the plain thresholds), hand-labelled, policy probes.
    sets = decisions_table(evaluation)["set"].unique().tolist()
    assert sets == [
        "out-of-source",
        "adapted",
        "adapted, plain thr.",
        "hand-labelled",
        "policy probes",
    ]
    assert decisions.count("<td>pooled</td>") == len(sets)
    for name in sets:
        assert f"<td>{name}</td>" in decisions, name
    assert "function sortTable" in page and "function filterTable" in page


def test_queue_has_the_columns_and_kinds(report) -> None:
    queue = pd.read_csv(report.queue, dtype=str, keep_default_na=False)
    assert tuple(queue.columns) == QUEUE_COLUMNS
    assert queue["id"].is_unique
    assert set(queue["kind"]) <= {"misclassified", "suspected_label_error", "near_threshold"}
    assert (queue["verdict"] == "").all()


def test_import_validates_and_is_idempotent(tmp_path) -> None:
    queue = pd.DataFrame(
        [
            {
                "id": "a1",
                "title": "Kopi",
                "given_label": "other",
                "predicted": "food_beverage",
                "confidence": "0.9",
                "kind": "misclassified",
                "verdict": "relabel",
                "corrected_label": "food_beverage",
                "reviewer": "rina",
                "note": "coffee",
            },
            {
                "id": "a2",
                "title": "Kaos",
                "given_label": "fashion_textile",
                "predicted": "other",
                "confidence": "0.6",
                "kind": "suspected_label_error",
                "verdict": "confirm",
                "corrected_label": "",
                "reviewer": "rina",
                "note": "",
            },
            {
                "id": "a3",
                "title": "X",
                "given_label": "other",
                "predicted": "craft",
                "confidence": "0.5",
                "kind": "near_threshold",
                "verdict": "relabel",
                "corrected_label": "toys",
                "reviewer": "rina",
                "note": "",
            },
            {
                "id": "a4",
                "title": "Y",
                "given_label": "other",
                "predicted": "craft",
                "confidence": "0.5",
                "kind": "near_threshold",
                "verdict": "maybe",
                "corrected_label": "",
                "reviewer": "rina",
                "note": "",
            },
            {
                "id": "a5",
                "title": "Z",
                "given_label": "other",
                "predicted": "craft",
                "confidence": "0.5",
                "kind": "near_threshold",
                "verdict": "confirm",
                "corrected_label": "",
                "reviewer": "",
                "note": "",
            },
            {
                "id": "a6",
                "title": "W",
                "given_label": "other",
                "predicted": "craft",
                "confidence": "0.5",
                "kind": "near_threshold",
                "verdict": "",
                "corrected_label": "",
                "reviewer": "",
                "note": "",
            },
        ],
        columns=list(QUEUE_COLUMNS),
    )
    path, corrections = tmp_path / "queue.csv", tmp_path / "corrections.csv"
    queue.to_csv(path, index=False)
    first = import_queue(path, corrections, CLUSTERS, today=date(2026, 11, 27))
    assert (first.taken, first.unreviewed) == (2, 1)
    assert [line for line, _ in first.refused] == [4, 5, 6]
    assert (
        "toys" in first.refused[0][1]
        and "maybe" in first.refused[1][1]
        and "reviewer" in first.refused[2][1]
    )
    saved = pd.read_csv(corrections, dtype=str, keep_default_na=False)
    assert saved[["id", "verdict", "corrected_label", "date"]].values.tolist() == [
        ["a1", "relabel", "food_beverage", "2026-11-27"],
        ["a2", "confirm", "", "2026-11-27"],
    ]
    before = corrections.read_bytes()
    second = import_queue(path, corrections, CLUSTERS, today=date(2026, 11, 28))
    assert (second.taken, second.already_present) == (0, 2)
    assert corrections.read_bytes() == before


def test_highlight_marks_whole_words_and_escapes() -> None:
    from clustercls.review import _highlight

    marked = _highlight("Women Handbags <b>Tote</b> BAG", ["bag", "tote"])
    assert marked == "Women Handbags &lt;b&gt;<mark>Tote</mark>&lt;/b&gt; <mark>BAG</mark>"


def test_highlighted_words_come_from_top_ngrams_not_the_reason(tiny_model, monkeypatch) -> None:
    from clustercls.review import _highlight, _top_words

    real = tiny_model.predict

    def reworded(titles, cross_border=None):
        # Whatever the reason says (reworded, translated), the words come from the data.
        return real(titles, cross_border).assign(reason="alasan: kata teratas: x, y")

    monkeypatch.setattr(tiny_model, "predict", reworded)
    words = _top_words(tiny_model, ["Kopi Asli Bali", "", "Kemeja Premium Jogja"])
    assert words[0][0] == "kopi" and words[1] == [] and "kemeja" in words[2]
    assert _highlight("Kopi Asli Bali", words[0]).startswith("<mark>Kopi</mark>")
    assert _top_words(tiny_model, []) == []
