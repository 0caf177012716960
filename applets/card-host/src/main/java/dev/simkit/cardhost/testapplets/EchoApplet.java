package dev.simkit.cardhost.testapplets;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacardx.apdu.ExtendedLength;

/**
 * Test applet: INS 0x01 echoes the command data (short or extended APDUs).
 * Makes no persistent writes, so it measures the pure APDU path.
 */
public class EchoApplet extends Applet implements ExtendedLength {
    public static final byte INS_ECHO = (byte) 0x01;

    protected EchoApplet() {
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new EchoApplet().register(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        if (buf[ISO7816.OFFSET_INS] != INS_ECHO) {
            ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
        // setIncomingAndReceive first: the length/offset getters are only valid afterwards.
        short got = apdu.setIncomingAndReceive();
        short off = apdu.getOffsetCdata();
        short total = apdu.getIncomingLength();
        while (got < total) {
            got += apdu.receiveBytes((short) (off + got));
        }
        apdu.setOutgoing();
        apdu.setOutgoingLength(total);
        apdu.sendBytes(off, total);
    }
}
