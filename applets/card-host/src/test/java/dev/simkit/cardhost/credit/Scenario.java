package dev.simkit.cardhost.credit;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.simkit.credit.Host;
import dev.simkit.testkit.Hex;
import java.util.function.BiFunction;

/**
 * A credit-module command that writes persistent state, to tear: {@link #base} builds a fresh card
 * in the lifecycle state the command needs, {@link #prepare} brings it into the state before the
 * command and returns the command APDU. Deterministic: identical cards give identical APDUs (MACs
 * are deterministic), so the un-torn reference run and every torn run send the same bytes.
 *
 * <p>The list is every command of credit-module.md §4 that writes: PERSONALISE (§4.11), LOCK
 * (§4.12), INITIATE RELOAD (§4.4 steps 2 and 4), APPLY GRANT granted and declined (§4.5),
 * APPLY PROVISIONAL ACK (§4.6), DEBIT (§4.8), APPLY LIMIT UPDATE (§4.9), and each fraud
 * registration of §7 (every kind, in each command that registers it, including the one that
 * blocks the module and one that wraps the log). {@code CreditTearWalkTest.everyOtherCommandWritesNothing}
 * checks that the commands and refusals not listed make no persistent write.
 *
 * <p>{@link #writes} is the persistent write count (WRITE_COUNT) the scenario must measure, per
 * profile; a change in the applet's writes fails the walk loudly instead of walking a different
 * command silently.
 */
