"""Dataset building: raw marketplace sources -> one labelled, de-duplicated, split dataset.

The source config (`data/sources.toml`), the category map (`data/category_map.csv`) and the
title rules (`data/title_rules.csv`) are versioned in the repo and readable by a reviewer:
they are the project's reading of the policy in `LABELLING.md`. Every label in them, in
the corrections and in the hand-labelled titles must be a cluster of the policy file
(`data/policy.toml`).
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import re
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clustercls.config import DataConfig
from clustercls.policy import load_policy
from clustercls.text import detect_lang, normalize

DROP = "drop"
"""Pseudo-cluster of the mapping: rows that must not be trained on (reason in `note`)."""

CORRECTION_COLUMNS = (
    "id",
    "title",
    "given_label",
    "verdict",
    "corrected_label",
    "reviewer",
    "date",
    "note",
)
DATASET_COLUMNS = ("id", "title", "cluster", "source", "lang", "split", "category", "dup_group")


class DataError(ValueError):
    """A problem in the data or the mapping a data scientist can fix; the message says where."""


@dataclass(frozen=True)
class Source:
    """One raw source file and the group it is held out with."""

    name: str
    file: str
    lang: str
    group: str


@dataclass(frozen=True)
class SourceConfig:
    """The parsed `data/sources.toml`."""

    version: str
    sources: dict[str, Source]

    def by_file(self) -> dict[str, Source]:
        """Index the sources by their file name."""
        return {s.file: s for s in self.sources.values()}


def load_source_config(path: Path) -> SourceConfig:
    """Read and validate the source config.

    Args:
        path: The TOML file listing the sources.

    Returns:
        The parsed config.

    Raises:
        DataError: If the file is missing or a source lacks a field.
    """
    if not path.is_file():
        raise DataError(f"{path}: source config not found")
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    sources = {}
    for name, entry in raw.get("sources", {}).items():
        missing = {"file", "lang", "group"} - entry.keys()
        if missing:
            raise DataError(f"{path}: source '{name}' lacks {sorted(missing)}")
        sources[name] = Source(
            name=name, file=entry["file"], lang=entry["lang"], group=entry["group"]
        )
    if not sources:
        raise DataError(f"{path}: no [sources.*] entries")
    return SourceConfig(version=str(raw.get("version", "unversioned")), sources=sources)


# --------------------------------------------------------------------------- mapping


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


# --------------------------------------------------------------------------- building

# Variant words sellers append to the same product ("Kemeja Batik Hitam XL" vs "... Putih M"):
# dropping them, with sizes, codes and quantities, leaves the product's identity.
_VARIANT_WORDS = frozenset(
    """
    black white red blue green yellow pink purple grey gray brown navy maroon beige cream gold
    silver orange olive khaki tosca mocca army dusty misty light dark hitam putih merah biru
    hijau kuning ungu abu coklat cokelat krem emas perak oranye muda tua warna color colour
    xs s m l xl xxl xxxl xxxxl size ukuran
    """.split()
)


def near_duplicate_key(normalised: str) -> str:
    """Key shared by titles that differ only by size, colour, quantity or code.

    Args:
        normalised: A title already passed through `text.normalize`.

    Returns:
        The title's tokens without variant words, unit placeholders and tokens holding digits;
        the normalised title itself when nothing else is left.
    """
    tokens = [
        t
        for t in normalised.split()
        if t not in _VARIANT_WORDS and not t.startswith("unit") and not any(c.isdigit() for c in t)
    ]
    return " ".join(tokens) or normalised


def stable_id(source: str, title: str) -> str:
    """A row id that survives rebuilds: a hash of the source and the raw title."""
    return hashlib.sha1(f"{source}\x1f{title}".encode()).hexdigest()[:12]


@dataclass
class BuildResult:
    """The processed dataset and its report."""

    frame: pd.DataFrame
    report: dict
    dropped: pd.DataFrame = field(default_factory=pd.DataFrame)


def read_source(path: Path, source: Source) -> pd.DataFrame:
    """Read one raw source CSV.

    Args:
        path: The CSV file (`title, category`).
        source: Its entry in the source config.

    Returns:
        Frame with `source, category, title, row` (row = line number in the file).

    Raises:
        DataError: If the file cannot be read, lacks a column, or has no rows.
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: cannot read as UTF-8 CSV: {str(exc).splitlines()[0]}") from exc
    missing = {"title", "category"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: missing columns {sorted(missing)} (expected title, category)")
    if frame.empty:
        raise DataError(f"{path}: empty source (no rows)")
    return pd.DataFrame(
        {
            "source": source.name,
            "category": frame["category"].str.strip(),
            "title": frame["title"],
            "row": np.arange(2, len(frame) + 2),
        }
    )


def read_corrections(path: Path, clusters: Sequence[str]) -> pd.DataFrame:
    """Read and validate reviewer corrections.

    Args:
        path: `data/corrections.csv`; a missing file means no corrections.
        clusters: The policy's labels, the only ones a relabel may give.

    Returns:
        The corrections, in file order.

    Raises:
        DataError: On a missing column, an unknown verdict, or a relabel outside the policy;
            the message names the file and row.
    """
    if not path.is_file():
        return pd.DataFrame(columns=list(CORRECTION_COLUMNS))
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = set(CORRECTION_COLUMNS) - set(frame.columns)
    if missing:
        raise DataError(f"{path}: missing columns {sorted(missing)}")
    for i, row in enumerate(frame.itertuples(index=False), start=2):
        if row.verdict not in ("confirm", "relabel", "skip"):
            raise DataError(f"{path}:{i}: verdict '{row.verdict}' is not confirm/relabel/skip")
        if row.verdict == "relabel" and row.corrected_label not in clusters:
            raise DataError(
                f"{path}:{i}: corrected_label '{row.corrected_label}' is not in the policy "
                f"({', '.join(clusters)})"
            )
    return frame


def _assign_split(frame: pd.DataFrame, test_size: float, seed: int) -> np.ndarray:
    """Group-aware stratified split: a near-duplicate group never straddles train and test."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = max(2, round(1 / test_size))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, test_idx = next(splitter.split(frame, frame["cluster"], frame["dup_group"]))
    split = np.full(len(frame), "train", dtype=object)
    split[test_idx] = "test"
    return split


class Dropped:
    """Rows removed from the dataset, with the reason, for the data report."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self._frames: list[pd.DataFrame] = []

    def drop(self, frame: pd.DataFrame, mask: pd.Series, reason: str) -> pd.DataFrame:
        """Remove the rows where `mask` is true, recording them under `reason`."""
        if mask.any():
            self.counts[reason] += int(mask.sum())
            self._frames.append(
                frame.loc[mask, ["source", "row", "category", "title"]].assign(reason=reason)
            )
        return frame[~mask]

    def rows(self) -> pd.DataFrame:
        """Every dropped row: source, row (line in the source file), category, title, reason."""
        if not self._frames:
            return pd.DataFrame(columns=["source", "row", "category", "title", "reason"])
        return pd.concat(self._frames, ignore_index=True)


def build_dataset(config: DataConfig) -> BuildResult:
    """Build the processed dataset from the raw sources.

    Steps: read every source file, map categories and titles to clusters, normalise, drop
    rows that cannot be trained on, keep titles used for hand-labelled evaluation out,
    resolve conflicting labels (majority; a tie drops the title), drop exact duplicates,
    cap near-duplicate groups, apply reviewer corrections last, and split by group.

    Args:
        config: The data settings.

    Returns:
        The dataset (`id, title, cluster, source, lang, split, category, dup_group`), a
        JSON-ready report, and every dropped row with its reason.

    Raises:
        DataError: For an unknown or unreadable source file, an empty source, a category no
            rule maps, or a label outside the policy (`config.policy`).
    """
    sources = load_source_config(config.source_config)
    clusters = load_policy(config.policy).clusters
    mapping = load_mapping(config.category_map, config.title_rules, clusters)
    sources_dir = Path(config.sources_dir)
    if not sources_dir.is_dir():
        raise DataError(
            f"{sources_dir}: sources folder not found (set --sources or $CLUSTERCLS_SOURCES)"
        )
    files = sorted(p for p in sources_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    by_file = sources.by_file()
    unknown = [p.name for p in files if p.name not in by_file]
    if unknown:
        raise DataError(
            f"{sources_dir / unknown[0]}: unknown source file (not in {config.source_config}); "
            f"add it there with its lang and group. Unknown: {', '.join(unknown)}"
        )
    if not files:
        raise DataError(f"{sources_dir}: no source files")

    dropped = Dropped()
    frames = []
    for path in files:
        source = by_file[path.name]
        raw = read_source(path, source)
        mapped = mapping.map_frame(raw)
        unmapped = raw[mapped["cluster"].isna()]
        if len(unmapped):
            examples = "; ".join(
                f"row {r.row}: '{r.category}'" for r in unmapped.head(3).itertuples()
            )
            raise DataError(
                f"{path}: {len(unmapped)} rows have a category with no mapping in "
                f"{config.category_map} ({examples})"
            )
        frames.append(
            raw.assign(cluster=mapped["cluster"].to_numpy(), rule=mapped["rule"].to_numpy())
        )
    frame = pd.concat(frames, ignore_index=True)
    raw_counts = frame.groupby(["source", "cluster"]).size().unstack(fill_value=0)

    frame = dropped.drop(frame, frame["cluster"] == DROP, "mapping says drop")
    frame = frame.assign(norm=[normalize(t) for t in frame["title"]])
    frame = dropped.drop(frame, frame["norm"] == "", "empty after normalisation")
    frame = frame.assign(dup_group=[near_duplicate_key(n) for n in frame["norm"]])

    hand = load_hand_labelled(config.hand_labelled, clusters)
    if hand is not None:
        hand_norm = {normalize(t) for t in hand["title"]}
        hand_keys = {near_duplicate_key(n) for n in hand_norm}
        in_hand = frame["norm"].isin(hand_norm) | frame["dup_group"].isin(hand_keys)
        frame = dropped.drop(
            frame, in_hand, "in hand-labelled evaluation set (or its near-duplicate)"
        )

    frame, conflicts = _resolve_conflicts(frame, dropped)
    frame = dropped.drop(frame, frame.duplicated("norm"), "exact duplicate (after normalisation)")
    rank = frame.groupby("dup_group").cumcount()
    frame = dropped.drop(
        frame,
        rank >= config.max_per_group,
        f"near-duplicate beyond {config.max_per_group} per group",
    )

    frame = frame.assign(
        id=[stable_id(s, t) for s, t in zip(frame["source"], frame["title"], strict=True)]
    )
    frame, corrections_report = _apply_corrections(
        frame, read_corrections(config.corrections, clusters)
    )

    frame = frame.reset_index(drop=True)
    lang_by_source = {s.name: s.lang for s in sources.sources.values()}
    langs = [detect_lang(n) for n in frame["norm"]]
    frame = frame.assign(
        lang=[
            lang if lang != "unknown" else lang_by_source[src]
            for lang, src in zip(langs, frame["source"], strict=True)
        ]
    )
    frame = frame.assign(split=_assign_split(frame, config.test_size, config.seed))
    dataset = frame[list(DATASET_COLUMNS)].reset_index(drop=True)

    report = {
        "source_config_version": sources.version,
        "rows_read": int(raw_counts.to_numpy().sum()),
        "rows_kept": len(dataset),
        "raw_counts": {s: {k: int(v) for k, v in row.items()} for s, row in raw_counts.iterrows()},
        "counts": _counts(dataset),
        "dropped": dict(dropped.counts),
        "conflicts": conflicts,
        "near_duplicate_groups": {
            "groups": int(dataset["dup_group"].nunique()),
            "rows_in_multi_row_groups": int(dataset["dup_group"].duplicated(keep=False).sum()),
        },
        "corrections": corrections_report,
        "splits": dataset["split"].value_counts().to_dict(),
        "languages": dataset["lang"].value_counts().to_dict(),
        "fingerprint": fingerprint(dataset),
    }
    return BuildResult(frame=dataset, report=report, dropped=dropped.rows())


def _resolve_conflicts(frame: pd.DataFrame, dropped: Dropped) -> tuple[pd.DataFrame, dict]:
    """The same normalised title mapped to different clusters: the majority of its rows
    wins; a tie drops the title, since nothing says which source is right."""
    votes = frame.groupby(["norm", "cluster"]).size().rename("votes").reset_index()
    conflicted = votes[votes.groupby("norm")["cluster"].transform("size") > 1]
    leaders = conflicted[
        conflicted["votes"] == conflicted.groupby("norm")["votes"].transform("max")
    ]
    n_leaders = leaders.groupby("norm")["cluster"].transform("size")
    tie_titles = set(leaders.loc[n_leaders > 1, "norm"])
    winners = leaders[n_leaders == 1].set_index("norm")["cluster"]
    frame = dropped.drop(frame, frame["norm"].isin(tie_titles), "conflicting labels, tie")
    resolved = frame["norm"].map(winners).astype(object)
    relabelled = int((resolved.notna() & (resolved != frame["cluster"])).sum())
    report = {
        "titles_with_conflicting_labels": int(conflicted["norm"].nunique()),
        "resolved_by_majority": len(winners),
        "rows_relabelled_by_majority": relabelled,
        "dropped_as_ties": len(tie_titles),
        "rule": "majority of source rows; a tie drops the title",
    }
    return frame.assign(cluster=resolved.fillna(frame["cluster"])), report


def _counts(dataset: pd.DataFrame) -> dict:
    table = dataset.groupby(["source", "cluster"]).size().unstack(fill_value=0)
    return {s: {k: int(v) for k, v in row.items()} for s, row in table.iterrows()}


def _apply_corrections(frame: pd.DataFrame, corrections: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Apply reviewer verdicts; a later row for the same listing overrides an earlier one."""
    report = {
        "rows": len(corrections),
        "relabelled": 0,
        "confirmed": 0,
        "skipped": 0,
        "unmatched": 0,
    }
    if corrections.empty:
        return frame, report
    by_id = pd.Series(frame.index, index=frame["id"])
    by_norm = pd.Series(frame.index, index=frame["norm"])
    cluster = frame["cluster"].copy()
    for row in corrections.itertuples(index=False):
        if row.verdict == "skip":
            report["skipped"] += 1
            continue
        if row.id in by_id.index:
            target = by_id[row.id]
        elif normalize(row.title) in by_norm.index:
            target = by_norm[normalize(row.title)]
        else:
            report["unmatched"] += 1
            continue
        if row.verdict == "relabel":
            cluster[target] = row.corrected_label
            report["relabelled"] += 1
        else:
            report["confirmed"] += 1
    return frame.assign(cluster=cluster), report


def fingerprint(dataset: pd.DataFrame) -> str:
    """A sha256 of the dataset's content (ids, titles, labels, splits), order included."""
    digest = hashlib.sha256()
    for column in ("id", "title", "cluster", "split"):
        digest.update("\x1e".join(dataset[column].astype(str)).encode())
        digest.update(b"\x1d")
    return digest.hexdigest()


def write_dataset(result: BuildResult, out_dir: Path) -> dict[str, Path]:
    """Write the dataset (Parquet), its report (JSON and Markdown) and the dropped rows (CSV).

    Args:
        result: What `build_dataset` returned.
        out_dir: Destination folder, created if missing.

    Returns:
        The written paths by kind.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "dataset": out_dir / "dataset.parquet",
        "report": out_dir / "data_report.json",
        "report_md": out_dir / "data_report.md",
        "dropped": out_dir / "dropped_rows.csv",
    }
    result.frame.to_parquet(paths["dataset"], index=False)
    paths["report"].write_text(json.dumps(result.report, indent=2, ensure_ascii=False))
    paths["report_md"].write_text(report_markdown(result.report))
    result.dropped.to_csv(paths["dropped"], index=False)
    return paths


def load_dataset(path: Path) -> pd.DataFrame:
    """Read a processed dataset and check its schema.

    Raises:
        DataError: If the file is missing or lacks a dataset column.
    """
    if not Path(path).is_file():
        raise DataError(f"{path}: dataset not found (run `clustercls data build` first)")
    frame = pd.read_parquet(path)
    missing = set(DATASET_COLUMNS) - set(frame.columns)
    if missing:
        raise DataError(f"{path}: missing columns {sorted(missing)}")
    return frame


def check_labels(dataset: pd.DataFrame, clusters: Sequence[str], where: Path | str) -> None:
    """Refuse a dataset whose labels are not exactly the policy's clusters.

    A label outside the policy means the dataset was built under another policy; a
    cluster with no rows would be missing from the model, which could never predict it.

    Raises:
        DataError: Naming the labels outside the policy and the clusters without rows.
    """
    labels = set(dataset["cluster"])
    outside, missing = sorted(labels - set(clusters)), sorted(set(clusters) - labels)
    if outside:
        raise DataError(
            f"{where}: labels {outside} are not in the policy ({', '.join(clusters)}); "
            "rebuild the dataset under this policy"
        )
    if missing:
        raise DataError(
            f"{where}: the policy's clusters {missing} have no rows; map categories or "
            "titles to them and rebuild the dataset"
        )


def report_markdown(report: dict) -> str:
    """Render the data report as Markdown a reviewer can read."""
    counts = pd.DataFrame(report["counts"]).T.fillna(0).astype(int)
    counts.loc["total"] = counts.sum()
    lines = [
        "# Data report",
        "",
        f"Source config version `{report['source_config_version']}`; "
        f"{report['rows_read']} rows read, {report['rows_kept']} kept; "
        f"fingerprint `{report['fingerprint'][:16]}`.",
        "",
        "## Rows kept per source and cluster",
        "",
        "```",
        counts.to_string(),
        "```",
        "",
        "## Rows dropped",
        "",
        *[f"- {reason}: {n}" for reason, n in report["dropped"].items()],
        "",
        "## Conflicting labels",
        "",
        *[f"- {k}: {v}" for k, v in report["conflicts"].items()],
        "",
        "## Reviewer corrections",
        "",
        *[f"- {k}: {v}" for k, v in report["corrections"].items()],
        "",
    ]
    return "\n".join(lines)


def load_hand_labelled(path: Path | None, clusters: Sequence[str]) -> pd.DataFrame | None:
    """Read the hand-labelled yardstick, or None when it is not available.

    Args:
        path: The CSV (`title, source, cluster`, optional `unsure`), or None.
        clusters: The labels it may use: the policy's, or a model's when scoring one.

    Raises:
        DataError: If the file exists but lacks a needed column or has another label.
    """
    if path is None or not Path(path).is_file():
        return None
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"title", "source", "cluster"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: missing columns {sorted(missing)}")
    bad = frame[~frame["cluster"].isin(clusters)]
    if len(bad):
        raise DataError(
            f"{path}:{bad.index[0] + 2}: label '{bad['cluster'].iloc[0]}' not in the policy"
        )
    frame["unsure"] = frame.get("unsure", "0").astype(str).isin(["1", "true", "True"])
    return frame


def describe_dataset(dataset: pd.DataFrame, top_groups: int = 15) -> dict[str, pd.DataFrame]:
    """Tables that describe a processed dataset, for notebooks and reports.

    Args:
        dataset: A processed dataset.
        top_groups: How many of the largest near-duplicate groups to list.

    Returns:
        `source_by_cluster`, `language_by_cluster`, `title_length` (characters, by
        cluster), `split_by_cluster` and `largest_near_duplicate_groups`.
    """
    lengths = dataset.assign(chars=dataset["title"].str.len())
    groups = dataset.groupby("dup_group").agg(
        rows=("id", "size"), cluster=("cluster", "first"), example=("title", "first")
    )
    return {
        "source_by_cluster": pd.crosstab(dataset["source"], dataset["cluster"], margins=True),
        "language_by_cluster": pd.crosstab(dataset["lang"], dataset["cluster"], margins=True),
        "title_length": lengths.groupby("cluster")["chars"].describe().round(1),
        "split_by_cluster": pd.crosstab(dataset["split"], dataset["cluster"], margins=True),
        "largest_near_duplicate_groups": groups.sort_values("rows", ascending=False).head(
            top_groups
        ),
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
