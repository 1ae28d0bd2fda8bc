/* Canonical JSON encoder (stub: implemented in a following commit). */
#include "tufc.h"

PyObject *
tufc_canonical_json(PyObject *module, PyObject *obj)
{
    (void)module; (void)obj;
    PyErr_SetString(PyExc_NotImplementedError, "canonical_json");
    return NULL;
}
