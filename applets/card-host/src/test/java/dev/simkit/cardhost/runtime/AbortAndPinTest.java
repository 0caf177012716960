package dev.simkit.cardhost.runtime;

import static dev.simkit.cardhost.TestCards.COUNTER_AID;
import static dev.simkit.cardhost.TestCards.cmd;
import static dev.simkit.cardhost.TestCards.okData;
import static dev.simkit.cardhost.TestCards.selectOk;
import static dev.simkit.cardhost.TestCards.sw;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.TestCards;
import dev.simkit.cardhost.testapplets.CounterApplet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Abort, uncaught exceptions inside a transaction, and OwnerPIN try counters. */
class AbortAndPinTest {
    private static final byte[] GOOD_PIN = {0x31, 0x32, 0x33, 0x34};
    private static final byte[] BAD_PIN = {0x39, 0x39, 0x39, 0x39};

    @Test
    void abortRestoresEveryWrite() {
        Card card = TestCards.counterCard(true);
        okData(card, cmd(CounterApplet.INS_UPDATE, 0, 5));
        CounterState before = CounterState.read(card);
        okData(card, cmd(CounterApplet.INS_UPDATE_ABORT, 0x11, 0x22));
        assertEquals(before, CounterState.read(card));
    }

    @Test
    void abortRestoresNothingWithoutRollback() {
        // Proves abortRestoresEveryWrite can fail.
        Card card = TestCards.counterCard(false);
        CounterState before = CounterState.read(card);
        okData(card, cmd(CounterApplet.INS_UPDATE_ABORT, 0x11, 0x22));
        assertEquals(before.afterUpdate((short) 0x1122), CounterState.read(card));
    }

    @ParameterizedTest(name = "P1={0} -> SW {1}")
    @CsvSource({"0, 6A80", "1, 6F00", "2, 9000"})
    void transactionLeftOpenByProcessIsRolledBack(int p1, String expectedSw) {
        Card card = TestCards.counterCard(true);
        CounterState before = CounterState.read(card);
        Card.Result r = card.transmit(cmd(CounterApplet.INS_UPDATE_ESCAPE, p1, 0));
        assertEquals(Card.Outcome.OK, r.outcome());
        assertEquals(expectedSw, sw(r.response()));
        assertEquals(before, CounterState.read(card));
        // The transaction is closed: the next one can begin.
        okData(card, cmd(CounterApplet.INS_UPDATE, 0, 1));
        assertEquals(before.afterUpdate((short) 1), CounterState.read(card));
    }

    @Test
    void pinTryCounterSurvivesAbort() {
        Card card = TestCards.counterCard(true);
        CounterState before = CounterState.read(card);
        assertEquals(3, before.tries());
        byte[] tries = okData(card, cmd(CounterApplet.INS_VERIFY_IN_ABORTED_TXN, 0, 0, BAD_PIN));
        assertArrayEquals(new byte[] {2}, tries);
        CounterState after = CounterState.read(card);
        assertEquals(2, after.tries(), "OwnerPIN decrement is not part of the transaction");
        assertEquals(before.balance(), after.balance(), "balance += 1 was aborted");
    }

    @Test
    void pinTryCounterSurvivesTear() {
        Card card = TestCards.counterCard(true);
        CounterState before = CounterState.read(card);
        card.armTear(1); // the first persistent write is balance += 1, after the PIN check
        assertEquals(Card.Outcome.POWER_LOST,
                card.transmit(cmd(CounterApplet.INS_VERIFY_IN_TXN, 0, 0, BAD_PIN)).outcome());
        selectOk(card, COUNTER_AID);
        CounterState after = CounterState.read(card);
        assertEquals(2, after.tries());
        assertEquals(before.balance(), after.balance());
        // A correct PIN resets the counter, in a committed transaction.
        assertArrayEquals(new byte[] {3}, okData(card, cmd(CounterApplet.INS_VERIFY_IN_TXN, 0, 0, GOOD_PIN)));
        assertEquals((short) (before.balance() + 1), CounterState.read(card).balance());
    }

    @Test
    void wrongPinReportsTriesLeft() {
        Card card = TestCards.counterCard(true);
        Card.Result r = card.transmit(cmd(CounterApplet.INS_VERIFY, 0, 0, BAD_PIN));
        assertEquals("63C2", sw(r.response()));
        okData(card, cmd(CounterApplet.INS_VERIFY, 0, 0, GOOD_PIN));
        assertNotEquals(0, CounterState.read(card).tries());
    }
}
