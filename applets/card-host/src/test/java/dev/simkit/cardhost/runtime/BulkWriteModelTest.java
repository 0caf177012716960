package dev.simkit.cardhost.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The bulk copy/fill paths of {@link WriteTracker} against a byte-by-byte model of the tracker
 * as it was before them (every byte counted, logged and checked for the tear one at a time):
 * for random sequences of copies and fills — same or different arrays, overlapping ranges,
 * inside or outside a transaction, with or without rollback, a tear anywhere or nowhere, commit
 * or abort — the arrays, the write count and where the power was cut must be identical.
 */
class BulkWriteModelTest {
    private static final int N = 48;

    enum Kind { ATOMIC_COPY, NON_ATOMIC_COPY, ATOMIC_FILL, NON_ATOMIC_FILL }

    record Op(Kind kind, int srcArray, int srcOff, int destArray, int destOff, int len, byte value) {
    }

    /** The old tracker, byte by byte, over its own copy of the arrays. */
    static final class Model {
        final byte[][] arrays;
        final boolean rollback;
        final int tearAt;
        int writes;
        boolean inTransaction;
        boolean torn;
        final List<int[]> log = new ArrayList<>(); // {array, index, old}

        Model(byte[][] arrays, boolean rollback, int tearAt) {
            this.arrays = arrays;
            this.rollback = rollback;
            this.tearAt = tearAt;
        }

        /** Returns false if the power was cut. */
        boolean apply(Op op) {
            boolean atomic = op.kind() == Kind.ATOMIC_COPY || op.kind() == Kind.ATOMIC_FILL;
            boolean copy = op.kind() == Kind.ATOMIC_COPY || op.kind() == Kind.NON_ATOMIC_COPY;
            byte[] dest = arrays[op.destArray()];
            byte[] values = new byte[op.len()];
            if (copy) {
                System.arraycopy(arrays[op.srcArray()], op.srcOff(), values, 0, op.len());
            } else {
                Arrays.fill(values, op.value());
            }
            boolean logging = atomic && inTransaction && rollback;
            byte[] before = atomic && !logging && rollback
                    ? Arrays.copyOfRange(dest, op.destOff(), op.destOff() + op.len()) : null;
            for (int j = 0; j < op.len(); j++) {
                boolean tear = ++writes == tearAt;
                if (logging) {
                    log.add(new int[] {op.destArray(), op.destOff() + j, dest[op.destOff() + j]});
                }
                dest[op.destOff() + j] = values[j];
                if (tear) {
                    if (before != null) {
                        System.arraycopy(before, 0, dest, op.destOff(), op.len());
                    }
                    torn = true;
                    return false;
                }
            }
            return true;
        }

        void rollback() {
            for (int i = log.size() - 1; i >= 0; i--) {
                int[] e = log.get(i);
                arrays[e[0]][e[1]] = (byte) e[2];
            }
            log.clear();
            inTransaction = false;
        }
    }

    private static void apply(WriteTracker t, byte[][] arrays, Op op) {
        byte[] dest = arrays[op.destArray()];
        switch (op.kind()) {
            case ATOMIC_COPY -> t.atomicCopy(arrays[op.srcArray()], op.srcOff(), dest, op.destOff(), op.len());
            case NON_ATOMIC_COPY -> t.nonAtomicCopy(arrays[op.srcArray()], op.srcOff(), dest, op.destOff(), op.len());
            case ATOMIC_FILL -> t.atomicFill(dest, op.destOff(), op.len(), op.value());
            case NON_ATOMIC_FILL -> t.nonAtomicFill(dest, op.destOff(), op.len(), op.value());
            default -> throw new IllegalStateException();
        }
    }

    private static Op randomOp(Random rnd) {
        Kind kind = Kind.values()[rnd.nextInt(4)];
        int len = rnd.nextInt(5) == 0 ? rnd.nextInt(3) : rnd.nextInt(N + 1);
        int srcArray = rnd.nextInt(2);
        int destArray = rnd.nextInt(2); // often the same array: overlapping copies both ways
        return new Op(kind, srcArray, rnd.nextInt(N - len + 1), destArray, rnd.nextInt(N - len + 1), len,
                (byte) rnd.nextInt(256));
    }

    @Test
    void bulkPathsEqualTheByteByByteTracker() {
        Random rnd = new Random(20261122);
        int tornRuns = 0;
        for (int run = 0; run < 20_000; run++) {
            boolean rollback = rnd.nextInt(4) != 0;
            boolean txn = rnd.nextBoolean();
            boolean abort = rnd.nextBoolean();
            List<Op> ops = new ArrayList<>();
            int total = 0;
            for (int i = 1 + rnd.nextInt(3); i > 0; i--) {
                Op op = randomOp(rnd);
                ops.add(op);
                total += op.len();
            }
            int prior = rnd.nextInt(4);
            // Tear nowhere, inside any op (edges included), or just past the command's writes.
            int tearAt = switch (rnd.nextInt(4)) {
                case 0 -> 0;
                case 1 -> prior + total + 1;
                default -> prior + 1 + rnd.nextInt(total + 1);
            };
            byte[][] start = new byte[2][N];
            rnd.nextBytes(start[0]);
            rnd.nextBytes(start[1]);
            byte[][] real = {start[0].clone(), start[1].clone()};
            Model model = new Model(new byte[][] {start[0].clone(), start[1].clone()}, rollback, tearAt);
            String what = "run " + run + " rollback=" + rollback + " txn=" + txn + " tearAt=" + tearAt
                    + " prior=" + prior + " ops=" + ops;

            WriteTracker t = new WriteTracker(new TrackingTransientMemory(), rollback);
            t.arm(tearAt);
            t.startCommand(true);
            for (int i = 0; i < prior; i++) {
                t.count(); // earlier writes of the command (tearAt is past them)
                model.writes++;
            }
            if (txn) {
                t.begin();
                model.inTransaction = true;
            }
            boolean realTorn = false;
            for (Op op : ops) {
                try {
                    apply(t, real, op);
                } catch (PowerLoss e) {
                    realTorn = true;
                    break;
                }
            }
            for (Op op : ops) {
                if (!model.apply(op)) {
                    break;
                }
            }
            assertEquals(model.torn, realTorn, what);
            assertEquals(model.torn, t.powerLost(), what);
            assertEquals(model.writes, t.writes(), what);
            // What the card shows before the runtime reacts (the tear's own state) ...
            assertArrayEquals(model.arrays[0], real[0], what);
            assertArrayEquals(model.arrays[1], real[1], what);
            // ... and after it: a tear or an abort rolls the transaction back, else commit.
            if (txn) {
                if (model.torn || abort) {
                    t.rollback();
                    model.rollback();
                } else {
                    t.commit();
                }
            }
            assertArrayEquals(model.arrays[0], real[0], what + " after the transaction ended");
            assertArrayEquals(model.arrays[1], real[1], what + " after the transaction ended");
            tornRuns += model.torn ? 1 : 0;
        }
        // The random walk really exercised tears (not just the untorn fast path).
        assertEquals(true, tornRuns > 5_000, "torn runs: " + tornRuns);
    }
}
