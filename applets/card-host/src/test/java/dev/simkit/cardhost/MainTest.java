package dev.simkit.cardhost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The whole host in-process: --card parsing, --port-file, serving, SHUTDOWN. */
class MainTest {
    @Test
    void servesUntilShutdownAndWritesThePortFile(@TempDir Path dir) throws Exception {
        Path portFile = dir.resolve("port");
        HostOptions opts = HostOptions.parse(new String[] {
            "--port", "0", "--port-file", portFile.toString(), "--quiet", "--cards", "2",
            "--card", "aid=F0534D4B4954E1,class=" + TestCards.ECHO});
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread host = new Thread(() -> {
            try {
                Main.run(opts);
            } catch (Throwable t) {
                failure.set(t);
            }
        });
        host.start();
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!Files.exists(portFile) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        int port = Integer.parseInt(Files.readString(portFile).trim());
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
            s.setSoTimeout(10_000);
            OutputStream out = s.getOutputStream();
            DataInputStream in = new DataInputStream(s.getInputStream());
            out.write(new byte[] {0, 0, 0, 2, 0x08, 0}); // LIST_CARDS
            int len = in.readInt();
            assertEquals(0, in.readUnsignedByte());
            byte[] text = new byte[len - 1];
            in.readFully(text);
            assertEquals("0 on on F0534D4B4954E1=" + TestCards.ECHO + "\n1 on on F0534D4B4954E1=" + TestCards.ECHO + "\n",
                    new String(text, java.nio.charset.StandardCharsets.US_ASCII));
            out.write(new byte[] {0, 0, 0, 2, 0x0A, 0}); // SHUTDOWN
            assertEquals(1, in.readInt());
            assertEquals(0, in.readUnsignedByte());
        }
        host.join(10_000);
        assertTrue(!host.isAlive(), "Main.run returned after SHUTDOWN");
        assertEquals(null, failure.get());
    }
}
