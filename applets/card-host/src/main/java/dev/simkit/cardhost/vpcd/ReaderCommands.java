package dev.simkit.cardhost.vpcd;

import dev.simkit.cardhost.Card;
import java.nio.ByteBuffer;

/**
 * Simulator-only reader pseudo-APDUs of class {@code FF}, answered by the card host's vpcd
 * front-end instead of the card, so a PC/SC client can drive the simulator's controls through
 * an ordinary {@code SCardTransmit}. PC/SC part 3 reserves CLA {@code FF} for the reader; a real
 * card answers {@code 6E00} (class not supported) and a real reader does not know INS
 * {@code E1..E4}, which is how a client tells a simkit simulator from real hardware. Never sent
 * to real cards by simkit. Specified in {@code applet-spec/simulator.md}.
 *
 * <pre>
 * FF E1 00 00 04 k:u32   TEAR_AT        arm a tear after the k-th persistent write of the next
 *                                       command (0 disarms)                → 9000
 * FF E2 00 00 [00]       SIM_STATUS     count:u32 ‖ flags:u8 ‖ 9000; count = persistent writes
 *                                       of the last command, flags bit 0 = the last command was
 *                                       torn, bit 1 = it met a powered-off card
 * FF E3 00 00 [00]       FACTORY_RESET  rebuild the card from its spec   → ATR ‖ 9000
 * FF E4 00 00            POWER_OFF      cut power until the reader powers the card on again
 *                                       (cold reset, SCardReconnect with UNPOWER)  → 9000
 * </pre>
 *
 * Other {@code FF} commands go to the card like any APDU. Errors: {@code 6700} wrong length,
 * {@code 6A86} P1-P2 not 0000, {@code 6A80} k ≥ 2³¹.
 */
public final class ReaderCommands {
    public static final byte CLA = (byte) 0xFF;
    public static final byte INS_TEAR_AT = (byte) 0xE1;
    public static final byte INS_SIM_STATUS = (byte) 0xE2;
    public static final byte INS_FACTORY_RESET = (byte) 0xE3;
    public static final byte INS_POWER_OFF = (byte) 0xE4;

    /** SIM_STATUS flag: the last command was torn (power cut after an armed write). */
    public static final int FLAG_TORN = 0x01;
    /** SIM_STATUS flag: the last command found the card powered off. */
    public static final int FLAG_POWERED_OFF = 0x02;

    /**
     * What a torn command, or a command sent to a powered-off card, is answered on the vpcd
     * path: {@code 6F00}. The reader has to answer something; SIM_STATUS tells it apart from an
     * applet's own 6F00.
     */
    static final byte[] NO_ANSWER = {(byte) 0x6F, 0x00};

    private static final byte[] SW_OK = {(byte) 0x90, 0x00};
    private static final byte[] SW_WRONG_LENGTH = {0x67, 0x00};
    private static final byte[] SW_WRONG_P1P2 = {0x6A, (byte) 0x86};
    private static final byte[] SW_WRONG_DATA = {0x6A, (byte) 0x80};

    private final Card card;
    private int lastFlags;

    public ReaderCommands(Card card) {
        this.card = card;
    }

    /** Whether {@code apdu} is one of the pseudo-APDUs above (and so must not reach the card). */
    public static boolean isReaderCommand(byte[] apdu) {
        return apdu.length >= 4 && apdu[0] == CLA && (apdu[1] & 0xFF) >= (INS_TEAR_AT & 0xFF)
                && (apdu[1] & 0xFF) <= (INS_POWER_OFF & 0xFF);
    }

    /** Answers one command APDU: a pseudo-APDU here, anything else by the card. */
    public byte[] transmit(byte[] apdu) {
        if (isReaderCommand(apdu)) {
            return reader(apdu);
        }
        Card.Result r = card.transmit(apdu);
        switch (r.outcome()) {
            case OK -> {
                lastFlags = 0;
                return r.response();
            }
            case POWER_LOST -> lastFlags = FLAG_TORN;
            case POWERED_OFF -> lastFlags = FLAG_POWERED_OFF;
            default -> throw new IllegalStateException("unknown outcome " + r.outcome());
        }
        return NO_ANSWER.clone();
    }

    private byte[] reader(byte[] apdu) {
        if (apdu[2] != 0 || apdu[3] != 0) {
            return SW_WRONG_P1P2.clone();
        }
        // Body after the header: none, Le only (1 byte), or Lc ‖ data.
        int body = apdu.length - 4;
        switch (apdu[1]) {
            case INS_TEAR_AT -> {
                if (body != 5 || apdu[4] != 4) {
                    return SW_WRONG_LENGTH.clone();
                }
                int k = ByteBuffer.wrap(apdu, 5, 4).getInt();
                if (k < 0) {
                    return SW_WRONG_DATA.clone();
                }
                card.armTear(k);
                return SW_OK.clone();
            }
            case INS_SIM_STATUS -> {
                if (body > 1) {
                    return SW_WRONG_LENGTH.clone();
                }
                return ByteBuffer.allocate(7).putInt(card.lastWriteCount()).put((byte) lastFlags).put(SW_OK).array();
            }
            case INS_FACTORY_RESET -> {
                if (body > 1) {
                    return SW_WRONG_LENGTH.clone();
                }
                lastFlags = 0;
                byte[] atr = card.factoryReset();
                return ByteBuffer.allocate(atr.length + 2).put(atr).put(SW_OK).array();
            }
            case INS_POWER_OFF -> {
                if (body != 0) {
                    return SW_WRONG_LENGTH.clone();
                }
                card.powerOff();
                return SW_OK.clone();
            }
            default -> throw new IllegalStateException("not a reader command");
        }
    }
}
