"""Fuzz the compiled parts against their Python twins under AddressSanitizer and UBSan.

`make fuzz` runs this (FUZZ_SECONDS, FUZZ_SEED); by hand, from the repository root:

    .venv/bin/python -m tests.fuzz.fuzz_compiled [--seconds 240] [--seed N]

It builds `_cleaner.c`, `_ngrams.c` and `_tokens.c` with the sanitizers from a copy of `setup.py` and
the C sources in a temporary folder (so the in-place .so files stay as they are, and the
venv's setuptools, which may be too old to read pyproject.toml, sees setup.py alone),
then reruns itself with the sanitizer runtime preloaded and, until the time is up,
compares on generated and hostile text:

- `text.normalize` with the compiled cleaning passes and with the Python ones,
  `normalize_many` (with `_cleaner.settle_plain_many`) against `normalize` in Python, and
  `_cleaner.settle` with `text.clean._settle` on raw ASCII (its documented contract);
- `FastTfidfVectorizer` count matrices from the compiled counter and from the Python
  paths (entry for entry), and the counter's guards (too small output arrays, tables of
  a larger vocabulary) under the sanitizers;
- `TokenTable.ids` from the compiled token lookup and from its Python path, on tables of
  vocabulary words, stopwords, the break token, empty and non-ASCII keys, over titles,
  normalised titles and text of every ASCII whitespace, split both ways.

Any sanitizer report, difference or hang exits non-zero. Inputs follow from the seed
alone, so a failure replays with `--seed N` (the failing input is printed too).
Not collected by pytest: the sanitizer runtime must be loaded before Python starts.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import unicodedata
from array import array
from collections import Counter
from decimal import Decimal
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SANITIZE = "-fsanitize=address,undefined"
# -fno-wrapv undoes Python's -fwrapv, under which UBSan cannot see signed overflow.
CFLAGS = f"{SANITIZE} -fno-sanitize-recover=undefined -fno-omit-frame-pointer -fno-wrapv -g -O1"
GRACE = 30  # seconds past the budget before a child that has not stopped counts as hung
MAX_TITLE = 4000
ROUND = 100  # titles per round; the compiled/Python switch happens once per round


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=240, help="total budget, build included")
    parser.add_argument("--seed", type=int, default=None, help="default: a fresh one, printed")
    parser.add_argument("--child", metavar="BUILD_LIB", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        # A hang shows where it hangs (the parent's timeout could only kill it).
        faulthandler.dump_traceback_later(args.deadline - time.time() + GRACE / 2, exit=True)
        return Fuzz(Path(args.child), args.seed, args.deadline).run()
    deadline = time.time() + args.seconds
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    with tempfile.TemporaryDirectory(prefix="clustercls-fuzz-") as tmp:
        lib = build(Path(tmp))
        command = [sys.executable, "-m", "tests.fuzz.fuzz_compiled", "--child", str(lib)]
        command += ["--seed", str(seed), "--deadline", str(deadline)]
        try:
            rc = subprocess.run(
                command, cwd=REPO, env=sanitizer_env(), timeout=deadline - time.time() + GRACE
            ).returncode
        except subprocess.TimeoutExpired:
            print(f"fuzz: FAILED: still running {GRACE} s past the budget; seed {seed}", flush=True)
            return 1
    if rc != 0:
        print(f"fuzz: FAILED (exit status {rc}); replay with --seed {seed}", flush=True)
        return 1
    return 0


def build(tmp: Path) -> Path:
    """The sanitized extensions, built from copies so nothing in the tree changes."""
    (tmp / "src" / "clustercls").mkdir(parents=True)
    shutil.copy(REPO / "setup.py", tmp)
    for source in (REPO / "src" / "clustercls").glob("*.[ch]"):
        shutil.copy(source, tmp / "src" / "clustercls")
    env = {**os.environ, "CFLAGS": CFLAGS, "LDFLAGS": SANITIZE}
    command = [sys.executable, "setup.py", "-q", "build_ext"]
    command += ["--build-lib", "lib", "--build-temp", "obj"]
    subprocess.run(command, cwd=tmp, env=env, check=True)
    # setup.py skips an extension it cannot build; here that must fail.
    built = {path.name.split(".")[0] for path in (tmp / "lib" / "clustercls").glob("*.so")}
    if missing := {"_cleaner", "_ngrams", "_tokens"} - built:
        sys.exit(f"fuzz: not built with the sanitizers: {', '.join(sorted(missing))} (see above)")
    return tmp / "lib"


def sanitizer_env() -> dict[str, str]:
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "gcc").split()[0]
    runtime = subprocess.run(
        [compiler, "-print-file-name=libasan.so"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not os.path.isabs(runtime):
        sys.exit(f"fuzz: {compiler} has no AddressSanitizer runtime")
    return {
        **os.environ,
        # Python is not built with ASan: its runtime must be loaded before anything else.
        "LD_PRELOAD": runtime,
        # CPython keeps objects alive until exit by design; leaks are not what we look for.
        # A use after free shows within one call: a small quarantine halves memory (0.6 GB).
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1:quarantine_size_mb=64",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        # Each Python object its own malloc block, so ASan also guards the strings and
        # arrays the C code reads (pymalloc would pack them into arenas ASan cannot see into).
        "PYTHONMALLOC": "malloc",
    }


# ---------------------------------------------------------------------------
# Hostile text
# ---------------------------------------------------------------------------

PROMO = [
    "ready stock", "ready stok", "readystock", "ready to ship", "ready to eat", "ready mix",
    "siap kirim", "bisa cod", "cod liver oil", "cape cod", "bayar di tempat", "flash sale",
    "best seller", "bestseler", "free ongkir", "gratis ongkir", "free shipping", "freeship",
    "official store", "new arrival", "new born", "new york", "murah meriah", "promo", "ori",
    "original", "termurah", "diskon", "discount", "sale", "terlaris", "grosir", "jual",
    "limited", "hemat", "spesial", "obral", "READY STOCK!!!", "COD", "NEW!!",
]  # fmt: skip
UNITS = [
    "250gr", "2 x 250 gr", "20x4.2gr", "1,5l", "1.5 ltr", "500 ml", "8 fl oz", "8 fl. oz",
    "16 oz", "2kg", "100g", "4g", "5g", "30x20 cm", "30 x 20 x 10", '55"', "15cm", "12''",
    "12 pcs", "isi 12", "isi: 10", "contents 6", "pack of 6", "set of 3", "box of 2",
    "size 42", "size: 38-40", "sz 40/42", "uk 40", "ukuran 3", "all size", "free size",
    "one size", "16 gb", "16gb", "1 pk", "3 in 1", "3-in-1", "5in1", "10000 mAh", "220 v",
    "1 lusin", "2 pasang", "3 btl", "1 kodi", "60 x 90", "2*250ml",
]  # fmt: skip
NUMBERS = [
    "2019-08-21", "20170821", "12:30", "12:30:05", "2019/08/21 12.30", "1,000,000",
    "3.14159", "-1", "1e308", "0x1f", "1/2", "½", "²³", "٣٤", "१२", "0.5.5.5", "1,2,3,4",
]  # fmt: skip
LEET = [
    "k0pi", "b4tik", "g00d", "k3m3ja", "x441ub", "rtx3060", "mp3", "a52s", "sm5w", "mi4i",
    "ram4gb", "h@ndm@de", "$ale", "b@t1k", "k0p1 b4tik", "4in1", "i5", "b2b", "a55ty",
]  # fmt: skip
LOOKALIKES = [
    "коріᴋ", "кемеја", "ＫＯＰＩ ２５０ｇｒ", "𝐤𝐨𝐩𝐢", "ⓚⓞⓟⓘ", "ﬁne", "Ⅻ", "™", "×", "—",
    "″", "ß", "İ", "ǅ", "ﬀ", "ᵏ", "ﷺ", "ﷻ", "Æ", "þ", "ł", "ø", "ıȷ", "é", "ñ", "😀", "🇮🇩",
]  # fmt: skip
HTML = [
    "&amp;", "&amp;amp;", "&lt;b&gt;", "<b>", "</span>", "<br/>", "&#8203;", "&#x200B;",
    "&nbsp;", "&#0;", "&#x110000;", "&#55296;", "<", ">", "&", "<!-- x -->", "<a href='x'>",
]  # fmt: skip
ZERO_WIDTH = "\u00ad\u180e\u200b\u200c\u200d\u2060\ufeff\u200e\u202e"
SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x00\x01\x1b\x7f\x85\xa0\u1680\u2000\u2007\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
SURROGATES = ["\ud800", "\udfff", "\ud83d\ude00", "\udc00\ud800", "a\ud800b"]
ASCII = "".join(map(chr, range(128)))
CLEAN = "abcdefghijklmnopqrstuvwxyz0123456789"
# Lengths at the edges of the C code's fixed buffers (de-leet token 256, counter word 510).
EDGE_LENGTHS = [1, 2, 3, 4, 100, 254, 255, 256, 257, 508, 509, 510, 511, 512, 1000, 3000]


class Generator:
    """Titles and documents drawn from a seeded random generator."""

    def __init__(self, seed: int) -> None:
        from tests.conftest import _NOUNS, make_titles

        self.rng = random.Random(seed)
        self.realistic = [t for c in _NOUNS for t in make_titles(c, 200, seed)]
        # Every assigned and unassigned code point by general category (array: 4 MB).
        self.categories: dict[str, array] = {}
        for cp in range(sys.maxunicode + 1):
            self.categories.setdefault(unicodedata.category(chr(cp)), array("I")).append(cp)
        self.parts = [
            lambda: self.pick(PROMO),
            lambda: self.pick(UNITS),
            lambda: self.pick(NUMBERS),
            lambda: self.pick(LEET),
            lambda: self.pick(LOOKALIKES),
            lambda: self.pick(HTML),
            lambda: self.pick(SURROGATES),
            lambda: self.pick(self.realistic),
            lambda: self.pick(self.realistic).upper(),
            self.unicode_chars,
            self.run,
            self.digits,
            self.spelled_out,
            self.leet_word,
            self.zero_width,
            lambda: self.text(SPACES, self.rng.randint(1, 6)),
            lambda: self.text(ASCII, self.rng.randint(1, 12)),
            lambda: self.text("ab13 .-x@$'0lgmk", self.rng.randint(1, 12)),
        ]

    def pick(self, items):
        return self.rng.choice(items)

    def text(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choices(alphabet, k=n))

    def length(self, edges: float = 0.3) -> int:
        n = self.pick(EDGE_LENGTHS) if self.rng.random() < edges else self.rng.randint(1, 40)
        return max(1, n + self.rng.randint(-1, 1))

    def unicode_chars(self) -> str:
        cps = self.categories[self.pick(sorted(self.categories))]
        return "".join(chr(self.pick(cps)) for _ in range(self.rng.randint(1, 8)))

    def run(self) -> str:
        # Not "ﷺ" (18 letters in NFKD): CPython's NFKD grows its buffer 10 characters at a
        # time, which ASan's realloc turns into minutes on a long run of it.
        char = self.pick([*CLEAN, *" .-'x@$", *ZERO_WIDTH, *SPACES, "\u0301", "é", "ß", "😀"])
        return char * self.length()

    def digits(self) -> str:
        n = self.length()
        return self.pick([str(10**n), "9" * n, "0" * n, "1," * n, "1." * n, str(-(7**n))])

    def spelled_out(self) -> str:
        sep = self.pick([" ", ".", "-", ". ", " . ", "..", "-."])
        return sep.join(self.text("abcdekopitxz", self.rng.randint(2, 12)))

    def leet_word(self) -> str:
        word = list(self.text("abcdeikmnoprstu", self.length() + 3))
        for _ in range(self.rng.randint(1, max(1, len(word) // 3))):
            word[self.rng.randrange(1, len(word) - 1)] = self.pick("0134578@$")
        return "".join(word)

    def zero_width(self) -> str:
        word = self.pick(["batik", "kopi", "kemeja", "ready", "250gr", "k0pi"])
        flood = self.text(ZERO_WIDTH, self.length())
        return self.pick([flood.join(word), flood, word[:2] + flood + word[2:]])

    def title(self) -> object:
        if self.rng.random() < 0.03:
            return self.pick(
                [None, float("nan"), 12345, -(10**40), 3.5, Decimal("NaN"), True, ["x"],
                 b"k0pi \xff\xfe 250gr", bytearray(self.rng.randbytes(20)), b"kopi"]
            )  # fmt: skip
        seps = [" ", " ", "", "  ", "-", ",", "/", "|", "\t", "!!! ", " \u200b "]
        parts = [self.pick(self.parts)() for _ in range(self.rng.randint(1, 12))]
        s = "".join(p + self.pick(seps) for p in parts)
        if self.rng.random() < 0.2:
            s = self.mutate(s)
        # Cut because the Python twin's de-leet regex is quadratic in a letter run (a title
        # of 40,000 letters and one leet word: 30 s); normalize's own cut bounds it in
        # serving, but not at the largest limits drawn here.
        s = s[:MAX_TITLE]
        return self.pick([s, s, s, s.upper(), s.title(), s.swapcase()])

    def mutate(self, s: str) -> str:
        chars = list(s)
        for _ in range(self.rng.randint(1, 8)):
            i = self.rng.randint(0, len(chars))
            op = self.rng.random()
            if op < 0.4:
                chars.insert(i, self.pick(self.pick([ASCII, SPACES, ZERO_WIDTH, "0134@$.-'"])))
            elif chars and op < 0.7:
                del chars[min(i, len(chars) - 1)]
            elif chars:
                chars[min(i, len(chars) - 1)] = self.pick(CLEAN + " .-")
        return "".join(chars)

    def limit(self) -> object:
        if self.rng.random() < 0.02:
            return self.pick([0, -1, "30", 7.9, None, 10**30])
        return self.pick([1, 2, 3, 5, 7, 10, 25, 30, 100, 300, 300, 300, 1000, 10**19, sys.maxsize])

    def clean_doc(self, edges: float) -> str:
        """Text in the counter's alphabet, spacing not always normalised."""
        words = [self.text(CLEAN, self.length(edges)) for _ in range(self.rng.randint(0, 6))]
        sep = self.pick([" ", " ", "  "])
        doc = sep.join(words)
        return self.pick([doc, doc, " " + doc, doc + "  "])


