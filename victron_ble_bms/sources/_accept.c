/* The device table's hot paths compiled (devices.py): `DevicesState.update` for
 * - the next frame of a known device, a small step ahead of its nonce sequence, with its key
 *   and plausible values, or without a key as before — nearly every advertisement of a scan;
 * - a device's first frame (or its first since it was evicted), good or without a key.
 *
 * They are the same steps as the Python ones (`DevicesState._update_py`, `_first`), in the
 * same order, and give up *before changing anything* wherever those would go to the general
 * path, or wherever a value is not of the plain type expected: then they call `_update_py`
 * (`fallback`), which decides. tests/scan/test_compiled_step.py runs hostile mixed streams
 * through this step, the Python one and the general path alone, and requires the same result
 * from each.
 *
 * One thing the Python step does not do: when a frame's decrypted payload, record type and
 * length equal those of the device's last good reading (most frames: a device repeats its
 * values for many nonces), the record is that reading's record with this frame as `wire`
 * — what `decode` would give, since a record is a function of exactly those (codec.py) —
 * and its plausibility is already known. Decoding itself stays in Python (codec.decode).
 *
 * Every number (sequence slack, EWMA weights …) and every class comes from devices.py at
 * construction (`step(config)`); the slots it reads and writes are checked there (_spec.h).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The averages must round as Python's float arithmetic does: no fused multiply-add. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <stddef.h>
#include <string.h>
#include <stdint.h>
#include <structmember.h>

#include "../protocol/_payload.h"
#include "../protocol/_spec.h"

/* DeviceState slots this step reads or writes, in the order of DEVICE_SLOTS below. */
enum {
    D_LAST_SEEN, D_NAME, D_MODEL_ID, D_RECORD_TYPE, D_KEY_STATUS, D_ERROR, D_LAST_READING,
    D_LAST_DECODED, D_RSSI, D_READINGS, D_NONCE, D_SEEN, D_SEQ_TS, D_PREV, D_PREV_TS, D_CAND,
    D_CAND_COUNT, D_DATA, D_INTERVAL, D_NONCE_STEP, D_PAYLOAD, D_PAYLOAD_OF, D_COUNT
};
static const char *const DEVICE_SLOTS[D_COUNT] = {
    "last_seen", "name", "model_id", "record_type", "key_status", "error", "last_reading",
    "last_decoded", "rssi", "readings", "nonce", "_seen", "_seq_ts", "_prev", "_prev_ts",
    "_cand", "_cand_count", "_data", "interval_s", "nonce_step", "_payload", "_payload_of",
};
enum { A_TS, A_ADDRESS, A_MANUFACTURER_DATA, A_RSSI, A_NAME, A_COUNT };
static const char *const ADVERTISEMENT_SLOTS[A_COUNT] = {
    "ts", "address", "manufacturer_data", "rssi", "name",
};

/* Everything the step holds a reference to, by name in `config`. */
enum {
    REF_FALLBACK, REF_DEVICES, REF_KEYS, REF_MOVE_TO_END, REF_DECODE, REF_IMPLAUSIBLE, REF_CIPHERS, REF_PAYLOAD,
    REF_COMPANY_ID, REF_OK, REF_NO_KEY, REF_DEVICE, REF_ADVERTISEMENT, REF_READING_RECORD,
    REF_RECORDS, REF_CIPHER, REF_NO_KEY_PREFIX, REF_EVICT, REF_NEW,
    REF_READING_OK, REF_READING_NO_KEY, REF_UPDATE_NEW, REF_UPDATE, REF_NEW_DEVICE,
    REF_KEYS_GET, REF_COUNT
};
static const char *const REFERENCE_NAMES[REF_READING_OK] = {
    "fallback", "devices", "keys", "move_to_end", "decode", "implausible", "ciphers",
    "payload", "company_id", "ok", "no_key", "device", "advertisement", "reading_record",
    "records", "cipher", "no_key_prefix", "evict", "new",
};
/* Builders, (spec, constants) as frozen.builder_parts gives them, and the values they take. */
enum { B_READING_OK, B_READING_NO_KEY, B_UPDATE_NEW, B_UPDATE, B_NEW_DEVICE, B_COUNT };
static const char *const BUILDER_NAMES[B_COUNT] = {
    "reading_ok", "reading_no_key", "update_new", "update", "new_device",
};
static const Py_ssize_t BUILDER_VALUES[B_COUNT] = {3, 3, 2, 5, 2};

