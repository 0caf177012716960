package dev.simkit.cardhost.server;

import dev.simkit.cardhost.CardHost;
import dev.simkit.cardhost.Log;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Serves a {@link CardHost} on 127.0.0.1: one acceptor thread and one thread per connection
 * (clients are few: a test harness, a Rust host, a vpcd bridge). Per-card locking lives in
 * {@link dev.simkit.cardhost.Card}, so connections to different cards run in parallel.
 */
public final class CardServer implements AutoCloseable {
    private final CardHost host;
    private final ServerSocket listener;
    private final Set<Socket> connections = ConcurrentHashMap.newKeySet();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final AtomicInteger connectionIds = new AtomicInteger();
    private volatile boolean closing;

    private CardServer(CardHost host, ServerSocket listener) {
        this.host = host;
        this.listener = listener;
    }

    /** Binds 127.0.0.1:{@code port} (0 = ephemeral) and starts accepting. */
    public static CardServer start(CardHost host, int port) throws IOException {
        ServerSocket ss = new ServerSocket();
        ss.setReuseAddress(true);
        ss.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 50);
        CardServer server = new CardServer(host, ss);
        Thread t = new Thread(server::acceptLoop, "simkit-accept");
        t.setDaemon(true);
        t.start();
        return server;
    }

    public int port() {
        return listener.getLocalPort();
    }

    /** Blocks until SHUTDOWN was received or {@link #close} was called. */
    public void awaitShutdown() throws InterruptedException {
        stopped.await();
    }

    private void acceptLoop() {
        while (!closing) {
            Socket s;
            try {
                s = listener.accept();
            } catch (IOException e) {
                if (!closing) {
                    Log.warn("accept failed: %s", e);
                    close();
                }
                return;
            }
            try {
                // Request/response with small frames: never wait for Nagle.
                s.setTcpNoDelay(true);
            } catch (SocketException e) {
                Log.warn("TCP_NODELAY: %s", e);
            }
            connections.add(s);
            int id = connectionIds.incrementAndGet();
            Thread t = new Thread(() -> serve(s, id), "simkit-conn-" + id);
            t.setDaemon(true);
            t.start();
        }
    }

    private void serve(Socket s, int id) {
        Log.info("connection %d from %s", id, s.getRemoteSocketAddress());
        try (s) {
            new Connection(s, host, this::close).run();
        } catch (IOException e) {
            if (!closing) {
                Log.info("connection %d: %s", id, e.getMessage());
            }
        } finally {
            connections.remove(s);
            Log.info("connection %d closed", id);
        }
    }

    /** Stops accepting, closes every connection, releases {@link #awaitShutdown}. Idempotent. */
    @Override
    public void close() {
        closing = true;
        try {
            listener.close();
        } catch (IOException e) {
            // nothing left to do
        }
        for (Socket s : connections) {
            try {
                s.close();
            } catch (IOException e) {
                // already gone
            }
        }
        stopped.countDown();
    }
}
