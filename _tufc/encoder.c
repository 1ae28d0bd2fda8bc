/* Canonical JSON encoder: securesystemslib's encode_canonical, in C.
 *
 * Output goes straight into one growing bytes object (1.5x growth) that is
 * shrunk to size at the end, so the result is never copied.  Strings are
 * written as raw UTF-8 with only '"' and '\\' escaped (canonical JSON is not
 * JSON: control characters stay raw).  Dict keys are sorted as UTF-8 byte
 * strings with memcmp, which is code-point order for valid UTF-8.
 *
 * No Python code runs while encoding: types are tested with isinstance
 * semantics but subclasses are read through the base type (int.__repr__,
 * the str value, dict/list storage).  Every container is held by a strong
 * reference while it is walked, and dict items are snapshotted (with
 * references) before they are sorted, so a mutation from a finalizer cannot
 * leave a dangling pointer.  Nesting is capped at TUFC_MAX_DEPTH, which also
 * bounds the C recursion; a container found among its own ancestors is a
 * cycle.
 */
#include "tufc.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#endif

#define INITIAL_CAPACITY 4096

/* keep the rare growth path out of the inlined writers */
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* One dict item while its dict is being written. */
typedef struct {
    const char *key;     /* UTF-8 of the key, owned by the key object */
    Py_ssize_t key_len;
    PyObject *key_obj;   /* strong reference */
    PyObject *value;     /* strong reference */
    uint64_t rank;       /* sort key prefix, see item_less */
} item;

typedef struct {
    tufc_state *st;
    PyObject *bytes;     /* the output, over-allocated */
    char *pos;           /* next byte to write */
    char *end;           /* end of the allocation */
    /* dict items of every dict on the current path, used as a stack */
    item *items;
    Py_ssize_t items_len;
    Py_ssize_t items_cap;
    /* containers on the current path: depth limit and cycle detection */
    PyObject *path[TUFC_MAX_DEPTH];
    int depth;
} encoder;

static int encode(encoder *e, PyObject *obj);

/* ---- output buffer ------------------------------------------------------ */

static NOINLINE int
grow(encoder *e, Py_ssize_t need)
{
    char *base = PyBytes_AS_STRING(e->bytes);
    Py_ssize_t used = e->pos - base;
    Py_ssize_t cap = e->end - base;
    if (need > PY_SSIZE_T_MAX - used) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t want = used + need;
    Py_ssize_t new_cap = cap <= PY_SSIZE_T_MAX / 3 * 2 ? cap + cap / 2
                                                        : PY_SSIZE_T_MAX;
    if (new_cap < want) {
        new_cap = want;
    }
    /* documented C API despite the underscore; reallocates in place */
    if (_PyBytes_Resize(&e->bytes, new_cap) < 0) {
        return -1;
    }
    base = PyBytes_AS_STRING(e->bytes);
    e->pos = base + used;
    e->end = base + new_cap;
    return 0;
}

static inline int
reserve(encoder *e, Py_ssize_t need)
{
    if (e->end - e->pos >= need) {
        return 0;
    }
    return grow(e, need);
}

static inline int
put_byte(encoder *e, char c)
{
    if (reserve(e, 1) < 0) {
        return -1;
    }
    *e->pos++ = c;
    return 0;
}

static inline int
put_raw(encoder *e, const char *s, Py_ssize_t n)
{
    if (reserve(e, n) < 0) {
        return -1;
    }
    memcpy(e->pos, s, (size_t)n);
    e->pos += n;
    return 0;
}

/* ---- strings ------------------------------------------------------------ */

#define ONES   UINT64_C(0x0101010101010101)
#define HIGHS  UINT64_C(0x8080808080808080)

/* Nonzero when one of the 8 bytes of w is '"' or '\\'. */
static inline uint64_t
needs_escape(uint64_t w)
{
    uint64_t q = w ^ (ONES * 0x22);
    uint64_t b = w ^ (ONES * 0x5C);
    return ((q - ONES) & ~q & HIGHS) | ((b - ONES) & ~b & HIGHS);
}

