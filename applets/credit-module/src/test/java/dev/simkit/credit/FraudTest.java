package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import javacard.framework.Util;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Fraud registration and blocking (§7), the fraud log ring (§4.10). */
class FraudTest {

    static Module withThreshold(Host.Profile p, int threshold) {
        Module.Setup s = new Module.Setup();
        s.threshold = threshold;
        return Module.operational(p, s);
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void blocksWhenBadTagsPlusWindowEventsReachTheThreshold(Host.Profile p) {
        Module m = withThreshold(p, 3);
        byte[] req = m.initiate(10);
        byte[] grant = m.grantFor(req, 10);
        byte[] forged = grant.clone();
        forged[36] ^= 1;
        m.card.expect(0x6982, Card.applyGrant(forged));
        m.card.expect(0x9C05, Card.applyGrant(Host.grant(p, m.id, m.kGrant, 5, 0, 0, 10, Host.tagOf(req))));
        assertEquals(2, m.lifecycle());
        // The event that reaches the threshold still answers its own status word...
        m.card.expect(0x6982, Card.applyGrant(forged));
        assertEquals(3, m.lifecycle());
        // ...and from then on nothing is checked any more: no MAC oracle.
        m.card.expect(0x9C08, Card.applyGrant(grant));
        m.card.expect(0x9C08, Card.applyGrant(forged));
        m.card.expect(0x9C08, Card.initiate(10));
        m.card.expect(0x9C08, Card.debit(1));
        byte[] st = m.status();
        assertEquals(2, Hex.u16(st, 43));
        assertEquals(1, Hex.u16(st, 45));
        assertEquals(3, Hex.u16(st, 47));
        assertEquals(3, m.card.ok(Card.getFraudLog())[0]);
        // Blocking is persistent: a new session (reset, select) finds it blocked.
        m.card.reset();
        m.card.ok(Card.SELECT);
        assertEquals(3, m.lifecycle());
        m.card.expect(0x9C08, Card.applyGrant(grant));
    }

    @Test
    void macOracleIsCappedAtTheThreshold() {
        int threshold = 16;
        Module m = withThreshold(Host.Profile.AES_CMAC, threshold);
        byte[] grant = m.grantFor(m.initiate(10), 10);
        int checked = 0;
        for (int guess = 0; guess < 256; guess++) {
            byte[] g = grant.clone();
            g[36] = (byte) guess;
            if (g[36] == grant[36]) {
                continue; // the attacker does not know it; skipping keeps every guess wrong
            }
            int sw = Card.sw(m.card.send(Card.applyGrant(g)));
            if (sw == 0x9C08) {
                break;
            }
            assertEquals(0x6982, sw);
            checked++;
        }
        assertEquals(threshold, checked);
    }

    @Test
    void logIsARingOfEightNewestFirst() {
        Module m = withThreshold(Host.Profile.AES_CMAC, 1000);
        for (long seq = 0; seq < 12; seq++) {
            // A forged limit update logs the sequence it carries, so each entry is recognisable.
            byte[] forged = Host.limitUpdate(m.profile, m.id, m.kGrant, seq, 1, 1, 1, 1);
            forged[38] ^= 1;
            m.card.expect(0x6982, Card.applyLimitUpdate(forged));
        }
        byte[] log = m.card.ok(Card.getFraudLog());
        assertEquals(1 + 8 * 9, log.length);
        assertEquals(8, log[0]);
        for (int e = 0; e < 8; e++) {
            assertEquals(1, log[1 + 9 * e]);
            assertEquals(11 - e, Hex.u32(log, 6 + 9 * e));
        }
        assertEquals(12, m.badTags());
    }

    @Test
    void logRecordsTheModuleNAtTheTime() {
        Module m = withThreshold(Host.Profile.RETAIL_MAC, 1000);
        m.reload(5, 5);
        m.reload(5, 5);
        m.card.expect(0x9C03, Card.applyGrant(Host.grant(m.profile, m.id, m.kGrant, 3, 0, 0, 1, new byte[8])));
        byte[] log = m.card.ok(Card.getFraudLog());
        assertEquals("01" + "02" + "00000002" + "00000003", Hex.s(log));
    }

    // ---- saturation and the threshold sum: unreachable through APDUs (a module blocks long
    //      before 65535 events), so checked on the Persistent object directly. ----

    private static Persistent persistent(int bad, int window, int threshold) {
        Persistent p = new Persistent();
        p.state[Persistent.OFF_LIFECYCLE] = 2;
        Util.setShort(p.state, Persistent.OFF_BAD_TAGS, (short) bad);
        Util.setShort(p.state, Persistent.OFF_WINDOW, (short) window);
        Util.setShort(p.state, Persistent.OFF_THRESHOLD, (short) threshold);
        return p;
    }

    @Test
    void countersSaturateAt65535() {
        Persistent p = persistent(0xFFFF, 0xFFFF, 0xFFFF);
        p.registerFraud((byte) 1, new byte[4], (short) 0);
        p.registerFraud((byte) 2, new byte[4], (short) 0);
        assertEquals((short) 0xFFFF, Util.getShort(p.state, Persistent.OFF_BAD_TAGS));
        assertEquals((short) 0xFFFF, Util.getShort(p.state, Persistent.OFF_WINDOW));
    }

    @Test
    void thresholdSumDoesNotOverflow() {
        // 0xFFFE + 0 + 1 = 0xFFFF ≥ 0xFFFF: block.
        Persistent a = persistent(0, 0xFFFE, 0xFFFF);
        a.registerFraud((byte) 2, new byte[4], (short) 0);
        assertEquals(3, a.lifecycle());
        // 0x8000 + 0x7FFD + 1 = 0xFFFE < 0xFFFF: no block (a 16-bit sum would wrap negative).
        Persistent b = persistent(0x8000, 0x7FFD, 0xFFFF);
        b.registerFraud((byte) 1, new byte[4], (short) 0);
        assertEquals(2, b.lifecycle());
        // 0xFFFF + 0xFFFF (17-bit sum) ≥ 2.
        Persistent c = persistent(0xFFFE, 0xFFFF, 2);
        c.registerFraud((byte) 1, new byte[4], (short) 0);
        assertEquals(3, c.lifecycle());
        assertTrue(Arith.lessThanU16((short) 1, (short) 0x8000));
        assertFalse(Arith.lessThanU16((short) 0xFFFF, (short) 0x7FFF));
    }
}
