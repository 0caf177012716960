package dev.simkit.credit;

/**
 * Every number the credit module parses or answers, defined once and grouped by prefix
 * (applet-spec/credit-module.md §1–§4, applet-spec/status-words.md).
 *
 * <p>The {@code SW_} names are the {@code name} column of status-words.md in UPPER_SNAKE case; a
 * test parses that table and checks every {@code SW_} constant against its row.
 */
final class Constants {

    private Constants() {
    }

    // ---- CLA (§1) ---------------------------------------------------------------------------
    static final byte CLA_ISO = (byte) 0x00;
    static final byte CLA_PROPRIETARY = (byte) 0x80;

    // ---- INS (§4) ---------------------------------------------------------------------------
    static final byte INS_SELECT = (byte) 0xA4;
    static final byte INS_GET_STATUS = (byte) 0x10;
    static final byte INS_GET_SERVER_ADDRESS = (byte) 0x12;
    static final byte INS_INITIATE_RELOAD = (byte) 0x20;
    static final byte INS_APPLY_GRANT = (byte) 0x22;
    static final byte INS_APPLY_PROVISIONAL_ACK = (byte) 0x24;
    static final byte INS_GET_LAST_COMPLETION = (byte) 0x26;
    static final byte INS_DEBIT = (byte) 0x30;
    static final byte INS_APPLY_LIMIT_UPDATE = (byte) 0x32;
    static final byte INS_GET_FRAUD_LOG = (byte) 0x34;
    static final byte INS_PERSONALISE = (byte) 0x50;
    static final byte INS_LOCK = (byte) 0x5E;


    // ---- Status words: ISO/IEC 7816-4 values the applet uses ----------------------------------
    static final short SW_SUCCESS = (short) 0x9000;
    static final short SW_WRONG_LENGTH = (short) 0x6700;
    static final short SW_SECURITY_STATUS_NOT_SATISFIED = (short) 0x6982;
    static final short SW_CONDITIONS_OF_USE_NOT_SATISFIED = (short) 0x6985;
    static final short SW_INCORRECT_DATA = (short) 0x6A80;
    static final short SW_INCORRECT_P1P2 = (short) 0x6A86;
    /** A SELECT the runtime passed on because it selects no applet. */
    static final short SW_FILE_NOT_FOUND = (short) 0x6A82;
    static final short SW_REFERENCED_DATA_NOT_FOUND = (short) 0x6A88;
    static final short SW_INS_NOT_SUPPORTED = (short) 0x6D00;
    static final short SW_CLA_NOT_SUPPORTED = (short) 0x6E00;

    // ---- Status words: credit module (9Cxx) ---------------------------------------------------
    static final short SW_RELOAD_AMOUNT_OUT_OF_RANGE = (short) 0x9C01;
    static final short SW_DIFFERENT_RELOAD_PENDING = (short) 0x9C02;
    static final short SW_NO_RELOAD_PENDING = (short) 0x9C03;
    static final short SW_GRANT_ALREADY_APPLIED = (short) 0x9C04;
    static final short SW_TRANSACTION_OUT_OF_WINDOW = (short) 0x9C05;
    static final short SW_GRANT_EXCEEDS_LIMITS = (short) 0x9C06;
    static final short SW_INSUFFICIENT_BALANCE = (short) 0x9C07;
    static final short SW_MODULE_BLOCKED = (short) 0x9C08;
    static final short SW_LIMIT_UPDATE_REPLAYED = (short) 0x9C09;
    static final short SW_MESSAGE_MISMATCH = (short) 0x9C0A;
    static final short SW_INVALID_LIMITS = (short) 0x9C0B;
    static final short SW_COUNTER_EXHAUSTED = (short) 0x9C0C;
    static final short SW_PERSONALISATION_INCOMPLETE = (short) 0x9C0D;

    // ---- Lifecycle (§2) ----------------------------------------------------------------------
    static final byte LIFECYCLE_PERSONALISATION = (byte) 0x01;
    static final byte LIFECYCLE_OPERATIONAL = (byte) 0x02;
    static final byte LIFECYCLE_BLOCKED = (byte) 0x03;

    /** Lifecycle gate masks (§4 table): bit per state an INS is allowed in. */
    static final byte GATE_PERSONALISATION = (byte) 0x01;
    static final byte GATE_OPERATIONAL = (byte) 0x02;
    static final byte GATE_BLOCKED = (byte) 0x04;
    static final byte GATE_ALL = (byte) 0x07;

    // ---- Crypto profiles (crypto.md) ---------------------------------------------------------
    static final byte PROFILE_NONE = (byte) 0x00;
    static final byte PROFILE_AES_CMAC = (byte) 0x01;
    static final byte PROFILE_RETAIL_MAC = (byte) 0x02;
    static final byte PROFILE_DESX_CBC = (byte) 0x03;
    static final short KEY_LEN_AES = 16;
    static final short KEY_LEN_RETAIL = 16;
    static final short KEY_LEN_DESX = 24;
    static final short TAG_LEN = 8;

