"""Experiment tracking and the model registry, behind one small interface.

Default store: a local SQLite file (`mlflow.db` in the project root); `--tracking-uri` or
`$MLFLOW_TRACKING_URI` points at a team server. Importing it sets nothing: the tracking URI
is set only when a function is called. Prediction never needs this module: a
`models:/` URI is resolved by `registry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd

from clustercls.config import TrainConfig
from clustercls.registry import resolve_tracking_uri

CHAMPION = "champion"
ARTIFACT_PATH = "model"


def _mlflow(uri: str | None):
    mlflow.set_tracking_uri(resolve_tracking_uri(uri))
    return mlflow


class ClusterclsPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: a DataFrame with a `title` column in, `Model.predict`'s columns out
    (`clustercls.schema.OUTPUT`, declared in the logged model's signature).

    The clustercls model folder (pipeline + metadata) travels as an MLflow artifact and is
    verified by `load_model` when the pyfunc loads, exactly as a local folder is.
    """

    def load_context(self, context) -> None:
        """Load and verify the model folder shipped as the `model_dir` artifact."""
        from clustercls.predict import load_model

        # One process: the server scales by its own workers, and forking inside one is unsafe.
        self.model = load_model(context.artifacts["model_dir"], n_jobs=1)

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Score a DataFrame with a `title` column (and optional `is_cross_border`)."""
        if not isinstance(model_input, pd.DataFrame) or "title" not in model_input.columns:
            raise ValueError("input must be a table with a 'title' column")
        flags = model_input["is_cross_border"] if "is_cross_border" in model_input else None
        return self.model.predict(model_input["title"], cross_border=flags)


@dataclass(frozen=True)
class LoggedRun:
    """Where a training run landed in MLflow."""

    run_id: str
    registered_version: str
    tracking_uri: str


def log_training_run(
    config: TrainConfig,
    model_dir: Path,
    evaluation: dict,
    metrics: dict,
    tags: dict[str, str] | None = None,
) -> LoggedRun:
    """Log a training run and register its model as `config.tracking.registered_model`.

    Args:
        config: The run's settings (logged as params and as a JSON artifact).
        model_dir: The saved model folder (logged whole, and as the pyfunc model).
        evaluation: The full evaluation (logged as JSON).
        metrics: Flat headline metrics.
        tags: More run tags (an adapted model names its base version and marketplace).

    Returns:
        Run id, registered version and tracking URI.
    """
    mlflow = _mlflow(config.tracking.tracking_uri)
    mlflow.set_experiment(config.tracking.experiment)
    with mlflow.start_run(run_name=model_dir.name) as run:
        mlflow.set_tag("model_version", model_dir.name)
        for key, value in (tags or {}).items():
            mlflow.set_tag(key, value)
        mlflow.log_params(config.to_flat_dict())
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
        mlflow.log_dict(config.model_dump(mode="json"), "config.json")
        mlflow.log_dict(evaluation, "evaluation.json")
        for name in ("confusion_matrix.png", "data_report.json", "metadata.json"):
            if (model_dir / name).is_file():
                mlflow.log_artifact(str(model_dir / name))
        info = mlflow.pyfunc.log_model(
            name=ARTIFACT_PATH,
            python_model=ClusterclsPyfunc(),
            artifacts={"model_dir": str(model_dir)},
            registered_model_name=config.tracking.registered_model,
            pip_requirements=_requirements(),
            input_example=pd.DataFrame({"title": ["Kemeja Batik Pria Lengan Panjang"]}),
            signature=pyfunc_signature(_labels(model_dir)),
        )
    return LoggedRun(
        run_id=run.info.run_id,
        registered_version=str(info.registered_model_version),
        tracking_uri=resolve_tracking_uri(config.tracking.tracking_uri),
    )


_MLFLOW_TYPES = {"string": "string", "float64": "double", "bool": "boolean"}


def pyfunc_signature(labels: list[str]):
    """The pyfunc's MLflow signature: `title` in, the columns of `schema.OUTPUT` out.

    Declared rather than inferred from a sample prediction, so the registry shows the
    output contract as `Model.predict` defines it.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from clustercls.schema import OUTPUT

    outputs = [ColSpec(_MLFLOW_TYPES[t], name) for name, t in OUTPUT.predict_columns(labels)]
    return ModelSignature(inputs=Schema([ColSpec("string", "title")]), outputs=Schema(outputs))


