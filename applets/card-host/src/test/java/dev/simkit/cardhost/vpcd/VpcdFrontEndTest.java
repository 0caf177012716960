package dev.simkit.cardhost.vpcd;

import static dev.simkit.cardhost.TestCards.COUNTER_AID;
import static dev.simkit.cardhost.TestCards.ECHO_AID;
import static dev.simkit.cardhost.TestCards.cmd;
import static dev.simkit.cardhost.TestCards.select;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.Hex;
import dev.simkit.cardhost.TestCards;
import dev.simkit.cardhost.testapplets.CounterApplet;
import dev.simkit.cardhost.testapplets.EchoApplet;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The vpcd front-end against a fake vpcd: a server socket speaking vpcd's framing. */
class VpcdFrontEndTest {
    private ServerSocket fakeVpcd;
    private Card card;
    private VpcdFrontEnd frontEnd;

    @BeforeEach
    void start() throws IOException {
        fakeVpcd = new ServerSocket(0, 5, InetAddress.getLoopbackAddress());
        fakeVpcd.setSoTimeout(10_000); // a broken front-end fails the test instead of hanging it
        card = TestCards.newCard(true);
        card.install(new dev.simkit.cardhost.AppletSpec(ECHO_AID, TestCards.ECHO, new byte[0]));
        card.install(new dev.simkit.cardhost.AppletSpec(COUNTER_AID, TestCards.COUNTER, new byte[0]));
        frontEnd = new VpcdFrontEnd(
                InetSocketAddress.createUnresolved("127.0.0.1", fakeVpcd.getLocalPort()), card,
                Duration.ofMillis(10), Duration.ofMillis(100));
        frontEnd.start();
    }

    @AfterEach
    void stop() throws IOException {
        frontEnd.close();
        fakeVpcd.close();
    }

    /** One accepted connection from the front-end, seen from vpcd's side. */
    private static final class Peer implements AutoCloseable {
        final Socket socket;
        final DataInputStream in;
        final OutputStream out;

        Peer(Socket socket) throws IOException {
            this.socket = socket;
            socket.setSoTimeout(10_000);
            this.in = new DataInputStream(socket.getInputStream());
            this.out = socket.getOutputStream();
        }

        void send(byte... data) throws IOException {
            byte[] f = new byte[2 + data.length];
            f[0] = (byte) (data.length >> 8);
            f[1] = (byte) data.length;
            System.arraycopy(data, 0, f, 2, data.length);
            out.write(f);
            out.flush();
        }

        byte[] receive() throws IOException {
            int len = in.readUnsignedShort();
            byte[] b = new byte[len];
            in.readFully(b);
            return b;
        }

        byte[] call(byte... apdu) throws IOException {
            send(apdu);
            return receive();
        }

        /** True when the front-end closed the connection (EOF), false if it is still open. */
        boolean closedByPeer() throws IOException {
            try {
                return in.read() < 0;
            } catch (EOFException e) {
                return true;
            }
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }

    private Peer accept() throws IOException {
        return new Peer(fakeVpcd.accept());
    }

    private static String sw(byte[] r) {
        return TestCards.sw(r);
    }

    @Test
    void controlCodesAndApdus() throws IOException {
        try (Peer p = accept()) {
            byte[] atr = p.call((byte) 4);
            assertArrayEquals(card.atr(), atr);
            p.send((byte) 0); // power off: no answer
            p.send((byte) 4);
            assertArrayEquals(card.atr(), p.receive()); // ATR still known while off
            assertFalse(card.powered());
            // A command to a powered-off card: 6F00, and SIM_STATUS says why.
            assertEquals("6F00", Hex.of(p.call(select(ECHO_AID))));
            byte[] status = p.call(Hex.parse("FFE20000"));
            assertEquals(7, status.length);
            assertEquals("029000", Hex.of(Arrays.copyOfRange(status, 4, 7))); // flag: powered off
            p.send((byte) 1); // power on
            assertEquals("9000", sw(p.call(select(ECHO_AID))));
            byte[] r = p.call(cmd(EchoApplet.INS_ECHO, 0, 0, (byte) 1, (byte) 2));
            assertEquals("01029000", Hex.of(r));
            p.send((byte) 2); // reset: deselects
            assertEquals("6986", sw(p.call(cmd(EchoApplet.INS_ECHO, 0, 0, (byte) 1))));
            assertTrue(card.powered());
        }
    }

    @Test
    void extendedApduPassesThrough() throws IOException {
        try (Peer p = accept()) {
            assertEquals("9000", sw(p.call(select(ECHO_AID))));
            byte[] data = new byte[600];
            Arrays.fill(data, (byte) 0x5A);
            byte[] ext = new byte[7 + data.length + 2];
            ext[1] = EchoApplet.INS_ECHO;
            ext[5] = (byte) (data.length >> 8);
            ext[6] = (byte) data.length;
            System.arraycopy(data, 0, ext, 7, data.length);
            byte[] r = p.call(ext);
            assertEquals(data.length + 2, r.length);
            assertEquals("9000", sw(r));
        }
    }

