"""Features: the fast char_wb path must give exactly scikit-learn's matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from clustercls.features import FastTfidfVectorizer, char_wb_ngrams
from clustercls.text import PURE_PYTHON_ENV, normalize
from tests.conftest import SHARED_SOURCES, make_titles, needs_shared, reset_compiled_parts

EDGE = ["", "a", "ab", "ab xyz", "x y z", "kopi", "kopi bubuk 2in1 unitmass", "aaaaaaaaaaaa bb"]


@pytest.fixture(autouse=True, params=["compiled", "python"])
def counting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Every test here runs with the compiled char counter and with its Python twins."""
    from clustercls import features

    reset_compiled_parts()
    if request.param == "python":
        monkeypatch.setenv(PURE_PYTHON_ENV, "1")
    elif features._compiled_char_counter() is None:
        pytest.skip("clustercls._ngrams is not built")
    yield request.param
    monkeypatch.delenv(PURE_PYTHON_ENV, raising=False)
    reset_compiled_parts()


def _pair(train: list[str], ngram_range=(2, 5)):
    kwargs = dict(
        analyzer="char_wb",
        ngram_range=ngram_range,
        lowercase=False,
        min_df=1,
        sublinear_tf=True,
        dtype=np.float32,
    )
    return TfidfVectorizer(**kwargs).fit(train), FastTfidfVectorizer(**kwargs).fit(train)


def test_char_wb_ngrams_match_scikit_learn() -> None:
    reference = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), lowercase=False
    ).build_analyzer()
    for text in EDGE:
        assert char_wb_ngrams(text, (2, 5)) == reference(text)


@pytest.mark.parametrize("ngram_range", [(2, 5), (3, 5), (2, 2), (3, 7), (4, 9), (1, 3)])
def test_fast_transform_is_identical(ngram_range) -> None:
    train = [
        normalize(t)
        for c in ("craft", "other", "food_beverage")
        for t in make_titles(c, 60, seed=1)
    ]
    test = [normalize(t) for t in make_titles("fashion_textile", 40, seed=2)] + EDGE + train[:20]
    slow, fast = _pair(train + EDGE, ngram_range)
    assert slow.vocabulary_ == fast.vocabulary_
    a, b = slow.transform(test), fast.transform(test)
    assert a.shape == b.shape
    assert abs(a - b).max() <= 1e-6
    assert a.nnz == b.nnz


def test_falls_back_on_text_outside_the_alphabet() -> None:
    slow, fast = _pair(["kopi bubuk", "kemeja batik"])
    odd = ["kopi é bubuk", "KOPI", "kopi\tbubuk", " kopi  bubuk ", "  "]
    assert abs(slow.transform(odd) - fast.transform(odd)).max() <= 1e-6
    assert slow.transform(odd).nnz == fast.transform(odd).nnz


@needs_shared()
def test_identical_on_real_titles() -> None:
    frames = [
        pd.read_csv(p, dtype=str, keep_default_na=False).sample(400, random_state=0, replace=True)
        for p in sorted(SHARED_SOURCES.glob("*.csv"))
    ]
    titles = [normalize(t) for t in pd.concat(frames)["title"]]
    slow, fast = _pair(titles[::2])
    assert abs(slow.transform(titles[1::2]) - fast.transform(titles[1::2])).max() <= 1e-6


@pytest.mark.parametrize("ngram_range", [(1, 2), (1, 1), (2, 3)])
def test_fast_word_counts_are_identical(ngram_range) -> None:
    from clustercls.text import tokenize

    train = [
        normalize(t)
        for c in ("craft", "other", "food_beverage")
        for t in make_titles(c, 60, seed=3)
    ]
    test = (
        [normalize(t) for t in make_titles("fashion_textile", 40, seed=4)]
        + EDGE
        + train[:20]
        + ["dan yang kopi dan"]
    )
    kwargs = dict(
        analyzer="word",
        tokenizer=tokenize,
        token_pattern=None,
        lowercase=False,
        ngram_range=ngram_range,
        min_df=1,
        dtype=np.float32,
    )
    slow, fast = (
        TfidfVectorizer(**kwargs).fit(train + test),
        FastTfidfVectorizer(**kwargs).fit(train + test),
    )
    assert abs(slow.transform(test) - fast.transform(test)).max() <= 1e-6
    # Text that is not normalised takes scikit-learn's path and still agrees.
    odd = ["Kopi Bubuk", " kopi", "kopi  bubuk"]
    assert abs(slow.transform(odd) - fast.transform(odd)).max() <= 1e-6