typedef struct {
    Spec *spec;
    PyObject *const *constants;
    Py_ssize_t k;
} Builder;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *refs[REF_COUNT];
    Builder builders[B_COUNT];
    const Spec *device, *advertisement, *reading_record, *cipher;
    long forward_slack, header_bytes, product_advertisement, unencrypted;
    Py_ssize_t max_devices;
    Py_ssize_t evicted; /* devices this step dropped to stay within max_devices */
    double keep, ewma;
} Step;

#define DEV(dev, i) SPEC_SLOT(dev, self->device->offsets[i])

static PyObject *
build(const Builder *b, PyObject *const *values, Py_ssize_t n)
{
    return spec_build(b->spec, b->constants, b->k, values, n);
}

static int
is_none_or_float(PyObject *value)
{
    return value == Py_None || PyFloat_CheckExact(value);
}

/* A copy of `record` (a decoded record whose class's spec, `wire` first, is `spec`) with
 * `wire` as its wire. Mutable containers are copied, so the two records share no mutable
 * value, as two decoded ones would not. */
static PyObject *
clone_record(const Spec *spec, PyObject *record, PyObject *wire)
{
    if (spec->cls != Py_TYPE(record)) {
        return NULL;
    }
    PyObject *copy = spec->cls->tp_alloc(spec->cls, 0);
    if (copy == NULL) {
        return NULL;
    }
    spec_store(copy, spec->offsets[0], wire); /* records' specs name `wire` first */
    for (Py_ssize_t i = 1; i < spec->count; i++) {
        PyObject *value = SPEC_SLOT(record, spec->offsets[i]);
        if (value == NULL) {
            Py_DECREF(copy);
            return NULL;
        }
        if (PyDict_CheckExact(value)) {
            value = PyDict_Copy(value);
        } else if (PyList_CheckExact(value)) {
            value = PyList_GetSlice(value, 0, PyList_GET_SIZE(value));
        } else {
            Py_INCREF(value);
        }
        if (value == NULL) {
            Py_DECREF(copy);
            return NULL;
        }
        spec_steal(copy, spec->offsets[i], value);
    }
    return spec_finish(spec, copy);
}

/* The payload of `data` with `key`: its data bytes decrypted (keystream block 0 XOR the data,
 * docs/protocol.md §1.2) as a little-endian int, zero past the received bytes, as the helper's
 * `payload` gives it. When the cipher is already cached and its key check matches; else NULL
 * without an error (then `decode` decides: it caches the cipher, or says why the key does not
 * fit). The keystream comes from the helper's AES instructions where the CPU has them, else
 * from the cipher's own `encrypt_block` (`cryptography`): one AES block either way, less than
 * `decode` costs, so a repeated payload is worth finding on any CPU. */
static PyObject *
payload_of(Step *self, PyObject *data, PyObject *key)
{
    if (!(PyBytes_CheckExact(key) || PyUnicode_CheckExact(key))) {
        return NULL;
    }
    PyObject *cipher = PyDict_GetItemWithError(self->refs[REF_CIPHERS], key);
    if (cipher == NULL || Py_TYPE(cipher) != self->cipher->cls) {
        PyErr_Clear();
        return NULL;
    }
    const unsigned char *frame = (const unsigned char *)PyBytes_AS_STRING(data);
    PyObject *check = SPEC_SLOT(cipher, self->cipher->offsets[0]);
    PyObject *round_keys = SPEC_SLOT(cipher, self->cipher->offsets[1]);
    PyObject *encrypt_block = SPEC_SLOT(cipher, self->cipher->offsets[2]);
    if (check == NULL || !PyLong_CheckExact(check) || PyLong_AsLong(check) != frame[7]) {
        PyErr_Clear();
        return NULL;
    }
    if (round_keys != NULL && PyBytes_CheckExact(round_keys) && self->refs[REF_PAYLOAD] != Py_None) {
        PyObject *args[2] = {round_keys, data};
        PyObject *payload = PyObject_Vectorcall(self->refs[REF_PAYLOAD], args, 2, NULL);
        if (payload == NULL) {
            PyErr_Clear();
        }
        return payload;
    }
    if (encrypt_block == NULL) {
        return NULL;
    }
    unsigned char block[PAYLOAD_BLOCK];
    payload_counter(frame, block);
    PyObject *counter = PyBytes_FromStringAndSize((const char *)block, PAYLOAD_BLOCK);
    Py_INCREF(encrypt_block); /* held across a call into cryptography */
    PyObject *stream = counter == NULL ? NULL : PyObject_CallOneArg(encrypt_block, counter);
    Py_DECREF(encrypt_block);
    Py_XDECREF(counter);
    PyObject *payload = NULL;
    if (stream != NULL && PyBytes_CheckExact(stream) && PyBytes_GET_SIZE(stream) == PAYLOAD_BLOCK) {
        memcpy(block, PyBytes_AS_STRING(stream), PAYLOAD_BLOCK);
        payload = payload_int(block, frame, PyBytes_GET_SIZE(data));
    }
    Py_XDECREF(stream);
    if (payload == NULL) {
        PyErr_Clear();
    }
    return payload;
}

