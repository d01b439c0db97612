"""The output contract: every column prediction adds, in order, with its type and meaning.

`Model.predict` (and the MLflow pyfunc, which returns it), the batch files, Spark and the
review report all take their column names, order and types from `OUTPUT`, so a column is
added or changed here once. The per-cluster probabilities `p_<label>` are one entry that
expands to a column per label of the model, in the model's label order.

Two views of the same list: the rows `Model.predict` returns (probabilities included) and
the columns the batch and Spark jobs add to each input row (the decision record: no
probabilities, but the model and policy versions).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

DType = Literal["string", "float64", "bool"]


@dataclass(frozen=True)
class Column:
    """One output column (or, with `per_label`, one per cluster label).

    Attributes:
        name: The column name; for a per-label entry a template with `{label}`.
        dtype: `string`, `float64` or `bool`; every writer maps it to its own type.
        meaning: What a value means, for people reading the output.
        per_label: Expands to one column per label of the model, in label order.
        in_predict: In the frame `Model.predict` returns.
        in_files: In the batch and Spark outputs.
    """

    name: str
    dtype: DType
    meaning: str
    per_label: bool = False
    in_predict: bool = True
    in_files: bool = True

    def names(self, labels: Sequence[str]) -> list[str]:
        """The column names this entry stands for."""
        return (
            [self.name.format(label=label) for label in labels] if self.per_label else [self.name]
        )


@dataclass(frozen=True)
class OutputSchema:
    """The ordered output columns and the two views of them."""

    columns: tuple[Column, ...]

    def predict_columns(self, labels: Sequence[str]) -> list[tuple[str, DType]]:
        """Name and dtype of each column of `Model.predict`'s frame, in order."""
        return [(name, c.dtype) for c in self.columns if c.in_predict for name in c.names(labels)]

    def file_columns(self, labels: Sequence[str] = ()) -> list[tuple[str, DType]]:
        """Name and dtype of each column the batch and Spark jobs add, in order."""
        return [(name, c.dtype) for c in self.columns if c.in_files for name in c.names(labels)]

    def predict_names(self, labels: Sequence[str]) -> list[str]:
        """Column names of `Model.predict`'s frame, in order."""
        return [name for name, _ in self.predict_columns(labels)]

    def file_names(self, labels: Sequence[str] = ()) -> tuple[str, ...]:
        """Names of the columns the batch and Spark jobs add, in order."""
        return tuple(name for name, _ in self.file_columns(labels))


OUTPUT = OutputSchema(
    (
        Column(
            "cluster",
            "string",
            "predicted (top) cluster; the policy's negative label for an empty title",
        ),
        Column("confidence", "float64", "calibrated probability of `cluster`, 4 decimals"),
        Column(
            "p_{label}",
            "float64",
            "calibrated probability of {label}, 4 decimals (0 for an empty title)",
            per_label=True,
            in_files=False,
        ),
        Column("decision", "string", "what enforcement does: `block`, `review` or `allow`"),
        Column("reason", "string", "why, in words: the rule applied and the top word n-grams"),
        Column(
            "top_ngrams",
            "string",
            "the word n-grams that pushed the title most towards `cluster`, as JSON: a list "
            'of [ngram, weight] pairs, strongest first ("[]" when none, or when the model '
            "has no linear weights to explain with)",
        ),
        Column(
            "familiarity",
            "float64",
            "share of the title's words (stopwords and unit placeholders aside) that the "
            "model knows as words, 4 decimals; 0 when it has none",
        ),
        Column(
            "unfamiliar",
            "bool",
            "familiarity below the policy's `serving.min_familiarity`: never blocked",
        ),
        Column("status", "string", "`ok`, or why the title could not be judged (then `review`)"),
        Column("model_version", "string", "version of the model that scored", in_predict=False),
        Column("policy_version", "string", "version of the policy that decided", in_predict=False),
    )
)
"""The output columns of clustercls, in order."""

FILE_COLUMNS: tuple[str, ...] = OUTPUT.file_names()
"""Columns the batch and Spark jobs add to every input row, in order."""


def format_top_ngrams(pairs: Sequence[tuple[str, float]]) -> str:
    """The `top_ngrams` value of a row: JSON `[[ngram, weight], ...]`, weights 4 decimals."""
    return json.dumps([[name, round(float(weight), 4)] for name, weight in pairs])


def parse_top_ngrams(value: str) -> list[tuple[str, float]]:
    """A `top_ngrams` value read back: (ngram, weight) pairs, strongest first."""
    return [(str(name), float(weight)) for name, weight in json.loads(value or "[]")]
