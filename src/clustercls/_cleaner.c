/*
 * Compiled form of `clustercls.text.clean._settle`: the cleaning passes of `normalize`, run to
 * their fixed point, on text already folded to lowercase ASCII.
 *
 * Why: those passes are a dozen regex substitutions per title, and in Python each costs
 * a call and a scan; they were over half of a distinct title's prediction time. Here
 * the same regexes (the Python module's own pattern strings, handed over by `configure`)
 * run under PCRE2's JIT, and the steps between them are plain C.
 *
 * Contract: `settle(text, limit)` returns exactly what the Python `_settle` returns, or
 * None when it cannot vouch for that (non-ASCII input, a PCRE2 error such as its match
 * limit, an empty match, no fixed point after many passes); the caller then runs the
 * Python version. Tests compare both on every source title and on generated text.
 * `settle_plain_many(titles, limit, raw)` runs the common title of
 * `normaliser.normalize_many` (plain ASCII, no markup, no leet to read) for a whole call
 * and leaves every other item to it (None), which then runs its own loop.
 * Each step below mirrors a line of `text.clean._clean_pass`, in the same order.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Indices of the patterns `configure` receives, in this order. */
enum {
    P_NUMBER_HINT, P_TIMESTAMP, P_LEET_HINT, P_LEET_CANDIDATE, P_LEET_SHAPE,
    P_CONSONANT_RUN, P_VOWEL_RUN, P_TECH_SUFFIX, P_IN_ONE, P_TECH_UNIT, P_SIZE_WORD,
    P_DOTTED_HINT, P_DOTTED, P_SPACED_HINT, P_SPACED, P_APOSTROPHE, P_NON_ALNUM,
    P_NOISE, P_BARE_NUMBER, N_PATTERNS
};

#define MAX_UNIT_RULES 8
#define MAX_SHORTCUT_WORDS 8
#define MAX_NOISE_TOKENS 128
#define MAX_PASSES 64

typedef struct {
    pcre2_code *pattern;
    char *replacement; /* " <placeholder> " */
    size_t replacement_len;
    int n_words;       /* 0: no shortcut */
    char *words[MAX_SHORTCUT_WORDS];
    pcre2_code *fallback; /* pattern used when none of `words` occurs; NULL: skip */
} UnitRule;

static pcre2_code *patterns[N_PATTERNS];
static UnitRule unit_rules[MAX_UNIT_RULES];
static int n_unit_rules;
static char *noise_tokens[MAX_NOISE_TOKENS];
static size_t noise_lens[MAX_NOISE_TOKENS];
static int n_noise_tokens;
static char size_replacement[64];
static size_t size_replacement_len;
static pcre2_match_data *match_data;
static int configured;

/* A growable byte buffer. */
typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra)
{
    /* Always allocate once, so even an empty text has a non-NULL buffer. */
    if (b->p && b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n))
        return -1;
    /* s may be NULL when n is 0 (an empty title's unallocated lowercase copy), and
     * memcpy from NULL is undefined even for no bytes. */
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static void buf_swap(Buf *a, Buf *b)
{
    Buf t = *a;
    *a = *b;
    *b = t;
}

/* Python's str.isspace() on ASCII, which is what str.split() splits on. */
static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static int contains(const Buf *b, const char *needle)
{
    return memmem(b->p, b->len, needle, strlen(needle)) != NULL;
}

static int has_char(const Buf *b, char c)
{
    return b->len && memchr(b->p, c, b->len) != NULL;
}

/* 1 found, 0 not, <0 PCRE2 error. */
static int search(pcre2_code *re, const char *s, size_t len)
{
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, match_data, NULL);
    if (rc >= 0)
        return 1;
    return rc == PCRE2_ERROR_NOMATCH ? 0 : rc;
}

typedef enum { R_LITERAL, R_GROUPS_IN, R_GROUPS, R_DELEET, R_JOIN_DOTTED, R_JOIN_SPACED } Replace;

static int is_vowel(char c)
{
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y';
}

static char leet_plain(char c)
{
    switch (c) {
    case '0': return 'o';
    case '1': return 'i';
    case '3': return 'e';
    case '4': return 'a';
    case '5': return 's';
    case '7': return 't';
    case '@': return 'a';
    case '$': return 's';
    default: return c;
    }
}