def _fit_kwargs(analyzer: str, ngram_range, **limits) -> dict:
    from clustercls.text import tokenize

    kwargs = dict(
        analyzer=analyzer,
        lowercase=False,
        ngram_range=ngram_range,
        sublinear_tf=True,
        dtype=np.float32,
        **limits,
    )
    if analyzer == "word":
        kwargs.update(tokenizer=tokenize, token_pattern=None)
    return kwargs


def _fit_both(titles: list[str], analyzer: str, ngram_range, **limits):
    kwargs = _fit_kwargs(analyzer, ngram_range, **limits)
    slow, fast = TfidfVectorizer(**kwargs), FastTfidfVectorizer(**kwargs)
    return slow, slow.fit_transform(titles), fast, fast.fit_transform(titles)


def _assert_same_fit(slow, a, fast, b) -> None:
    assert fast.vocabulary_ == slow.vocabulary_
    np.testing.assert_array_equal(fast.idf_, slow.idf_)
    # Entry for entry, in the same order within each row: the classifier sums a row in
    # stored order, so only this makes the fitted model identical.
    for part in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(b, part), getattr(a, part))


@pytest.mark.parametrize(
    ("analyzer", "ngram_range"),
    [
        ("char_wb", (2, 5)),
        ("char_wb", (3, 5)),
        ("char_wb", (2, 7)),
        ("word", (1, 2)),
        ("word", (1, 1)),
        ("word", (2, 3)),
    ],
)
@pytest.mark.parametrize("limits", [{"min_df": 1}, {"min_df": 2, "max_features": 300}])
def test_fast_fit_is_identical_down_to_the_order_of_entries(analyzer, ngram_range, limits) -> None:
    titles = [
        normalize(t)
        for c in ("craft", "fashion_textile", "other", "food_beverage")
        for t in make_titles(c, 80, seed=5)
    ] + [*EDGE, "dan yang kopi dan", "dan", "kopi kopi kopi bubuk kopi"]
    slow, a, fast, b = _fit_both(titles, analyzer, ngram_range, **limits)
    assert fast._fit_counts(titles) is not None  # the numpy path, not a fallback
    _assert_same_fit(slow, a, fast, b)


@pytest.mark.parametrize("analyzer", ["char_wb", "word"])
def test_fast_fit_falls_back_and_fails_alike(analyzer) -> None:
    odd = ["Kopi Bubuk", " kopi", "kopi  bubuk", "kemeja batik"]
    slow, a, fast, b = _fit_both(odd, analyzer, (2, 4) if analyzer == "char_wb" else (1, 2))
    assert fast._fit_counts(odd) is None  # not normalised: scikit-learn counts
    _assert_same_fit(slow, a, fast, b)
    # Nothing to count: the numpy path stands aside and scikit-learn's error is raised.
    empty = ["", "dan"] if analyzer == "word" else ["", ""]
    kwargs = _fit_kwargs(analyzer, (1, 2) if analyzer == "word" else (2, 4))
    assert FastTfidfVectorizer(**kwargs)._fit_counts(empty) is None
    for vectorizer in (TfidfVectorizer(**kwargs), FastTfidfVectorizer(**kwargs)):
        with pytest.raises(ValueError, match="empty vocabulary"):
            vectorizer.fit(empty)


@needs_shared()
@pytest.mark.parametrize("analyzer", ["char_wb", "word"])
def test_fast_fit_is_identical_on_real_titles(analyzer) -> None:
    frames = [
        pd.read_csv(p, dtype=str, keep_default_na=False).sample(300, random_state=1, replace=True)
        for p in sorted(SHARED_SOURCES.glob("*.csv"))
    ]
    titles = [normalize(t) for t in pd.concat(frames)["title"]]
    ngram_range = (2, 5) if analyzer == "char_wb" else (1, 2)
    _assert_same_fit(*_fit_both(titles, analyzer, ngram_range, min_df=2, max_features=5000))


@pytest.mark.parametrize("analyzer", ["char_wb", "word"])
def test_one_title_and_many_titles_take_different_paths_to_the_same_rows(analyzer) -> None:
    from clustercls.text import tokenize

    titles = [normalize(t) for c in ("craft", "other") for t in make_titles(c, 40, seed=5)]
    kwargs = (
        dict(analyzer="char_wb", ngram_range=(2, 5))
        if analyzer == "char_wb"
        else dict(analyzer="word", tokenizer=tokenize, token_pattern=None, ngram_range=(1, 3))
    )
    for dtype in (np.float64, np.float32):
        fast = FastTfidfVectorizer(
            lowercase=False, min_df=1, sublinear_tf=True, dtype=dtype, **kwargs
        )
        fast.fit(titles)
        many = fast.transform(titles + EDGE)
        for i, title in enumerate(titles[:10] + EDGE):
            row = i if i < 10 else len(titles) + i - 10
            # The same arithmetic on every path: a title's weights do not depend on
            # the call it came in, to the last bit.
            alone = fast.transform([title])
            assert alone.dtype == dtype
            assert (alone != many[row]).nnz == 0


