/*
 * Compiled token lookup for the block paths of `clustercls.text.tokens.TokenTable`: the
 * word n-gram counts, the lexicon scan and familiarity each turn a call's titles into one
 * integer per token.
 *
 * Why: in Python that is `map(table.get, " | ".join(titles).split())`, and with a word
 * vocabulary of 100,000+ entries each lookup hashes a fresh str and misses the cache
 * twice (dict slot, then the key's characters): a third of the word features' time.
 * Here the tokens are hashed in place, never made into str objects, and looked up in
 * an open-addressing table of 64-bit hashes.
 *
 * Contract (its Python twin is `TokenTable.ids` without this module):
 *   table = build(keys, values)          keys: list of str, values: list of int
 *   lookup(table, docs, separator, default, any_whitespace) -> bytes | None
 * gives, as native int64s, `[mapping.get(t, default) for t in tokens]` where tokens are
 * `f" {separator} ".join(docs).split()` (any_whitespace) or `.split(" ")`, and mapping is
 * `dict(zip(keys, values))`. It returns None when a doc or the separator is not an ASCII
 * str: the caller then runs the twin. Keys that are not ASCII can never equal an ASCII
 * token and are left out of the table.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define CAPSULE_NAME "clustercls._tokens.Table"

typedef struct {
    uint64_t hash;
    int64_t value;
    Py_ssize_t offset; /* of the key in `keys`; -1: empty slot */
    Py_ssize_t length;
} Slot;

typedef struct {
    Slot *slots;
    size_t mask; /* number of slots - 1 (a power of two) */
    char *keys;  /* every key's bytes, back to back */
} Table;

/* FNV-1a, then a final mix so that the low bits (the slot) depend on every byte. */
static uint64_t hash_bytes(const char *p, Py_ssize_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* Python's str.isspace() on ASCII, which is what str.split() splits on. */
static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static Slot *find(const Table *t, const char *p, Py_ssize_t n, uint64_t h)
{
    size_t i = (size_t)h & t->mask;
    for (;;) {
        Slot *s = &t->slots[i];
        if (s->offset < 0)
            return s;
        if (s->hash == h && s->length == n && memcmp(t->keys + s->offset, p, (size_t)n) == 0)
            return s;
        i = (i + 1) & t->mask;
    }
}

static void free_table(PyObject *capsule)
{
    Table *t = PyCapsule_GetPointer(capsule, CAPSULE_NAME);
    if (t) {
        free(t->slots);
        free(t->keys);
        free(t);
    }
}

static PyObject *build(PyObject *self, PyObject *args)
{
    PyObject *keys, *values;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &keys, &PyList_Type, &values))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    if (PyList_GET_SIZE(values) != n) {
        PyErr_SetString(PyExc_ValueError, "keys and values differ in length");
        return NULL;
    }
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        if (!PyUnicode_Check(k)) {
            PyErr_SetString(PyExc_TypeError, "keys must be str");
            return NULL;
        }
        if (PyUnicode_IS_ASCII(k))
            total += (size_t)PyUnicode_GET_LENGTH(k);
    }
    size_t n_slots = 8;
    while (n_slots < 2 * (size_t)n + 1) {
        if (n_slots > SIZE_MAX / 4 / sizeof(Slot))
            return PyErr_NoMemory();
        n_slots *= 2;
    }
    Table *t = calloc(1, sizeof *t);
    if (!t)
        return PyErr_NoMemory();
    t->slots = malloc(n_slots * sizeof(Slot));
    t->keys = malloc(total ? total : 1);
    if (!t->slots || !t->keys) {
        free(t->slots);
        free(t->keys);
        free(t);
        return PyErr_NoMemory();
    }
    t->mask = n_slots - 1;
    for (size_t i = 0; i < n_slots; i++)
        t->slots[i].offset = -1;
    Py_ssize_t used = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        long long v = PyLong_AsLongLong(PyList_GET_ITEM(values, i));
        if (v == -1 && PyErr_Occurred()) {
            free(t->slots);
            free(t->keys);
            free(t);
            return NULL;
        }
        if (!PyUnicode_IS_ASCII(k))
            continue;
        const char *p = (const char *)PyUnicode_DATA(k);
        Py_ssize_t len = PyUnicode_GET_LENGTH(k);
        uint64_t h = hash_bytes(p, len);
        Slot *s = find(t, p, len, h);
        if (s->offset < 0) {
            memcpy(t->keys + used, p, (size_t)len);
            s->offset = used;
            s->length = len;
            s->hash = h;
            used += len;
        }
        s->value = (int64_t)v; /* a repeated key keeps its last value, as dict(zip()) does */
    }
    PyObject *capsule = PyCapsule_New(t, CAPSULE_NAME, free_table);
    if (!capsule) {
        free(t->slots);
        free(t->keys);
        free(t);
    }
    return capsule;
}

