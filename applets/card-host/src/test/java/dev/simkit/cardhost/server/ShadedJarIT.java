package dev.simkit.cardhost.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.simkit.cardhost.Hex;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The shaded jar as the Rust host starts it: {@code java -jar simkit-card-host.jar --port 0 --card
 * aid=…,class=dev.simkit.credit.CreditModule}, in its own process. Proves the jar carries the
 * credit module and serves it (LIST_CARDS, SELECT, GET STATUS) until SHUTDOWN. Run by failsafe
 * after {@code package}.
 */
class ShadedJarIT {
    static final String CREDIT = "aid=F053494D4B49540101,class=dev.simkit.credit.CreditModule";

    @Test
    void servesTheCreditModuleFromTheShadedJar() throws Exception {
        Path jar = Path.of(System.getProperty("simkit.cardHostJar", "target/simkit-card-host.jar"));
        assertTrue(Files.isRegularFile(jar), "shaded jar " + jar + " (run `mvn verify`, not `mvn test`)");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process proc = new ProcessBuilder(List.of(java.toString(), "-jar", jar.toString(), "--port", "0",
                "--quiet", "--card", CREDIT)).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            BufferedReader err = new BufferedReader(new InputStreamReader(proc.getErrorStream(), StandardCharsets.UTF_8));
            String line = CompletableFuture.supplyAsync(() -> readUntilListening(err)).get(30, TimeUnit.SECONDS);
            int port = Integer.parseInt(line.substring("SIMKIT-CARD-HOST LISTENING ".length()).trim());
            try (FrameClient c = new FrameClient(port)) {
                FrameClient.Reply list = c.call(Protocol.LIST_CARDS, 0);
                assertEquals(Protocol.OK, list.status());
                assertEquals("0 on on F053494D4B49540101=dev.simkit.credit.CreditModule\n", list.text());

                FrameClient.Reply select = c.call(Protocol.TRANSMIT, 0, Hex.parse("00A4040009F053494D4B49540101"));
                assertEquals(Protocol.OK, select.status());
                assertEquals("9000", Hex.of(select.payload()));

                FrameClient.Reply status = c.call(Protocol.TRANSMIT, 0, Hex.parse("8010000031"));
                assertEquals(Protocol.OK, status.status());
                assertEquals(49 + 2, status.payload().length);
                assertEquals(1, status.payload()[0], "lifecycle: personalisation");
                assertTrue(Hex.of(status.payload()).endsWith("9000"));

                assertEquals(Protocol.OK, c.call(Protocol.SHUTDOWN, 0).status());
            }
            assertTrue(proc.waitFor(10, TimeUnit.SECONDS), "exits after SHUTDOWN");
            assertEquals(0, proc.exitValue());
        } finally {
            proc.destroyForcibly();
        }
    }

    static final String BACKUP = "aid=F053494D4B49540201,class=dev.simkit.backup.BackupStore,params=0010000000800503";

    /** The backup store (1 MiB, 128 records) as the Rust host starts it, extended APDUs included. */
    @Test
    void servesTheBackupStoreFromTheShadedJar() throws Exception {
        Path jar = Path.of(System.getProperty("simkit.cardHostJar", "target/simkit-card-host.jar"));
        assertTrue(Files.isRegularFile(jar), "shaded jar " + jar + " (run `mvn verify`, not `mvn test`)");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process proc = new ProcessBuilder(List.of(java.toString(), "-jar", jar.toString(), "--port", "0",
                "--quiet", "--card", BACKUP)).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            BufferedReader err = new BufferedReader(new InputStreamReader(proc.getErrorStream(), StandardCharsets.UTF_8));
            String line = CompletableFuture.supplyAsync(() -> readUntilListening(err)).get(30, TimeUnit.SECONDS);
            int port = Integer.parseInt(line.substring("SIMKIT-CARD-HOST LISTENING ".length()).trim());
            try (FrameClient c = new FrameClient(port)) {
                assertEquals("9000", transmit(c, "00A4040009F053494D4B49540201"));
                assertEquals("0200000000001000000000000000100000000000807FFF7FFF0503009000",
                        transmit(c, "803000001C"), "fresh 1 MiB store");
                assertEquals("9000", transmit(c, "8032000106313233343536"));
                assertEquals("9000", transmit(c, "80320002083837363534333231"));
                assertEquals("9000", transmit(c, "0020000106313233343536"));
                assertEquals("9000", transmit(c, "0020000208" + "3837363534333231"));
                assertEquals("9000", transmit(c, "80360000"));
                // One 1000-byte record of zeros in one extended WRITE DATA, read back extended.
                String sha = "541B3E9DAA09B20BF85FA273E5CBD3E80185AA4EC298E765DB87742B70138A53";
                assertEquals("9000", transmit(c, "8038000027030161000003E8" + sha));
                assertEquals("9000", transmit(c, "803A00000003EC" + "00000000" + "00".repeat(1000)));
                assertEquals("9000", transmit(c, "803C0000"));
                assertEquals("000000019000", transmit(c, "8040000004"));
                String read = transmit(c, "8044000000000703016100000000" + "03E8");
                assertEquals("00".repeat(1000) + "9000", read);
                assertEquals(Protocol.OK, c.call(Protocol.SHUTDOWN, 0).status());
            }
            assertTrue(proc.waitFor(10, TimeUnit.SECONDS), "exits after SHUTDOWN");
        } finally {
            proc.destroyForcibly();
        }
    }

    private static String transmit(FrameClient c, String apdu) throws Exception {
        FrameClient.Reply r = c.call(Protocol.TRANSMIT, 0, Hex.parse(apdu));
        assertEquals(Protocol.OK, r.status(), apdu);
        return Hex.of(r.payload());
    }

    private static String readUntilListening(BufferedReader err) {
        try {
            for (String l; (l = err.readLine()) != null;) {
                if (l.startsWith("SIMKIT-CARD-HOST LISTENING ")) {
                    return l;
                }
            }
            throw new IllegalStateException("card host exited without LISTENING");
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
