"""Batch scoring of files: CSV, Parquet or JSON Lines in and out, streamed in chunks.

Every input row is written exactly once, in input order, with all its input columns, plus
`cluster, confidence, decision, reason, status, model_version, policy_version`. Output goes
to a temporary file renamed into place only on success, so a failed run leaves nothing.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clustercls.predict import Model

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
ADDED_COLUMNS = (
    "cluster",
    "confidence",
    "decision",
    "reason",
    "status",
    "model_version",
    "policy_version",
)
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class InputError(ValueError):
    """The input file cannot be scored at all (unreadable, unknown format, no title column)."""


def file_format(path: Path) -> str:
    """The format implied by a file's extension.

    Raises:
        InputError: For an extension that is not CSV, Parquet or JSON Lines.
    """
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown format (use {', '.join(sorted(FORMATS))})")
    return fmt


def read_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """Stream a file as DataFrames of at most `chunk_size` rows.

    CSV columns are read as text, so identifiers keep their leading zeros; undecodable
    bytes become U+FFFD, which prediction reports as `invalid_text`.

    Raises:
        InputError: If the file is missing, unreadable, or has no `title` column.
    """
    path = Path(path)
    fmt = file_format(path)
    if not path.is_file():
        raise InputError(f"{path}: input file not found")
    try:
        if fmt == "csv":
            chunks = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                chunksize=chunk_size,
                encoding="utf-8",
                encoding_errors="replace",
            )
        elif fmt == "jsonl":
            chunks = pd.read_json(path, lines=True, chunksize=chunk_size, dtype=False)
        else:
            parquet = pq.ParquetFile(path)
            chunks = (b.to_pandas() for b in parquet.iter_batches(batch_size=chunk_size))
        first = True
        for chunk in chunks:
            if first and "title" not in chunk.columns:
                raise InputError(
                    f"{path}: no 'title' column (columns: {', '.join(map(str, chunk.columns))})"
                )
            first = False
            yield chunk
    except InputError:
        raise
    except (ValueError, OSError, pa.ArrowException, pd.errors.ParserError) as exc:
        raise InputError(
            f"{path}: cannot read as {fmt}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc


def empty_input_columns(path: Path) -> list[str]:
    """Column names of an input with no data rows (header only), for an empty output."""
    fmt = file_format(path)
    if fmt == "parquet":
        return list(pq.read_schema(path).names)
    if fmt == "csv":
        return list(pd.read_csv(path, nrows=0).columns)
    return []


def cross_border_flags(values: pd.Series) -> pd.Series:
    """Parse an `is_cross_border` column; unknown values count as cross-border (the safe side)."""
    text = values.astype(str).str.strip().str.lower()
    return ~text.isin(_FALSE) | text.isin(_TRUE)


@dataclass
class BatchSummary:
    """Counts of a batch run."""

    rows: int = 0
    statuses: Counter = field(default_factory=Counter)
    decisions: Counter = field(default_factory=Counter)
    model_version: str = ""
    policy_version: str = ""


def score_chunk(model: Model, chunk: pd.DataFrame) -> pd.DataFrame:
    """Score one chunk: the input columns plus the added ones, same rows, same order."""
    flags = cross_border_flags(chunk["is_cross_border"]) if "is_cross_border" in chunk else None
    result = model.predict(chunk["title"].tolist(), cross_border=flags)
    out = chunk.reset_index(drop=True).copy()
    # An input column that shares an output name would be silently overwritten; keep it.
    out = out.rename(columns={c: f"input_{c}" for c in ADDED_COLUMNS if c in out.columns})
    for column in ("cluster", "confidence", "decision", "reason", "status"):
        out[column] = result[column].to_numpy()
    out["model_version"] = model.version
    out["policy_version"] = model.policy_version
    return out


class _Writer:
    """Appends chunks to one output file of the given format."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self._parquet: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._started = False

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "csv":
            frame.to_csv(
                self.path, mode="a" if self._started else "w", header=not self._started, index=False
            )
        elif self.fmt == "jsonl":
            text = (
                frame.to_json(orient="records", lines=True, force_ascii=False) if len(frame) else ""
            )
            with self.path.open("a" if self._started else "w", encoding="utf-8") as fh:
                fh.write(text if not text or text.endswith("\n") else text + "\n")
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(self.path, self._schema)
            self._parquet.write_table(table.cast(self._schema))
        self._started = True

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()


def predict_file(
    model: Model,
    input_path: Path,
    output_path: Path,
    chunk_size: int = 50_000,
    progress: bool | None = None,
) -> BatchSummary:
    """Score a file, streaming, and write the result atomically.

    Args:
        model: A loaded model.
        input_path: CSV, Parquet or JSON Lines with a `title` column.
        output_path: Destination; its extension picks the format.
        chunk_size: Rows per chunk (memory stays flat whatever the input size).
        progress: Show a progress bar; default: when stderr is a terminal.

    Returns:
        Row, status and decision counts.

    Raises:
        InputError: If the input cannot be scored at all; no output file is left behind.
    """
    output_path = Path(output_path)
    out_fmt = file_format(output_path)
    file_format(input_path)
    show = sys.stderr.isatty() if progress is None else progress
    summary = BatchSummary(model_version=model.version, policy_version=model.policy_version)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{output_path.name}.", suffix=".tmp", dir=output_path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    writer = _Writer(tmp, out_fmt)
    try:
        from tqdm import tqdm

        bar = tqdm(total=None, unit="rows", disable=not show, file=sys.stderr)
        for chunk in read_chunks(input_path, chunk_size):
            scored = score_chunk(model, chunk)
            writer.write(scored)
            summary.rows += len(scored)
            summary.statuses.update(scored["status"])
            summary.decisions.update(scored["decision"])
            bar.update(len(scored))
        bar.close()
        if summary.rows == 0:
            columns = [*empty_input_columns(input_path), *ADDED_COLUMNS]
            writer.write(pd.DataFrame({c: pd.Series(dtype=str) for c in columns}))
        writer.close()
        os.replace(tmp, output_path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return summary
