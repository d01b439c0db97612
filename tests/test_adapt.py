"""Adaptation to a marketplace the model never saw: adoption, refit, the command, and
leave-one-source-out with adapted folds, on tiny data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from typer.testing import CliRunner

from clustercls.adapt import (
    ADAPTED_SOURCE,
    adapt_model,
    adopted_titles,
    fit_adapted,
    measured_for,
)
from clustercls.artifact import load_artifact, read_metadata
from clustercls.classifier import (
    FullMixClassifier,
    ProtectedMixClassifier,
    pipeline_proba_and_screen,
)
from clustercls.cli import EXIT_DATA, EXIT_USAGE, app
from clustercls.config import AdaptConfig, FeatureConfig, ModelConfig, TrainConfig, stored_config
from clustercls.data import load_dataset
from clustercls.familiarity import familiarity, word_vocabulary
from clustercls.policy import decide_scores, load_policy, scores_decision_rates
from clustercls.predict import load_model
from tests.conftest import make_titles, tiny_config, write_tiny_sources

runner = CliRunner()

# A marketplace whose sellers put their own word ("zorblat") beside products the model
# knows: a word no training title has.
_NEW_WORD = "Zorblat"


def _marketplace_titles() -> list[str]:
    return [
        f"{title} {_NEW_WORD}"
        for cluster in ("fashion_textile", "food_beverage")
        for title in make_titles(cluster, 15, seed=31)
    ]


class _Scores:
    """A fitted classifier's face with set probabilities per title."""

    classes_ = np.array(["craft", "other"])

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def predict_proba(self, titles) -> np.ndarray:
        return np.array([self.table[t] for t in titles])


def test_adopts_only_the_titles_the_model_is_sure_of() -> None:
    scores = _Scores(
        {"vase": [0.95, 0.05], "phone": [0.02, 0.98], "lamp": [0.6, 0.4], "edge": [0.9, 0.1]}
    )
    adopted = adopted_titles(scores, ["lamp", "vase", "phone", "edge"], 0.9)
    assert adopted["title"].tolist() == ["vase", "phone", "edge"]
    assert adopted["cluster"].tolist() == ["craft", "other", "craft"]
    assert set(adopted["source"]) == {ADAPTED_SOURCE}
    assert adopted_titles(scores, ["lamp"], 0.9).empty
    assert adopted_titles(scores, [], 0.5).empty


def test_adapted_model_learns_the_marketplace_word(tiny_model_dir: Path) -> None:
    artifact = load_artifact(tiny_model_dir)
    dataset = load_dataset(tiny_model_dir.parent.parent / "processed" / "dataset.parquet")
    train = dataset[dataset["split"] == "train"]
    features = FeatureConfig.model_validate(artifact.metadata["config"]["features"])
    model = ModelConfig.model_validate(artifact.metadata["config"]["model"])
    titles = [t for t in _marketplace_titles() if "Kemeja" in t or "Kaos" in t]
    assert titles, "the marketplace must hold garments"
    adapted, adopted = fit_adapted(
        train,
        artifact.pipeline,
        titles,
        features,
        model,
        AdaptConfig(self_training=True, min_confidence=0.5),
        artifact.metadata["protected"],
    )
    assert len(adopted) > 0 and set(adopted["cluster"]) == {"fashion_textile"}
    # The marketplace's own word is now one the model knows: its titles are no longer
    # unfamiliar, and the word carries weight.
    assert familiarity(artifact.pipeline, [_NEW_WORD]).tolist() == [0.0]
    assert familiarity(adapted, [_NEW_WORD]).tolist() == [1.0]
    assert _NEW_WORD.lower() in word_vocabulary(adapted)


