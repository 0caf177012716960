package dev.simkit.cardhost.runtime;

import javacard.framework.Util;

/**
 * The single write hook that rewritten applet bytecode calls for every persistent-looking store.
 *
 * <p>The instrumenter ({@code dev.simkit.cardhost.instrument}) replaces, in applet classes only:
 * <ul>
 *   <li>every {@code xASTORE} by {@code INVOKESTATIC WriteHook.xastore(array, index, value)},
 *       which performs the store itself;</li>
 *   <li>every {@code PUTFIELD}/{@code PUTSTATIC} of an applet-owned field of type
 *       Z B C S I F or reference by "read the old value with GETFIELD/GETSTATIC, call
 *       {@code putField*(owner, old, new, id)} / {@code putStatic*(old, new, id)}, then the
 *       original PUTFIELD/PUTSTATIC" — so the normal path uses no reflection at all;</li>
 *   <li>long/double field stores (Java Card has neither) by {@code putFieldJ/D}/{@code putStaticJ/D},
 *       which store reflectively;</li>
 *   <li>calls to {@code Util.arrayCopy/arrayCopyNonAtomic/arrayFillNonAtomic/arrayFill/setShort} and
 *       {@code JCint.setInt/makeTransientIntArray} by the same-named methods here.</li>
 * </ul>
 *
 * <p>Each hook finds the card's {@link WriteTracker} in a thread-local (set by the card for the
 * duration of an operation; absent when applet code runs outside any card operation, in which
 * case the store just happens). Order in every hook: bounds/null checks first (so an exception
 * leaves no trace, as on a card), then count, then log the old value, then store, then — if the
 * armed tear is due — cut the power.
 */
public final class WriteHook {
    private static final ThreadLocal<WriteTracker> CURRENT = new ThreadLocal<>();

    private WriteHook() {
    }

    /** Makes {@code t} the current tracker of this thread; returns the previous one for {@link #exit}. */
    static WriteTracker enter(WriteTracker t) {
        WriteTracker prev = CURRENT.get();
        CURRENT.set(t);
        return prev;
    }

    static void exit(WriteTracker prev) {
        if (prev == null) {
            CURRENT.remove();
        } else {
            CURRENT.set(prev);
        }
    }

    // ---- array element stores ------------------------------------------------------------

    /** BASTORE: the verifier allows byte[] and boolean[] here, so the static type is Object. */
    public static void bastore(Object array, int i, int v) {
        WriteTracker t = CURRENT.get();
        if (array instanceof byte[]) {
            byte[] a = (byte[]) array;
            if (t == null || t.skip(a)) {
                a[i] = (byte) v;
                return;
            }
            byte old = a[i];
            boolean tear = t.count();
            if (t.logging()) {
                t.log().array(a, i, old);
            }
            a[i] = (byte) v;
            if (tear) {
                throw t.cut();
            }
        } else {
            boolean[] a = (boolean[]) array; // null lands here and throws NPE below, as BASTORE would
            if (t == null || t.skip(a)) {
                a[i] = (v & 1) != 0;
                return;
            }
            boolean old = a[i];
            boolean tear = t.count();
            if (t.logging()) {
                t.log().array(a, i, old ? 1 : 0);
            }
            a[i] = (v & 1) != 0;
            if (tear) {
                throw t.cut();
            }
        }
    }

    public static void sastore(short[] a, int i, int v) {
        WriteTracker t = CURRENT.get();
        if (t == null || t.skip(a)) {
            a[i] = (short) v;
            return;
        }
        short old = a[i];
        boolean tear = t.count();
        if (t.logging()) {
            t.log().array(a, i, old);
        }
        a[i] = (short) v;
        if (tear) {
            throw t.cut();
        }
    }

    public static void castore(char[] a, int i, int v) {
        WriteTracker t = CURRENT.get();
        if (t == null || t.skip(a)) {
            a[i] = (char) v;
            return;
        }
        char old = a[i];
        boolean tear = t.count();
        if (t.logging()) {
            t.log().array(a, i, old);
        }
        a[i] = (char) v;
        if (tear) {
            throw t.cut();
        }
    }

    public static void iastore(int[] a, int i, int v) {
        WriteTracker t = CURRENT.get();
        if (t == null || t.skip(a)) {
            a[i] = v;
            return;
        }
        int old = a[i];
        boolean tear = t.count();
        if (t.logging()) {
            t.log().array(a, i, old);
        }
        a[i] = v;
        if (tear) {
            throw t.cut();
        }
    }

