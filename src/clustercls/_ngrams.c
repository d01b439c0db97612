/*
 * Compiled counting of `char_wb` n-grams for `clustercls.features.FastTfidfVectorizer`.
 *
 * Why: with normalisation compiled, counting the character n-grams of a call was the
 * largest cost left, and half of it was scipy sorting each row to merge duplicates.
 * Here each row is merged with a column-stamped scratch array and radix-sorted, so the
 * result is the canonical CSR (sorted columns, no duplicates) scipy would build: the
 * same matrix, entry for entry, as the numpy path.
 *
 * The lookup tables are the numpy arrays of `features._KeyIndex`, read through the
 * buffer protocol: dense int32 tables indexed by the n-gram's base-38 key for n <= 4,
 * and for n = 5 a prefix-rank table plus a (prefixes x 38) table. Longer n-grams are not
 * handled here (the caller keeps the numpy path for them).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define BASE 38
#define MAX_N 5

static int32_t *stamp_of, *count_of; /* per column: last row that saw it, its count there */
static Py_ssize_t scratch_columns;
static uint32_t row_stamp;

static int code_of(unsigned char c)
{
    if (c == ' ')
        return 0;
    if (c >= '0' && c <= '9')
        return 1 + (c - '0');
    if (c >= 'a' && c <= 'z')
        return 11 + (c - 'a');
    return -1;
}

static int ensure_scratch(Py_ssize_t n_features)
{
    if (n_features <= scratch_columns)
        return 0;
    int32_t *s = calloc((size_t)n_features, sizeof *s), *c = calloc((size_t)n_features, sizeof *c);
    if (!s || !c) {
        free(s);
        free(c);
        return -1;
    }
    free(stamp_of);
    free(count_of);
    stamp_of = s;
    count_of = c;
    scratch_columns = n_features;
    row_stamp = 0;
    return 0;
}

static void sort_columns(int32_t *a, int32_t *tmp, Py_ssize_t k, Py_ssize_t n_features)
{
    if (k <= 32) {
        for (Py_ssize_t i = 1; i < k; i++) {
            int32_t v = a[i];
            Py_ssize_t j = i;
            while (j > 0 && a[j - 1] > v) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = v;
        }
        return;
    }
    /* LSD radix sort on bytes, as many passes as the largest column needs. */
    int32_t *src = a, *dst = tmp;
    for (int shift = 0; shift < 32 && ((n_features - 1) >> shift) > 0; shift += 8) {
        Py_ssize_t counts[257] = {0};
        for (Py_ssize_t i = 0; i < k; i++)
            counts[((src[i] >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++)
            counts[b + 1] += counts[b];
        for (Py_ssize_t i = 0; i < k; i++)
            dst[counts[(src[i] >> shift) & 0xff]++] = src[i];
        int32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, (size_t)k * sizeof *a);
}

static int is_int32(const Py_buffer *view)
{
    const char *f = view->format ? view->format : "B";
    size_t len = strlen(f);
    return len > 0 && (f[len - 1] == 'i' || f[len - 1] == 'l') && view->itemsize == 4;
}

typedef struct {
    Py_buffer views[MAX_N + 1][2];
    int held[MAX_N + 1][2];
} Tables;

static void release(Tables *t)
{
    for (int n = 0; n <= MAX_N; n++)
        for (int j = 0; j < 2; j++)
            if (t->held[n][j])
                PyBuffer_Release(&t->views[n][j]);
}

static int get_view(PyObject *obj, Py_buffer *view, int writable)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)))
        return -1;
    return 0;
}

/*
 * count_char_wb(docs, low, high, tables, n_features, indptr, indices, data) -> nnz | None
 *   docs: list of str (normalised: [a-z0-9 ], single spaces)
 *   tables: tuple of high - low + 1 items, for n = low..high: an int32 array (n <= 4) or a
 *           pair (rank int32 array, table int32 array) for n = 5
 *   indptr: int64[len(docs) + 1], indices and data: int32[capacity], all written here
 * None: a document outside the alphabet, the capacity too small, or a table entry beyond
 * n_features or the second table (tables of another vocabulary); the caller then uses
 * the numpy path.
 */
