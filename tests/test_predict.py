"""The prediction API the enforcement job imports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clustercls.predict import STATUSES

LABELS = ["craft", "fashion_textile", "food_beverage", "other"]
TEXT = pd.Series(["x"]).dtype  # pandas' dtype for Python strings: `str` from pandas 3

# The output contract, written out: a change here is a change for every consumer.
GOLDEN_PREDICT_COLUMNS = [
    ("cluster", TEXT),
    ("confidence", "float64"),
    ("p_craft", "float64"),
    ("p_fashion_textile", "float64"),
    ("p_food_beverage", "float64"),
    ("p_other", "float64"),
    ("decision", TEXT),
    ("reason", TEXT),
    ("top_ngrams", TEXT),
    ("familiarity", "float64"),
    ("unfamiliar", "bool"),
    ("status", TEXT),
]
# Brand-and-code titles no marketplace in the training data has.
MADE_UP = [
    "Zorvex KT-4471 Vanta",
    "QLM-88 Brixo Pro X2",
    "Glarnix Vexo 5500",
    "Trumbel ZX-9 Kordan",
    "Yxlo Brandt Quenta 77",
]


def test_import_surface() -> None:
    import clustercls

    assert callable(clustercls.load_model)
    with pytest.raises(AttributeError):
        clustercls.not_a_thing  # noqa: B018


def test_predict_columns_order_and_probabilities(tiny_model) -> None:
    titles = ["Kopi Asli Bali", "Kemeja Premium Jogja", "Charger Mini Solo", "Lukisan Klasik Garut"]
    out = tiny_model.predict(titles)
    assert list(zip(out.columns, out.dtypes, strict=True)) == GOLDEN_PREDICT_COLUMNS
    assert len(out) == len(titles)
    assert out["cluster"].tolist() == ["food_beverage", "fashion_textile", "other", "craft"]
    probs = out[[f"p_{c}" for c in LABELS]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-3)
    np.testing.assert_allclose(out["confidence"], probs.max(axis=1), atol=1e-4)
    assert set(out["status"]) == {"ok"}
    # Order: reversing the input reverses the output.
    rev = tiny_model.predict(titles[::-1])
    assert rev["cluster"].tolist() == out["cluster"].tolist()[::-1]


@pytest.mark.parametrize("titles", [[], [None], ["Kopi Asli Bali", ""] * 20], ids=["0", "1", "40"])
def test_every_call_has_the_golden_columns_and_dtypes(tiny_model, titles) -> None:
    out = tiny_model.predict(titles)
    assert list(zip(out.columns, out.dtypes, strict=True)) == GOLDEN_PREDICT_COLUMNS
    assert len(out) == len(titles)


def test_the_schema_names_what_predict_returns(tiny_model) -> None:
    from clustercls.schema import OUTPUT

    out = tiny_model.predict(["Kopi Asli Bali"])
    assert OUTPUT.predict_names(tiny_model.labels) == list(out.columns)


def test_top_ngrams_are_the_reasons_ngrams_as_data(tiny_model) -> None:
    from clustercls.schema import parse_top_ngrams

    titles = ["Kopi Asli Bali", "Kemeja Premium Jogja", "Lukisan Klasik Garut", "zzz", ""]
    out = tiny_model.predict(titles)
    for title, row in zip(titles, out.itertuples(), strict=True):
        pairs = parse_top_ngrams(row.top_ngrams)
        weights = [w for _, w in pairs]
        assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
        quoted = ", ".join(f"'{g}'" for g, _ in pairs) or "none"
        if row.status == "ok":
            assert row.reason.endswith(f"top n-grams: {quoted}")
            explained = tiny_model.explain(title, k=3)
            assert [g for g, _ in pairs] == explained["ngram"].tolist()
            np.testing.assert_allclose(weights, explained["weight"], atol=1e-4)
        else:
            assert row.top_ngrams == "[]"
    assert parse_top_ngrams(out["top_ngrams"].iloc[0])[0][0] == "kopi"


def test_a_model_without_linear_weights_predicts_without_ngrams(tiny_model) -> None:
    from clustercls.artifact import ArtifactError
    from clustercls.predict import Model

    class Opaque:
        """A classifier that only answers probabilities (a forest, a remote model)."""

        def __init__(self, inner) -> None:
            self.inner, self.classes_ = inner, inner.classes_

        def predict_proba(self, features):
            return self.inner.predict_proba(features)

    titles = ["Kopi Asli Bali", "Kemeja Premium Jogja", None, "Zorvex KT-4471 Vanta"]
    expected = tiny_model.predict(titles)
    assert tiny_model._explainer() is not None  # a linear model explains
    artifact = tiny_model.artifact
    artifact.pipeline.steps[-1] = ("classifier", Opaque(artifact.pipeline.steps[-1][1]))
    opaque = Model(artifact)
    out = opaque.predict(titles)
    assert list(zip(out.columns, out.dtypes, strict=True)) == GOLDEN_PREDICT_COLUMNS
    assert out["top_ngrams"].tolist() == ["[]"] * len(titles)
    assert "no n-gram explanation available" in out["reason"].iloc[0]
    assert "not judgeable" in out["reason"].iloc[2]
    same = ["cluster", "decision", "familiarity", "unfamiliar", "status"]
    pd.testing.assert_frame_equal(out[same], expected[same])
    np.testing.assert_allclose(out["confidence"], expected["confidence"], atol=1e-4)
    with pytest.raises(ArtifactError, match="no linear weights"):
        opaque.explain("Kopi Asli Bali")


def test_familiarity_counts_known_words(tiny_model) -> None:
    from clustercls.familiarity import familiarity

    titles = [
        "Kopi Asli Bali",  # every word known
        "Kopi Asli Bali 500 ml 2 pcs",  # quantities do not count
        "Kopi dan Zorvex",  # a stopword does not count: 1 of 2
        "Zorvex Kopi Brixo Vexo",  # 1 of 4
        "500 ml",  # no words at all
        "",
        None,
        *MADE_UP,
    ]
    shares = familiarity(tiny_model.pipeline, titles)
    np.testing.assert_allclose(shares[:7], [1, 1, 0.5, 0.25, 0, 0, 0])
    assert (shares[7:] == 0).all()
    out = tiny_model.predict(titles)
    np.testing.assert_allclose(out["familiarity"], np.round(shares, 4))
    assert out["unfamiliar"].tolist() == (shares < tiny_model.serving.min_familiarity).tolist()
    # Many titles take the vectorised count, a few the per-title one: the same values.
    many = titles * 5
    np.testing.assert_allclose(familiarity(tiny_model.pipeline, many), np.tile(shares, 5))


def test_unfamiliar_titles_are_never_blocked(tiny_model) -> None:
    titles = [
        "Kemeja Premium Jogja",
        "Kemeja Zorvex Brixo Vexo",  # the one known word says fashion: 1 of 4 known
        "Kemeja Zorvex Brixo Vexo",
        *MADE_UP,
    ]
    flags = [True, True, False, *[True] * len(MADE_UP)]
    out = tiny_model.predict(titles, cross_border=flags)
    assert out["unfamiliar"].tolist() == [False, True, True, *[True] * len(MADE_UP)]
    assert "block" not in out["decision"].iloc[1:].tolist()
    assert out["decision"].iloc[2] == "allow"  # domestic stays allow
    # With no familiarity rule the same model blocks the unfamiliar title: only the block
    # changed, and the reason says why.
    tiny_model.serving = tiny_model.serving.model_copy(update={"min_familiarity": 0.0})
    trusting = tiny_model.predict(titles, cross_border=flags)
    assert trusting["decision"].iloc[:2].tolist() == ["block", "block"]
    assert out["decision"].iloc[1] == "review"
    assert "unfamiliar (familiarity 0.25" in out["reason"].iloc[1]
    assert "never block" in out["reason"].iloc[1]
    changed = out["decision"] != trusting["decision"]
    assert (trusting.loc[changed, "decision"] == "block").all()
    assert (out.loc[changed, "decision"] == "review").all()


def test_made_up_titles_are_not_blocked_by_the_real_model(real_model) -> None:
    out = real_model.predict(MADE_UP + [f"{t} Original Murah" for t in MADE_UP])
    assert "block" not in set(out["decision"]), out[["cluster", "confidence", "familiarity"]]


def test_accepts_a_series_and_duplicates(tiny_model) -> None:
    series = pd.Series(
        ["Kopi Asli Bali", "Kopi Asli Bali", "Kemeja Premium Jogja"], index=[10, 5, 7]
    )
    out = tiny_model.predict(series)
    assert out["cluster"].tolist() == ["food_beverage", "food_beverage", "fashion_textile"]
    assert out.index.tolist() == [0, 1, 2]


def test_repeated_titles_are_scored_once_with_the_same_result(tiny_model, monkeypatch) -> None:
    import clustercls.predict as predict_module

    values = ["Kopi Asli Bali", 1, True, "1", b"Kopi Asli Bali", None, ["not", "hashable"]]
    titles = values * 3 + ["Kemeja Premium Jogja"]
    flags = [i % 2 == 0 for i in range(len(titles))]
    one_by_one = pd.concat(
        [tiny_model.predict([t], cross_border=[f]) for t, f in zip(titles, flags, strict=True)],
        ignore_index=True,
    )
    calls = []
    real = tiny_model._predict_distinct
    monkeypatch.setattr(
        tiny_model, "_predict_distinct", lambda v, f: calls.append(len(v)) or real(v, f)
    )
    monkeypatch.setattr(predict_module, "BLOCK_ROWS", 4)
    together = tiny_model.predict(titles, cross_border=flags)
    pd.testing.assert_frame_equal(together, one_by_one)
    assert together.index.tolist() == list(range(len(titles)))
    # Unhashable input turns the de-duplication off for the call; it still scores.
    assert calls == [len(titles)]
    hashable = titles[:6] * 4
    tiny_model.predict(hashable, cross_border=[True] * len(hashable))
    assert calls[-1] == 6
    assert tiny_model.predict(hashable)["status"].tolist()[:2] == ["ok", "non_text"]


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("", "empty_title"),
        ("   \t ", "empty_title"),
        ("\u200b\u200b\u200c", "empty_title"),
        ("\x00\x01\x02", "empty_title"),
        (None, "missing_title"),
        (float("nan"), "missing_title"),
        (12345, "non_text"),
        (b"\xff\xfe kopi", "invalid_text"),
        ("kopi \ufffd bali", "invalid_text"),
        ("Kopi Asli Bali " * 200, "truncated"),
        (b"Kopi Asli Bali", "ok"),
    ],
    ids=[
        "empty",
        "spaces",
        "zero-width",
        "control",
        "none",
        "nan",
        "number",
        "bad-bytes",
        "replacement-char",
        "too-long",
        "utf8-bytes",
    ],
)
def test_bad_titles_get_a_status_and_review(tiny_model, value, status) -> None:
    out = tiny_model.predict(["Kopi Asli Bali", value, "Kemeja Premium Jogja"])
    assert len(out) == 3
    assert out["status"].tolist() == ["ok", status, "ok"]
    assert status in STATUSES
    if status != "ok":
        assert out["decision"].iloc[1] == "review"
        assert status in out["reason"].iloc[1]
    assert out["cluster"].iloc[2] == "fashion_textile"


def test_cross_border_flag(tiny_model) -> None:
    out = tiny_model.predict(["Kopi Asli Bali", "Kopi Asli Bali"], cross_border=[True, False])
    assert out["cluster"].tolist() == ["food_beverage", "food_beverage"]
    assert out["decision"].iloc[1] == "allow"
    assert "domestic" in out["reason"].iloc[1]


def test_decisions_follow_the_thresholds(tiny_model) -> None:
    out = tiny_model.predict(
        ["Kopi Asli Bali", "Kemeja Premium Jogja", "Charger Mini Solo", "Lukisan Klasik Garut"]
    )
    block, review = tiny_model.thresholds["block"], tiny_model.thresholds["review"]
    protected = out[[f"p_{c}" for c in tiny_model.protected]].sum(axis=1)
    for row, p_protected in zip(out.itertuples(), protected, strict=True):
        # Probabilities are rounded to 4 places in the output; stay clear of the edges.
        if row.confidence >= block.get(row.cluster, 2.0) + 1e-4:
            assert row.decision == "block"
        elif p_protected >= review + 1e-3 and row.confidence < block.get(row.cluster, 2.0) - 1e-4:
            assert row.decision == "review"
        elif p_protected < review - 1e-3:
            assert row.decision == "allow"
        assert row.cluster in row.reason


def test_explain_returns_ngrams_of_the_predicted_cluster(tiny_model) -> None:
    out = tiny_model.explain("Kopi Asli Bali", k=3)
    assert list(out.columns) == ["ngram", "weight", "cluster"]
    assert 1 <= len(out) <= 3
    assert (out["cluster"] == "food_beverage").all()
    assert out["weight"].is_monotonic_decreasing
    assert any("kopi" in g for g in out["ngram"])


def test_parallel_predict_equals_serial(tiny_model_dir, monkeypatch) -> None:
    import clustercls.parallel as parallel_module
    import clustercls.predict as predict_module
    from clustercls.predict import load_model

    monkeypatch.setattr(predict_module, "PARALLEL_MIN_ROWS", 5)
    base = ["Kopi Asli Bali", "", None, "Kemeja Premium Jogja", "Charger Mini Solo", "Lukisan"]
    # Mostly distinct titles: repeats are scored once, and too few would stay in-process.
    titles = [f"{t} {i}" if t else t for i, t in enumerate(base * 4)] + base
    flags = [True, False] * 15
    serial = load_model(tiny_model_dir, n_jobs=1).predict(titles, cross_border=flags)
    with load_model(tiny_model_dir, n_jobs=2) as model:
        parallel = model.predict(titles, cross_border=flags)
        assert model._pool.started and parallel_module._WORKER_MODELS
    pd.testing.assert_frame_equal(parallel, serial)
    # Leaving the block stopped the workers and released the model; it still predicts.
    assert not model._pool.started and not parallel_module._WORKER_MODELS
    pd.testing.assert_frame_equal(model.predict(titles, cross_border=flags), serial)
    model.close()


def test_load_model_uses_every_usable_core_by_default(tiny_model_dir, monkeypatch) -> None:
    import clustercls.predict as predict_module
    from clustercls.artifact import load_artifact
    from clustercls.predict import Model, load_model

    monkeypatch.setattr(predict_module, "usable_cores", lambda: 3)
    assert load_model(tiny_model_dir).n_jobs == 3
    assert load_model(tiny_model_dir, n_jobs=1).n_jobs == 1
    # The class itself stays in-process unless asked: workers and servers build it directly.
    assert Model(load_artifact(tiny_model_dir)).n_jobs == 1


def test_pyfunc_scores_in_its_own_process(tiny_model_dir) -> None:
    from types import SimpleNamespace

    from clustercls.tracking import ClusterclsPyfunc

    pyfunc = ClusterclsPyfunc()
    pyfunc.load_context(SimpleNamespace(artifacts={"model_dir": str(tiny_model_dir)}))
    assert pyfunc.model.n_jobs == 1
    out = pyfunc.predict(None, pd.DataFrame({"title": ["Kopi Asli Bali", None]}))
    assert out["status"].tolist() == ["ok", "missing_title"]


def test_blocks_do_not_change_the_result(tiny_model, monkeypatch) -> None:
    import clustercls.predict as predict_module

    titles = ["Kopi Asli Bali", "", "Kemeja Premium Jogja", None, "Charger Mini Solo"] * 5
    whole = tiny_model.predict(titles)
    monkeypatch.setattr(predict_module, "BLOCK_ROWS", 4)
    pd.testing.assert_frame_equal(tiny_model.predict(titles), whole)


def test_serving_runs_the_saved_pipeline(tiny_model) -> None:
    from clustercls.text import raw_limit

    limit = raw_limit(tiny_model.pipeline.steps[0][1].max_length)
    titles = [
        "Kopi Asli Bali",
        "Kemeja Premium Jogja",
        "zzz",
        "READY STOCK k3m3ja b a t i k",
        "Lukisan Klasik Garut",
        "Charger Mini Solo",
        # Longer than the normaliser reads: scored as the pipeline scores it.
        "!" * (limit - 12) + " kopi bubuk " + "kemeja " * 50,
    ]
    out = tiny_model.predict(titles)
    expected = tiny_model.pipeline.predict_proba(titles)
    got = out[[f"p_{label}" for label in tiny_model.labels]].to_numpy()
    np.testing.assert_allclose(got, np.round(expected, 4), rtol=0, atol=1e-12)
    assert out["status"].tolist() == ["ok"] * 6 + ["truncated"]
    assert out["cluster"].tolist() == list(np.asarray(tiny_model.labels)[expected.argmax(axis=1)])
    # A step added to the pipeline is a step of serving too.
    normalised = list(tiny_model._normalize(titles))
    features = tiny_model.pipeline[1:-1].transform(normalised)
    np.testing.assert_allclose(tiny_model._proba(normalised)[0], expected, rtol=0, atol=1e-12)
    assert (tiny_model._proba(normalised)[1] != features).nnz == 0


def test_title_features_stack_blocks_as_feature_union(tiny_model) -> None:
    from sklearn.pipeline import FeatureUnion

    from clustercls.features import TitleFeatures, hstack_csr

    union = tiny_model.pipeline.steps[1][1]
    assert isinstance(union, TitleFeatures)
    titles = ["kopi asli bali", "", "kemeja batik", "lukisan klasik garut", "x"]
    ours, scikit = union.transform(titles), FeatureUnion.transform(union, titles)
    assert ours.format == "csr" and ours.shape == scikit.shape and ours.dtype == scikit.dtype
    assert (ours != scikit).nnz == 0
    blocks = [step.transform(titles) for _, step in union.transformer_list]
    word = union.block_columns("word")
    assert (ours[:, word] != blocks[0]).nnz == 0
    assert union.block_columns("nope") is None
    assert (hstack_csr(blocks[:1]) != blocks[0]).nnz == 0
    # One title at a time (its own path) gives each row of the whole.
    for i, title in enumerate(titles):
        one = union.transform([title])
        assert one.format == "csr" and one.dtype == scikit.dtype and one.has_sorted_indices
        assert (one != scikit[i]).nnz == 0


@pytest.mark.parametrize(
    ("method", "ensemble"),
    [("sigmoid", True), ("sigmoid", False), ("temperature", True), ("temperature", False)],
)
def test_fast_calibrated_probabilities_equal_scikit_learn(method, ensemble) -> None:
    import pickle

    import scipy.sparse as sp
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    from clustercls.classifier import FastCalibratedClassifierCV

    rng = np.random.default_rng(0)
    labels = ["craft", "fashion_textile", "food_beverage", "other"]
    y = np.array(labels)[rng.integers(0, 4, 400)]
    dense = rng.random((400, 30)) * (rng.random((400, 30)) < 0.2)
    dense[:, :4] += (y[:, None] == np.array(labels)) * 0.5
    x = sp.csr_matrix(dense, dtype=np.float32)
    classifier = FastCalibratedClassifierCV(
        LinearSVC(C=0.5), method=method, cv=3, ensemble=ensemble
    ).fit(x, y, sample_weight=rng.random(400) + 0.5)
    scikit = CalibratedClassifierCV.predict_proba(classifier, x)
    assert classifier._fast() is not None
    np.testing.assert_allclose(classifier.predict_proba(x), scikit, rtol=0, atol=1e-12)
    # Dense input takes scikit-learn's own path; the derived weights are never pickled.
    np.testing.assert_allclose(classifier.predict_proba(dense), scikit, atol=1e-6)
    restored = pickle.loads(pickle.dumps(classifier))
    assert not hasattr(restored, "_fast_cache")
    np.testing.assert_allclose(restored.predict_proba(x), scikit, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="features"):
        classifier.predict_proba(x[:, :29])


def test_softmax_equals_scipy_bit_for_bit() -> None:
    from scipy.special import softmax

    from clustercls.classifier import softmax as _softmax

    rng = np.random.default_rng(3)
    for shape in [(1, 1, 4), (7, 3, 4), (0, 1, 4)]:
        x = rng.normal(scale=30, size=shape)
        assert np.array_equal(_softmax(x), softmax(x, axis=-1))


@pytest.mark.parametrize("n", [0, 1, 7])
def test_output_frame_equals_the_pandas_constructor(n) -> None:
    from clustercls.predict import _frame

    rng = np.random.default_rng(n)
    words = np.array(["food_beverage", "other", "craft"], dtype=object)
    columns = {
        "cluster": words[rng.integers(0, 3, n)],
        "confidence": rng.random(n),
        "p_other": rng.random(n),
        "decision": np.array(["allow", "review"] * n, dtype=object)[:n],
        "reason": [f"reason {i} ünïcode" for i in range(n)],
        "unfamiliar": rng.random(n) < 0.5,
        "status": np.full(n, "ok", dtype=object),
    }
    text = ("cluster", "decision", "reason", "status")
    got = _frame(columns, pd.Index(list(columns)), text)
    if n:
        pd.testing.assert_frame_equal(got, pd.DataFrame(columns))
    else:
        # pandas infers object for empty text columns; an empty call keeps one schema.
        one = pd.DataFrame(
            {k: ["x"] if k in text else [columns[k][:1].dtype.type(1)] for k in columns}
        )
        assert got.columns.tolist() == list(columns) and len(got) == 0
        assert got.dtypes.tolist() == one.dtypes.tolist()
    assert got["reason"].tolist() == columns["reason"]


def test_reason_ngrams_rank_exactly_at_any_row(tiny_model, monkeypatch) -> None:
    import scipy.sparse as sp

    names = np.array(["aa", "bb", "cc", "dd"], dtype=object)
    from clustercls.explain import Explainer

    explainer = Explainer(names, slice(0, 4), np.ones((len(tiny_model.labels), 4)))
    # Two contributions one float step apart, a small one and a negative one.
    data = np.array([0.06759214587619765, 0.06759214587619766, 0.01, -0.5])
    rows = 200_000
    far = sp.csr_matrix((data, np.arange(4), np.r_[np.zeros(rows, dtype=int), 4]), shape=(rows, 4))
    alone = sp.csr_matrix((data, np.arange(4), [0, 4]), shape=(1, 4))
    best = np.zeros(rows, dtype=int)
    # A title's reason must not depend on where it sits in a call.
    grams, top = explainer.top_ngram_lists(far, best, k=2)
    assert grams[-1] == "top n-grams: 'bb', 'aa'"
    assert top[-1] == '[["bb", 0.0676], ["aa", 0.0676]]'
    grams, top = explainer.top_ngram_lists(alone, best[:1], k=2)
    assert grams.tolist() == ["top n-grams: 'bb', 'aa'"]
    grams, top = explainer.top_ngram_lists(alone, best[:1], k=4)
    assert grams.tolist() == ["top n-grams: 'bb', 'aa', 'cc'"]
    assert top.tolist() == ['[["bb", 0.0676], ["aa", 0.0676], ["cc", 0.01]]']


def _ranked_by_sorting(row, cols, contrib, k):
    """The reference ranking: sort each row by descending contribution (ties: position)."""
    order = np.lexsort((-contrib, row))
    ranked = row[order]
    rank = np.arange(len(order)) - np.searchsorted(ranked, ranked, side="left")
    keep = order[rank < k]
    return row[keep], cols[keep], contrib[keep]


@pytest.mark.parametrize("n_rows", [1, 16, 300])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_ranking_equals_a_full_sort(tiny_model, monkeypatch, k, n_rows) -> None:
    import scipy.sparse as sp

    rng = np.random.default_rng(k * n_rows)
    n_cols = 40
    names = np.array([f"w{i}" for i in range(n_cols)], dtype=object)
    # Few distinct values, so exact ties are common; negatives and zeros are never kept.
    weights = rng.choice([-1.0, 0.0, 0.5, 1.0, 2.0], size=(len(tiny_model.labels), n_cols))
    from clustercls.explain import Explainer, rank_by_passes, rank_by_sorting

    explainer = Explainer(names, slice(0, n_cols), weights)
    dense = rng.choice([0.0, 0.25, 0.5, 1.0], size=(n_rows, n_cols), p=[0.7, 0.1, 0.1, 0.1])
    dense[::7] = 0.0  # rows with nothing to explain
    features = sp.csr_matrix(dense)
    best = rng.integers(0, len(tiny_model.labels), n_rows)
    row = np.repeat(np.arange(n_rows), np.diff(features.indptr))
    contrib = features.data * weights[best[row], features.indices]
    positive = contrib > 0
    expected = _ranked_by_sorting(row[positive], features.indices[positive], contrib[positive], k)
    got = explainer.ranked(features, best, k)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    # Both ways of ranking, whatever the call size.
    kept = row[positive], contrib[positive]
    np.testing.assert_array_equal(rank_by_passes(*kept, k), rank_by_sorting(*kept, k))
    # A title alone (its own, Python path) reads as it does inside the call.
    grams, top = explainer.top_ngram_lists(features, best, k)
    for i in range(min(n_rows, 40)):
        alone_grams, alone_top = explainer.top_ngram_lists(features[i], best[i : i + 1], k)
        assert (alone_grams[0], alone_top[0]) == (grams[i], top[i])


def test_prediction_imports_neither_tracking_nor_mlflow() -> None:
    import subprocess
    import sys

    code = (
        "import sys, clustercls.predict, clustercls.batch\n"
        "loaded = [m for m in ('clustercls.tracking', 'mlflow') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_rounded_reprs_equal_repr_of_numpy_rounding() -> None:
    from clustercls.explain import rounded_reprs

    rng = np.random.default_rng(11)
    values = np.concatenate(
        [rng.random(50_000) * 3, rng.random(1_000) * 1e-3, [0.0, 5e-5, 1.5e-4, 9.99995, 1.23455]]
    )
    expected = [repr(v) for v in np.round(values, 4).tolist()]
    assert rounded_reprs(values) == expected
    # Past the table it formats them itself.
    large = np.array([12.345678, 0.1, 250.0])
    assert rounded_reprs(large) == ["12.3457", "0.1", "250.0"]


@pytest.mark.parametrize(
    ("values", "first", "inverse"),
    [
        (["a", "b", "c"], [0, 1, 2], [0, 1, 2]),
        (["a", "b", "a", "a"], [0, 1], [0, 1, 0, 0]),
        # Equal in Python, not the same input: each is scored (and gets its status) alone.
        ([1, 1.0, True, 1], [0, 1, 2], [0, 1, 2, 0]),
        (["x", ["unhashable"], "x"], [0, 1, 2], [0, 1, 2]),
    ],
)
def test_first_occurrences_groups_repeated_inputs_by_value_and_type(values, first, inverse):
    from clustercls.predict import _first_occurrences

    got_first, got_inverse = _first_occurrences(values, None)
    assert got_first.tolist() == first
    assert got_inverse.tolist() == inverse


def test_first_occurrences_keeps_a_title_with_two_flags_apart() -> None:
    from clustercls.predict import _first_occurrences

    first, inverse = _first_occurrences(["a", "a", "a"], np.array([True, False, True]))
    assert first.tolist() == [0, 1]
    assert inverse.tolist() == [0, 1, 0]