# ---------------------------------------------------------------------------
# The comparisons
# ---------------------------------------------------------------------------


class Mismatch(Exception):
    pass


class Fuzz:
    def __init__(self, build_lib: Path, seed: int, deadline: float) -> None:
        self.seed, self.deadline = seed, deadline
        self.lib = build_lib / "clustercls"
        self.answers: Counter[tuple[str, bool]] = Counter()  # compiled calls, by answer
        self.checked: Counter[str] = Counter()

    def load_sanitized(self) -> None:
        import clustercls

        # Resolve the compiled submodules from the sanitized build before the package.
        clustercls.__path__.insert(0, str(self.lib))
        from clustercls import _cleaner, _ngrams, _tokens

        for module in (_cleaner, _ngrams, _tokens):
            if Path(module.__file__).parent != self.lib:
                sys.exit(f"fuzz: {module.__name__} is {module.__file__}, not the sanitized build")
        maps = Path("/proc/self/maps").read_text()
        if "libasan" not in maps or "libubsan" not in maps:
            sys.exit("fuzz: the sanitizer runtimes are not loaded")
        # Count the compiled answers: a part that always hands back to Python tests nothing.
        self.settle, self.count_char_wb = _cleaner.settle, _ngrams.count_char_wb
        _cleaner.settle = self.counting("settle", _cleaner.settle)
        _ngrams.count_char_wb = self.counting("count", _ngrams.count_char_wb)
        _tokens.lookup = self.counting("token lookup", _tokens.lookup)
        print(f"fuzz: sanitized {_cleaner.__file__}, {_ngrams.__file__}, {_tokens.__file__}")

    def counting(self, name: str, function):
        def counted(*args):
            result = function(*args)
            self.answers[name, result is not None] += 1
            return result

        return counted

    def use_compiled(self, on: bool) -> None:
        from tests.conftest import reset_compiled_parts

        from clustercls import features
        from clustercls.text import native as text
        from clustercls.text import tokens

        if on:
            os.environ.pop(text.PURE_PYTHON_ENV, None)
        else:
            os.environ[text.PURE_PYTHON_ENV] = "1"
        reset_compiled_parts()
        parts = (
            text._native_settle(),
            features._compiled_char_counter(),
            tokens.compiled_token_lookup(),
        )
        if any((part is not None) != on for part in parts):
            sys.exit(f"fuzz: could not turn the compiled parts {'on' if on else 'off'}")

    def both(self, function, *args):
        """function(*args) with the compiled parts, then with the Python ones."""
        self.use_compiled(True)
        compiled = function(*args)
        self.use_compiled(False)
        return compiled, function(*args)

    def run(self) -> int:
        print(f"fuzz: seed {self.seed}", flush=True)
        self.load_sanitized()
        self.gen = Generator(self.seed)
        self.vectorizers = self.fit_vectorizers()
        rounds = 0
        try:
            # An empty title first in a call reached the compiled call before its
            # lowercase buffer existed, and memcpy was handed NULL (UBSan, seed 1156638215).
            for limit in (1, 300):
                self.check_normalize_many(["", "", "Kemeja B4tik", ""], limit)
            while time.time() < self.deadline - 5:
                titles = [self.gen.title() for _ in range(ROUND)]
                limits = [self.gen.limit() for _ in titles]
                self.check_normalize(titles, limits)
                self.check_normalize_many(titles)
                self.check_settle(titles)
                self.check_counts(titles, self.normalized)
                self.check_token_lookup(titles, self.normalized)
                rounds += 1
        except Mismatch as error:
            print(f"fuzz: MISMATCH (seed {self.seed}, round {rounds}):\n{error}", flush=True)
            return 1
        return self.summary(rounds)

    def fit_vectorizers(self):
        import numpy as np

        from clustercls.features import FastTfidfVectorizer
        from clustercls.text import normalize

        corpus = [normalize(t) for t in self.gen.realistic]
        corpus += [normalize(self.gen.title()) for _ in range(600)]
        # Both kinds of table (dense for n <= 4, two-level for 5) and vocabularies cut by
        # max_features, so known-alphabet n-grams miss too.
        settings = [((2, 5), None), ((2, 5), 3000), ((3, 5), None), ((2, 3), 400), ((3, 4), None)]
        return [
            FastTfidfVectorizer(
                analyzer="char_wb",
                lowercase=False,
                ngram_range=ngram_range,
                max_features=max_features,
                sublinear_tf=True,
                dtype=np.float32,
            ).fit(corpus)
            for ngram_range, max_features in settings
        ]

    def check_normalize(self, titles, limits) -> None:
        from clustercls.text import normalize

        compiled, python = self.both(lambda: list(map(normalize, titles, limits)))
        self.checked["normalize"] += len(titles)
        self.normalized = python
        for title, limit, c, p in zip(titles, limits, compiled, python, strict=True):
            if c != p:
                print(f"fuzz: normalize({title!r:.3000}, {limit!r}) differs; shrinking", flush=True)
                if isinstance(title, str):
                    title = self.shrink(title, partial(self.normalize_differs, limit=limit))
                    c, p = self.both(normalize, title, limit)
                raise Mismatch(
                    f"normalize({title!r:.3000}, {limit!r})\n  compiled: {c!r}\n  python:   {p!r}"
                )

    def check_normalize_many(self, titles, limit: object = None) -> None:
        """`normalize_many` (its compiled whole-call path, then its loop) against
        `normalize` of each title in Python, with one limit for the call (drawn when not
        given)."""
        from clustercls.text import normalize, normalize_many

        limit = self.gen.limit() if limit is None else limit
        self.use_compiled(True)
        compiled = normalize_many(titles, limit)
        self.use_compiled(False)
        python = [normalize(t, limit) for t in titles]
        self.checked["normalize_many titles"] += len(titles)
        for title, c, p in zip(titles, compiled, python, strict=True):
            if c != p:
                raise Mismatch(
                    f"normalize_many([{title!r:.3000}], {limit!r})\n  compiled: {c!r}\n"
                    f"  python:   {p!r}"
                )

    def normalize_differs(self, title: str, limit: object) -> bool:
        from clustercls.text import normalize

        compiled, python = self.both(normalize, title, limit)
        return compiled != python

    def check_settle(self, titles) -> None:
        """settle's own contract, on any ASCII: `_settle`'s answer, or None."""
        from clustercls.text.clean import _settle

        for title in titles:
            if not isinstance(title, str):
                continue
            # Cut as normalize cuts raw text: longer inputs reach the C code through it.
            s = title.encode("ascii", "ignore").decode()[:3000]
            limit = self.gen.pick([1, 2, 5, 30, 300, sys.maxsize])
            got = self.settle(s, limit)
            self.answers["settle (raw ASCII)", got is not None] += 1
            self.checked["settle (raw ASCII)"] += 1
            if got is not None and got != _settle(s, limit):
                print(f"fuzz: _cleaner.settle({s!r:.3000}, {limit}) differs; shrinking", flush=True)
                s = self.shrink(s, partial(self.settle_differs, limit=limit))
                raise Mismatch(
                    f"_cleaner.settle({s!r:.3000}, {limit})\n"
                    f"  compiled: {self.settle(s, limit)!r}\n  python:   {_settle(s, limit)!r}"
                )

    def settle_differs(self, s: str, limit: int) -> bool:
        from clustercls.text.clean import _settle

        return self.settle(s, limit) not in (None, _settle(s, limit))

    def check_counts(self, titles, normalized) -> None:
        raw = [t for t in titles if isinstance(t, str)]
        for _ in range(8):
            docs = self.documents(self.gen.pick([1, 2, 5, 16, 17, 40]), raw, normalized)
            vectorizer = self.gen.pick(self.vectorizers)
            compiled, python = self.both(counts, vectorizer, docs)
            self.checked["count matrices"] += 1
            self.checked["count documents"] += len(docs)
            if not same_matrix(compiled, python):
                alone = [d for d in docs if not same_matrix(*self.both(counts, vectorizer, [d]))]
                raise Mismatch(
                    f"counts of {vectorizer.ngram_range} differ on {len(docs)} documents; "
                    f"alone: {[d[:3000] for d in alone]!r}"
                )
            self.check_guards(vectorizer, docs)

    def documents(self, size: int, raw: list[str], normalized: list[str]) -> list[str]:
        """Normalised titles (what serving counts), text in the counter's alphabet with any
        spacing, or a mix with raw titles (which it must hand back)."""
        kind = self.gen.pick(["normalised", "normalised", "alphabet", "alphabet", "mixed"])
        if kind == "normalised":
            return self.gen.rng.sample(normalized, min(size, len(normalized)))
        if kind == "alphabet":
            # One word over 510 characters hands the whole call back: not in every call.
            edges = self.gen.pick([0.0, 0.01, 0.3])
            return [self.gen.clean_doc(edges) for _ in range(size)]
        return [self.gen.pick(self.gen.pick([raw or normalized, normalized])) for _ in range(size)]

    def check_guards(self, vectorizer, docs) -> None:
        """Output arrays too small and columns beyond n_features: None, never a write past
        the end; otherwise the same arrays."""
        import numpy as np

        index = vectorizer._lookup()
        low, high = vectorizer.ngram_range
        tables = tuple(
            index.dense[n] if n <= 4 else index.two_level[n] for n in range(low, high + 1)
        )

        def count(capacity: int, n_features: int):
            # Separate blocks, so ASan sees a write past either end.
            out = [np.empty(len(docs) + 1, np.int64)] + [np.empty(capacity, np.int32) for _ in "ab"]
            nnz = self.count_char_wb(docs, low, high, tables, n_features, *out)
            return None if nnz is None else [out[0], out[1][:nnz], out[2][:nnz]]

        n_features = len(vectorizer.vocabulary_)
        full = count((high - low + 1) * (2 * sum(map(len, docs)) + 2 * len(docs)), n_features)
        if full is None:
            return
        nnz, top = len(full[1]), int(full[1].max(initial=-1))
        rng = self.gen.rng
        capacity = max(0, rng.choice([nnz, nnz - 1, rng.randint(0, nnz)]))
        narrow = max(0, rng.choice([top + 1, top, rng.randint(0, top + 1)]))
        for got, ok in ((count(capacity, n_features), capacity >= nnz),
                        (count(nnz, narrow), narrow > top)):  # fmt: skip
            self.checked["counter guards"] += 1
            if (got is not None) != ok or (ok and not all(map(np.array_equal, got, full))):
                raise Mismatch(f"count_char_wb guards on {docs!r:.3000}: {got!r:.500}")

    def check_token_lookup(self, titles, normalized) -> None:
        """`TokenTable.ids` compiled and in Python, on a fresh table each time (so the
        compiled one is built under the sanitizers too)."""
        from clustercls.text import TITLE_BREAK, TokenTable

        rng = self.gen.rng
        raw = [t for t in titles if isinstance(t, str)]
        for _ in range(4):
            words = [w for d in rng.sample(normalized, min(20, len(normalized))) for w in d.split()]
            keys = rng.sample(words, min(len(words), rng.randint(0, 60)))
            keys += rng.sample([TITLE_BREAK, "", " ", "kopi", "é", "a\x00b", "x" * 600], 3)
            keys += [self.gen.text(CLEAN + " |", rng.randint(0, 6)) for _ in range(5)]
            mapping = {k: rng.randint(-(2**63), 2**63 - 1) for k in keys}
            default = rng.choice([-1, 0, 2**63 - 1, -(2**63)])
            docs = self.token_docs(raw, normalized)
            any_whitespace = rng.random() < 0.5

            def ids(docs=docs, mapping=mapping, default=default, any_ws=any_whitespace):
                return TokenTable(mapping, default, any_ws).ids(docs).tolist()

            compiled, python = self.both(ids)
            self.checked["token lookups"] += 1
            self.checked["token lookup documents"] += len(docs)
            if compiled != python:
                raise Mismatch(
                    f"TokenTable.ids differ (any_whitespace={any_whitespace}) on {docs!r:.3000} "
                    f"with {mapping!r:.1000}"
                )

    def token_docs(self, raw: list[str], normalized: list[str]) -> list[str]:
        """Normalised titles (what serving looks up), raw titles (non-ASCII ones hand
        the call back), or text of any ASCII whitespace and the break token."""
        rng = self.gen.rng
        size = rng.choice([0, 1, 2, 5, 17, 40])
        kind = rng.choice(["normalised", "normalised", "raw", "spaces"])
        if kind == "normalised":
            return rng.sample(normalized, min(size, len(normalized)))
        if kind == "raw":
            return [rng.choice(raw or normalized)[:3000] for _ in range(size)]
        alphabet = "ab|" + " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"
        docs = [self.gen.text(alphabet, rng.randint(0, 12)) for _ in range(size)]
        if docs and rng.random() < 0.1:
            docs[rng.randrange(len(docs))] += rng.choice(["\x85", "\xa0"])  # Unicode spaces
        return docs

    def shrink(self, s: str, fails) -> str:
        """A shorter input that still fails: chunks removed while it keeps failing (for a
        few seconds, so the report comes before the parent's timeout)."""
        stop = time.time() + 10
        chunk = len(s) // 2
        while chunk and time.time() < stop:
            i = 0
            while i < len(s) and time.time() < stop:
                if fails(s[:i] + s[i + chunk :]):
                    s = s[:i] + s[i + chunk :]
                else:
                    i += chunk
            chunk //= 2
        return s

    def summary(self, rounds: int) -> int:
        print(f"fuzz: {rounds} rounds, no difference, no sanitizer report; checked:")
        for what, n in self.checked.items():
            print(f"  {what}: {n:,}")
        failed = 0
        for name in ("settle", "settle (raw ASCII)", "count", "token lookup"):
            yes, no = self.answers[name, True], self.answers[name, False]
            share = yes / max(yes + no, 1)
            print(f"  compiled {name} answered {yes:,} of {yes + no:,} calls ({share:.0%})")
            # Most inputs must reach the C code, or the comparison says little about it.
            failed |= share < 0.5
        if failed:
            print("fuzz: FAILED: the compiled parts handed back too much to Python")
        return int(failed)


def counts(vectorizer, docs):
    return vectorizer._count_vocab(docs, fixed_vocab=True)[1]


def same_matrix(a, b) -> bool:
    import numpy as np

    return a.shape == b.shape and all(
        np.array_equal(getattr(a, k), getattr(b, k)) for k in ("indptr", "indices", "data")
    )


if __name__ == "__main__":
    sys.exit(main())
