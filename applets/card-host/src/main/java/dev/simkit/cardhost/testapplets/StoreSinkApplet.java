package dev.simkit.cardhost.testapplets;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;
import javacardx.apdu.ExtendedLength;

/**
 * Test applet for throughput baselines: INS 0x02 STORE copies the command data (short or
 * extended APDUs) into a persistent array, from offset 0 on each command — the least any applet
 * that keeps data must do with it, so the rate of STOREs in maximum-size APDUs is the fair "raw
 * rate" a store is compared with. INS 0x04 READ returns the first Ne bytes of the array.
 */
public class StoreSinkApplet extends Applet implements ExtendedLength {
    public static final byte INS_STORE = (byte) 0x02;
    public static final byte INS_READ = (byte) 0x04;
    /** Bytes kept: the largest command data a card reporting 7FFF accepts. */
    public static final short CAPACITY = (short) 0x7FFF;

    private final byte[] store = new byte[CAPACITY];

    protected StoreSinkApplet() {
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new StoreSinkApplet().register(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        switch (buf[ISO7816.OFFSET_INS]) {
            case INS_STORE:
                store(apdu);
                break;
            case INS_READ:
                short ne = apdu.setOutgoing();
                short n = ne < 0 || ne > CAPACITY ? CAPACITY : ne;
                apdu.setOutgoingLength(n);
                apdu.sendBytesLong(store, (short) 0, n);
                break;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    private void store(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        short got = apdu.setIncomingAndReceive();
        short off = apdu.getOffsetCdata();
        short total = apdu.getIncomingLength();
        if (total > CAPACITY) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        short at = 0;
        while (got > 0) {
            Util.arrayCopyNonAtomic(buf, off, store, at, got);
            at = (short) (at + got);
            got = at < total ? apdu.receiveBytes(off) : 0;
        }
    }
}
