package dev.simkit.backup;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.licel.jcardsim.smartcardio.CardSimulator;
import com.licel.jcardsim.utils.AIDUtil;

import org.junit.jupiter.api.Test;

/** §2.2 install parameters and the §4.4 order of checks. */
class DispatchTest {

    static final String PARAMS = "0001000000100503";

    @Test
    void installParametersOutOfRangeFailInstall() {
        for (String bad : new String[] {"00010000001005", "000100000010050300", "0000000000100503",
                "8000000000100503", "0001000000000503", "0001000080000503", "0001000000100003", "0001000000100510",
                "0001000000100500", "000100000010050F00"}) {
            CardSimulator sim = new CardSimulator();
            byte[] a = Hex.b(Card.AID_HEX);
            byte[] p = Hex.b(bad);
            byte[] data = Hex.cat(new byte[] {(byte) a.length}, a, new byte[] {0, (byte) p.length}, p);
            assertThrows(RuntimeException.class,
                    () -> sim.installApplet(AIDUtil.create(Card.AID_HEX), BackupStore.class, data, (short) 0,
                            (byte) data.length), bad);
        }
        // Empty install data: the defaults (64 KiB, 128 records, 5 / 3 tries).
        Card c = new Card("");
        assertEquals("0200000000000100000000000000010000000000807FFF7FFF0503009000", Hex.s(c.send(Card.getStatus())));
        // Limits at the top of their ranges install.
        new Card("0001000000100F0F");
    }

    /** §4.4 step 2: the class-for-INS check (6D00) comes before the chaining bit (6884). */
    @Test
    void wrongClassForTheInstructionBeatsTheChainingBit() {
        Card c = Card.ready(PARAMS, false);
        // CLA 10 (ISO, chaining) with a proprietary INS; CLA 90 (proprietary, chaining) with VERIFY.
        assertEquals(0x6D00, c.swOf(Card.apdu(0x10, 0x30, 0, 0, null, 0)));
        assertEquals(0x6D00, c.swOf(Card.apdu(0x90, 0x20, 0, 2, new byte[8], -1)));
        assertEquals(0x6D00, c.swOf(Card.apdu(0x10, 0x99, 0, 0, null, -1)), "unknown INS");
        // The right class with the chaining bit on a command that does not chain: 6884.
        assertEquals(0x6884, c.swOf(Card.apdu(0x90, 0x30, 0, 0, null, 0)));
        assertEquals(0x6884, c.swOf(Card.apdu(0x10, 0x20, 0, 2, new byte[8], -1)));
    }

    @Test
    void checksRunInTheOrderOfSection44() {
        Card c = Card.ready(PARAMS, false);
        // Class before instruction, instruction before P1/P2, P1/P2 before lengths.
        assertEquals(0x6E00, c.swOf(Card.apdu(0xB0, 0x99, 9, 9, null, -1)));
        assertEquals(0x6D00, c.swOf(Card.apdu(0x80, 0x99, 9, 9, null, -1)));
        assertEquals(0x6884, c.swOf(Card.apdu(0x90, 0x38, 9, 9, null, -1)));
        assertEquals(0x6A86, c.swOf(Card.apdu(0x80, 0x38, 1, 0, new byte[2], -1)));
        // Lengths before session state, session before data.
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x38, 0, 0, new byte[2], -1)));
        assertEquals(0x9D01, c.swOf(Card.apdu(0x80, 0x38, 0, 0, new byte[40], -1)));
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x3C, 0, 0, new byte[1], -1)));
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x3A, 0, 0, new byte[3], -1)), "no chain: offset needed");
        assertEquals(0x9D01, c.swOf(Card.apdu(0x80, 0x3A, 0, 0, new byte[4], -1)));
        assertEquals(0x6A86, c.swOf(Card.apdu(0x80, 0x36, 2, 0, null, -1)));
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x36, 1, 0, null, -1)), "incremental needs a base");
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x36, 0, 0, new byte[4], -1)), "full takes no data");
        // Verification before store state: READ DATA without reprovisioning is 6982 even when empty.
        assertEquals(0x6982, c.swOf(Card.readData(1, Hex.b("61"), 0, 0)));
        c.ok(Card.apdu(0x00, 0x20, 0, 2, Card.REPROVISIONING, -1));
        assertEquals(0x9D05, c.swOf(Card.readData(1, Hex.b("61"), 0, 0)));
        // Store state before data content.
        assertEquals(0x9D05, c.swOf(Card.readData(9, Hex.b("2F"), 0, 0)));
        assertEquals(0x9D05, c.swOf(Card.getManifest(0x7FFF)));
        // Deselect clears the verified flags and ends the session.
        c.ok(Card.beginFull());
        c.ok(Card.SELECT);
        assertEquals(0x6982, c.swOf(Card.beginFull()));
        c.ok(Card.apdu(0x00, 0x20, 0, 1, Card.PAIRING, -1));
        assertEquals(0x9D01, c.swOf(Card.commit()), "no session survived the re-selection");
        // Logical-channel bits are ignored.
        assertEquals(0x9000, c.swOf(Card.apdu(0x81, 0x30, 0, 0, null, 0x1C)));
    }

    @Test
    void lockAndPasscodeSetRunBeforeVerification() {
        Card c = new Card(PARAMS);
        c.ok(Card.apdu(0x80, 0x32, 0, 1, Card.PAIRING, -1));
        assertEquals(0x9D07, c.swOf(Card.readData(1, Hex.b("61"), 0, 0)), "9D07 before 6982");
        assertEquals(0x9D07, c.swOf(Card.apdu(0x00, 0x24, 1, 2, Card.PAIRING, -1)), "named passcode not set");
        assertEquals(0x6982, c.swOf(Card.apdu(0x00, 0x24, 1, 1, Card.PAIRING, -1)), "named one set, not verified");
        for (int i = 0; i < 5; i++) {
            c.send(Card.apdu(0x00, 0x20, 0, 1, Hex.b("00000000"), -1));
        }
        assertEquals(0x6983, c.swOf(Card.readData(1, Hex.b("61"), 0, 0)), "6983 before 9D07");
        assertEquals(0x6983, c.swOf(Card.apdu(0x80, 0x32, 0, 2, Card.PAIRING, -1)));
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x32, 0, 2, new byte[3], -1)), "lengths before the lock");
        byte[] st = c.ok(Card.getStatus());
        assertEquals(0, st[25]);
        assertEquals(0x01, st[27]);
    }
}
