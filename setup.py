"""Build hook for the one compiled part: `clustercls._cleaner`, the cleaning passes of
`clustercls.text.normalize` under PCRE2 (Debian/Ubuntu: `libpcre2-dev`).

Everything else is declared in pyproject.toml. The extension is optional: where it cannot
be built the install still succeeds and `normalize` runs its Python passes, which give the
same output, only slower.
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
        )
    ]
)
