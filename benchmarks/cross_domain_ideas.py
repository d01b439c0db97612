"""Cross-domain ideas that are not a training setting: fit functions for
`clustercls.evaluate.out_of_source_scores`, run by `loso_ideas.py` under the names in
`FIT_IDEAS`.

Each takes the training rows of one fold (`title`, `cluster`, `source`) and returns a fitted
pipeline with `predict_proba` and `classes_`; everything else is the project's default
pipeline. They are measured here and kept out of the package until the leave-one-source-out
table rewards them and production can run them.
"""

from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.cluster import MiniBatchKMeans
from sklearn.feature_extraction.text import TfidfVectorizer

from clustercls.classifier import make_classifier
from clustercls.config import FeatureConfig, ModelConfig
from clustercls.features import tokenize
from clustercls.fit import (
    THINNED_SOURCE,
    build_pipeline,
    fit_features,
    fit_pipeline,
    fit_rows,
    sample_weights,
    thin_titles,
    weighted_rows,
    with_lexicon_documents,
)
from clustercls.lexicon import LexiconFeatures, load_lexicon


def _fit(pipeline, rows: pd.DataFrame, model: ModelConfig, scale, weights=sample_weights, **params):
    """Fit on `rows` weighted `weights(rows, model) * scale`; `params` go to the classifier."""
    return pipeline.fit(
        rows["title"].to_numpy(),
        rows["cluster"].to_numpy(),
        classifier__sample_weight=weights(rows, model) * scale,
        **{f"classifier__{k}": v for k, v in params.items()},
    )


def _fit_with_extra(pipeline, frame: pd.DataFrame, extra: pd.DataFrame, weight: float, model):
    """Fit on the training rows plus `extra` (one source of its own, weighted `weight`
    after the usual balancing) and the lexicon documents."""
    rows = pd.concat([frame[["title", "cluster", "source"]], extra], ignore_index=True)
    scale = np.ones(len(rows))
    if model.lexicon_documents:
        rows, scale = with_lexicon_documents(rows, model.lexicon_documents)
    added = set(extra["source"])
    scale = scale * np.where(rows["source"].isin(added).to_numpy(), weight, 1.0)
    return _fit(pipeline, rows, model, scale)


def _sources_per_column(X: sp.spmatrix, sources: np.ndarray) -> np.ndarray:
    """Per column of X, how many distinct sources have a document containing it."""
    codes, _ = pd.factorize(sources)
    member = sp.csr_matrix(
        (np.ones(len(codes), dtype=np.float32), (codes, np.arange(len(codes)))),
        shape=(codes.max() + 1, len(codes)),
    )
    present = (member @ (X != 0).astype(np.float32)).tocsc()
    return np.diff(present.indptr)


class CrossSourceVocabulary:
    """Word and char vocabularies restricted to n-grams found in at least `min_sources`
    training sources, so that one shop's brand names and codes carry no weight."""

    def __init__(self, min_sources: int, features=None, model=None) -> None:
        self.min_sources = min_sources
        self.features = features or FeatureConfig()
        self.model = model or ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        scale = 1.0
        if self.model.lexicon_documents:
            frame, scale = with_lexicon_documents(frame, self.model.lexicon_documents)
        texts = list(pipeline.steps[0][1].fit_transform(list(frame["title"])))
        sources = frame["source"].to_numpy()
        blocks = dict(pipeline.steps[1][1].transformer_list)
        params = {}
        for name in ("word", "char"):
            vectoriser = clone(blocks[name]).fit(texts)
            counts = _sources_per_column(vectoriser.transform(texts), sources)
            terms = np.array(sorted(vectoriser.vocabulary_, key=vectoriser.vocabulary_.get))
            kept = terms[counts >= self.min_sources]
            params[f"features__{name}__vocabulary"] = {t: i for i, t in enumerate(kept)}
        pipeline.set_params(**params)
        return _fit(pipeline, frame, self.model, scale)


