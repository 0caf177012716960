package dev.simkit.cardhost;

import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.Random;

/** Random command APDU shapes for the property tests and frame drivers. */
public final class RandomApdus {
    private RandomApdus() {
    }

    /** A command of a random ISO case, often with one length field or byte count off. */
    public static byte[] shape(Random rnd) {
        int[] cla = {0x00, 0x80, 0x90, 0x10, 0x01, 0x84, 0xFF, rnd.nextInt(256)};
        byte[] head = {(byte) cla[rnd.nextInt(cla.length)], (byte) rnd.nextInt(256), (byte) rnd.nextInt(4),
                (byte) rnd.nextInt(4)};
        if (rnd.nextInt(8) == 0) {
            head[1] = (byte) 0xA4;
            head[2] = 0x04;
        }
        boolean extended = rnd.nextInt(3) == 0;
        int maxData = extended ? 1200 : 255;
        int nc = rnd.nextInt(4) == 0 ? 0 : pick(rnd, maxData);
        boolean le = rnd.nextBoolean();
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes(head);
        if (extended) {
            if (nc > 0 || le) {
                b.write(0);
            }
            if (nc > 0) {
                b.write(nc >> 8);
                b.write(nc);
            }
        } else if (nc > 0) {
            b.write(nc);
        }
        int sent = nc;
        if (rnd.nextInt(6) == 0) {
            sent = Math.max(0, nc + rnd.nextInt(5) - 2); // Lc disagrees with the bytes
        }
        for (int k = 0; k < sent; k++) {
            b.write(rnd.nextInt(256));
        }
        if (le) {
            int ne = rnd.nextInt(5) == 0 ? 0 : rnd.nextInt(extended ? 65536 : 256);
            if (extended) {
                b.write(ne >> 8);
            }
            b.write(ne);
        }
        if (rnd.nextInt(10) == 0 && b.size() > 4) {
            byte[] all = b.toByteArray();
            return Arrays.copyOf(all, 4 + rnd.nextInt(all.length - 4)); // truncated anywhere
        }
        return b.toByteArray();
    }

    /** Lengths with the edges over-represented: 1, 2, 254, 255, 256, max. */
    private static int pick(Random rnd, int max) {
        int[] edges = {1, 2, 254, 255, Math.min(256, max), max};
        return rnd.nextInt(3) == 0 ? edges[rnd.nextInt(edges.length)] : 1 + rnd.nextInt(max);
    }
}
