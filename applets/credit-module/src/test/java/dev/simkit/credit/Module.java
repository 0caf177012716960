package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;

import javacard.framework.Applet;

/**
 * A card plus what the issuer and the server know about it: profile, id, derived keys, and the
 * typed view of GET STATUS. The shortest way to an operational module in a test.
 */
final class Module {

    static final byte[] MASTER_AES = Hex.b("000102030405060708090A0B0C0D0E0F");
    static final byte[] MASTER_3DES = Hex.b("0123456789ABCDEFFEDCBA9876543210");
    static final byte[] MASTER_DESX = Hex.b("0123456789ABCDEF 1011121314151617 2021222324252627");
    static final byte[] ID = Hex.b("0102030405060708");

    final Host.Profile profile;
    final byte[] id;
    final byte[] kReq;
    final byte[] kGrant;
    final Card card;

    /** Limits and counters used by {@link #operational}. */
    static final class Setup {
        long m = 1;
        long max = 10_000;
        int u = 50_000;
        int l = 500;
        int balance = 0;
        long n = 0;
        int threshold = 5;
        byte[] address = "https://reload.example/credit".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    }

    Module(Host.Profile profile, byte[] id, Card card) {
        this.profile = profile;
        this.id = id;
        byte[][] k = Host.deriveKeys(profile, master(profile), id);
        this.kReq = k[0];
        this.kGrant = k[1];
        this.card = card;
    }

    static byte[] master(Host.Profile p) {
        switch (p) {
            case AES_CMAC:
                return MASTER_AES;
            case RETAIL_MAC:
                return MASTER_3DES;
            default:
                return MASTER_DESX;
        }
    }

    static Module operational(Host.Profile p) {
        return operational(p, new Setup());
    }

    static Module operational(Host.Profile p, Setup s) {
        return operational(p, s, CreditModule.class);
    }

    static Module operational(Host.Profile p, Setup s, Class<? extends Applet> applet) {
        Module m = new Module(p, ID, new Card(applet));
        m.card.ok(Card.personalise(m.personalisation(s)));
        m.card.ok(Card.lock());
        return m;
    }

    /** All objects of §4.11 in one command. */
    byte[] personalisation(Setup s) {
        return Hex.cat(
                Card.tlv(0x81, id),
                Card.tlv(0x82, new byte[] {(byte) profile.id}),
                Card.tlv(0x83, kReq),
                Card.tlv(0x84, kGrant),
                Card.tlv(0x85, Hex.cat(Hex.u32(s.m), Hex.u32(s.max), Hex.u32(s.u), Hex.u32(s.l))),
                Card.tlv(0x86, Hex.cat(Hex.u32(s.balance), Hex.u32(s.n))),
                Card.tlv(0x87, Hex.u16(s.threshold)),
                Card.tlv(0x88, s.address));
    }

    // ---- status view ---------------------------------------------------------------------------

    byte[] status() {
        byte[] st = card.ok(Card.getStatus());
        assertEquals(49, st.length);
        return st;
    }

    int lifecycle() {
        return status()[0];
    }

    int balance() {
        return Hex.i32(status(), 10);
    }

    long n() {
        return Hex.u32(status(), 14);
    }

    int flags() {
        return status()[38];
    }

    int badTags() {
        return Hex.u16(status(), 43);
    }

    int windowEvents() {
        return Hex.u16(status(), 45);
    }

    // ---- server side ---------------------------------------------------------------------------

    /** INITIATE RELOAD, checking the request's layout and tag like the server would. */
    byte[] initiate(long r) {
        byte[] req = card.ok(Card.initiate(r));
        assertEquals(31, req.length);
        assertArrayEquals(Host.header(profile, id, 0x01), Arrays.copyOf(req, 11));
        assertEquals(r, Hex.u32(req, 15));
        assertTrue(Host.verify(profile, kReq, req), "request tag verifies under K_req");
        return req;
    }

    byte[] grantFor(byte[] req, long g) {
        return Host.grant(profile, id, kGrant, Hex.u32(req, 11) + 1, 0, 0, g, Host.tagOf(req));
    }

    byte[] declineFor(byte[] req, int reason) {
        return Host.grant(profile, id, kGrant, Hex.u32(req, 11) + 1, 1, reason, 0, Host.tagOf(req));
    }

    byte[] provisionalFor(byte[] req) {
        return Host.provisional(profile, id, kGrant, Hex.u32(req, 11) + 1, Host.tagOf(req));
    }

    byte[] limitUpdate(long seq, long m, long max, int u, int l) {
        return Host.limitUpdate(profile, id, kGrant, seq, m, max, u, l);
    }

    /** APPLY GRANT, checking the completion ack against the grant. */
    byte[] apply(byte[] grant) {
        byte[] ack = card.ok(Card.applyGrant(grant));
        assertEquals(40, ack.length);
        assertTrue(Host.verify(profile, kReq, ack), "completion ack tag verifies under K_req");
        assertEquals(Hex.u32(grant, 11), Hex.u32(ack, 11), "N' = S'");
        assertEquals(grant[15], ack[15], "status copied");
        assertEquals(Hex.u32(grant, 17), Hex.u32(ack, 16), "G copied");
        assertArrayEquals(Host.tagOf(grant), Arrays.copyOfRange(ack, 24, 32), "grant tag");
        return ack;
    }

    /** One full reload round: request, grant of G, ack. */
    byte[] reload(long r, long g) {
        return apply(grantFor(initiate(r), g));
    }
}
