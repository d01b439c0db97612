"""Training: weights, model selection, and what a training run writes."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from clustercls.config import FeatureConfig, ModelConfig
from clustercls.data import build_dataset, write_dataset
from clustercls.evaluate import format_summary
from clustercls.fit import (
    THINNED_SOURCE,
    fit_pipeline,
    sample_weights,
    thin_titles,
    weighted_rows,
)
from clustercls.text import normalize
from clustercls.train import choose_candidate, select_model
from tests.conftest import tiny_config


def test_sample_weights_balance_clusters_and_sources() -> None:
    frame = pd.DataFrame(
        {"cluster": ["a"] * 6 + ["b"] * 2, "source": ["s1"] * 4 + ["s2"] * 2 + ["s1"] * 2}
    )
    class_only = sample_weights(frame, ModelConfig(class_weight="balanced", source_weight=0))
    assert class_only[frame["cluster"] == "a"].sum() == pytest.approx(
        class_only[frame["cluster"] == "b"].sum()
    )
    assert class_only.mean() == pytest.approx(1.0)
    none = sample_weights(frame, ModelConfig(class_weight=None, source_weight=0))
    np.testing.assert_allclose(none, 1.0)
    source_full = sample_weights(frame, ModelConfig(class_weight=None, source_weight=1.0))
    assert source_full[frame["source"] == "s1"].sum() == pytest.approx(
        source_full[frame["source"] == "s2"].sum()
    )


LONG_TITLE = "Kemeja Batik Pria Lengan Panjang Premium Murah Original Terbaru Keren Slim Fit Katun"


def test_thinning_keeps_the_lexicon_terms_and_drops_other_words() -> None:
    # "kemeja" and "batik" are lexicon terms; at p=0.9 nearly every other word goes.
    thinned = thin_titles([LONG_TITLE] * 20, p=0.9, seed=1)
    for title in thinned:
        words = title.split()
        assert {"kemeja", "batik"} <= set(words)
    assert sum(len(t.split()) for t in thinned) < 20 * 6
    assert len(set(thinned)) > 1  # the draws differ from title to title


def test_thinning_never_empties_a_title_and_is_repeatable() -> None:
    titles = ["Lengan Panjang Murah", "abc", "Premium Original Terbaru", LONG_TITLE]
    first = thin_titles(titles, p=0.99, seed=7)
    assert all(t.split() for t in first)
    assert first == thin_titles(titles, p=0.99, seed=7)
    # Nothing to drop: the titles come back normalised, whole.
    assert thin_titles(titles, p=0.0, seed=7) == [normalize(t) for t in titles]


def test_weighted_rows_add_thinned_copies_as_a_source_of_their_own() -> None:
    frame = pd.DataFrame(
        {
            "title": [f"{LONG_TITLE} {i}" for i in range(40)]
            + [f"Casing HP {i}" for i in range(40)],
            "cluster": ["fashion_textile"] * 40 + ["other"] * 40,
            "source": ["a"] * 40 + ["b"] * 40,
        }
    )
    plain = ModelConfig(word_dropout=0.0, lexicon_documents=0.0)
    thinned = ModelConfig(word_dropout=0.5, word_dropout_copies=0.5, lexicon_documents=0.0)
    rows, weights = weighted_rows(frame, thinned)
    copies = rows["source"] == THINNED_SOURCE
    assert copies.sum() == 40 and len(rows) == 120
    # Every copy is a thinned original of the same cluster.
    originals = dict(zip(thin_titles(frame["title"], 0.0, 0), frame["cluster"], strict=True))
    for title, cluster in rows.loc[copies, ["title", "cluster"]].itertuples(index=False):
        match = [o for o in originals if set(title.split()) <= set(o.split())]
        assert match and {originals[o] for o in match} == {cluster}
    # The originals keep their rows, and halving the copies' weight halves only theirs.
    assert len(weighted_rows(frame, plain)[0]) == 80
    heavier = weighted_rows(frame, thinned.model_copy(update={"word_dropout_weight": 1.0}))[1]
    np.testing.assert_allclose(weights[copies], heavier[copies] / 2)
    np.testing.assert_allclose(weights[~copies], heavier[~copies])


def test_thinned_copies_add_no_vocabulary() -> None:
    # Each copy repeats its original's n-grams: counted, every n-gram of one title would
    # pass min_df=2. The fitted vocabulary must be the one the originals give alone.
    titles = [f"Kemeja Batik Motif{i} Lengan Panjang" for i in range(30)]
    titles += [f"Casing HP Model{i} Anti Crack" for i in range(30)]
    frame = pd.DataFrame(
        {"title": titles, "cluster": ["fashion_textile"] * 30 + ["other"] * 30, "source": "a"}
    )
    features = FeatureConfig(min_df=2, max_features_word=None, max_features_char=None)
    fitted = {
        p: fit_pipeline(frame, features, ModelConfig(word_dropout=p, word_dropout_copies=1.0))
        for p in (0.0, 0.5)
    }
    vocabularies = {p: fitted[p].named_steps["features"].get_feature_names_out() for p in fitted}
    assert not any("motif7" in name for name in vocabularies[0.0])
    np.testing.assert_array_equal(vocabularies[0.5], vocabularies[0.0])
    # The copies still reach the classifier: its fit differs from the one without them.
    log_proba = {p: np.log(fitted[p].predict_proba(titles[:5])) for p in fitted}
    assert not np.allclose(log_proba[0.5], log_proba[0.0])


def test_select_model_ranks_candidates(tmp_path, tiny_sources) -> None:
    config = tiny_config(tmp_path, tiny_sources, None)
    write_dataset(build_dataset(config.data), config.data.processed_dir)
    candidates = ({"C": 0.5}, {"C": 0.01, "class_weight": None})
    result = select_model(config, candidates)
    scores = [r["loso_mean_protected_vs_other_f1"] for r in result["ranking"]]
    assert scores == sorted(scores, reverse=True)
    assert result["best"] in [r["model"] for r in result["ranking"]]
    best = next(r for r in result["ranking"] if r["model"] == result["best"])
    assert best == choose_candidate(result["ranking"], config.evaluation.cross_source_floor)
    assert {r["model"]["C"] for r in result["ranking"]} == {0.5, 0.01}
    assert set(result["ranking"][0]["loso_protected_vs_other_f1"]) == {
        "tokopedia_umkm",
        "flipkart",
        "bigbasket",
    }


def test_choose_candidate_needs_the_floor_then_the_random_split() -> None:
    def row(name: str, loso: float, random: float, macro: float = 0.7) -> dict:
        return {
            "model": name,
            "loso_mean_protected_vs_other_f1": loso,
            "loso_mean_macro_f1": macro,
            "random_macro_f1": random,
        }

    rows = [row("cross", 0.87, 0.95), row("both", 0.853, 0.970), row("local", 0.84, 0.98)]
    # Above the floor, the random split decides; below it nothing else counts.
    assert choose_candidate(rows, 0.85)["model"] == "both"
    assert choose_candidate(rows, 0.86)["model"] == "cross"
    assert choose_candidate(rows, 0.80)["model"] == "local"
    # Nobody reaches the floor: the best cross-source F1, then cross-source macro-F1.
    tied = [row("a", 0.80, 0.99, macro=0.70), row("b", 0.80, 0.90, macro=0.75)]
    assert choose_candidate(tied, 0.85)["model"] == "b"


def test_training_writes_evaluation_with_loso_and_thresholds(tiny_model_dir) -> None:
    evaluation = json.loads((tiny_model_dir / "evaluation.json").read_text())
    assert {
        "random_split",
        "hand_labelled",
        "leave_one_source_out",
        "thresholds",
        "decisions",
        "timings",
    } <= set(evaluation)
    thresholds = evaluation["thresholds"]
    assert thresholds["chosen_on"] == "out_of_source"
    assert set(thresholds["block"]) == {"craft", "fashion_textile", "food_beverage"}
    assert all(0 < b <= 1 for b in thresholds["block"].values())
    assert 0 <= thresholds["review"] <= 1
    # What the thresholds achieve is measured out of source, per group, and on hand labels.
    decisions = evaluation["decisions"]
    assert set(decisions["out_of_source"]["per_group"]) == set(
        evaluation["leave_one_source_out"]["per_group"]
    )
    assert decisions["out_of_source"]["pooled"]["caught"] >= 0.95
    assert "pooled" in decisions["hand_labelled"]
    assert (tiny_model_dir / "out_of_source_scores.parquet").is_file()
    assert evaluation["random_split"]["labels"] == [
        "craft",
        "fashion_textile",
        "food_beverage",
        "other",
    ]


def test_training_scores_the_policy_probes(tiny_model_dir) -> None:
    evaluation = json.loads((tiny_model_dir / "evaluation.json").read_text())
    scores = pd.read_parquet(tiny_model_dir / "policy_probe_scores.parquet")
    labels = evaluation["random_split"]["labels"]
    predicted = np.asarray(labels)[scores[[f"p_{c}" for c in labels]].to_numpy().argmax(axis=1)]
    assert set(evaluation["policy_probes"]) == {"dev", "held"}
    for part, probed in evaluation["policy_probes"].items():
        rows = (scores["part"] == part).to_numpy()
        right = predicted[rows] == scores["cluster"].to_numpy()[rows]
        assert probed["n"] == rows.sum()
        assert probed["accuracy"] == pytest.approx(right.mean(), abs=1e-4)
        kinds = scores["error_class"].to_numpy()[rows]
        assert {k: v["n"] for k, v in probed["per_error_class"].items()} == {
            k: int((kinds == k).sum()) for k in set(kinds)
        }
    # Decisions on the probes, per part and kind of error, under the model's thresholds.
    decided = evaluation["decisions"]["policy_probes"]
    assert set(decided["per_group"]) == set(scores["part"] + "/" + scores["error_class"])
    assert decided["pooled"]["n"] == len(scores)
    summary = format_summary(evaluation)
    assert "policy probes, dev" in summary and "policy probes, held" in summary
    meta = json.loads((tiny_model_dir / "metadata.json").read_text())
    assert (
        meta["metrics"]["probes_held_accuracy"] == evaluation["policy_probes"]["held"]["accuracy"]
    )
    # The run names the probes file it scored, so figures compare across runs.
    probes_file = tiny_model_dir.parent.parent / "probes.csv"
    assert meta["data"]["evaluation_sets_sha256"]["policy_probes"] == (
        hashlib.sha256(probes_file.read_bytes()).hexdigest()
    )


def test_training_stores_a_reference_for_batch_runs(tiny_model_dir) -> None:
    meta = json.loads((tiny_model_dir / "metadata.json").read_text())
    reference = meta["reference"]
    dataset = pd.read_parquet(tiny_model_dir.parents[1] / "processed" / "dataset.parquet")
    expected = dataset.loc[dataset["split"] == "train", "cluster"].value_counts(normalize=True)
    for label, share in reference["training"]["cluster_share"].items():
        assert share == pytest.approx(expected.get(label, 0.0), abs=1e-4)
    scores = pd.read_parquet(tiny_model_dir / "out_of_source_scores.parquet")
    predicted = scores["predicted"].value_counts(normalize=True)
    for label, share in reference["out_of_source"]["cluster_share"].items():
        assert share == pytest.approx(predicted.get(label, 0.0), abs=1e-4)
    low = meta["policy"]["serving"]["min_familiarity"]
    assert reference["out_of_source"]["unfamiliar_share"] == pytest.approx(
        (scores["familiarity"] < low).mean(), abs=1e-4
    )
    decided = reference["out_of_source"]["decision_share"]
    assert sum(decided.values()) == pytest.approx(1.0, abs=2e-4)
    assert decided["review"] == meta["policy"]["achieved"]["out_of_source"]["pooled"]["review_rate"]


def test_training_refuses_a_lexicon_naming_clusters_outside_the_policy(
    tmp_path, tiny_sources, monkeypatch
) -> None:
    import clustercls.train as train_module
    from clustercls.lexicon import Lexicon

    config = tiny_config(tmp_path, tiny_sources, None)
    write_dataset(build_dataset(config.data), config.data.processed_dir)
    real = train_module.load_lexicon()
    rows = real.rows.copy()
    rows.loc[0, "cluster"] = "gadgets"
    monkeypatch.setattr(train_module, "load_lexicon", lambda: Lexicon(rows=rows, sha256="x"))
    with pytest.raises(ValueError, match="outside the policy \\(gadgets\\)"):
        train_module.train(config)
    assert not (tmp_path / "models").exists()