class _Given(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose probabilities are its input rows."""

    def fit(self, X, y=None) -> _Given:
        self.classes_ = np.array(["craft", "fashion_textile", "food_beverage", "other"])
        return self

    def predict_proba(self, X) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)


_PROTECTED = ("craft", "fashion_textile", "food_beverage")


def _marketplace_scores(
    mix: list[float], n: int, seed: int = 0, fitted_at: list[float] | None = None
) -> np.ndarray:
    """Calibrated probabilities of n titles from a marketplace with protected mix `mix` (a
    third of its titles `other`), from a classifier trained at a uniform mix: each cluster
    draws its titles' features around its own point (`other`'s far from the protected
    ones, which overlap), and the probabilities are the exact posteriors at the uniform
    mix (or at `fitted_at`, a classifier fitted on unbalanced clusters)."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(4, size=n, p=[*(np.array(mix) * 2 / 3), 1 / 3])
    centres = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    points = centres[truth] + rng.normal(size=(n, 2))
    log_likelihood = -0.5 * ((points[:, None, :] - centres[None]) ** 2).sum(axis=2)
    proba = np.exp(log_likelihood - log_likelihood.max(axis=1, keepdims=True))
    proba *= np.ones(4) if fitted_at is None else np.asarray(fitted_at)
    return proba / proba.sum(axis=1, keepdims=True)


def test_protected_mix_is_the_marketplace_mix() -> None:
    proba = _marketplace_scores([0.1, 0.2, 0.7], 3000)
    classifier = _Given().fit(None)
    free = ProtectedMixClassifier(classifier, protected=_PROTECTED, strength=0).fit(proba)
    assert free.mix_[3] == 0 and free.mix_.sum() == pytest.approx(1)
    assert np.abs(free.mix_[:3] - [0.1, 0.2, 0.7]).max() < 0.05
    # Pseudo-titles at the training mix pull a marketplace's estimate back towards it, the
    # more the fewer titles it has.
    small = ProtectedMixClassifier(classifier, protected=_PROTECTED, strength=50)
    assert abs(small.fit(proba).mix_[2] - free.mix_[2]) < 0.03
    assert 1 / 3 < small.fit(proba[:60]).mix_[2] < free.mix_[2] - 0.1


def test_protected_mix_measures_from_the_mix_the_classifier_was_fitted_at() -> None:
    fitted_at = [0.4, 0.2, 0.2, 0.2]
    # Titles from that very mix (protected share 0.5 / 0.25 / 0.25): nothing to move.
    proba = _marketplace_scores([0.5, 0.25, 0.25], 4000, fitted_at=fitted_at)
    mix = ProtectedMixClassifier(
        _Given().fit(None), protected=_PROTECTED, strength=0, prior=fitted_at
    ).fit(proba)
    assert np.abs(mix.mix_[:3] - [0.5, 0.25, 0.25]).max() < 0.04
    np.testing.assert_allclose(mix.predict_proba(proba), proba, atol=0.05)
    # Read as if fitted at a uniform mix, the same titles look craft-heavy.
    naive = ProtectedMixClassifier(_Given().fit(None), protected=_PROTECTED, strength=0)
    assert naive.fit(proba).mix_[0] > mix.mix_[0] + 0.1


def test_protected_mix_of_titles_with_no_protected_probability() -> None:
    nothing = np.tile([0.0, 0.0, 0.0, 1.0], (3, 1))
    for strength in (0.0, 50.0):
        mix = ProtectedMixClassifier(_Given().fit(None), protected=_PROTECTED, strength=strength)
        mix.fit(nothing)
        # No evidence: the training mix, and nothing served is NaN.
        np.testing.assert_allclose(mix.mix_, [1 / 3, 1 / 3, 1 / 3, 0])
        assert np.isfinite(mix.predict_proba(nothing)).all()
    with pytest.raises(ValueError, match="prior"):
        ProtectedMixClassifier(_Given().fit(None), protected=_PROTECTED, prior=[1, 0, 1, 1]).fit(
            nothing
        )


def test_protected_mix_moves_only_which_protected_cluster() -> None:
    proba = _marketplace_scores([0.1, 0.2, 0.7], 3000)
    mix = ProtectedMixClassifier(_Given().fit(None), protected=_PROTECTED).fit(proba)
    doubtful = np.array([[0.31, 0.05, 0.29, 0.35], [0.0, 0.0, 0.0, 1.0], [0.2, 0.2, 0.2, 0.4]])
    moved = mix.predict_proba(doubtful)
    # Every title's probability of `other`, and so of being protected at all, is kept.
    assert np.array_equal(moved[:, 3], doubtful[:, 3])
    np.testing.assert_allclose(moved.sum(axis=1), 1)
    np.testing.assert_allclose(moved[:, :3].sum(axis=1), doubtful[:, :3].sum(axis=1))
    # On a food marketplace a title torn between craft and food leans to food.
    assert doubtful[0].argmax() != 2 and moved[0, :3].argmax() == 2
    assert np.array_equal(moved[1], doubtful[1])
    assert moved[2, 2] > moved[2, 1] > moved[2, 0]
    assert mix.predict(doubtful[:1]).tolist() == ["food_beverage"]


