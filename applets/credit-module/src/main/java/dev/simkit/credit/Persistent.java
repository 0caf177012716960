package dev.simkit.credit;

import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * Every persistent field of spec §2 except the keys (which live in {@link Crypto}'s key
 * objects), and the one multi-field update that every command shares: fraud registration (§7).
 *
 * <p>{@link #state} is laid out like bytes 0..38 of the GET STATUS response followed by the fraud
 * counters and threshold (status bytes 43..49), so GET STATUS is two copies. All arrays are
 * allocated here, at install; nothing is allocated afterwards.
 *
 * <p>Must not: be written outside a transaction when more than one field changes together.
 */
final class Persistent {

    // ---- state[] ----------------------------------------------------------------------------
    static final short OFF_LIFECYCLE = 0;
    static final short OFF_PROFILE = 1;
    static final short OFF_MODULE_ID = 2;
    static final short OFF_BALANCE = 10;
    /** N directly follows the balance: TLV 86 (B ‖ N) is one 8-byte copy. */
    static final short OFF_N = 14;
    static final short OFF_LIMITS = 18;
    static final short OFF_LIMIT_SEQ = 34;
    static final short OFF_FLAGS = 38;
    /** End of the part that is GET STATUS bytes 0..38 verbatim. */
    static final short STATUS_HEAD_LEN = 39;
    static final short OFF_BAD_TAGS = 39;
    static final short OFF_WINDOW = 41;
    static final short OFF_THRESHOLD = 43;
    /** End of the part that is GET STATUS bytes 43..48 verbatim. */
    static final short STATUS_TAIL_LEN = 6;
    /** Bit per personalised item LOCK requires (PERSO_ bits). */
    static final short OFF_PERSO = 45;
    static final short OFF_LOG_COUNT = 46;
    /** Index of the newest fraud-log entry. */
    static final short OFF_LOG_HEAD = 47;
    static final short OFF_ADDRESS_LEN = 48;
    static final short STATE_LEN = 49;

    static final byte PERSO_MODULE_ID = (byte) 0x01;
    static final byte PERSO_PROFILE = (byte) 0x02;
    static final byte PERSO_K_REQ = (byte) 0x04;
    static final byte PERSO_K_GRANT = (byte) 0x08;
    static final byte PERSO_LIMITS = (byte) 0x10;
    static final byte PERSO_THRESHOLD = (byte) 0x20;
    static final byte PERSO_LOCK_NEEDS = (byte) 0x3F;

    // ---- last completion: ack ‖ grant tag ---------------------------------------------------
    static final short COMPLETION_OFF_ACK = 0;
    static final short COMPLETION_OFF_GRANT_TAG = Constants.ACK_LEN;
    static final short COMPLETION_LEN = (short) (Constants.ACK_LEN + Constants.TAG_LEN);

    final byte[] state;
    /** The pending request, byte for byte (valid while FLAG_PENDING). */
    final byte[] pending;
    /** The last completion ack and the grant tag it answers (valid while FLAG_COMPLETION). */
    final byte[] completion;
    /** Ring of 8 entries: kind ‖ N ‖ carried. */
    final byte[] fraudLog;
    final byte[] serverAddress;

    Persistent() {
        state = new byte[STATE_LEN];
        pending = new byte[Constants.REQ_LEN];
        completion = new byte[COMPLETION_LEN];
        fraudLog = new byte[(short) (Constants.FRAUD_LOG_ENTRIES * Constants.FRAUD_ENTRY_LEN)];
        serverAddress = new byte[Constants.SERVER_ADDRESS_MAX];
        state[OFF_LIFECYCLE] = Constants.LIFECYCLE_PERSONALISATION;
        // The first entry goes to index 0.
        state[OFF_LOG_HEAD] = (byte) (Constants.FRAUD_LOG_ENTRIES - 1);
    }

    byte lifecycle() {
        return state[OFF_LIFECYCLE];
    }

    byte profile() {
        return state[OFF_PROFILE];
    }

    boolean hasFlag(byte flag) {
        return (state[OFF_FLAGS] & flag) != 0;
    }

    boolean isPersonalised(byte bits) {
        return (byte) (state[OFF_PERSO] & bits) == bits;
    }

    /**
     * Registers a fraud event (§7) in one transaction and commits it: the counter (saturating at
     * 65535), a log entry {@code kind ‖ N ‖ carried}, and the block when bad tags + window events
     * reach the threshold. The caller throws its status word afterwards, so the registration
     * survives the error answer.
     *
     * @param carried the number the offending message carried (4 bytes at {@code off})
     */
    void registerFraud(byte kind, byte[] carried, short carriedOff) {
        short counterOff = kind == Constants.FRAUD_BAD_TAG ? OFF_BAD_TAGS : OFF_WINDOW;
        JCSystem.beginTransaction();
        short count = Util.getShort(state, counterOff);
        if (count != (short) 0xFFFF) {
            Util.setShort(state, counterOff, (short) (count + 1));
        }

        byte head = (byte) ((state[OFF_LOG_HEAD] + 1) & (Constants.FRAUD_LOG_ENTRIES - 1));
        short e = (short) (head * Constants.FRAUD_ENTRY_LEN);
        fraudLog[e] = kind;
        Util.arrayCopy(state, OFF_N, fraudLog, (short) (e + 1), (short) 4);
        Util.arrayCopy(carried, carriedOff, fraudLog, (short) (e + 5), (short) 4);
        state[OFF_LOG_HEAD] = head;
        if (state[OFF_LOG_COUNT] < Constants.FRAUD_LOG_ENTRIES) {
            state[OFF_LOG_COUNT] = (byte) (state[OFF_LOG_COUNT] + 1);
        }

        if (thresholdReached()) {
            state[OFF_LIFECYCLE] = Constants.LIFECYCLE_BLOCKED;
        }
        JCSystem.commitTransaction();
    }

    /** bad + window ≥ threshold, with the u16 sum computed without overflow. */
    private boolean thresholdReached() {
        short bad = Util.getShort(state, OFF_BAD_TAGS);
        short window = Util.getShort(state, OFF_WINDOW);
        short threshold = Util.getShort(state, OFF_THRESHOLD);
        // bad + window ≥ threshold  ⇔  window ≥ threshold  or  bad ≥ threshold − window.
        if (!Arith.lessThanU16(window, threshold)) {
            return true;
        }
        return !Arith.lessThanU16(bad, (short) (threshold - window));
    }

    /** Writes the fraud log, newest first, as GET FRAUD LOG answers it; returns its length. */
    short readFraudLog(byte[] out, short outOff) {
        short count = state[OFF_LOG_COUNT];
        out[outOff] = (byte) count;
        short o = (short) (outOff + 1);
        short idx = state[OFF_LOG_HEAD];
        for (short i = 0; i < count; i++) {
            Util.arrayCopyNonAtomic(fraudLog, (short) (idx * Constants.FRAUD_ENTRY_LEN), out, o,
                    Constants.FRAUD_ENTRY_LEN);
            o = (short) (o + Constants.FRAUD_ENTRY_LEN);
            idx = (short) ((short) (idx - 1) & (short) (Constants.FRAUD_LOG_ENTRIES - 1));
        }
        return (short) (o - outOff);
    }
}
