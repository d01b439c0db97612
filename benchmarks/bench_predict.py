"""Benchmark: clustercls prediction against fastText on the same titles and the same machine.

Prints, side by side:
- batch throughput (titles/s) of `model.predict` (one process, and `n_jobs=2`) and of
  fastText's `predict` on a list, on test-split titles repeated to the batch size and on
  distinct titles only, the tools' runs alternating so each ratio compares like with like;
- single-title latency (median and p99, ms);
- peak memory of `clustercls predict` on a 1,000,000-row CSV: the largest sum of resident
  (and of proportional) memory over its process and its workers, sampled while it runs;
- each model's macro-F1 and protected-vs-other F1 on the leave-one-source-out evaluation
  (fastText is trained once per held-out source group, on the same folds).

Run after `make demo` (it needs a trained model and the processed dataset):

    .venv/bin/python benchmarks/bench_predict.py [--rows 1000000] [--skip-memory] [--skip-loso]

What it prints is also written, with the date, the commit and the machine, to
`benchmarks/results/bench_predict.md` (`bench_predict_memory.md` with --memory-only;
`--out` elsewhere, `--out ''` not at all), so the docs can point to measured numbers
instead of copies of them. Nothing is written when the run fails.

A script, not a test: numbers depend on the machine; tests stay deterministic.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from clustercls.artifact import latest_model_dir
from clustercls.config import DataConfig
from clustercls.data import load_dataset, load_source_config
from clustercls.evaluate import classification_metrics
from clustercls.parallel import usable_cores
from clustercls.policy import load_policy
from clustercls.predict import compiled_parts, load_model


def fasttext_line(title: str) -> str:
    """fastText's input: one lowercase line, no newlines."""
    return re.sub(r"\s+", " ", str(title)).strip().lower()


def train_fasttext(frame: pd.DataFrame, workdir: Path):
    """Train a supervised fastText model (word 1-2 grams, char 3-5 subwords)."""
    import fasttext

    path = workdir / "ft_train.txt"
    with path.open("w", encoding="utf-8") as fh:
        for title, cluster in zip(frame["title"], frame["cluster"], strict=True):
            fh.write(f"__label__{cluster} {fasttext_line(title)}\n")
    return fasttext.train_supervised(
        str(path), epoch=10, lr=0.5, wordNgrams=2, minn=3, maxn=5, dim=50, verbose=0, thread=2
    )


def fasttext_predict(model, titles: list[str]) -> list[str]:
    """Predict a list at once (fastText's single-string predict breaks on numpy 2)."""
    labels, _ = model.predict([fasttext_line(t) for t in titles], k=1)
    return [lab[0].removeprefix("__label__") for lab in labels]


def throughput(fn, titles: list[str], repeats: int = 3) -> float:
    """Best-of-N titles per second."""
    return paired_throughput({"fn": fn}, titles, repeats)["fn"]


def paired_throughput(fns: dict, titles: list[str], repeats: int = 3) -> dict[str, float]:
    """Best-of-N titles per second of each function, their runs interleaved.

    This machine's speed drifts by tens of percent over minutes; alternating the tools
    lets each ratio compare runs made under the same conditions.
    """
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(titles)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: len(titles) / seconds for name, seconds in best.items()}


def latency_ms(fn, titles: list[str], n: int = 500) -> tuple[float, float]:
    """Median and p99 latency of scoring one title at a time."""
    times = []
    for title in titles[:n]:
        start = time.perf_counter()
        fn([title])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times)), float(np.percentile(times, 99))


def _tree_memory_kb(pid: int) -> tuple[int, int]:
    """Resident (RSS) and proportional (PSS) memory of a process and all its descendants,
    in KiB, from Linux /proc. RSS counts a page shared by two processes twice; PSS splits
    it between them, so the PSS sum is what the tree really occupies."""
    rss = pss = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return rss, pss


