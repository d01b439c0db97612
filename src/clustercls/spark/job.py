"""Driver side: verify and ship the model, run the job, commit the output atomically and
write the run summary."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clustercls.artifact import METADATA_FILE, MODEL_FILE, ArtifactError
from clustercls.batch import BatchSummary, InputError, cross_border_flags, run_report, stage_json
from clustercls.spark.executor import _CROSS_BORDER, ScoringStats, _ScorePartition, output_schema
from clustercls.spark.session import (
    _no_pandas_version_warning,
    _under_spark_submit,
    require_pyspark,
    spark_session,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from clustercls.predict import Model


_STAGING: dict[str, Path] = {}
_SHIPPED: set[tuple[str, str]] = set()


def _staging_root() -> Path:
    if "root" not in _STAGING:
        root = Path(tempfile.mkdtemp(prefix="clustercls-spark-"))
        # On a cluster the driver serves added files from here for the application's life.
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _STAGING["root"] = root
    return _STAGING["root"]


def ship_model(spark: SparkSession, model: Model) -> str:
    """Make a verified model folder available to every executor of `spark`.

    The folder is copied under a name made of the model's version and checksum (so two
    models never collide in `SparkFiles`, and the same model is shipped once per
    application) and added with `SparkContext.addFile`.

    Returns:
        The name executors pass to `SparkFiles.get`.
    """
    meta = model.metadata
    name = f"clustercls-model-{meta['version']}-{str(meta['sha256'])[:16]}"
    context = spark.sparkContext
    key = (context.applicationId, name)
    if key in _SHIPPED:
        return name
    staged = _staging_root() / name
    if not staged.is_dir():
        partial = staged.with_name(f".{name}.{uuid.uuid4().hex}")
        partial.mkdir()
        model_file = meta.get("model_file", MODEL_FILE)
        for file in (METADATA_FILE, model_file):
            shutil.copy2(Path(model.artifact.path) / file, partial / file)
        partial.rename(staged)
    context.addFile(str(staged), recursive=True)
    _SHIPPED.add(key)
    return name


def _loaded(model: str | Path | Model | None) -> Model:
    from clustercls.predict import Model, load_model

    # The driver only verifies and ships the model; executors score.
    return model if isinstance(model, Model) else load_model(model, n_jobs=1)


def score_dataframe(
    df: DataFrame,
    model: str | Path | Model | None = None,
    *,
    stats: ScoringStats | None = None,
) -> DataFrame:
    """Score a Spark DataFrame of listings (lazily, like any transformation).

    Args:
        df: A DataFrame with a `title` column (plus any others; `is_cross_border` is used
            as the single-machine job uses it).
        model: A model folder, a `models:/clustercls@champion` URI, an already loaded
            `Model`, or None for the newest folder under `models/`. It is loaded and
            verified here, on the driver, before any job runs.
        stats: Counters to fill while the result is computed (model loads, batches).

    Returns:
        `df`'s rows and columns (a column named like an added one becomes
        `input_<name>`), plus the file columns of `clustercls.schema.OUTPUT`, computed
        by `clustercls.batch.score_chunk`.

    Raises:
        InputError: If there is no `title` column or output names would collide.
        ArtifactError: If the model is missing or fails verification.
    """
    schema = output_schema(df.schema)
    loaded = _loaded(model)
    spark = df.sparkSession
    name = ship_model(spark, loaded)
    large = spark.conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false") == "true"
    with _no_pandas_version_warning():
        return df.mapInArrow(_ScorePartition(name, large, stats), schema)


@dataclass
class SparkSummary(BatchSummary):
    """Counts of a `predict_parquet` run (as the single-machine job's), and how Spark ran."""

    model_loads: int = 0
    arrow_batches: int = 0
    partitions: int = 0
    master: str = ""
    seconds: float = 0.0


class _HadoopFS:
    """Paths on whatever file system Spark writes to (local, HDFS, S3A, ...)."""

    def __init__(self, spark: SparkSession, path: str) -> None:
        context = spark.sparkContext
        self._jvm = context._jvm
        path_cls = self._jvm.org.apache.hadoop.fs.Path
        raw = path_cls(path)
        self.fs = raw.getFileSystem(context._jsc.hadoopConfiguration())
        self.path = self.fs.makeQualified(raw)

    def sibling(self, prefix: str) -> Any:
        # Hidden (leading dot) so readers of the parent folder ignore it.
        name = f".{self.path.getName()}.{prefix}-{uuid.uuid4().hex[:12]}"
        return self._jvm.org.apache.hadoop.fs.Path(self.path.getParent(), name)

    def exists(self, path: Any = None) -> bool:
        return bool(self.fs.exists(self.path if path is None else path))

    def rename(self, source: Any, target: Any) -> None:
        if not self.fs.rename(source, target):
            raise OSError(f"could not rename {source} to {target}")

    def delete(self, path: Any) -> None:
        self.fs.delete(path, True)

    def write_text(self, text: str) -> None:
        """Write this path whole: to a hidden sibling first, renamed into place."""
        staging = self.sibling("tmp")
        stream = self.fs.create(staging, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        try:
            if self.exists():
                self.delete(self.path)
            self.rename(staging, self.path)
        except BaseException:
            self.delete(staging)
            raise


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    if lines and lines[0].startswith("An error occurred while calling"):
        # py4j's own first line names a JVM object; the Java exception's line says what.
        java = [line for line in lines[1:] if "Exception: " in line]
        if java:
            return java[0].split("Exception: ", 1)[1].strip()
    return lines[0] if lines else type(exc).__name__


def _job_error(exc: BaseException) -> BaseException:
    """A Spark job failure as the error the single-machine job would raise, if known."""
    text = str(exc)
    marker = "ArtifactError: "
    if marker in text:
        # A worker could not load the shipped model: another scikit-learn on the executors.
        detail = text[text.index(marker) + len(marker) :].splitlines()[0]
        return ArtifactError(f"on an executor: {detail}")
    for needle in ("FAILED_READ_FILE", "CANNOT_READ_FILE", "is not a Parquet file"):
        for line in text.splitlines():
            if needle in line:
                # The Java exception's line names the file; py4j's first line does not.
                detail = line.split("Exception: ", 1)[-1].strip()
                return InputError(f"cannot read the input: {detail}")
    return exc


def predict_parquet(
    input_path: str | Path,
    output_path: str | Path,
    model: str | Path | Model | None = None,
    *,
    master: str | None = None,
    partitions: int | None = None,
    overwrite: bool = False,
    spark: SparkSession | None = None,
    conf: Mapping[str, str] | None = None,
    summary_path: str | Path | None = None,
) -> SparkSummary:
    """Score a Parquet file or folder with Spark into a Parquet folder, atomically.

    The model is verified and the input's schema checked before anything is written.
    Output goes to a hidden sibling folder renamed into place only once the job has
    succeeded, so a failed run leaves nothing behind (no summary either).

    Args:
        input_path: A Parquet file or folder (any file system Spark can read).
        output_path: The Parquet folder to write.
        model: A model folder, `models:/` URI, loaded `Model`, or None for the newest
            under `models/`.
        master: Spark master URL when a new session is started (default `local[*]`).
        partitions: Repartition the input into this many parts first (spreads one large
            file over more cores; costs a shuffle). Default: keep Spark's input splits.
        overwrite: Replace an existing output.
        spark: A session to use; default: `spark_session(master, conf)`.
        conf: Extra Spark settings for a new session.
        summary_path: Where to write the run summary (`batch.run_report`, JSON; any
            path Spark can write); None writes none. Written once the output is in place.

    Returns:
        Row, status and decision counts, model loads, batches and wall time (and the
        summary written, as `report`).

    Raises:
        InputError: Unreadable input, no `title` column, or an existing output without
            `overwrite`.
        ArtifactError: If the model is missing or fails verification.
        SparkUnavailableError: If pyspark or Java is missing.
    """
    require_pyspark()
    start = time.perf_counter()
    # Before Spark starts: a bad model fails in a second, not after the JVM is up.
    loaded = _loaded(model)
    own_session = spark is None and not _has_session()
    spark = spark or spark_session(master, conf)
    try:
        summary = _predict_parquet(
            spark, str(input_path), str(output_path), loaded, partitions, overwrite
        )
        summary.seconds = time.perf_counter() - start
        if summary_path is not None:
            summary.report = run_report(summary, loaded, str(input_path), str(output_path))
            _write_summary(spark, str(summary_path), summary.report)
    finally:
        if own_session:
            spark.stop()
    return summary


def _write_summary(spark: SparkSession, path: str, report: dict) -> None:
    """Write a run summary atomically: local paths by Python (no Hadoop checksum file
    beside it), other file systems through Hadoop."""
    path = _local_path(spark, path)
    if path.startswith("file:") or ("://" not in path and path.startswith("/")):
        local = Path(path.removeprefix("file://").removeprefix("file:"))
        os.replace(stage_json(local, report), local)
        return
    import json

    _HadoopFS(spark, path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def _has_session() -> bool:
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() is not None or _under_spark_submit()


def _predict_parquet(
    spark: SparkSession,
    input_path: str,
    output_path: str,
    model: Model,
    partitions: int | None,
    overwrite: bool,
) -> SparkSummary:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    input_path, output_path = _local_path(spark, input_path), _local_path(spark, output_path)
    target = _HadoopFS(spark, output_path)
    if target.exists() and not overwrite:
        raise InputError(f"{output_path}: already exists (use --overwrite to replace it)")
    try:
        frame = spark.read.parquet(input_path)
    except (PySparkException, Py4JJavaError) as exc:
        if "PATH_NOT_FOUND" in str(exc):
            raise InputError(f"{input_path}: input not found") from None
        raise InputError(f"{input_path}: cannot read as parquet: {_first_line(exc)}") from None
    try:
        output_schema(frame.schema)
    except InputError as exc:
        raise InputError(f"{input_path}: {exc}") from None
    source = frame
    if partitions:
        frame = frame.repartition(partitions)
    stats = ScoringStats.create(spark)
    scored = score_dataframe(frame, model, stats=stats)
    staging = target.sibling("tmp")
    try:
        try:
            scored.write.mode("errorifexists").parquet(staging.toString())
        except (PySparkException, Py4JJavaError) as exc:
            raise _job_error(exc) from None
        _commit(target, staging)
    except BaseException:
        target.delete(staging)
        raise
    # Once the job has read every file (a corrupt one fails it first, with its own
    # message); cheap on Parquet, whose footers hold the counts.
    rows_in = source.count()
    summary = SparkSummary(
        model_version=model.version,
        policy_version=model.policy_version,
        partitions=frame.rdd.getNumPartitions(),
        master=spark.sparkContext.master,
        rows_in=rows_in,
    )
    # Counted from what was written (a few columns, a second light pass), not from
    # counters a retried task would add to twice. Spark skips hidden folders, hence after
    # the commit.
    written = spark.read.parquet(target.path.toString())
    keys = ["status", "cluster", "decision", "unfamiliar"]
    # The raw flag column (input columns keep their names unless they clash with an
    # added one), read as `score_chunk` reads it, on each distinct value.
    flag = _CROSS_BORDER if _CROSS_BORDER in frame.columns else None
    groups = written.groupBy(*keys, *([flag] if flag else [])).count().collect()
    crossing = [True] * len(groups)
    if flag:
        import pandas as pd

        raw = pd.Series([row[flag] for row in groups], dtype=object)
        crossing = cross_border_flags(raw).tolist()
    counts: Counter = Counter()
    for row, cross_border in zip(groups, crossing, strict=True):
        key = (row["status"], cross_border, row["cluster"], row["decision"], row["unfamiliar"])
        counts[key] += row["count"]
    summary.add(counts)
    summary.model_loads = stats.model_loads
    summary.arrow_batches = stats.arrow_batches
    return summary


def _local_path(spark: SparkSession, path: str) -> str:
    """A relative local path made absolute against this process's working folder.

    Spark would resolve it against the JVM's, which differs once the process has changed
    folder (a notebook, a test). Paths with a scheme, absolute paths, and relative paths
    on a cluster's default file system (HDFS home folder) are left to Spark.
    """
    if "://" in path or path.startswith("/"):
        return path
    default_fs = spark.sparkContext._jsc.hadoopConfiguration().get("fs.defaultFS", "file:///")
    return os.path.abspath(path) if default_fs.startswith("file:") else path


def _commit(target: _HadoopFS, staging: Any) -> None:
    """Move the finished output into place; an existing one is replaced only now."""
    if not target.exists():
        target.rename(staging, target.path)
        return
    old = target.sibling("old")
    target.rename(target.path, old)
    try:
        target.rename(staging, target.path)
    except BaseException:
        target.rename(old, target.path)
        raise
    target.delete(old)
