/* Patching a targets role's canonical JSON: the publisher's hot path.
 *
 * A repository engine changes a few targets of a bin that holds ~140 (PyPI:
 * 33 KB); turning the bin into dicts and encoding it again costs more than
 * signing it.  patch_targets merges the changes into the canonical bytes
 * directly: the top-level members are copied, "version" and "expires"
 * replaced, and the "targets" object merged with a sorted list of changes,
 * one pass, with the GIL released.  It also says whether the output holds
 * a raw control character (canonical JSON leaves them raw; the file must
 * then be written with JSON escapes), which costs little while the bytes
 * are in cache and more than the patch from Python.
 *
 * The input is meant to be canonical JSON (load_metadata's "signed" bytes
 * or the engine's own file).  What the merge relies on is checked, and
 * anything else is a FormatError: one object with no whitespace, strings
 * whose only escapes are \" and \\, brackets that match (nesting at most
 * TUFC_MAX_DEPTH), top-level and "targets" keys in strictly increasing
 * order, "_type" "targets", a string "expires", a decimal "version" and an
 * object "targets".  Values left alone are not validated further: patching
 * never makes them worse.  The pure-Python twin (_pure/patch.py) performs
 * the same checks in the same order.
 */
#include "tufc.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *path;      /* UTF-8 */
    Py_ssize_t path_len;
    const char *entry;     /* canonical JSON object, or NULL: remove */
    Py_ssize_t entry_len;
} change;

typedef struct {
    const char *s;
    Py_ssize_t n, pos;
    const char *error;     /* static message once failed */
} scanner;

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} outbuf;

static int
scan_fail(scanner *sc, const char *what)
{
    if (sc->error == NULL) {
        sc->error = what;
    }
    return -1;
}

/* A string at sc->pos: on success *start and *end bound its contents
 * (between the quotes) and sc->pos is past the closing quote. */
static int
scan_string(scanner *sc, Py_ssize_t *start, Py_ssize_t *end)
{
    if (sc->pos >= sc->n || sc->s[sc->pos] != '"') {
        return scan_fail(sc, "expected a string");
    }
    Py_ssize_t i = sc->pos + 1;
    *start = i;
    /* The next '"' at or after i (n: none). Found once and kept until an
       escape consumes it: searching again after every escape is quadratic
       on a long run of backslashes far from the closing quote. */
    Py_ssize_t q = -1;
    for (;;) {
        if (q < i) {
            const char *p = memchr(sc->s + i, '"', (size_t)(sc->n - i));
            q = p == NULL ? sc->n : p - sc->s;
        }
        const char *b = memchr(sc->s + i, '\\', (size_t)(q - i));
        if (b != NULL) {
            Py_ssize_t k = b - sc->s;
            if (k + 1 >= sc->n || (sc->s[k + 1] != '"' && sc->s[k + 1] != '\\')) {
                return scan_fail(sc, "not canonical JSON (an escape other than \\\" or \\\\)");
            }
            i = k + 2;
            continue;
        }
        if (q == sc->n) {
            return scan_fail(sc, "unterminated string");
        }
        *end = q;
        sc->pos = q + 1;
        return 0;
    }
}

/* Bytes that end a number or a literal (not strchr: it matches NUL). */
static int
is_structural(char c)
{
    switch (c) {
    case ',': case ':': case '{': case '}': case '[': case ']': case '"':
    case ' ': case '\t': case '\n': case '\r':
        return 1;
    default:
        return 0;
    }
}