def cli_peak_memory(
    titles: list[str], rows: int, model_dir: Path, jobs: int | None = None
) -> tuple[float, float, float]:
    """Peak RSS and PSS (MiB) of `clustercls predict` and its worker processes together,
    sampled every 50 ms, and its wall time (s), on a `rows`-row CSV."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "big.csv", Path(tmp) / "scored.csv"
        reps = rows // len(titles) + 1
        frame = pd.DataFrame({"listing_id": np.arange(rows), "title": (titles * reps)[:rows]})
        frame.to_csv(src, index=False)
        del frame
        command = [
            sys.executable,
            "-m",
            "clustercls.cli",
            "predict",
            "-i",
            str(src),
            "-o",
            str(dst),
            "--model",
            str(model_dir),
            *([] if jobs is None else ["--jobs", str(jobs)]),
        ]
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak_rss = peak_pss = 0
        while proc.poll() is None:
            rss, pss = _tree_memory_kb(proc.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        if proc.returncode:
            raise RuntimeError(proc.stderr.read().decode())
        with dst.open() as fh:
            out_rows = sum(1 for _ in fh) - 1
        assert out_rows == rows, f"output has {out_rows} rows, input {rows}"
        return peak_rss / 1024, peak_pss / 1024, seconds


def print_memory_runs(dataset: pd.DataFrame, rows: int, model_dir: Path, jobs: int | None) -> None:
    """Peak memory and wall time of `clustercls predict` on two `rows`-row CSV files: the
    test titles repeated (each chunk de-duplicates to a few thousand titles) and distinct
    titles (every dataset title made unique by a product code, the worst case)."""
    test_titles = dataset.loc[dataset["split"] == "test", "title"].tolist()
    titles = list(dict.fromkeys(dataset["title"]))
    workloads = {
        "test titles repeated": test_titles,
        "distinct titles": [f"{titles[i % len(titles)]} SKU{i}" for i in range(rows)],
    }
    for label, sample in workloads.items():
        peak, pss, seconds = cli_peak_memory(sample, rows, model_dir, jobs)
        print(
            f"clustercls predict --jobs {jobs or 'default'}, {rows:,} rows, {label}: "
            f"peak RSS {peak:.0f} MiB, peak PSS {pss:.0f} MiB (process tree), "
            f"{seconds:.1f} s, {rows / seconds:,.0f} rows/s"
        )


def fasttext_loso(dataset: pd.DataFrame, groups: dict[str, str], workdir: Path) -> dict:
    """fastText on the same leave-one-source-out folds as clustercls's evaluation."""
    frame = dataset.assign(group_=dataset["source"].map(groups))
    policy = load_policy(DataConfig().policy)
    macro, pvo = [], []
    for name in sorted(frame["group_"].unique()):
        test = frame[frame["group_"] == name]
        train = frame[(frame["group_"] != name) & ~frame["dup_group"].isin(set(test["dup_group"]))]
        model = train_fasttext(train, workdir)
        metrics = classification_metrics(
            test["cluster"],
            fasttext_predict(model, test["title"].tolist()),
            labels=policy.clusters,
            protected=policy.protected,
        )
        macro.append(metrics["macro_f1"])
        if metrics["protected_vs_other"]["support"]:
            pvo.append(metrics["protected_vs_other"]["f1"])
    return {
        "mean_macro_f1": float(np.mean(macro)),
        "mean_protected_vs_other_f1": float(np.mean(pvo)),
    }


def stage_breakdown(model, titles: list[str]) -> dict[str, float]:
    """Microseconds per distinct title spent in each stage of `model.predict`, one
    process, best of three: where the time goes, for whoever speeds it up next."""
    normalised = list(model._normalize(titles))
    stages = {"normalise": model._normalize}
    features = normalised
    for _, step in model.pipeline.steps[1:-1]:
        for name, block in getattr(step, "transformer_list", [("features", step)]):
            stages[f"{name} features"] = lambda _, block=block: block.transform(normalised)
        features = step.transform(features)
    stages["calibrated scores"] = lambda _: model._classifier.predict_proba(features)
    stages["whole predict"] = model.predict
    return {name: 1e6 / throughput(fn, titles) for name, fn in stages.items()}


