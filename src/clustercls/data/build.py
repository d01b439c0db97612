"""Building the dataset: map, de-duplicate, apply corrections, split; write, load and
describe it, and read the hand-labelled titles kept out of training."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clustercls.config import DataConfig
from clustercls.data.errors import DataError
from clustercls.data.mapping import DROP, load_mapping
from clustercls.data.sources import load_source_config, read_source
from clustercls.policy import load_policy
from clustercls.text import detect_lang, normalize

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
    rows that cannot be trained on, keep the titles of the hand-labelled set and of the
    policy probes out (and their near-duplicates),
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

    for held_out, why in [
        (load_hand_labelled(config.hand_labelled, clusters), "hand-labelled evaluation set"),
        (load_policy_probes(config.policy_probes, clusters), "policy probes"),
    ]:
        if held_out is None:
            continue
        held_norm = {normalize(t) for t in held_out["title"]}
        held_keys = {near_duplicate_key(n) for n in held_norm}
        inside = frame["norm"].isin(held_norm) | frame["dup_group"].isin(held_keys)
        frame = dropped.drop(frame, inside, f"in {why} (or its near-duplicate)")

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
    # `unsure` is optional: a file without it is all sure.
    unsure = frame["unsure"] if "unsure" in frame.columns else pd.Series("0", index=frame.index)
    frame["unsure"] = unsure.astype(str).isin(["1", "true", "True"])
    return frame


PROBE_PARTS = ("dev", "held")
"""Parts of the policy probes: `dev` titles may be read to find what the model lacks (for
the lexicon's next version); `held` titles were written apart and are only scored."""


def load_policy_probes(path: Path | None, clusters: Sequence[str]) -> pd.DataFrame | None:
    """Read the policy probes, or None when there are none.

    The probes are titles written against the policy's lines for the kinds of error seen
    on marketplaces no source covers (look-alikes, brand-and-code titles, craft supplies,
    Indonesian decor). Like the hand-labelled titles they are never trained on.

    Args:
        path: The CSV (`title, cluster, error_class, part, note`), or None.
        clusters: The labels it may use: the policy's, or a model's when scoring one.

    Raises:
        DataError: If the file exists but lacks a column, has a label outside `clusters`,
            a part outside `PROBE_PARTS`, a row without its policy note or without an
            error class, or a title twice.
    """
    if path is None or not Path(path).is_file():
        return None
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"title", "cluster", "error_class", "part", "note"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: missing columns {sorted(missing)}")
    checks = [
        (~frame["cluster"].isin(clusters), "label not in the policy"),
        (~frame["part"].isin(PROBE_PARTS), f"part not one of {', '.join(PROBE_PARTS)}"),
        (frame["note"].str.strip() == "", "no note naming the policy line"),
        (frame["error_class"].str.strip() == "", "no error class"),
        (frame["title"].str.strip() == "", "no title"),
        (frame["title"].duplicated(), "title listed twice"),
    ]
    for bad, why in checks:
        if bad.any():
            row = frame[bad].iloc[0]
            raise DataError(
                f"{path}: {why}: {row['title']!r} ({row['cluster']!r}, {row['part']!r})"
            )
    return frame.reset_index(drop=True)


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