def test_protected_mix_follows_the_estimator_contract() -> None:
    proba = _marketplace_scores([0.5, 0.3, 0.2], 500)
    mix = ProtectedMixClassifier(FrozenEstimator(_Given().fit(None)), protected=_PROTECTED)
    with pytest.raises(NotFittedError):
        mix.predict_proba(proba)
    assert mix.fit(proba) is mix
    params = mix.get_params(deep=False)
    assert params["protected"] == _PROTECTED and params["strength"] == 50.0
    # Cloned, it is unfitted but its frozen classifier is still the fitted one: fitting the
    # clone on the same titles gives the same mix.
    twin = clone(mix)
    assert not hasattr(twin, "mix_")
    np.testing.assert_array_equal(twin.fit(proba).mix_, mix.mix_)
    before = {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in vars(mix).items()}
    mix.predict_proba(proba)
    assert vars(mix).keys() == before.keys()
    assert all(np.array_equal(vars(mix)[k], v) for k, v in before.items())
    for bad in [("craft",), ("craft", "shoes")]:
        with pytest.raises(ValueError, match="protected"):
            ProtectedMixClassifier(_Given().fit(None), protected=bad).fit(proba)


def _full_marketplace_scores(mix: list[float], n: int, seed: int = 0) -> np.ndarray:
    """Calibrated probabilities of n titles from a marketplace whose clusters are in
    proportions `mix` (`other` included), from a classifier fitted at a uniform mix: the
    clusters' features overlap (the exact posteriors of points drawn around nearby
    centres)."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(4, size=n, p=mix)
    centres = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    points = centres[truth] + rng.normal(size=(n, 2))
    log_likelihood = -0.5 * ((points[:, None, :] - centres[None]) ** 2).sum(axis=2)
    proba = np.exp(log_likelihood - log_likelihood.max(axis=1, keepdims=True))
    return proba / proba.sum(axis=1, keepdims=True)


def test_full_mix_is_the_marketplace_mix() -> None:
    truth = [0.02, 0.08, 0.1, 0.8]
    proba = _full_marketplace_scores(truth, 4000)
    free = FullMixClassifier(_Given().fit(None), strength=0).fit(proba)
    assert free.mix_.sum() == pytest.approx(1) and np.abs(free.mix_ - truth).max() < 0.05
    np.testing.assert_allclose(free.ratio_, free.mix_ * 4)
    # Pseudo-titles at the training mix hold a small marketplace's estimate near it.
    small = FullMixClassifier(_Given().fit(None), strength=1000).fit(proba[:60])
    assert np.abs(small.mix_ - 0.25).max() < 0.05
    assert FullMixClassifier(_Given().fit(None), strength=1000).fit(proba).mix_[3] > 0.6


def test_full_mix_moves_the_cluster_and_keeps_the_screen() -> None:
    proba = _full_marketplace_scores([0.02, 0.08, 0.1, 0.8], 4000)
    mix = FullMixClassifier(_Given().fit(None), strength=0).fit(proba)
    doubtful = np.array([[0.45, 0.1, 0.1, 0.35], [0.0, 0.0, 0.0, 1.0], [0.01, 0.97, 0.01, 0.01]])
    moved, screen = mix.proba_and_screen(doubtful)
    np.testing.assert_allclose(moved, mix.predict_proba(doubtful))
    np.testing.assert_allclose(moved.sum(axis=1), 1)
    # On a marketplace of mostly other goods a title leaning to craft is one of them, but
    # the review still screens on the classifier's own probabilities.
    assert doubtful[0].argmax() == 0 and moved[0].argmax() == 3
    assert mix.predict(doubtful[:1]).tolist() == ["other"]
    assert np.array_equal(screen, doubtful)
    np.testing.assert_allclose(moved[1], doubtful[1], atol=1e-12)
    # A sure title stays what it is.
    assert moved[2].argmax() == 1
    # Serving decides on the moved cluster and on the screen's protected probability.
    thresholds = {"block": {c: 0.8 for c in _PROTECTED}, "review": 0.5}
    classes = list(_Given().fit(None).classes_)
    decided = decide_scores(moved, classes, thresholds, _PROTECTED, screen=screen)
    assert decided.tolist() == ["review", "allow", "block"]
    assert decide_scores(moved, classes, thresholds, _PROTECTED)[0] == "allow"


def test_full_mix_follows_the_estimator_contract() -> None:
    proba = _full_marketplace_scores([0.2, 0.2, 0.2, 0.4], 500)
    mix = FullMixClassifier(FrozenEstimator(_Given().fit(None)))
    with pytest.raises(NotFittedError):
        mix.predict_proba(proba)
    assert mix.fit(proba) is mix and mix.get_params(deep=False)["strength"] == 1000.0
    twin = clone(mix)
    assert not hasattr(twin, "mix_")
    np.testing.assert_array_equal(twin.fit(proba).mix_, mix.mix_)
    before = {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in vars(mix).items()}
    mix.proba_and_screen(proba)
    assert all(np.array_equal(vars(mix)[k], v) for k, v in before.items())
    with pytest.raises(ValueError, match="prior"):
        FullMixClassifier(_Given().fit(None), prior=[1, 0, 1, 1]).fit(proba)
    with pytest.raises(ValueError, match="strength"):
        FullMixClassifier(_Given().fit(None), strength=-1).fit(proba)


def test_a_model_stored_before_the_mix_scope_adapts_only_the_protected_mix() -> None:
    stored = TrainConfig().model_dump(mode="json")
    del stored["adapt"]["mix_scope"]
    assert stored_config(stored).adapt.mix_scope == "protected"
    assert TrainConfig().adapt.mix_scope == "all"


def test_one_protected_cluster_has_no_mix_to_learn(tiny_model_dir: Path) -> None:
    artifact = load_artifact(tiny_model_dir)
    dataset = load_dataset(tiny_model_dir.parent.parent / "processed" / "dataset.parquet")
    config = artifact.metadata["config"]
    adapted, _ = fit_adapted(
        dataset[dataset["split"] == "train"],
        artifact.pipeline,
        _marketplace_titles(),
        FeatureConfig.model_validate(config["features"]),
        ModelConfig.model_validate(config["model"]),
        AdaptConfig(self_training=True, min_confidence=0.5),
        ["craft"],
    )
    assert not isinstance(adapted.steps[-1][1], ProtectedMixClassifier)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch project with a dataset built and a model trained (no LOSO)."""
    from clustercls.data import build_dataset, write_dataset
    from clustercls.train import train

    root = tmp_path / "project"
    root.mkdir()
    config = tiny_config(root, write_tiny_sources(root / "sources"), None)
    write_dataset(build_dataset(config.data), config.data.processed_dir)
    config = config.model_copy(
        update={"evaluation": config.evaluation.model_copy(update={"leave_one_source_out": False})}
    )
    train(config)
    monkeypatch.chdir(root)
    return root


