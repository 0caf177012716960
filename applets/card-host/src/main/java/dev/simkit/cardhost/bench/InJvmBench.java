package dev.simkit.cardhost.bench;

import dev.simkit.cardhost.AppletSpec;
import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.Hex;

/**
 * In-process echo throughput: N echo APDUs straight into one card (no socket), to compare later
 * with the socket path. Usage: {@code InJvmBench [N] [dataLength]} (defaults 200000, 16).
 * Prints one line {@code in-jvm echo: N APDUs, L data bytes, T s, R APDU/s} to stdout.
 */
public final class InJvmBench {
    private InJvmBench() {
    }

    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 200_000;
        int dataLength = args.length > 1 ? Integer.parseInt(args[1]) : 16;
        double rate = run(n, dataLength);
        System.out.printf("in-jvm echo: %d APDUs, %d data bytes, %.0f APDU/s%n", n, dataLength, rate);
    }

    /** Runs the benchmark and returns APDUs per second (after a warm-up of n/10 APDUs). */
    public static double run(int n, int dataLength) {
        byte[] aid = Hex.parse("F0534D4B4954E1");
        Card card = new Card(0, true, new java.net.URL[0], InJvmBench.class.getClassLoader());
        card.install(new AppletSpec(aid, "dev.simkit.cardhost.testapplets.EchoApplet", new byte[0]));
        byte[] select = new byte[5 + aid.length];
        select[1] = (byte) 0xA4;
        select[2] = 0x04;
        select[4] = (byte) aid.length;
        System.arraycopy(aid, 0, select, 5, aid.length);
        check(card.transmit(select), 2);

        byte[] echo = new byte[5 + dataLength + 1];
        echo[1] = 0x01;
        echo[4] = (byte) dataLength;
        for (int i = 0; i < dataLength; i++) {
            echo[5 + i] = (byte) i;
        }
        for (int i = 0; i < Math.max(1, n / 10); i++) {
            check(card.transmit(echo), dataLength + 2);
        }
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            check(card.transmit(echo), dataLength + 2);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        return n / seconds;
    }

    private static void check(Card.Result r, int expectedLength) {
        byte[] resp = r.response();
        if (r.outcome() != Card.Outcome.OK || resp.length != expectedLength
                || resp[resp.length - 2] != (byte) 0x90 || resp[resp.length - 1] != 0) {
            throw new IllegalStateException("unexpected response " + r.outcome() + " " + Hex.of(resp));
        }
    }
}
