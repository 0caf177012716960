package dev.simkit.cardhost.bench;

import dev.simkit.cardhost.AppletSpec;
import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.Hex;
import java.io.ByteArrayOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * In-process backup-store throughput, without the socket: the card-side cost of a full backup
 * (BEGIN SESSION, per record BEGIN RECORD / WRITE DATA / END RECORD, COMMIT) against the
 * {@code StoreSinkApplet} raw baseline, on the same {@link Card} path the card host uses. It
 * splits the ratio the Rust benchmark ({@code cargo bench -p simkit-card --bench backup})
 * measures into card work and transport, and is the harness to profile the applet under
 * ({@code -XX:StartFlightRecording}).
 *
 * <p>Usage: {@code BackupBench [treeBytes] [records] [seconds]} (defaults 65536, 100, 5). Prints
 * one line per measurement to stdout.
 */
public final class BackupBench {
    private static final byte[] BACKUP_AID = Hex.parse("F053494D4B49540201");
    private static final byte[] SINK_AID = Hex.parse("F053494D4B4954FF01");
    private static final byte[] PAIRING = "123456".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    private static final byte[] REPROVISIONING = "87654321".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    /** Largest command data of the card (GET STATUS reports 7FFF). */
    private static final int MAX_DATA = 0x7FFF;

    private BackupBench() {
    }

    public static void main(String[] args) throws Exception {
        int total = args.length > 0 ? Integer.parseInt(args[0]) : 65536;
        int records = args.length > 1 ? Integer.parseInt(args[1]) : 100;
        double seconds = args.length > 2 ? Double.parseDouble(args[2]) : 5;
        byte[][] tree = tree(total, records);
        byte[][] full = fullBackup(tree);
        byte[][] packed = packedBackup(tree);
        byte[][] raw = raw(tree);

        Card card = new Card(0, true, new java.net.URL[0], BackupBench.class.getClassLoader());
        // Capacity 2 MiB, 256 records, 5 / 3 tries (applet-spec §2.2).
        card.install(new AppletSpec(BACKUP_AID, "dev.simkit.backup.BackupStore",
                Hex.parse("0020000001000503")));
        card.install(new AppletSpec(SINK_AID, "dev.simkit.cardhost.testapplets.StoreSinkApplet", new byte[0]));
        ok(card, select(BACKUP_AID));
        ok(card, apdu(0x80, 0x32, 0, 1, PAIRING));
        ok(card, apdu(0x80, 0x32, 0, 2, REPROVISIONING));
        ok(card, apdu(0x00, 0x20, 0, 1, PAIRING));

        double fullS = measure(card, full, seconds);
        double packedS = measure(card, packed, seconds);
        ok(card, select(SINK_AID));
        double rawS = measure(card, raw, seconds);
        System.out.printf("in-jvm %d B in %d records: raw %.3f ms (%d APDUs); packed %.3f ms (%d APDUs),"
                + " packed / raw %.3f; one record at a time %.3f ms (%d APDUs), / raw %.3f%n", total, records,
                rawS * 1e3, raw.length, packedS * 1e3, packed.length, rawS / packedS, fullS * 1e3, full.length,
                rawS / fullS);
    }

    /** Median seconds per pass of {@code apdus} after a warm-up of a third of the time. */
    private static double measure(Card card, byte[][] apdus, double seconds) {
        long warm = System.nanoTime() + (long) (seconds / 3 * 1e9);
        while (System.nanoTime() < warm) {
            run(card, apdus);
        }
        java.util.ArrayList<Long> times = new java.util.ArrayList<>();
        long end = System.nanoTime() + (long) (seconds * 1e9);
        while (System.nanoTime() < end) {
            long t0 = System.nanoTime();
            run(card, apdus);
            times.add(System.nanoTime() - t0);
        }
        java.util.Collections.sort(times);
        return times.get(times.size() / 2) / 1e9;
    }

    private static void run(Card card, byte[][] apdus) {
        for (byte[] a : apdus) {
            ok(card, a);
        }
    }

    static byte[][] tree(int total, int records) {
        int each = total / records;
        byte[][] t = new byte[records][each];
        for (int r = 0; r < records; r++) {
            for (int i = 0; i < each; i++) {
                t[r][i] = (byte) (((long) i * 131 + r) % 251);
            }
        }
        return t;
    }

