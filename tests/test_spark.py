"""Spark scoring: the same rows, columns and values as the single-machine job.

Spark runs in local mode (`local[2]`, one session for the module). The tests skip when
pyspark or a Java runtime is missing, except the ones checking what happens then.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from clustercls.artifact import ArtifactError
from clustercls.batch import ADDED_COLUMNS, InputError, predict_file
from clustercls.cli import EXIT_DATA, EXIT_MODEL, EXIT_USAGE, app

HAVE_PYSPARK = importlib.util.find_spec("pyspark") is not None
HAVE_JAVA = shutil.which("java") is not None or (
    "JAVA_HOME" in os.environ and (Path(os.environ["JAVA_HOME"]) / "bin" / "java").is_file()
)
needs_spark = pytest.mark.skipif(
    not (HAVE_PYSPARK and HAVE_JAVA),
    reason="needs pyspark (pip install 'clustercls[spark]') and a Java runtime",
)
runner = CliRunner()

# A zone with daylight saving: the two instants below are both 01:30 local time on the
# night the clocks go back, which a conversion through local time would merge.
SESSION_TZ = "America/New_York"
_AMBIGUOUS = pd.to_datetime(["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"])

_TITLES = [
    "Kopi Asli Bali",
    None,
    "",
    "   \t  ",
    "\u200b\u200c\u200d",
    "Kemeja Premium Jogja " + "x" * 5000,
    "1234567890",
    "🔥🔥 Kaos Motif Bunga Bandung 😍 READY",
    "Кеmеја Рrеmium Ваli",  # Cyrillic look-alikes
    "Lukisan Klasik Garut",
    "Kopi \ufffd Bali",
    "<b>Madu &amp; Asli</b> Jakarta",
    "Charger Mini Surabaya",
    "Kaos\nMotif\tBunga",
]
_FLAGS = ["true", "false", None, "no", "1", "YES", "maybe", "0", "", "t", "F", "n", "TRUE", "1"]


def hostile(copies: int = 3) -> pd.DataFrame:
    """Listings with every kind of bad title, clashing and extra columns, repeated."""
    n = len(_TITLES)
    frame = pd.DataFrame(
        {
            "id": range(n * copies),
            "title": _TITLES * copies,
            "is_cross_border": _FLAGS * copies,
            "cluster": ["seller said food"] * (n * copies),  # clashes with an added column
            "price": [float(i) if i % 4 else None for i in range(n * copies)],
            "listed_at": [_AMBIGUOUS[i % 2] for i in range(n * copies)],
        }
    )
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def read_scored(path: Path) -> pd.DataFrame:
    """A scored Parquet file or folder, sorted by id, timestamps as UTC instants."""
    # Without the pandas metadata the single-machine writer stores, both read the same way.
    frame = pq.read_table(path).to_pandas(ignore_metadata=True)
    frame = frame.sort_values("id").reset_index(drop=True)
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            values = frame[column]
            values = values.dt.tz_localize("UTC") if values.dt.tz is None else values
            frame[column] = values.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    return frame


def assert_same_output(spark_out: Path, single_out: Path) -> pd.DataFrame:
    """Spark's output equals the single-machine output, row for row, all columns."""
    actual, expected = read_scored(spark_out), read_scored(single_out)
    assert list(actual.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False)
    return actual


@pytest.fixture(scope="module")
def spark():
    """One local Spark session for the module, Python workers on this interpreter."""
    if not (HAVE_PYSPARK and HAVE_JAVA):
        pytest.skip("needs pyspark and a Java runtime")
    from clustercls.spark import spark_session

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYSPARK_PYTHON", sys.executable)
        session = spark_session(
            "local[2]",
            conf={
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
                "spark.sql.shuffle.partitions": "2",
                "spark.sql.session.timeZone": SESSION_TZ,
                # Start-up over peak speed: the tests score a few hundred rows.
                "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
            },
        )
        yield session
        session.stop()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def single_machine(model_dir: Path, frame: pd.DataFrame, folder: Path) -> Path:
    """The single-machine job's output for `frame`."""
    from clustercls.predict import load_model

    src, dst = folder / "single_in.parquet", folder / "single_out.parquet"
    frame.to_parquet(src, index=False)
    predict_file(load_model(model_dir), src, dst, chunk_size=7)
    return dst


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary folders a run could have left beside its output."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".out")]


