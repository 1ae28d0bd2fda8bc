/* Streaming hashes: the Hasher type and hash_file.
 *
 * SHA-2 comes from OpenSSL's EVP (it uses the CPU's SHA extensions;
 * libsodium's SHA-256 is several times slower), BLAKE2b from libsodium's
 * crypto_generichash (32- or 64-byte output, no key, so blake2b-256 equals
 * hashlib.blake2b(digest_size=32)).  All requested algorithms are fed from
 * one pass over the data, slice by slice, so each slice is still in cache
 * for the next algorithm; a large chunk with several algorithms is shared
 * with one helper thread (two cores, half the wall time).
 *
 * Large chunks are hashed with the GIL released.  A Hasher's contexts are
 * then guarded by its own lock, which is only ever waited for with the GIL
 * released and never held while Python code can run (no object is created
 * under it), so it cannot deadlock.
 */
#include "tufc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#define GIL_THRESHOLD (64 * 1024)   /* release the GIL above this */
#define SLICE (64 * 1024)           /* bytes per algorithm in turn */
#define FILE_CHUNK (1024 * 1024)    /* hash_file read size */
#define MAX_DIGEST 64
#define PARALLEL_MIN (256 * 1024)   /* split algorithms across 2 threads */
#define HELPER_STACK (256 * 1024)

/* ---- the algorithms ----------------------------------------------------- */

enum { SHA256, SHA384, SHA512, BLAKE2B_256, BLAKE2B, N_ALGS };

typedef struct {
    const char *name;
    size_t size;      /* digest bytes */
} alg_info;

static const alg_info ALGS[N_ALGS] = {
    [SHA256] = {"sha256", 32},
    [SHA384] = {"sha384", 48},
    [SHA512] = {"sha512", 64},
    [BLAKE2B_256] = {"blake2b-256", 32},
    [BLAKE2B] = {"blake2b", 64},
};

static int
is_evp(int alg)
{
    return alg <= SHA512;
}

static const EVP_MD *
evp_md(int alg)
{
    switch (alg) {
    case SHA256: return EVP_sha256();
    case SHA384: return EVP_sha384();
    default: return EVP_sha512();
    }
}

/* Index of a known algorithm name, or -1. */
static int
alg_index(PyObject *name)
{
    for (int i = 0; i < N_ALGS; i++) {
        if (PyUnicode_CompareWithASCIIString(name, ALGS[i].name) == 0) {
            return i;
        }
    }
    return -1;
}

/* ---- a set of running hashes (no Python objects inside) ----------------- */

typedef struct {
    EVP_MD_CTX *evp[N_ALGS];                 /* SHA-2 slots */
    crypto_generichash_state *blake[N_ALGS]; /* BLAKE2b slots, 64-aligned */
    int order[N_ALGS];                       /* requested, first seen first */
    int count;
} hash_set;

static void
set_openssl_error(const char *what)
{
    unsigned long code = ERR_get_error();
    char reason[256] = "";
    if (code != 0) {
        ERR_error_string_n(code, reason, sizeof(reason));
    }
    ERR_clear_error();
    PyErr_Format(PyExc_RuntimeError, "%s failed: %s", what,
                 reason[0] ? reason : "unknown OpenSSL error");
}

static void
hash_set_free(hash_set *hs)
{
    for (int i = 0; i < N_ALGS; i++) {
        EVP_MD_CTX_free(hs->evp[i]);
        hs->evp[i] = NULL;
        if (hs->blake[i] != NULL) {
            sodium_memzero(hs->blake[i], sizeof(crypto_generichash_state));
            free(hs->blake[i]);
            hs->blake[i] = NULL;
        }
    }
    hs->count = 0;
}

static int
hash_set_start(hash_set *hs, int alg)
{
    if (is_evp(alg)) {
        hs->evp[alg] = EVP_MD_CTX_new();
        if (hs->evp[alg] == NULL ||
            !EVP_DigestInit_ex(hs->evp[alg], evp_md(alg), NULL)) {
            set_openssl_error("EVP_DigestInit_ex");
            return -1;
        }
        return 0;
    }
    /* libsodium declares the state 64-byte aligned */
    hs->blake[alg] = aligned_alloc(64, sizeof(crypto_generichash_state));
    if (hs->blake[alg] == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (crypto_generichash_init(hs->blake[alg], NULL, 0, ALGS[alg].size) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "crypto_generichash_init failed");
        return -1;
    }
    return 0;
}

