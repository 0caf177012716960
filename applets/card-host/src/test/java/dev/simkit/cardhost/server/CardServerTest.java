package dev.simkit.cardhost.server;

import static dev.simkit.cardhost.TestCards.COUNTER_AID;
import static dev.simkit.cardhost.TestCards.ECHO_AID;
import static dev.simkit.cardhost.TestCards.cmd;
import static dev.simkit.cardhost.TestCards.select;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.simkit.cardhost.CardHost;
import dev.simkit.cardhost.Hex;
import dev.simkit.cardhost.TestCards;
import dev.simkit.cardhost.testapplets.CounterApplet;
import dev.simkit.cardhost.testapplets.EchoApplet;
import java.io.IOException;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The wire protocol over a real loopback socket. */
class CardServerTest {
    private CardServer server;
    private FrameClient client;

    @BeforeEach
    void start() throws IOException {
        CardHost host = CardHost.create(List.of(CardHost.DEFAULT_CARD), 2, true, new URL[0]);
        server = CardServer.start(host, 0);
        client = new FrameClient(server.port());
    }

    @AfterEach
    void stop() throws IOException {
        client.close();
        server.close();
    }

    private FrameClient.Reply transmit(int card, byte[] apdu) throws IOException {
        return client.call(Protocol.TRANSMIT, card, apdu);
    }

    private static String sw(FrameClient.Reply r) {
        return TestCards.sw(r.payload());
    }

