"""Classify marketplace listing titles into Indonesia's protected clusters.

Each command parses options and calls one library function.

\b
Exit codes (all commands):
  0  success
  1  unexpected internal error (a bug: please report it with the traceback)
  2  usage error (unknown option, missing argument) or a missing optional
     requirement (`spark-predict` without pyspark or Java)
  3  data or input error (unknown source file, unmapped category, label outside the
     policy, unreadable input, no `title` column)
  4  model error (no model, checksum or library-version mismatch)
  5  promotion refused (the candidate does not beat the champion)
"""

from __future__ import annotations

import json
from functools import wraps
from pathlib import Path
from typing import Annotated

import typer

EXIT_USAGE, EXIT_DATA, EXIT_MODEL, EXIT_NOT_PROMOTED = 2, 3, 4, 5

# The --tracking-uri option of the commands that log a run.
TrackingUri = Annotated[
    str | None,
    typer.Option(help="MLflow URI [default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db]."),
]

# The --model option of the commands that score: a folder or a registry URI.
ModelOrUri = Annotated[
    str | None,
    typer.Option(
        help="Model folder or models:/clustercls@champion [default: newest under models/]."
    ),
]

app = typer.Typer(
    help=__doc__,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
data_app = typer.Typer(help="Build and check the training dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")
review_app = typer.Typer(
    help="Write the review report and queue; `review import` feeds verdicts back.",
    invoke_without_command=True,
)
app.add_typer(review_app, name="review")


def _err(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def handles_errors(func):
    """Turn known errors into a one-line message and a documented exit code."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        from pydantic import ValidationError

        from clustercls.artifact import ArtifactError
        from clustercls.batch import InputError
        from clustercls.data import DataError

        try:
            return func(*args, **kwargs)
        except ValidationError as exc:
            first = exc.errors()[0]
            # A check across settings (a model validator) has no field to name.
            where = ".".join(str(part) for part in first["loc"]) or exc.title
            raise _err(f"invalid setting {where}: {first['msg']}", EXIT_USAGE) from None
        except (DataError, InputError, FileNotFoundError) as exc:
            raise _err(str(exc), EXIT_DATA) from None
        except ArtifactError as exc:
            raise _err(str(exc), EXIT_MODEL) from None

    return wrapper


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _tracking_overrides(enabled: bool | None, tracking_uri: str | None) -> dict:
    """The tracking settings given on the command line (the rest keep their value)."""
    given = {"enabled": enabled, "tracking_uri": tracking_uri}
    return {k: v for k, v in given.items() if v is not None}


def _log_run(config, result, tags: dict[str, str] | None = None) -> None:
    """Log a saved model's run to MLflow and register it, when tracking is on."""
    if not config.tracking.enabled:
        return
    from clustercls.tracking import log_training_run

    logged = log_training_run(
        config, result.model_dir, result.evaluation, result.metadata["metrics"], tags
    )
    _say(
        f"logged run {logged.run_id}; registered {config.tracking.registered_model} "
        f"version {logged.registered_version} at {logged.tracking_uri}"
    )


SourcesOpt = Annotated[
    Path | None,
    typer.Option(
        "--sources",
        help="Raw sources folder [default: $CLUSTERCLS_SOURCES or ../shared/data/sources]",
    ),
]
ProcessedOpt = Annotated[
    Path, typer.Option("--processed-dir", help="Where the processed dataset goes.")
]


def _data_config(
    sources: Path | None, processed_dir: Path | None = None, hand_labelled: Path | None = None
):
    from clustercls.config import DataConfig

    overrides = {}
    if sources is not None:
        overrides["sources_dir"] = sources
    if processed_dir is not None:
        overrides["processed_dir"] = processed_dir
    if hand_labelled is not None:
        overrides["hand_labelled"] = hand_labelled
    return DataConfig(**overrides)


@data_app.command("build")
@handles_errors
def data_build(
    sources: SourcesOpt = None,
    processed_dir: ProcessedOpt = Path("data/processed"),
    hand_labelled: Annotated[
        Path | None, typer.Option(help="Hand-labelled titles kept out of training.")
    ] = None,
) -> None:
    """Build data/processed/dataset.parquet and its data report from the raw sources."""
    from clustercls.data import build_dataset, write_dataset

    config = _data_config(sources, processed_dir, hand_labelled)
    result = build_dataset(config)
    paths = write_dataset(result, Path(config.processed_dir))
    report = result.report
    _say(
        f"{report['rows_read']} rows read, {report['rows_kept']} kept "
        f"({', '.join(f'{k}: {v}' for k, v in report['splits'].items())}); "
        f"dropped: {sum(report['dropped'].values())}; corrections applied: "
        f"{report['corrections']['relabelled']}"
    )
    typer.echo(str(paths["dataset"]))


@data_app.command("check-mapping")
@handles_errors
def data_check_mapping(
    hand_labelled: Annotated[
        Path | None, typer.Option(help="Hand-labelled titles to compare with.")
    ] = None,
    show: Annotated[int, typer.Option(help="Disagreements to print.")] = 20,
) -> None:
    """Measure how often the category mapping agrees with the hand labels."""

    from clustercls.data import load_hand_labelled, mapping_agreement, mapping_from_config
    from clustercls.policy import load_policy

    config = _data_config(None, hand_labelled=hand_labelled)
    policy = load_policy(config.policy)
    hand = load_hand_labelled(config.hand_labelled, policy.clusters)
    if hand is None:
        raise FileNotFoundError(f"{config.hand_labelled}: hand-labelled file not found")
    result = mapping_agreement(mapping_from_config(config), hand, policy.protected)
    wrong = result.pop("disagreements")
    typer.echo(json.dumps(result, indent=2))
    for row in wrong[:show]:
        typer.echo(
            f"{row['source']:<22} {row['cluster']:<16} mapped {row['mapped']:<16} {row['rule']:<22} {row['title'][:70]}"
        )


@app.command()
@handles_errors
def train(
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Training settings (TOML, sections as TrainConfig); options win."
        ),
    ] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(help="Processed dataset [default: data/processed/dataset.parquet]."),
    ] = None,
    models_dir: Annotated[
        Path | None, typer.Option(help="Where model folders go [default: models].")
    ] = None,
    classifier: Annotated[str | None, typer.Option(help="linear_svc, logreg or sgd.")] = None,
    c: Annotated[float | None, typer.Option("--C", help="Inverse regularisation strength.")] = None,
    calibration: Annotated[
        str | None, typer.Option(help="sigmoid, isotonic or temperature.")
    ] = None,
    calibration_ensemble: Annotated[
        bool | None,
        typer.Option(
            "--calibration-ensemble/--no-calibration-ensemble",
            help="Average cross-validation models, or one model on all rows.",
        ),
    ] = None,
    word_dropout: Annotated[
        float | None,
        typer.Option(
            help="Chance of dropping a word outside a lexicon term in the thinned training "
            "copies; 0 trains without them [default: ModelConfig.word_dropout]."
        ),
    ] = None,
    loso: Annotated[
        bool | None,
        typer.Option("--loso/--no-loso", help="Run leave-one-source-out evaluation [default: on]."),
    ] = None,
    tracking: Annotated[
        bool | None,
        typer.Option("--tracking/--no-tracking", help="Log the run to MLflow [default: on]."),
    ] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Train on the processed dataset, evaluate, save under models/, log to MLflow."""
    from clustercls.config import load_train_config
    from clustercls.train import train as run_training

    given = {
        "classifier": classifier,
        "C": c,
        "calibration": calibration,
        "calibration_ensemble": calibration_ensemble,
        "word_dropout": word_dropout,
    }
    model_overrides = {k: v for k, v in given.items() if v is not None}
    # Options given on the command line win over the file; the rest keep the file's value.
    overrides = {
        "model": model_overrides,
        "evaluation": {} if loso is None else {"leave_one_source_out": loso},
        "tracking": _tracking_overrides(tracking, tracking_uri),
    }
    if models_dir is not None:
        overrides["models_dir"] = models_dir
    config = load_train_config(config_file, **overrides)
    result = run_training(config, dataset_path=dataset, progress=_say)
    metrics = result.metadata["metrics"]
    _log_run(config, result)
    from clustercls.evaluate import format_summary

    typer.echo(format_summary(result.evaluation))
    typer.echo(
        json.dumps(
            {
                k: v
                for k, v in metrics.items()
                if not k.startswith("loso_") or "mean" in k or "worst" in k
            },
            indent=2,
        )
    )
    typer.echo(str(result.model_dir))


@app.command()
@handles_errors
def adapt(
    titles: Annotated[
        Path,
        typer.Argument(
            help="The marketplace's titles: CSV, Parquet or JSON Lines with a `title` column."
        ),
    ],
    model: Annotated[
        Path | None, typer.Option(help="Model folder to adapt [default: newest under models/].")
    ] = None,
    dataset: Annotated[
        Path, typer.Option(help="Processed dataset the model was trained on.")
    ] = Path("data/processed/dataset.parquet"),
    name: Annotated[
        str | None,
        typer.Option(help="Marketplace name recorded with the model [default: file name]."),
    ] = None,
    self_training: Annotated[
        bool | None,
        typer.Option(
            "--self-training/--no-self-training",
            help="Refit on the training rows plus the titles the model is sure of "
            "[default: the model's].",
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            help="With self-training: top probability a title needs to be adopted "
            "[default: the model's]."
        ),
    ] = None,
    weight: Annotated[
        float | None,
        typer.Option(
            help="With self-training: weight of the adopted titles as one source "
            "[default: the model's]."
        ),
    ] = None,
    protected_mix: Annotated[
        bool | None,
        typer.Option(
            "--protected-mix/--no-protected-mix",
            help="Move the probabilities to the marketplace's own mix, estimated on its "
            "titles [default: the model's].",
        ),
    ] = None,
    mix_scope: Annotated[
        str | None,
        typer.Option(
            help="all: the mix of every cluster, the review screening on the model's own "
            "probabilities; protected: only the mix among the protected clusters "
            "[default: the model's].",
        ),
    ] = None,
    hand_labelled: Annotated[
        Path | None, typer.Option(help="Hand-labelled titles to check the adapted model on.")
    ] = None,
    tracking: Annotated[
        bool | None,
        typer.Option(
            "--tracking/--no-tracking",
            help="Log the run to MLflow and register the model [default: as the model was].",
        ),
    ] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Adapt a model to a marketplace it never saw (self-training on its unlabelled titles
    and/or its own mix of clusters); saves a new model version beside it and
    registers it like a trained one."""
    from clustercls.adapt import adapt_model
    from clustercls.artifact import latest_model_dir
    from clustercls.config import stored_config
    from clustercls.evaluate import format_summary

    result = adapt_model(
        model or latest_model_dir(Path("models")),
        titles,
        dataset,
        min_confidence=min_confidence,
        weight=weight,
        protected_mix=protected_mix,
        mix_scope=mix_scope,
        self_training=self_training,
        hand_labelled=_data_config(None, hand_labelled=hand_labelled).hand_labelled,
        name=name,
        progress=_say,
    )
    done = result.evaluation["adaptation"]
    config = stored_config(result.metadata["config"])
    tracking_given = _tracking_overrides(tracking, tracking_uri)
    config = config.model_copy(
        update={"tracking": config.tracking.model_copy(update=tracking_given)}
    )
    _log_run(config, result, {"adapted_from": done["base_version"], "adapted_to": done["name"]})
    typer.echo(format_summary(result.evaluation))
    adopted = (
        f"{done['adopted']} of {done['titles']} titles adopted (top probability >= "
        f"{done['min_confidence']}, weight {done['weight']})"
        if done.get("self_training", True)
        else f"{done['titles']} titles, no self-training"
    )
    typer.echo(
        f"adapted {done['base_version']} to {done['name']}: {adopted}; thresholds chosen on "
        f"{done.get('thresholds_chosen_on') or '?'}"
    )
    if done.get("protected_shares"):
        shares = ", ".join(f"{c} {share:.2f}" for c, share in done["protected_shares"].items())
        typer.echo(f"serves with its protected mix: {shares}")
    if done.get("all_shares"):
        shares = ", ".join(f"{c} {share:.2f}" for c, share in done["all_shares"].items())
        typer.echo(f"and with its mix of every cluster: {shares} (review on its own scores)")
    typer.echo(str(result.model_dir))


