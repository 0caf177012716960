package dev.simkit.credit;

/**
 * Wide arithmetic for money and counters without {@code int} (spec conventions: "at least 33
 * bits").
 *
 * <p>Values live in byte arrays, big-endian. A u32/i32 field (4 bytes) is first widened into a
 * 5-byte (40-bit) two's-complement register with {@link #widen}; sums and differences of any two
 * widened 32-bit values then fit without overflow, and {@link #compare} orders registers as
 * signed 40-bit numbers. Every loop runs byte by byte with a short carry, so the code needs only
 * the {@code short} type a Java Card VM guarantees.
 *
 * <p>Owns no state; the registers are caller-supplied (transient scratch).
 */
final class Arith {

    /** Bytes in a wide register: 40 bits, enough for u32 + u32 and i32 − u32. */
    static final short WIDE = 5;
    static final short U32 = 4;

    private Arith() {
    }

    /**
     * {@code dst[0..5) = src[0..4)}, sign-extended when {@code signed} (i32), zero-extended
     * otherwise (u32).
     */
    static void widen(byte[] src, short srcOff, boolean signed, byte[] dst, short dstOff) {
        dst[dstOff] = (signed && src[srcOff] < 0) ? (byte) 0xFF : (byte) 0x00;
        for (short i = 0; i < U32; i++) {
            dst[(short) (dstOff + 1 + i)] = src[(short) (srcOff + i)];
        }
    }

    /** {@code dst[0..5) = 0}. */
    static void zero(byte[] dst, short dstOff) {
        for (short i = 0; i < WIDE; i++) {
            dst[(short) (dstOff + i)] = 0;
        }
    }

    /** {@code a += b} on wide registers (mod 2^40; the callers' operands never overflow). */
    static void add(byte[] a, short aOff, byte[] b, short bOff) {
        short carry = 0;
        for (short i = (short) (WIDE - 1); i >= 0; i--) {
            short s = (short) ((a[(short) (aOff + i)] & 0xFF) + (b[(short) (bOff + i)] & 0xFF) + carry);
            a[(short) (aOff + i)] = (byte) s;
            carry = (short) ((s >> 8) & 0x01);
        }
    }

    /** {@code a -= b} on wide registers. */
    static void sub(byte[] a, short aOff, byte[] b, short bOff) {
        short borrow = 0;
        for (short i = (short) (WIDE - 1); i >= 0; i--) {
            short d = (short) ((a[(short) (aOff + i)] & 0xFF) - (b[(short) (bOff + i)] & 0xFF) - borrow);
            a[(short) (aOff + i)] = (byte) d;
            borrow = (short) (d < 0 ? 1 : 0);
        }
    }

    /** {@code a += 1} on a wide register. */
    static void increment(byte[] a, short aOff) {
        for (short i = (short) (WIDE - 1); i >= 0; i--) {
            byte v = (byte) (a[(short) (aOff + i)] + 1);
            a[(short) (aOff + i)] = v;
            if (v != 0) {
                return;
            }
        }
    }

    /** Signed comparison of two wide registers: negative, zero or positive like {@code a − b}. */
    static short compare(byte[] a, short aOff, byte[] b, short bOff) {
        // The top byte carries the sign: compare it signed, the rest unsigned.
        if (a[aOff] != b[bOff]) {
            return (short) (a[aOff] < b[bOff] ? -1 : 1);
        }
        return compareUnsigned(a, (short) (aOff + 1), b, (short) (bOff + 1), (short) (WIDE - 1));
    }

    /** Unsigned comparison of two {@code len}-byte big-endian numbers. */
    static short compareUnsigned(byte[] a, short aOff, byte[] b, short bOff, short len) {
        for (short i = 0; i < len; i++) {
            short x = (short) (a[(short) (aOff + i)] & 0xFF);
            short y = (short) (b[(short) (bOff + i)] & 0xFF);
            if (x != y) {
                return (short) (x < y ? -1 : 1);
            }
        }
        return 0;
    }

    /** True when all {@code len} bytes are zero. */
    static boolean isZero(byte[] a, short aOff, short len) {
        byte acc = 0;
        for (short i = 0; i < len; i++) {
            acc |= a[(short) (aOff + i)];
        }
        return acc == 0;
    }

    /** True when all {@code len} bytes are {@code FF} (u32: 2^32−1). */
    static boolean isAllOnes(byte[] a, short aOff, short len) {
        byte acc = (byte) 0xFF;
        for (short i = 0; i < len; i++) {
            acc &= a[(short) (aOff + i)];
        }
        return acc == (byte) 0xFF;
    }

    /** True when a 4-byte value read as i32 is negative (as u32: above 2^31−1). */
    static boolean topBitSet(byte[] a, short aOff) {
        return a[aOff] < 0;
    }

    /** Unsigned comparison of two u16 values held in shorts. */
    static boolean lessThanU16(short a, short b) {
        return (short) (a ^ (short) 0x8000) < (short) (b ^ (short) 0x8000);
    }
}
