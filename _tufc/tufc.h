/* tufc native core: module state and what each source file provides.
 *
 * One concern per file:
 *   module.c   module glue (multi-phase init, state, method table)
 *   encoder.c  canonical JSON
 *   hashing.c  Hasher type and hash_file
 *   keys.c     PublicKey type, verify_many, Ed25519 signing
 *   loader.c   load_metadata and the EntryMap type
 *   bins.c     misplaced_targets (succinct hash bin membership)
 *   patch.c    patch_targets (a targets role's next version, as bytes)
 *
 * There is no global mutable state: everything a function needs is reached
 * through the module state (tufc_state), from the module object or, for
 * methods of heap types, from the defining type.
 */
#ifndef TUFC_H
#define TUFC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Deepest nesting of containers canonical_json accepts. */
#define TUFC_MAX_DEPTH 512

typedef struct {
    /* exception classes from tufc.exceptions */
    PyObject *FormatError;
    PyObject *UnsupportedAlgorithmError;
    PyObject *StorageError;
    PyObject *LengthOrHashMismatchError;
    PyObject *DownloadLengthMismatchError;
    /* heap types */
    PyTypeObject *HasherType;
    PyTypeObject *PublicKeyType;
    PyTypeObject *EntryMapType;
} tufc_state;

extern PyModuleDef tufc_module_def;

static inline tufc_state *
tufc_get_state(PyObject *module)
{
    return (tufc_state *)PyModule_GetState(module);
}

/* State of the module that defined a heap type (types are not subclassable,
 * so PyType_GetModule on Py_TYPE(self) is exact). */
static inline tufc_state *
tufc_state_from_type(PyTypeObject *tp)
{
    PyObject *module = PyType_GetModule(tp);
    return module == NULL ? NULL : tufc_get_state(module);
}

/* encoder.c */
PyObject *tufc_canonical_json(PyObject *module, PyObject *obj);

/* hashing.c: adds the Hasher type to the module and the state */
int tufc_hashing_exec(PyObject *module, tufc_state *st);
PyObject *tufc_hash_file(PyObject *module, PyObject *const *args,
                         Py_ssize_t nargs);

/* keys.c: adds the PublicKey type to the module and the state */
int tufc_keys_exec(PyObject *module, tufc_state *st);
PyObject *tufc_verify_many(PyObject *module, PyObject *const *args,
                           Py_ssize_t nargs);
PyObject *tufc_ed25519_public_key(PyObject *module, PyObject *seed);
PyObject *tufc_ed25519_sign(PyObject *module, PyObject *const *args,
                            Py_ssize_t nargs);

/* loader.c: adds the EntryMap type to the module and the state */
int tufc_loader_exec(PyObject *module, tufc_state *st);
PyObject *tufc_load_metadata(PyObject *module, PyObject *data);
PyObject *tufc_load_metadata_view(PyObject *module, PyObject *data);
/* ... and an EntryMap's names for other files (-1 / borrowed UTF-8) */
Py_ssize_t tufc_entrymap_size(tufc_state *st, PyObject *obj);
const char *tufc_entrymap_key(PyObject *obj, Py_ssize_t i, Py_ssize_t *len);

/* patch.c */
PyObject *tufc_patch_targets(PyObject *module, PyObject *const *args,
                             Py_ssize_t nargs);

/* bins.c */
PyObject *tufc_misplaced_targets(PyObject *module, PyObject *const *args,
                                 Py_ssize_t nargs);

#endif /* TUFC_H */