@needs_spark
def test_output_equals_single_machine_row_for_row(spark, tiny_model_dir, tmp_path) -> None:
    from clustercls.spark import predict_parquet

    frame = hostile()
    src = tmp_path / "listings.parquet"
    frame.to_parquet(src, index=False)
    summary = predict_parquet(src, tmp_path / "out", tiny_model_dir, spark=spark, partitions=3)
    out = assert_same_output(tmp_path / "out", single_machine(tiny_model_dir, frame, tmp_path))

    assert list(out.columns) == [
        "id",
        "title",
        "is_cross_border",
        "input_cluster",
        "price",
        "listed_at",
        *ADDED_COLUMNS,
    ]
    assert summary.rows == len(out) == len(frame)
    assert summary.partitions == 3
    statuses = set(out["status"])
    assert {"ok", "missing_title", "empty_title", "truncated", "invalid_text"} <= statuses
    assert (out.loc[out["status"] != "ok", "decision"] != "block").all()
    # The session's time zone has daylight saving; instants still come out unchanged.
    assert out["listed_at"].tolist() == read_scored(src)["listed_at"].tolist()
    assert summary.statuses == dict(out["status"].value_counts())
    assert not leftovers(tmp_path)


@needs_spark
@pytest.mark.parametrize(
    "titles",
    [
        pd.Series([1, None, 3, 4], dtype="Int64"),
        pd.Series([1.5, float("nan"), 2.0, -1.0]),
        pd.Series([b"Kopi Asli Bali", b"\xff\xfe bad", None, b""], dtype=object),
        pd.Series([True, False, None, True], dtype="boolean"),
    ],
    ids=["int", "float", "bytes", "bool"],
)
def test_non_text_title_columns_get_statuses_like_the_cli(
    spark, tiny_model_dir, tmp_path, titles
) -> None:
    from clustercls.spark import predict_parquet

    frame = pd.DataFrame({"id": range(len(titles)), "title": titles})
    src = tmp_path / "in.parquet"
    frame.to_parquet(src, index=False)
    predict_parquet(src, tmp_path / "out", tiny_model_dir, spark=spark)
    out = assert_same_output(tmp_path / "out", single_machine(tiny_model_dir, frame, tmp_path))
    assert (out["status"][titles.isna().to_numpy()] == "missing_title").all()
    assert (out.loc[out["status"] != "ok", "decision"] == "review").all()


@needs_spark
def test_model_loaded_once_per_worker_process(spark, tiny_model_dir, tmp_path) -> None:
    from clustercls.spark import ScoringStats, score_dataframe

    # A model no earlier test shipped, so the worker processes start without it.
    model_dir = renamed_copy(tiny_model_dir, tmp_path, "v-load-once")

    partitions, rows, per_batch = 8, 4000, 10
    frame = spark.createDataFrame(
        pd.DataFrame({"id": range(rows), "title": [f"Kopi Asli Bali {i}" for i in range(rows)]})
    ).repartition(partitions)
    stats = ScoringStats.create(spark)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(per_batch))
    try:
        scored = score_dataframe(frame, model_dir, stats=stats)
        assert scored.count() == rows
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")

    pids = stats.loading_processes
    assert stats.arrow_batches >= rows // per_batch
    assert 1 <= len(pids) <= partitions
    assert len(set(pids)) == len(pids), f"a worker process loaded the model twice: {pids}"
    assert len(pids) * 50 <= stats.arrow_batches


@needs_spark
def test_no_title_column_fails_before_any_output(spark, tiny_model_dir, tmp_path) -> None:
    from clustercls.spark import predict_parquet

    pd.DataFrame({"id": [1], "name": ["Kopi"]}).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(InputError, match="no 'title' column"):
        predict_parquet(tmp_path / "in.parquet", tmp_path / "out", tiny_model_dir, spark=spark)
    assert not (tmp_path / "out").exists()
    assert not leftovers(tmp_path)


@needs_spark
def test_tampered_model_fails_before_any_job(spark, tiny_model_dir, tmp_path) -> None:
    from clustercls.spark import predict_parquet

    tampered = shutil.copytree(tiny_model_dir, tmp_path / "tampered")
    with (tampered / "model.joblib").open("ab") as fh:
        fh.write(b"!")
    pd.DataFrame({"title": ["Kopi Asli Bali"]}).to_parquet(tmp_path / "in.parquet")
    jobs_before = len(spark.sparkContext.statusTracker().getJobIdsForGroup())
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        predict_parquet(tmp_path / "in.parquet", tmp_path / "out", tampered, spark=spark)
    assert len(spark.sparkContext.statusTracker().getJobIdsForGroup()) == jobs_before
    assert not (tmp_path / "out").exists()
    assert not leftovers(tmp_path)