/* `text.clean._deleet_token`: append the token, de-leeted when it passes every test. <0 error. */
static int deleet(const char *tok, size_t n, Buf *out)
{
    char plain[256];
    if (n < 4 || n >= sizeof plain)
        return n < 4 ? buf_put(out, tok, n) : -1;
    int rc = search(patterns[P_LEET_SHAPE], tok, n);
    if (rc <= 0)
        return rc < 0 ? rc : buf_put(out, tok, n);
    size_t n_leet = 0;
    int any_vowel = 0;
    for (size_t i = 0; i < n; i++) {
        plain[i] = leet_plain(tok[i]);
        n_leet += plain[i] != tok[i];
        any_vowel |= is_vowel(tok[i]);
    }
    if (n_leet * 2 > n || !any_vowel)
        return buf_put(out, tok, n);
    pcre2_code *rejects[] = {patterns[P_CONSONANT_RUN], patterns[P_VOWEL_RUN]};
    for (int k = 0; k < 2; k++) {
        rc = search(rejects[k], plain, n);
        if (rc)
            return rc < 0 ? rc : buf_put(out, tok, n);
    }
    rc = search(patterns[P_TECH_SUFFIX], tok, n);
    if (rc)
        return rc < 0 ? rc : buf_put(out, tok, n);
    for (size_t i = 1; i + 1 < n; i++) {
        if (plain[i] == tok[i])
            continue;
        int before = is_vowel(plain[i - 1]), after = is_vowel(plain[i + 1]);
        if (strchr("0134@", tok[i])) {
            if (before && after)
                return buf_put(out, tok, n);
        } else if (!before && !after) {
            return buf_put(out, tok, n);
        }
    }
    return buf_put(out, plain, n);
}

/* re.sub(pattern, replacement, in) into out. 0 ok, <0 error (empty match included). */
static int sub(pcre2_code *re, const Buf *in, Buf *out, Replace kind, const char *lit, size_t lit_len)
{
    out->len = 0;
    size_t last = 0, pos = 0;
    while (pos <= in->len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)in->p, in->len, pos, 0, match_data, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return rc;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(match_data);
        size_t start = ov[0], end = ov[1];
        if (end <= start)
            return -1; /* Python's empty-match rules are not mirrored: none of ours can. */
        if (buf_put(out, in->p + last, start - last))
            return -1;
        const char *m = in->p + start;
        size_t n = end - start;
        switch (kind) {
        case R_LITERAL:
            if (buf_put(out, lit, lit_len))
                return -1;
            break;
        case R_GROUPS_IN:
        case R_GROUPS:
            for (int g = 1; g <= 2; g++) {
                if (ov[2 * g] != PCRE2_UNSET &&
                    buf_put(out, in->p + ov[2 * g], ov[2 * g + 1] - ov[2 * g]))
                    return -1;
                if (g == 1 && kind == R_GROUPS_IN && buf_put(out, "in", 2))
                    return -1;
            }
            break;
        case R_DELEET:
            if ((rc = deleet(m, n, out)) < 0)
                return rc;
            break;
        case R_JOIN_DOTTED:
        case R_JOIN_SPACED:
            if (buf_reserve(out, n))
                return -1;
            for (size_t i = 0; i < n; i++) {
                char c = m[i];
                int drop = kind == R_JOIN_SPACED ? c == ' ' : (c == '.' || c == '-');
                if (!drop)
                    out->p[out->len++] = c;
            }
            break;
        }
        last = pos = end;
    }
    return buf_put(out, in->p + last, in->len - last);
}

/* Apply one substitution in place (through the scratch buffer). */
static int sub_into(pcre2_code *re, Buf *s, Buf *tmp, Replace kind, const char *lit, size_t lit_len)
{
    int rc = sub(re, s, tmp, kind, lit, lit_len);
    if (rc < 0)
        return rc;
    buf_swap(s, tmp);
    return 0;
}

/* The next token at or after *pos, as str.split() finds them: its start in *start, its
 * length returned (0: none left); *pos moves past it. */
static size_t next_token(const Buf *s, size_t *pos, size_t *start)
{
    size_t i = *pos;
    while (i < s->len && is_space((unsigned char)s->p[i]))
        i++;
    size_t j = i;
    while (j < s->len && !is_space((unsigned char)s->p[j]))
        j++;
    *start = i;
    *pos = j;
    return j - i;
}

/* " ".join(s.split()) */
static int collapse(Buf *s, Buf *tmp)
{
    tmp->len = 0;
    if (buf_reserve(tmp, s->len))
        return -1;
    size_t pos = 0, start, n;
    while ((n = next_token(s, &pos, &start))) {
        if (tmp->len)
            tmp->p[tmp->len++] = ' ';
        memcpy(tmp->p + tmp->len, s->p + start, n);
        tmp->len += n;
    }
    buf_swap(s, tmp);
    return 0;
}