def test_lookup_tables_are_not_pickled_and_rebuild_after_loading(counting) -> None:
    import pickle

    titles = [normalize(t) for t in make_titles("food_beverage", 60, seed=6)]
    slow, fast = _pair(titles)
    fast.transform(titles)  # builds and caches the lookup tables
    fast.transform(titles[:1])  # and, in Python, the per-word columns of small calls
    assert fast._lookup() is not None
    assert counting == "compiled" or fast._word_cache[2]
    blob = pickle.dumps(fast)
    # The dense tables alone are megabytes; the pickle holds the vocabulary only.
    assert len(blob) < len(pickle.dumps(slow)) * 1.1
    loaded = pickle.loads(blob)
    assert not hasattr(loaded, "_lookup_cache") and not hasattr(loaded, "_word_cache")
    assert abs(loaded.transform(titles) - slow.transform(titles)).max() <= 1e-6


def test_small_calls_give_the_same_rows_with_a_full_word_cache(monkeypatch, counting) -> None:
    import clustercls.features as features_module

    if counting == "compiled":
        pytest.skip("the word cache serves the Python counting of small calls")

    titles = [normalize(t) for c in ("craft", "food_beverage") for t in make_titles(c, 30, seed=8)]
    slow, fast = _pair(titles)
    monkeypatch.setattr(features_module, "_WORD_CACHE_SIZE", 3)
    for title in titles[:12] + titles[:12]:  # second round: cached and uncached words mixed
        assert abs(fast.transform([title]) - slow.transform([title])).max() <= 1e-6
    assert len(fast._word_cache[2]) == 3
    assert abs(fast.transform(titles[:5]) - slow.transform(titles[:5])).max() <= 1e-6
    # The cache belongs to one n-gram range: a changed setting is not served stale columns.
    fast.set_params(ngram_range=(2, 3))
    slow.set_params(ngram_range=(2, 3))
    assert abs(fast.transform(titles[:1]) - slow.transform(titles[:1])).max() <= 1e-6


def test_compiled_counts_equal_both_python_paths_entry_for_entry(counting) -> None:
    if counting != "compiled":
        pytest.skip("compares the compiled counter with the Python paths")
    train = [normalize(t) for c in ("craft", "other") for t in make_titles(c, 60, seed=3)]
    test = [normalize(t) for t in make_titles("food_beverage", 40, seed=4)] + EDGE + train
    for ngram_range in [(2, 5), (3, 5), (2, 3), (3, 4)]:
        _, fast = _pair(train + EDGE, ngram_range)
        compiled = fast._count_chars_compiled(test)
        numpy_path = fast._count_chars(test, fast._lookup())
        few = fast._count_few_chars(test[:16])
        for expected in (numpy_path, few):
            rows = expected.shape[0]
            assert (compiled.indptr[: rows + 1] == expected.indptr).all()
            end = expected.indptr[-1]
            assert (compiled.indices[:end] == expected.indices).all()
            assert (compiled.data[:end] == expected.data).all()
    # Beyond its tables (n > 5) the compiled counter stands aside.
    _, wide = _pair(train, (3, 7))
    assert wide._count_chars_compiled(test) is None


def test_compiled_counter_refuses_tables_of_another_vocabulary(counting) -> None:
    if counting != "compiled":
        pytest.skip("checks the compiled counter's guards")
    from clustercls._ngrams import count_char_wb

    _, fast = _pair(["abc abd xyz"] * 3, (2, 3))
    index = fast._lookup()
    tables = (index.dense[2], index.dense[3])

    def count(n_features: int, tables=tables):
        outputs = np.empty(2, np.int64), np.empty(64, np.int32), np.empty(64, np.int32)
        return count_char_wb(["abc xyz"], 2, 3, tables, n_features, *outputs)

    assert count(len(fast.vocabulary_)) > 0
    # Columns beyond the vocabulary (stale tables) hand back to Python instead of writing
    # past the end of the counter's arrays.
    assert count(2) is None
    with pytest.raises(ValueError, match="int32"):
        count(len(fast.vocabulary_), (tables[0].astype(np.float32), tables[1]))
    with pytest.raises(ValueError, match="wrong size"):
        count(len(fast.vocabulary_), (tables[0][:-1], tables[1]))


def test_non_text_documents_fail_alike_on_every_path() -> None:
    _, fast = _pair(["kopi bubuk", "kemeja batik"])
    with pytest.raises(AttributeError):
        fast.transform(["kopi", None])
