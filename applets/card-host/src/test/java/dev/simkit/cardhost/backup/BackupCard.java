package dev.simkit.cardhost.backup;

import dev.simkit.cardhost.AppletSpec;
import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.TestCards;
import dev.simkit.testkit.Hex;
import dev.simkit.testkit.SimCard;
import java.net.URL;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A card-host {@link Card} (instrumented applet classes, {@code SimkitRuntime}) holding the backup
 * store (backup-store.md), plus the host-side helpers the tear walks need.
 */
final class BackupCard extends SimCard {
    static final byte[] AID = Hex.b("F053494D4B49540201");
    static final String CLASS = "dev.simkit.backup.BackupStore";
    /** 4 KiB, 8 records, 5 / 3 tries: small enough that every write can be torn. */
    static final byte[] PARAMS = Hex.b("0000100000080503");
    static final byte[] PAIRING = Hex.b("313233343536");
    static final byte[] REPROVISIONING = Hex.b("3837363534333231");

    final Card card;

    BackupCard(boolean rollback) {
        this(rollback, PARAMS);
    }

    BackupCard(boolean rollback, byte[] params) {
        this(new Card(0, rollback, new URL[0], BackupCard.class.getClassLoader()), params);
    }

    private BackupCard(Card card, byte[] params) {
        super(TestCards.completed(card), TestCards.powerCycle(card));
        this.card = card;
        card.install(new AppletSpec(AID, CLASS, params));
        select();
    }

    /** Installed, passcodes set, pairing verified. */
    static BackupCard paired(boolean rollback) {
        return paired(rollback, PARAMS);
    }

    static BackupCard paired(boolean rollback, byte[] params) {
        BackupCard c = new BackupCard(rollback, params);
        c.ok(apdu(0x80, 0x32, 0, 1, PAIRING, -1));
        c.ok(apdu(0x80, 0x32, 0, 2, REPROVISIONING, -1));
        c.ok(apdu(0x00, 0x20, 0, 1, PAIRING, -1));
        return c;
    }

    void select() {
        select(AID);
    }

    static String sw(byte[] response) {
        return Hex.s(Arrays.copyOfRange(response, response.length - 2, response.length));
    }

    // ---- APDUs --------------------------------------------------------------------------------

    static byte[] apdu(int cla, int ins, int p1, int p2, byte[] data, int le) {
        byte[] c = {(byte) cla, (byte) ins, (byte) p1, (byte) p2};
        if (data != null && data.length > 0) {
            c = Hex.cat(c, new byte[] {(byte) data.length}, data);
        }
        return le < 0 ? c : Hex.cat(c, new byte[] {(byte) le});
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] id(int category, String name) {
        byte[] n = name.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        return Hex.cat(new byte[] {(byte) category, (byte) n.length}, n);
    }

    static byte[] beginRecord(int category, String name, byte[] data) {
        return apdu(0x80, 0x38, 0, 0, Hex.cat(id(category, name), Hex.u32(data.length), sha256(data)), -1);
    }

    static byte[] writeData(byte[] data) {
        return apdu(0x80, 0x3A, 0, 0, Hex.cat(Hex.u32(0), data), -1);
    }

    /** A manifest entry (§3.3): id, length, SHA-256. */
    static byte[] entry(int category, String name, byte[] data) {
        return Hex.cat(id(category, name), Hex.u32(data.length), sha256(data));
    }

    /** §5.17 WRITE RECORDS of (entry ‖ data) records, short APDU (≤ 255 data bytes). */
    static byte[] writeRecords(byte[]... records) {
        return apdu(0x80, 0x4A, 0, 0, Hex.cat(records), -1);
    }

    /** §5.12 verified COMMIT expecting the table of these entries, in table order. */
    static byte[] commitVerified(byte[]... entries) {
        return apdu(0x80, 0x40, 1, 0, sha256(Hex.cat(entries)), 4);
    }