/* `text.is_normalised` */
static int is_normalised(const Buf *s)
{
    if (s->len && (s->p[0] == ' ' || s->p[s->len - 1] == ' '))
        return 0;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->p[i];
        if (c == ' ') {
            if (i + 1 < s->len && s->p[i + 1] == ' ')
                return 0;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            return 0;
        }
    }
    return 1;
}

/* Whether any whitespace-separated token of s is a noise first token. */
static int has_noise_token(const Buf *s)
{
    size_t pos = 0, start, n;
    while ((n = next_token(s, &pos, &start)))
        for (int k = 0; k < n_noise_tokens; k++)
            if (noise_lens[k] == n && memcmp(noise_tokens[k], s->p + start, n) == 0)
                return 1;
    return 0;
}

/* `text.clean._clean_pass`, step for step. */
static int clean_pass(Buf *s, Buf *tmp)
{
    int rc;
    int has_digit = 0;
    for (size_t i = 0; i < s->len && !has_digit; i++)
        has_digit = s->p[i] >= '0' && s->p[i] <= '9';
    int numbers = 0;
    if (has_digit && (numbers = search(patterns[P_NUMBER_HINT], s->p, s->len)) < 0)
        return numbers;
    if (numbers && (rc = sub_into(patterns[P_TIMESTAMP], s, tmp, R_LITERAL, " ", 1)))
        return rc;
    if (has_digit || has_char(s, '@') || has_char(s, '$')) {
        if ((rc = search(patterns[P_LEET_HINT], s->p, s->len)) < 0)
            return rc;
        if (rc && (rc = sub_into(patterns[P_LEET_CANDIDATE], s, tmp, R_DELEET, NULL, 0)))
            return rc;
    }
    if (numbers) {
        if ((rc = sub_into(patterns[P_IN_ONE], s, tmp, R_GROUPS_IN, NULL, 0)))
            return rc;
        if ((rc = sub_into(patterns[P_TECH_UNIT], s, tmp, R_GROUPS, NULL, 0)))
            return rc;
        for (int r = 0; r < n_unit_rules; r++) {
            UnitRule *rule = &unit_rules[r];
            pcre2_code *re = rule->pattern;
            if (rule->n_words) {
                int found = 0;
                for (int w = 0; w < rule->n_words && !found; w++)
                    found = contains(s, rule->words[w]);
                if (!found) {
                    re = rule->fallback;
                    if (!re)
                        continue;
                }
            }
            if ((rc = sub_into(re, s, tmp, R_LITERAL, rule->replacement, rule->replacement_len)))
                return rc;
        }
    }
    if (contains(s, "size") &&
        (rc = sub_into(patterns[P_SIZE_WORD], s, tmp, R_LITERAL, size_replacement, size_replacement_len)))
        return rc;
    if (has_char(s, '.') || has_char(s, '-')) {
        if ((rc = search(patterns[P_DOTTED_HINT], s->p, s->len)) < 0)
            return rc;
        if (rc && (rc = sub_into(patterns[P_DOTTED], s, tmp, R_JOIN_DOTTED, NULL, 0)))
            return rc;
    }
    if ((rc = search(patterns[P_SPACED_HINT], s->p, s->len)) < 0)
        return rc;
    if (rc && (rc = sub_into(patterns[P_SPACED], s, tmp, R_JOIN_SPACED, NULL, 0)))
        return rc;
    if (has_char(s, '\'') && (rc = sub_into(patterns[P_APOSTROPHE], s, tmp, R_LITERAL, "", 0)))
        return rc;
    if (!is_normalised(s)) {
        if ((rc = sub_into(patterns[P_NON_ALNUM], s, tmp, R_LITERAL, " ", 1)))
            return rc;
        if (collapse(s, tmp))
            return -1;
    }
    if (has_noise_token(s) && (rc = sub_into(patterns[P_NOISE], s, tmp, R_LITERAL, " ", 1)))
        return rc;
    if (has_digit && (rc = sub_into(patterns[P_BARE_NUMBER], s, tmp, R_LITERAL, " ", 1)))
        return rc;
    return collapse(s, tmp);
}

