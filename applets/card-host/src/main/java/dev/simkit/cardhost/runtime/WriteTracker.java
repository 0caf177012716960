package dev.simkit.cardhost.runtime;

import java.util.Arrays;

/**
 * Per-card state behind the write hook: persistent-write counting, tear arming, and the
 * transaction undo log.
 *
 * <p>Only the thread that holds the card's lock touches a tracker (the hook finds it through
 * a thread-local that the card sets for the duration of an operation), so nothing here is
 * synchronized.
 *
 * <p>Tear semantics: with a tear armed at {@code k}, power is cut right after the k-th
 * persistent write of the next command has reached memory. k = 1..{@link #writes()} therefore
 * walks every intermediate state of the command, including "all writes done, commit not
 * reached".
 */
public final class WriteTracker {
    private final TrackingTransientMemory memory;
    private final boolean rollback;
    private final UndoLog txnLog = new UndoLog();

    private int writes;
    private int tearAt;
    private int armed;
    private boolean powerLost;
    private boolean inTransaction;

    WriteTracker(TrackingTransientMemory memory, boolean rollback) {
        this.memory = memory;
        this.rollback = rollback;
    }

    // ---- called by the hook (hot path) -------------------------------------------------

    /**
     * True if a store to {@code array} is a RAM write that bypasses counting and logging.
     * Throws if the power is already gone: nothing at all may run after a tear.
     */
    boolean skip(Object array) {
        if (powerLost) {
            throw new PowerLoss("write after power loss");
        }
        return memory.isTransientArray(array);
    }

    /**
     * Counts one persistent write that is about to happen. Returns true if the power must be
     * cut right after this write; the caller performs the store and then calls {@link #cut}.
     */
    boolean count() {
        if (powerLost) {
            throw new PowerLoss("write after power loss");
        }
        return ++writes == tearAt;
    }

    /** True if writes must be logged for rollback: a transaction is open and rollback is on. */
    boolean logging() {
        return inTransaction && rollback;
    }

    TrackingTransientMemory memory() {
        return memory;
    }

    UndoLog log() {
        return txnLog;
    }

    /** Marks the power as gone and returns the error to throw. */
    PowerLoss cut() {
        powerLost = true;
        return new PowerLoss("power cut after persistent write " + writes);
    }

    /**
     * Writes {@code values} into {@code dest[off..]} as one atomic unit (Util.setShort,
     * JCint.setInt): see {@link #atomicCopy}.
     */
    void atomicBytes(byte[] dest, int off, byte[] values) {
        atomicCopy(values, 0, dest, off, values.length);
    }

    /**
     * Copies {@code src[srcOff..srcOff+len)} to {@code dest[destOff..]} as one atomic unit
     * (Util.arrayCopy): each byte counts as one persistent write, so a tear can land inside the
     * unit, but a tear there leaves the whole range as it was. Inside a transaction the range's
     * old bytes are logged as one entry (the transaction rollback restores them); outside one
     * the write is simply not made. Without rollback a tear leaves the prefix written, as
     * plain jCardSim would. {@code src} and {@code dest} may be the same array (arraycopy
     * semantics). Ranges are checked by the caller.
     */
    void atomicCopy(byte[] src, int srcOff, byte[] dest, int destOff, int len) {
        atomic(src, srcOff, dest, destOff, len, (byte) 0);
    }

    /** Fills {@code dest[off..off+len)} with {@code value} as one atomic unit (Util.arrayFill). */
    void atomicFill(byte[] dest, int off, int len, byte value) {
        atomic(null, 0, dest, off, len, value);
    }

    /** {@link #atomicCopy} from {@code src}, or a fill with {@code value} when src is null. */
    private void atomic(byte[] src, int srcOff, byte[] dest, int destOff, int len, byte value) {
        if (len <= 0) {
            return;
        }
        requirePower();
        int k = tearInside(len);
        if (logging()) {
            // The old range, once: rollback replays newest first, so this entry and any older
            // ones for the same bytes end with the oldest value, as per-byte entries would.
            txnLog.range(dest, destOff, Arrays.copyOfRange(dest, destOff, destOff + len));
        } else if (k > 0 && rollback) {
            // Torn outside a transaction: the unit is atomic, so none of it stays written.
            writes += k;
            throw cut();
        }
        if (k > 0) {
            // No rollback (the prefix stays), or inside a transaction (the tear's rollback
            // restores the logged range): write exactly the first k bytes, then cut.
            write(src, srcOff, dest, destOff, k, value);
            writes += k;
            throw cut();
        }
        write(src, srcOff, dest, destOff, len, value);
        writes += len;
    }

    /**
     * Copies bytes counted one write each but never logged (arrayCopyNonAtomic): the Java Card
     * API says these do not use the transaction facility even inside a transaction, so a tear
     * after k bytes leaves exactly the first k written and an abort does not undo them. Without
     * a tear inside the range this is one {@code System.arraycopy} (same result, arraycopy's
     * overlap semantics as the per-byte copy of a snapshot had). Ranges are checked by the caller.
     */
    void nonAtomicCopy(byte[] src, int srcOff, byte[] dest, int destOff, int len) {
        nonAtomic(src, srcOff, dest, destOff, len, (byte) 0);
    }

    /** {@link #nonAtomicCopy} of the value {@code value} (arrayFillNonAtomic). */
    void nonAtomicFill(byte[] dest, int off, int len, byte value) {
        nonAtomic(null, 0, dest, off, len, value);
    }

    private void nonAtomic(byte[] src, int srcOff, byte[] dest, int destOff, int len, byte value) {
        if (len <= 0) {
            return;
        }
        requirePower();
        int k = tearInside(len);
        if (k > 0) {
            write(src, srcOff, dest, destOff, k, value);
            writes += k;
            throw cut();
        }
        write(src, srcOff, dest, destOff, len, value);
        writes += len;
    }

    /**
     * The number of bytes (1..len) after which the armed tear fires if it falls inside the next
     * {@code len} writes, else 0.
     */
    private int tearInside(int len) {
        long at = (long) tearAt - writes;
        return at >= 1 && at <= len ? (int) at : 0;
    }

    private static void write(byte[] src, int srcOff, byte[] dest, int destOff, int len, byte value) {
        if (src == null) {
            Arrays.fill(dest, destOff, destOff + len, value);
        } else {
            System.arraycopy(src, srcOff, dest, destOff, len);
        }
    }

    private void requirePower() {
        if (powerLost) {
            throw new PowerLoss("write after power loss");
        }
    }

    // ---- called by the runtime -----------------------------------------------------------

    void arm(int k) {
        armed = k;
    }

    int armed() {
        return armed;
    }

    /** Starts a command: resets the write count and consumes the armed tear, if any. */
    void startCommand(boolean consumeTear) {
        writes = 0;
        if (consumeTear) {
            tearAt = armed;
            armed = 0;
        } else {
            tearAt = 0;
        }
    }

    void endCommand() {
        tearAt = 0;
    }

    int writes() {
        return writes;
    }

    boolean powerLost() {
        return powerLost;
    }

    void restorePower() {
        powerLost = false;
    }

    boolean rollbackEnabled() {
        return rollback;
    }

    boolean inTransaction() {
        return inTransaction;
    }

    int loggedWrites() {
        return txnLog.size();
    }

    void begin() {
        txnLog.clear();
        inTransaction = true;
    }

    void commit() {
        txnLog.clear();
        inTransaction = false;
    }

    /** Undoes the open transaction (if rollback is on) and closes it. */
    void rollback() {
        if (rollback) {
            txnLog.rollback();
        } else {
            txnLog.clear();
        }
        inTransaction = false;
    }
}
