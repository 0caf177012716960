package dev.simkit.backup;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * §5.17 WRITE RECORDS and the verified COMMIT of §5.12: packing, staging order (§3.4), capacity
 * accounting within one command (§3.5), every refusal in the order of §4.4 with the session
 * ended and the active generation intact, and the parser across receive-piece boundaries
 * ({@link PiecewiseBackupStore}).
 */
class WriteRecordsTest {

    /** 64 KiB, 128 records, 5 / 3 tries. */
    static final String PARAMS = "0001000000800503";

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    static byte[] name(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** One record of a test tree: id, data, entry and packed form. */
    record Rec(int category, byte[] name, byte[] data) {
        byte[] entry() {
            return Card.entry(category, name, data);
        }

        byte[] packed() {
            return Card.packed(category, name, data);
        }
    }

    /** {@code n} records of 0..60 bytes with names of 1..64 bytes, so entries sit at every offset. */
    static List<Rec> smallRecords(int n, long seed) {
        Random r = new Random(seed);
        List<Rec> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String s = "r" + i + "-" + "x".repeat(r.nextInt(62));
            byte[] nm = name(s.substring(0, Math.min(64, s.length())));
            out.add(new Rec(1 + r.nextInt(5), nm, random(i % 7 == 0 ? 0 : r.nextInt(61), seed * 1000 + i)));
        }
        return out;
    }

    static byte[][] packedAll(List<Rec> recs) {
        return recs.stream().map(Rec::packed).toArray(byte[][]::new);
    }

    static byte[] digestOf(List<Rec> recs) {
        return Card.tableDigest(recs.stream().map(Rec::entry).toArray(byte[][]::new));
    }

    /** The active generation is exactly {@code recs}, in this order, every byte readable. */
    static void assertGeneration(Card c, long gen, List<Rec> recs) {
        Records.Manifest m = Records.manifest(c);
        assertEquals(gen, m.generation());
        List<Records.Entry> want = new ArrayList<>();
        long used = 0;
        for (Rec r : recs) {
            want.add(new Records.Entry(r.category(), Hex.s(r.name()), r.data().length, Hex.s(Records.sha256(r.data()))));
            used += r.data().length;
        }
        assertEquals(want, m.entries());
        for (Rec r : recs) {
            assertArrayEquals(r.data(), Records.readExtended(c, r.category(), r.name(), r.data().length, 0x7FFF),
                    Hex.s(r.name()));
        }
        byte[] st = c.ok(Card.getStatus());
        assertEquals(gen, Hex.u32(st, 1));
        assertEquals(used, Hex.u32(st, 9));
        assertEquals(recs.size(), Hex.u16(st, 17));
    }

    static int flags(Card c) {
        return c.ok(Card.getStatus())[27] & 0xFF;
    }

    // ---- packing ----------------------------------------------------------------------------

    @Test
    void manySmallRecordsInOneApduThenAVerifiedCommit() {
        Card c = Card.ready(PARAMS, true);
        List<Rec> recs = smallRecords(120, 1);
        byte[] apdu = Card.writeRecords(packedAll(recs));
        c.ok(Card.beginFull());
        c.ok(apdu);
        assertEquals(0x10 | 0x0F, flags(c), "session open, no record open");
        assertEquals(1, Hex.u32(c.ok(Card.commitVerified(digestOf(recs))), 0));
        assertGeneration(c, 1, recs);
        assertEquals(0, flags(c) & 0x10, "COMMIT ended the session");
    }

    @Test
    void entriesStraddlingReceivePiecesOfEverySize() {
        // Records of 0..60 bytes and names of 1..64 bytes: with pieces of 1..110 bytes an entry's
        // category, name length, name, length and digest each start or end on a piece boundary.
        List<Rec> recs = smallRecords(40, 2);
        byte[][] packed = packedAll(recs);
        for (int piece = 1; piece <= 110; piece++) {
            PiecewiseBackupStore.piece = piece;
            Card c = Card.ready(PARAMS, true, PiecewiseBackupStore.class);
            c.ok(Card.beginFull());
            // Half in one command, half in a second: both commands start mid-stream state anew.
            c.ok(Card.writeRecords(Arrays.copyOfRange(packed, 0, 20)));
            c.ok(Card.writeRecords(Arrays.copyOfRange(packed, 20, 40)));
            assertEquals(1, Hex.u32(c.ok(Card.commitVerified(digestOf(recs))), 0), "piece " + piece);
            assertGeneration(c, 1, recs);
        }
    }

