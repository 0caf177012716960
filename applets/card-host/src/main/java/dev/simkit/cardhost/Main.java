package dev.simkit.cardhost;

import dev.simkit.cardhost.server.CardServer;
import dev.simkit.cardhost.vpcd.VpcdFrontEnd;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Entry point: builds the cards, serves them on 127.0.0.1, and announces the port.
 *
 * <p>The port is announced as the line {@code SIMKIT-CARD-HOST LISTENING <port>} on stderr and,
 * with {@code --port-file}, written atomically (temp file + rename) so that a parent polling the
 * file never reads a half-written number. Exit codes: 0 after SHUTDOWN, 1 on startup failure,
 * 2 on bad arguments.
 */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) {
        // jCardSim (and applets) may print to stdout; send it to stderr so stdout stays empty
        // and nobody is tempted to parse it.
        System.setOut(System.err);
        HostOptions opts;
        try {
            opts = HostOptions.parse(args);
        } catch (IllegalArgumentException e) {
            if (!e.getMessage().isEmpty()) {
                System.err.println("simkit-card-host: " + e.getMessage());
            }
            System.err.print(HostOptions.USAGE);
            System.exit(e.getMessage().isEmpty() ? 0 : 2);
            return;
        }
        Log.setQuiet(opts.quiet());
        try {
            run(opts);
            System.exit(0);
        } catch (Exception e) {
            Log.warn("fatal: %s", e);
            System.exit(1);
        }
    }

    static void run(HostOptions opts) throws IOException, InterruptedException {
        CardHost host = CardHost.create(opts.cards(), opts.copies(), opts.rollback(), opts.appletJarUrls(),
                opts.appletPackages(), opts.fastDigest());
        Log.info("%d card(s), rollback %s, digests %s", host.size(), opts.rollback() ? "on" : "off",
                opts.fastDigest() ? "JDK" : "jCardSim");
        if (!opts.quiet()) {
            System.err.print(host.describe());
        }
        try (CardServer server = CardServer.start(host, opts.port());
                VpcdFrontEnd vpcd = opts.vpcd() == null ? null : new VpcdFrontEnd(opts.vpcd(), host.card(0))) {
            if (vpcd != null) {
                vpcd.start();
                Log.info("serving card 0 to vpcd at %s:%d", opts.vpcd().getHostString(), opts.vpcd().getPort());
            }
            int port = server.port();
            if (opts.portFile() != null) {
                writePortFile(opts.portFile(), port);
            }
            System.err.println("SIMKIT-CARD-HOST LISTENING " + port);
            System.err.flush();
            server.awaitShutdown();
            Log.info("shutdown");
        }
    }

    static void writePortFile(Path file, int port) throws IOException {
        Path abs = file.toAbsolutePath();
        Path tmp = abs.resolveSibling(abs.getFileName() + ".tmp");
        Files.writeString(tmp, port + "\n", StandardCharsets.US_ASCII);
        Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
