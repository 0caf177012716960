package dev.simkit.backup;

import javacard.framework.OwnerPIN;

/**
 * The persistent state of spec §4.1 beside the tables and data ({@link Store}): install
 * parameters, both passcodes, and one state array. Allocated at install.
 *
 * <p>Must not: be written outside a transaction when more than one field changes together.
 */
final class Persistent {

    // ---- state[] ------------------------------------------------------------------------------
    /** 0: table A active, 1: table B active. */
    static final short OFF_SELECTOR = 0;
    static final short OFF_PAIRING_SET = 1;
    static final short OFF_REPROVISIONING_SET = 2;
    static final short OFF_WIPE_PENDING = 3;
    static final short OFF_ACTIVE_GEN = 4;
    static final short OFF_LAST_GEN = 8;
    /** U: sum of the active generation's record lengths. */
    static final short OFF_USED = 12;
    /** Entry count of table A, then of table B (2 bytes each). */
    static final short OFF_COUNT_A = 16;
    static final short OFF_COUNT_B = 18;
    static final short STATE_LEN = 20;

    // ---- params[]: the install data, verbatim (§2.2) ------------------------------------------
    static final short PARAM_CAPACITY = 0;
    static final short PARAM_MAX_RECORDS = 4;
    static final short PARAM_PAIRING_TRIES = 6;
    static final short PARAM_REPROVISIONING_TRIES = 7;

    final byte[] state;
    final byte[] params;
    final OwnerPIN pairing;
    final OwnerPIN reprovisioning;

    Persistent(byte[] installData) {
        params = installData;
        state = new byte[STATE_LEN];
        pairing = new OwnerPIN(params[PARAM_PAIRING_TRIES], (byte) Constants.PASSCODE_MAX);
        reprovisioning = new OwnerPIN(params[PARAM_REPROVISIONING_TRIES], (byte) Constants.PASSCODE_MAX);
    }

    boolean isSet(byte p2) {
        return state[p2 == Constants.P2_PAIRING ? OFF_PAIRING_SET : OFF_REPROVISIONING_SET] != 0;
    }

    OwnerPIN pin(byte p2) {
        return p2 == Constants.P2_PAIRING ? pairing : reprovisioning;
    }

    /** Set with 0 tries left (§4.1). */
    boolean isBlocked(byte p2) {
        return isSet(p2) && pin(p2).getTriesRemaining() == 0;
    }

    boolean isLocked() {
        return isBlocked(Constants.P2_PAIRING) || isBlocked(Constants.P2_REPROVISIONING);
    }

    byte triesLeft(byte p2) {
        return isSet(p2) ? pin(p2).getTriesRemaining()
                : params[p2 == Constants.P2_PAIRING ? PARAM_PAIRING_TRIES : PARAM_REPROVISIONING_TRIES];
    }

    byte selector() {
        return state[OFF_SELECTOR];
    }

    short countOffset(byte which) {
        return which == 0 ? OFF_COUNT_A : OFF_COUNT_B;
    }

    short activeCount() {
        return javacard.framework.Util.getShort(state, countOffset(selector()));
    }

    boolean hasGeneration() {
        return !U32.isZero(state, OFF_ACTIVE_GEN);
    }
}