/* Write s as a quoted canonical JSON string. */
static int
put_string_utf8(encoder *e, const char *s, Py_ssize_t n)
{
    /* worst case: every byte escaped, plus the quotes */
    if (n > (PY_SSIZE_T_MAX - 2) / 2) {
        PyErr_NoMemory();
        return -1;
    }
    if (reserve(e, 2 * n + 2) < 0) {
        return -1;
    }
    char *out = e->pos;
    const char *p = s;
    const char *stop = s + n;
    *out++ = '"';
    while (p < stop) {
#if defined(__SSE2__) && defined(__GNUC__)
        /* 16 bytes at a time: store them all (the reservation leaves room),
         * then advance past the clean ones */
        while (stop - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            int hits = _mm_movemask_epi8(
                _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                             _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
            _mm_storeu_si128((__m128i *)(void *)out, v);
            if (hits) {
                int clean = __builtin_ctz((unsigned)hits);
                p += clean;
                out += clean;
                break;
            }
            p += 16;
            out += 16;
        }
#endif
        /* copy clean words: load, test, store 8 bytes at a time */
        while (stop - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (needs_escape(w)) {
                break;
            }
            memcpy(out, &w, 8);
            p += 8;
            out += 8;
        }
        /* then byte by byte up to the next escape or the end */
        while (p < stop && *p != '"' && *p != '\\') {
            *out++ = *p++;
        }
        if (p < stop) {
            *out++ = '\\';
            *out++ = *p++;
        }
    }
    *out++ = '"';
    e->pos = out;
    return 0;
}

/* UTF-8 of a str (or str subclass), or NULL with FormatError. */
static const char *
utf8_of(encoder *e, PyObject *s, Py_ssize_t *len)
{
    if (PyUnicode_IS_COMPACT_ASCII(s)) {
        /* ASCII is its own UTF-8 (what AsUTF8AndSize returns, uncalled) */
        *len = PyUnicode_GET_LENGTH(s);
        return (const char *)PyUnicode_DATA(s);
    }
    const char *u = PyUnicode_AsUTF8AndSize(s, len);
    if (u == NULL && PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
        PyErr_Clear();
        PyErr_SetString(e->st->FormatError,
                        "cannot encode a string with a lone surrogate "
                        "in canonical JSON");
    }
    return u;
}

static int
put_string(encoder *e, PyObject *s)
{
    Py_ssize_t n;
    const char *u = utf8_of(e, s, &n);
    if (u == NULL) {
        return -1;
    }
    return put_string_utf8(e, u, n);
}

/* ---- integers ----------------------------------------------------------- */

static int
put_int(encoder *e, PyObject *obj)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (!overflow) {
        char tmp[24];
        char *t = tmp + sizeof(tmp);
        unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v
                                     : (unsigned long long)v;
        do {
            *--t = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0) {
            *--t = '-';
        }
        return put_raw(e, t, tmp + sizeof(tmp) - t);
    }
    /* int.__repr__, never an overridden __str__/__repr__ of a subclass */
    PyObject *text = PyLong_Type.tp_repr(obj);
    if (text == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            /* beyond sys.get_int_max_str_digits() */
            PyErr_Clear();
            PyErr_SetString(e->st->FormatError,
                            "integer too large to encode in canonical JSON");
        }
        return -1;
    }
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(text, &n);
    int rc = u == NULL ? -1 : put_raw(e, u, n);
    Py_DECREF(text);
    return rc;
}

/* ---- containers --------------------------------------------------------- */

static int
enter(encoder *e, PyObject *container)
{
    if (e->depth >= TUFC_MAX_DEPTH) {
        PyErr_Format(e->st->FormatError,
                     "nesting deeper than %d containers", TUFC_MAX_DEPTH);
        return -1;
    }
    for (int i = 0; i < e->depth; i++) {
        if (e->path[i] == container) {
            PyErr_SetString(e->st->FormatError,
                            "cannot encode a container that contains itself");
            return -1;
        }
    }
    e->path[e->depth++] = container;
    return 0;
}