def _adapt(
    titles: str, model: Path, *options: str, dataset: str = "processed/dataset.parquet", **kw
):
    """`clustercls adapt` in the scratch project (`kw` for `CliRunner.invoke`)."""
    return runner.invoke(
        app, ["adapt", titles, "--model", str(model), "--dataset", dataset, *options], **kw
    )


def _assert_serves_the_pipeline(model_dir: Path, pipeline, titles: list[str]) -> None:
    """Serving a saved model runs its pipeline, the protected mix included, and explains
    with the classifier's words (the wrapper's base)."""
    # Vague titles too, which no model blocks: their reasons name the review's probability.
    titles = [*titles, "Barang Murah Ready Stock", "Zorvex KT-4471 Vanta", "Paket Hemat Isi 3"]
    with load_model(model_dir, n_jobs=1) as served:
        scored = served.predict(titles)
        thresholds, protected = served.thresholds, served.protected
    proba, screen = pipeline_proba_and_screen(pipeline, titles)
    np.testing.assert_allclose(
        scored[[f"p_{c}" for c in pipeline.classes_]].to_numpy(), proba, atol=1e-6
    )
    assert (scored["top_ngrams"][: len(titles) - 3] != "[]").all()
    # Decided as thresholds are chosen: the review on the screen's protected probability.
    expected = decide_scores(
        proba,
        list(pipeline.classes_),
        thresholds,
        protected,
        blockable=~scored["unfamiliar"].to_numpy(),
        screen=screen,
    )
    assert scored["decision"].tolist() == expected.tolist()
    full = isinstance(pipeline.steps[-1][1], FullMixClassifier)
    judged = scored[(scored["decision"] != "block") & (scored["status"] == "ok")]
    assert len(judged) >= 2
    for reason in judged["reason"]:
        assert ("protected p before the marketplace mix=" in reason) == full, reason


