package dev.simkit.cardhost.credit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.simkit.cardhost.Card;
import dev.simkit.credit.Host;
import dev.simkit.testkit.Hex;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Tear walks on the credit module (credit-module.md §4.4–§4.12, §7): for every command that writes
 * persistent state ({@link Scenario}) and every profile, power is cut after every persistent write
 * k = 1..W, W being the WRITE_COUNT of an un-torn run on an identical card (and checked against the
 * scenario's expected count). After power-on the module must hold exactly the old or exactly the
 * new state — GET STATUS, last completion, fraud log and server address, byte for byte — and the
 * next command must work: a retry after an old state is answered like the un-torn run and reaches
 * exactly the new state; a grant is credited exactly once; after PERSONALISE and LOCK the module
 * locks and MACs with the keys it was given. The same walk on a runtime without rollback must find
 * a mixed state for every command of more than one write, which proves the walk can fail — except
 * where no mix exists even then ({@link Scenario.Atomicity#ORDERED}, {@link
 * Scenario.Atomicity#SINGLE_WRITE}): there the control checks the exact state of each tear.
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
        CreditCard c = s.base.card(p, rollback);
        byte[] cmd = s.prepare(c);
        CreditState before = c.state();
        byte[] response = c.send(cmd);
        assertEquals(s.sw, CreditCard.sw(response), () -> s + " un-torn: " + Hex.s(response));
        int writes = c.card.lastWriteCount();
        assertEquals(s.writes(p), writes, s + " " + p + ": WRITE_COUNT of the un-torn command (the applet's "
                + "persistent writes changed: check the walk still covers them, then update Scenario)");
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
        CreditCard c = s.base.card(p, rollback);
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
    void tearAfterAnyWriteLeavesOldOrNewStateAndTheNextCommandWorks(Scenario s, Host.Profile p) {
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
                if (s.appliedRetry.sameResponse()) {
                    assertArrayEquals(ref.response(), c.send(ref.command()), "retry after k=" + k);
                    assertEquals(ref.after(), c.state(), "a retry of an applied " + s + " changes nothing, k=" + k);
                } else if (s.appliedRetry.sw() != null) {
                    assertEquals(s.appliedRetry.sw(), CreditCard.sw(c.send(ref.command())), "retry after k=" + k);
                }
            }
            if (s == Scenario.APPLY_GRANT || s == Scenario.APPLY_GRANT_DECLINED) {
                // Applied exactly once overall, whichever side of the commit the tear fell.
                long g = s == Scenario.APPLY_GRANT ? Scenario.GRANT : 0;
                CreditState end = c.state();
                assertEquals(ref.before().balance() + g, end.balance(), "balance, k=" + k);
                assertEquals(ref.before().n() + 1, end.n(), "N, k=" + k);
                assertEquals(ref.after().status(), end.status(), "status, k=" + k);
            }
            if (s.base == Scenario.Base.FRESH || s.base == Scenario.Base.UNLOCKED) {
                theModuleLocksAndUsesItsKeys(c, "k=" + k);
            }
        }
        System.err.printf("tear walk %s %s: W=%d, old %d, new %d (k=W+1: completed, then power cut), mixed 0%n",
                s, p, ref.writes(), old, applied);
        if (s.atomicity != Scenario.Atomicity.SINGLE_WRITE) {
            assertEquals(ref.writes(), old, "inside the transaction every tear rolls back");
            assertEquals(1, applied, "a completed command survives the power cut");
        } else {
            assertEquals(1, ref.writes(), "a single write");
            assertEquals(0, old, "the tear falls after the one write: it has landed");
            assertEquals(2, applied, "torn after its write, and completed");
        }
    }

    /**
     * The module of a card that was personalised (and perhaps locked) by the torn command's retry
     * locks, if not locked yet, and MACs with the keys it was personalised with: its request
     * equals the host reference's under K_req, and a provisional ack under K_grant is accepted.
     */
    static void theModuleLocksAndUsesItsKeys(CreditCard c, String what) {
        CreditState st = c.state();
        if (st.lifecycle() == 1) {
            c.ok(CreditCard.LOCK);
        }
        long r = 100;
        byte[] expected = Host.request(c.profile, CreditCard.ID, c.kReq, st.n(), r, st.balance());
        byte[] request = c.ok(CreditCard.initiate(r));
        assertArrayEquals(expected, request, what + ": the request is MAC'd with K_req");
        c.ok(CreditCard.applyProvisional(c.provisionalFor(request)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("everyCommandAndProfile")
    void withoutRollbackTheSameWalkFindsAMixedState(Scenario s, Host.Profile p) {
        Reference ref = reference(s, p, false);
        List<String> mixed = new ArrayList<>();
        List<CreditState> torn = new ArrayList<>();
        for (int k = 1; k <= ref.writes(); k++) {
            CreditState t = tornAt(s, p, false, ref, k).state();
            torn.add(t);
            if (!t.equals(ref.before()) && !t.equals(ref.after())) {
                mixed.add("k=" + k + " " + t);
            }
        }
        System.err.printf("no-rollback walk %s %s: W=%d, mixed %d%n", s, p, ref.writes(), mixed.size());
        if (s.atomicity == Scenario.Atomicity.ORDERED) {
            // The last write publishes the others: old until it lands, new from then on.
            List<CreditState> split = new ArrayList<>(java.util.Collections.nCopies(ref.writes() - 1, ref.before()));
            split.add(ref.after());
            assertEquals(split, torn, s + " " + p + ": without rollback, old before the last write and new after it");
        } else if (ref.writes() > 1) {
            assertTrue(!mixed.isEmpty(), s + " " + p + ": plain jCardSim semantics must expose a partial update");
        } else {
            // One write: there is no "between two writes" to expose. What the control can show is
            // that the walk sees the missing rollback: the tear after the write keeps it (the
            // rollback walk of a transaction sees the old state at the same k).
            assertEquals(List.of(ref.after()), torn, s + " " + p + ": the one write survives its tear");
        }
    }

    /**
     * The complement of {@link Scenario}: every other command, and every refusal that registers
     * nothing, makes no persistent write (WRITE_COUNT 0) and changes nothing observable — so the
     * walks above cover every write the module makes.
     */
    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void everyOtherCommandWritesNothing(Host.Profile p) {
        CreditCard fresh = CreditCard.fresh(p, true);
        noWrite(fresh, CreditCard.LOCK, "9C0D");
        noWrite(fresh, CreditCard.apdu(0x50, CreditCard.tlv(0x83, fresh.kReq), -1), "6985");
        noWrite(fresh, CreditCard.apdu(0x50, CreditCard.tlv(0x99, new byte[1]), -1), "6A80");
        noWrite(fresh, CreditCard.apdu(0x50, CreditCard.tlv(0x85,
                Hex.cat(Hex.u32(10), Hex.u32(5), Hex.u32(100), Hex.u32(0))), -1), "9C0B");
        noWrite(fresh, CreditCard.initiate(100), "6985");

        CreditCard c = CreditCard.operational(p, true);
        noWrite(c, CreditCard.apdu(0x10, null, 0x31), "9000");
        noWrite(c, CreditCard.apdu(0x12, null, 0x00), "9000");
        noWrite(c, CreditCard.apdu(0x26, null, 0x28), "6A88");
        noWrite(c, CreditCard.apdu(0x34, null, 0x00), "9000");
        noWrite(c, CreditCard.apdu(0x7F, null, -1), "6D00");
        noWrite(c, Hex.b("00100000"), "6E00");
        noWrite(c, Hex.b("8010010031"), "6A86");
        noWrite(c, c.personaliseAll(CreditCard.N, CreditCard.THRESHOLD), "6985");
        noWrite(c, CreditCard.LOCK, "6985");
        noWrite(c, CreditCard.initiate(CreditCard.MAX + 1), "9C01");
        noWrite(c, CreditCard.debit(CreditCard.BALANCE + 1), "9C07");
        noWrite(c, CreditCard.debit(0), "6A80");
        noWrite(c, CreditCard.apdu(0x30, Hex.b("0001"), 0x04), "6700");
        noWrite(c, CreditCard.applyLimitUpdate(c.limitUpdate(1, 10, 5, 100, 0)), "9C0B");
        byte[] wrongHeader = c.limitUpdate(1, 5, 20_000, 60_000, 800).clone();
        wrongHeader[1] = 0x02;
        noWrite(c, CreditCard.applyLimitUpdate(wrongHeader), "9C0A");

        byte[] request = c.ok(CreditCard.initiate(2_500));
        noWrite(c, CreditCard.initiate(2_500), "9000"); // the pending request, answered again
        noWrite(c, CreditCard.initiate(2_400), "9C02");
        // Step 7: status inconsistent with reason, after a valid tag — not registered.
        noWrite(c, CreditCard.applyGrant(Host.grant(p, CreditCard.ID, c.kGrant, CreditCard.N + 1, 0, 3, 10,
                Host.tagOf(request))), "9C0A");
        byte[] grant = CreditCard.applyGrant(c.grantFor(request, 2_000));
        c.ok(grant);
        noWrite(c, grant, "9C04"); // already applied
        noWrite(c, CreditCard.apdu(0x26, null, 0x28), "9000");

        CreditCard blocked = CreditCard.operational(p, true, 0xFFFF_FFFFL, CreditCard.THRESHOLD);
        assertEquals("9C0C", CreditCard.sw(blocked.send(CreditCard.initiate(100))));
        noWrite(blocked, CreditCard.debit(1), "9C08");
        noWrite(blocked, CreditCard.applyLimitUpdate(Scenario.flipLast(blocked.limitUpdate(1, 5, 9, 9, 0))), "9C08");
        noWrite(blocked, CreditCard.apdu(0x26, null, 0x28), "6A88");
    }

    private static void noWrite(CreditCard c, byte[] apdu, String sw) {
        CreditState before = c.state();
        byte[] r = c.send(apdu);
        assertEquals(sw, CreditCard.sw(r), () -> Hex.s(apdu) + " answered " + Hex.s(r));
        assertEquals(0, c.card.lastWriteCount(), () -> Hex.s(apdu) + " makes no persistent write");
        assertEquals(before, c.state(), () -> Hex.s(apdu) + " changes nothing");
    }
}
