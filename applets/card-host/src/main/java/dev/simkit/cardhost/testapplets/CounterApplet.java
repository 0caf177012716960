package dev.simkit.cardhost.testapplets;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.OwnerPIN;
import javacard.framework.Util;

/**
 * Test applet that proves the runtime: persistent state updated by several writes of every
 * kind the write hook handles (field stores, Util.setShort, array element stores,
 * arrayCopy, arrayFillNonAtomic), transient arrays, and an OwnerPIN.
 *
 * <p>State: {@code balance}, {@code counter} (shorts); {@code log} = balance ‖ counter
 * (written with setShort); {@code mirror[i] = ~log[i]}; {@code blob} (8 bytes). A state is
 * consistent when log and mirror agree with the two shorts. One UPDATE makes 10 persistent
 * writes: 2 fields + 2 × setShort (2 bytes each) + 4 mirror bytes.
 *
 * <p>Java Card 3.0.5 subset only: no java.util, no int arithmetic.
 */
public class CounterApplet extends Applet {
    /** UPDATE inside a transaction; P1P2 = amount added to balance. */
    public static final byte INS_UPDATE = (byte) 0x10;
    /** Same writes, then abortTransaction(). */
    public static final byte INS_UPDATE_ABORT = (byte) 0x11;
    /** Same writes, then leave process() with the transaction open: P1 = 0 ISOException 6A80,
     *  1 ArrayIndexOutOfBoundsException (6F00), 2 normal return. */
    public static final byte INS_UPDATE_ESCAPE = (byte) 0x12;
    /** Same writes without a transaction. */
    public static final byte INS_UPDATE_NO_TXN = (byte) 0x13;
    /** Util.arrayFillNonAtomic(blob, 0, 8, P1); with P2 = 1 inside a transaction that is then aborted. */
    public static final byte INS_FILL_NON_ATOMIC = (byte) 0x14;
    /** Util.arrayCopy of 8 bytes of value P1 (from a transient scratch) into blob, no transaction. */
    public static final byte INS_COPY_ATOMIC = (byte) 0x15;
    /** PIN check with the command data. */
    public static final byte INS_VERIFY = (byte) 0x20;
    /** beginTransaction; PIN check; balance += 1; abortTransaction. Returns tries remaining. */
    public static final byte INS_VERIFY_IN_ABORTED_TXN = (byte) 0x21;
    /** beginTransaction; PIN check; balance += 1; commitTransaction. Returns tries remaining. */
    public static final byte INS_VERIFY_IN_TXN = (byte) 0x22;
    /** OwnerPIN.resetAndUnblock(). */
    public static final byte INS_UNBLOCK = (byte) 0x23;
    /** Fill both transient arrays with P1 (element stores and arrayFillNonAtomic). */
    public static final byte INS_SET_TRANSIENT = (byte) 0x30;
    /** Return the CLEAR_ON_RESET array ‖ the CLEAR_ON_DESELECT array (4 bytes each). */
    public static final byte INS_GET_TRANSIENT = (byte) 0x31;
    /** balance(2) counter(2) log(4) mirror(4) blob(8) tries(1) = 21 bytes. */
    public static final byte INS_GET_STATE = (byte) 0x40;

    public static final short STATE_LENGTH = 21;
    private static final byte[] DEFAULT_PIN = {(byte) 0x31, (byte) 0x32, (byte) 0x33, (byte) 0x34};

    private short balance;
    private short counter;
    private final byte[] log = new byte[4];
    private final byte[] mirror = new byte[4];
    private final byte[] blob = new byte[8];
    private final OwnerPIN pin;
    private final byte[] resetScratch;
    private final byte[] deselectScratch;

