package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** INITIATE RELOAD and APPLY GRANT (§4.4, §4.5), every check in order, for every profile. */
class ReloadTest {

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void roundTrip(Host.Profile p) {
        Module m = Module.operational(p);
        byte[] req = m.initiate(250);
        assertEquals(0, Hex.u32(req, 11), "N");
        assertEquals(0, Hex.i32(req, 19), "B when built");
        byte[] st = m.status();
        assertEquals(0x01, st[38], "pending only");
        assertEquals(250, Hex.u32(st, 39), "pending R");

        byte[] ack = m.apply(m.grantFor(req, 250));
        assertArrayEquals(Host.completion(p, m.id, m.kReq, 1, 0, 250, 250, Host.tagOf(m.grantFor(req, 250))), ack);
        st = m.status();
        assertEquals(250, Hex.i32(st, 10));
        assertEquals(1, Hex.u32(st, 14));
        assertEquals(0x04, st[38], "last completion only");
        assertEquals(0, Hex.u32(st, 39), "pending R cleared");
        assertArrayEquals(ack, m.card.ok(Card.getLastCompletion()));

        // A second round carries N = 1 and B = 250.
        byte[] req2 = m.initiate(100);
        assertEquals(1, Hex.u32(req2, 11));
        assertEquals(250, Hex.i32(req2, 19));
        m.apply(m.grantFor(req2, 60));
        assertEquals(310, m.balance());
        assertEquals(2, m.n());
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void pendingRequestIsResentByteForByteAndAnotherAmountRefused(Host.Profile p) {
        Module m = Module.operational(p);
        byte[] req = m.initiate(40);
        byte[] before = m.status();
        assertArrayEquals(req, m.card.ok(Card.initiate(40)));
        m.card.expect(0x9C02, Card.initiate(41));
        assertArrayEquals(before, m.status());
        // Resent with no other check: even when the limits no longer allow it.
        m.card.ok(Card.applyLimitUpdate(m.limitUpdate(1, 50, 60, 1000, 0)));
        assertArrayEquals(req, m.card.ok(Card.initiate(40)));
        m.apply(m.grantFor(req, 40));
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void declinedGrantClosesTheRequestAndAdvancesN(Host.Profile p) {
        Module m = Module.operational(p);
        for (int reason = 1; reason <= 5; reason++) {
            byte[] req = m.initiate(30);
            byte[] ack = m.apply(m.declineFor(req, reason));
            assertEquals(1, ack[15]);
            assertEquals(0, Hex.u32(ack, 16));
            assertEquals(0, Hex.i32(ack, 20));
            assertEquals(reason, m.n());
            assertEquals(0x04, m.flags());
        }
        assertEquals(0, m.balance());
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void replayedGrantIs9C04AndNeverCreditedTwice(Host.Profile p) {
        Module m = Module.operational(p);
        byte[] grant = m.grantFor(m.initiate(100), 100);
        byte[] ack = m.apply(grant);
        byte[] before = m.status();
        for (int i = 0; i < 3; i++) {
            m.card.expect(0x9C04, Card.applyGrant(grant));
        }
        assertArrayEquals(before, m.status(), "nothing changes, nothing registered");
        assertArrayEquals(ack, m.card.ok(Card.getLastCompletion()));
        assertEquals(100, m.balance());

        // After the next round the old grant is out of the window: registered.
        m.reload(10, 10);
        m.card.expect(0x9C05, Card.applyGrant(grant));
        assertEquals(1, m.windowEvents());
        assertEquals(110, m.balance());
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void headerMismatchIs9C0AAndNotRegistered(Host.Profile p) {
        Module m = Module.operational(p);
        byte[] req = m.initiate(100);
        byte[] good = m.grantFor(req, 100);
        // Another module: a correct grant for module B sent to module A.
        byte[] otherId = Hex.b("0102030405060709");
        byte[][] otherKeys = Host.deriveKeys(p, Module.master(p), otherId);
        byte[] forB = Host.grant(p, otherId, otherKeys[1], 1, 0, 0, 100, Host.tagOf(req));
        m.card.expect(0x9C0A, Card.applyGrant(forB));
        // Version, type, algorithm (downgrade), each re-MAC'd so only the header is wrong.
        for (int[] edit : new int[][] {{0, 0x02}, {1, 0x03}, {1, 0x01}, {2, p.id % 3 + 1}, {2, 0x00}}) {
            byte[] body = Arrays.copyOf(good, 29);
            body[edit[0]] = (byte) edit[1];
            m.card.expect(0x9C0A, Card.applyGrant(Host.seal(p, m.kGrant, body)));
        }
        assertEquals(0, m.badTags());
        assertEquals(0, m.windowEvents());
        assertEquals("00", Hex.s(m.card.ok(Card.getFraudLog())));
        m.apply(good);
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void reflectedOrResizedMessagesAre6700AndNotRegistered(Host.Profile p) {
        Module m = Module.operational(p);
        byte[] req = m.initiate(100);
        m.card.expect(0x6700, Card.applyGrant(req)); // request reflected as a grant
        byte[] grant = m.grantFor(req, 100);
        m.card.expect(0x6700, Card.applyGrant(Arrays.copyOf(grant, 36))); // truncated tag
        m.card.expect(0x6700, Card.applyGrant(Hex.cat(grant, new byte[1])));
        // Reflected as a provisional ack (right length, wrong type): header mismatch.
        m.card.expect(0x9C0A, Card.applyProvisional(req));
        // A module-side message can never pass as a server message, even re-typed: K_req ≠ K_grant.
        byte[] body = Arrays.copyOf(grant, 29);
        m.card.expect(0x6982, Card.applyGrant(Host.seal(p, m.kReq, body)));
        assertEquals(1, m.badTags());
        assertEquals(0, m.windowEvents());
        m.apply(grant);
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void forgedTagsAre6982AndRegistered(Host.Profile p) {
        Module.Setup s = new Module.Setup();
        s.threshold = 100;
        Module m = Module.operational(p, s);
        byte[] req = m.initiate(100);
        byte[] grant = m.grantFor(req, 100);
        for (int i = 0; i < 8; i++) {
            byte[] forged = grant.clone();
            forged[29 + i] ^= (byte) 0x01; // every byte of the tag counts: no prefix compare
            m.card.expect(0x6982, Card.applyGrant(forged));
        }
        byte[] zeroTag = grant.clone();
        Arrays.fill(zeroTag, 29, 37, (byte) 0);
        m.card.expect(0x6982, Card.applyGrant(zeroTag));
        byte[] body = grant.clone();
        body[20] ^= 0x01; // G changed under the old tag
        m.card.expect(0x6982, Card.applyGrant(body));
        assertEquals(10, m.badTags());
        byte[] log = m.card.ok(Card.getFraudLog());
        assertEquals(8, log[0]);
        for (int e = 0; e < 8; e++) {
            assertEquals(1, log[1 + 9 * e], "kind bad tag");
            assertEquals(0, Hex.u32(log, 2 + 9 * e), "module N");
            assertEquals(1, Hex.u32(log, 6 + 9 * e), "carried S'");
        }
        assertEquals(0, m.balance());
        m.apply(grant);
        assertEquals(100, m.balance());
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void windowChecksInOrder(Host.Profile p) {
        Module.Setup s = new Module.Setup();
        s.threshold = 100;
        s.n = 7;
        Module m = Module.operational(p, s);
        // 5. no pending request (S' right): 9C03.
        byte[] noPending = Host.grant(p, m.id, m.kGrant, 8, 0, 0, 5, new byte[8]);
        m.card.expect(0x9C03, Card.applyGrant(noPending));
        byte[] req = m.initiate(100);
        // 4. S' ≠ N + 1: 9C05 before the pending check would matter.
        for (long sPrime : new long[] {7, 9, 0, 0xFFFFFFFFL}) {
            m.card.expect(0x9C05, Card.applyGrant(Host.grant(p, m.id, m.kGrant, sPrime, 0, 0, 5, Host.tagOf(req))));
        }
        // 6. request tag of another request: 9C0A, registered.
        byte[] otherTag = Host.tagOf(req).clone();
        otherTag[0] ^= 1;
        m.card.expect(0x9C0A, Card.applyGrant(Host.grant(p, m.id, m.kGrant, 8, 0, 0, 5, otherTag)));
        assertEquals(6, m.windowEvents());
        byte[] log = m.card.ok(Card.getFraudLog());
        assertEquals(6, log[0]);
        long[] carried = {8, 0xFFFFFFFFL, 0, 9, 7, 8}; // newest first
        for (int e = 0; e < 6; e++) {
            assertEquals(2, log[1 + 9 * e]);
            assertEquals(7, Hex.u32(log, 2 + 9 * e));
            assertEquals(carried[e], Hex.u32(log, 6 + 9 * e));
        }
        m.apply(m.grantFor(req, 100));
        assertEquals(8, m.n());
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void inconsistentStatusIs9C0AAndNotRegistered(Host.Profile p) {
        Module m = Module.operational(p);
        byte[] req = m.initiate(100);
        byte[] tag = Host.tagOf(req);
        int[][] bad = {{2, 0, 0}, {0xFF, 0, 0}, {0, 1, 100}, {1, 0, 0}, {1, 6, 0}, {1, 1, 1}, {1, 3, 100}};
        for (int[] b : bad) {
            m.card.expect(0x9C0A, Card.applyGrant(Host.grant(p, m.id, m.kGrant, 1, b[0], b[1], b[2], tag)));
        }
        assertEquals(0, m.windowEvents());
        assertEquals(0, m.badTags());
        m.apply(m.grantFor(req, 100));
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void grantBeyondLimitsIs9C06AndRegistered(Host.Profile p) {
        Module.Setup s = new Module.Setup();
        s.threshold = 100;
        s.u = 1000;
        s.balance = 900;
        Module m = Module.operational(p, s);
        byte[] req = m.initiate(100);
        m.card.expect(0x9C06, Card.applyGrant(m.grantFor(req, 101))); // G > R
        m.card.expect(0x9C06, Card.applyGrant(m.grantFor(req, 0))); // G = 0 granted
        m.card.expect(0x9C06, Card.applyGrant(m.grantFor(req, 0xFFFFFFFFL)));
        // B + G > U: lower U while the request is pending.
        m.card.ok(Card.applyLimitUpdate(m.limitUpdate(1, 1, 10_000, 950, 0)));
        m.card.expect(0x9C06, Card.applyGrant(m.grantFor(req, 51)));
        assertEquals(4, m.windowEvents());
        byte[] log = m.card.ok(Card.getFraudLog());
        assertEquals(4, log[1]);
        assertEquals(900, m.balance());
        byte[] ack = m.apply(m.grantFor(req, 50)); // exactly to U
        assertEquals(950, Hex.i32(ack, 20));
        m.card.expect(0x9C01, Card.initiate(1));
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void reloadRangeIsCheckedInWideArithmetic(Host.Profile p) {
        Module.Setup s = new Module.Setup();
        s.m = 10;
        s.max = 1000;
        s.u = 5000;
        s.balance = 4500;
        Module m = Module.operational(p, s);
        for (long r : new long[] {0, 9, 1001, 501, 0x7FFFFFFFL, 0x80000000L, 0xFFFFFFFFL}) {
            m.card.expect(0x9C01, Card.initiate(r));
        }
        assertEquals(0, m.flags());
        m.reload(500, 500);
        assertEquals(5000, m.balance());
        m.card.expect(0x9C01, Card.initiate(10));
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void balanceAtTheTopOfI32(Host.Profile p) {
        Module.Setup s = new Module.Setup();
        s.m = 1;
        s.max = 0x7FFFFFFFL;
        s.u = Integer.MAX_VALUE;
        s.balance = Integer.MAX_VALUE - 5;
        Module m = Module.operational(p, s);
        // B + R would wrap a 32-bit int to negative; wide arithmetic refuses it.
        m.card.expect(0x9C01, Card.initiate(0x7FFFFFFFL));
        m.card.expect(0x9C01, Card.initiate(6));
        byte[] req = m.initiate(5);
        m.card.expect(0x9C06, Card.applyGrant(m.grantFor(req, 0xFFFFFFFFL)));
        m.apply(m.grantFor(req, 5));
        assertEquals(Integer.MAX_VALUE, m.balance());
        m.card.expect(0x9C01, Card.initiate(1));
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void balanceAtTheBottomOfI32(Host.Profile p) {
        Module.Setup s = new Module.Setup();
        s.m = 1;
        s.max = 0x7FFFFFFFL;
        s.u = Integer.MAX_VALUE;
        s.l = Integer.MAX_VALUE;
        s.balance = -Integer.MAX_VALUE;
        Module m = Module.operational(p, s);
        // B + R = 2^31−1 − (2^31−1) + ... : the whole range up to U fits.
        byte[] req = m.initiate(0x7FFFFFFFL);
        m.card.ok(Card.applyProvisional(m.provisionalFor(req)));
        m.card.expect(0x9C07, Card.debit(1)); // already at −L
        m.apply(m.grantFor(req, 0x7FFFFFFFL));
        assertEquals(0, m.balance());
    }
}
