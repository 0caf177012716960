package dev.simkit.cardhost.runtime;

import static dev.simkit.cardhost.TestCards.COUNTER_AID;
import static dev.simkit.cardhost.TestCards.cmd;
import static dev.simkit.cardhost.TestCards.okData;
import static dev.simkit.cardhost.TestCards.selectOk;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.TestCards;
import dev.simkit.cardhost.testapplets.CounterApplet;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Tears the power after every persistent write k = 1..W of a command and checks what survives.
 * Each walk is also run on a runtime without rollback to prove the walk can fail.
 */
class TearWalkTest {
    private static final short AMOUNT = 0x0123;
    /** UPDATE: balance, counter (fields) + 2 × setShort (2 bytes each) + 4 mirror bytes. */
    private static final int UPDATE_WRITES = 10;

    /** The result of one torn command: state before, after, and the expected complete result. */
    record Torn(int k, CounterState before, CounterState after, CounterState expected) {
        boolean old() {
            return after.samePersistent(before);
        }

        boolean complete() {
            return after.samePersistent(expected);
        }
    }

    /** Runs {@code apdu} torn at k = 1..writes(apdu) on {@code card}; returns one entry per k. */
    static List<Torn> walk(Card card, byte[] apdu, short amount) {
        CounterState start = CounterState.read(card);
        okData(card, apdu);
        int writes = card.lastWriteCount();
        assertTrue(writes > 0, "command makes persistent writes");
        CounterState base = CounterState.read(card);
        assertEquals(start.afterUpdate(amount).persistent().length, base.persistent().length);
        List<Torn> result = new ArrayList<>();
        for (int k = 1; k <= writes; k++) {
            CounterState before = CounterState.read(card);
            card.armTear(k);
            Card.Result r = card.transmit(apdu);
            assertEquals(Card.Outcome.POWER_LOST, r.outcome(), "tear at k=" + k);
            assertEquals(k, card.lastWriteCount(), "writes before the tear");
            selectOk(card, COUNTER_AID);
            result.add(new Torn(k, before, CounterState.read(card), before.afterUpdate(amount)));
        }
        return result;
    }

    @Test
    void updateMakesTheExpectedNumberOfPersistentWrites() {
        Card card = TestCards.counterCard(true);
        CounterState before = CounterState.read(card);
        assertEquals(0, card.lastWriteCount(), "GET_STATE writes nothing persistent");
        okData(card, cmd(CounterApplet.INS_UPDATE, AMOUNT >> 8, AMOUNT & 0xFF));
        assertEquals(UPDATE_WRITES, card.lastWriteCount());
        assertEquals(before.afterUpdate(AMOUNT), CounterState.read(card));
    }

    @Test
    void tearInsideTransactionLeavesExactlyOldOrNewState() {
        Card card = TestCards.counterCard(true);
        List<Torn> walk = walk(card, cmd(CounterApplet.INS_UPDATE, AMOUNT >> 8, AMOUNT & 0xFF), AMOUNT);
        assertEquals(UPDATE_WRITES, walk.size());
        for (Torn t : walk) {
            assertTrue(t.old() || t.complete(), "k=" + t.k() + ": mixed state " + t.after() + " (old " + t.before() + ")");
            // Every write is inside the transaction and the commit is never reached, so: old.
            assertTrue(t.old(), "k=" + t.k() + " must roll back");
        }
        // The card still works after the walk and the transaction is not wedged.
        CounterState before = CounterState.read(card);
        okData(card, cmd(CounterApplet.INS_UPDATE, 0, 1));
        assertEquals(before.afterUpdate((short) 1), CounterState.read(card));
    }

    @Test
    void sameWalkWithoutRollbackFindsMixedStates() {
        Card card = TestCards.counterCard(false);
        List<Torn> walk = walk(card, cmd(CounterApplet.INS_UPDATE, AMOUNT >> 8, AMOUNT & 0xFF), AMOUNT);
        long mixed = walk.stream().filter(t -> !t.old() && !t.complete()).count();
        assertTrue(mixed > 0, "plain jCardSim must expose partial updates; walk: " + walk);
    }

    @Test
    void withoutTransactionWritesPersistButSetShortIsAtomic() {
        Card card = TestCards.counterCard(true);
        List<Torn> walk = walk(card, cmd(CounterApplet.INS_UPDATE_NO_TXN, AMOUNT >> 8, AMOUNT & 0xFF), AMOUNT);
        boolean sawMixed = false;
        for (Torn t : walk) {
            sawMixed |= !t.old() && !t.complete();
            // log = setShort(balance) ‖ setShort(counter): each half is old or new, never torn.
            byte[] log = t.after().log();
            byte[] oldLog = t.before().log();
            byte[] newLog = t.expected().log();
            for (int half = 0; half < 4; half += 2) {
                boolean isOld = log[half] == oldLog[half] && log[half + 1] == oldLog[half + 1];
                boolean isNew = log[half] == newLog[half] && log[half + 1] == newLog[half + 1];
                assertTrue(isOld || isNew, "k=" + t.k() + ": torn setShort in log " + t.after());
            }
        }
        assertTrue(sawMixed, "no transaction, so some tears must leave a partial update");
        // k = 1: only the balance field is written.
        Torn first = walk.get(0);
        assertEquals((short) (first.before().balance() + AMOUNT), first.after().balance());
        assertEquals(first.before().counter(), first.after().counter());
    }

