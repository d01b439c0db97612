"""Data layer: the dataset build, its error messages, and checks on the built dataset."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from clustercls.data import (
    DATASET_COLUMNS,
    DataError,
    build_dataset,
    check_labels,
    load_dataset,
    load_mapping,
    load_policy_probes,
    mapping_agreement,
    near_duplicate_key,
    write_dataset,
)
from clustercls.policy import load_policy
from clustercls.text import normalize
from tests.conftest import (
    HAND_LABELLED,
    POLICY_FILE,
    REPO,
    SHARED_SOURCES,
    needs_shared,
    tiny_config,
    write_tiny_probes,
)

CLUSTERS = load_policy(POLICY_FILE).clusters


def check_dataset(frame: pd.DataFrame) -> None:
    """The invariants every processed dataset must hold."""
    assert tuple(frame.columns[: len(DATASET_COLUMNS)]) == DATASET_COLUMNS
    assert set(frame["cluster"]) <= set(CLUSTERS)
    assert set(frame["split"]) == {"train", "test"}
    assert frame["id"].is_unique
    assert frame["title"].map(normalize).is_unique, "exact duplicates survived"
    splits_per_group = frame.groupby("dup_group")["split"].nunique()
    assert (splits_per_group == 1).all(), "a near-duplicate group crosses splits"
    assert frame["title"].str.strip().ne("").all()


def test_near_duplicate_key_ignores_size_colour_and_code() -> None:
    a = near_duplicate_key(normalize("Kemeja Batik Pria Parang Hitam XL KB-2231"))
    b = near_duplicate_key(normalize("Kemeja Batik Pria Parang Putih M KB-2232"))
    c = near_duplicate_key(normalize("Kemeja Batik Wanita Parang"))
    assert a == b
    assert a != c


def test_build_tiny_dataset(tmp_path, tiny_sources) -> None:
    config = tiny_config(tmp_path, tiny_sources, None)
    result = build_dataset(config.data)
    check_dataset(result.frame)
    assert set(result.frame["source"]) == {"tokopedia_umkm", "flipkart", "bigbasket"}
    assert set(result.frame["cluster"]) == set(CLUSTERS)
    report = result.report
    assert report["rows_kept"] == len(result.frame)
    assert report["rows_read"] == report["rows_kept"] + sum(report["dropped"].values())
    assert report["counts"]["bigbasket"]["food_beverage"] > 0
    paths = write_dataset(result, tmp_path / "out")
    reread = load_dataset(paths["dataset"])
    pd.testing.assert_frame_equal(reread, result.frame, check_dtype=False)
    assert "Rows dropped" in paths["report_md"].read_text()
    dropped = pd.read_csv(paths["dropped"])
    assert len(dropped) == sum(report["dropped"].values())
    assert set(dropped["reason"]) == set(report["dropped"])


def test_build_is_deterministic(tmp_path, tiny_sources) -> None:
    config = tiny_config(tmp_path, tiny_sources, None)
    assert (
        build_dataset(config.data).report["fingerprint"]
        == build_dataset(config.data).report["fingerprint"]
    )


def test_conflicting_labels_majority_and_tie(tmp_path, tiny_sources) -> None:
    umkm = pd.read_csv(tiny_sources / "tokopedia_umkm.csv")
    extra = pd.DataFrame(
        {
            # Twice as food, once as craft: majority keeps food.
            "title": [
                "Kopi Luwak Gayo Asli",
                "kopi luwak gayo asli!",
                "KOPI LUWAK GAYO ASLI",
                # Once food, once craft: a tie, dropped.
                "Miniatur Kue Tart Hias",
                "miniatur kue tart hias",
            ],
            "category": [
                "makanan-minuman/minuman/kopi-bubuk",
                "makanan-minuman/minuman/kopi-biji",
                "rumah-tangga/dekorasi/hiasan-dinding",
                "makanan-minuman/kue/kue-basah",
                "rumah-tangga/dekorasi/hiasan-dinding",
            ],
        }
    )
    pd.concat([umkm, extra]).to_csv(tiny_sources / "tokopedia_umkm.csv", index=False)
    result = build_dataset(tiny_config(tmp_path, tiny_sources, None).data)
    frame = result.frame.assign(norm=result.frame["title"].map(normalize))
    assert frame.loc[frame["norm"] == normalize("Kopi Luwak Gayo Asli"), "cluster"].tolist() == [
        "food_beverage"
    ]
    assert not (frame["norm"] == normalize("Miniatur Kue Tart Hias")).any()
    assert result.report["conflicts"]["dropped_as_ties"] >= 1
    assert result.report["dropped"]["conflicting labels, tie"] == 2
    ties = result.dropped[result.dropped["reason"] == "conflicting labels, tie"]
    assert sorted(ties["row"]) == [len(umkm) + 5, len(umkm) + 6]  # file lines of the two rows


def test_hand_labelled_titles_are_kept_out(tmp_path, tiny_sources, tiny_hand_labelled) -> None:
    hand = pd.read_csv(tiny_hand_labelled)
    umkm = pd.read_csv(tiny_sources / "tokopedia_umkm.csv")
    leaked = pd.DataFrame(
        {"title": hand["title"].head(3), "category": "fashion-pria/atasan-pria/kemeja-pria"}
    )
    pd.concat([umkm, leaked]).to_csv(tiny_sources / "tokopedia_umkm.csv", index=False)
    result = build_dataset(tiny_config(tmp_path, tiny_sources, tiny_hand_labelled).data)
    assert not set(result.frame["title"].map(normalize)) & set(hand["title"].map(normalize))
    assert sum(v for k, v in result.report["dropped"].items() if "hand-labelled" in k) >= 3


def test_policy_probes_are_kept_out(tmp_path, tiny_sources) -> None:
    probes = pd.read_csv(write_tiny_probes(tmp_path / "probes.csv"))
    umkm = pd.read_csv(tiny_sources / "tokopedia_umkm.csv")
    leaked = pd.DataFrame(
        {"title": probes["title"].head(3), "category": "fashion-pria/atasan-pria/kemeja-pria"}
    )
    pd.concat([umkm, leaked]).to_csv(tiny_sources / "tokopedia_umkm.csv", index=False)
    config = tiny_config(tmp_path, tiny_sources, None, policy_probes=tmp_path / "probes.csv")
    result = build_dataset(config.data)
    assert not set(result.frame["title"].map(normalize)) & set(probes["title"].map(normalize))
    assert result.report["dropped"]["in policy probes (or its near-duplicate)"] >= 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cluster": "toys"}, "label not in the policy"),
        ({"part": "train"}, "part not one of dev, held"),
        ({"note": " "}, "no note naming the policy line"),
        ({"error_class": ""}, "no error class"),
        ({"title": "Kemeja Flanel Pria"}, "title listed twice"),
    ],
)
def test_policy_probes_file_is_checked(tmp_path, change, message) -> None:
    rows = pd.DataFrame(
        {
            "title": ["Kemeja Flanel Pria", "Rak Sepatu Besi"],
            "cluster": ["fashion_textile", "other"],
            "error_class": ["brand_code", "lookalike"],
            "part": ["dev", "held"],
            "note": ["Clothing", "a shoe rack is not a shoe"],
        }
    )
    assert len(load_policy_probes(_csv(tmp_path, rows), CLUSTERS)) == 2
    for column, value in change.items():
        rows.loc[1, column] = value
    with pytest.raises(DataError, match=message):
        load_policy_probes(_csv(tmp_path, rows), CLUSTERS)
    with pytest.raises(DataError, match="missing columns"):
        load_policy_probes(_csv(tmp_path, rows.drop(columns="note")), CLUSTERS)


def _csv(folder: Path, frame: pd.DataFrame) -> Path:
    path = folder / "probes.csv"
    frame.to_csv(path, index=False)
    return path


def test_the_policy_probes_cover_both_parts_and_every_kind() -> None:
    """The project's probes: labels of the policy, and every kind of error in both parts
    (the loader checks notes, parts and repeats)."""
    probes = load_policy_probes(REPO / "data/policy_probes.csv", CLUSTERS)
    assert probes is not None
    by_part = probes.groupby("part")["error_class"].agg(set)
    assert set(by_part.index) == {"dev", "held"}
    assert by_part["dev"] == by_part["held"]
    assert set(probes["cluster"]) == set(CLUSTERS)


def test_corrections_are_applied_last(tmp_path, tiny_sources) -> None:
    config = tiny_config(tmp_path, tiny_sources, None)
    before = build_dataset(config.data).frame
    target = before[before["cluster"] == "craft"].iloc[0]
    pd.DataFrame(
        [
            {
                "id": target["id"],
                "title": target["title"],
                "given_label": "craft",
                "verdict": "relabel",
                "corrected_label": "other",
                "reviewer": "t",
                "date": "2026-11-27",
                "note": "",
            },
            {
                "id": "nope",
                "title": "not a listing at all",
                "given_label": "other",
                "verdict": "confirm",
                "corrected_label": "",
                "reviewer": "t",
                "date": "2026-11-27",
                "note": "",
            },
        ]
    ).to_csv(config.data.corrections, index=False)
    after = build_dataset(config.data)
    assert after.frame.set_index("id").loc[target["id"], "cluster"] == "other"
    assert after.report["corrections"] == {
        "rows": 2,
        "relabelled": 1,
        "confirmed": 0,
        "skipped": 0,
        "unmatched": 1,
    }


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: (d / "mystery_shop.csv").write_text("title,category\nX,Y\n"),
            r"mystery_shop\.csv: unknown source file",
        ),
        (
            lambda d: (d / "flipkart.csv").write_text("title,category\n"),
            r"flipkart\.csv: empty source",
        ),
        (
            lambda d: (d / "bigbasket.csv").write_text("name,category\nX,Beverages\n"),
            r"bigbasket\.csv: missing columns \['title'\]",
        ),
        (
            lambda d: (d / "tokopedia_2019.csv").write_text(
                "title,category\nKaos,fashion\nRoket,planet-mars\n"
            ),
            r"tokopedia_2019\.csv: 1 rows have a category with no mapping .*row 3: 'planet-mars'",
        ),
    ],
    ids=["unknown-file", "empty-source", "missing-column", "unmapped-category"],
)
def test_build_errors_name_file_and_row(tmp_path, tiny_sources, mutate, expected) -> None:
    mutate(tiny_sources)
    with pytest.raises(DataError, match=expected):
        build_dataset(tiny_config(tmp_path, tiny_sources, None).data)


def test_label_outside_policy_names_file_and_line(tmp_path, tiny_sources) -> None:
    bad_map = tmp_path / "category_map.csv"
    bad_map.write_text("source,category,cluster,note\n# a comment\n*,*,electronics,oops\n")
    config = tiny_config(tmp_path, tiny_sources, None, category_map=bad_map)
    with pytest.raises(
        DataError, match=r"category_map\.csv:3: label 'electronics' is not in the policy"
    ):
        build_dataset(config.data)


def test_bad_correction_is_refused(tmp_path, tiny_sources) -> None:
    config = tiny_config(tmp_path, tiny_sources, None)
    config.data.corrections.write_text(
        "id,title,given_label,verdict,corrected_label,reviewer,date,note\nx,t,other,relabel,toys,r,2026-11-27,\n"
    )
    with pytest.raises(
        DataError, match=r"corrections\.csv:2: corrected_label 'toys' is not in the policy"
    ):
        build_dataset(config.data)


@pytest.mark.data
def test_committed_corrections_file_has_the_header() -> None:
    header = (REPO / "data/corrections.csv").read_text().splitlines()[0]
    assert header == "id,title,given_label,verdict,corrected_label,reviewer,date,note"


@pytest.mark.data
@needs_shared()
def test_real_dataset_checks(real_dataset) -> None:
    """Schema, label set and split leakage on the dataset built from the shared sources."""
    check_dataset(real_dataset)
    assert set(real_dataset["source"]) == {p.stem for p in SHARED_SOURCES.glob("*.csv")}
    counts = real_dataset["cluster"].value_counts()
    assert (counts > 1000).all(), counts
    hand = pd.read_csv(HAND_LABELLED)
    assert not set(real_dataset["title"].map(normalize)) & set(hand["title"].map(normalize))
    probes = pd.read_csv(REPO / "data/policy_probes.csv")
    assert not set(real_dataset["title"].map(normalize)) & set(probes["title"].map(normalize))


def test_a_dataset_must_hold_exactly_the_policy_clusters() -> None:
    frame = pd.DataFrame({"cluster": ["craft", "other", "toys"]})
    with pytest.raises(DataError, match=r"d\.parquet: labels \['toys'\] are not in the policy"):
        check_labels(frame, ("craft", "other"), "d.parquet")
    with pytest.raises(DataError, match=r"clusters \['food'\] have no rows"):
        check_labels(frame, ("craft", "food", "other", "toys"), "d.parquet")
    check_labels(frame, ("craft", "other", "toys"), "d.parquet")


def test_mapping_agreement_counts_protected_by_the_policy(tmp_path) -> None:
    cmap = tmp_path / "category_map.csv"
    cmap.write_text("source,category,cluster,note\ns,toy,toys,n\ns,gadget,other,n\ns,art,craft,n\n")
    rules = tmp_path / "title_rules.csv"
    rules.write_text("source,category,pattern,cluster,note\n")
    mapping = load_mapping(cmap, rules, ("craft", "other", "toys"))
    hand = pd.DataFrame(
        {
            "source": "s",
            "category": ["toy", "gadget", "art"],
            "title": ["a", "b", "c"],
            "cluster": ["other", "toys", "craft"],
        }
    )
    result = mapping_agreement(mapping, hand, protected=("craft",))
    # toys and other swap, but neither is protected: only the exact label disagrees.
    assert result["accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert result["protected_vs_other_accuracy"] == 1.0