    static final byte[] END_RECORD = apdu(0x80, 0x3C, 0, 0, null, -1);
    static final byte[] COMMIT = apdu(0x80, 0x40, 0, 0, null, 4);
    static final byte[] BEGIN_FULL = apdu(0x80, 0x36, 0, 0, null, -1);
    static final byte[] ERASE = apdu(0x80, 0x46, 0, 0, Hex.b("4552415345"), -1);
    static final byte[] GET_STATUS = apdu(0x80, 0x30, 0, 0, null, 0x1C);

    static byte[] beginIncremental(long base) {
        return apdu(0x80, 0x36, 1, 0, Hex.u32(base), -1);
    }

    static byte[] deleteRecord(int category, String name) {
        return apdu(0x80, 0x3E, 0, 0, id(category, name), -1);
    }

    /** A whole record in one session (≤ 251 bytes: one short WRITE DATA). */
    void put(int category, String name, byte[] data) {
        ok(beginRecord(category, name, data));
        if (data.length > 0) {
            ok(writeData(data));
        }
        ok(END_RECORD);
    }

    // ---- the observable state (§8) ------------------------------------------------------------

    /**
     * What a host sees after power-on: generation, U, record count, passcode flags and tries left
     * (read before the passcodes are verified) from GET STATUS, and the manifest with every record read back — each record's data must match its
     * manifest digest (else the state is reported as such, never silently accepted).
     */
    record State(long generation, long used, int count, int flags, int pairingTries, int reprovisioningTries,
            List<String> records) {
    }

    /** Selects, verifies both passcodes (when set) and reads everything. */
    State state() {
        select();
        byte[] st0 = ok(apdu(0x80, 0x30, 0, 0, null, 0x1C));
        int flags = st0[27] & 0x03;
        int pairingTries = st0[25];
        int reprovisioningTries = st0[26];
        if (flags != 0x03) {
            return new State(-1, -1, -1, flags, pairingTries, reprovisioningTries, List.of());
        }
        if (st0[25] == 0 || st0[26] == 0) {
            // LOCKED: nothing readable (a LOCKED store must answer 6983 to everything).
            byte[] r = send(apdu(0x00, 0x20, 0, 1, PAIRING, -1));
            return new State(-1, -1, -1, flags | 0x100, pairingTries, reprovisioningTries, List.of("LOCKED " + sw(r)));
        }
        ok(apdu(0x00, 0x20, 0, 1, PAIRING, -1));
        ok(apdu(0x00, 0x20, 0, 2, REPROVISIONING, -1));
        byte[] st = ok(apdu(0x80, 0x30, 0, 0, null, 0x1C));
        long gen = Hex.u32(st, 1);
        List<String> records = new ArrayList<>();
        if (gen != 0) {
            byte[] m = ok(apdu(0x80, 0x34, 0, 0, null, 0));
            if (Hex.u32(m, 0) != gen) {
                records.add("MANIFEST GENERATION " + Hex.u32(m, 0));
            }
            int total = Hex.u16(m, 4);
            int count = Hex.u16(m, 6);
            if (total != count) {
                records.add("MANIFEST NEEDS PAGING");
            }
            int o = 8;
            for (int i = 0; i < count; i++) {
                int n = m[o + 1] & 0xFF;
                byte[] idBytes = Arrays.copyOfRange(m, o, o + 2 + n);
                long len = Hex.u32(m, o + 2 + n);
                byte[] digest = Arrays.copyOfRange(m, o + 6 + n, o + 38 + n);
                byte[] data = new byte[0];
                for (long off = 0; off < len; off += 256) {
                    int want = (int) Math.min(256, len - off);
                    data = Hex.cat(data, ok(apdu(0x80, 0x44, 0, 0, Hex.cat(idBytes, Hex.u32(off)), want & 0xFF)));
                }
                boolean match = Arrays.equals(digest, sha256(data));
                records.add(Hex.s(idBytes) + " " + len + " " + Hex.s(digest).substring(0, 16)
                        + (match ? "" : " DATA DOES NOT MATCH ITS DIGEST"));
                o += 38 + n;
            }
        }
        return new State(gen, Hex.u32(st, 9), Hex.u16(st, 17), flags, pairingTries, reprovisioningTries, records);
    }
}
