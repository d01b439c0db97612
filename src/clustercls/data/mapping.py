"""The mapping from a source's categories and titles to the policy's clusters: the category
map (`data/category_map.csv`) and the title rules (`data/title_rules.csv`), the project's
reading of `LABELLING.md`, and how well it agrees with the hand-labelled titles."""

from __future__ import annotations

import csv
import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from clustercls.config import DataConfig
from clustercls.data.errors import DataError
from clustercls.policy import load_policy

DROP = "drop"
"""Pseudo-cluster of the mapping: rows that must not be trained on (reason in `note`)."""


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


@dataclass(frozen=True)
class CategoryRule:
    """One row of the category map (`line` is its line number in the file)."""

    source: str
    category: str
    cluster: str
    note: str
    line: int

    def specificity(self) -> tuple[int, int, int]:
        """Sort key: a named source beats `*`, an exact category beats a glob, longer globs win."""
        return (self.source != "*", not _is_glob(self.category), len(self.category))


@dataclass(frozen=True)
class TitleRule:
    """One row of the title rules; the first rule whose source, category and pattern match wins."""

    source: str
    category: str
    pattern: re.Pattern[str]
    cluster: str
    note: str
    line: int


@dataclass
class Mapping:
    """The category map plus title rules: turns (source, category, title) into a cluster."""

    category_rules: list[CategoryRule]
    title_rules: list[TitleRule]
    _cache: dict[tuple[str, str], CategoryRule | None] = field(default_factory=dict, repr=False)

    def category_rule(self, source: str, category: str) -> CategoryRule | None:
        """Return the most specific category rule for a source's category, or None."""
        key = (source, category)
        if key not in self._cache:
            cat = category.casefold()
            hits = [
                r
                for r in self.category_rules
                if r.source in ("*", source) and fnmatch.fnmatchcase(cat, r.category.casefold())
            ]
            self._cache[key] = max(hits, key=CategoryRule.specificity) if hits else None
        return self._cache[key]

    def map_one(self, source: str, category: str, title: str) -> tuple[str | None, str]:
        """Map one row.

        Args:
            source: Source name as in `sources.toml`.
            category: The source's category string.
            title: The raw title.

        Returns:
            `(cluster, rule)`: cluster is a policy label, `"drop"`, or None when nothing maps
            the category; rule names the file line that decided.
        """
        text = " ".join(str(title).casefold().split())
        cat = str(category).casefold()
        for rule in self.title_rules:
            if (
                rule.source in ("*", source)
                and fnmatch.fnmatchcase(cat, rule.category.casefold())
                and rule.pattern.search(text)
            ):
                return rule.cluster, f"title_rules.csv:{rule.line}"
        crule = self.category_rule(source, str(category))
        if crule is None:
            return None, ""
        return crule.cluster, f"category_map.csv:{crule.line}"

    def map_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Map every row of a frame with `source, category, title` columns.

        Returns:
            A frame aligned with the input with columns `cluster` (None when unmapped) and
            `rule`.
        """
        out = [
            self.map_one(s, c, t)
            for s, c, t in zip(frame["source"], frame["category"], frame["title"], strict=True)
        ]
        return pd.DataFrame(out, columns=["cluster", "rule"], index=frame.index)


def _read_rule_csv(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Read a rule CSV, skipping `#` comment lines, keeping each row's line number."""
    if not path.is_file():
        raise DataError(f"{path}: mapping file not found")
    numbered = [
        (number, line)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        raise DataError(f"{path}: empty mapping file (a header row is required)")
    rows = list(csv.reader(line for _, line in numbered))
    header = [h.strip() for h in rows[0]]
    missing = set(required) - set(header)
    if missing:
        raise DataError(f"{path}: missing columns {sorted(missing)}")
    out = []
    for (number, _), values in zip(numbered[1:], rows[1:], strict=True):
        if len(values) != len(header):
            raise DataError(f"{path}:{number}: expected {len(header)} fields, got {len(values)}")
        out.append((number, {k: v.strip() for k, v in zip(header, values, strict=True)}))
    return out


def _check_cluster(path: Path, line: int, cluster: str, clusters: Sequence[str]) -> None:
    if cluster not in (*clusters, DROP):
        raise DataError(
            f"{path}:{line}: label '{cluster}' is not in the policy "
            f"(expected one of {', '.join((*clusters, DROP))})"
        )


def load_mapping(category_map: Path, title_rules: Path, clusters: Sequence[str]) -> Mapping:
    """Read and validate the category map and the title rules.

    Args:
        category_map: CSV with `source, category, cluster, note`.
        title_rules: CSV with `source, category, pattern, cluster, note`.
        clusters: The policy's labels; a rule may also say `drop`.

    Returns:
        The mapping.

    Raises:
        DataError: On a missing file or column, a label outside the policy, or a bad regex;
            the message names the file and line.
    """
    crules = []
    for line, row in _read_rule_csv(category_map, ("source", "category", "cluster")):
        _check_cluster(category_map, line, row["cluster"], clusters)
        crules.append(
            CategoryRule(row["source"], row["category"], row["cluster"], row.get("note", ""), line)
        )
    trules = []
    for line, row in _read_rule_csv(title_rules, ("source", "category", "pattern", "cluster")):
        _check_cluster(title_rules, line, row["cluster"], clusters)
        try:
            pattern = re.compile(row["pattern"], re.IGNORECASE)
        except re.error as exc:
            raise DataError(f"{title_rules}:{line}: bad regex {row['pattern']!r}: {exc}") from exc
        trules.append(
            TitleRule(
                row["source"] or "*",
                row["category"] or "*",
                pattern,
                row["cluster"],
                row.get("note", ""),
                line,
            )
        )
    return Mapping(crules, trules)


def mapping_from_config(config: DataConfig) -> Mapping:
    """Load the mapping the data config points at, checked against its policy's labels."""
    clusters = load_policy(config.policy).clusters
    return load_mapping(config.category_map, config.title_rules, clusters)


def mapping_agreement(
    mapping: Mapping, hand_labelled: pd.DataFrame, protected: Sequence[str]
) -> dict:
    """Measure how often the mapping agrees with hand labels, per source and overall.

    Args:
        mapping: The mapping to check.
        hand_labelled: Frame with `source, category, title, cluster` (the hand label).
        protected: The policy's protected clusters.

    Returns:
        A JSON-ready dict: overall and per-source accuracy, protected-vs-other accuracy, the
        number of rows the mapping drops or cannot map, and the disagreeing rows.
    """
    mapped = mapping.map_frame(hand_labelled)
    frame = hand_labelled.assign(mapped=mapped["cluster"], rule=mapped["rule"])
    judged = frame[frame["mapped"].notna() & (frame["mapped"] != DROP)]
    agree = judged["mapped"] == judged["cluster"]
    protected = judged["mapped"].isin(protected) == judged["cluster"].isin(protected)
    per_source = {}
    for source, part in judged.groupby("source"):
        ok = part["mapped"] == part["cluster"]
        per_source[str(source)] = {"n": len(part), "accuracy": round(float(ok.mean()), 4)}
    wrong = judged[~agree][["source", "category", "title", "cluster", "mapped", "rule"]]
    return {
        "n": len(frame),
        "judged": len(judged),
        "dropped": int((frame["mapped"] == DROP).sum()),
        "unmapped": int(frame["mapped"].isna().sum()),
        "accuracy": round(float(agree.mean()), 4) if len(judged) else float("nan"),
        "protected_vs_other_accuracy": round(float(protected.mean()), 4)
        if len(judged)
        else float("nan"),
        "per_source": per_source,
        "disagreements": wrong.to_dict(orient="records"),
    }


def mapping_table(mapping: Mapping) -> pd.DataFrame:
    """The category map and title rules as one table a reviewer can read."""
    categories = pd.DataFrame(
        [
            {
                "kind": "category",
                "source": r.source,
                "category": r.category,
                "pattern": "",
                "cluster": r.cluster,
                "note": r.note,
                "line": r.line,
            }
            for r in mapping.category_rules
        ]
    )
    titles = pd.DataFrame(
        [
            {
                "kind": "title rule",
                "source": r.source,
                "category": r.category,
                "pattern": r.pattern.pattern,
                "cluster": r.cluster,
                "note": r.note,
                "line": r.line,
            }
            for r in mapping.title_rules
        ]
    )
    return pd.concat([titles, categories], ignore_index=True)
