package dev.simkit.backup;

/**
 * Unsigned 32-bit arithmetic on 4-byte big-endian values in byte arrays, without {@code int}:
 * lengths, offsets, capacities and generation numbers (spec §3.5). Every loop runs byte by byte
 * with a short carry. Owns no state.
 */
final class U32 {

    static final short LEN = 4;

    private U32() {
    }

    /** {@code a += b} (mod 2^32). */
    static void add(byte[] a, short aOff, byte[] b, short bOff) {
        short carry = 0;
        for (short i = (short) (LEN - 1); i >= 0; i--) {
            short s = (short) ((a[(short) (aOff + i)] & 0xFF) + (b[(short) (bOff + i)] & 0xFF) + carry);
            a[(short) (aOff + i)] = (byte) s;
            carry = (short) ((s >> 8) & 0x01);
        }
    }

    /** {@code a -= b} (mod 2^32). */
    static void sub(byte[] a, short aOff, byte[] b, short bOff) {
        short borrow = 0;
        for (short i = (short) (LEN - 1); i >= 0; i--) {
            short d = (short) ((a[(short) (aOff + i)] & 0xFF) - (b[(short) (bOff + i)] & 0xFF) - borrow);
            a[(short) (aOff + i)] = (byte) d;
            borrow = (short) (d < 0 ? 1 : 0);
        }
    }

    /** {@code a += v}, v a non-negative short. */
    static void addShort(byte[] a, short aOff, short v) {
        short carry = v;
        for (short i = (short) (LEN - 1); i >= 0 && carry != 0; i--) {
            short s = (short) ((a[(short) (aOff + i)] & 0xFF) + (carry & 0xFF));
            a[(short) (aOff + i)] = (byte) s;
            carry = (short) (((carry >> 8) & 0x7F) + ((s >> 8) & 0x01));
        }
    }

    /** Unsigned comparison: negative, zero or positive like {@code a − b}. */
    static short compare(byte[] a, short aOff, byte[] b, short bOff) {
        for (short i = 0; i < LEN; i++) {
            short x = (short) (a[(short) (aOff + i)] & 0xFF);
            short y = (short) (b[(short) (bOff + i)] & 0xFF);
            if (x != y) {
                return (short) (x < y ? -1 : 1);
            }
        }
        return 0;
    }

    /** {@code a ≥ v} for a non-negative short v. */
    static boolean atLeast(byte[] a, short aOff, short v) {
        if (a[aOff] != 0 || a[(short) (aOff + 1)] != 0) {
            return true;
        }
        short lo = (short) (((a[(short) (aOff + 2)] & 0xFF) << 8) | (a[(short) (aOff + 3)] & 0xFF));
        if (lo < 0) {
            return true; // ≥ 0x8000 > any non-negative short
        }
        return lo >= v;
    }

    /** {@code min(a, v)} for a non-negative short v, as a short. */
    static short minShort(byte[] a, short aOff, short v) {
        return atLeast(a, aOff, v) ? v
                : (short) (((a[(short) (aOff + 2)] & 0xFF) << 8) | (a[(short) (aOff + 3)] & 0xFF));
    }

    static void setShort(byte[] a, short aOff, short v) {
        a[aOff] = 0;
        a[(short) (aOff + 1)] = 0;
        a[(short) (aOff + 2)] = (byte) (v >> 8);
        a[(short) (aOff + 3)] = (byte) v;
    }

    static boolean isZero(byte[] a, short aOff) {
        return (byte) (a[aOff] | a[(short) (aOff + 1)] | a[(short) (aOff + 2)] | a[(short) (aOff + 3)]) == 0;
    }

    static boolean isAllOnes(byte[] a, short aOff) {
        return (byte) (a[aOff] & a[(short) (aOff + 1)] & a[(short) (aOff + 2)] & a[(short) (aOff + 3)])
                == (byte) 0xFF;
    }

    /**
     * {@code ⌈a / 2^shift⌉} for 1 ≤ shift ≤ 15, or −1 when it does not fit a non-negative short.
     */
    static short ceilShift(byte[] a, short aOff, short shift) {
        short hi = (short) (((a[aOff] & 0xFF) << 8) | (a[(short) (aOff + 1)] & 0xFF));
        short lo = (short) (((a[(short) (aOff + 2)] & 0xFF) << 8) | (a[(short) (aOff + 3)] & 0xFF));
        // hi · 2^(16−shift) must stay below 2^15: hi < 2^(shift−1).
        if ((short) ((hi >> (short) (shift - 1)) & (short) 0x7FFF) != 0 || hi < 0) {
            return -1;
        }
        short loMask = (short) ((short) (1 << shift) - 1);
        short q = (short) ((short) (hi << (short) (16 - shift))
                | (short) ((lo >> shift) & (short) ((short) (1 << (short) (16 - shift)) - 1)));
        if ((short) (lo & loMask) != 0) {
            q++;
        }
        return q;
    }

    /** {@code a >> shift} when it fits a non-negative short (the caller knows it does). */
    static short shiftDown(byte[] a, short aOff, short shift) {
        short hi = (short) (((a[aOff] & 0xFF) << 8) | (a[(short) (aOff + 1)] & 0xFF));
        short lo = (short) (((a[(short) (aOff + 2)] & 0xFF) << 8) | (a[(short) (aOff + 3)] & 0xFF));
        return (short) ((short) (hi << (short) (16 - shift))
                | (short) ((lo >> shift) & (short) ((short) (1 << (short) (16 - shift)) - 1)));
    }

    /** The low 16 bits of {@code a}. */
    static short low(byte[] a, short aOff) {
        return (short) (((a[(short) (aOff + 2)] & 0xFF) << 8) | (a[(short) (aOff + 3)] & 0xFF));
    }
}
