/* Succinct hash bins (TAP 15): which target paths are not in their bin.
 *
 * A repository audit checks that each of PyPI's 2.27 million target paths
 * sits in the bin its SHA-256 names; one hashlib call per path from Python
 * costs more than parsing the bin.  misplaced_targets reads the names of a
 * loaded EntryMap in place and hashes them with the GIL released (the map
 * is immutable); any other iterable of str takes the slow path.
 *
 * SHA-256 comes from OpenSSL's EVP (the CPU's SHA extensions), one context
 * initialised once and reused for every path: re-fetching the digest per
 * path cost more than hashing (0.4 against 0.12 us a path; libsodium's
 * portable SHA-256 0.26 us).
 */
#include "tufc.h"

#include <stdint.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

/* The bin of UTF-8 path s: the first bit_length bits of its SHA-256. */
static int
bin_of(EVP_MD_CTX *ctx, const char *s, Py_ssize_t n, int bit_length,
       uint32_t *out)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    /* a NULL type reuses ctx's digest: no fetch per path */
    if (!EVP_DigestInit_ex(ctx, NULL, NULL) ||
        !EVP_DigestUpdate(ctx, s, (size_t)n) ||
        !EVP_DigestFinal_ex(ctx, digest, NULL)) {
        return -1;
    }
    uint32_t head = ((uint32_t)digest[0] << 24) | ((uint32_t)digest[1] << 16) |
                    ((uint32_t)digest[2] << 8) | (uint32_t)digest[3];
    *out = head >> (32 - bit_length);  /* 1 <= bit_length <= 32 */
    return 0;
}

static int
parse_args(PyObject *const *args, Py_ssize_t nargs, int *bit_length,
           uint32_t *index)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "misplaced_targets expected 3 arguments, got %zd", nargs);
        return -1;
    }
    if (!PyLong_Check(args[1]) || !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "bit_length and index must be int");
        return -1;
    }
    long bits = PyLong_AsLong(args[1]);
    if (bits == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        bits = 0;
    }
    if (bits < 1 || bits > 32) {
        PyErr_SetString(PyExc_ValueError, "bit_length must be 1 to 32");
        return -1;
    }
    long long idx = PyLong_AsLongLong(args[2]);
    if (idx == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        idx = -1;
    }
    if (idx < 0 || (unsigned long long)idx >= (1ULL << bits)) {
        PyErr_SetString(PyExc_ValueError,
                        "index must be 0 <= index < 2 ** bit_length");
        return -1;
    }
    *bit_length = (int)bits;
    *index = (uint32_t)idx;
    return 0;
}

/* Fast path: an EntryMap's names, hashed without the GIL. */
static PyObject *
misplaced_in_map(PyObject *map, Py_ssize_t n, EVP_MD_CTX *ctx,
                 int bit_length, uint32_t index)
{
    Py_ssize_t *bad = PyMem_Malloc(n > 0 ? (size_t)n * sizeof(Py_ssize_t) : 1);
    if (bad == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t nbad = 0;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        const char *s = tufc_entrymap_key(map, i, &len);
        uint32_t b;
        if (bin_of(ctx, s, len, bit_length, &b) < 0) {
            failed = 1;
            break;
        }
        if (b != index) {
            bad[nbad++] = i;
        }
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyMem_Free(bad);
        ERR_clear_error();
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL SHA-256 failed");
        return NULL;
    }
    PyObject *out = PyList_New(nbad);
    if (out == NULL) {
        PyMem_Free(bad);
        return NULL;
    }
    for (Py_ssize_t j = 0; j < nbad; j++) {
        Py_ssize_t len;
        const char *s = tufc_entrymap_key(map, bad[j], &len);
        PyObject *name = PyUnicode_DecodeUTF8(s, len, NULL);
        if (name == NULL) {
            PyMem_Free(bad);
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, j, name);
    }
    PyMem_Free(bad);
    return out;
}

/* Slow path: any iterable of str, in its own order. */
static PyObject *
misplaced_in_iterable(tufc_state *st, PyObject *iterable, EVP_MD_CTX *ctx,
                      int bit_length, uint32_t index)
{
    PyObject *it = PyObject_GetIter(iterable);
    if (it == NULL) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        Py_DECREF(it);
        return NULL;
    }
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        if (!PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError, "target paths must be str, not %s",
                         Py_TYPE(item)->tp_name);
            goto fail;
        }
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(item, &len);
        if (s == NULL) {
            PyErr_Clear();
            PyErr_Format(st->FormatError,
                         "target path %R is not valid UTF-8", item);
            goto fail;
        }
        uint32_t b;
        if (bin_of(ctx, s, len, bit_length, &b) < 0) {
            ERR_clear_error();
            PyErr_SetString(PyExc_RuntimeError, "OpenSSL SHA-256 failed");
            goto fail;
        }
        if (b != index && PyList_Append(out, item) < 0) {
            goto fail;
        }
        Py_DECREF(item);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
fail:
    Py_DECREF(item);
    Py_DECREF(it);
    Py_DECREF(out);
    return NULL;
}

PyObject *
tufc_misplaced_targets(PyObject *module, PyObject *const *args,
                       Py_ssize_t nargs)
{
    tufc_state *st = tufc_get_state(module);
    int bit_length;
    uint32_t index;
    if (parse_args(args, nargs, &bit_length, &index) < 0) {
        return NULL;
    }
    const EVP_MD *md = EVP_sha256();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (md == NULL || ctx == NULL || !EVP_DigestInit_ex(ctx, md, NULL)) {
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        return PyErr_NoMemory();
    }
    Py_ssize_t n = tufc_entrymap_size(st, args[0]);
    PyObject *out = n >= 0
        ? misplaced_in_map(args[0], n, ctx, bit_length, index)
        : misplaced_in_iterable(st, args[0], ctx, bit_length, index);
    EVP_MD_CTX_free(ctx);
    return out;
}