    @Test
    void tearWriteCountAndFactoryReset() throws IOException {
        try (Peer p = accept()) {
            assertEquals("9000", sw(p.call(select(COUNTER_AID))));
            assertEquals("9000", sw(p.call(cmd(CounterApplet.INS_UPDATE, 0, 7))));
            byte[] status = p.call(Hex.parse("FFE2000000"));
            assertEquals("9000", sw(status));
            int writes = ((status[2] & 0xFF) << 8) | (status[3] & 0xFF);
            assertTrue(writes > 1, "UPDATE made " + writes + " writes");
            assertEquals(0, status[4]);
            byte[] before = p.call(cmd(CounterApplet.INS_GET_STATE, 0, 0));

            // Tear after the first write: the command answers 6F00, SIM_STATUS reports the tear
            // with k writes, and the state is unchanged (rolled back).
            assertEquals("9000", sw(p.call(Hex.parse("FFE100000400000001"))));
            assertEquals("6F00", Hex.of(p.call(cmd(CounterApplet.INS_UPDATE, 0, 9))));
            assertEquals("00000001019000", Hex.of(p.call(Hex.parse("FFE20000"))));
            assertEquals("9000", sw(p.call(select(COUNTER_AID))));
            assertArrayEquals(before, p.call(cmd(CounterApplet.INS_GET_STATE, 0, 0)));

            // Factory reset: ATR back, persistent state as on a new card.
            byte[] fresh = p.call(Hex.parse("FFE30000"));
            assertEquals("9000", sw(fresh));
            assertArrayEquals(card.atr(), Arrays.copyOf(fresh, fresh.length - 2));
            assertEquals("9000", sw(p.call(select(COUNTER_AID))));
            byte[] after = p.call(cmd(CounterApplet.INS_GET_STATE, 0, 0));
            assertNotEquals(Hex.of(before), Hex.of(after));
            Card newCard = TestCards.counterCard(true);
            assertArrayEquals(newCard.transmit(cmd(CounterApplet.INS_GET_STATE, 0, 0)).response(), after);

            // Pseudo-APDU errors; power off through a pseudo-APDU.
            assertEquals("6A86", sw(p.call(Hex.parse("FFE30100"))));
            assertEquals("6700", sw(p.call(Hex.parse("FFE10000020001"))));
            assertEquals("6A80", sw(p.call(Hex.parse("FFE100000480000000"))));
            assertEquals("9000", sw(p.call(Hex.parse("FFE40000"))));
            assertFalse(card.powered());
            // CLA FF outside E1..E4 is the card's business.
            p.send((byte) 1);
            assertNotEquals("9000", sw(p.call(Hex.parse("FFCA000000"))));
        }
    }

    @Test
    void reconnectsAfterConnectionLoss() throws IOException {
        try (Peer p = accept()) {
            assertEquals("9000", sw(p.call(select(ECHO_AID))));
        }
        try (Peer p = accept()) {
            assertArrayEquals(card.atr(), p.call((byte) 4));
        }
    }

    /**
     * Frames that are neither a control code nor an APDU (length 0, 2 or 3, or one byte that is
     * not 00/01/02/04) are answered 6700 on the same connection, and the card keeps its state and
     * answers the next command: closing made pcscd report "Card removed" for good.
     */
    @Test
    void malformedFramesAreAnsweredAndTheCardStaysInTheReader() throws IOException {
        try (Peer p = accept()) {
            assertArrayEquals(card.atr(), p.call((byte) 4));
            assertEquals("9000", sw(p.call(select(ECHO_AID))));
            for (byte[] bad : new byte[][] {{(byte) 9}, {(byte) 0xFF}, {(byte) 3}, {(byte) 0, (byte) 1},
                    {(byte) 0x80, (byte) 0x01, (byte) 0x00}, {}}) {
                assertEquals("6700", Hex.of(p.call(bad)), "answer to " + Hex.of(bad));
                // Same connection, same selection: the echo applet answers at once.
                assertEquals("01029000", Hex.of(p.call(Hex.parse("80010000020102"))), "after " + Hex.of(bad));
            }
            assertTrue(card.powered());
            assertArrayEquals(card.atr(), p.call((byte) 4));
        }
        // Nothing was closed on our side: the next connection is the front-end reconnecting
        // only because this peer went away.
        try (Peer p = accept()) {
            assertEquals("9000", sw(p.call(select(ECHO_AID))));
        }
    }

    @Test
    void parseAddress() {
        InetSocketAddress a = VpcdFrontEnd.parseAddress("127.0.0.1:35963");
        assertEquals("127.0.0.1", a.getHostString());
        assertEquals(35963, a.getPort());
        assertEquals("::1", VpcdFrontEnd.parseAddress("[::1]:1").getHostString());
        for (String bad : new String[] {"host", ":1", "h:", "h:x", "h:0", "h:70000"}) {
            assertThrows(IllegalArgumentException.class, () -> VpcdFrontEnd.parseAddress(bad), bad);
        }
    }
}