/* `decode(data, key)` when its values are plausible, or equal `old` (the device's last good
 * record, judged plausible then; NULL for none): new reference; NULL with no error to let the
 * fallback decide (the frame does not decode: MISMATCH, UNDECODABLE …; or its values are
 * implausible, flagged suspect by the general path); NULL with an error that must propagate. */
static PyObject *
decode_plausible(Step *self, PyObject *data, PyObject *key, PyObject *old)
{
    PyObject *args[2] = {data, key};
    PyObject *record = PyObject_Vectorcall(self->refs[REF_DECODE], args, 2, NULL);
    if (record == NULL) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear();
        }
        return NULL;
    }
    int plausible = old == NULL ? 0 : PyObject_RichCompareBool(record, old, Py_EQ);
    if (plausible == 0) {
        PyObject *reasons = PyObject_CallOneArg(self->refs[REF_IMPLAUSIBLE], record);
        int bad = reasons == NULL ? -1 : PyObject_IsTrue(reasons);
        Py_XDECREF(reasons);
        plausible = bad == 0 ? 1 : -1;
    }
    if (plausible < 0) {
        Py_CLEAR(record);
    }
    return record;
}

/* The record of `data` for a device whose last good reading is `good` (or None): new
 * reference, or NULL with no error to let the fallback decide (the frame does not decode,
 * or its values are implausible), or NULL with an error that must propagate. `*payload`
 * receives the payload when known (new reference) or NULL. References into the device are
 * held across every call that may run Python code (decode, the collector …). */
static PyObject *
good_record(Step *self, PyObject *dev, PyObject *data, PyObject *key, PyObject **payload)
{
    PyObject *good = Py_NewRef(DEV(dev, D_LAST_DECODED));
    PyObject *old = NULL; /* the last good record */
    if (good != Py_None && PyType_IsSubtype(Py_TYPE(good), self->reading_record->cls)) {
        old = SPEC_SLOT(good, self->reading_record->offsets[0]);
        Py_XINCREF(old);
    }
    PyObject *record = NULL;
    *payload = payload_of(self, data, key);
    PyObject *known = DEV(dev, D_PAYLOAD);
    if (*payload != NULL && old != NULL && DEV(dev, D_PAYLOAD_OF) == good
        && known != NULL && PyLong_CheckExact(known)) {
        PyObject *capsule = PyDict_GetItemWithError(self->refs[REF_RECORDS], (PyObject *)Py_TYPE(old));
        const Spec *spec = capsule == NULL ? NULL : (const Spec *)PyCapsule_GetPointer(capsule, SPEC_NAME);
        PyObject *wire = spec == NULL ? NULL : SPEC_SLOT(old, spec->offsets[0]);
        /* Same record type, same length (a decoder per length), same payload. */
        if (wire != NULL && PyBytes_CheckExact(wire)
            && PyBytes_GET_SIZE(wire) == PyBytes_GET_SIZE(data)
            && PyBytes_AS_STRING(wire)[4] == PyBytes_AS_STRING(data)[4]
            && PyObject_RichCompareBool(*payload, known, Py_EQ) == 1) {
            record = clone_record(spec, old, data);
        }
        PyErr_Clear();
    }
    if (record == NULL) {
        record = decode_plausible(self, data, key, old);
    }
    Py_XDECREF(old);
    Py_DECREF(good);
    if (record == NULL) {
        Py_CLEAR(*payload);
    }
    return record;
}

static PyObject *
fallback(Step *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return PyObject_Vectorcall(self->refs[REF_FALLBACK], args, nargsf, kwnames);
}

/* The key stored for `address` (new reference), NULL for none; -1 on an error. */
static int
key_for(Step *self, PyObject *address, PyObject **key)
{
    if (self->refs[REF_KEYS_GET] == NULL) {
        *key = PyDict_GetItemWithError(self->refs[REF_KEYS], address);
        if (*key == NULL && PyErr_Occurred()) {
            return -1;
        }
        Py_XINCREF(*key);
    } else {
        *key = PyObject_CallOneArg(self->refs[REF_KEYS_GET], address);
        if (*key == NULL) {
            return -1;
        }
    }
    if (*key == Py_None) {
        Py_CLEAR(*key);
    }
    return 0;
}