class SelfTraining:
    """Transductive self-training on the held-out group's own (unlabelled) titles.

    The default fit scores the held-out titles; those whose top probability reaches
    `threshold` join the training rows with their predicted cluster, as a source of their
    own (balanced like any source) weighted `weight`, and the pipeline is fitted once more.
    It needs the unseen marketplace's titles at training time.
    """

    def __init__(self, dataset: pd.DataFrame, groups: dict, threshold=0.9, weight=0.5) -> None:
        self.titles = dataset.assign(group_=dataset["source"].map(groups))[["title", "group_"]]
        self.threshold, self.weight = threshold, weight
        self.features, self.model = FeatureConfig(), ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        trained = set(self.titles.loc[self.titles.index.isin(frame.index), "group_"])
        held_out = sorted(set(self.titles["group_"]) - trained)
        if len(held_out) != 1:
            raise ValueError(f"expected one held-out group, found {held_out}")
        unlabelled = self.titles.loc[self.titles["group_"] == held_out[0], "title"].tolist()
        first = fit_pipeline(frame, self.features, self.model)
        proba = first.predict_proba(unlabelled)
        pick = proba.max(axis=1) >= self.threshold
        pseudo = pd.DataFrame(
            {
                "title": np.asarray(unlabelled, dtype=object)[pick],
                "cluster": np.asarray(first.classes_, dtype=object)[proba.argmax(axis=1)][pick],
                "source": "pseudo",
            }
        )
        pipeline = build_pipeline(self.features, self.model)
        return _fit_with_extra(pipeline, frame, pseudo, self.weight, self.model)


