package dev.simkit.cardhost.server;

/**
 * The card host's wire protocol (see card-host/README.md for the full specification).
 *
 * <pre>
 * request  = u32 BE length-of-rest ‖ u8 opcode ‖ u8 card index ‖ payload     (length ≥ 2)
 * response = u32 BE length-of-rest ‖ u8 status ‖ payload                      (length ≥ 1)
 * </pre>
 */
public final class Protocol {
    private Protocol() {
    }

    /** Largest accepted length field; an extended APDU is at most ~65.5 KB. */
    public static final int MAX_FRAME = 1 << 20;

    // Opcodes
    public static final int TRANSMIT = 0x01;
    public static final int RESET = 0x02;
    public static final int POWER_OFF = 0x03;
    public static final int POWER_ON = 0x04;
    public static final int GET_ATR = 0x05;
    public static final int TEAR_AT = 0x06;
    public static final int WRITE_COUNT = 0x07;
    public static final int LIST_CARDS = 0x08;
    public static final int INSTALL = 0x09;
    public static final int SHUTDOWN = 0x0A;
    /** Rebuilds the card from its spec (fresh applets, fresh persistent state); answers the ATR. */
    public static final int FACTORY_RESET = 0x0B;

    // Statuses
    public static final int OK = 0;
    /** The armed tear fired during this TRANSMIT; the card was reset; payload empty. */
    public static final int POWER_LOST = 1;
    /** Request failed; payload is a UTF-8 message. */
    public static final int ERROR = 2;
    /** TRANSMIT to a card that is powered off (POWER_OFF without POWER_ON/RESET); payload empty. */
    public static final int POWERED_OFF = 3;
}
