package dev.simkit.backup;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** §4, §5.3–§5.5, §5.15: passcodes count down, block, lock the store; only ERASE helps. */
class PasscodeTest {

    static final String PARAMS = "0001000000100503";
    static final byte[] WRONG = Hex.b("30303030");

    static byte[] verify(int p2, byte[] code) {
        return Card.apdu(0x00, 0x20, 0, p2, code, -1);
    }

    @Test
    void unsetStoreAnswersPasscodeNotSet() {
        Card c = new Card(PARAMS);
        assertEquals(0x9D07, c.swOf(Card.getManifest(0)));
        assertEquals(0x9D07, c.swOf(Card.beginFull()));
        assertEquals(0x9D07, c.swOf(verify(1, Card.PAIRING)));
        c.ok(Card.apdu(0x80, 0x32, 0, 1, Card.PAIRING, -1));
        assertEquals(0x6985, c.swOf(Card.apdu(0x80, 0x32, 0, 1, Card.PAIRING, -1)), "already set");
        assertEquals(0x9D07, c.swOf(Card.getManifest(0)), "reprovisioning still unset");
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x32, 0, 2, Hex.b("313233"), -1)), "3 bytes");
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x32, 0, 2, new byte[17], -1)), "17 bytes");
    }

    @Test
    void pairingCountsDownAndBlocksThenOnlyEraseWorks() {
        Card c = Card.ready(PARAMS, true);
        c.ok(Card.beginFull());
        Records.put(c, 1, Hex.b("61"), Hex.b("010203"), false);
        assertEquals(1, Hex.u32(c.ok(Card.commit()), 0));
        c.ok(Card.beginIncremental(1));
        for (int left = 4; left >= 1; left--) {
            assertEquals(0x63C0 | left, c.swOf(verify(1, WRONG)));
            assertEquals(0x63C0 | left, c.swOf(verify(1, null)), "empty VERIFY reports tries");
        }
        // The first failure ended the session and cleared both verified flags.
        byte[] st = c.ok(Card.getStatus());
        assertEquals(0x03, st[27], "set, nothing verified, no session");
        assertEquals(0x63C0, c.swOf(verify(1, WRONG)));
        st = c.ok(Card.getStatus());
        assertEquals(0, st[25], "0 tries left");
        assertEquals(0, Hex.u32(st, 1), "no details");
        // LOCKED: everything but GET STATUS and ERASE is 6983, the right passcode included.
        assertEquals(0x6983, c.swOf(verify(1, Card.PAIRING)));
        assertEquals(0x6983, c.swOf(verify(2, Card.REPROVISIONING)));
        assertEquals(0x6983, c.swOf(Card.getManifest(0)));
        assertEquals(0x6983, c.swOf(Card.readData(1, Hex.b("61"), 0, 0)));
        assertEquals(0x6983, c.swOf(Card.beginFull()));
        assertEquals(0x6983, c.swOf(Card.apdu(0x80, 0x32, 0, 1, Card.PAIRING, -1)));
        assertEquals(0x6983, c.swOf(Card.apdu(0x00, 0x24, 1, 1, Card.PAIRING, -1)));
        // Re-selecting does not help.
        c.ok(Card.SELECT);
        assertEquals(0x6983, c.swOf(verify(1, Card.PAIRING)));
        assertEquals(0x6A80, c.swOf(Card.apdu(0x80, 0x46, 0, 0, Hex.b("4552415358"), -1)));
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x46, 0, 0, Hex.b("45524153"), -1)));
        c.ok(Card.erase());
        st = c.ok(Card.getStatus());
        assertEquals("0200000000000100000000000000010000000000107FFF7FFF050300", Hex.s(st), "UNSET again");
        // New passcodes; the old records are gone, the generation number is not reused.
        c.ok(Card.apdu(0x80, 0x32, 0, 1, Card.PAIRING, -1));
        c.ok(Card.apdu(0x80, 0x32, 0, 2, Card.REPROVISIONING, -1));
        c.ok(verify(1, Card.PAIRING));
        c.ok(verify(2, Card.REPROVISIONING));
        assertEquals(0x9D05, c.swOf(Card.getManifest(0)));
        assertEquals(0x9D05, c.swOf(Card.readData(1, Hex.b("61"), 0, 0)));
        c.ok(Card.beginFull());
        assertEquals(2, Hex.u32(c.ok(Card.commit()), 0), "numbers never reused");
        assertEquals(0x6A88, c.swOf(Card.readData(1, Hex.b("61"), 0, 0)));
    }

    @Test
    void reprovisioningNeedsPairingAndBlocksToo() {
        Card c = Card.ready(PARAMS, false);
        c.ok(Card.SELECT);
        assertEquals(0x6982, c.swOf(verify(2, WRONG)), "pairing not verified: no try used");
        assertEquals(0x63C3, c.swOf(verify(2, null)));
        c.ok(verify(1, Card.PAIRING));
        c.ok(Card.beginFull());
        assertEquals(0x63C2, c.swOf(verify(2, WRONG)));
        byte[] st = c.ok(Card.getStatus());
        assertEquals(0x17, st[27] & 0xFF, "pairing still verified, session still open");
        assertEquals(0x63C1, c.swOf(verify(2, Hex.b("3837363534333231FF"))), "longer: simply wrong");
        assertEquals(0x63C0, c.swOf(verify(2, WRONG)));
        st = c.ok(Card.getStatus());
        assertEquals(0x03, st[27], "blocked: both flags cleared, session ended");
        assertEquals(0x6983, c.swOf(Card.getManifest(0)));
        assertEquals(0x6983, c.swOf(verify(1, Card.PAIRING)));
        c.ok(Card.erase());
        assertEquals(0x9D07, c.swOf(verify(1, Card.PAIRING)));
    }

    @Test
    void successResetsTriesAndChangeReferenceDataKeepsVerified() {
        Card c = Card.ready(PARAMS, false);
        assertEquals(0x6982, c.swOf(Card.apdu(0x00, 0x24, 1, 2, Hex.b("11223344"), -1)));
        assertEquals(0x6A86, c.swOf(Card.apdu(0x00, 0x24, 0, 1, Hex.b("11223344"), -1)));
        c.ok(Card.apdu(0x00, 0x24, 1, 1, Hex.b("11223344"), -1));
        c.ok(verify(1, null));
        c.ok(Card.SELECT);
        assertEquals(0x63C4, c.swOf(verify(1, Card.PAIRING)), "old passcode is wrong now");
        c.ok(verify(1, Hex.b("11223344")));
        assertEquals(5, c.ok(Card.getStatus())[25]);
        assertEquals(0x6D00, c.swOf(Card.apdu(0x80, 0x20, 0, 1, Card.PAIRING, -1)), "VERIFY with CLA 80");
        assertEquals(0x6D00, c.swOf(Card.apdu(0x00, 0x30, 0, 0, null, 0x1C)), "GET STATUS with CLA 00");
        assertEquals(0x6E00, c.swOf(Card.apdu(0xA0, 0x30, 0, 0, null, 0x1C)));
        assertEquals(0x6884, c.swOf(Card.apdu(0x90, 0x30, 0, 0, null, 0x1C)));
        assertEquals(0x6A86, c.swOf(Card.apdu(0x00, 0x20, 0, 3, Card.PAIRING, -1)));
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x30, 0, 0, null, 0x1B)));
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x40, 0, 0, null, -1)), "COMMIT needs Le");
        assertEquals(0x6A82, c.swOf(Hex.b("00A4000C023F00")));
    }
}
