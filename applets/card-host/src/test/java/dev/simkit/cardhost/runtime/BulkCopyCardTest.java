package dev.simkit.cardhost.runtime;

import static dev.simkit.cardhost.TestCards.cmd;
import static dev.simkit.cardhost.TestCards.okData;
import static dev.simkit.cardhost.TestCards.selectOk;
import static dev.simkit.cardhost.testapplets.copy.CopyApplet.LEN;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.simkit.cardhost.AppletSpec;
import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.Hex;
import dev.simkit.cardhost.TestCards;
import dev.simkit.cardhost.testapplets.copy.CopyApplet;
import java.lang.reflect.Field;
import java.util.Arrays;
import javacard.framework.AID;
import org.junit.jupiter.api.Test;

/**
 * Long Util copies and fills on a card, through the runtime's status/tear API: tears at k leave
 * exactly what a byte-by-byte copy leaves, atomic copies and aborted transactions restore the
 * whole range, overlapping copies equal System.arraycopy, and the write count is one per byte.
 */
class BulkCopyCardTest {
    private static final byte[] AID_BYTES = Hex.parse("F0534D4B4954E5");
    private static final String COPY = "dev.simkit.cardhost.testapplets.copy.CopyApplet";
    private static final byte OLD = (byte) 0xEE;
    /** seq++ plus one write per copied byte. */
    private static final int COPY_WRITES = 1 + LEN;

    private static Card card(boolean rollback) {
        Card card = TestCards.newCard(rollback);
        card.install(new AppletSpec(AID_BYTES, COPY, new byte[0]));
        selectOk(card, AID_BYTES);
        return card;
    }

    private static byte[] field(Card card, String name) throws Exception {
        Object applet = card.runtime().lookupApplet(new AID(AID_BYTES, (short) 0, (byte) AID_BYTES.length)).getApplet();
        Field f = applet.getClass().getDeclaredField(name);
        f.setAccessible(true);
        return ((byte[]) f.get(applet)).clone();
    }

    private static byte[] data(Card card) throws Exception {
        return field(card, "data");
    }

    /** data[0..LEN) = OLD by an untorn fill; returns data. */
    private static byte[] resetData(Card card) throws Exception {
        okData(card, cmd(CopyApplet.INS_FILL_NON_ATOMIC, OLD & 0xFF, 0));
        assertEquals(COPY_WRITES, card.lastWriteCount(), "a fill counts one write per byte");
        return data(card);
    }

    /** data as it is, with the first n bytes from pattern. */
    private static byte[] withPrefix(byte[] data, byte[] pattern, int n) {
        byte[] want = data.clone();
        System.arraycopy(pattern, 0, want, 0, n);
        return want;
    }

    private static void tear(Card card, int k, byte[] apdu) {
        card.armTear(k);
        assertEquals(Card.Outcome.POWER_LOST, card.transmit(apdu).outcome(), "tear at " + k);
        assertEquals(k, card.lastWriteCount(), "writes before the tear at " + k);
        selectOk(card, AID_BYTES);
    }

    @Test
    void nonAtomicCopyTornAtKLeavesExactlyTheFirstKBytes() throws Exception {
        for (boolean rollback : new boolean[] {true, false}) {
            Card card = card(rollback);
            byte[] pattern = field(card, "pattern");
            // k = 1 is the seq write (no byte copied), k = 2 the first byte, k = 1 + LEN the last.
            for (int k : new int[] {1, 2, 3, 100, 257, LEN, LEN + 1}) {
                byte[] before = resetData(card);
                tear(card, k, cmd(CopyApplet.INS_COPY_NON_ATOMIC, 0, 0));
                assertArrayEquals(withPrefix(before, pattern, k - 1), data(card), "rollback=" + rollback + " k=" + k);
            }
            // A tear armed past the command's last write does not fire: the copy completes and
            // the (consumed) tear does not touch the next command either.
            byte[] before = resetData(card);
            card.armTear(COPY_WRITES + 1);
            okData(card, cmd(CopyApplet.INS_COPY_NON_ATOMIC, 0, 0));
            assertEquals(COPY_WRITES, card.lastWriteCount());
            assertArrayEquals(withPrefix(before, pattern, LEN), data(card));
            resetData(card);
        }
    }

