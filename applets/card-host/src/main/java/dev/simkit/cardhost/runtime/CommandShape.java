package dev.simkit.cardhost.runtime;

/**
 * The ISO/IEC 7816-4 (§5.1) case of a command APDU, found from its bytes alone — what a card's
 * transport layer knows before any applet runs.
 *
 * <p>jCardSim's own parser ({@code ApduCase.getCase}) throws on shapes it cannot classify (a
 * 6-byte command whose fifth byte is 00, an Lc that disagrees with the bytes sent, an extended
 * Lc of 8000 or more), which surfaced as {@code 6F00}; the runtime asks this class first and
 * answers {@code 6700} for every shape {@link #parse} refuses. It owns no card state and never
 * looks at CLA or INS.
 *
 * @param extended whether the length fields are extended (3-byte Lc or Le)
 * @param nc the command data length Nc (0 when Lc is absent)
 * @param ne the expected response length Ne: 0 when Le is absent, 256 for a short Le {@code 00},
 *     65 536 for an extended Le {@code 0000}
 */
public record CommandShape(boolean extended, int nc, int ne) {
    /** The largest Nc and Ne a Java Card 3.0.5 applet can be given: lengths are {@code short}. */
    public static final int JAVA_CARD_MAX = 0x7FFF;

    /**
     * Classifies a command APDU; null when it has no ISO 7816-4 case (under 4 bytes, or Lc/Le
     * fields that do not add up to the length, or an extended Lc of {@code 0000}).
     */
    public static CommandShape parse(byte[] c) {
        int len = c.length;
        if (len < 4) {
            return null;
        }
        if (len == 4) {
            return new CommandShape(false, 0, 0); // case 1
        }
        int b4 = c[4] & 0xFF;
        if (len == 5) {
            return new CommandShape(false, 0, b4 == 0 ? 256 : b4); // case 2S
        }
        if (b4 != 0) {
            if (len == 5 + b4) {
                return new CommandShape(false, b4, 0); // case 3S
            }
            if (len == 6 + b4) {
                int le = c[len - 1] & 0xFF;
                return new CommandShape(false, b4, le == 0 ? 256 : le); // case 4S
            }
            return null;
        }
        // b4 = 00 and more bytes follow: extended length fields.
        if (len < 7) {
            return null;
        }
        int first = u16(c, 5);
        if (len == 7) {
            return new CommandShape(true, 0, first == 0 ? 65536 : first); // case 2E
        }
        if (first == 0) {
            return null; // an extended Lc of 0000 is not an Lc
        }
        if (len == 7 + first) {
            return new CommandShape(true, first, 0); // case 3E
        }
        if (len == 9 + first) {
            int le = u16(c, len - 2);
            return new CommandShape(true, first, le == 0 ? 65536 : le); // case 4E
        }
        return null;
    }

    private static int u16(byte[] b, int off) {
        return ((b[off] & 0xFF) << 8) | (b[off + 1] & 0xFF);
    }
}
