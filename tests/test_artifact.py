"""Persistence: the artifact is verified before anything is unpickled."""

from __future__ import annotations

import json
import shutil

import numpy as np
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


def test_serving_scores_as_the_saved_pipeline(tiny_model_dir) -> None:
    from clustercls.predict import load_model

    artifact = load_artifact(tiny_model_dir)
    titles = ["Kemeja Premium Bali", "Kopi Asli Jogja", "Charger Mini Solo"]
    served = load_model(tiny_model_dir).predict(titles)
    proba = artifact.pipeline.predict_proba(titles)
    assert served["cluster"].tolist() == list(artifact.pipeline.predict(titles))
    columns = [f"p_{label}" for label in artifact.pipeline.classes_]
    assert np.allclose(served[columns].to_numpy(), proba, atol=1e-4)


def test_metadata_fingerprints_the_resources(tiny_model_dir) -> None:
    code = json.loads((tiny_model_dir / "metadata.json").read_text())["code"]
    assert {"stopwords.txt", "known_words.txt", "lexicon.csv"} <= set(code["resources"])
    assert all(len(digest) == 64 for digest in code["resources"].values())


def _copy_with_metadata(model_dir, tmp_path, edit):
    """A copy of the model folder whose metadata `edit` has changed in place."""
    copy = shutil.copytree(model_dir, tmp_path / "m")
    meta = json.loads((copy / "metadata.json").read_text())
    edit(meta)
    (copy / "metadata.json").write_text(json.dumps(meta))
    return copy


def test_model_trained_with_other_resources_is_refused(tiny_model_dir, tmp_path) -> None:
    copy = _copy_with_metadata(
        tiny_model_dir,
        tmp_path,
        lambda meta: meta["code"]["resources"].update({"known_words.txt": "0" * 64}),
    )
    with pytest.raises(ArtifactError, match=r"resources changed since training: known_words\.txt"):
        load_artifact(copy)


def test_model_of_another_package_version_is_refused(tiny_model_dir, tmp_path) -> None:
    copy = _copy_with_metadata(
        tiny_model_dir, tmp_path, lambda meta: meta["code"].update({"package": "0.0.0"})
    )
    with pytest.raises(ArtifactError, match=r"built with clustercls 0\.0\.0.*retrain"):
        load_artifact(copy)


def test_tampered_model_is_refused(tiny_model_dir, tmp_path) -> None:
    copy = shutil.copytree(tiny_model_dir, tmp_path / "m")
    with (copy / "model.joblib").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_artifact(copy)


def test_other_sklearn_version_is_refused(tiny_model_dir, tmp_path) -> None:
    copy = _copy_with_metadata(
        tiny_model_dir, tmp_path, lambda meta: meta["libraries"].update({"scikit-learn": "0.0.1"})
    )
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


def test_models_saved_within_one_second_get_their_own_folders(
    tiny_model_dir, tmp_path, monkeypatch
) -> None:
    import clustercls.artifact as artifact

    pipeline = load_artifact(tiny_model_dir).pipeline
    monkeypatch.setattr(artifact, "new_version", lambda: "v20261130-120000")
    saved = [artifact.save_artifact(pipeline, {"labels": ["x"]}, tmp_path) for _ in range(3)]
    assert [p.name for p in saved] == [
        "v20261130-120000",
        "v20261130-120000-02",
        "v20261130-120000-03",
    ]
    assert latest_model_dir(tmp_path) == saved[-1]
    assert all(read_metadata(p)["version"] == p.name for p in saved)
