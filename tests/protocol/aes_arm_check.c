/* The ARMv8 AES of protocol/_aes_arm.h against FIPS-197 appendix C.1 and A.1, built for
 * aarch64 and run under qemu by tests/protocol/test_aes_arm.py (no ARM machine needed).
 * Prints "ok" and exits 0, or says which check failed and exits 1; exits 2 when the CPU has
 * no AES instructions (then nothing was checked). */
#include <stdio.h>
#include <string.h>

#include "../../victron_ble_bms/protocol/_aes_arm.h"

static int
hex_equal(const unsigned char *got, const char *want_hex, int n)
{
    for (int i = 0; i < n; i++) {
        unsigned int byte;
        sscanf(want_hex + 2 * i, "%2x", &byte);
        if (got[i] != byte) {
            return 0;
        }
    }
    return 1;
}

int
main(void)
{
    if (!cpu_has_aes()) {
        puts("no AES instructions");
        return 2;
    }
    unsigned char key[16], plain[16], rk[176], out[16];
    for (int i = 0; i < 16; i++) {
        key[i] = (unsigned char)i;
        plain[i] = (unsigned char)(i * 0x11);
    }
    expand_key(key, rk);
    encrypt_block(rk, plain, out);
    if (!hex_equal(out, "69c4e0d86a7b0430d8cdb78070b4c55a", 16)) {
        puts("FIPS-197 C.1 ciphertext differs");
        return 1;
    }
    /* A.1: the last round key of 2b7e1516 28aed2a6 abf71588 09cf4f3c. */
    const unsigned char key_a1[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                                      0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};
    expand_key(key_a1, rk);
    if (!hex_equal(rk + 160, "d014f9a8c9ee2589e13f0cc8b6630ca6", 16)) {
        puts("FIPS-197 A.1 key expansion differs");
        return 1;
    }
    puts("ok");
    return 0;
}