enum Scenario {
    /** PERSONALISE with all eight tags on a fresh card: one transaction. */
    PERSONALISE(Base.FRESH, "9000", Retry.SAME_RESPONSE, Atomicity.TRANSACTION, 66, 66, 98) {
        @Override
        byte[] prepare(CreditCard c) {
            return c.personaliseAll(CreditCard.N, CreditCard.THRESHOLD);
        }
    },
    /**
     * A second PERSONALISE of a personalised, unlocked card: the same profile (keys kept), new
     * limits, initial balance and N, threshold and a shorter server address — every field but the
     * keys changes in one transaction.
     */
    PERSONALISE_AGAIN(Base.UNLOCKED, "9000", Retry.SAME_RESPONSE, Atomicity.TRANSACTION, 37) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.apdu(0x50, Hex.cat(
                    CreditCard.tlv(0x82, new byte[] {(byte) c.profile.id}),
                    CreditCard.tlv(0x85, Hex.cat(Hex.u32(2), Hex.u32(9_000), Hex.u32(40_000), Hex.u32(300))),
                    CreditCard.tlv(0x86, Hex.cat(Hex.u32(-250), Hex.u32(11))),
                    CreditCard.tlv(0x87, Hex.u16(9)),
                    CreditCard.tlv(0x88, Hex.b("2B3334363030"))), -1);
        }
    },
    /** LOCK: one byte (lifecycle), written without a transaction — atomic by itself. */
    LOCK(Base.UNLOCKED, "9000", Retry.sw("6985"), Atomicity.SINGLE_WRITE, 1) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.LOCK;
        }
    },
    /**
     * INITIATE RELOAD of 2500: the 31-byte request, then the flags byte that sets pending, in one
     * transaction.
     */
    INITIATE_RELOAD(Base.OPERATIONAL, "9000", Retry.SAME_RESPONSE, Atomicity.ORDERED, 32) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.initiate(2_500);
        }
    },
    /** INITIATE RELOAD with N = 2^32−1 (§4.4 step 2): lifecycle blocked, in a transaction; 9C0C. */
    INITIATE_RELOAD_LAST_N(Base.LAST_N, "9C0C", Retry.sw("9C08"), Atomicity.TRANSACTION, 1) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.initiate(2_500);
        }
    },
    /**
     * Pending request of 2500 with a provisional ack applied and the balance debited into the
     * credit line (−200), then a grant of 2000: balance, N, pending, provisional and last
     * completion all change together.
     */
    APPLY_GRANT(Base.OPERATIONAL, "9000", Retry.sw("9C04"), Atomicity.TRANSACTION, 57) {
        @Override
        byte[] prepare(CreditCard c) {
            byte[] request = c.ok(CreditCard.initiate(2_500));
            c.ok(CreditCard.applyProvisional(c.provisionalFor(request)));
            assertEquals(CreditCard.BALANCE - 1_200, Hex.i32(c.ok(CreditCard.debit(1_200)), 0));
            return CreditCard.applyGrant(c.grantFor(request, GRANT));
        }
    },
    /** A declined grant (reason 04): N advances, pending closes, the ack is stored; 9000. */
    APPLY_GRANT_DECLINED(Base.OPERATIONAL, "9000", Retry.sw("9C04"), Atomicity.TRANSACTION, 57) {
        @Override
        byte[] prepare(CreditCard c) {
            byte[] request = c.ok(CreditCard.initiate(2_500));
            return CreditCard.applyGrant(Host.grant(c.profile, CreditCard.ID, c.kGrant, CreditCard.N + 1, 1, 4, 0,
                    Host.tagOf(request)));
        }
    },
    /** APPLY PROVISIONAL ACK: one byte (flags), written without a transaction — atomic by itself. */
    APPLY_PROVISIONAL_ACK(Base.OPERATIONAL, "9000", Retry.SAME_RESPONSE, Atomicity.SINGLE_WRITE, 1) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.applyProvisional(c.provisionalFor(c.ok(CreditCard.initiate(2_500))));
        }
    },
    /** DEBIT 300 from 1000: one 4-byte balance write in a transaction. */
    DEBIT(Base.OPERATIONAL, "9000", Retry.NEW_COMMAND, Atomicity.TRANSACTION, 4) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.debit(300);
        }
    },
    /** Limit update 1: m, M, U, L and the limit sequence change together. */
    APPLY_LIMIT_UPDATE(Base.OPERATIONAL, "9000", Retry.sw("9C09"), Atomicity.TRANSACTION, 20) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.applyLimitUpdate(c.limitUpdate(1, 5, 20_000, 60_000, 800));
        }
    },

    // ---- fraud registration (§7): counter, log entry, head and count in one transaction -------

    /** A grant whose tag does not verify: bad tag registered, 6982. */
    GRANT_BAD_TAG(Base.OPERATIONAL, "6982", Retry.NEW_COMMAND, Atomicity.TRANSACTION, 13) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.applyGrant(flipLast(c.grantFor(c.ok(CreditCard.initiate(2_500)), GRANT)));
        }
    },
    /** A grant with S′ = N + 2: window event, 9C05. */
    GRANT_OUT_OF_WINDOW(Base.OPERATIONAL, "9C05", Retry.NEW_COMMAND, Atomicity.TRANSACTION, 13) {
        @Override
        byte[] prepare(CreditCard c) {
            byte[] request = c.ok(CreditCard.initiate(2_500));
            return CreditCard.applyGrant(Host.grant(c.profile, CreditCard.ID, c.kGrant, CreditCard.N + 2, 0, 0, GRANT,
                    Host.tagOf(request)));
        }
    },
    /** A valid grant with nothing pending: window event, 9C03. */
    GRANT_NO_PENDING(Base.OPERATIONAL, "9C03", Retry.NEW_COMMAND, Atomicity.TRANSACTION, 13) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.applyGrant(Host.grant(c.profile, CreditCard.ID, c.kGrant, CreditCard.N + 1, 0, 0, GRANT,
                    Host.fill(8, 0x5A)));
        }
    },
    /** A grant naming another request's tag: window event, 9C0A. */
    GRANT_OTHER_REQUEST(Base.OPERATIONAL, "9C0A", Retry.NEW_COMMAND, Atomicity.TRANSACTION, 13) {
        @Override
        byte[] prepare(CreditCard c) {
            c.ok(CreditCard.initiate(2_500));
            return CreditCard.applyGrant(Host.grant(c.profile, CreditCard.ID, c.kGrant, CreditCard.N + 1, 0, 0, GRANT,
                    Host.fill(8, 0x5A)));
        }
    },
    /** A grant of more than the pending R: grant beyond limits (window counter), 9C06. */
    GRANT_BEYOND_LIMITS(Base.OPERATIONAL, "9C06", Retry.NEW_COMMAND, Atomicity.TRANSACTION, 13) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.applyGrant(c.grantFor(c.ok(CreditCard.initiate(2_500)), 2_600));
        }
    },
    /** A provisional ack whose tag does not verify: bad tag, 6982. */
    PROVISIONAL_BAD_TAG(Base.OPERATIONAL, "6982", Retry.NEW_COMMAND, Atomicity.TRANSACTION, 13) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.applyProvisional(flipLast(c.provisionalFor(c.ok(CreditCard.initiate(2_500)))));
        }
    },
    /** A valid provisional ack with nothing pending: window event, 9C03. */
    PROVISIONAL_NO_PENDING(Base.OPERATIONAL, "9C03", Retry.NEW_COMMAND, Atomicity.TRANSACTION, 13) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.applyProvisional(Host.provisional(c.profile, CreditCard.ID, c.kGrant, CreditCard.N + 1,
                    Host.fill(8, 0x5A)));
        }
    },
    /** A limit update whose tag does not verify: bad tag, 6982. */
    LIMIT_BAD_TAG(Base.OPERATIONAL, "6982", Retry.NEW_COMMAND, Atomicity.TRANSACTION, 13) {
        @Override
        byte[] prepare(CreditCard c) {
            return CreditCard.applyLimitUpdate(flipLast(c.limitUpdate(1, 5, 20_000, 60_000, 800)));
        }
    },
    /** Limit update 1 again after it was applied: limit update replay (window counter), 9C09. */
    LIMIT_REPLAY(Base.OPERATIONAL, "9C09", Retry.NEW_COMMAND, Atomicity.TRANSACTION, 13) {
        @Override
        byte[] prepare(CreditCard c) {
            byte[] update = CreditCard.applyLimitUpdate(c.limitUpdate(1, 5, 20_000, 60_000, 800));
            c.ok(update);
            return update;
        }
    },
    /** The fifth event with threshold 5: registered and the module blocked, together; 6982. */
    FRAUD_BLOCKS(Base.OPERATIONAL, "6982", Retry.sw("9C08"), Atomicity.TRANSACTION, 14) {
        @Override
        byte[] prepare(CreditCard c) {
            return fraudAfter(c, CreditCard.THRESHOLD - 1);
        }
    },
    /** The ninth event (threshold 100): the log ring wraps, its count stays 8; 6982. */
    FRAUD_LOG_WRAPS(Base.HIGH_THRESHOLD, "6982", Retry.NEW_COMMAND, Atomicity.TRANSACTION, 12) {
        @Override
        byte[] prepare(CreditCard c) {
            return fraudAfter(c, 8);
        }
    };

    static final long GRANT = 2_000;

    /** How a fresh card for a scenario is made. */
    enum Base {
        FRESH((p, rollback) -> CreditCard.fresh(p, rollback)),
        UNLOCKED((p, rollback) -> CreditCard.personalised(p, rollback, CreditCard.N, CreditCard.THRESHOLD)),
        OPERATIONAL((p, rollback) -> CreditCard.operational(p, rollback)),
        LAST_N((p, rollback) -> CreditCard.operational(p, rollback, 0xFFFF_FFFFL, CreditCard.THRESHOLD)),
        HIGH_THRESHOLD((p, rollback) -> CreditCard.operational(p, rollback, CreditCard.N, 100));

        private final BiFunction<Host.Profile, Boolean, CreditCard> make;

        Base(BiFunction<Host.Profile, Boolean, CreditCard> make) {
            this.make = make;
        }

        CreditCard card(Host.Profile p, boolean rollback) {
            return make.apply(p, rollback);
        }
    }

    /** What the walk expects of the k = 1..W tears. */
    enum Atomicity {
        /** Every write is inside one transaction: every tear k ≤ W rolls back to the old state. */
        TRANSACTION,
        /**
         * As {@link #TRANSACTION}, and besides the last write is a single byte that makes the
         * others visible (INITIATE RELOAD: the stored request is read only while the pending flag
         * is set): without rollback a tear k < W still leaves the old state and k = W the new one.
         * No mix exists to find; the control checks that exact split instead.
         */
        ORDERED,
        /**
         * One single-byte write outside a transaction (W = 1): the tear after it leaves the new
         * state, and no k can fall between two writes, so no mix exists even without rollback.
         */
        SINGLE_WRITE
    }

    /** What a retry answers once the command has been applied. */
    record Retry(String sw, boolean sameResponse) {
        /** The retry answers the un-torn response byte for byte and changes nothing observable. */
        static final Retry SAME_RESPONSE = new Retry(null, true);
        /** A retry is a new command (applies or registers again): not checked. */
        static final Retry NEW_COMMAND = new Retry(null, false);

        static Retry sw(String sw) {
            return new Retry(sw, false);
        }
    }

    final Base base;
    /** The un-torn run's status word. */
    final String sw;
    final Retry appliedRetry;
    final Atomicity atomicity;
    /** WRITE_COUNT per profile (aes-cmac, retail-mac, desx-cbc); one value: the same in all. */
    private final int[] writes;

    Scenario(Base base, String sw, Retry appliedRetry, Atomicity atomicity, int... writes) {
        this.base = base;
        this.sw = sw;
        this.appliedRetry = appliedRetry;
        this.atomicity = atomicity;
        this.writes = writes;
    }

    abstract byte[] prepare(CreditCard c);

    int writes(Host.Profile p) {
        return writes.length == 1 ? writes[0] : writes[p.ordinal()];
    }

    /** The APDU with the last byte of its message (the tag) flipped. */
    static byte[] flipLast(byte[] msg) {
        byte[] m = msg.clone();
        m[m.length - 1] ^= 0x01;
        return m;
    }

    /** {@code before} bad-tag limit updates, each registered; answers one more. */
    static byte[] fraudAfter(CreditCard c, int before) {
        for (int i = 0; i < before; i++) {
            byte[] bad = CreditCard.applyLimitUpdate(flipLast(c.limitUpdate(100 + i, 5, 20_000, 60_000, 800)));
            assertEquals("6982", CreditCard.sw(c.send(bad)), "bad tag " + i);
        }
        return CreditCard.applyLimitUpdate(flipLast(c.limitUpdate(200, 5, 20_000, 60_000, 800)));
    }
}