/* `text.clean._truncate` */
static void truncate_to(Buf *s, size_t limit)
{
    if (s->len <= limit)
        return;
    size_t cut = 0;
    for (size_t i = limit + 1; i-- > 0;) {
        if (s->p[i] == ' ') {
            cut = i;
            break;
        }
    }
    if (cut > 0) {
        s->len = cut;
        return;
    }
    s->len = limit;
    while (s->len && is_space((unsigned char)s->p[s->len - 1]))
        s->len--;
}

/* The passes to their fixed point on n ASCII bytes at p: a new str, a new reference to
 * None (the caller runs Python), or NULL with an error. */
static PyObject *settle_bytes(const char *p, Py_ssize_t n, Py_ssize_t limit)
{
    Buf s = {0}, prev = {0}, tmp = {0};
    PyObject *result = NULL;
    if (buf_reserve(&s, 1) || buf_reserve(&prev, 1) || buf_reserve(&tmp, 1) ||
        buf_put(&s, p, (size_t)n))
        goto fail;
    int done = 0;
    for (int pass = 0; pass < MAX_PASSES; pass++) {
        prev.len = 0;
        if (buf_put(&prev, s.p, s.len))
            goto fail;
        if (clean_pass(&s, &tmp))
            goto fail;
        truncate_to(&s, (size_t)limit);
        if (s.len == prev.len && memcmp(s.p, prev.p, s.len) == 0) {
            done = 1;
            break;
        }
    }
    if (done)
        result = PyUnicode_DecodeASCII(s.p, (Py_ssize_t)s.len, NULL);
fail:
    free(s.p);
    free(prev.p);
    free(tmp.p);
    if (!result && !PyErr_Occurred())
        Py_RETURN_NONE;
    return result;
}

static PyObject *settle(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "Un", &text, &limit))
        return NULL;
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure() has not been called");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(text) || limit < 1)
        Py_RETURN_NONE;
    return settle_bytes((const char *)PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text), limit);
}

/* `leet._MIX_HINT_RE.search(text)`: a digit, "@" or "$" beside a lowercase letter. */
static int has_mix_hint(const char *p, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = p[i];
        if ((c >= '0' && c <= '9') || c == '@' || c == '$') {
            if (i > 0 && p[i - 1] >= 'a' && p[i - 1] <= 'z')
                return 1;
            if (i + 1 < n && p[i + 1] >= 'a' && p[i + 1] <= 'z')
                return 1;
        }
    }
    return 0;
}

/* The common title of `normaliser.normalize_many`, for a whole call: a str of ASCII
 * without "&" or "<", cut to `raw` characters and lowercased; with no letter beside a
 * digit, "@" or "$", it is settled here. Every other item (and any the passes cannot
 * vouch for) is None in the returned list, for the Python loop to normalise. */
static PyObject *settle_plain_many(PyObject *self, PyObject *args)
{
    PyObject *titles;
    Py_ssize_t limit, raw;
    if (!PyArg_ParseTuple(args, "Onn", &titles, &limit, &raw))
        return NULL;
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure() has not been called");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(titles, "titles must be a sequence");
    if (!seq)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *out = PyList_New(count);
    if (!out) {
        Py_DECREF(seq);
        return NULL;
    }
    char *low = NULL;
    size_t low_cap = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *title = items[k], *value = NULL;
        if (limit >= 1 && raw >= 0 && PyUnicode_CheckExact(title) && PyUnicode_IS_ASCII(title)) {
            const char *p = (const char *)PyUnicode_DATA(title);
            Py_ssize_t n = PyUnicode_GET_LENGTH(title);
            if (!memchr(p, '&', (size_t)n) && !memchr(p, '<', (size_t)n)) {
                if (n > raw)
                    n = raw;
                if ((size_t)n > low_cap) {
                    char *grown = realloc(low, (size_t)n);
                    if (!grown) {
                        PyErr_NoMemory();
                        goto fail;
                    }
                    low = grown;
                    low_cap = (size_t)n;
                }
                for (Py_ssize_t i = 0; i < n; i++) {
                    char c = p[i];
                    low[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
                }
                if (!has_mix_hint(low, n) && !(value = settle_bytes(low, n, limit)))
                    goto fail;
            }
        }
        if (!value) {
            value = Py_None;
            Py_INCREF(value);
        }
        PyList_SET_ITEM(out, k, value);
    }
    free(low);
    Py_DECREF(seq);
    return out;
fail:
    free(low);
    Py_DECREF(seq);
    Py_DECREF(out);
    return NULL;
}

