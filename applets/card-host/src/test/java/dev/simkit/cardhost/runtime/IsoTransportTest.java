package dev.simkit.cardhost.runtime;

import static dev.simkit.cardhost.TestCards.COUNTER_AID;
import static dev.simkit.cardhost.TestCards.ECHO_AID;
import static dev.simkit.cardhost.TestCards.sw;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.simkit.cardhost.AppletSpec;
import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.Hex;
import dev.simkit.cardhost.RandomApdus;
import dev.simkit.cardhost.TestCards;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The ISO 7816-4 transport rules the card host applies in front of jCardSim (simulator.md,
 * "Command APDUs"): every command shape gets an ISO answer, never a 6F00 made by the runtime;
 * extended Le 0000 is Ne = 65 536 (told to applets as 32 767); SELECT of an AID that is not on
 * the card is 6A82 and keeps the selection.
 */
class IsoTransportTest {
    static final byte[] SHAPE_AID = Hex.parse("F0534D4B4954E5");
    static final String SHAPE = "dev.simkit.cardhost.testapplets.shape.ShapeApplet";
    static final byte[] CREDIT_AID = Hex.parse("F053494D4B49540101");
    static final byte[] BACKUP_AID = Hex.parse("F053494D4B49540201");

    /** Echo, Counter and Shape applets; nothing selected. */
    private static Card card() {
        Card c = TestCards.newCard(true);
        c.install(new AppletSpec(ECHO_AID, TestCards.ECHO, new byte[0]));
        c.install(new AppletSpec(COUNTER_AID, TestCards.COUNTER, new byte[0]));
        c.install(new AppletSpec(SHAPE_AID, SHAPE, new byte[0]));
        return c;
    }

    /** Both product applets, as `--card` installs them; nothing selected. */
    private static Card productCard() {
        Card c = TestCards.newCard(true);
        c.install(new AppletSpec(CREDIT_AID, "dev.simkit.credit.CreditModule", new byte[0]));
        c.install(new AppletSpec(BACKUP_AID, "dev.simkit.backup.BackupStore", new byte[0]));
        return c;
    }

    private static byte[] send(Card c, String hex) {
        return send(c, Hex.parse(hex));
    }

    private static byte[] send(Card c, byte[] apdu) {
        Card.Result r = c.transmit(apdu);
        assertEquals(Card.Outcome.OK, r.outcome(), () -> "outcome of " + Hex.of(apdu));
        return r.response();
    }

    private static byte[] apdu(String header, int dataLength, String trailer) {
        byte[] h = Hex.parse(header);
        byte[] t = Hex.parse(trailer);
        byte[] a = new byte[h.length + dataLength + t.length];
        System.arraycopy(h, 0, a, 0, h.length);
        Arrays.fill(a, h.length, h.length + dataLength, (byte) 0x5A);
        System.arraycopy(t, 0, a, h.length + dataLength, t.length);
        return a;
    }

    @Test
    void extendedLe0000IsNe65536ToldAs32767() {
        Card c = card();
        TestCards.selectOk(c, SHAPE_AID);
        // Answer: Nc (u16) ‖ Ne from setOutgoing (s16) ‖ last data byte.
        // Case 2E, Le 0000 (65 536): was Ne = 0 (jCardSim read it as a short), so applets said 6700.
        assertEquals("00007FFF009000", Hex.of(send(c, "80010000000000")));
        // FFFF and 8000 were negative Ne; now the Java Card maximum, as for 7FFF.
        assertEquals("00007FFF009000", Hex.of(send(c, "8001000000FFFF")));
        assertEquals("00007FFF009000", Hex.of(send(c, "80010000008000")));
        assertEquals("00007FFF009000", Hex.of(send(c, "80010000007FFF")));
        assertEquals("00000100009000", Hex.of(send(c, "80010000000100")));
        // Case 4E: 3 data bytes, Le 0000.
        assertEquals("00037FFF5A9000", Hex.of(send(c, apdu("80010000000003", 3, "0000"))));
        // Short Le 00 is 256; no Le is Ne 0.
        assertEquals("00000100009000", Hex.of(send(c, "8001000000")));
        assertEquals("00000000009000", Hex.of(send(c, "80010000")));
    }

