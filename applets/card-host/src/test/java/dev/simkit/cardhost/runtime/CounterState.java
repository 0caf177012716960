package dev.simkit.cardhost.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.Hex;
import dev.simkit.cardhost.TestCards;
import dev.simkit.cardhost.testapplets.CounterApplet;
import java.util.Arrays;

/** CounterApplet's GET_STATE, decoded, plus the test-side model of one UPDATE. */
record CounterState(byte[] raw) {
    static CounterState read(Card card) {
        byte[] d = TestCards.okData(card, TestCards.cmd(CounterApplet.INS_GET_STATE, 0, 0));
        assertEquals(CounterApplet.STATE_LENGTH, d.length);
        return new CounterState(d);
    }

    short balance() {
        return (short) (((raw[0] & 0xFF) << 8) | (raw[1] & 0xFF));
    }

    short counter() {
        return (short) (((raw[2] & 0xFF) << 8) | (raw[3] & 0xFF));
    }

    byte[] log() {
        return Arrays.copyOfRange(raw, 4, 8);
    }

    byte[] blob() {
        return Arrays.copyOfRange(raw, 12, 20);
    }

    int tries() {
        return raw[20];
    }

    /** The persistent part (everything but the PIN tries), which UPDATE changes. */
    byte[] persistent() {
        return Arrays.copyOfRange(raw, 0, 20);
    }

    /** The state after a complete UPDATE with {@code amount}, per the applet's code. */
    CounterState afterUpdate(short amount) {
        byte[] n = raw.clone();
        short b = (short) (balance() + amount);
        short c = (short) (counter() + 1);
        n[0] = (byte) (b >> 8);
        n[1] = (byte) b;
        n[2] = (byte) (c >> 8);
        n[3] = (byte) c;
        System.arraycopy(n, 0, n, 4, 4);
        for (int i = 0; i < 4; i++) {
            n[8 + i] = (byte) ~n[4 + i];
        }
        return new CounterState(n);
    }

    boolean samePersistent(CounterState o) {
        return Arrays.equals(persistent(), o.persistent());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CounterState c && Arrays.equals(raw, c.raw);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(raw);
    }

    @Override
    public String toString() {
        return Hex.of(raw);
    }
}
