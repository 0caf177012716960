package dev.simkit.cardhost.bench;

import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Child JVMs for the benchmarks. Card host start-up time as a parent process sees it: from launching
 * {@code java -cp <this classpath> dev.simkit.cardhost.Main --port 0 --quiet --card <credit module>}
 * to reading {@code SIMKIT-CARD-HOST LISTENING} on its stderr; then SHUTDOWN over the socket.
 */
final class StartupTimer {
    static final String CREDIT_CARD = "aid=F053494D4B49540101,class=dev.simkit.credit.CreditModule";

    private StartupTimer() {
    }

    /** Milliseconds of {@code n} launches, sorted. */
    static long[] measure(int n) throws IOException, InterruptedException {
        long[] ms = new long[n];
        for (int i = 0; i < n; i++) {
            ms[i] = once();
        }
        Arrays.sort(ms);
        return ms;
    }

    /** {@code java -cp <this JVM's classpath> main args…}. */
    static List<String> java(String main, String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), main));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** Runs {@code main} in a child JVM (stderr inherited); answers its stdout, trimmed. */
    static String child(Class<?> main, String... args) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(java(main.getName(), args))
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (p.waitFor() != 0) {
            throw new IOException(main.getName() + " " + List.of(args) + " exited " + p.exitValue());
        }
        return out;
    }

    static long once() throws IOException, InterruptedException {
        List<String> cmd = java("dev.simkit.cardhost.Main", "--port", "0", "--quiet", "--card", CREDIT_CARD);
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            BufferedReader err = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8));
            String line;
            while ((line = err.readLine()) != null && !line.startsWith("SIMKIT-CARD-HOST LISTENING ")) {
                System.err.println(line);
            }
            long elapsed = (System.nanoTime() - t0) / 1_000_000;
            if (line == null) {
                throw new IOException("card host exited without LISTENING");
            }
            shutdown(Integer.parseInt(line.substring(27).trim()));
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                throw new IOException("card host did not exit after SHUTDOWN");
            }
            return elapsed;
        } finally {
            p.destroyForcibly();
        }
    }

    private static void shutdown(int port) throws IOException {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
            OutputStream out = s.getOutputStream();
            out.write(new byte[] {0, 0, 0, 2, 0x0A, 0});
            out.flush();
            DataInputStream in = new DataInputStream(s.getInputStream());
            in.readFully(new byte[in.readInt()]);
        }
    }
}
