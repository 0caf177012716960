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
 * Tear walks on the backup store (backup-store.md §8): for each scenario, power is cut after every
 * persistent write k = 1..W of the torn command, W being the WRITE_COUNT of an un-torn run on an
 * identical card. After power-on the store must hold exactly the old generation or exactly the
 * new one — generation number, U, record count, manifest (entries and order) and every record's
 * data matching its digest — never a mix. The same walk without rollback must find a mixed state
 * for COMMIT, which proves the check can fail.
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

    enum Scenario {
        /** A full session (two records) whose COMMIT is torn. */
        FULL_COMMIT(c -> {
            c.ok(BackupCard.BEGIN_FULL);
            c.put(2, "key.pem", bytes(150, 4));
            c.put(3, "photo.jpg", bytes(251, 5));
        }, BackupCard.COMMIT, true),
        /** An incremental session with a delete, a replacement and a new record; COMMIT torn. */
        INCREMENTAL_COMMIT(c -> {
            c.ok(BackupCard.beginIncremental(1));
            c.ok(BackupCard.deleteRecord(3, "notes.txt"));
            c.put(1, "carrier.sb", bytes(40, 6));
            c.put(5, "über.bin", bytes(99, 7));
        }, BackupCard.COMMIT, true),
        /** WRITE RECORDS (revision 2) replacing one record and adding one, torn; no commit follows. */
        WRITE_RECORDS(c -> c.ok(BackupCard.beginIncremental(1)),
                BackupCard.writeRecords(
                        Hex.cat(BackupCard.entry(1, "carrier.sb", bytes(40, 6)), bytes(40, 6)),
                        Hex.cat(BackupCard.entry(5, "über.bin", bytes(99, 7)), bytes(99, 7))),
                false),
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
                true),
        /** WRITE DATA of a record torn (no commit follows: the old generation must stay). */
        WRITE_DATA(c -> {
            c.ok(BackupCard.beginIncremental(1));
            c.ok(BackupCard.beginRecord(3, "notes.txt", bytes(120, 8)));
        }, BackupCard.writeData(bytes(120, 8)), false),
        /** END RECORD replacing a record torn. */
        END_RECORD(c -> {
            c.ok(BackupCard.beginIncremental(1));
            c.ok(BackupCard.beginRecord(3, "notes.txt", bytes(120, 8)));
            c.ok(BackupCard.writeData(bytes(120, 8)));
        }, BackupCard.END_RECORD, false),
        /** SET PASSCODE (reprovisioning) on a card where only the pairing passcode is set. */
        SET_PASSCODE(rollback -> {
            BackupCard c = new BackupCard(rollback);
            c.ok(BackupCard.apdu(0x80, 0x32, 0, 1, BackupCard.PAIRING, -1));
            return c;
        }, c -> { }, BackupCard.apdu(0x80, 0x32, 0, 2, BackupCard.REPROVISIONING, -1), true),
        /** ERASE of a small store holding generation 1, in a session. */
        ERASE(rollback -> {
            BackupCard c = BackupCard.paired(rollback, SMALL);
            c.ok(BackupCard.BEGIN_FULL);
            c.put(1, "carrier.sb", bytes(28, 1));
            c.put(3, "notes.txt", bytes(200, 2));
            assertEquals(1, Hex.u32(c.ok(BackupCard.COMMIT), 0));
            return c;
        }, c -> c.ok(BackupCard.beginIncremental(1)), BackupCard.ERASE, true),
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
        }, c -> { }, BackupCard.ERASE, true);

        final java.util.function.Function<Boolean, BackupCard> base;
        final Consumer<BackupCard> prepare;
        final byte[] command;
        final boolean commits;

        Scenario(Consumer<BackupCard> prepare, byte[] command, boolean commits) {
            this(BackupTearWalkTest::generationOneCard, prepare, command, commits);
        }

        Scenario(java.util.function.Function<Boolean, BackupCard> base, Consumer<BackupCard> prepare, byte[] command,
                boolean commits) {
            this.base = base;
            this.prepare = prepare;
            this.command = command;
            this.commits = commits;
        }

        /** The new state appears only at the end (one transaction is the command's last write). */
        boolean commitsLast() {
            return this != ERASE && this != ERASE_LOCKED;
        }
    }

    /** 256 bytes, 2 records: the ERASE wipe stays short enough to tear at every write. */
    static final byte[] SMALL = Hex.b("0000010000020503");

    static BackupCard generationOneCard(boolean rollback) {
        BackupCard c = BackupCard.paired(rollback);
        generationOne(c);
        return c;
    }

    record Reference(BackupCard.State before, byte[] response, BackupCard.State after, int writes) {
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
        if (s.commits) {
            BackupCard.State after = c.state();
            assertNotEquals(before, after, s + " changes the state");
            return new Reference(before, response, after, writes);
        }
        return new Reference(before, response, before, writes);
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

    /**
     * Every k, except in ERASE's wipe (over a thousand single-byte writes of zeros, all after the
     * commit point): there every k up to 64, every 16th, and the last 8.
     */
    static int next(Scenario s, int k, int writes) {
        if (s.commitsLast() || k < 64 || k >= writes - 8) {
            return k + 1;
        }
        return Math.min(k + 16, writes - 8);
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
    void tearAfterAnyWriteLeavesTheOldOrTheNewGeneration(Scenario s) {
        Reference ref = reference(s, true);
        int old = 0;
        int fresh = 0;
        for (int k = 1; k <= ref.writes() + 1; k = next(s, k, ref.writes())) {
            BackupCard c = tornAt(s, true, ref, k);
            BackupCard.State torn = c.state();
            boolean isOld = torn.equals(ref.before());
            boolean isNew = torn.equals(ref.after());
            int kk = k;
            assertTrue(isOld || isNew, () -> s + " k=" + kk + ": mixed state " + torn
                    + "\n  old " + ref.before() + "\n  new " + ref.after());
            if (isOld) {
                old++;
                if (s.commits) {
                    // The host's retry (§6.2): the same session again reaches exactly the new state.
                    s.prepare.accept(c);
                    assertArrayEquals(ref.response(), c.send(s.command), "retry after k=" + k);
                    assertEquals(ref.after(), c.state(), "state after the retry, k=" + k);
                }
            } else {
                fresh++;
            }
        }
        System.err.printf("backup tear walk %s: W=%d, old %d, new %d, mixed 0%n", s, ref.writes(), old, fresh);
        if (s.commits && s.commitsLast()) {
            assertEquals(ref.writes(), old, "inside the transaction every tear rolls back");
            assertEquals(1, fresh, "a completed command survives the power cut");
        } else if (s.commits) {
            assertTrue(old > 0 && fresh > 0, "both sides of the commit point were torn");
            assertEquals(0, ref.after().flags(), "ERASE leaves both passcodes unset");
        } else {
            assertEquals(ref.writes() + 1, old, "nothing of a session survives a tear");
        }
    }

    @ParameterizedTest
    @EnumSource(value = Scenario.class, names = {"FULL_COMMIT", "INCREMENTAL_COMMIT"})
    void withoutRollbackTheSameWalkFindsAMixedState(Scenario s) {
        Reference ref = reference(s, false);
        List<String> mixed = new ArrayList<>();
        for (int k = 1; k <= ref.writes(); k++) {
            BackupCard.State torn = tornAt(s, false, ref, k).state();
            if (!torn.equals(ref.before()) && !torn.equals(ref.after())) {
                mixed.add("k=" + k + " " + torn);
            }
        }
        System.err.printf("backup no-rollback walk %s: W=%d, mixed %d%n", s, ref.writes(), mixed.size());
        assertTrue(!mixed.isEmpty(), s + ": plain jCardSim semantics must expose a partial commit");
    }
}
