package dev.simkit.credit;

import javacard.framework.JCSystem;

/**
 * Scratch memory: one CLEAR_ON_DESELECT array with named, non-overlapping regions.
 *
 * <p>Nothing here survives a deselect or a tear, and nothing here is ever written inside a
 * transaction on purpose: transactions do not cover transient memory, so wrapping it would only
 * suggest an atomicity that is not there.
 */
final class Transients {

    /** MAC engine: the full MAC output (16 bytes for CMAC, 8 for the DES MACs). */
    static final short OFF_MAC_OUT = 0;
    /** MAC engine: CBC chaining value. */
    static final short OFF_MAC_CHAIN = 16;
    /** MAC engine: current (padded / whitened) block. */
    static final short OFF_MAC_BLOCK = 32;
    /** MAC engine: CMAC subkey. */
    static final short OFF_MAC_SUBKEY = 48;
    /** Outgoing message under construction (request or completion ack). */
    static final short OFF_MSG = 64;
    static final short MSG_MAX = 40;
    /** Two wide-arithmetic registers. */
    static final short OFF_WIDE_A = 104;
    static final short OFF_WIDE_B = 109;
    /** PERSONALISE: value offset (relative to the command data) per tag 81..88. */
    static final short OFF_TLV_VALUE = 114;
    /** PERSONALISE: value length per tag 81..88. */
    static final short OFF_TLV_LEN = 122;
    /** PERSONALISE: bit per tag 81..88 seen in this command. */
    static final short OFF_TLV_SEEN = 130;
    static final short LEN = 131;

    final byte[] buf;

    Transients() {
        buf = JCSystem.makeTransientByteArray(LEN, JCSystem.CLEAR_ON_DESELECT);
    }
}
