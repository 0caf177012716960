package dev.simkit.cardhost.testapplets.copy;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * Test applet for the write tracker's bulk paths: long Util copies and fills into a persistent
 * array. Every command first increments the persistent short {@code seq} (one write), so the
 * copy's bytes are writes 2..LEN+1 of the command and a tear at k leaves k - 1 copied bytes.
 * Tests read {@code data} and {@code pattern} reflectively.
 */
public class CopyApplet extends Applet {
    /** Bytes each whole-array command copies or fills. */
    public static final short LEN = 512;
    /** Size of {@code data} and {@code pattern}. */
    public static final short SIZE = 600;

    /** Util.arrayCopyNonAtomic(pattern, 0, data, 0, LEN). */
    public static final byte INS_COPY_NON_ATOMIC = 0x01;
    /** Util.arrayCopy(pattern, 0, data, 0, LEN), no transaction. */
    public static final byte INS_COPY_ATOMIC = 0x02;
    /** The atomic copy inside a transaction; P1 = 1 commits, else aborts. */
    public static final byte INS_COPY_IN_TXN = 0x03;
    /** The non-atomic copy inside a transaction that is aborted. */
    public static final byte INS_COPY_NON_ATOMIC_IN_TXN = 0x04;
    /** data → data: command data = srcOff(2) destOff(2) length(2); P1 = 1 arrayCopy, else non-atomic. */
    public static final byte INS_COPY_WITHIN = 0x05;
    /** Util.arrayFillNonAtomic(data, 0, LEN, P1). */
    public static final byte INS_FILL_NON_ATOMIC = 0x06;

    private short seq;
    private final byte[] data = new byte[SIZE];
    private final byte[] pattern = new byte[SIZE];

    protected CopyApplet() {
        for (short i = 0; i < SIZE; i++) {
            pattern[i] = (byte) (i * 7 + 1);
        }
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new CopyApplet().register(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        byte p1 = buf[ISO7816.OFFSET_P1];
        seq++;
        switch (buf[ISO7816.OFFSET_INS]) {
            case INS_COPY_NON_ATOMIC:
                Util.arrayCopyNonAtomic(pattern, (short) 0, data, (short) 0, LEN);
                return;
            case INS_COPY_ATOMIC:
                Util.arrayCopy(pattern, (short) 0, data, (short) 0, LEN);
                return;
            case INS_COPY_IN_TXN:
                JCSystem.beginTransaction();
                Util.arrayCopy(pattern, (short) 0, data, (short) 0, LEN);
                if (p1 == 1) {
                    JCSystem.commitTransaction();
                } else {
                    JCSystem.abortTransaction();
                }
                return;
            case INS_COPY_NON_ATOMIC_IN_TXN:
                JCSystem.beginTransaction();
                Util.arrayCopyNonAtomic(pattern, (short) 0, data, (short) 0, LEN);
                JCSystem.abortTransaction();
                return;
            case INS_COPY_WITHIN: {
                apdu.setIncomingAndReceive();
                short at = apdu.getOffsetCdata();
                short src = Util.getShort(buf, at);
                short dest = Util.getShort(buf, (short) (at + 2));
                short len = Util.getShort(buf, (short) (at + 4));
                if (p1 == 1) {
                    Util.arrayCopy(data, src, data, dest, len);
                } else {
                    Util.arrayCopyNonAtomic(data, src, data, dest, len);
                }
                return;
            }
            case INS_FILL_NON_ATOMIC:
                Util.arrayFillNonAtomic(data, (short) 0, LEN, p1);
                return;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }
}