    // ---- Messages (§3) -----------------------------------------------------------------------
    static final byte MSG_VERSION = (byte) 0x01;
    static final byte MSG_TYPE_REQUEST = (byte) 0x01;
    static final byte MSG_TYPE_GRANT = (byte) 0x02;
    static final byte MSG_TYPE_PROVISIONAL = (byte) 0x03;
    static final byte MSG_TYPE_COMPLETION = (byte) 0x04;
    static final byte MSG_TYPE_LIMIT_UPDATE = (byte) 0x05;

    static final short MSG_OFF_VERSION = 0;
    static final short MSG_OFF_TYPE = 1;
    static final short MSG_OFF_ALG = 2;
    static final short MSG_OFF_MODULE_ID = 3;
    static final short MSG_HEADER_LEN = 11;
    static final short MODULE_ID_LEN = 8;

    // §3.2 reload request
    static final short REQ_OFF_N = 11;
    static final short REQ_OFF_R = 15;
    static final short REQ_OFF_B = 19;
    static final short REQ_OFF_TAG = 23;
    static final short REQ_LEN = 31;

    // §3.3 reload grant
    static final short GRANT_OFF_S = 11;
    static final short GRANT_OFF_STATUS = 15;
    static final short GRANT_OFF_REASON = 16;
    static final short GRANT_OFF_G = 17;
    static final short GRANT_OFF_REQ_TAG = 21;
    static final short GRANT_OFF_TAG = 29;
    static final short GRANT_LEN = 37;
    static final byte GRANT_STATUS_GRANTED = (byte) 0x00;
    static final byte GRANT_STATUS_DECLINED = (byte) 0x01;
    static final byte GRANT_REASON_NONE = (byte) 0x00;
    static final byte GRANT_REASON_FIRST = (byte) 0x01;
    static final byte GRANT_REASON_LAST = (byte) 0x05;

    // §3.4 provisional ack
    static final short PROV_OFF_S = 11;
    static final short PROV_OFF_REQ_TAG = 15;
    static final short PROV_OFF_TAG = 23;
    static final short PROV_LEN = 31;

    // §3.5 completion ack
    static final short ACK_OFF_N = 11;
    static final short ACK_OFF_STATUS = 15;
    static final short ACK_OFF_G = 16;
    static final short ACK_OFF_B = 20;
    static final short ACK_OFF_GRANT_TAG = 24;
    static final short ACK_OFF_TAG = 32;
    static final short ACK_LEN = 40;

    // §3.6 limit update
    static final short LIM_OFF_SEQ = 11;
    static final short LIM_OFF_LIMITS = 15;
    static final short LIM_OFF_TAG = 31;
    static final short LIM_LEN = 39;

    /** m ‖ M ‖ U ‖ L, each 4 bytes, in messages, TLV 85 and persistent state alike. */
    static final short LIMITS_OFF_MIN = 0;
    static final short LIMITS_OFF_MAX = 4;
    static final short LIMITS_OFF_UPPER = 8;
    static final short LIMITS_OFF_LINE = 12;
    static final short LIMITS_LEN = 16;

    // ---- Command data lengths (§4) -----------------------------------------------------------
    static final short LC_NONE = 0;
    static final short LC_AMOUNT = 4;
    static final short STATUS_LEN = 49;
    static final byte FLAG_PENDING = (byte) 0x01;
    static final byte FLAG_PROVISIONAL = (byte) 0x02;
    static final byte FLAG_COMPLETION = (byte) 0x04;

    // ---- Fraud (§4.10, §7) -------------------------------------------------------------------
    static final byte FRAUD_BAD_TAG = (byte) 0x01;
    static final byte FRAUD_WINDOW = (byte) 0x02;
    static final byte FRAUD_LIMIT_REPLAY = (byte) 0x03;
    static final byte FRAUD_GRANT_BEYOND_LIMITS = (byte) 0x04;
    static final short FRAUD_LOG_ENTRIES = 8;
    static final short FRAUD_ENTRY_LEN = 9;

    // ---- Personalisation TLV tags (§4.11) ----------------------------------------------------
    static final byte TAG_MODULE_ID = (byte) 0x81;
    static final byte TAG_PROFILE = (byte) 0x82;
    static final byte TAG_K_REQ = (byte) 0x83;
    static final byte TAG_K_GRANT = (byte) 0x84;
    static final byte TAG_LIMITS = (byte) 0x85;
    static final byte TAG_INITIAL = (byte) 0x86;
    static final byte TAG_THRESHOLD = (byte) 0x87;
    static final byte TAG_SERVER_ADDRESS = (byte) 0x88;
    static final short TAG_COUNT = 8;
    static final short INITIAL_LEN = 8;
    static final short THRESHOLD_LEN = 2;
    static final short SERVER_ADDRESS_MAX = 64;
}
