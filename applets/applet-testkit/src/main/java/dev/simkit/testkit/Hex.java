package dev.simkit.testkit;

import java.util.HexFormat;

/** Hex in upper case, whitespace ignored on input: the applet and card-host tests' shared helper. */
public final class Hex {
    private static final HexFormat F = HexFormat.of().withUpperCase();

    private Hex() {
    }

    public static byte[] b(String hex) {
        return F.parseHex(hex.replaceAll("\\s", ""));
    }

    public static String s(byte[] bytes) {
        return F.formatHex(bytes);
    }

    public static byte[] cat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] out = new byte[n];
        int o = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, o, p.length);
            o += p.length;
        }
        return out;
    }

    public static byte[] u32(long v) {
        return new byte[] {(byte) (v >>> 24), (byte) (v >>> 16), (byte) (v >>> 8), (byte) v};
    }

    public static byte[] u16(int v) {
        return new byte[] {(byte) (v >>> 8), (byte) v};
    }

    public static long u32(byte[] b, int off) {
        return ((b[off] & 0xFFL) << 24) | ((b[off + 1] & 0xFFL) << 16) | ((b[off + 2] & 0xFFL) << 8)
                | (b[off + 3] & 0xFFL);
    }

    public static int i32(byte[] b, int off) {
        return (int) u32(b, off);
    }

    public static int u16(byte[] b, int off) {
        return ((b[off] & 0xFF) << 8) | (b[off + 1] & 0xFF);
    }
}
