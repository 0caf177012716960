package dev.simkit.cardhost.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.licel.jcardsim.crypto.MessageDigestImpl;
import dev.simkit.cardhost.Hex;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import javacard.security.CryptoException;
import javacard.security.MessageDigest;
import org.junit.jupiter.api.Test;

/**
 * {@link JdkMessageDigest} through {@link DigestFactory}: NIST vectors, arbitrary update splits,
 * reset behaviour, and every error case compared with jCardSim's own implementation.
 */
class JdkMessageDigestTest {
    /** Java Card algorithm constant and JDK name of every algorithm the factory speeds up. */
    private static final byte[] ALGORITHMS = {
        MessageDigest.ALG_SHA, MessageDigest.ALG_SHA_224, MessageDigest.ALG_SHA_256,
        MessageDigest.ALG_SHA_384, MessageDigest.ALG_SHA_512};

    private static MessageDigest fast(byte alg) {
        MessageDigest md = DigestFactory.getInstance(alg, false);
        assertInstanceOf(JdkMessageDigest.class, md, "algorithm " + alg);
        return md;
    }

    /** jCardSim's implementation, exactly what an applet gets with the switch off. */
    private static MessageDigest jcardsim(byte alg) {
        MessageDigest md = MessageDigest.getInstance(alg, false);
        assertInstanceOf(MessageDigestImpl.class, md);
        return md;
    }

    private static byte alg(String jdkName) {
        for (byte a : ALGORITHMS) {
            if (DigestFactory.jdkName(a).equals(jdkName)) {
                return a;
            }
        }
        throw new IllegalArgumentException("no Java Card constant for " + jdkName);
    }

    private static byte[] jdk(byte alg, byte[] data) throws Exception {
        return java.security.MessageDigest.getInstance(DigestFactory.jdkName(alg)).digest(data);
    }

    record Vector(String alg, String message, byte[] digest) {
    }