/* What every new reading of a device stores first, in the Python steps' order: when it was
 * heard, how strongly, its name if it sent one, the frame, its product (`model` is given). */
static void
heard(Step *self, PyObject *dev, PyObject *ts, PyObject *rssi, PyObject *name, PyObject *data,
      PyObject *model)
{
    const Py_ssize_t *d = self->device->offsets;
    spec_store(dev, d[D_LAST_SEEN], ts);
    if (rssi != Py_None) {
        spec_store(dev, d[D_RSSI], rssi);
    }
    if (name != Py_None && PyUnicode_GET_LENGTH(name) > 0) {
        spec_store(dev, d[D_NAME], name);
    }
    spec_store(dev, d[D_DATA], data);
    spec_steal(dev, d[D_MODEL_ID], model);
}

/* A device's first frame: `_first`'s steps for a good, plausible reading or one without a
 * key (new reference); NULL with no error to let the fallback decide. */
static PyObject *
first_frame(Step *self, PyObject *adv, PyObject *address, PyObject *data, PyObject *ts,
            PyObject *rssi, PyObject *name)
{
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(data);
    if (bytes[4] == self->unencrypted) {
        return NULL;
    }
    PyObject *key, *reading, *status, *error, *payload = NULL;
    if (key_for(self, address, &key) < 0) {
        return NULL;
    }
    if (key == NULL) {
        error = PyUnicode_Concat(self->refs[REF_NO_KEY_PREFIX], address);
        if (error == NULL) {
            return NULL;
        }
        PyObject *values[3] = {adv, data, error};
        reading = build(&self->builders[B_READING_NO_KEY], values, 3);
        Py_DECREF(error);
        status = self->refs[REF_NO_KEY];
    } else {
        PyObject *record = decode_plausible(self, data, key, NULL);
        if (record == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        payload = payload_of(self, data, key); /* so the next frame may reuse this record */
        Py_DECREF(key);
        PyObject *values[3] = {adv, data, record};
        reading = build(&self->builders[B_READING_OK], values, 3);
        Py_DECREF(record);
        error = Py_None;
        status = self->refs[REF_OK];
    }
    if (reading == NULL) {
        Py_XDECREF(payload);
        return NULL;
    }
    PyObject *model = PyLong_FromLong(bytes[2] | (bytes[3] << 8));
    PyObject *record_type = PyLong_FromLong(bytes[4]);
    PyObject *nonce = PyLong_FromLong(bytes[5] | (bytes[6] << 8));
    PyObject *one = PyLong_FromLong(1);
    PyObject *values[2] = {address, ts};
    PyObject *dev = build(&self->builders[B_NEW_DEVICE], values, 2);
    if (model == NULL || record_type == NULL || nonce == NULL || one == NULL || dev == NULL
        || PyObject_SetItem(self->refs[REF_DEVICES], address, dev) < 0) {
        goto fail;
    }
    if (PyDict_GET_SIZE(self->refs[REF_DEVICES]) > self->max_devices) {
        PyObject *oldest = PyObject_CallNoArgs(self->refs[REF_EVICT]);
        if (oldest == NULL) {
            goto fail;
        }
        Py_DECREF(oldest);
        self->evicted++;
    }
    const Py_ssize_t *d = self->device->offsets;
    heard(self, dev, ts, rssi, name, data, model);
    spec_steal(dev, d[D_RECORD_TYPE], record_type);
    spec_store(dev, d[D_KEY_STATUS], status);
    spec_store(dev, d[D_ERROR], error);
    spec_store(dev, d[D_READINGS], one);
    spec_store(dev, d[D_LAST_READING], reading);
    if (status == self->refs[REF_OK]) {
        spec_store(dev, d[D_LAST_DECODED], reading);
    }
    if (payload != NULL) {
        spec_steal(dev, d[D_PAYLOAD], payload);
        spec_store(dev, d[D_PAYLOAD_OF], reading);
    }
    spec_steal(dev, d[D_SEEN], one); /* a new sequence: only this nonce seen */
    spec_steal(dev, d[D_NONCE], nonce);
    spec_store(dev, d[D_SEQ_TS], ts);
    PyObject *update_values[5] = {self->refs[REF_NEW], dev, reading, Py_True, Py_None};
    PyObject *update = build(&self->builders[B_UPDATE], update_values, 5);
    Py_DECREF(dev);
    Py_DECREF(reading);
    return update;
fail:
    Py_XDECREF(payload);
    Py_XDECREF(model);
    Py_XDECREF(record_type);
    Py_XDECREF(nonce);
    Py_XDECREF(one);
    Py_XDECREF(dev);
    Py_DECREF(reading);
    return NULL;
}

/* The next frame of a known device (held by the caller, as `data`): the Python step's
 * ACCEPT of a good reading or one without a key, as new reference; NULL with no error to let
 * the fallback decide. Every slot read is of the type the Python step leaves there, else the
 * fallback decides; numbers are taken out before any call that may run Python code. */
static PyObject *
next_frame(Step *self, PyObject *adv, PyObject *dev, PyObject *data)
{
    const Py_ssize_t *a = self->advertisement->offsets, *d = self->device->offsets;
    PyObject *address = SPEC_SLOT(adv, a[A_ADDRESS]), *ts = SPEC_SLOT(adv, a[A_TS]);
    PyObject *rssi = SPEC_SLOT(adv, a[A_RSSI]), *name = SPEC_SLOT(adv, a[A_NAME]);
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(data);
    for (int i = 0; i < D_COUNT; i++) {
        if (DEV(dev, i) == NULL) {
            return NULL;
        }
    }
    PyObject *record_type = DEV(dev, D_RECORD_TYPE), *head = DEV(dev, D_NONCE);
    PyObject *seen = DEV(dev, D_SEEN), *readings = DEV(dev, D_READINGS);
    PyObject *seq_ts = DEV(dev, D_SEQ_TS), *interval = DEV(dev, D_INTERVAL);
    PyObject *nonce_step = DEV(dev, D_NONCE_STEP), *status = DEV(dev, D_KEY_STATUS);
    if (!PyLong_CheckExact(record_type) || !PyLong_CheckExact(head) || !PyLong_CheckExact(seen)
        || !PyLong_CheckExact(readings) || !is_none_or_float(seq_ts)
        || !is_none_or_float(interval) || !is_none_or_float(nonce_step)) {
        return NULL;
    }
    long type_byte = PyLong_AsLong(record_type);
    long head_nonce = PyLong_AsLong(head);
    unsigned long long seen_bits = PyLong_AsUnsignedLongLong(seen);
    long long count = PyLong_AsLongLong(readings);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    long nonce = bytes[5] | (bytes[6] << 8);
    long ahead = (nonce - head_nonce) & 0xFFFF;
    if (type_byte != bytes[4] || !(0 < ahead && ahead <= self->forward_slack)) {
        return NULL;
    }
    int has_last = seq_ts != Py_None, has_mean = interval != Py_None;
    int has_step = nonce_step != Py_None;
    double last = has_last ? PyFloat_AS_DOUBLE(seq_ts) : 0.0;
    double mean = has_mean ? PyFloat_AS_DOUBLE(interval) : 0.0;
    double step = has_step ? PyFloat_AS_DOUBLE(nonce_step) : 0.0;
    int keyed_before = status == self->refs[REF_OK], unkeyed_before = status == self->refs[REF_NO_KEY];
    Py_INCREF(head); /* the sequence's newest frame becomes `_prev`, `_prev_ts` */
    Py_INCREF(seq_ts);

    PyObject *key, *reading = NULL, *payload = NULL, *update = NULL;
    if (key_for(self, address, &key) < 0) {
        goto done;
    }
    if (key == NULL) { /* a neighbour's device: its sequence is tracked all the same */
        if (!unkeyed_before) {
            goto done;
        }
        PyObject *error = PyUnicode_Concat(self->refs[REF_NO_KEY_PREFIX], address);
        if (error == NULL) {
            goto done;
        }
        PyObject *values[3] = {adv, data, error};
        reading = build(&self->builders[B_READING_NO_KEY], values, 3);
        if (reading == NULL) {
            Py_DECREF(error);
            goto done;
        }
        spec_steal(dev, d[D_ERROR], error);
    } else {
        if (!keyed_before) {
            Py_DECREF(key);
            goto done;
        }
        PyObject *record = good_record(self, dev, data, key, &payload);
        Py_DECREF(key);
        if (record == NULL) {
            goto done;
        }
        PyObject *values[3] = {adv, data, record};
        reading = build(&self->builders[B_READING_OK], values, 3);
        Py_DECREF(record);
        if (reading == NULL) {
            Py_XDECREF(payload);
            goto done;
        }
        spec_store(dev, d[D_LAST_DECODED], reading);
        if (payload != NULL) { /* the payload of the new last good reading */
            spec_steal(dev, d[D_PAYLOAD], payload);
            spec_store(dev, d[D_PAYLOAD_OF], reading);
        }
    }
    PyObject *moved = PyObject_CallOneArg(self->refs[REF_MOVE_TO_END], address);
    if (moved == NULL) {
        goto done;
    }
    Py_DECREF(moved);

    /* What the Python step stores, in its order; new values are made before any store. */
    double now = PyFloat_AS_DOUBLE(ts);
    unsigned long long new_seen = ahead >= 64 ? 1 : (seen_bits << ahead) | 1;
    PyObject *new_interval = NULL;
    if (has_last && now > last) {
        double gap = now - last;
        new_interval = PyFloat_FromDouble(has_mean ? self->keep * mean + self->ewma * gap : gap);
    }
    PyObject *new_step = PyFloat_FromDouble(
        has_step ? self->keep * step + self->ewma * (double)ahead : (double)ahead);
    PyObject *new_readings = PyLong_FromLongLong(count + 1);
    PyObject *new_seen_obj = PyLong_FromUnsignedLongLong(new_seen);
    PyObject *new_nonce = PyLong_FromLong(nonce);
    long model = bytes[2] | (bytes[3] << 8);
    PyObject *model_id = DEV(dev, D_MODEL_ID); /* kept when equal: no new int per frame */
    PyObject *new_model = model_id != NULL && PyLong_CheckExact(model_id)
                                  && PyLong_AsLong(model_id) == model
                              ? Py_NewRef(model_id)
                              : PyLong_FromLong(model);
    PyObject *zero = PyLong_FromLong(0);
    if ((has_last && now > last && new_interval == NULL) || new_step == NULL
        || new_readings == NULL || new_seen_obj == NULL || new_nonce == NULL || new_model == NULL
        || zero == NULL) {
        Py_XDECREF(new_interval);
        Py_XDECREF(new_step);
        Py_XDECREF(new_readings);
        Py_XDECREF(new_seen_obj);
        Py_XDECREF(new_nonce);
        Py_XDECREF(new_model);
        Py_XDECREF(zero);
        goto done;
    }
    heard(self, dev, ts, rssi, name, data, new_model);
    spec_steal(dev, d[D_READINGS], new_readings);
    spec_store(dev, d[D_LAST_READING], reading);
    spec_steal(dev, d[D_SEEN], new_seen_obj);
    spec_store(dev, d[D_PREV_TS], seq_ts);
    spec_store(dev, d[D_PREV], head);
    spec_steal(dev, d[D_NONCE], new_nonce);
    spec_store(dev, d[D_SEQ_TS], ts);
    if (DEV(dev, D_CAND) != Py_None) {
        spec_store(dev, d[D_CAND], Py_None);
        spec_store(dev, d[D_CAND_COUNT], zero);
    }
    Py_DECREF(zero);
    if (new_interval != NULL) {
        spec_steal(dev, d[D_INTERVAL], new_interval);
    }
    spec_steal(dev, d[D_NONCE_STEP], new_step);
    PyObject *values[2] = {dev, reading};
    update = build(&self->builders[B_UPDATE_NEW], values, 2);
    if (update == NULL) {
        goto done;
    }
done:
    Py_XDECREF(reading);
    Py_DECREF(seq_ts);
    Py_DECREF(head);
    return update;
}

static PyObject *
step_call(Step *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        return fallback(self, args, nargsf, kwnames);
    }
    PyObject *adv = args[0];
    if (Py_TYPE(adv) != self->advertisement->cls) {
        return fallback(self, args, nargsf, kwnames);
    }
    const Py_ssize_t *a = self->advertisement->offsets;
    PyObject *manufacturer_data = SPEC_SLOT(adv, a[A_MANUFACTURER_DATA]);
    PyObject *address = SPEC_SLOT(adv, a[A_ADDRESS]);
    PyObject *ts = SPEC_SLOT(adv, a[A_TS]);
    PyObject *rssi = SPEC_SLOT(adv, a[A_RSSI]);
    PyObject *name = SPEC_SLOT(adv, a[A_NAME]);
    if (manufacturer_data == NULL || !PyDict_CheckExact(manufacturer_data) || address == NULL
        || !PyUnicode_CheckExact(address) || ts == NULL || !PyFloat_CheckExact(ts)
        || rssi == NULL || name == NULL || !(name == Py_None || PyUnicode_CheckExact(name))) {
        return fallback(self, args, nargsf, kwnames);
    }
    PyObject *data = PyDict_GetItemWithError(manufacturer_data, self->refs[REF_COMPANY_ID]);
    if (data == NULL || !PyBytes_CheckExact(data)) {
        PyErr_Clear();
        return fallback(self, args, nargsf, kwnames);
    }
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(data);
    if (PyBytes_GET_SIZE(data) <= self->header_bytes || bytes[0] != self->product_advertisement) {
        return fallback(self, args, nargsf, kwnames);
    }
    PyObject *dev = PyDict_GetItemWithError(self->refs[REF_DEVICES], address);
    if (dev == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_INCREF(data);
        PyObject *update = first_frame(self, adv, address, data, ts, rssi, name);
        Py_DECREF(data);
        return update != NULL || PyErr_Occurred() ? update : fallback(self, args, nargsf, kwnames);
    }
    if (Py_TYPE(dev) != self->device->cls) {
        return fallback(self, args, nargsf, kwnames);
    }
    Py_INCREF(dev);
    Py_INCREF(data); /* the advertisement's dict is anyone's: hold what was read from it */
    PyObject *update = next_frame(self, adv, dev, data);
    Py_DECREF(data);
    Py_DECREF(dev);
    return update != NULL || PyErr_Occurred() ? update : fallback(self, args, nargsf, kwnames);
}

