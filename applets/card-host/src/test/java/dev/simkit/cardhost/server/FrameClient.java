package dev.simkit.cardhost.server;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** Minimal client of the card host protocol, for tests. */
final class FrameClient implements AutoCloseable {
    record Reply(int status, byte[] payload) {
        String text() {
            return new String(payload, StandardCharsets.UTF_8);
        }
    }

    final Socket socket;
    private final DataInputStream in;
    private final OutputStream out;

    FrameClient(int port) throws IOException {
        socket = new Socket(InetAddress.getLoopbackAddress(), port);
        socket.setTcpNoDelay(true);
        socket.setSoTimeout(10_000); // a hung server fails the test instead of hanging it
        in = new DataInputStream(socket.getInputStream());
        out = socket.getOutputStream();
    }

    Reply call(int opcode, int card, byte... payload) throws IOException {
        sendRaw(ByteBuffer.allocate(6 + payload.length).putInt(2 + payload.length)
                .put((byte) opcode).put((byte) card).put(payload).array());
        return read();
    }

    void sendRaw(byte[] bytes) throws IOException {
        out.write(bytes);
        out.flush();
    }

    Reply read() throws IOException {
        int len = in.readInt();
        int status = in.readUnsignedByte();
        byte[] payload = new byte[len - 1];
        in.readFully(payload);
        return new Reply(status, payload);
    }

    /** True once the server has closed its side (read returns EOF). */
    boolean closedByServer() throws IOException {
        return in.read() < 0;
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