typedef struct {
    int64_t *p;
    size_t len, cap;
} Out;

static int out_put(Out *o, int64_t v)
{
    if (o->len == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 256;
        if (cap > SIZE_MAX / sizeof(int64_t))
            return -1;
        int64_t *p = realloc(o->p, cap * sizeof(int64_t));
        if (!p)
            return -1;
        o->p = p;
        o->cap = cap;
    }
    o->p[o->len++] = v;
    return 0;
}

static int64_t value_of(const Table *t, const char *p, Py_ssize_t n, int64_t fallback)
{
    Slot *s = find(t, p, n, hash_bytes(p, n));
    return s->offset < 0 ? fallback : s->value;
}

/* The tokens of `text` as `str.split()` (any_whitespace) or `str.split(" ")` finds them. */
static int put_tokens(const Table *t, const char *p, Py_ssize_t n, int any_whitespace,
                      int64_t fallback, Out *o)
{
    Py_ssize_t i = 0;
    if (any_whitespace) {
        for (;;) {
            while (i < n && is_space((unsigned char)p[i]))
                i++;
            if (i == n)
                return 0;
            Py_ssize_t j = i;
            while (j < n && !is_space((unsigned char)p[j]))
                j++;
            if (out_put(o, value_of(t, p + i, j - i, fallback)))
                return -1;
            i = j;
        }
    }
    for (;;) {
        Py_ssize_t j = i;
        while (j < n && p[j] != ' ')
            j++;
        if (out_put(o, value_of(t, p + i, j - i, fallback)))
            return -1;
        if (j == n)
            return 0;
        i = j + 1;
    }
}

static PyObject *lookup(PyObject *self, PyObject *args)
{
    PyObject *capsule, *docs, *separator;
    long long fallback;
    int any_whitespace;
    if (!PyArg_ParseTuple(args, "OOULp", &capsule, &docs, &separator, &fallback, &any_whitespace))
        return NULL;
    Table *t = PyCapsule_GetPointer(capsule, CAPSULE_NAME);
    if (!t)
        return NULL;
    PyObject *seq = PySequence_Fast(docs, "docs must be a sequence");
    if (!seq)
        return NULL;
    Py_ssize_t n_docs = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    if (!PyUnicode_IS_ASCII(separator)) {
        Py_DECREF(seq);
        Py_RETURN_NONE;
    }
    for (Py_ssize_t d = 0; d < n_docs; d++) {
        if (!PyUnicode_CheckExact(items[d]) || !PyUnicode_IS_ASCII(items[d])) {
            Py_DECREF(seq);
            Py_RETURN_NONE;
        }
    }
    /* The joined text, " {separator} " between docs, is read piece by piece: a separator
     * token cannot merge with its neighbours, since spaces surround it. Under
     * split(" ") the pieces' edges give empty tokens, which the joined text shows as
     * the empty strings before and after each separator's spaces. */
    const char *sep = (const char *)PyUnicode_DATA(separator);
    Py_ssize_t sep_len = PyUnicode_GET_LENGTH(separator);
    Out o = {0};
    int failed = 0;
    if (n_docs == 0) {
        /* "".split() is [], "".split(" ") is [""]. */
        if (!any_whitespace)
            failed = out_put(&o, value_of(t, "", 0, (int64_t)fallback));
    }
    for (Py_ssize_t d = 0; d < n_docs && !failed; d++) {
        if (d > 0) {
            /* " sep " : split() gives the separator's own tokens; split(" ") gives the
             * doc's last token (already emitted), then sep split on " ", then the next
             * doc's first token. */
            failed = put_tokens(t, sep, sep_len, any_whitespace, (int64_t)fallback, &o);
            if (failed)
                break;
        }
        const char *p = (const char *)PyUnicode_DATA(items[d]);
        Py_ssize_t n = PyUnicode_GET_LENGTH(items[d]);
        failed = put_tokens(t, p, n, any_whitespace, (int64_t)fallback, &o);
    }
    Py_DECREF(seq);
    if (failed) {
        free(o.p);
        return PyErr_NoMemory();
    }
    PyObject *result = PyBytes_FromStringAndSize((const char *)o.p, (Py_ssize_t)(o.len * sizeof(int64_t)));
    free(o.p);
    return result;
}

static PyMethodDef methods[] = {
    {"build", build, METH_VARARGS, "A lookup table of ASCII str keys to int values (a capsule)."},
    {"lookup", lookup, METH_VARARGS,
     "Each token's value (int64 bytes) of docs joined by a separator, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_tokens",
                                    "Compiled token lookup for clustercls.text.tokens.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__tokens(void)
{
    return PyModule_Create(&module);
}