@app.command()
@handles_errors
def select(
    dataset: Annotated[Path | None, typer.Option(help="Processed dataset.")] = None,
    candidate: Annotated[
        list[str] | None,
        typer.Option(
            help="Model settings as JSON, e.g. '{\"C\": 0.2}'; repeatable [default: built-in grid]."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where the ranking is written.")] = Path(
        "models/selection.json"
    ),
) -> None:
    """Choose classifier settings by leave-one-source-out cross-validation."""
    from clustercls.config import TrainConfig
    from clustercls.train import DEFAULT_CANDIDATES, select_model

    candidates = tuple(json.loads(c) for c in candidate) if candidate else DEFAULT_CANDIDATES
    result = select_model(TrainConfig(), candidates, dataset_path=dataset, progress=_say)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for row in result["ranking"]:
        typer.echo(
            f"loso prot-F1 {row['loso_mean_protected_vs_other_f1']:.4f}  loso macro-F1 "
            f"{row['loso_mean_macro_f1']:.4f}  random macro-F1 {row['random_macro_f1']:.4f}  {row['model']}"
        )
    typer.echo(str(out))


@app.command()
@handles_errors
def evaluate(
    model: Annotated[
        Path | None, typer.Option(help="Model folder [default: newest under models/].")
    ] = None,
    dataset: Annotated[
        Path, typer.Option(help="Processed dataset whose test split is scored.")
    ] = Path("data/processed/dataset.parquet"),
    hand_labelled: Annotated[Path | None, typer.Option(help="Hand-labelled titles.")] = None,
    probes: Annotated[
        Path | None, typer.Option(help="Policy probes [default: data/policy_probes.csv].")
    ] = None,
) -> None:
    """Re-score a saved model and print its evaluation, with the leave-one-source-out table."""
    from clustercls.artifact import latest_model_dir, read_metadata
    from clustercls.data import load_dataset, load_hand_labelled, load_policy_probes
    from clustercls.evaluate import evaluate_artifact, format_summary

    model_dir = model or latest_model_dir(Path("models"))
    config = _data_config(None, hand_labelled=hand_labelled)
    # The model is judged by the labels it was trained with.
    labels = read_metadata(model_dir)["labels"]
    result = evaluate_artifact(
        model_dir,
        load_dataset(dataset),
        load_hand_labelled(config.hand_labelled, labels),
        load_policy_probes(probes or config.policy_probes, labels),
    )
    stored = json.loads((Path(model_dir) / "evaluation.json").read_text())
    typer.echo(format_summary({**stored, **result}))


@app.command()
@handles_errors
def predict(
    input: Annotated[
        Path,
        typer.Option("--input", "-i", help="CSV, Parquet or JSON Lines with a 'title' column."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output file; its extension picks the format.")
    ],
    model: ModelOrUri = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Rows per chunk.")] = 50_000,
    jobs: Annotated[
        int | None,
        typer.Option(
            min=1, help="Processes each chunk is spread over [default: all usable cores]."
        ),
    ] = None,
    summary: Annotated[
        Path | None,
        typer.Option(help="Where the run summary (JSON) goes [default: <output>.summary.json]."),
    ] = None,
) -> None:
    """Score a file. Every input row is written once, in order, with its columns kept.

    A run summary (counts, shares, comparison with the training data, warnings) is
    written beside the output and its headline printed. Exit codes: 0 done; 3 unreadable
    input or no 'title' column; 4 model missing or failing its checksum. On a non-zero
    exit no output file and no summary are left behind.
    """
    from clustercls.batch import headline, predict_file, summary_path_for
    from clustercls.predict import compiled_parts, load_model

    summary_path = summary or Path(summary_path_for(output))
    loaded = load_model(model, n_jobs=jobs)
    result = predict_file(loaded, input, output, chunk_size=chunk_size, summary_path=summary_path)
    compiled = [name for name, used in compiled_parts().items() if used]
    for line in headline(result.report) if result.report else []:
        _say(line)
    _say(
        f"compiled parts: {', '.join(compiled) or 'none (pure Python, about half the speed)'}; "
        f"summary: {summary_path}"
    )
    typer.echo(str(output))


@app.command("spark-predict")
@handles_errors
def spark_predict(
    input: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="Parquet file or folder with a 'title' column (any Spark path)."
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="Parquet folder to write (any Spark path).")
    ],
    model: ModelOrUri = None,
    master: Annotated[
        str | None,
        typer.Option(
            help="Spark master URL [default: local[*], or the one spark-submit was given]."
        ),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(min=1, help="Repartition the input first [default: Spark's input splits]."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
    summary: Annotated[
        str | None,
        typer.Option(
            help="Where the run summary (JSON) goes, any Spark path "
            "[default: <output>.summary.json]."
        ),
    ] = None,
) -> None:
    """Score Parquet with Spark: the same rows and columns as `predict`, on many cores.

    A run summary is written beside the output, as `predict` writes one, and its headline
    printed. Exit codes: 0 done; 2 pyspark or Java missing; 3 unreadable input, no
    'title' column or output already there; 4 model missing or failing its checksum. On a
    non-zero exit no output folder and no summary are left behind.
    """
    from clustercls.batch import headline, summary_path_for
    from clustercls.spark import SparkUnavailableError, predict_parquet

    summary_path = summary or summary_path_for(output)
    try:
        result = predict_parquet(
            input,
            output,
            model,
            master=master,
            partitions=partitions,
            overwrite=overwrite,
            summary_path=summary_path,
        )
    except SparkUnavailableError as exc:
        raise _err(str(exc), EXIT_USAGE) from None
    for line in headline(result.report) if result.report else []:
        _say(line)
    _say(
        f"{result.rows} rows scored on {result.master} ({result.partitions} partitions, "
        f"{result.arrow_batches} batches, model loads: {result.model_loads}) in "
        f"{result.seconds:.1f} s; summary: {summary_path}"
    )
    typer.echo(output)


@app.command()
@handles_errors
def promote(
    version: Annotated[
        str | None, typer.Option(help="Registry version to promote [default: newest].")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow URI.")] = None,
    metric: Annotated[
        str, typer.Option(help="macro_f1 or protected_vs_other_f1 on hand-labelled titles.")
    ] = "macro_f1",
    hand_labelled: Annotated[
        Path | None, typer.Option(help="Hand-labelled evaluation titles.")
    ] = None,
) -> None:
    """Make a registered model @champion only if it beats the current champion."""
    from clustercls.tracking import promote as run_promotion

    config = _data_config(None, hand_labelled=hand_labelled)
    result = run_promotion(version, tracking_uri, hand_labelled=config.hand_labelled, metric=metric)
    typer.echo(result.message)
    if not result.promoted:
        raise typer.Exit(EXIT_NOT_PROMOTED)


@review_app.callback()
@handles_errors
def review(
    ctx: typer.Context,
    model: Annotated[
        Path | None, typer.Option(help="Model folder [default: newest under models/].")
    ] = None,
    data: Annotated[Path, typer.Option(help="Processed dataset the model was trained on.")] = Path(
        "data/processed/dataset.parquet"
    ),
    out: Annotated[Path, typer.Option(help="Folder for report.html and review_queue.csv.")] = Path(
        "data/processed/review"
    ),
    folds: Annotated[int, typer.Option(min=2, help="Folds for out-of-fold probabilities.")] = 4,
) -> None:
    """Write a self-contained HTML report and a CSV review queue."""
    if ctx.invoked_subcommand is not None:
        return
    from clustercls.artifact import latest_model_dir
    from clustercls.data import load_dataset
    from clustercls.parallel import usable_cores
    from clustercls.review import build_review

    model_dir = model or latest_model_dir(Path("models"))
    result = build_review(model_dir, load_dataset(data), out, n_splits=folds, n_jobs=usable_cores())
    _say(", ".join(f"{k}: {v}" for k, v in result.counts.items()))
    typer.echo(str(result.report))


@review_app.command("import")
@handles_errors
def review_import(
    queue: Annotated[Path, typer.Argument(help="A filled review_queue.csv.")],
    corrections: Annotated[
        Path, typer.Option(help="Corrections file the next data build applies.")
    ] = Path("data/corrections.csv"),
    policy: Annotated[Path, typer.Option(help="Policy whose clusters a relabel may give.")] = Path(
        "data/policy.toml"
    ),
) -> None:
    """Append a filled queue's verdicts to data/corrections.csv (a second import adds nothing)."""
    from clustercls.policy import load_policy
    from clustercls.review import import_queue

    if not queue.is_file():
        raise FileNotFoundError(f"{queue}: review queue not found")
    result = import_queue(queue, corrections, load_policy(policy).clusters)
    typer.echo(
        f"took {result.taken}, already present {result.already_present}, "
        f"unreviewed {result.unreviewed}, refused {len(result.refused)}"
    )
    for line, why in result.refused:
        typer.echo(f"  refused {queue}:{line}: {why}")


def main() -> None:
    """Entry point for `python -m clustercls.cli`."""
    app()


if __name__ == "__main__":
    main()
