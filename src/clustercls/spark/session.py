"""Starting Spark: pyspark and Java checks, and the session the job runs in."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[*]"
INSTALL_HINT = 'pip install "clustercls[spark]"'


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
