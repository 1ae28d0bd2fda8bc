/* Streaming hashes (stub: implemented in a following commit). */
#include "tufc.h"

int
tufc_hashing_exec(PyObject *module, tufc_state *st)
{
    (void)module; (void)st;
    return 0;
}

PyObject *
tufc_hash_file(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module; (void)args; (void)nargs;
    PyErr_SetString(PyExc_NotImplementedError, "hash_file");
    return NULL;
}