/* Skip one value at sc->pos, recording its span. */
static int
scan_value(scanner *sc, Py_ssize_t *start, Py_ssize_t *end)
{
    char stack[TUFC_MAX_DEPTH];
    int depth = 0;
    *start = sc->pos;
    do {
        if (sc->pos >= sc->n) {
            return scan_fail(sc, "unexpected end of data");
        }
        char c = sc->s[sc->pos];
        Py_ssize_t a, b;
        switch (c) {
        case '"':
            if (scan_string(sc, &a, &b) < 0) {
                return -1;
            }
            break;
        case '{':
        case '[':
            if (depth == TUFC_MAX_DEPTH) {
                return scan_fail(sc, "nested too deeply");
            }
            stack[depth++] = c == '{' ? '}' : ']';
            sc->pos++;
            break;
        case '}':
        case ']':
            if (depth == 0 || stack[depth - 1] != c) {
                return scan_fail(sc, "unbalanced brackets");
            }
            depth--;
            sc->pos++;
            break;
        case ',':
        case ':':
            if (depth == 0) {
                return scan_fail(sc, "expected a value");
            }
            sc->pos++;
            break;
        case ' ': case '\t': case '\n': case '\r':
            return scan_fail(sc, "not canonical JSON (whitespace)");
        default: {
            /* a number or a literal: up to the next structural byte */
            Py_ssize_t k = sc->pos;
            while (k < sc->n && !is_structural(sc->s[k])) {
                k++;
            }
            sc->pos = k;
        }
        }
    } while (depth > 0);
    *end = sc->pos;
    return 0;
}

/* Compare a[0:an] with b[0:bn] by their unescaped bytes; a side whose
 * flag is set is an escaped key (canonical: only \" and \\, and the
 * scanner checked that a byte follows each backslash), the other raw. */
static int
cmp_keys(const char *a, Py_ssize_t an, int a_escaped,
         const char *b, Py_ssize_t bn, int b_escaped)
{
    Py_ssize_t i = 0, j = 0;
    while (i < an && j < bn) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[j];
        if (a_escaped && x == '\\') {
            x = (unsigned char)a[++i];
        }
        if (b_escaped && y == '\\') {
            y = (unsigned char)b[++j];
        }
        if (x != y) {
            return x < y ? -1 : 1;
        }
        i++;
        j++;
    }
    return (i < an) - (j < bn);
}

static int
key_is(const scanner *sc, Py_ssize_t start, Py_ssize_t end, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(end - start) == n && memcmp(sc->s + start, word, n) == 0;
}

/* The output never outgrows the bound computed up front. */
static void
put(outbuf *o, const char *s, Py_ssize_t n)
{
    memcpy(o->data + o->len, s, (size_t)n);
    o->len += n;
}

static void
put_byte(outbuf *o, char c)
{
    o->data[o->len++] = c;
}

/* A canonical JSON string of the raw bytes s[0:n]. */
static void
put_string(outbuf *o, const char *s, Py_ssize_t n)
{
    put_byte(o, '"');
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            put_byte(o, '\\');
        }
        put_byte(o, s[i]);
    }
    put_byte(o, '"');
}

/* One key of an object: sc->pos at its opening quote; checks that it sorts
 * after the previous key. */
static int
scan_key(scanner *sc, Py_ssize_t *prev_start, Py_ssize_t *prev_end,
         Py_ssize_t *start, Py_ssize_t *end)
{
    if (scan_string(sc, start, end) < 0) {
        return -1;
    }
    if (*prev_start >= 0 &&
        cmp_keys(sc->s + *prev_start, *prev_end - *prev_start, 1,
                 sc->s + *start, *end - *start, 1) >= 0) {
        return scan_fail(sc, "not canonical JSON (keys out of order or repeated)");
    }
    *prev_start = *start;
    *prev_end = *end;
    if (sc->pos >= sc->n || sc->s[sc->pos] != ':') {
        return scan_fail(sc, "expected ':'");
    }
    sc->pos++;
    return 0;
}

/* After a member: ',' (another follows: 1) or the closing '}' (0). */
static int
scan_next(scanner *sc)
{
    if (sc->pos < sc->n && sc->s[sc->pos] == ',') {
        sc->pos++;
        return 1;
    }
    if (sc->pos < sc->n && sc->s[sc->pos] == '}') {
        sc->pos++;
        return 0;
    }
    return scan_fail(sc, "expected ',' or '}'");
}