    @Test
    void refusalsAtPieceBoundariesAreTheSame() {
        // The data-field checks do not depend on where the pieces fall.
        for (int piece : new int[] {1, 2, 3, 37, 38, 39, 40}) {
            PiecewiseBackupStore.piece = piece;
            Card c = Card.ready(PARAMS, true, PiecewiseBackupStore.class);
            byte[] good = Card.packed(3, name("a"), Hex.b("0102"));
            c.ok(Card.beginFull());
            assertEquals(0x6A80, c.swOf(Card.writeRecords(good, Hex.b("03"))), "1 byte after the records");
            c.ok(Card.beginFull());
            assertEquals(0x6A80, c.swOf(Card.writeRecords(good, Arrays.copyOf(good, 38))), "entry cut short");
            c.ok(Card.beginFull());
            assertEquals(0x6A80, c.swOf(Card.writeRecords(good, Arrays.copyOf(good, good.length - 1))),
                    "data cut short");
            c.ok(Card.beginFull());
            byte[] bad = good.clone();
            bad[good.length - 1] ^= 1;
            assertEquals(0x9D03, c.swOf(Card.writeRecords(good, bad)), "digest");
            assertEquals(0, flags(c) & 0x10);
        }
    }

    @Test
    void oneRecordOfAlmost32KiBInAnExtendedApdu() {
        Card c = Card.ready(PARAMS, true);
        byte[] nm = name("big.bin");
        byte[] data = random(0x7FFF - 38 - nm.length, 3); // Nc = 32 767, the largest one APDU carries
        byte[] apdu = Card.writeRecords(Card.packed(3, nm, data));
        assertEquals(4 + 3 + 0x7FFF, apdu.length);
        c.ok(Card.beginFull());
        c.ok(apdu);
        c.ok(Card.commitVerified(Card.tableDigest(Card.entry(3, nm, data))));
        assertGeneration(c, 1, List.of(new Rec(3, nm, data)));
    }

    @Test
    void zeroLengthRecordsAreTheirEntriesAlone() {
        Card c = Card.ready(PARAMS, true);
        Rec a = new Rec(5, name("a"), new byte[0]);
        Rec b = new Rec(2, name("b"), Hex.b("42"));
        Rec z = new Rec(4, name("z"), new byte[0]);
        c.ok(Card.beginFull());
        byte[] min = Card.writeRecords(a.packed());
        assertEquals(4 + 1 + 39, min.length, "Nc 39: the smallest WRITE RECORDS");
        c.ok(min);
        c.ok(Card.writeRecords(b.packed(), z.packed()));
        c.ok(Card.commit());
        assertGeneration(c, 1, List.of(a, b, z));
    }

    @Test
    void theSameIdTwiceInOneCommandStagesTheSecondAtTheEnd() {
        Card c = Card.ready(PARAMS, true);
        Rec a1 = new Rec(3, name("a"), random(100, 4));
        Rec b = new Rec(3, name("b"), random(50, 5));
        Rec a2 = new Rec(3, name("a"), random(70, 6));
        c.ok(Card.beginFull());
        c.ok(Card.writeRecords(a1.packed(), b.packed(), a2.packed()));
        assertEquals(65_536 - 120, Hex.u32(c.ok(Card.getStatus()), 13), "free counts b and the second a only");
        c.ok(Card.commitVerified(Card.tableDigest(b.entry(), a2.entry())));
        assertGeneration(c, 1, List.of(b, a2));
    }

    @Test
    void replacingARecordStagedEarlierReleasesItsBytes() {
        Card c = Card.ready("0000100000080503", true); // 4096 bytes, 8 records
        Rec a1 = new Rec(1, name("a"), random(2000, 7));
        Rec a2 = new Rec(1, name("a"), random(2000, 8));
        Rec b = new Rec(1, name("b"), random(2000, 9));
        c.ok(Card.beginFull());
        c.ok(Card.writeRecords(a1.packed()));
        // U + S + L = 0 + 2000 + 2000: the earlier a still counts until the new one is staged.
        c.ok(Card.writeRecords(a2.packed()));
        assertEquals(2096, Hex.u32(c.ok(Card.getStatus()), 13), "a1's bytes released");
        c.ok(Card.writeRecords(b.packed())); // 2000 + 2000 ≤ 4096 only because a1 was released
        c.ok(Card.commit());
        assertGeneration(c, 1, List.of(a2, b));
    }

