package dev.simkit.cardhost.backup;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.simkit.cardhost.Card;
import dev.simkit.credit.Hex;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
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
        }, BackupCard.END_RECORD, false);

        final Consumer<BackupCard> prepare;
        final byte[] command;
        final boolean commits;

        Scenario(Consumer<BackupCard> prepare, byte[] command, boolean commits) {
            this.prepare = prepare;
            this.command = command;
            this.commits = commits;
        }
    }

    record Reference(BackupCard.State before, byte[] response, BackupCard.State after, int writes) {
    }

    static BackupCard prepared(Scenario s, boolean rollback) {
        BackupCard c = BackupCard.paired(rollback);
        generationOne(c);
        s.prepare.accept(c);
        return c;
    }

    static Reference reference(Scenario s, boolean rollback) {
        BackupCard.State before = stateBefore(rollback);
        BackupCard c = prepared(s, rollback);
        byte[] response = c.send(s.command);
        assertEquals("9000", BackupCard.sw(response), () -> s + " un-torn: " + Hex.s(response));
        int writes = c.card.lastWriteCount();
        assertTrue(writes > 0, s + " makes persistent writes");
        if (s.commits) {
            // The un-torn session: commit it, then read the new generation.
            BackupCard.State after = c.state();
            assertNotEquals(before, after, s + " changes the generation");
            assertEquals(2, after.generation());
            return new Reference(before, response, after, writes);
        }
        return new Reference(before, response, before, writes);
    }

    /** The state generation 1 leaves, read on a card of its own. */
    static BackupCard.State stateBefore(boolean rollback) {
        BackupCard c = BackupCard.paired(rollback);
        generationOne(c);
        BackupCard.State st = c.state();
        assertEquals(1, st.generation());
        assertEquals(3, st.count());
        return st;
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

    @ParameterizedTest
    @EnumSource(Scenario.class)
    void tearAfterAnyWriteLeavesTheOldOrTheNewGeneration(Scenario s) {
        Reference ref = reference(s, true);
        int old = 0;
        int fresh = 0;
        for (int k = 1; k <= ref.writes() + 1; k++) {
            BackupCard.State torn = tornAt(s, true, ref, k).state();
            boolean isOld = torn.equals(ref.before());
            boolean isNew = torn.equals(ref.after());
            int kk = k;
            assertTrue(isOld || isNew, () -> s + " k=" + kk + ": mixed state " + torn
                    + "\n  old " + ref.before() + "\n  new " + ref.after());
            if (isOld) {
                old++;
            } else {
                fresh++;
            }
        }
        System.err.printf("backup tear walk %s: W=%d, old %d, new %d, mixed 0%n", s, ref.writes(), old, fresh);
        if (s.commits) {
            assertEquals(ref.writes(), old, "inside the commit transaction every tear rolls back");
            assertEquals(1, fresh, "a completed COMMIT survives the power cut");
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