class Tee:
    """A stdout that also keeps a copy of what is printed, for the results file
    (`bench_spark.py` uses it and the two functions below too)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def machine_facts() -> dict[str, str]:
    """Date, commit and machine of a run: a number means little without them."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        memory = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        memory = ""
    compiled = [name for name, used in compiled_parts().items() if used]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": f"{cpu}, {os.cpu_count()} cores ({usable_cores()} usable){memory}",
        "software": f"Python {platform.python_version()} on {platform.platform()}",
        "compiled parts": ", ".join(compiled) or "none (pure Python)",
    }


def write_results(path: Path, title: str, facts: dict[str, str], printed: str) -> None:
    """Write a run's facts and its printed output as Markdown."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", *(f"- {key}: {value}" for key, value in facts.items())]
    lines += ["", "Output as printed:", "", "```text", printed.strip("\n"), "```", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    """Run the benchmark, print the table and write it to the results file."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--dataset", type=Path, default=Path("data/processed/dataset.parquet"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000, help="titles per throughput batch")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-loso", action="store_true")
    parser.add_argument("--memory-only", action="store_true", help="only the CLI memory run")
    parser.add_argument(
        "--stages", action="store_true", help="also print the time per title of each stage"
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="--jobs for the CLI memory run [default: the CLI's]"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Markdown file for the results [default: benchmarks/results/bench_predict.md, "
        "or bench_predict_memory.md with --memory-only; '' writes none]",
    )
    args = parser.parse_args()
    if args.out is None:
        name = "bench_predict_memory.md" if args.memory_only else "bench_predict.md"
        args.out = Path("benchmarks/results") / name

    run_and_record(benchmark, args, "bench_predict.py results")


def run_and_record(run, args: argparse.Namespace, title: str) -> None:
    """Run a benchmark, then write what it printed, with the machine's facts, to
    `args.out` ('' writes nothing; a failed run writes nothing either)."""
    facts = machine_facts()
    tee = Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        run(args)
    if str(args.out) not in ("", "."):
        write_results(args.out, title, facts, tee.copy.getvalue())
        print(f"\nresults written to {args.out}")


def benchmark(args: argparse.Namespace) -> None:
    """Run the benchmark and print the table."""
    model_dir = args.model or latest_model_dir(Path("models"))
    if args.memory_only:
        print_memory_runs(load_dataset(args.dataset), args.rows, model_dir, args.jobs)
        return
    model = load_model(model_dir, n_jobs=1)
    model_2 = load_model(model_dir, n_jobs=2)
    model_2.predict(["warm up the worker processes"] * 40_000)
    dataset = load_dataset(args.dataset)
    train, test = dataset[dataset["split"] == "train"], dataset[dataset["split"] == "test"]
    titles = test["title"].tolist()
    batch = (titles * (args.batch // len(titles) + 1))[: args.batch]
    # Distinct titles only, so the within-call de-duplication cannot flatter the number.
    distinct = list(dict.fromkeys(dataset["title"]))[: args.batch]
    compiled = [name for name, used in compiled_parts().items() if used]
    print(
        f"model {model.version}; {len(batch)} titles per batch; cores: {os.cpu_count()};"
        f" compiled parts: {', '.join(compiled) or 'none'}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ft = train_fasttext(train, Path(tmp))
        ft_train_s = time.perf_counter() - start

        def ft_predict(t: list[str]) -> list[str]:
            return fasttext_predict(ft, t)

        # Both tools timed in alternation: see `paired_throughput`.
        same = paired_throughput(
            {"c1": model.predict, "c2": model_2.predict, "ft": ft_predict}, batch
        )
        distinct_runs = paired_throughput(
            {"c1": model.predict, "c2": model_2.predict, "ft": ft_predict}, distinct
        )
        labels = {"labels": model.labels, "protected": model.protected}
        results = {
            "clustercls": {
                "titles_per_s": same["c1"],
                "titles_per_s_distinct": distinct_runs["c1"],
                "titles_per_s_2jobs": same["c2"],
                "titles_per_s_2jobs_distinct": distinct_runs["c2"],
                "latency_ms": latency_ms(model.predict, titles),
                "random_macro_f1": classification_metrics(
                    test["cluster"], model.predict(titles)["cluster"], **labels
                )["macro_f1"],
            },
            "fasttext": {
                "titles_per_s": same["ft"],
                "titles_per_s_distinct": distinct_runs["ft"],
                "latency_ms": latency_ms(ft_predict, titles),
                "random_macro_f1": classification_metrics(
                    test["cluster"], ft_predict(titles), **labels
                )["macro_f1"],
                "train_s": ft_train_s,
            },
        }
        # The nine LOSO trainings come after all timing, so they cannot disturb it.
        ft_loso = (
            None
            if args.skip_loso
            else fasttext_loso(
                dataset,
                {
                    s.name: s.group
                    for s in load_source_config(Path("data/sources.toml")).sources.values()
                },
                Path(tmp),
            )
        )

    evaluation = json.loads((Path(model_dir) / "evaluation.json").read_text())
    loso = evaluation.get("leave_one_source_out") or {}
    results["clustercls"]["loso"] = {
        k: loso.get(k) for k in ("mean_macro_f1", "mean_protected_vs_other_f1")
    }
    results["fasttext"]["loso"] = ft_loso
    c, f = results["clustercls"], results["fasttext"]
    print(f"\n{'':<34}{'clustercls':>14}{'fastText':>14}{'ratio':>10}")
    for label, key, ft_key in [
        ("throughput, 1 process (titles/s)", "titles_per_s", "titles_per_s"),
        ("  same, distinct titles only", "titles_per_s_distinct", "titles_per_s_distinct"),
        ("throughput, n_jobs=2 (titles/s)", "titles_per_s_2jobs", "titles_per_s"),
        ("  same, distinct titles only", "titles_per_s_2jobs_distinct", "titles_per_s_distinct"),
    ]:
        print(f"{label:<34}{c[key]:>14,.0f}{f[ft_key]:>14,.0f}{c[key] / f[ft_key]:>10.2f}")
    print(
        f"{'single-title latency p50 (ms)':<34}{c['latency_ms'][0]:>14.3f}{f['latency_ms'][0]:>14.3f}{c['latency_ms'][0] / f['latency_ms'][0]:>10.1f}"
    )
    print(
        f"{'single-title latency p99 (ms)':<34}{c['latency_ms'][1]:>14.3f}{f['latency_ms'][1]:>14.3f}{c['latency_ms'][1] / f['latency_ms'][1]:>10.1f}"
    )
    print(
        f"{'random-split macro-F1':<34}{c['random_macro_f1']:>14.4f}{f['random_macro_f1']:>14.4f}"
    )
    if ft_loso:
        print(
            f"{'cross-source macro-F1 (LOSO mean)':<34}{c['loso']['mean_macro_f1']:>14.4f}{ft_loso['mean_macro_f1']:>14.4f}"
        )
        print(
            f"{'cross-source prot-vs-other F1':<34}{c['loso']['mean_protected_vs_other_f1']:>14.4f}{ft_loso['mean_protected_vs_other_f1']:>14.4f}"
        )
    if args.stages:
        print("\nmicroseconds per distinct title, one process (8,192 titles per call):")
        for name, micros in stage_breakdown(model, distinct[:8192]).items():
            print(f"  {name:<32}{micros:>8.1f}")
    if not args.skip_memory:
        print()
        print_memory_runs(dataset, args.rows, model_dir, args.jobs)
    print(
        f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