    @Test
    void backupStoreAnswersExtendedLe0000() {
        Card c = productCard();
        TestCards.selectOk(c, BACKUP_AID);
        // GET STATUS, GET MANIFEST, READ DATA, GET MANIFEST DIGEST with extended Le 0000 answer
        // as with FFFF (was 6700 for 0000 only).
        // READ DATA carries its record id and offset (§5.14): category 04, n 07 "ui.conf", 0.
        for (String header : new String[] {"80300000", "80340000", "8044000000000D040775692E636F6E6600000000",
                "80480000"}) {
            String e = header.length() > 8 ? "" : "00"; // a case 4E command has its 00 before Lc
            byte[] viaFfff = send(c, header + e + "FFFF");
            byte[] via0000 = send(c, header + e + "0000");
            assertArrayEquals(viaFfff, via0000, header);
            assertNotEquals("6700", sw(via0000), header);
        }
        assertEquals("9000", sw(send(c, "80300000000000")), "GET STATUS");
    }

    @Test
    void shortCase4With255DataBytesReachesTheApplet() {
        Card c = card();
        TestCards.selectOk(c, SHAPE_AID);
        // 261 bytes: was 6F00 (jCardSim copied it into its 260-byte buffer and threw).
        assertEquals("00FF01005A9000", Hex.of(send(c, apdu("80010000FF", 255, "00"))));
        assertEquals("00FF00FF5A9000", Hex.of(send(c, apdu("80010000FF", 255, "FF"))));
        assertEquals("00FE01005A9000", Hex.of(send(c, apdu("80010000FE", 254, "00"))));
        assertEquals("00FF00005A9000", Hex.of(send(c, apdu("80010000FF", 255, ""))));
        TestCards.selectOk(c, ECHO_AID);
        assertEquals("6D00", sw(send(c, apdu("80EE0000FF", 255, "00"))));
        assertEquals("6D00", sw(send(c, apdu("80EE0000FE", 254, "00"))));

        Card p = productCard();
        TestCards.selectOk(p, CREDIT_AID);
        assertEquals("6D00", sw(send(p, apdu("80EE0000FF", 255, "00"))));
        assertEquals("6E00", sw(send(p, apdu("A0100000FF", 255, "00"))));
        TestCards.selectOk(p, BACKUP_AID);
        assertEquals("6D00", sw(send(p, apdu("80EE0000FF", 255, "00"))));
        assertEquals("6E00", sw(send(p, apdu("A0300000FF", 255, "00"))));
    }

    @Test
    void lcThatDisagreesWithTheBytesIs6700() {
        Card c = card();
        TestCards.selectOk(c, ECHO_AID);
        for (String bad : new String[] {
                "800100000001", // 6 bytes, fifth byte 00: neither short nor extended
                "8001000003AABB", // Lc 3, two data bytes
                "8001000002AABBCCDD", // Lc 2, three bytes after it
                "800100000000", // 00 00 and nothing after: no Le
                "800100000000000000", // extended Lc 0000 with an Le
                "8001000000000201", // extended Lc 2, one byte
                "800100000000020102030405", // extended Lc 2, data and 3 more
        }) {
            assertEquals("6700", sw(send(c, bad)), bad);
        }
        // Extended Lc above the Java Card maximum 7FFF: 6700 too.
        assertEquals("6700", sw(send(c, apdu("80010000008000", 0x8000, ""))));
        // And the card still works, the selection kept.
        assertEquals("01029000", Hex.of(send(c, "80010000020102")));
        Card p = productCard();
        TestCards.selectOk(p, BACKUP_AID);
        assertEquals("6700", sw(send(p, "8030000003AABB")));
        assertEquals("9000", sw(send(p, "8030000000")));
    }

