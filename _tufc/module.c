/* Module glue for tufc._tufc: multi-phase init, module state, method table. */
#include "tufc.h"

#include <sodium.h>

PyDoc_STRVAR(canonical_json_doc,
"canonical_json(obj, /) -> bytes\n\n"
"Canonical JSON as securesystemslib writes it, UTF-8 encoded.");
PyDoc_STRVAR(hash_file_doc,
"hash_file(path_or_file, algorithms, /) -> dict\n\n"
"Hex digests of a file's content for each algorithm, in one pass.");
PyDoc_STRVAR(verify_many_doc,
"verify_many(data, pairs, /) -> list\n\n"
"Verify each (PublicKey, signature) pair over data, without the GIL.");
PyDoc_STRVAR(ed25519_public_key_doc,
"ed25519_public_key(seed, /) -> bytes\n\n"
"The Ed25519 public key of a 32-byte seed.");
PyDoc_STRVAR(load_metadata_doc,
"load_metadata(data, /) -> (dict, bytes)\n\n"
"Parse metadata JSON strictly: the envelope, and the canonical JSON of\n"
"envelope[\"signed\"].  Big entry maps become EntryMap objects.");
PyDoc_STRVAR(load_metadata_view_doc,
"load_metadata_view(data, /) -> (dict, bytes | memoryview)\n\n"
"load_metadata, except that when envelope[\"signed\"] is already canonical\n"
"in the input the second result is a read-only memoryview of that span.");
PyDoc_STRVAR(ed25519_sign_doc,
"ed25519_sign(seed, message, /) -> bytes\n\n"
"A 64-byte Ed25519 signature of message by the key with this seed.");

PyDoc_STRVAR(misplaced_targets_doc,
"misplaced_targets(entries, bit_length, index, /) -> list\n\n"
"The target paths of entries whose succinct hash bin (the first bit_length\n"
"bits of SHA-256) is not index.");

PyDoc_STRVAR(patch_targets_doc,
"patch_targets(signed, version, expires, changes, /) -> (bytes, list, bool)\n\n"
"The canonical JSON of a targets role's signed bytes with version and\n"
"expires replaced and changes merged into \"targets\": changes is a sequence\n"
"of (path, entry) sorted by path (UTF-8), entry the canonical JSON of the\n"
"target object or None to remove it.  Also returns the indices of the\n"
"changes whose path the input did not hold, and whether the output holds\n"
"a raw control character.");

static PyMethodDef tufc_methods[] = {
    {"canonical_json", (PyCFunction)tufc_canonical_json, METH_O,
     canonical_json_doc},
    {"hash_file", (PyCFunction)(void (*)(void))tufc_hash_file,
     METH_FASTCALL, hash_file_doc},
    {"verify_many", (PyCFunction)(void (*)(void))tufc_verify_many,
     METH_FASTCALL, verify_many_doc},
    {"ed25519_public_key", (PyCFunction)tufc_ed25519_public_key, METH_O,
     ed25519_public_key_doc},
    {"ed25519_sign", (PyCFunction)(void (*)(void))tufc_ed25519_sign,
     METH_FASTCALL, ed25519_sign_doc},
    {"load_metadata", (PyCFunction)tufc_load_metadata, METH_O,
     load_metadata_doc},
    {"load_metadata_view", (PyCFunction)tufc_load_metadata_view, METH_O,
     load_metadata_view_doc},
    {"misplaced_targets", (PyCFunction)(void (*)(void))tufc_misplaced_targets,
     METH_FASTCALL, misplaced_targets_doc},
    {"patch_targets", (PyCFunction)(void (*)(void))tufc_patch_targets,
     METH_FASTCALL, patch_targets_doc},
    {NULL, NULL, 0, NULL},
};

static int
load_exceptions(tufc_state *st)
{
    PyObject *exc = PyImport_ImportModule("tufc.exceptions");
    if (exc == NULL) {
        return -1;
    }
#define LOAD(name)                                              \
    do {                                                        \
        st->name = PyObject_GetAttrString(exc, #name);          \
        if (st->name == NULL) {                                 \
            Py_DECREF(exc);                                     \
            return -1;                                          \
        }                                                       \
    } while (0)
    LOAD(FormatError);
    LOAD(UnsupportedAlgorithmError);
    LOAD(StorageError);
    LOAD(LengthOrHashMismatchError);
    LOAD(DownloadLengthMismatchError);
#undef LOAD
    Py_DECREF(exc);
    return 0;
}

static int
tufc_exec(PyObject *module)
{
    tufc_state *st = tufc_get_state(module);
    if (sodium_init() < 0) {
        PyErr_SetString(PyExc_ImportError, "libsodium failed to initialize");
        return -1;
    }
    if (load_exceptions(st) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "MAX_DEPTH", TUFC_MAX_DEPTH) < 0) {
        return -1;
    }
    if (tufc_hashing_exec(module, st) < 0) {
        return -1;
    }
    if (tufc_keys_exec(module, st) < 0) {
        return -1;
    }
    if (tufc_loader_exec(module, st) < 0) {
        return -1;
    }
    return 0;
}

static int
tufc_traverse(PyObject *module, visitproc visit, void *arg)
{
    tufc_state *st = tufc_get_state(module);
    Py_VISIT(st->FormatError);
    Py_VISIT(st->UnsupportedAlgorithmError);
    Py_VISIT(st->StorageError);
    Py_VISIT(st->LengthOrHashMismatchError);
    Py_VISIT(st->DownloadLengthMismatchError);
    Py_VISIT(st->HasherType);
    Py_VISIT(st->PublicKeyType);
    Py_VISIT(st->EntryMapType);
    return 0;
}

static int
tufc_clear(PyObject *module)
{
    tufc_state *st = tufc_get_state(module);
    Py_CLEAR(st->FormatError);
    Py_CLEAR(st->UnsupportedAlgorithmError);
    Py_CLEAR(st->StorageError);
    Py_CLEAR(st->LengthOrHashMismatchError);
    Py_CLEAR(st->DownloadLengthMismatchError);
    Py_CLEAR(st->HasherType);
    Py_CLEAR(st->PublicKeyType);
    Py_CLEAR(st->EntryMapType);
    return 0;
}

static void
tufc_free(void *module)
{
    (void)tufc_clear((PyObject *)module);
}

static PyModuleDef_Slot tufc_slots[] = {
    {Py_mod_exec, tufc_exec},
    {0, NULL},
};

PyModuleDef tufc_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tufc._tufc",
    .m_doc = "tufc's native core: canonical JSON, signatures, hashes.",
    .m_size = sizeof(tufc_state),
    .m_methods = tufc_methods,
    .m_slots = tufc_slots,
    .m_traverse = tufc_traverse,
    .m_clear = tufc_clear,
    .m_free = tufc_free,
};

PyMODINIT_FUNC
PyInit__tufc(void)
{
    return PyModuleDef_Init(&tufc_module_def);
}
