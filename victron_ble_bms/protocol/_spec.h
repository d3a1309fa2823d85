/* A class's slot offsets, made and checked by `make_spec` in _accel.c (frozen.py's builders)
 * and read by the device table's compiled step (sources/_accept.c): every offset is that of a
 * writable object slot of `cls` or a base, so storing there is storing into a real slot. */
#ifndef VICTRON_BMS_SPEC_H
#define VICTRON_BMS_SPEC_H

#include <Python.h>

#define SPEC_NAME "victron_ble_bms.protocol._accel.spec"

typedef struct {
    PyTypeObject *cls;
    int untrack; /* objects of cls hold only values that can't refer back: no cycle collection */
    Py_ssize_t count;
    Py_ssize_t offsets[1]; /* count of them */
} Spec;

#define SPEC_SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

/* Store a new reference to `value` in a slot, releasing what was there. */
static inline void
spec_store(PyObject *obj, Py_ssize_t offset, PyObject *value)
{
    PyObject **slot = &SPEC_SLOT(obj, offset);
    PyObject *old = *slot;
    Py_INCREF(value);
    *slot = value;
    Py_XDECREF(old);
}

/* Store a reference the caller gives away (`value` non-NULL). */
static inline void
spec_steal(PyObject *obj, Py_ssize_t offset, PyObject *value)
{
    PyObject **slot = &SPEC_SLOT(obj, offset);
    PyObject *old = *slot;
    *slot = value;
    Py_XDECREF(old);
}

/* A filled object of the spec's class, handed to its owner: the cycle collector never visits
 * an object of an acyclic class (frozen.acyclic), which keeps collections short however many
 * readings a device table holds. */
static inline PyObject *
spec_finish(const Spec *spec, PyObject *obj)
{
    if (spec->untrack) {
        PyObject_GC_UnTrack(obj);
    }
    return obj;
}

/* A new instance of the spec's class: the first `k` slots from `constants`, the rest from
 * `values` (k + n == count, checked by the caller once). */
static inline PyObject *
spec_build(const Spec *spec, PyObject *const *constants, Py_ssize_t k, PyObject *const *values,
           Py_ssize_t n)
{
    PyObject *obj = spec->cls->tp_alloc(spec->cls, 0);
    if (obj == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        spec_store(obj, spec->offsets[i], constants[i]);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        spec_store(obj, spec->offsets[k + i], values[i]);
    }
    return spec_finish(spec, obj);
}

#endif
