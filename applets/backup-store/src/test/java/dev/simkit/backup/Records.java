package dev.simkit.backup;

import dev.simkit.testkit.Hex;

import java.io.ByteArrayOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;

/** Host-side reference for the tests: SHA-256, the transport plans of §7, manifest parsing. */
final class Records {

    private Records() {
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** One manifest entry, parsed. */
    record Entry(int category, String nameHex, long length, String sha256) {
    }

    /** GET MANIFEST pages from 0; answers generation and entries (card order). */
    record Manifest(long generation, List<Entry> entries) {
    }

    static Manifest manifest(Card c) {
        List<Entry> out = new ArrayList<>();
        long gen = -1;
        int total;
        do {
            byte[] r = c.ok(Card.getManifest(out.size()));
            long g = Hex.u32(r, 0);
            if (gen >= 0 && g != gen) {
                throw new IllegalStateException("generation changed while paging");
            }
            gen = g;
            total = Hex.u16(r, 4);
            int count = Hex.u16(r, 6);
            int o = 8;
            for (int i = 0; i < count; i++) {
                int n = r[o + 1] & 0xFF;
                out.add(new Entry(r[o] & 0xFF, Hex.s(java.util.Arrays.copyOfRange(r, o + 2, o + 2 + n)),
                        Hex.u32(r, o + 2 + n), Hex.s(java.util.Arrays.copyOfRange(r, o + 6 + n, o + 38 + n))));
                o += 38 + n;
            }
            if (o != r.length) {
                throw new IllegalStateException("manifest page length");
            }
        } while (out.size() < total);
        return new Manifest(gen, out);
    }

    /** Short APDUs only (§7): one logical WRITE DATA at offset 0, chained in 255-byte segments. */
    static void writeChained(Card c, byte[] data) {
        byte[] all = Hex.cat(Hex.u32(0), data);
        if (data.length == 0) {
            return;
        }
        for (int o = 0; o < all.length; o += 255) {
            int end = Math.min(all.length, o + 255);
            boolean last = end == all.length;
            c.ok(Card.apdu(last ? 0x80 : 0x90, 0x3A, 0, 0, java.util.Arrays.copyOfRange(all, o, end), -1));
        }
    }

    /** Extended length (§7): limit − 4 record bytes per APDU after the offset. */
    static void writeExtended(Card c, byte[] data, int limit) {
        for (int o = 0; o < data.length; o += limit - 4) {
            int end = Math.min(data.length, o + limit - 4);
            byte[] body = Hex.cat(Hex.u32(o), java.util.Arrays.copyOfRange(data, o, end));
            c.ok(body.length <= 255 ? Card.apdu(0x80, 0x3A, 0, 0, body, -1) : Card.extended(0x80, 0x3A, 0, 0, body, -1));
        }
    }

    /** BEGIN RECORD, data, END RECORD. */
    static void put(Card c, int category, byte[] name, byte[] data, boolean extended) {
        c.ok(Card.beginRecord(category, name, data));
        if (extended) {
            writeExtended(c, data, 0x7FFF);
        } else {
            writeChained(c, data);
        }
        c.ok(Card.endRecord());
    }

    /** Reads a whole record with short APDUs (256 per READ DATA, the remainder last). */
    static byte[] readShort(Card c, int category, byte[] name, long length) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (long o = 0; o < length; o += 256) {
            int want = (int) Math.min(256, length - o);
            out.writeBytes(c.ok(Card.readData(category, name, o, want == 256 ? 0 : want)));
        }
        return out.toByteArray();
    }

    /** Reads a whole record with extended READ DATA of up to {@code limit} bytes. */
    static byte[] readExtended(Card c, int category, byte[] name, long length, int limit) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (long o = 0; o < length; o += limit) {
            int want = (int) Math.min(limit, length - o);
            byte[] body = Hex.cat(Card.id(category, name), Hex.u32(o));
            byte[] r = c.ok(Card.extended(0x80, 0x44, 0, 0, body, want));
            if (r.length != want) {
                throw new IllegalStateException("READ DATA gave " + r.length + " of " + want);
            }
            out.writeBytes(r);
        }
        return out.toByteArray();
    }
}