    @Test
    void incrementalSessionLeavesCopiedEntriesUntouched() {
        Card c = Card.ready(PARAMS, true);
        Rec a = new Rec(1, name("a"), random(300, 10));
        Rec b = new Rec(2, name("b"), random(20, 11));
        Rec d = new Rec(4, name("d"), random(0, 12));
        c.ok(Card.beginFull());
        c.ok(Card.writeRecords(a.packed(), b.packed(), d.packed()));
        c.ok(Card.commit());
        Rec b2 = new Rec(2, name("b"), random(33, 13));
        Rec e = new Rec(5, name("e"), random(5, 14));
        c.ok(Card.beginIncremental(1));
        c.ok(Card.writeRecords(e.packed(), b2.packed()));
        assertEquals(0x3F, flags(c), "both verified, incremental session open");
        assertEquals(2, Hex.u32(c.ok(Card.commitVerified(Card.tableDigest(a.entry(), d.entry(), e.entry(),
                b2.entry()))), 0));
        assertGeneration(c, 2, List.of(a, d, e, b2));
    }

    @Test
    void bothWaysInStageTheSameTable() {
        // BEGIN RECORD / WRITE DATA / END RECORD and WRITE RECORDS mixed in one session.
        Card c = Card.ready(PARAMS, true);
        Rec a = new Rec(1, name("a"), random(600, 15));
        Rec b = new Rec(3, name("b"), random(10, 16));
        Rec a2 = new Rec(1, name("a"), random(7, 17));
        c.ok(Card.beginFull());
        Records.put(c, a.category(), a.name(), a.data(), false);
        c.ok(Card.writeRecords(b.packed()));
        c.ok(Card.writeRecords(a2.packed()));
        c.ok(Card.commitVerified(Card.tableDigest(b.entry(), a2.entry())));
        assertGeneration(c, 1, List.of(b, a2));
    }

    // ---- refusals, in the order of §4.4 --------------------------------------------------------

    /** Generation 1 = {g1}; a session open holding a record staged by WRITE RECORDS. */
    static final Rec G1 = new Rec(2, name("kept"), Hex.b("0102030405"));

    static Card generationOneInSession(String params) {
        Card c = Card.ready(params, true);
        c.ok(Card.beginFull());
        c.ok(Card.writeRecords(G1.packed()));
        c.ok(Card.commit());
        c.ok(Card.beginIncremental(1));
        c.ok(Card.writeRecords(Card.packed(3, name("staged"), random(40, 18))));
        return c;
    }

    /** The session ended (as ABORT) and generation 1 is intact; nothing staged leaks into a new one. */
    static void assertEndedAndIntact(Card c, String what) {
        assertEquals(0, flags(c) & 0x70, what + ": session ended");
        assertEquals(0x9D01, c.swOf(Card.commit()), what + ": no session to commit");
        assertGeneration(c, 1, List.of(G1));
        c.ok(Card.beginIncremental(1));
        assertEquals(2, Hex.u32(c.ok(Card.commitVerified(Card.tableDigest(G1.entry()))), 0),
                what + ": a new session starts from generation 1 alone");
    }

    /** The refusal changed nothing: the session, its staged record and generation 1 are as before. */
    static void assertUnchanged(Card c, String what, int flagsBefore) {
        assertEquals(flagsBefore, flags(c), what + ": state unchanged");
    }