static pcre2_code *compile(PyObject *pattern)
{
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(pattern, &n);
    if (!p)
        return NULL;
    int err;
    PCRE2_SIZE offset;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, (PCRE2_SIZE)n, 0, &err, &offset, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        PyErr_Format(PyExc_ValueError, "PCRE2 cannot compile %R at %zu: %s", pattern,
                     (size_t)offset, msg);
        return NULL;
    }
    /* Without the JIT (some hardened kernels forbid it) PCRE2 interprets: same results. */
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

static char *copy_str(PyObject *obj, size_t *len)
{
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(obj, &n);
    if (!p)
        return NULL;
    char *out = malloc((size_t)n + 1);
    if (!out) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(out, p, (size_t)n + 1);
    if (len)
        *len = (size_t)n;
    return out;
}

/*
 * configure(patterns, unit_rules, size_replacement, noise_tokens)
 *   patterns: tuple of N_PATTERNS pattern strings in enum order (already PCRE2 syntax)
 *   unit_rules: tuple of (pattern, replacement, words tuple, fallback pattern or None)
 *   size_replacement: str
 *   noise_tokens: tuple of str
 * Called once, before settle; a second call is refused (patterns are fixed per process).
 */
static PyObject *configure(PyObject *self, PyObject *args)
{
    PyObject *pats, *rules, *size_rep, *noise;
    if (!PyArg_ParseTuple(args, "O!O!UO!", &PyTuple_Type, &pats, &PyTuple_Type, &rules,
                          &size_rep, &PyTuple_Type, &noise))
        return NULL;
    if (configured)
        Py_RETURN_NONE;
    if (PyTuple_GET_SIZE(pats) != N_PATTERNS || PyTuple_GET_SIZE(rules) > MAX_UNIT_RULES ||
        PyTuple_GET_SIZE(noise) > MAX_NOISE_TOKENS) {
        PyErr_SetString(PyExc_ValueError, "configure(): unexpected number of items");
        return NULL;
    }
    for (int i = 0; i < N_PATTERNS; i++)
        if (!(patterns[i] = compile(PyTuple_GET_ITEM(pats, i))))
            return NULL;
    for (Py_ssize_t r = 0; r < PyTuple_GET_SIZE(rules); r++) {
        PyObject *rule = PyTuple_GET_ITEM(rules, r), *pattern, *rep, *words, *fallback;
        if (!PyArg_ParseTuple(rule, "UUO!O", &pattern, &rep, &PyTuple_Type, &words, &fallback))
            return NULL;
        UnitRule *u = &unit_rules[r];
        if (PyTuple_GET_SIZE(words) > MAX_SHORTCUT_WORDS) {
            PyErr_SetString(PyExc_ValueError, "configure(): too many shortcut words");
            return NULL;
        }
        if (!(u->pattern = compile(pattern)) || !(u->replacement = copy_str(rep, &u->replacement_len)))
            return NULL;
        u->n_words = (int)PyTuple_GET_SIZE(words);
        for (int w = 0; w < u->n_words; w++)
            if (!(u->words[w] = copy_str(PyTuple_GET_ITEM(words, w), NULL)))
                return NULL;
        u->fallback = NULL;
        if (fallback != Py_None && !(u->fallback = compile(fallback)))
            return NULL;
    }
    n_unit_rules = (int)PyTuple_GET_SIZE(rules);
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(size_rep, &n);
    if (!p)
        return NULL;
    if ((size_t)n >= sizeof size_replacement) {
        PyErr_SetString(PyExc_ValueError, "configure(): size replacement too long");
        return NULL;
    }
    memcpy(size_replacement, p, (size_t)n);
    size_replacement_len = (size_t)n;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(noise); k++)
        if (!(noise_tokens[k] = copy_str(PyTuple_GET_ITEM(noise, k), &noise_lens[k])))
            return NULL;
    n_noise_tokens = (int)PyTuple_GET_SIZE(noise);
    if (!(match_data = pcre2_match_data_create(16, NULL)))
        return PyErr_NoMemory();
    configured = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "Compile the cleaning patterns (once per process)."},
    {"settle", settle, METH_VARARGS,
     "settle(text, limit) -> str | None: the cleaning passes run to their fixed point, or "
     "None when the Python version must decide."},
    {"settle_plain_many", settle_plain_many, METH_VARARGS,
     "settle_plain_many(titles, limit, raw) -> list of str | None: normalize_many's common "
     "titles settled, None for every other item."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cleaner",
                                    "Compiled cleaning passes of clustercls.text.normalize.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__cleaner(void)
{
    return PyModule_Create(&module);
}