static int
encode_sequence(encoder *e, PyObject *seq, int is_list)
{
    if (enter(e, seq) < 0) {
        return -1;
    }
    if (put_byte(e, '[') < 0) {
        return -1;
    }
    /* the size is re-read each step: a list may shrink under our feet */
    for (Py_ssize_t i = 0;
         i < (is_list ? PyList_GET_SIZE(seq) : PyTuple_GET_SIZE(seq)); i++) {
        PyObject *elem = is_list ? PyList_GET_ITEM(seq, i)
                                 : PyTuple_GET_ITEM(seq, i);
        if (i > 0 && put_byte(e, ',') < 0) {
            return -1;
        }
        Py_INCREF(elem);
        int rc = encode(e, elem);
        Py_DECREF(elem);
        if (rc < 0) {
            return -1;
        }
    }
    e->depth--;
    return put_byte(e, ']');
}

/* Byte order of two keys: code-point order for valid UTF-8. */
static inline int
item_cmp(const item *x, const item *y)
{
    size_t xn = (size_t)x->key_len, yn = (size_t)y->key_len;
    if (xn > 0 && yn > 0 && x->key[0] != y->key[0]) {
        /* most keys differ in their first byte: skip the memcmp call */
        return (unsigned char)x->key[0] < (unsigned char)y->key[0] ? -1 : 1;
    }
    int c = memcmp(x->key, y->key, xn < yn ? xn : yn);
    if (c != 0) {
        return c;
    }
    return (xn > yn) - (xn < yn);
}

/* x before y, by rank first.  A rank is the 8 key bytes after the prefix
 * all keys of the dict share, big-endian and zero-padded: ranks never order
 * two keys against their byte order, and equal ranks fall back to it. */
static inline int
item_less(const item *x, const item *y)
{
    if (x->rank != y->rank) {
        return x->rank < y->rank;
    }
    return item_cmp(x, y) < 0;
}

static void
set_ranks(item *items, Py_ssize_t count)
{
    size_t common = (size_t)items[0].key_len;
    for (Py_ssize_t i = 1; i < count && common > 0; i++) {
        size_t n = (size_t)items[i].key_len < common ? (size_t)items[i].key_len
                                                     : common;
        size_t j = 0;
        while (j < n && items[i].key[j] == items[0].key[j]) {
            j++;
        }
        common = j;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        uint64_t rank = 0;
        for (size_t b = common; b < common + 8; b++) {
            rank <<= 8;
            if (b < (size_t)items[i].key_len) {
                rank |= (unsigned char)items[i].key[b];
            }
        }
        items[i].rank = rank;
    }
}

static void
insertion_sort(item *items, Py_ssize_t start, Py_ssize_t stop)
{
    for (Py_ssize_t i = start + 1; i < stop; i++) {
        item moving = items[i];
        Py_ssize_t j = i;
        while (j > start && item_less(&moving, &items[j - 1])) {
            items[j] = items[j - 1];
            j--;
        }
        items[j] = moving;
    }
}

/* Merge the sorted runs [lo, mid) and [mid, hi), via tmp. */
static void
merge_runs(item *items, Py_ssize_t lo, Py_ssize_t mid, Py_ssize_t hi,
           item *tmp)
{
    if (!item_less(&items[mid], &items[mid - 1])) {
        return;   /* already in order */
    }
    memcpy(tmp, items + lo, (size_t)(mid - lo) * sizeof(item));
    Py_ssize_t a = 0, a_end = mid - lo, b = mid, out = lo;
    while (a < a_end && b < hi) {
        if (item_less(&items[b], &tmp[a])) {
            items[out++] = items[b++];
        }
        else {
            items[out++] = tmp[a++];
        }
    }
    memcpy(items + out, tmp + a, (size_t)(a_end - a) * sizeof(item));
}

#define MIN_RUN 16

