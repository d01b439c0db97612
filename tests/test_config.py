"""Training config files: read, merged with command-line overrides, validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from clustercls.classifier import make_classifier
from clustercls.config import TrainConfig, load_train_config, stored_config
from clustercls.features import build_features


def test_file_settings_and_overrides_merge(tmp_path) -> None:
    path = tmp_path / "train.toml"
    path.write_text('models_dir = "elsewhere"\n[model]\nC = 0.2\n[features]\nlexicon = true\n')
    config = load_train_config(path, model={"calibration": "sigmoid"})
    assert config.model.C == 0.2
    assert config.model.calibration == "sigmoid"
    assert config.features.lexicon is True
    assert str(config.models_dir) == "elsewhere"
    # An option given on the command line wins over the file.
    assert load_train_config(path, model={"C": 1.5}).model.C == 1.5


def test_no_file_gives_the_defaults() -> None:
    assert load_train_config() == TrainConfig()


@pytest.mark.parametrize(
    "text", ["[model]\nCee = 0.2\n", "[model]\nC = -1\n", "[modle]\nC = 0.2\n"]
)
def test_typos_and_bad_values_are_refused(tmp_path, text) -> None:
    path = tmp_path / "train.toml"
    path.write_text(text)
    with pytest.raises(ValidationError):
        load_train_config(path)


def test_data_and_training_name_one_policy(tmp_path) -> None:
    # The dataset is labelled under data.policy and the model decides under policy: two
    # files would be two label sets.
    path = tmp_path / "train.toml"
    path.write_text('policy = "elsewhere/policy.toml"\n')
    with pytest.raises(ValidationError, match="must be the same file"):
        load_train_config(path)
    path.write_text('policy = "p.toml"\n[data]\npolicy = "p.toml"\n')
    assert str(load_train_config(path).policy) == "p.toml"


def test_a_model_stored_before_the_solver_tolerance_keeps_its_own() -> None:
    stored = TrainConfig().model_dump(mode="json")
    del stored["model"]["tol"]
    reread = stored_config(stored)
    assert reread.model.tol == 1e-4
    assert make_classifier(reread.model).estimator.tol == 1e-4
    stored["model"]["tol"] = 0.05
    assert stored_config(stored).model.tol == 0.05


def test_a_model_stored_before_gapped_lexicon_matches_keeps_exact_matches() -> None:
    stored = TrainConfig().model_dump(mode="json")
    assert stored["features"]["lexicon_gap"]
    del stored["features"]["lexicon_gap"]
    reread = stored_config(stored)
    assert not reread.features.lexicon_gap
    assert not dict(build_features(reread.features).transformer_list)["lexicon"].gap
    stored["features"]["lexicon_gap"] = True
    assert stored_config(stored).features.lexicon_gap
