package dev.simkit.cardhost.server;

import dev.simkit.cardhost.AppletSpec;
import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.CardHost;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * One client connection: reads request frames, dispatches them, writes response frames.
 *
 * <p>A request that is well framed but wrong (unknown opcode, bad card index, bad payload,
 * applet failure) gets an ERROR response and the connection stays open. A frame that cannot be
 * trusted (length out of range, or EOF inside a frame) gets an ERROR response if the socket is
 * still writable and then the connection is closed: there is no way to find the next frame.
 * Nothing a client sends can stop the server except SHUTDOWN.
 */
final class Connection {
    private final CardHost host;
    private final Runnable shutdown;
    private final InputStream in;
    private final OutputStream out;
    private final Runnable beforeRead;

    Connection(Socket socket, CardHost host, Runnable shutdown) throws IOException {
        this(new BufferedInputStream(socket.getInputStream(), 1 << 16),
                new BufferedOutputStream(socket.getOutputStream(), 1 << 16), QuickAck.of(socket)::rearm, host,
                shutdown);
    }

    /**
     * A connection over any pair of streams (the frame fuzzer's entry point).
     *
     * @param beforeRead run before each frame is read (re-arms TCP_QUICKACK on a socket)
     */
    Connection(InputStream in, OutputStream out, Runnable beforeRead, CardHost host, Runnable shutdown) {
        this.host = host;
        this.shutdown = shutdown;
        this.in = in;
        this.out = out;
        this.beforeRead = beforeRead;
    }

    void run() throws IOException {
        byte[] header = new byte[4];
        while (true) {
            beforeRead.run();
            int got = in.readNBytes(header, 0, 4);
            if (got == 0) {
                return; // clean EOF between frames
            }
            if (got < 4) {
                fatal("truncated frame: EOF inside the length field");
                return;
            }
            int length = ByteBuffer.wrap(header).getInt();
            if (length < 0 || length > Protocol.MAX_FRAME) {
                fatal("bad frame length " + Integer.toUnsignedString(length));
                return;
            }
            byte[] body = new byte[length];
            if (in.readNBytes(body, 0, length) < length) {
                fatal("truncated frame: expected " + length + " bytes after the length field");
                return;
            }
            if (length < 2) {
                send(Protocol.ERROR, utf8("frame too short: need opcode and card index"));
                continue;
            }
            int opcode = body[0] & 0xFF;
            int cardIndex = body[1] & 0xFF;
            byte[] payload = Arrays.copyOfRange(body, 2, length);
            boolean stop = handle(opcode, cardIndex, payload);
            if (stop) {
                shutdown.run();
                return;
            }
        }
    }

    /** Dispatches one request and sends its response; returns true for SHUTDOWN. */
    private boolean handle(int opcode, int cardIndex, byte[] payload) throws IOException {
        try {
            switch (opcode) {
                case Protocol.LIST_CARDS -> send(Protocol.OK, utf8(host.describe()));
                case Protocol.SHUTDOWN -> {
                    send(Protocol.OK, new byte[0]);
                    return true;
                }
                default -> handleCard(opcode, card(cardIndex), payload);
            }
        } catch (IllegalArgumentException | IllegalStateException e) {
            send(Protocol.ERROR, utf8(message(e)));
        } catch (RuntimeException | LinkageError e) {
            // An unexpected failure inside jCardSim or an applet (a LinkageError: an applet class
            // that fails to load or verify): report it, keep serving.
            send(Protocol.ERROR, utf8("internal error: " + message(e)));
        }
        return false;
    }

    private void handleCard(int opcode, Card card, byte[] payload) throws IOException {
        switch (opcode) {
            case Protocol.TRANSMIT -> {
                Card.Result r = card.transmit(payload);
                switch (r.outcome()) {
                    case OK -> send(Protocol.OK, r.response());
                    case POWER_LOST -> send(Protocol.POWER_LOST, r.response());
                    case POWERED_OFF -> send(Protocol.POWERED_OFF, r.response());
                    default -> throw new IllegalStateException("unknown outcome " + r.outcome());
                }
            }
            case Protocol.RESET -> send(Protocol.OK, card.reset());
            case Protocol.POWER_OFF -> {
                card.powerOff();
                send(Protocol.OK, new byte[0]);
            }
            case Protocol.POWER_ON -> send(Protocol.OK, card.powerOn());
            case Protocol.GET_ATR -> send(Protocol.OK, card.atr());
            case Protocol.FACTORY_RESET -> send(Protocol.OK, card.factoryReset());
            case Protocol.TEAR_AT -> {
                requireLength(payload, 4, "TEAR_AT");
                int k = ByteBuffer.wrap(payload).getInt();
                if (k < 0) {
                    throw new IllegalArgumentException("TEAR_AT k must be 0..2^31-1");
                }
                card.armTear(k);
                send(Protocol.OK, new byte[0]);
            }
            case Protocol.WRITE_COUNT -> send(Protocol.OK, ByteBuffer.allocate(4).putInt(card.lastWriteCount()).array());
            case Protocol.INSTALL -> {
                card.install(parseInstall(payload));
                send(Protocol.OK, new byte[0]);
            }
            default -> throw new IllegalArgumentException(String.format("unknown opcode 0x%02X", opcode));
        }
    }

    private Card card(int index) {
        Card c = host.card(index);
        if (c == null) {
            throw new IllegalArgumentException("no card " + index + " (this host has " + host.size() + ")");
        }
        return c;
    }

    /** INSTALL payload: u8 AID length ‖ AID ‖ u16 BE class-name length ‖ class name ‖ params. */
    static AppletSpec parseInstall(byte[] p) {
        ByteBuffer b = ByteBuffer.wrap(p);
        try {
            byte[] aid = new byte[b.get() & 0xFF];
            b.get(aid);
            byte[] name = new byte[b.getShort() & 0xFFFF];
            b.get(name);
            byte[] params = new byte[b.remaining()];
            b.get(params);
            return new AppletSpec(aid, new String(name, StandardCharsets.UTF_8), params);
        } catch (java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException("INSTALL payload truncated");
        }
    }

    private static void requireLength(byte[] payload, int n, String what) {
        if (payload.length != n) {
            throw new IllegalArgumentException(what + " payload must be " + n + " bytes, got " + payload.length);
        }
    }

    private void send(int status, byte[] payload) throws IOException {
        byte[] head = ByteBuffer.allocate(5).putInt(1 + payload.length).put((byte) status).array();
        out.write(head);
        out.write(payload);
        // A pipelining client has further requests waiting: answer them first and write all the
        // responses in one go. Only a request that is already (partly) here defers the flush,
        // and a client writes whole frames, so the next read never waits on a response held back.
        if (in.available() == 0) {
            out.flush();
        }
    }

    /** Reports a framing error and gives up on the connection (best effort: peer may be gone). */
    private void fatal(String message) {
        try {
            send(Protocol.ERROR, utf8(message));
            out.flush();
        } catch (IOException e) {
            // peer already closed
        }
    }


    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String message(Throwable e) {
        StringBuilder sb = new StringBuilder(String.valueOf(e.getMessage()));
        for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
            sb.append(": ").append(c);
        }
        return sb.toString();
    }
}