def renamed_copy(model_dir: Path, folder: Path, version: str) -> Path:
    """A copy of a model under another version id: a model no earlier test shipped."""
    copy = shutil.copytree(model_dir, folder / version)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["version"] = version
    (copy / "metadata.json").write_text(json.dumps(meta))
    return copy


@needs_spark
def test_model_failing_on_an_executor_leaves_nothing(spark, tiny_model_dir, tmp_path) -> None:
    from pyspark import SparkFiles

    from clustercls.predict import load_model
    from clustercls.spark import job as spark_module

    # Verified on the driver, then spoilt where the workers read it: what an executor
    # with another scikit-learn version would meet. Both the shipped copy and its source
    # change alike, or Spark would refuse to fetch a file that differs from its source.
    model = load_model(renamed_copy(tiny_model_dir, tmp_path, "v-spoilt"))
    name = spark_module.ship_model(spark, model)
    for folder in (Path(SparkFiles.get(name)), spark_module._staging_root() / name):
        with (folder / "model.joblib").open("ab") as fh:
            fh.write(b"!")
    pd.DataFrame({"title": ["Kopi Asli Bali"] * 10}).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(ArtifactError, match=r"on an executor: .*checksum mismatch"):
        spark_module.predict_parquet(tmp_path / "in.parquet", tmp_path / "out", model, spark=spark)
    assert not (tmp_path / "out").exists()
    assert not leftovers(tmp_path)


