package dev.simkit.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;

class SimCardTest {

    static final byte[] AID = Hex.b("F0534D4B495454");

    /** INS 01 echoes its data, INS 02 answers 6A82, INS 03 counts SELECTs since install/reset. */
    public static class EchoApplet extends Applet {
        private byte selects;

        public static void install(byte[] b, short o, byte l) {
            new EchoApplet().register();
        }

        @Override
        public boolean select() {
            selects++;
            return true;
        }

        @Override
        public void process(APDU apdu) {
            if (selectingApplet()) {
                return;
            }
            byte[] buf = apdu.getBuffer();
            switch (buf[ISO7816.OFFSET_INS]) {
                case 0x01:
                    short n = apdu.setIncomingAndReceive();
                    apdu.setOutgoingAndSend(ISO7816.OFFSET_CDATA, n);
                    return;
                case 0x02:
                    ISOException.throwIt(ISO7816.SW_FILE_NOT_FOUND);
                    return;
                case 0x03:
                    buf[0] = selects;
                    apdu.setOutgoingAndSend((short) 0, (short) 1);
                    return;
                default:
                    ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
            }
        }
    }

    @Test
    void installSelectsAndOkAnswersTheData() {
        SimCard c = SimCard.install(EchoApplet.class, AID, null);
        assertArrayEquals(Hex.b("0A0B"), c.ok(Hex.b("8001000002 0A0B")));
        assertArrayEquals(Hex.b("0A0B9000"), c.send("80010000020A0B"));
        assertEquals(0x6A82, c.swOf(Hex.b("80020000")));
        assertArrayEquals(new byte[0], c.expect(0x6D00, Hex.b("80990000")));
    }

    @Test
    void aWrongStatusWordFailsWithBothMeanings() {
        SimCard c = SimCard.install(EchoApplet.class, AID, null);
        AssertionFailedError e = assertThrows(AssertionFailedError.class, () -> c.ok(Hex.b("80020000")));
        assertTrue(e.getMessage().startsWith("APDU 80020000 answered 6A82: expected 9000 Success (no error), "
                + "got 6A82 FileNotFound (file or application not found)"), e.getMessage());
        assertEquals("9000", e.getExpected().getStringRepresentation());
        assertEquals("6A82", e.getActual().getStringRepresentation());
    }

    @Test
    void longApdusAreClippedInTheMessage() {
        SimCard c = SimCard.install(EchoApplet.class, AID, null);
        byte[] apdu = Hex.cat(Hex.b("80990000 64"), new byte[100]);
        AssertionFailedError e = assertThrows(AssertionFailedError.class, () -> c.ok(apdu));
        assertTrue(e.getMessage().startsWith("APDU " + Hex.s(apdu).substring(0, 80) + "… answered 6D00:"),
                e.getMessage());
    }

    @Test
    void resetRunsTheHookAndSelectSelectsAgain() {
        SimCard c = SimCard.install(EchoApplet.class, AID, null);
        assertArrayEquals(new byte[] {1}, c.ok(Hex.b("80030000 01")));
        c.reset();
        // After a reset no applet is selected: jCardSim answers 6A82... or the default applet; the
        // applet's counter only moves on a real SELECT.
        c.select(AID);
        assertArrayEquals(new byte[] {2}, c.ok(Hex.b("80030000 01")));

        int[] resets = {0};
        SimCard hooked = new SimCard(apdu -> Hex.b("9000"), () -> resets[0]++) {};
        hooked.reset();
        hooked.reset();
        assertEquals(2, resets[0]);
    }

    @Test
    void responseHelpersAndSelectBytes() {
        byte[] r = Hex.b("0102 6A82");
        assertEquals(0x6A82, SimCard.status(r));
        assertEquals("6A82", SimCard.statusHex(r));
        assertArrayEquals(Hex.b("0102"), SimCard.data(r));
        assertArrayEquals(Hex.b("00A4040007 F0534D4B495454"), SimCard.selectApdu(AID));
        assertEquals("9C99 (not in applet-spec/status-words.md)", SimCard.describe(0x9C99));
        assertEquals("6D00 InsNotSupported (instruction code not supported or invalid)", SimCard.describe(0x6D00));
    }
}