    public static void lastore(long[] a, int i, long v) {
        WriteTracker t = CURRENT.get();
        if (t == null || t.skip(a)) {
            a[i] = v;
            return;
        }
        long old = a[i];
        boolean tear = t.count();
        if (t.logging()) {
            t.log().array(a, i, old);
        }
        a[i] = v;
        if (tear) {
            throw t.cut();
        }
    }

    public static void fastore(float[] a, int i, float v) {
        WriteTracker t = CURRENT.get();
        if (t == null || t.skip(a)) {
            a[i] = v;
            return;
        }
        float old = a[i];
        boolean tear = t.count();
        if (t.logging()) {
            t.log().array(a, i, UndoLog.bitsOf(old));
        }
        a[i] = v;
        if (tear) {
            throw t.cut();
        }
    }

    public static void dastore(double[] a, int i, double v) {
        WriteTracker t = CURRENT.get();
        if (t == null || t.skip(a)) {
            a[i] = v;
            return;
        }
        double old = a[i];
        boolean tear = t.count();
        if (t.logging()) {
            t.log().array(a, i, UndoLog.bitsOf(old));
        }
        a[i] = v;
        if (tear) {
            throw t.cut();
        }
    }

    public static void aastore(Object[] a, int i, Object v) {
        WriteTracker t = CURRENT.get();
        if (t == null || t.skip(a)) {
            a[i] = v;
            return;
        }
        Object old = a[i];
        // AASTORE's store check must fail before the write is counted.
        if (v != null && !a.getClass().getComponentType().isInstance(v)) {
            throw new ArrayStoreException(v.getClass().getName());
        }
        boolean tear = t.count();
        if (t.logging()) {
            t.log().arrayRef(a, i, old);
        }
        a[i] = v;
        if (tear) {
            throw t.cut();
        }
    }

    // ---- field stores (old value supplied by the rewritten code; it does the PUTFIELD) ----

    /** Instance field of type Z B C S I; values arrive widened to int as on the operand stack. */
    public static void putField(Object owner, int old, int v, int fieldId) {
        field(owner, old, v, null, null, fieldId);
    }

    public static void putFieldF(Object owner, float old, float v, int fieldId) {
        field(owner, UndoLog.bitsOf(old), UndoLog.bitsOf(v), null, null, fieldId);
    }

    public static void putFieldA(Object owner, Object old, Object v, int fieldId) {
        field(owner, 0, 0, old, v, fieldId);
    }

    public static void putStatic(int old, int v, int fieldId) {
        field(null, old, v, null, null, fieldId);
    }

    public static void putStaticF(float old, float v, int fieldId) {
        field(null, UndoLog.bitsOf(old), UndoLog.bitsOf(v), null, null, fieldId);
    }

    public static void putStaticA(Object old, Object v, int fieldId) {
        field(null, 0, 0, old, v, fieldId);
    }

    /**
     * Common part of the cat-1 field hooks. {@code owner} is null only for statics: for an
     * instance field, a null owner already threw NPE in the rewritten GETFIELD, as PUTFIELD would.
     */
    private static void field(Object owner, long oldBits, long newBits, Object oldRef, Object newRef, int fieldId) {
        WriteTracker t = CURRENT.get();
        if (t == null) {
            return;
        }
        boolean tear = t.count();
        if (t.logging()) {
            t.log().field(owner, fieldId, oldBits, oldRef);
        }
        if (tear) {
            // The rewritten code would do the store after we return; we never return, so
            // do it here (reflectively — this happens once per tear).
            FieldRegistry.get(fieldId).store(owner, newBits, newRef);
            throw t.cut();
        }
    }

    // ---- long/double fields: the hook performs the store (never used by Java Card code) ----

    public static void putFieldJ(Object owner, long v, int fieldId) {
        wideField(owner, v, fieldId, false);
    }

    public static void putFieldD(Object owner, double v, int fieldId) {
        wideField(owner, UndoLog.bitsOf(v), fieldId, true);
    }

    public static void putStaticJ(long v, int fieldId) {
        wideField(null, v, fieldId, false);
    }

    public static void putStaticD(double v, int fieldId) {
        wideField(null, UndoLog.bitsOf(v), fieldId, true);
    }

    private static void wideField(Object owner, long bits, int fieldId, boolean isDouble) {
        FieldRegistry.FieldRef f = FieldRegistry.get(fieldId);
        WriteTracker t = CURRENT.get();
        if (t != null) {
            long old = isDouble ? UndoLog.bitsOf(f.getDouble(owner)) : f.getLong(owner);
            boolean tear = t.count();
            if (t.logging()) {
                t.log().field(owner, fieldId, old, null);
            }
            f.store(owner, bits, null);
            if (tear) {
                throw t.cut();
            }
            return;
        }
        f.store(owner, bits, null);
    }

