"""The prediction API the enforcement job imports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clustercls.predict import STATUSES

LABELS = ["craft", "fashion_textile", "food_beverage", "other"]


def test_import_surface() -> None:
    import clustercls

    assert callable(clustercls.load_model)
    with pytest.raises(AttributeError):
        clustercls.not_a_thing  # noqa: B018


def test_predict_columns_order_and_probabilities(tiny_model) -> None:
    titles = ["Kopi Asli Bali", "Kemeja Premium Jogja", "Charger Mini Solo", "Lukisan Klasik Garut"]
    out = tiny_model.predict(titles)
    assert list(out.columns) == [
        "cluster",
        "confidence",
        *[f"p_{c}" for c in LABELS],
        "decision",
        "reason",
        "status",
    ]
    assert len(out) == len(titles)
    assert out["cluster"].tolist() == ["food_beverage", "fashion_textile", "other", "craft"]
    probs = out[[f"p_{c}" for c in LABELS]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-3)
    np.testing.assert_allclose(out["confidence"], probs.max(axis=1), atol=1e-4)
    assert set(out["status"]) == {"ok"}
    # Order: reversing the input reverses the output.
    rev = tiny_model.predict(titles[::-1])
    assert rev["cluster"].tolist() == out["cluster"].tolist()[::-1]


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
        assert model._pool is not None and predict_module._WORKER_MODELS
    pd.testing.assert_frame_equal(parallel, serial)
    # Leaving the block stopped the workers and released the model; it still predicts.
    assert model._pool is None and not predict_module._WORKER_MODELS
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


def test_fast_probabilities_equal_scikit_learn(tiny_model) -> None:
    titles = [
        "Kopi Asli Bali",
        "Kemeja Premium Jogja",
        "zzz",
        "Lukisan Klasik Garut",
        "Charger Mini Solo",
    ]
    assert tiny_model._fast is not None
    normalised = list(tiny_model._normalizer.transform(titles))
    features = tiny_model._features.transform(normalised)
    np.testing.assert_allclose(
        tiny_model._fast.predict_proba(features),
        tiny_model._classifier.predict_proba(features),
        rtol=0,
        atol=1e-12,
    )
    # Block by block (word, then char) gives the same as the stacked matrix.
    fast, word = tiny_model._proba(normalised)
    np.testing.assert_allclose(fast, tiny_model.pipeline.predict_proba(titles), rtol=0, atol=1e-12)
    assert word.shape[1] == len(tiny_model._features.transformer_list[0][1].vocabulary_)


def test_hstack_and_normalise_shortcuts_match_the_pipeline(tiny_model) -> None:
    import scipy.sparse as sp

    from clustercls.predict import _hstack_csr

    titles = [
        "Kopi Asli Bali",
        "",
        "READY STOCK k3m3ja b a t i k",
        "Lukisan Klasik Garut",
        "\u200b",
    ]
    normalised = tiny_model._normalize(titles)
    assert list(normalised) == list(tiny_model._normalizer.transform(titles))
    blocks = [step.transform(list(normalised)) for _, step in tiny_model._features.transformer_list]
    ours, scipy_ = _hstack_csr(blocks), sp.hstack(blocks, format="csr")
    assert (ours != scipy_).nnz == 0 and ours.shape == scipy_.shape
    np.testing.assert_allclose(
        tiny_model._proba(list(normalised))[0], tiny_model.pipeline.predict_proba(titles), atol=1e-6
    )


@pytest.mark.parametrize(
    ("method", "ensemble"),
    [("sigmoid", True), ("sigmoid", False), ("temperature", True), ("temperature", False)],
)
def test_fast_calibrated_probabilities_equal_scikit_learn(method, ensemble) -> None:
    import scipy.sparse as sp
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    from clustercls.predict import _FastCalibratedLinear

    rng = np.random.default_rng(0)
    labels = ["craft", "fashion_textile", "food_beverage", "other"]
    y = np.array(labels)[rng.integers(0, 4, 400)]
    dense = rng.random((400, 30)) * (rng.random((400, 30)) < 0.2)
    dense[:, :4] += (y[:, None] == np.array(labels)) * 0.5
    x = sp.csr_matrix(dense, dtype=np.float32)
    classifier = CalibratedClassifierCV(
        LinearSVC(C=0.5), method=method, cv=3, ensemble=ensemble
    ).fit(x, y, sample_weight=rng.random(400) + 0.5)
    fast = _FastCalibratedLinear.build(classifier, labels)
    assert fast is not None
    np.testing.assert_allclose(
        fast.predict_proba(x), classifier.predict_proba(x), rtol=0, atol=1e-12
    )
    # Column blocks give the same as the whole matrix.
    blocks = [x[:, :12].tocsr(), x[:, 12:].tocsr()]
    np.testing.assert_allclose(fast.predict_proba(blocks), classifier.predict_proba(x), atol=1e-12)


def test_softmax_equals_scipy_bit_for_bit() -> None:
    from scipy.special import softmax

    from clustercls.predict import _softmax

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
        "status": np.full(n, "ok", dtype=object),
    }
    text = ("cluster", "decision", "reason", "status")
    got = _frame(columns, pd.Index(list(columns)), text)
    if n:
        pd.testing.assert_frame_equal(got, pd.DataFrame(columns))
    else:
        # pandas infers object for empty text columns; an empty call keeps one schema.
        one = pd.DataFrame({k: ["x"] if k in text else [0.5] for k in columns})
        assert got.columns.tolist() == list(columns) and len(got) == 0
        assert got.dtypes.tolist() == one.dtypes.tolist()
    assert got["reason"].tolist() == columns["reason"]


def test_reason_ngrams_rank_exactly_at_any_row(tiny_model, monkeypatch) -> None:
    import scipy.sparse as sp

    names = np.array(["aa", "bb", "cc", "dd"], dtype=object)
    monkeypatch.setattr(
        tiny_model, "_explainer", lambda: (names, np.ones((len(tiny_model.labels), 4)))
    )
    # Two contributions one float step apart, a small one and a negative one.
    data = np.array([0.06759214587619765, 0.06759214587619766, 0.01, -0.5])
    rows = 200_000
    far = sp.csr_matrix((data, np.arange(4), np.r_[np.zeros(rows, dtype=int), 4]), shape=(rows, 4))
    alone = sp.csr_matrix((data, np.arange(4), [0, 4]), shape=(1, 4))
    best = np.zeros(rows, dtype=int)
    # A title's reason must not depend on where it sits in a call.
    assert tiny_model._top_ngram_lists(far, best, k=2)[-1] == "'bb', 'aa'"
    assert tiny_model._top_ngram_lists(alone, best[:1], k=2) == ["'bb', 'aa'"]
    assert tiny_model._top_ngram_lists(alone, best[:1], k=4) == ["'bb', 'aa', 'cc'"]