def _labels(model_dir: Path) -> list[str]:
    from clustercls.artifact import read_metadata

    return list(read_metadata(model_dir)["labels"])


def _requirements() -> list[str]:
    from clustercls.artifact import library_versions

    versions = library_versions()
    return [f"scikit-learn=={versions['scikit-learn']}", "clustercls", "pandas", "numpy", "scipy"]


@dataclass(frozen=True)
class Promotion:
    """Outcome of a promotion attempt."""

    promoted: bool
    candidate_version: str
    champion_version: str | None
    metric: str
    candidate_score: float
    champion_score: float | None
    message: str


def promote(
    candidate: str | None = None,
    tracking_uri: str | None = None,
    registered_model: str = "clustercls",
    hand_labelled: Path | None = None,
    metric: str = "macro_f1",
) -> Promotion:
    """Give the `champion` alias to a candidate only if it beats the current champion.

    Both models are scored now, by the same code, on the same held-out, hand-labelled
    titles (which no model trains on), so the comparison is like for like even when the
    two were trained on different data.

    Args:
        candidate: Registry version of the candidate; the newest version when None.
        tracking_uri: Tracking server; see `resolve_tracking_uri`.
        registered_model: Registered model name.
        hand_labelled: The evaluation titles (`title, cluster` columns).
        metric: `macro_f1` or `protected_vs_other_f1` on the hand-labelled titles.

    Returns:
        What happened and by how much.
    """
    from mlflow import MlflowClient

    from clustercls.data import load_hand_labelled
    from clustercls.evaluate import classification_metrics
    from clustercls.predict import load_model

    _mlflow(tracking_uri)
    client = MlflowClient()
    versions = client.search_model_versions(f"name='{registered_model}'")
    if not versions:
        raise LookupError(
            f"no registered versions of '{registered_model}' at {resolve_tracking_uri(tracking_uri)}"
        )
    if candidate is None:
        candidate = str(max(int(v.version) for v in versions))
    try:
        champion = str(client.get_model_version_by_alias(registered_model, CHAMPION).version)
    except Exception:  # MLflow raises a generic RestException when the alias is unset.
        champion = None
    if hand_labelled is None or not Path(hand_labelled).is_file():
        raise FileNotFoundError(f"{hand_labelled}: hand-labelled evaluation titles not found")
    # Both models are judged by the candidate's labels: the label set it would serve with.
    candidate_model = load_model(f"models:/{registered_model}/{candidate}")
    labels, protected = candidate_model.labels, candidate_model.protected
    hand = load_hand_labelled(hand_labelled, labels)

    def score(model) -> float:
        pred = model.predict(hand["title"])["cluster"]
        result = classification_metrics(hand["cluster"], pred, labels=labels, protected=protected)
        return result["macro_f1"] if metric == "macro_f1" else result["protected_vs_other"]["f1"]

    cand_score = score(candidate_model)

    def outcome(promoted: bool, champ_score: float | None, message: str) -> Promotion:
        return Promotion(promoted, candidate, champion, metric, cand_score, champ_score, message)

    if champion == candidate:
        return outcome(False, cand_score, f"version {candidate} is already the champion")
    champ_score = score(load_model(f"models:/{registered_model}/{champion}")) if champion else None
    if champ_score is not None and cand_score <= champ_score:
        return outcome(
            False,
            champ_score,
            f"kept version {champion}: candidate {candidate} {metric} {cand_score:.4f} "
            f"does not beat {champ_score:.4f} ({cand_score - champ_score:+.4f})",
        )
    client.set_registered_model_alias(registered_model, CHAMPION, candidate)
    delta = (
        "no previous champion"
        if champ_score is None
        else f"+{cand_score - champ_score:.4f} over version {champion} ({champ_score:.4f})"
    )
    return outcome(
        True,
        champ_score,
        f"promoted version {candidate} to @{CHAMPION}: {metric} {cand_score:.4f}, {delta}",
    )
