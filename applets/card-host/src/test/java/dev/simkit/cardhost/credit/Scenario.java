package dev.simkit.cardhost.credit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A credit-module command to tear: {@link #prepare} brings a fresh operational card into the state
 * before the command and returns the command APDU. Deterministic: identical cards give identical
 * APDUs (MACs are deterministic), so the un-torn reference run and every torn run send the same
 * bytes.
 */
enum Scenario {
    /**
     * Pending request of 2500 with a provisional ack applied and the balance debited into the
     * credit line (−200), then a grant of 2000: balance, N, pending, provisional and last
     * completion all change together.
     */
    APPLY_GRANT(2_000, "9C04") {
        @Override
        byte[] prepare(CreditCard c) {
            byte[] request = c.ok(CreditCard.initiate(2_500));
            c.ok(CreditCard.applyProvisional(c.provisionalFor(request)));
            assertEquals(CreditCard.BALANCE - 1_200, dev.simkit.testkit.Hex.i32(c.ok(CreditCard.debit(1_200)), 0));
            return CreditCard.applyGrant(c.grantFor(request, amount));
        }
    },
    /** Limit update 1: m, M, U, L and the limit sequence change together. */
    APPLY_LIMIT_UPDATE(0, "9C09") {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.applyLimitUpdate(c.limitUpdate(1, 5, 20_000, 60_000, 800));
        }
    },
    /** DEBIT 300 from 1000: one 4-byte balance write in a transaction. */
    DEBIT(300, null) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.debit(amount);
        }
    };

    final long amount;
    /** What a retry answers once the command has been applied; null: a retry is a new command. */
    final String appliedRetrySw;

    Scenario(long amount, String appliedRetrySw) {
        this.amount = amount;
        this.appliedRetrySw = appliedRetrySw;
    }

    abstract byte[] prepare(CreditCard c);
}
