package dev.simkit.cardhost.runtime;

import java.util.Arrays;

/**
 * An append-only log of old values, replayed in reverse to undo writes.
 *
 * <p>Entries are kept in parallel arrays instead of one object per entry so that logging a
 * write inside a transaction allocates nothing in the steady state. Replaying in reverse
 * order means a location written several times ends with its oldest logged value, so no
 * de-duplication is needed.
 */
final class UndoLog {
    private static final byte ARRAY = 0;
    private static final byte FIELD = 1;
    /** A byte-array range: target = array, key = offset, ref = the old bytes. */
    private static final byte RANGE = 2;

    private byte[] kinds = new byte[32];
    private Object[] targets = new Object[32];
    private int[] keys = new int[32];
    private long[] prims = new long[32];
    private Object[] refs = new Object[32];
    private int size;

    int size() {
        return size;
    }

    /** Logs the old value of a primitive array element ({@code bits} as from {@link #bitsOf}). */
    void array(Object array, int index, long bits) {
        add(ARRAY, array, index, bits, null);
    }

    /** Logs the old value of a reference array element. */
    void arrayRef(Object[] array, int index, Object old) {
        add(ARRAY, array, index, 0, old);
    }

    /**
     * Logs the old contents of {@code array[offset..offset + old.length)} as one entry; the log
     * keeps {@code old} (the caller hands over a private copy).
     */
    void range(byte[] array, int offset, byte[] old) {
        add(RANGE, array, offset, 0, old);
    }

    /** Logs the old value of a field; {@code owner} is null for a static field. */
    void field(Object owner, int fieldId, long bits, Object oldRef) {
        add(FIELD, owner, fieldId, bits, oldRef);
    }

    /** Undoes every logged write, newest first, then empties the log. */
    void rollback() {
        for (int i = size - 1; i >= 0; i--) {
            if (kinds[i] == ARRAY) {
                restoreArray(targets[i], keys[i], prims[i], refs[i]);
            } else if (kinds[i] == RANGE) {
                byte[] old = (byte[]) refs[i];
                System.arraycopy(old, 0, targets[i], keys[i], old.length);
            } else {
                FieldRegistry.get(keys[i]).store(targets[i], prims[i], refs[i]);
            }
        }
        clear();
    }

    /** Forgets every entry (commit). References are dropped so the log pins no garbage. */
    void clear() {
        Arrays.fill(targets, 0, size, null);
        Arrays.fill(refs, 0, size, null);
        size = 0;
    }

    private void add(byte kind, Object target, int key, long bits, Object ref) {
        if (size == kinds.length) {
            int n = size * 2;
            kinds = Arrays.copyOf(kinds, n);
            targets = Arrays.copyOf(targets, n);
            keys = Arrays.copyOf(keys, n);
            prims = Arrays.copyOf(prims, n);
            refs = Arrays.copyOf(refs, n);
        }
        kinds[size] = kind;
        targets[size] = target;
        keys[size] = key;
        prims[size] = bits;
        refs[size] = ref;
        size++;
    }

    /** Encodes a float so {@link #restoreArray} can decode it; other primitives widen to long. */
    static long bitsOf(float f) {
        return Float.floatToRawIntBits(f);
    }

    static long bitsOf(double d) {
        return Double.doubleToRawLongBits(d);
    }

    static void restoreArray(Object a, int i, long bits, Object ref) {
        if (a instanceof byte[]) {
            ((byte[]) a)[i] = (byte) bits;
        } else if (a instanceof short[]) {
            ((short[]) a)[i] = (short) bits;
        } else if (a instanceof Object[]) {
            ((Object[]) a)[i] = ref;
        } else if (a instanceof boolean[]) {
            ((boolean[]) a)[i] = bits != 0;
        } else if (a instanceof int[]) {
            ((int[]) a)[i] = (int) bits;
        } else if (a instanceof char[]) {
            ((char[]) a)[i] = (char) bits;
        } else if (a instanceof long[]) {
            ((long[]) a)[i] = bits;
        } else if (a instanceof float[]) {
            ((float[]) a)[i] = Float.intBitsToFloat((int) bits);
        } else if (a instanceof double[]) {
            ((double[]) a)[i] = Double.longBitsToDouble(bits);
        } else {
            throw new IllegalStateException("not an array: " + a);
        }
    }
}
