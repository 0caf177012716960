package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/** PERSONALISE and LOCK (§4.11, §4.12). */
class PersonaliseTest {

    static final byte[] LIMITS = Hex.b("00000001 00002710 0000C350 000001F4"); // 1, 10000, 50000, 500

    @Test
    void freshModuleReportsZeros() {
        Card c = new Card();
        byte[] st = c.ok(Card.getStatus());
        byte[] expected = new byte[49];
        expected[0] = 1;
        assertArrayEquals(expected, st);
        assertEquals(0, c.ok(Card.getServerAddress()).length);
        c.expect(0x9C0D, Card.lock());
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void objectByObjectThenLock(Host.Profile p) {
        Module m = new Module(p, Module.ID, new Card());
        Card c = m.card;
        c.ok(Card.personalise(Card.tlv(0x88, "tel:+15550100".getBytes())));
        c.ok(Card.personalise(Card.tlv(0x81, m.id)));
        c.ok(Card.personalise(Card.tlv(0x82, new byte[] {(byte) p.id})));
        c.ok(Card.personalise(Card.tlv(0x84, m.kGrant)));
        c.ok(Card.personalise(Card.tlv(0x83, m.kReq)));
        c.ok(Card.personalise(Card.tlv(0x85, LIMITS)));
        c.expect(0x9C0D, Card.lock());
        c.ok(Card.personalise(Card.tlv(0x87, Hex.u16(7))));
        c.ok(Card.personalise(Card.tlv(0x86, Hex.b("FFFFFE0C 00000010")))); // −500, 16
        c.ok(Card.lock());
        byte[] st = m.status();
        assertEquals(2, st[0]);
        assertEquals(p.id, st[1]);
        assertArrayEquals(m.id, Arrays.copyOfRange(st, 2, 10));
        assertEquals(-500, Hex.i32(st, 10));
        assertEquals(16, Hex.u32(st, 14));
        assertArrayEquals(LIMITS, Arrays.copyOfRange(st, 18, 34));
        assertEquals(7, Hex.u16(st, 47));
        assertEquals("tel:+15550100", new String(c.ok(Card.getServerAddress())));
        // Operational: personalisation is over, one way.
        c.expect(0x6985, Card.personalise(Card.tlv(0x86, Hex.b("00000000 00000000"))));
        c.expect(0x6985, Card.lock());
        byte[] req = m.initiate(10);
        assertEquals(16, Hex.u32(req, 11));
    }

    @ParameterizedTest
    @ValueSource(ints = {0x81, 0x82, 0x83, 0x84, 0x85, 0x87})
    void lockNeedsEveryItem(int missing) {
        Module m = new Module(Host.Profile.AES_CMAC, Module.ID, new Card());
        byte[] data = without(m.personalisation(new Module.Setup()), missing);
        // Keys cannot be sent without a profile, nor a balance without limits (both 6985).
        if (missing == 0x82) {
            m.card.expect(0x6985, Card.personalise(data));
            data = without(without(data, 0x83), 0x84);
        }
        if (missing == 0x85) {
            m.card.expect(0x6985, Card.personalise(data));
            data = without(data, 0x86);
        }
        m.card.ok(Card.personalise(data));
        m.card.expect(0x9C0D, Card.lock());
        assertEquals(1, m.card.ok(Card.getStatus())[0]);
    }

    @Test
    void balanceNAndAddressDefault() {
        Module m = new Module(Host.Profile.AES_CMAC, Module.ID, new Card());
        byte[] all = m.personalisation(new Module.Setup());
        m.card.ok(Card.personalise(without(without(all, 0x86), 0x88)));
        m.card.ok(Card.lock());
        assertEquals(0, m.balance());
        assertEquals(0, m.n());
        assertEquals(0, m.card.ok(Card.getServerAddress()).length);
    }

    /** Removes the object with {@code tag} from TLV data. */
    static byte[] without(byte[] tlv, int tag) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int i = 0; i < tlv.length;) {
            int len = tlv[i + 1] & 0xFF;
            if ((tlv[i] & 0xFF) != tag) {
                out.write(tlv, i, 2 + len);
            }
            i += 2 + len;
        }
        return out.toByteArray();
    }

    @Test
    void malformedDataIs6A80AndChangesNothing() {
        byte[] id = Card.tlv(0x81, Module.ID);
        String[] bad = {
            "80 01 00", "89 01 00", "00 00", "FF 00", // unknown tags
            "81 08 0102030405060708 81 08 0102030405060708", // duplicate
            "81 08 0102030405060708 00", // trailing byte
            "81 09 0102030405060708", // overruns
            "81", // tag without length
            "88 81 01 00", // long-form length
            "81 07 01020304050607", "82 02 0101", "82 00", "85 0F" + "00".repeat(15),
            "86 07" + "00".repeat(7), "87 01 01", "87 03 000001",
            "82 01 00", "82 01 04", "82 01 FF", // not a profile
            "82 01 01 83 08" + "00".repeat(8), "82 01 01 83 11" + "00".repeat(17),
            "82 01 01 84 20" + "00".repeat(32),
            "87 02 0000", // threshold 0
            "88 41" + "41".repeat(65), // address > 64
        };
        for (String b : bad) {
            Card c = new Card();
            byte[] data = Hex.cat(id, Hex.b(b));
            c.expect(0x6A80, Card.personalise(data));
            byte[] st = c.ok(Card.getStatus());
            assertEquals(0, Hex.i32(st, 2) | Hex.i32(st, 6), () -> "module id unchanged after " + b);
        }
    }

    @Test
    void keysNeedAProfileOfTheirLength() {
        Module m = new Module(Host.Profile.AES_CMAC, Module.ID, new Card());
        Card c = m.card;
        c.expect(0x6985, Card.personalise(Card.tlv(0x83, m.kReq)));
        c.expect(0x6985, Card.personalise(Hex.cat(Card.tlv(0x81, m.id), Card.tlv(0x84, m.kGrant))));
        assertEquals(0, c.ok(Card.getStatus())[2], "refused command stored nothing");
        // Profile in the same command is enough.
        c.ok(Card.personalise(Hex.cat(Card.tlv(0x82, new byte[] {1}), Card.tlv(0x83, m.kReq))));
        // Length must match the profile in force.
        c.expect(0x6A80, Card.personalise(Card.tlv(0x84, new byte[24])));
        c.expect(0x6A80, Card.personalise(Hex.cat(Card.tlv(0x82, new byte[] {3}), Card.tlv(0x84, new byte[16]))));
        c.ok(Card.personalise(Hex.cat(Card.tlv(0x82, new byte[] {3}), Card.tlv(0x84, new byte[24]))));
    }

    @Test
    void limitsAndBalanceRules() {
        Card c = new Card();
        c.expect(0x9C0B, Card.personalise(Card.tlv(0x85, Hex.b("00000000 00000010 00000100 00000000"))));
        c.expect(0x9C0B, Card.personalise(Card.tlv(0x85, Hex.b("00000011 00000010 00000100 00000000"))));
        c.expect(0x9C0B, Card.personalise(Card.tlv(0x85, Hex.b("00000001 80000000 00000100 00000000"))));
        c.expect(0x9C0B, Card.personalise(Card.tlv(0x85, Hex.b("00000001 00000010 FFFFFFFF 00000000"))));
        c.expect(0x9C0B, Card.personalise(Card.tlv(0x85, Hex.b("00000001 00000010 00000100 80000000"))));
        // A balance needs limits to be checked against.
        c.expect(0x6985, Card.personalise(Card.tlv(0x86, Hex.b("00000000 00000000"))));
        byte[] limits = Hex.b("00000001 00000010 00000100 00000020"); // U 256, L 32
        c.expect(0x9C0B, Card.personalise(Hex.cat(Card.tlv(0x85, limits), Card.tlv(0x86, Hex.b("00000101 00000000")))));
        c.expect(0x9C0B, Card.personalise(Hex.cat(Card.tlv(0x85, limits), Card.tlv(0x86, Hex.b("FFFFFFDF 00000000")))));
        c.expect(0x9C0B, Card.personalise(Hex.cat(Card.tlv(0x85, limits), Card.tlv(0x86, Hex.b("80000000 00000000")))));
        assertEquals(0, Hex.i32(c.ok(Card.getStatus()), 26), "nothing stored");
        // The edges −L and U are inside.
        c.ok(Card.personalise(Hex.cat(Card.tlv(0x85, limits), Card.tlv(0x86, Hex.b("FFFFFFE0 00000000")))));
        c.ok(Card.personalise(Card.tlv(0x86, Hex.b("00000100 00000000"))));
        // New limits are checked against the stored balance (256).
        c.expect(0x9C0B, Card.personalise(Card.tlv(0x85, Hex.b("00000001 00000010 000000FF 00000020"))));
        c.ok(Card.personalise(Card.tlv(0x85, Hex.b("00000001 00000010 00000100 00000000"))));
        // Later values overwrite earlier ones.
        c.ok(Card.personalise(Card.tlv(0x86, Hex.b("00000005 00000009"))));
        byte[] st = c.ok(Card.getStatus());
        assertEquals(5, Hex.i32(st, 10));
        assertEquals(9, Hex.u32(st, 14));
    }

    @Test
    void anyProfileChangeClearsBothKeys() {
        Module.Setup s = new Module.Setup();
        // aes-cmac → retail-mac: same key length, still cleared — a 16-byte AES key must never
        // serve as a 2-key 3DES key. LOCK is refused until both keys are loaded again.
        Module aes = new Module(Host.Profile.AES_CMAC, Module.ID, new Card());
        aes.card.ok(Card.personalise(aes.personalisation(s)));
        aes.card.ok(Card.personalise(Card.tlv(0x82, new byte[] {2})));
        aes.card.expect(0x9C0D, Card.lock());
        Module retail = new Module(Host.Profile.RETAIL_MAC, Module.ID, aes.card);
        aes.card.ok(Card.personalise(Card.tlv(0x84, retail.kGrant)));
        aes.card.expect(0x9C0D, Card.lock()); // K_req is still the cleared one
        aes.card.ok(Card.personalise(Card.tlv(0x83, retail.kReq)));
        aes.card.ok(Card.lock());
        retail.reload(10, 10);

        // retail-mac → aes-cmac and back, no keys in between: both stay cleared.
        Module back = new Module(Host.Profile.RETAIL_MAC, Module.ID, new Card());
        back.card.ok(Card.personalise(back.personalisation(s)));
        back.card.ok(Card.personalise(Card.tlv(0x82, new byte[] {1})));
        back.card.ok(Card.personalise(Card.tlv(0x82, new byte[] {2})));
        back.card.expect(0x9C0D, Card.lock());

        // aes-cmac → desx-cbc (other length): cleared as well; reloaded keys work.
        Module other = new Module(Host.Profile.AES_CMAC, Module.ID, new Card());
        other.card.ok(Card.personalise(other.personalisation(s)));
        other.card.ok(Card.personalise(Card.tlv(0x82, new byte[] {3})));
        other.card.expect(0x9C0D, Card.lock());
        Module desx = new Module(Host.Profile.DESX_CBC, Module.ID, other.card);
        other.card.ok(Card.personalise(Card.tlv(0x83, desx.kReq)));
        other.card.expect(0x9C0D, Card.lock());
        other.card.ok(Card.personalise(Card.tlv(0x84, desx.kGrant)));
        other.card.ok(Card.lock());
        desx.reload(10, 10);

        // A profile change with keys in the same command: the command's keys are the new ones.
        Module fromDesx = new Module(Host.Profile.DESX_CBC, Module.ID, new Card());
        fromDesx.card.ok(Card.personalise(fromDesx.personalisation(s)));
        Module now = new Module(Host.Profile.AES_CMAC, Module.ID, fromDesx.card);
        fromDesx.card.ok(Card.personalise(Hex.cat(Card.tlv(0x82, new byte[] {1}),
                Card.tlv(0x83, now.kReq), Card.tlv(0x84, now.kGrant))));
        fromDesx.card.ok(Card.lock());
        byte[] r = now.initiate(10);
        assertArrayEquals(Host.tag(Host.Profile.AES_CMAC, now.kReq, Arrays.copyOf(r, 23)), Host.tagOf(r));
        now.apply(now.grantFor(r, 10));

        // Same profile again is no change: nothing cleared.
        Module same = new Module(Host.Profile.RETAIL_MAC, Module.ID, new Card());
        same.card.ok(Card.personalise(same.personalisation(s)));
        same.card.ok(Card.personalise(Card.tlv(0x82, new byte[] {2})));
        same.card.ok(Card.lock());
        same.reload(10, 10);
    }

    @Test
    void serverAddressUpTo64Bytes() {
        Card c = new Card();
        byte[] addr = new byte[64];
        Arrays.fill(addr, (byte) 'a');
        c.ok(Card.personalise(Card.tlv(0x88, addr)));
        assertArrayEquals(addr, c.ok(Card.getServerAddress()));
        c.ok(Card.personalise(Card.tlv(0x88, new byte[0])));
        assertEquals(0, c.ok(Card.getServerAddress()).length);
    }

    @Test
    void emptyPersonaliseIsAcceptedAndChangesNothing() {
        Card c = new Card();
        c.ok(Card.personalise(new byte[0]));
        c.ok(Card.apdu(0x50, null, -1));
        assertEquals(1, c.ok(Card.getStatus())[0]);
    }
}
