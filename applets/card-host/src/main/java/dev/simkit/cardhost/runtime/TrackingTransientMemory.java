package dev.simkit.cardhost.runtime;

import com.licel.jcardsim.base.TransientMemory;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * jCardSim's transient memory, plus an identity set of every transient array.
 *
 * <p>All of {@code JCSystem.makeTransient*Array} and {@code makeGlobalArray} end in
 * {@link TransientMemory#storeArray}, so overriding it records transient arrays no matter
 * whether the applet or library code (e.g. OwnerPIN's validated flag) created them. The
 * write hook asks {@link #isTransientArray} on every array store: writes to these arrays are
 * RAM writes on a real card — never counted, never logged, never torn.
 *
 * <p>The APDU buffers are registered too: they are transient on a real card, but jCardSim
 * allocates them inside {@code APDU} rather than through this class.
 */
final class TrackingTransientMemory extends TransientMemory {
    private final Set<Object> transients = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Object[] apduBuffers = new Object[2];
    /**
     * The last array found transient and the last found persistent: an applet's inner loops
     * write one or two arrays over and over (a RAM bitmap and a persistent link table while
     * allocating blocks), so these two answer most lookups without hashing. An array never
     * changes kind while it lives; both are dropped with the set ({@link #forgetBuffers}).
     */
    private Object lastTransient;
    private Object lastPersistent;

    void registerApduBuffers(byte[] shortBuffer, byte[] extendedBuffer) {
        apduBuffers[0] = shortBuffer;
        apduBuffers[1] = extendedBuffer;
    }

    boolean isTransientArray(Object array) {
        // The APDU buffer is by far the most written array; test it before hashing.
        if (array == apduBuffers[0] || array == apduBuffers[1] || array == lastTransient) {
            return true;
        }
        if (array == lastPersistent) {
            return false;
        }
        boolean isTransient = transients.contains(array);
        if (isTransient) {
            lastTransient = array;
        } else {
            lastPersistent = array;
        }
        return isTransient;
    }

    int transientArrayCount() {
        return transients.size();
    }

    /** Creates a transient int array (JCint.makeTransientIntArray is native in jCardSim). */
    int[] makeIntArray(short length, byte event) {
        int[] a = new int[length];
        storeArray(a, event);
        return a;
    }

    @Override
    protected void storeArray(Object array, byte event) {
        super.storeArray(array, event);
        transients.add(array);
        if (array == lastPersistent) {
            lastPersistent = null;
        }
    }

    @Override
    public byte isTransient(Object obj) {
        // Same answer as jCardSim, but without its linear scans; the APDU buffer counts as
        // CLEAR_ON_DESELECT like on most cards.
        if (obj == apduBuffers[0] || obj == apduBuffers[1]) {
            return javacard.framework.JCSystem.CLEAR_ON_DESELECT;
        }
        return transients.contains(obj) ? super.isTransient(obj) : javacard.framework.JCSystem.NOT_A_TRANSIENT_OBJECT;
    }

    /** Zeroes the APDU buffers; used on power loss and power cycles. */
    void clearApduBuffers() {
        for (Object b : apduBuffers) {
            if (b != null) {
                Arrays.fill((byte[]) b, (byte) 0);
            }
        }
    }

    @Override
    protected void forgetBuffers() {
        super.forgetBuffers();
        transients.clear();
        lastTransient = null;
        lastPersistent = null;
    }

    @Override
    protected void zero(List<Object> list) {
        // jCardSim only zeroes byte/short/Object/boolean arrays; int arrays exist because we
        // implement JCint.makeTransientIntArray.
        super.zero(list);
        for (Object o : list) {
            if (o instanceof int[]) {
                Arrays.fill((int[]) o, 0);
            }
        }
    }

    /** Exposed to the runtime, which lives in the same package but not the same class. */
    void clearDeselect() {
        clearOnDeselect();
    }

    void clearReset() {
        clearOnReset();
    }
}