    // ---- javacard.framework.Util / JCint replacements ---------------------------------------

    /**
     * Util.arrayCopy: atomic on a card when the destination is persistent. No copy of the
     * source is made: {@code System.arraycopy} already copies as if through a temporary when
     * src and dest are the same array, which is what the Java Card API specifies.
     */
    public static short arrayCopy(byte[] src, short srcOff, byte[] dest, short destOff, short length) {
        WriteTracker t = CURRENT.get();
        if (t == null || t.skip(dest)) {
            return Util.arrayCopy(src, srcOff, dest, destOff, length);
        }
        checkRange(src, srcOff, length);
        checkRange(dest, destOff, length);
        t.atomicCopy(src, srcOff, dest, destOff, length);
        return (short) (destOff + length);
    }

    /** Util.arrayCopyNonAtomic: counted per byte, bypasses the transaction log. */
    public static short arrayCopyNonAtomic(byte[] src, short srcOff, byte[] dest, short destOff, short length) {
        WriteTracker t = CURRENT.get();
        if (t == null || t.skip(dest)) {
            return Util.arrayCopyNonAtomic(src, srcOff, dest, destOff, length);
        }
        checkRange(src, srcOff, length);
        checkRange(dest, destOff, length);
        t.nonAtomicCopy(src, srcOff, dest, destOff, length);
        return (short) (destOff + length);
    }

    /** Util.arrayFillNonAtomic: counted per byte, bypasses the transaction log. */
    public static short arrayFillNonAtomic(byte[] bArray, short bOff, short bLen, byte bValue) {
        WriteTracker t = CURRENT.get();
        if (t == null || t.skip(bArray)) {
            return Util.arrayFillNonAtomic(bArray, bOff, bLen, bValue);
        }
        checkRange(bArray, bOff, bLen);
        t.nonAtomicFill(bArray, bOff, bLen, bValue);
        return (short) (bOff + bLen);
    }

    /**
     * Util.arrayFill (Java Card 3.1; declared native in jCardSim, so calling it unhooked would
     * fail): atomic like arrayCopy.
     */
    public static short arrayFill(byte[] bArray, short bOff, short bLen, byte bValue) {
        WriteTracker t = CURRENT.get();
        checkRange(bArray, bOff, bLen);
        if (t == null || t.skip(bArray)) {
            java.util.Arrays.fill(bArray, bOff, bOff + bLen, bValue);
        } else {
            t.atomicFill(bArray, bOff, bLen, bValue);
        }
        return (short) (bOff + bLen);
    }

    /** Util.setShort: atomic (two bytes, restored together if torn between them). */
    public static short setShort(byte[] bArray, short bOff, short sValue) {
        WriteTracker t = CURRENT.get();
        if (t == null || t.skip(bArray)) {
            return Util.setShort(bArray, bOff, sValue);
        }
        checkRange(bArray, bOff, (short) 2);
        t.atomicBytes(bArray, bOff, new byte[] {(byte) (sValue >> 8), (byte) sValue});
        return (short) (bOff + 2);
    }

    /** JCint.setInt: atomic four bytes, big-endian (native, i.e. missing, in jCardSim). */
    public static short setInt(byte[] bArray, short bOff, int iValue) {
        WriteTracker t = CURRENT.get();
        checkRange(bArray, bOff, (short) 4);
        byte[] v = {(byte) (iValue >> 24), (byte) (iValue >> 16), (byte) (iValue >> 8), (byte) iValue};
        if (t == null || t.skip(bArray)) {
            System.arraycopy(v, 0, bArray, bOff, 4);
        } else {
            t.atomicBytes(bArray, bOff, v);
        }
        return (short) (bOff + 4);
    }

    /** JCint.makeTransientIntArray (native, i.e. missing, in jCardSim). */
    public static int[] makeTransientIntArray(short length, byte event) {
        WriteTracker t = CURRENT.get();
        if (t != null && !t.powerLost()) {
            return t.memory().makeIntArray(length, event);
        }
        throw new IllegalStateException("makeTransientIntArray outside a card operation");
    }

    private static void checkRange(byte[] a, int off, int len) {
        int n = a.length; // NPE for null, as on a card
        if (off < 0 || len < 0 || off > n - len) {
            throw new ArrayIndexOutOfBoundsException("offset " + off + " length " + len + " array " + n);
        }
    }
}
