"""Batch scoring of files: lossless, ordered, atomic, in all three formats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from clustercls.batch import ADDED_COLUMNS, InputError, predict_file

# The output contract of the file jobs, written out: a Parquet file scored from a CSV
# (whose columns are read as text), column by column with its Arrow type.
GOLDEN_FILE_COLUMNS = [
    ("listing_id", "large_string"),
    ("title", "large_string"),
    ("is_cross_border", "large_string"),
    ("price", "large_string"),
    ("cluster", "large_string"),
    ("confidence", "double"),
    ("decision", "large_string"),
    ("reason", "large_string"),
    ("top_ngrams", "large_string"),
    ("familiarity", "double"),
    ("unfamiliar", "bool"),
    ("status", "large_string"),
    ("model_version", "large_string"),
    ("policy_version", "large_string"),
]

HOSTILE = pd.DataFrame(
    {
        "listing_id": ["007", "008", "009", "010", "011", "012", "013"],
        "title": [
            "Kopi Asli Bali",
            "",
            "   ",
            "\u200b",
            "Kemeja Premium Jogja",
            "x" * 5000,
            "Lukisan Klasik Garut",
        ],
        "is_cross_border": ["true", "true", "false", "1", "no", "yes", "TRUE"],
        "price": ["10", "20", "30", "40", "50", "60", "70"],
    }
)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True, dtype=False)


@pytest.mark.parametrize("in_ext", [".csv", ".parquet", ".jsonl"])
@pytest.mark.parametrize("out_ext", [".csv", ".parquet", ".jsonl"])
def test_every_row_once_in_order_with_columns(tiny_model, tmp_path, in_ext, out_ext) -> None:
    src = _write(HOSTILE, tmp_path / f"in{in_ext}")
    dst = tmp_path / f"out{out_ext}"
    summary = predict_file(tiny_model, src, dst, chunk_size=3)
    out = _read(dst)
    assert summary.rows == len(HOSTILE) == len(out)
    assert list(out.columns) == [*HOSTILE.columns, *ADDED_COLUMNS]
    assert out["listing_id"].astype(str).str.zfill(3).tolist() == HOSTILE["listing_id"].tolist()
    assert out["status"].tolist() == [
        "ok",
        "empty_title",
        "empty_title",
        "empty_title",
        "ok",
        "truncated",
        "ok",
    ]
    assert out["decision"].iloc[1] == "review"
    assert out["decision"].iloc[2] == "allow"  # domestic seller, even with an empty title
    assert out["decision"].iloc[4] == "allow"  # is_cross_border = no
    assert (out["model_version"] == tiny_model.version).all()
    assert (out["policy_version"] == tiny_model.policy_version).all()
    assert not list(tmp_path.glob(".out*"))  # no temporary file left


def test_output_has_the_golden_columns_and_types(tiny_model, tmp_path) -> None:
    src = _write(HOSTILE, tmp_path / "in.csv")
    predict_file(tiny_model, src, tmp_path / "out.parquet", chunk_size=3)
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert [(f.name, str(f.type)) for f in schema] == GOLDEN_FILE_COLUMNS
    header = predict_file(tiny_model, src, tmp_path / "out.csv")
    assert header.rows == len(HOSTILE)
    first = (tmp_path / "out.csv").read_text().splitlines()[0].split(",")
    assert first == [name for name, _ in GOLDEN_FILE_COLUMNS]
    out = _read(tmp_path / "out.csv")
    assert set(out["unfamiliar"]) <= {"True", "False"}
    assert json.loads(out["top_ngrams"].iloc[0])[0][0] == "kopi"


def test_empty_input_gives_empty_output_with_header(tiny_model, tmp_path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("title,listing_id\n")
    dst = tmp_path / "out.csv"
    assert predict_file(tiny_model, src, dst).rows == 0
    assert dst.read_text().splitlines()[0].split(",") == ["title", "listing_id", *ADDED_COLUMNS]
    # An empty Parquet output has the added columns' own types.
    predict_file(tiny_model, src, tmp_path / "out.parquet")
    types = {f.name: str(f.type) for f in pq.read_schema(tmp_path / "out.parquet")}
    assert (types["confidence"], types["unfamiliar"]) == ("double", "bool")


def test_undecodable_bytes_become_invalid_text(tiny_model, tmp_path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(b"title\nKopi Asli Bali\nKopi \xff\xfe Bali\n")
    dst = tmp_path / "out.csv"
    predict_file(tiny_model, src, dst)
    assert _read(dst)["status"].tolist() == ["ok", "invalid_text"]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"name,price\nKopi,1\n", "in.csv", "no 'title' column"),
        (b"\x00\x01not parquet", "in.parquet", "cannot read as parquet"),
        (None, "missing.csv", "input file not found"),
        (b"title\nx\n", "in.xlsx", "unknown format"),
    ],
    ids=["no-title", "corrupt-parquet", "missing-file", "unknown-format"],
)
def test_fatal_input_errors_leave_no_output(tiny_model, tmp_path, content, name, message) -> None:
    src = tmp_path / name
    if content is not None:
        src.write_bytes(content)
    dst = tmp_path / "out.csv"
    summary = tmp_path / "out.csv.summary.json"
    with pytest.raises(InputError, match=message):
        predict_file(tiny_model, src, dst, summary_path=summary)
    assert not dst.exists()
    assert not summary.exists()
    assert not list(tmp_path.glob(".out*"))


def test_a_run_failing_midway_leaves_no_output_and_no_summary(
    tiny_model, tmp_path, monkeypatch
) -> None:
    import clustercls.batch as batch

    run = tmp_path / "run"
    run.mkdir()
    src = _write(HOSTILE, run / "in.csv")
    real, calls = batch._score, []

    def failing(model, chunk):
        calls.append(len(chunk))
        if len(calls) == 2:
            raise RuntimeError("disk gone")
        return real(model, chunk)

    monkeypatch.setattr(batch, "_score", failing)
    with pytest.raises(RuntimeError, match="disk gone"):
        predict_file(tiny_model, src, run / "out.csv", chunk_size=3, summary_path=run / "s.json")
    assert sorted(p.name for p in run.iterdir()) == ["in.csv"]


def _with_metadata(model_dir: Path, folder: Path, **changes) -> Path:
    """A copy of a model with metadata entries replaced (not covered by the checksum)."""
    copy = shutil.copytree(model_dir, folder / "model")
    meta = json.loads((copy / "metadata.json").read_text())
    for key, value in changes.items():
        if key == "serving":
            meta["policy"]["serving"] = value
        else:
            meta[key] = value
    (copy / "metadata.json").write_text(json.dumps(meta))
    return copy


REFERENCE = {
    "training": {
        "cluster_share": {
            "craft": 0.07,
            "fashion_textile": 0.31,
            "food_beverage": 0.17,
            "other": 0.45,
        },
        "unfamiliar_share": 0.007,
    },
    "out_of_source": {
        "cluster_share": {
            "craft": 0.08,
            "fashion_textile": 0.3,
            "food_beverage": 0.17,
            "other": 0.45,
        },
        "decision_share": {"block": 0.2, "review": 0.1, "allow": 0.7},
        "unfamiliar_share": 0.033,
    },
}


def test_summary_counts_every_row_and_says_there_is_no_reference(tiny_model_dir, tmp_path) -> None:
    from clustercls.batch import headline
    from clustercls.predict import load_model

    # A model from before training recorded its reference.
    tiny_model = load_model(_with_metadata(tiny_model_dir, tmp_path, reference=None), n_jobs=1)
    src = _write(HOSTILE, tmp_path / "in.jsonl")
    dst, where = tmp_path / "out.parquet", tmp_path / "reports" / "run.json"
    result = predict_file(tiny_model, src, dst, chunk_size=2, summary_path=where)
    report = json.loads(where.read_text())
    assert report == result.report
    out = _read(dst)
    assert report["rows_in"] == report["rows_out"] == len(HOSTILE)
    assert report["statuses"] == out["status"].value_counts().to_dict()
    assert sum(report["decisions"].values()) == len(out)
    assert report["decisions"]["review"] == (out["decision"] == "review").sum()
    ok = out[out["status"] == "ok"]
    assert report["judgeable"] == len(ok)
    assert report["cluster_share"] == {
        c: round((ok["cluster"] == c).mean(), 4) for c in tiny_model.labels
    }
    assert report["unfamiliar_share"] == round(ok["unfamiliar"].mean(), 4)
    crossing = ok[ok["is_cross_border"].str.lower().isin(["true", "1", "yes"])]
    assert report["judgeable_cross_border"] == len(crossing)
    assert (report["model_version"], report["policy_version"]) == (
        tiny_model.version,
        tiny_model.policy_version,
    )
    assert report["reference"] is None and report["comparison"] is None
    # Three judgeable titles: shares are reported, never warned about.
    assert report["warnings"] == []
    lines = headline(report)
    assert lines[0].startswith(f"{len(HOSTILE)} rows in, {len(HOSTILE)} out")
    assert "no reference in the model's metadata: nothing compared" in lines
    assert not list(where.parent.glob(".*"))  # no temporary file left


def test_summary_compares_with_the_reference_and_warns(tiny_model_dir, tmp_path) -> None:
    from clustercls.batch import headline
    from clustercls.predict import load_model

    serving = {"min_rows_compared": 10, "max_unfamiliar_share": 0.2, "max_cluster_shift": 0.3}
    model = load_model(
        _with_metadata(tiny_model_dir, tmp_path, reference=REFERENCE, serving=serving), n_jobs=1
    )
    # Mostly brand-and-code titles, the rest coffee: unlike the training data.
    titles = [f"Zorvex KT-{i} Vanta" for i in range(30)] + ["Kopi Asli Bali"] * 10
    src = _write(pd.DataFrame({"title": titles}), tmp_path / "in.csv")
    result = predict_file(model, src, tmp_path / "out.csv", summary_path=tmp_path / "s.json")
    report = result.report
    assert report["unfamiliar_share"] == 0.75
    assert report["comparison"]["training"]["unfamiliar_share"] == 0.007
    shift = report["comparison"]["training"]["cluster_shift"]
    shares = report["cluster_share"]
    assert shift == round(
        sum(abs(shares[c] - REFERENCE["training"]["cluster_share"][c]) for c in shares) / 2, 4
    )
    assert shift > 0.3
    assert report["comparison"]["out_of_source"]["decision_shift"] is not None
    assert len(report["warnings"]) == 2
    assert "75.0% of judgeable titles are unfamiliar" in report["warnings"][0]
    assert "training 0.7%, out of source 3.3%" in report["warnings"][0]
    assert report["warnings"][1].startswith(f"cluster shares are {shift:.2f} from the training")
    # A plain model points at adaptation; a model already adapted is warned about its mix.
    assert "`clustercls adapt` on them moves the model to its mix" in report["warnings"][1]
    lines = headline(report)
    assert lines[-2:] == [f"warning: {w}" for w in report["warnings"]]
    assert any(line.startswith("unfamiliar titles: 75.0% (training 0.7%") for line in lines)


def test_summary_of_familiar_input_has_no_warnings(tiny_model_dir, tmp_path) -> None:
    from clustercls.predict import load_model

    model = load_model(
        _with_metadata(tiny_model_dir, tmp_path, reference=REFERENCE, serving={}), n_jobs=1
    )
    titles = (
        ["Kemeja Premium Jogja"] * 31
        + ["Kopi Asli Bali"] * 17
        + ["Lukisan Klasik Garut"] * 7
        + ["Charger Mini Solo"] * 45
    )
    src = _write(pd.DataFrame({"title": titles}), tmp_path / "in.csv")
    report = predict_file(model, src, tmp_path / "out.csv", summary_path=tmp_path / "s.json").report
    assert report["comparison"]["training"]["cluster_shift"] < 0.05
    assert report["warnings"] == []


def test_summary_warns_when_an_adapted_model_meets_another_mix(tiny_model_dir, tmp_path) -> None:
    from clustercls.batch import headline
    from clustercls.predict import load_model

    serving = {"min_rows_compared": 10, "max_unfamiliar_share": 1.0, "max_cluster_shift": 0.3}
    shares = {"craft": 0.05, "fashion_textile": 0.9, "food_beverage": 0.05}
    adaptation = {"name": "fashionshop", "protected_shares": shares}
    model = load_model(
        _with_metadata(
            tiny_model_dir, tmp_path, reference=REFERENCE, serving=serving, adaptation=adaptation
        ),
        n_jobs=1,
    )
    reports = {}
    for name, titles in {
        "coffee": ["Kopi Asli Bali"] * 20 + ["Kemeja Premium Jogja"] * 5,
        "shirts": ["Kemeja Premium Jogja"] * 20 + ["Kopi Asli Bali"],
    }.items():
        src = _write(pd.DataFrame({"title": titles}), tmp_path / f"{name}.csv")
        out = tmp_path / f"{name}.out.csv"
        reports[name] = predict_file(model, src, out, summary_path=tmp_path / "s.json").report
    coffee = reports["coffee"]["comparison"]["adapted_mix"]
    assert coffee["adapted_to"] == shares and coffee["marketplace"] == "fashionshop"
    assert coffee["input"] == {"craft": 0.0, "fashion_textile": 0.2, "food_beverage": 0.8}
    assert coffee["shift"] == 0.75

    def about_the_mix(report: dict) -> list[str]:
        return [w for w in report["warnings"] if w.startswith("this model was adapted to")]

    (warning,) = about_the_mix(reports["coffee"])
    assert warning.startswith("this model was adapted to fashionshop, whose protected titles")
    assert "here they are craft 0.0%, fashion_textile 20.0%, food_beverage 80.0%" in warning
    assert reports["shirts"]["comparison"]["adapted_mix"]["shift"] < 0.3
    assert about_the_mix(reports["shirts"]) == []
    # Its cluster shares are far from training's too, but it is adapted already: the
    # warning does not send it to `clustercls adapt`.
    shifted = [w for w in reports["coffee"]["warnings"] if w.startswith("cluster shares are")]
    assert len(shifted) == 1 and "clustercls adapt" not in shifted[0]
    assert (
        "protected mix 0.75 from fashionshop's, which this model was adapted to (warn above "
        "0.30)" in headline(reports["coffee"])
    )


def test_breakdown_counts_like_a_plain_groupby() -> None:
    import numpy as np

    from clustercls.batch import breakdown

    rng = np.random.default_rng(1)
    n = 5000
    scored = pd.DataFrame(
        {
            "status": rng.choice(["ok", "ok", "ok", "empty_title", "truncated"], n),
            "cluster": rng.choice(["craft", "fashion_textile", "food_beverage", "other"], n),
            "decision": rng.choice(["block", "review", "allow"], n),
            "unfamiliar": rng.random(n) < 0.1,
        }
    )
    flags = rng.random(n) < 0.8
    plain = scored.assign(cross_border=flags).groupby(
        ["status", "cross_border", "cluster", "decision", "unfamiliar"]
    )
    assert breakdown(scored, flags) == plain.size().to_dict()
    assert sum(breakdown(scored, None).values()) == n
    assert {k[1] for k in breakdown(scored, None)} == {True}
    assert breakdown(scored.iloc[:0], None) == {}


def test_output_and_summary_are_readable_like_any_new_file(tiny_model, tmp_path) -> None:
    import os
    import stat

    src = _write(HOSTILE, tmp_path / "in.csv")
    dst, where = tmp_path / "out.csv", tmp_path / "out.csv.summary.json"
    previous = os.umask(0o022)
    try:
        predict_file(tiny_model, src, dst, chunk_size=3, summary_path=where)
    finally:
        os.umask(previous)
    # Staged through private temporary files, published with the umask's usual mode.
    assert stat.S_IMODE(dst.stat().st_mode) == 0o644
    assert stat.S_IMODE(where.stat().st_mode) == 0o644