    @Test
    void tornSetShortSplitsWithoutRollback() {
        // Proves the previous test can fail: with atomicity off, some tear splits a setShort.
        Card card = TestCards.counterCard(false);
        List<Torn> walk = walk(card, cmd(CounterApplet.INS_UPDATE_NO_TXN, AMOUNT >> 8, AMOUNT & 0xFF), AMOUNT);
        boolean split = walk.stream().anyMatch(t -> {
            byte[] log = t.after().log();
            byte[] o = t.before().log();
            byte[] n = t.expected().log();
            return !(log[0] == o[0] && log[1] == o[1]) && !(log[0] == n[0] && log[1] == n[1]);
        });
        assertTrue(split, "a tear between the two bytes of setShort must be visible without atomicity");
    }

    @Test
    void arrayCopyIsAtomic() {
        Card card = TestCards.counterCard(true);
        byte[] copy = cmd(CounterApplet.INS_COPY_ATOMIC, 0x5A, 0);
        for (int k = 1; k <= 8; k++) {
            card.armTear(k);
            assertEquals(Card.Outcome.POWER_LOST, card.transmit(copy).outcome());
            selectOk(card, COUNTER_AID);
            assertArrayEquals(new byte[8], CounterState.read(card).blob(), "k=" + k);
        }
        okData(card, copy);
        assertEquals(8, card.lastWriteCount(), "the transient scratch fill is not counted");
        assertArrayEquals(filled(8, 0x5A), CounterState.read(card).blob());
    }

    @Test
    void arrayCopyIsNotAtomicWithoutRollback() {
        Card card = TestCards.counterCard(false);
        card.armTear(3);
        assertEquals(Card.Outcome.POWER_LOST, card.transmit(cmd(CounterApplet.INS_COPY_ATOMIC, 0x5A, 0)).outcome());
        selectOk(card, COUNTER_AID);
        assertArrayEquals(new byte[] {0x5A, 0x5A, 0x5A, 0, 0, 0, 0, 0}, CounterState.read(card).blob());
    }

    @Test
    void arrayFillNonAtomicLeavesAPrefix() {
        Card card = TestCards.counterCard(true);
        card.armTear(3);
        assertEquals(Card.Outcome.POWER_LOST,
                card.transmit(cmd(CounterApplet.INS_FILL_NON_ATOMIC, 0xAA, 0)).outcome());
        selectOk(card, COUNTER_AID);
        byte a = (byte) 0xAA;
        assertArrayEquals(new byte[] {a, a, a, 0, 0, 0, 0, 0}, CounterState.read(card).blob());
    }

    @Test
    void nonAtomicWritesBypassTheTransaction() {
        // Java Card API: arrayFillNonAtomic "does not use the transaction facility" — abort
        // leaves the fill in place.
        Card card = TestCards.counterCard(true);
        okData(card, cmd(CounterApplet.INS_FILL_NON_ATOMIC, 0x3C, 1));
        assertArrayEquals(filled(8, 0x3C), CounterState.read(card).blob());
    }

    @Test
    void tearIsOneShotAndCountsOnlyPersistentWrites() {
        Card card = TestCards.counterCard(true);
        card.armTear(100); // more than the command makes: no tear, and the arm is consumed
        okData(card, cmd(CounterApplet.INS_UPDATE, 0, 1));
        CounterState s = CounterState.read(card);
        okData(card, cmd(CounterApplet.INS_UPDATE, 0, 1));
        assertEquals(s.afterUpdate((short) 1), CounterState.read(card));
        card.armTear(2);
        card.armTear(0); // disarm
        okData(card, cmd(CounterApplet.INS_UPDATE, 0, 1));
    }

    @Test
    void tearResetsTheCard() {
        Card card = TestCards.counterCard(true);
        card.armTear(1);
        assertEquals(Card.Outcome.POWER_LOST, card.transmit(cmd(CounterApplet.INS_UPDATE, 0, 1)).outcome());
        // No applet is selected after the power loss: the card answers 6986/6999-style "no
        // applet" (jCardSim: 6986 command not allowed) until SELECT.
        Card.Result r = card.transmit(cmd(CounterApplet.INS_GET_STATE, 0, 0));
        assertEquals(Card.Outcome.OK, r.outcome());
        assertEquals("6986", TestCards.sw(r.response()));
    }

    private static byte[] filled(int n, int v) {
        byte[] b = new byte[n];
        java.util.Arrays.fill(b, (byte) v);
        return b;
    }
}
