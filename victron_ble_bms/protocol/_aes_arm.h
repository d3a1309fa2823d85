/* AES-128 with the ARMv8 Cryptography Extension (AESE/AESMC), for _accel.c on 64-bit ARM: a
 * Raspberry Pi 5 (Cortex-A76), Apple silicon, most ARM servers. A Raspberry Pi 4 (Cortex-A72
 * in the BCM2711) has no such instructions: `cpu_has_aes` says so at run time and
 * `cryptography` does the work there.
 *
 * The same three functions as the x86 branch of _accel.c, the same round-key bytes (FIPS-197
 * order). The key schedule's S-box comes from the AESE instruction too (a word repeated in
 * every column is left in place by ShiftRows), so no table is indexed by key bytes here.
 * Kept in this header so that tests/protocol/aes_arm_check.c can run it under an emulator.
 */
#ifndef VICTRON_BMS_AES_ARM_H
#define VICTRON_BMS_AES_ARM_H

#include <arm_neon.h>
#include <stdint.h>
#include <string.h>
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_AES
#define HWCAP_AES (1 << 3)
#endif
#endif

#if defined(__clang__)
#define ARM_AES_TARGET __attribute__((target("aes")))
#else
#define ARM_AES_TARGET __attribute__((target("+crypto")))
#endif

/* SubWord(w): AESE with a zero round key on w in all four columns. */
ARM_AES_TARGET static uint32_t
sub_word(uint32_t w)
{
    uint8x16_t v = vaeseq_u8(vreinterpretq_u8_u32(vdupq_n_u32(w)), vdupq_n_u8(0));
    return vgetq_lane_u32(vreinterpretq_u32_u8(v), 0);
}

ARM_AES_TARGET static void
expand_key(const unsigned char *key, unsigned char *out)
{
    static const uint8_t rcon[10] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36};
    uint32_t w[44];
    memcpy(w, key, 16); /* words as little-endian loads of the key's bytes */
    for (int i = 4; i < 44; i++) {
        uint32_t t = w[i - 1];
        if (i % 4 == 0) {
            t = sub_word(t);
            t = ((t >> 8) | (t << 24)) ^ rcon[i / 4 - 1]; /* RotWord, then Rcon on byte 0 */
        }
        w[i] = w[i - 4] ^ t;
    }
    memcpy(out, w, 176);
    /* The key schedule is a copy of the key: leave none of it on the stack. */
    memset(w, 0, sizeof w);
    __asm__ __volatile__("" : : "r"(w) : "memory");
}

ARM_AES_TARGET static void
encrypt_block(const unsigned char *round_keys, const unsigned char *in, unsigned char *out)
{
    uint8x16_t x = vld1q_u8(in);
    for (int i = 0; i < 9; i++) {
        x = vaesmcq_u8(vaeseq_u8(x, vld1q_u8(round_keys + 16 * i)));
    }
    x = vaeseq_u8(x, vld1q_u8(round_keys + 144));
    x = veorq_u8(x, vld1q_u8(round_keys + 160));
    vst1q_u8(out, x);
}

static int
cpu_has_aes(void)
{
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_AES) != 0;
#elif defined(__APPLE__)
    return 1; /* every Apple silicon CPU has it */
#else
    return 0;
#endif
}

#endif
