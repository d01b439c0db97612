"""Words the held-out marketplaces use that the lexicon does not name: candidates for its
next version.

Reads a trained model's out-of-source scores (each title scored by a model that never saw
its source group) and, per held-out group and kind of error (true cluster, predicted
cluster), counts the words and word pairs of the misclassified titles whose title fires no
lexicon term of its true cluster. Each candidate comes with the share of its true cluster
among all dataset titles that contain it: a candidate becomes a lexicon row only when the
policy decides it and that share is high across sources (check the rows with
`lexicon_spread.py`; lexicon v6 was found this way).

    .venv/bin/python benchmarks/lexicon_gaps.py models/<version> --out gaps.csv
"""

from __future__ import annotations

import argparse
import itertools
import re
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd

from clustercls.config import DataConfig
from clustercls.data import load_dataset
from clustercls.lexicon import LexiconFeatures
from clustercls.text.normaliser import normalize_many

_NUMBERS = re.compile(r"[\d ]+")


def _grams(text: str) -> set[str]:
    """The words and word pairs of a normalised title, numbers and short tokens left out."""
    words = text.split()
    grams = set(words) | {" ".join(pair) for pair in itertools.pairwise(words)}
    return {g for g in grams if len(g) > 2 and not _NUMBERS.fullmatch(g)}


def gaps(scores: pd.DataFrame, dataset: pd.DataFrame, top: int, min_errors: int) -> pd.DataFrame:
    """Candidate n-grams per (held-out group, true cluster, predicted cluster)."""
    frame = scores.join(dataset[["title"]])
    frame["norm"] = normalize_many(frame["title"].tolist())
    lexicon = LexiconFeatures().fit()
    cluster_of = {term: cluster for term, (_, _, cluster) in lexicon.terms_.items()}
    fired = [{cluster_of[t] for t in lexicon.matches(n)} for n in frame["norm"]]
    frame["unnamed"] = [c not in f for c, f in zip(frame["cluster"], fired, strict=True)]

    frame["grams"] = frame["norm"].map(_grams)

    labels: dict[str, Counter] = defaultdict(Counter)
    for grams, cluster in zip(frame["grams"], frame["cluster"], strict=True):
        for gram in grams:
            labels[gram][cluster] += 1

    wrong = frame[(frame["cluster"] != frame["predicted"]) & frame["unnamed"]]
    rows = []
    for (group, true, predicted), errors in wrong.groupby(["group", "cluster", "predicted"]):
        counts = Counter(g for grams in errors["grams"] for g in grams)
        # Ties in word order, so the list does not depend on the hash seed.
        for gram, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            if n < min_errors:
                break
            total = sum(labels[gram].values())
            example = errors["title"][errors["grams"].map(lambda grams, g=gram: g in grams)]
            rows.append(
                {
                    "group": group,
                    "true": true,
                    "predicted": predicted,
                    "gram": gram,
                    "errors": n,
                    "titles": total,
                    "share_true": round(labels[gram][true] / total, 2),
                    "example": example.iloc[0][:100],
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path, help="a model trained with leave-one-source-out")
    parser.add_argument(
        "--dataset", type=Path, default=DataConfig().processed_dir / "dataset.parquet"
    )
    parser.add_argument("--top", type=int, default=25, help="n-grams kept per kind of error")
    parser.add_argument("--min-errors", type=int, default=3)
    parser.add_argument("--out", type=Path, help="CSV to write (default: print)")
    args = parser.parse_args()

    scores = pd.read_parquet(args.model_dir / "out_of_source_scores.parquet")
    table = gaps(scores, load_dataset(args.dataset), args.top, args.min_errors)
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"wrote {len(table)} candidates to {args.out}")
    else:
        print(table.sort_values("errors", ascending=False).to_string(index=False))


if __name__ == "__main__":
    main()