    /** A full backup's APDUs (extended WRITE DATA, one per ≤ 32 763 record bytes), then COMMIT. */
    static byte[][] fullBackup(byte[][] tree) throws NoSuchAlgorithmException {
        java.util.ArrayList<byte[]> out = new java.util.ArrayList<>();
        out.add(Hex.parse("80360000"));
        for (int r = 0; r < tree.length; r++) {
            byte[] name = String.format("record-%03d", r).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            byte[] data = tree[r];
            ByteArrayOutputStream entry = new ByteArrayOutputStream();
            entry.write(0x03);
            entry.write(name.length);
            entry.writeBytes(name);
            entry.writeBytes(u32(data.length));
            entry.writeBytes(MessageDigest.getInstance("SHA-256").digest(data));
            out.add(apdu(0x80, 0x38, 0, 0, entry.toByteArray()));
            for (int off = 0; off < data.length; off += MAX_DATA - 4) {
                int n = Math.min(MAX_DATA - 4, data.length - off);
                ByteArrayOutputStream d = new ByteArrayOutputStream();
                d.writeBytes(u32(off));
                d.write(data, off, n);
                out.add(apdu(0x80, 0x3A, 0, 0, d.toByteArray()));
            }
            out.add(Hex.parse("803C0000"));
        }
        out.add(Hex.parse("8040000004"));
        return out.toArray(new byte[0][]);
    }

    /**
     * A full backup as a version-02 host sends it: BEGIN SESSION, the records packed into WRITE
     * RECORDS of at most 32 767 bytes (a record too large for one goes as BEGIN RECORD / WRITE DATA
     * / END RECORD), COMMIT.
     */
    static byte[][] packedBackup(byte[][] tree) throws NoSuchAlgorithmException {
        java.util.ArrayList<byte[]> out = new java.util.ArrayList<>();
        out.add(Hex.parse("80360000"));
        ByteArrayOutputStream pack = new ByteArrayOutputStream();
        byte[][] single = fullBackup(tree);
        int k = 1; // index into single: BEGIN RECORD of record r
        for (int r = 0; r < tree.length; r++) {
            byte[] begin = single[k];
            byte[] entry = java.util.Arrays.copyOfRange(begin, 5, begin.length);
            int writes = (tree[r].length + MAX_DATA - 5) / (MAX_DATA - 4);
            if (entry.length + tree[r].length > MAX_DATA) {
                flush(out, pack);
                for (int j = 0; j < writes + 2; j++) {
                    out.add(single[k + j]);
                }
            } else {
                if (pack.size() + entry.length + tree[r].length > MAX_DATA) {
                    flush(out, pack);
                }
                pack.writeBytes(entry);
                pack.writeBytes(tree[r]);
            }
            k += writes + 2;
        }
        flush(out, pack);
        out.add(Hex.parse("8040000004"));
        return out.toArray(new byte[0][]);
    }

    private static void flush(java.util.List<byte[]> out, ByteArrayOutputStream pack) {
        if (pack.size() > 0) {
            out.add(apdu(0x80, 0x4A, 0, 0, pack.toByteArray()));
            pack.reset();
        }
    }

    /** The same payload as STOREs of at most 32 767 bytes to the sink. */
    static byte[][] raw(byte[][] tree) {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (byte[] r : tree) {
            all.writeBytes(r);
        }
        byte[] p = all.toByteArray();
        java.util.ArrayList<byte[]> out = new java.util.ArrayList<>();
        for (int off = 0; off < p.length; off += MAX_DATA) {
            out.add(apdu(0x80, 0x02, 0, 0, java.util.Arrays.copyOfRange(p, off, Math.min(p.length, off + MAX_DATA))));
        }
        return out.toArray(new byte[0][]);
    }

    private static byte[] u32(int v) {
        return new byte[] {(byte) (v >>> 24), (byte) (v >>> 16), (byte) (v >>> 8), (byte) v};
    }

    private static byte[] select(byte[] aid) {
        return apdu(0x00, 0xA4, 0x04, 0x00, aid);
    }

    /** A case-3 APDU, short when the data fits, else extended. */
    static byte[] apdu(int cla, int ins, int p1, int p2, byte[] data) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(cla);
        b.write(ins);
        b.write(p1);
        b.write(p2);
        if (data.length <= 255) {
            b.write(data.length);
        } else {
            b.write(0);
            b.write(data.length >> 8);
            b.write(data.length);
        }
        b.writeBytes(data);
        return b.toByteArray();
    }

    private static void ok(Card card, byte[] apdu) {
        Card.Result r = card.transmit(apdu);
        byte[] resp = r.response();
        if (r.outcome() != Card.Outcome.OK || resp.length < 2
                || resp[resp.length - 2] != (byte) 0x90 || resp[resp.length - 1] != 0) {
            throw new IllegalStateException("unexpected response " + r.outcome() + " " + Hex.of(resp)
                    + " to " + Hex.of(apdu).substring(0, Math.min(40, Hex.of(apdu).length())));
        }
    }
}
