package dev.simkit.backup;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;

/** §3, §5.7–§5.14, §7: round trips, incremental sessions, capacity, both transports. */
class StorageTest {

    static final byte[] EMPTY = Hex.b("656D707479"); // "empty"
    static final byte[] ONE = "ü".getBytes(StandardCharsets.UTF_8);
    static final byte[] BIG = "größe-日本語-😀.bin".getBytes(StandardCharsets.UTF_8);

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Test
    void roundTripOfEmptyOneByteAndLargeRecordsWithUtf8NamesOverBothTransports() {
        for (boolean extended : new boolean[] {false, true}) {
            Card c = Card.ready("0001000000100503", true);
            byte[] big = random(40_000, 1);
            c.ok(Card.beginFull());
            Records.put(c, 5, EMPTY, new byte[0], extended);
            Records.put(c, 3, ONE, Hex.b("2A"), extended);
            Records.put(c, 2, BIG, big, extended);
            assertEquals(1, Hex.u32(c.ok(Card.commit()), 0));
            Records.Manifest m = Records.manifest(c);
            assertEquals(List.of(
                    new Records.Entry(5, Hex.s(EMPTY), 0, Hex.s(Records.sha256(new byte[0]))),
                    new Records.Entry(3, Hex.s(ONE), 1, Hex.s(Records.sha256(Hex.b("2A")))),
                    new Records.Entry(2, Hex.s(BIG), big.length, Hex.s(Records.sha256(big)))), m.entries());
            assertEquals(0, c.ok(Card.readData(5, EMPTY, 0, 0)).length);
            assertArrayEquals(Hex.b("2A"), Records.readShort(c, 3, ONE, 1));
            assertArrayEquals(big, Records.readShort(c, 2, BIG, big.length));
            assertArrayEquals(big, Records.readExtended(c, 2, BIG, big.length, 0x7FFF));
            assertEquals(0x6A80, c.swOf(Card.readData(2, BIG, big.length + 1, 1)), "offset beyond the length");
            assertEquals(0, c.ok(Card.readData(2, BIG, big.length, 1)).length, "offset = length: nothing");
            byte[] st = c.ok(Card.getStatus());
            assertEquals(40_001, Hex.u32(st, 9));
            assertEquals(65_536 - 40_001, Hex.u32(st, 13));
            assertEquals(3, Hex.u16(st, 17));
        }
    }

