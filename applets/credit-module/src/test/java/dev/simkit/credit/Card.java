package dev.simkit.credit;

import dev.simkit.testkit.Hex;
import dev.simkit.testkit.SimCard;

import javacard.framework.Applet;

/**
 * One simulated card with the applet installed and selected ({@link SimCard}: raw APDUs in and
 * out, status words asserted), plus the credit module's command APDUs.
 */
final class Card extends SimCard {

    static final String AID_HEX = "F053494D4B49540101";
    static final byte[] SELECT = Hex.b("00A4040009" + AID_HEX);

    Card() {
        this(CreditModule.class);
    }

    Card(Class<? extends Applet> applet) {
        super(SimCard.install(applet, Hex.b(AID_HEX), null));
    }

    static int sw(byte[] resp) {
        return status(resp);
    }

    // ---- command APDUs (spec §4) ---------------------------------------------------------------

    static byte[] apdu(int ins, byte[] data, int le) {
        byte[] head = {(byte) 0x80, (byte) ins, 0, 0};
        if (data == null || data.length == 0) {
            return le < 0 ? head : Hex.cat(head, new byte[] {(byte) le});
        }
        byte[] c = Hex.cat(head, new byte[] {(byte) data.length}, data);
        return le < 0 ? c : Hex.cat(c, new byte[] {(byte) le});
    }

    static byte[] getStatus() {
        return apdu(0x10, null, 0x31);
    }

    static byte[] getServerAddress() {
        return apdu(0x12, null, 0x00);
    }

    static byte[] initiate(long r) {
        return apdu(0x20, Hex.u32(r), 0x1F);
    }

    static byte[] applyGrant(byte[] grant) {
        return apdu(0x22, grant, 0x28);
    }

    static byte[] applyProvisional(byte[] ack) {
        return apdu(0x24, ack, -1);
    }

    static byte[] getLastCompletion() {
        return apdu(0x26, null, 0x28);
    }

    static byte[] debit(long amount) {
        return apdu(0x30, Hex.u32(amount), 0x04);
    }

    static byte[] applyLimitUpdate(byte[] update) {
        return apdu(0x32, update, -1);
    }

    static byte[] getFraudLog() {
        return apdu(0x34, null, 0x00);
    }

    static byte[] personalise(byte[] tlv) {
        return apdu(0x50, tlv, -1);
    }

    static byte[] lock() {
        return apdu(0x5E, null, -1);
    }

    static byte[] tlv(int tag, byte[] value) {
        return Hex.cat(new byte[] {(byte) tag, (byte) value.length}, value);
    }
}
