"""Executor side: each Python worker loads the shipped model once and scores Arrow batches
with the single-machine job's own function."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clustercls.artifact import load_artifact
from clustercls.batch import ADDED_COLUMNS, InputError
from clustercls.schema import OUTPUT

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

    from clustercls.predict import Model

_CROSS_BORDER = "is_cross_border"


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
