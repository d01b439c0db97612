"""Batch scoring of files: CSV, Parquet or JSON Lines in and out, streamed in chunks.

Every input row is written exactly once, in input order, with all its input columns, plus
the file columns of `clustercls.schema.OUTPUT` (`cluster, confidence, decision, reason,
top_ngrams, familiarity, unfamiliar, status, model_version, policy_version`). Output goes
to a temporary file renamed into place only on success, so a failed run leaves nothing.

A run can also write a summary (JSON): counts of statuses, decisions and clusters, the
share of unfamiliar titles, and how they compare with the training data and with what the
model did out of source (`metadata["reference"]`), with warnings when the input looks
unlike what the model was built for. It is counted from each chunk as it is scored and
written the same way as the output, only when the run succeeds.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clustercls.predict import OK, Model
from clustercls.schema import FILE_COLUMNS, OUTPUT

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
ADDED_COLUMNS = FILE_COLUMNS
"""Columns added to every input row, in order (the file view of `schema.OUTPUT`)."""
_PANDAS_DTYPES = {"string": str, "float64": "float64", "bool": "bool"}
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
    """Counts of a batch run.

    `breakdown` holds them all: rows per (status, cross-border, cluster, decision,
    unfamiliar); the other counters are its margins.
    """

    rows: int = 0
    statuses: Counter = field(default_factory=Counter)
    decisions: Counter = field(default_factory=Counter)
    model_version: str = ""
    policy_version: str = ""
    rows_in: int = 0
    breakdown: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    report: dict | None = None
    """The run summary (`run_report`), once written."""

    def add(self, breakdown: Mapping[tuple, int]) -> None:
        """Count scored rows, given as a `breakdown` (see the class)."""
        for key, n in breakdown.items():
            self.breakdown[key] += n
            self.statuses[key[0]] += n
            self.decisions[key[3]] += n
            self.rows += n


def score_chunk(model: Model, chunk: pd.DataFrame) -> pd.DataFrame:
    """Score one chunk: the input columns plus the added ones, same rows, same order."""
    return _score(model, chunk)[0]


def _score(model: Model, chunk: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
    """`score_chunk`, and the cross-border flag it read per row (None: no such column)."""
    flags = cross_border_flags(chunk["is_cross_border"]) if "is_cross_border" in chunk else None
    result = model.predict(chunk["title"].tolist(), cross_border=flags)
    out = chunk.reset_index(drop=True).copy()
    # An input column that shares an output name would be silently overwritten; keep it.
    out = out.rename(columns={c: f"input_{c}" for c in ADDED_COLUMNS if c in out.columns})
    versions = {"model_version": model.version, "policy_version": model.policy_version}
    for column in ADDED_COLUMNS:
        out[column] = versions[column] if column in versions else result[column].to_numpy()
    return out, None if flags is None else flags.to_numpy()


def breakdown(scored: pd.DataFrame, flags: np.ndarray | None) -> dict[tuple, int]:
    """Rows of a scored chunk per (status, cross-border, cluster, decision, unfamiliar).

    Args:
        scored: Output rows (`status, cluster, decision, unfamiliar`).
        flags: Cross-border flag per row; None counts every row as cross-border.
    """
    # One integer per row from the five codes, counted by bincount: a few milliseconds
    # per 50,000 rows, less than half of what pandas' multi-column value_counts takes.
    (status, statuses), (cluster, clusters), (decision, decisions) = (
        pd.factorize(scored[column].to_numpy()) for column in ("status", "cluster", "decision")
    )
    crossing = np.ones(len(scored), dtype=np.int64) if flags is None else flags.astype(np.int64)
    unfamiliar = scored["unfamiliar"].to_numpy().astype(np.int64)
    key = ((status * 2 + crossing) * len(clusters) + cluster) * len(decisions) + decision
    counts = np.bincount(key * 2 + unfamiliar)
    out = {}
    for code in np.flatnonzero(counts).tolist():
        rest, is_unfamiliar = divmod(code, 2)
        rest, d = divmod(rest, len(decisions))
        rest, c = divmod(rest, len(clusters))
        s, cross_border = divmod(rest, 2)
        group = (
            str(statuses[s]),
            bool(cross_border),
            str(clusters[c]),
            str(decisions[d]),
            bool(is_unfamiliar),
        )
        out[group] = int(counts[code])
    return out


def _shares(counts: Mapping[str, int], keys: list[str]) -> dict[str, float] | None:
    total = sum(counts.values())
    return {k: round(counts.get(k, 0) / total, 4) for k in keys} if total else None


def _distance(shares: Mapping[str, float] | None, reference: Mapping | None) -> float | None:
    """Total variation distance: the share of rows that would have to change category."""
    if not shares or not reference:
        return None
    keys = set(shares) | set(reference)
    gap = sum(abs(shares.get(k, 0.0) - float(reference.get(k, 0.0))) for k in keys)
    return round(gap / 2, 4)


def _adapted_mix(metadata: Mapping, clusters: Counter) -> dict | None:
    """For a model adapted to a marketplace's mix: its mix among the protected clusters,
    the input's (shares of the titles judged protected), and how far apart they are; else
    None."""
    adaptation = metadata.get("adaptation") or {}
    shares = adaptation.get("protected_shares")
    total = sum(clusters[c] for c in shares or {})
    if not shares or not total:
        return None
    seen = {c: round(clusters[c] / total, 4) for c in shares}
    return {
        "marketplace": adaptation.get("name"),
        "adapted_to": shares,
        "input": seen,
        "protected_titles": total,
        "shift": _distance(seen, shares),
    }


def run_report(summary: BatchSummary, model: Model, input_path: str, output_path: str) -> dict:
    """The run summary: counts, shares, the comparison with the model's reference, warnings.

    Shares are of the judgeable titles (status `ok`): a title that cannot be judged says
    nothing of what the input is. Decision shares are of the judgeable cross-border titles,
    the ones the model decides; the out-of-source reference is what the thresholds did on
    titles of marketplaces held out in training. The reference is `metadata["reference"]`,
    absent from models trained before it was recorded (then nothing is compared).

    Args:
        summary: The run's counts.
        model: The model that scored (versions, labels, serving rules, reference).
        input_path: What was read, as given.
        output_path: What was written, as given.

    Returns:
        A JSON-ready dict; `warnings` lists what an operator should look at.
    """
    rules = model.serving
    judged = {k: n for k, n in summary.breakdown.items() if k[0] == OK}
    n_judgeable = sum(judged.values())
    clusters: Counter = Counter()
    decisions: Counter = Counter()
    unfamiliar = 0
    for (_, cross_border, cluster, decision, is_unfamiliar), n in judged.items():
        clusters[cluster] += n
        unfamiliar += n if is_unfamiliar else 0
        if cross_border:
            decisions[decision] += n
    cluster_share = _shares(clusters, sorted(set(model.labels) | set(clusters)))
    decision_share = _shares(decisions, ["block", "review", "allow"])
    unfamiliar_share = round(unfamiliar / n_judgeable, 4) if n_judgeable else None

    reference = model.metadata.get("reference") or None
    training = (reference or {}).get("training") or {}
    outside = (reference or {}).get("out_of_source") or {}
    comparison = None
    if reference is not None:
        comparison = {
            "training": {
                "cluster_shift": _distance(cluster_share, training.get("cluster_share")),
                "unfamiliar_share": training.get("unfamiliar_share"),
            },
            "out_of_source": {
                "cluster_shift": _distance(cluster_share, outside.get("cluster_share")),
                "decision_shift": _distance(decision_share, outside.get("decision_share")),
                "unfamiliar_share": outside.get("unfamiliar_share"),
            },
        }

    adapted = _adapted_mix(model.metadata, clusters)
    if comparison is not None and adapted is not None:
        comparison["adapted_mix"] = adapted

    warnings = []
    # Below the minimum a share is mostly sampling noise: reported, not warned about.
    if n_judgeable >= rules.min_rows_compared and unfamiliar_share is not None:
        if unfamiliar_share > rules.max_unfamiliar_share:
            seen = ", ".join(
                f"{name} {_percent(share)}"
                for name, share in (
                    ("training", training.get("unfamiliar_share")),
                    ("out of source", outside.get("unfamiliar_share")),
                )
                if share is not None
            )
            warnings.append(
                f"{_percent(unfamiliar_share)} of judgeable titles are unfamiliar (policy "
                f"limit {_percent(rules.max_unfamiliar_share)}{'; ' + seen if seen else ''}): "
                "the model knows few of their words, so its scores are least reliable; "
                "they are never blocked. `clustercls adapt --self-training` on this "
                "marketplace's titles teaches the model their words"
            )
        shift = comparison["training"]["cluster_shift"] if comparison else None
        if shift is not None and shift > rules.max_cluster_shift:
            warnings.append(
                f"cluster shares are {shift:.2f} from the training data's (total variation; "
                f"policy limit {rules.max_cluster_shift:.2f}): "
                + ", ".join(
                    f"{c} {_percent(share)} vs {_percent(training['cluster_share'].get(c, 0.0))}"
                    for c, share in (cluster_share or {}).items()
                )
                + (
                    ""
                    if model.metadata.get("adaptation")
                    else ". If these titles come from one marketplace, `clustercls adapt` on "
                    "them moves the model to its mix"
                )
            )
        # The same limit as for the cluster shares; the mix is of the protected titles only,
        # so there must be enough of those.
        if (
            adapted is not None
            and adapted["protected_titles"] >= rules.min_rows_compared
            and adapted["shift"] > rules.max_cluster_shift
        ):
            warnings.append(
                f"this model was adapted to {adapted['marketplace']}, whose protected titles are "
                + ", ".join(f"{c} {_percent(v)}" for c, v in adapted["adapted_to"].items())
                + "; here they are "
                + ", ".join(f"{c} {_percent(v)}" for c, v in adapted["input"].items())
                + f" ({adapted['shift']:.2f} apart; policy limit {rules.max_cluster_shift:.2f}): "
                "it leans doubtful titles to that marketplace's clusters, so score other "
                "marketplaces with its base model or adapt one to them"
            )
    if summary.rows and not n_judgeable:
        warnings.append("no title could be judged: every row went to review")

    return {
        "input": str(input_path),
        "output": str(output_path),
        "rows_in": summary.rows_in,
        "rows_out": summary.rows,
        "seconds": round(summary.seconds, 3),
        "model_version": summary.model_version,
        "policy_version": summary.policy_version,
        "statuses": dict(sorted(summary.statuses.items())),
        "decisions": {d: summary.decisions.get(d, 0) for d in ("block", "review", "allow")},
        "judgeable": n_judgeable,
        "judgeable_cross_border": sum(decisions.values()),
        "cluster_share": cluster_share,
        "decision_share": decision_share,
        "unfamiliar_share": unfamiliar_share,
        "reference": reference,
        "comparison": comparison,
        "limits": rules.model_dump(),
        "warnings": warnings,
    }


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.1%}"


def headline(report: Mapping) -> list[str]:
    """The lines a command prints about its run summary (warnings last, marked)."""
    rows = report["rows_out"]
    lines = [
        f"{report['rows_in']} rows in, {rows} out; model {report['model_version']} "
        f"(policy {report['policy_version']})",
        "statuses: " + (", ".join(f"{k} {v}" for k, v in report["statuses"].items()) or "none"),
        "decisions: "
        + ", ".join(
            f"{k} {v} ({_percent(v / rows if rows else None)})"
            for k, v in report["decisions"].items()
        ),
    ]
    comparison = report["comparison"]
    reference = report["reference"] or {}
    training = reference.get("training") or {}
    outside = reference.get("out_of_source") or {}

    def versus(share: float | None, *references: float | None) -> str:
        known = [
            f"{name} {_percent(r)}"
            for name, r in zip(("training", "out of source"), references, strict=False)
            if r is not None
        ]
        return _percent(share) + (f" ({', '.join(known)})" if known else "")

    if report["cluster_share"] is None:
        lines.append("no judgeable titles: no shares")
    else:
        lines.append(
            f"clusters of {report['judgeable']} judgeable titles: "
            + ", ".join(
                f"{c} "
                + versus(
                    s,
                    (training.get("cluster_share") or {}).get(c),
                    (outside.get("cluster_share") or {}).get(c),
                )
                for c, s in report["cluster_share"].items()
            )
        )
        lines.append(
            "unfamiliar titles: "
            + versus(
                report["unfamiliar_share"],
                training.get("unfamiliar_share"),
                outside.get("unfamiliar_share"),
            )
        )
        if report["decision_share"] is not None:
            lines.append(
                f"decisions of {report['judgeable_cross_border']} judgeable cross-border "
                "titles: "
                + ", ".join(
                    f"{d} " + versus(s, None, (outside.get("decision_share") or {}).get(d))
                    for d, s in report["decision_share"].items()
                )
            )
    if comparison is None:
        lines.append("no reference in the model's metadata: nothing compared")
    else:
        limit = f" (warn above {report['limits']['max_cluster_shift']:.2f})"
        outside_shifts = comparison["out_of_source"]
        shifts = [
            _shift("cluster shift from training", comparison["training"]["cluster_shift"], limit),
            _shift("from out of source", outside_shifts["cluster_shift"]),
            _shift("decision shift from out of source", outside_shifts["decision_shift"]),
        ]
        lines.append("; ".join(s for s in shifts if s is not None) or "nothing to compare")
        adapted = comparison.get("adapted_mix")
        if adapted:
            lines.append(
                f"protected mix {adapted['shift']:.2f} from {adapted['marketplace']}'s, which "
                f"this model was adapted to{limit}"
            )
    if report["judgeable"] and report["judgeable"] < report["limits"]["min_rows_compared"]:
        lines.append(
            f"fewer than {report['limits']['min_rows_compared']} judgeable titles: "
            "shares reported, not warned about"
        )
    lines += [f"warning: {w}" for w in report["warnings"]]
    return lines


def _shift(name: str, value: float | None, note: str = "") -> str | None:
    return None if value is None else f"{name} {value:.2f}{note}"


def summary_path_for(output: str | Path) -> str:
    """Where a run's summary goes by default: `<output>.summary.json`, beside it."""
    return str(output).rstrip("/") + ".summary.json"


