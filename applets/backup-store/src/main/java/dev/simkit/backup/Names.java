package dev.simkit.backup;

/** Record id checks (spec §3.1, §3.2). Owns no state. */
final class Names {

    private Names() {
    }

    static boolean validCategory(byte c) {
        return c >= Constants.CATEGORY_MIN && c <= Constants.CATEGORY_MAX;
    }

    /**
     * §3.2: 1..64 bytes of well-formed UTF-8 (RFC 3629, Unicode Table 3-7), no 00–1F, 2F, 5C, 7F,
     * not "." or "..".
     */
    static boolean validName(byte[] b, short off, short n) {
        if (n < 1 || n > Constants.NAME_MAX) {
            return false;
        }
        if (b[off] == (byte) 0x2E && (n == 1 || (n == 2 && b[(short) (off + 1)] == (byte) 0x2E))) {
            return false;
        }
        short end = (short) (off + n);
        short i = off;
        while (i < end) {
            short c = (short) (b[i] & 0xFF);
            i++;
            if (c < 0x80) {
                if (c <= 0x1F || c == 0x2F || c == 0x5C || c == 0x7F) {
                    return false;
                }
                continue;
            }
            short more;
            short lo = 0x80;
            short hi = 0xBF;
            if (c >= 0xC2 && c <= 0xDF) {
                more = 1;
            } else if (c == 0xE0) {
                more = 2;
                lo = 0xA0;
            } else if (c == 0xED) {
                more = 2;
                hi = 0x9F;
            } else if (c >= 0xE1 && c <= 0xEF) {
                more = 2;
            } else if (c == 0xF0) {
                more = 3;
                lo = 0x90;
            } else if (c >= 0xF1 && c <= 0xF3) {
                more = 3;
            } else if (c == 0xF4) {
                more = 3;
                hi = 0x8F;
            } else {
                return false;
            }
            if ((short) (end - i) < more) {
                return false;
            }
            // The first continuation byte has the narrowed range, the others 80..BF.
            for (short k = 0; k < more; k++) {
                short d = (short) (b[i] & 0xFF);
                i++;
                if (d < lo || d > hi) {
                    return false;
                }
                lo = 0x80;
                hi = 0xBF;
            }
        }
        return true;
    }
}