    @Test
    void atomicCopyTornInsideIsFullyRestored() throws Exception {
        Card card = card(true);
        for (int k : new int[] {2, 3, LEN / 2, LEN, COPY_WRITES}) {
            byte[] before = resetData(card);
            tear(card, k, cmd(CopyApplet.INS_COPY_ATOMIC, 0, 0));
            assertArrayEquals(before, data(card), "k=" + k);
        }
        // Without rollback the copy is not atomic: the prefix stays (the test above can fail).
        Card plain = card(false);
        byte[] before = resetData(plain);
        tear(plain, LEN / 2, cmd(CopyApplet.INS_COPY_ATOMIC, 0, 0));
        assertArrayEquals(withPrefix(before, field(plain, "pattern"), LEN / 2 - 1), data(plain));
    }

    @Test
    void copyInsideAnAbortedTransactionRestoresTheRange() throws Exception {
        Card card = card(true);
        byte[] pattern = field(card, "pattern");
        byte[] before = resetData(card);
        okData(card, cmd(CopyApplet.INS_COPY_IN_TXN, 0, 0));
        assertEquals(COPY_WRITES, card.lastWriteCount(), "logged copy still counts one write per byte");
        assertArrayEquals(before, data(card), "aborted");
        // Torn inside the transaction's copy: rolled back too.
        tear(card, LEN / 3, cmd(CopyApplet.INS_COPY_IN_TXN, 1, 0));
        assertArrayEquals(before, data(card), "torn");
        okData(card, cmd(CopyApplet.INS_COPY_IN_TXN, 1, 0));
        assertArrayEquals(withPrefix(before, pattern, LEN), data(card), "committed");
        // Without rollback the abort restores nothing (the test can fail).
        Card plain = card(false);
        byte[] plainBefore = resetData(plain);
        okData(plain, cmd(CopyApplet.INS_COPY_IN_TXN, 0, 0));
        assertArrayEquals(withPrefix(plainBefore, pattern, LEN), data(plain));
    }

    @Test
    void nonAtomicCopyInsideAnAbortedTransactionStays() throws Exception {
        Card card = card(true);
        byte[] before = resetData(card);
        okData(card, cmd(CopyApplet.INS_COPY_NON_ATOMIC_IN_TXN, 0, 0));
        assertEquals(COPY_WRITES, card.lastWriteCount());
        assertArrayEquals(withPrefix(before, field(card, "pattern"), LEN), data(card));
    }

    @Test
    void overlappingCopiesEqualSystemArraycopy() throws Exception {
        int[][] cases = {
            {0, 1, 300}, {1, 0, 300}, {0, 100, 400}, {100, 0, 400}, {50, 50, 100},
            {0, 599, 1}, {599, 0, 1}, {0, 300, 300}, {300, 0, 300}, {10, 20, 0}};
        for (boolean atomic : new boolean[] {true, false}) {
            Card card = card(true);
            okData(card, cmd(CopyApplet.INS_COPY_NON_ATOMIC, 0, 0));
            for (int[] c : cases) {
                byte[] want = data(card);
                System.arraycopy(want, c[0], want, c[1], c[2]);
                okData(card, cmd(CopyApplet.INS_COPY_WITHIN, atomic ? 1 : 0, 0, (byte) (c[0] >> 8), (byte) c[0],
                        (byte) (c[1] >> 8), (byte) c[1], (byte) (c[2] >> 8), (byte) c[2]));
                String what = (atomic ? "arrayCopy " : "arrayCopyNonAtomic ") + Arrays.toString(c);
                assertArrayEquals(want, data(card), what);
                assertEquals(1 + c[2], card.lastWriteCount(), what + ": one write per byte");
            }
        }
    }

    @Test
    void overlappingCopyTornAtKEqualsTheFirstKBytesOfArraycopy() throws Exception {
        // Backward overlap (dest after src): a prefix of k bytes is what a byte-by-byte copy
        // from a snapshot of the source leaves, i.e. System.arraycopy of k bytes.
        Card card = card(true);
        okData(card, cmd(CopyApplet.INS_COPY_NON_ATOMIC, 0, 0));
        for (int k : new int[] {2, 50, 150}) {
            byte[] want = data(card);
            System.arraycopy(want, 0, want, 10, k - 1);
            tear(card, k, cmd(CopyApplet.INS_COPY_WITHIN, 0, 0, (byte) 0, (byte) 0, (byte) 0, (byte) 10, (byte) 0,
                    (byte) 200));
            assertArrayEquals(want, data(card), "k=" + k);
        }
    }
}
