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

from clustercls.spark.executor import ScoringStats, output_names, output_schema, score_arrow_batch
from clustercls.spark.job import SparkSummary, predict_parquet, score_dataframe, ship_model
from clustercls.spark.session import (
    DEFAULT_MASTER,
    INSTALL_HINT,
    SparkUnavailableError,
    require_pyspark,
    spark_session,
)

__all__ = [
    "DEFAULT_MASTER",
    "INSTALL_HINT",
    "ScoringStats",
    "SparkSummary",
    "SparkUnavailableError",
    "output_names",
    "output_schema",
    "predict_parquet",
    "require_pyspark",
    "score_arrow_batch",
    "score_dataframe",
    "ship_model",
    "spark_session",
]
