package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;

/** The lifecycle table of §4: every INS in every state. */
class GateTest {

    static final Set<Integer> PERSONALISATION = Set.of(0x10, 0x12, 0x34, 0x50, 0x5E);
    static final Set<Integer> OPERATIONAL = Set.of(0x10, 0x12, 0x20, 0x22, 0x24, 0x26, 0x30, 0x32, 0x34);
    static final Set<Integer> BLOCKED = Set.of(0x10, 0x12, 0x26, 0x34);

    /** A well-formed command per INS (valid length), whatever it then answers. */
    static final Map<Integer, byte[]> COMMANDS = Map.ofEntries(
            Map.entry(0x10, Card.getStatus()),
            Map.entry(0x12, Card.getServerAddress()),
            Map.entry(0x20, Card.initiate(1)),
            Map.entry(0x22, Card.applyGrant(new byte[37])),
            Map.entry(0x24, Card.applyProvisional(new byte[31])),
            Map.entry(0x26, Card.getLastCompletion()),
            Map.entry(0x30, Card.debit(1)),
            Map.entry(0x32, Card.applyLimitUpdate(new byte[39])),
            Map.entry(0x34, Card.getFraudLog()),
            Map.entry(0x50, Card.personalise(new byte[0])),
            Map.entry(0x5E, Card.lock()));

    /** An operational module blocked by one bad tag (threshold 1). */
    static Module blocked() {
        Module.Setup s = new Module.Setup();
        s.threshold = 1;
        Module m = Module.operational(Host.Profile.AES_CMAC, s);
        byte[] req = m.initiate(10);
        byte[] grant = m.grantFor(req, 10);
        grant[36] ^= 1;
        m.card.expect(0x6982, Card.applyGrant(grant));
        assertEquals(3, m.lifecycle());
        return m;
    }

    private static void check(Card c, Set<Integer> allowed, int refusal) {
        for (Map.Entry<Integer, byte[]> e : COMMANDS.entrySet()) {
            int sw = Card.sw(c.send(e.getValue()));
            String what = String.format("INS %02X", e.getKey());
            if (allowed.contains(e.getKey())) {
                assertNotEquals(refusal, sw, what);
            } else {
                assertEquals(String.format("%04X", refusal), String.format("%04X", sw), what);
            }
        }
    }

    @Test
    void personalisationState() {
        Card c = new Card();
        check(c, PERSONALISATION, 0x6985);
    }

    @Test
    void operationalState() {
        Module m = Module.operational(Host.Profile.AES_CMAC);
        check(m.card, OPERATIONAL, 0x6985);
        assertEquals(2, m.lifecycle());
    }

    @Test
    void blockedState() {
        Module m = blocked();
        check(m.card, BLOCKED, 0x9C08);
        assertEquals(3, m.lifecycle());
    }

    @Test
    void allowedReadsAnswerInEveryState() {
        Card perso = new Card();
        assertEquals(0x9000, Card.sw(perso.send(Card.getStatus())));
        assertEquals(0x9000, Card.sw(perso.send(Card.getServerAddress())));
        assertEquals("00", Hex.s(perso.ok(Card.getFraudLog())));
        Module b = blocked();
        b.card.ok(Card.getStatus());
        b.card.ok(Card.getServerAddress());
        b.card.ok(Card.getFraudLog());
        b.card.expect(0x6A88, Card.getLastCompletion());
    }
}
