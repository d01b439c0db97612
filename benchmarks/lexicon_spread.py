"""How many leave-one-source-out groups carry each lexicon row, and a lexicon without the
rows that only one group carries.

A lexicon row found by reading one held-out group's errors, whose titles occur in that
group only, helps the leave-one-source-out table through knowledge of the held-out group
itself. This script counts, for every row (or only the rows added since a git revision),
the groups whose titles contain the term with the row's cluster, and can write a lexicon
without the rows that exactly one group carries, to train and compare
(`lexicon_v6.md`'s third run):

    .venv/bin/python benchmarks/lexicon_spread.py --since <rev> --without-single FILE
    cp -r src spread_src && cp FILE spread_src/clustercls/resources/lexicon.csv
    PYTHONPATH=spread_src .venv/bin/clustercls train --models-dir runs --no-tracking

Rows no title contains are kept: they come from the policy, not from a group's titles.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from clustercls.config import DataConfig
from clustercls.data import load_dataset
from clustercls.data.sources import load_source_config
from clustercls.lexicon import default_lexicon_path, load_lexicon
from clustercls.text.normaliser import normalize_many


def _terms_at(rev: str) -> set[str]:
    """The terms of the packaged lexicon at a git revision, read as `load_lexicon` reads."""
    path = "src/clustercls/resources/lexicon.csv"
    text = subprocess.run(["git", "show", f"{rev}:{path}"], check=True, capture_output=True).stdout
    with tempfile.NamedTemporaryFile(suffix=".csv") as old:
        old.write(text)
        old.flush()
        return set(load_lexicon(old.name).rows["term"])


def spread(dataset: pd.DataFrame, lexicon: pd.DataFrame, groups: dict[str, str]) -> pd.DataFrame:
    """Per lexicon row: titles containing the term, and the groups carrying it with its cluster."""
    padded = pd.Series([f" {t} " for t in normalize_many(dataset["title"].tolist())])
    group = dataset["source"].map(groups).to_numpy()
    cluster = dataset["cluster"].to_numpy()
    rows = []
    for term, row_cluster in lexicon[["term", "cluster"]].itertuples(index=False):
        hit = padded.str.contains(f" {term} ", regex=False).to_numpy()
        rows.append(
            {
                "term": term,
                "cluster": row_cluster,
                "titles": int(hit.sum()),
                "groups_with_cluster": len(set(group[hit & (cluster == row_cluster)])),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", type=Path, default=DataConfig().processed_dir / "dataset.parquet"
    )
    parser.add_argument("--since", help="only the rows added since this git revision")
    parser.add_argument("--without-single", type=Path, help="write the lexicon without them")
    args = parser.parse_args()

    lexicon = load_lexicon().rows
    if args.since:
        lexicon = lexicon[~lexicon["term"].isin(_terms_at(args.since))]
    groups = {
        s.name: s.group for s in load_source_config(DataConfig().source_config).sources.values()
    }
    table = spread(load_dataset(args.dataset), lexicon, groups)
    single = table[(table["titles"] > 0) & (table["groups_with_cluster"] <= 1)]
    print(table.sort_values(["groups_with_cluster", "term"]).to_string(index=False))
    print(f"\n{len(table)} rows; {len(single)} carried by one group at most")
    if args.without_single:
        drop = set(single["term"])
        lines = default_lexicon_path().read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [
            line
            for i, line in enumerate(lines)
            if i == 0 or line.startswith("#") or line.split(",", 1)[0] not in drop
        ]
        args.without_single.write_text("".join(kept), encoding="utf-8")
        print(f"wrote {args.without_single} without {len(drop)} rows")


if __name__ == "__main__":
    main()
