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
     * Writes {@code values} into {@code dest[off..]} as one atomic unit (Util.arrayCopy,
     * setShort, JCint.setInt): each byte is counted, so a tear can land inside the unit, but a
     * tear there restores the whole range. Inside a transaction the transaction log already
     * guarantees that; outside one we keep a private copy of the old bytes.
     */
    void atomicBytes(byte[] dest, int off, byte[] values) {
        int len = values.length;
        boolean txn = logging();
        byte[] before = (!txn && rollback) ? Arrays.copyOfRange(dest, off, off + len) : null;
        for (int j = 0; j < len; j++) {
            boolean tear = count();
            if (txn) {
                txnLog.array(dest, off + j, dest[off + j]);
            }
            dest[off + j] = values[j];
            if (tear) {
                if (before != null) {
                    System.arraycopy(before, 0, dest, off, len);
                }
                throw cut();
            }
        }
    }

    /**
     * Writes bytes one by one, counted but never logged (arrayCopyNonAtomic, arrayFillNonAtomic):
     * the Java Card API says these do not use the transaction facility even inside a
     * transaction, so a tear leaves a prefix written and an abort does not undo them.
     */
    void nonAtomicBytes(byte[] dest, int off, byte[] values) {
        for (int j = 0; j < values.length; j++) {
            boolean tear = count();
            dest[off + j] = values[j];
            if (tear) {
                throw cut();
            }
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