def test_adapt_command_saves_a_new_version_serving_the_marketplace_mix(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    monkeypatch.setenv("CLUSTERCLS_SHARED", str(project / "no-shared"))
    base = next((project / "models").iterdir())
    titles = _marketplace_titles()
    pd.DataFrame({"title": [*titles, titles[0], "", None]}).to_parquet(project / "new.parquet")
    result = _adapt(
        "new.parquet",
        base,
        "--self-training",
        "--min-confidence",
        "0.8",
        "--tracking",
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    # Registered like a trained model, so `promote` can weigh it against the champion.
    assert "registered clustercls version 1" in result.output
    adapted = Path(result.stdout.strip().splitlines()[-1])
    assert adapted != base and adapted.parent == base.parent
    meta, base_meta = read_metadata(adapted), read_metadata(base)
    done = meta["adaptation"]
    assert done["base_version"] == base.name and done["name"] == "new"
    # Repeated and empty titles are not counted twice nor adopted.
    assert done["titles"] == len(set(titles))
    assert 0 < done["adopted"] <= done["titles"]
    assert sum(done["adopted_per_cluster"].values()) == done["adopted"]
    # Its base measured no adapted folds: it lends its own thresholds, and says so.
    assert meta["policy"]["chosen_thresholds"] == base_meta["policy"]["chosen_thresholds"]
    assert done["thresholds_chosen_on"] == base_meta["policy"]["chosen_thresholds"]["chosen_on"]
    assert "warning: " in result.output and "no thresholds chosen on adapted folds" in result.output
    assert "trained with `[evaluation] adaptation = false`" in result.output
    assert meta["labels"] == base_meta["labels"]
    assert meta["sha256"] != base_meta["sha256"]
    # The settings used are the ones recorded, in the adaptation and in the config.
    assert done["min_confidence"] == meta["config"]["adapt"]["min_confidence"] == 0.8
    assert meta["data"]["rows_adopted"] == done["adopted"]
    assert meta["base_metrics"] == base_meta["metrics"]
    assert not any(k.startswith("loso_") for k in meta["metrics"])
    # An adapted model is not adapted again: its base is.
    again = _adapt("new.parquet", adapted)
    assert again.exit_code == EXIT_DATA and "already adapted" in again.output
    # It serves with the marketplace's mix of every cluster (the default scope), recorded
    # with the share among the protected clusters, and its reasons are the refitted
    # classifier's words.
    mix, protected_mix = done["all_shares"], done["protected_shares"]
    assert "serves with its protected mix: craft" in result.output
    assert "and with its mix of every cluster: craft" in result.output
    assert set(mix) == set(meta["labels"]) and sum(mix.values()) == pytest.approx(1, abs=1e-3)
    assert set(protected_mix) == set(meta["protected"])
    in_protected = sum(mix[c] for c in meta["protected"])
    for cluster, share in protected_mix.items():
        assert share == pytest.approx(mix[cluster] / in_protected, abs=1e-3)
    pipeline = load_artifact(adapted).pipeline
    assert isinstance(pipeline.steps[-1][1], FullMixClassifier)
    np.testing.assert_allclose(pipeline.steps[-1][1].mix_, list(mix.values()), atol=1e-4)
    _assert_serves_the_pipeline(adapted, pipeline, titles[:3])


def test_adapt_refuses_another_dataset_and_empty_input(project: Path) -> None:
    base = next((project / "models").iterdir())
    pd.DataFrame({"title": _marketplace_titles()}).to_csv(project / "new.csv", index=False)
    other = project / "other"
    shutil.copytree(project / "processed", other)
    changed = pd.read_parquet(other / "dataset.parquet")
    changed.loc[changed.index[0], "cluster"] = (
        "other" if changed["cluster"].iloc[0] != "other" else "craft"
    )
    changed.to_parquet(other / "dataset.parquet")
    result = _adapt("new.csv", base, "--no-tracking", dataset=str(other / "dataset.parquet"))
    assert result.exit_code == EXIT_DATA
    assert "not the dataset" in result.output
    pd.DataFrame({"title": ["", " "]}).to_csv(project / "empty.csv", index=False)
    result = _adapt("empty.csv", base, "--no-tracking")
    assert result.exit_code == EXIT_DATA
    assert "no non-empty title" in result.output


def test_hand_labelled_titles_are_never_adopted(project: Path) -> None:
    base = next((project / "models").iterdir())
    titles = _marketplace_titles()
    hand = pd.DataFrame(
        {"title": [titles[0].upper(), titles[1]], "source": "x", "cluster": "fashion_textile"}
    )
    hand.to_csv(project / "hand.csv", index=False)
    pd.DataFrame({"title": titles}).to_csv(project / "new.csv", index=False)
    result = adapt_model(
        base,
        project / "new.csv",
        project / "processed/dataset.parquet",
        min_confidence=0.5,
        self_training=True,
        hand_labelled=project / "hand.csv",
    )
    # Matched on their normal form: a casing change does not let one in.
    assert result.metadata["adaptation"]["titles"] == len(titles) - 2
    assert "hand_labelled" in result.evaluation


def test_adapted_folds_never_see_the_held_out_labels(tmp_path: Path) -> None:
    from functools import partial

    from clustercls.adapt import FoldAdapter
    from clustercls.data import build_dataset, write_dataset
    from clustercls.evaluate import out_of_source_scores_adapted
    from clustercls.fit import fit_pipeline

    config = tiny_config(tmp_path, write_tiny_sources(tmp_path / "sources"), None)
    write_dataset(build_dataset(config.data), config.data.processed_dir)
    dataset = load_dataset(config.data.processed_dir / "dataset.parquet")
    groups = {s: s for s in dataset["source"].unique()}
    fit = partial(fit_pipeline, features=config.features, model=config.model)
    protected = tuple(load_policy(config.policy).protected)
    scrambled = dataset.copy()
    held = scrambled["source"] == "bigbasket"
    scrambled.loc[held, "cluster"] = scrambled.loc[held, "cluster"].to_numpy()[::-1]
    assert not scrambled.loc[held, "cluster"].equals(dataset.loc[held, "cluster"])
    for settings in (AdaptConfig(), AdaptConfig(self_training=True)):
        adapt = FoldAdapter(config.features, config.model, settings, protected)

        def adapted_scores(frame: pd.DataFrame, adapt=adapt) -> pd.DataFrame:
            return out_of_source_scores_adapted(
                fit, adapt, frame, groups, n_jobs=1, holdout=["bigbasket"]
            )[1]

        before, after = adapted_scores(dataset), adapted_scores(scrambled)
        probabilities = [c for c in before.columns if c.startswith("p_")]
        assert np.array_equal(before[probabilities].to_numpy(), after[probabilities].to_numpy())


def test_training_measures_adapted_folds_beside_the_plain_ones(tmp_path: Path) -> None:
    from clustercls.data import build_dataset, write_dataset
    from clustercls.evaluate import format_summary
    from clustercls.train import train

    # The default settings measure adaptation.
    config = tiny_config(tmp_path, write_tiny_sources(tmp_path / "sources"), None)
    write_dataset(build_dataset(config.data), config.data.processed_dir)
    result = train(config)
    evaluation = result.evaluation
    plain, adapted = evaluation["leave_one_source_out"], evaluation["leave_one_source_out_adapted"]
    assert plain["per_group"].keys() == adapted["per_group"].keys()
    assert evaluation["decisions_adapted"]["pooled"]["n"] == sum(
        g["n"] for g in plain["per_group"].values()
    )
    adapted_scores = pd.read_parquet(result.model_dir / "adapted_out_of_source_scores.parquet")
    assert len(adapted_scores) == evaluation["decisions_adapted"]["pooled"]["n"]
    assert (
        result.metadata["metrics"]["loso_adapted_mean_protected_vs_other_f1"]
        == (adapted["mean_protected_vs_other_f1"])
    )
    printed = format_summary(evaluation)
    assert "each fold adapted" in printed and "\n  adapted " in printed
    assert "adapted models (thresholds chosen on out_of_source_adapted)" in printed
    # The default mix (of every cluster) reviews on the model's own scores, and says so.
    assert "review at protected p before the marketplace mix >= " in printed
    assert evaluation["thresholds_adapted"]["review_on"] == "before_mix"
    assert "review_on" not in evaluation["thresholds"]

    # Thresholds for adapted models are chosen on the adapted folds' scores, and what they
    # achieve there is what `decisions_adapted` reports.
    chosen = evaluation["thresholds_adapted"]
    assert chosen["chosen_on"] == "out_of_source_adapted"
    measured = result.metadata["policy"]["for_adapted"]
    assert measured["adapt"] == config.adapt.model_dump(mode="json")
    assert measured["chosen_thresholds"] == chosen
    policy = load_policy(config.policy)
    labels = list(policy.clusters)
    rates = scores_decision_rates(adapted_scores, labels, chosen, policy)
    assert rates == evaluation["decisions_adapted"] == measured["achieved"]["out_of_source"]
    plain_rates = scores_decision_rates(adapted_scores, labels, evaluation["thresholds"], policy)
    assert plain_rates == evaluation["decisions_adapted_plain_thresholds"]
    blocked = measured["reference_out_of_source"]["decision_share"]["block"]
    assert blocked == round(rates["pooled"]["blocks"] / rates["pooled"]["n"], 4)

    # A model adapted with the settings measured serves with them, and a batch run compares
    # its input with what they did on adapted folds.
    titles = _marketplace_titles()
    pd.DataFrame({"title": titles}).to_csv(tmp_path / "new.csv", index=False)
    made = adapt_model(
        result.model_dir,
        tmp_path / "new.csv",
        config.data.processed_dir / "dataset.parquet",
        models_dir=tmp_path / "adapted",
    )
    assert made.metadata["policy"]["chosen_thresholds"] == chosen
    assert made.metadata["policy"]["achieved"] == measured["achieved"]
    assert made.metadata["reference"]["out_of_source"] == measured["reference_out_of_source"]
    assert "for_adapted" not in made.metadata["policy"]
    assert made.metadata["adaptation"]["thresholds_chosen_on"] == "out_of_source_adapted"
    assert len(titles) == made.metadata["adaptation"]["titles"]
    # Any setting that changes the adapted model gets none of it: those measurements were
    # not of its models. Without self-training no title is adopted, so the adoption
    # settings change nothing.
    # Nor does the strength of the mix scope not used.
    assert config.adapt.protected_mix and not config.adapt.self_training
    assert config.adapt.mix_scope == "all"
    for change in [
        {"self_training": True},
        {"self_training": True, "min_confidence": 0.95},
        {"self_training": True, "protected_mix": False},
        {"full_mix_strength": 200.0},
        {"mix_scope": "protected"},
    ]:
        assert measured_for(result.metadata, config.adapt.model_copy(update=change)) is None
    for change in [
        {},
        {"min_confidence": 0.95},
        {"weight": 0.25},
        {"protected_mix_strength": 20.0},
    ]:
        assert measured_for(result.metadata, config.adapt.model_copy(update=change)) == measured
    # Adapting with other settings says which differ from those measured.
    said: list[str] = []
    other = adapt_model(
        result.model_dir,
        tmp_path / "new.csv",
        config.data.processed_dir / "dataset.parquet",
        models_dir=tmp_path / "adapted",
        self_training=True,
        min_confidence=0.5,
        progress=said.append,
    )
    assert other.metadata["policy"]["chosen_thresholds"] == evaluation["thresholds"]
    assert other.metadata["adaptation"]["thresholds_chosen_on"] != "out_of_source_adapted"
    assert any("measured self_training = False (here True)" in m for m in said), said
    # A record from before self-training was an option measured self-trained models.
    older = json.loads(json.dumps(result.metadata))
    del older["policy"]["for_adapted"]["adapt"]["self_training"]
    assert measured_for(older, config.adapt) is None
    self_trained = config.adapt.model_copy(update={"self_training": True})
    assert measured_for(older, self_trained)["chosen_thresholds"] == chosen


def test_adapt_without_the_protected_mix(project: Path) -> None:
    base = next((project / "models").iterdir())
    pd.DataFrame({"title": _marketplace_titles()}).to_csv(project / "new.csv", index=False)
    result = _adapt("new.csv", base, "--self-training", "--no-protected-mix", "--no-tracking")
    assert result.exit_code == 0, result.output
    adapted = Path(result.stdout.strip().splitlines()[-1])
    meta = read_metadata(adapted)
    assert meta["adaptation"]["protected_shares"] is None
    assert meta["config"]["adapt"]["protected_mix"] is False
    assert "serves with its protected mix" not in result.output
    classifier = load_artifact(adapted).pipeline.steps[-1][1]
    assert not isinstance(classifier, ProtectedMixClassifier)


def test_adapt_with_the_protected_mix_only(project: Path) -> None:
    base = next((project / "models").iterdir())
    titles = _marketplace_titles()
    pd.DataFrame({"title": titles}).to_csv(project / "new.csv", index=False)
    result = _adapt(
        "new.csv", base, "--no-self-training", "--mix-scope", "protected", "--no-tracking"
    )
    assert result.exit_code == 0, result.output
    adapted = Path(result.stdout.strip().splitlines()[-1])
    meta = read_metadata(adapted)
    done = meta["adaptation"]
    assert done["self_training"] is False and meta["config"]["adapt"]["self_training"] is False
    assert "all_shares" not in done and "mix of every cluster" not in result.output
    assert done["adopted"] == 0 and meta["data"]["rows_adopted"] == 0
    assert "no self-training" in result.output
    assert "serves with its protected mix: craft" in result.output
    # No second fit: the mix wraps the base model's own classifier, so whether a title is
    # protected at all is exactly the base model's call.
    plain = load_artifact(base).pipeline
    mixed = load_artifact(adapted).pipeline
    wrapper = mixed.steps[-1][1]
    assert isinstance(wrapper, ProtectedMixClassifier)
    np.testing.assert_array_equal(
        wrapper.base_classifier_.calibrated_classifiers_[0].estimator.coef_,
        plain.steps[-1][1].calibrated_classifiers_[0].estimator.coef_,
    )
    other = list(plain.classes_).index("other")
    np.testing.assert_allclose(
        mixed.predict_proba(titles)[:, other], plain.predict_proba(titles)[:, other], atol=1e-12
    )
    _assert_serves_the_pipeline(adapted, mixed, titles[:3])


def test_a_model_stored_before_self_training_was_an_option_self_trains() -> None:
    stored = TrainConfig().model_dump(mode="json")
    del stored["adapt"]["self_training"]
    assert stored_config(stored).adapt.self_training is True
    stored["adapt"]["self_training"] = False
    assert stored_config(stored).adapt.self_training is False


def test_the_mix_alone_needs_two_protected_clusters(project: Path) -> None:
    base = next((project / "models").iterdir())
    metadata = read_metadata(base)
    (base / "metadata.json").write_text(json.dumps({**metadata, "protected": ["craft"]}))
    pd.DataFrame({"title": _marketplace_titles()}).to_csv(project / "new.csv", index=False)
    result = _adapt(
        "new.csv", base, "--no-self-training", "--mix-scope", "protected", "--no-tracking"
    )
    assert result.exit_code == EXIT_DATA, result.output
    assert "fewer than two protected clusters" in result.output
    # The mix of every cluster has `other` beside the one protected cluster.
    result = _adapt("new.csv", base, "--no-self-training", "--no-tracking")
    assert result.exit_code == 0, result.output
    assert "and with its mix of every cluster: craft" in result.output


def test_adapting_nothing_is_refused(project: Path) -> None:
    base = next((project / "models").iterdir())
    pd.DataFrame({"title": _marketplace_titles()}).to_csv(project / "new.csv", index=False)
    result = _adapt("new.csv", base, "--no-self-training", "--no-protected-mix", "--no-tracking")
    assert result.exit_code == EXIT_USAGE
    assert "invalid setting AdaptConfig: " in result.output
    assert "nothing would adapt" in result.output
