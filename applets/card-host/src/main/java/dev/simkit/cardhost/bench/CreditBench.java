package dev.simkit.cardhost.bench;

import dev.simkit.cardhost.AppletSpec;
import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.Hex;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * In-JVM throughput of the credit module through the same path the socket uses ({@link Card} →
 * jCardSim → {@code SimkitRuntime} → instrumented applet classes; only the socket is missing),
 * beside the 16-byte echo, plus the card host's start-up time to LISTENING in a separate process
 * ({@link StartupTimer}).
 *
 * <p>Usage: {@code CreditBench [seconds per figure, default 3] [--only NAME] [--no-startup]}.
 * Prints {@code name ops/s} lines on stdout (everything else, jCardSim's chatter included, on
 * stderr). Each figure is measured in a fresh JVM ({@code --only NAME} in a child process),
 * because in one JVM a figure depends on what ran before (seen: GET STATUS 2.7 M/s alone, 0.66 M/s
 * right after the grant rounds; echo 3.2 M/s alone, 0.7–1.1 M/s after the rest). The figures are
 * then printed again as {@code mixed-NAME}, measured in this one JVM after every measure has run
 * once — closer to a long-lived card host serving a mix of commands.
 * <ul>
 *   <li>{@code credit-get-status}: GET STATUS (49-byte copy out of persistent state);
 *   <li>{@code credit-initiate-reissue}: INITIATE RELOAD while the same request is pending (the
 *       stored 31-byte request again; no MAC, no write);
 *   <li>{@code credit-debit}: DEBIT 1 (wide arithmetic, a 4-byte write in a transaction);
 *   <li>{@code credit-grant-round}: one full reload round = INITIATE RELOAD (request MAC'd with
 *       K_req, stored in a transaction) + APPLY GRANT (grant tag verified, ack MAC'd, 57-write
 *       transaction), aes-cmac, grants precomputed; ops = rounds, each 2 APDUs;
 *   <li>{@code echo16}: EchoApplet, 16 data bytes, Le 16, for comparison with the socket path.
 * </ul>
 */
public final class CreditBench {
    static final List<String> NAMES = List.of(
            "credit-get-status", "credit-initiate-reissue", "credit-debit", "credit-grant-round", "echo16");

    private CreditBench() {
    }

    public static void main(String[] args) throws Exception {
        PrintStream out = System.out;
        System.setOut(System.err);
        List<String> a = Arrays.asList(args);
        double seconds = args.length > 0 && !args[0].startsWith("--") ? Double.parseDouble(args[0]) : 3.0;
        int only = a.indexOf("--only");
        if (only >= 0) {
            out.printf("%s %.0f%n", a.get(only + 1), measure(a.get(only + 1), seconds));
            return;
        }
        for (String name : NAMES) {
            out.println(StartupTimer.child(CreditBench.class, String.valueOf(seconds), "--only", name));
            out.flush();
        }
        for (String name : NAMES) {
            measure(name, seconds / 3);
        }
        for (String name : NAMES) {
            out.printf("mixed-%s %.0f%n", name, measure(name, seconds));
        }
        if (!a.contains("--no-startup")) {
            long[] ms = StartupTimer.measure(5);
            out.printf("card-host-startup-to-listening-ms median %d min %d max %d (n=%d)%n",
                    ms[ms.length / 2], ms[0], ms[ms.length - 1], ms.length);
        }
        out.flush();
    }

    static double measure(String name, double seconds) {
        switch (name) {
            case "credit-get-status":
                return getStatus(seconds);
            case "credit-initiate-reissue":
                return initiateReissue(seconds);
            case "credit-debit":
                return debit(seconds);
            case "credit-grant-round":
                return grantRounds(seconds);
            case "echo16":
                return echo(seconds);
            default:
                throw new IllegalArgumentException("unknown measure " + name + "; one of " + NAMES);
        }
    }

    public static double getStatus(double seconds) {
        Card card = CreditCards.operational(CreditCards.MAX_I32, 1000);
        byte[] apdu = Hex.parse("8010000031");
        return rate(seconds, Integer.MAX_VALUE, i -> CreditCards.ok(card, apdu).length == 49);
    }

    public static double initiateReissue(double seconds) {
        Card card = CreditCards.operational(CreditCards.MAX_I32, 1000);
        byte[] apdu = CreditCards.initiate(1);
        byte[] request = CreditCards.ok(card, apdu);
        return rate(seconds, Integer.MAX_VALUE, i -> Arrays.equals(request, CreditCards.ok(card, apdu)));
    }

    public static double debit(double seconds) {
        Card card = CreditCards.operational(CreditCards.MAX_I32, CreditCards.MAX_I32);
        byte[] apdu = Hex.parse("803000000400000001 04".replace(" ", ""));
        return rate(seconds, Integer.MAX_VALUE, i -> CreditCards.ok(card, apdu).length == 4);
    }

    /** Rounds per second; the grants for {@code maxRounds} rounds are computed before timing. */
    public static double grantRounds(double seconds) {
        int maxRounds = (int) Math.min(2_000_000, 60_000 * (seconds * 1.5 + 1));
        Card card = CreditCards.operational(CreditCards.MAX_I32, 0);
        byte[] initiate = CreditCards.initiate(1);
        // Round i: N = i, R = 1, B = i (each round credits 1).
        byte[][] requests = new byte[maxRounds][];
        byte[][] applies = new byte[maxRounds][];
        for (int i = 0; i < maxRounds; i++) {
            requests[i] = CreditCards.request(i, 1, i);
            applies[i] = CreditCards.applyGrant(CreditCards.grant(requests[i], 1));
        }
        return rate(seconds, maxRounds, i -> Arrays.equals(requests[i], CreditCards.ok(card, initiate))
                && CreditCards.ok(card, applies[i]).length == 40);
    }

    public static double echo(double seconds) {
        byte[] aid = Hex.parse("F0534D4B4954E1");
        Card card = new Card(0, true, new java.net.URL[0], CreditBench.class.getClassLoader());
        card.install(new AppletSpec(aid, "dev.simkit.cardhost.testapplets.EchoApplet", new byte[0]));
        CreditCards.ok(card, CreditCards.cat(Hex.parse("00A40400"), new byte[] {(byte) aid.length}, aid));
        byte[] apdu = CreditCards.cat(Hex.parse("0001000010"), new byte[16], new byte[] {0x10});
        return rate(seconds, Integer.MAX_VALUE, i -> CreditCards.ok(card, apdu).length == 16);
    }

    /**
     * Runs {@code op(i)} for i = 0, 1, … : a warm-up of a third of {@code seconds}, then timed for
     * {@code seconds} (or until {@code maxOps} ops in all). Returns ops per second of the timed
     * part. {@code op} answers false when a response is wrong.
     */
    static double rate(double seconds, int maxOps, IntPredicate op) {
        long warmEnd = System.nanoTime() + (long) (seconds / 3 * 1e9);
        int i = 0;
        while (System.nanoTime() < warmEnd && i < maxOps / 4) {
            check(op.test(i++));
        }
        long t0 = System.nanoTime();
        long end = t0 + (long) (seconds * 1e9);
        int first = i;
        long now = t0;
        while (now < end && i < maxOps) {
            int batch = Math.min(i + 256, maxOps);
            while (i < batch) {
                check(op.test(i++));
            }
            now = System.nanoTime();
        }
        return (i - first) / ((now - t0) / 1e9);
    }

    private static void check(boolean ok) {
        if (!ok) {
            throw new IllegalStateException("unexpected response");
        }
    }
}
