"""Benchmark: `clustercls spark-predict` on Spark local[1] and local[2] against the
single-machine `clustercls predict`, on the same 1,000,000-row Parquet file.

Each run is the command a user types, in a child process, timed end to end (Spark's start
included). A second, 1,000-row run of each Spark command measures that fixed start-up
cost, so the table also shows the rate once Spark is up: what a cluster, where start-up
is paid once per day's job, scales.

The input holds the processed dataset's titles (every split, shuffled with a fixed seed)
repeated to the row count, with a listing id and an `is_cross_border` column, written in
row groups of 100,000 rows as data lake files usually are (Spark splits a file by row
group, so one row group would give one task whatever the cores).

Run after `make demo` (it needs a trained model and the processed dataset):

    .venv/bin/python benchmarks/bench_spark.py [--rows 1000000] [--input listings.parquet]

What it prints is also written, with the date, the commit and the machine, to
`benchmarks/results/bench_spark.md` (`--out` elsewhere, `--out ''` not at all). Nothing is
written when the run fails.

A script, not a test: numbers depend on the machine; tests stay deterministic.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from bench_predict import run_and_record  # the script beside this one

from clustercls.artifact import latest_model_dir
from clustercls.data import load_dataset

ROW_GROUP = 100_000


def make_input(dataset: Path, rows: int, path: Path) -> Path:
    """Write a `rows`-row Parquet file of real titles (see the module docstring)."""
    titles = load_dataset(dataset)["title"].drop_duplicates().sample(frac=1.0, random_state=0)
    values = np.resize(titles.to_numpy(dtype=object), rows)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "listing_id": np.arange(rows, dtype=np.int64),
            "title": values,
            "is_cross_border": rng.random(rows) < 0.3,
        }
    )
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=ROW_GROUP
    )
    return path


def run(command: list[str], output: Path) -> float:
    """Run one command to completion and return its wall time in seconds."""
    if output.is_dir():
        shutil.rmtree(output)
    output.unlink(missing_ok=True)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    """Build the input, time every configuration, print the table and write it."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--dataset", type=Path, default=Path("data/processed/dataset.parquet"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--input", type=Path, default=None, help="use this Parquet file instead")
    parser.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    parser.add_argument("--jobs", nargs="+", type=int, default=[1, 2], help="CLI --jobs values")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/results/bench_spark.md"),
        help="Markdown file for the results ('' writes none)",
    )
    args = parser.parse_args()

    run_and_record(benchmark, args, "bench_spark.py results")


def benchmark(args: argparse.Namespace) -> None:
    """Build the input, time every configuration, print the table."""
    model_dir = args.model or latest_model_dir(Path("models"))
    cli = [sys.executable, "-m", "clustercls.cli"]
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        work = Path(tmp)
        src = args.input or make_input(args.dataset, args.rows, work / "listings.parquet")
        small = make_input(args.dataset, 1_000, work / "small.parquet")
        rows = pq.read_metadata(src).num_rows
        print(
            f"model {model_dir.name}; {rows:,} rows in {pq.read_metadata(src).num_row_groups} "
            f"row groups; cores: {os.cpu_count()}"
        )

        results: list[tuple[str, float, float | None]] = []
        for jobs in args.jobs:
            out = work / "single.parquet"
            command = [*cli, "predict", "-i", str(src), "-o", str(out), "--model", str(model_dir)]
            seconds = run([*command, "--jobs", str(jobs)], out)
            assert pq.read_metadata(out).num_rows == rows
            results.append((f"clustercls predict --jobs {jobs}", seconds, None))
            print(f"  {results[-1][0]}: {seconds:.1f} s", flush=True)
        for master in args.masters:
            out = work / "spark_out"
            base = [*cli, "spark-predict", "--model", str(model_dir), "--master", master]
            seconds = run([*base, "-i", str(src), "-o", str(out)], out)
            assert pq.ParquetDataset(out).read(columns=["status"]).num_rows == rows
            startup = run([*base, "-i", str(small), "-o", str(out)], out)
            results.append((f"clustercls spark-predict --master {master}", seconds, startup))
            print(f"  {results[-1][0]}: {seconds:.1f} s (1,000 rows: {startup:.1f} s)", flush=True)

    baseline = rows / results[0][1]
    print(
        f"\n{'command':<44}{'wall s':>8}{'titles/s':>11}{'vs first':>10}"
        f"{'start-up s':>12}{'titles/s once up':>18}"
    )
    for label, seconds, startup in results:
        rate = rows / seconds
        line = f"{label:<44}{seconds:>8.1f}{rate:>11,.0f}{rate / baseline:>10.2f}"
        if startup is not None:
            steady = f"{rows / (seconds - startup):,.0f}" if seconds > startup else "n/a"
            line += f"{startup:>12.1f}{steady:>18}"
        print(line)
    spark = {label: (s, st) for label, s, st in results if st is not None}
    if len(spark) >= 2:
        (first, (s1, st1)), *_, (last, (s2, st2)) = spark.items()
        steady = f"{(s1 - st1) / (s2 - st2):.2f}x" if s1 > st1 and s2 > st2 else "n/a"
        print(
            f"\n{last.split()[-1]} vs {first.split()[-1]}: {s1 / s2:.2f}x end to end, "
            f"{steady} once Spark is up"
        )


if __name__ == "__main__":
    main()