static int
step_traverse(Step *self, visitproc visit, void *arg)
{
    for (int i = 0; i < REF_COUNT; i++) {
        Py_VISIT(self->refs[i]);
    }
    return 0;
}

static int
step_clear(Step *self)
{
    for (int i = 0; i < REF_COUNT; i++) {
        Py_CLEAR(self->refs[i]);
    }
    return 0;
}

static void
step_dealloc(Step *self)
{
    PyObject_GC_UnTrack(self);
    step_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
step_vectorcall_entry(PyObject *callable, PyObject *const *args, size_t nargsf,
                      PyObject *kwnames)
{
    Step *self = (Step *)callable;
    if (self->refs[REF_FALLBACK] == NULL) { /* cleared by the garbage collector */
        PyErr_SetString(PyExc_RuntimeError, "device table step used after it was cleared");
        return NULL;
    }
    return step_call(self, args, nargsf, kwnames);
}

static PyMemberDef step_members[] = {
    {"evicted", T_PYSSIZET, offsetof(Step, evicted), READONLY,
     "Devices this step dropped to stay within max_devices."},
    {"max_devices", T_PYSSIZET, offsetof(Step, max_devices), 0,
     "The table's bound (DevicesState.max_devices sets it, checked there)."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject StepType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "victron_ble_bms.sources._accept.Step",
    .tp_basicsize = sizeof(Step),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Step, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)step_traverse,
    .tp_clear = (inquiry)step_clear,
    .tp_dealloc = (destructor)step_dealloc,
    .tp_members = step_members,
    .tp_doc = "DevicesState.update's hot paths, compiled (sources/_accept.c).",
};

static const Spec *
spec_of(PyObject *capsule, Py_ssize_t count, const char *what)
{
    const Spec *spec =
        PyCapsule_CheckExact(capsule) ? (const Spec *)PyCapsule_GetPointer(capsule, SPEC_NAME) : NULL;
    if (spec == NULL || (count >= 0 && spec->count != count)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "step: %s is not a spec of %zd slots", what, count);
        return NULL;
    }
    return spec;
}