/* Parse a sequence of algorithm names and start each once. */
static int
hash_set_init(tufc_state *st, hash_set *hs, PyObject *algorithms)
{
    memset(hs, 0, sizeof(*hs));
    if (PyUnicode_Check(algorithms) || PyBytes_Check(algorithms)) {
        PyErr_SetString(PyExc_TypeError,
                        "algorithms must be a sequence of names, "
                        "not a single string");
        return -1;
    }
    PyObject *it = PyObject_GetIter(algorithms);
    if (it == NULL) {
        return -1;
    }
    PyObject *name;
    while ((name = PyIter_Next(it)) != NULL) {
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError,
                         "hash algorithm names must be str, not %.200s",
                         Py_TYPE(name)->tp_name);
            goto fail;
        }
        int alg = alg_index(name);
        if (alg < 0) {
            PyErr_Format(st->UnsupportedAlgorithmError,
                         "unsupported hash algorithm %R", name);
            goto fail;
        }
        Py_DECREF(name);
        if (hs->evp[alg] != NULL || hs->blake[alg] != NULL) {
            continue;   /* duplicates are hashed once */
        }
        if (hash_set_start(hs, alg) < 0) {
            Py_DECREF(it);
            hash_set_free(hs);
            return -1;
        }
        hs->order[hs->count++] = alg;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        hash_set_free(hs);
        return -1;
    }
    if (hs->count == 0) {
        PyErr_SetString(st->UnsupportedAlgorithmError,
                        "no hash algorithm requested");
        return -1;
    }
    return 0;
fail:
    Py_DECREF(name);
    Py_DECREF(it);
    hash_set_free(hs);
    return -1;
}

/* Feed data to the algorithms in mask (bit per algorithm), slice by
 * slice; safe without the GIL.  0 on success. */
static int
hash_set_update_some(hash_set *hs, const unsigned char *data, size_t len,
                     unsigned mask)
{
    while (len > 0) {
        size_t n = len < SLICE ? len : SLICE;
        for (int i = 0; i < hs->count; i++) {
            int alg = hs->order[i];
            if (!(mask & (1u << alg))) {
                continue;
            }
            if (is_evp(alg)) {
                if (!EVP_DigestUpdate(hs->evp[alg], data, n)) {
                    return -1;
                }
            }
            else if (crypto_generichash_update(hs->blake[alg], data,
                                               (unsigned long long)n) != 0) {
                return -1;
            }
        }
        data += n;
        len -= n;
    }
    return 0;
}

typedef struct {
    hash_set *hs;
    const unsigned char *data;
    size_t len;
    unsigned mask;
    int rc;
} hash_job;

static void *
hash_job_run(void *arg)
{
    hash_job *job = arg;
    job->rc = hash_set_update_some(job->hs, job->data, job->len, job->mask);
    return NULL;
}

/* Feed data to every algorithm; safe without the GIL.  0 on success.
 *
 * A large chunk (only ever hashed with the GIL released) with several
 * algorithms is shared with a helper thread that takes the costliest
 * algorithm: each thread owns whole hash contexts, and the work runs on two
 * cores.  If no thread can be started, this thread does it all. */
