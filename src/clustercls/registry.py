"""Where registered models come from: the MLflow tracking URI and the download of a
registered model's clustercls folder.

Kept apart from `tracking` (training runs, the pyfunc, promotion), which needs `predict`:
loading a `models:/` URI needs only this, so `predict` and `tracking` do not import each
other. MLflow is imported when a function is called, not at import.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from clustercls.artifact import ArtifactError


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The tracking URI: the argument, else `$MLFLOW_TRACKING_URI`, else local SQLite."""
    return (
        uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"
    )


def download_registered_model(uri: str, tracking_uri: str | None = None) -> Path:
    """Download a registered model's clustercls folder (`models:/name@alias` or `/version`).

    Returns:
        A local model folder, ready for `artifact.load_artifact` (which verifies it).

    Raises:
        ArtifactError: If the registered model holds no clustercls model folder.
    """
    import mlflow

    mlflow.set_tracking_uri(resolve_tracking_uri(tracking_uri))
    target = Path(tempfile.mkdtemp(prefix="clustercls-model-"))
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target)))
    candidates = [p.parent for p in local.rglob("metadata.json")]
    if not candidates:
        raise ArtifactError(f"{uri}: no clustercls model folder inside the registered model")
    return candidates[0]
