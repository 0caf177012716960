package dev.simkit.cardhost.runtime;

import com.licel.jcardsim.base.SimulatorRuntime;
import java.lang.reflect.Field;
import java.util.function.Supplier;
import javacard.framework.APDU;

/**
 * A jCardSim runtime whose transactions really roll back and whose power can be cut.
 *
 * <p>{@code JCSystem.beginTransaction/commitTransaction/abortTransaction} in jCardSim delegate to
 * the current {@link SimulatorRuntime} (checked with {@code javap -c}), so overriding them here is
 * enough to drive the undo log kept by this card's {@link WriteTracker}; no call-site rewriting is
 * needed for them. Stock jCardSim only keeps a depth counter and never restores anything.
 *
 * <p>Differences from stock jCardSim, all modelled on the JCRE specification:
 * <ul>
 *   <li>abort restores every logged write (fields and array elements of applet objects);</li>
 *   <li>a transaction still open when {@code process()} ends — normally or by an uncaught
 *       exception — is aborted (stock jCardSim leaves it open, wedging the next
 *       beginTransaction);</li>
 *   <li>a tear (power cut after the k-th persistent write) rolls back the open transaction,
 *       clears CLEAR_ON_RESET and CLEAR_ON_DESELECT memory and the APDU buffer, and resets the
 *       card without running {@code deselect()}; {@link #transmitCommand} then throws
 *       {@link PowerLoss} to tell the caller;</li>
 *   <li>a power cycle or warm reset also rolls back a transaction left open.</li>
 * </ul>
 *
 * <p>With {@code rollback == false} the runtime keeps jCardSim's non-restoring behaviour (and
 * atomic Util methods are not atomic) but still counts writes and tears: the tests use that
 * to prove that their tear walks can detect a broken runtime.
 */
public class SimkitRuntime extends SimulatorRuntime {
    private final TrackingTransientMemory memory;
    private final WriteTracker tracker;

    public SimkitRuntime(boolean rollback) {
        this(new TrackingTransientMemory(), rollback);
    }

    private SimkitRuntime(TrackingTransientMemory memory, boolean rollback) {
        super(memory);
        this.memory = memory;
        this.tracker = new WriteTracker(memory, rollback);
        memory.registerApduBuffers(bufferOf(shortAPDU), bufferOf(extendedAPDU));
    }

    private static byte[] bufferOf(APDU apdu) {
        try {
            Field f = APDU.class.getDeclaredField("buffer");
            f.setAccessible(true);
            return (byte[]) f.get(apdu);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("jCardSim APDU has no 'buffer' field", e);
        }
    }

    // ---- operations the card host calls ------------------------------------------------

    /**
     * Processes one command APDU.
     *
     * @throws PowerLoss if the armed tear fired; the card has then already been reset
     */
    @Override
    public byte[] transmitCommand(byte[] command) {
        WriteTracker prev = WriteHook.enter(tracker);
        tracker.startCommand(true);
        try {
            byte[] response;
            try {
                // jCardSim catches every Throwable thrown by select()/process() (a PowerLoss
                // included) and answers 6F00; only deselect() errors escape. Either way the
                // tracker knows whether the power was cut.
                response = super.transmitCommand(command);
            } catch (PowerLoss e) {
                response = null;
            } catch (RuntimeException | Error e) {
                if (!tracker.powerLost()) {
                    abortIfOpen();
                    throw e;
                }
                response = null;
            }
            if (response == null || tracker.powerLost()) {
                int writes = tracker.writes();
                reset();
                throw new PowerLoss("power lost after persistent write " + writes);
            }
            abortIfOpen();
            return response;
        } finally {
            tracker.endCommand();
            WriteHook.exit(prev);
        }
    }

    /**
     * Runs a non-APDU card operation (applet installation) with the write hook bound to this
     * card; its writes are counted (see {@link #lastWriteCount}) but it cannot be torn.
     */
    public <T> T runOnCard(Supplier<T> op) {
        WriteTracker prev = WriteHook.enter(tracker);
        tracker.startCommand(false);
        try {
            activateSimulatorRuntimeInstance();
            return op.get();
        } finally {
            abortIfOpen();
            tracker.endCommand();
            WriteHook.exit(prev);
        }
    }

    /** Power cycle or warm reset: no applet code runs, open transactions roll back. */
    @Override
    public void reset() {
        if (transactionDepth != 0 || tracker.inTransaction()) {
            tracker.rollback();
        }
        tracker.restorePower();
        super.reset();
        memory.clearApduBuffers();
    }

    /** Arms a tear for the next command: power is cut after its k-th persistent write (0 disarms). */
    public void armTear(int k) {
        if (k < 0) {
            throw new IllegalArgumentException("tear index must be >= 0");
        }
        tracker.arm(k);
    }

    public int armedTear() {
        return tracker.armed();
    }

    /** Persistent writes made by the last command (or installation); after a tear, that is k. */
    public int lastWriteCount() {
        return tracker.writes();
    }

    public boolean rollbackEnabled() {
        return tracker.rollbackEnabled();
    }

    /** Number of arrays registered as transient (diagnostics and tests). */
    public int transientArrayCount() {
        return memory.transientArrayCount();
    }

    // ---- JCSystem transaction API --------------------------------------------------------

    @Override
    public void beginTransaction() {
        requirePower();
        super.beginTransaction();
        tracker.begin();
    }

    @Override
    public void commitTransaction() {
        requirePower();
        super.commitTransaction();
        tracker.commit();
    }

    @Override
    public void abortTransaction() {
        requirePower();
        super.abortTransaction();
        tracker.rollback();
    }

    private void abortIfOpen() {
        if (transactionDepth != 0) {
            transactionDepth = 0;
            tracker.rollback();
        }
    }

    private void requirePower() {
        if (tracker.powerLost()) {
            throw new PowerLoss("transaction call after power loss");
        }
    }
}