static int
hash_set_update(hash_set *hs, const unsigned char *data, size_t len)
{
    /* relative cost per byte, measured: SHA-256 has CPU instructions */
    static const int COST[N_ALGS] = {
        [SHA256] = 6, [SHA384] = 12, [SHA512] = 12,
        [BLAKE2B_256] = 10, [BLAKE2B] = 10,
    };
    unsigned all = 0;
    int costliest = hs->order[0];
    for (int i = 0; i < hs->count; i++) {
        int alg = hs->order[i];
        all |= 1u << alg;
        if (COST[alg] > COST[costliest]) {
            costliest = alg;
        }
    }
    if (hs->count < 2 || len < PARALLEL_MIN) {
        return hash_set_update_some(hs, data, len, all);
    }
    hash_job job = {hs, data, len, 1u << costliest, 0};
    pthread_t helper;
    pthread_attr_t attr;
    int started = pthread_attr_init(&attr) == 0;
    if (started) {
        (void)pthread_attr_setstacksize(&attr, HELPER_STACK);
        started = pthread_create(&helper, &attr, hash_job_run, &job) == 0;
        pthread_attr_destroy(&attr);
    }
    int rc = hash_set_update_some(hs, data, len, all & ~job.mask);
    if (started) {
        pthread_join(helper, NULL);
    }
    else {
        hash_job_run(&job);
    }
    return rc < 0 || job.rc < 0 ? -1 : 0;
}

/* Digests of the data so far, without finishing the running hashes. */
static int
hash_set_digests(hash_set *hs, unsigned char out[N_ALGS][MAX_DIGEST])
{
    for (int i = 0; i < hs->count; i++) {
        int alg = hs->order[i];
        if (is_evp(alg)) {
            EVP_MD_CTX *copy = EVP_MD_CTX_new();
            int ok = copy != NULL &&
                     EVP_MD_CTX_copy_ex(copy, hs->evp[alg]) &&
                     EVP_DigestFinal_ex(copy, out[alg], NULL);
            EVP_MD_CTX_free(copy);
            if (!ok) {
                return -1;
            }
        }
        else {
            crypto_generichash_state copy;
            memcpy(&copy, hs->blake[alg], sizeof(copy));
            int rc = crypto_generichash_final(&copy, out[alg],
                                              ALGS[alg].size);
            sodium_memzero(&copy, sizeof(copy));
            if (rc != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static PyObject *
hex_of(const unsigned char *digest, size_t size)
{
    static const char HEX[] = "0123456789abcdef";
    char text[2 * MAX_DIGEST];
    for (size_t i = 0; i < size; i++) {
        text[2 * i] = HEX[digest[i] >> 4];
        text[2 * i + 1] = HEX[digest[i] & 15];
    }
    return PyUnicode_FromStringAndSize(text, (Py_ssize_t)(2 * size));
}

static PyObject *
digests_dict(hash_set *hs, unsigned char out[N_ALGS][MAX_DIGEST])
{
    PyObject *result = PyDict_New();
    if (result == NULL) {
        return NULL;
    }
    for (int i = 0; i < hs->count; i++) {
        int alg = hs->order[i];
        PyObject *hex = hex_of(out[alg], ALGS[alg].size);
        if (hex == NULL ||
            PyDict_SetItemString(result, ALGS[alg].name, hex) < 0) {
            Py_XDECREF(hex);
            Py_DECREF(result);
            return NULL;
        }
        Py_DECREF(hex);
    }
    return result;
}

/* ---- Hasher ------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    hash_set hs;
    unsigned long long length;
    unsigned long long max_length;   /* ULLONG_MAX: no limit */
    PyThread_type_lock lock;
} HasherObject;

/* Take the Hasher's lock, waiting for it only with the GIL released. */
static void
hasher_lock(HasherObject *self)
{
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
}

static int
parse_max_length(PyObject *obj, unsigned long long *out)
{
    if (obj == NULL || obj == Py_None) {
        *out = ULLONG_MAX;
        return 0;
    }
    if (PyBool_Check(obj) || !PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "max_length must be an int or None, "
                     "not %.200s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow < 0 || (!overflow && v < 0)) {
        PyErr_SetString(PyExc_ValueError, "max_length must not be negative");
        return -1;
    }
    *out = overflow ? ULLONG_MAX : (unsigned long long)v;
    return 0;
}

static PyObject *
hasher_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"algorithms", "max_length", NULL};
    PyObject *algorithms, *max_length = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:Hasher", kwlist,
                                     &algorithms, &max_length)) {
        return NULL;
    }
    tufc_state *st = tufc_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    unsigned long long limit;
    if (parse_max_length(max_length, &limit) < 0) {
        return NULL;
    }
    hash_set hs;
    if (hash_set_init(st, &hs, algorithms) < 0) {
        return NULL;
    }
    HasherObject *self = (HasherObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        hash_set_free(&hs);
        return NULL;
    }
    self->hs = hs;
    self->length = 0;
    self->max_length = limit;
    self->lock = PyThread_allocate_lock();
    if (self->lock == NULL) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_MemoryError, "cannot allocate a lock");
        return NULL;
    }
    return (PyObject *)self;
}

