package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** process() before dispatch (§4 preamble): SELECT, CLA, INS, P1/P2, Lc. */
class DispatchTest {

    /** Every proprietary INS with the Lc the spec fixes for it (-1: any length accepted). */
    static final int[][] INS_LC = {
        {0x10, 0}, {0x12, 0}, {0x20, 4}, {0x22, 37}, {0x24, 31}, {0x26, 0}, {0x30, 4}, {0x32, 39},
        {0x34, 0}, {0x50, -1}, {0x5E, 0},
    };

    @Test
    void selectAnswersNoDataInEveryState() {
        Module m = Module.operational(Host.Profile.AES_CMAC);
        assertEquals("9000", Hex.s(m.card.send(Card.SELECT)));
        assertEquals("9000", Hex.s(m.card.send(Hex.cat(Card.SELECT, new byte[] {0}))));
        Card fresh = new Card();
        assertEquals("9000", Hex.s(fresh.send(Card.SELECT)));
    }

    @Test
    void selectOfAnotherAidOrNotByNameIsRefused() {
        Card c = new Card();
        // The runtime passes a SELECT it cannot resolve to the selected applet.
        assertEquals("6A82", Hex.s(c.send("00A4040009F053494D4B49540199")));
        assertEquals("6A82", Hex.s(c.send("00A40000023F00")));
        // Still selected and working afterwards.
        c.ok(Card.getStatus());
    }

    @ParameterizedTest
    @ValueSource(ints = {0x00, 0x01, 0x04, 0x81, 0x84, 0x90, 0xA0, 0xFF})
    void claOtherThan80IsRefusedForProprietaryCommands(int cla) {
        Card c = new Card();
        for (int[] insLc : INS_LC) {
            byte[] apdu = Card.apdu(insLc[0], null, -1);
            apdu[0] = (byte) cla;
            assertEquals(0x6E00, Card.sw(c.send(apdu)), () -> Hex.s(apdu));
        }
    }

    @Test
    void unknownInsIs6D00InEveryState() {
        Card perso = new Card();
        Module op = Module.operational(Host.Profile.AES_CMAC);
        Module blocked = GateTest.blocked();
        for (int ins = 0; ins < 256; ins++) {
            boolean known = ins == 0xA4;
            for (int[] insLc : INS_LC) {
                known |= insLc[0] == ins;
            }
            if (known) {
                continue;
            }
            byte[] apdu = Card.apdu(ins, null, -1);
            for (Card c : new Card[] {perso, op.card, blocked.card}) {
                assertEquals(0x6D00, Card.sw(c.send(apdu)), () -> Hex.s(apdu));
            }
        }
        // A4 under the proprietary class is not SELECT.
        assertEquals(0x6D00, Card.sw(perso.send("80A4040000")));
    }

    @Test
    void p1OrP2NotZeroIs6A86BeforeTheLifecycleGate() {
        Card perso = new Card();
        Module op = Module.operational(Host.Profile.AES_CMAC);
        Module blocked = GateTest.blocked();
        for (int[] insLc : INS_LC) {
            for (Card c : new Card[] {perso, op.card, blocked.card}) {
                for (int[] p1p2 : new int[][] {{1, 0}, {0, 1}, {0x80, 0x80}}) {
                    byte[] apdu = Card.apdu(insLc[0], null, -1);
                    apdu[2] = (byte) p1p2[0];
                    apdu[3] = (byte) p1p2[1];
                    assertEquals(0x6A86, Card.sw(c.send(apdu)), () -> Hex.s(apdu));
                }
            }
        }
    }

    @Test
    void wrongLcIs6700ForEveryFixedLengthCommand() {
        Card perso = new Card();
        Module op = Module.operational(Host.Profile.AES_CMAC);
        for (int[] insLc : INS_LC) {
            if (insLc[1] < 0) {
                continue;
            }
            Card c = insLc[0] == 0x5E ? perso : op.card;
            for (int lc : new int[] {insLc[1] - 1, insLc[1] + 1, 255}) {
                if (lc <= 0) {
                    continue; // Lc = 0 is "no data", checked below
                }
                byte[] apdu = Card.apdu(insLc[0], new byte[lc], -1);
                assertEquals(0x6700, Card.sw(c.send(apdu)), () -> Hex.s(apdu));
            }
            if (insLc[1] > 0) {
                // No data at all.
                assertEquals(0x6700, Card.sw(c.send(Card.apdu(insLc[0], null, -1))));
            }
        }
    }

    @Test
    void leIsNotChecked() {
        Module m = Module.operational(Host.Profile.AES_CMAC);
        // GET STATUS with no Le, a short Le and Le = 00 all answer the full 49 bytes.
        for (String apdu : new String[] {"80100000", "8010000001", "8010000000"}) {
            byte[] r = m.card.send(apdu);
            assertEquals(0x9000, Card.sw(r));
            assertEquals(49, r.length - 2);
        }
    }
}
