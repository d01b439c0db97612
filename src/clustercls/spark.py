"""Enforcement scoring on Apache Spark, row for row what `clustercls predict` writes.

Install with `pip install "clustercls[spark]"`. One machine stays the default; this module
is for a listing table too big for it. Nothing here runs at import, and pyspark is imported
only when a function is called, so the rest of the package works without it.

How a run goes:

1. The driver loads and verifies the model (checksum, scikit-learn version, unpickling)
   before any Spark job starts; `models:/` URIs are resolved and downloaded here, so
   executors never need MLflow or registry credentials.
2. The verified model folder is shipped with `SparkContext.addFile`; each Python worker
   process loads it from `SparkFiles` on its first batch and keeps it in a module-level
   cache, so the model is unpickled once per worker process, not per batch or row.
3. `DataFrame.mapInArrow` hands each Arrow batch to `clustercls.batch.score_chunk`, the
   same function the single-machine job calls. Only `title` (and `is_cross_border`) are
   converted to pandas, exactly as the single-machine job converts them when it reads
   Parquet; every other column passes through as Arrow, so types and timestamps come out
   as they went in, whatever the session time zone.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clustercls.artifact import METADATA_FILE, MODEL_FILE, ArtifactError, load_artifact
from clustercls.batch import (
    ADDED_COLUMNS,
    BatchSummary,
    InputError,
    cross_border_flags,
    run_report,
    stage_json,
)
from clustercls.schema import OUTPUT

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from clustercls.predict import Model

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[*]"
INSTALL_HINT = 'pip install "clustercls[spark]"'
_CROSS_BORDER = "is_cross_border"


class SparkUnavailableError(RuntimeError):
    """Spark cannot start here: pyspark is not installed or no Java runtime is found."""


def require_pyspark() -> None:
    """Check that pyspark is importable.

    Raises:
        SparkUnavailableError: With the install command, if it is not.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise SparkUnavailableError(
            f"spark-predict needs pyspark, which is not installed: {INSTALL_HINT}"
        ) from exc


def _require_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return
    if shutil.which("java") is None:
        raise SparkUnavailableError(
            "Spark needs a Java runtime (17 or newer) and none was found: install one "
            "(e.g. apt-get install default-jre-headless) or set JAVA_HOME"
        )


@contextmanager
def _no_pandas_version_warning() -> Iterator[None]:
    # PySpark warns about new pandas releases when a session or an Arrow UDF is created;
    # no pandas conversion by Spark is involved here (score_arrow_batch converts with
    # pyarrow, as the single-machine job does), so the warning is noise.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas")
        yield


def _under_spark_submit() -> bool:
    # spark-submit starts the Python driver with the JVM already running and tells it
    # where through this variable; its master and settings are then already in force.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def spark_session(
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
    app_name: str = "clustercls",
) -> SparkSession:
    """The active Spark session, or a new one.

    Under `spark-submit`, or when a session is already active (a notebook, a test), that
    session and its master are used as they are. Otherwise a session is started on
    `master` (default `local[*]`). For a local master the Python workers run this
    interpreter (`PYSPARK_PYTHON` is set to it unless already set), since the `python3`
    Spark would otherwise pick need not have clustercls installed.

    Args:
        master: Spark master URL (`local[2]`, `spark://host:7077`, `yarn`, `k8s://...`).
        conf: Extra Spark settings for a new session.
        app_name: Application name shown by the cluster manager.

    Returns:
        The session.

    Raises:
        SparkUnavailableError: If pyspark or Java is missing.
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None or _under_spark_submit():
        if master is not None:
            log.warning("a Spark session already exists; its master is used, not %s", master)
        if active is not None:
            return active
        with _no_pandas_version_warning():
            session = SparkSession.builder.appName(app_name).getOrCreate()
        session.sparkContext.setLogLevel("WARN")
        return session
    _require_java()
    master = master or DEFAULT_MASTER
    if master.startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        os.environ["PYSPARK_PYTHON"] = sys.executable
    settings = {
        # Spark's stage progress bar is for people watching a terminal, not for logs.
        "spark.ui.showConsoleProgress": str(sys.stderr.isatty()).lower(),
        **(conf or {}),
    }
    builder = SparkSession.builder.appName(app_name).master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    with _no_pandas_version_warning():
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


class _PidList:
    """Accumulator parameter: the ids of the worker processes that loaded the model.

    A list rather than a count so that a test (or an operator) can see that no process
    loaded it twice.
    """

    def zero(self, value: list[int]) -> list[int]:
        return []

    def addInPlace(self, value1: list[int], value2: list[int]) -> list[int]:
        value1.extend(value2)
        return value1


@dataclass
class ScoringStats:
    """Counters filled on the executors while a scored DataFrame is computed.

    Spark accumulators: read them after an action; a retried task counts again.
    """

    loads: Any
    batches: Any

    @classmethod
    def create(cls, spark: SparkSession) -> ScoringStats:
        """New zeroed counters in `spark`'s context."""
        context = spark.sparkContext
        return cls(loads=context.accumulator([], _PidList()), batches=context.accumulator(0))

    @property
    def model_loads(self) -> int:
        """How many times a worker process loaded the model."""
        return len(self.loads.value)

    @property
    def loading_processes(self) -> list[int]:
        """The process id of each load (a repeated id would mean a process loaded twice)."""
        return list(self.loads.value)

    @property
    def arrow_batches(self) -> int:
        """Arrow batches scored."""
        return int(self.batches.value)


