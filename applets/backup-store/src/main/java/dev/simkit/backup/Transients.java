package dev.simkit.backup;

import javacard.framework.JCSystem;

/**
 * Session state (spec §4.1): one CLEAR_ON_DESELECT array with named, non-overlapping regions, and
 * the free-block map rebuilt at every BEGIN SESSION (§10.3). Nothing here survives a deselect, a
 * reset or a tear, so no session does; nothing here is ever written inside a transaction.
 */
final class Transients {

    /** SESSION_ kind. */
    static final short OFF_SESSION = 0;
    /** 1 while a record is open. */
    static final short OFF_RECORD_OPEN = 1;
    /** 1 while a WRITE DATA command chain is in progress. */
    static final short OFF_CHAIN = 2;
    /** Entries in the staging table. */
    static final short OFF_STAGE_COUNT = 3;
    /** S: bytes of records written in this session still staged (4). */
    static final short OFF_STAGED = 5;
    /** W: bytes of the open record written so far (4). */
    static final short OFF_WRITTEN = 9;
    /** Open record: write cursor block and offset inside it. */
    static final short OFF_CUR_BLOCK = 13;
    static final short OFF_CUR_OFF = 15;
    /** Open record: its table entry image (manifest entry, first block). */
    static final short OFF_OPEN_ENTRY = 17;
    /** Scratch: three 4-byte registers and the computed digest. */
    static final short OFF_R1 = (short) (OFF_OPEN_ENTRY + Store.ENTRY_LEN);
    static final short OFF_R2 = (short) (OFF_R1 + 4);
    static final short OFF_R3 = (short) (OFF_R2 + 4);
    static final short OFF_DIGEST = (short) (OFF_R3 + 4);
    /** Open record: index of the staging entry with its id, or −1 (found at BEGIN RECORD). */
    static final short OFF_SAME_ID = (short) (OFF_DIGEST + Constants.DIGEST_LEN);
    /** Store: no block below this one is free (allocation starts its search here). */
    static final short OFF_FREE_HINT = (short) (OFF_SAME_ID + 2);
    static final short LEN = (short) (OFF_FREE_HINT + 2);

    final byte[] buf;

    Transients() {
        buf = JCSystem.makeTransientByteArray(LEN, JCSystem.CLEAR_ON_DESELECT);
    }
}
