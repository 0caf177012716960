package dev.simkit.cardhost.testapplets.shape;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;
import javacardx.apdu.ExtendedLength;

/**
 * Test applet that reports what the runtime told it about a command: INS 01 answers
 * Nc (u16, all data received) ‖ Ne as returned by {@code setOutgoing} (s16) ‖ the last data
 * byte (00 without data). Any other INS: 6D00.
 */
public class ShapeApplet extends Applet implements ExtendedLength {
    public static final byte INS_SHAPE = (byte) 0x01;

    protected ShapeApplet() {
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new ShapeApplet().register(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        if (buf[ISO7816.OFFSET_INS] != INS_SHAPE) {
            ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
        short got = apdu.setIncomingAndReceive();
        short off = apdu.getOffsetCdata();
        short total = apdu.getIncomingLength();
        byte last = 0;
        while (true) {
            if (got > 0) {
                last = buf[(short) (off + got - 1)];
            }
            total = (short) (total - got);
            if (total <= 0) {
                break;
            }
            got = apdu.receiveBytes(off);
        }
        short nc = apdu.getIncomingLength();
        short ne = apdu.setOutgoing();
        Util.setShort(buf, (short) 0, nc);
        Util.setShort(buf, (short) 2, ne);
        buf[4] = last;
        apdu.setOutgoingLength((short) 5);
        apdu.sendBytes((short) 0, (short) 5);
    }
}
