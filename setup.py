"""Build hook for the compiled parts; everything else is declared in pyproject.toml.

- `clustercls._cleaner`: the cleaning passes of `clustercls.text.normalize`, under PCRE2
  (Debian/Ubuntu: `libpcre2-dev`).
- `clustercls._ngrams`: char_wb n-gram counting for `clustercls.features`.
- `clustercls._tokens`: token lookup for `clustercls.text.tokens.TokenTable`.

All three are optional: where one cannot be built the install still succeeds and its Python
twin runs instead, with the same output, only slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "clustercls._cleaner",
            sources=["src/clustercls/_cleaner.c"],
            libraries=["pcre2-8"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(
            "clustercls._ngrams",
            sources=["src/clustercls/_ngrams.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(
            "clustercls._tokens",
            sources=["src/clustercls/_tokens.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
    ]
)