static void
hasher_dealloc(HasherObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    hash_set_free(&self->hs);
    if (self->lock != NULL) {
        PyThread_free_lock(self->lock);
    }
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

PyDoc_STRVAR(hasher_update_doc,
"update(chunk, /)\n\n"
"Feed a bytes-like chunk to every algorithm. Raises\n"
"DownloadLengthMismatchError, without hashing the chunk, when the total\n"
"would exceed max_length.");

static PyObject *
hasher_update(HasherObject *self, PyObject *chunk)
{
    tufc_state *st = tufc_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    if (PyUnicode_Check(chunk)) {
        PyErr_SetString(PyExc_TypeError,
                        "strings must be encoded before hashing");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    size_t len = (size_t)view.len;
    hasher_lock(self);
    if (len > self->max_length - self->length) {
        unsigned long long limit = self->max_length;
        PyThread_release_lock(self->lock);
        PyBuffer_Release(&view);
        PyErr_Format(st->DownloadLengthMismatchError,
                     "more data than the maximum of %llu bytes", limit);
        return NULL;
    }
    int rc;
    if (len >= GIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        rc = hash_set_update(&self->hs, view.buf, len);
        Py_END_ALLOW_THREADS
    }
    else {
        rc = hash_set_update(&self->hs, view.buf, len);
    }
    if (rc == 0) {
        self->length += len;
    }
    PyThread_release_lock(self->lock);
    PyBuffer_Release(&view);
    if (rc < 0) {
        set_openssl_error("hash update");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Digests so far, computed under the lock into out. */
static int
hasher_digests(HasherObject *self, unsigned char out[N_ALGS][MAX_DIGEST])
{
    hasher_lock(self);
    int rc = hash_set_digests(&self->hs, out);
    PyThread_release_lock(self->lock);
    if (rc < 0) {
        set_openssl_error("hash finalization");
    }
    return rc;
}

PyDoc_STRVAR(hasher_hexdigests_doc,
"hexdigests() -> dict\n\n"
"Hex digest of the data so far for each algorithm; hashing can go on.");

static PyObject *
hasher_hexdigests(HasherObject *self, PyObject *Py_UNUSED(ignored))
{
    unsigned char out[N_ALGS][MAX_DIGEST];
    if (hasher_digests(self, out) < 0) {
        return NULL;
    }
    return digests_dict(&self->hs, out);
}

/* Decode an expected digest: exactly 2*size lowercase hex characters. */
static int
parse_expected(PyObject *value, size_t size, unsigned char *out)
{
    if (!PyUnicode_Check(value)) {
        return -1;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(value, &n);
    if (s == NULL) {
        PyErr_Clear();
        return -1;
    }
    if ((size_t)n != 2 * size) {
        return -1;
    }
    for (size_t i = 0; i < 2 * size; i++) {
        char c = s[i];
        int v;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        }
        else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        }
        else {
            return -1;
        }
        if (i % 2 == 0) {
            out[i / 2] = (unsigned char)(v << 4);
        }
        else {
            out[i / 2] |= (unsigned char)v;
        }
    }
    return 0;
}

PyDoc_STRVAR(hasher_verify_doc,
"verify(length, hashes, /)\n\n"
"Raise LengthOrHashMismatchError unless the data so far has this length\n"
"and every digest in hashes (algorithm name -> hex) matches; every listed\n"
"algorithm must have been requested.  Digests are compared in constant\n"
"time.");

static PyObject *
hasher_verify(HasherObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    tufc_state *st = tufc_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "verify() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *length = args[0], *hashes = args[1];
    if (PyBool_Check(length) || !PyLong_Check(length)) {
        PyErr_Format(PyExc_TypeError, "length must be an int, not %.200s",
                     Py_TYPE(length)->tp_name);
        return NULL;
    }
    PyObject *items_method = PyObject_GetAttrString(hashes, "items");
    if (items_method == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "hashes must be a mapping, "
                         "not %.200s", Py_TYPE(hashes)->tp_name);
        }
        return NULL;
    }
    Py_DECREF(items_method);

    int overflow;
    long long want = PyLong_AsLongLongAndOverflow(length, &overflow);
    if (want == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow || want < 0 || (unsigned long long)want != self->length) {
        PyErr_Format(st->LengthOrHashMismatchError,
                     "length mismatch: got %llu bytes, expected %R",
                     self->length, length);
        return NULL;
    }

    PyObject *items = PyMapping_Items(hashes);
    if (items == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(items);
    int *algs = PyMem_Malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    unsigned char (*expected)[MAX_DIGEST] =
        PyMem_Malloc(MAX_DIGEST * (size_t)(n > 0 ? n : 1));
    PyObject *result = NULL;
    if (algs == NULL || expected == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError,
                            "hashes.items() must give (name, digest) pairs");
            goto done;
        }
        PyObject *name = PyTuple_GET_ITEM(pair, 0);
        PyObject *value = PyTuple_GET_ITEM(pair, 1);
        int alg = PyUnicode_Check(name) ? alg_index(name) : -1;
        if (alg < 0) {
            PyErr_Format(st->LengthOrHashMismatchError,
                         "unsupported hash algorithm %R", name);
            goto done;
        }
        if (self->hs.evp[alg] == NULL && self->hs.blake[alg] == NULL) {
            PyErr_Format(st->LengthOrHashMismatchError,
                         "hash algorithm %R was not computed", name);
            goto done;
        }
        if (parse_expected(value, ALGS[alg].size, expected[i]) < 0) {
            PyErr_Format(st->LengthOrHashMismatchError,
                         "%s digest is not %zu lowercase hex characters",
                         ALGS[alg].name, 2 * ALGS[alg].size);
            goto done;
        }
        algs[i] = alg;
    }
    unsigned char got[N_ALGS][MAX_DIGEST];
    if (hasher_digests(self, got) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int alg = algs[i];
        if (CRYPTO_memcmp(got[alg], expected[i], ALGS[alg].size) != 0) {
            PyObject *hex = hex_of(got[alg], ALGS[alg].size);
            if (hex != NULL) {
                PyErr_Format(st->LengthOrHashMismatchError,
                             "%s mismatch: got %U, expected %S",
                             ALGS[alg].name, hex,
                             PyTuple_GET_ITEM(PyList_GET_ITEM(items, i), 1));
                Py_DECREF(hex);
            }
            goto done;
        }
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_Free(algs);
    PyMem_Free(expected);
    Py_DECREF(items);
    return result;
}

static PyObject *
hasher_get_length(HasherObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(self->length);
}

static PyMethodDef hasher_methods[] = {
    {"update", (PyCFunction)hasher_update, METH_O, hasher_update_doc},
    {"hexdigests", (PyCFunction)hasher_hexdigests, METH_NOARGS,
     hasher_hexdigests_doc},
    {"verify", (PyCFunction)(void (*)(void))hasher_verify, METH_FASTCALL,
     hasher_verify_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef hasher_getset[] = {
    {"length", (getter)hasher_get_length, NULL,
     "Number of bytes hashed so far.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(hasher_doc,
"Hasher(algorithms, max_length=None)\n\n"
"Every requested digest (sha256, sha384, sha512, blake2b-256, blake2b)\n"
"of a stream, computed in one pass over the data.");

static PyType_Slot hasher_slots[] = {
    {Py_tp_new, hasher_new},
    {Py_tp_dealloc, hasher_dealloc},
    {Py_tp_methods, hasher_methods},
    {Py_tp_getset, hasher_getset},
    {Py_tp_doc, (void *)hasher_doc},
    {0, NULL},
};

static PyType_Spec hasher_spec = {
    .name = "tufc._tufc.Hasher",
    .basicsize = sizeof(HasherObject),
    .flags = Py_TPFLAGS_DEFAULT
#ifdef Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_IMMUTABLETYPE
#endif
    ,
    .slots = hasher_slots,
};

int
tufc_hashing_exec(PyObject *module, tufc_state *st)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &hasher_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    st->HasherType = (PyTypeObject *)type;   /* the state's reference */
    Py_INCREF(type);
    if (PyModule_AddObject(module, "Hasher", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

/* ---- hash_file ---------------------------------------------------------- */

/* The current exception, normalized, with its traceback (3.12 has one
 * call for this and deprecates the old three). */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* Replace the current exception (an OSError) by StorageError, chained. */
static void
raise_storage_error(tufc_state *st)
{
    PyObject *cause = take_exception();
    if (cause == NULL) {
        return;
    }
    PyObject *message = PyObject_Str(cause);
    PyObject *err = message == NULL ? NULL
                    : PyObject_CallOneArg(st->StorageError, message);
    Py_XDECREF(message);
    if (err == NULL) {
        Py_DECREF(cause);
        return;
    }
    Py_INCREF(cause);
    PyException_SetCause(err, cause);     /* steals */
    PyException_SetContext(err, cause);   /* steals */
    PyErr_SetObject((PyObject *)Py_TYPE(err), err);
    Py_DECREF(err);
}

static int
hash_path(tufc_state *st, hash_set *hs, PyObject *path)
{
    PyObject *encoded;
    if (!PyUnicode_FSConverter(path, &encoded)) {
        return -1;
    }
    const char *cpath = PyBytes_AS_STRING(encoded);
    unsigned char *buf = PyMem_RawMalloc(FILE_CHUNK);
    if (buf == NULL) {
        Py_DECREF(encoded);
        PyErr_NoMemory();
        return -1;
    }
    int fd, err = 0, rc = -1;
    Py_BEGIN_ALLOW_THREADS
    do {
        fd = open(cpath, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        err = errno;
    }
    Py_END_ALLOW_THREADS
    if (fd < 0) {
        goto os_error;
    }
    for (;;) {
        ssize_t n;
        int hashed = 0;
        Py_BEGIN_ALLOW_THREADS
        n = read(fd, buf, FILE_CHUNK);
        if (n < 0) {
            err = errno;
        }
        else if (n > 0) {
            hashed = hash_set_update(hs, buf, (size_t)n);
        }
        Py_END_ALLOW_THREADS
        if (n < 0) {
            if (err == EINTR) {
                if (PyErr_CheckSignals() < 0) {
                    goto done;
                }
                continue;
            }
            goto os_error;
        }
        if (hashed < 0) {
            set_openssl_error("hash update");
            goto done;
        }
        if (n == 0) {
            rc = 0;
            goto done;
        }
    }
os_error:
    {
        /* name the file as open() would: by its fspath */
        PyObject *name = PyOS_FSPath(path);
        if (name != NULL) {
            errno = err;
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, name);
            Py_DECREF(name);
            raise_storage_error(st);
        }
    }
done:
    if (fd >= 0) {
        close(fd);
    }
    PyMem_RawFree(buf);
    Py_DECREF(encoded);
    return rc;
}

/* Hash the bytes-like obj, GIL released when large. */
static int
hash_object(hash_set *hs, PyObject *obj)
{
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    int rc;
    if (view.len >= GIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        rc = hash_set_update(hs, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
    }
    else {
        rc = hash_set_update(hs, view.buf, (size_t)view.len);
    }
    PyBuffer_Release(&view);
    if (rc < 0) {
        set_openssl_error("hash update");
    }
    return rc;
}

/* Call file.readinto(buffer) or file.read(size): n bytes, 0 at the end. */
static Py_ssize_t
read_some(tufc_state *st, PyObject *reader, int is_readinto,
          PyObject *buffer, PyObject **data)
{
    PyObject *got = is_readinto ? PyObject_CallOneArg(reader, buffer)
                                : PyObject_CallFunction(reader, "n",
                                                        (Py_ssize_t)FILE_CHUNK);
    if (got == NULL) {
        if (PyErr_ExceptionMatches(PyExc_OSError)) {
            raise_storage_error(st);
        }
        return -1;
    }
    if (got == Py_None) {
        Py_DECREF(got);
        PyErr_SetString(st->StorageError,
                        "the file returned no data (a non-blocking file?)");
        return -1;
    }
    if (!is_readinto) {
        if (PyUnicode_Check(got)) {
            Py_DECREF(got);
            PyErr_SetString(PyExc_TypeError,
                            "hash_file needs a binary file, not a text file");
            return -1;
        }
        Py_ssize_t n = PyObject_Length(got);
        if (n < 0) {
            Py_DECREF(got);
            return -1;
        }
        *data = got;
        return n;
    }
    Py_ssize_t n = PyLong_Check(got) && !PyBool_Check(got)
                       ? PyLong_AsSsize_t(got) : -1;
    Py_DECREF(got);
    if (n < 0 || n > FILE_CHUNK) {
        PyErr_Clear();
        PyErr_SetString(st->StorageError,
                        "readinto() returned an invalid byte count");
        return -1;
    }
    return n;
}

static int
hash_file_object(tufc_state *st, hash_set *hs, PyObject *file)
{
    int is_readinto = 1;
    PyObject *reader = PyObject_GetAttrString(file, "readinto");
    if (reader == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear();
        is_readinto = 0;
        reader = PyObject_GetAttrString(file, "read");
        if (reader == NULL) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError, "hash_file needs a path or a "
                             "binary file, not %.200s", Py_TYPE(file)->tp_name);
            }
            return -1;
        }
    }
    /* a bytearray, not our own memory: the file may keep a reference */
    PyObject *buffer = NULL;
    Py_buffer view = {0};
    int rc = -1;
    if (is_readinto) {
        buffer = PyByteArray_FromStringAndSize(NULL, FILE_CHUNK);
        /* our export forbids resizing while we hash from it */
        if (buffer == NULL ||
            PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE) < 0) {
            goto done;
        }
    }
    for (;;) {
        PyObject *data = NULL;
        Py_ssize_t n = read_some(st, reader, is_readinto, buffer, &data);
        if (n < 0) {
            goto done;
        }
        if (n == 0) {
            Py_XDECREF(data);
            rc = 0;
            goto done;
        }
        int hashed;
        if (is_readinto) {
            if (n >= GIL_THRESHOLD) {
                Py_BEGIN_ALLOW_THREADS
                hashed = hash_set_update(hs, view.buf, (size_t)n);
                Py_END_ALLOW_THREADS
            }
            else {
                hashed = hash_set_update(hs, view.buf, (size_t)n);
            }
            if (hashed < 0) {
                set_openssl_error("hash update");
            }
        }
        else {
            hashed = hash_object(hs, data);
            Py_DECREF(data);
        }
        if (hashed < 0) {
            goto done;
        }
    }
done:
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    Py_XDECREF(buffer);
    Py_DECREF(reader);
    return rc;
}

PyObject *
tufc_hash_file(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "hash_file() takes exactly 2 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    tufc_state *st = tufc_get_state(module);
    PyObject *source = args[0];
    hash_set hs;
    if (hash_set_init(st, &hs, args[1]) < 0) {
        return NULL;
    }
    int is_path = PyUnicode_Check(source) || PyBytes_Check(source) ||
                  PyObject_HasAttrString((PyObject *)Py_TYPE(source),
                                         "__fspath__");
    int rc = is_path ? hash_path(st, &hs, source)
                     : hash_file_object(st, &hs, source);
    PyObject *result = NULL;
    if (rc == 0) {
        unsigned char out[N_ALGS][MAX_DIGEST];
        if (hash_set_digests(&hs, out) < 0) {
            set_openssl_error("hash finalization");
        }
        else {
            result = digests_dict(&hs, out);
        }
    }
    hash_set_free(&hs);
    return result;
}