class SubLabelClassifier(ClassifierMixin, BaseEstimator):
    """Fine-grained sub-labels trained, their probabilities summed back to clusters.

    Each cluster's training rows are split into `k` sub-labels by k-means on their
    features (what a linear model finds hard is a class of many kinds of product, and
    `other` holds phones, cosmetics and car parts alike); `base` is fitted on the
    sub-labels and each cluster's probability is the sum of its sub-labels'. Rows keep the
    weight `base` would give them by cluster (balanced as `class_weight="balanced"`).
    """

    def __init__(self, base, k: int = 4, random_state: int = 0) -> None:
        self.base = base
        self.k = k
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        y = np.asarray(y, dtype=object)
        self.classes_ = np.unique(y)
        sub = np.empty(len(y), dtype=object)
        for c in self.classes_:
            rows = np.flatnonzero(y == c)
            k = min(self.k, len(rows))
            parts = (
                MiniBatchKMeans(
                    k, random_state=self.random_state, n_init=3, batch_size=4096
                ).fit_predict(X[rows])
                if k > 1
                else np.zeros(len(rows), dtype=int)
            )
            sub[rows] = [f"{c}#{j}" for j in parts]
        counts = pd.Series(y).value_counts()
        balance = len(y) / (len(self.classes_) * counts[y].to_numpy())
        weight = balance if sample_weight is None else np.asarray(sample_weight) * balance
        self.estimator_ = clone(self.base).fit(X, sub, sample_weight=weight)
        parent = [list(self.classes_).index(s.split("#")[0]) for s in self.estimator_.classes_]
        self.sum_ = np.zeros((len(parent), len(self.classes_)))
        self.sum_[np.arange(len(parent)), parent] = 1.0
        return self

    def predict_proba(self, X) -> np.ndarray:
        return self.estimator_.predict_proba(X) @ self.sum_

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class SubLabels:
    """The default pipeline with `SubLabelClassifier(k)` as its classifier."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.features, self.model = FeatureConfig(), ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        base = make_classifier(self.model.model_copy(update={"class_weight": None}))
        pipeline.set_params(classifier=SubLabelClassifier(base, self.k))
        scale = 1.0
        if self.model.lexicon_documents:
            frame, scale = with_lexicon_documents(frame, self.model.lexicon_documents)
        return _fit(pipeline, frame, self.model, scale)


class SourceCopiesClassifier(ClassifierMixin, BaseEstimator):
    """Daume's feature augmentation ("frustratingly easy" domain adaptation).

    At fit, every row gets a shared copy of its features and a second copy in a block of
    its own source, so what only one shop's titles share (its brands, codes, category
    boilerplate) can be learnt by that shop's block instead of the shared one. At predict
    only the shared copy is filled: a marketplace no source covers is scored by what the
    sources have in common. Rows of the sources in `shared_only` (the lexicon documents,
    which carry the policy rather than a shop) get no copy of their own.
    """

    def __init__(self, base, shared_only: tuple = ("lexicon",)) -> None:
        self.base = base
        self.shared_only = shared_only

    def _augment(self, X, codes: np.ndarray, n_blocks: int):
        X = sp.csr_matrix(X)
        width = X.shape[1]
        own = X.copy()
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        own.indices = (X.indices + (codes[rows] + 1) * width).astype(np.int64)
        own = sp.csr_matrix(
            (own.data * (codes[rows] >= 0), own.indices, own.indptr),
            shape=(X.shape[0], width * (n_blocks + 1)),
        )
        shared = sp.csr_matrix(
            (X.data, X.indices, X.indptr), shape=(X.shape[0], width * (n_blocks + 1))
        )
        return (shared + own).tocsr()

    def fit(self, X, y, sample_weight=None, sources=None):
        sources = np.asarray(sources, dtype=object)
        names = sorted(set(sources) - set(self.shared_only))
        index = {s: i for i, s in enumerate(names)}
        codes = np.array([index.get(s, -1) for s in sources])
        self.n_blocks_ = len(names)
        self.estimator_ = clone(self.base).fit(
            self._augment(X, codes, self.n_blocks_), y, sample_weight=sample_weight
        )
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X) -> np.ndarray:
        X = sp.csr_matrix(X)
        wide = sp.csr_matrix(
            (X.data, X.indices, X.indptr), shape=(X.shape[0], X.shape[1] * (self.n_blocks_ + 1))
        )
        return self.estimator_.predict_proba(wide)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class SourceCopies:
    """The default pipeline with `SourceCopiesClassifier` around its classifier."""

    def __init__(self) -> None:
        self.features, self.model = FeatureConfig(), ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        pipeline.set_params(classifier=SourceCopiesClassifier(make_classifier(self.model)))
        scale = 1.0
        if self.model.lexicon_documents:
            frame, scale = with_lexicon_documents(frame, self.model.lexicon_documents)
        return _fit(pipeline, frame, self.model, scale, sources=frame["source"].to_numpy())


def _first_words(text: str, n: int = 3) -> str:
    return " ".join(text.split(" ")[:n])


class HeadWords:
    """The default pipeline plus a word TF-IDF block of the title's first three words.

    Indonesian titles usually start with the product noun, and a keyword-stuffed Etsy
    title starts with what it sells: a separate copy of those words lets the classifier
    weigh them apart from words met later in the title (colours, materials, uses).
    """

    def __init__(self, n: int = 3) -> None:
        self.n = n
        self.features, self.model = FeatureConfig(), ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        head = TfidfVectorizer(
            analyzer="word",
            tokenizer=tokenize,
            token_pattern=None,
            lowercase=False,
            preprocessor=partial(_first_words, n=self.n),
            min_df=self.features.min_df,
            sublinear_tf=True,
            dtype=np.float32,
        )
        pipeline.named_steps["features"].transformer_list.append(("head", head))
        scale = 1.0
        if self.model.lexicon_documents:
            frame, scale = with_lexicon_documents(frame, self.model.lexicon_documents)
        return _fit(pipeline, frame, self.model, scale)


class LexiconSwap:
    """Cross-lingual augmentation through the lexicon's shared concepts.

    Every training title with Indonesian or English lexicon terms is added once more with
    each such term replaced by its concept's shortest term in the other language ("tas
    anyaman rotan" -> "woven bag rattan"), as a source of its own weighted `weight`. What
    one language's sources teach (Indonesian craft sellers, English art shops) then also
    reaches titles written in the other.
    """

    def __init__(self, weight: float = 0.5) -> None:
        self.weight = weight
        self.features, self.model = FeatureConfig(), ModelConfig()

    def swapped(self, normalised: list[str]) -> list[str | None]:
        rows = load_lexicon().rows
        rows = rows[rows["lang"].isin(["id", "en"])]
        shortest = (
            rows.assign(n=rows["term"].str.len())
            .sort_values(["n", "term"])
            .drop_duplicates(["concept", "lang"])
            .set_index(["concept", "lang"])["term"]
        )
        other = {"id": "en", "en": "id"}
        swap = {
            term: shortest[(concept, other[lang])]
            for term, lang, concept in rows[["term", "lang", "concept"]].itertuples(index=False)
            if (concept, other[lang]) in shortest.index
        }
        lexicon = LexiconFeatures().fit()
        out: list[str | None] = []
        for text in normalised:
            found = [t for t in lexicon.matches(text) if t in swap]
            if not found:
                out.append(None)
                continue
            for term in found:
                text = f" {text} ".replace(f" {term} ", f" {swap[term]} ", 1).strip()
            out.append(text)
        return out

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        normalised = list(pipeline.steps[0][1].fit_transform(list(frame["title"])))
        swapped = self.swapped(normalised)
        keep = np.array([t is not None for t in swapped])
        extra = pd.DataFrame(
            {
                "title": [t for t in swapped if t is not None],
                "cluster": frame["cluster"].to_numpy()[keep],
                "source": "(swapped)",
            }
        )
        return _fit_with_extra(pipeline, frame, extra, self.weight, self.model)


def weights_balanced_after_sources(frame: pd.DataFrame, model: ModelConfig) -> np.ndarray:
    """Source weights first, then clusters balanced on those weighted totals, so each
    cluster's total weight is equal (the default balances clusters on raw counts, and the
    source weights then leave craft, mostly one large art shop, heavier than fashion)."""
    size = frame.groupby("source")["source"].transform("size").to_numpy().astype(float)
    weight = size**-model.source_weight
    total = pd.Series(weight).groupby(frame["cluster"].to_numpy()).transform("sum").to_numpy()
    weight = weight / total
    return weight / weight.mean()


class BalancedAfterSources:
    """The default pipeline with `weights_balanced_after_sources` as its row weights."""

    def __init__(self) -> None:
        self.features, self.model = FeatureConfig(), ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        scale = 1.0
        if self.model.lexicon_documents:
            frame, scale = with_lexicon_documents(frame, self.model.lexicon_documents)
        return _fit(pipeline, frame, self.model, scale, weights=weights_balanced_after_sources)


class WordClusterFeatures(TransformerMixin, BaseEstimator):
    """Bag of word clusters: each token of a normalised title counted as the cluster of its
    word vector (Turian et al. 2010: cluster features added to a linear model).

    Vectors come from a FastText model trained at `fit` on the training titles (and
    `extra_texts`, unlabelled titles, when given); their subword n-grams place a word no
    training title holds next to the words it is spelt like. The vocabulary's vectors are
    clustered with k-means, and a word `fit` never met goes to its vector's nearest
    centroid. Rows are sublinear counts, L2-normalised and scaled by `weight`. Needs gensim,
    which is not a project dependency (measured and dropped:
    `benchmarks/results/loso_ideas_word_clusters.md`).
    """

    def __init__(
        self,
        n_clusters=400,
        dim=64,
        epochs=5,
        min_count=3,
        weight=1.0,
        extra_texts=None,
        random_state=0,
    ) -> None:
        self.n_clusters = n_clusters
        self.dim = dim
        self.epochs = epochs
        self.min_count = min_count
        self.weight = weight
        self.extra_texts = extra_texts
        self.random_state = random_state

    def fit(self, X, y=None):
        from gensim.models import FastText

        docs = [tokenize(t) for t in X]
        if self.extra_texts is not None:
            docs += [tokenize(t) for t in self.extra_texts]
        model = FastText(
            sentences=[d for d in docs if d],
            vector_size=self.dim,
            window=5,
            min_count=self.min_count,
            epochs=self.epochs,
            workers=1,
            seed=self.random_state,
            min_n=3,
            max_n=5,
        )
        words = list(model.wv.index_to_key)
        vectors = model.wv.get_normed_vectors()
        km = MiniBatchKMeans(
            self.n_clusters, random_state=self.random_state, n_init=3, batch_size=4096
        ).fit(vectors)
        self.wv_ = model.wv
        self.centroids_ = km.cluster_centers_ / np.linalg.norm(
            km.cluster_centers_, axis=1, keepdims=True
        ).clip(1e-9)
        self.cluster_of_ = dict(zip(words, km.labels_.tolist(), strict=True))
        return self

    def _cluster(self, token, cache):
        c = self.cluster_of_.get(token)
        if c is None:
            c = cache.get(token)
            if c is None:
                v = self.wv_[token]
                n = np.linalg.norm(v)
                c = int(np.argmax(self.centroids_ @ (v / n))) if n > 0 else -1
                cache[token] = c
        return c

    def transform(self, X):
        cache: dict = {}
        rows, cols = [], []
        for i, t in enumerate(X):
            for tok in tokenize(t):
                c = self._cluster(tok, cache)
                if c >= 0:
                    rows.append(i)
                    cols.append(c)
        m = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(X), self.n_clusters)
        )
        m.sum_duplicates()
        m.data = 1.0 + np.log(m.data)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel()).clip(1e-9)
        m = sp.csr_matrix(sp.diags((self.weight / norms).astype(np.float32)) @ m)
        return m

    def get_feature_names_out(self, input_features=None):
        return np.array([f"wc{i}" for i in range(self.n_clusters)], dtype=object)


class WordClusters:
    """The default pipeline plus `WordClusterFeatures`; with `target=True` the held-out
    group's own titles (unlabelled) also train the word vectors, as `clustercls adapt`
    could."""

    def __init__(self, dataset=None, groups=None, target=False, **params) -> None:
        self.titles = (
            dataset.assign(group_=dataset["source"].map(groups))[["title", "group_"]]
            if target
            else None
        )
        self.params = params
        self.features, self.model = FeatureConfig(), ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        extra = None
        if self.titles is not None:
            trained = set(self.titles.loc[self.titles.index.isin(frame.index), "group_"])
            held = self.titles["group_"].isin(set(self.titles["group_"]) - trained)
            extra = list(pipeline.steps[0][1].fit_transform(list(self.titles.loc[held, "title"])))
        block = WordClusterFeatures(extra_texts=extra, **self.params)
        pipeline.named_steps["features"].transformer_list.append(("clusters", block))
        scale = 1.0
        if self.model.lexicon_documents:
            frame, scale = with_lexicon_documents(frame, self.model.lexicon_documents)
        return _fit(pipeline, frame, self.model, scale)


class WordDropout:
    """Word dropout as augmentation: every training title is added once more with each word
    dropped with probability `p` (at least one word kept), as a source of its own weighted
    `weight` after the usual balancing.

    Titles from a marketplace no source covers are often shorter, or carry other
    boilerplate, than the sources'. Training on thinned copies makes each word carry its
    own evidence rather than lean on the words a source usually puts beside it (for a
    linear model, dropout noise acts as an adaptive regulariser that favours rare,
    discriminative words: Wager, Wang and Liang 2013).
    """

    def __init__(
        self, p: float = 0.3, weight: float = 0.5, fraction: float = 1.0, seed: int = 0
    ) -> None:
        self.p, self.weight, self.fraction, self.seed = p, weight, fraction, seed
        # Without the package's own thinned copies (`ModelConfig.word_dropout`), which
        # this idea replaces.
        self.features, self.model = FeatureConfig(), ModelConfig(word_dropout=0.0)

    def thinned(self, titles) -> list[str]:
        rng = np.random.default_rng(self.seed)
        out = []
        for title in titles:
            words = str(title).split()
            keep = rng.random(len(words)) >= self.p
            if words and not keep.any():
                keep[rng.integers(len(words))] = True
            out.append(" ".join(w for w, k in zip(words, keep, strict=True) if k))
        return out

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        copied = frame.sample(frac=self.fraction, random_state=self.seed)
        extra = pd.DataFrame(
            {
                "title": self.thinned(copied["title"]),
                "cluster": copied["cluster"].to_numpy(),
                "source": "(dropout)",
            }
        )
        return _fit_with_extra(pipeline, frame, extra, self.weight, self.model)


class InPlaceThinning:
    """The package's word dropout (`clustercls.fit.thin_titles`: lexicon terms kept), but
    the thinned titles replace `fraction` of the training titles instead of being added,
    so the fit costs no more than without it. (Measured and dropped: losing the full
    titles costs more than the thinning gives.)"""

    def __init__(self, p: float = 0.3, fraction: float = 0.5, seed: int = 0) -> None:
        self.p, self.fraction, self.seed = p, fraction, seed
        self.features, self.model = FeatureConfig(), ModelConfig(word_dropout=0.0)

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        chosen = frame.sample(frac=self.fraction, random_state=self.seed).index
        rows = frame[["title", "cluster", "source"]].copy()
        rows.loc[chosen, "title"] = thin_titles(rows.loc[chosen, "title"], self.p, self.seed)
        scale = np.ones(len(rows))
        if self.model.lexicon_documents:
            rows, scale = with_lexicon_documents(rows, self.model.lexicon_documents)
        return _fit(pipeline, rows, self.model, scale)


class LexiconPairFeatures(TransformerMixin, BaseEstimator):
    """Indicators of the pairs of lexicon clusters a normalised title names together
    (food_beverage and other for "botol minum kopi", a bottle named with its drink), so the classifier can learn
    what a look-alike is: a protected word beside the product that is something else."""

    def fit(self, X=None, y=None):
        self.lexicon_ = LexiconFeatures(head=False).fit()
        clusters = sorted({cluster for _, _, cluster in self.lexicon_.terms_.values()})
        pairs = [(a, b) for i, a in enumerate(clusters) for b in clusters[i + 1 :]]
        self.columns_ = {pair: i for i, pair in enumerate(pairs)}
        return self

    def transform(self, X):
        terms = self.lexicon_.terms_
        indptr, indices = [0], []
        for text in X:
            named = sorted({terms[t][2] for t in self.lexicon_.matches(text)})
            for i, a in enumerate(named):
                for b in named[i + 1 :]:
                    indices.append(self.columns_[(a, b)])
            indptr.append(len(indices))
        return sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr),
            shape=(len(indptr) - 1, len(self.columns_)),
        )


class LexiconPairs:
    """The default pipeline plus `LexiconPairFeatures`."""

    def __init__(self) -> None:
        self.features, self.model = FeatureConfig(), ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        pipeline.named_steps["features"].transformer_list.append(("pairs", LexiconPairFeatures()))
        rows, weights = weighted_rows(frame, self.model)
        return pipeline.fit(
            rows["title"].to_numpy(), rows["cluster"].to_numpy(), classifier__sample_weight=weights
        )


class WordVectorFeatures(TransformerMixin, BaseEstimator):
    """The mean of a normalised title's word vectors (a fixed table, `words` and `vectors`
    files), times `weight`: pretrained knowledge of which words are alike."""

    def __init__(self, words: str, vectors: str, weight: float = 1.0) -> None:
        self.words, self.vectors, self.weight = words, vectors, weight

    def fit(self, X=None, y=None):
        words = Path(self.words).read_text(encoding="utf-8").split("\n")
        self.vectors_ = np.load(self.vectors).astype(np.float32)
        self.index_ = {w: i for i, w in enumerate(words[: len(self.vectors_)])}
        return self

    def transform(self, X):
        index = self.index_
        indptr, indices = [0], []
        for text in X:
            found = [j for j in map(index.get, text.split()) if j is not None]
            indices.extend(found)
            indptr.append(len(indices))
        counts = np.diff(indptr)
        data = np.repeat(self.weight / np.maximum(counts, 1), counts).astype(np.float32)
        mean = sp.csr_matrix(
            (data, np.asarray(indices, dtype=np.int64), indptr),
            shape=(len(indptr) - 1, len(self.vectors_)),
        )
        return sp.csr_matrix(mean @ self.vectors_)


class WithBlock:
    """The default pipeline plus one more feature block (a fresh clone of `block` per
    fit), fitted as training fits (`fit_rows`: the thinned copies only transformed)."""

    def __init__(self, name: str, block: BaseEstimator) -> None:
        self.name, self.block = name, block
        self.features, self.model = FeatureConfig(), ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        pipeline.named_steps["features"].transformer_list.append((self.name, clone(self.block)))
        return fit_rows(pipeline, *weighted_rows(frame, self.model))


class SupersenseFeatures(TransformerMixin, BaseEstimator):
    """WordNet's coarse class (its lexicographer file: noun.food, noun.plant,
    noun.artifact, ...) of each English noun in a normalised title, one indicator per
    class, from a fixed table (`word<TAB>first<TAB>all`, built from WordNet 3.0 by
    `build_supersenses.py`). With `senses="first"` a word gives the class of its most
    frequent sense, with `"all"` every class its senses have: what a word the sources
    never carry ("prosciutto", "cilantro") is, in classes the sources do carry."""

    def __init__(self, table: str, senses: str = "first", weight: float = 1.0) -> None:
        self.table, self.senses, self.weight = table, senses, weight

    def fit(self, X=None, y=None):
        rows = pd.read_csv(self.table, sep="\t", keep_default_na=False)
        classes = sorted({c for v in rows["all"] for c in v.split()})
        column = {c: i for i, c in enumerate(classes)}
        key = "first" if self.senses == "first" else "all"
        self.columns_ = {
            w: sorted({column[c] for c in v.split()})
            for w, v in zip(rows["word"], rows[key], strict=True)
        }
        self.feature_names_ = np.asarray([f"wn={c}" for c in classes], dtype=object)
        return self

    def transform(self, X):
        columns = self.columns_
        indptr, indices = [0], []
        for text in X:
            row = set()
            for word in text.split():
                row.update(columns.get(word, ()))
            indices.extend(sorted(row))
            indptr.append(len(indices))
        return sp.csr_matrix(
            (np.full(len(indices), self.weight, dtype=np.float32), indices, indptr),
            shape=(len(indptr) - 1, len(self.feature_names_)),
        )

    def get_feature_names_out(self, input_features=None):
        return self.feature_names_.copy()


class DropCodeWords(TransformerMixin, BaseEstimator):
    """Normalised titles without their words that hold a digit (model codes such as
    "snk809k2" or "cw2288"; units and bare numbers are already placeholders or gone)."""

    def fit(self, X=None, y=None):
        return self

    def transform(self, X):
        return [" ".join(w for w in text.split() if not _HAS_DIGIT(w)) for text in X]

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features if input_features is not None else [], dtype=object)


_HAS_DIGIT = re.compile(r"\d").search


class CharWithoutCodes:
    """The default pipeline, its character n-grams counted without the words that hold a
    digit: a code's n-grams carry no morphology, only which shops write codes (mostly
    electronics sellers), and they outweighed "casio" in "casio mtp v002d 7b". The word
    block still sees each code as a word."""

    def __init__(self) -> None:
        self.features, self.model = FeatureConfig(), ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        from sklearn.pipeline import Pipeline

        pipeline = build_pipeline(self.features, self.model)
        blocks = pipeline.named_steps["features"].transformer_list
        at = [name for name, _ in blocks].index("char")
        blocks[at] = ("char", Pipeline([("codes", DropCodeWords()), ("tfidf", blocks[at][1])]))
        return fit_rows(pipeline, *weighted_rows(frame, self.model))


class BlockWeights:
    """The default pipeline with its feature blocks weighted apart (`FeatureUnion`'s
    `transformer_weights`): under the SVM's one penalty, a block scaled by w is penalised
    as if by 1/w**2, so this moves weight between word, character and lexicon features.
    The notes report character n-grams as the features that hold best across domains."""

    def __init__(self, **weights: float) -> None:
        self.weights = weights
        self.features, self.model = FeatureConfig(), ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        pipeline.named_steps["features"].set_params(transformer_weights=self.weights)
        return fit_rows(pipeline, *weighted_rows(frame, self.model))


class BinaryCounts:
    """The default pipeline with each n-gram counted once per title (`binary=True` on the
    named blocks). Marketplaces differ in how often a title repeats its keywords (Etsy
    and Amazon sellers stuff them for search; Indonesian titles rarely do): counted once,
    a stuffed word weighs as much as a plain one."""

    def __init__(self, *blocks: str) -> None:
        self.blocks = blocks
        self.features, self.model = FeatureConfig(), ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        pipeline = build_pipeline(self.features, self.model)
        pipeline.set_params(**{f"features__{b}__binary": True for b in self.blocks})
        return fit_rows(pipeline, *weighted_rows(frame, self.model))


class SubsetMeanClassifier(ClassifierMixin, BaseEstimator):
    """`k` clones of `estimator` on one feature space, each fitted without the rows of one
    k-th of the sources (`sources`, given to `fit`), their probabilities averaged. A word
    that only one source ties to a cluster speaks in the members that saw that source; a
    word that every source ties to it speaks in all of them: the ensemble prefers what
    holds across sources, as the field reports for unseen domains, without dropping any
    feature, at the serving cost of `k` matrix products. Rows of the `always` sources
    (lexicon documents) are in every member."""

    def __init__(self, estimator, k: int = 4, seed: int = 0, always=("lexicon",)) -> None:
        self.estimator, self.k, self.seed, self.always = estimator, k, seed, always

    def fit(self, X, y, sample_weight=None, sources=None):
        sources = np.asarray(sources, dtype=object)
        names = np.array(sorted(set(sources) - set(self.always)), dtype=object)
        np.random.default_rng(self.seed).shuffle(names)
        self.members_ = []
        for left_out in np.array_split(names, self.k):
            keep = ~np.isin(sources, left_out)
            weight = None if sample_weight is None else np.asarray(sample_weight)[keep]
            self.members_.append(clone(self.estimator).fit(X[keep], y[keep], sample_weight=weight))
        self.classes_ = self.members_[0].classes_
        return self

    def predict_proba(self, X) -> np.ndarray:
        return np.mean([m.predict_proba(X) for m in self.members_], axis=0)


class SharedSubsetEnsemble:
    """The default features fitted once on all rows, then `SubsetMeanClassifier` over
    them. A thinned copy counts as a row of its original's source, so a member never sees
    a left-out source's words through the copies."""

    def __init__(self, k: int = 4, seed: int = 0) -> None:
        self.k, self.seed = k, seed
        self.features, self.model = FeatureConfig(), ModelConfig()

    def __call__(self, frame: pd.DataFrame):
        rows, weights = weighted_rows(frame, self.model)
        sources = rows["source"].to_numpy(dtype=object).copy()
        thinned = np.flatnonzero(sources == THINNED_SOURCE)
        if len(thinned):
            # `with_thinned_copies` draws its originals with this same call.
            copied = frame.sample(
                frac=self.model.word_dropout_copies, random_state=self.model.word_dropout_seed
            )
            sources[thinned] = copied["source"].to_numpy(dtype=object)
        pipeline = build_pipeline(self.features, self.model)
        is_copy = np.zeros(len(rows), dtype=bool)
        is_copy[thinned] = True
        X, order = fit_features(pipeline[:-1], rows["title"].to_numpy(), is_copy)
        clusters = rows["cluster"].to_numpy()
        members = SubsetMeanClassifier(pipeline.steps[-1][1], self.k, self.seed)
        members.fit(X, clusters[order], sample_weight=weights[order], sources=sources[order])
        pipeline.steps[-1] = ("classifier", members)
        return pipeline


