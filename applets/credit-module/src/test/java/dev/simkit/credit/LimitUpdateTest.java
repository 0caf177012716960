package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** APPLY LIMIT UPDATE (§4.9, §3.6). */
class LimitUpdateTest {

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void appliesAndReplaysAreRegistered(Host.Profile p) {
        Module.Setup s = new Module.Setup();
        s.threshold = 100;
        s.balance = 800;
        Module m = Module.operational(p, s);
        m.card.ok(Card.applyLimitUpdate(m.limitUpdate(5, 2, 300, 700, 50)));
        byte[] st = m.status();
        assertArrayEquals(Hex.b("00000002 0000012C 000002BC 00000032 00000005"), Arrays.copyOfRange(st, 18, 38));
        // U below the balance is allowed: no reload until it falls.
        assertEquals(800, m.balance());
        m.card.expect(0x9C01, Card.initiate(2));

        m.card.expect(0x9C09, Card.applyLimitUpdate(m.limitUpdate(5, 1, 1, 1, 1)));
        m.card.expect(0x9C09, Card.applyLimitUpdate(m.limitUpdate(4, 1, 1, 1, 1)));
        m.card.expect(0x9C09, Card.applyLimitUpdate(m.limitUpdate(0, 1, 1, 1, 1)));
        assertEquals(3, m.windowEvents());
        byte[] log = m.card.ok(Card.getFraudLog());
        assertArrayEquals(Hex.b("03 03 00000000 00000000 03 00000000 00000004 03 00000000 00000005"), log);
        assertArrayEquals(patchWindow(st, 3), m.status(), "replays change only the window counter");

        m.card.ok(Card.applyLimitUpdate(m.limitUpdate(0xFFFFFFFFL, 1, 1, 1000, 0)));
        m.card.expect(0x9C09, Card.applyLimitUpdate(m.limitUpdate(0xFFFFFFFFL, 1, 1, 1000, 0)));
    }

    private static byte[] patchWindow(byte[] st, int window) {
        byte[] c = st.clone();
        c[45] = (byte) (window >> 8);
        c[46] = (byte) window;
        return c;
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void invalidLimitsAre9C0BAndChangeNothing(Host.Profile p) {
        Module m = Module.operational(p);
        byte[] before = m.status();
        long[][] bad = {
            {0, 10, 100, 0}, // m = 0
            {11, 10, 100, 0}, // M < m
            {1, 0x80000000L, 100, 0}, // M > 2^31−1
            {1, 10, 0x80000000L, 0}, // U < 0
            {1, 10, 0xFFFFFFFFL, 0},
            {1, 10, 100, 0x80000000L}, // L < 0
        };
        long seq = 1;
        for (long[] b : bad) {
            m.card.expect(0x9C0B, Card.applyLimitUpdate(m.limitUpdate(seq++, b[0], b[1], (int) b[2], (int) b[3])));
        }
        assertArrayEquals(before, m.status(), "not registered, nothing stored (sequence unchanged)");
        // Extremes that are valid.
        m.card.ok(Card.applyLimitUpdate(m.limitUpdate(seq++, 0x7FFFFFFFL, 0x7FFFFFFFL, Integer.MAX_VALUE,
                Integer.MAX_VALUE)));
        m.card.ok(Card.applyLimitUpdate(m.limitUpdate(seq, 1, 1, 0, 0)));
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void lengthHeaderAndTagChecks(Host.Profile p) {
        Module m = Module.operational(p);
        byte[] u = m.limitUpdate(1, 1, 10, 100, 0);
        m.card.expect(0x6700, Card.applyLimitUpdate(Arrays.copyOf(u, 38)));
        byte[] hdr = u.clone();
        hdr[3] ^= 1;
        m.card.expect(0x9C0A, Card.applyLimitUpdate(hdr));
        byte[] forged = u.clone();
        forged[20] ^= 1;
        m.card.expect(0x6982, Card.applyLimitUpdate(forged));
        // Under K_req instead of K_grant.
        m.card.expect(0x6982, Card.applyLimitUpdate(Host.seal(p, m.kReq, Arrays.copyOf(u, 31))));
        assertEquals(2, m.badTags());
        byte[] log = m.card.ok(Card.getFraudLog());
        assertEquals(1, log[1]);
        assertEquals(1, Hex.u32(log, 6), "carried = the sequence");
        m.card.ok(Card.applyLimitUpdate(u));
    }
}
