package dev.simkit.credit;

/**
 * The money rules of the spec written in {@link Arith}'s 40-bit registers, so that no sum or
 * difference of two 32-bit values can overflow (B + G ≤ U with B = 2^31−1 and G = 2^32−1 is
 * simply false, never a wrapped "true").
 *
 * <p>All values are 4-byte big-endian fields (i32 balance/U/L, u32 amounts); the two registers
 * are the WIDE_A / WIDE_B regions of the transient scratch {@code w}.
 */
final class Money {

    private static final short A = Transients.OFF_WIDE_A;
    private static final short B = Transients.OFF_WIDE_B;

    private Money() {
    }

    /** {@code balance + amount ≤ upper} (i32 + u32 ≤ i32), spec §4.4 step 3 and §4.5 step 8. */
    static boolean fitsUnderUpper(byte[] bal, short balOff, byte[] amt, short amtOff,
            byte[] upper, short upperOff, byte[] w) {
        Arith.widen(bal, balOff, true, w, A);
        Arith.widen(amt, amtOff, false, w, B);
        Arith.add(w, A, w, B);
        Arith.widen(upper, upperOff, true, w, B);
        return Arith.compare(w, A, w, B) <= 0;
    }

    /**
     * {@code newBalance = balance + amount} where the caller has checked it fits under U; the low
     * 4 bytes of the 40-bit sum are then the i32 result.
     */
    static void add(byte[] bal, short balOff, byte[] amt, short amtOff, byte[] out, short outOff, byte[] w) {
        Arith.widen(bal, balOff, true, w, A);
        Arith.widen(amt, amtOff, false, w, B);
        Arith.add(w, A, w, B);
        copyLow(w, out, outOff);
    }

    /**
     * DEBIT (§4.8): answers whether {@code balance − amount ≥ floor} (floor = −L when
     * {@code creditLine}, else 0) and writes {@code balance − amount} to {@code out} either way
     * ({@code out} must be scratch, e.g. the APDU buffer; it is meaningful only on true).
     */
    static boolean debit(byte[] bal, short balOff, byte[] amt, short amtOff, byte[] line, short lineOff,
            boolean creditLine, byte[] out, short outOff, byte[] w) {
        Arith.widen(bal, balOff, true, w, A);
        Arith.widen(amt, amtOff, false, w, B);
        Arith.sub(w, A, w, B);
        copyLow(w, out, outOff);
        // balance − amount ≥ −L  ⇔  balance − amount + L ≥ 0
        if (creditLine) {
            Arith.widen(line, lineOff, true, w, B);
            Arith.add(w, A, w, B);
        }
        return !Arith.topBitSet(w, A);
    }

    /** Limits valid per §3.6: 1 ≤ m ≤ M ≤ 2^31−1, 0 ≤ U ≤ 2^31−1, 0 ≤ L ≤ 2^31−1. */
    static boolean limitsValid(byte[] l, short off) {
        short m = (short) (off + Constants.LIMITS_OFF_MIN);
        short max = (short) (off + Constants.LIMITS_OFF_MAX);
        return !Arith.isZero(l, m, Arith.U32)
                && Arith.compareUnsigned(l, m, l, max, Arith.U32) <= 0
                && !Arith.topBitSet(l, max)
                && !Arith.topBitSet(l, (short) (off + Constants.LIMITS_OFF_UPPER))
                && !Arith.topBitSet(l, (short) (off + Constants.LIMITS_OFF_LINE));
    }

    /** {@code −L ≤ balance ≤ U} for limits at {@code l[off..off+16)} (§4.11 tag 86). */
    static boolean balanceWithin(byte[] bal, short balOff, byte[] l, short off, byte[] w) {
        Arith.widen(bal, balOff, true, w, A);
        Arith.widen(l, (short) (off + Constants.LIMITS_OFF_UPPER), true, w, B);
        if (Arith.compare(w, A, w, B) > 0) {
            return false;
        }
        // balance + L ≥ 0  ⇔  balance ≥ −L
        Arith.widen(l, (short) (off + Constants.LIMITS_OFF_LINE), true, w, B);
        Arith.add(w, A, w, B);
        return !Arith.topBitSet(w, A);
    }

    private static void copyLow(byte[] w, byte[] out, short outOff) {
        for (short i = 0; i < Arith.U32; i++) {
            out[(short) (outOff + i)] = w[(short) (A + 1 + i)];
        }
    }
}