static PyObject *count_char_wb(PyObject *self, PyObject *args)
{
    PyObject *docs, *tables_obj, *indptr_obj, *indices_obj, *data_obj;
    int low, high;
    Py_ssize_t n_features;
    if (!PyArg_ParseTuple(args, "O!iiO!nOOO", &PyList_Type, &docs, &low, &high, &PyTuple_Type,
                          &tables_obj, &n_features, &indptr_obj, &indices_obj, &data_obj))
        return NULL;
    if (low < 1 || high > MAX_N || low > high || PyTuple_GET_SIZE(tables_obj) != high - low + 1) {
        PyErr_SetString(PyExc_ValueError, "count_char_wb: unsupported n-gram range or tables");
        return NULL;
    }
    Tables t;
    memset(&t, 0, sizeof t);
    Py_buffer indptr_v, indices_v, data_v;
    int have_out = 0;
    PyObject *result = NULL;
    for (int n = low; n <= high; n++) {
        PyObject *item = PyTuple_GET_ITEM(tables_obj, n - low);
        if (n <= 4) {
            if (get_view(item, &t.views[n][0], 0))
                goto done;
            t.held[n][0] = 1;
        } else {
            if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
                PyErr_SetString(PyExc_ValueError, "count_char_wb: n = 5 needs (rank, table)");
                goto done;
            }
            for (int j = 0; j < 2; j++) {
                if (get_view(PyTuple_GET_ITEM(item, j), &t.views[n][j], 0))
                    goto done;
                t.held[n][j] = 1;
            }
        }
        for (int j = 0; j < 2; j++)
            if (t.held[n][j] && (t.views[n][j].itemsize != 4 || !is_int32(&t.views[n][j]))) {
                PyErr_SetString(PyExc_ValueError, "count_char_wb: tables must be int32");
                goto done;
            }
        /* Keys index the tables directly: their sizes must be the ones keys range over. */
        Py_ssize_t dense = 1;
        for (int k = 0; k < (n <= 4 ? n : 4); k++)
            dense *= BASE;
        if (t.views[n][0].len / 4 != dense || (n == 5 && t.views[n][1].len / 4 % BASE != 0)) {
            PyErr_SetString(PyExc_ValueError, "count_char_wb: table of the wrong size");
            goto done;
        }
    }
    if (get_view(indptr_obj, &indptr_v, 1))
        goto done;
    if (get_view(indices_obj, &indices_v, 1)) {
        PyBuffer_Release(&indptr_v);
        goto done;
    }
    if (get_view(data_obj, &data_v, 1)) {
        PyBuffer_Release(&indptr_v);
        PyBuffer_Release(&indices_v);
        goto done;
    }
    have_out = 1;
    Py_ssize_t n_docs = PyList_GET_SIZE(docs);
    Py_ssize_t capacity = indices_v.len / 4;
    if (indptr_v.itemsize != 8 || indptr_v.len / 8 != n_docs + 1 || indices_v.itemsize != 4 ||
        data_v.itemsize != 4 || data_v.len / 4 != capacity) {
        PyErr_SetString(PyExc_ValueError, "count_char_wb: bad output arrays");
        goto done;
    }
    if (ensure_scratch(n_features)) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t *indptr = indptr_v.buf;
    int32_t *indices = indices_v.buf, *data = data_v.buf;
    Py_ssize_t nnz = 0;
    indptr[0] = 0;
    int ok = 1;
    int32_t *tmp = NULL;
    Py_ssize_t tmp_cap = 0;
    for (Py_ssize_t d = 0; d < n_docs && ok; d++) {
        PyObject *doc = PyList_GET_ITEM(docs, d);
        if (!PyUnicode_Check(doc) || !PyUnicode_IS_ASCII(doc)) {
            ok = 0;
            break;
        }
        const unsigned char *s = PyUnicode_DATA(doc);
        Py_ssize_t len = PyUnicode_GET_LENGTH(doc);
        if (++row_stamp == 0) {
            memset(stamp_of, 0, (size_t)scratch_columns * sizeof *stamp_of);
            row_stamp = 1;
        }
        Py_ssize_t row_start = nnz;
        Py_ssize_t i = 0;
        while (i < len && ok) {
            while (i < len && s[i] == ' ')
                i++;
            Py_ssize_t e = i;
            while (e < len && s[e] != ' ')
                e++;
            if (e == i)
                break;
            /* The word padded with a space on each side, as base-38 digits. */
            int pc[512];
            Py_ssize_t m = e - i + 2;
            if (m > (Py_ssize_t)(sizeof pc / sizeof pc[0])) {
                ok = 0;
                break;
            }
            pc[0] = pc[m - 1] = 0;
            for (Py_ssize_t k = i; k < e; k++) {
                int c = code_of(s[k]);
                if (c <= 0) {
                    ok = 0;
                    break;
                }
                pc[k - i + 1] = c;
            }
            for (Py_ssize_t p = 0; p < m && ok; p++) {
                int64_t key = 0;
                for (int n = 1; n <= high && p + n <= m; n++) {
                    key = key * BASE + pc[p + n - 1];
                    if (n < low)
                        continue;
                    int32_t col;
                    if (n <= 4) {
                        col = ((const int32_t *)t.views[n][0].buf)[key];
                    } else {
                        int32_t r = ((const int32_t *)t.views[n][0].buf)[key / BASE];
                        if (r >= 0 && (Py_ssize_t)r >= t.views[n][1].len / 4 / BASE) {
                            ok = 0; /* a table that does not belong to this vocabulary */
                            break;
                        }
                        col = r < 0 ? -1 : ((const int32_t *)t.views[n][1].buf)[(int64_t)r * BASE + key % BASE];
                    }
                    if (col < 0)
                        continue;
                    if (col >= n_features) {
                        ok = 0;
                        break;
                    }
                    if (stamp_of[col] != (int32_t)row_stamp) {
                        if (nnz >= capacity) {
                            ok = 0;
                            break;
                        }
                        stamp_of[col] = (int32_t)row_stamp;
                        count_of[col] = 1;
                        indices[nnz++] = col;
                    } else {
                        count_of[col]++;
                    }
                }
            }
            i = e;
        }
        if (!ok)
            break;
        Py_ssize_t k = nnz - row_start;
        if (k > tmp_cap) {
            int32_t *grown = realloc(tmp, (size_t)k * sizeof *tmp);
            if (!grown) {
                free(tmp);
                PyErr_NoMemory();
                goto done;
            }
            tmp = grown;
            tmp_cap = k;
        }
        sort_columns(indices + row_start, tmp, k, n_features);
        for (Py_ssize_t j = row_start; j < nnz; j++)
            data[j] = count_of[indices[j]];
        indptr[d + 1] = nnz;
    }
    free(tmp);
    if (ok)
        result = PyLong_FromSsize_t(nnz);
    else {
        Py_INCREF(Py_None);
        result = Py_None;
    }
done:
    if (have_out) {
        PyBuffer_Release(&indptr_v);
        PyBuffer_Release(&indices_v);
        PyBuffer_Release(&data_v);
    }
    release(&t);
    return result;
}

static PyMethodDef methods[] = {
    {"count_char_wb", count_char_wb, METH_VARARGS,
     "Count char_wb n-grams of normalised documents into canonical CSR arrays."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ngrams",
                                    "Compiled char_wb n-gram counting for clustercls.features.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__ngrams(void)
{
    return PyModule_Create(&module);
}
