package dev.simkit.cardhost.backup;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.simkit.cardhost.Card;
import dev.simkit.testkit.Hex;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Tear walks on the backup store (backup-store.md §8): for every command that writes persistent
 * state ({@link Scenario}), power is cut after every persistent write k = 1..W of the torn command,
 * W being the WRITE_COUNT of an un-torn run on an identical card. After power-on the store must
 * hold exactly the old state or exactly the new one — generation number, U, record count, passcode
 * flags and tries, manifest (entries and order) and every record's data matching its digest —
 * never a mix; no work may be left pending (the second command after power-on writes nothing);
 * and the next command must work: a commit's retry reaches exactly the new state, and a torn
 * session's command, sent again in a new session and committed, reaches exactly what the un-torn
 * session commits. The same walk without rollback must find a mixed state for every command whose
 * atomicity rests on a transaction, which proves the check can fail.
 */
class BackupTearWalkTest {

    static byte[] bytes(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (seed * 31 + i * 7);
        }
        return b;
    }

    /** Generation 1: three records. */
    static void generationOne(BackupCard c) {
        c.ok(BackupCard.BEGIN_FULL);
        c.put(1, "carrier.sb", bytes(28, 1));
        c.put(3, "notes.txt", bytes(200, 2));
        c.put(4, "ui.conf", bytes(0, 3));
        assertEquals(1, Hex.u32(c.ok(BackupCard.COMMIT), 0));
    }

    /** What keeps a command's torn state old-or-new. */
    enum Guard {
        /** One transaction (the commit point): without rollback a tear inside it shows a mix. */
        TRANSACTION,
        /** One single-byte write inside a transaction: without rollback its tear shows the new state. */
        SINGLE_WRITE,
        /**
         * Writes only to the staging table and to storage the active table does not reference, outside
         * any transaction (§8 "How"), and the session that would commit them lives in transient memory:
         * a tear leaves the old state whether or not the runtime rolls back, so the no-rollback control
         * cannot find a mix here by construction. What shows the walk is not vacuous for these is the
         * follow-up: the same command in a new session must still commit exactly the un-torn result.
         */
        SHADOW
    }

    static final Consumer<BackupCard> COMMIT = c -> c.ok(BackupCard.COMMIT);

    enum Scenario {
        /** A full session (two records) whose COMMIT is torn. */
        FULL_COMMIT(c -> {
            c.ok(BackupCard.BEGIN_FULL);
            c.put(2, "key.pem", bytes(150, 4));
            c.put(3, "photo.jpg", bytes(251, 5));
        }, BackupCard.COMMIT, Guard.TRANSACTION),
        /** An incremental session with a delete, a replacement and a new record; COMMIT torn. */
        INCREMENTAL_COMMIT(c -> {
            c.ok(BackupCard.beginIncremental(1));
            c.ok(BackupCard.deleteRecord(3, "notes.txt"));
            c.put(1, "carrier.sb", bytes(40, 6));
            c.put(5, "über.bin", bytes(99, 7));
        }, BackupCard.COMMIT, Guard.TRANSACTION),
        /** WRITE RECORDS (revision 2) replacing one record and adding one, torn; no commit follows. */
        WRITE_RECORDS(c -> c.ok(BackupCard.beginIncremental(1)),
                BackupCard.writeRecords(
                        Hex.cat(BackupCard.entry(1, "carrier.sb", bytes(40, 6)), bytes(40, 6)),
                        Hex.cat(BackupCard.entry(5, "über.bin", bytes(99, 7)), bytes(99, 7))),
                COMMIT),
        /**
         * The verified COMMIT (revision 2) of an incremental session with a delete and a WRITE
         * RECORDS replacing one record and adding one, torn; its expected table is §3.4's.
         */
        VERIFIED_COMMIT(c -> {
            c.ok(BackupCard.beginIncremental(1));
            c.ok(BackupCard.deleteRecord(3, "notes.txt"));
            c.ok(BackupCard.writeRecords(
                    Hex.cat(BackupCard.entry(1, "carrier.sb", bytes(40, 6)), bytes(40, 6)),
                    Hex.cat(BackupCard.entry(5, "über.bin", bytes(99, 7)), bytes(99, 7))));
        }, BackupCard.commitVerified(BackupCard.entry(4, "ui.conf", bytes(0, 3)),
                BackupCard.entry(1, "carrier.sb", bytes(40, 6)), BackupCard.entry(5, "über.bin", bytes(99, 7))),
                Guard.TRANSACTION),
        /** BEGIN SESSION incremental: the active table copied into the staging table. */
        BEGIN_SESSION_INCREMENTAL(c -> { }, BackupCard.beginIncremental(1), COMMIT),
        /** BEGIN RECORD replacing a record: its blocks are chained (the block links are persistent). */
        BEGIN_RECORD(c -> c.ok(BackupCard.beginIncremental(1)), BackupCard.beginRecord(3, "notes.txt", bytes(120, 8)),
                c -> {
                    c.ok(BackupCard.writeData(bytes(120, 8)));
                    c.ok(BackupCard.END_RECORD);
                    c.ok(BackupCard.COMMIT);
                }),
        /** WRITE DATA of a record torn (no commit follows: the old generation must stay). */
        WRITE_DATA(c -> {
            c.ok(BackupCard.beginIncremental(1));
            c.ok(BackupCard.beginRecord(3, "notes.txt", bytes(120, 8)));
        }, BackupCard.writeData(bytes(120, 8)), c -> {
            c.ok(BackupCard.END_RECORD);
            c.ok(BackupCard.COMMIT);
        }),
        /** END RECORD replacing a record torn. */
        END_RECORD(c -> {
            c.ok(BackupCard.beginIncremental(1));
            c.ok(BackupCard.beginRecord(3, "notes.txt", bytes(120, 8)));
            c.ok(BackupCard.writeData(bytes(120, 8)));
        }, BackupCard.END_RECORD, COMMIT),
        /** DELETE RECORD of the first staged entry: the staging table's entries rotate up. */
        DELETE_RECORD(c -> c.ok(BackupCard.beginIncremental(1)), BackupCard.deleteRecord(1, "carrier.sb"), COMMIT),
        /** DELETE RECORD of a record staged in this session: its blocks are released too. */
        DELETE_STAGED_RECORD(c -> {
            c.ok(BackupCard.beginIncremental(1));
            c.put(2, "key.pem", bytes(150, 4));
            c.put(5, "über.bin", bytes(99, 7));
        }, BackupCard.deleteRecord(2, "key.pem"), COMMIT),
        /** SET PASSCODE (pairing) on a fresh card. */
        SET_PASSCODE_PAIRING(rollback -> new BackupCard(rollback), c -> { },
                BackupCard.apdu(0x80, 0x32, 0, 1, BackupCard.PAIRING, -1), Guard.SINGLE_WRITE),
        /** SET PASSCODE (reprovisioning) on a card where only the pairing passcode is set. */
        SET_PASSCODE(rollback -> {
            BackupCard c = new BackupCard(rollback);
            c.ok(BackupCard.apdu(0x80, 0x32, 0, 1, BackupCard.PAIRING, -1));
            return c;
        }, c -> { }, BackupCard.apdu(0x80, 0x32, 0, 2, BackupCard.REPROVISIONING, -1), Guard.SINGLE_WRITE),
        /** ERASE of a small store holding generation 1, in a session. */
        ERASE(BackupTearWalkTest::smallGenerationOne, c -> c.ok(BackupCard.beginIncremental(1)), BackupCard.ERASE,
                Guard.TRANSACTION),
        /** ERASE of a LOCKED store (reprovisioning passcode blocked): the only way out. */
        ERASE_LOCKED(rollback -> {
            BackupCard c = BackupCard.paired(rollback, SMALL);
            c.ok(BackupCard.BEGIN_FULL);
            c.put(3, "notes.txt", bytes(200, 2));
            assertEquals(1, Hex.u32(c.ok(BackupCard.COMMIT), 0));
            for (int i = 0; i < 3; i++) {
                c.send(BackupCard.apdu(0x00, 0x20, 0, 2, Hex.b("00000000"), -1));
            }
            return c;
        }, c -> { }, BackupCard.ERASE, Guard.TRANSACTION),
        /**
         * The first command after an ERASE torn in its wipe (§5.15 step 3, §4.4 step 5): it zeroes
         * everything again before answering, and is torn in turn. Old and new state are the same
         * empty, unset store; the walk checks that the wipe is still pending after each tear (the
         * next command writes) and done after that.
         */
        WIPE_RESUME(rollback -> {
            BackupCard c = smallGenerationOne(rollback);
            c.card.armTear(ERASE_TRANSACTION_WRITES + 8);
            assertEquals(Card.Outcome.POWER_LOST, c.card.transmit(BackupCard.ERASE).outcome(), "ERASE torn in its wipe");
            c.card.powerOn();
            c.select();
            return c;
        }, c -> { }, BackupCard.GET_STATUS, c -> {
            c.ok(BackupCard.apdu(0x80, 0x32, 0, 1, BackupCard.PAIRING, -1));
            c.ok(BackupCard.apdu(0x80, 0x32, 0, 2, BackupCard.REPROVISIONING, -1));
        });

        final java.util.function.Function<Boolean, BackupCard> base;
        final Consumer<BackupCard> prepare;
        final byte[] command;
        final Guard guard;
        /** For a command inside a session: what completes the session (null: the command commits). */
        final Consumer<BackupCard> finish;

        Scenario(Consumer<BackupCard> prepare, byte[] command, Guard guard) {
            this(BackupTearWalkTest::generationOneCard, prepare, command, guard, null);
        }

        Scenario(Consumer<BackupCard> prepare, byte[] command, Consumer<BackupCard> finish) {
            this(BackupTearWalkTest::generationOneCard, prepare, command, Guard.SHADOW, finish);
        }

        Scenario(java.util.function.Function<Boolean, BackupCard> base, Consumer<BackupCard> prepare, byte[] command,
                Guard guard) {
            this(base, prepare, command, guard, null);
        }

        Scenario(java.util.function.Function<Boolean, BackupCard> base, Consumer<BackupCard> prepare, byte[] command,
                Consumer<BackupCard> finish) {
            this(base, prepare, command, Guard.SHADOW, finish);
        }

        Scenario(java.util.function.Function<Boolean, BackupCard> base, Consumer<BackupCard> prepare, byte[] command,
                Guard guard, Consumer<BackupCard> finish) {
            this.base = base;
            this.prepare = prepare;
            this.command = command;
            this.guard = guard;
            this.finish = finish;
        }

        /** The command itself changes the observable state (else only a later COMMIT would). */
        boolean commits() {
            return finish == null;
        }

        /** The new state appears only at the end (one transaction is the command's last write). */
        boolean commitsLast() {
            return commits() && this != ERASE && this != ERASE_LOCKED;
        }
    }

    /** ERASE step 1 (§5.15): count (2), generation (4), U (4), two "set" flags, wipe pending. */
    static final int ERASE_TRANSACTION_WRITES = 13;

    /** 256 bytes, 2 records: the ERASE wipe stays short enough to tear at every write. */
    static final byte[] SMALL = Hex.b("0000010000020503");

    static BackupCard generationOneCard(boolean rollback) {
        BackupCard c = BackupCard.paired(rollback);
        generationOne(c);
        return c;
    }

    /** A small store holding generation 1 (two records). */
    static BackupCard smallGenerationOne(boolean rollback) {
        BackupCard c = BackupCard.paired(rollback, SMALL);
        c.ok(BackupCard.BEGIN_FULL);
        c.put(1, "carrier.sb", bytes(28, 1));
        c.put(3, "notes.txt", bytes(200, 2));
        assertEquals(1, Hex.u32(c.ok(BackupCard.COMMIT), 0));
        return c;
    }

    /**
     * The un-torn reference run: state before, response, state after the command, WRITE_COUNT,
     * and for a command inside a session the state its session commits ({@code after} otherwise).
     */
    record Reference(BackupCard.State before, byte[] response, BackupCard.State after, int writes,
            BackupCard.State committed) {
    }

    static BackupCard prepared(Scenario s, boolean rollback) {
        BackupCard c = s.base.apply(rollback);
        s.prepare.accept(c);
        return c;
    }

    static Reference reference(Scenario s, boolean rollback) {
        BackupCard.State before = s.base.apply(rollback).state();
        BackupCard c = prepared(s, rollback);
        byte[] response = c.send(s.command);
        assertEquals("9000", BackupCard.sw(response), () -> s + " un-torn: " + Hex.s(response));
        int writes = c.card.lastWriteCount();
        assertTrue(writes > 0, s + " makes persistent writes");
        if (s.commits()) {
            BackupCard.State after = c.state();
            assertNotEquals(before, after, s + " changes the state");
            return new Reference(before, response, after, writes, after);
        }
        s.finish.accept(c);
        BackupCard.State committed = c.state();
        assertNotEquals(before, committed, s + "'s session changes the state");
        return new Reference(before, response, before, writes, committed);
    }

    static BackupCard tornAt(Scenario s, boolean rollback, Reference ref, int k) {
        BackupCard c = prepared(s, rollback);
        c.card.armTear(k);
        Card.Result r = c.card.transmit(s.command);
        if (k <= ref.writes()) {
            assertEquals(Card.Outcome.POWER_LOST, r.outcome(), s + " torn at k=" + k);
            assertEquals(k, c.card.lastWriteCount(), "writes before the tear");
        } else {
            assertArrayEquals(ref.response(), r.response(), s + " with the tear armed past its last write");
            c.card.powerOff();
        }
        c.card.powerOn();
        return c;
    }

    @Test
    void theCommitScenariosReachGenerationTwo() {
        for (Scenario s : new Scenario[] {Scenario.FULL_COMMIT, Scenario.INCREMENTAL_COMMIT}) {
            Reference ref = reference(s, true);
            assertEquals(1, ref.before().generation(), s + " before");
            assertEquals(3, ref.before().count(), s + " before");
            assertEquals(2, ref.after().generation(), s + " after");
        }
    }

    @ParameterizedTest
    @EnumSource(Scenario.class)
    void tearAfterAnyWriteLeavesTheOldOrTheNewStateAndTheNextCommandWorks(Scenario s) {
        Reference ref = reference(s, true);
        if (s == Scenario.WIPE_RESUME) {
            assertEquals(0, ref.before().flags(), "the ERASE was torn after its commit point");
        }
        int old = 0;
        int fresh = 0;
        for (int k = 1; k <= ref.writes() + 1; k++) {
            BackupCard c = tornAt(s, true, ref, k);
            if (s == Scenario.WIPE_RESUME && k < ref.writes()) {
                // Torn before its last write (wipe pending cleared): the wipe is still pending,
                // and the first command after power-on does it again.
                c.select();
                c.ok(BackupCard.GET_STATUS);
                assertTrue(c.card.lastWriteCount() > 0, "k=" + k + ": the wipe resumes");
            }
            BackupCard.State torn = c.state();
            boolean isOld = torn.equals(ref.before());
            boolean isNew = torn.equals(ref.after());
            int kk = k;
            assertTrue(isOld || isNew, () -> s + " k=" + kk + ": mixed state " + torn
                    + "\n  old " + ref.before() + "\n  new " + ref.after());
            // Nothing left pending: a command after the first one writes nothing.
            c.ok(BackupCard.GET_STATUS);
            assertEquals(0, c.card.lastWriteCount(), s + " k=" + k + ": work left pending after the tear");
            if (isOld) {
                old++;
                // The host's retry (§6.2): the same session again reaches exactly the new state.
                s.prepare.accept(c);
                assertArrayEquals(ref.response(), c.send(s.command), "retry after k=" + k);
                if (!s.commits()) {
                    s.finish.accept(c);
                }
                assertEquals(ref.committed(), c.state(), "state after the retry, k=" + k);
            } else {
                fresh++;
                if (s.guard == Guard.SINGLE_WRITE) {
                    assertEquals("6985", BackupCard.sw(c.send(s.command)), "SET PASSCODE again, k=" + k);
                }
            }
        }
        System.err.printf("backup tear walk %s: W=%d, old %d, new %d, mixed 0%n", s, ref.writes(), old, fresh);
        if (s.commitsLast()) {
            assertEquals(ref.writes(), old, "inside the transaction every tear rolls back");
            assertEquals(1, fresh, "a completed command survives the power cut");
        } else if (s.commits()) {
            assertTrue(old > 0 && fresh > 0, "both sides of the commit point were torn");
            assertEquals(0, ref.after().flags(), "ERASE leaves both passcodes unset");
        } else {
            assertEquals(ref.writes() + 1, old, "nothing of a session survives a tear");
        }
    }

    /**
     * The control's k: every one, except in a shadow command's long runs of writes (BEGIN SESSION's
     * table copy, the wipe) where no rollback is involved either way: there every k up to 64, every
     * 16th, and the last 8. (The walk with rollback takes every k of every command.)
     */
    static int nextControl(Scenario s, int k, int writes) {
        if (s.guard != Guard.SHADOW || k < 64 || k >= writes - 8) {
            return k + 1;
        }
        return Math.min(k + 16, writes - 8);
    }

    @ParameterizedTest
    @EnumSource(Scenario.class)
    void withoutRollbackTheSameWalkFindsAMixedState(Scenario s) {
        Reference ref = reference(s, false);
        List<String> mixed = new ArrayList<>();
        List<BackupCard.State> torn = new ArrayList<>();
        for (int k = 1; k <= ref.writes(); k = nextControl(s, k, ref.writes())) {
            BackupCard.State t = tornAt(s, false, ref, k).state();
            torn.add(t);
            if (!t.equals(ref.before()) && !t.equals(ref.after())) {
                mixed.add("k=" + k + " " + t);
                if (s.guard == Guard.TRANSACTION) {
                    break; // one mix is the proof; the rest of ERASE's wipe would only cost time
                }
            }
        }
        System.err.printf("backup no-rollback walk %s: W=%d, tears %d, mixed %d%n", s, ref.writes(), torn.size(),
                mixed.size());
        switch (s.guard) {
            case TRANSACTION:
                assertTrue(!mixed.isEmpty(), s + ": plain jCardSim semantics must expose a partial commit");
                break;
            case SINGLE_WRITE:
                assertEquals(List.of(ref.after()), torn, s + ": the one write survives its tear without rollback");
                break;
            default:
                assertEquals(List.of(), mixed, s + ": shadow writes keep the old state without rollback too");
                assertTrue(torn.stream().allMatch(ref.before()::equals), s + ": old state at every k");
                break;
        }
    }

    /**
     * The complement of {@link Scenario}: every other command writes nothing persistent (WRITE_COUNT
     * 0). VERIFY and CHANGE REFERENCE DATA change only {@code OwnerPIN} state, which is library code
     * the card host does not count or tear (applets/card-host/README.md, "Limits"): a wrong VERIFY's
     * try is gone at once and survives the power cut, which is what §8.3 requires.
     */
    @Test
    void everyOtherCommandWritesNothingPersistentThatCanBeTorn() {
        BackupCard c = generationOneCard(true);
        BackupCard.State before = c.state();
        byte[][] reads = {
            BackupCard.GET_STATUS,
            BackupCard.apdu(0x80, 0x34, 0, 0, null, 0),
            BackupCard.apdu(0x80, 0x48, 0, 0, null, 0x26),
            BackupCard.apdu(0x80, 0x44, 0, 0, Hex.cat(BackupCard.id(3, "notes.txt"), Hex.u32(0)), 0x10),
            BackupCard.apdu(0x00, 0x20, 0, 1, null, -1),
            BackupCard.apdu(0x00, 0x24, 1, 1, BackupCard.PAIRING, -1),
            BackupCard.apdu(0x00, 0x24, 1, 2, BackupCard.REPROVISIONING, -1),
            BackupCard.BEGIN_FULL,
            BackupCard.apdu(0x80, 0x42, 0, 0, null, -1),
        };
        for (byte[] apdu : reads) {
            assertEquals("9000", BackupCard.sw(c.send(apdu)), Hex.s(apdu));
            assertEquals(0, c.card.lastWriteCount(), Hex.s(apdu) + " writes nothing persistent");
        }
        assertEquals(before, c.state(), "nothing changed");
        // A wrong VERIFY: the try is used (63C4), no counted write, and it survives a power cut.
        c.card.armTear(1);
        Card.Result r = c.card.transmit(BackupCard.apdu(0x00, 0x20, 0, 1, Hex.b("00000000"), -1));
        assertEquals(Card.Outcome.OK, r.outcome(), "no persistent write to tear after");
        assertEquals("63C4", BackupCard.sw(r.response()));
        assertEquals(0, c.card.lastWriteCount());
        c.card.powerOff();
        c.card.powerOn();
        c.select();
        assertEquals(4, c.ok(BackupCard.GET_STATUS)[25], "the try stays used after the power cut");
    }
}