static int
config_number(PyObject *config, const char *name, double *out)
{
    PyObject *value = PyDict_GetItemString(config, name);
    if (value == NULL || !(PyFloat_Check(value) || PyLong_Check(value))) {
        PyErr_Format(PyExc_TypeError, "step: config[%s] must be a number", name);
        return -1;
    }
    *out = PyFloat_AsDouble(value);
    return PyErr_Occurred() ? -1 : 0;
}

/* step(config: dict) -> Step: see devices.py `_compiled_step` for what config holds. */
static PyObject *
py_step(PyObject *module, PyObject *config)
{
    if (!PyDict_CheckExact(config)) {
        PyErr_SetString(PyExc_TypeError, "step(config: dict)");
        return NULL;
    }
    Step *self = PyObject_GC_New(Step, &StepType);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = step_vectorcall_entry;
    for (int i = 0; i < REF_COUNT; i++) {
        self->refs[i] = NULL;
    }
    for (int i = 0; i < B_COUNT; i++) {
        self->builders[i] = (Builder){NULL, NULL, 0};
    }
    self->evicted = 0;
    PyObject_GC_Track(self);
    for (int i = 0; i < REF_READING_OK; i++) {
        PyObject *value = PyDict_GetItemString(config, REFERENCE_NAMES[i]);
        if (value == NULL) {
            PyErr_Format(PyExc_KeyError, "step: config has no %s", REFERENCE_NAMES[i]);
            goto fail;
        }
        self->refs[i] = Py_NewRef(value);
    }
    for (int i = 0; i < B_COUNT; i++) {
        PyObject *parts = PyDict_GetItemString(config, BUILDER_NAMES[i]);
        if (parts == NULL || !PyTuple_CheckExact(parts) || PyTuple_GET_SIZE(parts) != 2
            || !PyTuple_CheckExact(PyTuple_GET_ITEM(parts, 1))) {
            PyErr_Format(PyExc_TypeError, "step: config[%s] must be (spec, constants)",
                         BUILDER_NAMES[i]);
            goto fail;
        }
        PyObject *constants = PyTuple_GET_ITEM(parts, 1);
        Py_ssize_t k = PyTuple_GET_SIZE(constants);
        const Spec *spec = spec_of(PyTuple_GET_ITEM(parts, 0), k + BUILDER_VALUES[i], BUILDER_NAMES[i]);
        if (spec == NULL) {
            goto fail;
        }
        self->refs[REF_READING_OK + i] = Py_NewRef(parts);
        self->builders[i] = (Builder){(Spec *)spec, &PyTuple_GET_ITEM(constants, 0), k};
    }
    if ((self->device = spec_of(self->refs[REF_DEVICE], D_COUNT, "device")) == NULL
        || (self->advertisement = spec_of(self->refs[REF_ADVERTISEMENT], A_COUNT, "advertisement"))
               == NULL
        || (self->reading_record = spec_of(self->refs[REF_READING_RECORD], 1, "reading_record"))
               == NULL
        || (self->cipher = spec_of(self->refs[REF_CIPHER], 3, "cipher")) == NULL) {
        goto fail;
    }
    if (!PyUnicode_CheckExact(self->refs[REF_NO_KEY_PREFIX])) {
        PyErr_SetString(PyExc_TypeError, "step: no_key_prefix must be a str");
        goto fail;
    }
    if (!PyDict_Check(self->refs[REF_DEVICES]) || !PyDict_CheckExact(self->refs[REF_RECORDS])
        || !PyDict_Check(self->refs[REF_CIPHERS])) {
        PyErr_SetString(PyExc_TypeError, "step: devices, records and ciphers must be dicts");
        goto fail;
    }
    if (!PyDict_CheckExact(self->refs[REF_KEYS])) {
        self->refs[REF_KEYS_GET] = PyObject_GetAttrString(self->refs[REF_KEYS], "get");
        if (self->refs[REF_KEYS_GET] == NULL) {
            goto fail;
        }
    }
    double slack, seen_bits, header, product, unencrypted, max_devices;
    if (config_number(config, "forward_slack", &slack) < 0
        || config_number(config, "unencrypted", &unencrypted) < 0
        || config_number(config, "max_devices", &max_devices) < 0
        || config_number(config, "seen_bits", &seen_bits) < 0
        || config_number(config, "header_bytes", &header) < 0
        || config_number(config, "product_advertisement", &product) < 0
        || config_number(config, "keep", &self->keep) < 0
        || config_number(config, "ewma", &self->ewma) < 0) {
        goto fail;
    }
    /* The sequence's bit mask is one 64-bit word here; nonces are 16 bits (docs/protocol.md §1.1). */
    if (seen_bits != 64 || !(0 < slack && slack < 0x8000) || header != 8 || max_devices < 1) {
        PyErr_SetString(PyExc_ValueError, "step: built for 64 seen bits and an 8-byte header");
        goto fail;
    }
    self->forward_slack = (long)slack;
    self->header_bytes = (long)header;
    self->product_advertisement = (long)product;
    self->unencrypted = (long)unencrypted;
    self->max_devices = (Py_ssize_t)max_devices;
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

static PyObject *
names_tuple(const char *const *names, Py_ssize_t n)
{
    PyObject *tuple = PyTuple_New(n);
    for (Py_ssize_t i = 0; tuple != NULL && i < n; i++) {
        PyObject *name = PyUnicode_FromString(names[i]);
        if (name == NULL) {
            Py_CLEAR(tuple);
            break;
        }
        PyTuple_SET_ITEM(tuple, i, name);
    }
    return tuple;
}

static PyMethodDef methods[] = {
    {"step", py_step, METH_O, "The device table's compiled hot path, from its config."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_accept", "The device table's hot path, compiled (devices.py).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__accept(void)
{
    if (PyType_Ready(&StepType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObject(module, "DEVICE_SLOTS", names_tuple(DEVICE_SLOTS, D_COUNT)) < 0
        || PyModule_AddObject(module, "ADVERTISEMENT_SLOTS",
                              names_tuple(ADVERTISEMENT_SLOTS, A_COUNT)) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
