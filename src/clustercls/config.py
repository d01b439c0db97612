"""Typed, validated configuration: the one place every setting of a run is defined.

The same `TrainConfig` object is logged to MLflow and stored in the model's metadata, so a
run can always be traced back to the exact settings that produced it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SOURCES_ENV = "CLUSTERCLS_SOURCES"
SHARED_ENV = "CLUSTERCLS_SHARED"


def project_root() -> Path:
    """Return the project root: the working directory, where the CLI and Makefile run.

    Returns:
        The current working directory as an absolute path.
    """
    return Path.cwd()


def default_shared_dir() -> Path:
    """Return the shared data folder: `$CLUSTERCLS_SHARED`, else `../shared`.

    Returns:
        Path to the folder holding `LABELLING.md` and `data/`.
    """
    env = os.environ.get(SHARED_ENV)
    return Path(env) if env else project_root().parent / "shared"


def default_sources_dir() -> Path:
    """Return the raw sources folder: `$CLUSTERCLS_SOURCES`, else `<shared>/data/sources`.

    Returns:
        Path to the folder of raw source CSV files.
    """
    env = os.environ.get(SOURCES_ENV)
    return Path(env) if env else default_shared_dir() / "data" / "sources"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Frozen):
    """Where the data comes from and how the processed dataset is built."""

    sources_dir: Path = Field(default_factory=default_sources_dir)
    source_config: Path = Path("data/sources.toml")
    category_map: Path = Path("data/category_map.csv")
    title_rules: Path = Path("data/title_rules.csv")
    corrections: Path = Path("data/corrections.csv")
    policy: Path = Field(
        Path("data/policy.toml"),
        description="the policy whose clusters every label of the data is checked against",
    )
    hand_labelled: Path | None = Field(
        default_factory=lambda: default_shared_dir() / "data" / "hand_labelled.csv"
    )
    policy_probes: Path | None = Field(
        Path("data/policy_probes.csv"),
        description="titles written against the policy's hard cases, scored and never trained on",
    )
    processed_dir: Path = Path("data/processed")
    test_size: float = Field(0.2, gt=0.0, lt=0.5)
    max_per_group: int = Field(3, ge=1, description="rows kept per near-duplicate group")
    seed: int = 42


class FeatureConfig(_Frozen):
    """TF-IDF settings for the word and character n-gram branches."""

    word_ngram_range: tuple[int, int] = (1, 2)
    char_ngram_range: tuple[int, int] = (2, 5)
    min_df: int = Field(2, ge=1)
    max_features_word: int | None = Field(200_000, ge=1)
    max_features_char: int | None = Field(300_000, ge=1)
    sublinear_tf: bool = True
    max_length: int = Field(300, ge=10, description="characters kept after normalisation")
    lexicon: bool = Field(
        True,
        description="add the policy lexicon's concept and cluster indicators (leave-one-"
        "source-out: benchmarks/loso_ideas.py)",
    )
    lexicon_head: bool = Field(
        True, description="with lexicon: also mark the cluster of the title's first term"
    )
    lexicon_weight: float = Field(1.0, gt=0, description="value of each lexicon indicator")
    lexicon_clusters: bool = Field(
        True, description="with lexicon: also a cluster indicator per term (else concepts only)"
    )
    lexicon_plurals: bool = Field(
        False,
        description="with lexicon: English terms also match with their last word plural "
        "(benchmarks/results/lexicon_v9.md: not rewarded, off)",
    )
    lexicon_gap: bool = Field(
        True,
        description="with lexicon: a two-word term also matches with one word between its "
        "words ('kopi robusta bubuk' names 'kopi bubuk'; benchmarks/results/"
        "loso_ideas_gap.md)",
    )

    @field_validator("word_ngram_range", "char_ngram_range")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1] <= 8:
            raise ValueError(f"n-gram range must satisfy 1 <= low <= high <= 8, got {value}")
        return value


class ModelConfig(_Frozen):
    """Classifier and calibration settings."""

    classifier: Literal["linear_svc", "logreg", "sgd"] = "linear_svc"
    C: float = Field(0.4, gt=0)
    class_weight: Literal["balanced"] | None = Field(
        "balanced", description="weight rows so each cluster counts equally (fit and calibration)"
    )
    loss: Literal["squared_hinge", "hinge"] = Field(
        "squared_hinge",
        description="linear_svc: the hinge loss grows linearly with a row's margin, so a "
        "mislabelled row pulls the boundary less than under the squared hinge",
    )
    tol: float = Field(
        1e-2,
        gt=0,
        description="linear_svc: liblinear's stopping tolerance. scikit-learn's 1e-4 took "
        "a third more of every fit and gave the same leave-one-source-out table "
        "(benchmarks/results/loso_ideas_solver.md); liblinear's own command line uses 0.1",
    )
    source_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="rows weighted by source_size ** -source_weight: 0 = by size, 1 = each source equal",
    )
    calibration: Literal["sigmoid", "isotonic", "temperature"] = Field(
        "temperature",
        description="temperature: one softmax temperature over the class scores, so the "
        "calibrated argmax is the classifier's own",
    )
    lexicon_documents: float = Field(
        1.0,
        ge=0,
        description="train on each lexicon term as a one-term title of its cluster, its "
        "rows weighted as one more source times this factor (0: off)",
    )
    word_dropout: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="also train on thinned copies of titles: each word outside a lexicon "
        "term dropped with this probability (0: off; leave-one-source-out: "
        "benchmarks/results/loso_ideas_keep_terms.md)",
    )
    word_dropout_copies: float = Field(
        0.5, gt=0, le=1, description="with word_dropout: the share of the titles copied thinned"
    )
    word_dropout_weight: float = Field(
        0.5,
        gt=0,
        le=1,
        description="with word_dropout: the copies' weight, as one more source, relative to a "
        "labelled one",
    )
    word_dropout_seed: int = Field(0, description="with word_dropout: which titles and words")
    calibration_cv: int = Field(
        2,
        ge=2,
        le=10,
        description="folds of the cross-validated scores the calibration is fitted on (one "
        "temperature needs no more than 2)",
    )
    calibration_ensemble: bool = Field(
        False,
        description="True: average calibration_cv models fit on part of the data each; "
        "False: one model fit on all rows, calibrated on cross-validated scores",
    )


class EvalConfig(_Frozen):
    """Evaluation settings: which source groups are held out in turn."""

    leave_one_source_out: bool = True
    n_jobs: int = Field(2, ge=1, description="parallel folds for leave-one-source-out")
    adaptation: bool = Field(
        True,
        description="also adapt each leave-one-source-out fold to its held-out titles "
        "(`adapt` settings), report both and choose thresholds for adapted models: about "
        "a minute more on 2 cores with the mix only, twice the "
        "leave-one-source-out time with self-training",
    )
    cross_source_floor: float = Field(
        0.85,
        ge=0,
        le=1,
        description="mean leave-one-source-out protected-vs-other F1 a model must reach "
        "before model selection compares anything else",
    )


class AdaptConfig(_Frozen):
    """Adaptation to a new marketplace's own titles (`clustercls adapt`, and
    leave-one-source-out with `evaluation.adaptation`): self-training, the marketplace's mix,
    or both."""

    self_training: bool = Field(
        False,
        description="refit on the training rows plus the marketplace titles the model is "
        "sure of (False: keep the base model's fit; only the mix adapts it)",
    )
    min_confidence: float = Field(
        0.9,
        gt=0,
        le=1,
        description="a title joins the training rows when its top probability reaches this",
    )
    weight: float = Field(
        0.5,
        gt=0,
        le=1,
        description="weight of the adopted titles, as one more source, relative to a labelled one",
    )
    protected_mix: bool = Field(
        True,
        description=(
            "move the probabilities to the marketplace's own mix, estimated on its titles "
            "(after the refit, with self-training): of the clusters `mix_scope` names"
        ),
    )
    mix_scope: Literal["protected", "all"] = Field(
        "all",
        description=(
            "the mix of every cluster, `other` included, with the review screening on the "
            "model's own probabilities (all), or only the mix among the protected clusters, "
            "each title's protected probability kept (protected)"
        ),
    )
    protected_mix_strength: float = Field(
        50.0,
        ge=0,
        description="pseudo-titles at the training mix the protected-only mix is shrunk towards",
    )
    full_mix_strength: float = Field(
        1000.0,
        ge=0,
        description="pseudo-titles at the training mix the mix of every cluster is shrunk towards",
    )

    @model_validator(mode="after")
    def _adapts_something(self) -> AdaptConfig:
        if not (self.self_training or self.protected_mix):
            raise ValueError("self_training and protected_mix are both off: nothing would adapt")
        return self


class TrackingConfig(_Frozen):
    """MLflow settings. `tracking_uri=None` means `$MLFLOW_TRACKING_URI`, else local SQLite."""

    enabled: bool = True
    tracking_uri: str | None = None
    experiment: str = "clustercls"
    registered_model: str = "clustercls"


class TrainConfig(_Frozen):
    """Everything a training run depends on."""

    data: DataConfig = Field(default_factory=DataConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    evaluation: EvalConfig = Field(default_factory=EvalConfig)
    adapt: AdaptConfig = Field(default_factory=AdaptConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    policy: Path = Path("data/policy.toml")
    models_dir: Path = Path("models")

    @model_validator(mode="after")
    def _paths_distinct(self) -> TrainConfig:
        if self.models_dir == self.data.processed_dir:
            raise ValueError("models_dir and data.processed_dir must differ")
        # One label set: the dataset is labelled under data.policy, the model fits and
        # decides under policy.
        if self.policy != self.data.policy:
            raise ValueError(
                f"policy ({self.policy}) and data.policy ({self.data.policy}) must be the same file"
            )
        return self

    def to_flat_dict(self) -> dict[str, str]:
        """Flatten to `section.key -> str` pairs, the form MLflow params take.

        Returns:
            A flat mapping of every setting to its string value.
        """
        flat: dict[str, str] = {}
        for section, values in self.model_dump(mode="json").items():
            if isinstance(values, dict):
                for key, value in values.items():
                    flat[f"{section}.{key}"] = str(value)
            else:
                flat[section] = str(values)
        return flat


def load_train_config(path: Path | str | None = None, **overrides: dict) -> TrainConfig:
    """Read a training config file (TOML), then apply per-section overrides.

    The file holds any of `TrainConfig`'s sections (`[data]`, `[features]`, `[model]`,
    `[evaluation]`, `[tracking]`) and top-level keys (`policy`, `models_dir`); what it leaves
    out keeps its default. Unknown keys are refused, so a typo cannot pass silently.

    Args:
        path: The TOML file, or None for the defaults alone.
        overrides: Per section, settings that win over the file (command-line options),
            e.g. ``model={"C": 0.2}``; a top-level key is given as its value.

    Returns:
        The validated config.
    """
    import tomllib

    settings: dict = {}
    if path is not None:
        with Path(path).open("rb") as fh:
            settings = tomllib.load(fh)
    for key, value in overrides.items():
        if isinstance(value, dict):
            settings[key] = {**settings.get(key, {}), **value}
        else:
            settings[key] = value
    return TrainConfig.model_validate(settings)


def stored_adapt(raw: dict) -> dict:
    """An `[adapt]` record as a model stored it, with what records written before a
    setting existed meant: `self_training`, added as an option, was always on; the mix
    was only the protected clusters' before `mix_scope`."""
    return {"self_training": True, "mix_scope": "protected", **raw}


def stored_model(raw: dict) -> dict:
    """A `[model]` record as a model stored it, with what records written before a setting
    existed meant: liblinear stopped at scikit-learn's tolerance of 1e-4 before `tol`."""
    return {"tol": 1e-4, **raw}


def stored_features(raw: dict) -> dict:
    """A `[features]` record as a model stored it, with what records written before a
    setting existed meant: lexicon terms matched only as written before `lexicon_gap`."""
    return {"lexicon_gap": False, **raw}


def stored_config(raw: dict) -> TrainConfig:
    """The `TrainConfig` a model's metadata (or an MLflow run) stored, read with
    `stored_adapt`, `stored_features` and `stored_model`, so an older model keeps meaning
    what it was trained with."""
    return TrainConfig.model_validate(
        {
            **raw,
            "adapt": stored_adapt(raw.get("adapt", {})),
            "features": stored_features(raw.get("features", {})),
            "model": stored_model(raw.get("model", {})),
        }
    )