# --- executor side -------------------------------------------------------------------

_WORKER_MODELS: dict[str, Model] = {}
_WORKER_CACHE_SIZE = 2
"""Models a worker process keeps: enough for two models in one job, bounded for long sessions."""


def _worker_model(name: str, loads: Any) -> Model:
    """The shipped model `name`, loaded (and verified) once per Python worker process."""
    model = _WORKER_MODELS.get(name)
    if model is None:
        from pyspark import SparkFiles

        from clustercls.predict import Model

        model = Model(load_artifact(Path(SparkFiles.get(name))), n_jobs=1)
        while len(_WORKER_MODELS) >= _WORKER_CACHE_SIZE:
            _WORKER_MODELS.pop(next(iter(_WORKER_MODELS)))
        _WORKER_MODELS[name] = model
        if loads is not None:
            loads.add([os.getpid()])
    return model


def score_arrow_batch(model: Model, batch: pa.RecordBatch, large_strings: bool = False):
    """Score one Arrow batch: its columns (clashing names renamed) plus the added ones.

    Args:
        model: A loaded model.
        batch: Rows with a `title` column (and optionally `is_cross_border`).
        large_strings: Emit the added text columns as Arrow `large_string` (Spark's
            `spark.sql.execution.arrow.useLargeVarTypes`).

    Returns:
        A RecordBatch with the same rows in the same order.
    """
    import pyarrow as pa

    from clustercls.batch import score_chunk

    types = {
        "string": pa.large_string() if large_strings else pa.string(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
    }
    names = output_names(batch.schema.names)
    needed = ["title", *([_CROSS_BORDER] if _CROSS_BORDER in batch.schema.names else [])]
    if batch.num_rows == 0:
        added = [pa.array([], types[dtype]) for _, dtype in OUTPUT.file_columns()]
        return pa.RecordBatch.from_arrays([*batch.columns, *added], names=names)
    # The same pandas conversion the single-machine job applies to a Parquet batch, on the
    # columns prediction reads; the rest never leaves Arrow.
    scored = score_chunk(model, batch.select(needed).to_pandas())
    added = [
        pa.array(
            scored[name].to_numpy(dtype=object if dtype == "string" else None),
            type=types[dtype],
        )
        for name, dtype in OUTPUT.file_columns()
    ]
    return pa.RecordBatch.from_arrays([*batch.columns, *added], names=names)


class _ScorePartition:
    """The function `mapInArrow` runs over each partition's batches."""

    def __init__(self, model_name: str, large_strings: bool, stats: ScoringStats | None) -> None:
        self.model_name = model_name
        self.large_strings = large_strings
        self.loads = None if stats is None else stats.loads
        self.batches = None if stats is None else stats.batches

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        model = None
        for batch in batches:
            if model is None:
                # On the first batch: a partition with no rows loads nothing.
                model = _worker_model(self.model_name, self.loads)
            if self.batches is not None:
                self.batches.add(1)
            yield score_arrow_batch(model, batch, self.large_strings)


# --- driver side ---------------------------------------------------------------------


def output_names(columns: list[str]) -> list[str]:
    """Output column names, as the single-machine job names them: input columns (one that
    shares an added column's name becomes `input_<name>`), then the added columns."""
    return [*(f"input_{c}" if c in ADDED_COLUMNS else c for c in columns), *ADDED_COLUMNS]


def output_schema(schema):
    """The Spark schema `score_dataframe` returns for an input schema.

    Raises:
        InputError: If there is no `title` column, or the output names would collide.
    """
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType

    names = [f.name for f in schema.fields]
    if "title" not in names:
        raise InputError(f"no 'title' column (columns: {', '.join(names)})")
    out_names = output_names(names)
    # Spark's writers compare names case-insensitively by default.
    seen = Counter(n.lower() for n in out_names)
    clashes = sorted(n for n in out_names if seen[n.lower()] > 1)
    if clashes:
        raise InputError(f"output columns would collide: {', '.join(dict.fromkeys(clashes))}")
    fields = [
        StructField(name, f.dataType, f.nullable, f.metadata)
        for name, f in zip(out_names[: len(names)], schema.fields, strict=True)
    ]
    types = {"string": StringType(), "float64": DoubleType(), "bool": BooleanType()}
    fields += [StructField(c, types[dtype], True) for c, dtype in OUTPUT.file_columns()]
    return StructType(fields)


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