    /** §5.16: generation, count and SHA-256 of the entries as GET MANIFEST returns them. */
    @Test
    void manifestDigestDescribesTheActiveTableAndLeavesAnOpenRecordAlone() {
        Card c = Card.ready("0001000000100503", false);
        assertEquals(0x9D05, c.swOf(Card.getManifestDigest()));
        byte[] a = random(300, 11);
        byte[] b = random(20, 12);
        c.ok(Card.beginFull());
        Records.put(c, 1, Hex.b("61"), a, false);
        Records.put(c, 3, Hex.b("62"), b, true);
        c.ok(Card.commit());
        byte[] entries = Hex.cat(Card.entry(1, Hex.b("61"), a), Card.entry(3, Hex.b("62"), b));
        byte[] d = c.ok(Card.getManifestDigest());
        assertEquals(38, d.length);
        assertEquals(1, Hex.u32(d, 0));
        assertEquals(2, Hex.u16(d, 4));
        assertEquals(Hex.s(Records.sha256(entries)), Hex.s(Arrays.copyOfRange(d, 6, 38)));
        // Mid-record: the digest still describes the active table and the record's running
        // hash survives (END RECORD accepts the data).
        byte[] n = random(400, 13);
        c.ok(Card.beginIncremental(1));
        c.ok(Card.beginRecord(4, Hex.b("6E"), n));
        c.ok(Card.writeData(0, Arrays.copyOf(n, 200)));
        assertArrayEquals(d, c.ok(Card.getManifestDigest()));
        c.ok(Card.writeData(200, Arrays.copyOfRange(n, 200, 400)));
        c.ok(Card.endRecord());
        c.ok(Card.commit());
        byte[] d2 = c.ok(Card.getManifestDigest());
        assertEquals(2, Hex.u32(d2, 0));
        assertEquals(3, Hex.u16(d2, 4));
        assertEquals(Hex.s(Records.sha256(Hex.cat(entries, Card.entry(4, Hex.b("6E"), n)))),
                Hex.s(Arrays.copyOfRange(d2, 6, 38)));
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x48, 0, 0, null, 37)));
        assertEquals(0x6A86, c.swOf(Card.apdu(0x80, 0x48, 0, 1, null, 38)));
        c.send(Card.SELECT);
        assertEquals(0x6982, c.swOf(Card.getManifestDigest()));
    }

    @Test
    void megabyteStoreHoldsAQuarterMegabyteRecord() {
        Card c = Card.ready("0010000000800503", true); // 1 MiB, 128 records
        byte[] data = random(256 * 1024, 2);
        c.ok(Card.beginFull());
        Records.put(c, 3, Hex.b("74726565"), data, true);
        c.ok(Card.commit());
        assertArrayEquals(data, Records.readExtended(c, 3, Hex.b("74726565"), data.length, 0x7FFF));
    }

    @Test
    void incrementalSessionSendsOnlyChangedRecordsAndKeepsOrder() {
        Card c = Card.ready("0001000000100503", true);
        byte[] a = Hex.b("61");
        byte[] b = Hex.b("62");
        byte[] d = Hex.b("64");
        c.ok(Card.beginFull());
        Records.put(c, 1, a, random(500, 3), false);
        Records.put(c, 1, b, random(600, 4), false);
        Records.put(c, 1, d, random(700, 5), false);
        c.ok(Card.commit());
        byte[] b2 = random(100, 6);
        c.ok(Card.beginIncremental(1));
        assertEquals(0x6A88, c.swOf(Card.deleteRecord(4, a)));
        c.ok(Card.deleteRecord(1, a));
        Records.put(c, 1, b, b2, false);
        byte[] st = c.ok(Card.getStatus());
        assertEquals(0x3F, st[27] & 0xFF, "both verified, incremental session open, no record open");
        assertEquals(2, Hex.u32(c.ok(Card.commit()), 0));
        Records.Manifest m = Records.manifest(c);
        assertEquals(2, m.generation());
        assertEquals(List.of(Hex.s(d), Hex.s(b)), m.entries().stream().map(Records.Entry::nameHex).toList());
        assertArrayEquals(b2, Records.readShort(c, 1, b, 100));
        assertEquals(Hex.s(Records.sha256(random(700, 5))),
                Hex.s(Records.sha256(Records.readShort(c, 1, d, 700))), "untouched record kept its data");
        assertEquals(800, Hex.u32(c.ok(Card.getStatus()), 9));
        assertEquals(0x6985, c.swOf(Card.beginIncremental(1)), "base is not the active generation");
        assertEquals(0x9D01, c.swOf(Card.deleteRecord(1, d)), "no session");
    }

    @Test
    void overflowEndsTheSessionAndKeepsThePreviousGeneration() {
        Card c = Card.ready("0000100000040503", true); // 4096 bytes, 4 records
        byte[] first = random(3000, 7);
        c.ok(Card.beginFull());
        Records.put(c, 1, Hex.b("61"), first, false);
        c.ok(Card.commit());
        // A full session needs room for old and new together.
        c.ok(Card.beginFull());
        assertEquals(0x9D02, c.swOf(Card.beginRecord(1, Hex.b("61"), random(1097, 8))));
        assertEquals(0x9D01, c.swOf(Card.commit()), "the session ended");
        // Incremental: a replacement still needs room while the old data stays readable.
        c.ok(Card.beginIncremental(1));
        Records.put(c, 1, Hex.b("62"), random(1096, 9), false);
        assertEquals(0x9D02, c.swOf(Card.beginRecord(1, Hex.b("63"), new byte[1])));
        assertEquals(0x9D01, c.swOf(Card.endRecord()));
        Records.Manifest m = Records.manifest(c);
        assertEquals(1, m.generation());
        assertEquals(1, m.entries().size());
        assertArrayEquals(first, Records.readShort(c, 1, Hex.b("61"), 3000));
        byte[] st = c.ok(Card.getStatus());
        assertEquals(3000, Hex.u32(st, 9));
        assertEquals(1096, Hex.u32(st, 13));
        // Too many records: 9D06, session ended too.
        c.ok(Card.beginIncremental(1));
        for (int i = 0; i < 3; i++) {
            Records.put(c, 2, new byte[] {(byte) ('a' + i)}, new byte[0], false);
        }
        Records.put(c, 2, Hex.b("61"), Hex.b("00"), false); // same id: replaces, no new slot
        assertEquals(0x9D06, c.swOf(Card.beginRecord(2, Hex.b("7A"), new byte[0])));
        assertEquals(0x9D01, c.swOf(Card.abort()));
        assertEquals(1, Records.manifest(c).generation());
    }

    @Test
    void recordStateErrors() {
        Card c = Card.ready("0001000000100503", true);
        byte[] data = random(300, 10);
        assertEquals(0x9D01, c.swOf(Card.beginRecord(1, Hex.b("61"), data)));
        assertEquals(0x9D05, c.swOf(Card.beginIncremental(0)));
        c.ok(Card.beginFull());
        assertEquals(0x9D04, c.swOf(Card.beginFull()));
        assertEquals(0x9D04, c.swOf(Card.deleteRecord(1, Hex.b("61"))), "full session");
        assertEquals(0x9D04, c.swOf(Card.endRecord()));
        assertEquals(0x9D04, c.swOf(Card.writeData(0, Hex.b("00"))));
        for (String bad : new String[] {"2E", "2E2E", "612F62", "615C", "7F", "C0AF", "EDA080", "F4908080", "E282",
                "FF", "0A"}) {
            assertEquals(0x6A80, c.swOf(Card.beginRecord(1, Hex.b(bad), data)), bad);
        }
        assertEquals(0x6A80, c.swOf(Card.beginRecord(6, Hex.b("61"), data)), "category 06");
        assertEquals(0x6A80, c.swOf(Card.beginRecord(0, Hex.b("61"), data)), "category 00");
        c.ok(Card.beginRecord(1, Hex.b("2E2E2E"), data));
        assertEquals(0x9D04, c.swOf(Card.beginRecord(1, Hex.b("61"), data)));
        assertEquals(0x9D04, c.swOf(Card.commit()));
        assertEquals(0x6A80, c.swOf(Card.writeData(1, Hex.b("00"))), "offset ≠ W");
        c.ok(Card.writeData(0, java.util.Arrays.copyOf(data, 100)));
        assertEquals(0x9D08, c.swOf(Card.endRecord()));
        assertEquals(0x6A80, c.swOf(Card.writeData(100, new byte[201])), "beyond L");
        assertEquals(0x40, c.ok(Card.getStatus())[27] & 0x40);
        c.ok(Card.writeData(100, java.util.Arrays.copyOfRange(data, 100, 300)));
        c.ok(Card.endRecord());
        // A wrong digest discards the record, the session stays.
        c.ok(Card.apdu(0x80, 0x38, 0, 0, Hex.cat(Card.id(1, Hex.b("62")), Hex.u32(2), new byte[32]), -1));
        c.ok(Card.writeData(0, Hex.b("0102")));
        assertEquals(0x9D03, c.swOf(Card.endRecord()));
        assertEquals(0x9D04, c.swOf(Card.endRecord()));
        assertEquals(1, Hex.u32(c.ok(Card.commit()), 0));
        assertEquals(1, Records.manifest(c).entries().size());
        assertArrayEquals(data, Records.readShort(c, 1, Hex.b("2E2E2E"), 300));
        // A chain is ended by any other command: the next WRITE DATA starts with an offset.
        c.ok(Card.beginIncremental(1));
        c.ok(Card.beginRecord(1, Hex.b("63"), data));
        c.ok(Card.apdu(0x90, 0x3A, 0, 0, Hex.cat(Hex.u32(0), java.util.Arrays.copyOf(data, 10)), -1));
        c.ok(Card.getStatus());
        c.ok(Card.extended(0x80, 0x3A, 0, 0, Hex.cat(Hex.u32(10), java.util.Arrays.copyOfRange(data, 10, 300)), -1));
        c.ok(Card.endRecord());
        c.ok(Card.abort());
        assertEquals(1, Records.manifest(c).generation());
        assertEquals(0x6A88, c.swOf(Card.readData(1, Hex.b("63"), 0, 0)), "aborted record never visible");
    }

    @Test
    void fullSessionWithNoRecordsCommitsAnEmptyGeneration() {
        Card c = Card.ready("0001000000100503", false);
        c.ok(Card.beginFull());
        c.ok(Card.commit());
        assertEquals("000000010000" + "0000", Hex.s(c.ok(Card.getManifest(0))));
        assertEquals(0x6A86, c.swOf(Card.getManifest(1)));
        assertEquals(0x6982, c.swOf(Card.readData(1, Hex.b("61"), 0, 0)), "no reprovisioning");
    }

    @Test
    void manifestPagesWhenEntriesDoNotFit() {
        Card c = Card.ready("0001000000100503", false);
        c.ok(Card.beginFull());
        for (int i = 0; i < 10; i++) {
            byte[] name = ("record-number-" + i + "-with-a-rather-long-name").getBytes(StandardCharsets.UTF_8);
            Records.put(c, 3, name, new byte[] {(byte) i}, false);
        }
        c.ok(Card.commit());
        byte[] page = c.ok(Card.getManifest(0));
        assertEquals(10, Hex.u16(page, 4));
        assertEquals(3, Hex.u16(page, 6), "Le 00: 248 bytes hold three 78-byte entries");
        assertEquals(10, Records.manifest(c).entries().size());
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x34, 0, 0, null, 0x50)), "not even one entry fits");
        assertEquals("00000001000A0000", Hex.s(c.ok(Card.apdu(0x80, 0x34, 0, 10, null, 0x08))));
    }
}
