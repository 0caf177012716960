package dev.simkit.cardhost;

import java.util.HexFormat;

/** Hex helpers (upper case, as AIDs are usually written). */
public final class Hex {
    private static final HexFormat FORMAT = HexFormat.of().withUpperCase();

    private Hex() {
    }

    public static String of(byte[] bytes) {
        return FORMAT.formatHex(bytes);
    }

    /** Parses hex, ignoring spaces and colons; throws IllegalArgumentException on bad input. */
    public static byte[] parse(String hex) {
        String clean = hex.replace(" ", "").replace(":", "");
        if (clean.length() % 2 != 0) {
            throw new IllegalArgumentException("odd number of hex digits: " + hex);
        }
        return HexFormat.of().parseHex(clean);
    }
}