    @Test
    void selectOfAnUnknownAidIs6A82AndKeepsTheSelection() {
        Card c = card();
        String gpCardManager = "00A4040008A000000151000000";
        assertEquals("6A82", Hex.of(send(c, gpCardManager))); // fresh card (was 6999)
        TestCards.selectOk(c, ECHO_AID);
        assertEquals("6A82", Hex.of(send(c, gpCardManager))); // echo selected (was 6D00)
        assertEquals("01029000", Hex.of(send(c, "80010000020102")), "echo still selected");
        assertEquals("6A82", Hex.of(send(c, "00A4040008F0534D4B4954E1FF")), "longer than an AID on the card");
        assertEquals("6A82", Hex.of(send(c, apdu("00A4040011", 17, "")))); // over 16 bytes
        assertEquals("6A82", Hex.of(send(c, apdu("00A40400FF", 255, "00")))); // was 6F00 (AIOOBE)
        assertEquals("01029000", Hex.of(send(c, "80010000020102")), "echo still selected");
        // Empty SELECT (no data) selects the first applet in AID order, as before.
        assertEquals("9000", sw(send(c, "00A40400")));
        assertEquals("6A82", Hex.of(send(c, gpCardManager))); // was 6A82 only by this history
        assertEquals("01029000", Hex.of(send(c, "80010000020102")));

        Card p = productCard();
        assertEquals("6A82", Hex.of(send(p, gpCardManager)));
        assertEquals("6986", Hex.of(send(p, "8010000000")), "still nothing selected");
        TestCards.selectOk(p, CREDIT_AID);
        assertEquals("6A82", Hex.of(send(p, gpCardManager)));
        assertEquals("9000", sw(send(p, "8010000000")), "credit module still selected");
        TestCards.selectOk(p, BACKUP_AID);
        assertEquals("6A82", Hex.of(send(p, gpCardManager)));
        assertEquals("9000", sw(send(p, "8030000000")), "backup store still selected");
    }

    /** simulator.md "Command APDUs" step 3, status-words.md: 6986 until a SELECT succeeds. */
    @Test
    void noAppletSelectedIs6986UntilASelect() {
        Card p = productCard();
        assertEquals("6986", Hex.of(send(p, "8010000000")), "fresh card");
        TestCards.selectOk(p, CREDIT_AID);
        assertEquals("9000", sw(send(p, "8010000000")));
        p.factoryReset();
        assertEquals("6986", Hex.of(send(p, "8010000000")), "after FACTORY_RESET");
        assertEquals("6986", Hex.of(send(p, "8030000000")), "after FACTORY_RESET");
        assertEquals("6A82", Hex.of(send(p, "00A4040008A000000151000000")), "a failed SELECT changes nothing");
        assertEquals("6986", Hex.of(send(p, "8010000000")));
        TestCards.selectOk(p, BACKUP_AID);
        assertEquals("9000", sw(send(p, "8030000000")));
        p.reset();
        assertEquals("6986", Hex.of(send(p, "8030000000")), "after a reset");
    }

    /** credit-module.md §4: the card refuses every extended APDU before the applet's checks. */
    @Test
    void creditModuleGets6700ForEveryExtendedApdu() {
        Card p = productCard();
        TestCards.selectOk(p, CREDIT_AID);
        assertEquals("6700", Hex.of(send(p, "80100000000031")), "GET STATUS, extended Le");
        assertEquals("6700", Hex.of(send(p, "A0100000000031")), "bad CLA: not 6E00");
        assertEquals("6700", Hex.of(send(p, "80EE0000000031")), "unknown INS: not 6D00");
        assertEquals("6700", Hex.of(send(p, "80100100000031")), "bad P1: not 6A86");
        assertEquals("6700", Hex.of(send(p, "8020000000000400000001")), "extended Lc");
        assertEquals("9000", sw(send(p, "8010000031")), "the short form works");
    }

    @Test
    void selectByPartialAidSelectsTheFirstMatchInAidOrder() {
        Card c = card();
        // F0534D4B4954 is a prefix of E1 (echo), E2 (counter) and E5 (shape): echo, lowest AID.
        assertEquals("9000", sw(send(c, "00A4040006F0534D4B4954")));
        assertEquals("01029000", Hex.of(send(c, "80010000020102")), "echo");
        assertEquals("9000", sw(send(c, "00A4040007F0534D4B4954E5")));
        assertEquals("00010000019000", Hex.of(send(c, "800100000101")), "shape");
        Card p = productCard();
        assertEquals("9000", sw(send(p, "00A4040005F053494D4B")));
        assertEquals("9000", sw(send(p, "8010000000")), "the credit module (…0101 < …0201) is selected");
        assertEquals("6D00", sw(send(p, "8048000000")), "not the backup store");
    }

