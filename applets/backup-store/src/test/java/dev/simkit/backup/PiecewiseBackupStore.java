package dev.simkit.backup;

import java.util.Arrays;

import javacard.framework.APDU;

/**
 * The backup store receiving every data field in pieces of at most {@link #piece} bytes, the way
 * a card whose APDU buffer is smaller than the command hands it over. jCardSim delivers the whole
 * data field in the first {@code setIncomingAndReceive}; this subclass keeps a copy of it and
 * gives it back through the applet's two receive seams piece by piece, each piece written where
 * the applet asked for it — so the applet's own parsers run across every piece boundary.
 */
public class PiecewiseBackupStore extends BackupStore {

    /** Piece size for cards installed from now on (tests run one at a time). */
    static volatile int piece = 1;

    private final int size;
    private byte[] pending = new byte[0];
    private int next;

    protected PiecewiseBackupStore(byte[] params) {
        super(params);
        size = piece;
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new PiecewiseBackupStore(BackupStore.installParams(bArray, bOffset)).register();
    }

    @Override
    short receiveFirst(APDU apdu) {
        short all = super.receiveFirst(apdu);
        short off = apdu.getOffsetCdata();
        pending = Arrays.copyOfRange(apdu.getBuffer(), off, off + all);
        // The first piece is already where the applet expects it; scribble over the rest so a
        // parser reading ahead of what it was given fails loudly.
        int first = Math.min(size, all);
        Arrays.fill(apdu.getBuffer(), off + first, off + all, (byte) 0xEE);
        next = first;
        return (short) first;
    }

    @Override
    short receiveMore(APDU apdu, short off) {
        int k = Math.min(size, pending.length - next);
        byte[] buf = apdu.getBuffer();
        Arrays.fill(buf, off, Math.min(buf.length, off + 2 * size + 8), (byte) 0xEE);
        System.arraycopy(pending, next, buf, off, k);
        next += k;
        return (short) k;
    }
}
