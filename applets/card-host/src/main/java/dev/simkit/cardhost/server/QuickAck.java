package dev.simkit.cardhost.server;

import java.io.IOException;
import java.net.Socket;
import java.net.SocketOption;

/**
 * Re-arms Linux TCP_QUICKACK on a socket.
 *
 * <p>Linux clears TCP_QUICKACK by itself after a while, falling back to delayed ACKs; for a
 * strict request/response peer that does not set TCP_NODELAY (pcsc-lite's vpcd) that adds
 * ~40 ms stalls. Setting the option again before every read keeps ACKs immediate. Our own
 * protocol's clients use TCP_NODELAY, but the server re-arms anyway: it costs one setsockopt.
 * On platforms without the option this is a no-op.
 */
public final class QuickAck {
    private static final SocketOption<Boolean> OPTION = lookup();

    private final Socket socket;
    private boolean supported;

    private QuickAck(Socket socket, boolean supported) {
        this.socket = socket;
        this.supported = supported;
    }

    /** A re-armer for {@code socket}; checks support once, not on every read. */
    public static QuickAck of(Socket socket) {
        return new QuickAck(socket, OPTION != null && socket.supportedOptions().contains(OPTION));
    }

    public boolean supported() {
        return supported;
    }

    /** Call before each blocking read. */
    public void rearm() {
        if (supported) {
            try {
                socket.setOption(OPTION, Boolean.TRUE);
            } catch (IOException | UnsupportedOperationException e) {
                supported = false; // socket closing or option vanished; stop trying
            }
        }
    }

    @SuppressWarnings("unchecked")
    private static SocketOption<Boolean> lookup() {
        // jdk.net is a JDK-specific module; look it up reflectively so the host still runs on a
        // JDK without it.
        try {
            Class<?> c = Class.forName("jdk.net.ExtendedSocketOptions");
            return (SocketOption<Boolean>) c.getField("TCP_QUICKACK").get(null);
        } catch (ReflectiveOperationException | LinkageError e) {
            return null;
        }
    }
}
