package dev.simkit.cardhost.vpcd;

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
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Fuzzes the vpcd front-end's frame reader ({@link VpcdFrontEnd#serve}) with arbitrary byte
 * streams "from vpcd". Properties, for every input: {@code serve} ends normally or with
 * {@link EOFException} (the stream ended inside a frame) and never throws anything else; every
 * reply is a whole frame of at least 2 bytes; and afterwards the card, powered on again,
 * answers a SELECT and an echo on a new stream — no input loses the card.
 *
 * <p>In a normal build the {@code @FuzzTest} replays its seeds and {@link #randomFrameStreams}
 * drives 1,500 random streams (a fixed seed). Coverage-guided run (one target per JVM):
 * {@code JAZZER_FUZZ=1 mvn -o -pl card-host surefire:test -Dtest=VpcdFrameFuzzTest#vpcdFrames}
 * (runs for its {@code maxDuration}).
 */
class VpcdFrameFuzzTest {
    private static final byte[] SELECT_ECHO = TestCards.select(TestCards.ECHO_AID);
    private static final byte[] ECHO = Hex.parse("80010000020102");
    private static Card card;
    private static VpcdFrontEnd frontEnd;
    private static int inputs;

    /** One card for many inputs (building one costs ~0.1 s); rebuilt every 500 inputs. */
    private static synchronized VpcdFrontEnd frontEnd() {
        if (frontEnd == null || ++inputs % 500 == 0) {
            // tools/pcsc-sim.sh's card: both applets, echo and counter.
            List<AppletSpec> spec = new ArrayList<>(List.of(
                    new AppletSpec(Hex.parse("F053494D4B49540101"), "dev.simkit.credit.CreditModule", new byte[0]),
                    new AppletSpec(Hex.parse("F053494D4B49540201"), "dev.simkit.backup.BackupStore", new byte[0])));
            spec.addAll(CardHost.DEFAULT_CARD);
            card = TestCards.newCard(true);
            spec.forEach(card::install);
            frontEnd = new VpcdFrontEnd(InetSocketAddress.createUnresolved("127.0.0.1", 1), card);
        }
        return frontEnd;
    }

    static void check(byte[] stream) throws IOException {
        VpcdFrontEnd fe = frontEnd();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            fe.serve(new ByteArrayInputStream(stream), out, () -> { });
        } catch (EOFException e) {
            // The stream ended inside a frame: the peer is gone. Allowed.
        }
        for (byte[] reply : frames(out.toByteArray())) {
            assertTrue(reply.length >= 2, "reply shorter than a status word");
        }
        // The card is still there: power it on (the input may have cut it), disarm any tear.
        card.armTear(0);
        out.reset();
        byte[] probe = concat(frame(new byte[] {1}), frame(SELECT_ECHO), frame(ECHO));
        assertEquals(3, fe.serve(new ByteArrayInputStream(probe), out, () -> { }));
        List<byte[]> replies = frames(out.toByteArray());
        assertEquals(2, replies.size());
        assertEquals("9000", TestCards.sw(replies.get(0)));
        assertEquals("01029000", Hex.of(replies.get(1)));
    }

    @FuzzTest(maxDuration = "10m")
    void vpcdFrames(byte[] data) throws IOException {
        check(data);
    }

    @Test
    void randomFrameStreams() throws IOException {
        Random rnd = new Random(0xF0CD);
        for (int i = 0; i < 1500; i++) {
            check(randomStream(rnd));
        }
    }

    /** A few frames: control codes, 0-3 byte frames, APDUs of random shape, pseudo-APDUs. */
    static byte[] randomStream(Random rnd) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int n = 1 + rnd.nextInt(6);
        for (int i = 0; i < n; i++) {
            byte[] body = switch (rnd.nextInt(6)) {
                case 0 -> new byte[] {(byte) (rnd.nextInt(3) == 0 ? rnd.nextInt(256) : new int[] {0, 1, 2, 4}[rnd.nextInt(4)])};
                case 1 -> randomBytes(rnd, rnd.nextInt(4));
                case 2 -> {
                    byte[] r = RandomApdus.shape(rnd);
                    r[0] = (byte) 0xFF;
                    r[1] = (byte) (0xE1 + rnd.nextInt(4));
                    yield r;
                }
                case 3 -> SELECT_ECHO;
                default -> RandomApdus.shape(rnd);
            };
            b.writeBytes(frame(body));
        }
        byte[] all = b.toByteArray();
        if (rnd.nextInt(8) == 0) {
            return java.util.Arrays.copyOf(all, rnd.nextInt(all.length + 1)); // cut anywhere
        }
        return all;
    }

    private static byte[] randomBytes(Random rnd, int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    static byte[] frame(byte[] body) {
        byte[] f = new byte[2 + body.length];
        f[0] = (byte) (body.length >> 8);
        f[1] = (byte) body.length;
        System.arraycopy(body, 0, f, 2, body.length);
        return f;
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            b.writeBytes(p);
        }
        return b.toByteArray();
    }

    /** Splits the front-end's output into reply bodies; fails on a partial frame. */
    static List<byte[]> frames(byte[] out) throws IOException {
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(out));
        List<byte[]> replies = new ArrayList<>();
        while (in.available() > 0) {
            assertTrue(in.available() >= 2, "partial length field in the output");
            byte[] body = new byte[in.readUnsignedShort()];
            assertTrue(in.available() >= body.length, "partial frame in the output");
            in.readFully(body);
            replies.add(body);
        }
        return replies;
    }
}
