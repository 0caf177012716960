package dev.simkit.cardhost;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.simkit.testkit.SimCard;
import java.net.URL;

/** Helpers shared by the tests: cards with test applets, APDU building, SW checks. */
public final class TestCards {
    public static final byte[] ECHO_AID = Hex.parse("F0534D4B4954E1");
    public static final byte[] COUNTER_AID = Hex.parse("F0534D4B4954E2");
    public static final byte[] SINK_AID = Hex.parse("F0534D4B4954E3");
    public static final String ECHO = "dev.simkit.cardhost.testapplets.EchoApplet";
    public static final String COUNTER = "dev.simkit.cardhost.testapplets.CounterApplet";
    public static final String SINK = "dev.simkit.cardhost.testapplets.sink.SinkApplet";

    private TestCards() {
    }

    /** A card with EchoApplet and CounterApplet installed, CounterApplet selected. */
    public static Card counterCard(boolean rollback) {
        Card card = newCard(rollback);
        card.install(new AppletSpec(ECHO_AID, ECHO, new byte[0]));
        card.install(new AppletSpec(COUNTER_AID, COUNTER, new byte[0]));
        selectOk(card, COUNTER_AID);
        return card;
    }

    public static Card newCard(boolean rollback) {
        return new Card(0, rollback, new URL[0], TestCards.class.getClassLoader());
    }

    public static byte[] select(byte[] aid) {
        byte[] apdu = new byte[5 + aid.length];
        apdu[1] = (byte) 0xA4;
        apdu[2] = 0x04;
        apdu[4] = (byte) aid.length;
        System.arraycopy(aid, 0, apdu, 5, aid.length);
        return apdu;
    }

    /** Case 1/3 command (Lc only when data is present). */
    public static byte[] cmd(int ins, int p1, int p2, byte... data) {
        byte[] apdu = new byte[4 + (data.length > 0 ? 1 + data.length : 0)];
        apdu[1] = (byte) ins;
        apdu[2] = (byte) p1;
        apdu[3] = (byte) p2;
        if (data.length > 0) {
            apdu[4] = (byte) data.length;
            System.arraycopy(data, 0, apdu, 5, data.length);
        }
        return apdu;
    }

    public static void selectOk(Card card, byte[] aid) {
        okData(card, select(aid));
    }

    /** Transmits, asserts OK outcome and SW 9000, returns the response data. */
    public static byte[] okData(Card card, byte[] apdu) {
        Card.Result r = card.transmit(apdu);
        assertEquals(Card.Outcome.OK, r.outcome(), "outcome");
        assertEquals("9000", sw(r.response()), "SW of " + Hex.of(apdu));
        byte[] resp = r.response();
        return java.util.Arrays.copyOf(resp, resp.length - 2);
    }

    /**
     * {@code card} as a {@link SimCard} transport for the tear walks' cards: fails unless the
     * command completed (no tear, powered), else answers the full response.
     */
    public static SimCard.Transport completed(Card card) {
        return apdu -> {
            Card.Result r = card.transmit(apdu);
            assertEquals(Card.Outcome.OK, r.outcome(), () -> "outcome of " + dev.simkit.testkit.Hex.s(apdu));
            return r.response();
        };
    }

    /** {@link SimCard#reset} of a card-host card: a power cycle. */
    public static Runnable powerCycle(Card card) {
        return () -> {
            card.powerOff();
            card.powerOn();
        };
    }

    public static String sw(byte[] response) {
        return Hex.of(java.util.Arrays.copyOfRange(response, response.length - 2, response.length));
    }
}