@needs_spark
def test_corrupt_part_file_fails_the_job_and_leaves_nothing(
    spark, tiny_model_dir, tmp_path
) -> None:
    from clustercls.spark import predict_parquet

    (tmp_path / "in").mkdir()
    pd.DataFrame({"title": ["Kopi Asli Bali"]}).to_parquet(tmp_path / "in" / "part-0.parquet")
    (tmp_path / "in" / "part-1.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    with pytest.raises(InputError, match=r"cannot read the input: .*part-1\.parquet"):
        predict_parquet(tmp_path / "in", tmp_path / "out", tiny_model_dir, spark=spark)
    assert not (tmp_path / "out").exists()
    assert not leftovers(tmp_path)


@needs_spark
def test_existing_output_is_kept_unless_overwrite(spark, tiny_model_dir, tmp_path) -> None:
    from clustercls.spark import predict_parquet

    pd.DataFrame({"title": ["Kopi Asli Bali", ""]}).to_parquet(tmp_path / "in.parquet")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("earlier run")
    with pytest.raises(InputError, match="already exists"):
        predict_parquet(tmp_path / "in.parquet", tmp_path / "out", tiny_model_dir, spark=spark)
    assert (tmp_path / "out" / "keep.txt").is_file()

    summary = predict_parquet(
        tmp_path / "in.parquet", tmp_path / "out", tiny_model_dir, spark=spark, overwrite=True
    )
    assert summary.rows == 2
    assert not (tmp_path / "out" / "keep.txt").exists()
    assert pd.read_parquet(tmp_path / "out")["status"].tolist() == ["ok", "empty_title"]
    assert not leftovers(tmp_path)


@needs_spark
def test_cli_on_a_parquet_folder_matches_cli_predict(spark, tiny_model_dir, in_tmp) -> None:
    frame = hostile(copies=2)
    (in_tmp / "listings").mkdir()
    for part, rows in enumerate((frame.iloc[:9], frame.iloc[9:20], frame.iloc[20:])):
        rows.to_parquet(in_tmp / "listings" / f"part-{part}.parquet", index=False)
    frame.to_parquet(in_tmp / "listings.parquet", index=False)
    model = ["--model", str(tiny_model_dir)]

    single = runner.invoke(app, ["predict", "-i", "listings.parquet", "-o", "single.parquet", *model, "--jobs", "1"])  # fmt: skip
    assert single.exit_code == 0, single.output
    scored = runner.invoke(app, ["spark-predict", "-i", "listings", "-o", "scored", *model])
    assert scored.exit_code == 0, scored.output
    assert f"{len(frame)} rows scored" in scored.output
    assert f"{len(frame)} rows in, {len(frame)} out" in scored.output
    assert_same_output(in_tmp / "scored", in_tmp / "single.parquet")
    # The same summary as the single-machine run's, counted from what Spark wrote.
    on_spark = json.loads((in_tmp / "scored.summary.json").read_text())
    alone = json.loads((in_tmp / "single.parquet.summary.json").read_text())
    for key in ("input", "output", "seconds"):
        on_spark.pop(key), alone.pop(key)
    assert on_spark == alone
    assert on_spark["judgeable_cross_border"] < on_spark["judgeable"]  # domestic rows left out

    again = runner.invoke(app, ["spark-predict", "-i", "listings", "-o", "scored", *model])
    assert again.exit_code == EXIT_DATA
    assert again.output.strip().startswith("error: ") and "already exists" in again.output

    pd.DataFrame({"name": ["Kopi"]}).to_parquet(in_tmp / "bad.parquet")
    bad = runner.invoke(app, ["spark-predict", "-i", "bad.parquet", "-o", "bad_out", *model])
    assert bad.exit_code == EXIT_DATA and "no 'title' column" in bad.output
    missing = runner.invoke(app, ["spark-predict", "-i", "nowhere", "-o", "bad_out", *model])
    assert missing.exit_code == EXIT_DATA and "input not found" in missing.output
    no_model = runner.invoke(app, ["spark-predict", "-i", "listings", "-o", "bad_out"])
    assert no_model.exit_code == EXIT_MODEL and "no trained model found" in no_model.output
    assert not (in_tmp / "bad_out").exists()
    assert not (in_tmp / "bad_out.summary.json").exists()
    assert not [p for p in in_tmp.iterdir() if p.name.startswith(".")]


@pytest.mark.slow  # a second JVM and Python driver: about 20 s on two cores
@needs_spark
def test_spark_submit_runs_the_same_command(spark, tiny_model_dir, tmp_path) -> None:
    """The README's cluster recipe, with spark-submit in local mode."""
    import pyspark

    frame = hostile(copies=1)
    frame.to_parquet(tmp_path / "listings.parquet", index=False)
    launcher = tmp_path / "clustercls_main.py"
    launcher.write_text("from clustercls.cli import main\nmain()\n")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    env.pop("PYSPARK_GATEWAY_SECRET", None)
    # The same command line the README gives for a cluster, pointed at local[1].
    command = [
        str(
            Path(os.environ.get("SPARK_HOME") or Path(pyspark.__file__).parent) / "bin/spark-submit"
        ),
        "--master",
        "local[1]",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        f"spark.pyspark.python={sys.executable}",
        str(launcher),
        "spark-predict",
        "--input",
        str(tmp_path / "listings.parquet"),
        "--output",
        str(tmp_path / "scored"),
        "--model",
        str(tiny_model_dir),
    ]
    # spark-submit passes the Python driver's stderr on through its stdout.
    done = subprocess.run(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"{len(frame)} rows scored on local[1]" in done.stdout, done.stdout[-3000:]
    assert_same_output(tmp_path / "scored", single_machine(tiny_model_dir, frame, tmp_path))


def test_without_pyspark_the_command_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path, tmp_path: Path
) -> None:
    # None in sys.modules makes `import pyspark` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "pyspark", None)
    pd.DataFrame({"title": ["Kopi"]}).to_parquet(tmp_path / "in.parquet")
    result = runner.invoke(
        app,
        [
            "spark-predict",
            "-i",
            str(tmp_path / "in.parquet"),
            "-o",
            str(tmp_path / "out"),
            "--model",
            str(tiny_model_dir),
        ],
    )
    assert result.exit_code == EXIT_USAGE
    assert result.output.strip() == (
        "error: spark-predict needs pyspark, which is not installed: "
        'pip install "clustercls[spark]"'
    )
    assert not (tmp_path / "out").exists()


def test_import_needs_no_pyspark_and_does_nothing() -> None:
    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "import os; before = dict(os.environ)\n"
        "import clustercls.spark, clustercls.cli\n"
        "assert dict(os.environ) == before\n"
        "assert not [m for m in sys.modules if m.startswith('pyspark') and sys.modules[m]]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_missing_java_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from clustercls.spark import session as spark

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(spark.shutil, "which", lambda name: None)
    with pytest.raises(spark.SparkUnavailableError, match="needs a Java runtime"):
        spark._require_java()