def _vectors(weight: float, dims: int):
    # Built outside the project's environment (`build_word_vectors.py`), so found by path.
    folder = os.environ.get("WORD_VECTORS_DIR", "word_vectors")
    return WithBlock(
        "vectors", WordVectorFeatures(f"{folder}/words.txt", f"{folder}/vectors{dims}.npy", weight)
    )


def _supersenses(senses: str):
    # Built from WordNet outside the package (`build_supersenses.py`), so found by path.
    table = os.environ.get("SUPERSENSES_TABLE", "supersenses.tsv")
    return WithBlock("supersenses", SupersenseFeatures(table, senses))


FIT_IDEAS = {
    "word_dropout_0.3": lambda dataset, groups: WordDropout(0.3, 0.5),
    "word_dropout_0.3_half": lambda dataset, groups: WordDropout(0.3, 0.5, fraction=0.5),
    "word_dropout_0.5_half": lambda dataset, groups: WordDropout(0.5, 0.5, fraction=0.5),
    "dropout_keep_terms_in_place": lambda dataset, groups: InPlaceThinning(0.3, 0.5),
    "lexicon_pairs": lambda dataset, groups: LexiconPairs(),
    "balanced_after_sources": lambda dataset, groups: BalancedAfterSources(),
    "lexicon_swap": lambda dataset, groups: LexiconSwap(),
    "head_words_3": lambda dataset, groups: HeadWords(3),
    "source_copies": lambda dataset, groups: SourceCopies(),
    "sublabels_3": lambda dataset, groups: SubLabels(3),
    "sublabels_6": lambda dataset, groups: SubLabels(6),
    "vocab_k2": lambda dataset, groups: CrossSourceVocabulary(2),
    "word_clusters_400": lambda dataset, groups: WordClusters(),
    "word_clusters_400_target": lambda dataset, groups: WordClusters(dataset, groups, True),
    "selftrain_0.9": lambda dataset, groups: SelfTraining(dataset, groups, threshold=0.9),
    "selftrain_0.97": lambda dataset, groups: SelfTraining(dataset, groups, threshold=0.97),
    "word_vectors_64": lambda dataset, groups: _vectors(1.0, 64),
    "word_vectors_128_double": lambda dataset, groups: _vectors(2.0, 128),
    "supersenses_first": lambda dataset, groups: _supersenses("first"),
    "supersenses_all": lambda dataset, groups: _supersenses("all"),
    "char_without_codes": lambda dataset, groups: CharWithoutCodes(),
    "char_weight_1.5": lambda dataset, groups: BlockWeights(char=1.5),
    "word_weight_0.6": lambda dataset, groups: BlockWeights(word=0.6),
    "char_weight_0.7": lambda dataset, groups: BlockWeights(char=0.7),
    "binary_counts": lambda dataset, groups: BinaryCounts("word", "char"),
    "source_subsets_4_shared": lambda dataset, groups: SharedSubsetEnsemble(4),
}
"""Idea name -> factory of its fit function, given the dataset and the source groups."""
