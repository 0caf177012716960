package dev.simkit.backup;

/**
 * Every number the backup store parses or answers, defined once and grouped by prefix
 * (applet-spec/backup-store.md §2–§5, applet-spec/status-words.md).
 *
 * <p>The {@code SW_} names are the {@code name} column of status-words.md in UPPER_SNAKE case; a
 * test parses that table and checks every {@code SW_} constant against its row.
 */
final class Constants {

    private Constants() {
    }

    // ---- CLA (§4.4 step 1; logical-channel bits b2-b1 masked off) ----------------------------
    static final byte CLA_MASK_CHANNEL = (byte) 0xFC;
    static final byte CLA_ISO = (byte) 0x00;
    static final byte CLA_ISO_CHAIN = (byte) 0x10;
    static final byte CLA_PROPRIETARY = (byte) 0x80;
    static final byte CLA_PROPRIETARY_CHAIN = (byte) 0x90;
    static final byte CLA_CHAIN_BIT = (byte) 0x10;

    // ---- INS (§5.0) --------------------------------------------------------------------------
    static final byte INS_SELECT = (byte) 0xA4;
    static final byte INS_GET_STATUS = (byte) 0x30;
    static final byte INS_SET_PASSCODE = (byte) 0x32;
    static final byte INS_VERIFY = (byte) 0x20;
    static final byte INS_CHANGE_REFERENCE_DATA = (byte) 0x24;
    static final byte INS_GET_MANIFEST = (byte) 0x34;
    static final byte INS_BEGIN_SESSION = (byte) 0x36;
    static final byte INS_BEGIN_RECORD = (byte) 0x38;
    static final byte INS_WRITE_DATA = (byte) 0x3A;
    static final byte INS_END_RECORD = (byte) 0x3C;
    static final byte INS_DELETE_RECORD = (byte) 0x3E;
    static final byte INS_COMMIT = (byte) 0x40;
    static final byte INS_ABORT = (byte) 0x42;
    static final byte INS_READ_DATA = (byte) 0x44;
    static final byte INS_ERASE = (byte) 0x46;
    static final byte INS_GET_MANIFEST_DIGEST = (byte) 0x48;
    static final byte INS_WRITE_RECORDS = (byte) 0x4A;

    // ---- P1 / P2 -----------------------------------------------------------------------------
    static final byte P2_PAIRING = (byte) 0x01;
    static final byte P2_REPROVISIONING = (byte) 0x02;
    static final byte P1_NEW_REFERENCE_ONLY = (byte) 0x01;
    static final byte P1_SESSION_FULL = (byte) 0x00;
    static final byte P1_SESSION_INCREMENTAL = (byte) 0x01;
    static final byte P1_COMMIT_PLAIN = (byte) 0x00;
    /** COMMIT with the expected staging-table digest (§5.12, version 02). */
    static final byte P1_COMMIT_VERIFIED = (byte) 0x01;

    // ---- Status words: ISO/IEC 7816-4 values the applet uses ----------------------------------
    static final short SW_SUCCESS = (short) 0x9000;
    static final short SW_WRONG_LENGTH = (short) 0x6700;
    static final short SW_SECURITY_STATUS_NOT_SATISFIED = (short) 0x6982;
    static final short SW_AUTHENTICATION_METHOD_BLOCKED = (short) 0x6983;
    static final short SW_CONDITIONS_OF_USE_NOT_SATISFIED = (short) 0x6985;
    static final short SW_CHAINING_NOT_SUPPORTED = (short) 0x6884;
    static final short SW_INCORRECT_DATA = (short) 0x6A80;
    static final short SW_FILE_NOT_FOUND = (short) 0x6A82;
    static final short SW_INCORRECT_P1P2 = (short) 0x6A86;
    static final short SW_REFERENCED_DATA_NOT_FOUND = (short) 0x6A88;
    static final short SW_INS_NOT_SUPPORTED = (short) 0x6D00;
    static final short SW_CLA_NOT_SUPPORTED = (short) 0x6E00;
    /** 63Cx: verification failed, x tries left (not a table row: x varies). */
    static final short VERIFY_FAILED_BASE = (short) 0x63C0;

    // ---- Status words: backup store (9Dxx) ---------------------------------------------------
    static final short SW_NO_SESSION = (short) 0x9D01;
    static final short SW_CAPACITY_EXCEEDED = (short) 0x9D02;
    static final short SW_DIGEST_MISMATCH = (short) 0x9D03;
    static final short SW_SESSION_STATE = (short) 0x9D04;
    static final short SW_STORE_EMPTY = (short) 0x9D05;
    static final short SW_TOO_MANY_RECORDS = (short) 0x9D06;
    static final short SW_PASSCODE_NOT_SET = (short) 0x9D07;
    static final short SW_RECORD_INCOMPLETE = (short) 0x9D08;
    static final short SW_TABLE_MISMATCH = (short) 0x9D09;

    /** GET MANIFEST DIGEST response: generation(4) ‖ count(2) ‖ SHA-256(32) (§5.16). */
    static final short MANIFEST_DIGEST_LEN = 38;

    // ---- install parameters (§2.2) -----------------------------------------------------------
    static final short INSTALL_LEN = 8;
    static final byte TRY_LIMIT_MAX = 15;

    // ---- passcodes (§4.1) --------------------------------------------------------------------
    static final short PASSCODE_MIN = 4;
    static final short PASSCODE_MAX = 16;

    // ---- categories and names (§3) -----------------------------------------------------------
    static final byte CATEGORY_MIN = 1;
    static final byte CATEGORY_MAX = 5;
    static final short NAME_MAX = 64;

    // ---- manifest entry (§3.3): category ‖ n ‖ name ‖ length(4) ‖ sha256(32) -------------------
    static final short ENTRY_FIXED = 38;
    static final short ENTRY_MAX = 102;
    static final short DIGEST_LEN = 32;
    /** Id in DELETE RECORD / READ DATA: category ‖ n ‖ name. */
    static final short ID_FIXED = 2;

    // ---- command lengths (§5) ----------------------------------------------------------------
    static final short STATUS_LEN = 28;
    static final short MANIFEST_HEADER_LEN = 8;
    static final short GENERATION_LEN = 4;
    static final short OFFSET_LEN = 4;
    static final short BASE_LEN = 4;
    static final short ERASE_LEN = 5;
    /** Largest Nc / Ne one APDU carries (ExtendedLength). */
    static final short MAX_DATA = (short) 0x7FFF;

    // ---- GET STATUS (§5.2) -------------------------------------------------------------------
    /** 02: revision 2 — WRITE RECORDS (§5.17) and the verified COMMIT (§5.12). */
    static final byte STATUS_VERSION = 2;
    static final byte FLAG_PAIRING_SET = (byte) 0x01;
    static final byte FLAG_REPROVISIONING_SET = (byte) 0x02;
    static final byte FLAG_PAIRING_VERIFIED = (byte) 0x04;
    static final byte FLAG_REPROVISIONING_VERIFIED = (byte) 0x08;
    static final byte FLAG_SESSION = (byte) 0x10;
    static final byte FLAG_INCREMENTAL = (byte) 0x20;
    static final byte FLAG_RECORD_OPEN = (byte) 0x40;

    // ---- session kinds (transient) -----------------------------------------------------------
    static final byte SESSION_NONE = 0;
    static final byte SESSION_FULL = 1;
    static final byte SESSION_INCREMENTAL = 2;
}
