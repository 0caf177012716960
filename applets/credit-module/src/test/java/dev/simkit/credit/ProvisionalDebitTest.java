package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** APPLY PROVISIONAL ACK (§4.6) and DEBIT (§4.8): the credit line down to −L, never below. */
class ProvisionalDebitTest {

    static Module module(Host.Profile p, int balance, int line) {
        Module.Setup s = new Module.Setup();
        s.balance = balance;
        s.l = line;
        s.threshold = 100;
        return Module.operational(p, s);
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void debitsDownToZeroWithoutProvisional(Host.Profile p) {
        Module m = module(p, 100, 500);
        assertEquals(60, Hex.i32(m.card.ok(Card.debit(40)), 0));
        m.card.expect(0x9C07, Card.debit(61));
        assertEquals(0, Hex.i32(m.card.ok(Card.debit(60)), 0));
        m.card.expect(0x9C07, Card.debit(1));
        assertEquals(0, m.balance());
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void provisionalAckOpensTheCreditLineUntilTheGrant(Host.Profile p) {
        Module m = module(p, 100, 500);
        byte[] req = m.initiate(1000);
        m.card.expect(0x9C07, Card.debit(101));
        m.card.ok(Card.applyProvisional(m.provisionalFor(req)));
        m.card.ok(Card.applyProvisional(m.provisionalFor(req))); // idempotent
        assertEquals(0x03, m.flags());
        assertEquals(-300, Hex.i32(m.card.ok(Card.debit(400)), 0));
        m.card.expect(0x9C07, Card.debit(201)); // −501 < −L
        assertEquals(-500, Hex.i32(m.card.ok(Card.debit(200)), 0));
        m.card.expect(0x9C07, Card.debit(1));
        assertEquals(-500, m.balance());
        // The grant settles the line and closes it.
        byte[] ack = m.apply(m.grantFor(req, 1000));
        assertEquals(500, Hex.i32(ack, 20));
        assertEquals(0x04, m.flags());
        assertEquals(0, Hex.i32(m.card.ok(Card.debit(500)), 0));
        m.card.expect(0x9C07, Card.debit(1));
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void debitAmountOutsideRangeIs6A80(Host.Profile p) {
        Module m = module(p, 100, 500);
        for (long a : new long[] {0, 0x80000000L, 0xFFFFFFFFL}) {
            m.card.expect(0x6A80, Card.debit(a));
        }
        m.card.expect(0x9C07, Card.debit(0x7FFFFFFFL));
        assertEquals(100, m.balance());
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void largestDebitAgainstTheLargestCreditLine(Host.Profile p) {
        Module.Setup s = new Module.Setup();
        s.max = 0x7FFFFFFFL;
        s.u = Integer.MAX_VALUE;
        s.l = Integer.MAX_VALUE;
        s.balance = 0;
        Module m = Module.operational(p, s);
        byte[] req = m.initiate(10);
        m.card.ok(Card.applyProvisional(m.provisionalFor(req)));
        // 0 − (2^31−1) = −L exactly; one more would be −2^31, below the floor.
        assertEquals(-Integer.MAX_VALUE, Hex.i32(m.card.ok(Card.debit(0x7FFFFFFFL)), 0));
        m.card.expect(0x9C07, Card.debit(1));
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void provisionalChecksInOrder(Host.Profile p) {
        Module m = module(p, 0, 500);
        // No pending: 9C03 registered.
        byte[] early = Host.provisional(p, m.id, m.kGrant, 1, new byte[8]);
        m.card.expect(0x9C03, Card.applyProvisional(early));
        byte[] req = m.initiate(100);
        byte[] good = m.provisionalFor(req);
        m.card.expect(0x6700, Card.applyProvisional(java.util.Arrays.copyOf(good, 30)));
        byte[] hdr = good.clone();
        hdr[1] = 0x02;
        m.card.expect(0x9C0A, Card.applyProvisional(hdr));
        byte[] forged = good.clone();
        forged[30] ^= 1;
        m.card.expect(0x6982, Card.applyProvisional(forged));
        m.card.expect(0x9C05, Card.applyProvisional(Host.provisional(p, m.id, m.kGrant, 2, Host.tagOf(req))));
        byte[] other = Host.tagOf(req);
        other[7] ^= 1;
        m.card.expect(0x9C0A, Card.applyProvisional(Host.provisional(p, m.id, m.kGrant, 1, other)));
        assertEquals(1, m.badTags());
        assertEquals(3, m.windowEvents());
        byte[] log = m.card.ok(Card.getFraudLog());
        assertArrayEquals(Hex.b("04 02 00000000 00000001 02 00000000 00000002 01 00000000 00000001"
                + " 02 00000000 00000001"), log);
        assertEquals(0x01, m.flags());
        m.card.ok(Card.applyProvisional(good));
        assertEquals(0x03, m.flags());
    }
}
