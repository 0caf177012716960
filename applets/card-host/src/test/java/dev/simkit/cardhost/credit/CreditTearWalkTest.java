package dev.simkit.cardhost.credit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.simkit.cardhost.Card;
import dev.simkit.testkit.Hex;
import dev.simkit.credit.Host;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Tear walks on the credit module (credit-module.md §4.5 step 9, §4.8, §4.9): for each command and
 * profile, power is cut after every persistent write k = 1..W, W being the WRITE_COUNT of an
 * un-torn run on an identical card. After power-on the module must hold exactly the old or exactly
 * the new state; a grant retried after the tear must be credited exactly once. The same walk on a
 * runtime without rollback must find a mixed state, which proves the walk can fail.
 */
class CreditTearWalkTest {

    /** The un-torn reference run. */
    record Reference(byte[] command, CreditState before, byte[] response, CreditState after, int writes) {
    }

    static Stream<Arguments> everyCommandAndProfile() {
        return Stream.of(Scenario.values())
                .flatMap(s -> Stream.of(Host.Profile.values()).map(p -> Arguments.of(s, p)));
    }

    static Reference reference(Scenario s, Host.Profile p, boolean rollback) {
        CreditCard c = CreditCard.operational(p, rollback);
        byte[] cmd = s.prepare(c);
        CreditState before = c.state();
        byte[] response = c.send(cmd);
        assertEquals("9000", CreditCard.sw(response), () -> s + " un-torn: " + Hex.s(response));
        int writes = c.card.lastWriteCount();
        assertTrue(writes > 0, s + " makes persistent writes");
        CreditState after = c.state();
        assertNotEquals(before, after, s + " changes the state");
        return new Reference(cmd, before, response, after, writes);
    }

    /**
     * Fresh identical card, prepared, torn after write k and powered on again. k = W + 1 stands
     * for "power lost right after the command completed" (the commit is not a counted write, so
     * no k ≤ W can land after it): the command runs to its end, then the power is cycled.
     */
    static CreditCard tornAt(Scenario s, Host.Profile p, boolean rollback, Reference ref, int k) {
        CreditCard c = CreditCard.operational(p, rollback);
        assertArrayEquals(ref.command(), s.prepare(c), "identical cards give identical commands");
        assertEquals(ref.before(), c.state(), "identical cards start identical");
        c.card.armTear(k);
        Card.Result r = c.card.transmit(ref.command());
        if (k <= ref.writes()) {
            assertEquals(Card.Outcome.POWER_LOST, r.outcome(), s + " torn at k=" + k);
            assertEquals(k, c.card.lastWriteCount(), "writes before the tear");
        } else {
            assertArrayEquals(ref.response(), r.response(), s + " with the tear armed past its last write");
            c.card.powerOff();
        }
        c.card.powerOn();
        c.select();
        return c;
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("everyCommandAndProfile")
    void tearAfterAnyWriteLeavesOldOrNewStateAndARetryAppliesOnce(Scenario s, Host.Profile p) {
        Reference ref = reference(s, p, true);
        int old = 0;
        int applied = 0;
        for (int k = 1; k <= ref.writes() + 1; k++) {
            CreditCard c = tornAt(s, p, true, ref, k);
            CreditState torn = c.state();
            boolean isOld = torn.equals(ref.before());
            boolean isNew = torn.equals(ref.after());
            int kk = k;
            assertTrue(isOld || isNew, () -> s + " " + p + " k=" + kk + ": mixed state " + torn
                    + "\n  old " + ref.before() + "\n  new " + ref.after());
            if (isOld) {
                old++;
                // Not applied: the retry is the command, answered exactly like the un-torn run.
                assertArrayEquals(ref.response(), c.send(ref.command()), "retry after k=" + k);
                assertEquals(ref.after(), c.state(), "state after the retry, k=" + k);
            } else {
                applied++;
                if (s.appliedRetrySw != null) {
                    assertEquals(s.appliedRetrySw, CreditCard.sw(c.send(ref.command())), "retry after k=" + k);
                }
            }
            if (s == Scenario.APPLY_GRANT) {
                // Credited exactly once overall, whichever side of the commit the tear fell.
                CreditState end = c.state();
                assertEquals(ref.before().balance() + s.amount, end.balance(), "balance, k=" + k);
                assertEquals(ref.before().n() + 1, end.n(), "N, k=" + k);
                assertEquals(ref.after().status(), end.status(), "status, k=" + k);
            }
        }
        System.err.printf("tear walk %s %s: W=%d, old %d, new %d (k=W+1: completed, then power cut), mixed 0%n",
                s, p, ref.writes(), old, applied);
        assertEquals(ref.writes(), old, "inside the transaction every tear rolls back");
        assertEquals(1, applied, "a completed command survives the power cut");
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("everyCommandAndProfile")
    void withoutRollbackTheSameWalkFindsAMixedState(Scenario s, Host.Profile p) {
        Reference ref = reference(s, p, false);
        List<String> mixed = new ArrayList<>();
        for (int k = 1; k <= ref.writes(); k++) {
            CreditState torn = tornAt(s, p, false, ref, k).state();
            if (!torn.equals(ref.before()) && !torn.equals(ref.after())) {
                mixed.add("k=" + k + " " + torn);
            }
        }
        System.err.printf("no-rollback walk %s %s: W=%d, mixed %d%n", s, p, ref.writes(), mixed.size());
        assertTrue(!mixed.isEmpty(), s + " " + p + ": plain jCardSim semantics must expose a partial update");
    }
}
