package dev.simkit.backup;

import dev.simkit.testkit.Hex;
import dev.simkit.testkit.SimCard;

/**
 * One simulated card (plain jCardSim, {@link SimCard}) with the backup store installed and
 * selected, plus the backup store's command APDUs.
 */
final class Card extends SimCard {

    static final String AID_HEX = "F053494D4B49540201";
    static final byte[] SELECT = Hex.b("00A4040009" + AID_HEX);
    static final byte[] PAIRING = Hex.b("313233343536");
    static final byte[] REPROVISIONING = Hex.b("3837363534333231");

    Card(String params) {
        this(params, BackupStore.class);
    }

    /** {@code applet}: BackupStore, or a test subclass of it ({@link PiecewiseBackupStore}). */
    Card(String params, Class<? extends javacard.framework.Applet> applet) {
        super(SimCard.install(applet, Hex.b(AID_HEX), installData(params)));
    }

    /** Install data (§2): AID length, AID, no control info, the parameters. */
    static byte[] installData(String params) {
        byte[] a = Hex.b(AID_HEX);
        byte[] p = Hex.b(params);
        return Hex.cat(new byte[] {(byte) a.length}, a, new byte[] {0, (byte) p.length}, p);
    }

    /** Installed, both passcodes set, pairing verified (and reprovisioning when asked). */
    static Card ready(String params, boolean reprovisioning) {
        return ready(params, reprovisioning, BackupStore.class);
    }

    static Card ready(String params, boolean reprovisioning, Class<? extends javacard.framework.Applet> applet) {
        Card c = new Card(params, applet);
        c.ok(apdu(0x80, 0x32, 0, 1, PAIRING, -1));
        c.ok(apdu(0x80, 0x32, 0, 2, REPROVISIONING, -1));
        c.ok(apdu(0x00, 0x20, 0, 1, PAIRING, -1));
        if (reprovisioning) {
            c.ok(apdu(0x00, 0x20, 0, 2, REPROVISIONING, -1));
        }
        return c;
    }

    static int sw(byte[] resp) {
        return status(resp);
    }

    // ---- APDUs ------------------------------------------------------------------------------

    /** Short APDU (le −1: none; 256 encodes as 00). */
    static byte[] apdu(int cla, int ins, int p1, int p2, byte[] data, int le) {
        byte[] head = {(byte) cla, (byte) ins, (byte) p1, (byte) p2};
        byte[] c = head;
        if (data != null && data.length > 0) {
            c = Hex.cat(head, new byte[] {(byte) data.length}, data);
        }
        return le < 0 ? c : Hex.cat(c, new byte[] {(byte) le});
    }

    /** Extended APDU: Lc 00 hi lo, Le hi lo (le −1: none; 65 536 encodes as 0000). */
    static byte[] extended(int cla, int ins, int p1, int p2, byte[] data, int le) {
        byte[] c = {(byte) cla, (byte) ins, (byte) p1, (byte) p2};
        boolean hasData = data != null && data.length > 0;
        if (hasData) {
            c = Hex.cat(c, new byte[] {0, (byte) (data.length >> 8), (byte) data.length}, data);
        }
        if (le >= 0) {
            c = Hex.cat(c, hasData ? new byte[] {(byte) (le >> 8), (byte) le}
                    : new byte[] {0, (byte) (le >> 8), (byte) le});
        }
        return c;
    }

    static byte[] getStatus() {
        return apdu(0x80, 0x30, 0, 0, null, 0x1C);
    }

    static byte[] getManifest(int start) {
        return apdu(0x80, 0x34, start >> 8, start & 0xFF, null, 0);
    }

    static byte[] beginFull() {
        return apdu(0x80, 0x36, 0, 0, null, -1);
    }

    static byte[] beginIncremental(long base) {
        return apdu(0x80, 0x36, 1, 0, Hex.u32(base), -1);
    }

    static byte[] id(int category, byte[] name) {
        return Hex.cat(new byte[] {(byte) category, (byte) name.length}, name);
    }

    static byte[] entry(int category, byte[] name, byte[] data) {
        return Hex.cat(id(category, name), Hex.u32(data.length), Records.sha256(data));
    }

    static byte[] beginRecord(int category, byte[] name, byte[] data) {
        return apdu(0x80, 0x38, 0, 0, entry(category, name, data), -1);
    }

    static byte[] writeData(long offset, byte[] bytes) {
        return apdu(0x80, 0x3A, 0, 0, Hex.cat(Hex.u32(offset), bytes), -1);
    }

    static byte[] endRecord() {
        return apdu(0x80, 0x3C, 0, 0, null, -1);
    }

    static byte[] deleteRecord(int category, byte[] name) {
        return apdu(0x80, 0x3E, 0, 0, id(category, name), -1);
    }

    static byte[] commit() {
        return apdu(0x80, 0x40, 0, 0, null, 4);
    }

    /** A record of WRITE RECORDS (§5.17): its manifest entry ‖ its bytes. */
    static byte[] packed(int category, byte[] name, byte[] data) {
        return Hex.cat(entry(category, name, data), data);
    }

    /** WRITE RECORDS of the concatenated records: short when Nc ≤ 255, else extended. */
    static byte[] writeRecords(byte[]... records) {
        byte[] body = Hex.cat(records);
        return body.length <= 255 ? apdu(0x80, 0x4A, 0, 0, body, -1) : extended(0x80, 0x4A, 0, 0, body, -1);
    }

    /** Verified COMMIT (§5.12, P1 01): the SHA-256 the host expects of the staging table. */
    static byte[] commitVerified(byte[] expected) {
        return apdu(0x80, 0x40, 1, 0, expected, 4);
    }

    /** The table digest of §5.16 / §5.12: SHA-256 of the entries concatenated in table order. */
    static byte[] tableDigest(byte[]... entries) {
        return Records.sha256(Hex.cat(entries));
    }

    static byte[] abort() {
        return apdu(0x80, 0x42, 0, 0, null, -1);
    }

    static byte[] readData(int category, byte[] name, long offset, int le) {
        return apdu(0x80, 0x44, 0, 0, Hex.cat(id(category, name), Hex.u32(offset)), le);
    }

    static byte[] getManifestDigest() {
        return apdu(0x80, 0x48, 0, 0, null, 38);
    }

    static byte[] erase() {
        return apdu(0x80, 0x46, 0, 0, Hex.b("4552415345"), -1);
    }
}
