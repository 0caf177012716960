package dev.simkit.cardhost.testapplets.digest;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;
import javacard.security.CryptoException;
import javacard.security.MessageDigest;

/**
 * Test applet for the card host's digest switch: which {@link MessageDigest} implementation an
 * applet gets, and that it hashes correctly from inside a card. Uses Java (class names, String)
 * where a real applet could not; it is a probe, not a Java Card applet.
 */
public class DigestApplet extends Applet {
    /** SHA-256 of the command data (the instance made in the constructor); answers the digest. */
    public static final byte INS_HASH = 0x01;
    /** Class name (UTF-8) of the constructor's SHA-256 instance. */
    public static final byte INS_IMPL = 0x02;
    /**
     * MessageDigest.getInstance(P1, P2 == 1) now; answers its class name, or SW 6Axx with xx the
     * CryptoException reason.
     */
    public static final byte INS_GET_INSTANCE = 0x03;
    /** SHA-256 of the command data into the persistent array {@code last}; answers nothing. */
    public static final byte INS_HASH_PERSISTENT = 0x04;

    private final MessageDigest sha;
    private final byte[] last = new byte[32];

    protected DigestApplet() {
        sha = MessageDigest.getInstance(MessageDigest.ALG_SHA_256, false);
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new DigestApplet().register(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        switch (buf[ISO7816.OFFSET_INS]) {
            case INS_HASH: {
                short n = apdu.setIncomingAndReceive();
                short off = apdu.getOffsetCdata();
                // Hash in two parts so update() and doFinal() both run.
                short half = (short) (n / 2);
                sha.update(buf, off, half);
                short len = sha.doFinal(buf, (short) (off + half), (short) (n - half), buf, (short) 0);
                apdu.setOutgoingAndSend((short) 0, len);
                return;
            }
            case INS_IMPL:
                name(apdu, sha);
                return;
            case INS_GET_INSTANCE:
                try {
                    name(apdu, MessageDigest.getInstance(buf[ISO7816.OFFSET_P1], buf[ISO7816.OFFSET_P2] == 1));
                } catch (CryptoException e) {
                    ISOException.throwIt((short) (0x6A00 | e.getReason()));
                }
                return;
            case INS_HASH_PERSISTENT: {
                short n = apdu.setIncomingAndReceive();
                sha.doFinal(buf, apdu.getOffsetCdata(), n, last, (short) 0);
                return;
            }
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    private static void name(APDU apdu, Object o) {
        byte[] name = o.getClass().getName().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] buf = apdu.getBuffer();
        Util.arrayCopyNonAtomic(name, (short) 0, buf, (short) 0, (short) name.length);
        apdu.setOutgoingAndSend((short) 0, (short) name.length);
    }
}
