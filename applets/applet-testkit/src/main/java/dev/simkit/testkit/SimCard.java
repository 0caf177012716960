package dev.simkit.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.licel.jcardsim.smartcardio.CardSimulator;
import com.licel.jcardsim.utils.AIDUtil;

import javacard.framework.Applet;

/**
 * The one test "card" of the applet tests: command APDUs in, responses (data ‖ SW) out, status
 * words asserted with their meaning from applet-spec/status-words.md in the failure message.
 *
 * <p>It talks through a {@link Transport}: {@link #install} gives a plain jCardSim card (the
 * applet modules' tests); the card host's tear walks pass their own transport (the instrumented
 * runtime, which also asserts the command was not torn) and a power-cycle hook for
 * {@link #reset}. Subclasses add the applet's command builders and fixtures; this class holds no
 * applet knowledge. It must not depend on the card host (the card host depends on the applets).
 */
public class SimCard {

    /** Carries one command APDU to the card and answers its full response (data ‖ SW). */
    @FunctionalInterface
    public interface Transport {
        byte[] transmit(byte[] apdu);
    }

    private final Transport transport;
    private final Runnable reset;

    /** A card over {@code transport}; {@code reset} is what {@link #reset} does (a power cycle). */
    protected SimCard(Transport transport, Runnable reset) {
        this.transport = transport;
        this.reset = reset;
    }

    /** A copy of {@code card} (same transport and reset hook), for subclasses wrapping one. */
    protected SimCard(SimCard card) {
        this(card.transport, card.reset);
    }

    /**
     * A plain jCardSim card with {@code applet} installed under {@code aid} with install data
     * {@code params} (the whole bArray of {@code install()}; null: none), then selected; fails
     * unless the SELECT answers exactly 9000 (no data).
     */
    public static SimCard install(Class<? extends Applet> applet, byte[] aid, byte[] params) {
        CardSimulator sim = new CardSimulator();
        if (params == null) {
            sim.installApplet(AIDUtil.create(aid), applet);
        } else {
            sim.installApplet(AIDUtil.create(aid), applet, params, (short) 0, (byte) params.length);
        }
        SimCard card = new SimCard(sim::transmitCommand, sim::reset);
        byte[] select = selectApdu(aid);
        byte[] r = card.send(select);
        assertEquals("9000", Hex.s(r), () -> "APDU " + clip(select) + " answered " + clip(r));
        return card;
    }

    /** SELECT by AID (00 A4 04 00); asserts 9000. */
    public final void select(byte[] aid) {
        ok(selectApdu(aid));
    }

    /** Resets the card: jCardSim's reset, or the transport's power cycle. */
    public final void reset() {
        reset.run();
    }

    /** Full response: data ‖ SW. */
    public final byte[] send(byte[] apdu) {
        return transport.transmit(apdu);
    }

    public final byte[] send(String hex) {
        return send(Hex.b(hex));
    }

    /** Sends and asserts the status word; answers the response data. */
    public final byte[] expect(int sw, byte[] apdu) {
        byte[] r = send(apdu);
        assertEquals(String.format("%04X", sw), String.format("%04X", status(r)),
                () -> "APDU " + clip(apdu) + " answered " + clip(r) + ": expected " + describe(sw)
                        + ", got " + describe(status(r)));
        return data(r);
    }

    /** Sends and asserts 9000; answers the response data. */
    public final byte[] ok(byte[] apdu) {
        return expect(0x9000, apdu);
    }

    /** Sends and answers only the status word. */
    public final int swOf(byte[] apdu) {
        return status(send(apdu));
    }

    // ---- responses -------------------------------------------------------------------------

    /** The SW of a full response. */
    public static int status(byte[] response) {
        return ((response[response.length - 2] & 0xFF) << 8) | (response[response.length - 1] & 0xFF);
    }

    /** The SW of a full response as four hex digits. */
    public static String statusHex(byte[] response) {
        return Hex.s(Arrays.copyOfRange(response, response.length - 2, response.length));
    }

    /** The data of a full response (without its SW). */
    public static byte[] data(byte[] response) {
        return Arrays.copyOf(response, response.length - 2);
    }

    /** SELECT by AID: 00 A4 04 00 Lc AID. */
    public static byte[] selectApdu(byte[] aid) {
        return Hex.cat(Hex.b("00A40400"), new byte[] {(byte) aid.length}, aid);
    }

    /** {@code 6A82 FileNotFound (file or application not found)}; unknown codes say so. */
    public static String describe(int sw) {
        String m = Meanings.TABLE.get(sw);
        return String.format("%04X", sw) + (m == null ? " (not in applet-spec/status-words.md)" : " " + m);
    }

    /** At most 40 bytes of hex, then an ellipsis: a failure message stays readable. */
    static String clip(byte[] bytes) {
        String h = Hex.s(bytes);
        return h.length() <= 80 ? h : h.substring(0, 80) + "…";
    }

    /** The status-word table, read once; empty when the spec is not found (messages still work). */
    static final class Meanings {
        private static final Pattern ROW =
                Pattern.compile("^\\|\\s*([0-9A-F]{4})\\s*\\|\\s*([A-Za-z0-9]+)\\s*\\|\\s*(.*?)\\s*\\|\\s*$");
        static final Map<Integer, String> TABLE = load();

        private Meanings() {}

        static Map<Integer, String> load() {
            Map<Integer, String> t = new TreeMap<>();
            String given = System.getProperty("simkit.statusWords");
            Path dir = Path.of("").toAbsolutePath();
            for (; dir != null; dir = dir.getParent()) {
                Path p = given != null ? Path.of(given) : dir.resolve("applet-spec/status-words.md");
                if (Files.isRegularFile(p)) {
                    try {
                        for (String line : Files.readAllLines(p)) {
                            Matcher m = ROW.matcher(line.trim());
                            if (m.matches()) {
                                t.putIfAbsent(Integer.parseInt(m.group(1), 16), m.group(2) + " (" + m.group(3) + ")");
                            }
                        }
                    } catch (IOException e) {
                        // Meanings are a courtesy of the failure message; the assertion stands without them.
                    }
                    break;
                }
            }
            return t;
        }
    }
}
