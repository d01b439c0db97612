"""Model persistence: one fitted Pipeline plus a metadata file, verified before loading.

A joblib file is a pickle, and unpickling runs code. So the metadata records the file's
sha256 and the library versions it was written with, and `load_artifact` refuses a file
whose checksum or scikit-learn version does not match before it unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path

import joblib
from sklearn.pipeline import Pipeline

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
_LIBRARIES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib", "nltk", "clustercls")


class ArtifactError(RuntimeError):
    """A model artifact is missing, tampered with, or built with other library versions."""


@dataclass(frozen=True)
class Artifact:
    """A loaded, verified model: the pipeline and its metadata."""

    pipeline: Pipeline
    metadata: dict
    path: Path

    @property
    def version(self) -> str:
        """The model's version id."""
        return self.metadata["version"]


def library_versions() -> dict[str, str]:
    """Versions of the libraries a pickled pipeline depends on, plus Python's."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def resource_fingerprint() -> dict:
    """The package version and the sha256 of every resource file the normaliser and the
    features read (word lists, lexicon): what a saved model's behaviour depends on
    besides its own pickled state."""
    from importlib import resources

    folder = resources.files("clustercls").joinpath("resources")
    files = sorted(
        (entry for entry in folder.iterdir() if entry.is_file() and entry.name != "README.md"),
        key=lambda entry: entry.name,
    )
    return {
        "package": importlib_metadata.version("clustercls"),
        "resources": {
            entry.name: hashlib.sha256(entry.read_bytes()).hexdigest() for entry in files
        },
    }


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def new_version() -> str:
    """A version id that sorts by creation time (UTC, to the second)."""
    return datetime.now(UTC).strftime("v%Y%m%d-%H%M%S")


def save_artifact(
    pipeline: Pipeline, metadata: dict, models_dir: Path, version: str | None = None
) -> Path:
    """Save a fitted pipeline and its metadata under `models_dir/<version>/`.

    Args:
        pipeline: The fitted pipeline.
        metadata: JSON-ready metadata (labels, config, policy, thresholds, metrics, data
            fingerprint); version, created time, library versions and checksum are added.
        models_dir: Parent folder of all versions.
        version: Version id; a new time-based one when None.

    Returns:
        The model's folder.
    """
    Path(models_dir).mkdir(parents=True, exist_ok=True)
    if version is None:
        # Two models saved within one second (an adaptation right after its training) must
        # not share a folder: the second gets a suffix that still sorts after the first.
        # mkdir claims the name, so two processes cannot both take it.
        base = new_version()
        for n in range(1, 100):
            version = base if n == 1 else f"{base}-{n:02d}"
            try:
                (Path(models_dir) / version).mkdir()
                break
            except FileExistsError:
                continue
        else:
            raise ArtifactError(f"{models_dir}: no free version name left for {base}")
    out = Path(models_dir) / version
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / MODEL_FILE
    joblib.dump(pipeline, model_path, compress=3)
    full = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **metadata,
        "libraries": library_versions(),
        "code": resource_fingerprint(),
        "model_file": MODEL_FILE,
        "sha256": sha256_file(model_path),
    }
    (out / METADATA_FILE).write_text(json.dumps(full, indent=2, ensure_ascii=False, default=str))
    return out


def read_metadata(model_dir: Path) -> dict:
    """Read a model folder's metadata without loading the model.

    Raises:
        ArtifactError: If the folder or its metadata is missing or unreadable.
    """
    path = Path(model_dir) / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(f"{model_dir}: no {METADATA_FILE} (not a clustercls model folder)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: unreadable metadata: {exc}") from exc


def verify(model_dir: Path, metadata: dict) -> Path:
    """Check the model file's checksum, the installed code's resources and version, and the
    scikit-learn version against the metadata.

    Returns:
        The verified model file.

    Raises:
        ArtifactError: On a missing file, a checksum mismatch, other resources or package
            version than the model was trained with, or another scikit-learn version.
    """
    model_path = Path(model_dir) / metadata.get("model_file", MODEL_FILE)
    if not model_path.is_file():
        raise ArtifactError(f"{model_path}: model file missing")
    actual = sha256_file(model_path)
    if actual != metadata.get("sha256"):
        raise ArtifactError(
            f"{model_path}: checksum mismatch (metadata {str(metadata.get('sha256'))[:12]}, "
            f"file {actual[:12]}); refusing to unpickle an unverified file"
        )
    # The pickle holds the fitted state, not the code and word lists that read it: a model
    # served by other ones would score differently without anyone noticing.
    built = metadata.get("code")
    installed = resource_fingerprint()
    if built != installed:
        changed = (
            sorted(
                name
                for name in {*built.get("resources", {}), *installed["resources"]}
                if built.get("resources", {}).get(name) != installed["resources"].get(name)
            )
            if built
            else []
        )
        what = (
            f"resources changed since training: {', '.join(changed)}"
            if changed
            else f"built with clustercls {(built or {}).get('package', 'unknown')}, "
            f"installed {installed['package']}"
        )
        raise ArtifactError(
            f"{model_dir}: {what}; retrain or install the matching clustercls version"
        )
    built_with = metadata.get("libraries", {}).get("scikit-learn")
    running = library_versions()["scikit-learn"]
    if built_with != running:
        raise ArtifactError(
            f"{model_path}: built with scikit-learn {built_with}, running {running}; "
            "retrain or install the matching version"
        )
    return model_path


def load_artifact(model_dir: Path) -> Artifact:
    """Load a verified model folder.

    Args:
        model_dir: A folder written by `save_artifact`.

    Returns:
        The pipeline and its metadata.

    Raises:
        ArtifactError: If verification fails (nothing is unpickled then).
    """
    model_dir = Path(model_dir)
    metadata = read_metadata(model_dir)
    model_path = verify(model_dir, metadata)
    return Artifact(pipeline=joblib.load(model_path), metadata=metadata, path=model_dir)


def latest_model_dir(models_dir: Path) -> Path:
    """The newest model folder under `models_dir` (versions sort by creation time).

    Raises:
        ArtifactError: If there is none.
    """
    models_dir = Path(models_dir)
    candidates = (
        sorted(p for p in models_dir.glob("*") if p.is_dir() and (p / METADATA_FILE).is_file())
        if models_dir.is_dir()
        else []
    )
    if not candidates:
        raise ArtifactError(f"{models_dir}: no trained model found (run `clustercls train`)")
    return candidates[-1]
