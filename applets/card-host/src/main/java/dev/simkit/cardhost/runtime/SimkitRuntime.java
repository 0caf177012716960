package dev.simkit.cardhost.runtime;

import com.licel.jcardsim.base.ApduCase;
import com.licel.jcardsim.base.SimulatorRuntime;
import java.lang.reflect.Field;
import java.util.Arrays;
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
 *   <li>a power cycle or warm reset also rolls back a transaction left open;</li>
 *   <li>the ISO 7816-4 transport rules jCardSim gets wrong are applied before it sees a command
 *       ({@link #screen}): a command with no ISO case, or an extended Lc above 7FFF, is
 *       answered {@code 6700} (jCardSim threw, giving {@code 6F00}); an extended Le of
 *       {@code 0000} (65 536) or 8000..FFFF reaches the applet as Ne = 32 767, the Java Card
 *       maximum (jCardSim gave 0 or a negative Ne); SELECT by an AID no applet matches is
 *       answered {@code 6A82} and leaves the selection alone (jCardSim answered {@code 6999}
 *       with nothing selected and otherwise passed it to the selected applet); a short case 4
 *       command with 255 data bytes (261 bytes, one more than jCardSim's 260-byte APDU buffer)
 *       reaches the applet instead of failing with {@code 6F00} ({@link #resetAPDU}).</li>
 * </ul>
 *
 * <p>With {@code rollback == false} the runtime keeps jCardSim's non-restoring behaviour (and
 * atomic Util methods are not atomic) but still counts writes and tears: the tests use that
 * to prove that their tear walks can detect a broken runtime.
 */
public class SimkitRuntime extends SimulatorRuntime {
    private static final byte[] SW_WRONG_LENGTH = {0x67, 0x00};
    /** jCardSim's APDU keeps Ne in {@code ramVars[0]}; written only for the 261-byte case 4. */
    private static final Field RAM_VARS = apduField("ramVars");
    private static final Field BUFFER = apduField("buffer");

    private final TrackingTransientMemory memory;
    private final WriteTracker tracker;
    private final int shortBufferLength;

    public SimkitRuntime(boolean rollback) {
        this(new TrackingTransientMemory(), rollback);
    }

    private SimkitRuntime(TrackingTransientMemory memory, boolean rollback) {
        super(memory);
        this.memory = memory;
        this.tracker = new WriteTracker(memory, rollback);
        memory.registerApduBuffers(bufferOf(shortAPDU), bufferOf(extendedAPDU));
        this.shortBufferLength = bufferOf(shortAPDU).length;
    }

    private static Field apduField(String name) {
        try {
            Field f = APDU.class.getDeclaredField(name);
            f.setAccessible(true);
            return f;
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("jCardSim APDU has no '" + name + "' field", e);
        }
    }

    private static byte[] bufferOf(APDU apdu) {
        try {
            return (byte[]) BUFFER.get(apdu);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("jCardSim APDU 'buffer' not readable", e);
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
                Screened screened = screen(command);
                if (screened.answer() != null) {
                    return screened.answer();
                }
                response = super.transmitCommand(screened.command());
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
     * The transport-level rules applied before jCardSim sees a command (ISO 7816-4 §5.1 and
     * §11.1.1; simulator.md, "Command APDUs"). Returns the command to hand to jCardSim, or the
     * answer to give instead ({@link Screened}).
     */
    private Screened screen(byte[] command) {
        CommandShape shape = CommandShape.parse(command);
        if (shape == null || shape.nc() > CommandShape.JAVA_CARD_MAX) {
            return Screened.answer(SW_WRONG_LENGTH);
        }
        if (Selection.isSelectByName(command)) {
            Selection.Outcome o = Selection.resolve(applets.keySet(), currentAID, command, shape);
            return o.command() == null ? Screened.answer(o.answer()) : Screened.forward(o.command());
        }
        return Screened.forward(withJavaCardNe(command, shape));
    }

    /** What {@link #screen} decided: a command for jCardSim, or the answer. */
    private record Screened(byte[] command, byte[] answer) {
        static Screened answer(byte[] sw) {
            return new Screened(null, sw.clone());
        }

        static Screened forward(byte[] command) {
            return new Screened(command, null);
        }
    }

    /**
     * An extended Le of 0000 (Ne = 65 536) or 8000..FFFF rewritten to 7FFF: Java Card lengths are
     * {@code short}, so 32 767 is the most an applet can be told ({@code APDU.setOutgoing}); jCardSim
     * read the two bytes as a signed short and told the applet 0 (for 0000) or a negative Ne.
     */
    private static byte[] withJavaCardNe(byte[] command, CommandShape shape) {
        if (!shape.extended() || shape.ne() <= CommandShape.JAVA_CARD_MAX) {
            return command;
        }
        byte[] c = command.clone();
        c[c.length - 2] = 0x7F;
        c[c.length - 1] = (byte) 0xFF;
        return c;
    }

    /**
     * A short case 4 command with 255 data bytes is 261 bytes, one more than jCardSim's short
     * APDU buffer, whose copy then threw (answered {@code 6F00}). The Le byte is not part of the
     * APDU buffer's contents on a card (JCRE §7.1: header and data), so the command is loaded as
     * case 3 without it and Ne is set afterwards.
     */
    @Override
    protected void resetAPDU(APDU apdu, ApduCase apduCase, byte[] buffer) {
        if (buffer != null && apduCase == ApduCase.Case4 && buffer.length > shortBufferLength) {
            int le = buffer[buffer.length - 1] & 0xFF;
            super.resetAPDU(apdu, ApduCase.Case3, Arrays.copyOf(buffer, buffer.length - 1));
            try {
                ((short[]) RAM_VARS.get(apdu))[0] = (short) (le == 0 ? 256 : le);
            } catch (IllegalAccessException e) {
                throw new IllegalStateException("jCardSim APDU 'ramVars' not writable", e);
            }
            return;
        }
        super.resetAPDU(apdu, apduCase, buffer);
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
