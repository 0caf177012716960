package dev.simkit.cardhost;

import dev.simkit.cardhost.runtime.DigestFactory;
import dev.simkit.cardhost.vpcd.VpcdFrontEnd;
import java.io.File;
import java.net.InetSocketAddress;
import java.net.MalformedURLException;
import java.net.URL;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Command-line options of the card host. */
public record HostOptions(
        int port,
        Path portFile,
        List<List<AppletSpec>> cards,
        int copies,
        List<Path> appletJars,
        List<String> appletPackages,
        boolean rollback,
        boolean quiet,
        InetSocketAddress vpcd,
        boolean fastDigest) {

    public static final String USAGE = """
            usage: java -jar simkit-card-host.jar [options]
              --port N            TCP port on 127.0.0.1 (0 = ephemeral, the default)
              --port-file PATH    also write the chosen port (decimal, newline) to PATH
              --card SPEC         add a card; SPEC = aid=HEX,class=NAME[,params=HEX][;aid=...]  (repeatable)
              --cards N           create the --card list N times (N identical cards for parallel tests)
              --applet-jar PATH   extra jar to load applet classes from (repeatable)
              --applet-package P  also rewrite package P (helper code shared by applets; repeatable)
              --no-rollback       plain jCardSim transactions: nothing rolls back, Util.arrayCopy not atomic
              --jcardsim-digest   give applets jCardSim's own (BouncyCastle, pure Java) SHA digests instead
                                  of the default JDK-backed ones: same results, several times
                                  slower; for comparison (in-JVM tools: -Dsimkit.fastDigest=false)
              --quiet             log only warnings (the LISTENING line is always printed)
              --vpcd HOST:PORT    also serve card 0 to pcscd's vpcd reader at HOST:PORT (reconnects
                                  when vpcd goes away; vpcd's default reader 0 is 127.0.0.1:35963)
            Without --card, each card holds the test applets EchoApplet (F0534D4B4954E1) and
            CounterApplet (F0534D4B4954E2).
            """;

    /** Parses arguments; throws IllegalArgumentException with a user-facing message. */
    public static HostOptions parse(String[] args) {
        int port = 0;
        Path portFile = null;
        List<List<AppletSpec>> cards = new ArrayList<>();
        int copies = 1;
        List<Path> jars = new ArrayList<>();
        List<String> packages = new ArrayList<>();
        boolean rollback = true;
        boolean quiet = false;
        InetSocketAddress vpcd = null;
        boolean fastDigest = DigestFactory.enabledByDefault();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--port" -> port = intArg(a, value(args, ++i, a), 0, 65535);
                case "--port-file" -> portFile = Path.of(value(args, ++i, a));
                case "--card" -> cards.add(AppletSpec.parseCard(value(args, ++i, a)));
                case "--cards" -> copies = intArg(a, value(args, ++i, a), 1, 256);
                case "--applet-jar" -> jars.add(Path.of(value(args, ++i, a)));
                case "--applet-package" -> packages.add(value(args, ++i, a));
                case "--no-rollback" -> rollback = false;
                case "--quiet" -> quiet = true;
                case "--jcardsim-digest" -> fastDigest = false;
                case "--vpcd" -> vpcd = VpcdFrontEnd.parseAddress(value(args, ++i, a));
                case "--help", "-h" -> throw new IllegalArgumentException("");
                default -> throw new IllegalArgumentException("unknown option " + a);
            }
        }
        if (cards.isEmpty()) {
            cards.add(CardHost.DEFAULT_CARD);
        }
        if (cards.size() * copies > 256) {
            throw new IllegalArgumentException("at most 256 cards");
        }
        return new HostOptions(port, portFile, List.copyOf(cards), copies, List.copyOf(jars), List.copyOf(packages), rollback, quiet,
                vpcd, fastDigest);
    }

    public URL[] appletJarUrls() {
        List<URL> urls = new ArrayList<>();
        for (Path p : appletJars) {
            File f = p.toFile();
            if (!f.isFile()) {
                throw new IllegalArgumentException("--applet-jar: no such file " + p);
            }
            try {
                urls.add(f.toURI().toURL());
            } catch (MalformedURLException e) {
                throw new IllegalArgumentException("--applet-jar: " + e.getMessage());
            }
        }
        return urls.toArray(new URL[0]);
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return args[i];
    }

    private static int intArg(String option, String v, int min, int max) {
        try {
            int n = Integer.parseInt(v);
            if (n < min || n > max) {
                throw new IllegalArgumentException(option + " must be " + min + ".." + max);
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " needs a number, got " + v);
        }
    }
}
