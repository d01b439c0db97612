"""The raw sources: `data/sources.toml` (file, language and leave-one-source-out group of
each) and reading one source file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clustercls.data.errors import DataError


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