    @Test
    void refusalsBeforeTheRecordsChangeNothing() {
        Card c = generationOneInSession(PARAMS);
        int before = flags(c);
        byte[] one = Card.packed(3, name("x"), Hex.b("01"));
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x4A, 0, 0, Arrays.copyOf(one, 38), -1)), "Nc 38");
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x4A, 0, 0, null, -1)), "Nc 0");
        assertUnchanged(c, "6700", before);
        assertEquals(0x6884, c.swOf(Card.apdu(0x90, 0x4A, 0, 0, one, -1)), "chaining CLA");
        assertUnchanged(c, "6884", before);
        assertEquals(0x6A86, c.swOf(Card.apdu(0x80, 0x4A, 1, 0, one, -1)));
        assertEquals(0x6A86, c.swOf(Card.apdu(0x80, 0x4A, 0, 1, one, -1)));
        assertUnchanged(c, "6A86", before);
        assertEquals(0x6D00, c.swOf(Card.apdu(0x00, 0x4A, 0, 0, one, -1)), "ISO class");
        // 9D04: a record open; it stays open and completes.
        byte[] open = random(3, 19);
        c.ok(Card.beginRecord(1, name("open"), open));
        assertEquals(0x9D04, c.swOf(Card.writeRecords(one)));
        assertEquals(0x70, flags(c) & 0x70, "incremental session and record still open");
        c.ok(Card.writeData(0, open));
        c.ok(Card.endRecord());
        assertEquals(2, Hex.u32(c.ok(Card.commit()), 0), "the session survived 9D04");
        // 9D01: no session.
        assertEquals(0x9D01, c.swOf(Card.writeRecords(one)));
        // 6982: pairing not verified (a re-selection clears it and ends any session).
        c.ok(Card.SELECT);
        assertEquals(0x6982, c.swOf(Card.writeRecords(one)));
        // The check order among them: lengths before the session state, P1/P2 before lengths.
        c.ok(Card.apdu(0x00, 0x20, 0, 1, Card.PAIRING, -1));
        assertEquals(0x6A86, c.swOf(Card.apdu(0x80, 0x4A, 0, 2, null, -1)));
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x4A, 0, 0, new byte[38], -1)));
        assertEquals(0x9D01, c.swOf(Card.apdu(0x80, 0x4A, 0, 0, new byte[39], -1)), "9D01 before the data");
    }

    @Test
    void malformedRecordsAre6A80AndEndTheSession() {
        byte[] d = Hex.b("0102");
        byte[] good = Card.packed(3, name("ok"), d);
        byte[] sha = Records.sha256(d);
        byte[][] bad = {
            Card.packed(0, name("a"), d), // category 00
            Card.packed(6, name("a"), d), // category 06
            Card.packed(3, name("a/b"), d), // '/'
            Card.packed(3, name("."), d), // "."
            Card.packed(3, Hex.b("C0AF"), d), // overlong UTF-8
            Card.packed(3, Hex.b("0A"), d), // control
            Hex.cat(Hex.b("0300"), Hex.u32(2), sha, d), // name length 0
            Hex.cat(Hex.b("0341"), new byte[65], Hex.u32(2), sha, d), // name length 65
            Hex.cat(Hex.b("0380"), Hex.u32(2), sha, d), // name length byte 80 (negative as a byte)
            Hex.cat(Hex.b("0302"), name("ab"), Hex.u32(3), sha, d), // L = 3, 2 bytes left
            Hex.cat(Hex.b("0302"), name("ab"), Hex.u32(0xFFFFFFFFL), sha, d), // L far past the end
            Arrays.copyOf(good, 39), // entry cut short
            Hex.b("03"), // one byte after a record
            Hex.b("0302"), // an entry's first two bytes
        };
        for (int i = 0; i < bad.length; i++) {
            Card c = generationOneInSession(PARAMS);
            assertEquals(0x6A80, c.swOf(Card.writeRecords(good, bad[i])), "case " + i);
            assertEndedAndIntact(c, "6A80 case " + i);
        }
        // The first record itself malformed: nothing staged at all.
        Card c = generationOneInSession(PARAMS);
        assertEquals(0x6A80, c.swOf(Card.writeRecords(bad[0], good)));
        assertEndedAndIntact(c, "6A80 first");
    }

    @Test
    void tooManyRecordsIs9D06AndEndsTheSession() {
        Card c = generationOneInSession("0001000000030503"); // 3 records: g1 and staged use 2
        Rec x = new Rec(4, name("x"), Hex.b("01"));
        Rec y = new Rec(4, name("y"), Hex.b("02"));
        assertEquals(0x9D06, c.swOf(Card.writeRecords(x.packed(), x.packed(), y.packed())),
                "x twice takes one slot; y is the fourth");
        assertEndedAndIntact(c, "9D06");
        // 6A80 (step 11) comes before 9D06 (step 12) for the same record.
        c = generationOneInSession("0001000000030503");
        assertEquals(0x6A80, c.swOf(Card.writeRecords(x.packed(), Card.packed(9, name("y"), Hex.b("02")))));
        assertEndedAndIntact(c, "6A80 before 9D06");
    }

    @Test
    void capacityCountsRecordsStagedEarlierInTheSameCommand() {
        // 4096 bytes; g1 holds 5, the staged record 40: 4051 left.
        String small = "0000100000080503";
        Rec p = new Rec(3, name("p"), random(3000, 20));
        Rec q = new Rec(3, name("q"), random(1052, 21));
        Card c = generationOneInSession(small);
        c.ok(Card.writeRecords(p.packed(), Card.packed(3, name("q"), random(1051, 22)))); // exactly full
        assertEquals(0, Hex.u32(c.ok(Card.getStatus()), 13), "free 0");
        c.ok(Card.abort());
        c = generationOneInSession(small);
        assertEquals(0x9D02, c.swOf(Card.writeRecords(p.packed(), q.packed())), "3000 + 1052 > 4051");
        assertEndedAndIntact(c, "9D02 same command");
        c = generationOneInSession(small);
        assertEquals(0x9D02, c.swOf(Card.writeRecords(Card.packed(3, name("r"), random(4052, 23)))));
        assertEndedAndIntact(c, "9D02 alone");
        // 9D06 is checked before 9D02.
        c = generationOneInSession("0000100000020503");
        assertEquals(0x9D06, c.swOf(Card.writeRecords(Card.packed(3, name("r"), random(4052, 23)))));
        assertEndedAndIntact(c, "9D06 before 9D02");
    }

    @Test
    void aWrongDigestIs9D03AndEndsTheSession() {
        Card c = generationOneInSession(PARAMS);
        byte[] d = random(30, 24);
        byte[] lie = Hex.cat(Card.id(3, name("lie")), Hex.u32(30), Records.sha256(random(30, 25)), d);
        assertEquals(0x9D03, c.swOf(Card.writeRecords(Card.packed(3, name("fine"), Hex.b("00")), lie,
                Card.packed(3, name("after"), Hex.b("00")))));
        assertEndedAndIntact(c, "9D03");
    }

    // ---- verified COMMIT (§5.12) -----------------------------------------------------------

    @Test
    void verifiedCommitCommitsOnlyTheExpectedTable() {
        Card c = generationOneInSession(PARAMS);
        Rec staged = new Rec(3, name("staged"), random(40, 18));
        // The digest of generation 1's table is not this session's: 9D09, session ended.
        assertEquals(0x9D09, c.swOf(Card.commitVerified(Card.tableDigest(G1.entry()))));
        assertEndedAndIntact(c, "9D09");
        // Order matters: the same entries in another order do not match.
        c = generationOneInSession(PARAMS);
        assertEquals(0x9D09, c.swOf(Card.commitVerified(Card.tableDigest(staged.entry(), G1.entry()))));
        assertEndedAndIntact(c, "9D09 order");
        c = generationOneInSession(PARAMS);
        assertEquals(2, Hex.u32(c.ok(Card.commitVerified(Card.tableDigest(G1.entry(), staged.entry()))), 0));
        assertGeneration(c, 2, List.of(G1, staged));
        // An empty full session: the digest of no entries.
        c.ok(Card.beginFull());
        assertEquals(3, Hex.u32(c.ok(Card.commitVerified(Records.sha256(new byte[0]))), 0));
        assertEquals("000000030000" + "0000", Hex.s(c.ok(Card.getManifest(0))));
    }

    @Test
    void verifiedCommitChecksInOrder() {
        Card c = generationOneInSession(PARAMS);
        int before = flags(c);
        byte[] want = Card.tableDigest(G1.entry(), Card.entry(3, name("staged"), random(40, 18)));
        assertEquals(0x6A86, c.swOf(Card.apdu(0x80, 0x40, 2, 0, want, 4)), "P1 02");
        assertEquals(0x6A86, c.swOf(Card.apdu(0x80, 0x40, 1, 1, want, 4)), "P2 01");
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x40, 1, 0, Arrays.copyOf(want, 31), 4)), "Nc 31");
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x40, 1, 0, Hex.cat(want, Hex.b("00")), 4)), "Nc 33");
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x40, 1, 0, null, 4)), "Nc 0 with P1 01");
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x40, 0, 0, want, 4)), "Nc 32 with P1 00");
        assertEquals(0x6700, c.swOf(Card.apdu(0x80, 0x40, 1, 0, want, 3)), "Ne 3");
        assertEquals(0x6884, c.swOf(Card.apdu(0x90, 0x40, 1, 0, want, 4)));
        assertEquals(before, flags(c), "nothing changed");
        // A record open: 9D04 before the digest is looked at; the record stays open.
        c.ok(Card.beginRecord(1, name("o"), Hex.b("AA")));
        assertEquals(0x9D04, c.swOf(Card.commitVerified(new byte[32])));
        assertEquals(0x70, flags(c) & 0x70, "incremental session and record still open");
        c.ok(Card.writeData(0, Hex.b("AA")));
        c.ok(Card.endRecord());
        Rec o = new Rec(1, name("o"), Hex.b("AA"));
        c.ok(Card.commitVerified(Card.tableDigest(G1.entry(), Card.entry(3, name("staged"), random(40, 18)),
                o.entry())));
        assertEquals(0x9D01, c.swOf(Card.commitVerified(want)), "no session");
        c.ok(Card.SELECT);
        assertEquals(0x6982, c.swOf(Card.commitVerified(want)));
    }
}
