package dev.simkit.cardhost.vpcd;

import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.Log;
import dev.simkit.cardhost.server.QuickAck;
import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;

/**
 * Serves one card to pcsc-lite through vsmartcard's vpcd reader driver.
 *
 * <p>vpcd (loaded by pcscd) listens on a TCP port, by default 35963 for its first reader; a
 * "virtual card" connects to it. This class is that card. Frames in both directions are
 * {@code len:u16 BE ‖ data}. From vpcd, a 1-byte frame is a control code — 0 power off, 1 power
 * on, 2 reset (none of them answered), 4 "send the ATR" (answered with the ATR) — and a longer
 * frame is a command APDU, answered with the response APDU. Command APDUs go through
 * {@link ReaderCommands}, which handles the simulator's {@code FF Ex} pseudo-APDUs.
 *
 * <p>Connection loss (vpcd or pcscd restarting, or not started yet) is normal: the front-end
 * reconnects with exponential backoff between {@code minBackoff} and {@code maxBackoff}, so it
 * never spins. Every frame is delimited by its length, so no frame can put the stream out of
 * step and none closes the connection: a frame that is neither a control code nor an APDU of at
 * least 4 bytes (length 0, 2 or 3, or one byte that is not 00/01/02/04 — vpcd sends a PC/SC
 * client's APDU of any length as it is) is answered {@code 6700}, as a card answers a command
 * it cannot parse, and the next frame is served. Closing instead made pcscd report the card
 * removed, and it never came back.
 *
 * <p>vpcd writes the length and the data of a frame separately and does not set TCP_NODELAY,
 * so with Linux's delayed ACKs every exchange could stall ~40 ms; TCP_QUICKACK is re-armed
 * before each read and TCP_NODELAY set on our side.
 */
public final class VpcdFrontEnd implements AutoCloseable {
    private static final byte[] SW_WRONG_LENGTH = {0x67, 0x00};

    private final InetSocketAddress address;
    private final String name;
    private final Card card;
    private final ReaderCommands commands;
    private final long minBackoffMs;
    private final long maxBackoffMs;
    private volatile boolean closing;
    private volatile Socket current;
    private Thread thread;

    public VpcdFrontEnd(InetSocketAddress address, Card card, Duration minBackoff, Duration maxBackoff) {
        this.address = address;
        this.name = address.getHostString() + ":" + address.getPort();
        this.card = card;
        this.commands = new ReaderCommands(card);
        this.minBackoffMs = Math.max(1, minBackoff.toMillis());
        this.maxBackoffMs = Math.max(minBackoffMs, maxBackoff.toMillis());
    }

    /** A front-end with the production backoff: 50 ms doubling up to 1 s. */
    public VpcdFrontEnd(InetSocketAddress address, Card card) {
        this(address, card, Duration.ofMillis(50), Duration.ofSeconds(1));
    }

    /** Parses {@code HOST:PORT} (IPv6 in brackets). */
    public static InetSocketAddress parseAddress(String s) {
        int colon = s.lastIndexOf(':');
        if (colon <= 0 || colon == s.length() - 1) {
            throw new IllegalArgumentException("--vpcd needs HOST:PORT, got " + s);
        }
        String host = s.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = Integer.parseInt(s.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--vpcd port must be a number, got " + s);
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("--vpcd port must be 1..65535, got " + port);
        }
        return InetSocketAddress.createUnresolved(host, port);
    }

    /** Starts the connect-serve-reconnect loop on a daemon thread. */
    public synchronized void start() {
        if (thread != null) {
            throw new IllegalStateException("already started");
        }
        thread = new Thread(this::loop, "simkit-vpcd");
        thread.setDaemon(true);
        thread.start();
    }

