"""Persistence: the artifact is verified before anything is unpickled."""

from __future__ import annotations

import json
import shutil

import pytest

from clustercls.artifact import ArtifactError, latest_model_dir, load_artifact, read_metadata


def test_metadata_has_what_an_auditor_needs(tiny_model_dir) -> None:
    meta = read_metadata(tiny_model_dir)
    for key in (
        "version",
        "created",
        "labels",
        "config",
        "metrics",
        "data",
        "libraries",
        "sha256",
        "policy",
        "policy_version",
    ):
        assert key in meta, key
    assert meta["labels"] == ["craft", "fashion_textile", "food_beverage", "other"]
    assert meta["data"]["fingerprint"]
    chosen = meta["policy"]["chosen_thresholds"]
    assert set(chosen["block"]) == {"craft", "fashion_textile", "food_beverage"}
    assert 0 < chosen["review"] <= 1
    assert (tiny_model_dir / "evaluation.json").is_file()
    assert (tiny_model_dir / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_round_trip_predicts_the_same(tiny_model_dir) -> None:
    artifact = load_artifact(tiny_model_dir)
    titles = ["Kemeja Premium Bali", "Kopi Asli Jogja"]
    assert list(artifact.pipeline.predict(titles)) == list(
        load_artifact(tiny_model_dir).pipeline.predict(titles)
    )


def test_tampered_model_is_refused(tiny_model_dir, tmp_path) -> None:
    copy = shutil.copytree(tiny_model_dir, tmp_path / "m")
    with (copy / "model.joblib").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_artifact(copy)


def test_other_sklearn_version_is_refused(tiny_model_dir, tmp_path) -> None:
    copy = shutil.copytree(tiny_model_dir, tmp_path / "m")
    meta = json.loads((copy / "metadata.json").read_text())
    meta["libraries"]["scikit-learn"] = "0.0.1"
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=r"built with scikit-learn 0\.0\.1"):
        load_artifact(copy)


def test_missing_model_messages(tmp_path) -> None:
    with pytest.raises(ArtifactError, match="no trained model found"):
        latest_model_dir(tmp_path)
    with pytest.raises(ArtifactError, match="not a clustercls model folder"):
        load_artifact(tmp_path)


def test_latest_model_dir_picks_newest(tmp_path) -> None:
    for name in ("v20260101-000000", "v20261231-235959", "v20260601-120000"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metadata.json").write_text("{}")
    assert latest_model_dir(tmp_path).name == "v20261231-235959"
