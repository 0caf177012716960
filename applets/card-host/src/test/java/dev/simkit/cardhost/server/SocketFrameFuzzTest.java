package dev.simkit.cardhost.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.simkit.cardhost.AppletSpec;
import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.CardHost;
import dev.simkit.cardhost.Hex;
import dev.simkit.cardhost.RandomApdus;
import dev.simkit.cardhost.TestCards;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Fuzzes the card host's socket frame reader ({@link Connection#run}) with arbitrary byte
 * streams from a client. Properties, for every input: {@code run} returns (EOF, a framing error
 * or SHUTDOWN) and never throws; every response is a whole frame {@code len:u32 ‖ status ‖
 * payload} with len ≥ 1 and a known status; and afterwards a new connection reaches the card,
 * which answers a SELECT and an echo.
 *
 * <p>In a normal build the {@code @FuzzTest} replays its seeds and {@link #randomFrameStreams}
 * drives 300 random streams (a fixed seed). Coverage-guided run (one target per JVM):
 * {@code JAZZER_FUZZ=1 mvn -o -pl card-host surefire:test -Dtest=SocketFrameFuzzTest#socketFrames}.
 */
class SocketFrameFuzzTest {
    private static final byte[] SELECT_ECHO = TestCards.select(TestCards.ECHO_AID);
    private static CardHost host;
    private static int inputs;

    /** Two cards for many inputs; rebuilt every 500 inputs (INSTALL can grow a card). */
    private static synchronized CardHost host() {
        if (host == null || ++inputs % 500 == 0) {
            List<AppletSpec> spec = new ArrayList<>(List.of(
                    new AppletSpec(Hex.parse("F053494D4B49540101"), "dev.simkit.credit.CreditModule", new byte[0]),
                    new AppletSpec(Hex.parse("F053494D4B49540201"), "dev.simkit.backup.BackupStore", new byte[0])));
            spec.addAll(CardHost.DEFAULT_CARD);
            List<Card> cards = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                Card c = TestCards.newCard(true);
                spec.forEach(c::install);
                cards.add(c);
            }
            host = new CardHost(cards);
        }
        return host;
    }

    static void check(byte[] stream) throws IOException {
        CardHost h = host();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        new Connection(new ByteArrayInputStream(stream), out, () -> { }, h, () -> { }).run();
        for (int status : statuses(out.toByteArray())) {
            assertTrue(status >= Protocol.OK && status <= Protocol.POWERED_OFF, "unknown status " + status);
        }
        // The host still serves card 0 on a new connection.
        h.card(0).armTear(0);
        out.reset();
        byte[] probe = concat(request(Protocol.POWER_ON, new byte[0]), request(Protocol.TRANSMIT, SELECT_ECHO),
                request(Protocol.TRANSMIT, Hex.parse("80010000020102")));
        new Connection(new ByteArrayInputStream(probe), out, () -> { }, h, () -> { }).run();
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(out.toByteArray()));
        byte[][] bodies = new byte[3][];
        for (int i = 0; i < 3; i++) {
            bodies[i] = new byte[in.readInt()];
            in.readFully(bodies[i]);
            assertEquals(Protocol.OK, bodies[i][0], "status of probe " + i);
        }
        assertEquals("009000", Hex.of(bodies[1]));
        assertEquals("0001029000", Hex.of(bodies[2]));
    }

    @FuzzTest(maxDuration = "10m")
    void socketFrames(byte[] data) throws IOException {
        check(data);
    }

    @Test
    void randomFrameStreams() throws IOException {
        Random rnd = new Random(0x50CC);
        for (int i = 0; i < 300; i++) {
            check(randomStream(rnd));
        }
    }

    /** A few requests with random opcodes, card indexes and payloads; sometimes a bad length. */
    static byte[] randomStream(Random rnd) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int n = 1 + rnd.nextInt(6);
        for (int i = 0; i < n; i++) {
            int opcode = rnd.nextInt(5) == 0 ? rnd.nextInt(256) : 1 + rnd.nextInt(Protocol.FACTORY_RESET);
            if (opcode == Protocol.SHUTDOWN && rnd.nextBoolean()) {
                opcode = Protocol.TRANSMIT;
            }
            byte[] payload = switch (opcode) {
                case Protocol.TRANSMIT -> rnd.nextInt(4) == 0 ? SELECT_ECHO : RandomApdus.shape(rnd);
                case Protocol.TEAR_AT -> ByteBuffer.allocate(4).putInt(rnd.nextInt(4) == 0 ? rnd.nextInt() : rnd.nextInt(8)).array();
                default -> {
                    byte[] p = new byte[rnd.nextInt(3) == 0 ? rnd.nextInt(40) : 0];
                    rnd.nextBytes(p);
                    yield p;
                }
            };
            int card = rnd.nextInt(6) == 0 ? rnd.nextInt(256) : rnd.nextInt(2);
            byte[] body = new byte[2 + payload.length];
            body[0] = (byte) opcode;
            body[1] = (byte) card;
            System.arraycopy(payload, 0, body, 2, payload.length);
            int len = body.length;
            switch (rnd.nextInt(12)) {
                case 0 -> len = rnd.nextInt(2); // too short
                case 1 -> len = rnd.nextInt(); // huge or negative
                default -> { }
            }
            b.writeBytes(ByteBuffer.allocate(4).putInt(len).array());
            b.write(body, 0, Math.max(0, Math.min(len, body.length)));
        }
        byte[] all = b.toByteArray();
        if (rnd.nextInt(8) == 0) {
            return java.util.Arrays.copyOf(all, rnd.nextInt(all.length + 1));
        }
        return all;
    }

    private static byte[] request(int opcode, byte[] payload) {
        return ByteBuffer.allocate(6 + payload.length).putInt(2 + payload.length).put((byte) opcode).put((byte) 0)
                .put(payload).array();
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            b.writeBytes(p);
        }
        return b.toByteArray();
    }

    /** The status byte of each response frame; fails on a partial or empty frame. */
    static List<Integer> statuses(byte[] out) throws IOException {
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(out));
        List<Integer> s = new ArrayList<>();
        while (in.available() > 0) {
            assertTrue(in.available() >= 4, "partial length field in the output");
            int len = in.readInt();
            assertTrue(len >= 1 && len <= in.available(), "bad response length " + len);
            byte[] body = new byte[len];
            in.readFully(body);
            s.add(body[0] & 0xFF);
        }
        return s;
    }
}