/* Merge the "targets" object at sc->pos with the changes. */
static int
merge_targets(scanner *sc, outbuf *o, const change *ch, Py_ssize_t nch,
              unsigned char *absent)
{
    if (sc->pos >= sc->n || sc->s[sc->pos] != '{') {
        return scan_fail(sc, "targets: expected an object");
    }
    sc->pos++;
    put_byte(o, '{');
    int more = 1, first = 1;
    Py_ssize_t prev_start = -1, prev_end = -1, j = 0;
    if (sc->pos < sc->n && sc->s[sc->pos] == '}') {
        sc->pos++;
        more = 0;
    }
    for (;;) {
        Py_ssize_t ks = 0, ke = 0, vs = 0, ve = 0;
        if (more) {
            if (scan_key(sc, &prev_start, &prev_end, &ks, &ke) < 0 ||
                scan_value(sc, &vs, &ve) < 0) {
                return -1;
            }
        }
        /* changes that sort before this entry (all remaining ones at the end) */
        while (j < nch && (!more || cmp_keys(sc->s + ks, ke - ks, 1, ch[j].path,
                                             ch[j].path_len, 0) > 0)) {
            absent[j] = 1;
            if (ch[j].entry != NULL) {
                if (!first) {
                    put_byte(o, ',');
                }
                first = 0;
                put_string(o, ch[j].path, ch[j].path_len);
                put_byte(o, ':');
                put(o, ch[j].entry, ch[j].entry_len);
            }
            j++;
        }
        if (!more) {
            break;
        }
        const char *value = sc->s + vs;
        Py_ssize_t value_len = ve - vs;
        if (j < nch && cmp_keys(sc->s + ks, ke - ks, 1, ch[j].path, ch[j].path_len, 0) == 0) {
            value = ch[j].entry;  /* replaced, or removed when NULL */
            value_len = ch[j].entry_len;
            j++;
        }
        if (value != NULL) {
            if (!first) {
                put_byte(o, ',');
            }
            first = 0;
            put(o, sc->s + ks - 1, ke - ks + 2);  /* the key, quotes included */
            put_byte(o, ':');
            put(o, value, value_len);
        }
        more = scan_next(sc);
        if (more < 0) {
            return -1;
        }
    }
    put_byte(o, '}');
    return 0;
}

/* The whole patch, without the GIL: the inputs are immutable bytes held by
 * the caller. */