    private void loop() {
        long backoff = minBackoffMs;
        while (!closing) {
            int frames = 0;
            try (Socket s = new Socket()) {
                current = s;
                s.connect(new InetSocketAddress(address.getHostString(), address.getPort()), 5000);
                s.setTcpNoDelay(true);
                Log.info("vpcd: connected to %s", name);
                QuickAck quickAck = QuickAck.of(s);
                frames = serve(new BufferedInputStream(s.getInputStream(), 1 << 16), s.getOutputStream(),
                        quickAck::rearm);
                Log.info("vpcd: %s closed the connection", name);
            } catch (IOException e) {
                if (!closing) {
                    Log.info("vpcd: %s: %s", name, e.getMessage());
                }
            } finally {
                current = null;
            }
            // A session that exchanged frames was healthy: retry quickly. Otherwise back off
            // further, up to the maximum: never a busy loop against a dead or hostile peer.
            backoff = frames > 0 ? minBackoffMs : Math.min(backoff * 2, maxBackoffMs);
            sleep(frames > 0 ? minBackoffMs : backoff);
        }
    }

    /**
     * Serves frames from {@code in} until EOF, answering on {@code out}; returns how many were
     * handled. Throws only for I/O failures and EOF inside a frame (the peer is gone).
     *
     * @param beforeRead run before each frame is read (re-arms TCP_QUICKACK on a socket)
     */
    int serve(InputStream in, OutputStream out, Runnable beforeRead) throws IOException {
        int frames = 0;
        byte[] head = new byte[2];
        while (!closing) {
            beforeRead.run();
            int got = in.readNBytes(head, 0, 2);
            if (got == 0) {
                return frames;
            }
            if (got < 2) {
                throw new EOFException("EOF inside a frame length");
            }
            int len = ((head[0] & 0xFF) << 8) | (head[1] & 0xFF);
            byte[] body = new byte[len];
            if (in.readNBytes(body, 0, len) < len) {
                throw new EOFException("EOF inside a frame of " + len + " bytes");
            }
            byte[] reply = handle(body);
            if (reply != null) {
                byte[] frame = new byte[2 + reply.length];
                frame[0] = (byte) (reply.length >> 8);
                frame[1] = (byte) reply.length;
                System.arraycopy(reply, 0, frame, 2, reply.length);
                out.write(frame);
                out.flush();
            }
            frames++;
        }
        return frames;
    }

    /** One frame from vpcd; returns the reply, or null for control codes that get none. */
    private byte[] handle(byte[] body) {
        if (body.length == 1) {
            switch (body[0]) {
                case 0 -> card.powerOff();
                case 1 -> card.powerOn();
                case 2 -> card.reset();
                case 4 -> {
                    return card.atr();
                }
                default -> {
                    return notAnApdu(body);
                }
            }
            return null;
        }
        if (body.length < 4) {
            return notAnApdu(body);
        }
        try {
            return commands.transmit(body);
        } catch (RuntimeException | LinkageError e) {
            // An unexpected failure inside jCardSim or an applet: the card answers 6F00 as a
            // real one would, and the bridge keeps serving.
            Log.warn("vpcd: APDU failed: %s", e);
            return ReaderCommands.NO_ANSWER.clone();
        }
    }

    /**
     * A frame that is neither a control code nor a command APDU (under 4 bytes): vpcd waits for
     * an answer to it as to any APDU, so it gets one, {@code 6700} (wrong length).
     */
    private static byte[] notAnApdu(byte[] body) {
        Log.info("vpcd: frame of %d byte(s) is neither a control code nor an APDU: answered 6700", body.length);
        return SW_WRONG_LENGTH.clone();
    }

    private void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            closing = true;
        }
    }

    /** Stops reconnecting and closes the connection. */
    @Override
    public void close() {
        closing = true;
        Socket s = current;
        if (s != null) {
            try {
                s.close();
            } catch (IOException e) {
                // already closed
            }
        }
        Thread t;
        synchronized (this) {
            t = thread;
        }
        if (t != null) {
            t.interrupt();
            try {
                t.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
