/* Public keys and signature verification (stub: implemented in a following
 * commit). */
#include "tufc.h"

int
tufc_keys_exec(PyObject *module, tufc_state *st)
{
    (void)module; (void)st;
    return 0;
}

PyObject *
tufc_verify_many(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module; (void)args; (void)nargs;
    PyErr_SetString(PyExc_NotImplementedError, "verify_many");
    return NULL;
}

PyObject *
tufc_ed25519_public_key(PyObject *module, PyObject *seed)
{
    (void)module; (void)seed;
    PyErr_SetString(PyExc_NotImplementedError, "ed25519_public_key");
    return NULL;
}

PyObject *
tufc_ed25519_sign(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module; (void)args; (void)nargs;
    PyErr_SetString(PyExc_NotImplementedError, "ed25519_sign");
    return NULL;
}
