"""The policy lexicon: its file (data layer) and its feature transformer (code layer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from clustercls.lexicon import LexiconFeatures, english_plurals, load_lexicon, plural
from clustercls.policy import load_policy
from clustercls.text import normalize
from tests.conftest import POLICY_FILE, REPO


def _write(tmp_path, rows: list[str]) -> str:
    path = tmp_path / "lexicon.csv"
    path.write_text("# a comment\nterm,lang,concept,cluster,note\n" + "\n".join(rows) + "\n")
    return str(path)


@pytest.fixture
def small(tmp_path) -> LexiconFeatures:
    path = _write(
        tmp_path,
        [
            "tas,id,bag,fashion_textile,bags",
            "bag,en,bag,fashion_textile,bags",
            "tas bekal,id,lunch_bag,other,lunch bags are other",
            "kopi,id,coffee,food_beverage,coffee",
            "rak sepatu,id,shoe_rack,other,a shoe rack is not a shoe",
            "sepatu,id,shoe,fashion_textile,footwear",
            "tas sepatu,id,bag,fashion_textile,a shoe bag is a bag",
        ],
    )
    return LexiconFeatures(path=path).fit()


def _active(features: LexiconFeatures, text: str) -> set[str]:
    row = features.transform([text])
    return set(features.get_feature_names_out()[row.indices])


def test_longest_term_names_the_product(small) -> None:
    assert small.matches("tas bekal anak sekolah") == ["tas bekal"]
    assert _active(small, "tas bekal anak sekolah") == {
        "concept=lunch_bag",
        "cluster=other",
        "head_cluster=other",
    }
    assert _active(small, "rak sepatu 3 susun") == {
        "concept=shoe_rack",
        "cluster=other",
        "head_cluster=other",
    }


def test_one_concept_across_languages(small) -> None:
    assert _active(small, "tas wanita") == _active(small, "women bag")


def test_head_marks_the_first_term_only(small) -> None:
    active = _active(small, "kopi dan tas")
    assert "head_cluster=food_beverage" in active
    assert "head_cluster=fashion_textile" not in active
    assert {"cluster=food_beverage", "cluster=fashion_textile"} <= active


def test_options_drop_cluster_and_head_columns(tmp_path, small) -> None:
    concepts = LexiconFeatures(path=small.path, clusters=False, head=False).fit()
    assert _active(concepts, "kopi dan tas") == {"concept=coffee", "concept=bag"}
    assert not any(n.startswith("head_") for n in concepts.get_feature_names_out())


@pytest.mark.parametrize(
    ("word", "plural_form"),
    [
        ("sheet", "sheets"),
        ("box", "boxes"),
        ("brush", "brushes"),
        ("accessory", "accessories"),
        ("tray", "trays"),
    ],
)
def test_plural_of_an_english_word(word, plural_form) -> None:
    assert plural(word) == plural_form


def test_english_terms_also_match_in_the_plural(tmp_path) -> None:
    path = _write(
        tmp_path,
        [
            "felt sheet,en,craft_felt,craft,craft supplies",
            "shoe rack,en,shoe_rack,other,a shoe rack is not a shoe",
            "shoe racks,en,shoe_rack_set,other,the file's own row for the plural",
            "glass,en,glassware,other,kitchen goods",
            "tas,id,bag,fashion_textile,bags",
        ],
    )
    rows = english_plurals(load_lexicon(path).rows)
    made = rows.iloc[5:]
    # Indonesian terms and words already ending in "s" get no plural; the file's own
    # plural row is kept as it is.
    assert made["term"].tolist() == ["felt sheets"]
    assert made[["concept", "cluster"]].values.tolist() == [["craft_felt", "craft"]]
    with_plurals = LexiconFeatures(path=path, plurals=True).fit()
    without = LexiconFeatures(path=path).fit()
    assert with_plurals.matches("craft felt sheets isi") == ["felt sheets"]
    assert without.matches("craft felt sheets isi") == []
    assert _active(with_plurals, "shoe racks besi") == {
        "concept=shoe_rack_set",
        "cluster=other",
        "head_cluster=other",
    }
    # A model saved before the option existed was fitted without plurals, and says so.
    older = LexiconFeatures(path=path, plurals=True)
    del older.__dict__["plurals"]
    assert older.get_params()["plurals"] is False


def test_transform_shape_weight_and_no_state_change(small) -> None:
    before = dict(small.__dict__)
    matrix = small.transform(["kopi", "", "nothing known here", "tas bekal"])
    assert matrix.shape == (4, len(small.get_feature_names_out()))
    assert matrix.dtype == np.float32
    assert matrix.getnnz(axis=1).tolist() == [3, 0, 0, 3]
    assert set(matrix.data.tolist()) == {1.0}
    assert small.__dict__.keys() == before.keys()
    heavy = LexiconFeatures(path=small.path, weight=0.5).fit().transform(["kopi"])
    assert set(heavy.data.tolist()) == {0.5}


def test_follows_the_estimator_contract(small) -> None:
    fresh = clone(small)
    assert not hasattr(fresh, "terms_")
    assert fresh.fit() is fresh
    with pytest.raises(Exception, match="not fitted"):
        clone(small).transform(["kopi"])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["tas,id,bag,fashion_textile,x", "tas,id,bag2,fashion_textile,y"], "listed twice"),
        (["a b c d e,en,x,other,too long"], "more than 4 words"),
        ([",en,x,other,empty term"], "empty term"),
    ],
)
def test_bad_lexicon_files_are_refused(tmp_path, rows, message) -> None:
    with pytest.raises(ValueError, match=message):
        load_lexicon(_write(tmp_path, rows))


def test_missing_column_is_refused(tmp_path) -> None:
    path = tmp_path / "lexicon.csv"
    path.write_text("term,lang,cluster\ntas,id,fashion_textile\n")
    with pytest.raises(ValueError, match="concept"):
        load_lexicon(path)


# --- the shipped lexicon (data layer)


@pytest.mark.data
def test_shipped_lexicon_follows_the_policy() -> None:
    rows = load_lexicon().rows
    # Lexicon terms are training documents of their cluster: a name outside the policy
    # would become a class of its own.
    assert set(rows["cluster"]) <= set(load_policy(POLICY_FILE).clusters)
    assert set(rows["lang"]) <= {"id", "en", "any"}
    assert (rows["note"].str.strip() != "").all(), "every row names its policy line"
    # One concept, one cluster: a concept shared across languages cannot disagree.
    assert (rows.groupby("concept")["cluster"].nunique() == 1).all()


@pytest.mark.data
def test_shipped_terms_are_in_normalised_form() -> None:
    rows = load_lexicon().rows
    changed = [t for t in rows["term"] if normalize(t) != t]
    assert changed == []


@pytest.mark.data
def test_shipped_lexicon_decides_the_policy_hard_cases() -> None:
    features = LexiconFeatures().fit()
    cluster_of = {t: hit[2] for t, hit in features.terms_.items()}
    cases = {
        "botol minum": "other",
        "rak sepatu": "other",
        "tas bekal": "other",
        "kemeja": "fashion_textile",
        "kopi": "food_beverage",
        "air mineral": "food_beverage",
        "manik manik": "craft",
        "benang rajut": "craft",
        "hiasan dinding": "craft",
    }
    got = {t: cluster_of.get(t) for t in cases}
    assert got == cases
    frame = pd.DataFrame({"term": list(cases)})
    assert frame["term"].map(features.matches).map(len).eq(1).all()


def test_gap_matches_two_word_terms_with_a_word_between(tmp_path) -> None:
    path = _write(
        tmp_path,
        [
            "tas,id,bag,fashion_textile,bags",
            "tas bekal,id,lunch_bag,other,lunch bags are other",
            "tas anak,id,bag,fashion_textile,bags",
            "kopi,id,coffee,food_beverage,coffee",
            "kopi bubuk,id,coffee,food_beverage,coffee",
            "rak sepatu,id,shoe_rack,other,a shoe rack is not a shoe",
            "sepatu,id,shoe,fashion_textile,footwear",
            "baby clothes,en,baby_clothes,fashion_textile,clothing for babies",
            "dog clothes,en,pet_clothes,other,pet clothing is other",
        ],
    )
    gap = LexiconFeatures(path=path, gap=True).fit()
    plain = LexiconFeatures(path=path).fit()
    # A word between the two words of a term: the term, over a one-word term.
    assert gap.matches("rak kayu sepatu") == ["rak sepatu"]
    assert plain.matches("rak kayu sepatu") == ["sepatu"]
    assert gap.matches("kopi robusta bubuk") == ["kopi bubuk"]
    # A longer term written out at the first word or at the word between stays the
    # product; two words between are no match.
    assert gap.matches("tas bekal anak") == ["tas bekal"]
    assert gap.matches("baby dog clothes") == ["dog clothes"]
    assert gap.matches("rak besi hitam sepatu") == ["sepatu"]
    assert _active(gap, "rak kayu sepatu") == _active(gap, "rak sepatu")


def test_gap_match_yields_to_a_term_at_the_word_between(small) -> None:
    gap = clone(small).set_params(gap=True).fit()
    assert gap.matches("tas kulit sepatu") == ["tas sepatu"]
    assert gap.matches("tas rak sepatu") == ["tas", "rak sepatu"]


# --- many titles at once (code layer): the block path against the title-by-title scan

_WORDS = ["tas", "bekal", "bag", "kopi", "rak", "sepatu", "anak", "|", "x1", ""]


def _one_by_one(features: LexiconFeatures, texts: list[str]):
    import scipy.sparse as sp

    return sp.vstack([features.transform([t]) for t in texts], format="csr")


@settings(
    database=None,
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    titles=st.lists(
        st.lists(st.sampled_from(_WORDS), max_size=7).map(" ".join), min_size=17, max_size=40
    )
)
def test_many_titles_match_as_one_by_one(small, titles: list[str]) -> None:
    """Overlapping terms ("rak sepatu" then "sepatu"), repeats, empty titles and the
    block path's own break token inside a title give the same matrix as the scan of
    each title alone, with and without matches across a word (`gap`)."""
    for features in (small, clone(small).set_params(gap=True).fit()):
        many = features.transform(titles)
        alone = _one_by_one(features, titles)
        assert many.shape == alone.shape
        assert (many != alone).nnz == 0
        assert many.indptr.tolist() == alone.indptr.tolist()


@pytest.mark.parametrize("gap", [False, True])
def test_shipped_lexicon_matches_many_real_titles_as_one_by_one(gap: bool) -> None:
    features = LexiconFeatures(gap=gap).fit()
    titles = pd.read_csv(REPO / "data" / "sample_listings.csv")["title"].map(normalize).tolist()
    many = features.transform(titles)
    assert many.nnz > len(titles) // 2  # the sample names products the lexicon knows
    assert (many != _one_by_one(features, titles)).nnz == 0
