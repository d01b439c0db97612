"""Batch scoring of files: lossless, ordered, atomic, in all three formats."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from clustercls.batch import ADDED_COLUMNS, InputError, predict_file

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


def test_empty_input_gives_empty_output_with_header(tiny_model, tmp_path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("title,listing_id\n")
    dst = tmp_path / "out.csv"
    assert predict_file(tiny_model, src, dst).rows == 0
    assert dst.read_text().splitlines()[0].split(",") == ["title", "listing_id", *ADDED_COLUMNS]


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
    with pytest.raises(InputError, match=message):
        predict_file(tiny_model, src, dst)
    assert not dst.exists()
    assert not list(tmp_path.glob(".out*"))