    protected CounterApplet() {
        pin = new OwnerPIN((byte) 3, (byte) 8);
        pin.update(DEFAULT_PIN, (short) 0, (byte) DEFAULT_PIN.length);
        resetScratch = JCSystem.makeTransientByteArray((short) 8, JCSystem.CLEAR_ON_RESET);
        deselectScratch = JCSystem.makeTransientByteArray((short) 4, JCSystem.CLEAR_ON_DESELECT);
        // Start from a consistent state (mirror of an all-zero log).
        updateMirror();
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new CounterApplet().register(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        short p1p2 = Util.getShort(buf, ISO7816.OFFSET_P1);
        byte p1 = buf[ISO7816.OFFSET_P1];
        byte p2 = buf[ISO7816.OFFSET_P2];
        switch (buf[ISO7816.OFFSET_INS]) {
            case INS_UPDATE:
                JCSystem.beginTransaction();
                update(p1p2);
                JCSystem.commitTransaction();
                return;
            case INS_UPDATE_ABORT:
                JCSystem.beginTransaction();
                update(p1p2);
                JCSystem.abortTransaction();
                return;
            case INS_UPDATE_ESCAPE:
                JCSystem.beginTransaction();
                update((short) 1);
                if (p1 == 0) {
                    ISOException.throwIt(ISO7816.SW_WRONG_DATA);
                } else if (p1 == 1) {
                    blob[(short) (blob.length + 1)] = 0; // ArrayIndexOutOfBoundsException
                }
                return; // transaction still open
            case INS_UPDATE_NO_TXN:
                update(p1p2);
                return;
            case INS_FILL_NON_ATOMIC:
                if (p2 == 1) {
                    JCSystem.beginTransaction();
                    Util.arrayFillNonAtomic(blob, (short) 0, (short) blob.length, p1);
                    JCSystem.abortTransaction();
                } else {
                    Util.arrayFillNonAtomic(blob, (short) 0, (short) blob.length, p1);
                }
                return;
            case INS_COPY_ATOMIC:
                Util.arrayFillNonAtomic(resetScratch, (short) 0, (short) 8, p1); // transient: not counted
                Util.arrayCopy(resetScratch, (short) 0, blob, (short) 0, (short) 8);
                return;
            case INS_VERIFY:
                verify(apdu);
                return;
            case INS_VERIFY_IN_ABORTED_TXN:
            case INS_VERIFY_IN_TXN:
                verifyInTransaction(apdu, buf[ISO7816.OFFSET_INS] == INS_VERIFY_IN_TXN);
                return;
            case INS_UNBLOCK:
                pin.resetAndUnblock();
                return;
            case INS_SET_TRANSIENT:
                for (short i = 0; i < (short) 4; i++) {
                    deselectScratch[i] = p1;
                }
                Util.arrayFillNonAtomic(resetScratch, (short) 0, (short) 4, p1);
                resetScratch[4] = p1;
                return;
            case INS_GET_TRANSIENT:
                Util.arrayCopyNonAtomic(resetScratch, (short) 0, buf, (short) 0, (short) 4);
                Util.arrayCopyNonAtomic(deselectScratch, (short) 0, buf, (short) 4, (short) 4);
                apdu.setOutgoingAndSend((short) 0, (short) 8);
                return;
            case INS_GET_STATE:
                getState(apdu);
                return;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    /** The multi-write update whose intermediate states the tear tests walk. */
    private void update(short amount) {
        balance = (short) (balance + amount);
        counter = (short) (counter + 1);
        Util.setShort(log, (short) 0, balance);
        Util.setShort(log, (short) 2, counter);
        updateMirror();
    }

    private void updateMirror() {
        for (short i = 0; i < (short) 4; i++) {
            mirror[i] = (byte) ~log[i];
        }
    }

    private void verify(APDU apdu) {
        short len = apdu.setIncomingAndReceive();
        if (!pin.check(apdu.getBuffer(), ISO7816.OFFSET_CDATA, (byte) len)) {
            ISOException.throwIt((short) (0x63C0 | pin.getTriesRemaining()));
        }
    }

    private void verifyInTransaction(APDU apdu, boolean commit) {
        short len = apdu.setIncomingAndReceive();
        byte[] buf = apdu.getBuffer();
        JCSystem.beginTransaction();
        pin.check(buf, ISO7816.OFFSET_CDATA, (byte) len);
        balance = (short) (balance + 1);
        if (commit) {
            JCSystem.commitTransaction();
        } else {
            JCSystem.abortTransaction();
        }
        buf[0] = pin.getTriesRemaining();
        apdu.setOutgoingAndSend((short) 0, (short) 1);
    }

    private void getState(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        Util.setShort(buf, (short) 0, balance);
        Util.setShort(buf, (short) 2, counter);
        Util.arrayCopyNonAtomic(log, (short) 0, buf, (short) 4, (short) 4);
        Util.arrayCopyNonAtomic(mirror, (short) 0, buf, (short) 8, (short) 4);
        Util.arrayCopyNonAtomic(blob, (short) 0, buf, (short) 12, (short) 8);
        buf[20] = pin.getTriesRemaining();
        apdu.setOutgoingAndSend((short) 0, STATE_LENGTH);
    }
}
