"""Feature extraction: TF-IDF over word and character n-grams of normalised titles."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from clustercls.config import FeatureConfig
from clustercls.text import tokenize


def build_features(config: FeatureConfig) -> FeatureUnion:
    """Build the word + character TF-IDF union.

    Words carry the product noun ("kemeja", "kopi"); character n-grams inside word
    boundaries carry morphology and survive spelling variants and residual obfuscation that
    normalisation missed ("kmeja", "kopii").

    Args:
        config: Feature settings.

    Returns:
        An unfitted FeatureUnion expecting normalised strings.
    """
    word = TfidfVectorizer(
        analyzer="word",
        tokenizer=tokenize,
        token_pattern=None,
        lowercase=False,
        ngram_range=config.word_ngram_range,
        min_df=config.min_df,
        max_features=config.max_features_word,
        sublinear_tf=config.sublinear_tf,
        dtype=np.float32,
    )
    char = TfidfVectorizer(
        analyzer="char_wb",
        lowercase=False,
        ngram_range=config.char_ngram_range,
        min_df=config.min_df,
        max_features=config.max_features_char,
        sublinear_tf=config.sublinear_tf,
        dtype=np.float32,
    )
    # float32 halves the matrices' memory; linear models lose nothing measurable from it.
    return FeatureUnion([("word", word), ("char", char)])
