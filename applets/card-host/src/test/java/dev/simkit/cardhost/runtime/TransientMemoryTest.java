package dev.simkit.cardhost.runtime;

import static dev.simkit.cardhost.TestCards.COUNTER_AID;
import static dev.simkit.cardhost.TestCards.ECHO_AID;
import static dev.simkit.cardhost.TestCards.cmd;
import static dev.simkit.cardhost.TestCards.okData;
import static dev.simkit.cardhost.TestCards.selectOk;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.TestCards;
import dev.simkit.cardhost.testapplets.CounterApplet;
import org.junit.jupiter.api.Test;

/** Transient arrays: not counted, not logged, cleared on reset, deselect and tear. */
class TransientMemoryTest {
    private static final byte[] ALL_77 = {0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77};

    @Test
    void transientWritesAreNotCounted() {
        Card card = TestCards.counterCard(true);
        // OwnerPIN's validated flag and the applet's two scratch arrays.
        assertTrue(card.runtime().transientArrayCount() >= 3);
        okData(card, cmd(CounterApplet.INS_SET_TRANSIENT, 0x77, 0));
        assertEquals(0, card.lastWriteCount());
        assertArrayEquals(ALL_77, okData(card, cmd(CounterApplet.INS_GET_TRANSIENT, 0, 0)));
    }

    @Test
    void transientWritesCannotBeTorn() {
        Card card = TestCards.counterCard(true);
        card.armTear(1);
        okData(card, cmd(CounterApplet.INS_SET_TRANSIENT, 0x77, 0)); // no persistent write: no tear
        assertArrayEquals(ALL_77, okData(card, cmd(CounterApplet.INS_GET_TRANSIENT, 0, 0)));
    }

    @Test
    void resetClearsBothKinds() {
        Card card = TestCards.counterCard(true);
        okData(card, cmd(CounterApplet.INS_SET_TRANSIENT, 0x77, 0));
        card.reset();
        selectOk(card, COUNTER_AID);
        assertArrayEquals(new byte[8], okData(card, cmd(CounterApplet.INS_GET_TRANSIENT, 0, 0)));
    }

    @Test
    void deselectClearsOnlyClearOnDeselect() {
        Card card = TestCards.counterCard(true);
        okData(card, cmd(CounterApplet.INS_SET_TRANSIENT, 0x77, 0));
        selectOk(card, ECHO_AID);
        selectOk(card, COUNTER_AID);
        assertArrayEquals(new byte[] {0x77, 0x77, 0x77, 0x77, 0, 0, 0, 0},
                okData(card, cmd(CounterApplet.INS_GET_TRANSIENT, 0, 0)));
    }

    @Test
    void tearClearsBothKinds() {
        Card card = TestCards.counterCard(true);
        okData(card, cmd(CounterApplet.INS_SET_TRANSIENT, 0x77, 0));
        card.armTear(4);
        assertEquals(Card.Outcome.POWER_LOST, card.transmit(cmd(CounterApplet.INS_UPDATE, 0, 1)).outcome());
        selectOk(card, COUNTER_AID);
        assertArrayEquals(new byte[8], okData(card, cmd(CounterApplet.INS_GET_TRANSIENT, 0, 0)));
    }

    @Test
    void powerOffRefusesCommandsUntilPowerOn() {
        Card card = TestCards.counterCard(true);
        card.powerOff();
        assertEquals(Card.Outcome.POWERED_OFF, card.transmit(cmd(CounterApplet.INS_GET_STATE, 0, 0)).outcome());
        byte[] atr = card.powerOn();
        assertTrue(atr.length > 2 && atr[0] == 0x3B, "ATR");
        selectOk(card, COUNTER_AID);
        CounterState.read(card);
    }
}
