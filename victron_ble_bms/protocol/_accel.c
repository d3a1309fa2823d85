/* One AES-128 block with the CPU's AES instructions, for Instant Readout's CTR block 0
 * (docs/protocol.md §1.2), so that decoding a frame is one call instead of slicing, joining,
 * encrypting through `cryptography` and two int conversions (issue 12's profile: that part
 * was a quarter of the instructions of `decode`).
 *
 * x86 (AES-NI) here; 64-bit ARM (the ARMv8 Cryptography Extension) in _aes_arm.h.
 * Optional: where this file does not compile, or the CPU lacks the instructions (checked at
 * run time), `victron_ble_bms.protocol.crypto` uses `cryptography` for the same result; the
 * tests run both paths against `cryptography` and the FIPS-197 known answer.
 *
 * Hardware AES only — no table-based software AES here, whose timing depends on the key.
 * Field layouts stay in Python (layouts.py): this file knows nothing of records. It also fills
 * slotted objects (`build`), which the pure-Python builders do through a mutable twin class.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <structmember.h>

#include "_payload.h"
#include "_spec.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AESNI 1
#define HAVE_AES 1
#include <wmmintrin.h>
#include <emmintrin.h>
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AES 1
#include "_aes_arm.h" /* expand_key, encrypt_block, cpu_has_aes for ARMv8 */
#endif

#define ROUND_KEYS_BYTES 176 /* 11 round keys of AES-128 */
#define HEADER_BYTES PAYLOAD_HEADER_BYTES /* envelope.py: the clear header */
#define BLOCK PAYLOAD_BLOCK

#ifdef HAVE_AESNI

#define TARGET __attribute__((target("aes,sse2")))

TARGET static __m128i
expand_step(__m128i key, __m128i assist)
{
    assist = _mm_shuffle_epi32(assist, 0xff);
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, assist);
}

#define STEP(i, rcon) \
    rk[i] = expand_step(rk[i - 1], _mm_aeskeygenassist_si128(rk[i - 1], rcon))

TARGET static void
expand_key(const unsigned char *key, unsigned char *out)
{
    __m128i rk[11];
    rk[0] = _mm_loadu_si128((const __m128i *)key);
    STEP(1, 0x01); STEP(2, 0x02); STEP(3, 0x04); STEP(4, 0x08); STEP(5, 0x10);
    STEP(6, 0x20); STEP(7, 0x40); STEP(8, 0x80); STEP(9, 0x1b); STEP(10, 0x36);
    for (int i = 0; i < 11; i++) {
        _mm_storeu_si128((__m128i *)(out + 16 * i), rk[i]);
    }
    /* The key schedule is a copy of the key: leave none of it on the stack. */
    for (int i = 0; i < 11; i++) {
        rk[i] = _mm_setzero_si128();
    }
    __asm__ __volatile__("" : : "m"(rk) : "memory");
}

TARGET static void
encrypt_block(const unsigned char *round_keys, const unsigned char *in, unsigned char *out)
{
    __m128i x = _mm_loadu_si128((const __m128i *)in);
    x = _mm_xor_si128(x, _mm_loadu_si128((const __m128i *)round_keys));
    for (int i = 1; i < 10; i++) {
        x = _mm_aesenc_si128(x, _mm_loadu_si128((const __m128i *)(round_keys + 16 * i)));
    }
    x = _mm_aesenclast_si128(x, _mm_loadu_si128((const __m128i *)(round_keys + 160)));
    _mm_storeu_si128((__m128i *)out, x);
}

static int
cpu_has_aes(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse2");
}

#elif !defined(HAVE_AES)

static int
cpu_has_aes(void)
{
    return 0;
}

#endif

static PyObject *
unavailable(void)
{
    PyErr_SetString(PyExc_RuntimeError, "AES instructions are not available");
    return NULL;
}

static int accelerated = 0;

static PyObject *
available(PyObject *module, PyObject *unused)
{
    return PyBool_FromLong(accelerated);
}

/* expand_key(key: bytes) -> bytes: the 176 bytes of round keys of a 16-byte key. */
static PyObject *
py_expand_key(PyObject *module, PyObject *key)
{
    if (!accelerated) {
        return unavailable();
    }
    if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) != BLOCK) {
        PyErr_SetString(PyExc_ValueError, "key must be 16 bytes");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, ROUND_KEYS_BYTES);
    if (out == NULL) {
        return NULL;
    }
#ifdef HAVE_AES
    expand_key((const unsigned char *)PyBytes_AS_STRING(key),
               (unsigned char *)PyBytes_AS_STRING(out));
#endif
    return out;
}

/* block(round_keys: bytes, block: bytes) -> bytes: AES-128 of one 16-byte block. */
static PyObject *
py_block(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!accelerated) {
        return unavailable();
    }
    if (nargs != 2 || !PyBytes_Check(args[0]) || PyBytes_GET_SIZE(args[0]) != ROUND_KEYS_BYTES
        || !PyBytes_Check(args[1]) || PyBytes_GET_SIZE(args[1]) != BLOCK) {
        PyErr_SetString(PyExc_TypeError, "block(round_keys: 176 bytes, block: 16 bytes)");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, BLOCK);
    if (out == NULL) {
        return NULL;
    }
#ifdef HAVE_AES
    encrypt_block((const unsigned char *)PyBytes_AS_STRING(args[0]),
                  (const unsigned char *)PyBytes_AS_STRING(args[1]),
                  (unsigned char *)PyBytes_AS_STRING(out));
#endif
    return out;
}