/* Sort a dict's items by key.  Adaptive: ascending runs already in the
 * input (a producer's insertion order often is nearly sorted) are kept and
 * merged, short stretches are insertion-sorted.  -1 with MemoryError. */
static int
sort_items(item *items, Py_ssize_t count)
{
    if (count <= MIN_RUN) {
        /* tiny (most dicts): ranks would cost more than they save */
        for (Py_ssize_t i = 1; i < count; i++) {
            item moving = items[i];
            Py_ssize_t j = i;
            while (j > 0 && item_cmp(&moving, &items[j - 1]) < 0) {
                items[j] = items[j - 1];
                j--;
            }
            items[j] = moving;
        }
        return 0;
    }
    set_ranks(items, count);
    /* run boundaries: runs[k] .. runs[k + 1] */
    Py_ssize_t *runs = PyMem_Malloc(sizeof(Py_ssize_t) *
                                    (size_t)(count / MIN_RUN + 2));
    item *tmp = PyMem_Malloc(sizeof(item) * (size_t)count);
    if (runs == NULL || tmp == NULL) {
        PyMem_Free(runs);
        PyMem_Free(tmp);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t nruns = 0, start = 0;
    while (start < count) {
        Py_ssize_t end = start + 1;
        while (end < count && !item_less(&items[end], &items[end - 1])) {
            end++;
        }
        if (end - start < MIN_RUN) {
            end = start + MIN_RUN < count ? start + MIN_RUN : count;
            insertion_sort(items, start, end);
        }
        runs[nruns++] = start;
        start = end;
    }
    runs[nruns] = count;
    while (nruns > 1) {
        Py_ssize_t kept = 0;
        for (Py_ssize_t k = 0; k < nruns; k += 2) {
            if (k + 1 < nruns) {
                merge_runs(items, runs[k], runs[k + 1], runs[k + 2], tmp);
            }
            runs[kept++] = runs[k];
        }
        runs[kept] = count;
        nruns = kept;
    }
    PyMem_Free(runs);
    PyMem_Free(tmp);
    return 0;
}

static void
drop_items(encoder *e, Py_ssize_t base)
{
    while (e->items_len > base) {
        item *it = &e->items[--e->items_len];
        Py_DECREF(it->key_obj);
        Py_DECREF(it->value);
    }
}

static int
encode_dict_items(encoder *e, Py_ssize_t base, Py_ssize_t count)
{
    /* keys: str only, UTF-8 for sorting */
    for (Py_ssize_t i = base; i < base + count; i++) {
        item *it = &e->items[i];
        if (!PyUnicode_Check(it->key_obj)) {
            PyErr_Format(e->st->FormatError,
                         "cannot encode a %.200s object key in canonical JSON",
                         Py_TYPE(it->key_obj)->tp_name);
            return -1;
        }
        it->key = utf8_of(e, it->key_obj, &it->key_len);
        if (it->key == NULL) {
            return -1;
        }
    }
    /* metadata read from canonical JSON is sorted already: check first */
    int sorted = 1;
    for (Py_ssize_t i = base + 1; i < base + count; i++) {
        if (item_cmp(&e->items[i - 1], &e->items[i]) >= 0) {
            sorted = 0;
            break;
        }
    }
    if (!sorted) {
        if (sort_items(e->items + base, count) < 0) {
            return -1;
        }
        for (Py_ssize_t i = base + 1; i < base + count; i++) {
            if (item_cmp(&e->items[i - 1], &e->items[i]) == 0) {
                /* only str subclasses with their own __eq__/__hash__ */
                PyErr_SetString(e->st->FormatError,
                                "duplicate object key in canonical JSON");
                return -1;
            }
        }
    }
    if (put_byte(e, '{') < 0) {
        return -1;
    }
    for (Py_ssize_t i = base; i < base + count; i++) {
        /* e->items may move while a value is encoded: index, not pointer */
        if (i > base && put_byte(e, ',') < 0) {
            return -1;
        }
        if (put_string_utf8(e, e->items[i].key, e->items[i].key_len) < 0 ||
            put_byte(e, ':') < 0) {
            return -1;
        }
        if (encode(e, e->items[i].value) < 0) {
            return -1;
        }
    }
    return put_byte(e, '}');
}

static int
encode_dict(encoder *e, PyObject *dict)
{
    if (enter(e, dict) < 0) {
        return -1;
    }
    Py_ssize_t count = PyDict_GET_SIZE(dict);
    Py_ssize_t base = e->items_len;
    if (count > e->items_cap - base) {
        if (count > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(item) - base) {
            PyErr_NoMemory();
            return -1;
        }
        Py_ssize_t cap = base + count;
        cap += cap / 2 + 16;
        if (cap > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(item)) {
            cap = base + count;
        }
        item *grown = PyMem_Realloc(e->items, (size_t)cap * sizeof(item));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        e->items = grown;
        e->items_cap = cap;
    }
    /* snapshot with references; nothing here can run Python code */
    Py_ssize_t pos = 0, n = 0;
    PyObject *key, *value;
    while (n < count && PyDict_Next(dict, &pos, &key, &value)) {
        item *it = &e->items[base + n++];
        Py_INCREF(key);
        Py_INCREF(value);
        it->key_obj = key;
        it->value = value;
        it->key = NULL;
        it->key_len = 0;
    }
    e->items_len = base + n;
    int rc = encode_dict_items(e, base, n);
    drop_items(e, base);
    if (rc == 0) {
        e->depth--;
    }
    return rc;
}

/* ---- dispatch ----------------------------------------------------------- */

static int
encode(encoder *e, PyObject *obj)
{
    /* exact types first: they are almost all of any document */
    if (PyUnicode_CheckExact(obj)) {
        return put_string(e, obj);
    }
    if (PyLong_CheckExact(obj)) {
        return put_int(e, obj);
    }
    if (PyDict_CheckExact(obj)) {
        return encode_dict(e, obj);
    }
    if (PyList_CheckExact(obj)) {
        return encode_sequence(e, obj, 1);
    }
    if (obj == Py_True) {
        return put_raw(e, "true", 4);
    }
    if (obj == Py_False) {
        return put_raw(e, "false", 5);
    }
    if (obj == Py_None) {
        return put_raw(e, "null", 4);
    }
    /* subclasses, in securesystemslib's isinstance order */
    if (PyUnicode_Check(obj)) {
        return put_string(e, obj);
    }
    if (PyLong_Check(obj)) {
        return put_int(e, obj);
    }
    if (PyTuple_Check(obj)) {
        return encode_sequence(e, obj, 0);
    }
    if (PyList_Check(obj)) {
        return encode_sequence(e, obj, 1);
    }
    if (PyDict_Check(obj)) {
        return encode_dict(e, obj);
    }
    PyErr_Format(e->st->FormatError, "cannot encode %.200s in canonical JSON",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

PyObject *
tufc_canonical_json(PyObject *module, PyObject *obj)
{
    encoder *e = PyMem_Calloc(1, sizeof(encoder));
    if (e == NULL) {
        return PyErr_NoMemory();
    }
    e->st = tufc_get_state(module);
    e->bytes = PyBytes_FromStringAndSize(NULL, INITIAL_CAPACITY);
    if (e->bytes == NULL) {
        PyMem_Free(e);
        return NULL;
    }
    e->pos = PyBytes_AS_STRING(e->bytes);
    e->end = e->pos + INITIAL_CAPACITY;

    PyObject *result = NULL;
    int rc = encode(e, obj);
    drop_items(e, 0);
    PyMem_Free(e->items);
    if (rc == 0) {
        Py_ssize_t used = e->pos - PyBytes_AS_STRING(e->bytes);
        if (_PyBytes_Resize(&e->bytes, used) == 0) {
            result = e->bytes;
            e->bytes = NULL;
        }
    }
    Py_XDECREF(e->bytes);
    PyMem_Free(e);
    return result;
}