static int
patch(scanner *sc, outbuf *o, const char *version, const char *expires,
      Py_ssize_t expires_len, const change *ch, Py_ssize_t nch, unsigned char *absent)
{
    if (sc->n == 0 || sc->s[0] != '{') {
        return scan_fail(sc, "expected an object");
    }
    sc->pos = 1;
    put_byte(o, '{');
    int seen_type = 0, seen_expires = 0, seen_version = 0, seen_targets = 0;
    Py_ssize_t prev_start = -1, prev_end = -1;
    int more = 1;
    if (sc->n > 1 && sc->s[1] == '}') {
        sc->pos = 2;
        more = 0;
    }
    while (more) {
        Py_ssize_t ks, ke, vs, ve;
        if (scan_key(sc, &prev_start, &prev_end, &ks, &ke) < 0) {
            return -1;
        }
        if (o->len > 1) {
            put_byte(o, ',');
        }
        put(o, sc->s + ks - 1, ke - ks + 3);  /* "key": */
        if (key_is(sc, ks, ke, "targets")) {
            seen_targets = 1;
            if (merge_targets(sc, o, ch, nch, absent) < 0) {
                return -1;
            }
        }
        else {
            if (scan_value(sc, &vs, &ve) < 0) {
                return -1;
            }
            if (key_is(sc, ks, ke, "expires")) {
                if (sc->s[vs] != '"') {
                    return scan_fail(sc, "expires: expected a string");
                }
                seen_expires = 1;
                put_string(o, expires, expires_len);
            }
            else if (key_is(sc, ks, ke, "version")) {
                int ok = ve > vs && sc->s[vs] >= '1' && sc->s[vs] <= '9';
                for (Py_ssize_t k = vs; ok && k < ve; k++) {
                    ok = sc->s[k] >= '0' && sc->s[k] <= '9';
                }
                if (!ok) {
                    return scan_fail(sc, "version: expected an integer >= 1");
                }
                seen_version = 1;
                put(o, version, (Py_ssize_t)strlen(version));
            }
            else {
                if (key_is(sc, ks, ke, "_type")) {
                    if (!(ve - vs == 9 && memcmp(sc->s + vs, "\"targets\"", 9) == 0)) {
                        return scan_fail(sc, "_type: not a targets role");
                    }
                    seen_type = 1;
                }
                put(o, sc->s + vs, ve - vs);
            }
        }
        more = scan_next(sc);
        if (more < 0) {
            return -1;
        }
    }
    if (sc->pos != sc->n) {
        return scan_fail(sc, "extra data after the object");
    }
    if (!seen_type) {
        return scan_fail(sc, "missing field '_type'");
    }
    if (!seen_expires) {
        return scan_fail(sc, "missing field 'expires'");
    }
    if (!seen_version) {
        return scan_fail(sc, "missing field 'version'");
    }
    if (!seen_targets) {
        return scan_fail(sc, "missing field 'targets'");
    }
    put_byte(o, '}');
    return 0;
}

/* The changes as C views, checked: a list of (str, bytes or None) tuples,
 * paths strictly increasing by UTF-8 bytes.  *extra is the most the
 * changes can add to the output. */
static change *
collect_changes(PyObject *seq, Py_ssize_t *n, Py_ssize_t *extra)
{
    Py_ssize_t count = PyTuple_GET_SIZE(seq);
    change *ch = PyMem_Calloc(count > 0 ? (size_t)count : 1, sizeof(change));
    if (ch == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(seq, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError, "changes must be (path, entry) tuples");
            goto error;
        }
        PyObject *path = PyTuple_GET_ITEM(item, 0), *entry = PyTuple_GET_ITEM(item, 1);
        if (!PyUnicode_Check(path)) {
            PyErr_SetString(PyExc_TypeError, "a change's path must be a str");
            goto error;
        }
        ch[i].path = PyUnicode_AsUTF8AndSize(path, &ch[i].path_len);
        if (ch[i].path == NULL) {
            goto error;
        }
        if (entry != Py_None) {
            if (!PyBytes_CheckExact(entry)) {
                PyErr_SetString(PyExc_TypeError, "a change's entry must be bytes or None");
                goto error;
            }
            Py_ssize_t len = PyBytes_GET_SIZE(entry);
            const char *s = PyBytes_AS_STRING(entry);
            if (len < 2 || s[0] != '{' || s[len - 1] != '}') {
                PyErr_SetString(PyExc_ValueError,
                                "a change's entry must be the canonical JSON of an object");
                goto error;
            }
            ch[i].entry = s;
            ch[i].entry_len = len;
        }
        if (i > 0) {
            Py_ssize_t a = ch[i - 1].path_len, b = ch[i].path_len;
            int c = memcmp(ch[i - 1].path, ch[i].path, (size_t)(a < b ? a : b));
            if (c > 0 || (c == 0 && a >= b)) {
                PyErr_SetString(PyExc_ValueError,
                                "changes must be sorted by path, each path once");
                goto error;
            }
        }
        /* a key doubles at most when escaped; quotes, ':' and ',' */
        Py_ssize_t grow = 2 * ch[i].path_len + ch[i].entry_len + 4;
        if (total > PY_SSIZE_T_MAX / 2 - grow) {
            PyErr_NoMemory();
            goto error;
        }
        total += grow;
    }
    *n = count;
    *extra = total;
    return ch;