    private static List<Vector> vectors() throws IOException {
        List<Vector> out = new ArrayList<>();
        try (InputStream in = JdkMessageDigestTest.class.getResourceAsStream("/sha-vectors.txt")) {
            assertNotNull(in, "sha-vectors.txt on the test classpath");
            BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                if (line.isBlank() || line.startsWith("#")) {
                    continue;
                }
                String[] f = line.split("\\|", -1);
                out.add(new Vector(f[0], f[1], Hex.parse(f[2])));
            }
        }
        assertEquals(25, out.size(), "five messages for each of five algorithms");
        return out;
    }

    @Test
    void nistVectors() throws Exception {
        for (Vector v : vectors()) {
            byte alg = alg(v.alg());
            for (MessageDigest md : List.of(fast(alg), jcardsim(alg))) {
                byte[] out = new byte[md.getLength()];
                String what = v.alg() + " '" + v.message() + "' by " + md.getClass().getSimpleName();
                if (v.message().equals("a*1000000")) {
                    // Many updates of uneven size (1000 × 1000 bytes would align with blocks).
                    byte[] a = new byte[1000];
                    Arrays.fill(a, (byte) 'a');
                    int left = 1_000_000;
                    int step = 1;
                    while (left > 999) {
                        int n = Math.min(step, 999);
                        md.update(a, (short) 0, (short) n);
                        left -= n;
                        step = step * 7 % 1000 + 1;
                    }
                    assertEquals(md.getLength(), md.doFinal(a, (short) 0, (short) left, out, (short) 0), what);
                } else {
                    byte[] m = v.message().getBytes(StandardCharsets.US_ASCII);
                    assertEquals(md.getLength(), md.doFinal(m, (short) 0, (short) m.length, out, (short) 0), what);
                }
                assertArrayEquals(v.digest(), out, what);
            }
        }
    }

    @Test
    void algorithmAndLengthAsJcardsim() {
        for (byte alg : ALGORITHMS) {
            MessageDigest f = fast(alg);
            MessageDigest j = jcardsim(alg);
            assertEquals(j.getAlgorithm(), f.getAlgorithm());
            assertEquals(alg, f.getAlgorithm());
            assertEquals(j.getLength(), f.getLength());
        }
    }

    @Test
    void randomSplitUpdatesEqualTheJdkOneShot() throws Exception {
        Random rnd = new Random(0x5EED);
        for (byte alg : ALGORITHMS) {
            MessageDigest md = fast(alg);
            for (int round = 0; round < 200; round++) {
                byte[] msg = new byte[rnd.nextInt(round < 100 ? 300 : 5000)];
                rnd.nextBytes(msg);
                // The message sits at an offset inside a larger buffer, split into chunks of
                // random size (empty ones included); the last chunk goes through doFinal.
                int pad = rnd.nextInt(40);
                byte[] buf = new byte[pad + msg.length + rnd.nextInt(40)];
                System.arraycopy(msg, 0, buf, pad, msg.length);
                int at = 0;
                while (at < msg.length && rnd.nextInt(8) != 0) {
                    int n = rnd.nextInt(Math.min(msg.length - at, 700) + 1);
                    md.update(buf, (short) (pad + at), (short) n);
                    at += n;
                }
                byte[] out = new byte[md.getLength() + 20];
                int outOff = rnd.nextInt(21);
                byte[] before = out.clone();
                short len = md.doFinal(buf, (short) (pad + at), (short) (msg.length - at), out, (short) outOff);
                assertEquals(md.getLength(), len);
                byte[] want = jdk(alg, msg);
                assertArrayEquals(want, Arrays.copyOfRange(out, outOff, outOff + len), "alg " + alg + " round " + round);
                // Nothing outside the digest was touched.
                assertArrayEquals(Arrays.copyOf(before, outOff), Arrays.copyOf(out, outOff));
                assertArrayEquals(Arrays.copyOfRange(before, outOff + len, out.length),
                        Arrays.copyOfRange(out, outOff + len, out.length));
            }
        }
    }

    @Test
    void doFinalResetsAndResetDiscardsInput() throws Exception {
        byte[] abc = "abc".getBytes(StandardCharsets.US_ASCII);
        for (byte alg : ALGORITHMS) {
            MessageDigest md = fast(alg);
            byte[] out = new byte[md.getLength()];
            md.doFinal(abc, (short) 0, (short) 3, out, (short) 0);
            assertArrayEquals(jdk(alg, abc), out);
            // After doFinal the object starts over: the empty message.
            md.doFinal(abc, (short) 0, (short) 0, out, (short) 0);
            assertArrayEquals(jdk(alg, new byte[0]), out, "doFinal resets");
            // reset() discards pending input; the object is then reusable.
            md.update(abc, (short) 0, (short) 3);
            md.update(new byte[500], (short) 0, (short) 500);
            md.reset();
            md.doFinal(abc, (short) 0, (short) 3, out, (short) 0);
            assertArrayEquals(jdk(alg, abc), out, "reuse after reset");
        }
    }

    @Test
    void inputAndOutputMayBeTheSameBuffer() throws Exception {
        for (byte alg : ALGORITHMS) {
            byte[] buf = new byte[200];
            new Random(alg).nextBytes(buf);
            byte[] want = jdk(alg, Arrays.copyOfRange(buf, 10, 150));
            fast(alg).doFinal(buf, (short) 10, (short) 140, buf, (short) 20);
            assertArrayEquals(want, Arrays.copyOfRange(buf, 20, 20 + want.length));
        }
    }

    /** One misuse of the API, applied to a digest; returns the output buffer (or null). */
    private interface Misuse {
        byte[] apply(MessageDigest md);
    }

    private static Misuse update(byte[] buf, int off, int len) {
        return md -> {
            md.update(buf == null ? null : buf.clone(), (short) off, (short) len);
            return null;
        };
    }

    private static Misuse doFinalIn(byte[] buf, int off, int len) {
        return md -> {
            byte[] out = new byte[64];
            md.doFinal(buf == null ? null : buf.clone(), (short) off, (short) len, out, (short) 0);
            return out;
        };
    }

    private static Misuse doFinalOut(int outLength, int outOff) {
        return md -> {
            byte[] out = outLength < 0 ? null : new byte[outLength];
            try {
                md.doFinal(new byte[] {1, 2, 3}, (short) 0, (short) 3, out, (short) outOff);
            } catch (RuntimeException e) {
                // The bytes written before the exception are part of the behaviour.
                throw new Failed(e, out);
            }
            return out;
        };
    }

    /** Carries the output buffer of a failed doFinal out of the lambda. */
    private static final class Failed extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final transient byte[] out;

        Failed(RuntimeException cause, byte[] out) {
            super(cause);
            this.out = out;
        }
    }

    /** What a misuse did: the exception class (or "none") and the output buffer. */
    private static String outcome(MessageDigest md, Misuse m) {
        // Leave the object mid-block first, so BouncyCastle's partial-word path is exercised.
        md.update(new byte[] {9, 9, 9, 9, 9}, (short) 0, (short) 5);
        try {
            byte[] out = m.apply(md);
            return "none " + (out == null ? "" : Hex.of(out));
        } catch (Failed f) {
            return f.getCause().getClass().getName() + " " + (f.out == null ? "" : Hex.of(f.out));
        } catch (RuntimeException e) {
            return e.getClass().getName();
        }
    }

    @Test
    void errorCasesAsJcardsim() throws Exception {
        byte[] ten = new byte[10];
        List<Misuse> cases = List.of(
                update(null, 0, 0), update(null, 0, 5), update(null, 0, -1),
                update(ten, -1, 5), update(ten, -1, 0), update(ten, 8, 5), update(ten, 10, 1),
                update(ten, 11, 0), update(ten, 0, -1), update(ten, 0, 10), update(ten, 0, 11),
                update(ten, 0, Short.MIN_VALUE), update(ten, Short.MAX_VALUE, 1),
                doFinalIn(null, 0, 0), doFinalIn(null, 0, 3), doFinalIn(ten, -3, 2), doFinalIn(ten, 5, 6),
                doFinalIn(ten, 5, -2), doFinalIn(ten, 0, 10),
                doFinalOut(-1, 0), doFinalOut(100, -1), doFinalOut(100, 0), doFinalOut(100, 36),
                doFinalOut(100, 37), doFinalOut(100, 68), doFinalOut(100, 69), doFinalOut(100, 99),
                doFinalOut(100, 100), doFinalOut(100, 101), doFinalOut(0, 0), doFinalOut(20, 0),
                doFinalOut(64, 0), doFinalOut(64, 1), doFinalOut(100, Short.MIN_VALUE));
        byte[] abc = "abc".getBytes(StandardCharsets.US_ASCII);
        for (byte alg : ALGORITHMS) {
            for (int i = 0; i < cases.size(); i++) {
                MessageDigest f = fast(alg);
                MessageDigest j = jcardsim(alg);
                String want = outcome(j, cases.get(i));
                assertEquals(want, outcome(f, cases.get(i)), "alg " + alg + " case " + i);
                // After reset() both are usable again and agree.
                f.reset();
                j.reset();
                byte[] fo = new byte[f.getLength()];
                byte[] jo = new byte[j.getLength()];
                f.doFinal(abc, (short) 0, (short) 3, fo, (short) 0);
                j.doFinal(abc, (short) 0, (short) 3, jo, (short) 0);
                assertArrayEquals(jdk(alg, abc), fo, "alg " + alg + " case " + i + " after reset");
                assertArrayEquals(jo, fo);
            }
        }
    }

    @Test
    void otherAlgorithmsAndExternalAccessAreJcardsims() {
        // Not sped up: jCardSim's implementation, unchanged.
        for (byte alg : new byte[] {MessageDigest.ALG_MD5, MessageDigest.ALG_RIPEMD160, MessageDigest.ALG_SHA3_256}) {
            assertInstanceOf(MessageDigestImpl.class, DigestFactory.getInstance(alg, false), "alg " + alg);
        }
        // Errors are jCardSim's own: NO_SUCH_ALGORITHM for unknown algorithms and external access.
        for (byte alg : new byte[] {MessageDigest.ALG_NULL, (byte) 99, MessageDigest.ALG_SHA_256}) {
            boolean external = alg == MessageDigest.ALG_SHA_256;
            CryptoException j = assertThrows(CryptoException.class, () -> MessageDigest.getInstance(alg, external));
            CryptoException f = assertThrows(CryptoException.class, () -> DigestFactory.getInstance(alg, external));
            assertEquals(CryptoException.NO_SUCH_ALGORITHM, f.getReason());
            assertEquals(j.getReason(), f.getReason());
        }
    }
}
