/* A frame's payload (docs/protocol.md §1.2): its data bytes 8 … 23 XOR keystream block 0 for the
 * nonce in bytes 5-6, as one little-endian int, zero past the received bytes (a record shorter
 * than 16 bytes, a cut frame), so two frames with the same data give the same int whatever
 * their nonces. The one place that assembles it, from a keystream block made by _accel.c's
 * AES instructions or (sources/_accept.c) by `cryptography`. */
#ifndef VICTRON_BMS_PAYLOAD_H
#define VICTRON_BMS_PAYLOAD_H

#include <Python.h>
#include <string.h>

#define PAYLOAD_HEADER_BYTES 8 /* envelope.py: the clear header */
#define PAYLOAD_BLOCK 16

/* The counter block to encrypt for `frame` (at least 9 bytes): its nonce, then zeros. */
static inline void
payload_counter(const unsigned char *frame, unsigned char counter[PAYLOAD_BLOCK])
{
    memset(counter, 0, PAYLOAD_BLOCK);
    counter[0] = frame[5];
    counter[1] = frame[6];
}

/* The payload int of `frame` (`size` bytes, more than the header) from its keystream block
 * `stream` (overwritten). */
static inline PyObject *
payload_int(unsigned char stream[PAYLOAD_BLOCK], const unsigned char *frame, Py_ssize_t size)
{
    Py_ssize_t n = size - PAYLOAD_HEADER_BYTES;
    if (n > PAYLOAD_BLOCK) {
        n = PAYLOAD_BLOCK;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        stream[i] ^= frame[PAYLOAD_HEADER_BYTES + i];
    }
    memset(stream + n, 0, (size_t)(PAYLOAD_BLOCK - n));
#if PY_VERSION_HEX >= 0x030D0000
    return PyLong_FromUnsignedNativeBytes(
        stream, PAYLOAD_BLOCK, Py_ASNATIVEBYTES_LITTLE_ENDIAN | Py_ASNATIVEBYTES_UNSIGNED_BUFFER);
#else
    return _PyLong_FromByteArray(stream, PAYLOAD_BLOCK, 1, 0);
#endif
}

#endif