error:
    PyMem_Free(ch);
    return NULL;
}

PyObject *
tufc_patch_targets(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    tufc_state *st = tufc_get_state(module);
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "patch_targets expected 4 arguments, got %zd", nargs);
        return NULL;
    }
    PyObject *signed_obj = args[0], *version_obj = args[1], *expires_obj = args[2];
    if (!PyBytes_CheckExact(signed_obj)) {
        PyErr_SetString(PyExc_TypeError, "signed must be bytes");
        return NULL;
    }
    if (!PyLong_Check(version_obj) || PyBool_Check(version_obj)) {
        PyErr_SetString(PyExc_TypeError, "version must be an int");
        return NULL;
    }
    long long version = PyLong_AsLongLong(version_obj);
    if (version == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        version = 0;
    }
    if (version < 1) {
        PyErr_SetString(PyExc_ValueError, "version must be 1 to 2**63 - 1");
        return NULL;
    }
    if (!PyUnicode_Check(expires_obj)) {
        PyErr_SetString(PyExc_TypeError, "expires must be a str");
        return NULL;
    }
    Py_ssize_t expires_len;
    const char *expires = PyUnicode_AsUTF8AndSize(expires_obj, &expires_len);
    if (expires == NULL) {
        return NULL;
    }
    /* a tuple of the caller's changes: nothing it holds can change while
     * the GIL is released */
    PyObject *seq = PySequence_Tuple(args[3]);
    if (seq == NULL) {
        return NULL;
    }
    PyObject *out = NULL, *absent_list = NULL, *result = NULL;
    unsigned char *absent = NULL;
    Py_ssize_t nch = 0, extra = 0;
    change *ch = collect_changes(seq, &nch, &extra);
    if (ch == NULL) {
        goto done;
    }
    char version_text[24];
    snprintf(version_text, sizeof(version_text), "%lld", version);
    Py_ssize_t n = PyBytes_GET_SIZE(signed_obj);
    /* the input, a new version (20 digits) and expires (escaped), the changes */
    Py_ssize_t bound = n + 24 + 2 * expires_len + 2;
    if (bound < n || extra > PY_SSIZE_T_MAX - bound) {
        PyErr_NoMemory();
        goto done;
    }
    bound += extra;
    out = PyBytes_FromStringAndSize(NULL, bound);
    absent = PyMem_Calloc(nch > 0 ? (size_t)nch : 1, 1);
    if (out == NULL || absent == NULL) {
        if (absent == NULL) {
            PyErr_NoMemory();
        }
        goto done;
    }
    scanner sc = {PyBytes_AS_STRING(signed_obj), n, 0, NULL};
    outbuf o = {PyBytes_AS_STRING(out), 0, bound};
    int r, control = 0;
    Py_BEGIN_ALLOW_THREADS
    r = patch(&sc, &o, version_text, expires, expires_len, ch, nch, absent);
    for (Py_ssize_t i = 0; r == 0 && i < o.len; i++) {
        control |= (unsigned char)o.data[i] < 0x20;
    }
    Py_END_ALLOW_THREADS
    if (r < 0) {
        PyErr_Format(st->FormatError, "signed: %s at byte %zd", sc.error, sc.pos);
        goto done;
    }
    if (_PyBytes_Resize(&out, o.len) < 0) {
        goto done;  /* out was freed and set to NULL */
    }
    absent_list = PyList_New(0);
    if (absent_list == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < nch; i++) {
        if (absent[i]) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(absent_list, index) < 0) {
                Py_XDECREF(index);
                goto done;
            }
            Py_DECREF(index);
        }
    }
    result = Py_BuildValue("(OOO)", out, absent_list, control ? Py_True : Py_False);
done:
    Py_XDECREF(absent_list);
    Py_XDECREF(out);
    PyMem_Free(absent);
    PyMem_Free(ch);
    Py_DECREF(seq);
    return result;
}