/* payload(round_keys: bytes, frame: bytes) -> int: the frame's payload (_payload.h), with
 * keystream block 0 from the AES instructions. The pure-Python path leaves keystream past the
 * received bytes, which no compiled decoder reads (each masks every field and reads none past
 * the received length). The caller has checked the header (≥ 9 bytes). */
static PyObject *
py_payload(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!accelerated) {
        return unavailable();
    }
    if (nargs != 2 || !PyBytes_Check(args[0]) || PyBytes_GET_SIZE(args[0]) != ROUND_KEYS_BYTES
        || !PyBytes_Check(args[1]) || PyBytes_GET_SIZE(args[1]) <= HEADER_BYTES) {
        PyErr_SetString(PyExc_TypeError, "payload(round_keys: 176 bytes, frame: > 8 bytes)");
        return NULL;
    }
    const unsigned char *frame = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    unsigned char counter[BLOCK];
    unsigned char stream[BLOCK];
    payload_counter(frame, counter);
#ifdef HAVE_AES
    encrypt_block((const unsigned char *)PyBytes_AS_STRING(args[0]), counter, stream);
#else
    memset(stream, 0, BLOCK);
#endif
    return payload_int(stream, frame, PyBytes_GET_SIZE(args[1]));
}

/* Filling slotted objects without running Python (`build`), for frozen dataclasses on the
 * hot paths (records, frames, readings): the object `cls(*values)` would be, without the
 * frozen `__setattr__` detour per field. A spec is made once per class by `make_spec` from the
 * class's own slot descriptors, each checked here to be a writable object slot of that class
 * (or a base), so `build` can only ever store into real slots of a real instance.
 * The spec itself and `spec_build` are in _spec.h, shared with sources/_accept.c.
 */

static void
spec_free(PyObject *capsule)
{
    Spec *spec = (Spec *)PyCapsule_GetPointer(capsule, SPEC_NAME);
    if (spec != NULL) {
        Py_XDECREF((PyObject *)spec->cls);
        PyMem_Free(spec);
    }
}

/* make_spec(cls, descriptors: tuple, acyclic: bool = False) -> spec: what `build` needs, in
 * the descriptors' order; `acyclic`: built objects are left out of cycle collection. */
static PyObject *
py_make_spec(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3 || !PyType_Check(args[0]) || !PyTuple_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "make_spec(cls, descriptors: tuple, acyclic=False)");
        return NULL;
    }
    int acyclic = nargs == 3 ? PyObject_IsTrue(args[2]) : 0;
    if (acyclic < 0) {
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    Py_ssize_t count = PyTuple_GET_SIZE(args[1]);
    if (cls->tp_itemsize != 0) {
        PyErr_SetString(PyExc_TypeError, "make_spec: variable-size classes are not filled");
        return NULL;
    }
    Spec *spec = (Spec *)PyMem_Malloc(sizeof(Spec) + (size_t)count * sizeof(Py_ssize_t));
    if (spec == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *descr = PyTuple_GET_ITEM(args[1], i);
        if (!PyObject_TypeCheck(descr, &PyMemberDescr_Type)
            || !PyType_IsSubtype(cls, PyDescr_TYPE(descr))) {
            PyMem_Free(spec);
            PyErr_SetString(PyExc_TypeError, "make_spec: not a slot of this class");
            return NULL;
        }
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type != T_OBJECT_EX || (member->flags & READONLY)) {
            PyMem_Free(spec);
            PyErr_SetString(PyExc_TypeError, "make_spec: not a writable object slot");
            return NULL;
        }
        spec->offsets[i] = member->offset;
    }
    Py_INCREF(args[0]);
    spec->cls = cls;
    spec->untrack = acyclic && PyType_IS_GC(cls);
    spec->count = count;
    PyObject *capsule = PyCapsule_New(spec, SPEC_NAME, spec_free);
    if (capsule == NULL) {
        Py_DECREF(args[0]);
        PyMem_Free(spec);
    }
    return capsule;
}

/* build(spec, *values) -> object: a new instance of the spec's class, its slots filled. */
static PyObject *
py_build(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || !PyCapsule_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "build(spec, *values)");
        return NULL;
    }
    Spec *spec = (Spec *)PyCapsule_GetPointer(args[0], SPEC_NAME);
    if (spec == NULL) {
        return NULL;
    }
    if (nargs - 1 != spec->count) {
        PyErr_Format(PyExc_TypeError, "build: %zd values for %zd slots", nargs - 1,
                     spec->count);
        return NULL;
    }
    return spec_build(spec, NULL, 0, args + 1, spec->count);
}

static PyMethodDef methods[] = {
    {"build", (PyCFunction)(void (*)(void))py_build, METH_FASTCALL,
     "A new instance of the spec's class, its slots filled from values."},
    {"make_spec", (PyCFunction)(void (*)(void))py_make_spec, METH_FASTCALL,
     "What build needs to fill a class's slots, from its slot descriptors."},
    {"available", available, METH_NOARGS, "True when the CPU's AES instructions are used."},
    {"expand_key", py_expand_key, METH_O, "The 176 bytes of round keys of a 16-byte key."},
    {"block", (PyCFunction)(void (*)(void))py_block, METH_FASTCALL,
     "AES-128 of one 16-byte block."},
    {"payload", (PyCFunction)(void (*)(void))py_payload, METH_FASTCALL,
     "A frame's data decrypted (CTR block 0), as a little-endian int."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_accel", "Hardware AES-128 and slotted-object filling (accel.py).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__accel(void)
{
    accelerated = cpu_has_aes();
    return PyModule_Create(&module_def);
}