    @Test
    void selectNextOccurrenceWalksTheMatchesInAidOrder() {
        Card c = card();
        String next = "00A4040206F0534D4B4954";
        assertEquals("9000", sw(send(c, next)), "nothing selected: the first match");
        assertEquals("01029000", Hex.of(send(c, "80010000020102")), "echo");
        assertEquals("9000", sw(send(c, next)));
        assertEquals("6D00", sw(send(c, "80010000020102")), "counter (E2) has no INS 01");
        assertEquals("9000", sw(send(c, next)));
        assertEquals("00010000019000", Hex.of(send(c, "800100000101")), "shape (E5)");
        assertEquals("6A82", Hex.of(send(c, next)), "no further match");
        assertEquals("00010000019000", Hex.of(send(c, "800100000101")), "shape still selected");
        // Extended form: same rules.
        assertEquals("9000", sw(send(c, "00A40400000007F0534D4B4954E1")));
        assertEquals("01029000", Hex.of(send(c, "80010000020102")), "echo");
        assertEquals("6A82", Hex.of(send(c, "00A40400000008A000000151000000")));
        // Last / previous occurrence and P2 bits 8-5: 6A86, selection kept.
        assertEquals("6A86", Hex.of(send(c, "00A4040106F0534D4B4954")));
        assertEquals("6A86", Hex.of(send(c, "00A4040306F0534D4B4954")));
        assertEquals("6A86", Hex.of(send(c, "00A4041006F0534D4B4954")));
        assertEquals("01029000", Hex.of(send(c, "80010000020102")), "echo still selected");
        // FCI options (P2 bits 4-3) are accepted.
        assertEquals("9000", sw(send(c, "00A4040C07F0534D4B4954E5")));
        assertEquals("00010000019000", Hex.of(send(c, "800100000101")), "shape");
    }

    /**
     * Property: whatever the shape — random lengths and Lc/Le fields, well formed or not, any CLA
     * and INS — no command makes the runtime answer 6F00 or throw. Applets that do not throw do
     * not produce 6F00 (the counter applet throws on purpose for some INS, so it is not here).
     */
    @Test
    void noCommandShapeGets6F00() {
        Random rnd = new Random(0x5EED);
        Card c = TestCards.newCard(true);
        c.install(new AppletSpec(ECHO_AID, TestCards.ECHO, new byte[0]));
        c.install(new AppletSpec(SHAPE_AID, SHAPE, new byte[0]));
        Card p = productCard();
        byte[][] selects = {TestCards.select(ECHO_AID), TestCards.select(SHAPE_AID), null};
        byte[][] productSelects = {TestCards.select(CREDIT_AID), TestCards.select(BACKUP_AID), null};
        for (int i = 0; i < 4000; i++) {
            boolean product = (i & 1) == 1;
            Card card = product ? p : c;
            byte[] sel = (product ? productSelects : selects)[rnd.nextInt(3)];
            if (sel != null) {
                send(card, sel);
            }
            byte[] a = RandomApdus.shape(rnd);
            byte[] r = send(card, a);
            assertNotEquals("6F00", sw(r), () -> "6F00 for " + Hex.of(a));
        }
    }

    @Test
    void commandShapeClassifiesEveryCase() {
        assertEquals(new CommandShape(false, 0, 0), CommandShape.parse(Hex.parse("00A40400")));
        assertEquals(new CommandShape(false, 0, 256), CommandShape.parse(Hex.parse("00B0000000")));
        assertEquals(new CommandShape(false, 0, 255), CommandShape.parse(Hex.parse("00B00000FF")));
        assertEquals(new CommandShape(false, 2, 0), CommandShape.parse(Hex.parse("0001000002AABB")));
        assertEquals(new CommandShape(false, 2, 256), CommandShape.parse(Hex.parse("0001000002AABB00")));
        assertEquals(new CommandShape(true, 0, 65536), CommandShape.parse(Hex.parse("00010000000000")));
        assertEquals(new CommandShape(true, 0, 65535), CommandShape.parse(Hex.parse("0001000000FFFF")));
        assertEquals(new CommandShape(true, 1, 0), CommandShape.parse(Hex.parse("00010000000001AA")));
        assertEquals(new CommandShape(true, 1, 65536), CommandShape.parse(Hex.parse("00010000000001AA0000")));
        assertEquals(new CommandShape(false, 255, 256), CommandShape.parse(apdu("00010000FF", 255, "00")));
        for (String bad : new String[] {"", "00", "000102", "000100000001", "0001000002AA", "0001000002AABBCCDD",
                "000100000000", "000100000000000000", "00010000000002AA"}) {
            assertNull(CommandShape.parse(Hex.parse(bad)), bad);
        }
    }
}