    @Test
    void transmitEchoesShortAndExtendedApdus() throws IOException {
        assertEquals("9000", sw(transmit(0, select(ECHO_AID))));
        FrameClient.Reply r = transmit(0, cmd(EchoApplet.INS_ECHO, 0, 0, (byte) 1, (byte) 2, (byte) 3));
        assertEquals(Protocol.OK, r.status());
        assertEquals("0102039000", Hex.of(r.payload()));

        // Extended case 4: 00 01 00 00 | 00 Lc(2) | data | Le(2)
        byte[] data = new byte[1000];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) i;
        }
        ByteBuffer ext = ByteBuffer.allocate(7 + data.length + 2);
        ext.put(new byte[] {0, EchoApplet.INS_ECHO, 0, 0, 0}).putShort((short) data.length).put(data).putShort((short) 0);
        r = transmit(0, ext.array());
        assertEquals(Protocol.OK, r.status());
        assertEquals(data.length + 2, r.payload().length);
        assertEquals("9000", sw(r));
    }

    @Test
    void tearAtAndWriteCountDriveAWalk() throws IOException {
        assertEquals("9000", sw(transmit(1, select(COUNTER_AID))));
        byte[] update = cmd(CounterApplet.INS_UPDATE, 0, 7);
        assertEquals("9000", sw(transmit(1, update)));
        FrameClient.Reply count = client.call(Protocol.WRITE_COUNT, 1);
        assertEquals(Protocol.OK, count.status());
        int writes = ByteBuffer.wrap(count.payload()).getInt();
        assertEquals(10, writes);
        byte[] state = transmit(1, cmd(CounterApplet.INS_GET_STATE, 0, 0)).payload();
        for (int k = 1; k <= writes; k++) {
            assertEquals(Protocol.OK, client.call(Protocol.TEAR_AT, 1, ByteBuffer.allocate(4).putInt(k).array()).status());
            FrameClient.Reply torn = transmit(1, update);
            assertEquals(Protocol.POWER_LOST, torn.status(), "k=" + k);
            assertEquals(0, torn.payload().length);
            assertEquals(k, ByteBuffer.wrap(client.call(Protocol.WRITE_COUNT, 1).payload()).getInt());
            assertEquals("9000", sw(transmit(1, select(COUNTER_AID))));
            assertArrayEquals(state, transmit(1, cmd(CounterApplet.INS_GET_STATE, 0, 0)).payload(), "k=" + k);
        }
        // Card 0 was never touched by the tears.
        assertEquals("9000", sw(transmit(0, select(COUNTER_AID))));
    }

    @Test
    void resetPowerAndAtr() throws IOException {
        FrameClient.Reply atr = client.call(Protocol.GET_ATR, 0);
        assertEquals(Protocol.OK, atr.status());
        assertEquals(0x3B, atr.payload()[0]);
        assertArrayEquals(atr.payload(), client.call(Protocol.RESET, 0).payload());
        // After a reset no applet is selected.
        assertEquals("6986", sw(transmit(0, cmd(EchoApplet.INS_ECHO, 0, 0, (byte) 1))));

        assertEquals(Protocol.OK, client.call(Protocol.POWER_OFF, 0).status());
        assertEquals(Protocol.POWERED_OFF, transmit(0, select(ECHO_AID)).status());
        assertArrayEquals(atr.payload(), client.call(Protocol.POWER_ON, 0).payload());
        assertEquals("9000", sw(transmit(0, select(ECHO_AID))));
    }

    @Test
    void listCardsDescribesEveryCard() throws IOException {
        FrameClient.Reply r = client.call(Protocol.LIST_CARDS, 0);
        assertEquals(Protocol.OK, r.status());
        String expectedApplets = "F0534D4B4954E1=dev.simkit.cardhost.testapplets.EchoApplet"
                + " F0534D4B4954E2=dev.simkit.cardhost.testapplets.CounterApplet";
        assertEquals("0 on on " + expectedApplets + "\n1 on on " + expectedApplets + "\n", r.text());
    }

    @Test
    void installAtRuntime() throws IOException {
        byte[] aid = Hex.parse("F0534D4B4954E9");
        byte[] name = "dev.simkit.cardhost.testapplets.EchoApplet".getBytes(StandardCharsets.UTF_8);
        ByteBuffer p = ByteBuffer.allocate(1 + aid.length + 2 + name.length);
        p.put((byte) aid.length).put(aid).putShort((short) name.length).put(name);
        assertEquals(Protocol.OK, client.call(Protocol.INSTALL, 1, p.array()).status());
        assertEquals("9000", sw(transmit(1, select(aid))));
        assertTrue(client.call(Protocol.LIST_CARDS, 0).text().contains("F0534D4B4954E9="));

        // The same AID again, and an unknown class, are errors that leave the card usable.
        FrameClient.Reply again = client.call(Protocol.INSTALL, 1, p.array());
        assertEquals(Protocol.ERROR, again.status());
        byte[] bad = "no.such.Applet".getBytes(StandardCharsets.UTF_8);
        ByteBuffer q = ByteBuffer.allocate(1 + aid.length + 2 + bad.length);
        q.put((byte) aid.length).put(aid).putShort((short) bad.length).put(bad);
        FrameClient.Reply missing = client.call(Protocol.INSTALL, 1, q.array());
        assertEquals(Protocol.ERROR, missing.status());
        assertTrue(missing.text().contains("no.such.Applet"), missing.text());
        assertEquals(Protocol.ERROR, client.call(Protocol.INSTALL, 1, (byte) 9).status(), "truncated payload");
        assertEquals("9000", sw(transmit(1, select(aid))));
    }

    @Test
    void errorsKeepTheConnectionOpen() throws IOException {
        FrameClient.Reply r = client.call(0x7F, 0);
        assertEquals(Protocol.ERROR, r.status());
        assertTrue(r.text().contains("unknown opcode 0x7F"), r.text());

        r = client.call(Protocol.TRANSMIT, 9, select(ECHO_AID));
        assertEquals(Protocol.ERROR, r.status());
        assertTrue(r.text().contains("no card 9"), r.text());

        r = client.call(Protocol.TRANSMIT, 0, (byte) 0, (byte) 0xA4);
        assertEquals(Protocol.ERROR, r.status(), "APDU shorter than 4 bytes");

        r = client.call(Protocol.TEAR_AT, 0, (byte) 1);
        assertEquals(Protocol.ERROR, r.status(), "TEAR_AT needs 4 bytes");

        client.sendRaw(new byte[] {0, 0, 0, 1, Protocol.LIST_CARDS}); // length 1: no card byte
        r = client.read();
        assertEquals(Protocol.ERROR, r.status());
        assertTrue(r.text().contains("too short"), r.text());

        // Still serving on the same connection.
        assertEquals("9000", sw(transmit(0, select(ECHO_AID))));
    }

    @Test
    void truncatedFrameClosesOnlyThatConnection() throws IOException {
        try (FrameClient bad = new FrameClient(server.port())) {
            bad.sendRaw(new byte[] {0, 0, 0, 20, Protocol.TRANSMIT, 0, 0, (byte) 0xA4}); // 20 promised, 4 sent
            bad.socket.shutdownOutput();
            FrameClient.Reply r = bad.read();
            assertEquals(Protocol.ERROR, r.status());
            assertTrue(r.text().contains("truncated"), r.text());
            assertTrue(bad.closedByServer());
        }
        try (FrameClient huge = new FrameClient(server.port())) {
            huge.sendRaw(new byte[] {(byte) 0x7F, 0, 0, 0});
            assertEquals(Protocol.ERROR, huge.read().status());
            assertTrue(huge.closedByServer());
        }
        assertEquals("9000", sw(transmit(0, select(ECHO_AID))));
        try (FrameClient fresh = new FrameClient(server.port())) {
            assertEquals(Protocol.OK, fresh.call(Protocol.GET_ATR, 0).status());
        }
    }

    @Test
    void parallelClientsOnDifferentCards() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<Integer>> results = new ArrayList<>();
            for (int card = 0; card < 2; card++) {
                int c = card;
                results.add(pool.submit(() -> {
                    try (FrameClient fc = new FrameClient(server.port())) {
                        fc.call(Protocol.TRANSMIT, c, select(ECHO_AID));
                        int ok = 0;
                        for (int i = 0; i < 500; i++) {
                            byte[] resp = fc.call(Protocol.TRANSMIT, c, cmd(EchoApplet.INS_ECHO, 0, 0, (byte) c, (byte) i)).payload();
                            ok += (resp.length == 4 && resp[0] == (byte) c && resp[1] == (byte) i) ? 1 : 0;
                        }
                        return ok;
                    }
                }));
            }
            for (Future<Integer> f : results) {
                assertEquals(500, f.get());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void shutdownStopsTheServer() throws Exception {
        Thread waiter = new Thread(() -> {
            try {
                server.awaitShutdown();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        waiter.start();
        assertEquals(Protocol.OK, client.call(Protocol.SHUTDOWN, 0).status());
        waiter.join(5_000);
        assertTrue(!waiter.isAlive(), "awaitShutdown returned");
        assertTrue(client.closedByServer());
    }

    @Test
    void quickAckHelperIsSafeOnAnySocket() {
        QuickAck q = QuickAck.of(client.socket);
        q.rearm(); // must not throw, supported or not
        if (System.getProperty("os.name").toLowerCase().contains("linux")) {
            assertTrue(q.supported(), "TCP_QUICKACK is available on Linux JDKs");
        }
    }
}
