package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** N never wraps (§4.4 step 2, §4.5 steps 4 and 9): 2^32−2 and 2^32−1. */
class CounterTest {

    static Module at(Host.Profile p, long n) {
        Module.Setup s = new Module.Setup();
        s.n = n;
        s.threshold = 100;
        return Module.operational(p, s);
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void lastNumberIsUsedThenTheModuleBlocks(Host.Profile p) {
        Module m = at(p, 0xFFFFFFFEL);
        byte[] req = m.initiate(10);
        assertEquals(0xFFFFFFFEL, Hex.u32(req, 11));
        byte[] grant = m.grantFor(req, 10);
        assertEquals(0xFFFFFFFFL, Hex.u32(grant, 11));
        byte[] ack = m.apply(grant);
        assertEquals(0xFFFFFFFFL, Hex.u32(ack, 11));
        assertEquals(0xFFFFFFFFL, m.n());
        assertEquals(2, m.lifecycle(), "nothing more happens at once");
        // The grant is still recognised as applied.
        m.card.expect(0x9C04, Card.applyGrant(grant));
        // The next INITIATE blocks.
        m.card.expect(0x9C0C, Card.initiate(10));
        assertEquals(3, m.lifecycle());
        m.card.expect(0x9C08, Card.initiate(10));
        assertArrayEquals(ack, m.card.ok(Card.getLastCompletion()));
        assertEquals(10, m.balance());
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void personalisedAtTheLastNumberBlocksAtFirstInitiate(Host.Profile p) {
        Module m = at(p, 0xFFFFFFFFL);
        // A grant claiming the wrapped successor 0 is out of the window (and there is no pending).
        m.card.expect(0x9C05, Card.applyGrant(Host.grant(p, m.id, m.kGrant, 0, 0, 0, 10, new byte[8])));
        m.card.expect(0x9C0C, Card.initiate(10));
        assertEquals(3, m.lifecycle());
        assertEquals(0x00, m.flags(), "no request was built");
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void wrappedSuccessorIsOutOfWindow(Host.Profile p) {
        Module m = at(p, 0xFFFFFFFEL);
        byte[] req = m.initiate(10);
        m.card.expect(0x9C05, Card.applyGrant(Host.grant(p, m.id, m.kGrant, 0, 0, 0, 10, Host.tagOf(req))));
        m.card.expect(0x9C05, Card.applyGrant(Host.grant(p, m.id, m.kGrant, 0xFFFFFFFEL, 0, 0, 10, Host.tagOf(req))));
        m.apply(m.grantFor(req, 10));
    }
}