def stage_json(path: Path, data: Mapping) -> Path:
    """Write `data` as JSON to a hidden temporary file beside `path`, for `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    publishable(Path(name))
    return Path(name)


def publishable(path: Path) -> None:
    """Give a staged file the mode a plain `open` would have (0666 less the umask).

    The staging files come from `mkstemp`, which makes them private to their owner;
    renamed into place as they are, the job's output would be unreadable to the people
    and jobs downstream that read it.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


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
    summary_path: Path | None = None,
) -> BatchSummary:
    """Score a file, streaming, and write the result atomically.

    Args:
        model: A loaded model.
        input_path: CSV, Parquet or JSON Lines with a `title` column.
        output_path: Destination; its extension picks the format.
        chunk_size: Rows per chunk (memory stays flat whatever the input size).
        progress: Show a progress bar; default: when stderr is a terminal.
        summary_path: Where to write the run summary (`run_report`, JSON); None writes
            none. It is put in place with the output, and only then.

    Returns:
        Row, status and decision counts (and the summary written, as `report`).

    Raises:
        InputError: If the input cannot be scored at all; no output file (and no
            summary) is left behind.
    """
    start = time.perf_counter()
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
    staged: Path | None = None
    try:
        from tqdm import tqdm

        bar = tqdm(total=None, unit="rows", disable=not show, file=sys.stderr)
        for chunk in read_chunks(input_path, chunk_size):
            if chunk.empty:
                # A header-only file yields one empty chunk; its typeless columns would fix
                # a Parquet schema the typed empty output below cannot be cast to.
                continue
            summary.rows_in += len(chunk)
            scored, flags = _score(model, chunk)
            writer.write(scored)
            # The summary's counts, from the chunk in hand: the output is never read back.
            summary.add(breakdown(scored, flags))
            bar.update(len(scored))
        bar.close()
        if summary.rows == 0:
            writer.write(_empty_output(empty_input_columns(input_path)))
        writer.close()
        if summary_path is not None:
            summary.seconds = time.perf_counter() - start
            summary.report = run_report(summary, model, str(input_path), str(output_path))
            staged = stage_json(Path(summary_path), summary.report)
        publishable(tmp)
        os.replace(tmp, output_path)
        if staged is not None:
            os.replace(staged, summary_path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    return summary


def _empty_output(input_columns: list[str]) -> pd.DataFrame:
    """The output of an input without rows: its columns (as text) and the added ones."""
    dtypes = dict(OUTPUT.file_columns())
    columns = [*(f"input_{c}" if c in dtypes else c for c in input_columns), *ADDED_COLUMNS]
    return pd.DataFrame(
        {c: pd.Series(dtype=_PANDAS_DTYPES[dtypes[c]] if c in dtypes else str) for c in columns}
    )
