package dev.simkit.cardhost.testapplets.sink;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;
import dev.simkit.cardhost.testapplets.helper.Cell;
import javacardx.framework.util.intx.JCint;

/**
 * Instrumentation test applet: one store of every kind the rewriter handles, including kinds
 * Java Card does not have (long, double, float, char), static fields, an inner class (javac
 * stores its outer instance before super()), and JCint. Not a valid Java Card applet on purpose.
 */
public class SinkApplet extends Applet {
    public static final byte INS_HIT = 0x01;
    /** mutate() in a transaction; P1 = 1 aborts, else commits. */
    public static final byte INS_MUTATE_TXN = 0x02;
    public static final byte INS_MUTATE = 0x03;
    /** JCint.setInt(bytes, 0, 0x01020304); P1 = 1: inside an aborted transaction. */
    public static final byte INS_SET_INT = 0x04;
    /** Store a fresh transient int array in a field and fill it. */
    public static final byte INS_TRANSIENT_INT = 0x05;
    /** beginTransaction; cell.set(5) (code in another package); abortTransaction. */
    public static final byte INS_HELPER_ABORT = 0x06;
    /** Number of persistent writes made by mutate(). */
    public static final int MUTATE_WRITES = 23;

    static short hits;
    static Object staticRef;
    static long staticWide;

    boolean flag;
    byte b;
    char c;
    short s;
    int i;
    float f;
    long wide;
    double dbl;
    Object ref;
    final byte[] bytes = new byte[4];
    final boolean[] bools = new boolean[2];
    final char[] chars = new char[2];
    final short[] shorts = new short[2];
    final int[] ints = new int[2];
    final long[] longs = new long[2];
    final float[] floats = new float[2];
    final double[] doubles = new double[2];
    final Object[] objs = new Object[2];
    final Inner inner;
    int[] transientInts;
    final Cell cell = new Cell();

    final class Inner {
        short v;
        Object link;

        Inner(short v) {
            this.v = v;
        }
    }

    protected SinkApplet() {
        inner = new Inner((short) 7);
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new SinkApplet().register(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        switch (buf[ISO7816.OFFSET_INS]) {
            case INS_HIT:
                hits++;
                Util.setShort(buf, (short) 0, hits);
                apdu.setOutgoingAndSend((short) 0, (short) 2);
                return;
            case INS_MUTATE_TXN:
                JCSystem.beginTransaction();
                mutate();
                if (buf[ISO7816.OFFSET_P1] == 1) {
                    JCSystem.abortTransaction();
                } else {
                    JCSystem.commitTransaction();
                }
                return;
            case INS_MUTATE:
                mutate();
                return;
            case INS_SET_INT:
                if (buf[ISO7816.OFFSET_P1] == 1) {
                    JCSystem.beginTransaction();
                    JCint.setInt(bytes, (short) 0, 0x01020304);
                    JCSystem.abortTransaction();
                } else {
                    JCint.setInt(bytes, (short) 0, 0x01020304);
                }
                return;
            case INS_TRANSIENT_INT:
                transientInts = JCint.makeTransientIntArray((short) 2, JCSystem.CLEAR_ON_RESET);
                transientInts[0] = 42;
                transientInts[1] = 43;
                return;
            case INS_HELPER_ABORT:
                JCSystem.beginTransaction();
                cell.set((short) 5);
                JCSystem.abortTransaction();
                return;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    private void mutate() {
        flag = !flag;
        b++;
        c++;
        s++;
        i++;
        f += 1.5f;
        wide++;
        dbl += 2.5;
        ref = new Object();
        staticRef = ref;
        staticWide++;
        hits++;
        bytes[0]++;
        bools[0] = !bools[0];
        chars[0]++;
        shorts[0]++;
        ints[0]++;
        longs[0]++;
        floats[0] += 1;
        doubles[0] += 1;
        objs[0] = ref;
        inner.v++;
        inner.link = objs;
    }
}
